package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// reportLine is every shape of line the conformance report prints on stdout: the
// target line, the table's header and rows (a clause's details indented under it),
// the totals and where the reports went. In a serial run Ginkgo's own summary line
// comes first.
var reportLine = regexp.MustCompile(`^(|mailflow conformance: target .*|ID +LEVEL +VERDICT +TIME +TITLE|[A-Z]+-\d{3} +(MUST|SHOULD|MAY) .*| {4,}\S.*|Totals: .*|reports: .*|\[\d+\] mailflow conformance - \d+/\d+ specs [S•F]* (SUCCESS|FAIL)! [\d.]+[mµn]?s ?)$`)

// TestConformanceStdoutIsTheReport runs the spec that takes the directory down while
// the Edge looks a recipient up (CAT-006: the Edge's server logs a warning), serially
// and with workers, and reads stdout: nothing but the report, whatever the servers of
// a spec log.
func TestConformanceStdoutIsTheReport(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the conformance suite")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "mailflow")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, procs := range []string{"1", "2"} {
		t.Run("procs "+procs, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, "conformance", "--label-filter", "CAT-006", "--procs", procs, "--report-dir", t.TempDir())
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("conformance: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
			}
			if !regexp.MustCompile(`(?m)^CAT-006 +MUST +PASS `).Match(stdout.Bytes()) {
				t.Fatalf("CAT-006 did not pass:\n%s", stdout.String())
			}
			for _, l := range strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n") {
				if !reportLine.MatchString(l) {
					t.Errorf("stdout has a line that is no part of the report: %q", l)
				}
			}
		})
	}
}
