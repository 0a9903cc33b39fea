package runlock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sitectl/sitectl/adapters/remote"
)

// Remote names a lock file on a host of the deployment.
type Remote struct {
	Runner remote.Runner
	Host   string // inventory host name, for messages
	Path   string // lock file path on that host
}

// Entry is a lock found (Read), removed (Break) or replaced (TakeOver).
type Entry struct {
	Where  string // local path, or host:path
	Holder Holder
	Local  bool // the copy in this machine's state directory
}

// Lock is the run lock of one deployment: a local lock in the state
// directory and, when Remote is set, a lock file on a deployment host.
type Lock struct {
	Dir        string  // state directory
	Deployment string  // deployment name; the local lock is <Dir>/locks/<Deployment>.lock
	Remote     *Remote // optional; taken first, before Remotes
	// Remotes are further copies (one per site's lock host, the witness),
	// taken in this order after Remote, all or nothing, released in
	// reverse.
	Remotes []*Remote
	Holder  Holder // who takes the lock

	local   *LocalLock
	remotes []*RemoteLock
}

// all is Remote then Remotes.
func (l *Lock) all() []*Remote {
	var out []*Remote
	if l.Remote != nil {
		out = append(out, l.Remote)
	}
	return append(out, l.Remotes...)
}

// ownCopy reports a lock copy that this very run already holds: two lock
// hosts that share a file system (an NFS path, the lab's namespaces) see
// the copy taken on the first one. Its first taker releases it.
func (l *Lock) ownCopy(err error) bool {
	var he *HeldError
	return errors.As(err, &he) && he.Holder.RunID != "" && he.Holder.RunID == l.Holder.RunID
}

// releaseRemotes releases the remote copies taken so far, in reverse.
func (l *Lock) releaseRemotes(ctx context.Context) []error {
	var errs []error
	for i := len(l.remotes) - 1; i >= 0; i-- {
		if err := l.remotes[i].Release(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	l.remotes = nil
	return errs
}

// Acquire takes the local lock, then the remote one. If the remote lock
// cannot be taken (held, or the host unreachable: the error wraps the
// Runner's), the local lock is released again and the error returned.
func (l *Lock) Acquire(ctx context.Context) error {
	if l.local != nil {
		return errors.New("runlock: lock already held by this Lock")
	}
	local, err := AcquireLocal(l.Dir, l.Deployment, l.Holder)
	if err != nil {
		return err
	}
	l.Holder = local.Holder() // with Since filled in
	for _, r := range l.all() {
		rl, err := AcquireRemote(ctx, r.Runner, r.Host, r.Path, l.Holder)
		if l.ownCopy(err) {
			continue
		}
		if err != nil {
			return l.undo(ctx, local, err)
		}
		l.remotes = append(l.remotes, rl)
	}
	l.local = local
	return nil
}

// undo releases what a failed Acquire or TakeOver took (the remote copies,
// then the local one) and returns err with every release failure.
func (l *Lock) undo(ctx context.Context, local *LocalLock, err error) error {
	errs := append([]error{err}, l.releaseRemotes(ctx)...)
	if rerr := local.Release(); rerr != nil {
		errs = append(errs, rerr)
	}
	return errors.Join(errs...)
}

// TakeOver is Acquire for a resumed run (see TakeOverLocal): it replaces
// locks left by a dead holder or by the run resumeOf, and returns the
// holders it replaced so the caller can journal them. If the remote part
// fails, the local lock just taken is released again.
func (l *Lock) TakeOver(ctx context.Context, resumeOf string) ([]Entry, error) {
	if l.local != nil {
		return nil, errors.New("runlock: lock already held by this Lock")
	}
	local, prev, err := TakeOverLocal(l.Dir, l.Deployment, l.Holder, resumeOf)
	if err != nil {
		return nil, err
	}
	l.Holder = local.Holder()
	var taken []Entry
	if prev.RunID != "" {
		taken = append(taken, Entry{Where: local.Path(), Holder: prev, Local: true})
	}
	for _, r := range l.all() {
		rl, rprev, err := TakeOverRemote(ctx, r.Runner, r.Host, r.Path, l.Holder, resumeOf)
		if l.ownCopy(err) {
			continue
		}
		if err != nil {
			return taken, l.undo(ctx, local, err)
		}
		if rprev.RunID != "" {
			taken = append(taken, Entry{Where: rl.Where(), Holder: rprev})
		}
		l.remotes = append(l.remotes, rl)
	}
	l.local = local
	return taken, nil
}

// Release releases the remote lock, then the local one, and reports every
// failure (errors.Join). Releasing an unheld Lock does nothing.
func (l *Lock) Release(ctx context.Context) error {
	errs := l.releaseRemotes(ctx)
	if l.local != nil {
		if err := l.local.Release(); err != nil {
			errs = append(errs, err)
		}
		l.local = nil
	}
	return errors.Join(errs...)
}

// Held reports whether Acquire or TakeOver succeeded and Release has not
// been called since.
func (l *Lock) Held() bool { return l.local != nil }

// Read returns the locks that exist now, without taking them.
func (l *Lock) Read(ctx context.Context) ([]Entry, error) {
	return l.visit(ctx, ReadLocal, ReadRemote)
}

// Break removes both locks whoever holds them (sitectl unlock) and returns
// what it removed. A missing lock is not an error; every other failure is
// reported, and one part failing does not stop the other.
func (l *Lock) Break(ctx context.Context) ([]Entry, error) {
	return l.visit(ctx, BreakLocal, BreakRemote)
}

// visit applies local to the local copy and remote to every remote copy,
// and returns the copies they found (a missing one is not an error).
func (l *Lock) visit(ctx context.Context, local func(dir, deployment string) (Holder, error),
	remote func(ctx context.Context, r remote.Runner, host, path string) (Holder, error)) ([]Entry, error) {
	var found []Entry
	var errs []error
	p, err := LocalPath(l.Dir, l.Deployment)
	if err != nil {
		return nil, err
	}
	if h, err := local(l.Dir, l.Deployment); err == nil {
		found = append(found, Entry{Where: p, Holder: h, Local: true})
	} else if !errors.Is(err, ErrNotLocked) {
		errs = append(errs, err)
	}
	for _, r := range l.all() {
		if h, err := remote(ctx, r.Runner, r.Host, r.Path); err == nil {
			found = append(found, Entry{Where: where(r.Host, r.Path), Holder: h})
		} else if !errors.Is(err, ErrNotLocked) {
			errs = append(errs, err)
		}
	}
	return found, errors.Join(errs...)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("runlock: %v", err))
	}
	return b
}
