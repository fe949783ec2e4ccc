package framework

import (
	"fmt"
	"slices"

	"github.com/onsi/ginkgo/v2"

	"github.com/mailflow/mailflow/spec"
)

// Every spec first asks whether its clauses apply on the current target: on a
// third-party MTA only clauses tagged any-mta do, and the rest are reported N/A (never
// PASS, never MISSING).
var _ = ginkgo.BeforeEach(func() {
	t, err := CurrentTarget()
	if err != nil || !AnyMTAOnly(t) {
		return
	}
	if !slices.Contains(ginkgo.CurrentSpecReport().Labels(), spec.AppliesAnyMTA) {
		ginkgo.Skip(fmt.Sprintf("N/A: a reference-only clause; target %s is a third-party MTA (only any-mta clauses apply)", t.Name()))
	}
})
