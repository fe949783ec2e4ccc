package live

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Host
		err  string // part of the error; "" when it parses
	}{
		{in: "smtp://192.0.2.25:25", want: Host{Name: "192.0.2.25", Port: 25}},
		{in: "smtp://192.0.2.25", want: Host{Name: "192.0.2.25", Port: 25}},
		{in: "smtp://192.0.2.25/", want: Host{Name: "192.0.2.25", Port: 25}},
		{in: "SMTP://192.0.2.25:2525", want: Host{Name: "192.0.2.25", Port: 2525}},
		{in: "smtp://[2001:db8::25]:25", want: Host{Name: "2001:db8::25", Port: 25}},
		{in: "smtp://[2001:db8::25]", want: Host{Name: "2001:db8::25", Port: 25}},
		{in: "smtp://mx.lab.example:587", want: Host{Name: "mx.lab.example", Port: 587}},
		{in: "smtp://localhost", want: Host{Name: "localhost", Port: 25}},
		{in: "smtps://192.0.2.25", err: "not an smtp:// URL"},
		{in: "192.0.2.25:25", err: "not an smtp:// URL"},
		{in: "mta:postfix", err: "not an smtp:// URL"},
		{in: "smtp://", err: "no host"},
		{in: "smtp://:25", err: "no host"},
		{in: "smtp://192.0.2.25:", err: "empty port"},
		{in: "smtp://192.0.2.25:0", err: "port \"0\" is not 1-65535"},
		{in: "smtp://192.0.2.25:65536", err: "is not 1-65535"},
		{in: "smtp://192.0.2.25:smtp", err: "invalid port"},
		{in: "smtp://user:pw@192.0.2.25", err: "no user or password"},
		{in: "smtp://192.0.2.25/relay", err: "no path"},
		{in: "smtp://192.0.2.25?tls=1", err: "no query"},
		{in: "smtp://192.0.2.25#x", err: "no fragment"},
		{in: "smtp://[192.0.2.25]:25", err: "invalid IP-literal"},
		{in: "smtp://[mx.example]:25", err: "invalid host"},
		{in: "smtp://[::ffff:192.0.2.25]:25", err: "not an IPv6 address"},
		{in: "smtp://2001:db8::25", err: "smtp://"},
		{in: "smtp://mx_.bad..name", err: "neither an IP address nor a DNS name"},
		{in: "smtp://-mx.example", err: "neither an IP address nor a DNS name"},
	} {
		got, err := ParseTarget(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("ParseTarget(%q): %v", tc.in, err)
		case tc.err == "" && got != tc.want:
			t.Errorf("ParseTarget(%q) = %+v, want %+v", tc.in, got, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseTarget(%q) = %+v, %v; want an error saying %q", tc.in, got, err, tc.err)
		case tc.err != "" && !strings.Contains(err.Error(), "smtp://HOST[:PORT]"):
			t.Errorf("ParseTarget(%q): error %q does not show the form wanted", tc.in, err)
		}
	}
}

func TestParseListen(t *testing.T) {
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	for _, tc := range []struct {
		in   string
		want []netip.Addr
		n    int    // when want is nil: how many addresses
		err  string // part of the error
	}{
		{in: "192.0.2.100", want: addrs("192.0.2.100")},
		{in: "192.0.2.100,192.0.2.101", want: addrs("192.0.2.100", "192.0.2.101")},
		{in: " 192.0.2.101 , 192.0.2.100 ", want: addrs("192.0.2.101", "192.0.2.100")},
		{in: "192.0.2.96/29", want: addrs("192.0.2.97", "192.0.2.98", "192.0.2.99", "192.0.2.100", "192.0.2.101", "192.0.2.102")},
		{in: "192.0.2.100/29", want: addrs("192.0.2.97", "192.0.2.98", "192.0.2.99", "192.0.2.100", "192.0.2.101", "192.0.2.102")},
		{in: "192.0.2.100/31", want: addrs("192.0.2.100", "192.0.2.101")},
		{in: "192.0.2.100/32", want: addrs("192.0.2.100")},
		{in: "192.0.2.100/30", want: addrs("192.0.2.101", "192.0.2.102")},
		{in: "192.0.2.10,192.0.2.96/30", want: addrs("192.0.2.10", "192.0.2.97", "192.0.2.98")},
		{in: "2001:db8::/126", want: addrs("2001:db8::1", "2001:db8::2", "2001:db8::3")},
		{in: "2001:db8::a,::ffff:192.0.2.1", want: addrs("2001:db8::a", "192.0.2.1")},
		{in: "10.0.0.0/8", n: MaxListen},
		{in: "", err: "no address"},
		{in: "  ", err: "no address"},
		{in: "192.0.2.100,", err: "an empty entry"},
		{in: "192.0.2.100:53", err: "has a port"},
		{in: "[2001:db8::1]:25", err: "has a port"},
		{in: "mx.example", err: "is not an IP address"},
		{in: "192.0.2.0/33", err: "is not a prefix"},
		{in: "0.0.0.0", err: "unspecified"},
		{in: "::", err: "unspecified"},
		{in: "224.0.0.1", err: "multicast"},
		{in: "fe80::1%eth0", err: "zone"},
		{in: "192.0.2.100,192.0.2.100", err: "given twice"},
		{in: "192.0.2.97,192.0.2.96/30", err: "given twice"},
	} {
		got, err := ParseListen(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("ParseListen(%q): %v", tc.in, err)
		case tc.err == "" && tc.want != nil && !equalAddrs(got.Addrs, tc.want):
			t.Errorf("ParseListen(%q) = %v, want %v", tc.in, got.Addrs, tc.want)
		case tc.err == "" && tc.want == nil && len(got.Addrs) != tc.n:
			t.Errorf("ParseListen(%q) gives %d addresses, want %d", tc.in, len(got.Addrs), tc.n)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseListen(%q) = %v, %v; want an error saying %q", tc.in, got.Addrs, err, tc.err)
		}
	}
}

func equalAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// What parses is well-formed: a target prints back to a URL that parses to itself,
// and a pool holds distinct, usable addresses, no more than MaxListen.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"smtp://192.0.2.25:25", "smtp://[2001:db8::1]", "smtp://mx.example:2525", "smtp://a@b", "smtp://x:0", "smtp://[::ffff:1.2.3.4]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseTarget(s)
		if err != nil {
			return
		}
		if h.Name == "" || h.Port == 0 {
			t.Fatalf("ParseTarget(%q) = %+v without error", s, h)
		}
		again, err := ParseTarget(h.String())
		if err != nil || again != h {
			t.Fatalf("ParseTarget(%q) = %+v, which prints as %q and parses to %+v, %v", s, h, h.String(), again, err)
		}
	})
}

func FuzzParseListen(f *testing.F) {
	for _, s := range []string{"192.0.2.100", "192.0.2.96/28,192.0.2.200", "2001:db8::/120", "1.2.3.4:5", ",", "0.0.0.0/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseListen(s)
		if err != nil {
			return
		}
		if len(p.Addrs) == 0 || len(p.Addrs) > MaxListen {
			t.Fatalf("ParseListen(%q): %d addresses", s, len(p.Addrs))
		}
		seen := map[netip.Addr]bool{}
		for _, a := range p.Addrs {
			if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.Zone() != "" || a.Is4In6() || seen[a] {
				t.Fatalf("ParseListen(%q) gives %v", s, a)
			}
			seen[a] = true
		}
	})
}
