package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// startProfiles starts a CPU profile into cpu and, with block set, records blocking
// and mutex contention for block+".block" and block+".mutex"; the function it returns
// ends them and writes the files. Empty names profile nothing.
func startProfiles(cpu, block string) (func() error, error) {
	var cpuFile *os.File
	if cpu != "" {
		f, err := os.Create(cpu)
		if err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		cpuFile = f
	}
	if block != "" {
		// Every blocking event of 10 µs or more, every mutex contention: a run lasts
		// seconds, so the overhead is paid once.
		runtime.SetBlockProfileRate(10_000)
		runtime.SetMutexProfileFraction(1)
	}
	return func() error {
		var errs []error
		if cpuFile != nil {
			pprof.StopCPUProfile()
			errs = append(errs, cpuFile.Close())
		}
		if block != "" {
			for _, p := range []string{"block", "mutex"} {
				f, err := os.Create(block + "." + p)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s profile: %w", p, err))
					continue
				}
				errs = append(errs, pprof.Lookup(p).WriteTo(f, 0), f.Close())
			}
			runtime.SetBlockProfileRate(0)
			runtime.SetMutexProfileFraction(0)
		}
		return errors.Join(errs...)
	}, nil
}
