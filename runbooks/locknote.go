package runbooks

import (
	"context"

	"github.com/sitectl/sitectl/runbooks/event"
)

// lockNotes lets the Lock function journal what it did besides taking the
// lock (a stale lock taken over, with its previous holder) as lock events.
func lockNotes(ctx context.Context, st event.Sink) context.Context {
	return event.WithNote(ctx, func(msg string) { st.Emit(event.Event{Kind: event.Lock, Message: msg}) })
}
