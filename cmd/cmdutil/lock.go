package cmdutil

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sitectl/sitectl/checks/services"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks"
	"github.com/sitectl/sitectl/runbooks/runlock"
)

// Holder is who holds a run's lock: this process, its operator and
// machine, and the command line as Main received it.
func Holder(f *Factory, runID string) runlock.Holder {
	h := runlock.NewHolder(runID, "sitectl "+strings.Join(f.Args, " "))
	h.Since = f.Now().UTC()
	return h
}

// DeploymentLock is inv's run lock: the local copy in the state directory,
// one on each lock host (runlock.Hosts), reached through pool.
func DeploymentLock(f *Factory, inv *inventory.Inventory, pool *remote.Pool) (*runlock.Deployment, error) {
	dir, err := f.StateDir()
	if err != nil {
		return nil, err
	}
	return &runlock.Deployment{Dir: dir, Inventory: inv, Get: pool.Get}, nil
}

// Moves keeps the deployment's last completed move in <lock.path>.last on
// every lock host (runbooks.MoveLog), so that the cooldown sees a move
// made from another machine.
func Moves(inv *inventory.Inventory, pool *remote.Pool) runbooks.MoveLog {
	return &lockHostMoves{inv: inv, pool: pool}
}

type lockHostMoves struct {
	inv  *inventory.Inventory
	pool *remote.Pool
}

func (m *lockHostMoves) path() string { return m.inv.Lock.Path + ".last" }

// each runs fn on every lock host at once, with a short deadline; hosts
// that do not answer at the network level are skipped (a lost site's: the
// lock event of the run already says its copy was not taken).
func (m *lockHostMoves) each(ctx context.Context, fn func(ctx context.Context, host string, r remote.Runner) error) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hosts := runlock.Hosts(m.inv)
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			r, err := m.pool.Get(ctx, h)
			if err != nil {
				if services.Reach(err) != checks.SawDown {
					errs[i] = fmt.Errorf("%s: %w", h, err)
				}
				return
			}
			errs[i] = fn(ctx, h, r)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (m *lockHostMoves) Last(ctx context.Context) ([]runbooks.Move, error) {
	var mu sync.Mutex
	var out []runbooks.Move
	err := m.each(ctx, func(ctx context.Context, host string, r remote.Runner) error {
		res, err := r.Run(ctx, "cat -- "+remote.Quote(m.path())+" 2>/dev/null || true")
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(res.Stdout)) == 0 {
			return nil
		}
		var mv runbooks.Move
		if err := json.Unmarshal(bytes.TrimSpace(res.Stdout), &mv); err != nil {
			return fmt.Errorf("%s:%s: %w", host, m.path(), err)
		}
		mu.Lock()
		out = append(out, mv)
		mu.Unlock()
		return nil
	})
	return out, err
}

func (m *lockHostMoves) Record(ctx context.Context, mv runbooks.Move) error {
	b, err := json.Marshal(mv)
	if err != nil {
		return err
	}
	p := remote.Quote(m.path())
	return m.each(ctx, func(ctx context.Context, host string, r remote.Runner) error {
		// a temporary file per host: hosts may share the file system
		tmp := remote.Quote(m.path() + ".tmp." + host)
		cmd := fmt.Sprintf("umask 077 && printf '%%s\\n' %s > %s && mv -f -- %s %s", remote.Quote(string(b)), tmp, tmp, p)
		res, err := r.Run(ctx, cmd)
		if err == nil && res.ExitCode != 0 {
			err = fmt.Errorf("%s: exit %d: %s", host, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
		}
		return err
	})
}
