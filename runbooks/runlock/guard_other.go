//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package runlock

// lockGuard is a no-op where flock(2) is not available: the lock files are
// still created atomically, but a takeover racing a release is not excluded.
func lockGuard(path string) (unlock func(), err error) { return func() {}, nil }
