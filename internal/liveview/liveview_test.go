package liveview

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/mailflow/mailflow/trace"
)

type fixed State

func (f fixed) State() State { return State(f) }

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

func sample() fixed {
	return fixed{
		Scenario:  "scenarios/edge-smarthost.yaml",
		Now:       t0,
		Listeners: []Listener{{Name: "EDGE1", Kind: "smtp", Addr: "127.20.0.12:2525"}},
		Queues:    []Queue{{Server: "EDGE1", Counts: map[string]int{"Submission": 0, "smarthost.isp.test": 2}}},
		Events: []trace.Event{
			{Time: t0, Type: trace.Receive, MessageID: "m1", Server: "EDGE1", Sender: "bob@fabrikam.test", Recipients: []string{"alice@contoso.test"}},
			{Time: t0.Add(time.Second), Type: trace.Defer, MessageID: "m2", Server: "EDGE1", Reply: "451 4.4.1 <no answer>"},
		},
		Hosts:     []Box{{Name: "smarthost.isp.test", Messages: []Message{{Time: t0, MailFrom: "alice@contoso.test", RcptTo: []string{"carol@fabrikam.test"}, Subject: "out", Size: 2048}}}},
		Mailboxes: []Box{{Name: "alice@contoso.test", Messages: []Message{{From: "Bob <bob@fabrikam.test>", Subject: "hello <alice>", Size: 700}}}},
	}
}

func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// rows is the text of each cell of each body row of the table with the id.
func rows(t *testing.T, doc *html.Node, id string) [][]string {
	t.Helper()
	var table *html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "table" {
			for _, a := range n.Attr {
				if a.Key == "id" && a.Val == id {
					table = n
				}
			}
		}
		for c := n.FirstChild; c != nil && table == nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if table == nil {
		t.Fatalf("no table %s", id)
	}
	var out [][]string
	var cells func(*html.Node, *[]string)
	text := func(n *html.Node) string {
		var b strings.Builder
		var f func(*html.Node)
		f = func(n *html.Node) {
			if n.Type == html.TextNode {
				b.WriteString(n.Data)
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				f(c)
			}
		}
		f(n)
		return b.String()
	}
	cells = func(n *html.Node, row *[]string) {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && c.Data == "td" {
				*row = append(*row, text(c))
			}
		}
	}
	var find func(*html.Node)
	find = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "tr" && n.Parent != nil && n.Parent.Data == "tbody" {
			var row []string
			cells(n, &row)
			out = append(out, row)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			find(c)
		}
	}
	find(table)
	return out
}

func TestPage(t *testing.T) {
	srv := httptest.NewServer(Handler(sample(), []byte(`<svg xmlns="http://www.w3.org/2000/svg"><text>london</text></svg>`)))
	defer srv.Close()
	resp, body := get(t, srv, "/")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("content type %q", ct)
	}
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		table string
		want  [][]string
	}{
		{"listeners", [][]string{{"EDGE1", "smtp", "127.20.0.12:2525"}}},
		{"queues", [][]string{{"EDGE1", "Submission", "0"}, {"EDGE1", "smarthost.isp.test", "2"}}},
		{"mailboxes", [][]string{{"alice@contoso.test", "Bob <bob@fabrikam.test>", "hello <alice>", "0.7 KB", ""}}},
		{"hosts", [][]string{{"smarthost.isp.test", "10:00:00.000", "alice@contoso.test", "carol@fabrikam.test", "out", "2.0 KB"}}},
		// The latest event first.
		{"events", [][]string{
			{"10:00:01.000", "EDGE1", "DEFER", "m2", "", "", "", "451 4.4.1 <no answer>"},
			{"10:00:00.000", "EDGE1", "RECEIVE", "m1", "bob@fabrikam.test", "alice@contoso.test", "", ""},
		}},
	}
	for _, tc := range tests {
		got := rows(t, doc, tc.table)
		if len(got) != len(tc.want) {
			t.Errorf("%s: %q, want %q", tc.table, got, tc.want)
			continue
		}
		for i := range got {
			if strings.Join(got[i], "|") != strings.Join(tc.want[i], "|") {
				t.Errorf("%s row %d: %q, want %q", tc.table, i, got[i], tc.want[i])
			}
		}
	}
	if !strings.Contains(body, "<svg") || !strings.Contains(body, "london") {
		t.Error("the page does not draw the sites")
	}
	if strings.Contains(body, "src=") || strings.Contains(body, "<link") {
		t.Error("the page loads something from elsewhere")
	}
}

func TestStateJSON(t *testing.T) {
	srv := httptest.NewServer(Handler(sample(), nil))
	defer srv.Close()
	_, body := get(t, srv, "/state.json")
	var st State
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Events) != 2 || st.Mailboxes[0].Messages[0].Subject != "hello <alice>" || st.Queues[0].Counts["smarthost.isp.test"] != 2 {
		t.Errorf("state.json: %+v", st)
	}
	if resp, _ := get(t, srv, "/sites.svg"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("sites.svg without a picture: %s", resp.Status)
	}
}

func TestSummary(t *testing.T) {
	from, subject := Summary([]byte("From: Bob <bob@fabrikam.test>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\nbody\r\n"))
	if from != "Bob <bob@fabrikam.test>" || subject != "café" {
		t.Errorf("Summary: %q, %q", from, subject)
	}
	if from, subject := Summary([]byte("not a header")); from != "" || subject != "" {
		t.Errorf("Summary of no header: %q, %q", from, subject)
	}
}
