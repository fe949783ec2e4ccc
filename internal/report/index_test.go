package report

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/mailflow/mailflow/spec"
)

// TestIndexHTML parses the page as a browser would and checks what a reader finds on
// it: the runs with their totals, a row per clause with a verdict per target in column
// order, the filters, each failure with the clause text and the spec's message, and
// nothing fetched from elsewhere.
func TestIndexHTML(t *testing.T) {
	// Given in the wrong order: the page puts the reference first.
	second, first := sampleResult(t), secondResult(t)
	first.Target = "reference-inprocess"
	var buf bytes.Buffer
	if err := WriteIndexHTML(&buf, []*Result{second, first}, t0); err != nil {
		t.Fatal(err)
	}
	golden(t, "index.html.golden", buf.Bytes())
	doc, err := html.Parse(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}

	if heads := texts(find(doc, "table", "id", "clauses"), "th"); strings.Join(heads, "|") != "ID|Level|Area|Title|reference-inprocess|postfix" {
		t.Errorf("clause table headings %q", heads)
	}
	runs := find(doc, "table", "id", "runs")
	if rows := texts(runs, "td"); len(rows) < 2 || rows[0] != "reference-inprocess" {
		t.Errorf("runs table starts %q, want the reference first", rows)
	}
	for _, id := range []string{"f-area", "f-level", "f-verdict", "f-text"} {
		if find(doc, "", "id", id) == nil {
			t.Errorf("no filter %s", id)
		}
	}
	if opts := texts(find(doc, "select", "id", "f-level"), "option"); !contains(opts, "MUST") || !contains(opts, "SHOULD") {
		t.Errorf("level filter offers %q", opts)
	}

	bodies := all(doc, "tbody", "class", "clause")
	if len(bodies) != len(sampleClauses)+1 {
		t.Fatalf("%d clause rows, want %d", len(bodies), len(sampleClauses)+1)
	}
	byID := map[string]*html.Node{}
	for _, b := range bodies {
		tds := texts(b, "td")
		byID[tds[0]] = b
		if attr(b, "data-area") == "" || attr(b, "data-level") == "" {
			t.Errorf("%s: no area or level to filter on", tds[0])
		}
	}
	relay := byID["RELAY-001"]
	if relay == nil {
		t.Fatal("no RELAY-001 row")
	}
	if v := texts(relay, "td"); v[5] != "FAIL" {
		t.Errorf("RELAY-001 on postfix: %q, want FAIL", v[5])
	}
	det := find(relay, "details", "", "")
	if det == nil || !hasAttr(det, "open") {
		t.Fatal("RELAY-001 fails but its details are not open")
	}
	text := textOf(det)
	c, _ := spec.Lookup("RELAY-001")
	if !strings.Contains(text, c.Text[:60]) {
		t.Errorf("RELAY-001 details lack the clause text:\n%s", text)
	}
	if !strings.Contains(text, "smtp_test.go:42") {
		t.Errorf("RELAY-001 details lack the failure and where it was found:\n%s", text)
	}
	if pass := byID["SMTP-001"]; pass == nil || find(pass, "details", "", "") != nil {
		t.Error("a clause every target passed carries details")
	}

	// Self-contained: no script, style sheet, image or frame from elsewhere.
	for _, tag := range []string{"script", "link", "img", "iframe"} {
		for _, n := range all(doc, tag, "", "") {
			for _, a := range []string{"src", "href"} {
				if v := attr(n, a); v != "" {
					t.Errorf("<%s %s=%q> loads something from outside the page", tag, a, v)
				}
			}
		}
	}
}

// find is the first element below n with the tag (any when empty) and, when key is
// given, the attribute key equal to (or, for class, listing) val.
func find(n *html.Node, tag, key, val string) *html.Node {
	if ns := all(n, tag, key, val); len(ns) > 0 {
		return ns[0]
	}
	return nil
}

func all(n *html.Node, tag, key, val string) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (tag == "" || n.Data == tag) && (key == "" || matches(n, key, val)) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	if n != nil {
		walk(n)
	}
	return out
}

func matches(n *html.Node, key, val string) bool {
	v := attr(n, key)
	if key == "class" {
		return contains(strings.Fields(v), val)
	}
	return v == val
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

func texts(n *html.Node, tag string) []string {
	var out []string
	for _, e := range all(n, tag, "", "") {
		out = append(out, strings.TrimSpace(textOf(e)))
	}
	return out
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
