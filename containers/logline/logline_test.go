package logline

import (
	"bufio"
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mailflow/mailflow/trace"
)

// A mark comes after every line written before it was asked for, so a reader that has
// read it has read them all.
func TestMarkHandler(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.Record(trace.Event{Type: trace.Receive, Server: "HUB1", HeaderID: "a@b"})
	h := MarkHandler(w, "HUB1")

	for _, tc := range []struct {
		method, target string
		code           int
	}{
		{http.MethodPost, "/mark?token=42", http.StatusNoContent},
		{http.MethodPost, "/mark", http.StatusBadRequest},
		{http.MethodGet, "/mark?token=1", http.StatusMethodNotAllowed},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.target, nil))
		if rec.Code != tc.code {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.target, rec.Code, tc.code)
		}
	}

	var lines []Line
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		l, ok := Parse(sc.Bytes())
		if !ok {
			t.Fatalf("line %q does not parse", sc.Text())
		}
		lines = append(lines, l)
	}
	if len(lines) != 2 || lines[0].Trace == nil || lines[1].Mark == nil {
		t.Fatalf("lines = %+v, want the trace event then one mark", lines)
	}
	if m := *lines[1].Mark; m.Server != "HUB1" || m.Token != "42" {
		t.Errorf("mark = %+v, want HUB1 42", m)
	}
}
