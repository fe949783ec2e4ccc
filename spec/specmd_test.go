package spec

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// areaByPrefix maps the ID prefix used in SPEC.md to the catalog's area name.
var areaByPrefix = map[string]string{
	"SMTP":   "smtp",
	"RELAY":  "relay",
	"ACCEPT": "accept",
	"DNS":    "dns",
	"SMART":  "smarthost",
	"ROUTE":  "routing",
	"CAT":    "categorizer",
	"QUEUE":  "queue",
	"DSN":    "dsn",
	"FILTER": "filter",
	"MBX":    "mailbox",
	"TRACE":  "trace",
	"SEC":    "security",
}

var (
	headingRe = regexp.MustCompile(`^\*\*([A-Z]+-\d{3})\.\*\*\s*(.*)$`)
	keywordRe = regexp.MustCompile(`\b(MUST|SHOULD|MAY)\b`)
	appliesRe = regexp.MustCompile("^`applies: ([a-z-]+)`")
)

// parseSpecMD extracts the clauses of SPEC.md, everything but the titles (those
// are the catalog's own). It is the executable statement of how clauses.yaml
// was transcribed: a clause is the paragraph opened by **ID.**; its text ends at
// the `applies:` marker; its sources are the bracketed list after the dash.
func parseSpecMD(data []byte) ([]Clause, error) {
	var (
		out  []Clause
		para []string
	)
	flush := func() error {
		if para == nil {
			return nil
		}
		c, err := parseClause(strings.Join(para, " "))
		para = nil
		if err != nil {
			return err
		}
		out = append(out, c)
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case headingRe.MatchString(line):
			if err := flush(); err != nil {
				return nil, err
			}
			para = []string{line}
		case line == "" || strings.HasPrefix(line, "#"):
			if err := flush(); err != nil {
				return nil, err
			}
		case para != nil:
			para = append(para, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read SPEC.md: %w", err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

func parseClause(p string) (Clause, error) {
	m := headingRe.FindStringSubmatch(p)
	id, body := m[1], m[2]
	prefix, _, _ := strings.Cut(id, "-")
	area, ok := areaByPrefix[prefix]
	if !ok {
		return Clause{}, fmt.Errorf("%s: unknown area prefix %q", id, prefix)
	}
	i := strings.Index(body, "`applies: ")
	if i < 0 {
		return Clause{}, fmt.Errorf("%s: no applies marker", id)
	}
	text := strings.ReplaceAll(strings.TrimSpace(body[:i]), "**", "")
	tail := body[i:]
	am := appliesRe.FindStringSubmatch(tail)
	if am == nil {
		return Clause{}, fmt.Errorf("%s: bad applies marker in %q", id, tail)
	}
	j := strings.Index(tail, " — [")
	if j < 0 || !strings.HasSuffix(tail, "]") {
		return Clause{}, fmt.Errorf("%s: no source list in %q", id, tail)
	}
	qualifier := tail[len(am[0]):j]
	source := tail[j+len(" — [") : len(tail)-1]

	level := ""
	for _, k := range keywordRe.FindAllString(text, -1) {
		if rank(k) > rank(level) {
			level = k
		}
	}
	// A clause stated without a keyword (FILTER-018 says "Agents act at their SMTP event")
	// describes required behaviour: it is read as MUST.
	if level == "" {
		level = LevelMust
	}
	// An optional clause is never more than MAY whatever keywords it restates.
	if strings.Contains(qualifier, "(optional)") || strings.HasPrefix(text, "(Optional.)") {
		level = LevelMay
	}
	return Clause{
		ID:      id,
		Area:    area,
		Level:   level,
		Applies: am[1],
		Config:  strings.Contains(qualifier, "(config"),
		Text:    text,
		Source:  source,
	}, nil
}

func rank(level string) int {
	switch level {
	case LevelMust:
		return 3
	case LevelShould:
		return 2
	case LevelMay:
		return 1
	}
	return 0
}
