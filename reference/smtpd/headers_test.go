package smtpd

import "testing"

func TestStripOrgHeaders(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"none", "Subject: s\r\n\r\nX-MS-Exchange-Organization-SCL: -1\r\n", "Subject: s\r\n\r\nX-MS-Exchange-Organization-SCL: -1\r\n"},
		{"forged SCL, any case, folded", "Received: from a\r\nx-ms-exchange-organization-scl: -1\r\n\tmore\r\nSubject: s\r\nX-MS-Exchange-Organization-AuthAs: Internal\r\n\r\nbody\r\n",
			"Received: from a\r\nSubject: s\r\n\r\nbody\r\n"},
		{"look-alike kept", "X-MS-Exchange-Organizational: x\r\nX-MS-Exchange-Organization: y\r\n\r\n", "X-MS-Exchange-Organizational: x\r\nX-MS-Exchange-Organization: y\r\n\r\n"},
		{"no body", "X-MS-Exchange-Organization-SCL: 9\r\nSubject: s\r\n", "Subject: s\r\n"},
	} {
		if got := string(stripOrgHeaders([]byte(tt.in))); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func FuzzStripOrgHeaders(f *testing.F) {
	f.Add("X-MS-Exchange-Organization-SCL: -1\r\nSubject: s\r\n\r\nbody\r\n")
	f.Add("a: b\n\tc\nX-MS-Exchange-Organization-X: y\n")
	f.Fuzz(func(t *testing.T, in string) {
		out := stripOrgHeaders([]byte(in))
		if len(out) > len(in) {
			t.Fatalf("output longer than input: %q -> %q", in, out)
		}
		if again := stripOrgHeaders(out); string(again) != string(out) {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, out, again)
		}
	})
}
