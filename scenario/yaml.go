package scenario

import (
	"fmt"
	"io"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML accepts Go duration syntax ("10m", "1h30m", "500ms"). A bare number
// is refused: "600" could mean seconds or nanoseconds, and guessing is how retry
// intervals end up a million times too short.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, problem := parseDuration(n)
	if problem != "" {
		return &Error{Line: n.Line, Col: n.Column, Problem: problem}
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration back in the syntax UnmarshalYAML reads.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

func parseDuration(n *yaml.Node) (Duration, string) {
	if n.Kind != yaml.ScalarNode {
		return 0, fmt.Sprintf("expected a duration such as 10m, 1h30m or 500ms, got %s", describe(n))
	}
	if n.Tag == "!!null" {
		return 0, ""
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return 0, fmt.Sprintf("invalid duration %q: want a duration such as 10m, 1h30m or 500ms", n.Value)
	}
	return Duration(v), ""
}

// UnmarshalYAML accepts a bare action ("behaviour: accept") as shorthand for a
// mapping with only the action, because most hosts need nothing more.
func (b *Behaviour) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if n.Tag == "!!null" {
			*b = Behaviour{}
			return nil
		}
		*b = Behaviour{Action: n.Value}
		return nil
	}
	type plain Behaviour // no methods: avoids recursing into this function
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*b = Behaviour(p)
	return nil
}

// ParseBehaviour reads one host behaviour as a scenario writes it ("defer", or
// "{action: reject, stage: rcpt, code: 550}"), checked and with the defaults of a
// host-wide behaviour, for suites that change a host's behaviour mid-spec.
func ParseBehaviour(text string) (Behaviour, error) {
	// The text is read as one YAML value of its own and put into the scenario as a
	// node: pasted into the scenario's text, "reject, tls: true" set the host's tls and
	// a "}" could start a second host, both silently.
	var value yaml.Node
	dec := yaml.NewDecoder(strings.NewReader(text))
	if err := dec.Decode(&value); err != nil && err != io.EOF {
		return Behaviour{}, Errors{syntaxError("behaviour", err)}
	}
	var more yaml.Node
	switch err := dec.Decode(&more); {
	case err == nil:
		return Behaviour{}, Errors{{File: "behaviour", Line: max(more.Line, 1), Col: 1, Problem: "more than one YAML document"}}
	case err != io.EOF:
		return Behaviour{}, Errors{syntaxError("behaviour", err)}
	}
	v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"} // no text: the default behaviour
	if len(value.Content) > 0 {
		v = value.Content[0]
	}
	str := func(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }
	host := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{str("name"), str("h.test"), str("behaviour"), v}}
	doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{str("internet"),
		{Kind: yaml.MappingNode, Content: []*yaml.Node{str("hosts"), {Kind: yaml.SequenceNode, Content: []*yaml.Node{host}}}}}}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return Behaviour{}, Errors{{File: "behaviour", Line: 1, Col: 1, Problem: "YAML: " + err.Error()}}
	}
	s, err := Parse("behaviour", data)
	if err != nil {
		return Behaviour{}, err
	}
	return s.Internet.Hosts[0].Behaviour, nil
}

// UnmarshalYAML takes a single path as a list of one: most messages have one
// recipient.
func (p *Paths) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if n.Tag == "!!null" {
			*p = nil
			return nil
		}
		*p = Paths{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*p = l
	return nil
}
