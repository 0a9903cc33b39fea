package cmdutil

import (
	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks/journal"
)

// Redactor masks the inventory's secrets and password-like assignments.
func Redactor(inv *inventory.Inventory, getenv func(string) string) journal.Redactor {
	return journal.NewRedactor(inv.Secrets(getenv)...)
}

// RedactError returns err with its text masked by redact; errors.Is and
// errors.As still see the original.
func RedactError(err error, redact func(string) string) error {
	if err == nil {
		return nil
	}
	return &redactedError{err: err, msg: redact(err.Error())}
}

type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
