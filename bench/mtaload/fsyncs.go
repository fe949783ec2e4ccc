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
	c.cmd = exec.Command(perf, "stat", "-a", "-x", ",", "-o", c.out, "-e", strings.Join(syncEvents, ","))
	c.cmd.Stderr = &c.stderr
	if err := c.cmd.Start(); err != nil {
		os.Remove(c.out)
		return nil, fmt.Errorf("fsync count: perf: %w", err)
	}
	go func() { c.exited <- c.cmd.Wait() }()
	// A perf that may not open the tracepoints exits at once; one that can has them
	// open well within this.
	select {
	case err := <-c.exited:
		os.Remove(c.out)
		return nil, fmt.Errorf("fsync count: perf exited: %v: %s", err, strings.TrimSpace(c.stderr.String()))
	case <-time.After(300 * time.Millisecond):
	}
	return c, nil
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
	var total int64
	found := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 || !isSyncEvent(f[2]) {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("fsync count: perf said %q", line)
		}
		total += n
		found++
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
