// Package scenarios ships the example scenario files, which are also the suites'
// topologies; they are embedded so the mailflow binary carries them.
package scenarios

import (
	"embed"
	"fmt"

	"github.com/mailflow/mailflow/scenario"
)

//go:embed *.yaml
var files embed.FS

// Read returns a shipped scenario file by name ("edge-smarthost.yaml").
func Read(name string) ([]byte, error) {
	b, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("scenario %s is not shipped: %w", name, err)
	}
	return b, nil
}

// Load parses a shipped scenario.
func Load(name string) (*scenario.Scenario, error) {
	b, err := Read(name)
	if err != nil {
		return nil, err
	}
	return scenario.Parse("scenarios/"+name, b)
}

// Names lists the shipped scenarios.
func Names() []string {
	ents, _ := files.ReadDir(".")
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
