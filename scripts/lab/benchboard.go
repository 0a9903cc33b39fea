package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sitectl/sitectl/internal/lab"
)

// benchBoard runs `sitectl board` in tmux against the lab and prints its
// memory (VmRSS, VmHWM from /proc) and the refresh time it shows, sampled
// while it runs; halfway through it cuts site A and later heals it, so the
// figures include a site that stops answering.
func benchBoard(ctx context.Context, e *lab.Env, args []string) error {
	fs := flag.NewFlagSet("bench-board", flag.ContinueOnError)
	dur := fs.Duration("for", 2*time.Minute, "how long the board runs")
	every := fs.Duration("every", 10*time.Second, "time between samples")
	interval := fs.Duration("interval", time.Second, "the board's --interval")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		return fmt.Errorf("bench-board needs tmux (bash scripts/install-test-deps.sh)")
	}
	tmp, bin, err := buildSitectl(ctx, "sitectl-bench-board-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	sock := filepath.Join(tmp, "tmux.sock")
	tmux := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, "tmux", append([]string{"-S", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	defer tmux("kill-server")
	pid, err := startBoard(tmux, e, tmp, bin, *interval)
	if err != nil {
		return err
	}
	quiet := e.Out
	e.Out = nil
	defer func() { e.Out = quiet }()

	fmt.Printf("sitectl board --interval %s against the lab, 120x40, %s; site A cut at %s, healed at %s\n\n", *interval, *dur, *dur/2, *dur*3/4)
	fmt.Printf("%8s %10s %10s %12s  %s\n", "t", "VmRSS", "VmHWM", "last refresh", "verdict")
	start := time.Now()
	cut, healed := false, false
	defer func() {
		if cut && !healed {
			_ = e.Heal(ctx, "A")
		}
	}()
	for {
		el := time.Since(start)
		if !cut && el >= *dur/2 {
			if err := e.Fail(ctx, "A"); err != nil {
				return err
			}
			cut = true
		}
		if cut && !healed && el >= *dur*3/4 {
			if err := e.Heal(ctx, "A"); err != nil {
				return err
			}
			healed = true
		}
		rss, screen := sampleBoard(el, pid, tmux)
		if rss == 0 {
			return fmt.Errorf("the board (pid %s) is gone; the pane shows:\n%s", pid, screen)
		}
		if el >= *dur {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(*every):
		}
	}
}

// startBoard starts `sitectl board` (bin, with its state under tmp) in a
// 120x40 tmux session against the lab and returns its pid.
func startBoard(tmux func(args ...string) (string, error), e *lab.Env, tmp, bin string, interval time.Duration) (string, error) {
	cmd := fmt.Sprintf("exec env SITECTL_INVENTORY=%s SITECTL_STATE_DIR=%s %s board --interval %s",
		e.InventoryFile(), filepath.Join(tmp, "state"), bin, interval)
	if out, err := tmux("new-session", "-d", "-s", "board", "-x", "120", "-y", "40", "sh", "-c", cmd); err != nil {
		return "", fmt.Errorf("tmux: %v\n%s", err, out)
	}
	out, err := tmux("display-message", "-p", "-t", "board", "#{pane_pid}")
	if err != nil {
		return "", fmt.Errorf("tmux: %v\n%s", err, out)
	}
	return strings.TrimSpace(out), nil
}

// boardTook finds the refresh time in the board's header line.
var boardTook = regexp.MustCompile(`refreshed \S+ \(took ([^)]+)\)`)

// sampleBoard prints one sample at el: the board's memory, the refresh time
// and verdict its header shows. It returns the VmRSS (0: the board is gone)
// and the screen.
func sampleBoard(el time.Duration, pid string, tmux func(args ...string) (string, error)) (int, string) {
	rss, hwm := procKB(pid, "VmRSS"), procKB(pid, "VmHWM")
	screen, _ := tmux("capture-pane", "-p", "-t", "board")
	head, _, _ := strings.Cut(screen, "\n")
	t := "-"
	if m := boardTook.FindStringSubmatch(head); m != nil {
		t = m[1]
	}
	verdict := strings.TrimSpace(strings.SplitN(strings.TrimPrefix(head, "sitectl board · "), "  ", 2)[0])
	fmt.Printf("%8s %8.1fMB %8.1fMB %12s  %s\n", el.Round(time.Second), float64(rss)/1024, float64(hwm)/1024, t, verdict)
	return rss, screen
}

// procKB reads a "Name:  1234 kB" line of /proc/PID/status (0 if gone).
func procKB(pid, name string) int {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == name+":" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}
