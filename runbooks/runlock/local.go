package runlock

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sitectl/sitectl/runbooks/internal/durable"
)

// LocksDir is where the local locks of state directory dir live.
func LocksDir(dir string) string { return filepath.Join(dir, "locks") }

// LocalPath is the lock file of deployment: <dir>/locks/<deployment>.lock.
func LocalPath(dir, deployment string) (string, error) {
	if deployment == "" || deployment == "." || deployment == ".." ||
		strings.ContainsAny(deployment, "/\\\x00\n") {
		return "", fmt.Errorf("runlock: invalid deployment name %q", deployment)
	}
	return filepath.Join(LocksDir(dir), deployment+".lock"), nil
}

// LocalLock is a held local lock.
type LocalLock struct {
	path   string
	holder Holder

	mu       sync.Mutex
	released bool
}

// Path is the lock file.
func (l *LocalLock) Path() string { return l.path }

// Holder is the record written in the lock file.
func (l *LocalLock) Holder() Holder { return l.holder }

// AcquireLocal takes the local lock of deployment for h. If it is held it
// returns a *HeldError naming the holder. The lock file appears atomically
// with its whole content: it is written and fsynced under a temporary name
// and hard-linked into place, which fails if the lock exists (on a file
// system without hard links it falls back to O_CREATE|O_EXCL, write, fsync).
func AcquireLocal(dir, deployment string, h Holder) (*LocalLock, error) {
	p, err := LocalPath(dir, deployment)
	if err != nil {
		return nil, err
	}
	if err := h.validate(); err != nil {
		return nil, err
	}
	if h.Since.IsZero() {
		h.Since = time.Now().UTC()
	}
	if err := mkdirAllSync(filepath.Dir(p)); err != nil {
		return nil, fmt.Errorf("runlock: %w", err)
	}
	content := append(h.encode(), '\n')
	for attempt := 0; ; attempt++ {
		err := createExclusive(p, content)
		if err == nil {
			return &LocalLock{path: p, holder: h}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("runlock: create %s: %w", p, err)
		}
		held, ok := localHeld(p)
		if ok || attempt == 2 {
			return nil, held
		}
		// The lock vanished between our attempt and the read, or was
		// caught half-written: look again.
		time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
	}
}

// localHeld builds the HeldError for the lock at p. ok is false when the
// file is gone or not yet readable (worth retrying).
func localHeld(p string) (*HeldError, bool) {
	b, err := os.ReadFile(p)
	if err != nil {
		return &HeldError{Where: p, Detail: err.Error()}, false
	}
	h, err := decodeHolder(b)
	if err != nil {
		return &HeldError{Where: p, Detail: err.Error()}, false
	}
	return &HeldError{Holder: h, Where: p, Stale: IsStale(h)}, true
}

func createExclusive(p string, content []byte) error {
	dir := filepath.Dir(p)
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(p)+"-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	_, err = tmp.Write(content)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	lerr := os.Link(tmpName, p)
	if lerr == nil {
		return durable.SyncDir(dir)
	}
	if errors.Is(lerr, fs.ErrExist) {
		return lerr
	}
	// No hard links here: create in place.
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(p) // ours, and useless half-written
		return err
	}
	return durable.SyncDir(dir)
}

// Release removes the lock file if it still names this lock's run. If the
// lock was broken or now belongs to another run, it is left alone and the
// error wraps ErrNotOwner. Releasing twice is harmless.
func (l *LocalLock) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil
	}
	unlock, err := lockGuard(guardPath(l.path))
	if err != nil {
		return fmt.Errorf("runlock: release %s: %w", l.path, err)
	}
	defer unlock()
	b, err := os.ReadFile(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		l.released = true
		return fmt.Errorf("%w: %s was removed by someone else (sitectl unlock?)", ErrNotOwner, l.path)
	}
	if err != nil {
		return fmt.Errorf("runlock: release %s: %w", l.path, err)
	}
	h, err := decodeHolder(b)
	if err != nil || h.RunID != l.holder.RunID {
		l.released = true
		return fmt.Errorf("%w: %s now holds %s", ErrNotOwner, describe(h, err), l.path)
	}
	if err := os.Remove(l.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("runlock: release %s: %w", l.path, err)
	}
	l.released = true
	if err := durable.SyncDir(filepath.Dir(l.path)); err != nil {
		return fmt.Errorf("runlock: release %s: %w", l.path, err)
	}
	return nil
}

func describe(h Holder, err error) string {
	if err != nil {
		return "an unreadable record (" + err.Error() + ")"
	}
	return "run " + h.RunID
}

// ReadLocal returns the holder of deployment's local lock without taking
// it; the error wraps ErrNotLocked when there is none.
func ReadLocal(dir, deployment string) (Holder, error) {
	p, err := LocalPath(dir, deployment)
	if err != nil {
		return Holder{}, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Holder{}, fmt.Errorf("%w: %s", ErrNotLocked, p)
	}
	if err != nil {
		return Holder{}, fmt.Errorf("runlock: %w", err)
	}
	h, err := decodeHolder(b)
	if err != nil {
		return Holder{}, fmt.Errorf("runlock: %s: %w", p, err)
	}
	return h, nil
}

// BreakLocal removes deployment's local lock whoever holds it (sitectl
// unlock) and returns the holder it removed: zero if the record was
// unreadable. The error wraps ErrNotLocked when there was no lock.
func BreakLocal(dir, deployment string) (Holder, error) {
	p, err := LocalPath(dir, deployment)
	if err != nil {
		return Holder{}, err
	}
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return Holder{}, fmt.Errorf("%w: %s", ErrNotLocked, p)
	}
	unlock, err := lockGuard(guardPath(p))
	if err != nil {
		return Holder{}, fmt.Errorf("runlock: break %s: %w", p, err)
	}
	defer unlock()
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Holder{}, fmt.Errorf("%w: %s", ErrNotLocked, p)
	}
	h, _ := decodeHolder(b) // an unreadable record is removed all the same
	if err := os.Remove(p); err != nil {
		return h, fmt.Errorf("runlock: break %s: %w", p, err)
	}
	return h, durable.SyncDir(filepath.Dir(p))
}

// TakeOverLocal replaces deployment's local lock with one held by h, when
// the present holder is stale (its process is gone from this machine) or is
// the run being resumed (resumeOf) and not verifiably alive here. It returns
// the previous holder (zero if there was no lock) so that the caller can
// journal it; otherwise it fails with *HeldError as AcquireLocal does.
func TakeOverLocal(dir, deployment string, h Holder, resumeOf string) (*LocalLock, Holder, error) {
	p, err := LocalPath(dir, deployment)
	if err != nil {
		return nil, Holder{}, err
	}
	if err := h.validate(); err != nil {
		return nil, Holder{}, err
	}
	if err := mkdirAllSync(filepath.Dir(p)); err != nil {
		return nil, Holder{}, fmt.Errorf("runlock: %w", err)
	}
	// Under the guard no other takeover, release or break can change the
	// lock between our judging it and replacing it.
	unlock, err := lockGuard(guardPath(p))
	if err != nil {
		return nil, Holder{}, fmt.Errorf("runlock: take over %s: %w", p, err)
	}
	defer unlock()
	old, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		l, err := AcquireLocal(dir, deployment, h)
		return l, Holder{}, err
	}
	if err != nil {
		return nil, Holder{}, fmt.Errorf("runlock: %w", err)
	}
	prev, derr := decodeHolder(old)
	if derr != nil {
		return nil, Holder{}, &HeldError{Where: p, Detail: derr.Error()}
	}
	if !mayTakeOver(prev, resumeOf) {
		return nil, Holder{}, &HeldError{Holder: prev, Where: p, Stale: IsStale(prev)}
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, Holder{}, fmt.Errorf("runlock: take over %s: %w", p, err)
	}
	// A plain AcquireLocal may win the now-missing lock first: then it is
	// that run's, and we report it held.
	l, err := AcquireLocal(dir, deployment, h)
	if err != nil {
		return nil, Holder{}, err
	}
	return l, prev, nil
}

// guardPath is the flock side file of lock file p.
func guardPath(p string) string { return strings.TrimSuffix(p, ".lock") + ".guard" }

func randHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func mkdirAllSync(dir string) error {
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil { // the state directory is the operator's alone
		return err
	}
	return durable.SyncDir(filepath.Dir(dir))
}
