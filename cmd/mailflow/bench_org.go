package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/scenario/scenariogen"
	"github.com/mailflow/mailflow/targets/inprocess"
	"github.com/mailflow/mailflow/trace"
)

// orgOptions are the flags of `mailflow bench --org`.
type orgOptions struct {
	sites            []int
	messages, size   int
	clients          int
	recipientsPerMbx int
	dir              string
	wait             time.Duration
}

// orgResult is one organisation's run: messages sent to its Edge from the Internet,
// each to one recipient on one of its Mailbox servers, until every one is stored.
type orgResult struct {
	sites, servers, recipients int
	accepted                   int
	start                      time.Duration // until the organisation was up
	sendSpan, span             time.Duration // first MAIL to last 250, and to the last mailbox delivery
	delivered                  int
	e2e, edgeHub, hubHub       []time.Duration
	hubMbx                     []time.Duration
	hubHops                    int // Hub-to-Hub relays, over all messages
	rss, peakRSS               int64
}

// benchOrg sends o.messages through a generated organisation of each size in o.sites,
// in this process, every spool on a real disk with fsync on: the Internet to the Edge,
// the Edge to a Hub, Hubs across sites, a Hub to the recipient's Mailbox server.
func benchOrg(ctx context.Context, o orgOptions, progress io.Writer) ([]orgResult, error) {
	var out []orgResult
	for _, n := range o.sites {
		fmt.Fprintf(progress, "bench: organisation of %d sites: starting\n", n)
		r, err := benchOneOrg(ctx, n, o, progress)
		if r != nil {
			out = append(out, *r)
		}
		if err != nil {
			return out, fmt.Errorf("%d sites: %w", n, err)
		}
	}
	return out, nil
}

func benchOneOrg(ctx context.Context, n int, o orgOptions, progress io.Writer) (*orgResult, error) {
	mbxPerSite := 3
	s := scenariogen.Org(n, scenariogen.WithRecipients(n*mbxPerSite*o.recipientsPerMbx))
	dir, err := os.MkdirTemp(o.dir, "mailflow-bench-org-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	r := &orgResult{sites: n, servers: len(s.Org.Servers), recipients: len(s.Org.Recipients)}
	begin := time.Now()
	topo, err := inprocess.Start(ctx, s, inprocess.WithClock(clock.Real{}), inprocess.WithSpoolRoot(dir), inprocess.WithBlock(61))
	if err != nil {
		return nil, err
	}
	defer topo.Stop(context.Background())
	r.start = time.Since(begin)
	addr, err := topo.Endpoint("EDGE1", "Internet")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "bench: %d sites, %d servers up in %s; sending %d messages of %s from %s\n",
		n, r.servers, r.start.Round(time.Millisecond), o.messages, kb(o.size), plural(o.clients, "client"))

	// The message IDs say which message an event is of; accepted holds each one's 250.
	body := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", max(1, o.size/64))
	var accepted sync.Map // Message-ID -> time.Time of its 250
	var next, count atomic.Int64
	sendStart := time.Now()
	var lastAccept atomic.Int64
	errs := make(chan error, o.clients)
	var wg sync.WaitGroup
	for c := 0; c < o.clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			cl, err := smtp.Dial(addr)
			if err != nil {
				errs <- err
				return
			}
			defer cl.Close()
			if err := cl.Hello("load.fabrikam.test"); err != nil {
				errs <- err
				return
			}
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for {
				i := next.Add(1) - 1
				if i >= int64(o.messages) || ctx.Err() != nil {
					_ = cl.Quit()
					return
				}
				rcpt := s.Org.Recipients[rng.IntN(len(s.Org.Recipients))].Mail
				id := fmt.Sprintf("org%d.%d@load.fabrikam.test", n, i)
				msg := fmt.Sprintf("From: <load@fabrikam.test>\r\nTo: <%s>\r\nMessage-ID: <%s>\r\nSubject: load %d\r\n\r\n%s", rcpt, id, i, body)
				if err := cl.SendMail("load@fabrikam.test", []string{rcpt}, strings.NewReader(msg)); err != nil {
					errs <- fmt.Errorf("message %d: %w", i, err)
					return
				}
				now := time.Now()
				accepted.Store(id, now)
				count.Add(1)
				lastAccept.Store(int64(now.Sub(sendStart)))
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return r, err
	}
	r.accepted = int(count.Load())
	r.sendSpan = time.Duration(lastAccept.Load())

	// Every message is stored once the mailbox servers have recorded a delivery for
	// each.
	deadline := time.Now().Add(o.wait)
	var events []trace.Event
	for {
		events = topo.Trace().Events()
		delivered := 0
		for _, e := range events {
			if e.Type == trace.Deliver && strings.HasPrefix(e.HeaderID, fmt.Sprintf("org%d.", n)) {
				delivered++
			}
		}
		r.delivered = delivered
		if delivered >= r.accepted {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return r, fmt.Errorf("%d of %d messages stored after %s", delivered, r.accepted, o.wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.rss, r.peakRSS = selfRSS()
	hops(r, events, &accepted, sendStart)
	fmt.Fprintf(progress, "bench: %d sites: %d messages stored in %s\n", n, r.delivered, r.span.Round(time.Millisecond))
	return r, nil
}

// hops reads each message's way through the organisation from the trace: its 250 at
// the Edge, its arrival at the first Hub, at any further Hub, and its delivery into a
// mailbox store.
func hops(r *orgResult, events []trace.Event, accepted *sync.Map, sendStart time.Time) {
	type path struct {
		edge, deliver time.Time
		hubs          []time.Time
	}
	paths := map[string]*path{}
	for _, e := range events {
		v, ok := accepted.Load(e.HeaderID)
		if !ok {
			continue
		}
		p := paths[e.HeaderID]
		if p == nil {
			p = &path{edge: v.(time.Time)}
			paths[e.HeaderID] = p
		}
		switch {
		case e.Type == trace.Receive && strings.HasPrefix(e.Server, "HUB"):
			p.hubs = append(p.hubs, e.Time)
		case e.Type == trace.Deliver:
			p.deliver = e.Time
		}
	}
	var last time.Time
	for _, p := range paths {
		if p.deliver.IsZero() {
			continue
		}
		if p.deliver.After(last) {
			last = p.deliver
		}
		r.e2e = append(r.e2e, p.deliver.Sub(p.edge))
		slices.SortFunc(p.hubs, func(a, b time.Time) int { return a.Compare(b) })
		if len(p.hubs) == 0 {
			continue
		}
		r.edgeHub = append(r.edgeHub, p.hubs[0].Sub(p.edge))
		for i := 1; i < len(p.hubs); i++ {
			r.hubHub = append(r.hubHub, p.hubs[i].Sub(p.hubs[i-1]))
			r.hubHops++
		}
		r.hubMbx = append(r.hubMbx, p.deliver.Sub(p.hubs[len(p.hubs)-1]))
	}
	r.span = last.Sub(sendStart)
}

// selfRSS is this process's resident memory now and at its peak (VmRSS, VmHWM).
func selfRSS() (rss, peak int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.Sys), int64(m.Sys)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kib, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kib << 10
		case "VmHWM:":
			peak = kib << 10
		}
	}
	return rss, peak
}

func quantile(ds []time.Duration, q float64) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	d := s[min(len(s)-1, int(q*float64(len(s))))]
	return fmt.Sprintf("%.1f ms", ms(d))
}

// printOrg writes one column per organisation.
func printOrg(w io.Writer, o orgOptions, rs []orgResult) {
	fmt.Fprintf(w, "Whole organisation, in one process, fsync on: %d messages of %s from %s, Internet -> Edge -> Hubs across sites -> Mailbox store\n",
		o.messages, kb(o.size), plural(o.clients, "client"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, f func(r orgResult) string) {
		fmt.Fprintf(tw, "%s\t", name)
		for _, r := range rs {
			fmt.Fprintf(tw, "%s\t", f(r))
		}
		fmt.Fprintln(tw)
	}
	row("sites", func(r orgResult) string { return strconv.Itoa(r.sites) })
	row("servers", func(r orgResult) string { return strconv.Itoa(r.servers) })
	row("recipients", func(r orgResult) string { return strconv.Itoa(r.recipients) })
	row("start-up", func(r orgResult) string { return r.start.Round(time.Millisecond).String() })
	row("all stored in", func(r orgResult) string { return r.span.Round(time.Millisecond).String() })
	row("msgs/s end to end", func(r orgResult) string { return fmt.Sprintf("%.0f", perSecond(r.delivered, r.span)) })
	row("msgs/s accepted", func(r orgResult) string { return fmt.Sprintf("%.0f", perSecond(r.accepted, r.sendSpan)) })
	row("p50 250->store", func(r orgResult) string { return quantile(r.e2e, 0.5) })
	row("p99 250->store", func(r orgResult) string { return quantile(r.e2e, 0.99) })
	row("p50 Edge 250->Hub", func(r orgResult) string { return quantile(r.edgeHub, 0.5) })
	row("p50 Hub->Hub", func(r orgResult) string { return quantile(r.hubHub, 0.5) })
	row("Hub->Hub relays/msg", func(r orgResult) string {
		return fmt.Sprintf("%.2f", float64(r.hubHops)/float64(max(1, r.delivered)))
	})
	row("p50 Hub->store", func(r orgResult) string { return quantile(r.hubMbx, 0.5) })
	row("RSS after", func(r orgResult) string { return fmt.Sprintf("%.0f MiB", mib(r.rss)) })
	row("peak RSS", func(r orgResult) string { return fmt.Sprintf("%.0f MiB", mib(r.peakRSS)) })
	tw.Flush()
	fmt.Fprintln(w, "Peak RSS is the process's, across the organisations run before it too.")
}

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
