package scenario_test

import (
	"net/netip"
	"testing"

	"github.com/mailflow/mailflow/scenario"
)

func TestParseIPRange(t *testing.T) {
	for in, want := range map[string]string{
		"127.77.0.0/16":     "127.77.0.0/16",
		"192.0.2.7":         "192.0.2.7/32",
		"2001:db8::1":       "2001:db8::1/128",
		"2001:db8::/64":     "2001:db8::/64",
		"10.0.0.1-10.0.0.9": "",
		"":                  "",
	} {
		got, err := scenario.ParseIPRange(in)
		switch {
		case want == "" && err == nil:
			t.Errorf("ParseIPRange(%q) = %v, want an error", in, got)
		case want != "" && (err != nil || got != netip.MustParsePrefix(want)):
			t.Errorf("ParseIPRange(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
}
