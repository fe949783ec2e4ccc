package inprocess

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/mailflow/mailflow/fixtures/clamdaemon"
	"github.com/mailflow/mailflow/reference/clamd"
	"github.com/mailflow/mailflow/scenarios"
)

// TestClamdOfTheTopology: a scenario whose Edges scan for malware gets a clamd of the
// topology's own, listed with the listeners and gone, socket and all, after Stop; one
// that does not scan starts none.
func TestClamdOfTheTopology(t *testing.T) {
	if _, err := clamdaemon.Find(); err != nil {
		t.Skip(err)
	}
	s, err := scenarios.Load("edge-antivirus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	topo, err := Start(ctx, s, WithBlock(65))
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	for _, l := range topo.Listeners() {
		if l.Kind == "clamd" {
			addr = l.Addr
		}
	}
	if addr == "" {
		_ = topo.Stop(ctx)
		t.Fatalf("no clamd among the listeners %+v", topo.Listeners())
	}
	if err := clamd.New(addr).Ping(ctx); err != nil {
		t.Errorf("the topology's clamd: %v", err)
	}
	if err := topo.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := clamd.New(addr).Ping(ctx); err == nil {
		t.Error("clamd still answers after Stop")
	}
	if _, err := os.Stat(strings.TrimPrefix(addr, "unix:")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("clamd's socket is still there after Stop (%v)", err)
	}

	plain, err := scenarios.Load("edge-attachments.yaml")
	if err != nil {
		t.Fatal(err)
	}
	topo, err = Start(ctx, plain, WithBlock(65))
	if err != nil {
		t.Fatal(err)
	}
	defer topo.Stop(ctx)
	for _, l := range topo.Listeners() {
		if l.Kind == "clamd" {
			t.Errorf("a world that scans nothing started clamd at %s", l.Addr)
		}
	}
}
