package root

// The board end to end: the real binary in a real terminal (tmux), against
// real sshd hosts, a real haproxy, two real brokers and the MongoDB
// simulator. Read with capture-pane; cut site A; see the verdict change
// logging how soon; take site B over from the keyboard.

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func tmux(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("tmux", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestBoardInTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux missing (CI: the board lane must run); install it with scripts/install-test-deps.sh")
		}
		t.Skip("tmux missing")
	}
	l := newLayered(t)
	bin := buildBinary(t)
	session := fmt.Sprintf("sitectl-board-%d", os.Getpid())
	cmd := fmt.Sprintf("env SITECTL_INVENTORY=%s SITECTL_STATE_DIR=%s SITECTL_LOG=%s/board.log NO_COLOR=1 TERM=xterm-256color %s board --interval 2s",
		l.inv, l.state, l.dir, bin)
	tmux(t, "new-session", "-d", "-s", session, "-x", "160", "-y", "70", cmd)
	t.Cleanup(func() { exec.Command("tmux", "kill-session", "-t", session).Run() })
	screen := func() string { return tmux(t, "capture-pane", "-p", "-t", session) }
	waitFor := func(what string, limit time.Duration, ok func(string) bool) (string, time.Duration) {
		t.Helper()
		start := time.Now()
		for time.Since(start) < limit {
			if s := screen(); ok(s) {
				return s, time.Since(start)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s not seen within %s; screen:\n%s", what, limit, screen())
		return "", 0
	}
	waitFor("site A serves", 60*time.Second, func(s string) bool { return strings.Contains(s, "site A serves") })

	// lose site A: its hosts stop answering, its connector, its HAProxy
	// server and its MongoDB member go with it, so the other site, the
	// witness and HAProxy all see it down (a partial cut is refused: the
	// site-loss evidence, docs/checks.md)
	l.servers["a-app"].Stop()
	l.servers["a-rpt"].Stop()
	l.conA.Close()
	l.hap.Standin("be_chat", "chat_a").Kill()
	l.sim.Stop("mongo-a")
	s, took := waitFor("the verdict to change", 60*time.Second, func(s string) bool {
		head := strings.SplitN(s, "\n", 2)[0]
		return !strings.Contains(head, "site A serves")
	})
	// How soon is measured and logged (docs/board.md), not asserted: a busy
	// machine stretches every refresh.
	t.Logf("verdict changed after %s:\n%s", took, strings.SplitN(s, "\n", 2)[0])

	// select site B, take it over from the keyboard, confirm by typing B
	tmux(t, "send-keys", "-t", session, "Tab")
	tmux(t, "send-keys", "-t", session, "t")
	waitFor("the confirmation", 5*time.Second, func(s string) bool { return strings.Contains(strings.ToLower(s), "type") })
	tmux(t, "send-keys", "-t", session, "B")
	tmux(t, "send-keys", "-t", session, "Enter")
	runLine := func(s string) string {
		for _, line := range strings.Split(s, "\n") {
			if strings.Contains(line, "Run: takeover --site B") {
				return line
			}
		}
		return ""
	}
	s, _ = waitFor("the takeover to complete", 90*time.Second, func(s string) bool {
		line := runLine(s)
		return strings.Contains(line, "· OK") || strings.Contains(line, "FAILED") || strings.Contains(line, "UNKNOWN") || strings.Contains(line, "REFUSED")
	})
	if !strings.Contains(runLine(s), "· OK") {
		t.Fatalf("takeover from the board did not end OK:\n%s", s)
	}
	waitFor("site B serves", 10*time.Second, func(s string) bool { return strings.Contains(strings.SplitN(s, "\n", 2)[0], "site B serves") })
	l.running("b-comms", "b-mre", "b-chat")
	tmux(t, "send-keys", "-t", session, "q")
}
