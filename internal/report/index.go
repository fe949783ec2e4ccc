package report

import (
	"fmt"
	"html/template"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// targetRank orders the columns of a matrix or an index: the reference in-process,
// in containers, then the MTAs of the matrix, then any other target by name.
var targetRank = map[string]int{"reference-inprocess": 0, "reference-containers": 1, "postfix": 2, "exim": 3, "opensmtpd": 4}

// SortTargets puts results in column order, whatever order the files were named in.
func SortTargets(results []*Result) {
	rank := func(t string) int {
		if r, ok := targetRank[t]; ok {
			return r
		}
		return len(targetRank)
	}
	sort.SliceStable(results, func(i, j int) bool {
		ri, rj := rank(results[i].Target), rank(results[j].Target)
		if ri != rj {
			return ri < rj
		}
		return ri == len(targetRank) && results[i].Target < results[j].Target
	})
}

// indexPage is what the index template renders.
type indexPage struct {
	Generated time.Time
	Runs      []*Result
	Rows      []indexRow
	Areas     []string
	Levels    []string
	Verdicts  []Verdict
}

// indexRow is one clause across the runs, with what each run found.
type indexRow struct {
	MatrixRow
	Cells []ClauseResult // per run; Verdict empty when the run does not list the clause
	// Open: a run did not PASS it, so the row carries its details.
	Open bool
}

// WriteIndexHTML writes one self-contained page for the runs in results (columns in
// SortTargets order): each run's totals, a row per clause with its verdict on every
// target, filters by area, level and verdict, and, for each clause some target did not
// pass, the clause text, the reason, every spec behind the verdict with the failure it
// reported (the expected outcome and the SMTP exchange as it happened) and the vectors.
// Nothing outside the page is loaded: the style and the filter script are in it.
func WriteIndexHTML(w io.Writer, results []*Result, generated time.Time) error {
	runs := slices.Clone(results)
	SortTargets(runs)
	m := Matrix(runs)
	page := indexPage{Generated: generated, Runs: runs, Verdicts: AllVerdicts()}
	byID := make([]map[string]ClauseResult, len(runs))
	for j, r := range runs {
		byID[j] = make(map[string]ClauseResult, len(r.Clauses))
		for _, c := range r.Clauses {
			byID[j][c.Clause.ID] = c
		}
	}
	areas, levels := map[string]bool{}, map[string]bool{}
	for _, row := range m.Rows {
		ir := indexRow{MatrixRow: row, Cells: make([]ClauseResult, len(runs))}
		for j := range runs {
			ir.Cells[j] = byID[j][row.Clause.ID]
			if v := ir.Cells[j].Verdict; v != "" && v != PASS {
				ir.Open = true
			}
		}
		areas[row.Clause.Area], levels[row.Clause.Level] = true, true
		page.Rows = append(page.Rows, ir)
	}
	for a := range areas {
		page.Areas = append(page.Areas, a)
	}
	sort.Strings(page.Areas)
	for _, l := range []string{"MUST", "SHOULD", "MAY"} {
		if levels[l] {
			page.Levels = append(page.Levels, l)
		}
	}
	if err := indexHTML.Execute(w, page); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	return nil
}

func verdictClass(v Verdict) string {
	if v == "" {
		return "v-none"
	}
	return "v-" + strings.ToLower(strings.ReplaceAll(string(v), "/", ""))
}

var indexHTML = template.Must(template.New("index").Funcs(template.FuncMap{
	"cell":  cell,
	"class": verdictClass,
	"count": func(t map[Verdict]int, v Verdict) int { return t[v] },
	"dur":   formatDuration,
	"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"verdicts": func(cs []ClauseResult) string {
		var vs []string
		for _, c := range cs {
			vs = append(vs, string(c.Verdict))
		}
		return strings.Join(vs, " ")
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mailflow conformance report</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
p.gen { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin-bottom: 1em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.n { text-align: right; }
.v-pass { background: #c8f0c8; }
.v-fail { background: #f4b4b4; font-weight: bold; }
.v-warn { background: #f8e0a0; }
.v-info { background: #c8dcf8; }
.v-na { background: #eee; color: #666; }
.v-missing, .v-none { color: #999; }
#filters { margin: 1em 0; display: flex; gap: 1em; flex-wrap: wrap; align-items: center; }
#filters label { font-size: 0.9em; }
#shown { color: #666; font-size: 0.9em; }
tr.details td { background: #fafafa; }
details summary { cursor: pointer; color: #245; }
pre { white-space: pre-wrap; font-size: 0.85em; background: #fff; border: 1px solid #ddd; padding: 0.5em; max-height: 30em; overflow: auto; }
.clause-text { max-width: 60em; }
</style>
</head>
<body>
<h1>mailflow conformance report</h1>
<p class="gen">Written {{when .Generated}}</p>

<table id="runs">
<thead><tr><th>Target</th><th>Started</th><th>Took</th>{{range .Verdicts}}<th class="{{class .}}">{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- $vs := .Verdicts}}
{{- range .Runs}}
<tr><td>{{.Target}}</td><td>{{when .Started}}</td><td>{{dur .Duration}}</td>{{$r := .}}{{range $vs}}<td class="n">{{count $r.Totals .}}</td>{{end}}</tr>
{{- if .SuiteFailures}}
<tr><td colspan="{{len $vs}}">suite failures: {{range .SuiteFailures}}<pre>{{.}}</pre>{{end}}</td></tr>
{{- end}}
{{- end}}
</tbody>
</table>

<div id="filters">
<label>Area <select id="f-area"><option value="">all</option>{{range .Areas}}<option>{{.}}</option>{{end}}</select></label>
<label>Level <select id="f-level"><option value="">all</option>{{range .Levels}}<option>{{.}}</option>{{end}}</select></label>
<label>Verdict <select id="f-verdict"><option value="">any</option>{{range .Verdicts}}<option>{{.}}</option>{{end}}</select></label>
<label>Text <input id="f-text" type="search" placeholder="ID or words"></label>
<span id="shown"></span>
</div>

<table id="clauses">
<thead><tr><th>ID</th><th>Level</th><th>Area</th><th>Title</th>{{range .Runs}}<th>{{.Target}}</th>{{end}}</tr></thead>
{{- $n := len .Runs}}
{{- range .Rows}}
<tbody class="clause" data-area="{{.Clause.Area}}" data-level="{{.Clause.Level}}" data-verdicts="{{verdicts .Cells}}" data-text="{{.Clause.ID}} {{.Clause.Title}}">
<tr id="{{.Clause.ID}}"><td><a href="#{{.Clause.ID}}">{{.Clause.ID}}</a></td><td>{{.Clause.Level}}</td><td>{{.Clause.Area}}</td><td>{{.Clause.Title}}</td>
{{- range .Cells}}<td class="{{class .Verdict}}" title="{{.Reason}}">{{cell .Verdict}}</td>{{end}}</tr>
{{- if .Open}}
<tr class="details"><td colspan="99"><details{{range .Cells}}{{if eq .Verdict "FAIL"}} open{{end}}{{end}}><summary>{{.Clause.ID}}: the clause and what each target showed</summary>
<p class="clause-text">{{.Clause.Text}}{{if .Clause.Source}} <em>[{{.Clause.Source}}]</em>{{end}}</p>
{{- $runs := $.Runs}}
{{- range $i, $c := .Cells}}
{{- if and $c.Verdict (ne $c.Verdict "PASS")}}
<h4>{{(index $runs $i).Target}}: <span class="{{class $c.Verdict}}">{{$c.Verdict}}</span>{{if $c.Reason}} &mdash; {{$c.Reason}}{{end}}</h4>
{{- range $c.Specs}}
<div class="spec"><strong>{{.Text}}</strong> ({{.State}}, {{dur .Duration}})
{{- if .Failure}}<pre>{{.Failure}}</pre>{{end}}</div>
{{- end}}
{{- if $c.Vectors}}<pre>{{range $c.Vectors}}{{.}}
{{end}}</pre>{{end}}
{{- end}}
{{- end}}
</details></td></tr>
{{- end}}
</tbody>
{{- end}}
</table>

<script>
(function () {
  var area = document.getElementById("f-area"), level = document.getElementById("f-level"),
      verdict = document.getElementById("f-verdict"), text = document.getElementById("f-text"),
      shown = document.getElementById("shown"), rows = document.querySelectorAll("tbody.clause");
  function apply() {
    var n = 0, q = text.value.toLowerCase();
    rows.forEach(function (b) {
      var ok = (!area.value || b.dataset.area === area.value) &&
        (!level.value || b.dataset.level === level.value) &&
        (!verdict.value || (" " + b.dataset.verdicts + " ").indexOf(" " + verdict.value + " ") >= 0) &&
        (!q || b.dataset.text.toLowerCase().indexOf(q) >= 0);
      b.style.display = ok ? "" : "none";
      if (ok) n++;
    });
    shown.textContent = n + " of " + rows.length + " clauses shown";
  }
  [area, level, verdict].forEach(function (e) { e.addEventListener("change", apply); });
  text.addEventListener("input", apply);
  apply();
})();
</script>
</body>
</html>
`))
