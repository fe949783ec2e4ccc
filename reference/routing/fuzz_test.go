package routing

import (
	"strings"
	"testing"

	"github.com/mailflow/mailflow/scenario"
)

// FuzzSpecificity checks the address-space match of connector selection against the
// accepted-domain match of the scenario: "*.parent" covers parent and the names under
// it, a domain covers itself, both ignoring case and a trailing dot, so mail accepted
// under an address space is routed by a connector for the same space. A match of a
// wildcard must rank below an exact one, and "*" below both.
func FuzzSpecificity(f *testing.F) {
	for _, s := range [][2]string{
		{"*", "fabrikam.test"}, {"fabrikam.test", "FABRIKAM.test."}, {"*.contoso.test", "contoso.test"},
		{"*.contoso.test", "a.b.contoso.test"}, {"*.contoso.test", "xcontoso.test"}, {"*.", "a.test"},
		{"*.*.test", "a.b.test"}, {"**.test", "a.test"}, {"*.test.", "a.TEST"}, {"", ""}, {".", "."},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, space, domain string) {
		sp := specificity(space, domain)
		canon := strings.TrimSuffix(strings.ToLower(space), ".")
		switch {
		case canon == "*":
			if sp != 0 {
				t.Fatalf("specificity(%q, %q) = %d, want 0 for *", space, domain, sp)
			}
			return
		case strings.HasPrefix(canon, "*.") && sp >= 1000:
			t.Fatalf("specificity(%q, %q) = %d: a wildcard ranks with an exact match", space, domain, sp)
		}
		s := &scenario.Scenario{Org: scenario.Org{AcceptedDomains: []scenario.AcceptedDomain{{Domain: space}}}}
		if _, accepted := s.AcceptedDomain(domain); accepted != (sp > 0) {
			t.Fatalf("space %q, domain %q: specificity %d, but AcceptedDomain says %v", space, domain, sp, accepted)
		}
	})
}
