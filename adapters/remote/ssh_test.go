package remote_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sitectl/sitectl/adapters/netwatch"
	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/internal/testenv/closedport"
	"github.com/sitectl/sitectl/internal/testenv/sshd"
)

func dial(t *testing.T, target remote.Target, opts remote.Options) remote.Runner {
	t.Helper()
	r, err := remote.SSHDialer{Options: opts}.Dial(t.Context(), target)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestSSHRun(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t)
	r := dial(t, srv.Target("web-a1"), remote.Options{})
	checkRunCases(t, r)
}

func TestSSHConcurrentRunsOverOneConnection(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t) // sshd's default MaxSessions (10) applies
	r := dial(t, srv.Target("web-a1"), remote.Options{})
	start := time.Now()
	checkConcurrent(t, r, 20)
	t.Logf("20 concurrent runs of 0.2s took %v", time.Since(start))
	if n := strings.Count(srv.Log(), "Accepted publickey"); n != 1 {
		t.Errorf("sshd accepted %d logins, want 1 (one connection)", n)
	}
}

func TestSSHDeadlineAndCancelKillRemoteCommand(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t)
	r := dial(t, srv.Target("web-a1"), remote.Options{})
	checkKills(t, r)
}

func TestSSHRemoteTimeoutWrapsCommand(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t)
	r := dial(t, srv.Target("web-a1"), remote.Options{})
	// With a deadline the command runs under coreutils timeout, which leads
	// the session (exec), so its parent is sshd.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := r.Run(ctx, `ps -o args= -p "$PPID"`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(res.Stdout), "timeout -k 2 30 sh -c ") {
		t.Errorf("parent of the command = %q, want the timeout wrapper", res.Stdout)
	}
	// The command's own exit codes still come through.
	res, err = r.Run(ctx, "exit 124")
	if err != nil || res.ExitCode != 124 {
		t.Errorf("exit 124 under a deadline: %+v, %v", res, err)
	}
}

func TestSSHConnectionLost(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t)
	r := dial(t, srv.Target("web-a1"), remote.Options{})
	time.AfterFunc(500*time.Millisecond, srv.DropConnections)
	start := time.Now()
	_, err := r.Run(t.Context(), "sleep 300")
	if !errors.Is(err, remote.ErrConnLost) {
		t.Fatalf("err = %v, want ErrConnLost", err)
	}
	if d := time.Since(start); d > time.Minute { // far below the command's 5 minutes: a guard, not a timing
		t.Errorf("took %v to notice", d)
	}
	if !strings.Contains(err.Error(), "web-a1") {
		t.Errorf("error does not name the host: %v", err)
	}
	if a, ok := r.(interface{ Alive() bool }); !ok || a.Alive() {
		t.Errorf("runner still alive after the connection dropped")
	}
	_, err = r.Run(t.Context(), "true")
	if !errors.Is(err, remote.ErrNotStarted) {
		t.Errorf("Run on a dead connection: %v, want ErrNotStarted", err)
	}
}

func TestSSHRunAfterClose(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t)
	r := dial(t, srv.Target("web-a1"), remote.Options{})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, err := r.Run(t.Context(), "true")
	if !errors.Is(err, remote.ErrNotStarted) {
		t.Errorf("Run after Close: %v, want ErrNotStarted", err)
	}
}

func TestSSHKeepAliveDetectsDeadPeer(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t)
	px := newProxy(t, srv.HostPort())
	target := srv.Target("web-a1")
	target.Port = px.port
	// The proxy listens on another port than the one in known_hosts.
	addKnownHost(t, target.KnownHosts, net.JoinHostPort("127.0.0.1", strconv.Itoa(px.port)), srv.HostPublicKey)
	r := dial(t, target, remote.Options{KeepAlive: 200 * time.Millisecond})
	if _, err := r.Run(t.Context(), "true"); err != nil {
		t.Fatal(err)
	}
	// Once the command runs, the network goes silent; TCP stays up.
	token := "sitectl-test-" + randHex(t)
	// sshd does not kill a command whose client went away.
	t.Cleanup(func() { _ = exec.Command("pkill", "-f", token).Run() })
	frozen := make(chan time.Time, 1)
	go func() {
		for len(pgrep(t, token)) == 0 {
			time.Sleep(20 * time.Millisecond)
		}
		px.freeze()
		frozen <- time.Now()
	}()
	_, err := r.Run(t.Context(), "sleep 30; : "+token)
	if !errors.Is(err, remote.ErrConnLost) {
		t.Fatalf("err = %v, want ErrConnLost", err)
	}
	// without keepalives a frozen peer is never noticed: a guard, not a timing
	if d := time.Since(<-frozen); d > time.Minute {
		t.Errorf("dead peer noticed after %v", d)
	}
}

// A warm connection whose link went silent: the next command cannot even
// open its session before its deadline. The connection is then checked
// (one keepalive, killGrace to answer) and given up, so a pool redials
// instead of hanging every later command on it (keepalives are off here:
// nothing else would notice).
func TestSSHSessionOpenTimeoutGivesUpDeadConnection(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t)
	px := newProxy(t, srv.HostPort())
	target := srv.Target("web-a1")
	target.Port = px.port
	addKnownHost(t, target.KnownHosts, net.JoinHostPort("127.0.0.1", strconv.Itoa(px.port)), srv.HostPublicKey)
	r := dial(t, target, remote.Options{KeepAlive: -1})
	if _, err := r.Run(t.Context(), "true"); err != nil {
		t.Fatal(err)
	}
	px.freeze()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := r.Run(ctx, "true"); !errors.Is(err, remote.ErrNotStarted) {
		t.Fatalf("err = %v, want ErrNotStarted (no session opened)", err)
	}
	a := r.(interface{ Alive() bool })
	for deadline := time.Now().Add(4 * time.Second); a.Alive(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the silent connection is still taken as alive 4s after a session could not be opened")
		}
	}
}

// When the network is gone at the deadline, the client cannot kill the
// command; the host's timeout must.
func TestSSHDeadlineEnforcedOnHostWithoutNetwork(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t)
	px := newProxy(t, srv.HostPort())
	target := srv.Target("web-a1")
	target.Port = px.port
	addKnownHost(t, target.KnownHosts, net.JoinHostPort("127.0.0.1", strconv.Itoa(px.port)), srv.HostPublicKey)
	r := dial(t, target, remote.Options{KeepAlive: -1})
	token := "sitectl-test-" + randHex(t)
	go func() {
		for len(pgrep(t, token)) == 0 {
			time.Sleep(20 * time.Millisecond)
		}
		px.freeze()
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := r.Run(ctx, "sleep 300; : "+token)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Minute { // a guard against a hang, not a timing
		t.Errorf("Run took %v", d)
	}
	// The kill could not open a session: the connection is given up (with
	// keepalives off, nothing else would notice), so a pool redials
	// instead of hanging the next command on a dead link.
	if a, ok := r.(interface{ Alive() bool }); !ok || a.Alive() {
		t.Errorf("the connection is still taken as alive after a kill the server never answered")
	}
	// timeout sent TERM at 2s (KILL at 4s) on the host.
	deadline := time.Now().Add(4 * time.Second)
	for len(pgrep(t, token)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("command still running on the host %v after its deadline", time.Since(start)-2*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSSHHostKeyChecks(t *testing.T) {
	t.Parallel()
	servers := sshd.StartN(t, 5)
	otherKey := newEd25519(t)

	cases := []struct {
		name      string
		prepare   func(t *testing.T, srv *sshd.Server, target *remote.Target)
		check     func(t *testing.T, e *remote.HostKeyError, msg string, srv *sshd.Server)
		wantOK    bool
		noKnownHS bool
	}{
		{
			name: "unknown host",
			prepare: func(t *testing.T, srv *sshd.Server, target *remote.Target) {
				// known_hosts exists but holds another host only.
				writeFile(t, target.KnownHosts, knownhosts.Line([]string{"[127.0.0.1]:1"}, srv.HostPublicKey)+"\n")
			},
			check: func(t *testing.T, e *remote.HostKeyError, msg string, srv *sshd.Server) {
				if e.Mismatch || e.Revoked || e.KnownHostsMissing {
					t.Errorf("flags: %+v", e)
				}
				// the key just seen, ready to paste once verified; never a
				// fresh ssh-keyscan, which could fetch another key
				line := knownhosts.Line([]string{knownhosts.Normalize(srv.HostPort())}, srv.HostPublicKey)
				want := fmt.Sprintf("the server offered ssh-ed25519 %s. ", ssh.FingerprintSHA256(srv.HostPublicKey))
				if !strings.Contains(msg, want) || !strings.Contains(msg, "then add this line to "+e.KnownHosts+": "+line) || e.Line != line {
					t.Errorf("message %q lacks the fingerprint or the known_hosts line %q", msg, line)
				}
				if strings.Contains(msg, "ssh-keyscan") {
					t.Errorf("message proposes a fresh ssh-keyscan: %q", msg)
				}
			},
		},
		{
			name: "mismatch",
			prepare: func(t *testing.T, srv *sshd.Server, target *remote.Target) {
				writeFile(t, target.KnownHosts, knownhosts.Line([]string{knownhosts.Normalize(srv.HostPort())}, otherKey)+"\n")
			},
			check: func(t *testing.T, e *remote.HostKeyError, msg string, srv *sshd.Server) {
				if !e.Mismatch {
					t.Errorf("Mismatch = false")
				}
				if !strings.Contains(msg, "HOST KEY MISMATCH") {
					t.Errorf("message lacks HOST KEY MISMATCH")
				}
				if strings.Contains(msg, "ssh-keyscan") || strings.Contains(msg, ">>") {
					t.Errorf("a mismatch message must not suggest adding the key")
				}
				if !strings.Contains(msg, ssh.FingerprintSHA256(otherKey)) {
					t.Errorf("message lacks the stored key's fingerprint")
				}
			},
		},
		{
			name: "revoked",
			prepare: func(t *testing.T, srv *sshd.Server, target *remote.Target) {
				line := "@revoked * " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(srv.HostPublicKey)))
				writeFile(t, target.KnownHosts, line+"\n")
			},
			check: func(t *testing.T, e *remote.HostKeyError, msg string, srv *sshd.Server) {
				if !e.Revoked || !strings.Contains(msg, "REVOKED") {
					t.Errorf("Revoked = %v, message %q", e.Revoked, msg)
				}
			},
		},
		{
			name: "known_hosts missing",
			prepare: func(t *testing.T, srv *sshd.Server, target *remote.Target) {
				target.KnownHosts = filepath.Join(t.TempDir(), "nope", "known_hosts")
			},
			check: func(t *testing.T, e *remote.HostKeyError, msg string, srv *sshd.Server) {
				if !e.KnownHostsMissing || !strings.Contains(msg, "does not exist") || !strings.Contains(msg, "mkdir -p -m 700") || !strings.Contains(msg, "add this line to "+e.KnownHosts+": "+e.Line) {
					t.Errorf("KnownHostsMissing = %v, message %q", e.KnownHostsMissing, msg)
				}
			},
		},
		{
			name: "insecure ignore host key",
			prepare: func(t *testing.T, srv *sshd.Server, target *remote.Target) {
				writeFile(t, target.KnownHosts, knownhosts.Line([]string{knownhosts.Normalize(srv.HostPort())}, otherKey)+"\n")
				target.InsecureIgnoreHostKey = true
			},
			wantOK: true,
		},
	}
	for i, tc := range cases {
		srv := servers[i]
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := srv.Target("mongo-b2")
			target.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
			tc.prepare(t, srv, &target)
			r, err := remote.SSHDialer{}.Dial(t.Context(), target)
			if tc.wantOK {
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				if res, err := r.Run(t.Context(), "echo ok"); err != nil || string(res.Stdout) != "ok\n" {
					t.Fatalf("Run: %+v %v", res, err)
				}
				return
			}
			if err == nil {
				r.Close()
				t.Fatal("Dial succeeded, want the host key refused")
			}
			var he *remote.HostError
			if !errors.As(err, &he) || he.Op != remote.OpHostKey || he.Host != "mongo-b2" {
				t.Fatalf("err = %#v, want *HostError Op hostkey", err)
			}
			var e *remote.HostKeyError
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want a *HostKeyError inside", err)
			}
			msg := err.Error()
			for _, want := range []string{"mongo-b2", srv.HostPort(), "ssh-ed25519", ssh.FingerprintSHA256(srv.HostPublicKey)} {
				if !strings.Contains(msg, want) {
					t.Errorf("message lacks %q:\n%s", want, msg)
				}
			}
			if e.KeyType != "ssh-ed25519" || e.Fingerprint != ssh.FingerprintSHA256(srv.HostPublicKey) || e.Host != "mongo-b2" {
				t.Errorf("HostKeyError = %+v", e)
			}
			tc.check(t, e, msg, srv)
			t.Log(msg)
			// Nothing was run: the client never even authenticated.
			if strings.Contains(srv.Log(), "Accepted publickey") {
				t.Errorf("sshd accepted a login although the host key was refused")
			}
		})
	}
}

// The server offers ecdsa and ed25519 host keys; known_hosts holds only the
// ed25519 one. x/crypto on its own prefers ecdsa and then fails with
// "knownhosts: key mismatch" (goph #50/#81); Dial asks for ed25519.
func TestSSHHostKeyAlgorithmsFromKnownHosts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(ecKey, "")
	if err != nil {
		t.Fatal(err)
	}
	ecFile := filepath.Join(dir, "ssh_host_ecdsa_key")
	if err := os.WriteFile(ecFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := sshd.StartWith(t, sshd.Options{ExtraConfig: []string{"HostKey " + ecFile}})
	target := srv.Target("amq-a1")

	// Plain x/crypto with the same known_hosts: the pitfall is real here.
	cb, err := knownhosts.New(target.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	signer := readSigner(t, srv.KeyFile)
	_, err = ssh.Dial("tcp", srv.HostPort(), &ssh.ClientConfig{
		User: srv.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: cb, Timeout: 5 * time.Second,
	})
	if err == nil || !strings.Contains(err.Error(), "key mismatch") {
		t.Logf("note: plain x/crypto dial did not hit the key-mismatch pitfall: %v", err)
	}

	r := dial(t, target, remote.Options{})
	if res, err := r.Run(t.Context(), "echo ok"); err != nil || string(res.Stdout) != "ok\n" {
		t.Fatalf("Run: %+v %v", res, err)
	}
}

func TestSSHKnownHostsTildeExpansion(t *testing.T) {
	srv := sshd.Start(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	b, err := os.ReadFile(srv.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(home, "kh"), string(b))
	target := srv.Target("web-a1")
	target.KnownHosts = "~/kh"
	dial(t, target, remote.Options{})
}

func TestSSHAuthErrors(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t)
	wrongKey := filepath.Join(t.TempDir(), "id_wrong")
	writeKeyFile(t, wrongKey)
	cases := []struct {
		name   string
		mutate func(*remote.Target)
		want   string
	}{
		{"key refused", func(tg *remote.Target) { tg.KeyFile = wrongKey }, "unable to authenticate"},
		{"key file missing", func(tg *remote.Target) { tg.KeyFile = filepath.Join(t.TempDir(), "nope") }, "no such file"},
		{"no credentials", func(tg *remote.Target) { tg.KeyFile = "" }, "no credentials"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target := srv.Target("web-a1")
			tc.mutate(&target)
			_, err := remote.SSHDialer{}.Dial(t.Context(), target)
			var he *remote.HostError
			if !errors.As(err, &he) || he.Op != remote.OpAuth || he.Host != "web-a1" {
				t.Fatalf("err = %v, want *HostError Op auth", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestSSHAgentWithoutSocket(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	_, err := remote.SSHDialer{}.Dial(t.Context(), remote.Target{Name: "web-a1", Address: "127.0.0.1", Port: 1, UseAgent: true, InsecureIgnoreHostKey: true})
	var he *remote.HostError
	if !errors.As(err, &he) || he.Op != remote.OpAuth || !strings.Contains(err.Error(), "SSH_AUTH_SOCK") {
		t.Errorf("err = %v, want *HostError Op auth about SSH_AUTH_SOCK", err)
	}
}

func TestSSHUnreachable(t *testing.T) {
	t.Parallel()
	// A listener that accepts and never speaks (a hung sshd, a firewall
	// that accepts, the wrong service).
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	var held sync.WaitGroup
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held.Go(func() { _, _ = io.Copy(io.Discard, c); c.Close() })
		}
	}()
	// A port nothing listens on.
	closedPort := closedport.Port(t)

	srv := sshd.Start(t)
	cases := []struct {
		name   string
		port   int
		ctx    func(t *testing.T) context.Context
		op     string
		within time.Duration
		want   error
	}{
		{name: "silent listener", port: silent.Addr().(*net.TCPAddr).Port, op: remote.OpHandshake, within: 3 * time.Second, want: remote.ErrNoBanner},
		{name: "closed port", port: closedPort, op: remote.OpDial, within: time.Second},
		{
			name: "silent listener, cancelled", port: silent.Addr().(*net.TCPAddr).Port, op: remote.OpHandshake, within: 800 * time.Millisecond,
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(300*time.Millisecond, cancel)
				return ctx
			},
			want: context.Canceled,
		},
		{
			name: "silent listener, ctx deadline sooner", port: silent.Addr().(*net.TCPAddr).Port, op: remote.OpHandshake, within: 800 * time.Millisecond,
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			want: context.DeadlineExceeded,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := srv.Target("chat-b3")
			target.Port = tc.port
			target.ConnectTimeout = time.Second
			ctx := t.Context()
			if tc.ctx != nil {
				ctx = tc.ctx(t)
			}
			start := time.Now()
			r, err := remote.SSHDialer{}.Dial(ctx, target)
			elapsed := time.Since(start)
			if err == nil {
				r.Close()
				t.Fatal("Dial succeeded")
			}
			t.Logf("after %v: %v", elapsed.Round(time.Millisecond), err)
			// a guard against a dial that never gives up, not a timing:
			// which of the deadlines ended it is told by the error
			if elapsed > 30*time.Second {
				t.Errorf("Dial took %v: it did not end at its deadline (%v)", elapsed, tc.within)
			}
			var he *remote.HostError
			if !errors.As(err, &he) || he.Op != tc.op || he.Host != "chat-b3" {
				t.Errorf("err = %#v, want *HostError Op %s", err, tc.op)
			}
			if !strings.Contains(err.Error(), "chat-b3") {
				t.Errorf("error does not name the host: %v", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// With a netwatch in the context, an address that got no connection is not
// dialed again while it stays dead: the next Dial fails at once, naming the
// host, and says since when; once something listens there again, the
// background probe lets the next Dial through.
func TestSSHDialRemembersDeadAddress(t *testing.T) {
	srv := sshd.Start(t)
	port := closedport.Port(t)
	w := netwatch.New()
	defer w.Close()
	ctx := netwatch.NewContext(t.Context(), w)
	target := srv.Target("chat-b3")
	target.Port = port
	target.ConnectTimeout = time.Second
	if _, err := (remote.SSHDialer{}).Dial(ctx, target); err == nil {
		t.Fatal("dial of a closed port succeeded")
	}
	_, err := remote.SSHDialer{}.Dial(ctx, target)
	var de *netwatch.DeadError
	var he *remote.HostError
	if !errors.As(err, &de) || !errors.As(err, &he) || he.Host != "chat-b3" || he.Op != remote.OpDial {
		t.Fatalf("second dial: %v, want a *HostError (dial, chat-b3) wrapping *netwatch.DeadError", err)
	}
	if !strings.Contains(err.Error(), "probed again in the background") {
		t.Errorf("the error does not say it is probed: %v", err)
	}
	// a live host dials as before with the same watch (recovery of a dead
	// address is netwatch's own test)
	if r, err := (remote.SSHDialer{}).Dial(ctx, srv.Target("chat-b3")); err != nil {
		t.Fatalf("dial of the live sshd with the watch: %v", err)
	} else {
		r.Close()
	}
}

// --- helpers

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func addKnownHost(t *testing.T, file, hostport string, key ssh.PublicKey) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, knownhosts.Line([]string{knownhosts.Normalize(hostport)}, key)); err != nil {
		t.Fatal(err)
	}
}

func newEd25519(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writeKeyFile(t *testing.T, path string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(pem.EncodeToMemory(block)))
}

func readSigner(t *testing.T, path string) ssh.Signer {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// proxy forwards TCP to a backend; freeze makes it stop forwarding while
// keeping the connections open (a peer that went silent).
type proxy struct {
	port   int
	frozen atomic.Bool
	unfrz  chan struct{}
}

func newProxy(t *testing.T, backend string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{port: l.Addr().(*net.TCPAddr).Port, unfrz: make(chan struct{})}
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		l.Close()
		close(p.unfrz)
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if p.frozen.Load() {
				<-p.unfrz
				return
			}
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, b)
			mu.Unlock()
			go pipe(b, c)
			go pipe(c, b)
		}
	}()
	return p
}

func (p *proxy) freeze() { p.frozen.Store(true) }

// The system-wide known_hosts (/etc/ssh/ssh_known_hosts by default) is read
// besides the target's own, as OpenSSH does: a host listed only there is
// trusted, and a different key there is a mismatch.
func TestSSHReadsTheGlobalKnownHosts(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t)
	dir := t.TempDir()
	global := filepath.Join(dir, "ssh_known_hosts")
	writeFile(t, global, knownhosts.Line([]string{knownhosts.Normalize(srv.HostPort())}, srv.HostPublicKey)+"\n")
	target := srv.Target("a-app")
	target.KnownHosts = filepath.Join(dir, "empty_known_hosts")
	writeFile(t, target.KnownHosts, "")
	r, err := remote.SSHDialer{Options: remote.Options{GlobalKnownHosts: global}}.Dial(t.Context(), target)
	if err != nil {
		t.Fatalf("host listed in the global known_hosts only: %v", err)
	}
	r.Close()
	// the user's file missing altogether: the global one still answers
	target.KnownHosts = filepath.Join(dir, "nope", "known_hosts")
	r, err = remote.SSHDialer{Options: remote.Options{GlobalKnownHosts: global}}.Dial(t.Context(), target)
	if err != nil {
		t.Fatalf("no user known_hosts, host in the global one: %v", err)
	}
	r.Close()
	writeFile(t, global, knownhosts.Line([]string{knownhosts.Normalize(srv.HostPort())}, newEd25519(t))+"\n")
	_, err = remote.SSHDialer{Options: remote.Options{GlobalKnownHosts: global}}.Dial(t.Context(), target)
	var e *remote.HostKeyError
	if !errors.As(err, &e) || !e.Mismatch || !strings.Contains(err.Error(), global+":1") {
		t.Fatalf("another key in the global known_hosts: %v, want a mismatch naming %s:1", err, global)
	}
}
