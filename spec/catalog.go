package spec

import (
	_ "embed"
	"fmt"
	"regexp"

	"gopkg.in/yaml.v3"
)

// Requirement levels (RFC 2119 keywords) a clause may carry.
const (
	LevelMust   = "MUST"
	LevelShould = "SHOULD"
	LevelMay    = "MAY"
)

// Applicability of a clause, see SPEC.md §0.
const (
	AppliesAnyMTA    = "any-mta"
	AppliesReference = "reference"
)

// Clause is one testable sentence of the specification.
type Clause struct {
	// ID is stable forever, e.g. "RELAY-001".
	ID string `yaml:"id" json:"id"`
	// Area is the lower-case area name, e.g. "relay", "smarthost", "mailbox".
	Area string `yaml:"area" json:"area"`
	// Level is the strongest RFC 2119 keyword of the clause: MUST, SHOULD or MAY.
	Level string `yaml:"level" json:"level"`
	// Applies is "any-mta" or "reference".
	Applies string `yaml:"applies" json:"applies"`
	// Config is true when the clause needs a configuration knob on the target.
	Config bool `yaml:"config" json:"config"`
	// Title is a short human title (<= 60 characters).
	Title string `yaml:"title" json:"title"`
	// Text is the clause text as SPEC.md words it, in one paragraph.
	Text string `yaml:"text" json:"text"`
	// Source is the bracketed source list of SPEC.md, without the brackets.
	Source string `yaml:"source" json:"source"`
}

//go:embed clauses.yaml
var clausesYAML []byte

// The catalog is parsed at init so a broken embedded file fails every binary at
// start-up rather than producing a report with silently missing clauses.
var (
	catalog []Clause
	byID    map[string]int
)

func init() {
	c, err := parse(clausesYAML)
	if err != nil {
		panic(fmt.Sprintf("spec: embedded clauses.yaml: %v", err))
	}
	catalog = c
	byID = make(map[string]int, len(c))
	for i, cl := range c {
		byID[cl.ID] = i
	}
}

// parse decodes a catalog and rejects what would make lookups ambiguous; the
// finer field checks live in the unit tests.
func parse(data []byte) ([]Clause, error) {
	var out []Clause
	if err := yaml.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no clauses")
	}
	seen := make(map[string]bool, len(out))
	for i, c := range out {
		if !IsClauseID(c.ID) {
			return nil, fmt.Errorf("entry %d: bad id %q", i, c.ID)
		}
		if seen[c.ID] {
			return nil, fmt.Errorf("entry %d: duplicate id %q", i, c.ID)
		}
		seen[c.ID] = true
	}
	return out, nil
}

// Catalog returns every clause in document order. The slice is a copy, so
// callers may sort or trim it freely.
func Catalog() []Clause {
	out := make([]Clause, len(catalog))
	copy(out, catalog)
	return out
}

// Lookup returns the clause with the given ID.
func Lookup(id string) (Clause, bool) {
	i, ok := byID[id]
	if !ok {
		return Clause{}, false
	}
	return catalog[i], true
}

var clauseIDRe = regexp.MustCompile(`^[A-Z]+-\d{3}$`)

// IsClauseID reports whether a Ginkgo label has the shape of a clause ID
// ("RELAY-001"), whether or not the catalog knows it.
func IsClauseID(label string) bool {
	return clauseIDRe.MatchString(label)
}
