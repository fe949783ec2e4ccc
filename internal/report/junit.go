package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

// Texts are CDATA so multi-line SMTP exchanges stay readable in the file.
type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",cdata"`
}

type junitText struct {
	Text string `xml:",cdata"`
}

// xmlSafe replaces what XML 1.0 cannot carry at all (NUL, ANSI escapes from a
// coloured failure message); encoding/xml does this for attributes, not CDATA.
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r',
			r >= 0x20 && r <= 0xD7FF,
			r >= 0xE000 && r <= 0xFFFD,
			r >= 0x10000 && r <= 0x10FFFF:
			return r
		}
		return '\uFFFD'
	}, s)
}

// WriteJUnit writes one testsuite per area and one testcase per clause. Only FAIL
// is a JUnit failure: WARN and INFO go to system-out (a broken SHOULD does not
// fail a CI run unless --strict, which ExitCode handles), N/A and MISSING are
// skipped.
func (r *Result) WriteJUnit(w io.Writer) error {
	out := junitSuites{Name: "mailflow conformance: " + r.Target, Time: seconds(r.Duration)}
	index := map[string]int{}
	for _, c := range r.Clauses {
		area := c.Clause.Area
		i, ok := index[area]
		if !ok {
			i = len(out.Suites)
			index[area] = i
			out.Suites = append(out.Suites, junitSuite{
				Name:       area,
				Timestamp:  r.Started.UTC().Format("2006-01-02T15:04:05"),
				Properties: []junitProperty{{Name: "target", Value: r.Target}},
			})
		}
		s := &out.Suites[i]
		tc := junitCase{
			Name:      c.Clause.ID + " " + c.Clause.Title,
			Classname: area,
			Time:      seconds(c.Duration),
		}
		var out []string
		switch c.Verdict {
		case FAIL:
			tc.Failure = &junitMessage{Message: c.Reason, Type: string(FAIL), Text: xmlSafe(failureText(c))}
			s.Failures++
		case WARN:
			out = append(out, fmt.Sprintf("WARN (%s clause broken): %s", c.Clause.Level, c.Reason), failureText(c))
		case INFO:
			out = append(out, "INFO: "+c.Reason)
		case NA, MISSING:
			tc.Skipped = &junitMessage{Message: fmt.Sprintf("%s: %s", c.Verdict, c.Reason)}
			s.Skipped++
		}
		out = append(out, c.Vectors...)
		if len(out) > 0 {
			tc.SystemOut = &junitText{Text: xmlSafe(strings.TrimRight(strings.Join(out, "\n"), "\n"))}
		}
		s.Cases = append(s.Cases, tc)
		s.Tests++
	}
	for i := range out.Suites {
		s := &out.Suites[i]
		var d time.Duration
		for _, c := range r.Clauses {
			if c.Clause.Area == s.Name {
				d += c.Duration
			}
		}
		s.Time = seconds(d)
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Skipped += s.Skipped
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write JUnit report: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write JUnit report: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write JUnit report: %w", err)
	}
	return nil
}

// failureText is what a CI page shows for a failed clause: each failing spec with
// its message (expected outcome, SMTP exchange) and location.
func failureText(c ClauseResult) string {
	var b strings.Builder
	for _, s := range c.Specs {
		if s.Failure == "" || s.State == "skipped" {
			continue
		}
		fmt.Fprintf(&b, "%s [%s]\n%s\n", s.Text, s.State, s.Failure)
	}
	return b.String()
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%.3f", d.Seconds())
}
