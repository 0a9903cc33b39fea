package checks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sitectl/sitectl/adapters/haproxy"
	"github.com/sitectl/sitectl/internal/testenv/closedport"
	hx "github.com/sitectl/sitectl/internal/testenv/haproxy"
	"github.com/sitectl/sitectl/inventory"
)

func haproxyInv(api string, backends ...*inventory.HAProxyBackend) *inventory.Inventory {
	return &inventory.Inventory{
		Deployment: "test",
		Sites:      []*inventory.Site{{Name: "A", Role: inventory.Primary}, {Name: "B", Role: inventory.Secondary}},
		HAProxy:    &inventory.HAProxy{RuntimeAPI: api, Timeout: inventory.Duration(2 * time.Second), Backends: backends},
	}
}

var (
	beCC = &inventory.HAProxyBackend{Name: "be_cc", Servers: map[string]string{"site_a": "A", "site_b": "B"}}
	beRT = &inventory.HAProxyBackend{Name: "be_rt", Servers: map[string]string{"rt_a": "A", "rt_b": "B"}}
)

// statCSV builds "show stat" output: each server is
// "be/srv status [backup] [w=N] [s=N]".
func statCSV(servers ...string) string {
	var b strings.Builder
	b.WriteString("# pxname,svname,qcur,scur,smax,stot,status,weight,act,bck,chkfail,lastchg,check_status,addr,sid,type,\n")
	for i, s := range servers {
		f := strings.Fields(s)
		be, srv, _ := strings.Cut(f[0], "/")
		status, act, bck, weight, scur := f[1], 1, 0, 1, 0
		for _, x := range f[2:] {
			switch {
			case x == "backup":
				act, bck = 0, 1
			case strings.HasPrefix(x, "w="):
				fmt.Sscan(x[2:], &weight)
			case strings.HasPrefix(x, "s="):
				fmt.Sscan(x[2:], &scur)
			default:
				status += " " + x // "UP 1/2", "MAINT (via …)"
			}
		}
		fmt.Fprintf(&b, "%s,%s,0,%d,%d,9,%s,%d,%d,%d,0,5,L7OK,127.0.0.1:%d,%d,2,\n", be, srv, scur, scur, status, weight, act, bck, 8000+i, i+1)
	}
	b.WriteString("\n")
	return b.String()
}

func TestHAProxyLayerTable(t *testing.T) {
	const api = "unix:///run/haproxy/admin.sock"
	socat := func(cmds ...string) string { return haproxy.SocatCommand(api, cmds...) }
	cases := []struct {
		name     string
		backends []*inventory.HAProxyBackend
		csv      string
		state    string
		site     string
		detail   string // substring
		fix      string // exact ("" = none)
		note     string // substring of some note
	}{
		{name: "A active, B backup", backends: []*inventory.HAProxyBackend{beCC},
			csv:   statCSV("be_cc/site_a UP s=3", "be_cc/site_b UP backup"),
			state: ServeOne, site: "A", detail: "be_cc (site_a A)"},
		{name: "A down, backup B serves", backends: []*inventory.HAProxyBackend{beCC},
			csv:   statCSV("be_cc/site_a DOWN", "be_cc/site_b UP backup"),
			state: ServeOne, site: "B", detail: "site_b B, on backup", note: "running on backup"},
		{name: "A going down still serves", backends: []*inventory.HAProxyBackend{beCC},
			csv:   statCSV("be_cc/site_a UP 1/2", "be_cc/site_b UP backup"),
			state: ServeOne, site: "A", note: "site_a is failing health checks (UP 1/2)"},
		{name: "A draining: backup takes new traffic", backends: []*inventory.HAProxyBackend{beCC},
			csv:   statCSV("be_cc/site_a DRAIN s=2", "be_cc/site_b UP backup"),
			state: ServeOne, site: "B"},
		{name: "both active up: split in one backend", backends: []*inventory.HAProxyBackend{beRT},
			csv:   statCSV("be_rt/rt_a UP", "be_rt/rt_b UP"),
			state: ServeSplit, detail: "both sites take new traffic in be_rt (rt_a A, rt_b B)",
			fix: socat("set server be_rt/rt_b state drain"), note: "to make site B serve instead: " + socat("set server be_rt/rt_a state drain")},
		{name: "backends disagree", backends: []*inventory.HAProxyBackend{beCC, beRT},
			csv:   statCSV("be_cc/site_a MAINT", "be_cc/site_b UP backup", "be_rt/rt_a UP", "be_rt/rt_b DOWN"),
			state: ServeSplit, detail: "site A per be_rt; site B per be_cc",
			fix:  socat("set server be_cc/site_a state ready", "set server be_rt/rt_b state drain"),
			note: "to make site B serve instead: sitectl takeover --site B && " + socat("set server be_rt/rt_a state drain")},
		{name: "one backend none, the other A", backends: []*inventory.HAProxyBackend{beCC, beRT},
			csv:   statCSV("be_cc/site_a UP", "be_cc/site_b UP backup", "be_rt/rt_a MAINT", "be_rt/rt_b DRAIN"),
			state: ServePartial, site: "A", detail: "only part of the traffic has a server: site A per be_cc; no server takes traffic in be_rt",
			fix: socat("set server be_rt/rt_a state ready")},
		{name: "none", backends: []*inventory.HAProxyBackend{beCC, beRT},
			csv:   statCSV("be_cc/site_a MAINT", "be_cc/site_b DOWN backup", "be_rt/rt_a DRAIN", "be_rt/rt_b MAINT"),
			state: ServeNone, detail: "no backend has a server that takes traffic",
			fix: socat("set server be_cc/site_a state ready", "set server be_rt/rt_a state ready")},
		{name: "none, everything down", backends: []*inventory.HAProxyBackend{beCC},
			csv:   statCSV("be_cc/site_a DOWN", "be_cc/site_b DOWN backup"),
			state: ServeNone, fix: "sitectl takeover --site A"},
		{name: "weight 0 and via", backends: []*inventory.HAProxyBackend{beCC, beRT},
			csv:   statCSV("be_cc/site_a UP w=0", "be_cc/site_b DOWN backup", "be_rt/rt_a MAINT (via be_cc/site_a)", "be_rt/rt_b MAINT"),
			state: ServeNone, fix: socat("set weight be_cc/site_a 100%", "set server be_cc/site_a state ready")},
		{name: "no check counts as up", backends: []*inventory.HAProxyBackend{beCC},
			csv:   statCSV("be_cc/site_a no check", "be_cc/site_b no check backup"),
			state: ServeOne, site: "A"},
		{name: "NOLB does not serve", backends: []*inventory.HAProxyBackend{beCC},
			csv:   statCSV("be_cc/site_a NOLB", "be_cc/site_b UP backup"),
			state: ServeOne, site: "B"},
		{name: "two backups of both sites", backends: []*inventory.HAProxyBackend{{Name: "be_x", Servers: map[string]string{"x_a": "A", "x_b": "B", "x_c": "A"}}},
			csv:   statCSV("be_x/x_c DOWN", "be_x/x_a UP backup", "be_x/x_b UP backup"),
			state: ServeSplit, note: "only the first backup (x_a) gets new traffic", fix: "sitectl takeover --site A"},
		{name: "backend missing", backends: []*inventory.HAProxyBackend{beCC, {Name: "be_nosuch", Servers: map[string]string{"n_a": "A", "n_b": "B"}}},
			csv:   statCSV("be_cc/site_a UP", "be_cc/site_b UP backup"),
			state: ServeUnknown, detail: "be_nosuch (not in show stat) (the other backends send to site A)"},
		{name: "unmapped server serves", backends: []*inventory.HAProxyBackend{{Name: "be_rt", Servers: map[string]string{"rt_b": "B"}}},
			csv:   statCSV("be_rt/rt_a UP", "be_rt/rt_b MAINT"),
			state: ServeUnknown, detail: "rt_a: takes traffic but the inventory does not map it to a site"},
		{name: "inventory server not in haproxy", backends: []*inventory.HAProxyBackend{{Name: "be_cc", Servers: map[string]string{"site_a": "A", "site_b": "B", "site_c": "B"}}},
			csv:   statCSV("be_cc/site_a UP", "be_cc/site_b UP backup"),
			state: ServeOne, site: "A", detail: "site_c not configured in HAProxy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows, err := haproxy.ParseStat(c.csv)
			if err != nil {
				t.Fatal(err)
			}
			l := HAProxyLayer(haproxyInv(api, c.backends...), rows, nil)
			if l.Layer != LayerHAProxy || l.State != c.state || l.Site != c.site {
				t.Errorf("state %s site %q, want %s %q: %s", l.State, l.Site, c.state, c.site, l.Detail)
			}
			if !strings.Contains(l.Detail, c.detail) {
				t.Errorf("detail %q lacks %q", l.Detail, c.detail)
			}
			if l.Fix != c.fix {
				t.Errorf("fix\n got %s\nwant %s", l.Fix, c.fix)
			}
			if c.note != "" && !strings.Contains(strings.Join(l.Notes, "\n"), c.note) {
				t.Errorf("notes %q lack %q", l.Notes, c.note)
			}
			if len(l.Rows) < 2 {
				t.Errorf("rows %+v", l.Rows)
			}
		})
	}

	// Rows: one per server, with site, status and sessions.
	rows, _ := haproxy.ParseStat(statCSV("be_cc/site_a DRAIN s=2", "be_cc/site_b UP backup"))
	l := HAProxyLayer(haproxyInv(api, beCC), rows, nil)
	want := []Row{
		{Site: "A", Name: "be_cc/site_a", State: "DRAIN", Detail: "active; active draining: no new traffic (persistent sessions still reach it); 2 sessions", Brief: "active, 2 sess", Values: map[string]float64{"sessions": 2}},
		{Site: "B", Name: "be_cc/site_b", State: "UP", Detail: "backup; backup serving: no active server is up; 0 sessions", Brief: "backup, 0 sess", Values: map[string]float64{"sessions": 0}},
	}
	if !reflect.DeepEqual(l.Rows, want) {
		t.Errorf("rows\n got %+v\nwant %+v", l.Rows, want)
	}
	// Combined with other layers.
	v := Combine([]LayerVerdict{{Layer: LayerServices, State: ServeOne, Site: "B"}, l})
	if !v.Serves("B") {
		t.Errorf("combine: %+v", v)
	}
}

func TestHAProxyLayerErrors(t *testing.T) {
	inv := haproxyInv("tcp://127.0.0.1:9", beCC)
	cases := []struct {
		name   string
		err    error
		detail string
	}{
		{"refused", &haproxy.Error{API: "tcp://127.0.0.1:9", Command: "show stat", Op: "dial", Kind: haproxy.KindRefused}, "not reachable (refused)"},
		{"timeout", &haproxy.Error{API: "tcp://127.0.0.1:9", Command: "show stat", Op: "read", Kind: haproxy.KindTimeout, After: 2 * time.Second}, "not reachable (timeout)"},
		{"no socket", &haproxy.Error{API: "unix:///x.sock", Command: "show stat", Op: "dial", Kind: haproxy.KindNoSocket}, "not reachable (no socket)"},
		{"permission", &haproxy.Error{API: "tcp://127.0.0.1:9", Command: "show stat", Op: "reply", Kind: haproxy.KindDenied, Reply: "Permission denied"}, "refused show stat (Permission denied)"},
		{"garbled", &haproxy.Error{API: "tcp://127.0.0.1:9", Command: "show stat", Op: "reply", Kind: haproxy.KindParse, Err: errors.New("show stat: empty output")}, "gave no usable show stat (unparsable)"},
		{"other", errors.New("boom"), "runtime API tcp://127.0.0.1:9 gave no usable show stat (boom)"},
	}
	for _, c := range cases {
		l := HAProxyLayer(inv, nil, c.err)
		if l.State != ServeUnknown || !strings.Contains(l.Detail, c.detail) || !strings.Contains(l.Detail, "runtime API") || l.Fix != "" || len(l.Rows) != 0 {
			t.Errorf("%s: %+v", c.name, l)
		}
		if len(l.Notes) != 1 || l.Notes[0] != `check it by hand: echo "show info" | socat stdio tcp-connect:127.0.0.1:9` {
			t.Errorf("%s: notes %q", c.name, l.Notes)
		}
	}
	if l := HAProxyLayer(&inventory.Inventory{}, nil, nil); l.State != ServeUnknown || !strings.Contains(l.Detail, "no haproxy section") {
		t.Errorf("no haproxy: %+v", l)
	}
	if l := HAProxyLayer(nil, nil, nil); l.State != ServeUnknown {
		t.Errorf("nil inventory: %+v", l)
	}
	if l := ObserveHAProxy(context.Background(), haproxyInv("http://nope", beCC)); l.State != ServeUnknown || !strings.Contains(l.Detail, "want unix:///path or tcp://host:port") {
		t.Errorf("bad runtime_api: %+v", l)
	}
}

// applyFix sends the runtime-API part of a Fix over the client: exactly the
// line an operator would pipe into socat (several commands joined by "; ").
func applyFix(t *testing.T, c *haproxy.Client, fix string) {
	t.Helper()
	_, after, ok := strings.Cut(fix, `echo "`)
	line, _, ok2 := strings.Cut(after, `" | socat stdio `)
	if !ok || !ok2 {
		t.Fatalf("no runtime-API command in fix %q", fix)
	}
	out, err := c.Exec(context.Background(), line)
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("fix %q: %q %v", line, out, err)
	}
}

func layerNow(t *testing.T, c *haproxy.Client, inv *inventory.Inventory) LayerVerdict {
	t.Helper()
	rows, err := c.ShowStat(context.Background())
	return HAProxyLayer(inv, rows, err)
}

// waitLayer polls until the layer reaches state (and site).
func waitLayer(t *testing.T, c *haproxy.Client, inv *inventory.Inventory, state, site string) LayerVerdict {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l := layerNow(t, c, inv)
		if l.State == state && l.Site == site {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("layer %s %q, want %s %q: %s", l.State, l.Site, state, site, l.Detail)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHAProxyLayerLive follows a real HAProxy through split, fixes, none,
// failover and back.
func TestHAProxyLayerLive(t *testing.T) {
	t.Parallel()
	h := hx.Start(t)
	api := h.AdminAPI()
	c, err := haproxy.New(api, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// be_cc alone: site A serves, B is an idle backup.
	l := ObserveHAProxy(ctx, haproxyInv(api, beCC))
	if l.State != ServeOne || l.Site != "A" || len(l.Rows) != 2 || l.Rows[0].State != "UP" {
		t.Fatalf("be_cc: %+v", l)
	}

	inv := haproxyInv(api, beCC, beRT)
	// be_rt has both sites active: split; the fix drains rt_b.
	l = layerNow(t, c, inv)
	if l.State != ServeSplit || !strings.Contains(l.Detail, "be_rt (rt_a A, rt_b B)") {
		t.Fatalf("split: %+v", l)
	}
	if want := haproxy.SocatCommand(api, "set server be_rt/rt_b state drain"); l.Fix != want {
		t.Fatalf("fix %s, want %s", l.Fix, want)
	}
	applyFix(t, c, l.Fix)
	waitLayer(t, c, inv, ServeOne, "A")

	// Drain site_a: be_cc goes to its backup (B), be_rt stays on A.
	if err := c.SetState(ctx, "be_cc", "site_a", haproxy.Drain); err != nil {
		t.Fatal(err)
	}
	l = waitLayer(t, c, inv, ServeSplit, "")
	if !strings.Contains(l.Detail, "site A per be_rt; site B per be_cc") {
		t.Errorf("disagree: %s", l.Detail)
	}
	if want := haproxy.SocatCommand(api, "set server be_cc/site_a state ready"); l.Fix != want {
		t.Errorf("fix %s, want %s", l.Fix, want)
	}
	// The alternative (site B) is the switchover: drain A's rt_a, ready rt_b.
	alt := ""
	for _, n := range l.Notes {
		if s, ok := strings.CutPrefix(n, "to make site B serve instead: "); ok {
			alt = s
		}
	}
	if want := haproxy.SocatCommand(api, "set server be_rt/rt_b state ready", "set server be_rt/rt_a state drain"); alt != want {
		t.Fatalf("alternative %q, want %q", alt, want)
	}
	applyFix(t, c, alt)
	l = waitLayer(t, c, inv, ServeOne, "B")
	t.Logf("after switchover: %s", l.Detail)

	// Everything out of service: none.
	for _, s := range [][2]string{{"be_cc", "site_b"}, {"be_rt", "rt_b"}} {
		if err := c.SetState(ctx, s[0], s[1], haproxy.Maint); err != nil {
			t.Fatal(err)
		}
	}
	l = waitLayer(t, c, inv, ServeNone, "")
	if want := haproxy.SocatCommand(api, "set server be_cc/site_a state ready", "set server be_rt/rt_a state ready"); l.Fix != want {
		t.Errorf("none fix %s, want %s", l.Fix, want)
	}
	applyFix(t, c, l.Fix)
	waitLayer(t, c, inv, ServeOne, "A")
	// B's chat server back as the idle backup (rt_b stays in maint).
	if err := c.SetState(ctx, "be_cc", "site_b", haproxy.Ready); err != nil {
		t.Fatal(err)
	}

	// Site A's chat server dies: be_cc fails over to B, be_rt stays on A.
	h.Standin("be_cc", "site_a").Kill()
	l = waitLayer(t, c, inv, ServeSplit, "")
	if l.Fix != "sitectl takeover --site A" || !strings.Contains(l.Detail, "site A per be_rt; site B per be_cc") {
		t.Errorf("failover: fix %q detail %s", l.Fix, l.Detail)
	}
	if err := h.Standin("be_cc", "site_a").Revive(); err != nil {
		t.Fatal(err)
	}
	waitLayer(t, c, inv, ServeOne, "A")

	// Sessions show in the rows.
	wait := h.Hold(t, "be_cc", "site_a", 2)
	l = layerNow(t, c, inv)
	if l.Rows[0].Name != "be_cc/site_a" || !strings.HasSuffix(l.Rows[0].Detail, "; 2 sessions") {
		t.Errorf("rows %+v", l.Rows)
	}
	h.Standin("be_cc", "site_a").Release()
	if err := wait(); err != nil {
		t.Error(err)
	}

	// A truncated show stat: the backend whose rows were cut is unknown.
	raw, err := h.Cmd("show stat")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(raw, "be_cc,site_b,")
	rows, perr := haproxy.ParseStat(raw[:i+20])
	if !haproxy.IsPartial(perr) {
		t.Fatalf("truncated parse: %v", perr)
	}
	l = HAProxyLayer(inv, rows, perr)
	if l.State != ServeUnknown || !strings.Contains(l.Detail, "site_b missing from a partial show stat") || !strings.Contains(strings.Join(l.Notes, " "), "last line cut off") {
		t.Errorf("partial: %+v", l)
	}
}

// TestHAProxyLayerUnreachable: no answer is unknown, named, and bounded.
func TestHAProxyLayerUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	silent := ln.Addr().String()
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // never answers
		}
	}()
	defer ln.Close()
	closedAddr := closedport.Addr(t)

	cases := []struct{ api, reason string }{
		{"unix://" + filepath.Join(t.TempDir(), "admin.sock"), "(no socket)"},
		{"tcp://" + closedAddr, "(refused)"},
		{"tcp://" + silent, "(timeout)"},
	}
	for _, k := range cases {
		c, err := haproxy.New(k.api, 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		l := layerNow(t, c, haproxyInv(k.api, beCC))
		if l.State != ServeUnknown || !strings.Contains(l.Detail, "not reachable "+k.reason) {
			t.Errorf("%s: %s %s", k.api, l.State, l.Detail)
		}
		v := Combine([]LayerVerdict{{Layer: LayerServices, State: ServeOne, Site: "A"}, l})
		if v.State != ServeUnknown {
			t.Errorf("combined: %+v", v)
		}
	}
}
