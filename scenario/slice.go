package scenario

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// SliceFor is what one server needs to run on its own (one container, one lab host):
// the organisation as a whole, but only that server's receive connectors, and no
// Internet or messages, which belong to the fixtures and the suite. The result shares
// nothing mutable with s.
func (s *Scenario) SliceFor(server string) (*Scenario, error) {
	if _, ok := s.Server(server); !ok {
		return nil, fmt.Errorf("slice: no server %q", server)
	}
	out, err := s.Clone()
	if err != nil {
		return nil, fmt.Errorf("slice: %w", err)
	}
	out.Internet = Internet{}
	out.Messages = nil
	out.Timeline = nil
	rcs := out.Org.ReceiveConnectors[:0]
	for _, rc := range out.Org.ReceiveConnectors {
		if strings.EqualFold(rc.Server, server) {
			rcs = append(rcs, rc)
		}
	}
	out.Org.ReceiveConnectors = rcs
	return out, nil
}

// Marshal writes s as a scenario file that Parse reads back to an equal scenario.
func Marshal(s *Scenario) ([]byte, error) {
	b, err := yaml.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("scenario: marshal: %w", err)
	}
	return b, nil
}

// Clone is a deep copy, for targets that rewrite addresses without touching the
// caller's scenario.
func (s *Scenario) Clone() (*Scenario, error) {
	b, err := Marshal(s)
	if err != nil {
		return nil, err
	}
	out, err := Parse(s.File, b)
	if err != nil {
		return nil, fmt.Errorf("clone: %w", err)
	}
	return out, nil
}
