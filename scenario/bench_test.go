package scenario_test

import (
	"fmt"
	"testing"

	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/scenario/scenariogen"
)

// BenchmarkParse reads, validates and completes the file of generated organisations,
// what `mailflow serve` does before it starts one.
func BenchmarkParse(b *testing.B) {
	for _, size := range []struct{ sites, recipients int }{{10, 1_000}, {100, 10_000}, {200, 100_000}} {
		b.Run(fmt.Sprintf("sites=%d", size.sites), func(b *testing.B) {
			data, err := scenario.Marshal(scenariogen.Org(size.sites, scenariogen.WithRecipients(size.recipients)))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := scenario.Parse("generated.yaml", data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
