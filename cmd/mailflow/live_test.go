package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// conformanceChildEnv makes the test binary, re-executed by conformanceChild, run
// `mailflow conformance` with the JSON list of arguments it holds (TestMain).
const conformanceChildEnv = "MAILFLOW_CONFORMANCE_CHILD"

// conformanceChild runs `mailflow conformance args...` as a process of its own and
// returns its exit code, stdout and stderr.
func conformanceChild(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	a, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), conformanceChildEnv+"="+string(a))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("conformance %v: %v", args, err)
	return 0, "", ""
}

// noEdge is a valid scenario with no Edge for a live host to play.
const noEdge = `
org:
  accepted_domains:
    - {domain: contoso.test, type: authoritative, default: true}
  sites:
    - {name: london}
  servers:
    - {name: HUB1, role: hub, site: london}
`

// Bad input to a live run stops it before any spec, with exit code 2 and one line
// that names the problem.
func TestLiveBadInput(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	noEdgeFile := filepath.Join(dir, "no-edge.yaml")
	if err := os.WriteFile(noEdgeFile, []byte(noEdge), 0o644); err != nil {
		t.Fatal(err)
	}
	const sc = "../../scenarios/edge-smarthost.yaml"
	live := func(target string, more ...string) []string {
		return append([]string{"--target", target, "--ca-dir", ca, "--report-dir", dir}, more...)
	}
	cases := []struct {
		name string
		args []string
		want string
		root bool // needs to listen on ports 25 and 53
	}{
		{"no scenario", live("smtp://127.0.0.1", "--listen", "127.0.0.1"), "name the scenario the host is configured for with --scenario FILE", false},
		{"no listen", live("smtp://127.0.0.1", "--scenario", sc), "--listen ADDR[,ADDR...] or --listen PREFIX", false},
		{"bad URL", live("smtp://127.0.0.1:99999", "--scenario", sc, "--listen", "127.0.0.1"), `port "99999" is not 1-65535`, false},
		{"not smtp", live("smtps://127.0.0.1", "--scenario", sc, "--listen", "127.0.0.1"), "unknown target", false},
		{"listen with a port", live("smtp://127.0.0.1", "--scenario", sc, "--listen", "127.204.0.1:53"), `"127.204.0.1:53" has a port`, false},
		{"listen not an address", live("smtp://127.0.0.1", "--scenario", sc, "--listen", "sinks.lab"), `"sinks.lab" is not an IP address`, false},
		{"too few addresses", live("smtp://127.0.0.1", "--scenario", sc, "--listen", "127.204.0.1,127.204.0.2"), "it needs 5 addresses: more addresses than --listen gives (2)", false},
		{"missing scenario", live("smtp://127.0.0.1", "--scenario", "nowhere.yaml", "--listen", "127.204.0.0/29"), "nowhere.yaml", false},
		{"scenario without an Edge", live("smtp://127.0.0.1", "--scenario", noEdgeFile, "--listen", "127.204.0.0/29"), "needs exactly one server with role: edge (it has 0)", false},
		{"parallel", live("smtp://127.0.0.1", "--scenario", sc, "--listen", "127.204.0.0/29", "--procs", "4"), "--procs 4: a live host runs its specs one at a time", false},
		{"scenario without smtp://", []string{"--target", "inprocess", "--scenario", sc}, "--scenario is for a live host target", false},
		{"listen not on this host", live("smtp://127.0.0.1", "--scenario", sc, "--listen", "192.0.2.1,192.0.2.2,192.0.2.3,192.0.2.4,192.0.2.5"), "192.0.2.1 is not an address of this host", false},
		{"unreachable host", live("smtp://127.0.0.1:1", "--scenario", sc, "--listen", "127.204.0.0/29"), "target smtp://127.0.0.1:1: no SMTP server answers at 127.0.0.1:1", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skip("needs root to listen on ports 25 and 53")
			}
			code, _, stderr := conformanceChild(t, tc.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2; stderr:\n%s", code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, stderr)
			}
		})
	}
}

// --print-settings prints the settings on stdout and nothing else, without contacting
// the host or listening anywhere.
func TestLivePrintSettings(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := conformanceChild(t, "--target", "smtp://192.0.2.25:2525", "--scenario", "../../scenarios/edge-smarthost.yaml",
		"--listen", "192.0.2.96/28", "--ca-dir", dir, "--print-settings")
	if code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		"Live host smtp://192.0.2.25:2525 plays EDGE1 of ../../scenarios/edge-smarthost.yaml.",
		"DNS resolver            192.0.2.97 port 53",
		`port 2525 (for the scenario's 25) "Internet": anonymous`,
		"trusted CA              " + filepath.Join(dir, "ca.pem"),
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout does not say %q:\n%s", want, stdout)
		}
	}
	for _, f := range []string{"ca.pem", "ca-key.pem", "edge1.contoso.test.pem", "edge1.contoso.test-key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("the CA directory lacks %s: %v", f, err)
		}
	}
}
