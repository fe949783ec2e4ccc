package mtaload

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSyncCounter: where perf may trace, fsyncs made while the counter runs are
// counted (others on the machine may add to them, never take away).
func TestSyncCounter(t *testing.T) {
	dir := t.TempDir()
	c, err := StartSyncCounter(dir)
	if err != nil {
		t.Skipf("no fsync count here: %v", err)
	}
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := 0; i < 25; i++ {
		if _, err := f.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	n, err := c.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if n < 25 {
		t.Errorf("counted %d fsyncs, want at least the 25 made", n)
	}
}
