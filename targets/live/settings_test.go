package live

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/scenarios"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// testTLS are fixed paths, so the golden files do not depend on a temporary directory.
var testTLS = TLSFiles{Cert: "/etc/mailflow/live-ca/edge1.contoso.test.pem", Key: "/etc/mailflow/live-ca/edge1.contoso.test-key.pem", CA: "/etc/mailflow/live-ca/ca.pem"}

// configured is a Target configured for a shipped scenario, as New makes it but
// without a CA directory.
func configured(t *testing.T, name, url, listen string) *Target {
	t.Helper()
	s, err := scenarios.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return configuredFor(t, s, url, listen)
}

func configuredFor(t *testing.T, s *scenario.Scenario, url, listen string) *Target {
	t.Helper()
	h, err := ParseTarget(url)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := ParseListen(listen)
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr(h.Name)
	w, err := prepare(s, pool, ip, testTLS)
	if err != nil {
		t.Fatal(err)
	}
	return &Target{host: h, addr: netip.AddrPortFrom(ip, h.Port), pool: pool, scenario: s, tls: testTLS, configured: w}
}

// The settings printed before a run, for a small scenario and one with every kind of
// listener, route and accepted domain. `go test ./targets/live -update` rewrites them.
func TestSettingsGolden(t *testing.T) {
	for _, tc := range []struct{ scenario, url, listen, golden string }{
		{"edge-smarthost.yaml", "smtp://192.0.2.25:25", "192.0.2.96/28", "edge-smarthost.golden"},
		{"edge-relay.yaml", "smtp://192.0.2.25:2525", "192.0.2.100,192.0.2.101,192.0.2.102,192.0.2.25,192.0.2.103,192.0.2.104,192.0.2.105", "edge-relay.golden"},
		{"edge-filter.yaml", "smtp://192.0.2.25", "192.0.2.96/27", "edge-filter.golden"},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			var b bytes.Buffer
			if err := configured(t, tc.scenario, tc.url, tc.listen).Settings().Write(&b); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.golden)
			if *update {
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./targets/live -update writes it)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("settings differ from %s (go test ./targets/live -update rewrites it); got:\n%s", path, b.String())
			}
		})
	}
}
