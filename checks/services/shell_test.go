package services

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/checks/layer"
	"github.com/sitectl/sitectl/internal/testenv/sshd"
	"github.com/sitectl/sitectl/inventory"
)

// shellFleet is one site of one real sshd host whose services write the
// pid of the shell running the batch ($$: the long-lived shell's, even in
// the batch's subshells) to a file, one line per check.
func shellFleet(t *testing.T, extra string) (*Observer, *remote.Pool, *inventory.Site, string) {
	t.Helper()
	srv := sshd.Start(t)
	pids := filepath.Join(t.TempDir(), "pids")
	y := fmt.Sprintf(`deployment: t
defaults:
  command_timeout: 20s
sites:
  - name: A
    role: primary
    hosts:
      - {name: h1, address: 127.0.0.1, ssh: {port: %d, user: %s, key: %s, known_hosts: %s}}
    services:
      - {name: a, kind: custom, host: h1, start: 'true', stop: 'true', status: 'echo $$ >>%s; exit 0'}
      - {name: b, kind: custom, host: h1, start: 'true', stop: 'true', status: 'exit 3'}
%s  - name: B
    role: secondary
    hosts:
      - {name: h2, address: 127.0.0.1, ssh: {port: %d, user: %s, key: %s, known_hosts: %s}}
    services:
      - {name: a, kind: custom, host: h2, start: 'true', stop: 'true', status: 'exit 3'}
`, srv.Port, srv.User, srv.KeyFile, srv.KnownHostsFile, pids, extra, srv.Port, srv.User, srv.KeyFile, srv.KnownHostsFile)
	inv, err := inventory.Parse("t.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	pool := remote.NewPool(remote.SSHDialer{}, map[string]remote.Target{"h1": srv.Target("h1")})
	t.Cleanup(func() { pool.Close() })
	return &Observer{Inventory: inv, Runner: pool, NoProbes: true}, pool, inv.Sites[0], pids
}

func observeHost(t *testing.T, o *Observer, s *inventory.Site, timeout time.Duration) HostStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	return o.Site(ctx, s).Hosts[0]
}

func shellPids(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func wantStates(t *testing.T, hs HostStatus, want map[string]State) {
	t.Helper()
	if !hs.Reachable {
		t.Fatalf("host not reachable: %s (%s)", hs.Error, hs.Reach)
	}
	for _, svc := range hs.Services {
		if w, ok := want[svc.Service]; ok && svc.State != w {
			t.Errorf("%s: %s (%s), want %s", svc.Service, svc.State, svc.Error, w)
		}
	}
}

// Refreshes over one pool reuse the host's shell: the second refresh's
// checks run in the very shell (one session) of the first.
func TestRefreshesReuseTheHostsShell(t *testing.T) {
	t.Parallel()
	o, _, site, pids := shellFleet(t, "")
	for range 3 {
		wantStates(t, observeHost(t, o, site, 30*time.Second), map[string]State{"a": Running, "b": Stopped})
	}
	p := shellPids(t, pids)
	if len(p) != 3 || p[0] != p[1] || p[1] != p[2] {
		t.Errorf("shells of 3 refreshes: %v, want one shell 3 times", p)
	}
}

// A check that hangs is killed at its own timeout inside the shell: its
// refresh reports it unknown, the others answer, and the next refresh
// runs in the same shell.
func TestHungCheckDoesNotBreakTheNextRefresh(t *testing.T) {
	t.Parallel()
	o, _, site, pids := shellFleet(t, "      - {name: c, kind: custom, host: h1, start: 'true', stop: 'true', status: 'sleep 600', timeout: 1s}\n")
	for i := range 2 {
		hs := observeHost(t, o, site, 60*time.Second)
		wantStates(t, hs, map[string]State{"a": Running, "b": Stopped, "c": Unknown})
		for _, svc := range hs.Services {
			if svc.Service == "c" && !strings.Contains(svc.Error, "killed on the host") {
				t.Errorf("refresh %d: the hung check says %q", i, svc.Error)
			}
		}
	}
	if p := shellPids(t, pids); len(p) != 2 || p[0] != p[1] {
		t.Errorf("shells of 2 refreshes: %v, want the same one twice", p)
	}
}

// A check without a timeout of its own that hangs outlives its refresh:
// the host is reported as not answering in time (never as down), the
// check and its shell are killed on the host, and the next refresh
// answers from a new shell.
func TestRefreshAfterAHungBatchAnswers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	flag, sleeper := filepath.Join(dir, "hang"), filepath.Join(dir, "sleeper")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	o, _, site, pids := shellFleet(t, fmt.Sprintf("      - {name: c, kind: custom, host: h1, start: 'true', stop: 'true', status: 'if [ -e %s ]; then sh -c \"echo \\$\\$ >%s; exec sleep 600\"; fi'}\n", flag, sleeper))
	hs := observeHost(t, o, site, 2*time.Second)
	if hs.Reachable || hs.Reach != layer.SawNoAnswer {
		t.Fatalf("hung batch: reachable=%v reach=%q error=%q, want no answer (slow), not down", hs.Reachable, hs.Reach, hs.Error)
	}
	b, err := os.ReadFile(sleeper)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	if pid <= 0 || !processGone(pid) {
		t.Errorf("the hung check (pid %d) still runs on the host", pid)
	}
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	wantStates(t, observeHost(t, o, site, 30*time.Second), map[string]State{"a": Running, "b": Stopped, "c": Running})
	if p := shellPids(t, pids); len(p) != 2 || p[0] == p[1] {
		t.Errorf("shells: %v, want a new one after the hung one", p)
	}
}

// processGone waits until pid has ended (the deadline is only a guard).
func processGone(pid int) bool {
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			return true
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(b), ") Z ") {
			return true
		}
	}
	return false
}

// A shell killed on the host between refreshes is replaced: the host is
// reported reachable, its services observed, from a new shell.
func TestShellKilledOnTheHostIsNotUnreachable(t *testing.T) {
	t.Parallel()
	o, _, site, pids := shellFleet(t, "")
	wantStates(t, observeHost(t, o, site, 30*time.Second), map[string]State{"a": Running, "b": Stopped})
	first := shellPids(t, pids)[0]
	var pid int
	fmt.Sscan(first, &pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wantStates(t, observeHost(t, o, site, 30*time.Second), map[string]State{"a": Running, "b": Stopped})
	if p := shellPids(t, pids); len(p) != 2 || p[1] == first {
		t.Errorf("shells: %v, want a new one after %s was killed", p, first)
	}
}

// A status command the host's shell cannot parse costs only its own
// check, refresh after refresh: it exits 2 (which Interpret reads as LSB's
// "stopped", as it always has), the others answer, from the same shell.
func TestSyntaxErrorInOneCheckCostsOnlyThatCheck(t *testing.T) {
	t.Parallel()
	o, _, site, pids := shellFleet(t, "      - {name: c, kind: custom, host: h1, start: 'true', stop: 'true', status: 'if then ('}\n")
	for range 2 {
		hs := observeHost(t, o, site, 30*time.Second)
		wantStates(t, hs, map[string]State{"a": Running, "b": Stopped})
		for _, svc := range hs.Services {
			if svc.Service == "c" && (svc.ExitCode == nil || *svc.ExitCode != 2) {
				t.Errorf("c: exit %v (%s), want 2 (a syntax error)", svc.ExitCode, svc.Error)
			}
		}
	}
	if p := shellPids(t, pids); len(p) < 2 || p[0] != p[len(p)-1] {
		t.Errorf("shells: %v, want one", p)
	}
}
