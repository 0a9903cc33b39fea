// Package spawn starts the test servers' processes (sshd, the brokers) so
// that Pdeathsig means what their harnesses want: "kill this server when
// the test binary dies", and nothing else.
//
// Linux sends a child its parent-death signal when the *thread* that
// forked it ends, not the process (prctl(2), PR_SET_PDEATHSIG; Go issue
// 27505). Go ends a thread when a goroutine exits while locked to it
// (runtime.LockOSThread without UnlockOSThread: the way a test leaves a
// thread that entered another network namespace). A server forked from a
// thread that some other goroutine later locked and left would be killed
// in the middle of a test: its port refuses, as a host that went down.
// Start forks from one thread kept for that alone, locked by a goroutine
// that never exits.
package spawn

import (
	"os/exec"
	"runtime"
	"sync"
)

type request struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	once     sync.Once
	requests chan request
)

func spawner() {
	runtime.LockOSThread() // never unlocked: this thread lives as long as the process
	for r := range requests {
		r.done <- r.cmd.Start()
	}
}

// Start is cmd.Start run on the spawning thread, which lives as long as
// the test binary: a parent-death signal set in cmd.SysProcAttr is sent
// when the test binary ends, never earlier.
func Start(cmd *exec.Cmd) error {
	once.Do(func() {
		requests = make(chan request)
		go spawner()
	})
	done := make(chan error, 1)
	requests <- request{cmd, done}
	return <-done
}
