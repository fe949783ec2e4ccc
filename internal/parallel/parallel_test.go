package parallel

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"
)

// workerEnv makes the test binary a worker that runs the specs below.
const workerEnv = "PARALLEL_TEST_WORKER"

// meetEnv names a directory in which the workers of TestRoundTrip meet (meetAnother);
// meetDir is what spawnSelf passes, empty for the tests that do not wait.
const meetEnv = "PARALLEL_TEST_MEET"

var meetDir string

// meetAnother holds a plain spec until a second worker has begun one too. The specs
// take no time, so without it the first worker to start can run every one of them
// before the others have started, and the test would not see them spread. The wait is
// bounded: a worker that never comes is the test's failure, not a hang.
func meetAnother() {
	dir := os.Getenv(meetEnv)
	if dir == "" {
		return
	}
	me := strconv.Itoa(ginkgo.GinkgoParallelProcess())
	gomega.Expect(os.WriteFile(filepath.Join(dir, me), nil, 0o600)).To(gomega.Succeed())
	gomega.Eventually(func() []string {
		var others []string
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.Name() != me {
				others = append(others, e.Name())
			}
		}
		return others
	}).WithTimeout(20 * time.Second).WithPolling(2 * time.Millisecond).ShouldNot(gomega.BeEmpty())
}

type failT struct{}

func (failT) Fail() {}

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "" {
		os.Exit(m.Run())
	}
	flag.Parse()
	for k, v := range map[string]string{"ginkgo.no-color": "true"} {
		if err := flag.CommandLine.Set(k, v); err != nil {
			panic(err)
		}
	}
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.RunSpecs(failT{}, "parallel round trip")
	os.Exit(0)
}

var _ = ginkgo.Describe("round trip", func() {
	for i := range 12 {
		ginkgo.It(fmt.Sprintf("plain %02d", i), func() {
			meetAnother()
			ginkgo.AddReportEntry("proc", ginkgo.GinkgoParallelProcess())
		})
	}
	ginkgo.It("serial", ginkgo.Serial, func() {
		ginkgo.AddReportEntry("proc", ginkgo.GinkgoParallelProcess())
	})
	ginkgo.It("fails", func() { ginkgo.Fail("on purpose") })
	ginkgo.Context("ordered", ginkgo.Ordered, func() {
		ginkgo.It("first", func() { ginkgo.AddReportEntry("proc", ginkgo.GinkgoParallelProcess()) })
		ginkgo.It("second", func() { ginkgo.AddReportEntry("proc", ginkgo.GinkgoParallelProcess()) })
	})
})

var reportAfterSuite = ginkgo.ReportAfterSuite("aggregate", func(r ginkgo.Report) {
	// Process 1 gets every process's specs here, as in a serial run.
	ginkgo.AddReportEntry("specs seen", len(r.SpecReports))
})

func spawnSelf(ctx context.Context, proc, total int, host string) *exec.Cmd {
	args := []string{"-test.run=^$"}
	for k, v := range WorkerFlags(proc, total, host) {
		args = append(args, "-"+k+"="+v)
	}
	args = append(args, "-ginkgo.seed=7")
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), workerEnv+"=1", ProtocolEnv+"=HTTP", meetEnv+"="+meetDir)
	return cmd
}

func TestRoundTrip(t *testing.T) {
	_ = reportAfterSuite
	meetDir = t.TempDir()
	t.Cleanup(func() { meetDir = "" })
	var mu sync.Mutex
	var live []string
	rep, err := Run(context.Background(), 3, spawnSelf, OnSpec(func(s types.SpecReport) {
		mu.Lock()
		defer mu.Unlock()
		if s.LeafNodeType == types.NodeTypeIt {
			live = append(live, s.LeafNodeText)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	ran := map[string]int{}
	procs := map[int]bool{}
	var orderedProcs []int
	for _, s := range rep.SpecReports {
		if s.LeafNodeType != types.NodeTypeIt {
			continue
		}
		ran[s.LeafNodeText]++
		procs[s.ParallelProcess] = true
		switch s.LeafNodeText {
		case "serial":
			if s.ParallelProcess != 1 {
				t.Errorf("serial spec ran on process %d, want 1", s.ParallelProcess)
			}
		case "fails":
			if s.State != types.SpecStateFailed {
				t.Errorf("failing spec: state %s", s.State)
			}
		case "first", "second":
			orderedProcs = append(orderedProcs, s.ParallelProcess)
		}
	}
	if len(ran) != 16 {
		t.Errorf("%d distinct specs in the merged report, want 16: %v", len(ran), ran)
	}
	for name, n := range ran {
		if n != 1 {
			t.Errorf("spec %q ran %d times", name, n)
		}
	}
	if len(procs) < 2 {
		t.Errorf("specs ran on processes %v: not spread over the workers", procs)
	}
	if len(orderedProcs) == 2 && orderedProcs[0] != orderedProcs[1] {
		t.Errorf("an ordered container ran on processes %v", orderedProcs)
	}
	if len(live) != 16 {
		t.Errorf("progress saw %d specs as they ended, want 16: %s", len(live), strings.Join(live, ", "))
	}
	var seen any
	for _, s := range rep.SpecReports {
		if s.LeafNodeType == types.NodeTypeReportAfterSuite {
			for _, e := range s.ReportEntries {
				if e.Name == "specs seen" {
					seen = e.GetRawValue()
				}
			}
		}
	}
	if seen == nil {
		t.Errorf("process 1's ReportAfterSuite did not run or left no entry")
	}
}

func TestRunNamesACrashedWorker(t *testing.T) {
	spawn := func(ctx context.Context, proc, total int, host string) *exec.Cmd {
		if proc == 2 {
			return exec.CommandContext(ctx, "false")
		}
		return spawnSelf(ctx, proc, total, host)
	}
	_, err := Run(context.Background(), 2, spawn)
	if err == nil || !strings.Contains(err.Error(), "worker 2 of 2") {
		t.Fatalf("err = %v, want one naming worker 2", err)
	}
}
