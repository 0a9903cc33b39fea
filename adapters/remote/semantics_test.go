package remote_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
)

// The same contract, checked against every Runner: SSH (over a real sshd)
// and local.

type runCase struct {
	name       string
	cmd        string
	wantOut    string
	wantErr    string
	wantCode   int
	wantOutLen int
}

func runCases() []runCase {
	tricky := []string{
		"it's",
		"two  spaces",
		"$(touch /nonexistent/pwned)",
		"`id`",
		"line1\nline2",
		`back\slash "dq" 'sq'`,
		"*",
		"-n",
		"",
		"; exit 7",
		"tab\there",
		"ünïcødé ☃",
	}
	var printed []string
	for _, s := range tricky {
		printed = append(printed, s+"|")
	}
	return []runCase{
		{name: "echo", cmd: "echo hello", wantOut: "hello\n"},
		{name: "stdout and stderr apart", cmd: "echo out; echo err >&2; echo out2", wantOut: "out\nout2\n", wantErr: "err\n"},
		{name: "exit 3", cmd: "echo before; exit 3", wantOut: "before\n", wantCode: 3},
		{name: "exit 255", cmd: "exit 255", wantCode: 255},
		{name: "command not found", cmd: "no-such-command-sitectl", wantCode: 127, wantErr: "not found"},
		{name: "killed by signal", cmd: "kill -TERM $$", wantCode: 128 + 15},
		{name: "quoted args survive", cmd: "printf '%s|' " + remote.Join(tricky...), wantOut: strings.Join(printed, "")},
		{name: "stdin is empty", cmd: "cat; echo done", wantOut: "done\n"},
		{name: "output capped at 1 MiB", cmd: "head -c 3000000 /dev/zero", wantOutLen: remote.DefaultMaxOutput},
	}
}

func checkRunCases(t *testing.T, r remote.Runner) {
	t.Helper()
	for _, tc := range runCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			res, err := r.Run(ctx, tc.cmd)
			if err != nil {
				t.Fatalf("Run(%q): %v", tc.cmd, err)
			}
			if res.Command != tc.cmd {
				t.Errorf("Command = %q, want %q", res.Command, tc.cmd)
			}
			if res.ExitCode != tc.wantCode {
				t.Errorf("ExitCode = %d, want %d (stderr %q)", res.ExitCode, tc.wantCode, res.Stderr)
			}
			if tc.wantOutLen > 0 {
				if len(res.Stdout) != tc.wantOutLen {
					t.Errorf("len(Stdout) = %d, want %d", len(res.Stdout), tc.wantOutLen)
				}
				return
			}
			if string(res.Stdout) != tc.wantOut {
				t.Errorf("Stdout = %q, want %q", res.Stdout, tc.wantOut)
			}
			if !strings.Contains(string(res.Stderr), tc.wantErr) || (tc.wantErr == "" && len(res.Stderr) > 0) {
				t.Errorf("Stderr = %q, want %q", res.Stderr, tc.wantErr)
			}
			if res.Duration <= 0 {
				t.Errorf("Duration = %v", res.Duration)
			}
		})
	}
}

// checkKills runs `sh -c 'sleep N; touch MARKER'` under a 1s deadline or a
// cancellation after 1s and checks that Run returns promptly with the ctx
// error, that no process of the command is left, and that MARKER never
// appears. Only valid when the runner's commands run on this machine.
func checkKills(t *testing.T, r remote.Runner) {
	t.Helper()
	for _, mode := range []string{"deadline", "cancel"} {
		for _, sleep := range []string{"300", "2"} {
			t.Run(mode+"/sleep "+sleep, func(t *testing.T) {
				t.Parallel()
				token := "sitectl-test-" + randHex(t)
				marker := filepath.Join(t.TempDir(), token)
				cmd := "sh -c " + remote.Quote("sleep "+sleep+"; touch "+marker)

				var ctx context.Context
				var cancel context.CancelFunc
				want := context.DeadlineExceeded
				if mode == "deadline" {
					ctx, cancel = context.WithTimeout(t.Context(), time.Second)
				} else {
					ctx, cancel = context.WithCancel(t.Context())
					time.AfterFunc(time.Second, cancel)
					want = context.Canceled
				}
				defer cancel()

				// The command must really be running before the kill.
				seen := make(chan bool, 1)
				go func() {
					for range 30 { // until seen (a loaded machine starts it late)
						time.Sleep(100 * time.Millisecond)
						if len(pgrep(t, token)) > 0 {
							seen <- true
							return
						}
					}
					seen <- false
				}()
				start := time.Now()
				res, err := r.Run(ctx, cmd)
				elapsed := time.Since(start)
				if !errors.Is(err, want) {
					t.Fatalf("Run: err = %v (result %+v), want %v", err, res, want)
				}
				var he *remote.HostError
				if !errors.As(err, &he) || he.Op != remote.OpRun {
					t.Errorf("err = %#v, want *HostError with Op run", err)
				}
				if !<-seen {
					t.Errorf("command with token %s never seen running", token)
				}
				// a guard against waiting for the command, not a timing:
				// "sleep 300" would hold Run for minutes; "sleep 2" is
				// caught by its marker below
				if elapsed > time.Minute {
					t.Errorf("Run returned after %v, want at its 1s deadline", elapsed)
				}
				// SIGKILL is asynchronous: allow the kernel a moment.
				pids := pgrep(t, token)
				for i := 0; len(pids) > 0 && i < 10; i++ {
					time.Sleep(50 * time.Millisecond)
					pids = pgrep(t, token)
				}
				if len(pids) > 0 {
					out, _ := exec.Command("ps", "-o", "pid,pgid,sid,args", "-p", strings.Join(pids, ",")).CombinedOutput()
					t.Fatalf("processes with token still running after Run returned:\n%s", out)
				}
				if sleep == "2" {
					time.Sleep(2500 * time.Millisecond)
				}
				if _, err := os.Stat(marker); err == nil {
					t.Errorf("marker %s appeared: the command was not killed", marker)
				}
			})
		}
	}
}

func checkConcurrent(t *testing.T, r remote.Runner, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			want := "run-" + strings.Repeat("x", i)
			res, err := r.Run(t.Context(), "sleep 0.2; echo "+remote.Quote(want)+"; echo e"+want+" >&2")
			switch {
			case err != nil:
				errs <- err
			case string(res.Stdout) != want+"\n" || string(res.Stderr) != "e"+want+"\n":
				errs <- errors.New("mixed output: " + string(res.Stdout) + "/" + string(res.Stderr))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func pgrep(t *testing.T, token string) []string {
	out, err := exec.Command("pgrep", "-f", token).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 1 {
			return nil
		}
		t.Errorf("pgrep: %v", err)
		return nil
	}
	return strings.Fields(string(out))
}

func randHex(t testing.TB) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}
