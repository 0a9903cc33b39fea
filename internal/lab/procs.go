package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cleanEnv is the environment of every process the lab starts: nothing of
// the caller's (no SITECTL_RUN_ID, no SSH agent, no proxies).
func cleanEnv(extra ...string) []string {
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root",
		"LANG=C.UTF-8",
	}
	if h, err := os.UserHomeDir(); err == nil {
		env[1] = "HOME=" + h
	}
	return append(env, extra...)
}

// findTool resolves a command on PATH, then in the sbin directories (a
// test may run with a user's PATH).
func findTool(name string) (string, error) {
	if strings.Contains(name, "/") {
		_, err := os.Stat(name)
		return name, err
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found on PATH nor in the sbin directories", name)
}

func tool(name string) string {
	if p, err := findTool(name); err == nil {
		return p
	}
	return name
}

// nsCmd builds a command that runs argv inside namespace ns ("" = the root
// namespace).
func nsCmd(ctx context.Context, ns string, argv ...string) *exec.Cmd {
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	return exec.CommandContext(ctx, tool(argv[0]), argv[1:]...)
}

// run runs a short command and returns its combined output; the error
// carries the output.
func run(ctx context.Context, ns string, argv ...string) (string, error) {
	cmd := nsCmd(ctx, ns, argv...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		where := ""
		if ns != "" {
			where = " (in " + ns + ")"
		}
		return string(out), fmt.Errorf("%s%s: %v: %s", strings.Join(argv, " "), where, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// launcher starts "$@" detached (its own session, stdin /dev/null, output
// appended to $1) and writes its pid into $2. The shell exits at once; the
// daemon is reparented to init, so it outlives `lab up` and is never a
// zombie of the caller.
const launcher = `log=$1; pidf=$2; shift 2; setsid "$@" >>"$log" 2>&1 </dev/null & echo $! >"$pidf"`

// launch starts a daemon in namespace ns and returns its pid (which is
// also its process group and session id).
func launch(ns, logFile, pidFile string, env []string, argv ...string) (int, error) {
	_ = os.Remove(pidFile)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args := append([]string{"sh", "-c", launcher, "sh", logFile, pidFile}, argv...)
	cmd := nsCmd(ctx, ns, args...)
	cmd.Env = cleanEnv(env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("launch %s in %s: %v: %s", argv[0], ns, err, out)
	}
	pid, err := readPid(pidFile)
	if err != nil {
		return 0, fmt.Errorf("launch %s in %s: %w", argv[0], ns, err)
	}
	return pid, nil
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("%s: bad pid %q", path, bytes.TrimSpace(b))
	}
	return pid, nil
}

// alive reports whether pid runs (zombies count as dead) and, when marker
// is not empty, whether its command line contains marker (so that a
// recycled pid is never taken for a lab process).
func alive(pid int, marker string) bool {
	if pid <= 1 || syscall.Kill(pid, 0) != nil {
		return false
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// state is the field after the parenthesised command name
	if i := bytes.LastIndexByte(st, ')'); i >= 0 && i+2 < len(st) && (st[i+2] == 'Z' || st[i+2] == 'X') {
		return false
	}
	if marker == "" {
		return true
	}
	cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.Contains(cl, []byte(marker))
}

// pidAlive reads a pid file and reports the pid if it is alive with marker.
func pidAlive(pidFile, marker string) (int, bool) {
	pid, err := readPid(pidFile)
	if err != nil {
		return 0, false
	}
	return pid, alive(pid, marker)
}

// stopGroup sends sig to the process group of pid (a lab daemon is its
// group's leader), waits up to grace for the whole group to end, then
// SIGKILLs what is left. It only acts when pid is alive with marker.
func stopGroup(pid int, marker string, sig syscall.Signal, grace time.Duration) {
	if !alive(pid, marker) {
		return
	}
	_ = syscall.Kill(-pid, sig)
	_ = syscall.Kill(pid, sig)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) && len(groupMembers(pid)) > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	killGroup(pid)
}

// killGroup SIGKILLs a process group and waits (up to 2s) until it is gone.
func killGroup(pgid int) {
	for i := 0; i < 100; i++ {
		m := groupMembers(pgid)
		if len(m) == 0 {
			return
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		for _, p := range m {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupMembers lists the live (not zombie) processes of a process group.
func groupMembers(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(st, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(st[i+1:])) // state ppid pgrp ...
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			out = append(out, pid)
		}
	}
	return out
}

// nsPids lists the processes living in a network namespace.
func nsPids(ns string) []int {
	out, err := exec.Command(tool("ip"), "netns", "pids", ns).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil && p > 1 && p != os.Getpid() {
			pids = append(pids, p)
		}
	}
	return pids
}

// waitFor polls cond every step until it returns nil or limit passes.
func waitFor(ctx context.Context, limit, step time.Duration, what string, cond func() error) error {
	deadline := time.Now().Add(limit)
	var last error
	for {
		if last = cond(); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s: %w", what, limit, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last: %v)", what, ctx.Err(), last)
		case <-time.After(step):
		}
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func writeFile(path string, data string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(data), mode)
}
