package inprocess

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// Plan hands out the loopback addresses of one topology: 127.B.C.x where B is chosen by
// the caller (per parallel process) and C rotates per topology within the process.
// Another process may use the same B (two test binaries run at once), so a plan claims
// each /24 it uses by holding a listener on .254 of it, and moves on to the next /24
// when that is taken. A topology starts with one /24 and claims further ones only when
// it has more servers and hosts than one holds.
type Plan struct {
	block  byte
	slices [][3]byte // claimed /24s in order; the first holds the fixed addresses
	next   int       // next host byte in the last slice
	remap  map[netip.Addr]netip.Addr
	locks  []net.Listener
}

// lockPort is where a plan's claim on a /24 listens (unprivileged, unused otherwise).
const lockPort = "2524"

// Host bytes handed out by Next: the first slice keeps .1-.9 for Fixed addresses, a
// further slice has no fixed addresses.
const (
	firstHost      = 10
	firstHostExtra = 1
	lastHost       = 254
)

// errNoSlice means every /24 of the block is held.
var errNoSlice = errors.New("no free /24")

// Release gives every claimed /24 back.
func (p *Plan) Release() {
	for _, l := range p.locks {
		l.Close()
	}
	p.locks = nil
}

var (
	sliceMu   sync.Mutex
	sliceNext = map[byte]byte{}
)

// NewPlan claims the next free /24 under 127.block.0.0/16 for one topology.
func NewPlan(block byte) (*Plan, error) {
	p := &Plan{block: block, remap: map[netip.Addr]netip.Addr{}}
	if err := p.claim(); err != nil {
		return nil, err
	}
	p.next = firstHost
	return p, nil
}

// claim takes the next /24 of the block that no other plan, in this process or
// another, holds.
func (p *Plan) claim() error {
	for tries := 0; tries < 256; tries++ {
		sliceMu.Lock()
		c := sliceNext[p.block]
		sliceNext[p.block] = c + 1
		sliceMu.Unlock()
		l, err := net.Listen("tcp", net.JoinHostPort(netip.AddrFrom4([4]byte{127, p.block, c, lastHost}).String(), lockPort))
		if err != nil {
			continue // held by another process
		}
		p.slices = append(p.slices, [3]byte{127, p.block, c})
		p.locks = append(p.locks, l)
		return nil
	}
	return fmt.Errorf("address plan: %w in 127.%d.0.0/16", errNoSlice, p.block)
}

// Fixed returns the address .n of the topology's first /24 (DNS .1, LDAP .2).
func (p *Plan) Fixed(n byte) netip.Addr {
	b := p.slices[0]
	return netip.AddrFrom4([4]byte{b[0], b[1], b[2], n})
}

// Next returns a fresh address, claiming another /24 when the current one is used up.
func (p *Plan) Next() (netip.Addr, error) {
	if p.next > lastHost {
		if err := p.claim(); err != nil {
			return netip.Addr{}, fmt.Errorf("address plan %v: slice exhausted: %w", p.Fixed(0), err)
		}
		p.next = firstHostExtra
	}
	b := p.slices[len(p.slices)-1]
	a := netip.AddrFrom4([4]byte{b[0], b[1], b[2], byte(p.next)})
	p.next++
	return a, nil
}

// Prefixes are the /24s the plan has claimed so far, the first one first: every
// address it handed out lies in one of them.
func (p *Plan) Prefixes() []netip.Prefix {
	out := make([]netip.Prefix, len(p.slices))
	for i, b := range p.slices {
		out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{b[0], b[1], b[2], 0}), 24)
	}
	return out
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
