package root

import (
	"bytes"
	"context"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/runlock"
)

// SIGHUP (the SSH session to a jump host dropped) ends a run as SIGTERM
// and Ctrl-C do: exit 130, run.end journaled as cancelled, the lock
// released, the resume command printed. Before, the default action of
// SIGHUP killed sitectl on the spot.
func TestSIGHUPCancelsLikeSIGTERM(t *testing.T) {
	d := newDeployment(t)
	bin := buildBinary(t)
	d.svc.Delay("b-comms", 30*time.Second)
	c := d.command(bin, "takeover", "--site", "B", "--yes")
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	d.waitJournal(func(e event.Event) bool { return e.Kind == event.StepStart && e.Service == "comms" })
	_ = c.Process.Signal(syscall.SIGHUP)
	err := c.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Errorf("exit %v after SIGHUP, want 130\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "sitectl resume ") {
		t.Errorf("no resume command printed:\n%s", stderr.String())
	}
	run := d.lastRun()
	if run.Interrupted() || run.Outcome != event.Cancelled {
		t.Errorf("journal after SIGHUP: interrupted=%v outcome %s, want a run.end cancelled", run.Interrupted(), run.Outcome)
	}
	if _, err := runlock.ReadLocal(d.state, "e2e"); err == nil {
		t.Error("lock still held after SIGHUP")
	}
}

// blockingStdin never delivers a line: an operator who has not pressed
// Enter yet.
type blockingStdin struct{ r *io.PipeReader }

func (b blockingStdin) Read(p []byte) (int, error) { return b.r.Read(p) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Ctrl-C at the confirmation prompt ends sitectl at once, without Enter:
// exit 130, nothing changed.
func TestCtrlCAtThePromptExitsWithoutEnter(t *testing.T) {
	d := newDeployment(t)
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	ios, _, out, _ := cmdutil.Test()
	errOut := &syncBuffer{}
	ios.In, ios.ErrOut = blockingStdin{pr}, errOut
	ios.SetTTY(true, true)
	f := &cmdutil.Factory{
		IO: ios, Globals: &cmdutil.Globals{}, Version: "test", Now: time.Now,
		Getenv:   func(k string) string { return map[string]string{"SITECTL_INVENTORY": d.inv}[k] },
		Dialer:   remote.NewDialer(remote.Options{}),
		StateDir: func() (string, error) { return d.state, nil },
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan cmdutil.ExitCode, 1)
	go func() { done <- Execute(ctx, f, []string{"takeover", "--site", "A"}) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(errOut.String(), "to confirm: ") {
		if time.Now().After(deadline) {
			t.Fatalf("no confirmation prompt:\n%s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel() // Ctrl-C; no Enter ever comes
	select {
	case code := <-done:
		if code != cmdutil.ExitCancelled {
			t.Errorf("exit %d after Ctrl-C at the prompt, want 130\n%s%s", code, out.String(), errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Ctrl-C at the prompt: sitectl still waits for Enter")
	}
	d.stopped("a-chat", "a-mre", "a-comms")
}
