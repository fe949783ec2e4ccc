package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/targets/inprocess"
	"github.com/mailflow/mailflow/trace"
)

// reproStep is one step of the run as it happened: when it began on the world's
// clock, what it was, and the trace events recorded while it ran ([From, To) of the
// trace). The first is the start (the messages no step sends), the last the end.
type reproStep struct {
	Time time.Time `json:"time"`
	At   string    `json:"at"`
	Step string    `json:"step"`
	From int       `json:"-"`
	To   int       `json:"-"`
}

// runTimeline sends the messages no step sends, runs the scenario's timeline in order
// on the topology's fake clock, sending each message at its send: step, and waits
// until what followed settles. msgs[i] is message i+1; each is filled in by submit.
func runTimeline(ctx context.Context, topo *inprocess.Topology, s *scenario.Scenario, msgs []*reproMessage, idle *idlers) ([]reproStep, error) {
	start := topo.Clock().Now()
	var steps []reproStep
	begin := func(what string) {
		now := topo.Clock().Now()
		n := len(topo.Trace().Events())
		if len(steps) > 0 {
			steps[len(steps)-1].To = n
		}
		steps = append(steps, reproStep{Time: now, At: offset(now, start), Step: what, From: n})
	}
	var idleErr error
	send := func(n int) {
		m := s.Messages[n-1]
		// The recipients' mail clients idle before the message leaves, as a user
		// waiting for it would.
		if err := idle.start(m.Idle); err != nil && idleErr == nil {
			idleErr = fmt.Errorf("message %d: %w", n, err)
		}
		if m.Submit == scenario.SubmitOutbox {
			submitOutbox(topo, s, m, msgs[n-1])
		} else {
			submit(ctx, topo, m, msgs[n-1])
		}
		topo.Quiesce(ctx)
	}
	scheduled := map[int]bool{}
	for _, st := range s.Timeline {
		if st.Send > 0 {
			scheduled[st.Send] = true
		}
	}
	var first []string
	for i := range msgs {
		if !scheduled[i+1] {
			first = append(first, fmt.Sprint(i+1))
		}
	}
	switch len(first) {
	case 0:
		begin("start")
	case 1:
		begin("start: message " + first[0] + " sent")
	default:
		begin("start: messages " + strings.Join(first, ", ") + " sent")
	}
	for i := range msgs {
		if !scheduled[i+1] {
			send(i + 1)
		}
	}
	for _, st := range s.Timeline {
		begin(describeStep(st))
		if st.Send > 0 {
			send(st.Send)
			continue
		}
		if err := topo.Apply(ctx, st); err != nil {
			return steps, fmt.Errorf("timeline: %s: %w", describeStep(st), err)
		}
	}
	if idleErr != nil {
		return steps, idleErr
	}
	settle(ctx, topo)
	begin("end")
	steps[len(steps)-1].To = len(topo.Trace().Events())
	return steps, nil
}

// describeStep is a step as the timeline prints it.
func describeStep(st scenario.Step) string {
	switch st.Action() {
	case "down":
		return st.Down + " down"
	case "up":
		return st.Up + " up"
	case "link_down":
		return "link of " + st.LinkDown + " down"
	case "link_up":
		return "link of " + st.LinkUp + " up"
	case "advance":
		return "advance " + st.Advance.String()
	case "send":
		return fmt.Sprintf("message %d sent", st.Send)
	case "dns":
		var parts []string
		if len(st.DNS.Set) > 0 {
			parts = append(parts, "set "+strings.Join(st.DNS.Set, "; "))
		}
		if len(st.DNS.Remove) > 0 {
			parts = append(parts, "remove "+strings.Join(st.DNS.Remove, "; "))
		}
		return "dns " + strings.Join(parts, ", ")
	case "host":
		b := st.Host.Behaviour
		what := b.Action
		if b.Code != 0 {
			what += fmt.Sprintf(" %d", b.Code)
		}
		if b.Enhanced != "" {
			what += " " + b.Enhanced
		}
		return fmt.Sprintf("host %s: %s at %s", st.Host.Name, what, b.Stage)
	}
	return "?"
}

// offset is t as time since the start of the run: "+0s", "+30m0s".
func offset(t, start time.Time) string {
	return "+" + t.Sub(start).Round(time.Millisecond).String()
}

// eventLine is one trace event as repro prints it, its time as an offset from the
// start of the run.
func eventLine(e trace.Event, start time.Time) string {
	return fmt.Sprintf("    %-9s %-8s %-10s %s %s%s\n", offset(e.Time, start), e.Server, e.Type,
		strings.Join(e.Recipients, ","), e.NextHop, strings.TrimRight(" "+e.Reply+" "+e.Detail, " "))
}

// printTimeline prints each step at its time, then every trace event recorded while
// it ran, of every message.
func printTimeline(w io.Writer, steps []reproStep, events []trace.Event) {
	start := steps[0].Time
	fmt.Fprintln(w, "timeline:")
	for _, st := range steps {
		fmt.Fprintf(w, "  %-9s %s\n", st.At, st.Step)
		for _, e := range events[st.From:min(st.To, len(events))] {
			fmt.Fprint(w, eventLine(e, start))
		}
	}
	fmt.Fprintln(w)
}
