package inprocess

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// Plan hands out the loopback addresses of one topology: 127.B.C.x where B is chosen by
// the caller (per parallel process) and C rotates per topology within the process.
// Another process may use the same B (two test binaries run at once), so a plan claims
// its /24 by holding a listener on .254 of it, and moves on to the next /24 when that
// is taken.
type Plan struct {
	base  [3]byte
	next  byte
	remap map[netip.Addr]netip.Addr
	lock  net.Listener
}

// lockPort is where a plan's claim on its /24 listens (unprivileged, unused otherwise).
const lockPort = "2524"

// Release gives the /24 back.
func (p *Plan) Release() {
	if p.lock != nil {
		p.lock.Close()
	}
}

var (
	sliceMu   sync.Mutex
	sliceNext = map[byte]byte{}
)

// NewPlan claims the next free /24 under 127.block.0.0/16 for one topology.
func NewPlan(block byte) (*Plan, error) {
	for tries := 0; tries < 256; tries++ {
		sliceMu.Lock()
		c := sliceNext[block]
		sliceNext[block] = c + 1
		sliceMu.Unlock()
		l, err := net.Listen("tcp", net.JoinHostPort(netip.AddrFrom4([4]byte{127, block, c, 254}).String(), lockPort))
		if err != nil {
			continue // held by another process
		}
		return &Plan{base: [3]byte{127, block, c}, next: 10, remap: map[netip.Addr]netip.Addr{}, lock: l}, nil
	}
	return nil, fmt.Errorf("address plan: no free /24 in 127.%d.0.0/16", block)
}

// Fixed returns the address .n of the slice (DNS .1, LDAP .2).
func (p *Plan) Fixed(n byte) netip.Addr {
	return netip.AddrFrom4([4]byte{p.base[0], p.base[1], p.base[2], n})
}

// Next returns a fresh address.
func (p *Plan) Next() (netip.Addr, error) {
	if p.next == 255 {
		return netip.Addr{}, fmt.Errorf("address plan %v: slice exhausted", p.Fixed(0))
	}
	a := p.Fixed(p.next)
	p.next++
	return a, nil
}

// Remap gives a scenario address its stand-in in this topology, stable per address.
func (p *Plan) Remap(a netip.Addr) (netip.Addr, error) {
	if r, ok := p.remap[a]; ok {
		return r, nil
	}
	r, err := p.Next()
	if err != nil {
		return r, err
	}
	p.remap[a] = r
	return r, nil
}
