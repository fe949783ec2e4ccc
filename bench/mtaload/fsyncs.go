package mtaload

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// syncEvents are the system calls that make file data durable, as perf tracepoints.
var syncEvents = []string{"syscalls:sys_enter_fsync", "syscalls:sys_enter_fdatasync", "syscalls:sys_enter_sync_file_range"}

// SyncCounter counts the fsyncs (fsync, fdatasync, sync_file_range) made on the whole
// machine while it runs, with perf's tracepoints: the same count for every MTA, whatever
// its process model, at no cost to the MTA measured. Whatever else fsyncs meanwhile is
// counted too, so on a busy machine the figure is an upper bound.
type SyncCounter struct {
	cmd    *exec.Cmd
	out    string
	exited chan error
	stderr bytes.Buffer
}

// StartSyncCounter starts counting; an error means perf is missing or may not trace
// (it needs root, or kernel.perf_event_paranoid <= -1).
func StartSyncCounter(dir string) (*SyncCounter, error) {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return nil, errors.New("fsync count: perf is not installed (Debian: linux-perf)")
	}
	f, err := os.CreateTemp(dir, "perf-*.csv")
	if err != nil {
		return nil, fmt.Errorf("fsync count: %w", err)
	}
	f.Close()
	c := &SyncCounter{out: f.Name(), exited: make(chan error, 1)}
	// Counts every interval (-I, in ms): the first one in the file says the
	// tracepoints are open and counting, which a loaded machine can take a while to do.
	c.cmd = exec.Command(perf, "stat", "-a", "-x", ",", "-I", strconv.Itoa(int(interval/time.Millisecond)), "-o", c.out, "-e", strings.Join(syncEvents, ","))
	c.cmd.Stderr = &c.stderr
	if err := c.cmd.Start(); err != nil {
		os.Remove(c.out)
		return nil, fmt.Errorf("fsync count: perf: %w", err)
	}
	go func() { c.exited <- c.cmd.Wait() }()
	// A perf that may not open the tracepoints exits at once; one that can writes its
	// first interval's counts once they are open.
	tick := time.NewTicker(interval / 4)
	defer tick.Stop()
	deadline := time.After(startWithin)
	for {
		select {
		case err := <-c.exited:
			os.Remove(c.out)
			return nil, fmt.Errorf("fsync count: perf exited: %v: %s", err, strings.TrimSpace(c.stderr.String()))
		case <-deadline:
			_ = c.cmd.Process.Kill()
			<-c.exited
			os.Remove(c.out)
			return nil, fmt.Errorf("fsync count: perf wrote no count within %v: %s", startWithin, strings.TrimSpace(c.stderr.String()))
		case <-tick.C:
			if b, err := os.ReadFile(c.out); err == nil {
				if _, found, _ := sumCounts(b); found > 0 {
					return c, nil
				}
			}
		}
	}
}

// interval is how often perf writes its counts; startWithin how long it may take to
// write the first.
const (
	interval    = 100 * time.Millisecond
	startWithin = 30 * time.Second
)

// sumCounts adds up perf's interval lines ("time,count,unit,event,..."), and says
// how many of the sync events it saw.
func sumCounts(b []byte) (total int64, found int, err error) {
	seen := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 4 || !isSyncEvent(f[3]) {
			continue
		}
		seen[f[3]] = true
		if strings.HasPrefix(f[1], "<not ") { // <not counted>, <not supported>
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("fsync count: perf said %q", line)
		}
		total += n
	}
	return total, len(seen), nil
}

// Stop ends the count and returns it.
func (c *SyncCounter) Stop() (int64, error) {
	defer os.Remove(c.out)
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
		return 0, errors.New("fsync count: perf did not stop within 10 s of SIGINT")
	}
	b, err := os.ReadFile(c.out)
	if err != nil {
		return 0, fmt.Errorf("fsync count: %w", err)
	}
	total, found, err := sumCounts(b)
	if err != nil {
		return 0, err
	}
	if found != len(syncEvents) {
		return 0, fmt.Errorf("fsync count: perf wrote %d of %d counts to %s: %s", found, len(syncEvents), filepath.Base(c.out), strings.TrimSpace(c.stderr.String()))
	}
	return total, nil
}

func isSyncEvent(s string) bool {
	for _, e := range syncEvents {
		if s == e {
			return true
		}
	}
	return false
}
