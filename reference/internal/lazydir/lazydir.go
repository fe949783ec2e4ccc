// Package lazydir is a directory made when it is first written to, so that opening the
// spools and stores of a thousand servers writes nothing to disk (about a millisecond a
// directory on some disks) and a server that never receives mail leaves none behind.
package lazydir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Dir is a directory made by its first Make.
type Dir struct {
	path    string
	syncDir func(dir string) error

	mu   sync.Mutex
	made bool // path exists and its entry is durable
}

// Open is the directory at path, made later; syncDir makes a directory's entries
// durable. A path that exists as something else is an error now, as it would be for a
// directory made at once.
func Open(path string, syncDir func(dir string) error) (*Dir, error) {
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", path)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return &Dir{path: path, syncDir: syncDir}, nil
}

// Path is where the directory is, or will be.
func (d *Dir) Path() string { return d.path }

// Make creates the directory, with any parents missing, and makes its entry in its
// parent durable, so what is made durable in it cannot vanish with it. After a success
// it does nothing.
func (d *Dir) Make() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.made {
		return nil
	}
	if err := os.MkdirAll(d.path, 0o700); err != nil {
		return err
	}
	// Also when the directory was there: a Make that failed to sync may have made it.
	if err := d.syncDir(filepath.Dir(d.path)); err != nil {
		return err
	}
	d.made = true
	return nil
}
