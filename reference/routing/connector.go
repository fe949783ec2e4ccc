package routing

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/mailflow/mailflow/scenario"
)

// ErrNoConnector means no send connector matches: the recipient is unreachable and
// waits in the Unreachable queue until it expires (ROUTE-014).
var ErrNoConnector = errors.New("no send connector matches the recipient domain")

// ErrTooLarge means send connectors match the domain but every one of them is too small
// for the message: an NDR with 5.3.4 at once (ROUTE-014).
var ErrTooLarge = errors.New("every send connector for the recipient domain is too small for the message")

// Origin is the server that selects a connector.
type Origin struct {
	// Server is the routing server; "" selects organisation-wide, ignoring scope.
	Server string
	// Own limits the candidates to connectors sourced on Server: an Edge uses only its
	// own connectors, being outside the directory's sites.
	Own bool
	// Graph, when set, prices the way to each connector's source servers: link costs
	// from the routing server's site to theirs (ROUTE-013).
	Graph *Graph
}

// Locality ranks how far a connector's source server is from the routing server
// (ROUTE-013 rule 2): the server itself, a server of its site, a server elsewhere.
type Locality int

const (
	LocalServer Locality = iota
	SameSite
	RemoteSite
)

func (l Locality) String() string {
	return [...]string{"the routing server itself", "a server of the same site", "a server of a remote site"}[l]
}

// Choice is a selected connector and why it won, for the ROUTE trace event.
type Choice struct {
	Connector *scenario.SendConnector
	Space     string
	// Source is the source server the aggregate cost was priced to ("" when the
	// connector names none).
	Source string
	// Cost is the aggregate cost: site-link costs to Source's site plus the address
	// space cost.
	Cost     int
	Locality Locality
	Reason   string
}

// specificity ranks an address space against a domain: -1 when it does not match; higher
// is more specific (exact domain beats longer wildcard beats "*").
func specificity(space, domain string) int {
	space = strings.TrimSuffix(strings.ToLower(space), ".")
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	switch {
	case space == "*":
		return 0
	case strings.HasPrefix(space, "*."):
		parent := space[2:]
		if domain == parent || strings.HasSuffix(domain, "."+parent) {
			return 1 + 2*strings.Count(parent, ".") + 1
		}
	case space == domain:
		return 1000
	}
	return -1
}

type candidate struct {
	Choice
	spec int
}

// SelectConnector picks the send connector for domain (EX-CONNSEL). Candidates are
// enabled, in scope for the routing server (unscoped, or scoped to a site holding one of
// their source servers), have a matching address space and a size limit no smaller than
// size (ROUTE-011). The most specific address space wins (ROUTE-012); then the lowest
// aggregate cost, then the nearest source server (the routing server, its site, another
// site), then the alphanumerically lowest name (ROUTE-013).
func SelectConnector(conns []scenario.SendConnector, from Origin, domain string, size int) (Choice, error) {
	var routes map[string]Path
	site := ""
	if from.Graph != nil && from.Server != "" {
		site = from.Graph.SiteOf(from.Server)
		if site != "" {
			routes, _ = from.Graph.Paths(site)
		}
	}
	var cands []candidate
	tooSmall := false
	for i := range conns {
		c := &conns[i]
		if c.Enabled != nil && !*c.Enabled {
			continue
		}
		best, bestSpace := -1, ""
		for _, s := range c.AddressSpaces {
			if sp := specificity(s, domain); sp > best {
				best, bestSpace = sp, s
			}
		}
		if best < 0 {
			continue
		}
		src, ok := from.price(c, site, routes)
		if !ok {
			continue
		}
		if c.MaxMessageSize > 0 && size > c.MaxMessageSize {
			tooSmall = true
			continue
		}
		src.Connector, src.Space = c, bestSpace
		cands = append(cands, candidate{Choice: src, spec: best})
	}
	if len(cands) == 0 {
		if tooSmall {
			return Choice{}, fmt.Errorf("%s (%d bytes): %w", domain, size, ErrTooLarge)
		}
		return Choice{}, fmt.Errorf("%s on %s: %w", domain, orOrg(from.Server), ErrNoConnector)
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].less(cands[j]) })
	w := cands[0]
	w.Reason = fmt.Sprintf("address space %q most specific for %s", w.Space, domain)
	if len(cands) > 1 && cands[1].spec == w.spec {
		r := cands[1]
		switch {
		case r.Cost != w.Cost:
			w.Reason = fmt.Sprintf("address space %q, lowest aggregate cost %d (%s: %d)", w.Space, w.Cost, r.Connector.Name, r.Cost)
		case r.Locality != w.Locality:
			w.Reason = fmt.Sprintf("address space %q, aggregate cost %d tie, nearest source: %s", w.Space, w.Cost, w.Locality)
		default:
			w.Reason = fmt.Sprintf("address space %q, aggregate cost %d tie, lowest name", w.Space, w.Cost)
		}
	}
	return w.Choice, nil
}

func (a candidate) less(b candidate) bool {
	if a.spec != b.spec {
		return a.spec > b.spec
	}
	if a.Cost != b.Cost {
		return a.Cost < b.Cost
	}
	if a.Locality != b.Locality {
		return a.Locality < b.Locality
	}
	return a.Connector.Name < b.Connector.Name
}

// price finds the connector's source server nearest the routing server and the
// aggregate cost through it; false when the connector is out of scope or out of reach.
func (from Origin) price(c *scenario.SendConnector, site string, routes map[string]Path) (Choice, bool) {
	if len(c.Source) == 0 {
		// A connector with no source servers is anyone's: priced as the server's own.
		return Choice{Cost: c.Cost, Locality: LocalServer}, !c.Scoped || from.Server == ""
	}
	best, found := Choice{}, false
	for _, s := range c.Source {
		ch := Choice{Source: s, Cost: c.Cost}
		switch {
		case from.Server == "":
			ch.Locality = LocalServer // organisation-wide: no server to measure from
		case strings.EqualFold(s, from.Server):
			ch.Locality = LocalServer
		case from.Own:
			continue
		case site != "" && strings.EqualFold(from.Graph.SiteOf(s), site):
			ch.Locality = SameSite
		default:
			if c.Scoped {
				continue // a scoped connector serves its source servers' site only
			}
			ch.Locality = RemoteSite
			if routes != nil {
				p, ok := routes[from.Graph.SiteOf(s)]
				if !ok {
					continue
				}
				ch.Cost += p.Total
			}
		}
		if !found || ch.Cost < best.Cost || ch.Cost == best.Cost && ch.Locality < best.Locality {
			best, found = ch, true
		}
	}
	return best, found
}

func orOrg(server string) string {
	if server == "" {
		return "the organisation"
	}
	return server
}
