package framework

import (
	"context"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/scenarios"
	"github.com/mailflow/mailflow/trace"
)

// World is one spec's running topology.
type World struct {
	Topology
	Scenario *scenario.Scenario
	sessions []*Session
}

// Start parses the scenario text, brings its world up on the current target and
// registers its teardown with the spec.
func Start(name, yamlText string) *World {
	ginkgo.GinkgoHelper()
	s, err := scenario.Parse(name, []byte(yamlText))
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "scenario %s", name)
	return StartScenario(s)
}

// StartShipped brings up one of the scenarios shipped in scenarios/ by file name.
func StartShipped(name string) *World {
	ginkgo.GinkgoHelper()
	s, err := scenarios.Load(name)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return StartScenario(s)
}

// StartScenario brings up an already parsed scenario.
func StartScenario(s *scenario.Scenario) *World {
	ginkgo.GinkgoHelper()
	t, err := CurrentTarget()
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topo, err := t.Start(ctx, s)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "starting %s on %s", s.File, t.Name())
	w := &World{Topology: topo, Scenario: s}
	ginkgo.DeferCleanup(func() {
		for _, s := range w.sessions {
			s.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		gomega.Expect(topo.Stop(ctx)).To(gomega.Succeed())
	})
	return w
}

// MustHost is a fake host by name, failing the spec when there is none.
func (w *World) MustHost(name string) *internet.Host {
	ginkgo.GinkgoHelper()
	h := w.Host(name)
	gomega.Expect(h).NotTo(gomega.BeNil(), "no fake host %q in %s", name, w.Scenario.File)
	return h
}

// Events returns the trace events of one type (all servers).
func (w *World) Events(t trace.Type) []trace.Event {
	return trace.OfType(w.Trace().Events(), t, "")
}

// Received is every message the named hosts accepted.
func (w *World) Received(hosts ...string) []internet.Message {
	var out []internet.Message
	for _, h := range hosts {
		if host := w.Host(h); host != nil {
			out = append(out, host.Messages()...)
		}
	}
	return out
}

// Queue is how many messages a server holds.
func (w *World) Queue(server string) int { return w.QueueLen(server) }
