package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mailflow/mailflow/bench/mtaload"
)

// benchOptions are the flags of `mailflow bench`.
type benchOptions struct {
	sink, edgeIP, dir              string
	postfix, postfixPID, postfixID string
	sizes, clients                 []int
	messages                       int
	queued, queuedSize             int
	queuedClients                  int
	runs, sustained                int
	wait, settle                   time.Duration
}

// runBench measures the queue of the reference Edge, run as its own `mailflow server`
// process on a real disk (every accepted message fsynced before its 250): messages/s
// accepted and delivered to a sink, the time from 250 to the sink, and resident memory
// with many messages queued. With --postfix it puts the same load on a Postfix that
// relays to the same sink (`make bench-postfix` starts one) and prints the ratio.
func runBench(args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o benchOptions
	fs.StringVar(&o.sink, "sink", "", "ip:port the sink listens on (default: a random loopback address)")
	fs.StringVar(&o.edgeIP, "edge", "", "loopback address the Edge listens on (default: the sink's)")
	fs.StringVar(&o.dir, "dir", "", "where the Edge's spool goes (default: a temporary directory)")
	fs.StringVar(&o.postfix, "postfix", "", "ip:port of a Postfix that relays to --sink; adds its column")
	fs.StringVar(&o.postfixPID, "postfix-pid", "", "Postfix's master.pid, for its memory")
	fs.StringVar(&o.postfixID, "postfix-name", "Postfix", "the Postfix column's heading")
	sizes := fs.String("sizes", "10240,102400", "message sizes in bytes, comma-separated")
	clients := fs.String("clients", "1,32", "concurrent clients, comma-separated")
	fs.IntVar(&o.messages, "messages", 1000, "messages per size and client count")
	fs.IntVar(&o.runs, "runs", 3, "runs of each load and MTA; the report gives the median and the spread")
	fs.IntVar(&o.sustained, "sustained", 25000, "messages of the sustained load (the first size, the most clients; 0: none)")
	fs.IntVar(&o.queued, "queued", 100000, "messages queued for the memory figure (0: none)")
	fs.IntVar(&o.queuedSize, "queued-size", 10240, "size of the queued messages in bytes")
	fs.IntVar(&o.queuedClients, "queued-clients", 32, "concurrent clients queueing them")
	fs.DurationVar(&o.settle, "settle", 110*time.Second, "how long both MTAs hold their queued messages before their memory is read again (Postfix ends idle workers after 100 s)")
	fs.DurationVar(&o.wait, "wait", 10*time.Minute, "longest wait for the deliveries (or deferrals) of one load after its last 250")
	org := fs.String("org", "", "instead: sites of generated organisations, comma-separated (e.g. 10,50,200), each run whole in this process")
	var oo orgOptions
	fs.IntVar(&oo.messages, "org-messages", 10000, "with --org: messages sent through each organisation")
	fs.IntVar(&oo.clients, "org-clients", 32, "with --org: concurrent clients sending them to the Edge")
	fs.IntVar(&oo.size, "org-size", 10240, "with --org: message size in bytes")
	fs.IntVar(&oo.recipientsPerMbx, "org-recipients", 20, "with --org: recipients per Mailbox server")
	cpuProfile := fs.String("org-cpuprofile", "", "with --org: write a CPU profile of the runs to this file (go tool pprof)")
	blockProfile := fs.String("org-blockprofile", "", "with --org: write where goroutines waited (blocking and mutex profiles) to FILE.block and FILE.mutex")
	fs.DurationVar(&oo.wait, "org-wait", 5*time.Minute, "with --org: longest wait for the messages to be stored after the last 250")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *org != "" {
		var err error
		if oo.sites, err = intList(*org); err != nil || fs.NArg() > 0 || oo.messages < 1 || oo.clients < 1 || oo.recipientsPerMbx < 1 {
			fmt.Fprintln(os.Stderr, "usage: mailflow bench --org 10,50,200 [--org-messages N] [--org-clients N] [--org-size BYTES]")
			return 2
		}
		oo.dir = o.dir
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		// The organisation runs in this process, so its profile is this process's.
		endProfiles, err := startProfiles(*cpuProfile, *blockProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailflow bench:", err)
			return 1
		}
		rs, err := benchOrg(ctx, oo, os.Stderr)
		if perr := endProfiles(); perr != nil {
			fmt.Fprintln(os.Stderr, "mailflow bench:", perr)
		}
		printOrg(os.Stdout, oo, rs)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailflow bench:", err)
			return 1
		}
		return 0
	}
	var err error
	if o.sizes, err = intList(*sizes); err == nil {
		o.clients, err = intList(*clients)
	}
	if err != nil || fs.NArg() > 0 || o.messages < 1 || o.runs < 1 || (o.postfixPID != "" && o.postfix == "") {
		fmt.Fprintln(os.Stderr, "usage: mailflow bench [--sizes 10240,102400] [--clients 1,32] [--messages N] [--queued N]\n"+
			"                      [--sink ip:port] [--postfix ip:port [--postfix-pid FILE]]")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench(ctx, o, os.Stderr)
	rep.print(os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailflow bench:", err)
		return 1
	}
	return 0
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q: want positive numbers", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// bench runs every load on the Edge, then on Postfix, size by size and client count by
// client count, so both see the machine in much the same state; then the memory
// figures.
func bench(ctx context.Context, o benchOptions, progress io.Writer) (*benchReport, error) {
	if o.sink == "" {
		o.sink = net.JoinHostPort(fmt.Sprintf("127.216.%d.%d", rand.IntN(250)+1, rand.IntN(250)+1), "0")
	}
	if o.edgeIP == "" {
		o.edgeIP, _, _ = net.SplitHostPort(o.sink)
	}
	rep := &benchReport{opts: o}
	dir, err := os.MkdirTemp(o.dir, "mailflow-bench-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)
	sink, err := mtaload.StartSink(ctx, o.sink)
	if err != nil {
		return rep, err
	}
	defer sink.Close()
	if o.postfix != "" {
		if err := waitListening(ctx, o.postfix, 30*time.Second); err != nil {
			return rep, fmt.Errorf("postfix: %w", err)
		}
	}

	edge, err := startBenchEdge(ctx, filepath.Join(dir, "throughput"), o.edgeIP, sink.Addr())
	if err != nil {
		return rep, err
	}
	defer edge.stop()
	targets := []string{edge.addr, o.postfix}
	syncs := true // until perf says it cannot count them here
	var loads []benchRow
	for _, size := range o.sizes {
		for _, c := range o.clients {
			loads = append(loads, benchRow{size: size, clients: c, messages: o.messages})
		}
	}
	if o.sustained > 0 {
		// The delivery side keeping up, not a burst: many more messages than a row, from
		// the most clients, of the first size.
		loads = append(loads, benchRow{size: o.sizes[0], clients: slices.Max(o.clients), messages: o.sustained})
	}
	for _, load := range loads {
		size, c := load.size, load.clients
		rep.rows = append(rep.rows, load)
		r := &rep.rows[len(rep.rows)-1]
		// Run by run, each MTA in turn, so both see the machine in much the same
		// state; the median of the runs is reported, and their spread.
		for run := 0; run < o.runs; run++ {
			for i, addr := range targets {
				if addr == "" {
					continue
				}
				fmt.Fprintf(progress, "bench: %s: %d messages of %s from %s (run %d of %d)\n", rep.heading(i), load.messages, kb(size), plural(c, "client"), run+1, o.runs)
				var counter *mtaload.SyncCounter
				if syncs {
					if counter, err = mtaload.StartSyncCounter(dir); err != nil {
						fmt.Fprintf(progress, "bench: no fsync figures: %v\n", err)
						rep.noSyncs, syncs = err.Error(), false
					}
				}
				res, err := mtaload.Run(ctx, addr, sink, mtaload.Load{Messages: load.messages, Size: size, Clients: c},
					mtaload.WithDeliveryWait(o.wait))
				if counter != nil {
					if n, cerr := counter.Stop(); cerr == nil && res.Accepted > 0 {
						res.Fsyncs = &n
					} else if cerr != nil {
						fmt.Fprintf(progress, "bench: %v\n", cerr)
					}
				}
				if res.Accepted > 0 {
					r.res[i] = append(r.res[i], &res)
				}
				if err != nil {
					return rep, fmt.Errorf("%s, %s, %s: %w", rep.heading(i), kb(size), plural(c, "client"), err)
				}
				if res.Failed > 0 {
					return rep, fmt.Errorf("%s: %d messages refused, the first: %w", rep.heading(i), res.Failed, res.FirstErr)
				}
			}
		}
	}
	if err := edge.stop(); err != nil {
		return rep, err
	}
	if o.queued == 0 {
		return rep, nil
	}

	return rep, measureMemory(ctx, rep, sink, dir, progress)
}

// measureMemory queues o.queued messages in each MTA and reads the memory of its
// processes once it holds them, then again after o.settle. Postfix gets its messages
// over SMTP, the sink deferring each; the Edge's spool is filled as the Edge leaves
// deferred messages, and the Edge started on it. Over SMTP the Edge would try and
// rewrite each message once, one at a time under its queue's lock, which for 100k
// messages takes it longer than the rest of the run. The two MTAs fill at the same
// time, so the run waits for the slower only.
func measureMemory(ctx context.Context, rep *benchReport, sink *mtaload.Sink, dir string, progress io.Writer) error {
	o := rep.opts
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var pids [2]func() (int, error)
	var wg sync.WaitGroup
	if o.postfix != "" && o.postfixPID != "" {
		pids[1] = func() (int, error) { return readPIDFile(o.postfixPID) }
		wg.Go(func() {
			fmt.Fprintf(progress, "bench: %s: queueing %d messages of %s over SMTP\n", rep.heading(1), o.queued, kb(o.queuedSize))
			m, err := queueAndMeasure(ctx, sink, o.postfix, pids[1], o, progress)
			if err != nil {
				cancel(fmt.Errorf("%s: %w", rep.heading(1), err))
				return
			}
			fmt.Fprintf(progress, "bench: %s: %d messages queued and tried in %s\n", rep.heading(1), m.queued, m.fill.Round(time.Second))
			rep.memory[1] = m
		})
	}
	fmt.Fprintf(progress, "bench: %s: putting %d messages of %s in its spool\n", rep.heading(0), o.queued, kb(o.queuedSize))
	start := time.Now()
	memDir := filepath.Join(dir, "memory")
	err := seedSpool(ctx, filepath.Join(memDir, "spool", "EDGE1"), o.queued, o.queuedSize, o.queuedClients)
	var edge *benchEdge
	if err == nil {
		edge, err = startBenchEdge(ctx, memDir, o.edgeIP, sink.Addr())
	}
	if err == nil {
		defer edge.stop()
		pids[0] = func() (int, error) { return edge.cmd.Process.Pid, nil }
		m := &benchMemory{queued: o.queued, fill: time.Since(start)}
		m.busy, err = mtaload.TreeMemory(edge.cmd.Process.Pid)
		fmt.Fprintf(progress, "bench: %s: started on %d spooled messages after %s\n", rep.heading(0), m.queued, m.fill.Round(time.Second))
		rep.memory[0] = m
	}
	if err != nil {
		cancel(fmt.Errorf("%s: %w", rep.heading(0), err))
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if o.settle > 0 {
		// Both read at the same moment, each having held its queue at least this long:
		// worker processes and heap left over from the queueing are gone by then.
		fmt.Fprintf(progress, "bench: reading memory again in %s\n", o.settle)
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(o.settle):
		}
		for i, m := range rep.memory {
			if m == nil {
				continue
			}
			p, err := pids[i]()
			if err == nil {
				m.settled, err = mtaload.TreeMemory(p)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", rep.heading(i), err)
			}
		}
	}
	// What a full queue costs new mail: the same load as a throughput row, taken while
	// each MTA holds the deferred messages (due again long after the load).
	addrs := [2]string{edge.addr, o.postfix}
	for i, m := range rep.memory {
		if m == nil {
			continue
		}
		fmt.Fprintf(progress, "bench: %s: %d messages of %s from %s with %d queued\n", rep.heading(i), o.messages, kb(o.queuedSize), plural(o.queuedClients, "client"), o.queued)
		res, err := mtaload.Run(ctx, addrs[i], sink, mtaload.Load{Messages: o.messages, Size: o.queuedSize, Clients: o.queuedClients},
			mtaload.WithDeliveryWait(o.wait))
		if err != nil {
			return fmt.Errorf("%s, with %d queued: %w", rep.heading(i), o.queued, err)
		}
		m.loaded = &res
	}
	return edge.stop()
}

// queueAndMeasure queues o.queued messages with the sink deferring every one, waits
// until each has been tried once (so it sits in the queue as a deferred message, not
// a new one), and reads the memory of the MTA's processes.
func queueAndMeasure(ctx context.Context, sink *mtaload.Sink, addr string, pid func() (int, error), o benchOptions, progress io.Writer) (*benchMemory, error) {
	sink.DeferAll(true)
	defer sink.DeferAll(false)
	base := sink.Deferred()
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				fmt.Fprintf(progress, "bench:   %d tried\n", sink.Deferred()-base)
			}
		}
	}()
	sub, err := mtaload.Submit(ctx, addr, mtaload.Load{Messages: o.queued, Size: o.queuedSize, Clients: o.queuedClients})
	if err != nil {
		return nil, err
	}
	if sub.Failed > 0 {
		return nil, fmt.Errorf("%d messages refused, the first: %w", sub.Failed, sub.FirstErr)
	}
	wctx, cancel := context.WithTimeout(ctx, o.wait)
	defer cancel()
	if err := sink.WaitDeferred(wctx, base+int64(sub.Count())); err != nil {
		return nil, fmt.Errorf("%d of %d queued messages tried: %w", sink.Deferred()-base, sub.Count(), err)
	}
	m := &benchMemory{queued: sub.Count(), fill: time.Since(sub.Start)}
	p, err := pid()
	if err == nil {
		m.busy, err = mtaload.TreeMemory(p)
	}
	return m, err
}

func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("pid file %s: %w", path, err)
	}
	return n, nil
}

func waitListening(ctx context.Context, addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s: %w", addr, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
