package runbooks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks/event"
)

// Notifier sends a run's notifications to the inventory's notify targets.
// Every delivery runs in the background, retried within its deadline; one
// that fails is journaled and shown in the run's summary, and never fails
// or blocks the run.
type Notifier struct {
	Targets []*inventory.NotifyTarget
	Client  Poster              // delivers (adapters/webhook through cmdutil.WebhookPoster)
	Getenv  func(string) string // reads header credentials (os.Getenv when nil)

	mu         sync.Mutex
	wg         sync.WaitGroup
	deliveries []Delivery
}

// NewNotifier returns the notifier of inv's notify targets, nil when it has
// none.
func NewNotifier(inv *inventory.Inventory, client Poster, getenv func(string) string) *Notifier {
	if inv.Notify == nil || len(inv.Notify.Targets) == 0 {
		return nil
	}
	return &Notifier{Targets: inv.Notify.Targets, Client: client, Getenv: getenv}
}

// Poster delivers one notification: an HTTP POST of its body, retried
// with a doubling backoff within a deadline.
type Poster interface {
	Post(ctx context.Context, p Post) PostResult
}

// Post is one delivery.
type Post struct {
	URL      string
	Body     []byte
	Header   http.Header
	Timeout  time.Duration // per attempt
	Attempts int           // at most (at least 1)
	Backoff  time.Duration // before the second attempt, doubled before each next
	Deadline time.Duration // every attempt and wait together
}

// PostResult says how a delivery went: Err is nil once the receiver
// answered with a 2xx status.
type PostResult struct {
	Attempts int
	Status   int // the last HTTP status (0: no answer)
	Took     time.Duration
	Err      error
}

// Notification is what is sent: as JSON to a generic target, as a line of
// text to Slack and Teams.
type Notification struct {
	Event      string        `json:"event"` // run_started, step_failed, run_ended, verdict_changed
	Time       time.Time     `json:"time"`
	Deployment string        `json:"deployment"`
	RunID      string        `json:"run"`
	Runbook    string        `json:"runbook"`
	Site       string        `json:"site"`
	OtherSite  string        `json:"other_site"`
	Mode       string        `json:"mode"`
	User       string        `json:"user,omitempty"`
	Hostname   string        `json:"hostname,omitempty"`
	Outcome    event.Outcome `json:"outcome,omitempty"`
	Message    string        `json:"message,omitempty"`
	// Verdict: who serves ("one", "none", "split", "partial", "unknown")
	// and the serving site; VerdictBefore for verdict_changed.
	Verdict       string   `json:"verdict,omitempty"`
	VerdictSite   string   `json:"verdict_site,omitempty"`
	VerdictBefore string   `json:"verdict_before,omitempty"`
	RTOSeconds    *float64 `json:"rto_seconds,omitempty"`
	Duration      float64  `json:"duration_seconds,omitempty"`
	Step          string   `json:"step,omitempty"`
	Task          string   `json:"task,omitempty"`
	Journal       string   `json:"journal,omitempty"`
}

// Delivery is how one notification to one target went.
type Delivery struct {
	Target   string        `json:"target"`
	Kind     string        `json:"kind"`
	Event    string        `json:"event"`
	OK       bool          `json:"ok"`
	Attempts int           `json:"attempts"`
	Status   int           `json:"status,omitempty"`
	Error    string        `json:"error,omitempty"`
	Took     time.Duration `json:"took_ns"`
}

// Send starts the delivery of n to every target that wants it; report is
// called with each delivery once it ended (from another goroutine).
func (nt *Notifier) Send(ctx context.Context, n Notification, report func(Delivery)) {
	if nt == nil {
		return
	}
	ctx = context.WithoutCancel(ctx) // a cancelled run is still told; each delivery has its deadline
	for _, t := range nt.Targets {
		if t == nil || !t.Wants(n.Event) {
			continue
		}
		nt.wg.Add(1)
		go func() {
			defer nt.wg.Done()
			d := nt.deliver(ctx, t, n)
			nt.mu.Lock()
			nt.deliveries = append(nt.deliveries, d)
			nt.mu.Unlock()
			if report != nil {
				report(d)
			}
		}()
	}
}

// Wait waits for every delivery started (each ends by its deadline) and
// returns them all.
func (nt *Notifier) Wait() []Delivery {
	if nt == nil {
		return nil
	}
	nt.wg.Wait()
	nt.mu.Lock()
	defer nt.mu.Unlock()
	return append([]Delivery(nil), nt.deliveries...)
}

func (nt *Notifier) deliver(ctx context.Context, t *inventory.NotifyTarget, n Notification) Delivery {
	d := Delivery{Target: t.Name, Kind: t.Kind, Event: n.Event}
	body, err := Payload(t.Kind, n)
	if err != nil {
		d.Error = err.Error()
		return d
	}
	hdr := http.Header{}
	if t.Header != nil {
		name, value, err := inventory.ReadCredentials(t.Header, nt.Getenv)
		if err != nil {
			d.Error = "header: " + err.Error()
			return d
		}
		hdr.Set(name, value)
	}
	c := nt.Client
	if c == nil {
		d.Error = "no client to deliver notifications with (Notifier.Client)"
		return d
	}
	timeout, backoff, deadline := t.Timeout.D(), t.Backoff.D(), t.Deadline.D()
	if timeout <= 0 {
		timeout = inventory.DefaultNotifyTimeout
	}
	if backoff <= 0 {
		backoff = inventory.DefaultNotifyBackoff
	}
	if deadline <= 0 {
		deadline = inventory.DefaultNotifyDeadline
	}
	endpoint, err := t.Endpoint(nt.Getenv)
	if err != nil {
		d.Error = err.Error()
		return d
	}
	res := c.Post(ctx, Post{URL: endpoint, Body: body, Header: hdr, Timeout: timeout,
		Attempts: t.Attempts(), Backoff: backoff, Deadline: deadline})
	d.Attempts, d.Status, d.Took, d.OK = res.Attempts, res.Status, res.Took, res.Err == nil
	if res.Err != nil {
		d.Error = res.Err.Error()
	}
	return d
}

// Payload is the body sent to a target of kind: Slack's incoming-webhook
// {"text": ...}, a Teams MessageCard, or the notification itself.
func Payload(kind string, n Notification) ([]byte, error) {
	switch kind {
	case inventory.NotifySlack:
		return json.Marshal(map[string]string{"text": n.Text()})
	case inventory.NotifyTeams:
		color := "2EB886"
		if n.Outcome != "" && !n.Outcome.Succeeded() || n.Event == inventory.EventStepFailed {
			color = "D00000"
		}
		return json.Marshal(map[string]string{"@type": "MessageCard", "@context": "https://schema.org/extensions",
			"summary": n.Title(), "themeColor": color, "title": n.Title(), "text": n.Text()})
	case inventory.NotifyGeneric:
		return json.Marshal(n)
	}
	return nil, fmt.Errorf("unknown notify kind %q", kind)
}

// Title is the notification in a few words.
func (n Notification) Title() string {
	what := fmt.Sprintf("%s --site %s", n.Runbook, n.Site)
	switch n.Event {
	case inventory.EventRunStarted:
		return fmt.Sprintf("sitectl %s started on %s", what, n.Deployment)
	case inventory.EventStepFailed:
		return fmt.Sprintf("sitectl %s: step %s %s on %s", what, n.Step, strings.ToUpper(string(n.Outcome)), n.Deployment)
	case inventory.EventVerdictChanged:
		return fmt.Sprintf("%s: who serves changed: %s -> %s", n.Deployment, n.VerdictBefore, verdictWords(n.Verdict, n.VerdictSite))
	}
	return fmt.Sprintf("sitectl %s ended %s on %s", what, strings.ToUpper(string(n.Outcome)), n.Deployment)
}

// Text is the notification as one message for a chat channel.
func (n Notification) Text() string {
	parts := []string{n.Title()}
	if n.Message != "" {
		parts = append(parts, n.Message)
	}
	if n.Verdict != "" && n.Event != inventory.EventVerdictChanged {
		parts = append(parts, "verdict: "+verdictWords(n.Verdict, n.VerdictSite))
	}
	if n.RTOSeconds != nil {
		parts = append(parts, fmt.Sprintf("RTO %.1fs", *n.RTOSeconds))
	}
	if n.User != "" {
		parts = append(parts, "by "+n.User+"@"+n.Hostname)
	}
	parts = append(parts, "run "+n.RunID)
	return strings.Join(parts, "; ")
}

func verdictWords(state, site string) string {
	switch state {
	case checks.ServeOne:
		return "site " + site + " serves"
	case checks.ServePartial:
		return "PARTIAL (site " + site + " serves part)"
	case "":
		return "not observed"
	}
	return strings.ToUpper(state)
}

// notification is n's common part for this run.
func (r *running) notification(ev string) Notification {
	o, rep := r.o, r.rep
	n := Notification{Event: ev, Time: o.Clock.Now().UTC(), Deployment: o.Inventory.Deployment, RunID: o.RunID,
		Runbook: r.plan.Runbook.Name, Site: r.plan.Site, OtherSite: r.plan.Other, Mode: o.Mode.String(),
		User: o.Info.User, Hostname: o.Info.Hostname, Journal: rep.JournalPath}
	if o.ResumeOf != "" {
		n.Mode = "resume"
	}
	return n
}

// notifyStart sends run_started and turns on step_failed.
func (r *running) notifyStart(ctx context.Context) {
	if r.o.Notifier == nil || r.o.Mode != Execute {
		return
	}
	r.notifying.Store(true)
	r.o.Notifier.Send(ctx, r.notification(inventory.EventRunStarted), r.delivered)
}

// notifyStep sends step_failed for a task that did not succeed (its end
// event), once notifications are on.
func (r *running) notifyStep(ctx context.Context, e event.Event) {
	if e.Kind != event.StepEnd || !r.notifying.Load() || (e.Outcome != event.Failed && e.Outcome != event.Unknown) {
		return
	}
	n := r.notification(inventory.EventStepFailed)
	n.Outcome, n.Step, n.Task, n.Message = e.Outcome, e.Step, e.Task, e.Message
	r.o.Notifier.Send(ctx, n, r.delivered)
}

// notifyEnd sends run_ended (and verdict_changed when the verdict after
// differs from the one before), then waits for every delivery of the run,
// each bounded by its deadline, so that they are journaled.
func (r *running) notifyEnd(ctx context.Context, outcome event.Outcome, msg string) {
	if !r.notifying.Swap(false) {
		return
	}
	if r.unlock != nil {
		r.unlock() // nothing changes from here on: waiting for receivers must not hold the lock
	}
	rep := r.rep
	n := r.notification(inventory.EventRunEnded)
	n.Outcome, n.Message = outcome, msg
	n.Duration = r.o.Clock.Now().Sub(rep.Started).Seconds()
	v := rep.VerdictAfter
	if v.State == "" {
		v = rep.VerdictBefore
	}
	n.Verdict, n.VerdictSite = v.State, v.Site
	if rep.RTO > 0 {
		s := rep.RTO.Seconds()
		n.RTOSeconds = &s
	}
	r.o.Notifier.Send(ctx, n, r.delivered)
	if a, b := rep.VerdictAfter, rep.VerdictBefore; a.State != "" && verdictLabel(a) != verdictLabel(b) {
		vc := r.notification(inventory.EventVerdictChanged)
		vc.Verdict, vc.VerdictSite, vc.VerdictBefore, vc.RTOSeconds = a.State, a.Site, verdictWords(b.State, b.Site), n.RTOSeconds
		vc.Message = a.Summary
		r.o.Notifier.Send(ctx, vc, r.delivered)
	}
	rep.Notifications = r.o.Notifier.Wait()
	for _, d := range rep.Notifications {
		if !d.OK {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("notification %s to %s (%s) NOT delivered after %d attempts: %s", d.Event, d.Target, d.Kind, d.Attempts, d.Error))
		}
	}
}

// delivered journals one delivery.
func (r *running) delivered(d Delivery) {
	e := event.Event{Kind: event.Notify, Task: d.Target, Action: d.Event, Attempt: d.Attempts, Duration: d.Took}
	if d.OK {
		e.Outcome, e.Message = event.OK, fmt.Sprintf("notification %s delivered to %s (%s) at attempt %d", d.Event, d.Target, d.Kind, d.Attempts)
	} else {
		e.Outcome, e.Observed = event.Failed, d.Error
		e.Message = fmt.Sprintf("notification %s to %s (%s) NOT delivered after %d attempts: %s (the run goes on)", d.Event, d.Target, d.Kind, d.Attempts, d.Error)
	}
	r.emit(e)
}
