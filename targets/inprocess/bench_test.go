package inprocess

import (
	"context"
	"testing"

	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/scenario/scenariogen"
)

// BenchmarkStart starts the whole world of generated organisations (5 servers a site:
// 2 Hubs and 3 Mailbox servers; an Edge per 100 sites) and stops it again. The sizes
// grow in sites and recipients together, so the figures show how start-up scales.
func BenchmarkStart(b *testing.B) {
	scenariogen.Bench(b, func(b *testing.B, s *scenario.Scenario) {
		ctx := context.Background()
		for i := 0; i < b.N; i++ {
			topo, err := Start(ctx, s, WithBlock(63))
			if err != nil {
				b.Fatal(err)
			}
			if got := len(topo.hubs) + len(topo.mailboxes) + len(topo.edges); got != len(s.Org.Servers) {
				b.Errorf("%d servers running, want %d", got, len(s.Org.Servers))
			}
			if err := topo.Stop(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
