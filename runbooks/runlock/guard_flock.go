//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package runlock

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// guardTimeout bounds the wait for another process's lock operation, which
// holds the guard for milliseconds.
const guardTimeout = 10 * time.Second

// lockGuard serialises the operations that check a lock file and then change
// it (take over, release, break) among all processes of this machine, with
// flock(2) on a side file. The kernel drops the guard when its holder dies,
// so it cannot go stale. Acquire needs no guard: it only creates a missing
// lock, atomically.
func lockGuard(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(guardTimeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("flock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("flock %s: another sitectl process has held it for %s", path, guardTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
