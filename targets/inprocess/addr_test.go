package inprocess

import (
	"net"
	"net/netip"
	"testing"
)

// TestPlanSmallTopology pins the layout small topologies have always had: fixed
// addresses low in one /24, handed-out ones from .10.
func TestPlanSmallTopology(t *testing.T) {
	p, err := NewPlan(62)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	base := p.Fixed(0).As4()
	if base[0] != 127 || base[1] != 62 {
		t.Fatalf("first /24 %v, want one in 127.62.0.0/16", p.Fixed(0))
	}
	if got, want := p.Fixed(1), netip.AddrFrom4([4]byte{127, 62, base[2], 1}); got != want {
		t.Errorf("Fixed(1) %v, want %v", got, want)
	}
	for _, host := range []byte{10, 11} {
		a, err := p.Next()
		if err != nil {
			t.Fatal(err)
		}
		if want := netip.AddrFrom4([4]byte{127, 62, base[2], host}); a != want {
			t.Errorf("Next %v, want %v", a, want)
		}
	}
	if got := p.Prefixes(); len(got) != 1 || got[0] != netip.PrefixFrom(p.Fixed(0), 24) {
		t.Errorf("Prefixes %v, want only the first /24", got)
	}
}

// TestPlanGrowsPastOneSlice hands out more addresses than one /24 holds: the plan claims
// further /24s, skipping one another process holds, and gives them all back on Release.
func TestPlanGrowsPastOneSlice(t *testing.T) {
	const block = 61 // no other test of this process uses it, so /24s come in order
	p, err := NewPlan(block)
	if err != nil {
		t.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			p.Release()
		}
	}()
	c := p.Fixed(0).As4()[2]
	// Another process holds the next /24 of the block.
	held, err := net.Listen("tcp", net.JoinHostPort(netip.AddrFrom4([4]byte{127, block, c + 1, 254}).String(), lockPort))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	seen := map[netip.Addr]bool{}
	const n = 1000 // as many servers as a 200-site org has
	for i := 0; i < n; i++ {
		a, err := p.Next()
		if err != nil {
			t.Fatalf("address %d: %v", i, err)
		}
		if seen[a] {
			t.Fatalf("address %d: %v handed out twice", i, a)
		}
		seen[a] = true
		if !netip.MustParsePrefix("127.0.0.0/8").Contains(a) {
			t.Fatalf("address %d: %v is not loopback", i, a)
		}
		if h := a.As4()[3]; h == 0 || h == 255 {
			t.Fatalf("address %d: %v is a network or broadcast address", i, a)
		}
	}
	// 245 in the first /24 (.10-.254), 254 in each further one (.1-.254).
	want := []netip.Prefix{
		netip.PrefixFrom(netip.AddrFrom4([4]byte{127, block, c, 0}), 24),
		netip.PrefixFrom(netip.AddrFrom4([4]byte{127, block, c + 2, 0}), 24),
		netip.PrefixFrom(netip.AddrFrom4([4]byte{127, block, c + 3, 0}), 24),
		netip.PrefixFrom(netip.AddrFrom4([4]byte{127, block, c + 4, 0}), 24),
	}
	got := p.Prefixes()
	if len(got) != len(want) {
		t.Fatalf("Prefixes %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Prefixes %v, want %v", got, want)
		}
	}
	for a := range seen {
		in := false
		for _, pf := range got {
			in = in || pf.Contains(a)
		}
		if !in {
			t.Errorf("%v lies in none of %v", a, got)
		}
	}
	if got, want := p.Fixed(2), netip.AddrFrom4([4]byte{127, block, c, 2}); got != want {
		t.Errorf("Fixed(2) %v after growing, want %v (the first /24's)", got, want)
	}

	p.Release()
	released = true
	for _, pf := range want {
		lock := net.JoinHostPort(netip.AddrFrom4([4]byte{127, block, pf.Addr().As4()[2], 254}).String(), lockPort)
		l, err := net.Listen("tcp", lock)
		if err != nil {
			t.Errorf("%v still claimed after Release: %v", pf, err)
			continue
		}
		l.Close()
	}
}
