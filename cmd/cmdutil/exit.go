// Package cmdutil holds what every sitectl command shares: the Factory of
// lazily built dependencies, IO streams, typed errors and exit codes.
package cmdutil

import (
	"context"
	"errors"
	"fmt"
)

// ExitCode is sitectl's process exit status. The contract is documented in
// `sitectl help exit-codes` and docs/exit-codes.md; an unknown code must be
// treated as a failure.
type ExitCode int

const (
	ExitOK        ExitCode = 0   // the runbook ran and every layer verified, or the command succeeded
	ExitFailed    ExitCode = 1   // a step failed, or an error occurred
	ExitUsage     ExitCode = 2   // bad flags or arguments, invalid inventory or runbook
	ExitRefused   ExitCode = 3   // a precondition refused the run (safety invariant, confirmation, not ready)
	ExitLockHeld  ExitCode = 4   // another run holds the deployment's lock
	ExitUnknown   ExitCode = 5   // partial or unknown outcome: some step's result could not be verified
	ExitCancelled ExitCode = 130 // interrupted (Ctrl-C / SIGTERM / SIGHUP)
)

// ExitCodesHelp is the table shown in --help and docs.
const ExitCodesHelp = `EXIT STATUS
  0    success: the runbook ran and verified (or the command succeeded)
  1    failure: a step failed or an error occurred
  2    usage: bad flags or arguments, or an invalid inventory or runbook
  3    refused: a precondition refused the run (both sites would be active,
       confirmation not given, preflight not ready)
  4    lock held: another run holds the deployment's lock
  5    partial/unknown: some step's outcome could not be verified
  130  cancelled: interrupted by Ctrl-C, SIGTERM or SIGHUP
  Any other code must be treated as a failure.`

// ExitError carries an exit code with an error. Silent errors were already
// reported on the output and only set the code.
type ExitError struct {
	Code   ExitCode
	Err    error
	Silent bool
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Exit wraps err with a code.
func Exit(code ExitCode, err error) error { return &ExitError{Code: code, Err: err} }

// Silent sets an exit code for an outcome already printed.
func Silent(code ExitCode) error { return &ExitError{Code: code, Silent: true} }

// FlagError is a usage error; the command's usage is printed with it.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// FlagErrorf builds a FlagError.
func FlagErrorf(format string, a ...any) error { return &FlagError{Err: fmt.Errorf(format, a...)} }

// CodeOf maps an error to its exit code.
func CodeOf(err error) ExitCode {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	var fe *FlagError
	if errors.As(err, &fe) {
		return ExitUsage
	}
	if errors.Is(err, context.Canceled) {
		return ExitCancelled
	}
	return ExitFailed
}

// ExitCodeInfo describes one exit code for `sitectl exit-codes -o json`.
type ExitCodeInfo struct {
	Code    int    `json:"code"`
	Name    string `json:"name"`
	Meaning string `json:"meaning"`
}

// ExitCodes is the contract as data (the same as ExitCodesHelp).
var ExitCodes = []ExitCodeInfo{
	{0, "success", "the runbook ran and verified (or the command succeeded)"},
	{1, "failure", "a step failed or an error occurred"},
	{2, "usage", "bad flags or arguments, or an invalid inventory or runbook"},
	{3, "refused", "a precondition refused the run (both sites would be active, confirmation not given, preflight not ready)"},
	{4, "lock_held", "another run holds the deployment's lock"},
	{5, "partial_unknown", "some step's outcome could not be verified, or status could not tell which site serves (UNKNOWN)"},
	{130, "cancelled", "interrupted by Ctrl-C or SIGTERM"},
}
