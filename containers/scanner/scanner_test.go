package scanner_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"

	"github.com/mailflow/mailflow/containers/scanner"
	"github.com/mailflow/mailflow/fixtures/clamdaemon"
	"github.com/mailflow/mailflow/fixtures/spamdaemon"
	"github.com/mailflow/mailflow/reference/clamd"
	"github.com/mailflow/mailflow/reference/spamc"
	"github.com/mailflow/mailflow/targets/dockernet"
)

// start gives the test a network of its own and the scanners' image, or skips: these
// tests need a Docker engine and the image, which `make test-containers` builds and
// names in MAILFLOW_SCANNER_IMAGE.
func start(t *testing.T) (context.Context, *dockernet.Net, string) {
	t.Helper()
	img := os.Getenv("MAILFLOW_SCANNER_IMAGE")
	if os.Getenv("MAILFLOW_DOCKER_TESTS") == "" || img == "" {
		t.Skip("set MAILFLOW_DOCKER_TESTS=1 and MAILFLOW_SCANNER_IMAGE (make test-containers does) to run Docker tests")
	}
	// The reaper's image cannot be pulled here; every container is terminated by the
	// test that started it.
	t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	nw, err := dockernet.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nw.Remove(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return ctx, nw, img
}

// gone fails the test if the container outlived Terminate.
func gone(t *testing.T, c *scanner.Container) {
	t.Helper()
	id := c.GetContainerID()
	if err := c.Terminate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if exec.Command("docker", "container", "inspect", id).Run() == nil {
		t.Errorf("container %s left after Terminate", id)
	}
	if _, err := os.Stat(c.HostDir); !os.IsNotExist(err) {
		t.Errorf("host directory %s left after Terminate (%v)", c.HostDir, err)
	}
}

// TestClamd: clamd answers at its address once RunClamd returns, finds EICAR with the
// one-line database, and after StopDaemon refuses at once while its container stays.
func TestClamd(t *testing.T) {
	ctx, nw, img := start(t)
	ip, err := nw.Container()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	c, err := scanner.RunClamd(ctx, img, scanner.WithNetwork(nw.Name, ip), testcontainers.WithLabels(dockernet.Labels(nil)))
	if c != nil {
		defer gone(t, c)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("clamd answered at %s in %v", c.Addr(), time.Since(t0))
	if want := scanner.Addr(scanner.Clamd, ip); c.Addr() != want {
		t.Errorf("Addr() = %q, want %q", c.Addr(), want)
	}
	v, err := clamd.New(c.Addr()).Scan(ctx, []byte(clamdaemon.EICAR))
	if err != nil || !v.Infected || v.Signature != "eicar.com.UNOFFICIAL" {
		t.Fatalf("Scan(EICAR) = %+v, %v; want eicar.com.UNOFFICIAL", v, err)
	}
	if err := c.StopDaemon(ctx); err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	if err := clamd.New(c.Addr(), clamd.WithTimeout(5*time.Second)).Ping(ctx); err == nil {
		t.Error("clamd still answers PING after StopDaemon")
	}
	if d := time.Since(t1); d > time.Second {
		t.Errorf("a PING to the dead clamd took %v to fail; want a refusal at once", d)
	}
	if st, err := c.State(ctx); err != nil || !st.Running {
		t.Errorf("the container does not run on after StopDaemon: %+v, %v", st, err)
	}
}

// TestSpamd: spamd answers once RunSpamd returns and scores GTUBE as spam with the
// shipped rules, for a client in its allowed range.
func TestSpamd(t *testing.T) {
	ctx, nw, img := start(t)
	ip, err := nw.Container()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	c, err := scanner.RunSpamd(ctx, img, scanner.WithNetwork(nw.Name, ip), scanner.WithAllowed(nw.Subnet.String()),
		testcontainers.WithLabels(dockernet.Labels(nil)))
	if c != nil {
		defer gone(t, c)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("spamd answered at %s in %v", c.Addr(), time.Since(t0))
	msg := "From: bob@fabrikam.test\r\nTo: alice@contoso.test\r\nSubject: gtube\r\n\r\n" + spamdaemon.GTUBE + "\r\n"
	r, err := spamc.New(c.Addr()).Check(ctx, []byte(msg))
	if err != nil || !r.Spam || r.Score < 1000 {
		t.Fatalf("Check(GTUBE) = %+v, %v; want spam scoring 1000 or more", r, err)
	}
}
