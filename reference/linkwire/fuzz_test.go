package linkwire

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/mailflow/mailflow/reference/linkstate"
)

// FuzzParseRequest checks that ParseRequest never panics and that a line it accepts is
// written back by String as a line that parses the same.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"STATE HUB-LON1 HUB-LON2 down 1 RGC London-Paris", "STATE HUB-PAR HUB-LON1 up 2 RGC London-Paris",
		"TABLE HUB-LON1 HUB-LON2", "TABLE A", "STATE A B up", "STATE A B up 1 ", "STATE A B up 007 x",
		"STATE A B up 99999999999999999999 x", "STATE A B up 1 x\x00", "\xff", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, err := ParseRequest(line)
		if err != nil {
			return
		}
		back, err := ParseRequest(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRequest(%q) = %+v, written back as %q, which parses to %+v, %v", line, r, r.String(), back, err)
		}
	})
}

// FuzzReadReply checks that ReadReply never panics nor reads past its limits, and
// that an answer it accepts is written back as one that reads the same.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"TAKEN\r\n", "KEPT\n", "ERR not running\r\n", "ROWS 1\r\nROW down 1 RGC London-Paris\r\n",
		"ROWS 2\r\nROW up 0 a\r\n", "ROWS 4096\r\n", "ROWS -1\r\n", "ROW up 1 x\r\n", "",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, table bool) {
		kind := linkstate.KindState
		if table {
			kind = linkstate.KindTable
		}
		rep, err := ReadReply(bufio.NewReader(bytes.NewReader(b)), kind)
		if err != nil {
			return
		}
		if len(rep.Table) > maxRows {
			t.Fatalf("%d rows read, over %d", len(rep.Table), maxRows)
		}
		var out strings.Builder
		if err := writeReply(&out, kind, rep, nil); err != nil {
			t.Fatal(err)
		}
		back, err := ReadReply(bufio.NewReader(strings.NewReader(out.String())), kind)
		if err != nil || !equalReply(back, rep) {
			t.Fatalf("%q read as %+v, written back as %q, which reads as %+v, %v", b, rep, out.String(), back, err)
		}
	})
}
