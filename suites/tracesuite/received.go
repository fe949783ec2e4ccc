package tracesuite

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Received is one Received header field taken apart along RFC 5321 §4.4 (Stamp) and
// RFC 5322 §3.6.7 (received = "Received:" *received-token ";" date-time): its
// clauses in order and the date-time after the last ";".
type Received struct {
	Clauses []Clause
	// Date is the text after the last ";" outside comments, comments included.
	Date string
}

// Clause is one keyword of the stamp (from, by, via, with, id, for) and what follows
// it up to the next keyword: the items (a domain, an address literal, an atom, a
// path) and the comments among them.
type Clause struct {
	Name     string   // lower case
	Items    []string // as written: "<alice@contoso.test>", "[192.0.2.1]", "ESMTP"
	Comments []string // without the outer parentheses
}

// keywords are the clause names of RFC 5321 §4.4 Stamp.
var keywords = map[string]bool{"from": true, "by": true, "via": true, "with": true, "id": true, "for": true}

// ParseReceived takes the value of a Received field (what follows "Received:",
// folded or not) apart.
func ParseReceived(value string) (Received, error) {
	toks, err := tokens(unfold(value))
	if err != nil {
		return Received{}, err
	}
	semi := -1
	for i, t := range toks {
		if t.kind == ';' {
			semi = i
		}
	}
	if semi < 0 {
		return Received{}, errors.New(`no ";" before the date-time`)
	}
	var r Received
	var cur *Clause
	for _, t := range toks[:semi] {
		switch {
		case t.kind == '(' && cur != nil:
			cur.Comments = append(cur.Comments, t.text)
		case t.kind == '(':
			// a comment before the first keyword says nothing about a clause
		case t.kind == 'a' && keywords[strings.ToLower(t.text)]:
			r.Clauses = append(r.Clauses, Clause{Name: strings.ToLower(t.text)})
			cur = &r.Clauses[len(r.Clauses)-1]
		case t.kind == ';':
			// an earlier ";" (only the last one starts the date-time)
		case cur == nil:
			return Received{}, fmt.Errorf("%q before the first clause keyword", t.text)
		default:
			cur.Items = append(cur.Items, t.text)
		}
	}
	for _, t := range toks[semi+1:] {
		if r.Date != "" {
			r.Date += " "
		}
		if t.kind == '(' {
			r.Date += "(" + t.text + ")"
		} else {
			r.Date += t.text
		}
	}
	return r, nil
}

// Clause is the first clause called name ("from"), if any.
func (r Received) Clause(name string) (Clause, bool) {
	for _, c := range r.Clauses {
		if c.Name == name {
			return c, true
		}
	}
	return Clause{}, false
}

// All is every clause called name.
func (r Received) All(name string) []Clause {
	var out []Clause
	for _, c := range r.Clauses {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

// unfold removes the CRLFs of folding (RFC 5322 §2.2.3).
func unfold(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", "")
}

// token is one lexical item of a Received value: an atom-like run ('a'), a comment
// ('('), an angle-bracketed path ('<'), a domain or address literal ('['), a quoted
// string ('"') or the ";" separator.
type token struct {
	kind byte
	text string
}

// tokens splits a Received value; comments nest and honour quoted-pairs (RFC 5322
// §3.2.2), and no separator inside a comment, literal, path or quoted string counts.
// Items written without white space between them are one item (a quoted local part
// and its "@domain").
func tokens(s string) ([]token, error) {
	var out []token
	end := -1 // where the last item ended
	for i := 0; i < len(s); {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		t, j, err := next(s, i)
		if err != nil {
			return nil, err
		}
		item := t.kind != '(' && t.kind != ';'
		if n := len(out); item && n > 0 && end == i {
			out[n-1] = token{'a', out[n-1].text + t.text}
		} else {
			out = append(out, t)
		}
		if end = -1; item {
			end = j
		}
		i = j
	}
	return out, nil
}

// next reads the token that starts at s[i] and says where the next one may start.
func next(s string, i int) (token, int, error) {
	switch c := s[i]; c {
	case ';':
		return token{';', ";"}, i + 1, nil
	case '(':
		depth := 0
		for j := i; j < len(s); j++ {
			switch s[j] {
			case '\\':
				j++
			case '(':
				depth++
			case ')':
				if depth--; depth == 0 {
					return token{'(', s[i+1 : j]}, j + 1, nil
				}
			}
		}
		return token{}, 0, fmt.Errorf("unbalanced comment in %q", s[i:])
	case '<', '[', '"':
		closer := map[byte]byte{'<': '>', '[': ']', '"': '"'}[c]
		for j := i + 1; j < len(s); j++ {
			switch s[j] {
			case '\\':
				j++
			case closer:
				return token{c, s[i : j+1]}, j + 1, nil
			}
		}
		return token{}, 0, fmt.Errorf("no closing %q in %q", closer, s[i:])
	}
	j := i
	for j < len(s) && !strings.ContainsRune(" \t;()<>[]\"", rune(s[j])) {
		j++
	}
	if j == i { // a stray closing bracket
		return token{}, 0, fmt.Errorf("unexpected %q in %q", s[i], s)
	}
	return token{'a', s[i:j]}, j, nil
}

// dateRe is RFC 5322 date-time without its obsolete forms (RFC 5321 §4.4: "the obs-
// forms ... MUST NOT be used"), the zone kept apart so a named zone can be told from
// a missing one.
var dateRe = regexp.MustCompile(`^(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ?, ?)?(\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}:\d{2}(?::\d{2})?) (\S+)$`)

var numericZone = regexp.MustCompile(`^[+-]\d{4}$`)

// DateTime reads the date-time of the field: the time and whether the zone is a
// numeric offset. Comments (a "(UTC)" after the offset) are allowed around it.
func (r Received) DateTime() (t time.Time, numeric bool, err error) {
	toks, err := tokens(r.Date)
	if err != nil {
		return time.Time{}, false, err
	}
	var words []string
	for _, tk := range toks {
		if tk.kind != '(' {
			words = append(words, tk.text)
		}
	}
	m := dateRe.FindStringSubmatch(strings.Join(words, " "))
	if m == nil {
		return time.Time{}, false, fmt.Errorf("%q is not an RFC 5322 date-time", r.Date)
	}
	numeric = numericZone.MatchString(m[5])
	layout := "2 Jan 2006 15:04"
	if len(m[4]) == 8 {
		layout += ":05"
	}
	if numeric {
		t, err = time.Parse(layout+" -0700", strings.Join(m[1:6], " "))
	} else {
		t, err = time.Parse(layout+" MST", strings.Join(m[1:6], " "))
	}
	if err != nil {
		return time.Time{}, numeric, fmt.Errorf("%q: %w", r.Date, err)
	}
	return t, numeric, nil
}
