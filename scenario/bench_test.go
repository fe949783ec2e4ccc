package scenario_test

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/scenario/scenariogen"
)

// BenchmarkParse reads, validates and completes the file of generated organisations,
// what `mailflow serve` does before it starts one.
func BenchmarkParse(b *testing.B) {
	scenariogen.Bench(b, func(b *testing.B, s *scenario.Scenario) {
		data := marshal(b, s)
		b.SetBytes(int64(len(data)))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			parsed, err := scenario.Parse("generated.yaml", data)
			if err != nil {
				b.Fatal(err)
			}
			if len(parsed.Org.Recipients) != len(s.Org.Recipients) {
				b.Fatalf("%d recipients parsed, want %d", len(parsed.Org.Recipients), len(s.Org.Recipients))
			}
		}
	})
}

// topKey is a line that starts a top-level key.
var topKey = regexp.MustCompile(`(?m)^\S`)

// marshal is scenario.Marshal written a thousand recipients at a time: yaml.v3 keeps
// every event of a document until its end, which makes one document of 100k recipients
// take seconds to write.
func marshal(b *testing.B, s *scenario.Scenario) []byte {
	b.Helper()
	rest := *s
	rest.Org.Recipients = nil
	head, err := scenario.Marshal(&rest)
	if err != nil {
		b.Fatal(err)
	}
	const empty = "\n    recipients: []\n"
	if !bytes.Contains(head, []byte(empty)) {
		b.Fatalf("no empty recipient list in\n%s", head)
	}
	list := []byte("\n    recipients:\n")
	for i := 0; i < len(s.Org.Recipients); i += 1000 {
		part := s.Org.Recipients[i:min(i+1000, len(s.Org.Recipients))]
		chunk, err := scenario.Marshal(&scenario.Scenario{Org: scenario.Org{Recipients: part}})
		if err != nil {
			b.Fatal(err)
		}
		// The chunk is "org:\n    recipients:\n        - ...\ninternet: ...": its items
		// are indented as they must be under the organisation, up to the next top key.
		_, items, ok := bytes.Cut(chunk, []byte("\n    recipients:\n"))
		if !ok {
			b.Fatalf("no recipient list in\n%.200s", chunk)
		}
		if end := topKey.FindIndex(items); end != nil {
			items = items[:end[0]]
		}
		list = append(list, items...)
	}
	return bytes.Replace(head, []byte(empty), list, 1)
}
