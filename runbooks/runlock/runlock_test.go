package runlock

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
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
)

// shRunner is a remote.Runner that runs commands with sh -c on this machine:
// a real shell, as on a deployment host.
type shRunner struct{ calls atomic.Int64 }

func (r *shRunner) Run(ctx context.Context, cmd string) (remote.Result, error) {
	r.calls.Add(1)
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	start := time.Now()
	err := c.Run()
	res := remote.Result{Command: cmd, Stdout: out.Bytes(), Stderr: errb.Bytes(), Duration: time.Since(start)}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		res.ExitCode = ee.ExitCode()
		return res, nil
	}
	return res, err
}

func (r *shRunner) Close() error { return nil }

// downRunner is an unreachable host.
type downRunner struct{}

func (downRunner) Run(ctx context.Context, cmd string) (remote.Result, error) {
	return remote.Result{}, &remote.HostError{Host: "db1", Addr: "10.0.0.9:22", Op: "dial", Err: errors.New("connection refused")}
}
func (downRunner) Close() error { return nil }

func hostname(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func holder(t *testing.T, run string) Holder {
	h := NewHolder(run, "sitectl takeover --site b")
	if h.Hostname != hostname(t) || h.PID != os.Getpid() || h.User == "" || h.Since.IsZero() {
		t.Fatalf("NewHolder = %+v", h)
	}
	return h
}

func TestLocalPath(t *testing.T) {
	p, err := LocalPath("/state", "cc-prod")
	if err != nil || p != "/state/locks/cc-prod.lock" {
		t.Fatalf("%q %v", p, err)
	}
	for _, bad := range []string{"", ".", "..", "a/b", "../x", "a\x00", `a\b`} {
		if _, err := LocalPath("/state", bad); err == nil {
			t.Errorf("LocalPath(%q) accepted", bad)
		}
		if _, err := AcquireLocal(t.TempDir(), bad, Holder{RunID: "r"}); err == nil {
			t.Errorf("AcquireLocal(%q) accepted", bad)
		}
	}
	if _, err := AcquireLocal(t.TempDir(), "d", Holder{}); err == nil {
		t.Error("holder without run id accepted")
	}
}

func TestAcquireLocalRace(t *testing.T) {
	for round := 0; round < 10; round++ {
		dir := t.TempDir()
		const N = 20
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			winners atomic.Int64
			mu      sync.Mutex
			held    []*HeldError
			won     Holder
		)
		for i := 0; i < N; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := Holder{RunID: fmt.Sprintf("run-%d", i), User: "op", Hostname: "ops", PID: 1000 + i, Command: "takeover"}
				<-start
				l, err := AcquireLocal(dir, "cc-prod", h)
				mu.Lock()
				defer mu.Unlock()
				var he *HeldError
				switch {
				case err == nil:
					winners.Add(1)
					won = l.Holder()
				case errors.As(err, &he):
					held = append(held, he)
				default:
					t.Errorf("AcquireLocal: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if winners.Load() != 1 || len(held) != N-1 {
			t.Fatalf("round %d: %d winners, %d held", round, winners.Load(), len(held))
		}
		// Every loser saw the whole record of the winner, never a half-written file.
		for _, he := range held {
			if he.Holder.RunID != won.RunID || he.Holder.PID != won.PID || he.Stale {
				t.Fatalf("loser saw %+v, winner %+v", he.Holder, won)
			}
		}
		// No temporary files left behind.
		entries, _ := os.ReadDir(LocksDir(dir))
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".tmp-") {
				t.Fatalf("leftover %s", e.Name())
			}
		}
	}
}

func TestHeldErrorContents(t *testing.T) {
	dir := t.TempDir()
	since := time.Now().Add(-90 * time.Minute).UTC().Truncate(time.Second)
	h := Holder{RunID: "20261122T063000Z-3f9a1c", User: "alice", Hostname: "ops-laptop-7", PID: 31337,
		Command: `sitectl takeover --site b --reason "db failover"`, Since: since}
	if _, err := AcquireLocal(dir, "cc-prod", h); err != nil {
		t.Fatal(err)
	}
	_, err := AcquireLocal(dir, "cc-prod", Holder{RunID: "other"})
	var he *HeldError
	if !errors.As(err, &he) || !errors.Is(err, ErrHeld) {
		t.Fatalf("err = %v", err)
	}
	p, _ := LocalPath(dir, "cc-prod")
	if he.Holder != h || he.Where != p || he.Stale {
		t.Fatalf("HeldError %+v", he)
	}
	msg := err.Error()
	for _, want := range []string{"20261122T063000Z-3f9a1c", "alice", "ops-laptop-7", "pid 31337",
		since.Format(time.RFC3339), "1h30m", `"sitectl takeover --site b --reason \"db failover\""`, p,
		`sitectl unlock --reason "..."`} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	// ReadLocal inspects without taking.
	got, err := ReadLocal(dir, "cc-prod")
	if err != nil || got != h {
		t.Fatalf("ReadLocal = %+v, %v", got, err)
	}
	if _, err := ReadLocal(dir, "other"); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("ReadLocal(free) = %v", err)
	}
	// An unreadable lock file is still a held lock.
	os.WriteFile(filepath.Join(LocksDir(dir), "junk.lock"), []byte("not json"), 0o644)
	_, err = AcquireLocal(dir, "junk", Holder{RunID: "r"})
	if !errors.As(err, &he) || he.Holder.RunID != "" || he.Detail == "" || !strings.Contains(err.Error(), "holder is unknown") {
		t.Fatalf("junk lock: %v", err)
	}
	if _, err := ReadLocal(dir, "junk"); err == nil || errors.Is(err, ErrNotLocked) {
		t.Fatalf("ReadLocal(junk) = %v", err)
	}
}

func TestStaleDetection(t *testing.T) {
	host, dead := hostname(t), deadPID(t)
	tests := []struct {
		name  string
		h     Holder
		stale bool
	}{
		{"dead pid on this machine", Holder{RunID: "r", Hostname: host, PID: dead}, true},
		{"live pid on this machine", Holder{RunID: "r", Hostname: host, PID: os.Getpid()}, false},
		{"pid 1 (another user's, alive)", Holder{RunID: "r", Hostname: host, PID: 1}, false},
		{"dead pid on another machine", Holder{RunID: "r", Hostname: host + "-other", PID: dead}, false},
		{"no pid", Holder{RunID: "r", Hostname: host}, false},
		{"no hostname", Holder{RunID: "r", PID: dead}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsStale(tc.h); got != tc.stale {
				t.Fatalf("IsStale = %v", got)
			}
			dir := t.TempDir()
			if _, err := AcquireLocal(dir, "d", tc.h); err != nil {
				t.Fatal(err)
			}
			_, err := AcquireLocal(dir, "d", Holder{RunID: "new"})
			var he *HeldError
			if !errors.As(err, &he) || he.Stale != tc.stale {
				t.Fatalf("err %v", err)
			}
			if tc.stale != strings.Contains(err.Error(), "stale") {
				t.Fatalf("message and Stale disagree: %v", err)
			}
		})
	}
}

func TestTakeOverLocal(t *testing.T) {
	host, dead := hostname(t), deadPID(t)
	tests := []struct {
		name     string
		existing *Holder // nil: no lock; RunID "" with Command "junk": unreadable file
		resumeOf string
		ok       bool
	}{
		{"no lock", nil, "", true},
		{"stale holder", &Holder{RunID: "old", Hostname: host, PID: dead}, "", true},
		{"stale holder, other run resumed", &Holder{RunID: "old", Hostname: host, PID: dead}, "unrelated", true},
		{"resumed run on another machine", &Holder{RunID: "old", Hostname: "elsewhere", PID: 42}, "old", true},
		{"resumed run still alive here", &Holder{RunID: "old", Hostname: host, PID: os.Getpid()}, "old", false},
		{"live holder elsewhere, not resumed", &Holder{RunID: "old", Hostname: "elsewhere", PID: 42}, "other", false},
		{"live holder elsewhere, no resume", &Holder{RunID: "old", Hostname: "elsewhere", PID: 42}, "", false},
		{"unreadable lock", &Holder{Command: "junk"}, "old", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p, _ := LocalPath(dir, "d")
			var before []byte
			if tc.existing != nil {
				if tc.existing.Command == "junk" {
					os.MkdirAll(LocksDir(dir), 0o755)
					os.WriteFile(p, []byte("{"), 0o644)
				} else if _, err := AcquireLocal(dir, "d", *tc.existing); err != nil {
					t.Fatal(err)
				}
				before, _ = os.ReadFile(p)
			}
			me := holder(t, "new")
			l, prev, err := TakeOverLocal(dir, "d", me, tc.resumeOf)
			if !tc.ok {
				if !errors.Is(err, ErrHeld) || l != nil {
					t.Fatalf("want HeldError, got %v", err)
				}
				if after, _ := os.ReadFile(p); !bytes.Equal(after, before) {
					t.Fatal("refused takeover changed the lock")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.existing == nil && prev != (Holder{}) || tc.existing != nil && prev.RunID != tc.existing.RunID {
				t.Fatalf("prev = %+v", prev)
			}
			if got, _ := ReadLocal(dir, "d"); got.RunID != "new" {
				t.Fatalf("lock now %+v", got)
			}
			// The old holder's Release must not remove the new lock.
			if tc.existing != nil {
				stale := &LocalLock{path: p, holder: *tc.existing}
				if err := stale.Release(); !errors.Is(err, ErrNotOwner) || !strings.Contains(err.Error(), "run new") {
					t.Fatalf("old release: %v", err)
				}
				if got, _ := ReadLocal(dir, "d"); got.RunID != "new" {
					t.Fatal("old holder removed the new lock")
				}
			}
			if err := l.Release(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConcurrentTakeOverLocal(t *testing.T) {
	host, dead := hostname(t), deadPID(t)
	for round := 0; round < 5; round++ {
		dir := t.TempDir()
		if _, err := AcquireLocal(dir, "d", Holder{RunID: "killed", Hostname: host, PID: dead}); err != nil {
			t.Fatal(err)
		}
		const N = 12
		var wg sync.WaitGroup
		var wins, helds atomic.Int64
		start := make(chan struct{})
		for i := 0; i < N; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				h := Holder{RunID: fmt.Sprintf("resume-%d", i), Hostname: host, PID: os.Getpid()}
				var err error
				if i%3 == 0 { // plain acquirers join the race too
					_, err = AcquireLocal(dir, "d", h)
				} else {
					_, _, err = TakeOverLocal(dir, "d", h, "killed")
				}
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, ErrHeld):
					helds.Add(1)
				default:
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || helds.Load() != N-1 {
			t.Fatalf("round %d: %d winners, %d held", round, wins.Load(), helds.Load())
		}
	}
}

func TestLocalReleaseAndBreak(t *testing.T) {
	dir := t.TempDir()
	a, err := AcquireLocal(dir, "d", Holder{RunID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	prev, err := BreakLocal(dir, "d")
	if err != nil || prev.RunID != "a" {
		t.Fatalf("Break = %+v, %v", prev, err)
	}
	if _, err := BreakLocal(dir, "d"); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("Break(free) = %v", err)
	}
	b, err := AcquireLocal(dir, "d", Holder{RunID: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Release(); !errors.Is(err, ErrNotOwner) || !strings.Contains(err.Error(), "run b") {
		t.Fatalf("a.Release = %v", err)
	}
	if got, _ := ReadLocal(dir, "d"); got.RunID != "b" {
		t.Fatal("a released b's lock")
	}
	if err := a.Release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadLocal(dir, "d"); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("after release: %v", err)
	}
	// Released by someone else (broken): reported.
	c, _ := AcquireLocal(dir, "d", Holder{RunID: "c"})
	BreakLocal(dir, "d")
	if err := c.Release(); !errors.Is(err, ErrNotOwner) || !strings.Contains(err.Error(), "removed") {
		t.Fatalf("c.Release = %v", err)
	}
	// A broken unreadable lock returns a zero holder, no error.
	os.WriteFile(filepath.Join(LocksDir(dir), "d.lock"), nil, 0o644)
	if h, err := BreakLocal(dir, "d"); err != nil || h != (Holder{}) {
		t.Fatalf("break junk: %+v %v", h, err)
	}
	if _, err := BreakLocal(t.TempDir(), "d"); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("break in empty dir: %v", err)
	}
}

// oddDir is a directory whose name needs quoting in every way.
func oddDir(t *testing.T) string {
	d := filepath.Join(t.TempDir(), `it's a "lock" $HOME `+"`id`"+` *;&|<>`+"\n"+`-x`)
	return d
}

func TestRemoteLock(t *testing.T) {
	ctx := context.Background()
	r := &shRunner{}
	p := filepath.Join(oddDir(t), "-cc prod.lock") // directory created by AcquireRemote
	h := Holder{RunID: "run-'1'", User: "o'brien", Hostname: "ops", PID: 7, Command: `sitectl takeover --reason "it's $(rm -rf /)"`}
	l, err := AcquireRemote(ctx, r, "db1", p, h)
	if err != nil {
		t.Fatal(err)
	}
	if l.Where() != "db1:"+p {
		t.Fatalf("Where = %q", l.Where())
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeHolder(b)
	if err != nil || got.RunID != h.RunID || got.Command != h.Command || got.User != h.User {
		t.Fatalf("file holds %q (%v)", b, err)
	}
	// Held: a second acquire names host:path and the holder.
	_, err = AcquireRemote(ctx, r, "db1", p, Holder{RunID: "other"})
	var he *HeldError
	if !errors.As(err, &he) || he.Where != "db1:"+p || he.Holder.RunID != h.RunID || he.Stale {
		t.Fatalf("second acquire: %v", err)
	}
	if !strings.Contains(err.Error(), "db1:"+p) || !strings.Contains(err.Error(), "run-'1'") {
		t.Fatalf("message: %v", err)
	}
	if rh, err := ReadRemote(ctx, r, "db1", p); err != nil || rh.RunID != h.RunID {
		t.Fatalf("ReadRemote = %+v %v", rh, err)
	}
	// Release only with a matching run id: break, let another run take it,
	// and the first run's Release must leave it alone.
	if prev, err := BreakRemote(ctx, r, "db1", p); err != nil || prev.RunID != h.RunID {
		t.Fatalf("BreakRemote = %+v %v", prev, err)
	}
	if _, err := BreakRemote(ctx, r, "db1", p); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("BreakRemote(free) = %v", err)
	}
	if _, err := ReadRemote(ctx, r, "db1", p); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("ReadRemote(free) = %v", err)
	}
	// A run id that the first one is a prefix of must not match it.
	other, err := AcquireRemote(ctx, r, "db1", p, Holder{RunID: "run-'1'-2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx); !errors.Is(err, ErrNotOwner) || !strings.Contains(err.Error(), "run-'1'-2") {
		t.Fatalf("foreign release: %v", err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal("Release removed another run's lock")
	}
	if err := other.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Release left its own lock")
	}
	if err := other.Release(ctx); err != nil {
		t.Fatalf("second release: %v", err)
	}
	// Released after being broken: reported.
	l3, _ := AcquireRemote(ctx, r, "db1", p, Holder{RunID: "3"})
	BreakRemote(ctx, r, "db1", p)
	if err := l3.Release(ctx); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("release after break: %v", err)
	}
	// Nothing else was created or removed next to the lock.
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 0 {
		t.Fatalf("leftovers: %v", entries)
	}
}

func TestRemoteLockRace(t *testing.T) {
	ctx := context.Background()
	r := &shRunner{}
	for round := 0; round < 3; round++ {
		p := filepath.Join(oddDir(t), "lock")
		const N = 20
		var wg sync.WaitGroup
		var wins atomic.Int64
		var mu sync.Mutex
		var holders []string
		start := make(chan struct{})
		for i := 0; i < N; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := AcquireRemote(ctx, r, "db1", p, Holder{RunID: fmt.Sprintf("r%d", i)})
				var he *HeldError
				switch {
				case err == nil:
					wins.Add(1)
				case errors.As(err, &he):
					mu.Lock()
					holders = append(holders, he.Holder.RunID)
					mu.Unlock()
				default:
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || len(holders) != N-1 {
			t.Fatalf("round %d: %d winners, %d held", round, wins.Load(), len(holders))
		}
		final, _ := ReadRemote(ctx, r, "db1", p)
		for _, h := range holders {
			if h != final.RunID {
				t.Fatalf("a loser was told %q holds it; the lock says %q", h, final.RunID)
			}
		}
	}
}

func TestTakeOverRemote(t *testing.T) {
	ctx := context.Background()
	r := &shRunner{}
	host, dead := hostname(t), deadPID(t)
	p := filepath.Join(oddDir(t), "lock")
	// No lock: a takeover is an acquire.
	l, prev, err := TakeOverRemote(ctx, r, "db1", p, Holder{RunID: "a"}, "x")
	if err != nil || prev != (Holder{}) {
		t.Fatalf("%v %+v", err, prev)
	}
	// Held by a live run elsewhere: refused, untouched.
	if _, _, err := TakeOverRemote(ctx, r, "db1", p, Holder{RunID: "b"}, "x"); !errors.Is(err, ErrHeld) {
		t.Fatalf("live holder: %v", err)
	}
	// The run being resumed: replaced, previous holder returned.
	l2, prev, err := TakeOverRemote(ctx, r, "db1", p, Holder{RunID: "b", Hostname: host, PID: os.Getpid()}, "a")
	if err != nil || prev.RunID != "a" {
		t.Fatalf("resume takeover: %v %+v", err, prev)
	}
	if err := l.Release(ctx); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("old holder released: %v", err)
	}
	// b is alive here: even resuming b may not take it.
	if _, _, err := TakeOverRemote(ctx, r, "db1", p, Holder{RunID: "c"}, "b"); !errors.Is(err, ErrHeld) {
		t.Fatalf("alive resumed run taken over: %v", err)
	}
	if err := l2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// A stale holder (dead pid here), with many concurrent takeovers and
	// acquirers: exactly one wins.
	if _, err := AcquireRemote(ctx, r, "db1", p, Holder{RunID: "killed", Hostname: host, PID: dead}); err != nil {
		t.Fatal(err)
	}
	const N = 10
	var wg sync.WaitGroup
	var wins, helds atomic.Int64
	var prevs sync.Map
	start := make(chan struct{})
	for i := 0; i < N; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			h := Holder{RunID: fmt.Sprintf("resume-%d", i), Hostname: host, PID: os.Getpid()}
			var err error
			if i%4 == 0 {
				_, err = AcquireRemote(ctx, r, "db1", p, h)
			} else {
				var pv Holder
				_, pv, err = TakeOverRemote(ctx, r, "db1", p, h, "killed")
				if err == nil {
					prevs.Store(i, pv)
				}
			}
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, ErrHeld):
				helds.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 || helds.Load() != N-1 {
		t.Fatalf("%d winners, %d held", wins.Load(), helds.Load())
	}
	prevs.Range(func(_, v any) bool {
		if v.(Holder).RunID != "killed" {
			t.Errorf("winner's previous holder %+v", v)
		}
		return true
	})
	if _, err := os.Stat(tokenPath(p)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("takeover token left behind")
	}
}

func TestTakeOverRemoteBusyToken(t *testing.T) {
	old := busyRetry
	busyRetry = 200 * time.Millisecond
	defer func() { busyRetry = old }()
	ctx := context.Background()
	r := &shRunner{}
	p := filepath.Join(t.TempDir(), "lock")
	if _, err := AcquireRemote(ctx, r, "db1", p, Holder{RunID: "killed", Hostname: "elsewhere"}); err != nil {
		t.Fatal(err)
	}
	// A takeover killed mid-way left its token.
	os.WriteFile(tokenPath(p), []byte(`{"run_id":"ghost"}`+"\n"), 0o644)
	_, _, err := TakeOverRemote(ctx, r, "db1", p, Holder{RunID: "new"}, "killed")
	if err == nil || !strings.Contains(err.Error(), "ghost") || !strings.Contains(err.Error(), "sitectl unlock") {
		t.Fatalf("busy: %v", err)
	}
	// Break clears the token too; then a plain acquire works.
	if _, err := BreakRemote(ctx, r, "db1", p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tokenPath(p)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("token survived Break")
	}
	if _, err := AcquireRemote(ctx, r, "db1", p, Holder{RunID: "new"}); err != nil {
		t.Fatal(err)
	}
}

func TestRemoteErrors(t *testing.T) {
	ctx := context.Background()
	_, err := AcquireRemote(ctx, downRunner{}, "db1", "/var/lock/x", Holder{RunID: "r"})
	var hostErr *remote.HostError
	if !errors.As(err, &hostErr) || !strings.Contains(err.Error(), "db1:/var/lock/x") || errors.Is(err, ErrHeld) {
		t.Fatalf("unreachable: %v", err)
	}
	if _, err := ReadRemote(ctx, downRunner{}, "db1", "/x"); !errors.As(err, &hostErr) {
		t.Fatalf("read unreachable: %v", err)
	}
	if _, err := BreakRemote(ctx, downRunner{}, "db1", "/x"); !errors.As(err, &hostErr) {
		t.Fatalf("break unreachable: %v", err)
	}
	if _, _, err := TakeOverRemote(ctx, downRunner{}, "db1", "/x", Holder{RunID: "r"}, "q"); !errors.As(err, &hostErr) {
		t.Fatalf("takeover unreachable: %v", err)
	}
	// The lock cannot be created (a file where the directory should be):
	// an error with the shell's reason, not a HeldError.
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	_, err = AcquireRemote(ctx, &shRunner{}, "db1", filepath.Join(f, "lock"), Holder{RunID: "r"})
	if err == nil || errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "exit 74") {
		t.Fatalf("uncreatable: %v", err)
	}
	if _, err := AcquireRemote(ctx, &shRunner{}, "db1", "", Holder{RunID: "r"}); err == nil {
		t.Fatal("empty path accepted")
	}
	// A cancelled context is the Runner's error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := AcquireRemote(cctx, &shRunner{}, "db1", filepath.Join(t.TempDir(), "l"), Holder{RunID: "r"}); err == nil {
		t.Fatal("cancelled context ignored")
	}
}

func TestShq(t *testing.T) {
	for _, s := range []string{"", "plain", "it's", `"$HOME" ` + "`id` $(id) \\n", "a\nb", "'", "''", "-n", "*"} {
		out, err := exec.Command("sh", "-c", "printf '%s' "+remote.Quote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("remote.Quote(%q) round trip = %q, %v", s, out, err)
		}
	}
}

func TestLock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rp := filepath.Join(t.TempDir(), "remote.lock")
	r := &shRunner{}
	a := &Lock{Dir: dir, Deployment: "cc-prod", Remote: &Remote{Runner: r, Host: "db1", Path: rp}, Holder: Holder{RunID: "a"}}
	if err := a.Acquire(ctx); err != nil || !a.Held() || a.Holder.Since.IsZero() {
		t.Fatal(err)
	}
	if err := a.Acquire(ctx); err == nil {
		t.Fatal("double acquire")
	}
	found, err := a.Read(ctx)
	if err != nil || len(found) != 2 || found[0].Holder.RunID != "a" || found[1].Where != "db1:"+rp {
		t.Fatalf("Read = %+v %v", found, err)
	}
	// Another operator (other state dir, same deployment host): the local
	// lock is free, the remote one is not; their local lock is released.
	dirB := t.TempDir()
	b := &Lock{Dir: dirB, Deployment: "cc-prod", Remote: &Remote{Runner: r, Host: "db1", Path: rp}, Holder: Holder{RunID: "b"}}
	if err := b.Acquire(ctx); !errors.Is(err, ErrHeld) || b.Held() {
		t.Fatalf("b.Acquire = %v", err)
	}
	if _, err := ReadLocal(dirB, "cc-prod"); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("b's local lock left behind: %v", err)
	}
	// Remote host unreachable: the Runner's error, local released.
	c := &Lock{Dir: dirB, Deployment: "cc-prod", Remote: &Remote{Runner: downRunner{}, Host: "db1", Path: rp}, Holder: Holder{RunID: "c"}}
	var hostErr *remote.HostError
	if err := c.Acquire(ctx); !errors.As(err, &hostErr) {
		t.Fatalf("c.Acquire = %v", err)
	}
	if _, err := ReadLocal(dirB, "cc-prod"); !errors.Is(err, ErrNotLocked) {
		t.Fatal("local lock left after remote failure")
	}
	if err := a.Release(ctx); err != nil || a.Held() {
		t.Fatal(err)
	}
	if found, err := a.Read(ctx); err != nil || len(found) != 0 {
		t.Fatalf("after release: %+v %v", found, err)
	}

	// Resume after a SIGKILL: both locks left by a dead process.
	host, dead := hostname(t), deadPID(t)
	killed := &Lock{Dir: dir, Deployment: "cc-prod", Remote: &Remote{Runner: r, Host: "db1", Path: rp},
		Holder: Holder{RunID: "killed", Hostname: host, PID: dead}}
	if err := killed.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	d := &Lock{Dir: dir, Deployment: "cc-prod", Remote: &Remote{Runner: r, Host: "db1", Path: rp}, Holder: NewHolder("d", "sitectl resume killed")}
	if err := d.Acquire(ctx); !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "stale") {
		t.Fatalf("acquire over stale: %v", err)
	}
	taken, err := d.TakeOver(ctx, "killed")
	if err != nil || len(taken) != 2 || taken[0].Holder.RunID != "killed" || taken[1].Holder.RunID != "killed" ||
		taken[1].Where != "db1:"+rp {
		t.Fatalf("TakeOver = %+v %v", taken, err)
	}
	// Releasing with one part broken reports that part and still releases the other.
	BreakRemote(ctx, r, "db1", rp)
	err = d.Release(ctx)
	if !errors.Is(err, ErrNotOwner) {
		t.Fatalf("Release = %v", err)
	}
	if _, err := ReadLocal(dir, "cc-prod"); !errors.Is(err, ErrNotLocked) {
		t.Fatal("local lock not released")
	}
	// Break removes both and reports what it removed.
	e := &Lock{Dir: dir, Deployment: "cc-prod", Remote: &Remote{Runner: r, Host: "db1", Path: rp}, Holder: Holder{RunID: "e"}}
	if err := e.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	removed, err := (&Lock{Dir: dir, Deployment: "cc-prod", Remote: &Remote{Runner: r, Host: "db1", Path: rp}}).Break(ctx)
	if err != nil || len(removed) != 2 || removed[0].Holder.RunID != "e" {
		t.Fatalf("Break = %+v %v", removed, err)
	}
	if removed, err := e.Break(ctx); err != nil || len(removed) != 0 {
		t.Fatalf("Break(free) = %+v %v", removed, err)
	}
	// Local only.
	f := &Lock{Dir: dir, Deployment: "cc-prod", Holder: Holder{RunID: "f"}}
	if err := f.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// One lock per deployment: every lock host's copy, in order, all or
// nothing. A run that finds the second copy held releases the first.
func TestLockEveryCopy(t *testing.T) {
	ctx := context.Background()
	r := &shRunner{}
	pa, pb := filepath.Join(t.TempDir(), "a.lock"), filepath.Join(t.TempDir(), "b.lock")
	copies := func() []*Remote {
		return []*Remote{{Runner: r, Host: "a-app", Path: pa}, {Runner: r, Host: "b-app", Path: pb}}
	}
	// another machine's run (targeting site B) holds b-app's copy
	other, err := AcquireRemote(ctx, r, "b-app", pb, Holder{RunID: "other"})
	if err != nil {
		t.Fatal(err)
	}
	l := &Lock{Dir: t.TempDir(), Deployment: "cc", Remotes: copies(), Holder: Holder{RunID: "mine"}}
	if err := l.Acquire(ctx); !errors.Is(err, ErrHeld) || l.Held() {
		t.Fatalf("Acquire while b-app's copy is held = %v", err)
	}
	if _, exists, _ := readRemote(ctx, r, "a-app", pa); exists {
		t.Fatal("the copy taken on a-app was not released after b-app's was refused")
	}
	if err := other.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// free: both copies taken, then released in reverse
	l = &Lock{Dir: t.TempDir(), Deployment: "cc", Remotes: copies(), Holder: Holder{RunID: "mine"}}
	if err := l.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{pa, pb} {
		if h, err := ReadRemote(ctx, r, "x", p); err != nil || h.RunID != "mine" {
			t.Fatalf("copy %s: %+v %v", p, h, err)
		}
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{pa, pb} {
		if _, exists, _ := readRemote(ctx, r, "x", p); exists {
			t.Fatalf("copy %s left after release", p)
		}
	}
}

// Two lock hosts that share one file (an NFS path; the lab's namespaces):
// the second copy is the run's own, not another run's.
func TestLockSharedCopy(t *testing.T) {
	ctx := context.Background()
	r := &shRunner{}
	p := filepath.Join(t.TempDir(), "shared.lock")
	l := &Lock{Dir: t.TempDir(), Deployment: "cc", Holder: Holder{RunID: "mine"},
		Remotes: []*Remote{{Runner: r, Host: "a-app", Path: p}, {Runner: r, Host: "b-app", Path: p}}}
	if err := l.Acquire(ctx); err != nil {
		t.Fatalf("Acquire with a shared copy: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if _, exists, _ := readRemote(ctx, r, "x", p); exists {
		t.Fatal("shared copy left after release")
	}
}
