package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/targets/inprocess"
)

func runServe(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the listener map as JSON")
	spool := fs.String("spool", "", "keep spools under this directory (default: a temporary one)")
	path, s, ok := scenarioArg(fs, args, "usage: mailflow serve SCENARIO [--json] [--spool DIR]")
	if !ok {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The suites' fake clock stands still unless stepped; a served world runs on real
	// time, so its Received dates move and its retries happen.
	opts := []inprocess.Option{inprocess.WithClock(clock.Real{})}
	if *spool != "" {
		opts = append(opts, inprocess.WithSpoolRoot(*spool))
	}
	t, err := inprocess.Start(ctx, s, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailflow serve:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"scenario": path, "listeners": t.Listeners()})
	} else {
		for _, l := range t.Listeners() {
			fmt.Printf("listen %s %s %s\n", quoteName(l.Name), l.Kind, l.Addr)
		}
		fmt.Println("ready; Ctrl-C stops")
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := t.Stop(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "mailflow serve: stop:", err)
		return 1
	}
	return 0
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
