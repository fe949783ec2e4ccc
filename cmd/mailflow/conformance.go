package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"

	"github.com/mailflow/mailflow/ci/report"
	"github.com/mailflow/mailflow/spec"
	"github.com/mailflow/mailflow/suites/framework"

	// The suites register their specs when imported, as Kubernetes' e2e.test does.
	_ "github.com/mailflow/mailflow/suites/accept"
	_ "github.com/mailflow/mailflow/suites/relay"
	_ "github.com/mailflow/mailflow/suites/smarthost"
	_ "github.com/mailflow/mailflow/suites/smtp"
	_ "github.com/mailflow/mailflow/suites/tracesuite"
)

var suiteReport types.Report

var _ = ginkgo.ReportAfterSuite("mailflow report", func(r ginkgo.Report) { suiteReport = r })

// failT is the GinkgoTestingT of a run outside `go test`.
type failT struct{ failed bool }

func (t *failT) Fail() { t.failed = true }

func runConformance(args []string) int {
	fs := flag.NewFlagSet("conformance", flag.ContinueOnError)
	target := fs.String("target", "inprocess", "where the suites run: inprocess")
	labels := fs.String("label-filter", "", "Ginkgo label filter, e.g. 'relay && any-mta' or 'RELAY-001'")
	dir := fs.String("report-dir", "report", "where junit.xml and report.json are written")
	strict := fs.Bool("strict", false, "a failed SHOULD clause (WARN) also fails the run")
	verbose := fs.Bool("v", false, "stream Ginkgo's per-spec output")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := os.Setenv(framework.TargetEnv, *target); err != nil {
		return 2
	}
	t, err := framework.CurrentTarget()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailflow conformance:", err)
		return 2
	}
	for k, v := range map[string]string{"ginkgo.label-filter": *labels, "ginkgo.no-color": "true", "ginkgo.succinct": fmt.Sprint(!*verbose), "ginkgo.v": fmt.Sprint(*verbose)} {
		if err := flag.CommandLine.Set(k, v); err != nil {
			fmt.Fprintln(os.Stderr, "mailflow conformance:", err)
			return 2
		}
	}
	gomega.RegisterFailHandler(ginkgo.Fail)
	gomega.SetDefaultEventuallyTimeout(10 * time.Second)
	ginkgo.RunSpecs(&failT{}, "mailflow conformance")

	res := report.Build(t.Name(), suiteReport, spec.Catalog())
	fmt.Println()
	if err := res.WriteTable(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mailflow conformance:", err)
		return 2
	}
	if err := writeReports(res, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "mailflow conformance:", err)
		return 2
	}
	fmt.Printf("\nreports: %s, %s\n", filepath.Join(*dir, "junit.xml"), filepath.Join(*dir, "report.json"))
	return res.ExitCode(*strict)
}

func writeReports(res *report.Result, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, write := range map[string]func(*os.File) error{
		"junit.xml":   func(f *os.File) error { return res.WriteJUnit(f) },
		"report.json": func(f *os.File) error { return res.WriteJSON(f) },
	} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		werr := write(f)
		if err := errors.Join(werr, f.Close()); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func runMatrix(files []string) int {
	if len(files) == 0 {
		fmt.Fprintln(os.Stderr, "mailflow conformance report: name one or more report.json files")
		return 2
	}
	var results []*report.Result
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailflow conformance report:", err)
			return 2
		}
		r, err := report.ReadJSON(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "mailflow conformance report: %s: %v\n", p, err)
			return 2
		}
		results = append(results, r)
	}
	m := report.Matrix(results)
	if err := m.WriteMatrixText(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mailflow conformance report:", err)
		return 2
	}
	return 0
}
