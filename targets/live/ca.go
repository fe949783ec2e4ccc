package live

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailflow/mailflow/fixtures/testca"
)

// CALifetime is how long the test CA a live run keeps on disk, and the Edge's
// certificate, stay valid: the host is configured with them once, for many runs.
const CALifetime = 365 * 24 * time.Hour

// TLSFiles are the PEM files the live host is configured with.
type TLSFiles struct {
	// Cert is the Edge's certificate chain and Key its key, issued by the test CA for
	// the Edge's name and the host's address.
	Cert, Key string
	// CA is the test CA's certificate: the harness's sinks present certificates it
	// issued, and its clients trust only it.
	CA string
}

// DefaultCADir is where a live run keeps its CA unless told: the user's
// configuration directory, so later runs find the CA the host was configured with.
func DefaultCADir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no directory for the test CA (%w); name one with --ca-dir", err)
	}
	return filepath.Join(d, "mailflow", "live-ca"), nil
}

// openCA loads the CA kept in dir (ca.pem, ca-key.pem), or makes one there.
func openCA(dir string) (*testca.CA, error) {
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	cert, cerr := os.ReadFile(certPath)
	key, kerr := os.ReadFile(keyPath)
	switch {
	case cerr == nil && kerr == nil:
		ca, err := testca.Load(cert, key, testca.WithLifetime(CALifetime))
		if err != nil {
			return nil, fmt.Errorf("test CA in %s: %w", dir, err)
		}
		if time.Until(ca.NotAfter()) < 24*time.Hour {
			return nil, fmt.Errorf("test CA in %s expires %s: remove ca.pem and ca-key.pem to make a new one, and configure the host with it", dir, ca.NotAfter().Format(time.DateOnly))
		}
		return ca, nil
	case errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist):
	case cerr != nil && !errors.Is(cerr, fs.ErrNotExist):
		return nil, fmt.Errorf("test CA: %w", cerr)
	case kerr != nil && !errors.Is(kerr, fs.ErrNotExist):
		return nil, fmt.Errorf("test CA: %w", kerr)
	default:
		return nil, fmt.Errorf("test CA in %s: one of ca.pem and ca-key.pem is missing; remove the other to make a new CA", dir)
	}
	ca, err := testca.New(testca.WithCommonName("mailflow live test CA"), testca.WithLifetime(CALifetime))
	if err != nil {
		return nil, err
	}
	key, err = ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("test CA: %w", err)
	}
	if err := writeFile(keyPath, key, 0o600); err != nil {
		return nil, err
	}
	if err := writeFile(certPath, ca.CertPEM(), 0o644); err != nil {
		return nil, err
	}
	return ca, nil
}

// edgeCert gives the files of a certificate for the Edge's names and the host's
// address: the one dir holds when it still fits (issued by ca for those names, valid
// for another day), else a new one.
func edgeCert(ca *testca.CA, dir, fqdn string, host Host, ip netip.Addr) (TLSFiles, error) {
	fqdn = strings.ToLower(strings.TrimSuffix(fqdn, "."))
	files := TLSFiles{Cert: filepath.Join(dir, fqdn+".pem"), Key: filepath.Join(dir, fqdn+"-key.pem"), CA: filepath.Join(dir, "ca.pem")}
	names := []string{fqdn}
	if !strings.EqualFold(host.Name, fqdn) && host.Name != ip.String() {
		names = append(names, host.Name)
	}
	names = append(names, ip.String())
	if fits(ca, files, names) {
		return files, nil
	}
	cert, key, err := ca.IssuePEM(names...)
	if err != nil {
		return files, err
	}
	if err := writeFile(files.Key, key, 0o600); err != nil {
		return files, err
	}
	return files, writeFile(files.Cert, cert, 0o644)
}

// fits says whether files hold a key and a certificate ca issued for every name, valid
// for a day more.
func fits(ca *testca.CA, files TLSFiles, names []string) bool {
	b, err := os.ReadFile(files.Cert)
	if err != nil {
		return false
	}
	if _, err := os.Stat(files.Key); err != nil {
		return false
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return false
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || time.Until(c.NotAfter) < 24*time.Hour {
		return false
	}
	for _, n := range names {
		if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: n}); err != nil {
			return false
		}
	}
	return true
}

// writeFile writes data whole under another name first, so a reader never sees half.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("test CA: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("test CA: %w", err)
	}
	return nil
}
