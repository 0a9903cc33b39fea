package inventory

import (
	"sort"
	"strconv"
	"strings"
)

// Error is one problem in an inventory file, at a position.
type Error struct {
	Pos Pos
	Msg string
}

// Error prints "file:line:col: message". Parts of the position that are not
// known are left out (YAML syntax errors carry a line but no column).
func (e *Error) Error() string {
	var parts []string
	if e.Pos.File != "" {
		parts = append(parts, e.Pos.File)
	}
	if e.Pos.Line > 0 {
		parts = append(parts, strconv.Itoa(e.Pos.Line))
		if e.Pos.Column > 0 {
			parts = append(parts, strconv.Itoa(e.Pos.Column))
		}
	}
	if len(parts) == 0 {
		return e.Msg
	}
	return strings.Join(parts, ":") + ": " + e.Msg
}

// Errors are all the problems found in an inventory, sorted by position.
// Parse, Load and Validate return a non-empty Errors or a nil error.
type Errors []*Error

// Error prints one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find the individual *Error values.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sorted returns the errors ordered by file, line and column (insertion
// order among equal positions), without exact duplicates (a mistake inside
// an anchor is seen once per alias that uses it).
func (es Errors) sorted() Errors {
	type key struct {
		pos Pos
		msg string
	}
	seen := make(map[key]bool, len(es))
	out := make(Errors, 0, len(es))
	for _, e := range es {
		k := key{e.Pos, e.Msg}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Pos, out[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return out
}

// result converts a list of problems into the error to return.
func (es Errors) result() error {
	if len(es) == 0 {
		return nil
	}
	return es.sorted()
}

// Sorted returns the errors ordered by position, without exact duplicates.
func (es Errors) Sorted() Errors { return es.sorted() }

// Err returns nil for no errors, else the sorted errors as one error.
func (es Errors) Err() error { return es.result() }
