package lazydir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestMadeByTheFirstMake(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool", "HUB1")
	var synced []string
	d, err := Open(path, func(dir string) error { synced = append(synced, dir); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("made by Open: %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := d.Make(); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		t.Fatalf("not made: %v", err)
	}
	if len(synced) != 1 || synced[0] != filepath.Dir(path) {
		t.Errorf("synced %v, want the parent once", synced)
	}
}

func TestOpenRefusesAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file, func(string) error { return nil }); err == nil {
		t.Error("Open accepted a file")
	}
}

func TestFailedSyncIsRetried(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store")
	syncs := 0
	d, _ := Open(path, func(string) error {
		if syncs++; syncs == 1 {
			return errors.New("injected")
		}
		return nil
	})
	if err := d.Make(); err == nil {
		t.Fatal("Make hid a failed sync")
	}
	if err := d.Make(); err != nil {
		t.Fatal(err)
	}
	if syncs != 2 {
		t.Errorf("%d syncs, want the failed one and its retry", syncs)
	}
}
