package main

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/mailflow/mailflow/bench/mtaload"
)

// benchReport is what bench measured; a column is nil where it did not get that far.
type benchReport struct {
	opts    benchOptions
	rows    []benchRow
	memory  [2]*benchMemory // reference, Postfix
	noSyncs string          // why fsyncs were not counted
}

// benchRow is one load: each MTA's runs of it.
type benchRow struct {
	size, clients, messages int
	res                     [2][]*mtaload.Result
}

// benchMemory is one MTA holding the queued messages: read as soon as it held them
// all, and again once it had been left alone for the settle time.
type benchMemory struct {
	queued        int
	fill          time.Duration // until it held them all
	busy, settled mtaload.Memory
	// loaded is a throughput load run while the messages were held.
	loaded *mtaload.Result
}

func (r *benchReport) heading(i int) string {
	if i == 0 {
		return "reference Edge"
	}
	return r.opts.postfixID
}

// print writes one line per figure: the Edge's, Postfix's, and their ratio.
func (r *benchReport) print(w io.Writer) {
	if r == nil {
		return
	}
	fmt.Fprintf(w, "Queue throughput, one MTA relaying to one sink, fsync on; %d messages a row, the median of %s (± half the spread); ratio = reference / %s\n",
		r.opts.messages, plural(r.opts.runs, "run"), r.opts.postfixID)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "load\tfigure\t%14s\t%14s\t%6s\n", r.heading(0), r.heading(1), "ratio")
	for _, row := range r.rows {
		load := fmt.Sprintf("%s, %s", kb(row.size), plural(row.clients, "client"))
		if row.messages != r.opts.messages {
			load += fmt.Sprintf(", %d sustained", row.messages)
		}
		printRuns(tw, load, row.res, []figure[mtaload.Result]{
			{"accepted/s", "", (*mtaload.Result).AcceptedPerSec},
			{"delivered/s", "", (*mtaload.Result).DeliveredPerSec},
			{"delivered/accepted", "", func(x *mtaload.Result) float64 {
				if a := x.AcceptedPerSec(); a > 0 {
					return x.DeliveredPerSec() / a
				}
				return -1
			}},
			{"p50 250->sink", " ms", func(x *mtaload.Result) float64 { return ms(x.P50) }},
			{"p99 250->sink", " ms", func(x *mtaload.Result) float64 { return ms(x.P99) }},
			{"fsyncs/message", "", (*mtaload.Result).FsyncsPerMessage},
		})
	}
	if r.opts.queued > 0 {
		figs := heldFigures("when all held", func(m *benchMemory) mtaload.Memory { return m.busy })
		if r.opts.settle > 0 {
			figs = append(figs, heldFigures(r.opts.settle.String()+" later", func(m *benchMemory) mtaload.Memory { return m.settled })...)
		}
		figs = append(figs,
			figure[benchMemory]{"then accepted/s", "", func(m *benchMemory) float64 { return loadedFigure(m, (*mtaload.Result).AcceptedPerSec) }},
			figure[benchMemory]{"then delivered/s", "", func(m *benchMemory) float64 { return loadedFigure(m, (*mtaload.Result).DeliveredPerSec) }})
		figs = append(figs, figure[benchMemory]{"accepted/s vs empty queue", "", func(m *benchMemory) float64 {
			if empty := r.emptyRow(m); empty > 0 && m.loaded != nil {
				return m.loaded.AcceptedPerSec() / empty
			}
			return -1
		}})
		printFigures(tw, fmt.Sprintf("%d x %s queued", r.opts.queued, kb(r.opts.queuedSize)), r.memory, figs)
	}
	tw.Flush()
	if r.noSyncs != "" {
		fmt.Fprintf(w, "fsyncs/message: not counted (%s)\n", r.noSyncs)
	} else {
		fmt.Fprintf(w, "fsyncs/message: fsync, fdatasync and sync_file_range calls on the whole machine during the load\n"+
			"(perf tracepoints), per message accepted: what else runs meanwhile adds to it.\n")
	}
	if r.opts.queued > 0 {
		fmt.Fprintf(w, "Queued: the Edge's spool filled with messages as the Edge leaves a deferred one, then the Edge\n"+
			"started on it; %s's messages sent over SMTP, the sink deferring each.\n", r.opts.postfixID)
	}
}

func loadedFigure(m *benchMemory, get func(*mtaload.Result) float64) float64 {
	if m.loaded == nil {
		return -1
	}
	return get(m.loaded)
}

// emptyRow is the median accepted/s of the throughput row with the held load's size and
// clients, for the MTA m is of; -1 when there is none.
func (r *benchReport) emptyRow(m *benchMemory) float64 {
	col := 0
	if r.memory[1] == m {
		col = 1
	}
	for _, row := range r.rows {
		if row.size != r.opts.queuedSize || row.clients != r.opts.queuedClients || row.messages != r.opts.messages {
			continue
		}
		var xs []float64
		for _, res := range row.res[col] {
			xs = append(xs, res.AcceptedPerSec())
		}
		if len(xs) == 0 {
			return -1
		}
		sort.Float64s(xs)
		return median(xs)
	}
	return -1
}

// median of sorted xs, which are not empty.
func median(xs []float64) float64 {
	if len(xs)%2 == 0 {
		return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
	}
	return xs[len(xs)/2]
}

// heldFigures are the memory figures of one reading.
func heldFigures(when string, reading func(*benchMemory) mtaload.Memory) []figure[benchMemory] {
	return []figure[benchMemory]{
		{"RSS " + when, " MiB", func(m *benchMemory) float64 { return mib(reading(m).RSS) }},
		{"PSS " + when, " MiB", func(m *benchMemory) float64 { return mib(reading(m).PSS) }},
		{"processes " + when, "", func(m *benchMemory) float64 { return float64(reading(m).Procs) }},
	}
}

// figure is one line of the report: its name, unit, and how to get it from a column.
type figure[T any] struct {
	name, unit string
	get        func(*T) float64
}

func printFigures[T any](tw io.Writer, load string, cols [2]*T, figs []figure[T]) {
	var runs [2][]*T
	for i, c := range cols {
		if c != nil {
			runs[i] = []*T{c}
		}
	}
	printRuns(tw, load, runs, figs)
}

// printRuns writes figures over several runs of each column: the median of each
// figure, and half its spread as a share of the median; a figure not measured is
// negative.
func printRuns[T any](tw io.Writer, load string, cols [2][]*T, figs []figure[T]) {
	for _, f := range figs {
		var v [2]*float64
		var spread [2]string
		for i, runs := range cols {
			var xs []float64
			for _, c := range runs {
				if x := f.get(c); x >= 0 {
					xs = append(xs, x)
				}
			}
			if len(xs) == 0 {
				continue
			}
			sort.Float64s(xs)
			med := median(xs)
			v[i] = &med
			if len(xs) > 1 && med > 0 {
				spread[i] = fmt.Sprintf(" ±%.0f%%", (xs[len(xs)-1]-xs[0])/2/med*100)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%14s\t%14s\t%6s\n", load, f.name, num(v[0], f.unit)+spread[0], num(v[1], f.unit)+spread[1], ratio(v[0], v[1]))
		load = ""
	}
}

func num(v *float64, unit string) string {
	switch {
	case v == nil:
		return "-"
	case *v >= 100 || *v == float64(int64(*v)):
		return fmt.Sprintf("%.0f%s", *v, unit)
	default:
		return fmt.Sprintf("%.1f%s", *v, unit)
	}
}

func ratio(a, b *float64) string {
	if a == nil || b == nil || *b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", *a / *b)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mib(n int64) float64        { return float64(n) / (1 << 20) }

func kb(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d KB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
