package services

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/inventory"
)

// stuckRunner answers after delay whatever ctx says, as a runner does that
// cleans up after a host that stopped answering.
// stuckRunner ignores ctx and answers only once release is closed: a
// runner still cleaning up after a host that stopped answering.
type stuckRunner struct{ release chan struct{} }

func (s stuckRunner) Run(ctx context.Context, host, command string) (remote.Result, error) {
	<-s.release
	return remote.Result{}, ctx.Err()
}

// A host that does not answer is reported at the deadline, not when the
// runner has finished cleaning up: one dead host must not hold up the
// observation of the others (the board's refresh depends on it).
func TestHostReportsNoAnswerAtDeadline(t *testing.T) {
	data, err := os.ReadFile("../../inventory/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Parse("example.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	site := inv.Sites[0]
	host := site.Hosts[0].Name
	var svcs []*inventory.Service
	for _, s := range site.Services {
		for _, h := range s.OnHosts() {
			if h == host {
				svcs = append(svcs, s)
			}
		}
	}
	// The runner answers only after Host has returned: Host returning at
	// all shows that it gave up at the deadline (no duration is measured).
	// (A guard releases it after a minute so that a regression fails
	// instead of hanging the suite.)
	release := make(chan struct{})
	var guarded atomic.Bool
	guard := time.AfterFunc(time.Minute, func() { guarded.Store(true); close(release) })
	o := &Observer{Inventory: inv, Runner: stuckRunner{release: release}, NoProbes: true}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	hs := o.Host(ctx, site.Name, host, svcs)
	if guard.Stop() {
		close(release)
	} else if guarded.Load() {
		t.Fatal("Host waited for the runner to answer instead of giving up at its deadline")
	}
	if hs.Reachable || !strings.Contains(hs.Error, "no answer within") {
		t.Fatalf("reachable=%v error=%q", hs.Reachable, hs.Error)
	}
	for _, s := range hs.Services {
		if s.State != Unknown {
			t.Errorf("%s: %s, want unknown", s.Service, s.State)
		}
	}
}

// FuzzParseBatch: any output parses without panic into non-negative
// indexes, and the marker lines of a real batch's answer read back exactly
// whatever surrounds them.
func FuzzParseBatch(f *testing.F) {
	f.Add([]byte("@@sitectl-status 0 0\n@@sitectl-status 1 3\n"), uint8(3))
	f.Add([]byte("motd\n@@sitectl-status -1 0\n@@sitectl-status x 1\n@@sitectl-status 2 y\n"), uint8(0))
	f.Fuzz(func(t *testing.T, noise []byte, n uint8) {
		for i := range ParseBatch(noise) {
			if i < 0 {
				t.Fatalf("negative index %d", i)
			}
		}
		// noise first (a login banner), then the answer of n services
		var b bytes.Buffer
		b.Write(noise)
		b.WriteString("\n")
		for i := range int(n % 16) {
			fmt.Fprintf(&b, "%s %d %d\n", marker, i, i*7%256)
		}
		got := ParseBatch(b.Bytes())
		for i := range int(n % 16) {
			if got[i] != i*7%256 {
				t.Fatalf("service %d: exit %d, want %d (noise %q)", i, got[i], i*7%256, noise)
			}
		}
	})
}

// The batch runs in one real shell: every check in order, each with its
// own record; a check that hangs is killed at its own timeout and the
// checks after it still answer; `exit` in a check, or a syntax error,
// ends only that check; what checks print never reaches the output.
func TestBatchStatusInOneShell(t *testing.T) {
	if _, err := exec.LookPath("timeout"); err != nil {
		t.Skip("coreutils timeout not installed")
	}
	dir := t.TempDir()
	order := filepath.Join(dir, "order")
	cmds := []string{
		"sleep 0.3; echo 0 >>" + order + "; echo noise; exit 3",
		"echo 1 >>" + order + "; sleep 600",
		"echo 2 >>" + order + "; true",
		"echo 3 >>" + order + "; echo err >&2; false",
		"if then (",
	}
	script := BatchStatus(cmds, []time.Duration{0, time.Second, 0, time.Minute, 0})
	out, err := exec.CommandContext(t.Context(), "sh", "-c", script).Output()
	if err != nil {
		t.Fatalf("batch: %v\n%s", err, out)
	}
	got := ParseBatch(out)
	want := map[int]int{0: 3, 1: 124, 2: 0, 3: 1, 4: 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("records %v, want %v\noutput:\n%s", got, want, out)
	}
	if strings.Contains(string(out), "noise") || strings.Contains(string(out), "err") {
		t.Errorf("a check's own output leaked: %q", out)
	}
	if b, _ := os.ReadFile(order); string(b) != "0\n1\n2\n3\n" {
		t.Errorf("checks ran in order %q, want 0 1 2 3 one after the other", b)
	}
	if strings.Contains(script, "wait") {
		t.Errorf("the batch waits for background jobs: it should run its checks one after the other\n%s", script)
	}
}

// The inline batch answers as BatchStatus does, with one fork per check
// instead of two; a command that does not parse stops it there (exit 2),
// which Host takes as its cue to run BatchStatus instead
// (TestSyntaxErrorInOneCheckCostsOnlyThatCheck).
func TestBatchStatusInlineAnswersAsBatchStatus(t *testing.T) {
	if _, err := exec.LookPath("timeout"); err != nil {
		t.Skip("coreutils timeout not installed")
	}
	cmds := []string{
		"echo noise; exit 3",
		"sleep 600",
		"true # a comment",
		"echo err >&2; false",
		"(exit 4)",
		"cat <<X\nhere\nX\ntest -n x",
		"exit 5", // not simple: in a subshell of its own
		"cd /nonexistent-sitectl",
		"A=1",
		"test -n x",       // simple: as is
		"/bin/sh -c exit", // simple: "-c exit" are sh's words
		"false",
		"printf %s x",
	}
	ts := []time.Duration{0, time.Second, 0, time.Minute, 0, 0}
	want := map[int]int{0: 3, 1: 124, 2: 0, 3: 1, 4: 4, 5: 0, 6: 5, 7: 2, 8: 0, 9: 0, 10: 0, 11: 1, 12: 0}
	for name, script := range map[string]string{"BatchStatus": BatchStatus(cmds, ts), "BatchStatusInline": BatchStatusInline(cmds, ts)} {
		out, err := exec.CommandContext(t.Context(), "sh", "-c", script).Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		if got := ParseBatch(out); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: records %v, want %v\noutput:\n%s", name, got, want, out)
		}
		if strings.Contains(string(out), "noise") || strings.Contains(string(out), "here") {
			t.Errorf("%s: a check's own output leaked: %q", name, out)
		}
	}
	bad := BatchStatusInline([]string{"true", "if then (", "true"}, nil)
	out, err := exec.CommandContext(t.Context(), "sh", "-c", bad).Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Errorf("inline batch with a syntax error: %v, want exit 2", err)
	}
	if got := ParseBatch(out); len(got) >= 3 {
		t.Errorf("inline batch with a syntax error answered every check: %v", got)
	}
}

func TestSimpleCommand(t *testing.T) {
	for c, want := range map[string]bool{
		"/etc/init.d/chat status":               true,
		"systemctl is-active --quiet x.service": true,
		"/opt/x/bin/ctl -p 8080 status":         true,
		"test -f /run/x.pid":                    true,
		"":                                      false,
		"exit 3":                                false,
		"cd /tmp":                               false,
		"A=1 /bin/x":                            false,
		"x; y":                                  false,
		"x | y":                                 false,
		"x && y":                                false,
		"x > /tmp/f":                            false,
		"echo $HOME":                            false,
		"echo 'a b'":                            false,
		"ls *":                                  false,
		"x # c":                                 false,
		"x\ny":                                  false,
		"eval x":                                false,
		". /etc/profile":                        false,
		"read x":                                false,
		"if true":                               false,
		"x `y`":                                 false,
		"x ~/y":                                 false,
	} {
		if got := simpleCommand(c); got != want {
			t.Errorf("simpleCommand(%q) = %v, want %v", c, got, want)
		}
	}
}
