package checks

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/internal/testenv/closedport"
	"github.com/sitectl/sitectl/internal/testenv/sshd"
	"github.com/sitectl/sitectl/inventory"
)

// sentinel is a loopback port that listens but is never accepted from: a
// connect to it succeeds (the kernel completes it), and untouched reports
// whether none was made, without waiting (a connect that returned is in
// the listen queue already).
type sentinel struct {
	fd   int
	port int
}

func newSentinel(t *testing.T) *sentinel {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 16); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return &sentinel{fd: fd, port: sa.(*syscall.SockaddrInet4).Port}
}

func (s *sentinel) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// untouched reports whether no connection reached the port.
func (s *sentinel) untouched(t *testing.T) bool {
	t.Helper()
	nfd, _, err := syscall.Accept4(s.fd, syscall.SOCK_CLOEXEC)
	if err == nil {
		_ = syscall.Close(nfd)
		return false
	}
	if !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("accept on the sentinel port %d: %v", s.port, err)
	}
	return true
}

func sortedResults(res map[int]string) string {
	var out []string
	for _, i := range slices.Sorted(maps.Keys(res)) {
		out = append(out, fmt.Sprintf("%d:%s", i, res[i]))
	}
	return strings.Join(out, " ")
}

// Within a site, the probe stops at the first endpoint that answers: run
// by a real sshd host against real sshd's, the endpoints after an open one
// are not connected to (their port never sees a connection) and have no
// result; a refused one before it does not stop the site's probe. The
// stagger is long here (a failure guard: the next endpoint starts before
// an answer only after it), so that the test does not depend on how fast
// the machine is.
func TestProbeStopsAtTheFirstOpenEndpoint(t *testing.T) {
	t.Parallel()
	srv := sshd.StartN(t, 2)
	prober, target := srv[0], srv[1]
	pool := remote.NewPool(remote.SSHDialer{}, map[string]remote.Target{"w": prober.Target("w")})
	t.Cleanup(func() { pool.Close() })
	after1, after2 := newSentinel(t), newSentinel(t)
	eps := []Endpoint{
		{Site: "A", Label: "a1:ssh", Addr: target.HostPort()},
		{Site: "A", Label: "a2 after", Addr: after1.addr()},
		{Site: "C", Label: "c1 closed", Addr: closedport.Addr(t)},
		{Site: "C", Label: "c2:ssh", Addr: target.HostPort()},
		{Site: "C", Label: "c3 after", Addr: after2.addr()},
	}
	cmd := probeCommand(eps, 2*time.Second, time.Minute)
	r, err := pool.Run(t.Context(), "w", cmd)
	if err != nil {
		t.Fatalf("probe from w: %v\nstderr: %s", err, r.Stderr)
	}
	res := ParseProbe(r.Stdout)
	if got, want := sortedResults(res), "0:open 2:refused 3:open"; got != want {
		t.Errorf("results %q\nexpected: %q (the endpoints after an open one not tried)\noutput:\n%s", got, want, r.Stdout)
	}
	for _, s := range []*sentinel{after1, after2} {
		if !s.untouched(t) {
			t.Errorf("port %d, after an open endpoint of its site, was connected to", s.port)
		}
	}
	at := time.Now()
	if e := probeEvidence("w", "A", eps[:2], map[int]string{0: res[0]}, at); e.Saw != SawAlive || e.Detail != "tcp a1:ssh open" {
		t.Errorf("site A: %s (%s)\nexpected: alive (tcp a1:ssh open)", e.Saw, e.Detail)
	}
}

// The whole path, a real sshd as the prober (failover.probers): a site
// whose hosts all refuse is seen down; a site whose first host answers is
// alive, its other hosts not probed.
func TestCrossSiteProbesRealSSH(t *testing.T) {
	t.Parallel()
	srv := sshd.StartN(t, 2)
	prober, b1 := srv[0], srv[1]
	b2 := newSentinel(t)
	host := func(name string, port int, s *sshd.Server) string {
		return fmt.Sprintf("      - {name: %s, address: 127.0.0.1, ssh: {port: %d, user: %s, key: %s, known_hosts: %s}}\n",
			name, port, s.User, s.KeyFile, s.KnownHostsFile)
	}
	y := "deployment: t\nsites:\n  - name: A\n    role: primary\n    hosts:\n" +
		host("a1", closedport.Port(t), prober) + host("a2", closedport.Port(t), prober) +
		"    services:\n      - {name: s, kind: custom, host: a1, start: 'true', stop: 'true', status: 'true'}\n" +
		"  - name: B\n    role: secondary\n    hosts:\n" +
		host("b1", b1.Port, b1) + host("b2", b2.port, b1) +
		"    services:\n      - {name: s, kind: custom, host: b1, start: 'true', stop: 'true', status: 'true'}\n" +
		"witness:\n  name: W\n  hosts:\n" + host("w", prober.Port, prober) +
		"failover:\n  probers: [w]\n  probe_timeout: 2s\n"
	inv, err := inventory.Parse("t.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	pool := remote.NewPool(remote.SSHDialer{}, map[string]remote.Target{"w": prober.Target("w")})
	t.Cleanup(func() { pool.Close() })
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	ev := CrossSiteOf(t.Context(), inv, pool, func() time.Time { return at }, nil)
	got := map[string]Evidence{}
	for _, e := range ev {
		got[e.Site] = e
	}
	if e := got["A"]; e.Saw != SawDown || e.Observer != "probe from w" || strings.Count(e.Detail, " refused") != 2 {
		t.Errorf("site A (every host refuses): %s from %q (%s)\nexpected: down from \"probe from w\", both hosts refused", e.Saw, e.Observer, e.Detail)
	}
	if e := got["B"]; e.Saw != SawAlive || !strings.HasPrefix(e.Detail, "tcp b1:") || strings.Contains(e.Detail, "b2") {
		t.Errorf("site B (b1 answers): %s (%s)\nexpected: alive, tcp b1 open", e.Saw, e.Detail)
	}
	if !b2.untouched(t) {
		t.Errorf("b2 (after b1, which answered) was probed")
	}
	if len(ev) != 2 {
		t.Errorf("%d rows of evidence: %+v\nexpected one per site", len(ev), ev)
	}
}

// A blackhole (a port whose packets a network namespace of the test's own
// drops: no answer at all, as a host behind a dead link) holds up neither
// its site's other endpoints nor the verdict rules: alone it times out
// (a network failure: down); before a refused port, both are reported
// (down); before an open one, the open one is tried after the stagger and
// the site is alive. The probe runs inside the namespace (ip netns exec),
// where the test also listens.
func TestProbeBlackholeInNamespace(t *testing.T) {
	t.Parallel()
	ns := testNetns(t)
	const hole = 9 // dropped in the namespace
	rules := fmt.Sprintf("table inet sitectl_test {\n chain out {\n  type filter hook output priority 0;\n  tcp dport %d drop\n }\n}\n", hole)
	nft := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	nft.Stdin = strings.NewReader(rules)
	if out, err := nft.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v: %s", ns, err, out)
	}
	open := listenIn(t, ns)
	holeAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(hole))
	refused := net.JoinHostPort("127.0.0.1", "10") // nothing listens in the new namespace
	eps := []Endpoint{
		{Site: "H", Label: "hole", Addr: holeAddr},
		{Site: "I", Label: "hole", Addr: holeAddr},
		{Site: "I", Label: "refused", Addr: refused},
		{Site: "J", Label: "hole", Addr: holeAddr},
		{Site: "J", Label: "open", Addr: open},
	}
	const timeout = 3 * time.Second
	out, err := exec.Command("ip", "netns", "exec", ns, "sh", "-c", ProbeCommand(eps, timeout)).Output()
	if err != nil {
		t.Fatalf("probe command in %s: %v", ns, err)
	}
	res := ParseProbe(out)
	if got, want := sortedResults(res), "0:timeout 1:timeout 2:refused 3:timeout 4:open"; got != want {
		t.Fatalf("results %q\nexpected: %q\noutput:\n%s", got, want, out)
	}
	at := time.Now()
	for _, tc := range []struct {
		site string
		idx  []int
		want Saw
	}{
		{"H", []int{0}, SawDown},
		{"I", []int{1, 2}, SawDown},
		{"J", []int{3, 4}, SawAlive},
	} {
		var sub []Endpoint
		r := map[int]string{}
		for k, i := range tc.idx {
			sub = append(sub, eps[i])
			r[k] = res[i]
		}
		if e := probeEvidence("p", tc.site, sub, r, at); e.Saw != tc.want {
			t.Errorf("site %s: %s (%s)\nexpected: %s", tc.site, e.Saw, e.Detail, tc.want)
		}
	}
}

// testNetns creates a network namespace of the test's own (loopback up),
// deleted at its end; it skips the test when it cannot (not root, no ip
// or nft).
func testNetns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a blackhole needs a network namespace of the test's own (ip netns add, nft): run as root")
	}
	for _, tool := range []string{"ip", "nft", "bash", "timeout"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: a blackhole needs a network namespace with nft rules (scripts/install-test-deps.sh)", tool)
		}
	}
	ns := fmt.Sprintf("sitectl-t%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	if out, err := exec.Command("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip netns exec %s ip link set lo up: %v: %s", ns, err, out)
	}
	return ns
}

// listenIn listens on 127.0.0.1 inside namespace ns (from a thread that
// enters it and ends with its goroutine) and returns the address; the
// kernel completes the connects, nothing is accepted.
func listenIn(t *testing.T, ns string) string {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	rc := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			rc <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			rc <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		rc <- result{ln, err}
	}()
	r := <-rc
	if r.err != nil {
		t.Fatalf("listen in %s: %v", ns, r.err)
	}
	t.Cleanup(func() { r.ln.Close() })
	return r.ln.Addr().String()
}
