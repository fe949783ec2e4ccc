package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mailflow/mailflow/bench/mtaload"
	"github.com/mailflow/mailflow/containers/logline"
	"github.com/mailflow/mailflow/reference/queue"
)

// benchScenario is one Edge relaying everything to the sink. Its retries are an hour
// apart, so a message the sink has deferred is only held for the rest of the run.
const benchScenario = `
org:
  accepted_domains:
    - {domain: contoso.test, type: authoritative, default: true}
  servers:
    - {name: EDGE1, role: edge, recipient_filtering: false, retry_interval: 1h, transient_retry_interval: 1h}
  receive_connectors:
    - {name: Relay, server: EDGE1, bind: ":%d", permissions: [anonymous], accept_any_recipient: true}
  send_connectors:
    - {name: Out, address_spaces: ["*"], source: [EDGE1], smart_hosts: ["[%s]:%s"]}
`

const benchEdgePort = 2525

// serverCommand is the `mailflow server` process with args; a test replaces it, since
// there the running binary is the test's.
var serverCommand = func(args []string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return exec.Command(exe, append([]string{"server"}, args...)...), nil
}

// benchEdge is the Edge under measurement, a `mailflow server` process of its own, as
// Postfix is: the load generator and the sink do not share its heap or its collector.
type benchEdge struct {
	cmd    *exec.Cmd
	addr   string
	log    string
	exited chan struct{}
}

func startBenchEdge(ctx context.Context, dir, ip, sinkAddr string) (*benchEdge, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	host, port, err := net.SplitHostPort(sinkAddr)
	if err != nil {
		return nil, fmt.Errorf("edge: sink %q: %w", sinkAddr, err)
	}
	scen := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(scen, fmt.Appendf(nil, benchScenario, benchEdgePort, host, port), 0o600); err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	cmd, err := serverCommand([]string{"--scenario", scen, "--server", "EDGE1", "--spool", filepath.Join(dir, "spool"),
		"--listen", ip, "--dns", "127.0.0.1:9", "--ldap", "ldap://127.0.0.1:9"})
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	e := &benchEdge{cmd: cmd, addr: net.JoinHostPort(ip, strconv.Itoa(benchEdgePort)), log: filepath.Join(dir, "edge.log"),
		exited: make(chan struct{})}
	logFile, err := os.Create(e.log)
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor
	cmd.Stderr = logFile
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	ready := make(chan struct{})
	go func() {
		// Its trace goes on stdout, a line per event: read to the end, or the Edge
		// would block on a full pipe.
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		said := false
		for sc.Scan() {
			if !said && bytes.HasPrefix(sc.Bytes(), []byte(logline.ReadyMarker)) {
				close(ready)
				said = true
			}
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		close(e.exited)
	}()
	select {
	case <-ready:
		return e, nil
	case <-e.exited:
		return nil, fmt.Errorf("the Edge exited at start: %s", e.logTail())
	case <-ctx.Done():
		e.stop()
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		e.stop()
		return nil, fmt.Errorf("the Edge was not ready within 30 s: %s", e.logTail())
	}
}

// stop ends the Edge with SIGTERM as an operator would, and kills it if it does not
// stop within a minute. It may be called more than once.
func (e *benchEdge) stop() error {
	select {
	case <-e.exited:
		return nil
	default:
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
		return nil
	case <-time.After(time.Minute):
		_ = e.cmd.Process.Kill()
		<-e.exited
		return errors.New("the Edge did not stop within a minute of SIGTERM; killed")
	}
}

func (e *benchEdge) logTail() string {
	b, _ := os.ReadFile(e.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// seedSpool puts n load messages of size bytes in the spool at dir, each as the
// Edge leaves a message whose next hop deferred its one recipient: tried once, due
// again in an hour. workers write at the same time, as the Edge's SMTP sessions would.
func seedSpool(ctx context.Context, dir string, n, size, workers int) error {
	sp, err := queue.OpenSpool(dir)
	if err != nil {
		return err
	}
	now := time.Now()
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				m := &queue.Message{ID: queue.NewID(now), HeaderID: fmt.Sprintf("seed.%d@mtaload.test", i),
					From: mtaload.From, Received: now, NextAttempt: now.Add(time.Hour), Attempts: 1,
					LastReply: mtaload.DeferReply, Queue: "conn:Out",
					Recipients: []queue.Recipient{{Addr: mtaload.To, State: queue.Pending, Reply: mtaload.DeferReply, Attempts: 1}}}
				if err := sp.Put(m, mtaload.Message("seed", i, size)); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	// The Edge, another process, is the next to write this spool.
	if err := sp.Close(); err != nil && first == nil {
		first = err
	}
	if first != nil {
		return first
	}
	return ctx.Err()
}
