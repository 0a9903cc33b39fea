package root

// End-to-end tests of the sitectl CLI against real OpenSSH servers: one sshd
// per simulated host (keys generated per test), stand-in services driven by
// a real control script over SSH. Nothing here fakes SSH.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/internal/testenv/sshd"
	"github.com/sitectl/sitectl/internal/testenv/standin"
	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/journal"
	"github.com/sitectl/sitectl/runbooks/runlock"
)

// deployment is a two-site set-up: hosts a-app, a-rpt, b-app, b-rpt, each a
// real sshd on loopback.
type deployment struct {
	t        *testing.T
	dir      string
	state    string
	inv      string
	svc      *standin.Services
	servers  map[string]*sshd.Server
	lockPath string
	override map[string]string // host -> YAML for the host entry (tests that break a host)
	extra    string            // YAML appended to the inventory (mongodb, activemq, haproxy sections)
	match    map[string]string // site -> consumer_match line
	env      map[string]string // the environment sitectl sees besides SITECTL_INVENTORY
}

var hosts = []string{"a-app", "a-rpt", "b-app", "b-rpt"}

func newDeployment(t *testing.T) *deployment {
	t.Helper()
	d := &deployment{t: t, dir: t.TempDir(), svc: standin.New(t), servers: map[string]*sshd.Server{}, override: map[string]string{}}
	d.state = filepath.Join(d.dir, "state")
	d.lockPath = filepath.Join(d.dir, "remote.lock")
	for i, s := range sshd.StartN(t, len(hosts)) {
		d.servers[hosts[i]] = s
	}
	d.write()
	return d
}

func (d *deployment) hostYAML(name string) string {
	if y, ok := d.override[name]; ok {
		return y
	}
	s := d.servers[name]
	return fmt.Sprintf("{name: %s, address: 127.0.0.1, ssh: {port: %d, user: %s, key: %s, known_hosts: %s}}", name, s.Port, s.User, s.KeyFile, s.KnownHostsFile)
}

// write (re)writes the inventory file.
func (d *deployment) write() {
	var b strings.Builder
	fmt.Fprintf(&b, "deployment: e2e\ndefaults:\n  ssh: {connect_timeout: 2s}\n  command_timeout: 5s\n  verify_timeout: 3s\nlock:\n  path: %s\nsites:\n", d.lockPath)
	for _, site := range []struct{ name, role, p string }{{"A", "primary", "a"}, {"B", "secondary", "b"}} {
		fmt.Fprintf(&b, "  - name: %s\n    role: %s\n%s    hosts:\n      - %s\n      - %s\n    services:\n", site.name, site.role, d.match[site.name], d.hostYAML(site.p+"-app"), d.hostYAML(site.p+"-rpt"))
		for _, svc := range []struct{ name, kind, group, host, passive string }{
			{"ccm", "ccm", "core", "app", "running"}, {"comms", "comms", "core", "app", "stopped"},
			{"mre", "mre", "core", "app", "stopped"}, {"chat", "chat", "core", "app", "stopped"},
			{"reporting", "reporting", "reporting", "rpt", "stopped"},
		} {
			n := site.p + "-" + svc.name
			fmt.Fprintf(&b, "      - {name: %s, kind: %s, group: %s, host: %s-%s, passive: %s, start: %q, stop: %q, status: %q}\n",
				svc.name, svc.kind, svc.group, site.p, svc.host, svc.passive, d.svc.Cmd("start", n), d.svc.Cmd("stop", n), d.svc.Cmd("status", n))
		}
	}
	b.WriteString(d.extra)
	d.inv = filepath.Join(d.dir, "inventory.yaml")
	if err := os.WriteFile(d.inv, []byte(b.String()), 0o644); err != nil {
		d.t.Fatal(err)
	}
}

type result struct {
	code        cmdutil.ExitCode
	out, errOut string
	took        time.Duration
}

// sitectl runs the CLI in-process with the given stdin (nil: not a terminal).
func (d *deployment) sitectl(ctx context.Context, stdin *string, args ...string) result {
	d.t.Helper()
	io, in, out, errOut := cmdutil.Test()
	if stdin != nil {
		io.SetTTY(true, true)
		in.WriteString(*stdin)
	}
	f := &cmdutil.Factory{
		IO: io, Globals: &cmdutil.Globals{}, Version: "test", Now: time.Now,
		Getenv: func(k string) string {
			if k == "SITECTL_INVENTORY" {
				return d.inv
			}
			return d.env[k]
		},
		Dialer:   remote.NewDialer(remote.Options{}),
		StateDir: func() (string, error) { return d.state, nil },
	}
	start := time.Now()
	code := Execute(ctx, f, args)
	r := result{code: code, out: out.String(), errOut: errOut.String(), took: time.Since(start)}
	if testing.Verbose() {
		d.t.Logf("sitectl %s -> %d (%s)\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, r.took, r.out, r.errOut)
	}
	return r
}

func (d *deployment) running(names ...string) {
	d.t.Helper()
	for _, n := range names {
		if !d.svc.Running(n) {
			d.t.Errorf("%s is not running", n)
		}
	}
}

func (d *deployment) stopped(names ...string) {
	d.t.Helper()
	for _, n := range names {
		if d.svc.Running(n) {
			d.t.Errorf("%s is running", n)
		}
	}
}

// lastRun reads the newest journal.
func (d *deployment) lastRun() journal.Run {
	d.t.Helper()
	runs, err := journal.List(d.state)
	if err != nil || len(runs) == 0 {
		d.t.Fatalf("no journal: %v", err)
	}
	r, err := journal.Read(runs[0].Path)
	if err != nil {
		d.t.Fatal(err)
	}
	return r
}

func TestTakeoverRenounceOverSSH(t *testing.T) {
	d := newDeployment(t)
	r := d.sitectl(t.Context(), nil, "takeover", "--site", "B", "--yes")
	if r.code != 0 {
		t.Fatalf("takeover: exit %d\n%s", r.code, r.errOut)
	}
	d.running("b-ccm", "b-comms", "b-mre", "b-chat")
	d.stopped("a-ccm", "a-comms", "a-mre", "a-chat", "a-reporting", "b-reporting")
	run := d.lastRun()
	if run.Outcome != event.OK || run.Info.Runbook != "takeover" || run.Info.Site != "B" {
		t.Fatalf("journal: outcome %q info %+v", run.Outcome, run.Info)
	}
	for task, o := range run.TaskOutcomes() {
		if o != event.OK {
			t.Errorf("first takeover: %s %s", task, o)
		}
	}
	if !strings.Contains(r.errOut, "only site B is active") {
		t.Errorf("no after-invariant in output:\n%s", r.errOut)
	}

	// twice: the second run does nothing
	r = d.sitectl(t.Context(), nil, "takeover", "--site", "B", "--yes")
	if r.code != 0 {
		t.Fatalf("second takeover: exit %d\n%s", r.code, r.errOut)
	}
	for task, o := range d.lastRun().TaskOutcomes() {
		if o != event.Skipped {
			t.Errorf("second takeover: %s %s, want skipped", task, o)
		}
	}
	for _, line := range strings.Split(r.errOut, "\n") {
		if strings.Contains(line, "start-") && !strings.Contains(line, "skipped") {
			t.Errorf("second takeover did something: %s", line)
		}
	}

	// renouncing the only active site is refused; forced, it runs
	r = d.sitectl(t.Context(), nil, "renounce", "--site", "B", "--yes")
	if r.code != cmdutil.ExitRefused || !strings.Contains(r.errOut, "no site would be active") {
		t.Fatalf("renounce of the only active site: exit %d, want 3\n%s", r.code, r.errOut)
	}
	d.running("b-comms", "b-mre", "b-chat")
	r = d.sitectl(t.Context(), nil, "renounce", "--site", "B", "--yes", "--force", "--reason", "e2e: stand the deployment down")
	if r.code != 0 {
		t.Fatalf("renounce: exit %d\n%s", r.code, r.errOut)
	}
	d.stopped("b-comms", "b-mre", "b-chat")
	d.running("b-ccm")

	// status sees it all, in one table
	r = d.sitectl(t.Context(), nil, "status")
	if r.code != 0 || !strings.Contains(r.out, "b-app") || !strings.Contains(r.out, "no site is active") {
		t.Errorf("status: %d\n%s", r.code, r.out)
	}
}

func TestFailingStartIsReportedAndResumeFinishes(t *testing.T) {
	d := newDeployment(t)
	d.svc.Fail("b-mre", "mre: cannot bind 0.0.0.0:9090: address already in use")
	r := d.sitectl(t.Context(), nil, "takeover", "--site", "B", "--yes")
	if r.code != cmdutil.ExitFailed {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.errOut)
	}
	for _, want := range []string{"FAILED", "b-app/mre", "address already in use", "exited 1", "inspect: ssh -p", "BLOCKED", "sitectl resume "} {
		if !strings.Contains(r.errOut, want) {
			t.Errorf("output lacks %q:\n%s", want, r.errOut)
		}
	}
	d.stopped("b-chat")
	failed := d.lastRun()
	if o := failed.TaskOutcomes()["start-mre/b-app/mre"]; o != event.Failed {
		t.Errorf("journal: mre %s", o)
	}
	var stderr string
	for _, e := range failed.Events {
		if e.Kind == event.StepEnd && e.Service == "mre" {
			stderr = e.Stderr
		}
	}
	if !strings.Contains(stderr, "address already in use") {
		t.Errorf("journal lacks the stderr: %q", stderr)
	}

	// resume refuses while the cause is there, then finishes once fixed
	d.svc.Fix("b-mre")
	r = d.sitectl(t.Context(), nil, "resume", failed.ID(), "--yes")
	if r.code != 0 {
		t.Fatalf("resume: exit %d\n%s", r.code, r.errOut)
	}
	d.running("b-mre", "b-chat")
	res := d.lastRun()
	if res.Info.ResumeOf != failed.ID() || res.Info.Mode != "resume" {
		t.Errorf("resume journal info %+v", res.Info)
	}
	outs := res.TaskOutcomes()
	if outs["start-ccm/b-app/ccm"] != event.Skipped || outs["start-mre/b-app/mre"] != event.OK || outs["start-chat/b-app/chat"] != event.OK {
		t.Errorf("resume outcomes %v", outs)
	}
	// and the report
	r = d.sitectl(t.Context(), nil, "report", res.ID())
	if r.code != 0 || !strings.Contains(r.out, "RTO") {
		t.Errorf("report: %d\n%s", r.code, r.out)
	}
}

// silentListener accepts connections and never says a word: an SSH server
// that hangs in the handshake.
func silentListener(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

func TestUnreachableHostFailsWithinItsDeadline(t *testing.T) {
	d := newDeployment(t)
	s := d.servers["b-rpt"]
	d.override["b-rpt"] = fmt.Sprintf("{name: b-rpt, address: 127.0.0.1, ssh: {port: %d, user: %s, key: %s, known_hosts: %s, connect_timeout: 1s}}", silentListener(t), s.User, s.KeyFile, s.KnownHostsFile)
	d.write()
	r := d.sitectl(t.Context(), nil, "status", "--site", "B")
	// a guard against waiting for the silent host forever, not a timing
	if r.took > time.Minute {
		t.Errorf("status took %s with a 1s connect timeout", r.took)
	}
	// the listener accepts the connection but never speaks SSH: the host
	// answers the network, so it is NO ANSWER (slow), never "down"
	if !strings.Contains(r.out, "b-rpt") || !strings.Contains(r.out, "NO ANSWER") {
		t.Errorf("status does not name the host that does not answer:\n%s", r.out)
	}
	r = d.sitectl(t.Context(), nil, "takeover-reporting", "--site", "B", "--yes")
	if r.code != cmdutil.ExitUnknown && r.code != cmdutil.ExitFailed {
		t.Errorf("exit %d, want unknown (5) or failed (1)", r.code)
	}
	if r.took > 2*time.Minute { // a guard against a hang, not a timing
		t.Errorf("takeover-reporting took %s: the host should fail within its deadline", r.took)
	}
	if !strings.Contains(r.errOut, "b-rpt") || !strings.Contains(r.errOut, "handshake") {
		t.Errorf("output does not name the host and what failed:\n%s", r.errOut)
	}
	run := d.lastRun()
	if o := run.TaskOutcomes()["start-reporting/b-rpt/reporting"]; o.Succeeded() || o == "" {
		t.Errorf("journal: reporting %q", o)
	}
}

func TestUnknownHostKeyIsRefused(t *testing.T) {
	d := newDeployment(t)
	s := d.servers["b-app"]
	empty := filepath.Join(d.dir, "empty_known_hosts")
	os.WriteFile(empty, nil, 0o644)
	d.override["b-app"] = fmt.Sprintf("{name: b-app, address: 127.0.0.1, ssh: {port: %d, user: %s, key: %s, known_hosts: %s}}", s.Port, s.User, s.KeyFile, empty)
	d.write()
	r := d.sitectl(t.Context(), nil, "status", "--site", "B")
	for _, want := range []string{"b-app", "ACCESS PROBLEM", "ssh-ed25519", "add this line to"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("status lacks %q:\n%s", want, r.out)
		}
	}
	// what cannot be told is never a success: exit 5, for the site and
	// for the whole deployment's verdict
	if r.code != cmdutil.ExitUnknown {
		t.Errorf("status --site B with b-app's key unknown: exit %d, want 5", r.code)
	}
	if r = d.sitectl(t.Context(), nil, "status"); r.code != cmdutil.ExitUnknown || !strings.Contains(r.out, "UNKNOWN") {
		t.Errorf("status with b-app's key unknown: exit %d, want 5 and an UNKNOWN verdict:\n%s", r.code, r.out)
	}
	r = d.sitectl(t.Context(), nil, "takeover", "--site", "B", "--yes")
	if r.code == 0 {
		t.Fatal("takeover ran against a host whose key is unknown")
	}
	d.stopped("b-ccm", "b-comms", "b-mre", "b-chat")
}

func TestTakeoverRefusedWhileTheOtherSiteServes(t *testing.T) {
	d := newDeployment(t)
	for _, n := range []string{"a-ccm", "a-comms", "a-mre", "a-chat"} {
		d.svc.Start(n)
	}
	r := d.sitectl(t.Context(), nil, "takeover", "--site", "B", "--yes")
	if r.code != cmdutil.ExitRefused {
		t.Fatalf("exit %d, want 3\n%s", r.code, r.errOut)
	}
	for _, want := range []string{"site A is reachable and still active", "sitectl renounce --site A", "sitectl switchover --site B"} {
		if !strings.Contains(r.errOut, want) {
			t.Errorf("refusal lacks %q:\n%s", want, r.errOut)
		}
	}
	d.stopped("b-ccm", "b-comms", "b-mre", "b-chat")
	if o := d.lastRun().Outcome; o != event.Refused {
		t.Errorf("journal outcome %q, want refused", o)
	}
	r = d.sitectl(t.Context(), nil, "takeover", "--site", "B", "--yes", "--force")
	if r.code != cmdutil.ExitUsage {
		t.Errorf("--force without --reason: exit %d, want 2", r.code)
	}
	// forced: it runs, and the invariant check after the run catches the split
	r = d.sitectl(t.Context(), nil, "takeover", "--site", "B", "--yes", "--force", "--reason", "drill: A is being fenced")
	if r.code != cmdutil.ExitFailed || !strings.Contains(r.errOut, "SPLIT") {
		t.Errorf("forced takeover with A still active: exit %d, want 1 with SPLIT\n%s", r.code, r.errOut)
	}
	run := d.lastRun()
	found := false
	for _, e := range run.Events {
		if strings.Contains(e.Message, "drill: A is being fenced") {
			found = true
		}
	}
	if !found || run.Info.Reason != "drill: A is being fenced" {
		t.Errorf("the --force reason is not journaled")
	}
	// switchover is the supported way
	d.sitectl(t.Context(), nil, "renounce", "--site", "B", "--yes")
	r = d.sitectl(t.Context(), nil, "switchover", "--site", "B", "--yes")
	if r.code != 0 {
		t.Fatalf("switchover: %d\n%s", r.code, r.errOut)
	}
	d.stopped("a-comms", "a-mre", "a-chat")
	d.running("b-comms", "b-mre", "b-chat")
}

func TestConfirmation(t *testing.T) {
	d := newDeployment(t)
	r := d.sitectl(t.Context(), nil, "takeover", "--site", "B")
	if r.code != cmdutil.ExitUsage || !strings.Contains(r.errOut, "--yes required") {
		t.Errorf("without a terminal and without --yes: exit %d\n%s", r.code, r.errOut)
	}
	wrong := "A\n"
	r = d.sitectl(t.Context(), &wrong, "takeover", "--site", "B")
	if r.code != cmdutil.ExitRefused || !strings.Contains(r.errOut, "Type the site name (B) to confirm") {
		t.Errorf("typed the wrong site: exit %d\n%s", r.code, r.errOut)
	}
	if !strings.Contains(r.errOut, "SITE") || !strings.Contains(r.errOut, "a-app") {
		t.Errorf("the before-state of both sites is not shown:\n%s", r.errOut)
	}
	d.stopped("b-comms")
	right := "B\n"
	r = d.sitectl(t.Context(), &right, "takeover", "--site", "B")
	if r.code != 0 {
		t.Fatalf("confirmed takeover: exit %d\n%s", r.code, r.errOut)
	}
	d.running("b-chat")
}

func TestLockRefusesASecondRun(t *testing.T) {
	d := newDeployment(t)
	// another machine holds the lock on site B's first host (all test
	// hosts share this file system: every lock host sees it, a-app first)
	other := runlock.Holder{RunID: "20261122T010000Z-abcdef", User: "alice", Hostname: "ops-laptop", PID: 4242, Command: "sitectl takeover --site B", Since: time.Now().Add(-time.Minute)}
	r0, err := remote.NewDialer(remote.Options{}).Dial(t.Context(), d.servers["b-app"].Target("b-app"))
	if err != nil {
		t.Fatal(err)
	}
	defer r0.Close()
	rl, err := runlock.AcquireRemote(t.Context(), r0, "b-app", d.lockPath, other)
	if err != nil {
		t.Fatal(err)
	}
	r := d.sitectl(t.Context(), nil, "takeover", "--site", "B", "--yes")
	if r.code != cmdutil.ExitLockHeld {
		t.Fatalf("exit %d, want 4\n%s", r.code, r.errOut)
	}
	for _, want := range []string{"alice", "ops-laptop", "a-app:" + d.lockPath} {
		if !strings.Contains(r.errOut, want) {
			t.Errorf("lock message lacks %q:\n%s", want, r.errOut)
		}
	}
	d.stopped("b-ccm")
	rl.Release(t.Context())

	// a concurrent run from this machine: the second is refused while the first runs
	d.svc.Delay("b-comms", 3*time.Second)
	done := make(chan result, 1)
	go func() { done <- d.sitectl(t.Context(), nil, "takeover", "--site", "B", "--yes") }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := runlock.ReadLocal(d.state, "e2e"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	r = d.sitectl(t.Context(), nil, "renounce", "--site", "B", "--yes")
	if r.code != cmdutil.ExitLockHeld {
		t.Errorf("concurrent renounce: exit %d, want 4\n%s", r.code, r.errOut)
	}
	if first := <-done; first.code != 0 {
		t.Errorf("first run: exit %d\n%s", first.code, first.errOut)
	}
	d.running("b-chat")
	if _, err := runlock.ReadLocal(d.state, "e2e"); err == nil {
		t.Error("the lock is still held after the run ended")
	}
}

// The binary is needed to kill sitectl for real.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sitectl")
	out, err := exec.Command("go", "build", "-o", bin, "../sitectl").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func (d *deployment) command(bin string, args ...string) *exec.Cmd {
	c := exec.Command(bin, args...)
	c.Env = append(os.Environ(), "SITECTL_INVENTORY="+d.inv, "SITECTL_STATE_DIR="+d.state)
	return c
}

// waitJournal waits until the newest journal has an event matching ok.
func (d *deployment) waitJournal(ok func(event.Event) bool) string {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if runs, err := journal.List(d.state); err == nil && len(runs) > 0 {
			if r, err := journal.Read(runs[0].Path); err == nil {
				for _, e := range r.Events {
					if ok(e) {
						return r.ID()
					}
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.t.Fatal("the journal never showed the awaited event")
	return ""
}

func TestSIGKILLMidRunThenResume(t *testing.T) {
	d := newDeployment(t)
	bin := buildBinary(t)
	d.svc.Delay("b-mre", 30*time.Second)
	c := d.command(bin, "takeover", "--site", "B", "--yes")
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	id := d.waitJournal(func(e event.Event) bool {
		return e.Kind == event.StepAct && e.Service == "mre" || e.Kind == event.StepStart && e.Service == "mre"
	})
	c.Process.Signal(syscall.SIGKILL)
	c.Wait()
	run, err := journal.Read(journal.Path(d.state, id))
	if err != nil {
		t.Fatalf("journal after SIGKILL: %v", err)
	}
	if !run.Interrupted() || run.TaskOutcomes()["start-comms/b-app/comms"] != event.OK {
		t.Fatalf("journal after SIGKILL: interrupted=%v outcomes %v", run.Interrupted(), run.TaskOutcomes())
	}
	// the dead run still holds the lock: a new run is refused, resume takes it over
	r := d.sitectl(t.Context(), nil, "takeover", "--site", "B", "--yes")
	if r.code != cmdutil.ExitLockHeld {
		t.Errorf("new run while the dead one holds the lock: exit %d, want 4\n%s", r.code, r.errOut)
	}
	d.svc.Delay("b-mre", 0)
	out, err := d.command(bin, "resume", id, "--yes").CombinedOutput()
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "took over the lock") {
		t.Errorf("resume did not say it took over the lock:\n%s", out)
	}
	journaled := false
	for _, e := range d.lastRun().Events {
		if e.Kind == event.Lock && strings.Contains(e.Message, "took over the lock") && strings.Contains(e.Message, "left by run "+id) {
			journaled = true
		}
	}
	if !journaled {
		t.Error("the resume's journal does not record the stale lock it took over and its holder")
	}
	// the killed run's start of mre was in flight: resume names it and waits
	// for the host's deadline (command_timeout 5s + 2s) before acting again
	for _, want := range []string{"1 step(s) in flight", "start-mre/b-app/mre on b-app: its command may still be running there until", "waiting "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("resume output lacks %q:\n%s", want, out)
		}
	}
	d.running("b-ccm", "b-comms", "b-mre", "b-chat")
}

func TestCtrlCCancelsReleasesAndPrintsResume(t *testing.T) {
	d := newDeployment(t)
	bin := buildBinary(t)
	d.svc.Delay("b-comms", 10*time.Minute)
	c := d.command(bin, "takeover", "--site", "B", "--yes")
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	d.waitJournal(func(e event.Event) bool {
		return e.Kind == event.StepAct || e.Kind == event.StepStart && e.Service == "comms"
	})
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	c.Process.Signal(os.Interrupt)
	err := c.Wait()
	// the start being interrupted takes 10 minutes: a guard far below
	// that shows Ctrl-C ended it, with no timing asserted
	if took := time.Since(start); took > 2*time.Minute {
		t.Errorf("Ctrl-C took %s: the run waited for the start it should have ended", took)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Errorf("exit %v, want 130\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "sitectl resume ") {
		t.Errorf("no resume command printed:\n%s", stderr.String())
	}
	run := d.lastRun()
	if run.Outcome != event.Cancelled || run.TaskOutcomes()["start-comms/b-app/comms"] != event.Cancelled {
		t.Errorf("journal: %s %v", run.Outcome, run.TaskOutcomes())
	}
	if _, err := runlock.ReadLocal(d.state, "e2e"); err == nil {
		t.Error("lock still held after Ctrl-C")
	}
}

// watchRun is a `status --watch` running against d: what it printed, and
// how to stop it and read its exit code.
type watchRun struct {
	out    *syncBuffer
	errOut fmt.Stringer
	cancel context.CancelFunc
	done   chan cmdutil.ExitCode
}

// startWatch runs `sitectl status --watch --interval interval` against d
// until the test cancels it (or ends).
func startWatch(t *testing.T, d *deployment, interval string) *watchRun {
	t.Helper()
	ios, _, _, errOut := cmdutil.Test()
	w := &watchRun{out: &syncBuffer{}, errOut: errOut, done: make(chan cmdutil.ExitCode, 1)}
	ios.Out = w.out
	f := &cmdutil.Factory{
		IO: ios, Globals: &cmdutil.Globals{}, Version: "test", Now: time.Now,
		Getenv:   func(k string) string { return map[string]string{"SITECTL_INVENTORY": d.inv}[k] },
		Dialer:   remote.NewDialer(remote.Options{}),
		StateDir: func() (string, error) { return d.state, nil },
	}
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	w.cancel = cancel
	go func() { w.done <- Execute(ctx, f, []string{"status", "--watch", "--interval", interval}) }()
	return w
}

// status --watch reprints the status every interval (separated frames when
// stdout is not a terminal), shows a change between frames, and ends
// normally (exit 0) on Ctrl-C. The test synchronises on the frames it reads
// (never on how many fit in some wall-clock time): a frame before the
// change, the change, then a frame that shows it, then Ctrl-C.
func TestStatusWatchRefreshesUntilCancelled(t *testing.T) {
	d := newDeployment(t)
	w := startWatch(t, d, "150ms")
	out, errOut, cancel, done := w.out, w.errOut, w.cancel, w.done

	chatLine := func(frame string) string {
		for _, l := range strings.Split(frame, "\n") {
			if strings.Contains(l, "b-app") && strings.Contains(l, "chat") {
				return l
			}
		}
		return ""
	}
	// frames are complete once the next separator follows them
	complete := func(s string) []string {
		fr := strings.Split(s, "--- ")[1:]
		if len(fr) == 0 {
			return nil
		}
		return fr[:len(fr)-1]
	}
	waitFor := func(what string, ok func(frames []string) bool) []string {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second) // a bound on a hang, not a rate
		for {
			fr := complete(out.String())
			if ok(fr) {
				return fr
			}
			if time.Now().After(deadline) {
				t.Fatalf("status --watch: %s never came:\n%s%s", what, out.String(), errOut.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	before := waitFor("a first complete frame", func(fr []string) bool { return len(fr) >= 1 })
	first := chatLine(before[0])
	if first == "" || strings.Contains(first, "running") {
		t.Fatalf("first frame's b-app chat line %q, want it stopped", first)
	}
	n := len(before)
	d.svc.Start("b-chat")
	after := waitFor("a frame showing b-chat running", func(fr []string) bool {
		return len(fr) > n && strings.Contains(chatLine(fr[len(fr)-1]), "running")
	})
	cancel() // Ctrl-C
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("status --watch ended with exit %d, want 0 on Ctrl-C\n%s", code, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("status --watch did not end on Ctrl-C")
	}
	if strings.Contains(out.String(), "\x1b[") {
		t.Error("cursor escapes written to a stdout that is not a terminal")
	}
	if last := chatLine(after[len(after)-1]); last == first {
		t.Errorf("b-app chat did not change between the first and last frame: %q", last)
	}
}

// resume and report read the run's runbook again: once it has changed,
// resume refuses (exit 3) and says how to start anew; report says why it
// cannot give the critical path.
func TestResumeRefusesAChangedRunbook(t *testing.T) {
	d := newDeployment(t)
	rbFile := filepath.Join(t.TempDir(), "mine.yaml")
	write := func(desc string) {
		t.Helper()
		body := "name: mine\ndescription: " + desc + "\nscope: reporting\neffect: none\nsteps:\n  - name: start-reporting\n    action: start\n    select: {group: reporting}\n"
		if err := os.WriteFile(rbFile, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("start reporting")
	r := d.sitectl(t.Context(), nil, "--runbooks", rbFile, "run", "mine", "--site", "B", "--yes")
	if r.code != 0 {
		t.Fatalf("run mine: exit %d\n%s", r.code, r.errOut)
	}
	runs, err := journal.List(d.state)
	if err != nil || len(runs) == 0 {
		t.Fatalf("no journal: %v", err)
	}
	id := runs[0].ID
	if rep := d.sitectl(t.Context(), nil, "--runbooks", rbFile, "report", id); !strings.Contains(rep.out, "| critical path: start-reporting |") {
		t.Errorf("report of the unchanged runbook lacks its critical path:\n%s", rep.out)
	}
	write("start reporting, changed")
	r = d.sitectl(t.Context(), nil, "--runbooks", rbFile, "resume", id, "--yes")
	if r.code != cmdutil.ExitRefused || !strings.Contains(r.errOut, "changed since run "+id) || !strings.Contains(r.errOut, "start a new run instead: sitectl mine --site B") {
		t.Errorf("resume of a changed runbook: exit %d, want 3 saying it changed\n%s", r.code, r.errOut)
	}
	if rep := d.sitectl(t.Context(), nil, "--runbooks", rbFile, "report", id); !strings.Contains(rep.out, "The critical path is not computed: runbook mine changed since run") {
		t.Errorf("report of a changed runbook does not say why there is no critical path:\n%s", rep.out)
	}
}

// A move made from another machine (another state directory, so another
// journal) is seen through the lock hosts: a switchover back within the
// cooldown is refused there too; the same move again is not a flap.
func TestCooldownSeesAMoveFromAnotherMachine(t *testing.T) {
	d := newDeployment(t)
	if r := d.sitectl(t.Context(), nil, "takeover", "--site", "B", "--yes"); r.code != 0 {
		t.Fatalf("takeover B: exit %d\n%s", r.code, r.errOut)
	}
	if b, err := os.ReadFile(d.lockPath + ".last"); err != nil || !strings.Contains(string(b), `"site":"B"`) {
		t.Fatalf("the move is not kept next to the lock: %q %v", b, err)
	}
	d.state = filepath.Join(d.dir, "other-machine-state") // an empty journal
	r := d.sitectl(t.Context(), nil, "switchover", "--site", "A", "--yes")
	if r.code != cmdutil.ExitRefused || !strings.Contains(r.errOut, "cooldown") || !strings.Contains(r.errOut, "recorded on the lock hosts") {
		t.Fatalf("switchover A from another machine within the cooldown: exit %d, want 3 naming the cooldown\n%s", r.code, r.errOut)
	}
	d.running("b-chat")
	if r := d.sitectl(t.Context(), nil, "takeover", "--site", "B", "--yes"); r.code != 0 {
		t.Fatalf("the same move again (restarts what stopped) was refused: exit %d\n%s", r.code, r.errOut)
	}
}

// status --watch keeps its connections across refreshes: after several
// frames, each host's sshd has accepted exactly one login (a refresh is
// one command over a warm connection, not a new handshake).
func TestStatusWatchReusesConnections(t *testing.T) {
	d := newDeployment(t)
	w := startWatch(t, d, "50ms")
	out, errOut, cancel, done := w.out, w.errOut, w.cancel, w.done
	const frames = 4
	deadline := time.Now().Add(60 * time.Second) // a bound on a hang, not a rate
	for strings.Count(out.String(), "--- ") <= frames {
		if time.Now().After(deadline) {
			t.Fatalf("status --watch: %d frames never came:\n%s%s", frames, out.String(), errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("status --watch ended with exit %d\n%s", code, errOut.String())
	}
	for name, srv := range d.servers {
		if n := strings.Count(srv.Log(), "Accepted publickey"); n != 1 {
			t.Errorf("%s: sshd accepted %d logins over %d refreshes, want 1 (one warm connection)", name, n, frames)
		}
	}
}
