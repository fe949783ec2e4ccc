package dockernet_test

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"

	"github.com/mailflow/mailflow/targets/dockernet"
)

func TestAddressesLiveAndDieWithTheNetwork(t *testing.T) {
	if os.Getenv("MAILFLOW_DOCKER_TESTS") == "" {
		t.Skip("set MAILFLOW_DOCKER_TESTS=1 (make test-containers does) to run Docker tests")
	}
	t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	ctx := context.Background()
	n, err := dockernet.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	removed := false
	t.Cleanup(func() {
		if !removed {
			_ = n.Remove(ctx)
		}
	})
	a, err := n.ClientIn(netip.MustParsePrefix("127.77.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.ClientRange(netip.MustParsePrefix("127.77.0.0/16"))
	if err != nil || !b.Contains(a) || !n.Subnet.Contains(a) {
		t.Fatalf("client %v not in its block %v within %v (%v)", a, b, n.Subnet, err)
	}
	// The address is really the host's: something can listen on it.
	l, err := net.Listen("tcp", net.JoinHostPort(a.String(), "0"))
	if err != nil {
		t.Fatalf("listen on the added address: %v", err)
	}
	l.Close()
	removed = true
	if err := n.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "link", "show", n.Bridge).CombinedOutput(); err == nil {
		t.Errorf("bridge %s still exists after Remove: %s", n.Bridge, out)
	}
}
