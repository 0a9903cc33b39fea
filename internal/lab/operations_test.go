package lab_test

// Drill 12: a failover the rest of operations can see. A real Prometheus
// (Debian package) scrapes `sitectl exporter` against the lab, and the
// verdict series flips when site A is lost and back once B took over; a
// takeover with a Slack-kind notify target and before_run/after_run hooks
// tells the receiver and the hooks what happened; a failing before_run
// hook stops the run before any act.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// promQuery is one instant query through Prometheus' HTTP API: the value
// of every series, by its labels' string.
func promQuery(base, q string) (map[string]float64, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", q, r.Error)
	}
	out := map[string]float64{}
	for _, s := range r.Data.Result {
		v, _ := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
		out[s.Metric["site"]+"|"+s.Metric["state"]] = v
	}
	return out, nil
}

// freePort is a loopback port free a moment ago (Prometheus has no port 0).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startExporter runs `sitectl exporter` on a loopback port and returns its
// address once it listens.
func (d *drill) startExporter(interval string) (addr string, pid int) {
	d.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d.t.Cleanup(cancel)
	c, _, _ := d.cmd(ctx, "exporter", "--listen", "127.0.0.1:0", "--interval", interval)
	c.Stderr = nil
	stderr, err := c.StderrPipe()
	if err != nil {
		d.t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { cancel(); _ = c.Wait() })
	re := regexp.MustCompile(`on http://(\S+)/metrics`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case addr = <-found:
	case <-time.After(30 * time.Second):
		d.t.Fatal("sitectl exporter did not say where it listens within 30s")
	}
	return addr, c.Process.Pid
}

// startPrometheus runs /usr/bin/prometheus on loopback with a temporary
// store, scraping target every second; it returns its base URL.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus not found (Debian package prometheus; scripts/install-test-deps.sh) and CI is set")
		}
		t.Skip("prometheus not found (Debian package prometheus; scripts/install-test-deps.sh)")
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: sitectl
    static_configs:
      - targets: [%q]
`, mustAbs(t, "../../docs/alerts.yaml"), target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	listen := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	c := exec.CommandContext(ctx, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen, "--web.console.templates=/usr/share/prometheus/web/consoles", "--web.console.libraries=/usr/share/prometheus/web/console_libraries")
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	c.Stdout, c.Stderr = logf, logf
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = c.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("prometheus log:\n%s", tail(string(b), 40))
		}
	})
	base := "http://" + listen
	until(t, 60*time.Second, "prometheus ready", func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return base
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func tail(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// waitProm polls a query until cond holds on its result (the limit is only
// a failure guard).
func waitProm(t *testing.T, base, q string, limit time.Duration, what string, cond func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	var last map[string]float64
	var lastErr error
	deadline := time.Now().Add(limit)
	for {
		last, lastErr = promQuery(base, q)
		if lastErr == nil && cond(last) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: Prometheus query %s: %v (err %v), not within %s", what, q, last, lastErr, limit)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func drillExporter(t *testing.T) {
	d := newDrill(t)
	d.waitServes("A", 30*time.Second)
	started := time.Now()
	exp, _ := d.startExporter("1s")
	prom := startPrometheus(t, exp)

	serving := `sitectl_serving_site`
	verdictOne := `sitectl_verdict{state="one"}`
	waitProm(t, prom, serving, 60*time.Second, "Prometheus sees A serve", func(m map[string]float64) bool { return m["A|"] == 1 })
	waitProm(t, prom, verdictOne, 10*time.Second, "verdict one", func(m map[string]float64) bool { return m["|one"] == 1 })
	if m, err := promQuery(prom, `sitectl_site_evidence_state{state="reachable"}`); err != nil || m["A|reachable"] != 1 || m["B|reachable"] != 1 {
		t.Errorf("evidence state before the cut: %v (%v), want both sites reachable", m, err)
	}
	// every layer's own metrics, from the real lab
	for q, ok := range map[string]func(map[string]float64) bool{
		`sitectl_mongodb_primary_site`:                                   func(m map[string]float64) bool { return m["A|"] == 1 && len(m) == 1 },
		`sitectl_mongodb_term > 0`:                                       func(m map[string]float64) bool { return len(m) == 1 },
		`count(sitectl_mongodb_member_lag_seconds)`:                      func(m map[string]float64) bool { return m["|"] >= 1 },
		`sitectl_activemq_top_consumer_priority{site="A"}`:               func(m map[string]float64) bool { return m["A|"] == 10 },
		`sitectl_haproxy_server_state{site="A",state="up"}`:              func(m map[string]float64) bool { return m["A|up"] == 1 },
		`count(sitectl_haproxy_server_sessions)`:                         func(m map[string]float64) bool { return m["|"] >= 2 },
		`sitectl_service_state{site="A",service="chat",state="running"}`: func(m map[string]float64) bool { return m["A|running"] == 1 },
		`count(sitectl_host_observation_duration_seconds)`:               func(m map[string]float64) bool { return m["|"] >= 2 },
	} {
		if m, err := promQuery(prom, q); err != nil || !ok(m) {
			t.Errorf("Prometheus query %s: %v (%v)", q, m, err)
		}
	}

	// A is lost: the verdict series leaves "one"
	d.l.Fail("A")
	cut := time.Now()
	lost := waitProm(t, prom, `sitectl_verdict == 1`, 60*time.Second, "the verdict flips after fail A", func(m map[string]float64) bool { return m["|one"] == 0 && len(m) == 1 })
	t.Logf("verdict after fail A (%.1fs): %v", time.Since(cut).Seconds(), lost)
	waitProm(t, prom, `sitectl_site_evidence_state{site="A",state="down"}`, 90*time.Second, "A judged DOWN", func(m map[string]float64) bool { return m["A|down"] == 1 })

	// take over B: the verdict comes back to one, with B serving
	r := d.want(0, "takeover", "--site", "B", "--yes")
	waitProm(t, prom, serving, 60*time.Second, "Prometheus sees B serve", func(m map[string]float64) bool { return m["B|"] == 1 })
	waitProm(t, prom, verdictOne, 10*time.Second, "verdict one again", func(m map[string]float64) bool { return m["|one"] == 1 })
	waitProm(t, prom, `sitectl_last_run_outcome{runbook="takeover",outcome="ok"}`, 30*time.Second, "last run ok", func(m map[string]float64) bool { return m["B|"] == 1 })
	if m, err := promQuery(prom, `sitectl_last_run_rto_seconds`); err != nil || m["B|"] <= 0 {
		t.Errorf("last run RTO: %v (%v)", m, err)
	}

	// the series over the drill, from Prometheus' store: one, then not,
	// then one again
	vals := rangeValues(t, prom, verdictOne, started, time.Now())
	seq := collapse(vals)
	t.Logf("sitectl_verdict{state=\"one\"} over the drill: %v", seq)
	if !strings.Contains(strings.Join(seq, ""), "101") {
		t.Errorf("the verdict series did not go one -> not one -> one: %v", seq)
	}
	d.report("12 exporter: takeover B seen by Prometheus", r)
	if dir := os.Getenv("SITECTL_SCREENSHOT_DIR"); dir != "" {
		screenshotGraph(t, prom, started, filepath.Join(dir, "prometheus-verdict.png"))
	}
}

// rangeValues is query_range of q at 1s steps.
func rangeValues(t *testing.T, base, q string, from, to time.Time) []float64 {
	t.Helper()
	u := fmt.Sprintf("%s/api/v1/query_range?query=%s&start=%d&end=%d&step=1", base, url.QueryEscape(q), from.Unix(), to.Unix()+1)
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &r); err != nil || len(r.Data.Result) != 1 {
		t.Fatalf("query_range %s: %v: %s", q, err, b)
	}
	var out []float64
	for _, v := range r.Data.Result[0].Values {
		f, _ := strconv.ParseFloat(fmt.Sprint(v[1]), 64)
		out = append(out, f)
	}
	return out
}

// collapse keeps the changes: [1 1 0 0 1] -> ["1" "0" "1"].
func collapse(vs []float64) []string {
	var out []string
	for _, v := range vs {
		s := strconv.FormatFloat(v, 'f', -1, 64)
		if len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}

// screenshotGraph saves the Prometheus UI's graph of the verdict since
// from, taken by headless Chromium (docs/operations.md).
func screenshotGraph(t *testing.T, base string, from time.Time, out string) {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Logf("no chromium: no screenshot")
		return
	}
	rng := int(time.Since(from).Seconds()) + 5
	q := url.Values{}
	q.Set("g0.expr", `sitectl_verdict`)
	q.Set("g0.tab", "0")
	q.Set("g0.range_input", strconv.Itoa(rng)+"s")
	q.Set("g0.stacked", "0")
	q.Set("g0.show_exemplars", "0")
	u := base + "/graph?" + q.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--window-size=1280,1000", "--virtual-time-budget=15000", "--screenshot="+out, u)
	if b, err := c.CombinedOutput(); err != nil {
		t.Errorf("chromium screenshot of %s: %v\n%s", u, err, b)
		return
	}
	t.Logf("screenshot of %s: %s", u, out)
}

// slackReceiver is a Slack incoming webhook stand-in on loopback.
type slackReceiver struct {
	mu    sync.Mutex
	texts []string
	srv   *httptest.Server
}

func newSlackReceiver(t *testing.T) *slackReceiver {
	r := &slackReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var m map[string]string
		if err := json.NewDecoder(req.Body).Decode(&m); err != nil || m["text"] == "" {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.texts = append(r.texts, m["text"])
		r.mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *slackReceiver) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.texts, "\n")
}

func readEnvFile(t *testing.T, p string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("the hook did not write %s: %v", p, err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

func drillHooksNotify(t *testing.T) {
	d := newDrill(t)
	d.waitServes("A", 30*time.Second)
	slack := newSlackReceiver(t)
	dir := t.TempDir()
	hooks := func(before string) string {
		return fmt.Sprintf(`
hooks:
  before_run:
    - {name: change window, command: %q, timeout: 10s}
  after_run:
    - {name: re-register chat webhooks, command: %q, timeout: 10s}
notify:
  targets:
    - {name: oncall, kind: slack, url: %q, events: [run_started, run_ended], retries: 2, backoff: 200ms, deadline: 10s}
`, before, "env | grep ^SITECTL_ > "+filepath.Join(dir, "after.env"), slack.srv.URL)
	}
	failing := d.variant("hooks-failing", func(s string) string { return s + hooks("echo change window closed >&2; exit 1") })
	passing := d.variant("hooks", func(s string) string { return s + hooks("env | grep ^SITECTL_ > "+filepath.Join(dir, "before.env")) })

	d.l.Fail("A")
	// a failing before_run hook: refused before any act, the fence included
	r := d.want(3, "takeover", "--site", "B", "--yes", "--inventory", failing)
	if !strings.Contains(r.out, `before_run hook "change window" failed`) || !strings.Contains(r.out, "change window closed") {
		t.Errorf("the refusal does not name the hook and its stderr")
	}
	d.nothingStartedOnB("a takeover whose before_run hook failed")
	for _, e := range d.journal(r.run) {
		if e.Kind == "step.act" || e.Kind == "step.start" || (e.Kind == "fence" && e.Outcome == "ok") {
			t.Errorf("after a failed before_run hook the journal has %s %s %s", e.Kind, e.Task, e.Message)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "after.env")); err == nil {
		t.Error("after_run ran after a before_run hook stopped the run")
	}
	if all := slack.all(); !strings.Contains(all, "ended REFUSED") {
		t.Errorf("slack receiver after the refused run: %q", all)
	}

	// the takeover with hooks that pass and the slack target
	r = d.want(0, "takeover", "--site", "B", "--yes", "--inventory", passing)
	before, after := readEnvFile(t, filepath.Join(dir, "before.env")), readEnvFile(t, filepath.Join(dir, "after.env"))
	for k, v := range map[string]string{"SITECTL_RUN_ID": r.run, "SITECTL_RUNBOOK": "takeover", "SITECTL_SITE": "B", "SITECTL_OTHER_SITE": "A"} {
		if before[k] != v || after[k] != v {
			t.Errorf("%s: before_run saw %q, after_run %q, want %q", k, before[k], after[k], v)
		}
	}
	if after["SITECTL_OUTCOME"] != "ok" || after["SITECTL_VERDICT"] != "one" || after["SITECTL_SERVING_SITE"] != "B" || after["SITECTL_RTO_SECONDS"] == "" {
		t.Errorf("after_run saw outcome %q verdict %q serving %q RTO %q", after["SITECTL_OUTCOME"], after["SITECTL_VERDICT"], after["SITECTL_SERVING_SITE"], after["SITECTL_RTO_SECONDS"])
	}
	if j := after["SITECTL_JOURNAL"]; j == "" || !strings.Contains(j, r.run) {
		t.Errorf("SITECTL_JOURNAL=%q", j)
	}
	all := slack.all()
	t.Logf("slack receiver got:\n%s", all)
	for _, w := range []string{"sitectl takeover --site B started on", "sitectl takeover --site B ended OK on", "verdict: site B serves", "RTO ", "run " + r.run} {
		if !strings.Contains(all, w) {
			t.Errorf("slack receiver lacks %q", w)
		}
	}
	if !strings.Contains(r.out, "notified oncall: run_ended") {
		t.Errorf("the run's summary does not show the notification")
	}
	d.waitServes("B", 15*time.Second)
	d.report("12 hooks and notify: takeover B", r)
}
