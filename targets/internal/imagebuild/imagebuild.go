// Package imagebuild runs the repository's image build scripts for the Docker targets
// (containers/*/build-image.sh): each is idempotent, prints the image it built or found,
// and is looked for from the working directory up (go test runs in a package's
// directory, mailflow conformance in the clone). A process runs each script with the
// same arguments once.
package imagebuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

var (
	mu    sync.Mutex
	built = map[string]string{}
)

// Image runs script (a path from the repository's root, "containers/mta/build-image.sh")
// with args and returns the image it prints. $env, when set, is the script to run
// instead.
func Image(ctx context.Context, env, script string, args ...string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	key := script + "\x00" + strings.Join(args, "\x00")
	if img, ok := built[key]; ok {
		return img, nil
	}
	path, err := find(env, script)
	if err != nil {
		return "", err
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", path, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	img := strings.TrimSpace(string(out))
	if img == "" {
		return "", fmt.Errorf("%s %s printed no image", path, strings.Join(args, " "))
	}
	built[key] = img
	return img, nil
}

func find(env, script string) (string, error) {
	if s := os.Getenv(env); s != "" {
		return s, nil
	}
	dir, _ := os.Getwd()
	for {
		p := filepath.Join(dir, filepath.FromSlash(script))
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New(script + " not found above the working directory (set " + env + ")")
		}
		dir = parent
	}
}
