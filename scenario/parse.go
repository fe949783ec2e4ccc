package scenario

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Load reads and parses the scenario file at path.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes, validates and completes (ApplyDefaults) a scenario; name is the
// file name errors report. Problems come back as Errors sorted by position.
//
// The document is decoded into a yaml.Node first and checked against the Go types by
// reflection, so unknown keys and wrong types are reported with their position, and
// a field added to types.go is understood without touching this file.
func Parse(name string, data []byte) (*Scenario, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Errors{syntaxError(name, err)}
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, Errors{{File: name, Line: 1, Col: 1, Problem: "empty scenario file"}}
	}
	w := &walker{file: name, nodes: map[string]nodeRef{}}
	w.walk(root.Content[0], reflect.TypeOf(Scenario{}), "", nil)
	if len(w.errs) > 0 {
		w.errs.sort()
		return nil, w.errs
	}
	s := &Scenario{}
	if err := root.Content[0].Decode(s); err != nil {
		// The walk has checked every type, so this is a bug here, not in the file.
		return nil, Errors{{File: name, Line: 1, Col: 1, Problem: "decode: " + err.Error()}}
	}
	s.File = name
	v := &validator{s: s, file: name, nodes: w.nodes}
	v.validate()
	if len(v.errs) > 0 {
		v.errs.sort()
		return nil, v.errs
	}
	s.ApplyDefaults()
	return s, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError positions a yaml.v3 parse error; the library reports a line but no
// column, so the column is 1.
func syntaxError(file string, err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Col: 1, Problem: "YAML syntax: " + m[2]}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	return &Error{File: file, Line: 1, Col: 1, Problem: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
}

// nodeRef remembers where a path is in the file: key is the mapping key (nil for
// list elements), val the value.
type nodeRef struct{ key, val *yaml.Node }

type walker struct {
	file  string
	errs  Errors
	nodes map[string]nodeRef
}

var (
	durationType  = reflect.TypeOf(Duration(0))
	behaviourType = reflect.TypeOf(Behaviour{})
	pathsType     = reflect.TypeOf(Paths{})
)

func (w *walker) errorf(n *yaml.Node, key, format string, args ...any) {
	w.errs = append(w.errs, &Error{File: w.file, Line: n.Line, Col: n.Column, Key: key, Problem: fmt.Sprintf(format, args...)})
}

// walk checks n against type t and records every path's nodes for the validator.
func (w *walker) walk(n *yaml.Node, t reflect.Type, path string, key *yaml.Node) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if path != "" {
		w.nodes[path] = nodeRef{key: key, val: n}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // absent value: the zero value, like an omitted key
	}
	switch {
	case t == durationType:
		if _, problem := parseDuration(n); problem != "" {
			w.errorf(n, path, "%s", problem)
		}
		return
	case t == pathsType && n.Kind == yaml.ScalarNode:
		// One path written alone: the list's only element, for the validator.
		w.nodes[path+"[0]"] = nodeRef{key: key, val: n}
		return
	case t == behaviourType && n.Kind == yaml.ScalarNode:
		// The shorthand stands for the action, so problems with it point here.
		w.nodes[path+".action"] = nodeRef{key: key, val: n}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		w.walkStruct(n, t, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.errorf(n, path, "expected a list, got %s", describe(n))
			return
		}
		for i, c := range n.Content {
			w.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), nil)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.errorf(n, path, "expected a mapping, got %s", describe(n))
			return
		}
		seen := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				w.errorf(k, path, "expected a string key, got %s", describe(k))
				continue
			}
			p := fmt.Sprintf("%s[%s]", path, k.Value)
			if first, dup := seen[k.Value]; dup {
				w.errorf(k, p, "duplicate key (first at line %d)", first.Line)
				continue
			}
			seen[k.Value] = k
			w.walk(v, t.Elem(), p, k)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			w.errorf(n, path, "expected a string, got %s", describe(n))
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		var i int
		if n.Kind != yaml.ScalarNode || n.Decode(&i) != nil {
			w.errorf(n, path, "expected an integer, got %s", describe(n))
		}
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			w.errorf(n, path, "expected true or false, got %s", describe(n))
		}
	default:
		w.errorf(n, path, "cannot check Go type %s (scenario package bug)", t)
	}
}

func (w *walker) walkStruct(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		w.errorf(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	fields := fieldsOf(t)
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			w.errorf(k, path, "expected a key name, got %s", describe(k))
			continue
		}
		if k.Value == "<<" && k.Tag == "!!merge" {
			// Merge key: the merged mappings are fields of this same struct.
			for v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			merged := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				merged = v.Content
			}
			for _, m := range merged {
				for m.Kind == yaml.AliasNode && m.Alias != nil {
					m = m.Alias
				}
				w.walkStruct(m, t, path)
			}
			continue
		}
		p := join(path, k.Value)
		ft, ok := fields.types[k.Value]
		if !ok {
			problem := "unknown key"
			if s := suggest(k.Value, fields.names); s != "" {
				problem += fmt.Sprintf("; did you mean %q?", s)
			}
			w.errorf(k, p, "%s", problem)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			w.errorf(k, p, "duplicate key (first at line %d)", first.Line)
			continue
		}
		seen[k.Value] = k
		w.walk(v, ft, p, k)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

type structFields struct {
	types map[string]reflect.Type
	names []string
}

var fieldCache sync.Map // reflect.Type -> structFields

// fieldsOf maps the yaml keys of a struct to their Go types, following the yaml tags
// the way yaml.v3 does (tag name, else lower-cased field name; "-" skipped).
func fieldsOf(t reflect.Type) structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(structFields)
	}
	f := structFields{types: map[string]reflect.Type{}}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			inner := fieldsOf(sf.Type)
			for _, n := range inner.names {
				f.types[n] = inner.types[n]
				f.names = append(f.names, n)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		f.types[name] = sf.Type
		f.names = append(f.names, name)
	}
	fieldCache.Store(t, f)
	return f
}

// describe names what a node is, for "expected X, got Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

// suggest returns the known key closest to an unknown one when it is close enough
// to be a typo.
func suggest(key string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
