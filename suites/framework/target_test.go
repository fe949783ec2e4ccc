package framework

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMTATargetByDirectory: mta:DIR runs the profile in DIR, named after it; a
// relative DIR is made absolute, since parallel workers need not share the working
// directory; a built-in profile is still named; anything else is refused naming the
// choices.
func TestMTATargetByDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my-mta")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := "files:\n  - {template: start.sh.tmpl, path: /etc/mailflow/start.sh, mode: 0755}\n"
	if err := os.WriteFile(filepath.Join(dir, "profile.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "start.sh.tmpl"), []byte("#!/bin/sh\nexec my-mta\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Dir(dir))
	for _, env := range []string{"mta:" + dir, "mta:./my-mta"} {
		t.Setenv(TargetEnv, env)
		tg, err := CurrentTarget()
		if err != nil {
			t.Fatalf("%s: %v", env, err)
		}
		if m, ok := tg.(MTA); !ok || m.Profile != dir || tg.Name() != "my-mta" || !AnyMTAOnly(tg) {
			t.Errorf("%s: target %#v named %q, want MTA{%q} named my-mta", env, tg, tg.Name(), dir)
		}
	}
	t.Setenv(TargetEnv, "mta:postfix")
	if tg, err := CurrentTarget(); err != nil || tg.Name() != "postfix" {
		t.Errorf("mta:postfix: %v, %v", tg, err)
	}
	for _, env := range []string{"mta:./nowhere", "mta:sendmail"} {
		t.Setenv(TargetEnv, env)
		if _, err := CurrentTarget(); err == nil {
			t.Errorf("%s: no error", env)
		}
	}
	t.Setenv(TargetEnv, "mta:sendmail")
	if _, err := CurrentTarget(); err == nil || !strings.Contains(err.Error(), "or a directory") {
		t.Errorf("mta:sendmail: %v, want the choices named", err)
	}
}
