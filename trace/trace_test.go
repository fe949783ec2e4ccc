package trace

import (
	"strings"
	"testing"
	"time"
)

func TestOrderedLogKeepsTimeOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewOrderedLog()
	// As two servers' logs might deliver them: the Hub's line read before the Edge's.
	for _, e := range []Event{
		{Server: "HUB", Type: Receive, Time: t0.Add(2 * time.Millisecond)},
		{Server: "EDGE", Type: Receive, Time: t0.Add(time.Millisecond)},
		{Server: "EDGE", Type: Send, Time: t0.Add(3 * time.Millisecond)},
		{Server: "EDGE2", Type: Send, Time: t0.Add(3 * time.Millisecond)},
	} {
		l.Record(e)
	}
	var got []string
	for _, e := range l.Events() {
		got = append(got, e.Server)
	}
	want := []string{"EDGE", "HUB", "EDGE", "EDGE2"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
	plain := NewLog(nil)
	plain.Record(Event{Server: "B", Time: t0.Add(time.Second)})
	plain.Record(Event{Server: "A", Time: t0})
	if plain.Events()[0].Server != "B" {
		t.Errorf("a plain log reorders events")
	}
}

func TestLine(t *testing.T) {
	at := time.Date(2026, 12, 7, 5, 50, 46, 223e6, time.UTC)
	tests := []struct {
		e    Event
		want string
	}{
		{Event{Time: at, Type: Receive, MessageID: "m1", Server: "EDGE1", Sender: "bob@fabrikam.test", Recipients: []string{"a@contoso.test", "b@contoso.test"},
			Source: "SMTP", Connector: "Internet", Detail: "from client.test [127.0.0.1]"},
			"05:50:46.223 EDGE1 RECEIVE m1 from=<bob@fabrikam.test> to=a@contoso.test,b@contoso.test source=SMTP connector=Internet from client.test [127.0.0.1]"},
		{Event{Time: at, Type: Receive, MessageID: "m2", Server: "HUB1"}, "05:50:46.223 HUB1 RECEIVE m2 from=<>"},
		{Event{Time: at, Type: Defer, MessageID: "m3", Server: "HUB1", Sender: "a@x.test", Connector: "To Internet", NextHop: "smarthost.isp.test",
			Reply: "451 4.4.1 no\r\nanswer"},
			`05:50:46.223 HUB1 DEFER m3 from=<a@x.test> connector="To Internet" next_hop=smarthost.isp.test reply="451 4.4.1 no answer"`},
		{Event{Time: at, Type: Fail}, "05:50:46.223 - FAIL -"},
		{Event{Time: at, Type: Send, MessageID: "e1", Server: "EDGE1", NextHop: "127.20.0.13", CopyID: "h1", Reply: "250 2.6.0 <h1> Queued"},
			`05:50:46.223 EDGE1 SEND e1 next_hop=127.20.0.13 copy=h1 reply="250 2.6.0 <h1> Queued"`},
	}
	for _, tc := range tests {
		if got := Line(tc.e); got != tc.want {
			t.Errorf("Line:\n got %s\nwant %s", got, tc.want)
		}
	}
}

func TestWatch(t *testing.T) {
	l := NewLog(nil)
	l.Record(Event{MessageID: "before"})
	var seen []string
	l.Watch(func(e Event) { seen = append(seen, e.MessageID) })
	l.Record(Event{MessageID: "a"})
	l.Record(Event{MessageID: "b"})
	if strings.Join(seen, ",") != "a,b" {
		t.Errorf("watch saw %v, want the events after it, in order", seen)
	}
}

// TestLineage follows each copy of a message split at a Hub back to the submission,
// and keeps a notification's copies apart from the message's.
func TestLineage(t *testing.T) {
	events := []Event{
		{Type: Receive, Server: "EDGE", MessageID: "e1"},
		{Type: Send, Server: "EDGE", MessageID: "e1", CopyID: "h1"},
		{Type: Receive, Server: "HUB", MessageID: "h1"},
		{Type: Transfer, Server: "HUB", MessageID: "h1", CopyID: "h1-c"},
		{Type: Send, Server: "HUB", MessageID: "h1-c", CopyID: "a1"},
		{Type: Send, Server: "HUB", MessageID: "h1-c", CopyID: "b1"},
		{Type: Receive, Server: "HUB-A", MessageID: "a1"},
		{Type: Receive, Server: "HUB-B", MessageID: "b1"},
		{Type: Send, Server: "HUB-B", MessageID: "b1", CopyID: "m1"},
		{Type: Deliver, Server: "MBX-B", MessageID: "m1"},
		{Type: DSN, Server: "HUB-A", MessageID: "a1", CopyID: "n1"},
		{Type: Send, Server: "HUB-A", MessageID: "n1", CopyID: "e2"},
		{Type: Receive, Server: "EDGE", MessageID: "e2"},
		// Out of the organisation: no server took "x9".
		{Type: Send, Server: "EDGE", MessageID: "e2", CopyID: "x9"},
	}
	parents := Parents(events)
	servers := func(c Copy) string {
		var out []string
		for _, x := range Lineage(parents, c) {
			out = append(out, x.Server+"/"+x.ID)
		}
		return strings.Join(out, " ")
	}
	for c, want := range map[Copy]string{
		{"MBX-B", "m1"}: "EDGE/e1 HUB/h1 HUB/h1-c HUB-B/b1 MBX-B/m1",
		{"HUB-A", "a1"}: "EDGE/e1 HUB/h1 HUB/h1-c HUB-A/a1",
		{"EDGE", "e2"}:  "HUB-A/n1 EDGE/e2",
		{"EDGE", "x9"}:  "EDGE/x9",
	} {
		if got := servers(c); got != want {
			t.Errorf("lineage of %v: %s, want %s", c, got, want)
		}
	}
	if got := Notifications(events); len(got) != 1 || got[Copy{"HUB-A", "n1"}] != (Copy{"HUB-A", "a1"}) {
		t.Errorf("notifications %v, want HUB-A/n1 about HUB-A/a1", got)
	}
}
