package live

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/mailflow/mailflow/profiles"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/targets/internal/fixtureset"
	"github.com/mailflow/mailflow/targets/internal/mtaconf"
)

// Queue timers the printed settings ask for: retries within a spec's patience,
// warnings and expiry within a run's.
const (
	RetryInterval = 10 * time.Second
	DelayWarning  = time.Minute
	Expiry        = 5 * time.Minute
)

// ErrPoolExhausted is a world that needs more addresses than --listen gives.
var ErrPoolExhausted = errors.New("more addresses than --listen gives")

// plan gives a world's fixtures and clients their addresses from the pool, always in
// the same order for the same scenario: the fake DNS first, then the Hub stand-ins,
// the Edge's IP-literal smart hosts and its client ranges (what the MTA's
// configuration names), then the rest as the world asks. Two scenarios that configure
// the Edge alike therefore put what the MTA sees at the same addresses.
// It is a fixtureset.Allocator.
//
// A world that needs more addresses than the pool has gets stand-ins past its end
// (overflow), so that its configuration can still be compared: it runs nowhere.
type plan struct {
	pool     []netip.Addr
	next     int
	remap    map[netip.Addr]netip.Addr
	clients  map[netip.Prefix]netip.Addr
	uses     []Use
	overflow int
}

// overflowBase is where the stand-ins past the pool's end come from: TEST-NET-2
// (RFC 5737), which no host of a run has.
var overflowBase = netip.MustParseAddr("198.51.100.0")

// Use is what the harness serves or dials from at an address of the pool.
type Use struct {
	Addr netip.Addr
	What string
}

func newPlan(pool Pool, host netip.Addr) *plan {
	p := &plan{remap: map[netip.Addr]netip.Addr{}, clients: map[netip.Prefix]netip.Addr{}}
	for _, a := range pool.Addrs {
		if a != host {
			p.pool = append(p.pool, a)
		}
	}
	return p
}

// take gives the next free address and records what it is for.
func (p *plan) take(what string) (netip.Addr, error) {
	if p.next >= len(p.pool) {
		if p.overflow >= 254 {
			return netip.Addr{}, fmt.Errorf("%s: %w (%d)", what, ErrPoolExhausted, len(p.pool))
		}
		p.overflow++
		b := overflowBase.As4()
		b[3] = byte(p.overflow)
		return netip.AddrFrom4(b), nil
	}
	a := p.pool[p.next]
	p.next++
	p.uses = append(p.uses, Use{Addr: a, What: what})
	return a, nil
}

// short says how many addresses the world lacks, and what the first was for: an
// error wrapping ErrPoolExhausted, or nil.
func (p *plan) short() error {
	if p.overflow == 0 {
		return nil
	}
	return fmt.Errorf("it needs %d addresses: %w (%d)", len(p.pool)+p.overflow, ErrPoolExhausted, len(p.pool))
}

// Next gives a fresh address (fixtureset.Allocator).
func (p *plan) Next() (netip.Addr, error) { return p.take("fake Internet host") }

// Remap gives a scenario address its pool address, stable per address
// (fixtureset.Allocator).
func (p *plan) Remap(a netip.Addr) (netip.Addr, error) {
	if r, ok := p.remap[a]; ok {
		return r, nil
	}
	r, err := p.take("scenario address " + a.String())
	if err != nil {
		return r, err
	}
	p.remap[a] = r
	return r, nil
}

// client gives a scenario's client range its address: one address of the pool
// stands for the whole range, so the MTA trusts exactly that address.
func (p *plan) client(pfx netip.Prefix) (netip.Addr, error) {
	pfx = pfx.Masked()
	if a, ok := p.clients[pfx]; ok {
		return a, nil
	}
	a, err := p.take("client in " + pfx.String())
	if err != nil {
		return a, err
	}
	p.clients[pfx] = a
	return a, nil
}

// world is a scenario moved onto the pool, with the configuration an MTA playing its
// Edge needs; nothing runs yet.
type world struct {
	s     *scenario.Scenario
	edge  *scenario.Server
	plan  *plan
	zone  *fixtureset.Zone
	dns   netip.Addr
	hubs  []netip.Addr
	data  profiles.Data
	check edgeConfig
}

// ErrNoEdge is a scenario with no Edge, or more than one, for the host to play.
var ErrNoEdge = errors.New("the live host plays the scenario's Edge, so the scenario needs exactly one server with role: edge")

// prepare moves a clone of orig onto the pool; host is the MTA's own address, which
// the Edge's name resolves to.
func prepare(orig *scenario.Scenario, pool Pool, host netip.Addr, tls TLSFiles) (*world, error) {
	s, err := orig.Clone()
	if err != nil {
		return nil, err
	}
	edges := s.ServersByRole(scenario.RoleEdge)
	if len(edges) != 1 {
		return nil, fmt.Errorf("%s: %w (it has %d)", orig.File, ErrNoEdge, len(edges))
	}
	w := &world{s: s, edge: edges[0], plan: newPlan(pool, host)}
	if w.dns, err = w.plan.take("fake DNS (port 53)"); err != nil {
		return nil, err
	}
	for _, h := range s.ServersByRole(scenario.RoleHub) {
		a, err := w.plan.take(h.Name + " stand-in (port 25): the organisation's mail")
		if err != nil {
			return nil, err
		}
		w.hubs = append(w.hubs, a)
	}
	for _, sc := range s.Org.SendConnectors {
		if !containsFold(sc.Source, w.edge.Name) {
			continue
		}
		for _, h := range sc.SmartHosts {
			sh, err := scenario.ParseSmartHost(h)
			if err != nil {
				continue
			}
			if ip, err := netip.ParseAddr(sh.Host); err == nil && ip.IsLoopback() {
				if _, err := w.plan.Remap(ip); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := w.remapClientRanges(); err != nil {
		return nil, err
	}
	if w.zone, err = fixtureset.Rewrite(s, w.plan); err != nil {
		return nil, err
	}
	internal := make([]string, len(w.hubs))
	for i, a := range w.hubs {
		internal[i] = a.String()
	}
	w.data = mtaconf.Data(s, w.edge, mtaconf.Inputs{DNS: w.dns, Internal: internal,
		Retry: RetryInterval, DelayWarning: DelayWarning, Expiry: Expiry,
		TLSCert: tls.Cert, TLSKey: tls.Key, CACert: tls.CA})
	w.check = edgeConfigOf(s, w.edge, w.data)
	return w, nil
}

// remapClientRanges moves the loopback client ranges the Edge's configuration names
// (its receive connectors' remote IP ranges, its IP Allow and Block lists) onto the
// pool, rewriting the scenario in place.
func (w *world) remapClientRanges() error {
	var lists [][]string
	for _, rc := range w.s.ReceiveConnectorsOf(w.edge.Name) {
		lists = append(lists, rc.RemoteIPRanges)
	}
	cf := &w.edge.Agents.ConnectionFilter
	lists = append(lists, cf.IPAllowList, cf.IPBlockList)
	for _, rs := range lists {
		for i, r := range rs {
			pfx, err := scenario.ParseIPRange(r)
			if err != nil || !pfx.Addr().IsLoopback() {
				continue // only loopback ranges are the harness's to move
			}
			a, err := w.plan.client(pfx)
			if err != nil {
				return err
			}
			rs[i] = netip.PrefixFrom(a, a.BitLen()).String()
		}
	}
	return nil
}

// edgeConfig is everything of a world that the MTA's configuration holds: the
// settings it renders from, the Edge's own settings and its receive connectors'.
// Two worlds with equal edgeConfigs can run on one configured host. What the
// target replaces whatever the scenario says (queue timers) and what names only
// the harness's side (server names) is left out.
type edgeConfig struct {
	Settings profiles.Data
	Edge     scenario.Server
	Receive  []scenario.ReceiveConnector
}

func edgeConfigOf(s *scenario.Scenario, edge *scenario.Server, d profiles.Data) edgeConfig {
	e := *edge
	e.Name, e.Site = "", ""
	e.RetryInterval, e.TransientRetryInterval, e.TransientRetryCount = 0, 0, nil
	e.DelayNotification, e.MessageExpiration, e.PoisonThreshold = 0, 0, nil
	e.ShadowRedundancy, e.ShadowHeartbeatTimeout, e.ShadowHeartbeatRetryCount, e.ShadowMessageAutoDiscard = nil, 0, nil, 0
	e.SuppressStateChanges = false
	c := edgeConfig{Settings: d, Edge: e}
	for _, rc := range s.ReceiveConnectorsOf(edge.Name) {
		r := *rc
		r.Server = ""
		c.Receive = append(c.Receive, r)
	}
	return c
}

// differences lists, in a stable order, each setting of want that got does not have,
// as "path want (configured: got)".
func differences(got, want edgeConfig) []string {
	g, w := map[string]string{}, map[string]string{}
	flatten("", reflect.ValueOf(got), g)
	flatten("", reflect.ValueOf(want), w)
	var keys []string
	for k := range w {
		keys = append(keys, k)
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			keys = append(keys, k)
		}
	}
	// What the MTA is configured with first, in the words of the printed settings'
	// source (profiles.Data), then the Edge's own settings, then its connectors'.
	rank := func(k string) int {
		switch {
		case strings.HasPrefix(k, "Settings."):
			return 0
		case strings.HasPrefix(k, "Edge."):
			return 1
		}
		return 2
	}
	sort.Slice(keys, func(i, j int) bool {
		if ri, rj := rank(keys[i]), rank(keys[j]); ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	var out []string
	for _, k := range keys {
		gv, gok := g[k]
		wv, wok := w[k]
		switch {
		case gok && wok && gv == wv:
		case !gok:
			out = append(out, fmt.Sprintf("%s %s (configured: none)", k, wv))
		case !wok:
			out = append(out, fmt.Sprintf("%s none (configured: %s)", k, gv))
		default:
			out = append(out, fmt.Sprintf("%s %s (configured: %s)", k, wv, gv))
		}
	}
	return out
}

// flatten writes each set leaf of v under its path (Settings.Listeners[1].Port):
// zero values are left out, so a setting absent and a setting at its zero compare
// alike.
func flatten(path string, v reflect.Value, out map[string]string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			flatten(path, v.Elem(), out)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).IsExported() {
				flatten(join(path, t.Field(i).Name), v.Field(i), out)
			}
		}
	case reflect.Slice, reflect.Array:
		if k := v.Type().Elem().Kind(); k != reflect.Struct && k != reflect.Pointer && v.Len() > 0 {
			// A list of plain values reads best whole: one missing entry would
			// otherwise shift every later index into a difference of its own.
			if k == reflect.String {
				out[path] = fmt.Sprintf("%q", v.Interface())
			} else {
				out[path] = fmt.Sprint(v.Interface())
			}
			return
		}
		for i := 0; i < v.Len(); i++ {
			flatten(fmt.Sprintf("%s[%d]", path, i), v.Index(i), out)
		}
	case reflect.Map:
		keys := v.MapKeys()
		for _, k := range keys {
			flatten(fmt.Sprintf("%s[%v]", path, k), v.MapIndex(k), out)
		}
	default:
		if v.IsZero() {
			return
		}
		if d, ok := v.Interface().(time.Duration); ok {
			out[path] = d.String()
			return
		}
		if d, ok := v.Interface().(scenario.Duration); ok {
			out[path] = d.D().String()
			return
		}
		if v.Kind() == reflect.String {
			out[path] = fmt.Sprintf("%q", v.String())
			return
		}
		out[path] = fmt.Sprint(v.Interface())
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// endpointPort is the port of the Edge's receive connector by name (25 when unknown
// or unset).
func endpointPort(s *scenario.Scenario, server, connector string) int {
	for _, rc := range s.ReceiveConnectorsOf(server) {
		if strings.EqualFold(rc.Name, connector) {
			if _, p, err := net.SplitHostPort(rc.Bind); err == nil {
				var n int
				if _, err := fmt.Sscan(p, &n); err == nil && n > 0 {
					return n
				}
			}
		}
	}
	return 25
}
