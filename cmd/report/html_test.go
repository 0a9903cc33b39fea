package report

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/journal"
)

// syntheticRun is a takeover after a site loss: the election, a service
// started, a warning, the verdict before and after.
func syntheticRun() journal.Run {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	info := &event.RunInfo{ID: "r1", Runbook: "takeover", Site: "B", Started: t0}
	evs := []event.Event{
		{Kind: event.RunStart, Time: at(0), Run: info},
		{Kind: event.Message, Time: at(100), Message: "before: site A unreachable; site B passive"},
		{Kind: event.Verdict, Time: at(200), Message: "before: no site serves traffic"},
		{Kind: event.StepStart, Time: at(1000), Task: "wait-mongodb/mongodb", Step: "wait-mongodb", Host: "mongodb"},
		{Kind: event.StepAct, Time: at(4000), Task: "wait-mongodb/mongodb", Step: "wait-mongodb", Host: "mongodb", Action: "wait", Duration: 3 * time.Second},
		{Kind: event.StepVerify, Time: at(4100), Task: "wait-mongodb/mongodb", Step: "wait-mongodb", Host: "mongodb", Outcome: event.OK, Reached: at(3500)},
		{Kind: event.StepEnd, Time: at(4100), Task: "wait-mongodb/mongodb", Step: "wait-mongodb", Host: "mongodb", Outcome: event.OK, Duration: 3100 * time.Millisecond},
		{Kind: event.StepStart, Time: at(4200), Task: "start-chat/b-app/chat", Step: "start-chat", Host: "b-app", Service: "chat"},
		{Kind: event.Message, Time: at(4300), Task: "start-chat/b-app/chat", Message: "warning: <b>slow</b> disk"},
		{Kind: event.StepEnd, Time: at(5000), Task: "start-chat/b-app/chat", Step: "start-chat", Host: "b-app", Service: "chat", Action: "start", Outcome: event.OK, Duration: 800 * time.Millisecond},
		{Kind: event.Verdict, Time: at(6000), Message: "after: site B serves traffic (every layer agrees)", Outcome: event.OK, Expected: "site B serves"},
		{Kind: event.RunEnd, Time: at(6100), Outcome: event.OK},
	}
	return journal.Run{Path: "/state/runs/r1.jsonl", Info: info, Events: evs, Outcome: event.OK, Started: t0, Ended: at(6100), Last: at(6100)}
}

// TestHTMLModel: one bar per task in lanes by host, the markers where the
// journal puts them, the verdict before and after, the warning escaped.
func TestHTMLModel(t *testing.T) {
	var b bytes.Buffer
	if err := writeHTML(&b, syntheticRun(), nil, "no plan in this test"); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	if n := len(regexp.MustCompile(`<rect class="bar `).FindAllString(html, -1)); n != 2 {
		t.Errorf("%d bars, want 2", n)
	}
	for _, want := range []string{
		`class="marker m-election"`, `election 3.500 s`, `first service up 5.000 s`, `verdict 6.000 s`, `RTO 5.000 s`,
		"no site serves traffic", "site B serves traffic (every layer agrees) (expected: site B serves; ok)",
		"site A unreachable; site B passive", "start-chat/b-app/chat: &lt;b&gt;slow&lt;/b&gt; disk",
		"The critical path is not computed: no plan in this test.",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("the HTML report lacks %q", want)
		}
	}
	if strings.Contains(html, "<b>slow</b>") {
		t.Errorf("a journal message is not escaped")
	}
}
