// Package haproxy starts a real HAProxy for tests, in the foreground
// (haproxy -db), with a generated configuration: an admin stats socket and a
// user-level one (unix sockets in a short temp dir), optionally an admin
// runtime API on a free loopback TCP port, one frontend per backend on a free
// loopback port, and backends whose servers point at stand-in HTTP servers of
// both sites (Go HTTP servers on 127.0.0.1 that answer the health checks and
// can be made to fail, killed, revived, and made to hold requests open).
//
// Health checks are fast (inter 200ms, fastinter 100ms, downinter 200ms,
// rise 2, fall 2), so a server goes DOWN about 300ms after its stand-in dies
// and UP again about 400ms after it comes back.
//
// The default shape is DefaultBackends: be_cc with site_a active and site_b
// backup (seed 003's HAProxy over both sites), and be_rt with one active
// server per site and no backup.
//
// When haproxy is not installed the test is skipped, except when the CI
// environment variable is set: there it fails. This package must not import
// adapters/haproxy (that package's internal tests import this one); it talks
// to the runtime API with its own few lines.
package haproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// DefaultPath is where Debian's haproxy package installs the binary. The
// SITECTL_HAPROXY environment variable overrides it.
const DefaultPath = "/usr/sbin/haproxy"

// Check timings written into the generated configuration (FastInter can be
// changed with Options.FastInter).
const (
	Inter     = 200 * time.Millisecond
	FastInter = 100 * time.Millisecond
	DownInter = 200 * time.Millisecond
	Rise      = 2
	Fall      = 2
)

// ServerSpec is one server line of a backend.
type ServerSpec struct {
	Name    string // HAProxy server name, e.g. site_a
	Site    string // the site its stand-in belongs to, e.g. A
	Backup  bool   // add the "backup" keyword
	NoCheck bool   // no "check": the status reads "no check"
	Track   string // "be/srv": track that server's checks instead of checking (status MAINT (via be/srv) when it is in maint)
	Failing bool   // the stand-in answers health checks with 503 from the start
}

// BackendSpec is one backend with its own frontend.
type BackendSpec struct {
	Name       string
	Servers    []ServerSpec
	AllBackups bool // option allbackups
}

// DefaultBackends is be_cc (site_a active, site_b backup) and be_rt (rt_a
// and rt_b, both active).
func DefaultBackends() []BackendSpec {
	return []BackendSpec{
		{Name: "be_cc", Servers: []ServerSpec{
			{Name: "site_a", Site: "A"},
			{Name: "site_b", Site: "B", Backup: true},
		}},
		{Name: "be_rt", Servers: []ServerSpec{
			{Name: "rt_a", Site: "A"},
			{Name: "rt_b", Site: "B"},
		}},
	}
}

// Options tune Start. The zero value gives DefaultBackends and unix sockets only.
type Options struct {
	Backends []BackendSpec // default DefaultBackends()
	TCP      bool          // also open an admin runtime API on 127.0.0.1:<free port>
	Extra    []string      // extra lines appended to the global section
	// FastInter overrides the check interval used while a server is
	// changing state (default 100ms): a longer one keeps "UP 1/2" visible
	// longer.
	FastInter time.Duration
}

// HAProxy is one running haproxy.
type HAProxy struct {
	Dir         string            // temp dir: haproxy.cfg, haproxy.log, the sockets
	Config      string            // the generated configuration
	AdminSocket string            // unix socket, level admin
	UserSocket  string            // unix socket, level user
	TCPAddr     string            // "127.0.0.1:port" (level admin) when Options.TCP, else ""
	Frontends   map[string]string // backend name -> "127.0.0.1:port" of its frontend
	Pid         int

	standins map[string]*Standin // "be/srv"
	order    []string            // "be/srv" in config order
	cmd      *exec.Cmd
	exited   chan struct{}
	stopOnce sync.Once
}

// Path returns the haproxy binary, or skips the test (fails it under CI).
func Path(t testing.TB) string {
	t.Helper()
	p := os.Getenv("SITECTL_HAPROXY")
	if p == "" {
		p = DefaultPath
	}
	if _, err := os.Stat(p); err != nil {
		if lp, lerr := exec.LookPath("haproxy"); lerr == nil {
			return lp
		}
		msg := fmt.Sprintf("haproxy not available (%v); install it with: apt-get install haproxy", err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set: an HAProxy lane that cannot run is a failure, not a skip)")
		}
		t.Skip(msg)
	}
	return p
}

// Start starts haproxy with DefaultBackends.
func Start(t testing.TB) *HAProxy {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith starts the stand-ins and haproxy, waits until the admin socket
// answers "show info" and every checked server has settled (no "UP 1/2"
// style transitional status), and stops everything in t.Cleanup.
func StartWith(t testing.TB, o Options) *HAProxy {
	t.Helper()
	bin := Path(t)
	if len(o.Backends) == 0 {
		o.Backends = DefaultBackends()
	}
	// unix socket paths are limited to 108 bytes: t.TempDir() can be longer.
	dir, err := os.MkdirTemp("", "hx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	h := &HAProxy{
		Dir:         dir,
		AdminSocket: filepath.Join(dir, "admin.sock"),
		UserSocket:  filepath.Join(dir, "user.sock"),
		standins:    map[string]*Standin{},
	}
	for _, b := range o.Backends {
		for _, s := range b.Servers {
			st, err := newStandin(b.Name, s)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(st.Kill)
			key := b.Name + "/" + s.Name
			h.standins[key] = st
			h.order = append(h.order, key)
		}
	}

	// Another process may grab a probed port before haproxy binds it.
	var lastErr error
	for range 5 {
		if err := h.start(bin, o); err != nil {
			lastErr = err
			continue
		}
		t.Cleanup(func() {
			h.Stop()
			if t.Failed() {
				t.Logf("haproxy log:\n%s", h.Log())
			}
		})
		if err := h.waitSettled(10 * time.Second); err != nil {
			t.Fatalf("haproxy servers did not settle: %v\n%s", err, h.Log())
		}
		return h
	}
	t.Fatalf("haproxy did not start: %v", lastErr)
	return nil
}

func (h *HAProxy) start(bin string, o Options) error {
	h.Frontends = map[string]string{}
	for _, b := range o.Backends {
		p, err := freePort()
		if err != nil {
			return err
		}
		h.Frontends[b.Name] = "127.0.0.1:" + strconv.Itoa(p)
	}
	h.TCPAddr = ""
	if o.TCP {
		p, err := freePort()
		if err != nil {
			return err
		}
		h.TCPAddr = "127.0.0.1:" + strconv.Itoa(p)
	}
	h.Config = h.config(o)
	cfg := filepath.Join(h.Dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(h.Config), 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(h.Dir, "haproxy.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-f", cfg, "-db")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	h.cmd, h.Pid = cmd, cmd.Process.Pid
	h.exited = make(chan struct{})
	h.stopOnce = sync.Once{}
	go func() { _ = cmd.Wait(); close(h.exited) }()
	if err := h.waitReady(10 * time.Second); err != nil {
		h.Stop()
		return fmt.Errorf("%w\n%s", err, h.Log())
	}
	return nil
}

func (h *HAProxy) config(o Options) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("global")
	w("    nbthread 2")
	w("    stats socket %s mode 600 level admin", h.AdminSocket)
	w("    stats socket %s mode 600 level user", h.UserSocket)
	if h.TCPAddr != "" {
		w("    stats socket ipv4@%s level admin", h.TCPAddr)
	}
	w("    stats timeout 30s")
	for _, l := range o.Extra {
		w("    %s", l)
	}
	w("")
	w("defaults")
	w("    mode http")
	w("    timeout connect 1s")
	w("    timeout client 30s")
	w("    timeout server 30s")
	w("    timeout check 1s")
	for _, be := range o.Backends {
		w("")
		w("frontend fe_%s", strings.TrimPrefix(be.Name, "be_"))
		w("    bind %s", h.Frontends[be.Name])
		w("    default_backend %s", be.Name)
		w("")
		w("backend %s", be.Name)
		w("    balance roundrobin")
		if be.AllBackups {
			w("    option allbackups")
		}
		w("    option httpchk")
		w("    http-check send meth GET uri /health")
		fast := FastInter
		if o.FastInter > 0 {
			fast = o.FastInter
		}
		w("    default-server inter %dms fastinter %dms downinter %dms rise %d fall %d",
			Inter.Milliseconds(), fast.Milliseconds(), DownInter.Milliseconds(), Rise, Fall)
		for _, s := range be.Servers {
			line := fmt.Sprintf("    server %s %s", s.Name, h.standins[be.Name+"/"+s.Name].Addr)
			switch {
			case s.Track != "":
				line += " track " + s.Track
			case !s.NoCheck:
				line += " check"
			}
			if s.Backup {
				line += " backup"
			}
			w("%s", line)
		}
	}
	return b.String()
}

// waitReady polls the admin socket until "show info" answers.
func (h *HAProxy) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-h.exited:
			return fmt.Errorf("haproxy exited: %v", h.cmd.ProcessState)
		default:
		}
		out, err := h.Cmd("show info")
		if err == nil && strings.Contains(out, "Name: HAProxy") {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("unexpected show info reply %q", out)
		}
		lastErr = err
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("runtime API not ready after %s: %v", limit, lastErr)
}

// waitSettled waits until no server status carries an "n/m" counter.
func (h *HAProxy) waitSettled(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last map[string]string
	for time.Now().Before(deadline) {
		st, err := h.Statuses()
		if err == nil {
			settled := true
			for _, key := range h.order {
				if s, ok := st[key]; !ok || strings.Contains(s, "/") && !strings.HasPrefix(s, "MAINT") {
					settled = false
				}
			}
			if settled {
				return nil
			}
			last = st
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("after %s: %v", limit, last)
}

// AdminAPI is the admin socket as an inventory runtime_api ("unix:///…").
func (h *HAProxy) AdminAPI() string { return "unix://" + h.AdminSocket }

// UserAPI is the level-user socket ("unix:///…").
func (h *HAProxy) UserAPI() string { return "unix://" + h.UserSocket }

// TCPAPI is the TCP runtime API ("tcp://127.0.0.1:port"), or "" without Options.TCP.
func (h *HAProxy) TCPAPI() string {
	if h.TCPAddr == "" {
		return ""
	}
	return "tcp://" + h.TCPAddr
}

// URL is http://<frontend of backend><path>.
func (h *HAProxy) URL(backend, path string) string {
	return "http://" + h.Frontends[backend] + path
}

// Standin returns the stand-in behind backend/server.
func (h *HAProxy) Standin(backend, server string) *Standin {
	return h.standins[backend+"/"+server]
}

// Log returns what haproxy has printed so far.
func (h *HAProxy) Log() string {
	b, _ := os.ReadFile(filepath.Join(h.Dir, "haproxy.log"))
	return string(b)
}

// Stop kills haproxy (SIGTERM, then SIGKILL after 3s). Safe to call twice.
func (h *HAProxy) Stop() {
	h.stopOnce.Do(func() {
		_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-h.exited:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
			<-h.exited
		}
	})
}

// Cmd sends one command line to the admin socket and returns the reply.
func (h *HAProxy) Cmd(command string) (string, error) {
	return Exec("unix", h.AdminSocket, command, 2*time.Second)
}

// Exec is a minimal runtime-API call: one command, one connection.
func Exec(network, addr, command string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// Statuses returns the status column of every server, keyed "be/srv".
func (h *HAProxy) Statuses() (map[string]string, error) {
	out, err := h.Cmd("show stat -1 4 -1")
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	col := map[string]int{}
	res := map[string]string{}
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# ") {
			for i, n := range strings.Split(strings.TrimPrefix(line, "# "), ",") {
				col[n] = i
			}
			continue
		}
		f := strings.Split(line, ",")
		if len(col) == 0 || len(f) <= col["status"] {
			continue
		}
		res[f[col["pxname"]]+"/"+f[col["svname"]]] = f[col["status"]]
	}
	if len(col) == 0 {
		return nil, fmt.Errorf("no CSV header in %q", out)
	}
	return res, nil
}

// Status returns one server's status column.
func (h *HAProxy) Status(backend, server string) (string, error) {
	st, err := h.Statuses()
	if err != nil {
		return "", err
	}
	s, ok := st[backend+"/"+server]
	if !ok {
		return "", fmt.Errorf("%s/%s not in show stat", backend, server)
	}
	return s, nil
}

// WaitStatus waits until backend/server's status satisfies ok and returns
// it; it fails the test after limit. Use it to wait for a check transition.
func (h *HAProxy) WaitStatus(t testing.TB, backend, server string, limit time.Duration, ok func(status string) bool) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last string
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = h.Status(backend, server)
		if lastErr == nil && ok(last) {
			return last
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s/%s: status %q (err %v) after %s", backend, server, last, lastErr, limit)
	return ""
}

// Is returns a WaitStatus predicate for an exact status.
func Is(want string) func(string) bool { return func(s string) bool { return s == want } }

// HasPrefix returns a WaitStatus predicate for a status prefix ("DOWN" matches "DOWN 1/2").
func HasPrefix(p string) func(string) bool {
	return func(s string) bool { return strings.HasPrefix(s, p) }
}

// Standin is a stand-in HTTP server for one HAProxy server.
//
//	GET /health  200 "ok", or 503 while Fail is in effect
//	GET /hold    waits until Release (or the client goes away), then 200 "released"
//	GET /…       200 "<site> <server>\n", header X-Standin: <server>
type Standin struct {
	Backend, Name, Site string
	Addr                string // 127.0.0.1:port, fixed for the stand-in's life

	failing atomic.Bool
	holding atomic.Int64
	hits    atomic.Int64

	mu      sync.Mutex
	srv     *http.Server
	release chan struct{}
}

func newStandin(backend string, s ServerSpec) (*Standin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	st := &Standin{Backend: backend, Name: s.Name, Site: s.Site, Addr: ln.Addr().String(), release: make(chan struct{})}
	st.failing.Store(s.Failing)
	st.serve(ln)
	return st, nil
}

func (s *Standin) serve(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if s.failing.Load() {
			http.Error(w, "failing", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.holding.Add(1)
		defer s.holding.Add(-1)
		s.mu.Lock()
		rel := s.release
		s.mu.Unlock()
		select {
		case <-rel:
			w.Header().Set("X-Standin", s.Name)
			_, _ = io.WriteString(w, "released\n")
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		w.Header().Set("X-Standin", s.Name)
		fmt.Fprintf(w, "%s %s\n", s.Site, s.Name)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Fail makes /health answer 503 (the server goes DOWN after Fall checks).
func (s *Standin) Fail() { s.failing.Store(true) }

// Heal undoes Fail.
func (s *Standin) Heal() { s.failing.Store(false) }

// Kill closes the listener and every connection (checks get L4CON).
func (s *Standin) Kill() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Revive listens again on the same address after Kill.
func (s *Standin) Revive() error {
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		return nil
	}
	var err error
	for range 50 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", s.Addr); err == nil {
			s.serve(ln)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("revive %s on %s: %w", s.Name, s.Addr, err)
}

// Holding is the number of /hold requests waiting right now.
func (s *Standin) Holding() int { return int(s.holding.Load()) }

// Hits counts the requests other than /health served so far.
func (s *Standin) Hits() int { return int(s.hits.Load()) }

// Release answers every /hold request waiting now; later ones wait again.
func (s *Standin) Release() {
	s.mu.Lock()
	close(s.release)
	s.release = make(chan struct{})
	s.mu.Unlock()
}

// Hold opens n requests to path /hold through the backend's frontend (one
// connection each) and returns once the stand-in of backend/server holds all
// of them. The returned function waits for the responses (after Release) and
// reports their errors; all connections are closed in t.Cleanup anyway.
func (h *HAProxy) Hold(t testing.TB, backend, server string, n int) (wait func() error) {
	t.Helper()
	st := h.Standin(backend, server)
	before := st.Holding()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	errs := make(chan error, n)
	for range n {
		go func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL(backend, "/hold"), nil)
			if err != nil {
				errs <- err
				return
			}
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("hold: %s: %s", resp.Status, b)
			}
			errs <- err
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for st.Holding() < before+n {
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s holds %d requests, want %d", backend, server, st.Holding(), before+n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return func() error {
		var all []error
		for range n {
			select {
			case err := <-errs:
				all = append(all, err)
			case <-time.After(10 * time.Second):
				return errors.New("hold requests did not finish within 10s")
			}
		}
		return errors.Join(all...)
	}
}

// Get does one GET through the backend's frontend without keep-alive and
// returns the status code and the X-Standin header (which server answered).
func (h *HAProxy) Get(backend, path string) (int, string, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(h.URL(backend, path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Standin"), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
