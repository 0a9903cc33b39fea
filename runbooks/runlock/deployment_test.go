package runlock

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/inventory"
)

// The deployment's lock policy against real shells: every site's first
// host and the witness (a prober) keep a copy; a lock host lost at the
// network level is missed, not waited for; an access problem is no loss
// and refuses the lock; unlock breaks the copies of one site or of all.
func TestDeploymentLockPolicy(t *testing.T) {
	inv, err := inventory.Load("../../inventory/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(Hosts(inv), ","); got != "a-app,b-app,w-arb" {
		t.Fatalf("lock hosts %s, want a-app,b-app,w-arb", got)
	}
	if HostOf(inv, "B") != "b-app" || HostOf(inv, "nope") != "" {
		t.Fatalf("HostOf: %q %q", HostOf(inv, "B"), HostOf(inv, "nope"))
	}
	dir := t.TempDir()
	inv.Lock.Path = filepath.Join(t.TempDir(), "cc.lock") // one file: every "host" is this machine
	sh := &shRunner{}
	var failB error // how b-app fails; nil: it answers
	get := func(_ context.Context, host string) (remote.Runner, error) {
		if host == "b-app" && failB != nil {
			return nil, failB
		}
		return sh, nil
	}
	d := &Deployment{Dir: dir, Inventory: inv, Get: get}
	ctx := t.Context()

	// b-app lost at the network level: missed, the rest taken
	failB = &remote.HostError{Host: "b-app", Addr: "b-app:22", Op: remote.OpDial, Err: syscall.ECONNREFUSED}
	release, missed, err := d.Acquire(ctx, Holder{RunID: "run1"}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(missed) != 1 || missed[0].Host != "b-app" || missed[0].Site != "B" {
		t.Fatalf("missed %+v, want b-app of site B", missed)
	}
	// another run is refused while it is held
	if _, _, err := d.Acquire(ctx, Holder{RunID: "run2"}, "", nil); !IsHeld(err) {
		t.Fatalf("second run: %v, want the lock held", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}

	// an access problem on a lock host is not a loss: refused, named
	failB = &remote.HostError{Host: "b-app", Addr: "b-app:22", Op: remote.OpAuth, Err: errors.New("unable to authenticate")}
	if _, _, err := d.Acquire(ctx, Holder{RunID: "run3"}, "", nil); err == nil || !strings.Contains(err.Error(), "access problem on lock host b-app (site B), not a loss") {
		t.Fatalf("access problem: %v", err)
	}

	// unlock of site A breaks the local copy and a-app's, and says whose
	failB = nil
	if _, _, err := d.Acquire(ctx, Holder{RunID: "run4", User: "alice", Hostname: "ops1", PID: 42}, "", nil); err != nil {
		t.Fatal(err)
	}
	broken, err := d.Break(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	if len(broken) != 2 || !strings.HasPrefix(broken[0], "local (held by run run4, alice@ops1 pid 42 since ") ||
		broken[1] != "a-app:"+inv.Lock.Path+" (held by run run4, alice@ops1 pid 42)" {
		t.Fatalf("broken %q", broken)
	}
	if broken, err := d.Break(ctx, ""); err != nil || len(broken) != 0 {
		t.Fatalf("nothing left to break: %q %v", broken, err)
	}
}
