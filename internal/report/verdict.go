package report

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/mailflow/mailflow/spec"
)

// Verdict is the outcome of one clause on one target (SPEC.md §0).
type Verdict string

// The verdicts, in the order totals are printed.
const (
	PASS    Verdict = "PASS"
	FAIL    Verdict = "FAIL"
	WARN    Verdict = "WARN"
	INFO    Verdict = "INFO"
	NA      Verdict = "N/A"
	MISSING Verdict = "MISSING"
)

// AllVerdicts returns every verdict in print order.
func AllVerdicts() []Verdict {
	return []Verdict{PASS, FAIL, WARN, INFO, NA, MISSING}
}

// Names and prefixes of the conventions the suites follow (see the package doc).
const (
	// EntryVerdict is the report-entry name carrying "INFO: observed ...".
	EntryVerdict = "mailflow.verdict"
	// EntryVector is the report-entry name of one "name: PASS|FAIL detail" line.
	EntryVector = "mailflow.vector"
	// NotApplicablePrefix starts the Skip message of a spec that does not apply.
	NotApplicablePrefix = "N/A:"
	// InfoPrefix starts an EntryVerdict value of an informational spec.
	InfoPrefix = "INFO:"
	// WarnPrefix starts an EntryVerdict value of a spec whose MUST parts held but a
	// SHOULD inside the clause did not ("WARN: 554 where RFC 5321 says 550 ...").
	WarnPrefix = "WARN:"
)

// Reasons given for MISSING clauses.
const (
	ReasonNoSpec      = "no spec implements this clause"
	ReasonNotSelected = "not selected"
	ReasonPending     = "pending"
)

// ClauseResult is the verdict of one clause with the specs behind it.
type ClauseResult struct {
	Clause   spec.Clause   `json:"clause"`
	Verdict  Verdict       `json:"verdict"`
	Reason   string        `json:"reason,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	Specs    []SpecResult  `json:"specs,omitempty"`
	Vectors  []string      `json:"vectors,omitempty"`
}

// SpecResult is one Ginkgo spec labelled with the clause.
type SpecResult struct {
	Text     string        `json:"text"`
	State    string        `json:"state"`
	Duration time.Duration `json:"duration_ns"`
	// Failure is the failure message plus its location, or the skip message.
	Failure string `json:"failure,omitempty"`
}

// Result is one run against one target.
type Result struct {
	Target   string          `json:"target"`
	Started  time.Time       `json:"started"`
	Duration time.Duration   `json:"duration_ns"`
	Clauses  []ClauseResult  `json:"clauses"`
	Totals   map[Verdict]int `json:"totals"`
	// SuiteFailures lists failed suite-level nodes (BeforeSuite, AfterSuite, ...)
	// and Ginkgo's special suite failure reasons (interrupted, ...). Any of them
	// makes the run unreliable, so ExitCode is non-zero.
	SuiteFailures []string `json:"suite_failures,omitempty"`
	// UnknownLabels are clause-shaped labels the catalog does not know, most
	// likely typos that would otherwise leave a spec counted for nothing.
	UnknownLabels []string `json:"unknown_labels,omitempty"`
}

// Build applies the verdict rules to run r for every clause of catalog, in
// catalog order.
// BuildOption adjusts how a run is judged.
type BuildOption func(*buildConfig)

type buildConfig struct{ anyMTAOnly bool }

// AnyMTAOnly judges a run against a third-party MTA: only clauses that apply to any MTA
// are judged; every reference-only clause is N/A, whether or not a spec ran for it.
func AnyMTAOnly() BuildOption { return func(c *buildConfig) { c.anyMTAOnly = true } }

// ReasonReferenceOnly is the N/A reason of a reference-only clause on a third-party MTA.
const ReasonReferenceOnly = "a reference-only clause; the target is a third-party MTA (only any-mta clauses apply)"

func Build(target string, r types.Report, catalog []spec.Clause, opts ...BuildOption) *Result {
	var cfg buildConfig
	for _, o := range opts {
		o(&cfg)
	}
	res := &Result{
		Target:        target,
		Started:       r.StartTime,
		Duration:      r.RunTime,
		Totals:        make(map[Verdict]int, 6),
		SuiteFailures: slices.Clone(r.SpecialSuiteFailureReasons),
	}
	known := make(map[string]bool, len(catalog))
	for _, c := range catalog {
		known[c.ID] = true
	}
	byClause := map[string][]types.SpecReport{}
	unknown := map[string]bool{}
	for _, sr := range r.SpecReports {
		if sr.LeafNodeType.Is(types.NodeTypesForSuiteLevelNodes) {
			if sr.Failed() {
				res.SuiteFailures = append(res.SuiteFailures,
					fmt.Sprintf("%s %s: %s", sr.LeafNodeType, sr.State, firstLine(sr.Failure.Message)))
			}
			continue
		}
		for _, l := range sr.Labels() {
			switch {
			case !spec.IsClauseID(l):
			case known[l]:
				byClause[l] = append(byClause[l], sr)
			default:
				unknown[l] = true
			}
		}
	}
	for l := range unknown {
		res.UnknownLabels = append(res.UnknownLabels, l)
	}
	slices.Sort(res.UnknownLabels)
	for _, v := range AllVerdicts() {
		res.Totals[v] = 0
	}
	for _, c := range catalog {
		cr := judge(c, byClause[c.ID])
		if cfg.anyMTAOnly && c.Applies != spec.AppliesAnyMTA {
			cr = ClauseResult{Clause: c, Verdict: NA, Reason: ReasonReferenceOnly}
		}
		res.Clauses = append(res.Clauses, cr)
		res.Totals[cr.Verdict]++
	}
	return res
}

// judge applies the verdict rules of the package doc to one clause.
func judge(c spec.Clause, specs []types.SpecReport) ClauseResult {
	cr := ClauseResult{Clause: c}
	if len(specs) == 0 {
		cr.Verdict, cr.Reason = MISSING, ReasonNoSpec
		return cr
	}
	var failed, na, info, warn, otherSkips []string
	passed, pending := 0, 0
	for _, sr := range specs {
		cr.Duration += sr.RunTime
		cr.Specs = append(cr.Specs, specResult(sr))
		switch {
		case sr.Failed():
			failed = append(failed, fmt.Sprintf("%s: %s", sr.FullText(), firstLine(sr.Failure.Message)))
		case sr.State == types.SpecStatePassed:
			passed++
			for _, e := range sr.ReportEntries {
				v := e.StringRepresentation()
				switch {
				case e.Name != EntryVerdict:
				case strings.HasPrefix(v, InfoPrefix):
					info = appendUnique(info, strings.TrimSpace(strings.TrimPrefix(v, InfoPrefix)))
				case strings.HasPrefix(v, WarnPrefix):
					warn = appendUnique(warn, strings.TrimSpace(strings.TrimPrefix(v, WarnPrefix)))
				}
			}
		case sr.State == types.SpecStateSkipped && strings.HasPrefix(sr.Failure.Message, NotApplicablePrefix):
			na = appendUnique(na, strings.TrimSpace(strings.TrimPrefix(sr.Failure.Message, NotApplicablePrefix)))
		case sr.State == types.SpecStateSkipped && sr.Failure.Message != "":
			otherSkips = appendUnique(otherSkips, "skipped: "+firstLine(sr.Failure.Message))
		case sr.State == types.SpecStatePending:
			pending++
		}
		if sr.Failed() || sr.State == types.SpecStatePassed {
			for _, e := range sr.ReportEntries {
				if e.Name == EntryVector {
					cr.Vectors = append(cr.Vectors, e.StringRepresentation())
				}
			}
		}
	}
	switch {
	case len(failed) > 0:
		cr.Verdict = FAIL
		if c.Level != spec.LevelMust {
			cr.Verdict = WARN
		}
		cr.Reason = strings.Join(failed, "; ")
	case passed == 0 && len(na) > 0:
		cr.Verdict, cr.Reason = NA, strings.Join(na, "; ")
	case passed == 0:
		cr.Verdict = MISSING
		switch {
		case len(otherSkips) > 0:
			cr.Reason = strings.Join(otherSkips, "; ")
		case pending == len(specs):
			cr.Reason = ReasonPending
		default:
			cr.Reason = ReasonNotSelected
		}
	case len(warn) > 0:
		cr.Verdict, cr.Reason = WARN, strings.Join(warn, "; ")
	case len(info) > 0:
		cr.Verdict, cr.Reason = INFO, strings.Join(info, "; ")
	default:
		cr.Verdict = PASS
	}
	return cr
}

func specResult(sr types.SpecReport) SpecResult {
	out := SpecResult{Text: sr.FullText(), State: sr.State.String(), Duration: sr.RunTime}
	switch {
	case sr.Failed():
		msg := sr.Failure.Message
		if sr.Failure.ForwardedPanic != "" {
			msg += "\npanic: " + sr.Failure.ForwardedPanic
		}
		if loc := sr.Failure.Location; loc.FileName != "" {
			msg += "\nat " + loc.String()
		}
		out.Failure = msg
	case sr.State == types.SpecStateSkipped:
		out.Failure = sr.Failure.Message
	}
	return out
}

// ExitCode is the process exit status for the run: 1 when a MUST clause failed,
// when strict and a SHOULD/MAY clause failed (WARN), or when the suite itself
// failed (a clause table from a broken BeforeSuite would otherwise look clean).
func (r *Result) ExitCode(strict bool) int {
	if len(r.SuiteFailures) > 0 {
		return 1
	}
	// Counted from the clauses, not Totals, so a hand-edited JSON cannot disagree.
	for _, c := range r.Clauses {
		if c.Verdict == FAIL || (strict && c.Verdict == WARN) {
			return 1
		}
	}
	return 0
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
}

func appendUnique(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
