package journal

import (
	"strings"
	"testing"

	"github.com/sitectl/sitectl/runbooks/event"
)

// RedactSink (the renderers' and the board's way in) masks every text
// field, with the redactor of the moment it is called.
func TestRedactSinkMasksEveryField(t *testing.T) {
	var got []event.Event
	r := NewRedactor()
	sink := RedactSink(func() Redactor { return r }, event.SinkFunc(func(e event.Event) { got = append(got, e) }))
	r = NewRedactor("Tr1cky#Pass") // learned after the sink was made (the inventory loads later)
	sink.Emit(event.Event{Kind: event.StepEnd, Command: "login Tr1cky#Pass", Stdout: "Tr1cky#Pass", Stderr: "x Tr1cky#Pass", Message: "m Tr1cky#Pass",
		Hint: "h Tr1cky#Pass", Observed: "o Tr1cky#Pass", Expected: "e Tr1cky#Pass", Run: &event.RunInfo{Args: []string{"--password", "Tr1cky#Pass"}, Reason: "Tr1cky#Pass"}})
	if len(got) != 1 {
		t.Fatalf("%d events", len(got))
	}
	e := got[0]
	for _, s := range append([]string{e.Command, e.Stdout, e.Stderr, e.Message, e.Hint, e.Observed, e.Expected, e.Run.Reason}, e.Run.Args...) {
		if strings.Contains(s, "Tr1cky#Pass") {
			t.Errorf("not masked: %q", s)
		}
	}
}
