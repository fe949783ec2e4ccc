package dockernet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"strings"
)

// RunLabel marks every container and network one process creates, with a value of
// its own: a run cut short while a spec was starting its world (Ctrl-C, SIGTERM) has
// containers no cleanup knows of yet, and Sweep finds them by it. (testcontainers'
// session ID will not do: runs side by side under one make share it.)
const RunLabel = "org.mailflow.run"

// RunEnv carries a run's RunID to the worker processes of a parallel run, so that
// what every worker creates carries one value and one Sweep in the parent finds it.
const RunEnv = "MAILFLOW_RUN"

// RunID is this run's RunLabel value: $MAILFLOW_RUN, or one of this process's own.
var RunID = func() string {
	if id := os.Getenv(RunEnv); id != "" {
		return id
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// BatchLabel marks what every run of one batch creates (make sets MAILFLOW_BATCH for
// the runs of one target), so the batch's leftover check sees only its own objects
// on an engine that other runs share.
const BatchLabel = "org.mailflow.batch"

// Labels is labels plus this run's RunLabel and, when MAILFLOW_BATCH is set, its
// BatchLabel.
func Labels(labels map[string]string) map[string]string {
	out := maps.Clone(labels)
	if out == nil {
		out = map[string]string{}
	}
	out[RunLabel] = RunID
	if b := os.Getenv("MAILFLOW_BATCH"); b != "" {
		out[BatchLabel] = b
	}
	return out
}

// Sweep force-removes the containers, then the networks, this run created and
// has not removed, and says how many there were.
func Sweep(ctx context.Context) (containers, networks int, err error) {
	filter := "label=" + RunLabel + "=" + RunID
	ids := func(args ...string) ([]string, error) {
		out, err := exec.CommandContext(ctx, "docker", args...).Output()
		if err != nil {
			return nil, fmt.Errorf("docker %s: %w", strings.Join(args, " "), err)
		}
		return strings.Fields(string(out)), nil
	}
	ctrs, err := ids("ps", "-aq", "--filter", filter)
	if err != nil {
		return 0, 0, err
	}
	if len(ctrs) > 0 {
		if out, err := exec.CommandContext(ctx, "docker", append([]string{"rm", "-f"}, ctrs...)...).CombinedOutput(); err != nil {
			return 0, 0, fmt.Errorf("docker rm: %w: %s", err, out)
		}
	}
	nets, err := ids("network", "ls", "-q", "--filter", filter)
	if err != nil {
		return len(ctrs), 0, err
	}
	for _, n := range nets {
		// A container killed and started again can leave an endpoint behind that
		// outlives it and blocks the removal: take every endpoint off first.
		disconnectAll(ctx, n)
		if out, err := exec.CommandContext(ctx, "docker", "network", "rm", n).CombinedOutput(); err != nil {
			return len(ctrs), 0, fmt.Errorf("docker network rm: %w: %s", err, out)
		}
	}
	return len(ctrs), len(nets), nil
}
