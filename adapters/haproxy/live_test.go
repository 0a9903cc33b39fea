package haproxy

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitectl/sitectl/internal/testenv/closedport"
	hx "github.com/sitectl/sitectl/internal/testenv/haproxy"
)

func client(t *testing.T, api string) *Client {
	t.Helper()
	c, err := New(api, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func stat(t *testing.T, c *Client, be, sv string) StatRow {
	t.Helper()
	rows, err := c.ShowStat(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rowOf(t, rows, be, sv)
}

func serving(t *testing.T, c *Client, be string) BackendTraffic {
	t.Helper()
	rows, err := c.ShowStat(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return Traffic(rows, be)
}

// TestLiveShowStat reads real "show stat" output over the unix socket and
// over TCP.
func TestLiveShowStat(t *testing.T) {
	t.Parallel()
	h := hx.StartWith(t, hx.Options{TCP: true})
	for _, api := range []string{h.AdminAPI(), h.TCPAPI(), h.UserAPI()} {
		c := client(t, api)
		rows, err := c.ShowStat(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", api, err)
		}
		a, b := rowOf(t, rows, "be_cc", "site_a"), rowOf(t, rows, "be_cc", "site_b")
		if a.Status.Raw != "UP" || a.Act != 1 || a.Bck != 0 || a.CheckStatus != "L7OK" {
			t.Errorf("%s: site_a %+v", api, a)
		}
		// A level-user socket hides addresses ("sensitive data").
		if wantAddr := h.Standin("be_cc", "site_a").Addr; api == h.UserAPI() && a.Addr != "" || api != h.UserAPI() && a.Addr != wantAddr {
			t.Errorf("%s: addr %q", api, a.Addr)
		}
		if b.Status.Raw != "UP" || !b.Backup() {
			t.Errorf("%s: site_b %+v", api, b)
		}
		if tr := Traffic(rows, "be_cc"); !reflect.DeepEqual(tr.Serving, []string{"site_a"}) || tr.OnBackup || tr.Status.Raw != "UP" {
			t.Errorf("%s: be_cc traffic %+v", api, tr)
		}
		if tr := Traffic(rows, "be_rt"); !reflect.DeepEqual(tr.Serving, []string{"rt_a", "rt_b"}) {
			t.Errorf("%s: be_rt traffic %+v", api, tr)
		}
		if tr := Traffic(rows, "nosuch"); tr.Found || len(tr.Serving) > 0 {
			t.Errorf("nosuch: %+v", tr)
		}
	}
	c := client(t, h.AdminAPI())
	info, err := c.Info(context.Background())
	if err != nil || !strings.HasPrefix(info["Version"], "2.") {
		t.Errorf("show info: %v %v", info["Version"], err)
	}
	rows, err := c.ShowStatBackend(context.Background(), "be_cc")
	if err != nil || len(rows) != 2 {
		t.Errorf("ShowStatBackend: %d rows, %v", len(rows), err)
	}
	if _, err := c.ShowStatBackend(context.Background(), "nobe"); !errors.Is(err, ErrNoSuchBackend) || !strings.Contains(err.Error(), "No such proxy.") {
		t.Errorf("ShowStatBackend(nobe): %v", err)
	}
	if code, who, err := h.Get("be_cc", "/"); err != nil || code != 200 || who != "site_a" {
		t.Errorf("GET via be_cc: %d %q %v", code, who, err)
	}
}

// TestLiveFailover kills site A's stand-in: site_a goes "UP 1/2" then DOWN,
// the backup (site B) takes over, then A comes back via "DOWN 1/2".
func TestLiveFailover(t *testing.T) {
	t.Parallel()
	h := hx.StartWith(t, hx.Options{FastInter: 400 * time.Millisecond})
	c := client(t, h.AdminAPI())
	if tr := serving(t, c, "be_cc"); !reflect.DeepEqual(tr.Serving, []string{"site_a"}) {
		t.Fatalf("before: %+v", tr)
	}
	h.Standin("be_cc", "site_a").Kill()

	seen := map[string]bool{}
	var going StatRow
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := stat(t, c, "be_cc", "site_a")
		seen[r.Status.Raw] = true
		if r.Status.Raw == "UP 1/2" {
			going = r
		}
		if r.Status.Raw == "DOWN" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("site_a never DOWN; seen %v", seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if going.Name == "" {
		t.Errorf("never saw \"UP 1/2\" on the way down; seen %v", seen)
	} else if !going.Status.Up() || !going.Status.Transitional() || going.Status.N != 1 || going.Status.M != 2 || going.CheckStatus != "L4CON" {
		t.Errorf("going down: %+v", going)
	}
	tr := serving(t, c, "be_cc")
	if !reflect.DeepEqual(tr.Serving, []string{"site_b"}) || !tr.OnBackup || tr.Status.Raw != "UP" {
		t.Errorf("after kill: %+v", tr)
	}
	if be := stat(t, c, "be_cc", "BACKEND"); be.Act != 0 || be.Bck != 1 {
		t.Errorf("BACKEND act %d bck %d", be.Act, be.Bck)
	}
	if code, who, err := h.Get("be_cc", "/"); err != nil || code != 200 || who != "site_b" {
		t.Errorf("GET after kill: %d %q %v", code, who, err)
	}

	if err := h.Standin("be_cc", "site_a").Revive(); err != nil {
		t.Fatal(err)
	}
	clear(seen)
	deadline = time.Now().Add(5 * time.Second)
	for {
		r := stat(t, c, "be_cc", "site_a")
		seen[r.Status.Raw] = true
		if r.Status.Raw == "UP" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("site_a never UP again; seen %v", seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !seen["DOWN 1/2"] {
		t.Errorf("never saw \"DOWN 1/2\" on the way up; seen %v", seen)
	}
	if tr := serving(t, c, "be_cc"); !reflect.DeepEqual(tr.Serving, []string{"site_a"}) || tr.OnBackup {
		t.Errorf("after revive: %+v", tr)
	}
}

// TestLiveDrain holds long requests to site A through the frontend, drains
// site_a and waits until they finish.
func TestLiveDrain(t *testing.T) {
	t.Parallel()
	h := hx.Start(t)
	c := client(t, h.AdminAPI())
	wait := h.Hold(t, "be_cc", "site_a", 3)
	if r := stat(t, c, "be_cc", "site_a"); r.Scur != 3 {
		t.Fatalf("scur %d, want 3", r.Scur)
	}
	const hold = 700 * time.Millisecond
	releasing, released := make(chan struct{}), make(chan struct{})
	go func() {
		time.Sleep(hold)
		close(releasing) // before the sessions can end
		h.Standin("be_cc", "site_a").Release()
		close(released)
	}()
	newTraffic := make(chan string, 1)
	go func() {
		// New requests during the drain go to the backup.
		time.Sleep(200 * time.Millisecond)
		_, who, _ := h.Get("be_cc", "/")
		newTraffic <- who
	}()
	res, err := c.Drain(context.Background(), "be_cc", []string{"site_a"}, time.Now().Add(time.Minute), 50*time.Millisecond)
	if err != nil || !res.Done() || res.Outcome != DrainDone {
		t.Fatalf("drain: %v %+v", err, res)
	}
	// the drain waited for the held sessions (ordered by the channel, no
	// timing asserted)
	select {
	case <-releasing:
	default:
		t.Error("the drain ended while site_a still held its sessions")
	}
	if len(res.Remaining()) != 0 || res.Servers[0].Sessions != 0 || res.Servers[0].Status != "DRAIN" || res.Polls < 2 {
		t.Errorf("result %+v", res)
	}
	<-released
	if err := wait(); err != nil {
		t.Errorf("held requests: %v", err)
	}
	if who := <-newTraffic; who != "site_b" {
		t.Errorf("new request during drain went to %q, want site_b", who)
	}
	if r := stat(t, c, "be_cc", "site_a"); r.Status.Raw != "DRAIN" || r.Status.Up() {
		t.Errorf("after drain: %+v", r.Status)
	}
	if tr := serving(t, c, "be_cc"); !reflect.DeepEqual(tr.Serving, []string{"site_b"}) || !tr.OnBackup {
		t.Errorf("traffic after drain: %+v", tr)
	}
	st, err := c.ShowServersState(context.Background(), "be_cc")
	if err != nil || len(st) != 2 || st[0].Name != "site_a" || st[0].Admin != AdminFDrain || st[0].Op != OpRunning {
		t.Errorf("servers state: %+v %v", st, err)
	}

	// With no sessions, a drain is done at the first poll.
	res, err = c.Drain(context.Background(), "be_rt", []string{"rt_a", "rt_b"}, time.Now().Add(time.Second), 0)
	if err != nil || !res.Done() || res.Polls != 1 {
		t.Errorf("idle drain: %v %+v", err, res)
	}
}

// TestLiveDrainTimeout keeps the requests open past the deadline.
func TestLiveDrainTimeout(t *testing.T) {
	t.Parallel()
	h := hx.Start(t)
	c := client(t, h.AdminAPI())
	wait := h.Hold(t, "be_cc", "site_a", 2)
	defer func() {
		h.Standin("be_cc", "site_a").Release()
		_ = wait()
	}()
	const limit = 800 * time.Millisecond
	deadline := time.Now().Add(limit)
	res, err := c.Drain(context.Background(), "be_cc", []string{"site_a", "site_b"}, deadline, 100*time.Millisecond)
	if !errors.Is(err, ErrDrainTimeout) || res.Outcome != DrainTimedOut || res.Done() {
		t.Fatalf("want a timeout: %v %+v", err, res)
	}
	if got := res.Remaining(); !reflect.DeepEqual(got, map[string]int64{"site_a": 2}) {
		t.Errorf("remaining %v", got)
	}
	if !strings.Contains(err.Error(), "site_a: 2 sessions") {
		t.Errorf("error %q does not name the sessions", err)
	}
	if now := time.Now(); now.Before(deadline) { // never early; late is the machine's load
		t.Errorf("the drain gave up %s before its deadline", deadline.Sub(now))
	}

	// A canceled context ends the drain at once, distinguishable.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(150*time.Millisecond, cancel)
	res, err = c.Drain(ctx, "be_cc", []string{"site_a"}, time.Now().Add(5*time.Second), 50*time.Millisecond)
	if !errors.Is(err, context.Canceled) || res.Outcome != DrainCanceled {
		t.Errorf("canceled drain: %v %+v", err, res)
	}
	// No deadline at all is refused.
	if _, err := c.Drain(context.Background(), "be_cc", []string{"site_a"}, time.Time{}, 0); err == nil {
		t.Error("drain without a deadline accepted")
	}
}

// TestLiveMaintReady: maint → MAINT and FMAINT; ready → UP again.
func TestLiveMaintReady(t *testing.T) {
	t.Parallel()
	h := hx.StartWith(t, hx.Options{TCP: true})
	c := client(t, h.TCPAPI())
	ctx := context.Background()
	if err := c.SetState(ctx, "be_cc", "site_a", Maint); err != nil {
		t.Fatal(err)
	}
	if r := stat(t, c, "be_cc", "site_a"); r.Status.Raw != "MAINT" {
		t.Errorf("after maint: %q", r.Status.Raw)
	}
	st, err := c.ShowServersState(ctx, "be_cc")
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Name != "site_a" || !st[0].Admin.Has(AdminFMaint) || st[0].Admin.String() != "FMAINT" || st[0].Op != OpStopped {
		t.Errorf("servers state after maint: op %s admin %s", st[0].Op, st[0].Admin)
	}
	if tr := serving(t, c, "be_cc"); !reflect.DeepEqual(tr.Serving, []string{"site_b"}) || !tr.OnBackup {
		t.Errorf("traffic in maint: %+v", tr)
	}
	all, err := c.ShowServersState(ctx, "")
	if err != nil || len(all) != 4 {
		t.Errorf("all servers state: %d %v", len(all), err)
	}

	if err := c.SetState(ctx, "be_cc", "site_a", Ready); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := stat(t, c, "be_cc", "site_a")
		seen[r.Status.Raw] = true
		if r.Status.Raw == "UP" {
			break
		}
		if r.Status.State != StateUp && r.Status.State != StateDown {
			t.Errorf("after ready: %q", r.Status.Raw)
		}
		if time.Now().After(deadline) {
			t.Fatalf("never UP; seen %v", seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("statuses after ready: %v", seen)
	st, err = c.ShowServersState(ctx, "be_cc")
	if err != nil || st[0].Admin != 0 || st[0].Admin.String() != "READY" || st[0].Op != OpRunning {
		t.Errorf("servers state after ready: %+v %v", st, err)
	}
	if tr := serving(t, c, "be_cc"); !reflect.DeepEqual(tr.Serving, []string{"site_a"}) {
		t.Errorf("traffic after ready: %+v", tr)
	}
}

// TestLiveErrors surfaces HAProxy's own error texts.
func TestLiveErrors(t *testing.T) {
	t.Parallel()
	h := hx.Start(t)
	c := client(t, h.AdminAPI())
	ctx := context.Background()
	cases := []struct {
		be, sv, state string
		is            error
		text          string
	}{
		{"be_cc", "nosuch", Drain, ErrNoSuchServer, "No such server."},
		{"nobe", "site_a", Maint, ErrNoSuchBackend, "No such backend."},
		{"be_cc", "site_a", "bogus", nil, "'set server <srv> state' expects 'ready', 'drain' and 'maint'."},
		// An injected second command stays part of the server name.
		{"be_cc", "site_a; set server be_cc/site_b state maint", Drain, ErrNoSuchServer, "No such server."},
		{"be_cc", `site_a\`, Drain, ErrNoSuchServer, "No such server."},
		{"be_cc", "site_a state maint;", Drain, ErrNoSuchServer, "No such server."},
	}
	for _, k := range cases {
		err := c.SetState(ctx, k.be, k.sv, k.state)
		var e *Error
		if !errors.As(err, &e) || e.Op != "reply" || e.Reply != k.text || !strings.Contains(err.Error(), k.text) {
			t.Errorf("SetState(%s, %s, %s) = %v", k.be, k.sv, k.state, err)
			continue
		}
		if k.is != nil && !errors.Is(err, k.is) {
			t.Errorf("%v is not %v", err, k.is)
		}
		if errors.Is(err, ErrUnreachable) {
			t.Errorf("%v counted as unreachable", err)
		}
	}
	for _, sv := range []string{"site_a", "site_b"} {
		if r := stat(t, c, "be_cc", sv); r.Status.Raw != "UP" {
			t.Errorf("%s is %q after the failed commands", sv, r.Status.Raw)
		}
	}
	if _, err := c.ShowServersState(ctx, "nobe"); !errors.Is(err, ErrNoSuchBackend) || !strings.Contains(err.Error(), "Can't find backend.") {
		t.Errorf("ShowServersState(nobe): %v", err)
	}
	if _, err := c.Exec(ctx, "show stat\nset server be_cc/site_a state maint"); err == nil || !strings.Contains(err.Error(), "newline") {
		t.Errorf("newline accepted: %v", err)
	}
	if _, err := c.ShowStatBackend(ctx, "be_cc;show info"); !errors.Is(err, ErrNoSuchBackend) {
		t.Errorf("escaped backend: %v", err)
	}
	var e *Error
	if err := c.SetState(ctx, "be_cc", "", Drain); !errors.As(err, &e) || e.Kind != KindBadRequest {
		t.Errorf("empty server: %v", err)
	}
	if _, err := c.ShowStatBackend(ctx, ""); !errors.As(err, &e) || e.Kind != KindBadRequest {
		t.Errorf("empty backend: %v", err)
	}

	// A level-user socket reads but cannot change anything.
	u := client(t, h.UserAPI())
	err := u.SetState(ctx, "be_cc", "site_a", Maint)
	if !errors.Is(err, ErrPermissionDenied) || !strings.Contains(err.Error(), "Permission denied") || Reason(err) != "Permission denied" {
		t.Errorf("user socket: %v", err)
	}
	if _, err := u.Drain(ctx, "be_cc", []string{"site_a"}, time.Now().Add(time.Second), 0); !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("drain on user socket: %v", err)
	}
	if r := stat(t, u, "be_cc", "site_a"); r.Status.Raw != "UP" {
		t.Errorf("user socket read: %q", r.Status.Raw)
	}
}

// fakeAPI is a listener speaking the runtime protocol with canned replies
// (or none, when reply returns ok=false: the connection is held open).
func fakeAPI(t *testing.T, network, addr string, reply func(cmd string) (string, bool)) string {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			go func() {
				line, err := bufio.NewReader(conn).ReadString('\n')
				if err != nil {
					conn.Close()
					return
				}
				if out, ok := reply(strings.TrimSuffix(line, "\n")); ok {
					_, _ = conn.Write([]byte(out))
					conn.Close()
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestUnreachable: every transport failure is bounded and named.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()

	check := func(name, api string, kind Kind, timeout, within time.Duration) {
		t.Helper()
		c, err := New(api, timeout)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		rows, err := c.ShowStat(ctx)
		took := time.Since(start)
		var e *Error
		if rows != nil || !errors.As(err, &e) || e.Kind != kind || !errors.Is(err, ErrUnreachable) || !e.Unreachable() {
			t.Errorf("%s: rows %v, err %v (kind %q), want kind %q", name, rows, err, Reason(err), kind)
		}
		_ = within // the kind says why it failed; no duration is asserted (a busy machine is slow, not wrong)
		t.Logf("%s: %v (%s)", name, err, took.Round(time.Millisecond))
	}
	check("missing socket", "unix://"+filepath.Join(dir, "nosuch.sock"), KindNoSocket, time.Second, 500*time.Millisecond)

	port := closedport.Addr(t)
	check("closed port", "tcp://"+port, KindRefused, time.Second, 500*time.Millisecond)

	// A socket file whose listener is gone (haproxy died).
	stale := filepath.Join(dir, "stale.sock")
	ul, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ul.(*net.UnixListener).SetUnlinkOnClose(false)
	ul.Close()
	check("stale socket", "unix://"+stale, KindRefused, time.Second, 500*time.Millisecond)

	silent := fakeAPI(t, "tcp", "127.0.0.1:0", func(string) (string, bool) { return "", false })
	check("listener never answers", "tcp://"+silent, KindTimeout, 300*time.Millisecond, 800*time.Millisecond)
	if c, _ := New("tcp://"+silent, time.Minute); c != nil {
		// The context's deadline wins over a longer Timeout.
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		start := time.Now()
		_, err := c.Exec(cctx, "show stat")
		cancel()
		if !errors.Is(err, ErrTimeout) || time.Since(start) > 30*time.Second {
			t.Errorf("ctx deadline: %v after %s", err, time.Since(start))
		}
		cctx, cancel = context.WithCancel(ctx)
		time.AfterFunc(100*time.Millisecond, cancel)
		start = time.Now()
		_, err = c.Exec(cctx, "show stat")
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindCanceled || time.Since(start) > 30*time.Second {
			t.Errorf("cancel: %v after %s", err, time.Since(start))
		}
	}

	// A listener that closes without a word: not a valid show stat.
	mute := fakeAPI(t, "tcp", "127.0.0.1:0", func(string) (string, bool) { return "", true })
	c, _ := New("tcp://"+mute, time.Second)
	if _, err := c.ShowStat(ctx); err == nil || errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "empty output") {
		t.Errorf("empty reply: %v", err)
	}
	if err := c.SetState(ctx, "be", "srv", Drain); err != nil {
		t.Errorf("silent success: %v", err)
	}
}

// TestDrainUnknown: stats that cannot be read are "unknown", never "done".
func TestDrainUnknown(t *testing.T) {
	t.Parallel()
	header, line := recordedLine(t)
	var mu sync.Mutex
	mode := "garbled"
	api := fakeAPI(t, "tcp", "127.0.0.1:0", func(cmd string) (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case strings.HasPrefix(cmd, "set server"):
			return "\n", true
		case mode == "garbled":
			return "# pxname,svname\nbe_cc,site_a\n\n", true
		case mode == "missing":
			return header + "\n" + strings.Replace(line, "site_a", "other", 1) + "\n\n", true
		case mode == "truncated":
			return header + "\n" + line[:50], true
		}
		return "", false // hang
	})
	c, _ := New("tcp://"+api, 300*time.Millisecond)
	for _, m := range []string{"garbled", "missing", "truncated", "hang"} {
		mu.Lock()
		mode = m
		mu.Unlock()
		start := time.Now()
		res, err := c.Drain(context.Background(), "be_cc", []string{"site_a"}, time.Now().Add(500*time.Millisecond), 50*time.Millisecond)
		took := time.Since(start) // a guard against a hang, not a timing
		if !errors.Is(err, ErrDrainUnknown) || res.Outcome != DrainUnknown || res.Done() {
			t.Errorf("%s: %v %+v", m, err, res)
		}
		if got := res.Remaining(); !reflect.DeepEqual(got, map[string]int64{"site_a": -1}) {
			t.Errorf("%s: remaining %v", m, got)
		}
		if took > 30*time.Second {
			t.Errorf("%s: took %s: the drain did not end at its deadline", m, took)
		}
		t.Logf("%s: %v", m, err)
	}
}
