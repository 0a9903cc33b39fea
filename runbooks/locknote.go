package runbooks

import (
	"context"
	"path/filepath"

	"github.com/sitectl/sitectl/runbooks/event"
)

// lockNotes lets the Lock function journal what it did besides taking the
// lock (a stale lock taken over, with its previous holder) as lock events.
func lockNotes(ctx context.Context, st event.Sink) context.Context {
	return event.WithNote(ctx, func(msg string) { st.Emit(event.Event{Kind: event.Lock, Message: msg}) })
}

// absPath is the inventory's path as journaled: absolute, so that resume
// finds and compares the same file from any directory.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil && p != "" {
		return a
	}
	return p
}
