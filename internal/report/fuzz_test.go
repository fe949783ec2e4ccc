package report

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// FuzzReadJSON checks that ReadJSON never panics; that a result it accepts can be
// printed every way `mailflow conformance report` prints results; and that writing it
// and reading it back is stable.
func FuzzReadJSON(f *testing.F) {
	golden, err := os.ReadFile("testdata/result.json.golden")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add(golden[:len(golden)/2])
	for _, s := range []string{
		`{"schema":"mailflow.report/v1"}`,
		`{"schema":"mailflow.report/v1","totals":null,"clauses":null}`,
		`{"schema":"mailflow.report/v1","clauses":[{"clause":{"id":"SMTP-001"},"verdict":"BOGUS","duration_ns":-1}]}`,
		`{"schema":"mailflow.report/v1","clauses":[{"clause":{"id":"X"}},{"clause":{"id":"X"},"verdict":"FAIL","specs":[{"state":"failed","failure":"a\nb"}]}]}`,
		`{"schema":"mailflow.report/v1","totals":{"PASS":-3,"":1},"started":"0000-01-01T00:00:00Z","duration_ns":-9223372036854775808}`,
		`{"schema":"mailflow.report/v1"} {"schema":"mailflow.report/v9"}`,
		`{"schema":"mailflow.report/v9"}`, `{"schema":1}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadJSON(bytes.NewReader(data))
		if err != nil {
			return
		}
		_ = r.WriteTable(io.Discard)
		_ = r.WriteJUnit(io.Discard)
		_ = r.TotalsLine()
		_ = r.ExitCode(true)
		m := Matrix([]*Result{r, r})
		_ = m.WriteMatrixText(io.Discard)
		_ = m.WriteMatrixMarkdown(io.Discard)
		_ = m.WriteMatrixHTML(io.Discard)
		var once, twice bytes.Buffer
		if err := r.WriteJSON(&once); err != nil {
			t.Fatalf("a result ReadJSON accepted does not write: %v", err)
		}
		back, err := ReadJSON(bytes.NewReader(once.Bytes()))
		if err != nil {
			t.Fatalf("a result written by WriteJSON does not read: %v\n%s", err, once.Bytes())
		}
		if err := back.WriteJSON(&twice); err != nil || !bytes.Equal(once.Bytes(), twice.Bytes()) {
			t.Fatalf("write, read, write changed the result (%v):\n%s\n%s", err, once.Bytes(), twice.Bytes())
		}
	})
}
