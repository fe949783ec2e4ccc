package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/mailflow/mailflow/spec"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// t0 keeps every golden file independent of the wall clock.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func it(text string, state types.SpecState, d time.Duration, labels ...string) types.SpecReport {
	return types.SpecReport{
		ContainerHierarchyTexts: []string{"conformance"},
		LeafNodeType:            types.NodeTypeIt,
		LeafNodeText:            text,
		LeafNodeLabels:          labels,
		State:                   state,
		StartTime:               t0,
		EndTime:                 t0.Add(d),
		RunTime:                 d,
	}
}

func failed(sr types.SpecReport, msg string) types.SpecReport {
	sr.Failure = types.Failure{
		Message:  msg,
		Location: types.CodeLocation{FileName: "suites/smtpsuite/smtp_test.go", LineNumber: 42},
	}
	return sr
}

func skipped(sr types.SpecReport, msg string) types.SpecReport {
	sr.Failure = types.Failure{Message: msg}
	return sr
}

func entry(sr types.SpecReport, name string, value any) types.SpecReport {
	sr.ReportEntries = append(sr.ReportEntries, types.ReportEntry{Name: name, Value: types.WrapEntryValue(value), Time: t0})
	return sr
}

func run(specs ...types.SpecReport) types.Report {
	return types.Report{
		SuiteDescription: "mailflow conformance",
		SuiteSucceeded:   true,
		StartTime:        t0,
		EndTime:          t0.Add(12300 * time.Millisecond),
		RunTime:          12300 * time.Millisecond,
		SpecReports:      specs,
	}
}

func clauses(t *testing.T, ids ...string) []spec.Clause {
	t.Helper()
	var out []spec.Clause
	for _, id := range ids {
		c, ok := spec.Lookup(id)
		if !ok {
			t.Fatalf("clause %s not in catalog", id)
		}
		out = append(out, c)
	}
	return out
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden (run with -update if intended)\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}
