package report

import (
	"encoding/json"
	"fmt"
	"io"
)

// jsonSchema names the JSON layout so later readers can refuse what they do not know.
const jsonSchema = "mailflow.report/v1"

type jsonResult struct {
	Schema string `json:"schema"`
	*Result
}

// WriteJSON writes the result as indented JSON; ReadJSON reads it back unchanged.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// SMTP paths are full of <>; escaping them would make the file unreadable.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(jsonResult{Schema: jsonSchema, Result: r}); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}

// ReadJSON reads a result written by WriteJSON, e.g. to compare targets.
func ReadJSON(rd io.Reader) (*Result, error) {
	in := jsonResult{Result: &Result{}}
	if err := json.NewDecoder(rd).Decode(&in); err != nil {
		return nil, fmt.Errorf("read JSON report: %w", err)
	}
	if in.Schema != jsonSchema {
		return nil, fmt.Errorf("read JSON report: schema %q, want %q", in.Schema, jsonSchema)
	}
	if in.Totals == nil {
		in.Totals = map[Verdict]int{}
	}
	return in.Result, nil
}
