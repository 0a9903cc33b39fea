package exporter

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitectl/sitectl/checks/services"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/journal"
)

// snapshot is a deployment seen split: both sites serve, MongoDB has a
// primary at each site.
func snapshot() checks.Snapshot {
	return checks.Snapshot{
		Took: inventory.Duration(1500 * time.Millisecond),
		Sites: []services.SiteStatus{
			{Site: "A", Core: services.Active, Hosts: []services.HostStatus{{Site: "A", Host: "a1", Reachable: true, Latency: 20 * time.Millisecond,
				Services: []services.ServiceStatus{{Site: "A", Host: "a1", Service: "chat", State: services.Running}}}},
				Loss: &checks.SiteVerdict{Site: "A", State: checks.SiteReachable}},
			{Site: "B", Core: services.Unreachable, Hosts: []services.HostStatus{{Site: "B", Host: "b1", Reachable: false}},
				Loss: &checks.SiteVerdict{Site: "B", State: checks.SiteDown, Confirmed: 2, Quorum: 2}},
		},
		Verdict: checks.Verdict{State: checks.ServeSplit, Layers: []checks.LayerVerdict{
			{Layer: checks.LayerMongoDB, State: checks.ServeSplit, Sites: []string{"A", "B"}, Rows: []checks.Row{
				{Site: "A", Name: "m-a", State: "primary", Values: map[string]float64{"term": 7, "lag_seconds": 0}},
				{Site: "B", Name: "m-b", State: "primary", Values: map[string]float64{"term": 6}},
				{Site: "W", Name: "m-w", State: checks.ServeUnknown},
			}},
			{Layer: checks.LayerActiveMQ, State: checks.ServeOne, Site: "A", Rows: []checks.Row{
				{Site: "A", Name: "amq-a/chat.in", State: "A", Values: map[string]float64{"priority": 10}},
			}},
			{Layer: checks.LayerHAProxy, State: checks.ServeOne, Site: "A", Rows: []checks.Row{
				{Site: "A", Name: "chat/a1", State: "UP 2/3", Values: map[string]float64{"sessions": 4}},
				{Site: "B", Name: "chat/b1", State: "MAINT"},
			}},
		}},
	}
}

// TestExporterMetrics: the metrics of a snapshot, checked by the client
// library's linter (Prometheus naming conventions) and by value.
func TestExporterMetrics(t *testing.T) {
	snap := snapshot()
	ex := NewExporter("prod", checks.Refresher{Observe: func(context.Context) checks.Snapshot { return snap }, Timeout: time.Minute, Grace: time.Second}, "")
	if r := ex.Refresh(t.Context()); r.Err != nil {
		t.Fatal(r.Err)
	}
	problems, err := testutil.CollectAndLint(ex)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	want := `
# HELP sitectl_verdict Who serves traffic, combined over every layer: 1 for the current state (one, none, split, partial, unknown), 0 for the others.
# TYPE sitectl_verdict gauge
sitectl_verdict{deployment="prod",state="none"} 0
sitectl_verdict{deployment="prod",state="one"} 0
sitectl_verdict{deployment="prod",state="partial"} 0
sitectl_verdict{deployment="prod",state="split"} 1
sitectl_verdict{deployment="prod",state="unknown"} 0
# HELP sitectl_mongodb_primary_site 1 for the site of each writable MongoDB primary (two: a split).
# TYPE sitectl_mongodb_primary_site gauge
sitectl_mongodb_primary_site{deployment="prod",site="A"} 1
sitectl_mongodb_primary_site{deployment="prod",site="B"} 1
# HELP sitectl_mongodb_term The replica set's election term, as the primary reports it.
# TYPE sitectl_mongodb_term gauge
sitectl_mongodb_term{deployment="prod"} 7
# HELP sitectl_site_evidence_state A site's loss verdict from every observer's evidence: 1 for the current state (reachable, down, unreachable_from_here, unknown).
# TYPE sitectl_site_evidence_state gauge
sitectl_site_evidence_state{deployment="prod",site="A",state="down"} 0
sitectl_site_evidence_state{deployment="prod",site="A",state="reachable"} 1
sitectl_site_evidence_state{deployment="prod",site="A",state="unknown"} 0
sitectl_site_evidence_state{deployment="prod",site="A",state="unreachable_from_here"} 0
sitectl_site_evidence_state{deployment="prod",site="B",state="down"} 1
sitectl_site_evidence_state{deployment="prod",site="B",state="reachable"} 0
sitectl_site_evidence_state{deployment="prod",site="B",state="unknown"} 0
sitectl_site_evidence_state{deployment="prod",site="B",state="unreachable_from_here"} 0
# HELP sitectl_activemq_top_consumer_priority Priority of the consumer that gets a queue's messages on a broker, labelled with that consumer's site.
# TYPE sitectl_activemq_top_consumer_priority gauge
sitectl_activemq_top_consumer_priority{broker="amq-a",deployment="prod",queue="chat.in",site="A"} 10
# HELP sitectl_haproxy_server_sessions Current sessions of an HAProxy server.
# TYPE sitectl_haproxy_server_sessions gauge
sitectl_haproxy_server_sessions{backend="chat",deployment="prod",server="a1",site="A"} 4
# HELP sitectl_haproxy_server_state An HAProxy server's state: 1 for the current state (as HAProxy names it, lower case: up, down, maint, drain, nolb, missing, …).
# TYPE sitectl_haproxy_server_state gauge
sitectl_haproxy_server_state{backend="chat",deployment="prod",server="a1",site="A",state="up"} 1
sitectl_haproxy_server_state{backend="chat",deployment="prod",server="b1",site="B",state="maint"} 1
`
	if err := testutil.CollectAndCompare(ex, strings.NewReader(want), "sitectl_verdict", "sitectl_mongodb_primary_site", "sitectl_mongodb_term",
		"sitectl_site_evidence_state", "sitectl_activemq_top_consumer_priority", "sitectl_haproxy_server_sessions", "sitectl_haproxy_server_state"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(ex, "sitectl_service_state_since_timestamp_seconds"); n != 1 {
		t.Errorf("%d since series, expected 1 (chat on a1; b1 did not answer)", n)
	}
}

// TestExporterKeepsTheLastGoodSnapshot: a failed refresh is counted, the
// metrics are those of the last good one.
func TestExporterKeepsTheLastGoodSnapshot(t *testing.T) {
	snap := snapshot()
	block := make(chan struct{})
	calls := 0
	ex := NewExporter("prod", checks.Refresher{Observe: func(ctx context.Context) checks.Snapshot {
		calls++
		if calls == 2 {
			<-block // never hands in: the refresh fails at its deadline
		}
		return snap
	}, Timeout: 10 * time.Millisecond, Grace: 10 * time.Millisecond}, "")
	defer close(block)
	ex.Refresh(t.Context())
	if r := ex.Refresh(t.Context()); r.Err == nil {
		t.Fatal("expected the second refresh to fail")
	}
	if v := testutil.ToFloat64(gaugeOf(t, ex, "sitectl_exporter_refresh_errors_total")); v != 1 {
		t.Errorf("refresh errors %g, expected 1", v)
	}
	if v := testutil.ToFloat64(gaugeOf(t, ex, "sitectl_exporter_last_refresh_success")); v != 0 {
		t.Errorf("last refresh success %g, expected 0", v)
	}
	if n := testutil.CollectAndCount(ex, "sitectl_verdict"); n != 5 {
		t.Errorf("%d verdict series after a failed refresh, expected the last good 5", n)
	}
}

// gaugeOf collects the one series of name.
func gaugeOf(t *testing.T, c prometheus.Collector, name string) prometheus.Collector {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	return collectorFunc(func(ch chan<- prometheus.Metric) {
		mc := make(chan prometheus.Metric, 1000)
		c.Collect(mc)
		close(mc)
		for m := range mc {
			if strings.Contains(m.Desc().String(), `"`+name+`"`) {
				ch <- m
			}
		}
	})
}

type collectorFunc func(chan<- prometheus.Metric)

func (f collectorFunc) Describe(chan<- *prometheus.Desc)    {}
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }

// TestExporterServesARealDeployment: `sitectl exporter` observes a real
// deployment of local hosts (services are real commands), reads the last
// run from a real journal, and serves /metrics over loopback.
func TestExporterServesARealDeployment(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "inv.yaml")
	up := filepath.Join(dir, "b-chat-up")
	status := func(f string) string { return "test -f " + f }
	if err := os.WriteFile(inv, []byte(`deployment: exp
sites:
  - name: A
    role: primary
    hosts: [{name: a1, local: true}]
    services:
      - {name: chat, kind: chat, host: a1, start: 'true', stop: 'true', status: 'exit 3'}
  - name: B
    role: secondary
    hosts: [{name: b1, local: true}]
    services:
      - {name: chat, kind: chat, host: b1, start: 'true', stop: 'true', status: '`+status(up)+`'}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(up, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	// a journaled run: takeover of B, ok, with a verified step
	jw, err := journal.Create(state, "20261203T070000Z-aaaa")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	st := &event.Stamper{RunID: "20261203T070000Z-aaaa", Next: jw}
	st.Emit(event.Event{Time: t0, Kind: event.RunStart, Run: &event.RunInfo{ID: "20261203T070000Z-aaaa", Runbook: "takeover", Site: "B", Deployment: "exp", Mode: "run", Started: t0}})
	st.Emit(event.Event{Time: t0.Add(40 * time.Second), Kind: event.StepEnd, Task: "start-chat/b1/chat", Outcome: event.OK})
	st.Emit(event.Event{Time: t0.Add(45 * time.Second), Kind: event.RunEnd, Outcome: event.OK, Duration: 45 * time.Second})
	jw.Close()

	ios, _, _, errOut := cmdutil.Test()
	f := &cmdutil.Factory{IO: ios, Globals: &cmdutil.Globals{Inventory: inv}, Getenv: func(string) string { return "" }, Now: time.Now,
		Dialer: remote.NewDialer(remote.Options{}), StateDir: func() (string, error) { return state, nil }}
	ctx, cancel := context.WithCancel(t.Context())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- exporterRun(ctx, &Options{F: f, Listen: "127.0.0.1:0", Interval: 200 * time.Millisecond, NoProbes: true, Ready: func(a string) { addr <- a }})
	}()
	var a string
	select {
	case a = <-addr:
	case err := <-done:
		t.Fatalf("exporter ended: %v; stderr %s", err, errOut)
	}
	get := func() string {
		resp, err := http.Get("http://" + a + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	// poll until the first refresh is in (a failure guard, not a timing)
	waitFor := func(what string) string {
		deadline := time.Now().Add(30 * time.Second)
		for {
			body := get()
			if strings.Contains(body, what) {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q in /metrics within 30s:\n%s", what, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	body := waitFor(`sitectl_verdict{deployment="exp",state="one"} 1`)
	for _, w := range []string{
		`sitectl_service_state{deployment="exp",host="b1",service="chat",site="B",state="running"} 1`,
		`sitectl_site_activity{deployment="exp",site="A",state="passive"} 1`,
		`sitectl_last_run_outcome{deployment="exp",outcome="ok",runbook="takeover",site="B"} 1`,
		`sitectl_last_run_rto_seconds{deployment="exp",runbook="takeover",site="B"} 40`,
		`sitectl_last_run_duration_seconds{deployment="exp",runbook="takeover",site="B"} 45`,
		`sitectl_serving_site{deployment="exp",site="B"} 1`,
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(body, w) {
			t.Errorf("/metrics lacks %s", w)
		}
	}
	// the service stops: the next refreshes say so
	if err := os.Remove(up); err != nil {
		t.Fatal(err)
	}
	waitFor(`sitectl_verdict{deployment="exp",state="none"} 1`)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("exporter: %v", err)
	}
}
