package routing

import (
	"fmt"
	"testing"

	"github.com/mailflow/mailflow/scenario"
)

// BenchmarkSelectConnector picks among 200 connectors, the scale of a large org.
func BenchmarkSelectConnector(b *testing.B) {
	var conns []scenario.SendConnector
	for i := 0; i < 200; i++ {
		conns = append(conns, scenario.SendConnector{Name: fmt.Sprintf("c%03d", i), AddressSpaces: []string{fmt.Sprintf("d%d.test", i), "*.contoso.test"}, Cost: i % 7})
	}
	conns = append(conns, scenario.SendConnector{Name: "star", AddressSpaces: []string{"*"}})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := SelectConnector(conns, "EDGE1", "marketing.contoso.test", 1000); err != nil {
			b.Fatal(err)
		}
	}
}
