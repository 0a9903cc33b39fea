package cmdutil

import (
	"errors"

	"github.com/sitectl/sitectl/inventory"
)

// Problem is one problem of an inventory or runbook in JSON output.
type Problem struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	Message  string `json:"message"`
	Severity string `json:"severity"` // error or warning
}

// ProblemsOf lists the positioned problems inside err (inventory.Errors or a
// single *inventory.Error); any other error becomes one problem without a
// position.
func ProblemsOf(err error, severity string) []Problem {
	out := []Problem{}
	if err == nil {
		return out
	}
	var errs inventory.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			out = append(out, Problem{e.Pos.File, e.Pos.Line, e.Pos.Column, e.Msg, severity})
		}
		return out
	}
	var one *inventory.Error
	if errors.As(err, &one) {
		return append(out, Problem{one.Pos.File, one.Pos.Line, one.Pos.Column, one.Msg, severity})
	}
	return append(out, Problem{Message: err.Error(), Severity: severity})
}
