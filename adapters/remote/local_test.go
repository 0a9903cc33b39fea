package remote_test

import (
	"context"
	"errors"
	"os/exec"
	"testing"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
)

func localRunner(t *testing.T) remote.Runner {
	t.Helper()
	r, err := remote.NewDialer(remote.Options{}).Dial(t.Context(), remote.Target{Name: "ops-1", Local: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.(*remote.LocalRunner); !ok {
		t.Fatalf("NewDialer gave %T for a local target", r)
	}
	return r
}

func TestLocalRun(t *testing.T) {
	t.Parallel()
	checkRunCases(t, localRunner(t))
}

func TestLocalConcurrentRuns(t *testing.T) {
	t.Parallel()
	checkConcurrent(t, localRunner(t), 20)
}

func TestLocalDeadlineAndCancelKillProcessGroup(t *testing.T) {
	t.Parallel()
	checkKills(t, localRunner(t))
}

func TestLocalCtxAlreadyDone(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := localRunner(t).Run(ctx, "true")
	if !errors.Is(err, remote.ErrNotStarted) || !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want ErrNotStarted and context.Canceled", err)
	}
	var he *remote.HostError
	if !errors.As(err, &he) || he.Host != "ops-1" {
		t.Errorf("err = %#v, want a *HostError for ops-1", err)
	}
}

// A daemon that leaves the process group and keeps stdout open must not
// make Run hang, nor be killed when the command itself succeeded.
func TestLocalBackgroundProcessHoldingStdout(t *testing.T) {
	t.Parallel()
	token := "sitectl-test-" + randHex(t)
	t.Cleanup(func() { _ = exec.Command("pkill", "-f", token).Run() })
	start := time.Now()
	res, err := localRunner(t).Run(t.Context(), "setsid sh -c 'sleep 300' "+token+" & echo started")
	if err != nil || res.ExitCode != 0 || string(res.Stdout) != "started\n" {
		t.Fatalf("Run: %+v, %v", res, err)
	}
	if d := time.Since(start); d > time.Minute { // the daemon lives 5 minutes: a guard, not a timing
		t.Errorf("Run took %v: it waited for the daemon", d)
	}
	if len(pgrep(t, token)) == 0 {
		t.Errorf("the daemon was killed")
	}
}
