package runlock

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/internal/testenv/sshd"
)

// The local state directory is the operator's alone: locks dir 0700, lock
// files 0600.
func TestLocalLockIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l, err := AcquireLocal(dir, "prod", NewHolder("r1", "sitectl takeover"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	p, _ := LocalPath(dir, "prod")
	for path, want := range map[string]os.FileMode{LocksDir(dir): 0o700, p: 0o600} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s: mode %04o, want %04o", path, got, want)
		}
	}
}

// A remote lock under "~/" lands in the SSH user's home (the default is
// ~/.local/state/sitectl/remote/<deployment>.lock, not the world-writable
// /tmp), created with O_EXCL (noclobber), the file 0600 and its directory
// 0700: over a real sshd.
func TestRemoteLockUnderHomeIsPrivate(t *testing.T) {
	s := sshd.Start(t)
	r, err := remote.SSHDialer{}.Dial(t.Context(), s.Target("lockhost"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	home, err := os.UserHomeDir() // the sshd runs as this user
	if err != nil {
		t.Fatal(err)
	}
	sub := "sitectl-test-" + randHex()
	p := "~/.local/state/" + sub + "/prod.lock"
	local := filepath.Join(home, ".local", "state", sub)
	t.Cleanup(func() { os.RemoveAll(local) })
	ctx := context.Background()
	l, err := AcquireRemote(ctx, r, "lockhost", p, NewHolder("r1", "sitectl takeover"))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{local: 0o700, filepath.Join(local, "prod.lock"): 0o600} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatalf("the lock is not under the remote user's home: %v", err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s: mode %04o, want %04o", path, got, want)
		}
	}
	_, err = AcquireRemote(ctx, r, "lockhost", p, NewHolder("r2", "sitectl renounce"))
	if he, ok := err.(*HeldError); !ok || he.Holder.RunID != "r1" || !strings.Contains(he.Where, "lockhost:~/.local/state/"+sub) {
		t.Fatalf("second acquire: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(local, "prod.lock")); !os.IsNotExist(err) {
		t.Errorf("lock left after release: %v", err)
	}
}
