package parallel

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"syscall"

	"github.com/onsi/ginkgo/v2/types"
)

// WorkerFlags are the Ginkgo flags (flag.CommandLine names) that make a RunSpecs call
// worker proc of total, talking to host; every worker must also get the same seed.
func WorkerFlags(proc, total int, host string) map[string]string {
	return map[string]string{
		"ginkgo.parallel.process": strconv.Itoa(proc),
		"ginkgo.parallel.total":   strconv.Itoa(total),
		"ginkgo.parallel.host":    host,
	}
}

// Spawn makes the command of worker proc (1-based) of total, which must run the suite
// with WorkerFlags(proc, total, host) and ProtocolEnv=HTTP in its environment.
type Spawn func(ctx context.Context, proc, total int, host string) *exec.Cmd

// Run starts total workers, waits for all of them and returns their merged report. A
// worker that exits without posting its report (it crashed) is an error naming it:
// the specs it held are missing from the report. When ctx ends each worker gets
// SIGTERM, so it can tear down what its current spec started, and Run still waits.
func Run(ctx context.Context, total int, spawn Spawn, opts ...Option) (types.Report, error) {
	srv, err := Listen(total, opts...)
	if err != nil {
		return types.Report{}, err
	}
	defer srv.Close()
	cmds := make([]*exec.Cmd, total)
	var wg sync.WaitGroup
	errs := make([]error, total)
	for i := range total {
		proc := i + 1
		cmd := spawn(ctx, proc, total, srv.Host())
		if err := cmd.Start(); err != nil {
			for _, c := range cmds[:i] {
				_ = c.Process.Kill()
			}
			return types.Report{}, fmt.Errorf("parallel: starting worker %d: %w", proc, err)
		}
		cmds[i] = cmd
		exited := make(chan struct{})
		srv.RegisterAlive(proc, func() bool {
			select {
			case <-exited:
				return false
			default:
				return true
			}
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = cmd.Wait()
			close(exited)
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	select {
	case <-allDone:
	case <-ctx.Done():
		for _, c := range cmds {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		<-allDone
	}
	rep, n := srv.Report()
	if n == total {
		return rep, nil
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for i, ended := range srv.ended {
		if !ended {
			return rep, fmt.Errorf("parallel: worker %d of %d ended without its report (%v); its specs are missing", i+1, total, errs[i])
		}
	}
	return rep, fmt.Errorf("parallel: %d of %d workers reported", n, total)
}
