package dsn

import (
	"bytes"
	nettextproto "net/textproto"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and that what it returns hangs together:
// status fields only from a delivery-status part, the original only from a returned
// message or header part, every field name canonical, the same answer every time.
// Seeds are the golden DSNs and the foreign one, and broken MIME made from them (no
// boundary, nesting, a huge header, bare LF); Postfix, Exim and UTF-8 DSNs and
// more broken ones are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	golden, _ := filepath.Glob("testdata/*.golden")
	foreign, _ := filepath.Glob("testdata/*.eml")
	paths := append(golden, foreign...)
	if len(golden) == 0 || len(foreign) == 0 {
		f.Fatalf("no golden or foreign DSNs in testdata")
	}
	for _, p := range paths {
		msg, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msg)
		f.Add(bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n")))
		f.Add(msg[:len(msg)/2])
		f.Add(bytes.Replace(msg, []byte("boundary="), []byte("x-boundary="), 1))
	}
	f.Add([]byte("Content-Type: multipart/report; report-type=delivery-status\r\n\r\n--\r\n"))
	f.Add([]byte("Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: multipart/mixed; boundary=d\r\n\r\n--d\r\n\r\nx\r\n--b--\r\n"))
	f.Add([]byte("Content-Type: multipart/report; boundary=b\r\nSubject: " + strings.Repeat("x", 70000) + "\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; a\r\n\r\nAction: failed\r\n--b--\r\n"))
	f.Add([]byte("Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!\r\n--b--\r\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		p, err := Parse(msg)
		p2, err2 := Parse(msg)
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(p, p2) {
			t.Fatalf("two parses of one input differ: %v / %v", err, err2)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "dsn parse: ") {
				t.Fatalf("error %q does not say it is the DSN parser's", err)
			}
			return
		}
		if !strings.HasPrefix(p.ContentType, "multipart/") {
			t.Errorf("parsed a %q message as a DSN", p.ContentType)
		}
		status := slices.Contains(p.PartTypes, "message/delivery-status") || slices.Contains(p.PartTypes, "message/global-delivery-status")
		if (p.PerMessage != nil || p.Recipients != nil) && !status {
			t.Errorf("status fields %v %v without a delivery-status part (parts %q)", p.PerMessage, p.Recipients, p.PartTypes)
		}
		if p.Recipients != nil && p.PerMessage == nil {
			t.Errorf("recipient blocks without the per-message block")
		}
		original := false
		for _, pt := range []string{"message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers"} {
			original = original || slices.Contains(p.PartTypes, pt)
		}
		if p.Original != nil && !original {
			t.Errorf("an original without a part carrying it (parts %q)", p.PartTypes)
		}
		for _, fields := range append([]map[string]string{p.Header, p.PerMessage}, p.Recipients...) {
			for k, v := range fields {
				if nettextproto.CanonicalMIMEHeaderKey(k) != k || Field(fields, strings.ToLower(k)) != v || Field(fields, strings.ToUpper(k)) != v {
					t.Errorf("field %q is not under its canonical name", k)
				}
			}
		}
		for i, r := range p.Recipients {
			if len(r) == 0 {
				t.Errorf("recipient block %d is empty", i)
			}
		}
	})
}
