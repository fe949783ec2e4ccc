package spec

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// specMDPath is SPEC.md in the project's shared documents, relative to this package.
const specMDPath = "../../shared/SPEC.md"

// wantClauses is the number of **XXX-NNN.** clause headings in SPEC.md (counted by
// hand: SPEC.md §14 may lag behind the headings).
const wantClauses = 158

func TestCatalogCount(t *testing.T) {
	if got := len(Catalog()); got != wantClauses {
		t.Fatalf("catalog has %d clauses, want %d", got, wantClauses)
	}
}

func TestCatalogFields(t *testing.T) {
	areas := map[string]string{}
	for k, v := range areaByPrefix {
		areas[v] = k
	}
	seen := map[string]bool{}
	for _, c := range Catalog() {
		t.Run(c.ID, func(t *testing.T) {
			if !IsClauseID(c.ID) {
				t.Errorf("bad id %q", c.ID)
			}
			if seen[c.ID] {
				t.Errorf("duplicate id")
			}
			seen[c.ID] = true
			prefix, _, _ := strings.Cut(c.ID, "-")
			if areas[c.Area] != prefix {
				t.Errorf("area %q does not match prefix %q", c.Area, prefix)
			}
			switch c.Level {
			case LevelMust, LevelShould, LevelMay:
			default:
				t.Errorf("bad level %q", c.Level)
			}
			switch c.Applies {
			case AppliesAnyMTA, AppliesReference:
			default:
				t.Errorf("bad applies %q", c.Applies)
			}
			if c.Title == "" || utf8.RuneCountInString(c.Title) > 60 {
				t.Errorf("title %q empty or longer than 60", c.Title)
			}
			if c.Text == "" || strings.Contains(c.Text, "**") || strings.Contains(c.Text, "\n") {
				t.Errorf("text must be one non-empty paragraph without **: %q", c.Text)
			}
			optional := c.Level == LevelMay && strings.HasPrefix(c.Text, "(Optional.)")
			if !strings.Contains(c.Text, c.Level) && !optional && !unkeyworded(c.Text) {
				t.Errorf("text does not contain its level keyword %s", c.Level)
			}
			if c.Source == "" || strings.HasPrefix(c.Source, "[") || strings.HasSuffix(c.Source, "]") {
				t.Errorf("source must be the list without brackets: %q", c.Source)
			}
		})
	}
}

func TestCatalogOrderFollowsAreas(t *testing.T) {
	// Within an area the numbers run upwards in document order.
	last := map[string]string{}
	for _, c := range Catalog() {
		if prev, ok := last[c.Area]; ok && prev >= c.ID {
			t.Errorf("%s follows %s", c.ID, prev)
		}
		last[c.Area] = c.ID
	}
}

// TestCatalogSpecialCases pins the judgement calls of the transcription.
func TestCatalogSpecialCases(t *testing.T) {
	tests := []struct {
		id      string
		level   string
		applies string
		config  bool
	}{
		{"SMTP-001", LevelMust, AppliesAnyMTA, false},
		{"SMTP-015", LevelMust, AppliesAnyMTA, true},     // SHOULD and MUST: MUST wins
		{"DNS-011", LevelMay, AppliesAnyMTA, false},      // (optional)
		{"QUEUE-012", LevelMay, AppliesReference, false}, // (Optional.) despite MUST
		{"MBX-009", LevelMust, AppliesAnyMTA, false},     // any-mta (quota) / reference (store-down)
		{"CAT-006", LevelMust, AppliesAnyMTA, true},      // (config: LDAP-backed recipient maps)
		{"FILTER-004", LevelShould, AppliesAnyMTA, true},
		{"TRACE-003", LevelShould, AppliesAnyMTA, false},
		{"SEC-006", LevelMust, AppliesAnyMTA, false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			c, ok := Lookup(tt.id)
			if !ok {
				t.Fatal("not found")
			}
			if c.Level != tt.level || c.Applies != tt.applies || c.Config != tt.config {
				t.Errorf("got level=%s applies=%s config=%v, want %s %s %v",
					c.Level, c.Applies, c.Config, tt.level, tt.applies, tt.config)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	c, ok := Lookup("RELAY-001")
	if !ok || c.ID != "RELAY-001" || c.Area != "relay" {
		t.Fatalf("Lookup(RELAY-001) = %+v, %v", c, ok)
	}
	if _, ok := Lookup("RELAY-999"); ok {
		t.Fatal("Lookup(RELAY-999) found a clause")
	}
	// Catalog hands out copies: changing one must not change the catalog.
	cat := Catalog()
	cat[0].Title = "changed"
	if Catalog()[0].Title == "changed" {
		t.Fatal("Catalog returned shared storage")
	}
}

func TestIsClauseID(t *testing.T) {
	tests := map[string]bool{
		"RELAY-001": true, "SEC-006": true, "SMTP-100": true,
		"relay-001": false, "RELAY-01": false, "RELAY-0001": false, "any-mta": false,
		"relay": false, "RELAY_001": false, " RELAY-001": false, "RELAY-001 ": false, "": false,
	}
	for in, want := range tests {
		if got := IsClauseID(in); got != want {
			t.Errorf("IsClauseID(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestParseRejectsBrokenCatalog(t *testing.T) {
	tests := map[string]string{
		"not yaml":  "- id: [",
		"empty":     "",
		"bad id":    "- id: relay-1\n",
		"duplicate": "- id: SMTP-001\n- id: SMTP-001\n",
	}
	for name, in := range tests {
		if _, err := parse([]byte(in)); err == nil {
			t.Errorf("%s: parse accepted %q", name, in)
		}
	}
}

var headingCountRe = regexp.MustCompile(`(?m)^\*\*[A-Z]+-\d{3}\.\*\*`)

// TestMatchesSpecMD compares the catalog with SPEC.md where the document exists
// (the project tree); users' clones have no SPEC.md, and the subtests skip there.
func TestMatchesSpecMD(t *testing.T) {
	data, err := os.ReadFile(specMDPath)
	if os.IsNotExist(err) {
		t.Skip("SPEC.md not present")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Run("heading count", func(t *testing.T) {
		if n := len(headingCountRe.FindAll(data, -1)); n != wantClauses {
			t.Errorf("SPEC.md has %d clause headings, want %d", n, wantClauses)
		}
	})
	parsed, err := parseSpecMD(data)
	if err != nil {
		t.Fatal(err)
	}
	cat := Catalog()
	t.Run("ids", func(t *testing.T) {
		ids := func(cs []Clause) []string {
			var out []string
			for _, c := range cs {
				out = append(out, c.ID)
			}
			return out
		}
		if got, want := strings.Join(ids(cat), " "), strings.Join(ids(parsed), " "); got != want {
			t.Errorf("catalog IDs differ from SPEC.md:\ncatalog: %s\nSPEC.md: %s", got, want)
		}
	})
	t.Run("fields", func(t *testing.T) {
		if len(parsed) != len(cat) {
			t.Skip("ID lists differ")
		}
		for i, p := range parsed {
			p.Title = cat[i].Title
			if p != cat[i] {
				t.Errorf("%s differs from SPEC.md (regenerate with -update):\ncatalog: %+v\nSPEC.md: %+v", p.ID, cat[i], p)
			}
		}
	})
}

// unkeyworded says a clause's text has no RFC 2119 keyword at all; such a clause is
// read as MUST (see parseClause).
func unkeyworded(text string) bool {
	for _, k := range []string{LevelMust, LevelShould, LevelMay} {
		if strings.Contains(text, k) {
			return false
		}
	}
	return true
}
