package remote_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
)

// A local command gets PATH, HOME, LANG… and what the inventory declares
// (Target.Env), nothing else of sitectl's environment: not the credentials
// it reads for MongoDB or ActiveMQ.
func TestLocalCommandGetsOnlyTheDeclaredEnvironment(t *testing.T) {
	t.Setenv("SITECTL_MONGO_PASSWORD", "leaked-if-seen")
	t.Setenv("LANG", "C.UTF-8")
	r := remote.NewLocalRunner(remote.Target{Name: "ops-1", Local: true, Env: []string{"EF_HOME=/opt/ef"}}, remote.Options{})
	res, err := r.Run(t.Context(), "env")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("env: %v %+v", err, res)
	}
	env := string(res.Stdout)
	if strings.Contains(env, "leaked-if-seen") || strings.Contains(env, "SITECTL_MONGO_PASSWORD") {
		t.Errorf("a local command sees sitectl's credentials:\n%s", env)
	}
	for _, want := range []string{"EF_HOME=/opt/ef", "LANG=C.UTF-8", "PATH="} {
		if !strings.Contains(env, want) {
			t.Errorf("a local command's environment lacks %s:\n%s", want, env)
		}
	}
}

// The helper process of TestLocalCommandOutlivesNoDeadline: it runs a
// long local command with a 1 s deadline and is killed with SIGKILL by the
// test while the command runs.
func TestLocalHelperProcess(t *testing.T) {
	pidFile := os.Getenv("SITECTL_TEST_LOCAL_HELPER")
	if pidFile == "" {
		t.Skip("helper process only")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r := remote.NewLocalRunner(remote.Target{Name: "ops-1", Local: true}, remote.Options{})
	_, _ = r.Run(ctx, "echo $$ > "+pidFile+".tmp && mv "+pidFile+".tmp "+pidFile+" && exec sleep 60")
}

// sitectl killed with SIGKILL cannot kill the process group of a local
// command; like on an SSH host, coreutils timeout on this machine ends it
// by its deadline (1 s here, plus the 2 s kill grace), which is what
// resume waits for before acting again.
func TestLocalCommandOutlivesNoDeadline(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	c := exec.Command(os.Args[0], "-test.run=^TestLocalHelperProcess$")
	c.Env = append(os.Environ(), "SITECTL_TEST_LOCAL_HELPER="+pidFile)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	for i := 0; i < 500 && pid == 0; i++ {
		if b, err := os.ReadFile(pidFile); err == nil {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if pid == 0 {
		t.Fatal("the helper's command never started")
	}
	_ = c.Process.Signal(syscall.SIGKILL) // sitectl dies; its command does not
	_ = c.Wait()
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	// generous: the bound is 1 s + rounding + 2 s; without it, 60 s
	for i := 0; i < 200; i++ {
		if !alive(pid) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the local command (pid %d) still runs 20 s after its 1 s deadline: nothing bounds it once sitectl is gone", pid)
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}
