package inprocess

import (
	"context"
	"testing"

	"github.com/mailflow/mailflow/scenarios"
)

// TestSpamdOfTheWorld: an Edge whose content filter names no spamd asks the world's,
// which WithSpamd gives and the listeners show; one that names its own needs none.
func TestSpamdOfTheWorld(t *testing.T) {
	for _, c := range []struct {
		name, own, want string
	}{
		{"the world's", "", "127.0.0.1:7830"},
		{"its own", "127.0.0.1:7831", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := scenarios.Load("edge-filter.yaml")
			if err != nil {
				t.Fatal(err)
			}
			edge, ok := s.Server("EDGE1")
			if !ok {
				t.Fatal("edge-filter.yaml has no EDGE1")
			}
			edge.Agents.ContentFilter.Enabled, edge.Agents.ContentFilter.Spamd = true, c.own
			opt := WithSpamd("127.0.0.1:7830")
			if c.own != "" {
				opt = func(*config) {}
			}
			ctx := context.Background()
			topo, err := Start(ctx, s, WithBlock(66), opt)
			if err != nil {
				t.Fatal(err)
			}
			defer topo.Stop(ctx)
			var got string
			for _, l := range topo.Listeners() {
				if l.Kind == "spamd" {
					got = l.Addr
				}
			}
			if got != c.want {
				t.Errorf("the spamd listed is %q, want %q (listeners %+v)", got, c.want, topo.Listeners())
			}
		})
	}
}
