package exporter

import (
	"context"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sitectl/sitectl/checks/services"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/journal"
)

// Exporter keeps the last refresh of a deployment and the last run of its
// journal, and serves them as metrics (a prometheus.Collector). Refresh
// is the board's refresh (checks.Refresher), not a copy.
type Exporter struct {
	Deployment string
	Refresher  checks.Refresher
	JournalDir string // "" : no last-run metrics

	mu        sync.Mutex
	snap      checks.Snapshot
	have      bool
	at        time.Time
	since     checks.Since
	refreshes float64
	failures  float64
	lastOK    bool
	run       *lastRun
}

// lastRun is the newest journaled run of the deployment.
type lastRun struct {
	id, runbook, site, outcome string
	size                       int64
	mod                        time.Time
	duration, rto              time.Duration
	hasRTO                     bool
	ended                      time.Time
}

// NewExporter returns an exporter of deployment dep.
func NewExporter(dep string, r checks.Refresher, journalDir string) *Exporter {
	return &Exporter{Deployment: dep, Refresher: r, JournalDir: journalDir, since: checks.Since{}}
}

// Refresh takes one snapshot and reads the journal's last run; it returns
// the refresh's error (the metrics keep the last good snapshot).
func (e *Exporter) Refresh(ctx context.Context) checks.Refresh {
	res := e.Refresher.Once(ctx)
	run := e.readLastRun()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refreshes++
	e.run = run
	if res.Err != nil {
		e.failures++
		e.lastOK = false
		return res
	}
	e.snap, e.have, e.at, e.lastOK = res.Snap, true, res.At, true
	e.since.Update(res.Snap, res.At)
	return res
}

// Loop refreshes every interval (checks.NextRefresh) until ctx ends.
func (e *Exporter) Loop(ctx context.Context, interval time.Duration, after func(checks.Refresh)) {
	for {
		res := e.Refresh(ctx)
		if after != nil {
			after(res)
		}
		t := time.NewTimer(checks.NextRefresh(interval, res.Took))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// readLastRun finds the newest run of the deployment in the journal,
// reading a journal only when it changed since the last refresh.
func (e *Exporter) readLastRun() *lastRun {
	if e.JournalDir == "" {
		return nil
	}
	ids, err := journal.IDs(e.JournalDir)
	if err != nil {
		return e.cachedRun()
	}
	prev := e.cachedRun()
	for i := len(ids) - 1; i >= 0 && i >= len(ids)-20; i-- {
		p := journal.Path(e.JournalDir, ids[i])
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		if prev != nil && prev.id == ids[i] && prev.size == st.Size() && prev.mod.Equal(st.ModTime()) {
			return prev
		}
		r, err := journal.Read(p)
		if err != nil && r.Info == nil {
			continue
		}
		if r.Info == nil || r.Info.Deployment != e.Deployment || (r.Info.Mode != "run" && r.Info.Mode != "resume") {
			continue
		}
		t := journal.Timings(r)
		lr := &lastRun{id: ids[i], runbook: r.Info.Runbook, site: r.Info.Site, outcome: string(r.Outcome),
			size: st.Size(), mod: st.ModTime(), duration: t.Total, rto: t.RTO, hasRTO: t.HasRTO, ended: r.Ended}
		if r.Interrupted() {
			lr.outcome = "running" // or interrupted: not ended (yet)
		}
		return lr
	}
	return prev
}

func (e *Exporter) cachedRun() *lastRun {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.run
}

// The metric families. Names follow the Prometheus conventions: a
// sitectl_ prefix, units in the name (_seconds, _timestamp_seconds), a
// state as a label of a 0/1 gauge (one series per possible state, so that
// a change is a value change, not a series that disappears), no label of
// unbounded cardinality (no error text, no run id).
var (
	descVerdict                              = desc("verdict", "Who serves traffic, combined over every layer: 1 for the current state (one, none, split, partial, unknown), 0 for the others.", "deployment", "state")
	descServingSite                          = desc("serving_site", "1 for the site that serves traffic when the verdict is one or partial.", "deployment", "site")
	descSiteActivity                         = desc("site_activity", "A site's core activity from its services: 1 for the current state (active, partial, passive, unreachable, unknown).", "deployment", "site", "state")
	descSiteLoss                             = desc("site_evidence_state", "A site's loss verdict from every observer's evidence: 1 for the current state (reachable, down, unreachable_from_here, unknown).", "deployment", "site", "state")
	descSiteConfirmed                        = desc("site_loss_confirmations", "Independent observers that confirm the site is down.", "deployment", "site")
	descSiteQuorum                           = desc("site_loss_quorum", "Confirmations needed to judge the site DOWN.", "deployment", "site")
	descLayer                                = desc("layer_state", "A layer's answer to which site serves: 1 for the current state (one, none, split, partial, unknown).", "deployment", "layer", "state")
	descLayerSite                            = desc("layer_serving_site", "1 for each site a layer says serves.", "deployment", "layer", "site")
	descService                              = desc("service_state", "A service's state on a host: 1 for the current state (running, stopped, unknown).", "deployment", "site", "host", "service", "state")
	descServiceSince                         = desc("service_state_since_timestamp_seconds", "Since when the service has been in its current state, as far as this exporter has seen (its first observation at the latest).", "deployment", "site", "host", "service")
	descHostUp                               = desc("host_reachable", "1 when the host answered the last observation.", "deployment", "site", "host")
	descHostDuration                         = desc("host_observation_duration_seconds", "How long the host's observation took.", "deployment", "site", "host")
	descObserveDuration                      = desc("observation_duration_seconds", "How long the last observation of the whole deployment took.", "deployment")
	descMongoPrimary                         = desc("mongodb_primary_site", "1 for the site of each writable MongoDB primary (two: a split).", "deployment", "site")
	descMongoTerm                            = desc("mongodb_term", "The replica set's election term, as the primary reports it.", "deployment")
	descMongoLag                             = desc("mongodb_member_lag_seconds", "How far a member's optime is behind the primary's.", "deployment", "site", "member")
	descMongoMember                          = desc("mongodb_member_up", "1 when the member was observed (answered and reported its state).", "deployment", "site", "member")
	descAMQTop                               = desc("activemq_top_consumer_priority", "Priority of the consumer that gets a queue's messages on a broker, labelled with that consumer's site.", "deployment", "broker", "queue", "site")
	descHAProxyServer                        = desc("haproxy_server_state", "An HAProxy server's state: 1 for the current state (as HAProxy names it, lower case: up, down, maint, drain, nolb, missing, …).", "deployment", "backend", "server", "site", "state")
	descHAProxySessions                      = desc("haproxy_server_sessions", "Current sessions of an HAProxy server.", "deployment", "backend", "server", "site")
	descLastRun                              = desc("last_run_outcome", "The newest journaled run of the deployment: 1 for its outcome (ok, failed, unknown, refused, cancelled, running).", "deployment", "runbook", "site", "outcome")
	descLastRunDuration                      = desc("last_run_duration_seconds", "How long the newest journaled run took (so far, when it has not ended).", "deployment", "runbook", "site")
	descLastRunRTO                           = desc("last_run_rto_seconds", "The newest run's measured RTO: from its start to its last successful verification.", "deployment", "runbook", "site")
	descLastRunEnd                           = desc("last_run_end_timestamp_seconds", "When the newest journaled run ended.", "deployment", "runbook", "site")
	descRefreshes                            = desc("exporter_refreshes_total", "Refreshes (observations of the deployment) started.", "deployment")
	descScrapeErrors                         = desc("exporter_refresh_errors_total", "Refreshes that failed (did not finish within their deadline): the metrics kept the last good observation.", "deployment")
	descLastRefreshOK                        = desc("exporter_last_refresh_success", "1 when the last refresh succeeded.", "deployment")
	descLastRefreshTime                      = desc("exporter_last_refresh_timestamp_seconds", "When the last successful refresh was made.", "deployment")
	verdictStates                            = []string{checks.ServeOne, checks.ServeNone, checks.ServeSplit, checks.ServePartial, checks.ServeUnknown}
	activityStates                           = []services.Activity{services.Active, services.Partial, services.Passive, services.Unreachable, services.Undecided}
	lossStates                               = []checks.SiteState{checks.SiteReachable, checks.SiteDown, checks.SiteUnreachableHere, checks.SiteUnknown}
	serviceStates                            = []services.State{services.Running, services.Stopped, services.Unknown}
	runOutcomes                              = []string{string(event.OK), string(event.Failed), string(event.Unknown), string(event.Refused), string(event.Cancelled), "running"}
	allDescs                                 = []*prometheus.Desc{descVerdict, descServingSite, descSiteActivity, descSiteLoss, descSiteConfirmed, descSiteQuorum, descLayer, descLayerSite, descService, descServiceSince, descHostUp, descHostDuration, descObserveDuration, descMongoPrimary, descMongoTerm, descMongoLag, descMongoMember, descAMQTop, descHAProxyServer, descHAProxySessions, descLastRun, descLastRunDuration, descLastRunRTO, descLastRunEnd, descRefreshes, descScrapeErrors, descLastRefreshOK, descLastRefreshTime}
	_                   prometheus.Collector = (*Exporter)(nil)
	lossLabel                                = map[checks.SiteState]string{checks.SiteReachable: "reachable", checks.SiteDown: "down", checks.SiteUnreachableHere: "unreachable_from_here", checks.SiteUnknown: "unknown"}
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("sitectl_"+name, help, labels, nil)
}

// Describe sends every metric's description.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Collect sends the metrics of the last refresh.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	e.mu.Lock()
	defer e.mu.Unlock()
	dep := e.Deployment
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	ch <- prometheus.MustNewConstMetric(descRefreshes, prometheus.CounterValue, e.refreshes, dep)
	ch <- prometheus.MustNewConstMetric(descScrapeErrors, prometheus.CounterValue, e.failures, dep)
	g(descLastRefreshOK, b2f(e.lastOK), dep)
	if e.run != nil {
		e.runMetrics(g, e.run)
	}
	if !e.have {
		return // no observation yet: no state is reported rather than a wrong one
	}
	s := e.snap
	g(descLastRefreshTime, float64(e.at.UnixNano())/1e9, dep)
	g(descObserveDuration, time.Duration(s.Took).Seconds(), dep)
	v := s.Verdict
	for _, st := range verdictStates {
		g(descVerdict, b2f(v.State == st), dep, st)
	}
	if (v.State == checks.ServeOne || v.State == checks.ServePartial) && v.Site != "" {
		g(descServingSite, 1, dep, v.Site)
	}
	for _, site := range s.Sites {
		e.siteMetrics(g, site)
	}
	for _, l := range v.Layers {
		e.layerMetrics(g, l)
	}
}

// runMetrics sends the outcome, duration, RTO and end of the last run.
func (e *Exporter) runMetrics(g func(*prometheus.Desc, float64, ...string), r *lastRun) {
	dep := e.Deployment
	for _, o := range runOutcomes {
		g(descLastRun, b2f(r.outcome == o), dep, r.runbook, r.site, o)
	}
	g(descLastRunDuration, r.duration.Seconds(), dep, r.runbook, r.site)
	if r.hasRTO {
		g(descLastRunRTO, r.rto.Seconds(), dep, r.runbook, r.site)
	}
	if !r.ended.IsZero() {
		g(descLastRunEnd, float64(r.ended.UnixNano())/1e9, dep, r.runbook, r.site)
	}
}

// siteMetrics sends a site's activity, loss verdict, hosts and services.
func (e *Exporter) siteMetrics(g func(*prometheus.Desc, float64, ...string), site services.SiteStatus) {
	dep := e.Deployment
	for _, a := range activityStates {
		g(descSiteActivity, b2f(site.Core == a), dep, site.Site, string(a))
	}
	loss := checks.SiteReachable
	if site.Loss != nil {
		loss = site.Loss.State
		g(descSiteConfirmed, float64(site.Loss.Confirmed), dep, site.Site)
		g(descSiteQuorum, float64(site.Loss.Quorum), dep, site.Site)
	}
	for _, st := range lossStates {
		g(descSiteLoss, b2f(loss == st), dep, site.Site, lossLabel[st])
	}
	for _, h := range site.Hosts {
		g(descHostUp, b2f(h.Reachable), dep, site.Site, h.Host)
		g(descHostDuration, h.Latency.Seconds(), dep, site.Site, h.Host)
		for _, svc := range h.Services {
			for _, st := range serviceStates {
				g(descService, b2f(svc.State == st), dep, site.Site, h.Host, svc.Service, string(st))
			}
			if se, ok := e.since[checks.SinceKey(site.Site, h.Host, svc.Service)]; ok && se.State == svc.State {
				g(descServiceSince, float64(se.At.UnixNano())/1e9, dep, site.Site, h.Host, svc.Service)
			}
		}
	}
}

// layerMetrics sends a layer's state, the sites it serves and the rows
// of the MongoDB, ActiveMQ and HAProxy layers.
func (e *Exporter) layerMetrics(g func(*prometheus.Desc, float64, ...string), l checks.LayerVerdict) {
	dep := e.Deployment
	for _, st := range verdictStates {
		g(descLayer, b2f(l.State == st), dep, l.Layer, st)
	}
	sites := l.Sites
	if len(sites) == 0 && l.Site != "" {
		sites = []string{l.Site}
	}
	seen := map[string]bool{}
	for _, site := range sites {
		if !seen[site] { // a duplicate series would fail the whole scrape
			seen[site] = true
			g(descLayerSite, 1, dep, l.Layer, site)
		}
	}
	switch l.Layer {
	case checks.LayerMongoDB:
		e.mongo(g, l)
	case checks.LayerActiveMQ:
		for _, r := range l.Rows {
			broker, queue, ok := strings.Cut(r.Name, "/")
			if p, has := r.Values["priority"]; ok && has {
				g(descAMQTop, p, dep, broker, queue, r.State)
			}
		}
	case checks.LayerHAProxy:
		for _, r := range l.Rows {
			backend, server, _ := strings.Cut(r.Name, "/")
			g(descHAProxyServer, 1, dep, backend, server, r.Site, haproxyState(r.State))
			if n, ok := r.Values["sessions"]; ok {
				g(descHAProxySessions, n, dep, backend, server, r.Site)
			}
		}
	}
}

func (e *Exporter) mongo(g func(*prometheus.Desc, float64, ...string), l checks.LayerVerdict) {
	dep := e.Deployment
	term, haveTerm := 0.0, false
	primaries := map[string]bool{}
	for _, r := range l.Rows {
		_, observed := r.Values["term"]
		g(descMongoMember, b2f(observed || r.State != checks.ServeUnknown), dep, r.Site, r.Name)
		if lag, ok := r.Values["lag_seconds"]; ok {
			g(descMongoLag, lag, dep, r.Site, r.Name)
		}
		if r.State == "primary" {
			primaries[r.Site] = true
			if t, ok := r.Values["term"]; ok && t >= term {
				term, haveTerm = t, true
			}
		}
	}
	for site := range primaries {
		g(descMongoPrimary, 1, dep, site)
	}
	if haveTerm {
		g(descMongoTerm, term, dep)
	}
}

// haproxyState is HAProxy's status word in lower case, without its
// transition ("UP 1/3" -> "up"): a bounded label.
func haproxyState(raw string) string {
	s := strings.ToLower(strings.TrimSpace(raw))
	if i := strings.IndexAny(s, " /("); i > 0 {
		s = s[:i]
	}
	if s == "" {
		return "unknown"
	}
	return s
}
