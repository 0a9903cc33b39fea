package runlock

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sitectl/sitectl/checks/services"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/inventory"
)

// The deployment's lock policy: which hosts keep a copy, in which order a
// run takes them, which of them a run may go without, and how an operator
// breaks them.

// HostOf is the host that keeps the remote copy of the lock for site: the
// site's first host ("" when the site has none).
func HostOf(inv *inventory.Inventory, site string) string {
	s := inv.Site(site)
	if s == nil || len(s.Hosts) == 0 {
		return ""
	}
	return s.Hosts[0].Name
}

// Hosts are the hosts that keep a copy of the deployment's run lock, in
// the fixed order every run takes them: each site's first host, then the
// witness's first host when sitectl reaches it anyway (it is a prober:
// failover.probers, by default).
func Hosts(inv *inventory.Inventory) []string {
	var out []string
	for _, s := range inv.Sites {
		if h := HostOf(inv, s.Name); h != "" {
			out = append(out, h)
		}
	}
	if inv.Witness != nil && len(inv.Witness.Hosts) > 0 {
		w := inv.Witness.Hosts[0].Name
		for _, s := range inv.Sites {
			if slices.ContainsFunc(inv.ProbersOf(s.Name), func(h *inventory.Host) bool { return h.Name == w }) {
				return append(out, w)
			}
		}
	}
	return out
}

// Miss is a lock host whose copy of the run lock was not taken: it did
// not answer at the network level (its site may be lost). The run decides,
// once it has observed, whether it may go on without it.
type Miss struct {
	Host, Site string
	Err        error
}

// Deployment is the run lock of one deployment: a local copy in Dir, and a
// copy on every lock host (Hosts) reached through Get.
type Deployment struct {
	Dir       string
	Inventory *inventory.Inventory
	Get       func(ctx context.Context, host string) (remote.Runner, error)
}

// Acquire takes the lock for h: locally, then a copy on every lock host in
// order, all or nothing, so that two operators on two machines cannot move
// the deployment at once, whichever site each targets. A lock host that
// cannot be reached at the network level is not waited for: it is returned
// in missed. An access problem, or a host that answers the network but not
// in time, is no loss: the lock is refused. A resumed run (resumeOf) takes
// over the lock its predecessor left behind when that process is gone;
// note is told of each copy taken over.
func (d *Deployment) Acquire(ctx context.Context, h Holder, resumeOf string, note func(string)) (release func() error, missed []Miss, err error) {
	inv := d.Inventory
	hosts := Hosts(inv)
	runners := make([]remote.Runner, len(hosts))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, host := range hosts { // connect to every lock host at once
		wg.Go(func() { runners[i], errs[i] = d.Get(ctx, host) })
	}
	wg.Wait()
	l := &Lock{Dir: d.Dir, Deployment: inv.Deployment, Holder: h}
	for i, host := range hosts {
		if errs[i] != nil {
			site := ""
			if hh := inv.Host(host); hh != nil {
				site = hh.Site
			}
			switch services.Reach(errs[i]) {
			case checks.SawDown:
			case checks.SawAccess:
				return nil, nil, fmt.Errorf("access problem on lock host %s (site %s), not a loss: the site is UNKNOWN until it is fixed; fix it, then re-run: %w", host, site, errs[i])
			default:
				return nil, nil, fmt.Errorf("lock host %s (site %s) answers the network but not in time (not a loss); re-run when it answers: %w", host, site, errs[i])
			}
			missed = append(missed, Miss{Host: host, Site: site, Err: errs[i]})
			continue
		}
		l.Remotes = append(l.Remotes, &Remote{Runner: runners[i], Host: host, Path: inv.Lock.Path})
	}
	if resumeOf != "" {
		prev, err := l.TakeOver(ctx, resumeOf)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range prev {
			note(fmt.Sprintf("took over the lock %s left by run %s (%s@%s pid %d, gone)", e.Where, e.Holder.RunID, e.Holder.User, e.Holder.Hostname, e.Holder.PID))
		}
	} else if err := l.Acquire(ctx); err != nil {
		return nil, nil, err
	}
	return func() error {
		// release even when the run was cancelled
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return l.Release(rctx)
	}, missed, nil
}

// Break removes the lock locally and on the lock host of each site (or of
// site only, when it is not ""): broken describes each copy removed and who
// held it. Copies that were not there are not errors.
func (d *Deployment) Break(ctx context.Context, site string) (broken []string, err error) {
	inv := d.Inventory
	l := &Lock{Dir: d.Dir, Deployment: inv.Deployment}
	var errs []error
	for _, host := range Hosts(inv) {
		h := inv.Host(host)
		if site != "" && (h == nil || h.Site != site) {
			continue
		}
		r, err := d.Get(ctx, host)
		if err != nil {
			errs = append(errs, fmt.Errorf("site %s: cannot reach %s: %w", h.Site, host, err))
			continue
		}
		l.Remotes = append(l.Remotes, &Remote{Runner: r, Host: host, Path: inv.Lock.Path})
	}
	removed, err := l.Break(ctx)
	for _, e := range removed {
		h := e.Holder
		desc := fmt.Sprintf("%s (held by run %s, %s@%s pid %d)", e.Where, h.RunID, h.User, h.Hostname, h.PID)
		if e.Local {
			desc = fmt.Sprintf("local (held by run %s, %s@%s pid %d since %s)", h.RunID, h.User, h.Hostname, h.PID, h.Since.Format("2006-01-02 15:04:05"))
		}
		broken = append(broken, desc)
	}
	return broken, errors.Join(append(errs, err)...)
}

// IsHeld reports whether err says another run holds the lock.
func IsHeld(err error) bool {
	var he *HeldError
	return errors.As(err, &he)
}
