package remote_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/internal/testenv/sshd"
)

// The parsed known_hosts is shared by dials (one fleet, one file), but an
// edit of the file counts at the very next dial, even one that keeps its
// size (another ed25519 key) within the same clock tick.
func TestSSHKnownHostsEditedBetweenDialsIsReadAgain(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t)
	target := srv.Target("h1")
	good, err := os.ReadFile(target.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	bad := []byte(knownhosts.Line([]string{knownhosts.Normalize(srv.HostPort())}, other) + "\n")
	if len(bad) != len(good) {
		t.Fatalf("the test wants lines of one size: %q vs %q", bad, good)
	}
	st, err := os.Stat(target.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	d := remote.SSHDialer{Options: remote.Options{GlobalKnownHosts: "none"}}
	for i, c := range []struct {
		content  []byte
		mismatch bool
	}{{good, false}, {good, false}, {bad, true}, {good, false}, {bad, true}} {
		if err := os.WriteFile(target.KnownHosts, c.content, 0o600); err != nil {
			t.Fatal(err)
		}
		_ = os.Chtimes(target.KnownHosts, st.ModTime(), st.ModTime()) // the same mtime every time
		r, err := d.Dial(t.Context(), target)
		var hk *remote.HostKeyError
		switch {
		case c.mismatch && !(errors.As(err, &hk) && hk.Mismatch):
			t.Fatalf("dial %d, known_hosts holds another key: expected a host-key mismatch, got %v", i, err)
		case !c.mismatch && err != nil:
			t.Fatalf("dial %d, known_hosts holds the server's key: %v", i, err)
		}
		if r != nil {
			r.Close()
		}
	}
}
