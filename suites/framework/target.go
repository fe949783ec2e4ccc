package framework

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/onsi/ginkgo/v2"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/fixtures/dnsfake"
	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/fixtures/ldapfake"
	"github.com/mailflow/mailflow/profiles"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/targets/containers"
	"github.com/mailflow/mailflow/targets/inprocess"
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
	return inprocess.Start(ctx, s, inprocess.WithBlock(block))
}

// Containers is the reference topology as one container per server.
type Containers struct{}

func (Containers) Name() string { return "reference-containers" }

func (Containers) Start(ctx context.Context, s *scenario.Scenario) (Topology, error) {
	return containers.Start(ctx, s)
}

// MTA is a third-party MTA playing the scenario's Edge, configured by its profile.
type MTA struct{ Profile string }

func (m MTA) Name() string { return m.Profile }

func (m MTA) Start(ctx context.Context, s *scenario.Scenario) (Topology, error) {
	return mta.Start(ctx, s, m.Profile)
}

// AnyMTAOnly says whether only clauses tagged any-mta apply on the target.
func AnyMTAOnly(t Target) bool {
	_, ok := t.(MTA)
	return ok
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

// CurrentTarget is the target selected by MAILFLOW_TARGET (default in-process).
func CurrentTarget() (Target, error) {
	switch t := os.Getenv(TargetEnv); t {
	case "", "inprocess", "reference-inprocess":
		return InProcess{}, nil
	case "containers", "reference-containers":
		return Containers{}, nil
	default:
		if name, ok := strings.CutPrefix(t, "mta:"); ok {
			if _, err := profiles.Load(name); err != nil {
				return nil, fmt.Errorf("%s=%q: %w", TargetEnv, t, err)
			}
			return MTA{Profile: name}, nil
		}
		return nil, fmt.Errorf("%s=%q: unknown target (known: inprocess, containers, mta:%s)", TargetEnv, t, strings.Join(profiles.Names(), "|"))
	}
}
