package spawn

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// A server started by a goroutine locked to its thread, which then exits
// (so Go ends the thread), is not sent its parent-death signal: started
// with exec.Cmd.Start from that thread it would be (SIGKILL, at once).
func TestServerOutlivesTheThreadThatAskedForIt(t *testing.T) {
	var cmd *exec.Cmd
	var tid int
	// Go never ends the main thread (a goroutine that exits locked to it
	// wedges it instead): ask from another one. The goroutine that landed
	// on the main thread keeps it, so the next one gets another.
	for tid = os.Getpid(); tid == os.Getpid(); {
		type asked struct {
			cmd *exec.Cmd
			tid int
			err error
		}
		rc := make(chan asked, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
			a := asked{tid: syscall.Gettid()}
			if a.tid == os.Getpid() {
				rc <- a
				return
			}
			a.cmd = exec.Command("sleep", "60")
			a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			a.err = Start(a.cmd)
			rc <- a
		}()
		a := <-rc
		if a.err != nil {
			t.Fatalf("start sleep: %v", a.err)
		}
		cmd, tid = a.cmd, a.tid
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// Wait for the asking thread to be gone (its parent-death signals are
	// sent as it exits), then stop the child with a signal of our own: Wait
	// tells which came first, SIGKILL being the parent-death one.
	task := fmt.Sprintf("/proc/self/task/%d", tid)
	guard := time.Now().Add(time.Minute) // a failure guard, not a timing
	for {
		if _, err := os.Stat(task); errors.Is(err, fs.ErrNotExist) {
			break
		}
		if time.Now().After(guard) {
			t.Fatalf("%s still there a minute after its goroutine returned locked to it: Go no longer ends such threads?", task)
		}
		time.Sleep(time.Millisecond) // a poll: the thread ends when its goroutine has returned
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signal the child: %v (it is already gone)", err)
	}
	err := cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		t.Fatalf("child ended with %v; expected the test's SIGTERM", err)
	}
	if ws.Signal() != syscall.SIGTERM {
		t.Fatalf("child ended by %q before the test's SIGTERM: the parent-death signal sent when the thread that asked for it ended", ws.Signal())
	}
}
