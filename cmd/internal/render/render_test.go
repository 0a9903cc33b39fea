package render

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sitectl/sitectl/runbooks/event"
)

// The text renderer decides on the events' typed Action and Outcome, not on
// their wording: states before and after and empty steps only with -v,
// lock warnings and failures always; journals written before Action
// existed still render the same (event.PhaseOf reads their prefix).
func TestTextRendererDecidesOnTypedFields(t *testing.T) {
	cases := []struct {
		name    string
		e       event.Event
		shown   bool // without -v
		verbose bool // with -v
	}{
		{"state before", event.Event{Kind: event.Message, Action: event.ActionBefore, Message: "site A (primary): core active"}, false, true},
		{"state after", event.Event{Kind: event.Message, Action: event.ActionAfter, Message: "site B (secondary): core active"}, false, true},
		{"a step with nothing to do", event.Event{Kind: event.Message, Action: event.ActionNothing, Message: "step x selects nothing on site B"}, false, true},
		{"an old journal's state before", event.Event{Kind: event.Message, Message: "before: site A (primary): core active"}, false, true},
		{"a warning message", event.Event{Kind: event.Message, Message: "warning: insecure_ignore_host_key is set"}, true, true},
		{"lock acquired", event.Event{Kind: event.Lock, Message: "lock acquired"}, false, true},
		{"a lock copy not taken", event.Event{Kind: event.Lock, Action: event.ActionWarn, Message: "the witness's lock copy on w-arb was not taken"}, true, true},
		{"lock release failed", event.Event{Kind: event.Lock, Outcome: event.Failed, Message: "lock release went wrong"}, true, true},
		{"the evidence of a disaster takeover", event.Event{Kind: event.Evidence, Action: event.ActionDisaster, Site: "A", Message: "DOWN"}, true, true},
		{"the evidence before", event.Event{Kind: event.Evidence, Action: event.ActionBefore, Site: "A", Message: "reachable"}, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, verbose := range []bool{false, true} {
				var b bytes.Buffer
				(&TextRenderer{W: &b, Verbose: verbose}).Emit(tc.e)
				want := tc.shown
				if verbose {
					want = tc.verbose
				}
				if got := strings.Contains(b.String(), tc.e.Message); got != want {
					t.Errorf("verbose=%v: shown=%v, want %v: %q", verbose, got, want, b.String())
				}
			}
		})
	}
}
