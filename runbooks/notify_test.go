package runbooks

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitectl/sitectl/adapters/webhook"
	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks/event"
)

// receiver is a real HTTP receiver on loopback that keeps what it got.
type receiver struct {
	mu     sync.Mutex
	bodies []string
	hdrs   []http.Header
	srv    *httptest.Server
}

func newReceiver(t *testing.T, status int) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, string(b))
		r.hdrs = append(r.hdrs, req.Header.Clone())
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

// TestNotificationsOfATakeover: a Slack-kind receiver gets run started and
// run ended with the verdict and the RTO; a generic receiver gets JSON with
// a header read from a credentials file; a receiver that answers 500 and
// one that never answers do not fail or block the run: their failures are
// retried, journaled and in the run's report.
func TestNotificationsOfATakeover(t *testing.T) {
	l := newLab(t)
	l.svc.Start("a-ccm")
	l.svc.Start("b-ccm")
	slack := newReceiver(t, 200)
	generic := newReceiver(t, 200)
	broken := newReceiver(t, 500)
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-req.Context().Done():
		case <-release:
		}
	}))
	defer hanging.Close()
	defer close(release)
	hdrFile := filepath.Join(t.TempDir(), "hdr")
	if err := os.WriteFile(hdrFile, []byte("Authorization: Bearer s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	targets := []*inventory.NotifyTarget{
		{Name: "oncall", Kind: inventory.NotifySlack, URL: slack.srv.URL},
		{Name: "audit", Kind: inventory.NotifyGeneric, URL: generic.srv.URL, Header: &inventory.Credentials{File: hdrFile}},
		{Name: "broken", Kind: inventory.NotifyTeams, URL: broken.srv.URL, Retries: intp(2), Events: []string{inventory.EventRunEnded}},
		{Name: "hanging", Kind: inventory.NotifySlack, URL: hanging.URL, Retries: intp(1), Timeout: inventory.Duration(200 * time.Millisecond), Events: []string{inventory.EventRunStarted}},
	}
	var slept []time.Duration
	var smu sync.Mutex
	op, rec := l.operation(t, "takeover", "B", RealClock)
	op.Notifier = &Notifier{Targets: targets, Client: webhookPoster{&webhook.Client{Sleep: func(ctx context.Context, d time.Duration) error {
		smu.Lock()
		slept = append(slept, d)
		smu.Unlock()
		return ctx.Err()
	}}}}
	rep, err := op.Run(t.Context())
	if err != nil {
		t.Fatalf("takeover B: %v (an undelivered notification must not fail it)", err)
	}
	got := slack.got()
	if len(got) != 3 {
		t.Fatalf("slack receiver got %d notifications, expected run started, run ended, verdict changed: %q", len(got), got)
	}
	var texts []string
	for _, b := range got {
		var m map[string]string
		if err := json.Unmarshal([]byte(b), &m); err != nil || m["text"] == "" || len(m) != 1 {
			t.Fatalf("not a Slack incoming-webhook body: %s", b)
		}
		texts = append(texts, m["text"])
	}
	all := strings.Join(texts, "\n")
	for _, w := range []string{"sitectl takeover --site B started on test", "sitectl takeover --site B ended OK on test", "verdict: site B serves", "RTO ", "run " + rep.RunID} {
		if !strings.Contains(all, w) {
			t.Errorf("slack texts lack %q:\n%s", w, all)
		}
	}
	// generic: JSON, with the header
	var ended *Notification
	for i, b := range generic.got() {
		var n Notification
		if err := json.Unmarshal([]byte(b), &n); err != nil {
			t.Fatalf("generic body %s: %v", b, err)
		}
		if generic.hdrs[i].Get("Authorization") != "Bearer s3cr3t" {
			t.Errorf("generic receiver: Authorization %q", generic.hdrs[i].Get("Authorization"))
		}
		if n.Event == inventory.EventRunEnded {
			ended = &n
		}
	}
	if ended == nil || ended.Outcome != event.OK || ended.Verdict != "one" || ended.VerdictSite != "B" || ended.RTOSeconds == nil || *ended.RTOSeconds <= 0 {
		t.Errorf("generic run_ended: %+v", ended)
	}
	// the failures: retried, journaled, in the report
	if n := len(broken.got()); n != 3 {
		t.Errorf("the 500 receiver got %d attempts, expected 3 (1 + 2 retries)", n)
	}
	var failed []string
	for _, d := range rep.Notifications {
		if !d.OK {
			failed = append(failed, d.Target)
		}
	}
	if strings.Join(failed, ",") != "hanging,broken" && strings.Join(failed, ",") != "broken,hanging" {
		t.Errorf("undelivered: %v, expected broken and hanging", failed)
	}
	warn := strings.Join(rep.Warnings, "\n")
	for _, w := range []string{"run_ended to broken (teams) NOT delivered after 3 attempts: HTTP 500", "run_started to hanging (slack) NOT delivered after 2 attempts: no answer within 200ms"} {
		if !strings.Contains(warn, w) {
			t.Errorf("warnings lack %q:\n%s", w, warn)
		}
	}
	var journaled int
	for _, e := range rec.kind(event.Notify) {
		journaled++
		if e.Seq > rec.firstSeq(event.RunEnd) {
			t.Errorf("notify event after run.end: %+v", e)
		}
	}
	if journaled != 3+3+1+1 {
		t.Errorf("%d notify events, expected 8 (3 slack, 3 generic, broken, hanging)", journaled)
	}
	if strings.Contains(warn, broken.srv.URL) {
		t.Error("a warning holds a webhook URL")
	}
}

// TestStepFailedIsNotified: a step that fails is told at once.
func TestStepFailedIsNotified(t *testing.T) {
	l := newLab(t)
	l.svc.Start("a-ccm")
	l.svc.Start("b-ccm")
	l.inv.Hooks = &inventory.Hooks{BeforeStep: map[string][]*inventory.Hook{"start-chat": {hook("gate", "exit 1")}}}
	gen := newReceiver(t, 204)
	op, _ := l.operation(t, "takeover", "B", nil)
	op.Notifier = &Notifier{Client: webhookPoster{&webhook.Client{}}, Targets: []*inventory.NotifyTarget{{Name: "g", Kind: inventory.NotifyGeneric, URL: gen.srv.URL}}}
	if _, err := op.Run(t.Context()); err == nil {
		t.Fatal("expected the run to fail")
	}
	events := map[string]Notification{}
	for _, b := range gen.got() {
		var n Notification
		_ = json.Unmarshal([]byte(b), &n)
		events[n.Event] = n
	}
	sf, ok := events[inventory.EventStepFailed]
	if !ok || sf.Step != "start-chat" || sf.Outcome != event.Failed {
		t.Errorf("step_failed: %+v (all: %v)", sf, events)
	}
	if events[inventory.EventRunEnded].Outcome != event.Failed {
		t.Errorf("run_ended: %+v", events[inventory.EventRunEnded])
	}
}

func intp(i int) *int { return &i }

// A target's URL may come from the environment (url_env): the notification
// reaches the real receiver at the variable's URL; an unset variable is a
// failed delivery that names the variable, never a URL.
func TestNotifyURLFromTheEnvironment(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.URL.Path+" "+string(b))
		mu.Unlock()
	}))
	defer srv.Close()
	env := map[string]string{"SITECTL_TEST_HOOK_URL": srv.URL + "/services/T000/B000/secret"}
	nt := &Notifier{Client: webhookPoster{&webhook.Client{}}, Getenv: func(k string) string { return env[k] }, Targets: []*inventory.NotifyTarget{
		{Name: "from-env", Kind: inventory.NotifySlack, URLEnv: "SITECTL_TEST_HOOK_URL", Retries: intp(0)},
		{Name: "unset", Kind: inventory.NotifySlack, URLEnv: "SITECTL_TEST_UNSET_URL", Retries: intp(0)},
	}}
	nt.Send(t.Context(), Notification{Event: inventory.EventRunStarted, Runbook: "takeover", Site: "B", Deployment: "d"}, nil)
	byTarget := map[string]Delivery{}
	for _, d := range nt.Wait() {
		byTarget[d.Target] = d
	}
	if d := byTarget["from-env"]; !d.OK || d.Attempts != 1 {
		t.Errorf("from-env: %+v", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || !strings.HasPrefix(got[0], "/services/T000/B000/secret ") || !strings.Contains(got[0], "takeover") {
		t.Errorf("the receiver got %q", got)
	}
	if d := byTarget["unset"]; d.OK || !strings.Contains(d.Error, "SITECTL_TEST_UNSET_URL is empty or unset") || strings.Contains(d.Error, "http") {
		t.Errorf("unset: %+v", d)
	}
}

// The deployment's lock is released before the run waits for its
// notifications: a receiver that is slow to answer run_ended does not hold
// the next run up. The receiver answers only once the lock is released, so
// with the old order the delivery would time out (no duration asserted).
func TestLockReleasedBeforeWaitingForNotifications(t *testing.T) {
	l := newLab(t)
	l.svc.Start("a-ccm")
	l.svc.Start("b-ccm")
	released := make(chan struct{})
	var once sync.Once
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		if !strings.Contains(string(b), "ended") {
			return
		}
		select {
		case <-released:
		case <-req.Context().Done():
		}
	}))
	defer slow.Close()
	op, rec := l.operation(t, "takeover", "B", RealClock)
	op.Lock = func(ctx context.Context, runID string) (func() error, []LockMiss, error) {
		return func() error { once.Do(func() { close(released) }); return nil }, nil, nil
	}
	op.Notifier = &Notifier{Client: webhookPoster{&webhook.Client{}}, Targets: []*inventory.NotifyTarget{
		{Name: "slow", Kind: inventory.NotifySlack, URL: slow.URL, Retries: intp(0), Timeout: inventory.Duration(time.Minute), Deadline: inventory.Duration(time.Minute)},
	}}
	rep, err := op.Run(t.Context())
	if err != nil {
		t.Fatalf("takeover B: %v", err)
	}
	var ended *Delivery
	for i, d := range rep.Notifications {
		if d.Event == inventory.EventRunEnded {
			ended = &rep.Notifications[i]
		}
	}
	if ended == nil || !ended.OK {
		t.Fatalf("run_ended to the receiver that waits for the lock's release: %+v", rep.Notifications)
	}
	// and the journal says so in that order: lock released, then run.end
	var order []string
	rec.mu.Lock()
	evs := append([]event.Event(nil), rec.evs...)
	rec.mu.Unlock()
	for _, e := range evs {
		if e.Kind == event.Lock && e.Message == "lock released" || e.Kind == event.RunEnd {
			order = append(order, string(e.Kind))
		}
	}
	if strings.Join(order, ",") != "lock,run.end" {
		t.Errorf("order %v, want the lock released before run.end", order)
	}
}

// webhookPoster delivers with adapters/webhook, as cmdutil.WebhookPoster
// does for the commands (runbooks' tests cannot import cmd).
type webhookPoster struct{ c *webhook.Client }

func (w webhookPoster) Post(ctx context.Context, p Post) PostResult {
	res := w.c.Post(ctx, webhook.Request{URL: p.URL, Body: p.Body, Header: p.Header, Timeout: p.Timeout,
		Attempts: p.Attempts, Backoff: p.Backoff, Deadline: p.Deadline})
	return PostResult{Attempts: res.Attempts, Status: res.Status, Took: res.Took, Err: res.Err}
}
