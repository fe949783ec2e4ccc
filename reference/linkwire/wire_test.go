package linkwire

import (
	"bufio"
	"errors"
	"strings"
	"testing"

	"github.com/mailflow/mailflow/reference/linkstate"
)

func TestParseRequest(t *testing.T) {
	state := func(to, from string, up bool, v int, conn string) Request {
		return Request{To: to, Message: linkstate.Message{Kind: linkstate.KindState, From: from, State: linkstate.State{Connector: conn, Up: up, Version: v}}}
	}
	tests := []struct {
		line    string
		want    Request
		wantErr string
	}{
		{line: "STATE HUB-LON1 HUB-LON2 down 1 RGC London-Paris", want: state("HUB-LON1", "HUB-LON2", false, 1, "RGC London-Paris")},
		{line: "STATE HUB-PAR HUB-LON1 up 2 RGC London-Paris", want: state("HUB-PAR", "HUB-LON1", true, 2, "RGC London-Paris")},
		{line: "STATE A B up 0 x", want: state("A", "B", true, 0, "x")},
		{line: "STATE A B up 007 x", want: state("A", "B", true, 7, "x")},
		{line: "STATE A B down 3 a  b", want: state("A", "B", false, 3, "a  b")},
		{line: "TABLE HUB-LON1 HUB-LON2", want: Request{To: "HUB-LON1", Message: linkstate.Message{Kind: linkstate.KindTable, From: "HUB-LON2"}}},
		{line: "", wantErr: "unknown request"},
		{line: "HELLO A B", wantErr: "unknown request"},
		{line: "state A B up 1 x", wantErr: "unknown request"},
		{line: "TABLE A", wantErr: "TABLE wants"},
		{line: "TABLE A B C", wantErr: "TABLE wants"},
		{line: "TABLE A  B", wantErr: "TABLE wants"},
		{line: "TABLE A_1 B", wantErr: "not a server name"},
		{line: "TABLE " + strings.Repeat("A", 64) + " B", wantErr: "not a server name"},
		{line: "STATE A B up 1", wantErr: "state wants"},
		{line: "STATE A B", wantErr: "STATE wants"},
		{line: "STATE A B sideways 1 x", wantErr: "want up or down"},
		{line: "STATE A B up -1 x", wantErr: "version"},
		{line: "STATE A B up +1 x", wantErr: "version"},
		{line: "STATE A B up 1000000000 x", wantErr: "version"},
		{line: "STATE A B up 1 ", wantErr: "not a connector name"},
		{line: "STATE A B up 1  x", wantErr: "not a connector name"},
		{line: "STATE A B up 1 " + strings.Repeat("x", 257), wantErr: "not a connector name"},
		{line: "STATE A B up 1 x\x00", wantErr: "control character"},
		{line: "STATE A B up 1 x\r", wantErr: "control character"},
		{line: "STATE A B up 1 \xff", wantErr: "not UTF-8"},
		{line: strings.Repeat("x", 1025), wantErr: "over 1024"},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			got, err := ParseRequest(tc.line)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseRequest(%q) = %+v, %v; want an error saying %q", tc.line, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseRequest(%q) = %+v, %v; want %+v", tc.line, got, err, tc.want)
			}
			if back, err := ParseRequest(got.String()); err != nil || back != got {
				t.Errorf("written back as %q, which parses to %+v, %v", got.String(), back, err)
			}
		})
	}
}

func TestReadReply(t *testing.T) {
	table := []linkstate.State{{Connector: "RGC London-Paris", Up: false, Version: 1}, {Connector: "RGC Paris-Berlin", Up: true}}
	tests := []struct {
		name    string
		kind    linkstate.Kind
		text    string
		want    linkstate.Reply
		wantErr string
	}{
		{name: "taken", text: "TAKEN\r\n", want: linkstate.Reply{Taken: true}},
		{name: "kept, LF only", text: "KEPT\n", want: linkstate.Reply{}},
		{name: "a table", kind: linkstate.KindTable, text: "ROWS 2\r\nROW down 1 RGC London-Paris\r\nROW up 0 RGC Paris-Berlin\r\n", want: linkstate.Reply{Table: table}},
		{name: "an empty table", kind: linkstate.KindTable, text: "ROWS 0\r\n", want: linkstate.Reply{Table: []linkstate.State{}}},
		{name: "refused", text: "ERR linkstate: HUB-PAR: not running\r\n", wantErr: "refused: linkstate: HUB-PAR: not running"},
		{name: "refused table", kind: linkstate.KindTable, text: "ERR no\r\n", wantErr: "refused: no"},
		{name: "a table where a state's answer was due", text: "ROWS 0\r\n", wantErr: "want TAKEN, KEPT or ERR"},
		{name: "rows short", kind: linkstate.KindTable, text: "ROWS 2\r\nROW up 0 a\r\n", wantErr: "unexpected EOF"},
		{name: "rows too many", kind: linkstate.KindTable, text: "ROWS 4097\r\n", wantErr: "want ROWS"},
		{name: "rows negative", kind: linkstate.KindTable, text: "ROWS -1\r\n", wantErr: "want ROWS"},
		{name: "rows not canonical", kind: linkstate.KindTable, text: "ROWS 01\r\nROW up 0 a\r\n", wantErr: "want ROWS"},
		{name: "not a row", kind: linkstate.KindTable, text: "ROWS 1\r\nTAKEN\r\n", wantErr: "want ROW"},
		{name: "bad row", kind: linkstate.KindTable, text: "ROWS 1\r\nROW maybe 0 a\r\n", wantErr: "want up or down"},
		{name: "nothing", text: "", wantErr: "unexpected EOF"},
		{name: "no line end", text: "TAKEN", wantErr: "unexpected EOF"},
		{name: "overlong", text: strings.Repeat("x", 5000) + "\n", wantErr: "over 1024"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadReply(bufio.NewReader(strings.NewReader(tc.text)), tc.kind)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ReadReply(%q) = %+v, %v; want an error saying %q", tc.text, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !equalReply(got, tc.want) {
				t.Fatalf("ReadReply(%q) = %+v, %v; want %+v", tc.text, got, err, tc.want)
			}
		})
	}
}

func TestWriteReplyRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		kind linkstate.Kind
		rep  linkstate.Reply
		err  error
	}{
		{kind: linkstate.KindState, rep: linkstate.Reply{Taken: true}},
		{kind: linkstate.KindState},
		{kind: linkstate.KindTable, rep: linkstate.Reply{Table: []linkstate.State{{Connector: "a b", Up: true, Version: 3}}}},
		{kind: linkstate.KindTable, err: errors.New("two\r\nlines")},
	} {
		var b strings.Builder
		if err := writeReply(&b, tc.kind, tc.rep, tc.err); err != nil {
			t.Fatal(err)
		}
		got, err := ReadReply(bufio.NewReader(strings.NewReader(b.String())), tc.kind)
		if tc.err != nil {
			var re *RemoteError
			if !errors.As(err, &re) || re.Text != "two  lines" {
				t.Errorf("%q read back as %v, want the refusal on one line", b.String(), err)
			}
			continue
		}
		if err != nil || !equalReply(got, tc.rep) {
			t.Errorf("%q read back as %+v, %v; want %+v", b.String(), got, err, tc.rep)
		}
	}
}

func equalReply(a, b linkstate.Reply) bool {
	if a.Taken != b.Taken || len(a.Table) != len(b.Table) {
		return false
	}
	for i := range a.Table {
		if a.Table[i] != b.Table[i] {
			return false
		}
	}
	return true
}
