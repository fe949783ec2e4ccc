package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/fixtures/testca"
	"github.com/mailflow/mailflow/internal/liveview"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/targets/inprocess"
	"github.com/mailflow/mailflow/trace"
)

func runServe(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var o serveOptions
	fs.BoolVar(&o.json, "json", false, "print the listener map as JSON, then each tracking event as a JSON line")
	fs.StringVar(&o.spool, "spool", "", "keep spools under this directory (default: a temporary one)")
	fs.StringVar(&o.http, "http", "", "serve a live view (sites, queues, tracking, what hosts and mailboxes hold) on this address, e.g. 127.0.0.1:8025")
	fs.StringVar(&o.ca, "ca", "", "write the test CA certificate (PEM), which every server's certificate chains to, to this file for clients (curl --cacert)")
	path, s, ok := scenarioArg(fs, args, "usage: mailflow serve SCENARIO [--json] [--spool DIR] [--http ADDR] [--ca FILE]")
	if !ok {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, path, s, o, os.Stdout, os.Stderr)
}

type serveOptions struct {
	json            bool
	spool, http, ca string
}

// serve runs the world of scenario s until ctx ends: it prints the listeners, "ready",
// then every message-tracking event as it happens, one line each (trace.Line), so a
// user who sends a message with swaks sees where it went.
func serve(ctx context.Context, path string, s *scenario.Scenario, o serveOptions, stdout, stderr io.Writer) int {
	// Events are printed by one goroutine, in the order recorded; the servers wait
	// only when a reader of stdout falls thousands of events behind.
	events := make(chan trace.Event, 4096)
	// The suites' fake clock stands still unless stepped; a served world runs on real
	// time, so its Received dates move and its retries happen.
	opts := []inprocess.Option{inprocess.WithClock(clock.Real{}), inprocess.WithTraceWatch(func(e trace.Event) { events <- e })}
	if o.spool != "" {
		opts = append(opts, inprocess.WithSpoolRoot(o.spool))
	}
	if o.ca != "" {
		if err := os.WriteFile(o.ca, testca.Shared().CertPEM(), 0o644); err != nil {
			fmt.Fprintln(stderr, "mailflow serve:", err)
			return 1
		}
	}
	defer stopSharedFixtures()
	t, err := inprocess.Start(ctx, s, opts...)
	if err != nil {
		fmt.Fprintln(stderr, "mailflow serve:", err)
		return 1
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := t.Stop(sctx); err != nil {
			fmt.Fprintln(stderr, "mailflow serve: stop:", err)
		}
	}()
	listeners := t.Listeners()
	if o.http != "" {
		ln, err := net.Listen("tcp", o.http)
		if err != nil {
			fmt.Fprintln(stderr, "mailflow serve: --http:", err)
			return 1
		}
		picture, _ := sitesSVG(s, nil) // a world without sites has no picture
		srv := &http.Server{Handler: liveview.Handler(liveSource{path: path, s: s, t: t}, picture), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		listeners = append(listeners, inprocess.Listener{Name: "live", Kind: "http", Addr: ln.Addr().String()})
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"scenario": path, "listeners": listeners})
	} else {
		for _, l := range listeners {
			fmt.Fprintf(stdout, "listen %s %s %s\n", quoteName(l.Name), l.Kind, l.Addr)
		}
		fmt.Fprintln(stdout, "ready; Ctrl-C stops")
	}
	for {
		select {
		case <-ctx.Done():
			return 0
		case e := <-events:
			if o.json {
				b, _ := json.Marshal(e)
				fmt.Fprintf(stdout, "%s\n", b)
			} else {
				fmt.Fprintln(stdout, trace.Line(e))
			}
		}
	}
}

// liveSource is the served world as the live view reads it.
type liveSource struct {
	path string
	s    *scenario.Scenario
	t    *inprocess.Topology
}

func (l liveSource) State() liveview.State {
	st := liveview.State{Scenario: l.path, Now: l.t.Clock().Now(), Events: l.t.Trace().Events()}
	for _, x := range l.t.Listeners() {
		st.Listeners = append(st.Listeners, liveview.Listener(x))
	}
	for _, srv := range l.s.Org.Servers {
		if srv.Role == scenario.RoleEdge || srv.Role == scenario.RoleHub {
			st.Queues = append(st.Queues, liveview.Queue{Server: srv.Name, Counts: l.t.Queues(srv.Name)})
		}
	}
	for _, h := range l.t.Hosts() {
		box := liveview.Box{Name: h.Name()}
		for _, m := range h.Messages() {
			from, subject := liveview.Summary(m.Data)
			box.Messages = append(box.Messages, liveview.Message{Time: m.Time, MailFrom: m.MailFrom, RcptTo: m.RcptTo,
				From: from, Subject: subject, Size: len(m.Data)})
		}
		st.Hosts = append(st.Hosts, box)
	}
	for _, r := range l.s.Org.Recipients {
		if r.Mailbox == "" {
			continue
		}
		box := liveview.Box{Name: r.Mail}
		for _, m := range l.t.Store(r.Mail) {
			from, subject := liveview.Summary(m.Data)
			box.Messages = append(box.Messages, liveview.Message{From: from, Subject: subject, Size: len(m.Data), Flags: m.Flags})
		}
		st.Mailboxes = append(st.Mailboxes, box)
	}
	return st
}

// quoteName keeps the line splittable on spaces when a connector name has one; the
// name is quoted, not escaped, so "EDGE1\Internet" reads as Exchange writes it.
func quoteName(n string) string {
	if strings.ContainsAny(n, " \t") {
		return `"` + n + `"`
	}
	return n
}

// loadScenario loads a scenario file; a broken one gives its first problem as one
// "FILE:LINE:COL: key: problem" line.
func loadScenario(path string) (*scenario.Scenario, error) {
	s, err := scenario.Load(path)
	if err != nil {
		var es scenario.Errors
		if errors.As(err, &es) && es.First() != nil {
			return nil, es.First()
		}
		return nil, err
	}
	return s, nil
}

// scenarioArg parses flags that may come before or after the one scenario path, and
// loads the scenario; it has said what is wrong when ok is false.
func scenarioArg(fs *flag.FlagSet, args []string, usage string) (path string, s *scenario.Scenario, ok bool) {
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return "", nil, false
		}
		if fs.NArg() == 0 {
			break
		}
		if path != "" {
			fmt.Fprintf(os.Stderr, "mailflow %s: one scenario file only\n", fs.Name())
			return "", nil, false
		}
		path, args = fs.Arg(0), fs.Args()[1:]
	}
	if path == "" {
		fmt.Fprintln(os.Stderr, usage)
		return "", nil, false
	}
	s, err := loadScenario(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return "", nil, false
	}
	return path, s, true
}
