// Package hub is the Hub Transport role's routing: each recipient is categorized
// through the directory, then sent to its mailbox server when that lies in the Hub's
// own site, across sites along the least-cost path (through the hub sites on it) when
// not, or out through a send connector when it is external. Server assembles the Hub
// role from the transport server (reference/transport) with this routing.
package hub

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/mailflow/mailflow/reference/categorizer"
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
	site   string
	cat    Categorizer
}

// Org is what every Hub of one organisation derives alike from the scenario and the
// servers' addresses. It never changes once made, so Hubs started together share one:
// each making its own made starting them grow with Hubs times servers.
type Org struct {
	scenario *scenario.Scenario
	graph    *routing.Graph
	peers    map[string]string // lower-case server name -> "ip:port"
}

// NewOrg derives the routing state of the organisation of s; peers gives the SMTP
// address of every server of the organisation by name.
func NewOrg(s *scenario.Scenario, peers map[string]string) (*Org, error) {
	g, err := routing.NewGraph(s)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	p := make(map[string]string, len(peers))
	for k, v := range peers {
		p[strings.ToLower(k)] = v
	}
	return &Org{scenario: s, graph: g, peers: p}, nil
}

// Router is the router of one Hub of the organisation.
func (o *Org) Router(server string, cat Categorizer) (*Router, error) {
	srv, ok := o.scenario.Server(server)
	if !ok {
		return nil, fmt.Errorf("hub: no server %q", server)
	}
	return &Router{org: o, server: srv, site: o.graph.SiteOf(srv.Name), cat: cat}, nil
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
			Reason: fmt.Sprintf("mailbox on %s in the Hub's own site %s: local delivery", server, r.site)}
	}
	p, err := r.org.graph.Path(r.site, mbxSite)
	if err != nil {
		return Decision{Kind: KindFailed, Status: "5.4.4", Reply: "550 5.4.4 " + err.Error(), Reason: err.Error()}
	}
	if p.MaxMessageSize > 0 && size > p.MaxMessageSize {
		why := fmt.Sprintf("message of %d bytes exceeds the %d-byte limit of a site link on %s", size, p.MaxMessageSize, strings.Join(p.Sites, " -> "))
		return Decision{Kind: KindFailed, Status: "5.3.4", Reply: "550 5.3.4 " + why, Reason: why, Path: p}
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

// hubsIn are the Hub servers of a site, by name.
func (r *Router) hubsIn(site string) []string {
	var hubs []string
	for _, s := range r.org.scenario.ServersByRole(scenario.RoleHub) {
		if strings.EqualFold(s.Site, site) {
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
