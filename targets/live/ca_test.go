package live

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The CA directory keeps one CA across runs, and the Edge's certificate while it fits
// the Edge's name and the host's address; a half-removed CA is an error, not a new CA
// the host was never configured with.
func TestCADir(t *testing.T) {
	dir := t.TempDir()
	a, err := openCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := openCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.CertPEM(), b.CertPEM()) {
		t.Error("a second run made another CA")
	}
	host := Host{Name: "192.0.2.25", Port: 25}
	ip := netip.MustParseAddr("192.0.2.25")
	files, err := edgeCert(b, dir, "EDGE1.contoso.test.", host, ip)
	if err != nil {
		t.Fatal(err)
	}
	if files.Cert != filepath.Join(dir, "edge1.contoso.test.pem") || files.Key != filepath.Join(dir, "edge1.contoso.test-key.pem") || files.CA != filepath.Join(dir, "ca.pem") {
		t.Errorf("files %+v", files)
	}
	first, _ := os.ReadFile(files.Cert)
	if _, err := edgeCert(a, dir, "edge1.contoso.test", host, ip); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(files.Cert); !bytes.Equal(first, again) {
		t.Error("a certificate that fits was issued again")
	}
	moved := netip.MustParseAddr("192.0.2.26")
	if _, err := edgeCert(a, dir, "edge1.contoso.test", Host{Name: moved.String(), Port: 25}, moved); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(files.Cert); bytes.Equal(first, again) {
		t.Error("the host moved to another address and kept a certificate without it")
	}
	if err := os.Remove(filepath.Join(dir, "ca-key.pem")); err != nil {
		t.Fatal(err)
	}
	if _, err := openCA(dir); err == nil || !strings.Contains(err.Error(), "one of ca.pem and ca-key.pem is missing") {
		t.Errorf("openCA without the key: %v", err)
	}
}
