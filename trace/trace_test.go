package trace

import (
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
