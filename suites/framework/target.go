package framework

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/onsi/ginkgo/v2"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/fixtures/clamdaemon"
	"github.com/mailflow/mailflow/fixtures/dnsfake"
	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/fixtures/ldapfake"
	"github.com/mailflow/mailflow/fixtures/spamdaemon"
	"github.com/mailflow/mailflow/profiles"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/targets/containers"
	"github.com/mailflow/mailflow/targets/inprocess"
	"github.com/mailflow/mailflow/targets/live"
	"github.com/mailflow/mailflow/targets/mta"
	"github.com/mailflow/mailflow/trace"
)

// Topology is a running world as suites see it: where to connect, what happened, and
// the fixtures (which run in the test process whatever the target).
type Topology interface {
	Endpoint(server, connector string) (addr string, err error)
	Trace() trace.Reader
	Clock() clock.Controller
	Host(name string) *internet.Host
	DNS() *dnsfake.Server
	Directory() *ldapfake.Server
	// QueueLen is how many messages a server holds.
	QueueLen(server string) int
	Stop(ctx context.Context) error
}

// Target starts topologies.
type Target interface {
	Name() string
	Start(ctx context.Context, s *scenario.Scenario) (Topology, error)
}

// InProcess is the default target: the reference topology inside the test process.
type InProcess struct{}

func (InProcess) Name() string { return "reference-inprocess" }

func (InProcess) Start(ctx context.Context, s *scenario.Scenario) (Topology, error) {
	// Each parallel process gets its own 127.B.0.0/16 block.
	block := byte(20 + ginkgo.GinkgoParallelProcess())
	return inprocess.Start(ctx, s, inprocess.WithBlock(block), inprocess.WithLogger(SpecLogger()))
}

// Lacks says why the in-process reference cannot run a feature here: antivirus needs
// a clamd installed on this machine, which the topology starts, and the content filter
// a spamd, which the test process starts.
func (InProcess) Lacks(feature string) string {
	var err error
	switch feature {
	case profiles.FeatureAntivirus:
		_, err = clamdaemon.Find()
	case profiles.FeatureContentFilter:
		_, err = spamdaemon.Find()
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// SpecLogger is the log of a spec's servers: what they warn of (a directory lookup
// that failed while a spec took the directory down) belongs to the spec, in the output
// Ginkgo keeps with it and shows when it fails, never in the report on stdout.
func SpecLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(ginkgo.GinkgoWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// Containers is the reference topology as one container per server.
type Containers struct{}

func (Containers) Name() string { return "reference-containers" }

func (Containers) Start(ctx context.Context, s *scenario.Scenario) (Topology, error) {
	return containers.Start(ctx, s)
}

// MTA is a third-party MTA playing the scenario's Edge, configured by its profile:
// Profile is a built-in profile's name or a profile directory's absolute path.
type MTA struct{ Profile string }

// Name is the profile's name (a profile directory's own name), which names the
// target's reports.
func (m MTA) Name() string {
	if profiles.IsDir(m.Profile) {
		return filepath.Base(m.Profile)
	}
	return m.Profile
}

func (m MTA) Start(ctx context.Context, s *scenario.Scenario) (Topology, error) {
	return mta.Start(ctx, s, m.Profile)
}

// Live is an MTA the user runs at smtp://HOST:PORT, configured for one scenario: only
// the specs whose world configures its Edge alike run, one at a time.
type Live struct{ *live.Target }

func (l Live) Start(ctx context.Context, s *scenario.Scenario) (Topology, error) {
	t, err := l.Target.Start(ctx, s)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Lacks is nothing: whether the host can do a feature is its user's to configure, and
// a world that needs it differs from the configured one (N/A at Start) or is it.
func (Live) Lacks(string) string { return "" }

// AnyMTAOnly says whether only clauses tagged any-mta apply on the target.
// OnReference says whether the specs run against the reference (in-process or in
// containers), whose own choice among what a clause allows a spec may hold it to; a
// third-party MTA is judged by the clause alone.
func OnReference() bool {
	t, err := CurrentTarget()
	return err == nil && !AnyMTAOnly(t)
}

func AnyMTAOnly(t Target) bool {
	switch t.(type) {
	case MTA, Live:
		return true
	}
	return false
}

// clientRanger is a topology that maps the scenario's client ranges elsewhere.
type clientRanger interface {
	ClientIn(p netip.Prefix) (netip.Addr, error)
}

// tracer says whether a topology has a message-tracking log at all (a third-party MTA
// has none the suites can read).
type tracer interface {
	Traced() bool
}

// TargetEnv names the environment variable that selects the target.
const TargetEnv = "MAILFLOW_TARGET"

// What a live host target (MAILFLOW_TARGET=smtp://HOST:PORT) is configured with:
// live.Options' Scenario, Listen and CADir.
const (
	LiveScenarioEnv = "MAILFLOW_LIVE_SCENARIO"
	LiveListenEnv   = "MAILFLOW_LIVE_LISTEN"
	LiveCADirEnv    = "MAILFLOW_LIVE_CA_DIR"
)

var (
	liveMu     sync.Mutex
	liveOpts   live.Options
	liveTarget *live.Target
)

// currentLive is the live target of the environment, made once: it loads the scenario
// and the CA, which then serves the whole process.
func currentLive(url string) (Target, error) {
	o := live.Options{Target: url, Scenario: os.Getenv(LiveScenarioEnv), Listen: os.Getenv(LiveListenEnv), CADir: os.Getenv(LiveCADirEnv)}
	liveMu.Lock()
	defer liveMu.Unlock()
	if liveTarget == nil || o != liveOpts {
		t, err := live.New(context.Background(), o)
		if err != nil {
			return nil, err
		}
		liveTarget, liveOpts = t, o
	}
	return Live{liveTarget}, nil
}

// CurrentTarget is the target selected by MAILFLOW_TARGET (default in-process).
func CurrentTarget() (Target, error) {
	switch t := os.Getenv(TargetEnv); t {
	case "", "inprocess", "reference-inprocess":
		return InProcess{}, nil
	case "containers", "reference-containers":
		return Containers{}, nil
	default:
		if live.IsTarget(t) {
			return currentLive(t)
		}
		if ref, ok := strings.CutPrefix(t, "mta:"); ok {
			if profiles.IsDir(ref) {
				// Parallel workers may not share the working directory's meaning.
				abs, err := filepath.Abs(ref)
				if err != nil {
					return nil, fmt.Errorf("%s=%q: %w", TargetEnv, t, err)
				}
				ref = abs
			}
			if _, err := profiles.Load(ref); err != nil {
				return nil, fmt.Errorf("%s=%q: %w", TargetEnv, t, err)
			}
			return MTA{Profile: ref}, nil
		}
		return nil, fmt.Errorf("%s=%q: unknown target (known: inprocess, containers, mta:%s, mta:DIR for a profile directory, smtp://HOST:PORT)", TargetEnv, t, strings.Join(profiles.Names(), "|"))
	}
}
