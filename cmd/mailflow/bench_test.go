package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mailflow/mailflow/bench/mtaload"
)

// useServerChild makes bench start this test binary as its `mailflow server`.
func useServerChild(t *testing.T) {
	saved := serverCommand
	serverCommand = func(args []string) (*exec.Cmd, error) { return serverChild(args), nil }
	t.Cleanup(func() { serverCommand = saved })
}

// TestBench runs `mailflow bench` small: the Edge as a real server process, every
// figure of its column, the report printed. It checks that the figures exist, not
// what they are: speed is for `make bench-postfix` to show.
func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	useServerChild(t)
	o := benchOptions{sizes: []int{2048}, clients: []int{1, 3}, messages: 6, queued: 20, queuedSize: 1024,
		queuedClients: 4, wait: time.Minute, settle: time.Millisecond, postfixID: "Postfix", dir: t.TempDir(), runs: 2, sustained: 9}
	rep, err := bench(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.rows) != 3 {
		t.Fatalf("%d rows, want one per client count and the sustained one", len(rep.rows))
	}
	for _, row := range rep.rows {
		if len(row.res[0]) != o.runs || row.res[1] != nil {
			t.Fatalf("%d clients: %d reference runs, %d Postfix runs; want %d of the reference only", row.clients, len(row.res[0]), len(row.res[1]), o.runs)
		}
		for _, r := range row.res[0] {
			if r.Delivered != row.messages {
				t.Errorf("%d clients: reference %+v; want %d delivered", row.clients, r, row.messages)
			}
		}
	}
	m := rep.memory[0]
	if m == nil || m.queued != o.queued || m.busy.RSS <= 0 || m.settled.RSS <= 0 || m.busy.Procs != 1 {
		t.Fatalf("memory: %+v", m)
	}
	var out bytes.Buffer
	rep.print(&out)
	for _, want := range []string{"2 KB, 3 clients", "2 KB, 3 clients, 9 sustained", "delivered/accepted", "p99 250->sink", "fsyncs/message", "20 x 1 KB queued", "RSS when all held", "then accepted/s", "accepted/s vs empty queue"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// Postfix's way into the memory figure, over SMTP with the sink deferring, tried here on
// the Edge: every message is tried once before the memory is read.
func TestQueueAndMeasure(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	useServerChild(t)
	ctx := context.Background()
	ip := fmt.Sprintf("127.216.%d.%d", rand.IntN(250)+1, rand.IntN(250)+1)
	sink, err := mtaload.StartSink(ctx, net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	edge, err := startBenchEdge(ctx, t.TempDir(), ip, sink.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer edge.stop()
	o := benchOptions{queued: 15, queuedSize: 800, queuedClients: 3, wait: time.Minute}
	m, err := queueAndMeasure(ctx, sink, edge.addr, func() (int, error) { return edge.cmd.Process.Pid, nil }, o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if m.queued != o.queued || sink.Deferred() != int64(o.queued) || m.busy.Procs != 1 || m.busy.RSS <= 0 {
		t.Errorf("queued %d, deferred %d, memory %+v; want %d tried once, one process", m.queued, sink.Deferred(), m.busy, o.queued)
	}
}

// TestBenchOrg runs `mailflow bench --org` small: a generated organisation of two
// sites in this process, every message stored, every figure printed.
func TestBenchOrg(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an organisation")
	}
	o := orgOptions{sites: []int{2}, messages: 40, size: 2048, clients: 4, recipientsPerMbx: 2, wait: time.Minute, dir: t.TempDir()}
	rs, err := benchOrg(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].accepted != o.messages || rs[0].delivered != o.messages || len(rs[0].e2e) != o.messages {
		t.Fatalf("results %+v; want %d accepted, stored and timed", rs, o.messages)
	}
	var out bytes.Buffer
	printOrg(&out, o, rs)
	for _, want := range []string{"msgs/s end to end", "p99 250->store", "p50 Hub->store", "peak RSS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
