package remote_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/internal/testenv/sshd"
)

type sessionCounter interface{ SessionsOpened() int64 }

func dialScript(t *testing.T, srv *sshd.Server) (remote.ScriptRunner, sessionCounter) {
	t.Helper()
	r := dial(t, srv.Target("web-a1"), remote.Options{})
	sr, ok := r.(remote.ScriptRunner)
	if !ok {
		t.Fatalf("%T is not a ScriptRunner", r)
	}
	return sr, r.(sessionCounter)
}

// gone waits until process pid has ended (the deadline is only a guard).
func gone(t *testing.T, pid int) bool {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		// a zombie not yet reaped by its parent counts as ended
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && strings.Contains(string(b), ") Z ") {
			return true
		}
	}
	return false
}

// RunScript keeps Run's contract (output apart, exit codes, quoting,
// stdin, the cap), one script after the other in the same shell: all of
// them over one session.
func TestSSHScriptsShareOneShell(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t)
	r, n := dialScript(t, srv)
	cases := 0
	for _, tc := range runCases() {
		if strings.Contains(tc.cmd, "$$") {
			// $$ is the shell's own pid in a script: killing it breaks the
			// shell (TestSSHShellKilledOnTheHostIsReplaced)
			continue
		}
		cases++
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		res, err := r.RunScript(ctx, tc.cmd)
		cancel()
		if err != nil {
			t.Fatalf("%s: RunScript(%q): %v", tc.name, tc.cmd, err)
		}
		if res.ExitCode != tc.wantCode {
			t.Errorf("%s: ExitCode = %d, want %d (stderr %q)", tc.name, res.ExitCode, tc.wantCode, res.Stderr)
		}
		if tc.wantOutLen > 0 {
			if len(res.Stdout) != tc.wantOutLen {
				t.Errorf("%s: len(Stdout) = %d, want %d", tc.name, len(res.Stdout), tc.wantOutLen)
			}
		} else if string(res.Stdout) != tc.wantOut {
			t.Errorf("%s: Stdout = %q, want %q", tc.name, res.Stdout, tc.wantOut)
		}
		if !strings.Contains(string(res.Stderr), tc.wantErr) || (tc.wantErr == "" && len(res.Stderr) > 0) {
			t.Errorf("%s: Stderr = %q, want %q", tc.name, res.Stderr, tc.wantErr)
		}
	}
	// output without a final newline, and a line as long as a mark
	for _, s := range []string{"printf abc", "printf 'x\\n\\n'", "printf '%0600d\\n' 0"} {
		res, err := r.RunScript(t.Context(), s)
		want, _ := r.Run(t.Context(), s)
		if err != nil || string(res.Stdout) != string(want.Stdout) {
			t.Errorf("RunScript(%q) = %q, %v; Run gives %q", s, res.Stdout, err, want.Stdout)
		}
		cases++
	}
	// every script in one shell: one session, plus the 3 Runs just above
	if got := n.SessionsOpened(); got != 1+3 {
		t.Errorf("%d scripts opened %d sessions, want 1 (one shell) + 3 Runs", cases, got)
	}
}

// A script that outlives its ctx is killed on the host with its shell; the
// next script gets a new shell and answers.
func TestSSHShellHungScriptDoesNotWedgeTheNext(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t)
	r, n := dialScript(t, srv)
	if _, err := r.RunScript(t.Context(), "true"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	// prints the pid of the sleep (exec) before it hangs
	res, err := r.RunScript(ctx, `sh -c 'echo $$; exec sleep 1000'`)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung script: %+v, %v; want a deadline error", res, err)
	}
	pid, perr := strconv.Atoi(strings.TrimSpace(string(res.Stdout)))
	if perr != nil {
		t.Fatalf("the output before the hang was not kept: %q", res.Stdout)
	}
	if !gone(t, pid) {
		t.Errorf("the hung script (pid %d) still runs on the host", pid)
	}
	before := n.SessionsOpened()
	res, err = r.RunScript(t.Context(), "echo ok")
	if err != nil || string(res.Stdout) != "ok\n" {
		t.Fatalf("the script after the hung one: %+v, %v", res, err)
	}
	if got := n.SessionsOpened(); got != before+1 {
		t.Errorf("sessions opened %d -> %d, want one more (a new shell)", before, got)
	}
	// and that shell is kept
	if _, err := r.RunScript(t.Context(), "true"); err != nil || n.SessionsOpened() != before+1 {
		t.Errorf("the new shell was not reused: %v, sessions %d", err, n.SessionsOpened())
	}
}

// A shell killed on the host between two scripts is replaced: the script
// answers as if nothing happened, over the same connection.
func TestSSHShellKilledOnTheHostIsReplaced(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t)
	r, n := dialScript(t, srv)
	res, err := r.RunScript(t.Context(), "echo $$")
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(res.Stdout)))
	if err != nil {
		t.Fatalf("no pid: %q", res.Stdout)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !gone(t, pid) {
		t.Fatalf("shell %d survived SIGKILL", pid)
	}
	res, err = r.RunScript(t.Context(), "echo $$")
	if err != nil {
		t.Fatalf("script after the shell was killed: %v", err)
	}
	if p2, _ := strconv.Atoi(strings.TrimSpace(string(res.Stdout))); p2 == pid || p2 == 0 {
		t.Errorf("answered by shell %q, want a new one (the old was %d)", res.Stdout, pid)
	}
	if got := n.SessionsOpened(); got != 2 {
		t.Errorf("sessions opened: %d, want 2 (the killed shell and its replacement)", got)
	}
}

// A connection dropped between two scripts: the pool redials and the
// script answers (it changes nothing, so running it again is harmless).
func TestPoolScriptAfterDroppedConnectionRedials(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t)
	p := remote.NewPool(remote.SSHDialer{}, map[string]remote.Target{"h": srv.Target("h")})
	defer p.Close()
	if res, err := p.RunScript(t.Context(), "h", "echo one"); err != nil || string(res.Stdout) != "one\n" {
		t.Fatalf("first: %+v %v", res, err)
	}
	srv.DropConnections()
	res, err := p.RunScript(t.Context(), "h", "echo two")
	if err != nil || string(res.Stdout) != "two\n" {
		t.Fatalf("after the connection dropped: %+v %v", res, err)
	}
	if n := strings.Count(srv.Log(), "Accepted publickey"); n != 2 {
		t.Errorf("sshd accepted %d logins, want 2 (one redial)", n)
	}
}

// A host that cannot keep a shell (here its shell's command exits at
// once, as `timeout` missing would make it) still answers every script,
// as Run would: the runner stops trying shells on that connection.
func TestSSHNoShellOnTheHostFallsBackToRun(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t)
	r, n := dialScript(t, srv)
	remote.SetShellCommand(r, "exit 127")
	for i := range 3 {
		res, err := r.RunScript(t.Context(), "echo ok; exit 3")
		if err != nil || string(res.Stdout) != "ok\n" || res.ExitCode != 3 {
			t.Fatalf("script %d: %+v, %v", i, res, err)
		}
	}
	// the shell that ended, then one session per script
	if got := n.SessionsOpened(); got != 1+3 {
		t.Errorf("sessions opened: %d, want 4 (1 shell, then 3 Runs)", got)
	}
}
