package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/scenario"
)

// The crash test's child: this test binary, re-executed, runs `mailflow server` with
// the arguments in MAILFLOW_CRASH_CHILD, so it is the real server process, killed for
// real.
func TestMain(m *testing.M) {
	if args := os.Getenv("MAILFLOW_CRASH_CHILD"); args != "" {
		var a []string
		if err := json.Unmarshal([]byte(args), &a); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(2)
		}
		os.Exit(runServer(a))
	}
	if args := os.Getenv(conformanceChildEnv); args != "" {
		var a []string
		if err := json.Unmarshal([]byte(args), &a); err != nil {
			fmt.Fprintln(os.Stderr, "conformance child:", err)
			os.Exit(2)
		}
		os.Exit(runConformance(a))
	}
	os.Exit(m.Run())
}

// serverChild is `mailflow server` with args as a process of its own: this test binary,
// re-executed.
func serverChild(args []string) *exec.Cmd {
	a, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MAILFLOW_CRASH_CHILD="+string(a))
	return cmd
}

// crashScenario is one Edge relaying everything it gets to the sink, retrying every
// 200 ms of real time. Interrupted attempts never make a message poison here: the
// kills come from outside and say nothing about the messages.
const crashScenario = `
org:
  accepted_domains:
    - {domain: contoso.test, type: authoritative, default: true}
  servers:
    - {name: EDGE1, role: edge, recipient_filtering: false, retry_interval: 200ms, transient_retry_interval: 200ms, poison_threshold: 0}
  receive_connectors:
    - {name: Relay, server: EDGE1, bind: ":%d", permissions: [anonymous], accept_any_recipient: true}
  send_connectors:
    - {name: Out, address_spaces: ["*"], source: [EDGE1], smart_hosts: ["[%s]:%d"]}
`

// TestCrash sends messages to a real server process while killing it with SIGKILL at
// random moments (after a 250, mid-delivery, during retries) and restarting it on the
// same spool, then counts at the sink: every message that got 250 after DATA must
// arrive; a duplicate is allowed, a loss is not. MAILFLOW_CRASH_KILLS sets the number
// of kills (50 by default; `make soak` runs 1,000).
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a server process many times")
	}
	kills := 50
	if v := os.Getenv("MAILFLOW_CRASH_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("MAILFLOW_CRASH_KILLS=%q: want a positive number", v)
		}
		kills = n
	}
	// An address of its own, so the test can run beside another copy of itself (make
	// test beside make soak, two CI checkouts).
	ip := fmt.Sprintf("127.213.%d.%d", rand.IntN(250)+1, rand.IntN(250)+1)
	const port = 2625
	sink, err := internet.Start(context.Background(), "sink.test", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	_, sp, _ := net.SplitHostPort(sink.Addr())
	sinkPort, _ := strconv.Atoi(sp)
	dir := t.TempDir()
	scen := filepath.Join(dir, "crash.yaml")
	if err := os.WriteFile(scen, []byte(fmt.Sprintf(crashScenario, port, ip, sinkPort)), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--scenario", scen, "--server", "EDGE1", "--spool", filepath.Join(dir, "spool"),
		"--listen", ip, "--dns", "127.0.0.1:9", "--ldap", "ldap://127.0.0.1:9"}
	addr := net.JoinHostPort(ip, strconv.Itoa(port))

	var child *exec.Cmd
	var exited chan error
	var stderr *bytes.Buffer
	start := func() {
		t.Helper()
		child = serverChild(args)
		// What the server says is shown if it does not come up: a spool it cannot
		// open after a kill would be a finding of its own.
		stderr = &bytes.Buffer{}
		lw := &lockedWriter{w: stderr}
		said := func() string { lw.mu.Lock(); defer lw.mu.Unlock(); return stderr.String() }
		child.Stderr = lw
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		exited = make(chan error, 1)
		go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(child, exited)
		deadline := time.Now().Add(10 * time.Second)
		for {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				return
			}
			select {
			case err := <-exited:
				exited <- err
				t.Fatalf("the server exited at start (%v): %s", err, said())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("the server did not listen on %s within 10 s: %s", addr, said())
			}
			runtime_Gosched()
		}
	}
	kill := func() {
		_ = child.Process.Signal(syscall.SIGKILL)
		<-exited
	}
	defer func() { kill() }()

	accepted := map[string]bool{}
	seq := 0
	send := func() {
		seq++
		id := fmt.Sprintf("crash-%d@contoso.test", seq)
		body := "Subject: crash\r\nMessage-ID: <" + id + ">\r\n\r\n" + strings.Repeat("x", rand.IntN(20000)) + "\r\n"
		err := relay(addr, body)
		if err == nil {
			accepted[id] = true // 250 after DATA: the server owes this message
		}
	}
	start()
	for k := 0; k < kills; k++ {
		// Half the rounds the sink defers, so kills also land in retries.
		if k%2 == 0 {
			sink.SetBehaviour(scenario.Behaviour{Action: "defer", Stage: "rcpt", Code: 451, Enhanced: "4.3.0"})
		} else {
			sink.SetBehaviour(scenario.Behaviour{Action: "accept"})
		}
		// Send until a random moment, then kill without warning: the moment may fall
		// right after a 250, in the middle of a delivery or of a retry.
		at := time.Now().Add(time.Duration(rand.IntN(150)) * time.Millisecond)
		for n := 0; n == 0 || time.Now().Before(at); n++ {
			send()
		}
		kill()
		start()
	}
	sink.SetBehaviour(scenario.Behaviour{Action: "accept"})
	deadline := time.Now().Add(2 * time.Minute)
	var got map[string]int
	for {
		got = map[string]int{}
		for _, m := range sink.Messages() {
			for _, line := range strings.Split(string(m.Data), "\r\n") {
				if v, ok := strings.CutPrefix(line, "Message-ID: <"); ok {
					got[strings.TrimSuffix(v, ">")]++
				}
			}
		}
		missing := 0
		for id := range accepted {
			if got[id] == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		runtime_Gosched()
	}
	var lost, dups []string
	for id := range accepted {
		switch n := got[id]; {
		case n == 0:
			lost = append(lost, id)
		case n > 1:
			dups = append(dups, fmt.Sprintf("%s x%d", id, n))
		}
	}
	t.Logf("crash test: %d kills, %d messages accepted with 250, %d delivered, %d lost, %d delivered more than once",
		kills, len(accepted), len(accepted)-len(lost), len(lost), len(dups))
	if len(lost) > 0 {
		t.Errorf("%d accepted messages never reached the sink: %v", len(lost), first(lost, 10))
	}
}

// relay sends one message in the clear, as the organisation's applications would.
func relay(addr, body string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("app.contoso.test"); err != nil {
		return err
	}
	if err := c.Mail("a@contoso.test", nil); err != nil {
		return err
	}
	if err := c.Rcpt("b@fabrikam.test", nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return err
	}
	return w.Close()
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// runtime_Gosched yields while polling for a listener or for deliveries; a poll loop
// that spins would starve the server of the machine's two cores.
func runtime_Gosched() { <-time.After(5 * time.Millisecond) }

// lockedWriter lets the process's stderr be written while a failing test reads it.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
