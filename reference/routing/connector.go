package routing

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/mailflow/mailflow/scenario"
)

// ErrNoConnector means no send connector matches: the recipient is unreachable.
var ErrNoConnector = errors.New("no send connector matches the recipient domain")

// Choice is a selected connector and why it won, for the ROUTE trace event.
type Choice struct {
	Connector *scenario.SendConnector
	Space     string
	Reason    string
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

// SelectConnector picks the send connector for domain on server: candidates are enabled,
// list the server as a source (any connector when server is ""), have a matching address space and a size limit no smaller
// than size; the most specific address space wins, then the lowest cost, then the
// alphanumerically lowest name (EX-CONNSEL).
func SelectConnector(conns []scenario.SendConnector, server, domain string, size int) (Choice, error) {
	type cand struct {
		c     *scenario.SendConnector
		space string
		spec  int
	}
	var cands []cand
	for i := range conns {
		c := &conns[i]
		if c.Enabled != nil && !*c.Enabled {
			continue
		}
		if !hasSource(c, server) {
			continue
		}
		if c.MaxMessageSize > 0 && size > c.MaxMessageSize {
			continue
		}
		best, bestSpace := -1, ""
		for _, s := range c.AddressSpaces {
			if sp := specificity(s, domain); sp > best {
				best, bestSpace = sp, s
			}
		}
		if best >= 0 {
			cands = append(cands, cand{c, bestSpace, best})
		}
	}
	if len(cands) == 0 {
		return Choice{}, fmt.Errorf("%s on %s: %w", domain, server, ErrNoConnector)
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.spec != b.spec {
			return a.spec > b.spec
		}
		if a.c.Cost != b.c.Cost {
			return a.c.Cost < b.c.Cost
		}
		return a.c.Name < b.c.Name
	})
	w := cands[0]
	reason := fmt.Sprintf("address space %q most specific for %s", w.space, domain)
	if len(cands) > 1 && cands[1].spec == w.spec {
		if cands[1].c.Cost != w.c.Cost {
			reason = fmt.Sprintf("address space %q, lowest cost %d", w.space, w.c.Cost)
		} else {
			reason = fmt.Sprintf("address space %q, cost %d tie, lowest name", w.space, w.c.Cost)
		}
	}
	return Choice{Connector: w.c, Space: w.space, Reason: reason}, nil
}

func hasSource(c *scenario.SendConnector, server string) bool {
	if len(c.Source) == 0 || server == "" {
		return true // "" selects organisation-wide: a Hub reaches a connector through its source servers
	}
	for _, s := range c.Source {
		if strings.EqualFold(s, server) {
			return true
		}
	}
	return false
}
