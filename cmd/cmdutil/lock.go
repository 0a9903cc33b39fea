package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/journal"
	"github.com/sitectl/sitectl/runbooks/runlock"
)

// LockHost is the host that keeps the remote copy of the lock for site: the
// site's first host ("" when the site has none).
func LockHost(inv *inventory.Inventory, site string) string {
	s := inv.Site(site)
	if s == nil || len(s.Hosts) == 0 {
		return ""
	}
	return s.Hosts[0].Name
}

func holder(f *Factory, runID string) runlock.Holder {
	h := runlock.NewHolder(runID, "sitectl "+strings.Join(os.Args[1:], " "))
	h.Since = f.Now().UTC()
	return h
}

// AcquireLock takes the deployment's run lock locally and on the target
// site's first host. A resumed run takes over the lock its predecessor left
// behind when that process is gone.
func AcquireLock(ctx context.Context, f *Factory, inv *inventory.Inventory, pool *remote.Pool, site, runID, resumeOf string) (func() error, error) {
	dir, err := f.StateDir()
	if err != nil {
		return nil, err
	}
	host := LockHost(inv, site)
	r, err := pool.Get(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s to take the run lock there: %w", host, err)
	}
	l := &runlock.Lock{Dir: dir, Deployment: inv.Deployment, Holder: holder(f, runID),
		Remote: &runlock.Remote{Runner: r, Host: host, Path: inv.Lock.Path}}
	if resumeOf != "" {
		prev, err := l.TakeOver(ctx, resumeOf)
		if err != nil {
			return nil, err
		}
		for _, e := range prev {
			msg := fmt.Sprintf("took over the lock %s left by run %s (%s@%s pid %d, gone)", e.Where, e.Holder.RunID, e.Holder.User, e.Holder.Hostname, e.Holder.PID)
			fmt.Fprintln(f.IO.ErrOut, msg)
			event.Note(ctx, msg) // journaled as a lock event of this run
		}
	} else if err := l.Acquire(ctx); err != nil {
		return nil, err
	}
	return func() error {
		// release even when the run was cancelled
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return l.Release(rctx)
	}, nil
}

// IsLockHeld reports whether err says another run holds the lock.
func IsLockHeld(err error) bool {
	var he *runlock.HeldError
	return errors.As(err, &he)
}

// BreakLocks removes the deployment's lock locally and on the first host of
// each site (or only site), and journals what it broke with the reason.
func BreakLocks(ctx context.Context, f *Factory, inv *inventory.Inventory, pool *remote.Pool, site, reason string) ([]string, string, error) {
	dir, err := f.StateDir()
	if err != nil {
		return nil, "", err
	}
	runID := journal.NewRunID(f.Now())
	jw, err := journal.Create(dir, runID, journal.WithRedactor(f.Redactor()))
	if err != nil {
		return nil, "", err
	}
	defer jw.Close()
	st := &event.Stamper{RunID: runID, Next: jw}
	h := holder(f, runID)
	st.Emit(event.Event{Kind: event.RunStart, Run: &event.RunInfo{ID: runID, Runbook: "unlock", Site: site, Deployment: inv.Deployment, Inventory: inv.File,
		InventoryDigest: inv.Digest, User: h.User, Hostname: h.Hostname, PID: h.PID, Version: f.Version, Args: os.Args[1:], Mode: "unlock", Reason: reason, Started: f.Now()}})
	var broken []string
	var errs []error
	if prev, err := runlock.BreakLocal(dir, inv.Deployment); err != nil {
		if !errors.Is(err, runlock.ErrNotLocked) {
			errs = append(errs, err)
		}
	} else {
		broken = append(broken, fmt.Sprintf("local (held by run %s, %s@%s pid %d since %s)", prev.RunID, prev.User, prev.Hostname, prev.PID, prev.Since.Format("2006-01-02 15:04:05")))
	}
	for _, s := range inv.Sites {
		if site != "" && s.Name != site {
			continue
		}
		host := LockHost(inv, s.Name)
		r, err := pool.Get(ctx, host)
		if err != nil {
			errs = append(errs, fmt.Errorf("site %s: cannot reach %s: %w", s.Name, host, err))
			continue
		}
		prev, err := runlock.BreakRemote(ctx, r, host, inv.Lock.Path)
		if err != nil {
			if !errors.Is(err, runlock.ErrNotLocked) {
				errs = append(errs, err)
			}
		} else {
			broken = append(broken, fmt.Sprintf("%s:%s (held by run %s, %s@%s pid %d)", host, inv.Lock.Path, prev.RunID, prev.User, prev.Hostname, prev.PID))
		}
	}
	for _, b := range broken {
		st.Emit(event.Event{Kind: event.Lock, Message: "broke lock " + b + "; reason: " + reason})
	}
	outcome := event.OK
	msg := fmt.Sprintf("broke %d lock(s)", len(broken))
	err = errors.Join(errs...)
	if err != nil {
		outcome, msg = event.Failed, err.Error()
	}
	st.Emit(event.Event{Kind: event.RunEnd, Outcome: outcome, Message: msg})
	return broken, jw.Path(), err
}
