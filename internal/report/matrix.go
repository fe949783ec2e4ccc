package report

import (
	"bufio"
	"fmt"
	"html/template"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/mailflow/mailflow/spec"
)

// MatrixReport puts several targets' results side by side: one row per clause,
// one column per target.
type MatrixReport struct {
	Targets []string
	Rows    []MatrixRow
	// Totals holds one verdict count per target, in Targets order.
	Totals []map[Verdict]int
}

// MatrixRow is one clause across the targets. A verdict is empty when that
// target's result does not list the clause (an older catalog).
type MatrixRow struct {
	Clause   spec.Clause
	Verdicts []Verdict
	Reasons  []string
}

// Matrix lines results up by clause ID. Rows follow the first result's clause
// order, followed by clauses only later results know.
func Matrix(results []*Result) *MatrixReport {
	m := &MatrixReport{}
	rowOf := map[string]int{}
	for _, r := range results {
		for _, c := range r.Clauses {
			if _, ok := rowOf[c.Clause.ID]; !ok {
				rowOf[c.Clause.ID] = len(m.Rows)
				m.Rows = append(m.Rows, MatrixRow{
					Clause:   c.Clause,
					Verdicts: make([]Verdict, len(results)),
					Reasons:  make([]string, len(results)),
				})
			}
		}
	}
	for j, r := range results {
		m.Targets = append(m.Targets, r.Target)
		totals := make(map[Verdict]int, 6)
		for _, v := range AllVerdicts() {
			totals[v] = 0
		}
		for _, c := range r.Clauses {
			row := &m.Rows[rowOf[c.Clause.ID]]
			row.Verdicts[j], row.Reasons[j] = c.Verdict, c.Reason
			totals[c.Verdict]++
		}
		m.Totals = append(m.Totals, totals)
	}
	return m
}

func cell(v Verdict) string {
	if v == "" {
		return "-"
	}
	return string(v)
}

// WriteMatrixText writes the matrix as an aligned plain-text table.
func (m *MatrixReport) WriteMatrixText(w io.Writer) error {
	bw := &trimWriter{w: w}
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	head := append([]string{"ID", "LEVEL"}, m.Targets...)
	fmt.Fprintln(tw, strings.Join(append(head, "TITLE"), "\t"))
	for _, row := range m.Rows {
		cells := []string{row.Clause.ID, row.Clause.Level}
		for _, v := range row.Verdicts {
			cells = append(cells, cell(v))
		}
		fmt.Fprintln(tw, strings.Join(append(cells, row.Clause.Title), "\t"))
	}
	fmt.Fprintln(tw, "\t\t"+strings.Repeat("\t", len(m.Targets)))
	for _, v := range AllVerdicts() {
		cells := []string{"Totals", string(v)}
		for _, t := range m.Totals {
			cells = append(cells, fmt.Sprint(t[v]))
		}
		fmt.Fprintln(tw, strings.Join(append(cells, ""), "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write matrix: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write matrix: %w", err)
	}
	return nil
}

// WriteMatrixMarkdown writes the matrix as a GitHub-flavoured Markdown table,
// followed by a totals table.
func (m *MatrixReport) WriteMatrixMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	esc := strings.NewReplacer("|", `\|`, "\n", " ")
	fmt.Fprintf(bw, "| ID | Level | Title |")
	for _, t := range m.Targets {
		fmt.Fprintf(bw, " %s |", esc.Replace(t))
	}
	fmt.Fprintf(bw, "\n|---|---|---|%s\n", strings.Repeat("---|", len(m.Targets)))
	for _, row := range m.Rows {
		fmt.Fprintf(bw, "| %s | %s | %s |", row.Clause.ID, row.Clause.Level, esc.Replace(row.Clause.Title))
		for _, v := range row.Verdicts {
			fmt.Fprintf(bw, " %s |", cell(v))
		}
		fmt.Fprintln(bw)
	}
	fmt.Fprintf(bw, "\n| Totals |")
	for _, t := range m.Targets {
		fmt.Fprintf(bw, " %s |", esc.Replace(t))
	}
	fmt.Fprintf(bw, "\n|---|%s\n", strings.Repeat("---:|", len(m.Targets)))
	for _, v := range AllVerdicts() {
		fmt.Fprintf(bw, "| %s |", v)
		for _, t := range m.Totals {
			fmt.Fprintf(bw, " %d |", t[v])
		}
		fmt.Fprintln(bw)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write matrix: %w", err)
	}
	return nil
}

var matrixHTML = template.Must(template.New("matrix").Funcs(template.FuncMap{
	"cell": cell,
	"class": func(v Verdict) string {
		if v == "" {
			return "v-none"
		}
		return "v-" + strings.ToLower(strings.ReplaceAll(string(v), "/", ""))
	},
	"count": func(t map[Verdict]int, v Verdict) int { return t[v] },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mailflow conformance matrix</title>
<style>
body { font-family: sans-serif; }
table { border-collapse: collapse; margin-bottom: 1em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; }
td.v-pass { background: #c8f0c8; }
td.v-fail { background: #f4b4b4; }
td.v-warn { background: #f8e0a0; }
td.v-info { background: #c8dcf8; }
td.v-na { background: #eee; color: #666; }
td.v-missing, td.v-none { color: #999; }
</style>
</head>
<body>
<h1>mailflow conformance matrix</h1>
<table>
<thead><tr><th>ID</th><th>Level</th><th>Title</th>{{range .Targets}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- range .Rows}}
{{- $row := .}}
<tr><td title="{{.Clause.Text}}">{{.Clause.ID}}</td><td>{{.Clause.Level}}</td><td>{{.Clause.Title}}</td>
{{- range $i, $v := .Verdicts}}<td class="{{class $v}}" title="{{index $row.Reasons $i}}">{{cell $v}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table>
<table>
<thead><tr><th>Totals</th>{{range .Targets}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- $m := .}}
{{- range $v := .Verdicts}}
<tr><td class="{{class $v}}">{{$v}}</td>{{range $m.Totals}}<td>{{count . $v}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table>
</body>
</html>
`))

// WriteMatrixHTML writes the matrix as a standalone HTML page; hovering an ID
// shows the clause text, hovering a verdict shows its reason.
func (m *MatrixReport) WriteMatrixHTML(w io.Writer) error {
	data := struct {
		*MatrixReport
		Verdicts []Verdict
	}{m, AllVerdicts()}
	if err := matrixHTML.Execute(w, data); err != nil {
		return fmt.Errorf("write matrix: %w", err)
	}
	return nil
}
