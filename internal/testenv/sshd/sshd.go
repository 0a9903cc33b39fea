// Package sshd starts real OpenSSH servers on 127.0.0.1 for tests, one per
// simulated host. Each server gets its own ed25519 host key, user key,
// authorized_keys and known_hosts in t.TempDir(), listens on a free port and
// is killed (with every process it started) in t.Cleanup.
//
// When sshd is not installed the test is skipped, except when the CI
// environment variable is set: there it fails, so that a lane that could not
// run is never reported green. scripts/install-test-deps.sh installs it.
package sshd

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/internal/testenv/spawn"
)

// DefaultPath is where Debian's openssh-server installs sshd. The SITECTL_SSHD
// environment variable overrides it.
const DefaultPath = "/usr/sbin/sshd"

// Server is one running sshd.
type Server struct {
	Addr           string        // always 127.0.0.1
	Port           int           // free port chosen at start
	User           string        // the user running the tests; the key logs in as it
	KeyFile        string        // private user key (ed25519, OpenSSH format, no passphrase)
	KnownHostsFile string        // holds "[127.0.0.1]:PORT ssh-ed25519 ..." for this server only
	HostPublicKey  ssh.PublicKey // the server's host key
	HostKeyFile    string        // the server's private host key
	Dir            string        // temp dir holding all of the above, sshd_config and sshd.log

	t        testing.TB
	cmd      *exec.Cmd
	exited   chan struct{}
	stopOnce sync.Once
}

// Options tune Start. The zero value is fine.
type Options struct {
	// LogLevel for sshd (QUIET … DEBUG3); default VERBOSE. The log is printed
	// when the test fails.
	LogLevel string
	// ExtraConfig lines appended to sshd_config (e.g. "MaxSessions 2").
	ExtraConfig []string
}

// Path returns the sshd binary to use, or skips the test (fails it under CI)
// when there is none.
func Path(t testing.TB) string {
	t.Helper()
	p := os.Getenv("SITECTL_SSHD")
	if p == "" {
		p = DefaultPath
	}
	if _, err := os.Stat(p); err != nil {
		if lp, lerr := exec.LookPath("sshd"); lerr == nil {
			return lp
		}
		msg := fmt.Sprintf("sshd not available (%v); install it with scripts/install-test-deps.sh", err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set: an SSH lane that cannot run is a failure, not a skip)")
		}
		t.Skip(msg)
	}
	return p
}

// Start starts one sshd and returns once it answers with an SSH banner.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Path(t)
	s, err := start(t, bin, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// StartN starts n servers in parallel (benchmarks start 40) and returns them
// in order. All of them are stopped in t.Cleanup.
func StartN(t testing.TB, n int) []*Server {
	t.Helper()
	return StartNWith(t, n, Options{})
}

// StartNWith is StartN with options.
func StartNWith(t testing.TB, n int, o Options) []*Server {
	t.Helper()
	bin := Path(t)
	servers := make([]*Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { servers[i], errs[i] = start(t, bin, o) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return servers
}

// HostPort is "127.0.0.1:PORT".
func (s *Server) HostPort() string { return net.JoinHostPort(s.Addr, strconv.Itoa(s.Port)) }

// Target returns a remote.Target that reaches this server with strict
// host-key checking against KnownHostsFile and a 5s connect timeout.
func (s *Server) Target(name string) remote.Target {
	return remote.Target{
		Name:           name,
		Address:        s.Addr,
		Port:           s.Port,
		User:           s.User,
		KeyFile:        s.KeyFile,
		KnownHosts:     s.KnownHostsFile,
		ConnectTimeout: 5 * time.Second,
	}
}

// Stop kills sshd and every process it started (connection handlers and the
// commands they run), so clients see their connections drop. It is safe to
// call more than once; t.Cleanup calls it too.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		pid := s.cmd.Process.Pid
		// Kill the children first: once the parent is gone they would be
		// reparented and hard to find.
		killDescendants(pid)
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(3 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		killDescendants(pid)
	})
}

// DropConnections kills the per-connection sshd processes (and what they
// run) but keeps the listener: clients see their connection drop and can
// connect again.
func (s *Server) DropConnections() {
	killDescendants(s.cmd.Process.Pid)
}

// Log returns what sshd has logged so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "sshd.log"))
	return string(b)
}

func start(t testing.TB, bin string, o Options) (*Server, error) {
	// sshd running as root needs its privilege-separation directory.
	if os.Geteuid() == 0 {
		_ = os.MkdirAll("/run/sshd", 0o755)
	}
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	s := &Server{Addr: "127.0.0.1", User: u.Username, Dir: dir, t: t}

	hostSigner, err := WriteKey(filepath.Join(dir, "ssh_host_ed25519_key"), "sitectl-test-host")
	if err != nil {
		return nil, err
	}
	s.HostKeyFile = filepath.Join(dir, "ssh_host_ed25519_key")
	s.HostPublicKey = hostSigner.PublicKey()
	userSigner, err := WriteKey(filepath.Join(dir, "id_ed25519"), "sitectl-test-user")
	if err != nil {
		return nil, err
	}
	s.KeyFile = filepath.Join(dir, "id_ed25519")
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, ssh.MarshalAuthorizedKey(userSigner.PublicKey()), 0o600); err != nil {
		return nil, err
	}

	logLevel := o.LogLevel
	if logLevel == "" {
		logLevel = "VERBOSE"
	}
	// Another test may grab the port between our probe and sshd's bind;
	// try a few ports.
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s.Port = port
		cfg := filepath.Join(dir, "sshd_config")
		lines := []string{
			"Port " + strconv.Itoa(port),
			"ListenAddress 127.0.0.1",
			"HostKey " + s.HostKeyFile,
			"AuthorizedKeysFile " + authKeys,
			"PubkeyAuthentication yes",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"PermitRootLogin prohibit-password",
			"StrictModes no",
			"UsePAM no",
			"PrintMotd no",
			"PrintLastLog no",
			"PidFile " + filepath.Join(dir, "sshd.pid"),
			"LogLevel " + logLevel,
			"Subsystem sftp internal-sftp",
			// bash sources ~/.bashrc for commands run by sshd unless it is
			// a nested shell (SHLVL ≥ 2 once it has counted itself). Keep
			// the simulated hosts free of this machine's rc files: a
			// developer's slow or locking rc (pyenv rehash) would
			// otherwise be timed, and killed, by the tests.
			"SetEnv SHLVL=1",
		}
		lines = append(lines, o.ExtraConfig...)
		if err := os.WriteFile(cfg, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			return nil, err
		}
		logf, err := os.OpenFile(filepath.Join(dir, "sshd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "-D", "-e", "-f", cfg)
		cmd.Stdout = logf
		cmd.Stderr = logf
		// Pdeathsig: should the test binary die without its cleanups
		// (a panic, a timeout), do not leave the server running. Started by
		// spawn, so that it is sent when the test binary ends, not when the
		// thread that forked it does.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := spawn.Start(cmd); err != nil {
			logf.Close()
			return nil, fmt.Errorf("start %s: %w", bin, err)
		}
		logf.Close()
		s.cmd = cmd
		s.exited = make(chan struct{})
		go func() { _ = cmd.Wait(); close(s.exited) }()

		if err := s.waitReady(10 * time.Second); err != nil {
			s.Stop()
			lastErr = fmt.Errorf("sshd on port %d: %w\n%s", port, err, s.Log())
			s.stopOnce = sync.Once{}
			continue
		}
		t.Cleanup(func() {
			s.Stop()
			if t.Failed() {
				t.Logf("sshd %s log:\n%s", s.HostPort(), s.Log())
			}
		})
		s.KnownHostsFile = filepath.Join(dir, "known_hosts")
		line := knownhosts.Line([]string{knownhosts.Normalize(s.HostPort())}, s.HostPublicKey)
		if err := os.WriteFile(s.KnownHostsFile, []byte(line+"\n"), 0o600); err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, lastErr
}

// waitReady waits for the banner, then checks that the server answering
// is this one: another sshd (another test, another test binary) may have
// taken the port first, and ours then failed to bind.
func (s *Server) waitReady(limit time.Duration) error {
	if err := s.waitBanner(limit); err != nil {
		return err
	}
	c, err := net.DialTimeout("tcp", s.HostPort(), 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var got ssh.PublicKey
	errSeen := errors.New("host key seen")
	_, _, _, err = ssh.NewClientConn(c, s.HostPort(), &ssh.ClientConfig{
		User:              "probe",
		HostKeyAlgorithms: []string{s.HostPublicKey.Type()},
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			got = k
			return errSeen
		},
	})
	switch {
	case got == nil:
		return fmt.Errorf("port %d: no host key from the server: %v", s.Port, err)
	case !bytes.Equal(got.Marshal(), s.HostPublicKey.Marshal()):
		return fmt.Errorf("port %d is served by another sshd", s.Port)
	}
	return nil
}

// waitBanner polls the port until sshd greets with "SSH-2.0-".
func (s *Server) waitBanner(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("sshd exited: %v", s.cmd.ProcessState)
		default:
		}
		c, err := net.DialTimeout("tcp", s.HostPort(), time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if rerr == nil && strings.HasPrefix(line, "SSH-2.0-") {
				return nil
			}
			err = fmt.Errorf("no SSH banner: %q %v", line, rerr)
		}
		lastErr = err
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s: %v", limit, lastErr)
}

// WriteKey writes a new ed25519 private key (OpenSSH format) to path and its
// public key to path.pub, and returns the signer.
func WriteKey(path, comment string) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644); err != nil {
		return nil, err
	}
	return signer, nil
}

var (
	portsMu sync.Mutex
	given   = map[int]bool{} // never hand out a port twice in this process
)

func freePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !given[port] {
			given[port] = true
			return port, nil
		}
	}
	return 0, errors.New("no free port")
}

// killDescendants SIGKILLs every process below pid, parents first (from a
// list taken beforehand), so that a connection handler dies before it can
// report its command's end: the client sees a dropped connection.
func killDescendants(pid int) {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, ok := ppid(p); ok {
			children[pp] = append(children[pp], p)
		}
	}
	var walk func(int)
	var all []int
	walk = func(p int) {
		for _, c := range children[p] {
			all = append(all, c)
			walk(c)
		}
	}
	walk(pid)
	for _, c := range all {
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
}

func ppid(pid int) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(f[1])
	return pp, err == nil
}
