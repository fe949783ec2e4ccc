// Package parallel runs one Ginkgo suite in several processes of the same binary and
// collects one report, as the ginkgo CLI does for `ginkgo -p`: the parent serves
// Ginkgo's parallel protocol (its HTTP flavour, GINKGO_PARALLEL_PROTOCOL=HTTP) and the
// workers are ordinary RunSpecs calls with the parallel.* flags set, so Ginkgo itself
// hands out specs one at a time, runs Serial specs on process 1 once the others are
// done and keeps Ordered containers on one process.
//
// The protocol is Ginkgo's internal one (internal/parallel_support), which no package
// outside Ginkgo may import; this is the server side of it for the pinned Ginkgo
// version, and TestRoundTrip runs real workers against it so a Ginkgo upgrade that
// changes the protocol fails there.
package parallel

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/onsi/ginkgo/v2/types"
)

// ProtocolEnv must be HTTP in every worker's environment: Ginkgo's client speaks
// net/rpc otherwise.
const ProtocolEnv = "GINKGO_PARALLEL_PROTOCOL"

// Server is the parent's side of the protocol for total worker processes.
type Server struct {
	total  int
	ln     net.Listener
	srv    *http.Server
	onSpec func(types.SpecReport)
	output io.Writer

	mu                sync.Mutex
	alive             []func() bool
	ended             []bool
	begun, endedCount int
	aggregated        types.Report
	reportBeforeSuite types.SpecState
	beforeSuite       beforeSuiteState
	counter           int
	abort             bool
	done              chan struct{}
}

// beforeSuiteState is what process 1 posts after a SynchronizedBeforeSuite.
type beforeSuiteState struct {
	Data  []byte
	State types.SpecState
}

// counterReply is the /counter answer: the index of the next spec to run.
type counterReply struct{ Index int }

// Option configures a Server.
type Option func(*Server)

// OnSpec is called once for every spec (and suite node) a worker finished, as it
// finishes: progress while the run goes on.
func OnSpec(f func(types.SpecReport)) Option { return func(s *Server) { s.onSpec = f } }

// Output is where what workers emit through the protocol goes (default: discarded;
// Ginkgo's workers send their reporter's output only when they have one).
func Output(w io.Writer) Option { return func(s *Server) { s.output = w } }

// Listen starts a server for total workers on a loopback port.
func Listen(total int, opts ...Option) (*Server, error) {
	if total < 1 {
		return nil, errors.New("parallel: need at least one worker")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{
		total: total, ln: ln, output: io.Discard,
		alive: make([]func() bool, total), ended: make([]bool, total),
		reportBeforeSuite: types.SpecStateInvalid,
		beforeSuite:       beforeSuiteState{State: types.SpecStateInvalid},
		done:              make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/up", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("/suite-will-begin", s.suiteWillBegin)
	mux.HandleFunc("/did-run", s.didRun)
	mux.HandleFunc("/suite-did-end", s.suiteDidEnd)
	mux.HandleFunc("/emit-output", s.emitOutput)
	mux.HandleFunc("/progress-report", s.progressReport)
	mux.HandleFunc("/report-before-suite-completed", s.reportBeforeSuiteCompleted)
	mux.HandleFunc("/report-before-suite-state", s.reportBeforeSuiteState)
	mux.HandleFunc("/before-suite-completed", s.beforeSuiteCompleted)
	mux.HandleFunc("/before-suite-state", s.beforeSuiteStateHandler)
	mux.HandleFunc("/have-nonprimary-procs-finished", s.nonprimaryFinished)
	mux.HandleFunc("/aggregated-nonprimary-procs-report", s.aggregatedNonprimary)
	mux.HandleFunc("/counter", s.nextCounter)
	mux.HandleFunc("/abort", s.abortHandler)
	s.srv = &http.Server{Handler: mux}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Host is what workers get as --ginkgo.parallel.host.
func (s *Server) Host() string { return "http://" + s.ln.Addr().String() }

// RegisterAlive tells the server how to see that worker proc (1-based) still runs, so a
// worker that died does not leave the others waiting for it.
func (s *Server) RegisterAlive(proc int, alive func() bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alive[proc-1] = alive
}

// Done is closed once every worker has posted the end of its suite.
func (s *Server) Done() <-chan struct{} { return s.done }

// Report is the merge of every report the workers posted at the end of their suite,
// and how many did.
func (s *Server) Report() (types.Report, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.aggregated, s.endedCount
}

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	defer r.Body.Close()
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return false
	}
	return true
}

func (s *Server) suiteWillBegin(w http.ResponseWriter, r *http.Request) {
	var rep types.Report
	if !decode(w, r, &rep) {
		return
	}
	s.mu.Lock()
	s.begun++
	s.mu.Unlock()
}

func (s *Server) didRun(w http.ResponseWriter, r *http.Request) {
	var rep types.SpecReport
	if !decode(w, r, &rep) {
		return
	}
	if s.onSpec != nil {
		s.onSpec(rep)
	}
}

func (s *Server) suiteDidEnd(w http.ResponseWriter, r *http.Request) {
	var rep types.Report
	if !decode(w, r, &rep) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := rep.SuiteConfig.ParallelProcess; p >= 1 && p <= s.total {
		if s.ended[p-1] {
			return
		}
		s.ended[p-1] = true
	}
	s.endedCount++
	if s.endedCount == 1 {
		s.aggregated = rep
	} else {
		s.aggregated = s.aggregated.Add(rep)
	}
	if s.endedCount == s.total {
		close(s.done)
	}
}

func (s *Server) emitOutput(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.output.Write(b)
}

func (s *Server) progressReport(w http.ResponseWriter, r *http.Request) {
	var rep types.ProgressReport
	decode(w, r, &rep)
}

func (s *Server) reportBeforeSuiteCompleted(w http.ResponseWriter, r *http.Request) {
	var st types.SpecState
	if !decode(w, r, &st) {
		return
	}
	s.mu.Lock()
	s.reportBeforeSuite = st
	s.mu.Unlock()
}

// early answers a poll that must be repeated (425), or that will never be answered
// because process 1 is gone (410).
func (s *Server) early(w http.ResponseWriter) {
	if s.procAlive(1) {
		w.WriteHeader(http.StatusTooEarly)
	} else {
		w.WriteHeader(http.StatusGone)
	}
}

func (s *Server) reportBeforeSuiteState(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	st := s.reportBeforeSuite
	s.mu.Unlock()
	if st == types.SpecStateInvalid {
		s.early(w)
		return
	}
	_ = json.NewEncoder(w).Encode(st)
}

func (s *Server) beforeSuiteCompleted(w http.ResponseWriter, r *http.Request) {
	var st beforeSuiteState
	if !decode(w, r, &st) {
		return
	}
	s.mu.Lock()
	s.beforeSuite = st
	s.mu.Unlock()
}

func (s *Server) beforeSuiteStateHandler(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	st := s.beforeSuite
	s.mu.Unlock()
	if st.State == types.SpecStateInvalid {
		s.early(w)
		return
	}
	_ = json.NewEncoder(w).Encode(st)
}

func (s *Server) procAlive(proc int) bool {
	s.mu.Lock()
	alive := s.alive[proc-1]
	s.mu.Unlock()
	return alive == nil || alive()
}

func (s *Server) procFinished(proc int) bool {
	s.mu.Lock()
	ended := s.ended[proc-1]
	s.mu.Unlock()
	return ended || !s.procAlive(proc)
}

func (s *Server) nonprimaryDone() bool {
	for p := 2; p <= s.total; p++ {
		if !s.procFinished(p) {
			return false
		}
	}
	return true
}

func (s *Server) nonprimaryFinished(w http.ResponseWriter, _ *http.Request) {
	if !s.nonprimaryDone() {
		w.WriteHeader(http.StatusTooEarly)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// aggregatedNonprimary is what process 1 reads before its ReportAfterSuite nodes: the
// other processes' reports, merged.
func (s *Server) aggregatedNonprimary(w http.ResponseWriter, _ *http.Request) {
	if !s.nonprimaryDone() {
		w.WriteHeader(http.StatusTooEarly)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.endedCount != s.total-1 {
		w.WriteHeader(http.StatusGone)
		return
	}
	_ = json.NewEncoder(w).Encode(s.aggregated)
}

func (s *Server) nextCounter(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	n := s.counter
	s.counter++
	s.mu.Unlock()
	_ = json.NewEncoder(w).Encode(counterReply{Index: n})
}

func (s *Server) abortHandler(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method == http.MethodGet {
		if s.abort {
			w.WriteHeader(http.StatusGone)
		} else {
			w.WriteHeader(http.StatusOK)
		}
		return
	}
	s.abort = true
}
