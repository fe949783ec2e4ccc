package live_test

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/mailflow/mailflow/internal/report"
	"github.com/mailflow/mailflow/profiles"
	"github.com/mailflow/mailflow/spec"
	"github.com/mailflow/mailflow/targets/dockernet"
	"github.com/mailflow/mailflow/targets/live"
	"github.com/mailflow/mailflow/targets/mta"
)

// liveScenario is what the Postfix "foreign" host is configured for: the SMTP session
// and transfer specs run on it, the rest are N/A.
const liveScenario = "scenarios/edge-smarthost.yaml"

// Clauses whose specs run on liveScenario as shipped: each must get a real verdict.
var mustRun = []string{"SMTP-001", "SMTP-002", "SMTP-003", "SMTP-012", "SMTP-013", "SMTP-016", "TRACE-001"}

// TestPostfixAsForeignHost runs `mailflow conformance --target smtp://IP:25` against a
// Postfix container it starts the way a user would run their own MTA: on a Docker
// network of its own, configured by hand from the printed settings (here rendered by
// the Postfix profile from the same settings), and unknown to the harness. The run
// must complete with real verdicts for the clauses that fit the scenario and N/A,
// with a reason, for every other one.
//
// It needs a Docker engine, root (addresses on the bridge; ports 25 and 53), the
// Postfix image and the mailflow binary: `make test-mta` sets MAILFLOW_DOCKER_TESTS=1
// and MAILFLOW_BIN.
func TestPostfixAsForeignHost(t *testing.T) {
	if os.Getenv("MAILFLOW_DOCKER_TESTS") == "" {
		t.Skip("set MAILFLOW_DOCKER_TESTS=1 (make test-mta does) to run Docker tests")
	}
	bin := os.Getenv("MAILFLOW_BIN")
	if bin == "" {
		t.Fatal("MAILFLOW_BIN must name the mailflow binary (make test-mta sets it to bin/mailflow)")
	}
	// No registry here for the reaper's image; the test removes what it starts.
	t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	p, err := profiles.Load("postfix")
	if err != nil {
		t.Fatal(err)
	}
	img, err := mta.Image(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	nw, err := dockernet.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nw.Remove(context.Background()); err != nil {
			t.Errorf("removing network %s: %v", nw.Name, err)
		}
	})
	ip, err := nw.Container()
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for range 8 {
		a, err := nw.Next()
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, a.String())
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	opts := live.Options{Target: "smtp://" + ip.String() + ":25", Scenario: filepath.Join(root, liveScenario),
		Listen: strings.Join(addrs, ","), CADir: t.TempDir()}
	lt, err := live.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}

	// What a user does by hand from the printed settings: here the profile does it.
	files, err := postfixFiles(p, lt)
	if err != nil {
		t.Fatal(err)
	}
	ctr, err := runHost(ctx, img, p, nw, ip, files)
	if ctr != nil {
		t.Cleanup(func() {
			if err := ctr.Terminate(context.Background(), testcontainers.StopTimeout(2*time.Second)); err != nil {
				t.Errorf("removing the Postfix container: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}

	dir := os.Getenv("MAILFLOW_LIVE_REPORT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	cmd := exec.CommandContext(ctx, bin, "conformance", "--target", opts.Target, "--scenario", liveScenario,
		"--listen", opts.Listen, "--ca-dir", opts.CADir, "--report-dir", dir, "--verdicts-only", "--progress")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err = cmd.Run()
	t.Logf("%s\n(%v)", out.String(), time.Since(t0).Round(time.Second))
	if err != nil {
		t.Fatalf("mailflow conformance against %s: %v", opts.Target, err)
	}
	if !strings.Contains(out.String(), "DNS resolver            "+addrs[0]+" port 53") {
		t.Errorf("the printed settings do not name the fake DNS at %s", addrs[0])
	}

	f, err := os.Open(filepath.Join(dir, lt.Name()+".json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := report.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	checkVerdicts(t, res)
}

// checkVerdicts: the clauses of mustRun have real verdicts; every other clause is
// N/A with a reason, judged, or has no spec at all; at least one N/A says which
// scenario it needs.
func checkVerdicts(t *testing.T, res *report.Result) {
	t.Helper()
	if len(res.SuiteFailures) > 0 {
		t.Errorf("suite failures: %v", res.SuiteFailures)
	}
	judged := map[report.Verdict]bool{report.PASS: true, report.FAIL: true, report.WARN: true, report.INFO: true}
	byID := map[string]report.ClauseResult{}
	mismatch := 0
	for _, c := range res.Clauses {
		byID[c.Clause.ID] = c
		switch {
		case judged[c.Verdict]:
		case c.Verdict == report.NA && c.Reason == "":
			t.Errorf("%s: N/A without a reason", c.Clause.ID)
		case c.Verdict == report.NA:
			if strings.Contains(c.Reason, "is configured for "+liveScenario) {
				mismatch++
			}
		case c.Verdict == report.MISSING && c.Reason == report.ReasonNoSpec:
		default:
			t.Errorf("%s: %s (%s), want a verdict or N/A with a reason", c.Clause.ID, c.Verdict, c.Reason)
		}
		if c.Clause.Applies != spec.AppliesAnyMTA && c.Verdict != report.NA {
			t.Errorf("%s: a reference-only clause is %s, want N/A", c.Clause.ID, c.Verdict)
		}
	}
	for _, id := range mustRun {
		if c := byID[id]; !judged[c.Verdict] {
			t.Errorf("%s: %s (%s), want a real verdict: its specs run on %s as shipped", id, c.Verdict, c.Reason, liveScenario)
		}
	}
	if mismatch == 0 {
		t.Errorf("no N/A says which scenario the host is configured for")
	}
	t.Logf("%d PASS, %d FAIL, %d WARN, %d INFO, %d N/A (%d for another scenario's settings), %d MISSING",
		res.Totals[report.PASS], res.Totals[report.FAIL], res.Totals[report.WARN], res.Totals[report.INFO], res.Totals[report.NA], mismatch, res.Totals[report.MISSING])
}

// postfixFiles are Postfix's configuration for the printed settings, with the PEM
// files the settings name, at the profile's paths in the container.
func postfixFiles(p *profiles.Profile, lt *live.Target) ([]profiles.File, error) {
	d := lt.Settings().Data
	tls := lt.TLS()
	d.TLSCert, d.TLSKey, d.CACert = "/etc/mailflow/tls/cert.pem", "/etc/mailflow/tls/key.pem", "/etc/mailflow/tls/ca.pem"
	files, err := p.Render(d)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		from, to string
		mode     int64
	}{{tls.Cert, d.TLSCert, 0o644}, {tls.Key, d.TLSKey, 0o600}, {tls.CA, d.CACert, 0o644}} {
		b, err := os.ReadFile(f.from)
		if err != nil {
			return nil, err
		}
		files = append(files, profiles.File{Path: f.to, Mode: f.mode, Content: b})
	}
	return files, nil
}

// runHost starts the host's container on nw at ip, labelled so that a run's leftovers
// check sees it, but known to no target.
func runHost(ctx context.Context, img string, p *profiles.Profile, nw *dockernet.Net, ip netip.Addr, files []profiles.File) (testcontainers.Container, error) {
	var cf []testcontainers.ContainerFile
	for _, f := range files {
		cf = append(cf, testcontainers.ContainerFile{Reader: bytes.NewReader(f.Content), ContainerFilePath: f.Path, FileMode: f.Mode})
	}
	return testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:                    img,
			Cmd:                      p.Start,
			Files:                    cf,
			Hostname:                 "edge1",
			Labels:                   dockernet.Labels(map[string]string{"org.mailflow.server": "live-postfix"}),
			Networks:                 []string{nw.Name},
			EndpointSettingsModifier: dockernet.StaticIP(nw.Name, ip),
			// master(8) logs this once it listens, as a user would wait for it.
			WaitingFor: wait.ForLog("daemon started").WithStartupTimeout(time.Minute),
		},
		Started: true,
	})
}
