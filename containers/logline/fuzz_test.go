package logline

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzParse checks that Parse never panics, refuses what is not a protocol line, and
// that a line it accepts is written back by a Writer as a line that parses the same.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"trace":{"time":"2026-11-02T10:00:00Z","event":"RECEIVE","message_id":"0A1B","server":"EDGE1","sender":"alice@contoso.test","recipients":["bob@fabrikam.test"],"source":"SMTP"}}`,
		`{"ready":{"server":"EDGE1","role":"edge","listeners":["127.0.0.1:2525"]}}`,
		`{"stored":{"server":"MBX1","mailbox":"bob@contoso.test","data":"U3ViamVjdDogaGkNCg0KaGkNCg==","flags":"S"}}`,
		`{"ready":{"server":"A"},"stored":{"server":"B"}}`,
		`{"mark":{"server":"HUB1","token":"7"}}`,
		`{"trace":null}`, `{}`, `null`, `[]`, `"x"`, `{"trace":{"time":"yesterday"}}`,
		`{"stored":{"data":"not base64"}}`, `{"ready":{"server":"A"}} trailing`,
		"panic: runtime error: index out of range\n", "2026/11/02 10:00:00 INFO started",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, ok := Parse(b)
		if !ok {
			if l != (Line{}) {
				t.Fatalf("Parse(%q) refused the line but returned %+v", b, l)
			}
			return
		}
		var out bytes.Buffer
		NewWriter(&out).Write(l)
		back, ok := Parse(bytes.TrimSuffix(out.Bytes(), []byte("\n")))
		if !ok {
			t.Fatalf("Parse(%q) = %+v, written as %q, which does not parse", b, l, out.Bytes())
		}
		again, err := json.Marshal(back)
		if err != nil || !bytes.Equal(again, bytes.TrimSuffix(out.Bytes(), []byte("\n"))) {
			t.Fatalf("the line written back changed: %q, then %q (%v)", out.Bytes(), again, err)
		}
	})
}
