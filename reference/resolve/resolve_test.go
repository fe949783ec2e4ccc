package resolve_test

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/mailflow/mailflow/fixtures/dnsfake"
	"github.com/mailflow/mailflow/reference/resolve"
)

var zone = []string{
	"fabrikam.test. MX 20 mx2.fabrikam.test.",
	"fabrikam.test. MX 10 mx1.fabrikam.test.",
	"fabrikam.test. MX 20 mx3.fabrikam.test.",
	"fabrikam.test. TXT \"v=spf1 \" \"-all\"",
	"mx1.fabrikam.test. A 127.201.0.10",
	"mx1.fabrikam.test. A 127.201.0.11",
	"mx1.fabrikam.test. AAAA ::1",
	"v6only.fabrikam.test. AAAA 2001:db8::25",
	"alias.contoso.test. CNAME Fabrikam.Test.",
	"www.contoso.test. CNAME mx1.fabrikam.test.",
	"nullmx.contoso.test. MX 0 .",
	"nullmx.contoso.test. A 127.201.0.20",
	"CaseMX.contoso.test. MX 5 MX.Contoso.TEST.",
	"broken.contoso.test. CNAME missing.contoso.test.",
}

func setup(t *testing.T, opts ...resolve.Option) (*dnsfake.Server, *resolve.Resolver) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv, err := dnsfake.Start(ctx, "127.201.0.53:0", dnsfake.WithRecords(zone...), dnsfake.WithTimeoutDelay(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, resolve.New(srv.Addr(), opts...)
}

func TestLookupMX(t *testing.T) {
	srv, r := setup(t)
	tests := []struct {
		domain string
		want   []resolve.MX
		err    error
	}{
		{"fabrikam.test", []resolve.MX{{"mx1.fabrikam.test", 10}, {"mx2.fabrikam.test", 20}, {"mx3.fabrikam.test", 20}}, nil},
		{"alias.contoso.test.", []resolve.MX{{"mx1.fabrikam.test", 10}, {"mx2.fabrikam.test", 20}, {"mx3.fabrikam.test", 20}}, nil},
		{"nullmx.contoso.test", []resolve.MX{{"", 0}}, nil},
		{"casemx.contoso.test", []resolve.MX{{"mx.contoso.test", 5}}, nil},
		{"nope.contoso.test", nil, resolve.ErrNXDomain},
		{"broken.contoso.test", nil, resolve.ErrNXDomain},
		{"mx1.fabrikam.test", nil, resolve.ErrNoData},
	}
	for _, tc := range tests {
		t.Run(tc.domain, func(t *testing.T) {
			got, err := r.LookupMX(context.Background(), tc.domain)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil && resolve.IsTemporary(err) {
				t.Errorf("%v reported temporary", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	// DNS-009: the CNAME target is what was resolved; the server answered the chain at once.
	srv.ResetQueries()
	if _, err := r.LookupMX(context.Background(), "alias.contoso.test"); err != nil {
		t.Fatal(err)
	}
	if q := srv.Queries(); len(q) != 1 || q[0].Name != "alias.contoso.test." || q[0].Type != "MX" || q[0].Proto != "udp" {
		t.Fatalf("query log %+v", q)
	}
}

func TestLookupAddrsAndTXT(t *testing.T) {
	_, r := setup(t)
	ctx := context.Background()
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	tests := []struct {
		name   string
		lookup func(context.Context, string) ([]netip.Addr, error)
		host   string
		want   []netip.Addr
		err    error
	}{
		{"addrs A then AAAA", r.LookupAddrs, "mx1.fabrikam.test", addrs("127.201.0.10", "127.201.0.11", "::1"), nil},
		{"addrs via CNAME", r.LookupAddrs, "www.contoso.test", addrs("127.201.0.10", "127.201.0.11", "::1"), nil},
		{"addrs v6 only", r.LookupAddrs, "v6only.fabrikam.test", addrs("2001:db8::25"), nil},
		{"addrs NODATA", r.LookupAddrs, "fabrikam.test", nil, resolve.ErrNoData},
		{"addrs NXDOMAIN", r.LookupAddrs, "nope.fabrikam.test", nil, resolve.ErrNXDomain},
		{"A only", r.LookupA, "mx1.fabrikam.test", addrs("127.201.0.10", "127.201.0.11"), nil},
		{"A NODATA", r.LookupA, "v6only.fabrikam.test", nil, resolve.ErrNoData},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.lookup(ctx, tc.host)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	txt, err := r.LookupTXT(ctx, "fabrikam.test")
	if err != nil || !slices.Equal(txt, []string{"v=spf1 -all"}) {
		t.Fatalf("TXT = %q, %v", txt, err)
	}
}

func TestTemporaryFailures(t *testing.T) {
	srv, r := setup(t, resolve.WithTimeout(200*time.Millisecond))
	tests := []struct {
		mode      dnsfake.Mode
		reason    string
		wantQuery int
	}{
		{dnsfake.ModeServfail, "SERVFAIL", 1},
		{dnsfake.ModeTimeout, "timeout", 2}, // default 2 attempts
	}
	for _, tc := range tests {
		t.Run(tc.mode.String(), func(t *testing.T) {
			srv.SetFailure("fabrikam.test", tc.mode)
			defer srv.SetFailure("fabrikam.test", dnsfake.ModeNone)
			srv.ResetQueries()
			start := time.Now()
			_, err := r.LookupMX(context.Background(), "fabrikam.test")
			var te *resolve.TempError
			if !errors.As(err, &te) || !te.Temporary() || !resolve.IsTemporary(err) {
				t.Fatalf("err = %v, want *TempError", err)
			}
			if te.Name != "fabrikam.test." || te.Reason != tc.reason {
				t.Errorf("TempError = %+v, want reason %q", te, tc.reason)
			}
			if errors.Is(err, resolve.ErrNXDomain) || errors.Is(err, resolve.ErrNoData) {
				t.Errorf("temporary error also matches a permanent one: %v", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
			if n := len(srv.Queries()); n != tc.wantQuery {
				t.Errorf("%d queries, want %d", n, tc.wantQuery)
			}
		})
	}

	t.Run("unreachable server", func(t *testing.T) {
		srv.Close()
		_, err := r.LookupA(context.Background(), "mx1.fabrikam.test")
		if !resolve.IsTemporary(err) {
			t.Fatalf("err = %v, want temporary", err)
		}
	})
}

func TestCancelledContextIsTemporary(t *testing.T) {
	srv, r := setup(t, resolve.WithTimeout(5*time.Second))
	srv.SetFailure("fabrikam.test", dnsfake.ModeTimeout)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		deadline := time.Now().Add(2 * time.Second)
		for len(srv.Queries()) == 0 && time.Now().Before(deadline) {
			runtime.Gosched()
		}
		cancel()
	}()
	start := time.Now()
	_, err := r.LookupMX(ctx, "fabrikam.test")
	if !resolve.IsTemporary(err) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want temporary wrapping context.Canceled", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("cancel took %v", d)
	}
}

func TestTruncationFallsBackToTCP(t *testing.T) {
	srv, r := setup(t)
	srv.SetFailure("fabrikam.test", dnsfake.ModeTruncate)
	got, err := r.LookupMX(context.Background(), "fabrikam.test")
	if err != nil || len(got) != 3 || got[0].Host != "mx1.fabrikam.test" {
		t.Fatalf("got %v, %v", got, err)
	}
	var protos []string
	for _, q := range srv.Queries() {
		protos = append(protos, q.Proto)
	}
	if !slices.Equal(protos, []string{"udp", "tcp"}) {
		t.Fatalf("protocols %v, want udp then tcp", protos)
	}
}

func TestReverseName(t *testing.T) {
	tests := []struct {
		ip, zone, want string
	}{
		{"192.0.2.99", "bl.test", "99.2.0.192.bl.test."},
		{"127.0.0.2", "bl.test.", "2.0.0.127.bl.test."},
		{"::ffff:198.51.100.7", "bl.test", "7.100.51.198.bl.test."},
		{"2001:db8:1:2:3:4:567:89ab", "bl.test", "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.test."},
		{"192.0.2.1", "", "1.2.0.192."},
	}
	for _, tc := range tests {
		if got := resolve.ReverseName(netip.MustParseAddr(tc.ip), tc.zone); got != tc.want {
			t.Errorf("ReverseName(%s, %q) = %q, want %q", tc.ip, tc.zone, got, tc.want)
		}
	}
	if got := resolve.ReverseName(netip.Addr{}, "bl.test"); got != "" {
		t.Errorf("invalid addr gave %q", got)
	}
}

func TestDNSBLThroughFake(t *testing.T) {
	rrs, err := dnsfake.DNSBLRecords("bl.test", []string{"127.201.7.7", "2001:db8::7"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	srv, err := dnsfake.Start(ctx, "127.201.0.54:0", dnsfake.WithRecords(rrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	r := resolve.New(srv.Addr())
	for _, ip := range []string{"127.201.7.7", "2001:db8::7", "127.0.0.2"} {
		name := resolve.ReverseName(netip.MustParseAddr(ip), "bl.test")
		a, err := r.LookupA(ctx, name)
		if err != nil || !slices.Equal(a, []netip.Addr{netip.MustParseAddr("127.0.0.2")}) {
			t.Errorf("%s: A = %v, %v", ip, a, err)
		}
		txt, err := r.LookupTXT(ctx, name)
		if err != nil || len(txt) != 1 {
			t.Errorf("%s: TXT = %q, %v", ip, txt, err)
		}
	}
	if _, err := r.LookupA(ctx, resolve.ReverseName(netip.MustParseAddr("127.0.0.1"), "bl.test")); !errors.Is(err, resolve.ErrNXDomain) {
		t.Errorf("127.0.0.1: err = %v, want NXDOMAIN", err)
	}
}

func TestLookupPTR(t *testing.T) {
	srv, r := setup(t)
	if err := srv.Add("10.0.201.127.in-addr.arpa. PTR MX1.Fabrikam.test."); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := r.LookupPTR(ctx, netip.MustParseAddr("127.201.0.10"))
	if err != nil || !slices.Equal(got, []string{"mx1.fabrikam.test"}) {
		t.Errorf("PTR = %q, %v", got, err)
	}
	if _, err := r.LookupPTR(ctx, netip.MustParseAddr("127.201.0.11")); !errors.Is(err, resolve.ErrNXDomain) {
		t.Errorf("no PTR: err = %v, want NXDOMAIN", err)
	}
}
