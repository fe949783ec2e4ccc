package report

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// maxFailureLines bounds the failure text printed per spec: enough for the
// expected outcome and the SMTP exchange, short enough to keep the table readable.
const maxFailureLines = 40

// WriteTable prints the per-clause table (ID, LEVEL, VERDICT, TIME, TITLE), with
// vector lines, INFO observations and FAIL/WARN failure messages indented under
// their clause, then the totals line.
func (r *Result) WriteTable(w io.Writer) error {
	bw := &trimWriter{w: w}
	fmt.Fprintf(bw, "mailflow conformance: target %s, started %s, took %s\n\n",
		r.Target, r.Started.Format(time.RFC3339), formatDuration(r.Duration))
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tLEVEL\tVERDICT\tTIME\tTITLE")
	for _, c := range r.Clauses {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n",
			c.Clause.ID, c.Clause.Level, c.Verdict, formatDuration(c.Duration), c.Clause.Title)
		// Detail lines fill the first four cells with empty ones so they do not
		// break tabwriter's column blocks; the text lands under TITLE.
		for _, v := range c.Vectors {
			detail(tw, 2, v)
		}
		switch {
		case c.Verdict == INFO:
			detail(tw, 2, c.Reason)
		case c.Verdict == WARN && !anyFailed(c.Specs):
			// A SHOULD inside the clause that did not hold: the reason carries the
			// observed exchange.
			for _, l := range limitLines(c.Reason, maxFailureLines) {
				detail(tw, 4, l)
			}
		case c.Verdict == FAIL || c.Verdict == WARN:
			for _, s := range c.Specs {
				if s.Failure == "" || s.State == "skipped" {
					continue
				}
				detail(tw, 2, fmt.Sprintf("%s [%s]", s.Text, s.State))
				for _, l := range limitLines(s.Failure, maxFailureLines) {
					detail(tw, 4, l)
				}
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	fmt.Fprintln(bw)
	for _, f := range r.SuiteFailures {
		fmt.Fprintf(bw, "Suite failure: %s\n", f)
	}
	if len(r.UnknownLabels) > 0 {
		fmt.Fprintf(bw, "Unknown clause labels (not in the catalog): %s\n", strings.Join(r.UnknownLabels, ", "))
	}
	fmt.Fprintln(bw, r.TotalsLine())
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// trimWriter buffers output and strips the trailing blanks tabwriter pads empty
// cells with, so tables diff cleanly and survive editors that trim lines.
type trimWriter struct {
	w   io.Writer
	buf bytes.Buffer
}

func (t *trimWriter) Write(p []byte) (int, error) { return t.buf.Write(p) }

func (t *trimWriter) Flush() error {
	lines := strings.SplitAfter(t.buf.String(), "\n")
	var out strings.Builder
	for _, l := range lines {
		nl := strings.HasSuffix(l, "\n")
		out.WriteString(strings.TrimRight(l, " \n"))
		if nl {
			out.WriteByte('\n')
		}
	}
	t.buf.Reset()
	_, err := io.WriteString(t.w, out.String())
	return err
}

// TotalsLine is "Totals: 25 PASS, 0 FAIL, ... (132 clauses)".
func (r *Result) TotalsLine() string {
	parts := make([]string, 0, 6)
	for _, v := range AllVerdicts() {
		parts = append(parts, fmt.Sprintf("%d %s", r.Totals[v], v))
	}
	return fmt.Sprintf("Totals: %s (%d clauses)", strings.Join(parts, ", "), len(r.Clauses))
}

func detail(tw io.Writer, indent int, line string) {
	// A tab inside the text would open a new cell and shift the columns.
	line = strings.ReplaceAll(line, "\t", "    ")
	fmt.Fprintf(tw, "\t\t\t\t%s%s\n", strings.Repeat(" ", indent), line)
}

func limitLines(s string, n int) []string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) <= n {
		return lines
	}
	more := len(lines) - n
	return append(lines[:n:n], fmt.Sprintf("... (%d more lines)", more))
}

func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return "<1ms"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	default:
		return d.Round(time.Second).String()
	}
}

func anyFailed(specs []SpecResult) bool {
	for _, s := range specs {
		if s.Failure != "" && s.State != "skipped" && s.State != "passed" {
			return true
		}
	}
	return false
}
