package spec

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite clauses.yaml from ../../shared/SPEC.md, keeping the titles")

const yamlHeader = `# mailflow clause catalog: the product's copy of SPEC.md (users do not have SPEC.md).
# One entry per clause, in document order. Every field but "title" is transcribed from
# SPEC.md; regenerate with: go test ./spec -run TestRegenerate -update
# Titles (<= 60 characters) are written here by hand and survive regeneration.
`

// TestRegenerate rewrites clauses.yaml from SPEC.md when -update is given, so the
// transcription is mechanical and repeatable; titles come from the current file.
func TestRegenerate(t *testing.T) {
	if !*update {
		t.Skip("run with -update to regenerate clauses.yaml")
	}
	data, err := os.ReadFile(specMDPath)
	if err != nil {
		t.Fatalf("read SPEC.md: %v", err)
	}
	parsed, err := parseSpecMD(data)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := os.ReadFile("clauses.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var old []Clause
	if err := yaml.Unmarshal(cur, &old); err != nil {
		t.Fatalf("decode current clauses.yaml: %v", err)
	}
	titles := map[string]string{}
	for _, c := range old {
		titles[c.ID] = c.Title
	}
	var buf bytes.Buffer
	buf.WriteString(yamlHeader)
	for i := range parsed {
		parsed[i].Title = titles[parsed[i].ID]
		if parsed[i].Title == "" {
			t.Errorf("%s: no title yet; add one to clauses.yaml", parsed[i].ID)
		}
		b, err := yaml.Marshal([]Clause{parsed[i]})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&buf, "\n%s", b)
	}
	if err := os.WriteFile("clauses.yaml", buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
