package scenariogen

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mailflow/mailflow/scenario"
)

// TestOrgIsValid reads a generated organisation back through the scenario parser, so
// everything the generator makes is a scenario a user could have written.
func TestOrgIsValid(t *testing.T) {
	for _, n := range []int{1, 3, 12, 150} {
		t.Run(fmt.Sprintf("sites=%d", n), func(t *testing.T) {
			s := Org(n, WithRecipients(250))
			b, err := scenario.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			back, err := scenario.Parse("generated", b)
			if err != nil {
				t.Fatalf("generated org does not parse: %v", err)
			}
			back.File = ""
			if d := cmp.Diff(s, back, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("parsed org differs from the generated one (-generated +parsed):\n%s", d)
			}
		})
	}
}

// TestRoutingGroupsAreValid does the same for the Exchange 2003 form, and checks the
// size the route benchmark names: 200 routing groups of 1,000 servers.
func TestRoutingGroupsAreValid(t *testing.T) {
	for _, n := range []int{1, 3, 12, 200} {
		t.Run(fmt.Sprintf("groups=%d", n), func(t *testing.T) {
			s := RoutingGroups(n)
			b, err := scenario.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			back, err := scenario.Parse("generated", b)
			if err != nil {
				t.Fatalf("generated org does not parse: %v", err)
			}
			back.File = ""
			if d := cmp.Diff(s, back, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("parsed org differs from the generated one (-generated +parsed):\n%s", d)
			}
			inGroups := 0
			for _, g := range s.Org.RoutingGroups {
				inGroups += len(g.Servers)
			}
			if n == 200 && (len(s.Org.RoutingGroups) != 200 || inGroups != 1000) {
				t.Errorf("%d routing groups of %d servers, want 200 of 1000", len(s.Org.RoutingGroups), inGroups)
			}
		})
	}
}

func TestOrgShape(t *testing.T) {
	s := Org(200, WithRecipients(1000))
	count := map[scenario.Role]int{}
	for _, sv := range s.Org.Servers {
		count[sv.Role]++
	}
	if want := (map[scenario.Role]int{scenario.RoleHub: 400, scenario.RoleMailbox: 600, scenario.RoleEdge: 2}); !cmp.Equal(count, want) {
		t.Errorf("servers by role %v, want %v", count, want)
	}
	if len(s.Org.Sites) != 200 || len(s.Org.Recipients) != 1000 || len(s.Org.AcceptedDomains) != 20 {
		t.Errorf("%d sites, %d recipients, %d accepted domains; want 200, 1000, 20",
			len(s.Org.Sites), len(s.Org.Recipients), len(s.Org.AcceptedDomains))
	}
	perServer := map[string]int{}
	for _, r := range s.Org.Recipients {
		perServer[r.Mailbox]++
	}
	if len(perServer) != 600 {
		t.Errorf("recipients on %d mailbox servers, want all 600", len(perServer))
	}
	if got := Org(200, WithRecipients(1000)); !cmp.Equal(got, s) {
		t.Error("two calls with the same inputs differ")
	}
}
