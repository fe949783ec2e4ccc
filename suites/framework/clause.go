package framework

import (
	"fmt"

	"github.com/onsi/ginkgo/v2"

	"github.com/mailflow/mailflow/spec"
)

// Clause returns the labels of a spec that checks clause id: the ID, its area and
// any-mta when the catalog says so. An ID missing from the catalog panics at tree
// construction, so a typo cannot yield a clause that silently stays MISSING.
func Clause(ids ...string) ginkgo.Labels {
	var l ginkgo.Labels
	for _, id := range ids {
		c, ok := spec.Lookup(id)
		if !ok {
			panic(fmt.Sprintf("framework.Clause: %s is not in the clause catalog", id))
		}
		l = append(l, c.ID, c.Area)
		if c.Applies == spec.AppliesAnyMTA {
			l = append(l, "any-mta")
		}
	}
	return l
}

// currentClauses names the clauses of the running spec, for failure messages.
func currentClauses() string {
	var out string
	for _, l := range ginkgo.CurrentSpecReport().Labels() {
		if c, ok := spec.Lookup(l); ok {
			if out != "" {
				out += "; "
			}
			out += fmt.Sprintf("%s %s (%s): %s", c.ID, c.Title, c.Level, c.Text)
		}
	}
	return out
}

// Long marks a spec that waits out real time on some target (a server's inactivity
// timeout, an MTA's retry or expiry timer): it is handed out first in a parallel run,
// so the run does not end waiting on it alone.
var Long = ginkgo.SpecPriority(1)
