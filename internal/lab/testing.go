package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Lab is the lab as a test (a drill) uses it: Up brings it up, its methods
// fail the test on error, and it is taken down (or, under Main, put back in
// its initial state for the next test) when the test ends. Env gives the
// error-returning methods.
type Lab struct {
	Env       *Env
	Inventory string // the lab's inventory file: pass it to sitectl
	t         testing.TB
}

// Require skips the test when the lab cannot run here (not root, a tool
// missing), and fails it instead when the CI environment variable is set:
// a lane that could not run is never reported green.
func Require(t testing.TB) {
	t.Helper()
	missing := Requirements()
	if len(missing) == 0 {
		return
	}
	msg := "the lab cannot run here, missing: " + strings.Join(missing, "; ") + " (as root: bash scripts/install-test-deps.sh)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set: a lab lane that cannot run is a failure, not a skip)")
	}
	t.Skip(msg)
}

// shared is the lab kept across a package's tests by Main.
var shared struct {
	enabled bool
	mu      sync.Mutex // one test at a time uses the lab
	env     *Env
	unlock  func()
}

// Main runs a package's tests with ONE lab shared by all of them (brought up
// by the first Up, reset by each later Up, taken down at the end), which
// saves a bring-up per test. Call it from TestMain:
//
//	func TestMain(m *testing.M) { lab.Main(m) }
//
// Tests that use the lab must not run in parallel with each other (Up
// serialises them).
func Main(m *testing.M) {
	shared.enabled = true
	code := m.Run()
	if shared.env != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if err := shared.env.Down(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "lab: down:", err)
			if code == 0 {
				code = 1
			}
		}
		cancel()
		_ = os.RemoveAll(shared.env.Dir)
		shared.unlock()
	}
	os.Exit(code)
}

type tlog struct{ t testing.TB }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Up brings the lab up for this test (site A active, site B passive, every
// layer settled) and returns it; its timings go to the test log. It takes
// the machine-wide lab lock first (a lab of another package's test binary
// is waited for; a lab left by `scripts/lab up` or a crashed test is taken
// down). Without Main, the lab is taken down when the test ends.
func Up(t testing.TB) *Lab {
	t.Helper()
	Require(t)
	ctx := context.Background()
	if shared.enabled {
		shared.mu.Lock()
		t.Cleanup(shared.mu.Unlock)
		if shared.env != nil {
			shared.env.Out = tlog{t}
			t.Cleanup(func() { shared.env.Out = nil })
			if err := shared.env.Reset(ctx); err != nil {
				t.Fatalf("lab reset: %v", err)
			}
			return &Lab{Env: shared.env, Inventory: shared.env.InventoryFile(), t: t}
		}
	}
	lockCtx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	start := time.Now()
	unlock, err := Lock(lockCtx)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Logf("lab: waited %.1fs for the lab lock", d.Seconds())
	}
	dir, err := os.MkdirTemp("", "sitectl-lab-")
	if err != nil {
		unlock()
		t.Fatal(err)
	}
	e, err := Open(dir)
	if err != nil {
		unlock()
		t.Fatal(err)
	}
	e.Out = tlog{t}
	down := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		e.Out = nil
		if err := e.Down(ctx); err != nil {
			t.Errorf("lab down: %v", err)
		}
		_ = os.RemoveAll(dir)
		unlock()
	}
	if shared.enabled {
		shared.env, shared.unlock = e, unlock
		t.Cleanup(func() { e.Out = nil })
	} else {
		t.Cleanup(down)
	}
	if err := e.Up(ctx, UpOptions{Replace: true}); err != nil {
		t.Logf("lab logs:\n%s", e.logTails())
		t.Fatalf("lab up: %v", err)
	}
	return &Lab{Env: e, Inventory: e.InventoryFile(), t: t}
}

// logTails returns the end of every daemon's log (for a failed bring-up).
func (e *Env) logTails() string {
	var b strings.Builder
	logs, _ := filepath.Glob(filepath.Join(e.Dir, "*", "*", "*.log"))
	more, _ := filepath.Glob(filepath.Join(e.Dir, "*", "*.log"))
	logs = append(logs, more...)
	svc, _ := filepath.Glob(filepath.Join(e.Dir, "nodes", "*", "svc", "*", "log"))
	logs = append(logs, svc...)
	for _, l := range logs {
		fmt.Fprintf(&b, "==> %s <==\n%s\n", l, tail(l, 15))
	}
	return b.String()
}

func (l *Lab) check(err error) {
	l.t.Helper()
	if err != nil {
		l.t.Fatal(err)
	}
}

func (l *Lab) ctx() context.Context {
	if tt, ok := l.t.(interface{ Context() context.Context }); ok {
		return tt.Context()
	}
	return context.Background()
}

// Fail cuts a node (A, B, W or EDGE) off the network.
func (l *Lab) Fail(key string) { l.t.Helper(); l.check(l.Env.Fail(l.ctx(), key)) }

// Heal reconnects it.
func (l *Lab) Heal(key string) { l.t.Helper(); l.check(l.Env.Heal(l.ctx(), key)) }

// CutOperatorPath cuts only sitectl's path to node key (see Env).
func (l *Lab) CutOperatorPath(key string) {
	l.t.Helper()
	if why := NFTMissing(); why != "" {
		l.t.Skip(why)
	}
	l.check(l.Env.CutOperatorPath(l.ctx(), key))
}

// HealOperatorPaths undoes every CutOperatorPath.
func (l *Lab) HealOperatorPaths() { l.t.Helper(); l.check(l.Env.HealOperatorPaths(l.ctx())) }

// KillService SIGKILLs a stand-in on a site (a crash).
func (l *Lab) KillService(site, svc string) { l.t.Helper(); l.check(l.Env.KillService(site, svc)) }

// StartService and StopService run its start / stop script.
func (l *Lab) StartService(site, svc string) {
	l.t.Helper()
	l.check(l.Env.StartService(l.ctx(), site, svc))
}

func (l *Lab) StopService(site, svc string) {
	l.t.Helper()
	l.check(l.Env.StopService(l.ctx(), site, svc))
}

// ServiceRunning runs its status script.
func (l *Lab) ServiceRunning(site, svc string) bool {
	l.t.Helper()
	ok, err := l.Env.ServiceRunning(l.ctx(), site, svc)
	l.check(err)
	return ok
}

// FailStart makes the service's start script fail with msg; FixStart undoes it.
func (l *Lab) FailStart(site, svc, msg string) {
	l.t.Helper()
	l.check(l.Env.FailStart(site, svc, msg))
}
func (l *Lab) FixStart(site, svc string) { l.t.Helper(); l.check(l.Env.FixStart(site, svc)) }

// StopBroker stops a site's broker; StartBroker starts it again (and waits
// for the bridge when the other side is up).
func (l *Lab) StopBroker(site string) { l.t.Helper(); l.check(l.Env.StopBroker(site)) }
func (l *Lab) StartBroker(site string) {
	l.t.Helper()
	l.check(l.Env.StartBroker(l.ctx(), site))
}

// CutBrokerLink drops the brokers' network-connector traffic between the
// sites; HealBrokerLink restores it and waits for the bridge.
// Without nft the test is skipped (failed under CI).
func (l *Lab) CutBrokerLink() {
	l.t.Helper()
	if why := NFTMissing(); why != "" {
		if os.Getenv("CI") != "" {
			l.t.Fatal(why + " (CI is set)")
		}
		l.t.Skip(why)
	}
	l.check(l.Env.CutBrokerLink(l.ctx()))
}

func (l *Lab) HealBrokerLink() { l.t.Helper(); l.check(l.Env.HealBrokerLink(l.ctx())) }

// CutMongoLink cuts node key's MongoDB member off the other members (rows
// 5 and 6 of seed 003); sitectl still reaches it.
func (l *Lab) CutMongoLink(key string) {
	l.t.Helper()
	l.requireMongo()
	if why := NFTMissing(); why != "" {
		if os.Getenv("CI") != "" {
			l.t.Fatal(why + " (CI is set)")
		}
		l.t.Skip(why)
	}
	l.check(l.Env.CutMongoLink(l.ctx(), key))
}

func (l *Lab) HealMongoLinks() {
	l.t.Helper()
	l.check(l.Env.HealMongoLinks(l.ctx()))
}

// StopMongo stops a MongoDB member (A, B or W); StartMongo starts it again.
func (l *Lab) StopMongo(key string) {
	l.t.Helper()
	l.requireMongo()
	l.check(l.Env.StopMongo(key))
}

func (l *Lab) StartMongo(key string) {
	l.t.Helper()
	l.requireMongo()
	l.check(l.Env.StartMongo(l.ctx(), key))
}

// MongoState is what a member (A, B or W) says of itself.
func (l *Lab) MongoState(key string) (MemberState, error) {
	l.t.Helper()
	l.requireMongo()
	return l.Env.MongoState(l.ctx(), key)
}

// WaitPrimary waits until the member of site key (A or B) is primary.
func (l *Lab) WaitPrimary(key string, limit time.Duration) {
	l.t.Helper()
	l.requireMongo()
	l.check(l.Env.waitPrimary(l.ctx(), key, limit))
}

// requireMongo skips (fails under CI) a test that needs MongoDB in a lab
// that has none.
func (l *Lab) requireMongo() {
	l.t.Helper()
	if l.Env.MongoMode() != MongoAbsent {
		return
	}
	msg := "this lab runs no MongoDB (no mongod on PATH, no cmd/mongosim)"
	if os.Getenv("CI") != "" {
		l.t.Fatal(msg)
	}
	l.t.Skip(msg)
}

// Reset puts the lab back in its initial state (see Env.Reset).
func (l *Lab) Reset() { l.t.Helper(); l.check(l.Env.Reset(l.ctx())) }

// Sessions is the number of chat sessions open on a site's chat stand-in.
func (l *Lab) Sessions(site string) int {
	l.t.Helper()
	n, err := l.Env.Sessions(l.ctx(), site)
	l.check(err)
	return n
}

// HAProxySessions is HAProxy's scur for a site's chat server.
func (l *Lab) HAProxySessions(site string) int {
	l.t.Helper()
	n, err := HAProxySessions("chat", site)
	l.check(err)
	return n
}

// CloseSessions ends n (n < 0: all) of a site's sessions, as chats that
// finish.
func (l *Lab) CloseSessions(site string, n int) int {
	l.t.Helper()
	c, err := l.Env.CloseSessions(l.ctx(), site, n)
	l.check(err)
	return c
}

// OpenSessions holds n chat sessions through HAProxy until the test ends
// (or Close).
func (l *Lab) OpenSessions(n int, reconnect bool) *SessionSet {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(l.ctx(), 10*time.Second)
	defer cancel()
	s, err := OpenSessions(ctx, n, reconnect)
	l.check(err)
	l.t.Cleanup(s.Close)
	return s
}

// Servers is HAProxy's view of the lab's servers.
func (l *Lab) Servers() []ServerStat {
	l.t.Helper()
	s, err := HAProxyServers()
	l.check(err)
	return s
}

// Connector is the state of a site's ActiveMQ connector.
func (l *Lab) Connector(site string) ConnectorState {
	l.t.Helper()
	c, err := l.Env.Connector(l.ctx(), site)
	l.check(err)
	return c
}

// Send puts n messages on the watched queue of a site's broker.
func (l *Lab) Send(site string, n int) { l.t.Helper(); l.check(Send(l.ctx(), site, n)) }

// Sitectl runs sitectl (built from ./cmd/sitectl into the lab's state
// directory the first time) against the lab's inventory, with its journals
// in the lab's state directory, and returns its combined output and exit
// code.
func (l *Lab) Sitectl(args ...string) (string, int) {
	l.t.Helper()
	bin := filepath.Join(l.Env.Dir, "bin", "sitectl")
	if !fileExists(bin) {
		l.check(l.Env.build(l.ctx(), "./cmd/sitectl", bin))
	}
	cmd := exec.CommandContext(l.ctx(), bin, args...)
	cmd.Env = append(os.Environ(), "SITECTL_INVENTORY="+l.Inventory,
		"SITECTL_STATE_DIR="+filepath.Join(l.Env.Dir, "sitectl-state"), "NO_COLOR=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		l.t.Fatalf("sitectl %s: %v", strings.Join(args, " "), err)
	}
	l.t.Logf("$ sitectl %s  (exit %d)\n%s", strings.Join(args, " "), code, out.String())
	return out.String(), code
}
