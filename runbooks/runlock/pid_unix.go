//go:build unix

package runlock

import (
	"errors"
	"syscall"
)

// processAlive: kill(pid, 0) succeeds, or fails with EPERM (alive, another
// user's). Only ESRCH means gone.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return !errors.Is(err, syscall.ESRCH)
}
