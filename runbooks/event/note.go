package event

import "context"

type noteKey struct{}

// WithNote returns ctx carrying fn, which records a note of the operation
// under way (the run lock's code uses it to journal a stale lock it took
// over, naming the previous holder).
func WithNote(ctx context.Context, fn func(msg string)) context.Context {
	return context.WithValue(ctx, noteKey{}, fn)
}

// Note records msg through the function WithNote put in ctx; without one
// it does nothing.
func Note(ctx context.Context, msg string) {
	if fn, ok := ctx.Value(noteKey{}).(func(string)); ok && fn != nil {
		fn(msg)
	}
}
