// Package dockernet is the network a Docker target's world lives on: a bridge network
// the test creates with its own /24, whose host side also carries the fixtures' and the
// test clients' addresses (added to the bridge interface), so a fake Internet host, the
// fake DNS and a client "from 127.77.0.0/16" each have their own address that the
// containers reach directly. Removing the network removes the bridge and every address.
//
// Adding addresses needs CAP_NET_ADMIN (root), as creating network namespaces does.
package dockernet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tcnet "github.com/testcontainers/testcontainers-go/network"

	"github.com/mailflow/mailflow/scenario"
)

// Label marks every network this package creates (for `docker network ls --filter`).
const Label = "org.mailflow.network"

// Layout of the /24: .1 is the gateway, containers take .10-.99, fixtures .100-.159,
// and each client range a scenario names gets a /28 from .160 up.
const (
	firstContainer = 10
	lastContainer  = 99
	firstFixture   = 100
	lastFixture    = 159
	firstClient    = 160
)

// Net is one created network.
type Net struct {
	*testcontainers.DockerNetwork
	Bridge string
	Subnet netip.Prefix

	mu        sync.Mutex
	nextCtr   int
	nextFix   int
	clients   map[netip.Prefix]netip.Prefix
	nextBlock int
	clientSeq int
	added     map[netip.Addr]bool
	remap     map[netip.Addr]netip.Addr
}

// ErrNoDocker says no Docker engine answers.
var ErrNoDocker = errors.New("no Docker engine answers")

// New creates a network with a free 172.29.X.0/24.
func New(ctx context.Context) (*Net, error) {
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("dockernet: the ip command (iproute2) is needed to give fixtures addresses: %w", err)
	}
	// Specs of parallel runs create networks at once, and Docker lets a network be
	// created with a subnet that overlaps another's: two bridges routing one /24 then
	// reach neither reliably. Choosing a subnet no route on this host uses yet, and
	// creating it, is done under one lock for every process of the host.
	unlock, err := lockSubnets()
	if err != nil {
		return nil, err
	}
	defer unlock()
	used, err := routedSubnets(ctx)
	if err != nil {
		return nil, err
	}
	start := rand.IntN(256)
	var lastErr error
	for i, tried := 0, 0; i < 256 && tried < 32; i++ {
		x := (start + i*7) % 256
		subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 29, byte(x), 0}), 24)
		if used.overlaps(subnet) {
			continue
		}
		tried++
		nw, err := tcnet.New(ctx,
			tcnet.WithDriver("bridge"),
			tcnet.WithLabels(Labels(map[string]string{Label: "1"})),
			tcnet.WithIPAM(&network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet, Gateway: at(subnet, 1)}}}),
		)
		if err != nil {
			lastErr = err
			if strings.Contains(err.Error(), "overlap") || strings.Contains(err.Error(), "already") {
				continue
			}
			return nil, classify(err)
		}
		// Docker names a user-defined bridge br-<first 12 hex digits of the network ID>
		// (testcontainers-go does not pass a chosen name through).
		bridge := "br-" + nw.ID[:12]
		return &Net{DockerNetwork: nw, Bridge: bridge, Subnet: subnet, nextCtr: firstContainer, nextFix: firstFixture,
			clients: map[netip.Prefix]netip.Prefix{}, nextBlock: firstClient, added: map[netip.Addr]bool{}, remap: map[netip.Addr]netip.Addr{}}, nil
	}
	return nil, fmt.Errorf("dockernet: no free subnet in 172.29.0.0/16: %w", lastErr)
}

// subnets are the IPv4 prefixes this host routes.
type subnets []netip.Prefix

func (s subnets) overlaps(p netip.Prefix) bool {
	for _, q := range s {
		if q.Overlaps(p) && q.Bits() > 0 {
			return true
		}
	}
	return false
}

// routedSubnets reads the host's IPv4 routes (every Docker bridge network has one for
// its subnet, whoever made it).
func routedSubnets(ctx context.Context) (subnets, error) {
	out, err := exec.CommandContext(ctx, "ip", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		return nil, fmt.Errorf("dockernet: reading the host's routes (ip -4 route): %w", err)
	}
	return parseRoutes(string(out)), nil
}

// parseRoutes reads the destinations of `ip -4 route show table all`.
func parseRoutes(out string) subnets {
	var s subnets
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		dst := f[0]
		if dst == "local" || dst == "broadcast" || dst == "unicast" {
			if len(f) < 2 {
				continue
			}
			dst = f[1]
		}
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		if p, err := netip.ParsePrefix(dst); err == nil {
			s = append(s, p.Masked())
		}
	}
	return s
}

// lockSubnets takes the host-wide lock under which a network's subnet is chosen and
// the network created.
func lockSubnets() (func(), error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "mailflow-dockernet.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("dockernet: subnet lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("dockernet: subnet lock: %w", err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func classify(err error) error {
	if strings.Contains(err.Error(), "Cannot connect to the Docker daemon") || strings.Contains(err.Error(), "docker host") ||
		strings.Contains(err.Error(), "rootless Docker not found") {
		return fmt.Errorf("dockernet: %w: %v", ErrNoDocker, err)
	}
	return fmt.Errorf("dockernet: %w", err)
}

func at(p netip.Prefix, n byte) netip.Addr {
	b := p.Addr().As4()
	b[3] = n
	return netip.AddrFrom4(b)
}

// Gateway is the host's own address on the network.
func (n *Net) Gateway() netip.Addr { return at(n.Subnet, 1) }

// Container gives the next container address.
func (n *Net) Container() (netip.Addr, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nextCtr > lastContainer {
		return netip.Addr{}, fmt.Errorf("dockernet %s: more than %d containers", n.Name, lastContainer-firstContainer+1)
	}
	a := at(n.Subnet, byte(n.nextCtr))
	n.nextCtr++
	return a, nil
}

// Next gives a fresh fixture address, already on the bridge (fixtureset.Allocator).
func (n *Net) Next() (netip.Addr, error) {
	n.mu.Lock()
	if n.nextFix > lastFixture {
		n.mu.Unlock()
		return netip.Addr{}, fmt.Errorf("dockernet %s: more than %d fixtures", n.Name, lastFixture-firstFixture+1)
	}
	a := at(n.Subnet, byte(n.nextFix))
	n.nextFix++
	n.mu.Unlock()
	return a, n.AddAddr(a)
}

// Remap gives a scenario address its fixture address, stable per address.
func (n *Net) Remap(a netip.Addr) (netip.Addr, error) {
	n.mu.Lock()
	r, ok := n.remap[a]
	n.mu.Unlock()
	if ok {
		return r, nil
	}
	r, err := n.Next()
	if err != nil {
		return r, err
	}
	n.mu.Lock()
	n.remap[a] = r
	n.mu.Unlock()
	return r, nil
}

// ClientRange gives a scenario's client range (127.77.0.0/16, say) its /28 on this
// network; the same range always gets the same block.
func (n *Net) ClientRange(p netip.Prefix) (netip.Prefix, error) {
	p = p.Masked()
	n.mu.Lock()
	defer n.mu.Unlock()
	if b, ok := n.clients[p]; ok {
		return b, nil
	}
	if n.nextBlock > 240 {
		return netip.Prefix{}, fmt.Errorf("dockernet %s: more than 6 client ranges", n.Name)
	}
	b := netip.PrefixFrom(at(n.Subnet, byte(n.nextBlock)), 28)
	n.nextBlock += 16
	n.clients[p] = b
	return b, nil
}

// ClientIn gives an address inside the block of client range p, on the bridge, so a
// test can dial from it; successive calls rotate through the block.
func (n *Net) ClientIn(p netip.Prefix) (netip.Addr, error) {
	b, err := n.ClientRange(p)
	if err != nil {
		return netip.Addr{}, err
	}
	n.mu.Lock()
	n.clientSeq++
	seq := n.clientSeq
	n.mu.Unlock()
	a := b.Addr().As4()
	a[3] += byte(1 + seq%14)
	addr := netip.AddrFrom4(a)
	return addr, n.AddAddr(addr)
}

// StaticIP is a testcontainers EndpointSettingsModifier that gives a container the
// address ip on network nw.
func StaticIP(nw string, ip netip.Addr) func(map[string]*network.EndpointSettings) {
	return func(m map[string]*network.EndpointSettings) {
		es := m[nw]
		if es == nil {
			es = &network.EndpointSettings{}
			m[nw] = es
		}
		es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ip}
	}
}

// AddAddr puts a on the host side of the bridge (once).
func (n *Net) AddAddr(a netip.Addr) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.added[a] {
		return nil
	}
	out, err := exec.Command("ip", "addr", "add", a.String()+"/32", "dev", n.Bridge).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "File exists") {
		return fmt.Errorf("dockernet: ip addr add %s dev %s: %v: %s", a, n.Bridge, err, strings.TrimSpace(string(out)))
	}
	n.added[a] = true
	return nil
}

// Remove removes the network (its bridge and every address on it). Docker refuses
// while an endpoint is still attached, which it can be for a moment after its container
// was removed (a container killed and restarted, say), so a refusal is retried for up
// to ten seconds before it is reported.
func (n *Net) Remove(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := n.DockerNetwork.Remove(ctx)
		if err == nil {
			return nil
		}
		if strings.Contains(err.Error(), "active endpoints") {
			// An endpoint can outlive its container (killed, or removed while the
			// engine is busy): take what is left off the network, then try again.
			disconnectAll(ctx, n.ID)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if strings.Contains(err.Error(), "active endpoints") && attached(context.WithoutCancel(ctx), n.ID) == 0 {
				return fmt.Errorf("dockernet: remove %s: %w (%v)", n.Name, ErrStaleEndpointCount, err)
			}
			return fmt.Errorf("dockernet: remove %s: %w", n.Name, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ErrStaleEndpointCount is a network the engine refuses to remove for active endpoints
// while it lists none: Docker 20.10 counts a network's endpoints apart from the
// endpoints themselves, and a count left above zero (moby/moby#42119) keeps the empty
// network until the engine restarts and recounts. Nothing of the test is left on it.
var ErrStaleEndpointCount = errors.New("the engine counts endpoints on the network that it no longer has (moby/moby#42119), so it keeps the empty network until it restarts")

// attached is how many endpoints the engine lists on network id; -1 when it cannot
// tell.
func attached(ctx context.Context, id string) int {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "network", "inspect", "-f", "{{len .Containers}}", id).Output()
	if err != nil {
		return -1
	}
	var n int
	if _, err := fmt.Sscan(string(out), &n); err != nil {
		return -1
	}
	return n
}

// disconnectAll force-disconnects every endpoint the engine still lists on network id.
func disconnectAll(ctx context.Context, id string) {
	out, err := exec.CommandContext(ctx, "docker", "network", "inspect", "-f", "{{range $id, $c := .Containers}}{{$id}} {{end}}", id).Output()
	if err != nil {
		return
	}
	for _, c := range strings.Fields(string(out)) {
		_ = exec.CommandContext(ctx, "docker", "network", "disconnect", "--force", id, c).Run()
	}
}

// RemapClientRanges moves the loopback remote_ip_ranges of the scenario's receive
// connectors, and the Edges' IP Allow and Block lists, (rewritten in place) to this
// network's client blocks, where ClientIn finds them again.
func (n *Net) RemapClientRanges(s *scenario.Scenario) error {
	for i := range s.Org.ReceiveConnectors {
		if err := n.remapRanges(s.Org.ReceiveConnectors[i].RemoteIPRanges); err != nil {
			return err
		}
	}
	for i := range s.Org.Servers {
		cf := &s.Org.Servers[i].Agents.ConnectionFilter
		for _, rs := range [][]string{cf.IPAllowList, cf.IPBlockList} {
			if err := n.remapRanges(rs); err != nil {
				return err
			}
		}
	}
	return nil
}

func (n *Net) remapRanges(rs []string) error {
	for j, r := range rs {
		p, err := scenario.ParseIPRange(r)
		if err != nil || !p.Addr().IsLoopback() {
			continue // ranges "a-b" and other forms, and routable ranges, stay as written
		}
		b, err := n.ClientRange(p)
		if err != nil {
			return err
		}
		rs[j] = b.String()
	}
	return nil
}
