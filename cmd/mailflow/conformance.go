package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"

	"github.com/mailflow/mailflow/fixtures/spamdaemon"
	"github.com/mailflow/mailflow/internal/parallel"
	"github.com/mailflow/mailflow/internal/report"
	"github.com/mailflow/mailflow/profiles"
	"github.com/mailflow/mailflow/spec"
	"github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/targets/containers"
	"github.com/mailflow/mailflow/targets/dockernet"
	"github.com/mailflow/mailflow/targets/live"

	// The suites register their specs when imported, as Kubernetes' e2e.test does.
	_ "github.com/mailflow/mailflow/suites/acceptsuite"
	_ "github.com/mailflow/mailflow/suites/dnssuite"
	_ "github.com/mailflow/mailflow/suites/dsnsuite"
	_ "github.com/mailflow/mailflow/suites/filtersuite"
	_ "github.com/mailflow/mailflow/suites/mailboxsuite"
	_ "github.com/mailflow/mailflow/suites/queuesuite"
	_ "github.com/mailflow/mailflow/suites/relaysuite"
	_ "github.com/mailflow/mailflow/suites/routingsuite"
	_ "github.com/mailflow/mailflow/suites/secsuite"
	_ "github.com/mailflow/mailflow/suites/smarthostsuite"
	_ "github.com/mailflow/mailflow/suites/smtpsuite"
	_ "github.com/mailflow/mailflow/suites/tracesuite"
)

var suiteReport types.Report

var _ = ginkgo.ReportAfterSuite("mailflow report", func(r ginkgo.Report) { suiteReport = r })

// reportAfterEach, when set, hears of every spec as it ends (--progress in a serial run).
var reportAfterEach func(types.SpecReport)

var _ = ginkgo.ReportAfterEach(func(r ginkgo.SpecReport) {
	if reportAfterEach != nil {
		reportAfterEach(r)
	}
})

// failT is the GinkgoTestingT of a run outside `go test`.
type failT struct{ failed bool }

func (t *failT) Fail() { t.failed = true }

func runConformance(args []string) int {
	fs := flag.NewFlagSet("conformance", flag.ContinueOnError)
	target := fs.String("target", "inprocess", "where the suites run: inprocess, containers, mta:NAME (a profile under profiles/: "+strings.Join(profiles.Names(), ", ")+"), mta:DIR (a profile directory, e.g. mta:./myprofile), or smtp://HOST[:PORT], an MTA you run yourself (with --scenario and --listen)")
	var lf liveFlags
	fs.StringVar(&lf.scenario, "scenario", "", "with smtp://: the scenario file the host is configured for (it plays the scenario's Edge)")
	fs.StringVar(&lf.listen, "listen", "", "with smtp://: addresses of this host, ADDR[,ADDR...] or a prefix, where the fake DNS (port 53) and the sinks (port 25) listen and the clients dial from; the host must reach them")
	fs.StringVar(&lf.caDir, "ca-dir", "", "with smtp://: where the test CA and the host's certificate are kept (default: the user's config directory, mailflow/live-ca)")
	fs.BoolVar(&lf.settingsOnly, "print-settings", false, "with smtp://: print the settings the host needs and exit, without contacting it")
	labels := fs.String("label-filter", "", "Ginkgo label filter, e.g. 'relay && any-mta' or 'RELAY-001'")
	dir := fs.String("report-dir", "report", "where junit.xml and report.json are written")
	strict := fs.Bool("strict", false, "a failed SHOULD clause (WARN) also fails the run")
	verbose := fs.Bool("v", false, "stream Ginkgo's per-spec output (implies --procs 1)")
	verdictsOnly := fs.Bool("verdicts-only", false, "exit 0 whatever the verdicts once the run completed (recording a third-party MTA's matrix); non-zero only when the run itself failed")
	procs := fs.Int("procs", defaultProcs(), "specs run side by side in this many worker processes, each spec on its own topology; 1 runs them one after another in this process")
	progress := fs.Bool("progress", false, "print a line on stderr as each spec ends: clause, target, verdict, time")
	var w workerFlags
	fs.IntVar(&w.proc, "worker", 0, "(internal) run as worker N of a parallel run")
	fs.IntVar(&w.total, "worker-total", 0, "(internal) how many workers the parallel run has")
	fs.StringVar(&w.host, "worker-host", "", "(internal) the parallel run's coordinator")
	fs.Int64Var(&w.seed, "worker-seed", 0, "(internal) the spec order every worker shares")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "mailflow conformance: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *procs < 1 {
		fmt.Fprintln(os.Stderr, "mailflow conformance: --procs must be at least 1")
		return 2
	}
	isLive := live.IsTarget(*target)
	if isLive {
		if explicit(fs, "procs") && *procs > 1 {
			fmt.Fprintf(os.Stderr, "mailflow conformance: --procs %d: a live host runs its specs one at a time (every spec's world serves the fake DNS and sinks on the addresses the host is configured with)\n", *procs)
			return 2
		}
		*procs = 1
	}
	if err := os.Setenv(framework.TargetEnv, *target); err != nil {
		return 2
	}
	if err := lf.setenv(); err != nil {
		return 2
	}
	t, err := framework.CurrentTarget()
	if err == nil {
		err = lf.check(fs, isLive)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailflow conformance:", err)
		return 2
	}
	ginkgoFlags := map[string]string{"ginkgo.label-filter": *labels, "ginkgo.no-color": "true", "ginkgo.succinct": fmt.Sprint(!*verbose), "ginkgo.v": fmt.Sprint(*verbose)}
	if isLive {
		// Most specs are N/A on a live host, and its run is serial: an "S" per skip
		// would bury the progress lines.
		ginkgoFlags["ginkgo.silence-skips"] = "true"
	}
	if w.proc > 0 {
		return runWorker(w, ginkgoFlags)
	}
	if lt, ok := t.(framework.Live); ok {
		if code, done := startLive(lt, lf.settingsOnly); done {
			return code
		}
	}
	docker := *target != "inprocess" && *target != "reference-inprocess" && !isLive
	if docker {
		if err := dockerAnswers(); err != nil {
			fmt.Fprintf(os.Stderr, "mailflow conformance: target %s needs a Docker engine: %v\n", *target, err)
			return 2
		}
		if _, ok := t.(framework.Containers); ok {
			img := containers.Image()
			if err := exec.Command("docker", "image", "inspect", img).Run(); err != nil {
				fmt.Fprintf(os.Stderr, "mailflow conformance: target containers needs the image %s, which is not there (make reference-image builds it)\n", img)
				return 2
			}
		}
	}
	catalog := spec.Catalog()
	var onSpec func(types.SpecReport)
	if *progress {
		onSpec = progressLine(os.Stderr, t.Name(), catalog)
	}
	var r types.Report
	if *procs == 1 || *verbose {
		r, err = runSerial(ginkgoFlags, onSpec)
	} else {
		r, err = runParallel(*procs, args, onSpec)
	}
	if docker {
		sweep()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailflow conformance:", err)
		if len(r.SpecReports) == 0 {
			return 2
		}
		r.SpecialSuiteFailureReasons = append(r.SpecialSuiteFailureReasons, err.Error())
	}
	inCatalogOrder(r.SpecReports)

	var opts []report.BuildOption
	if framework.AnyMTAOnly(t) {
		opts = append(opts, report.AnyMTAOnly())
	}
	res := report.Build(t.Name(), r, catalog, opts...)
	fmt.Println()
	if err := res.WriteTable(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mailflow conformance:", err)
		return 2
	}
	if err := writeReports(res, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "mailflow conformance:", err)
		return 2
	}
	index, err := writeIndex(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailflow conformance:", err)
		return 2
	}
	fmt.Printf("\nreports: %s, %s, %s\n", filepath.Join(*dir, t.Name()+".junit.xml"), filepath.Join(*dir, t.Name()+".json"), index)
	if *verdictsOnly && len(res.SuiteFailures) == 0 && !aborted(res) {
		return 0
	}
	return res.ExitCode(*strict)
}

// liveFlags are the flags of a live host target (smtp://HOST:PORT).
type liveFlags struct {
	scenario, listen, caDir string
	settingsOnly            bool
}

// check refuses live flags without a live target.
func (lf liveFlags) check(fs *flag.FlagSet, isLive bool) error {
	if isLive {
		return nil
	}
	for _, name := range []string{"scenario", "listen", "ca-dir", "print-settings"} {
		if explicit(fs, name) {
			return fmt.Errorf("--%s is for a live host target (--target smtp://HOST[:PORT])", name)
		}
	}
	return nil
}

// setenv hands the live flags to the framework, which makes the target.
func (lf liveFlags) setenv() error {
	for k, v := range map[string]string{framework.LiveScenarioEnv: lf.scenario, framework.LiveListenEnv: lf.listen, framework.LiveCADirEnv: lf.caDir} {
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	return nil
}

// explicit says whether the flag was given on the command line.
func explicit(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// startLive prints the settings the live host needs and checks that the run can
// start (the addresses are this host's and free, the host greets); done says the
// command ends here, with code. The settings go to stdout when they are all the
// command prints, and to stderr before a run, whose stdout is the report alone.
func startLive(lt framework.Live, settingsOnly bool) (code int, done bool) {
	out := os.Stderr
	if settingsOnly {
		out = os.Stdout
	}
	if err := lt.Settings().Write(out); err != nil {
		fmt.Fprintln(os.Stderr, "mailflow conformance:", err)
		return 2, true
	}
	if settingsOnly {
		return 0, true
	}
	fmt.Fprintln(out)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := lt.Check(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "mailflow conformance:", err)
		return 2, true
	}
	return 0, false
}

// defaultProcs is the number of CPUs, at least 4: specs mostly wait on the network and
// on timers, not on the CPU.
func defaultProcs() int { return max(runtime.NumCPU(), 4) }

type workerFlags struct {
	proc, total int
	host        string
	seed        int64
}

// setGinkgoFlags sets Ginkgo's flags as the ginkgo CLI would on its command line.
func setGinkgoFlags(flags map[string]string) error {
	for k, v := range flags {
		if err := flag.CommandLine.Set(k, v); err != nil {
			return err
		}
	}
	return nil
}

// runSerial runs every spec in this process, one after another.
func runSerial(flags map[string]string, onSpec func(types.SpecReport)) (types.Report, error) {
	if err := setGinkgoFlags(flags); err != nil {
		return types.Report{}, err
	}
	if onSpec != nil {
		reportAfterEach = onSpec
	}
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.RunSpecs(&failT{}, "mailflow conformance")
	stopSharedFixtures()
	return suiteReport, nil
}

// stopSharedFixtures stops what the worlds of this process shared: the spamd that the
// first world whose content filter asks the world's spamd (FILTER-013) started.
func stopSharedFixtures() {
	if err := spamdaemon.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "mailflow: stopping spamd:", err)
	}
}

// runWorker is one worker process of a parallel run: Ginkgo's own parallel mode, the
// parent serving its protocol (internal/parallel).
func runWorker(w workerFlags, flags map[string]string) int {
	for k, v := range parallel.WorkerFlags(w.proc, w.total, w.host) {
		flags[k] = v
	}
	flags["ginkgo.seed"] = fmt.Sprint(w.seed)
	if err := setGinkgoFlags(flags); err != nil {
		fmt.Fprintln(os.Stderr, "mailflow conformance worker:", err)
		return 2
	}
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.RunSpecs(&failT{}, "mailflow conformance")
	stopSharedFixtures()
	return 0
}

// runParallel runs the specs in procs worker processes of this binary, which share one
// spec order and one run label, and merges what they report.
func runParallel(procs int, args []string, onSpec func(types.SpecReport)) (types.Report, error) {
	self, err := os.Executable()
	if err != nil {
		return types.Report{}, err
	}
	seed := time.Now().UnixNano() % 1_000_000
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	spawn := func(_ context.Context, proc, total int, host string) *exec.Cmd {
		wargs := append([]string{"conformance"}, args...)
		wargs = append(wargs, "--worker", fmt.Sprint(proc), "--worker-total", fmt.Sprint(total),
			"--worker-host", host, "--worker-seed", fmt.Sprint(seed))
		cmd := exec.Command(self, wargs...)
		cmd.Env = append(os.Environ(), parallel.ProtocolEnv+"=HTTP", dockernet.RunEnv+"="+dockernet.RunID)
		// What a worker prints outside a spec (a server's last log lines) is no part
		// of the report.
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		// A worker gets its own process group, so Ctrl-C reaches it once, from here:
		// it then tears down what its spec started before it exits.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		return cmd
	}
	var opts []parallel.Option
	if onSpec != nil {
		opts = append(opts, parallel.OnSpec(onSpec))
	}
	return parallel.Run(ctx, procs, spawn, opts...)
}

// inCatalogOrder puts spec reports in the order of their code, whatever order the
// workers ran them in, so a clause's specs are listed alike in every run.
func inCatalogOrder(specs types.SpecReports) {
	sort.SliceStable(specs, func(i, j int) bool {
		a, b := specs[i].LeafNodeLocation, specs[j].LeafNodeLocation
		if a.FileName != b.FileName {
			return a.FileName < b.FileName
		}
		if a.LineNumber != b.LineNumber {
			return a.LineNumber < b.LineNumber
		}
		return specs[i].FullText() < specs[j].FullText()
	})
}

// progressLine prints, as each spec ends, its clause, the target, the spec's verdict
// and its time: a long run against a third-party MTA shows where it is.
func progressLine(w io.Writer, target string, catalog []spec.Clause) func(types.SpecReport) {
	var mu sync.Mutex
	return func(sr types.SpecReport) {
		if sr.LeafNodeType.Is(types.NodeTypesForSuiteLevelNodes) || sr.State == types.SpecStateSkipped && sr.Failure.Message == "" {
			return
		}
		res := report.Build(target, types.Report{SpecReports: types.SpecReports{sr}}, catalog)
		mu.Lock()
		defer mu.Unlock()
		for _, c := range res.Clauses {
			if len(c.Specs) == 0 {
				continue
			}
			fmt.Fprintf(w, "%-10s %-20s %-7s %7s  %s\n", c.Clause.ID, target, c.Verdict, sr.RunTime.Round(100*time.Millisecond), sr.FullText())
		}
	}
}

// sweep removes what a run cut short left behind: a spec interrupted while its world
// was starting had containers no cleanup knew of yet. After a whole run nothing is
// left, and a count here is a teardown bug worth reporting.
func sweep() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, n, err := dockernet.Sweep(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailflow conformance: removing this run's leftovers:", err)
		return
	}
	if c+n > 0 {
		fmt.Fprintf(os.Stderr, "mailflow conformance: removed %d container(s) and %d network(s) this run had left behind\n", c, n)
	}
}

// dockerAnswers pings the engine with a short deadline, so a missing engine is one
// line at once rather than a hang in the first spec.
func dockerAnswers() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if i := strings.IndexByte(msg, '\n'); i > 0 {
			msg = msg[:i]
		}
		return fmt.Errorf("no engine answers (docker info: %v: %s)", err, msg)
	}
	return nil
}

// writeReports writes TARGET.json (what `conformance report` reads) and
// TARGET.junit.xml, so one directory collects the runs of every target.
func writeReports(res *report.Result, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, write := range map[string]func(*os.File) error{
		res.Target + ".junit.xml": func(f *os.File) error { return res.WriteJUnit(f) },
		res.Target + ".json":      func(f *os.File) error { return res.WriteJSON(f) },
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

// writeIndex writes DIR/index.html, the page of every run whose TARGET.json is in dir,
// and returns its path. Runs of several targets may share dir and end at once (make
// test-mta), so the page is written whole under another name and renamed into place,
// and a report another run is still writing is left out of this page, not an error.
func writeIndex(dir string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return "", err
	}
	var results []*report.Result
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		r, err := report.ReadJSON(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "mailflow conformance: index.html leaves out %s: %v\n", p, err)
			continue
		}
		results = append(results, r)
	}
	return writeIndexOf(dir, results)
}

// writeIndexOf writes DIR/index.html for results.
func writeIndexOf(dir string, results []*report.Result) (string, error) {
	path := filepath.Join(dir, "index.html")
	tmp, err := os.CreateTemp(dir, ".index-*.html")
	if err != nil {
		return "", err
	}
	werr := report.WriteIndexHTML(tmp, results, time.Now())
	if err := errors.Join(werr, tmp.Chmod(0o644), tmp.Close()); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return path, nil
}

func runMatrix(args []string) int {
	fs := flag.NewFlagSet("conformance report", flag.ContinueOnError)
	out := fs.String("out", "", "directory for matrix.md, matrix.html and index.html (default: the first report's directory)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	files := fs.Args()
	if len(files) == 0 {
		fmt.Fprintln(os.Stderr, "mailflow conformance report: name one or more TARGET.json reports (e.g. report/*.json)")
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
	// Columns in a fixed order whatever order the shell's glob gave.
	report.SortTargets(results)
	m := report.Matrix(results)
	if err := m.WriteMatrixText(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mailflow conformance report:", err)
		return 2
	}
	dir := *out
	if dir == "" {
		dir = filepath.Dir(files[0])
	}
	var written []string
	for name, write := range map[string]func(io.Writer) error{"matrix.md": m.WriteMatrixMarkdown, "matrix.html": m.WriteMatrixHTML} {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailflow conformance report:", err)
			return 2
		}
		werr := write(f)
		if err := errors.Join(werr, f.Close()); err != nil {
			fmt.Fprintf(os.Stderr, "mailflow conformance report: %s: %v\n", p, err)
			return 2
		}
		written = append(written, p)
	}
	index, err := writeIndexOf(dir, results)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailflow conformance report:", err)
		return 2
	}
	written = append(written, index)
	sort.Strings(written)
	fmt.Printf("\nmatrix: %s\n", strings.Join(written, ", "))
	return 0
}

// aborted says whether the run was cut short (a target that could not start aborts the
// suite): its verdicts are incomplete whatever they say.
func aborted(res *report.Result) bool {
	for _, c := range res.Clauses {
		for _, s := range c.Specs {
			if s.State == "aborted" {
				return true
			}
		}
	}
	return false
}
