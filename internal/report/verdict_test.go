package report

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/mailflow/mailflow/spec"
)

func TestVerdictRules(t *testing.T) {
	const (
		must   = "SMTP-001"
		should = "TRACE-003"
		may    = "DNS-011"
	)
	ms := time.Millisecond
	tests := []struct {
		name     string
		clause   string
		specs    []types.SpecReport
		verdict  Verdict
		reason   string
		duration time.Duration
	}{
		{"no spec", must, nil, MISSING, ReasonNoSpec, 0},
		{"spec for another clause only", must,
			[]types.SpecReport{it("x", types.SpecStatePassed, ms, "SMTP-002")}, MISSING, ReasonNoSpec, 0},
		{"passed", must,
			[]types.SpecReport{it("a", types.SpecStatePassed, 3*ms, must), it("b", types.SpecStatePassed, 4*ms, must)},
			PASS, "", 7 * ms},
		{"failed MUST", must,
			[]types.SpecReport{failed(it("a", types.SpecStateFailed, ms, must), "Expected 220\ngot 554")},
			FAIL, "conformance a: Expected 220", ms},
		{"panicked MUST", must, []types.SpecReport{failed(it("a", types.SpecStatePanicked, ms, must), "Test Panicked")}, FAIL, "conformance a: Test Panicked", ms},
		{"interrupted MUST", must, []types.SpecReport{failed(it("a", types.SpecStateInterrupted, ms, must), "interrupted")}, FAIL, "conformance a: interrupted", ms},
		{"aborted MUST", must, []types.SpecReport{failed(it("a", types.SpecStateAborted, ms, must), "aborted")}, FAIL, "conformance a: aborted", ms},
		{"timed out MUST", must, []types.SpecReport{failed(it("a", types.SpecStateTimedout, ms, must), "timeout")}, FAIL, "conformance a: timeout", ms},
		{"failed SHOULD", should, []types.SpecReport{failed(it("a", types.SpecStateFailed, ms, should), "with was SMTP")}, WARN, "conformance a: with was SMTP", ms},
		{"failed MAY", may, []types.SpecReport{failed(it("a", types.SpecStateFailed, ms, may), "no 5.7.27")}, WARN, "conformance a: no 5.7.27", ms},
		{"one of two failed", must,
			[]types.SpecReport{it("a", types.SpecStatePassed, ms, must), failed(it("b", types.SpecStateFailed, ms, must), "boom")},
			FAIL, "conformance b: boom", 2 * ms},
		{"failure beats N/A and INFO", must,
			[]types.SpecReport{
				skipped(it("a", types.SpecStateSkipped, 0, must), "N/A: reference only"),
				entry(it("b", types.SpecStatePassed, ms, must), EntryVerdict, "INFO: observed 554"),
				failed(it("c", types.SpecStateFailed, ms, must), "boom"),
			},
			FAIL, "conformance c: boom", 2 * ms},
		{"all N/A", must,
			[]types.SpecReport{
				skipped(it("a", types.SpecStateSkipped, 0, must), "N/A: reference-only clause"),
				skipped(it("b", types.SpecStateSkipped, 0, must), "N/A: reference-only clause"),
			},
			NA, "reference-only clause", 0},
		{"N/A and passed", must,
			[]types.SpecReport{skipped(it("a", types.SpecStateSkipped, 0, must), "N/A: no TLS"), it("b", types.SpecStatePassed, ms, must)},
			PASS, "", ms},
		{"N/A and not selected", must,
			[]types.SpecReport{skipped(it("a", types.SpecStateSkipped, 0, must), "N/A: no TLS"), it("b", types.SpecStateSkipped, 0, must)},
			NA, "no TLS", 0},
		{"not selected by label filter", must,
			[]types.SpecReport{it("a", types.SpecStateSkipped, 0, must)}, MISSING, ReasonNotSelected, 0},
		{"skipped for another reason", must,
			[]types.SpecReport{skipped(it("a", types.SpecStateSkipped, 0, must), "needs docker")}, MISSING, "skipped: needs docker", 0},
		{"pending", must, []types.SpecReport{it("a", types.SpecStatePending, 0, must)}, MISSING, ReasonPending, 0},
		{"pending and not selected", must,
			[]types.SpecReport{it("a", types.SpecStatePending, 0, must), it("b", types.SpecStateSkipped, 0, must)},
			MISSING, ReasonNotSelected, 0},
		{"info", must,
			[]types.SpecReport{entry(it("a", types.SpecStatePassed, ms, must), EntryVerdict, "INFO: observed 550 5.1.10")},
			INFO, "observed 550 5.1.10", ms},
		{"SHOULD inside a MUST clause missed", must,
			[]types.SpecReport{entry(it("a", types.SpecStatePassed, ms, must), EntryVerdict, "WARN: 554 where RFC 5321 says 550")},
			WARN, "554 where RFC 5321 says 550", ms},
		{"warn beats info", must,
			[]types.SpecReport{
				entry(it("a", types.SpecStatePassed, ms, must), EntryVerdict, "INFO: observed"),
				entry(it("b", types.SpecStatePassed, ms, must), EntryVerdict, "WARN: 554"),
			},
			WARN, "554", 2 * ms},
		{"failure beats warn", must,
			[]types.SpecReport{
				entry(it("a", types.SpecStatePassed, ms, must), EntryVerdict, "WARN: 554"),
				failed(it("b", types.SpecStateFailed, ms, must), "boom"),
			},
			FAIL, "conformance b: boom", 2 * ms},
		{"other verdict entries ignored", must,
			[]types.SpecReport{entry(it("a", types.SpecStatePassed, ms, must), EntryVerdict, "note: nothing")},
			PASS, "", ms},
		{"container label counts", must,
			[]types.SpecReport{func() types.SpecReport {
				sr := it("a", types.SpecStatePassed, ms)
				sr.ContainerHierarchyLabels = [][]string{{must, "smtp", "any-mta"}}
				return sr
			}()},
			PASS, "", ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Build("t", run(tt.specs...), clauses(t, tt.clause))
			c := res.Clauses[0]
			if c.Verdict != tt.verdict || c.Reason != tt.reason || c.Duration != tt.duration {
				t.Errorf("got %s %q %v, want %s %q %v", c.Verdict, c.Reason, c.Duration, tt.verdict, tt.reason, tt.duration)
			}
			if res.Totals[tt.verdict] != 1 {
				t.Errorf("totals %v", res.Totals)
			}
		})
	}
}

func TestBuildSpecsVectorsAndLabels(t *testing.T) {
	vec := it("open relay vectors", types.SpecStatePassed, 5*time.Millisecond, "SEC-004", "RELAY-003", "RELAY-999", "security")
	vec = entry(vec, EntryVector, "percent-hack: PASS refused 550 5.7.1")
	vec = entry(vec, EntryVector, "bang-path: PASS refused 554 5.7.1")
	suite := failed(types.SpecReport{LeafNodeType: types.NodeTypeBeforeSuite, State: types.SpecStateFailed}, "topology did not start\ndetails")
	r := run(vec, suite)
	r.SpecialSuiteFailureReasons = []string{"Interrupted by User"}

	res := Build("ref", r, clauses(t, "RELAY-003", "SEC-004"))
	for _, c := range res.Clauses {
		if c.Verdict != PASS || len(c.Specs) != 1 {
			t.Errorf("%s: %s with %d specs, want PASS with 1", c.Clause.ID, c.Verdict, len(c.Specs))
		}
		if want := []string{"percent-hack: PASS refused 550 5.7.1", "bang-path: PASS refused 554 5.7.1"}; !slices.Equal(c.Vectors, want) {
			t.Errorf("%s vectors %q", c.Clause.ID, c.Vectors)
		}
	}
	if !slices.Equal(res.UnknownLabels, []string{"RELAY-999"}) {
		t.Errorf("unknown labels %q", res.UnknownLabels)
	}
	want := []string{"Interrupted by User", "BeforeSuite failed: topology did not start"}
	if !slices.Equal(res.SuiteFailures, want) {
		t.Errorf("suite failures %q, want %q", res.SuiteFailures, want)
	}
	if res.ExitCode(false) != 1 {
		t.Error("a failed BeforeSuite must fail the run")
	}
	if !res.Started.Equal(t0) || res.Duration != 12300*time.Millisecond || res.Target != "ref" {
		t.Errorf("header %v %v %q", res.Started, res.Duration, res.Target)
	}
}

func TestSpecResultFailure(t *testing.T) {
	sr := failed(it("a", types.SpecStatePanicked, 0, "SMTP-001"), "Test Panicked")
	sr.Failure.ForwardedPanic = "nil map"
	res := Build("t", run(sr), clauses(t, "SMTP-001"))
	got := res.Clauses[0].Specs[0]
	want := SpecResult{Text: "conformance a", State: "panicked", Failure: "Test Panicked\npanic: nil map\nat suites/smtpsuite/smtp_test.go:42"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name     string
		verdicts []Verdict
		normal   int
		strict   int
	}{
		{"all pass", []Verdict{PASS, PASS}, 0, 0},
		{"fail", []Verdict{PASS, FAIL}, 1, 1},
		{"warn", []Verdict{PASS, WARN}, 0, 1},
		{"info, n/a, missing", []Verdict{INFO, NA, MISSING}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Result{}
			for _, v := range tt.verdicts {
				r.Clauses = append(r.Clauses, ClauseResult{Verdict: v})
			}
			if got := r.ExitCode(false); got != tt.normal {
				t.Errorf("ExitCode(false) = %d, want %d", got, tt.normal)
			}
			if got := r.ExitCode(true); got != tt.strict {
				t.Errorf("ExitCode(true) = %d, want %d", got, tt.strict)
			}
		})
	}
}

func TestWholeCatalogTotals(t *testing.T) {
	res := Build("empty", run(it("a", types.SpecStatePassed, time.Millisecond, "SMTP-001")), spec.Catalog())
	n := len(spec.Catalog())
	want := fmt.Sprintf("Totals: 1 PASS, 0 FAIL, 0 WARN, 0 INFO, 0 N/A, %d MISSING (%d clauses)", n-1, n)
	if got := res.TotalsLine(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAnyMTAOnly(t *testing.T) {
	r := run(
		it("a", types.SpecStatePassed, time.Millisecond, "SMTP-001"),
		it("b", types.SpecStatePassed, time.Millisecond, "RELAY-006"),
	)
	cat := clauses(t, "SMTP-001", "RELAY-006", "ROUTE-001")
	res := Build("postfix", r, cat, AnyMTAOnly())
	got := map[string]Verdict{}
	for _, c := range res.Clauses {
		got[c.Clause.ID] = c.Verdict
	}
	want := map[string]Verdict{"SMTP-001": PASS, "RELAY-006": NA, "ROUTE-001": NA}
	for id, v := range want {
		if got[id] != v {
			t.Errorf("%s: %s, want %s", id, got[id], v)
		}
	}
	if res.Totals[NA] != 2 || res.Totals[PASS] != 1 {
		t.Errorf("totals %v", res.Totals)
	}
}
