package scenario

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem in a scenario file, positioned so an editor can jump to it.
type Error struct {
	File      string
	Line, Col int
	// Key is the dotted path of the offending key, e.g. "org.servers[1].site".
	// It is empty only for problems that have no key (YAML syntax errors).
	Key     string
	Problem string
}

// Error formats as "FILE:LINE:COL: key: problem", the shape compilers use, so
// editors and CI annotate the line.
func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Problem)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", e.File, e.Line, e.Col, e.Key, e.Problem)
}

// Errors is every problem found in one file, sorted by position. Parse reports all
// of them at once so a user fixes a file in one round rather than one error per run.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// First is the first problem by position, or nil when there is none.
func (es Errors) First() *Error {
	if len(es) == 0 {
		return nil
	}
	return es[0]
}

// Unwrap lets errors.As find an *Error inside Errors.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

func (es Errors) sort() {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return a.Key < b.Key
	})
}
