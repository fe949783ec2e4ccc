package mtaload

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Memory is the resident memory of a process and its descendants, from /proc (Linux).
type Memory struct {
	Procs int
	// RSS sums the processes' resident set sizes: pages they share (a library, the
	// binary of many processes of one MTA) count once per process.
	RSS int64
	// PSS sums their proportional set sizes, where a shared page counts a share per
	// process: the tree's real footprint.
	PSS int64
}

// TreeMemory reads the memory of pid and every process descending from it.
func TreeMemory(pid int) (Memory, error) {
	pids, err := descendants(pid)
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	for i, p := range append([]int{pid}, pids...) {
		rss, err := rssKB(p)
		if err != nil {
			if i == 0 {
				return Memory{}, err
			}
			continue // a child that exited meanwhile
		}
		m.Procs++
		m.RSS += rss * 1024
		if pss, err := pssKB(p); err == nil {
			m.PSS += pss * 1024
		}
	}
	return m, nil
}

func rssKB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("memory of %d: %w", pid, err)
	}
	n, err := fieldKB(b, "VmRSS")
	if err != nil {
		return 0, fmt.Errorf("memory of %d: %w", pid, err)
	}
	return n, nil
}

func pssKB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	return fieldKB(b, "Pss")
}

// fieldKB finds "NAME:   123 kB" in a /proc file.
func fieldKB(b []byte, name string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != name {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("no %s", name)
}

// descendants lists the processes below pid, children first.
func descendants(pid int) ([]int, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		// "PID (comm) STATE PPID ...": comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		fs := strings.Fields(string(b[i+1:]))
		if len(fs) < 2 {
			continue
		}
		ppid, err1 := strconv.Atoi(fs[1])
		p, err2 := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		if err1 == nil && err2 == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := children[pid]
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, p)
		queue = append(queue, children[p]...)
	}
	return out, nil
}
