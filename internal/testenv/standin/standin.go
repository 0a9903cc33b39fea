// Package standin provides stand-in services for tests: a real control
// script (start|stop|status NAME) that runs a real background process per
// service, with switches to make a start fail or take a while. The script is
// what an inventory's start/stop/status commands call, locally or over SSH.
package standin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Script is the control script. Exit codes follow LSB: status 0 running,
// 3 stopped. A file NAME.fail makes start print it on stderr and exit 1;
// NAME.delay makes start sleep that many seconds first.
const Script = `#!/bin/sh
set -u
dir="$(cd "$(dirname "$0")" && pwd)/state"
verb="$1"; name="$2"
pidf="$dir/$name.pid"
mkdir -p "$dir"
# alive and not a zombie (PID 1 in a container may never reap orphans)
running() {
  [ -f "$pidf" ] || return 1
  pid="$(cat "$pidf")"
  kill -0 "$pid" 2>/dev/null || return 1
  ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}
case "$verb" in
start)
  if [ -f "$dir/$name.fail" ]; then cat "$dir/$name.fail" >&2; exit 1; fi
  if running; then echo "$name already running"; exit 0; fi
  if [ -f "$dir/$name.delay" ]; then sleep "$(cat "$dir/$name.delay")"; fi
  setsid sleep 1000000 >/dev/null 2>&1 </dev/null &
  echo $! > "$pidf"
  echo "$name started"
  ;;
stop)
  if running; then kill "$(cat "$pidf")"; fi
  rm -f "$pidf"
  echo "$name stopped"
  ;;
status)
  if running; then exit 0; fi
  exit 3
  ;;
*) echo "usage: $0 start|stop|status NAME" >&2; exit 2 ;;
esac
`

// Services is a directory holding the script and the services' state.
type Services struct {
	Dir    string
	Script string
	t      testing.TB
}

// New writes the script into a temp dir and stops every stand-in at cleanup.
func New(t testing.TB) *Services {
	t.Helper()
	dir := t.TempDir()
	s := &Services{Dir: dir, Script: filepath.Join(dir, "svc.sh"), t: t}
	if err := os.WriteFile(s.Script, []byte(Script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(s.state(), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.KillAll)
	return s
}

func (s *Services) state() string { return filepath.Join(s.Dir, "state") }

// Cmd is the shell command for verb (start, stop, status) on a service.
func (s *Services) Cmd(verb, name string) string { return s.Script + " " + verb + " " + name }

// Running reports whether the service's process is alive.
func (s *Services) Running(name string) bool {
	return exec.Command(s.Script, "status", name).Run() == nil
}

// Start starts a service directly (test set-up).
func (s *Services) Start(name string) {
	s.t.Helper()
	if out, err := exec.Command(s.Script, "start", name).CombinedOutput(); err != nil {
		s.t.Fatalf("start %s: %v: %s", name, err, out)
	}
}

// Kill kills a service's process without its stop command (a crash).
func (s *Services) Kill(name string) {
	if pid := s.pid(name); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for i := 0; i < 100 && alive(pid); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// Fail makes every start of name fail with msg on stderr until Fix.
func (s *Services) Fail(name, msg string) {
	s.t.Helper()
	if err := os.WriteFile(filepath.Join(s.state(), name+".fail"), []byte(msg+"\n"), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// Fix undoes Fail.
func (s *Services) Fix(name string) { _ = os.Remove(filepath.Join(s.state(), name+".fail")) }

// Delay makes every start of name take d first.
func (s *Services) Delay(name string, d time.Duration) {
	s.t.Helper()
	if err := os.WriteFile(filepath.Join(s.state(), name+".delay"), []byte(fmt.Sprintf("%.3f", d.Seconds())), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func (s *Services) pid(name string) int {
	b, err := os.ReadFile(filepath.Join(s.state(), name+".pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// KillAll stops every stand-in process (cleanup).
func (s *Services) KillAll() {
	m, _ := filepath.Glob(filepath.Join(s.state(), "*.pid"))
	for _, p := range m {
		s.Kill(strings.TrimSuffix(filepath.Base(p), ".pid"))
	}
}

// alive reports whether pid is a live process (zombies count as dead).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "State:") {
			return !strings.Contains(line, "Z")
		}
	}
	return true
}
