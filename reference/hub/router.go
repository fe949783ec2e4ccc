// Package hub is the Hub Transport role's routing: each recipient is categorized
// through the directory, then sent to its mailbox server when that lies in the Hub's
// own site, across sites along the least-cost path (through the hub sites on it) when
// not, or out through a send connector when it is external. In an Exchange 2003
// organisation the same holds of routing groups, over routing group connectors through
// their bridgeheads and by the Hub's link state (ROUTE-018, ROUTE-019, ROUTE-020,
// ROUTE-021). Server assembles the Hub role from the transport server
// (reference/transport) with this routing.
package hub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mailflow/mailflow/reference/categorizer"
	"github.com/mailflow/mailflow/reference/linkstate"
	"github.com/mailflow/mailflow/reference/replies"
	"github.com/mailflow/mailflow/reference/routing"
	"github.com/mailflow/mailflow/scenario"
)

// Kind says what a decision does with its recipients.
type Kind string

const (
	// KindMailbox delivers to a mailbox server in the Hub's own site (ROUTE-010).
	KindMailbox Kind = "mailbox"
	// KindSite relays to the Hubs of the next site on the path (ROUTE-005, ROUTE-006,
	// ROUTE-007).
	KindSite Kind = "site"
	// KindConnector sends through a send connector, or to the servers that source it.
	KindConnector Kind = "connector"
	// KindUnreachable holds recipients no send connector matches until they expire
	// (ROUTE-014).
	KindUnreachable Kind = "unreachable"
	// KindFailed is a permanent failure (unknown recipient, invalid object, no path).
	KindFailed Kind = "failed"
)

// IntraOrgConnector names the implicit connector between servers of the organisation.
const IntraOrgConnector = "Intra-Organization SMTP"

// Decision is where a group of recipients goes next, and why: the ROUTE trace event.
type Decision struct {
	Kind Kind
	// Key groups recipients into one transaction: the same next hop, the same key.
	Key string
	// Recipients are the addresses to send (primary, member or external addresses),
	// with the envelope recipient each came from.
	Recipients []Recipient
	// NextHop is the server, site or connector the recipients go to.
	NextHop    string
	Hosts      []string // "ip:port" of the next hop's servers, in fail-over order
	RequireTLS bool     // organisation peers only over STARTTLS (ROUTE-017)
	Connector  string
	// Domain, when set, is resolved by MX (a connector without smart hosts); Auth
	// authenticates to the connector's smart hosts.
	Domain string
	Auth   *scenario.Credentials
	Path   routing.Path // KindSite: the least-cost path and its deciding rule
	Reason string
	// Status and Reply of a KindFailed decision.
	Status, Reply string
	// Relay says the next hop is another transport server of the organisation (a Hub
	// of another site, or the source of a connector), which shadow redundancy covers.
	Relay bool
}

// Recipient is one address a decision sends to.
type Recipient struct {
	Address  string // what goes into RCPT TO
	Original string // the envelope recipient it came from (ORCPT when different)
}

// Categorizer resolves envelope recipients; *categorizer.Categorizer is one.
type Categorizer interface {
	Resolve(ctx context.Context, rcpts []string) ([]categorizer.Result, error)
}

// Router makes a Hub's routing decisions.
type Router struct {
	org    *Org
	server *scenario.Server
	site   string // the Hub's site, or its routing group
	cat    Categorizer
	// links is the Hub's link-state table when it is in a routing group; nil for an
	// Exchange 2007 Hub, which ignores link state (ROUTE-022).
	links *linkstate.Table
}

// Org is what every Hub of one organisation derives alike from the scenario and the
// servers' addresses. It never changes once made, so Hubs started together share one:
// each making its own made starting them grow with Hubs times servers.
type Org struct {
	scenario *scenario.Scenario
	graph    *routing.Graph
	peers    map[string]string // lower-case server name -> "ip:port"
	// links carries link state between the Hubs of routing groups started together,
	// or through a transport to Hubs elsewhere (ROUTE-020); nil in an organisation of
	// sites alone.
	links *linkstate.Net
	// gates are the servers' connection gates (WithGates); nil: none.
	gates func(server string) func(addr string) error
}

// OrgOption configures NewOrg.
type OrgOption func(*orgOptions)

type orgOptions struct {
	links linkstate.Transport
	gates func(server string) func(addr string) error
}

// WithGates gives each server of the organisation the gate its connections are asked
// through (hub.Config.Gate), so a bridgehead trying a connector again after the
// minor-change delay finds the same path cut as its queue does.
func WithGates(gates func(server string) func(addr string) error) OrgOption {
	return func(o *orgOptions) { o.gates = gates }
}

// WithLinkTransport sends the link state of a Hub that runs in a process of its own
// to the other Hubs of the routing groups (reference/linkwire); without it link state
// passes in memory between the Hubs sharing the Org.
func WithLinkTransport(t linkstate.Transport) OrgOption {
	return func(o *orgOptions) { o.links = t }
}

// NewOrg derives the routing state of the organisation of s; peers gives the SMTP
// address of every server of the organisation by name.
func NewOrg(s *scenario.Scenario, peers map[string]string, opts ...OrgOption) (*Org, error) {
	var oo orgOptions
	for _, f := range opts {
		f(&oo)
	}
	g, err := routing.NewGraph(s)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	p := make(map[string]string, len(peers))
	for k, v := range peers {
		p[strings.ToLower(k)] = v
	}
	o := &Org{scenario: s, graph: g, peers: p, gates: oo.gates}
	if s.Org.Routing == scenario.RoutingGroups {
		var lo []linkstate.Option
		if oo.links != nil {
			lo = append(lo, linkstate.WithTransport(oo.links))
		}
		o.links = linkstate.New(s, g, o.probe, lo...)
	}
	return o, nil
}

// probe says whether any of the bridgeheads accepts a connection from server from: a
// connector marked down is tried this way after the minor-change delay.
func (o *Org) probe(ctx context.Context, from string, bridgeheads []string) bool {
	for _, b := range bridgeheads {
		addr, ok := o.peers[strings.ToLower(b)]
		if !ok {
			continue
		}
		if o.gates != nil {
			if gate := o.gates(from); gate != nil && gate(addr) != nil {
				continue
			}
		}
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return true
		}
	}
	return false
}

// LinkState is the organisation's link-state traffic; nil without routing groups.
func (o *Org) LinkState() *linkstate.Net { return o.links }

// Router is the router of one Hub of the organisation.
func (o *Org) Router(server string, cat Categorizer) (*Router, error) {
	srv, ok := o.scenario.Server(server)
	if !ok {
		return nil, fmt.Errorf("hub: no server %q", server)
	}
	r := &Router{org: o, server: srv, site: o.graph.SiteOf(srv.Name), cat: cat}
	if o.links != nil {
		r.links = o.links.Table(srv.Name)
	}
	return r, nil
}

// NewRouter is the router of one Hub. peers gives the SMTP address of every other
// server of the organisation by name.
func NewRouter(s *scenario.Scenario, server string, cat Categorizer, peers map[string]string) (*Router, error) {
	o, err := NewOrg(s, peers)
	if err != nil {
		return nil, err
	}
	return o.Router(server, cat)
}

// Route categorizes rcpts and decides each one's next hop. A temporary failure of the
// directory fails the whole call (the message stays queued, CAT-006); everything else
// is a decision, failures included.
func (r *Router) Route(ctx context.Context, rcpts []string, size int) ([]Decision, error) {
	results, err := r.cat.Resolve(ctx, rcpts)
	if err != nil {
		return nil, err
	}
	byKey := map[string]*Decision{}
	var keys []string
	add := func(d Decision, rc Recipient) {
		if d.Kind == KindFailed {
			d.Key = "failed:" + rc.Address
		}
		g, ok := byKey[d.Key]
		if !ok {
			g = &d
			byKey[d.Key] = g
			keys = append(keys, d.Key)
		}
		g.Recipients = append(g.Recipients, rc)
	}
	for _, res := range results {
		rc := Recipient{Address: res.Address, Original: res.Original}
		switch res.Kind {
		case categorizer.KindMailbox:
			add(r.toMailbox(res.Server, size), rc)
		case categorizer.KindExternal:
			add(r.toConnector(res.Address, size), rc)
		default:
			add(Decision{Kind: KindFailed, Status: res.Status, Reply: fmt.Sprintf("550 %s %s", res.Status, res.Reason), Reason: res.Reason}, rc)
		}
	}
	sort.Strings(keys)
	out := make([]Decision, 0, len(keys))
	for _, k := range keys {
		out = append(out, *byKey[k])
	}
	return out, nil
}

func (r *Router) hostsOf(servers ...string) []string {
	var out []string
	for _, s := range servers {
		if a, ok := r.org.peers[strings.ToLower(s)]; ok {
			out = append(out, a)
		}
	}
	return out
}

// toMailbox routes to a mailbox server: directly in the Hub's own site, otherwise to
// the first relay site of the least-cost path.
func (r *Router) toMailbox(server string, size int) Decision {
	mbxSite := r.org.graph.SiteOf(server)
	if strings.EqualFold(mbxSite, r.site) {
		return Decision{Kind: KindMailbox, Key: "mailbox:" + strings.ToLower(server), NextHop: server,
			Hosts: r.hostsOf(server), RequireTLS: true, Connector: IntraOrgConnector,
			Reason: fmt.Sprintf("mailbox on %s in the Hub's own %s %s: local delivery", server, r.locality(), r.site)}
	}
	if r.org.graph.IsRoutingGroup(r.site) {
		return r.toGroup(server, mbxSite, size)
	}
	p, err := r.org.graph.Path(r.site, mbxSite)
	if err != nil {
		return Decision{Kind: KindFailed, Status: "5.4.4", Reply: "550 5.4.4 " + err.Error(), Reason: err.Error()}
	}
	if d, ok := tooLarge(p, size, "site link"); ok {
		return d
	}
	// Towards a routing group, an Exchange 2007 Hub takes the least-cost path by the
	// connectors' costs alone and never a link state: a connector the 2003 side holds
	// down changes nothing here (ROUTE-022).
	if k := slices.IndexFunc(p.Connectors, func(c string) bool { return c != "" }); k >= 0 {
		return r.overConnector(p, k, fmt.Sprintf("mailbox on %s in %s: %s; an Exchange 2007 Hub routes by cost and ignores link state", server, r.where(mbxSite), p))
	}
	next := p.NextHop()
	// The next relay site's Hubs first, then, backing off hop by hop towards the
	// source, the Hubs of each site before it on the path: when the relay site cannot
	// be reached the message waits at the closest site that can (ROUTE-008).
	var hosts []string
	for i := len(p.Sites) - 1; i >= 1; i-- {
		if i > indexOf(p.Sites, next) {
			continue
		}
		hosts = append(hosts, r.hostsOf(r.hubsIn(p.Sites[i])...)...)
	}
	return Decision{Kind: KindSite, Key: "site:" + strings.ToLower(next), NextHop: next,
		Hosts: hosts, RequireTLS: true, Connector: IntraOrgConnector, Path: p, Relay: true,
		Reason: fmt.Sprintf("mailbox on %s in site %s: %s", server, mbxSite, p)}
}

// locality is what the Hub routes from: a site, or a routing group (ROUTE-018).
func (r *Router) locality() string {
	if r.org.graph.IsRoutingGroup(r.site) {
		return "routing group"
	}
	return "site"
}

// tooLarge is the 5.3.4 failure of a message over the size limit of a link on p
// (ROUTE-016).
func tooLarge(p routing.Path, size int, what string) (Decision, bool) {
	if p.MaxMessageSize <= 0 || size <= p.MaxMessageSize {
		return Decision{}, false
	}
	why := fmt.Sprintf("message of %d bytes exceeds the %d-byte limit of a %s on %s", size, p.MaxMessageSize, what, strings.Join(p.Sites, " -> "))
	return Decision{Kind: KindFailed, Status: "5.3.4", Reply: "550 5.3.4 " + why, Reason: why, Path: p}, true
}

// toGroup routes from a routing group to a mailbox server in another (ROUTE-019): over
// the first connector of the least-cost path among the connectors this Hub holds up
// (ROUTE-020), to its remote bridgeheads when this Hub is one of its local
// bridgeheads, to those local bridgeheads otherwise. When every path has a connector
// down, the least-cost path is kept and the message waits on it.
func (r *Router) toGroup(server, group string, size int) Decision {
	down := r.links.Down()
	p, err := r.org.graph.PathAvoiding(r.site, group, down)
	held := ""
	if err != nil && len(down) > 0 {
		p, err = r.org.graph.Path(r.site, group)
		held = "; every path has a connector down: the least-cost path is kept"
	}
	if err != nil {
		return Decision{Kind: KindFailed, Status: "5.4.4", Reply: "550 5.4.4 " + err.Error(), Reason: err.Error()}
	}
	if d, ok := tooLarge(p, size, "connector"); ok {
		return d
	}
	why := fmt.Sprintf("mailbox on %s in %s: %s%s", server, r.where(group), p, held)
	if r.links != nil {
		why += "; link state: " + r.links.String()
	}
	return r.overConnector(p, 0, why)
}

func (r *Router) where(node string) string {
	if r.org.graph.IsRoutingGroup(node) {
		return "routing group " + node
	}
	return "site " + node
}

// overConnector sends towards the connector at index k of p, whose from end the
// path reaches over site links alone: a local bridgehead of it sends to its remote
// bridgeheads, any other Hub to its local bridgeheads. An Exchange 2007 Hub relays
// straight to the bridgeheads of the interop connector, wherever their site.
func (r *Router) overConnector(p routing.Path, k int, why string) Decision {
	c, _ := r.org.graph.Connector(p.Connectors[k])
	if k == 0 && slices.ContainsFunc(c.LocalBridgeheads, func(b string) bool { return strings.EqualFold(b, r.server.Name) }) {
		return Decision{Kind: KindSite, Key: "rgc:" + strings.ToLower(c.Name), NextHop: c.To,
			Hosts: r.hostsOf(c.RemoteBridgeheads...), RequireTLS: true, Connector: c.Name, Path: p, Relay: true,
			Reason: fmt.Sprintf("%s; over %s to its remote bridgeheads %s", why, c.Name, strings.Join(c.RemoteBridgeheads, ", "))}
	}
	local := c.LocalBridgeheads
	if len(local) == 0 {
		local = r.hubsIn(c.From)
	}
	return Decision{Kind: KindSite, Key: "bridgehead:" + strings.ToLower(c.Name), NextHop: local[0],
		Hosts: r.hostsOf(local...), RequireTLS: true, Connector: IntraOrgConnector, Path: p, Relay: true,
		Reason: fmt.Sprintf("%s; to %s's local bridgeheads %s", why, c.Name, strings.Join(local, ", "))}
}

// ConnectorOfHop is the routing group connector a hop crosses, "" for any other.
func ConnectorOfHop(key string) string {
	name, _ := strings.CutPrefix(key, "rgc:")
	if name == key {
		return ""
	}
	return name
}

// toConnector routes an external address through send-connector selection; a connector
// sourced elsewhere (on the Edge, say) is reached through its source servers, the one
// selection priced nearest first.
func (r *Router) toConnector(addr string, size int) Decision {
	domain := addr
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		domain = addr[i+1:]
	}
	ch, err := routing.SelectConnector(r.org.scenario.Org.SendConnectors, routing.Origin{Server: r.server.Name, Graph: r.org.graph}, domain, size)
	switch {
	case errors.Is(err, routing.ErrTooLarge):
		return Decision{Kind: KindFailed, Status: "5.3.4", Reply: replies.TooLargeForConnectors(err), Reason: err.Error()}
	case err != nil:
		return Decision{Kind: KindUnreachable, Key: "unreachable", NextHop: "Unreachable", Reply: replies.Unreachable(err), Reason: err.Error()}
	}
	c := ch.Connector
	if len(c.Source) == 0 || strings.EqualFold(ch.Source, r.server.Name) {
		d := Decision{Kind: KindConnector, Key: "conn:" + c.Name, NextHop: c.Name, Hosts: c.SmartHosts,
			RequireTLS: c.TLS, Connector: c.Name, Auth: c.Auth, Reason: ch.Reason}
		if len(c.SmartHosts) == 0 {
			d.Domain = domain // MX delivery: one session per domain
			d.Key += ":" + strings.ToLower(domain)
		}
		return d
	}
	sources := []string{ch.Source}
	for _, s := range c.Source {
		if !strings.EqualFold(s, ch.Source) {
			sources = append(sources, s)
		}
	}
	return Decision{Kind: KindConnector, Key: "conn:" + c.Name, NextHop: ch.Source,
		Hosts: r.hostsOf(sources...), RequireTLS: true, Connector: c.Name, Relay: true,
		Reason: fmt.Sprintf("%s; sourced on %s (%s)", ch.Reason, ch.Source, ch.Locality)}
}

// RouteResolved decides next hops for recipients the categorizer has already resolved:
// addresses in accepted authoritative or internal-relay domains are looked up again
// (from the cache) for their mailbox server; anything else is external.
func (r *Router) RouteResolved(ctx context.Context, rcpts []string, size int) ([]Decision, error) {
	var internal, external []string
	for _, rc := range rcpts {
		domain := ""
		if i := strings.LastIndexByte(rc, '@'); i >= 0 {
			domain = rc[i+1:]
		}
		if ad, ok := r.org.scenario.AcceptedDomain(domain); ok && ad.Type != scenario.ExternalRelay {
			internal = append(internal, rc)
		} else {
			external = append(external, rc)
		}
	}
	ds, err := r.Route(ctx, internal, size)
	if err != nil {
		return nil, err
	}
	byKey := map[string]int{}
	for i, d := range ds {
		byKey[d.Key] = i
	}
	for _, rc := range external {
		d := r.toConnector(rc, size)
		if d.Kind == KindFailed || d.Kind == KindUnreachable {
			d.Key = string(d.Kind) + ":" + rc
		}
		if i, ok := byKey[d.Key]; ok {
			ds[i].Recipients = append(ds[i].Recipients, Recipient{Address: rc, Original: rc})
			continue
		}
		d.Recipients = []Recipient{{Address: rc, Original: rc}}
		byKey[d.Key] = len(ds)
		ds = append(ds, d)
	}
	return ds, nil
}

// hubsIn are the Hub servers of a site or routing group, by name.
func (r *Router) hubsIn(site string) []string {
	var hubs []string
	for _, s := range r.org.scenario.ServersByRole(scenario.RoleHub) {
		if strings.EqualFold(r.org.graph.SiteOf(s.Name), site) {
			hubs = append(hubs, s.Name)
		}
	}
	sort.Strings(hubs)
	return hubs
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if strings.EqualFold(x, s) {
			return i
		}
	}
	return -1
}
