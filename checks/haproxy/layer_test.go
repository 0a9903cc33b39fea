package haproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	hap "github.com/sitectl/sitectl/adapters/haproxy"
	"github.com/sitectl/sitectl/checks/layer"
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
	socat := func(cmds ...string) string { return hap.SocatCommand(api, cmds...) }
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
			state: layer.ServeOne, site: "A", detail: "be_cc (site_a A)"},
		{name: "A down, backup B serves", backends: []*inventory.HAProxyBackend{beCC},
			csv:   statCSV("be_cc/site_a DOWN", "be_cc/site_b UP backup"),
			state: layer.ServeOne, site: "B", detail: "site_b B, on backup", note: "running on backup"},
		{name: "A going down still serves", backends: []*inventory.HAProxyBackend{beCC},
			csv:   statCSV("be_cc/site_a UP 1/2", "be_cc/site_b UP backup"),
			state: layer.ServeOne, site: "A", note: "site_a is failing health checks (UP 1/2)"},
		{name: "A draining: backup takes new traffic", backends: []*inventory.HAProxyBackend{beCC},
			csv:   statCSV("be_cc/site_a DRAIN s=2", "be_cc/site_b UP backup"),
			state: layer.ServeOne, site: "B"},
		{name: "both active up: split in one backend", backends: []*inventory.HAProxyBackend{beRT},
			csv:   statCSV("be_rt/rt_a UP", "be_rt/rt_b UP"),
			state: layer.ServeSplit, detail: "both sites take new traffic in be_rt (rt_a A, rt_b B)",
			fix: socat("set server be_rt/rt_b state drain"), note: "to make site B serve instead: " + socat("set server be_rt/rt_a state drain")},
		{name: "backends disagree", backends: []*inventory.HAProxyBackend{beCC, beRT},
			csv:   statCSV("be_cc/site_a MAINT", "be_cc/site_b UP backup", "be_rt/rt_a UP", "be_rt/rt_b DOWN"),
			state: layer.ServeSplit, detail: "site A per be_rt; site B per be_cc",
			fix:  socat("set server be_cc/site_a state ready", "set server be_rt/rt_b state drain"),
			note: "to make site B serve instead: sitectl takeover --site B && " + socat("set server be_rt/rt_a state drain")},
		{name: "one backend none, the other A", backends: []*inventory.HAProxyBackend{beCC, beRT},
			csv:   statCSV("be_cc/site_a UP", "be_cc/site_b UP backup", "be_rt/rt_a MAINT", "be_rt/rt_b DRAIN"),
			state: layer.ServePartial, site: "A", detail: "only part of the traffic has a server: site A per be_cc; no server takes traffic in be_rt",
			fix: socat("set server be_rt/rt_a state ready")},
		{name: "none", backends: []*inventory.HAProxyBackend{beCC, beRT},
			csv:   statCSV("be_cc/site_a MAINT", "be_cc/site_b DOWN backup", "be_rt/rt_a DRAIN", "be_rt/rt_b MAINT"),
			state: layer.ServeNone, detail: "no backend has a server that takes traffic",
			fix: socat("set server be_cc/site_a state ready", "set server be_rt/rt_a state ready")},
		{name: "none, everything down", backends: []*inventory.HAProxyBackend{beCC},
			csv:   statCSV("be_cc/site_a DOWN", "be_cc/site_b DOWN backup"),
			state: layer.ServeNone, fix: "sitectl takeover --site A"},
		{name: "weight 0 and via", backends: []*inventory.HAProxyBackend{beCC, beRT},
			csv:   statCSV("be_cc/site_a UP w=0", "be_cc/site_b DOWN backup", "be_rt/rt_a MAINT (via be_cc/site_a)", "be_rt/rt_b MAINT"),
			state: layer.ServeNone, fix: socat("set weight be_cc/site_a 100%", "set server be_cc/site_a state ready")},
		{name: "no check counts as up", backends: []*inventory.HAProxyBackend{beCC},
			csv:   statCSV("be_cc/site_a no check", "be_cc/site_b no check backup"),
			state: layer.ServeOne, site: "A"},
		{name: "NOLB does not serve", backends: []*inventory.HAProxyBackend{beCC},
			csv:   statCSV("be_cc/site_a NOLB", "be_cc/site_b UP backup"),
			state: layer.ServeOne, site: "B"},
		{name: "two backups of both sites", backends: []*inventory.HAProxyBackend{{Name: "be_x", Servers: map[string]string{"x_a": "A", "x_b": "B", "x_c": "A"}}},
			csv:   statCSV("be_x/x_c DOWN", "be_x/x_a UP backup", "be_x/x_b UP backup"),
			state: layer.ServeSplit, note: "only the first backup (x_a) gets new traffic", fix: "sitectl takeover --site A"},
		{name: "backend missing", backends: []*inventory.HAProxyBackend{beCC, {Name: "be_nosuch", Servers: map[string]string{"n_a": "A", "n_b": "B"}}},
			csv:   statCSV("be_cc/site_a UP", "be_cc/site_b UP backup"),
			state: layer.ServeUnknown, detail: "be_nosuch (not in show stat) (the other backends send to site A)"},
		{name: "unmapped server serves", backends: []*inventory.HAProxyBackend{{Name: "be_rt", Servers: map[string]string{"rt_b": "B"}}},
			csv:   statCSV("be_rt/rt_a UP", "be_rt/rt_b MAINT"),
			state: layer.ServeUnknown, detail: "rt_a: takes traffic but the inventory does not map it to a site"},
		{name: "inventory server not in haproxy", backends: []*inventory.HAProxyBackend{{Name: "be_cc", Servers: map[string]string{"site_a": "A", "site_b": "B", "site_c": "B"}}},
			csv:   statCSV("be_cc/site_a UP", "be_cc/site_b UP backup"),
			state: layer.ServeOne, site: "A", detail: "site_c not configured in HAProxy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows, err := hap.ParseStat(c.csv)
			if err != nil {
				t.Fatal(err)
			}
			l := Judge(haproxyInv(api, c.backends...), rows, nil)
			if l.Layer != layer.LayerHAProxy || l.State != c.state || l.Site != c.site {
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
	rows, _ := hap.ParseStat(statCSV("be_cc/site_a DRAIN s=2", "be_cc/site_b UP backup"))
	l := Judge(haproxyInv(api, beCC), rows, nil)
	want := []layer.Row{
		{Site: "A", Name: "be_cc/site_a", State: "DRAIN", Detail: "active; active draining: no new traffic (persistent sessions still reach it); 2 sessions", Brief: "active, 2 sess", Values: map[string]float64{"sessions": 2}},
		{Site: "B", Name: "be_cc/site_b", State: "UP", Detail: "backup; backup serving: no active server is up; 0 sessions", Brief: "backup, 0 sess", Values: map[string]float64{"sessions": 0}},
	}
	if !reflect.DeepEqual(l.Rows, want) {
		t.Errorf("rows\n got %+v\nwant %+v", l.Rows, want)
	}
}

func TestHAProxyLayerErrors(t *testing.T) {
	inv := haproxyInv("tcp://127.0.0.1:9", beCC)
	cases := []struct {
		name   string
		err    error
		detail string
	}{
		{"refused", &hap.Error{API: "tcp://127.0.0.1:9", Command: "show stat", Op: "dial", Kind: hap.KindRefused}, "not reachable (refused)"},
		{"timeout", &hap.Error{API: "tcp://127.0.0.1:9", Command: "show stat", Op: "read", Kind: hap.KindTimeout, After: 2 * time.Second}, "not reachable (timeout)"},
		{"no socket", &hap.Error{API: "unix:///x.sock", Command: "show stat", Op: "dial", Kind: hap.KindNoSocket}, "not reachable (no socket)"},
		{"permission", &hap.Error{API: "tcp://127.0.0.1:9", Command: "show stat", Op: "reply", Kind: hap.KindDenied, Reply: "Permission denied"}, "refused show stat (Permission denied)"},
		{"garbled", &hap.Error{API: "tcp://127.0.0.1:9", Command: "show stat", Op: "reply", Kind: hap.KindParse, Err: errors.New("show stat: empty output")}, "gave no usable show stat (unparsable)"},
		{"other", errors.New("boom"), "runtime API tcp://127.0.0.1:9 gave no usable show stat (boom)"},
	}
	for _, c := range cases {
		l := Judge(inv, nil, c.err)
		if l.State != layer.ServeUnknown || !strings.Contains(l.Detail, c.detail) || !strings.Contains(l.Detail, "runtime API") || l.Fix != "" || len(l.Rows) != 0 {
			t.Errorf("%s: %+v", c.name, l)
		}
		if len(l.Notes) != 1 || l.Notes[0] != `check it by hand: echo 'show info' | socat stdio tcp-connect:127.0.0.1:9` {
			t.Errorf("%s: notes %q", c.name, l.Notes)
		}
	}
	if l := Judge(&inventory.Inventory{}, nil, nil); l.State != layer.ServeUnknown || !strings.Contains(l.Detail, "no haproxy section") {
		t.Errorf("no haproxy: %+v", l)
	}
	if l := Judge(nil, nil, nil); l.State != layer.ServeUnknown {
		t.Errorf("nil inventory: %+v", l)
	}
	if l := (Layer{}).Observe(context.Background(), haproxyInv("http://nope", beCC)).Verdict(nil); l.State != layer.ServeUnknown || !strings.Contains(l.Detail, "want unix:///path or tcp://host:port") {
		t.Errorf("bad runtime_api: %+v", l)
	}
}

// applyFix sends the runtime-API part of a Fix over the client: exactly the
// line an operator would pipe into socat (several commands joined by "; ").
func applyFix(t *testing.T, c *hap.Client, fix string) {
	t.Helper()
	i := strings.Index(fix, "echo ")
	echo, _, ok := strings.Cut(fix[max(i, 0):], " | socat stdio ")
	if i < 0 || !ok {
		t.Fatalf("no runtime-API command in fix %q", fix)
	}
	// what the operator's shell pipes into socat
	b, err := exec.Command("sh", "-c", echo).Output()
	if err != nil {
		t.Fatalf("%s: %v", echo, err)
	}
	line := strings.TrimSuffix(string(b), "\n")
	out, err := c.Exec(context.Background(), line)
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("fix %q: %q %v", line, out, err)
	}
}

func layerNow(t *testing.T, c *hap.Client, inv *inventory.Inventory) layer.Verdict {
	t.Helper()
	rows, err := c.ShowStat(context.Background())
	return Judge(inv, rows, err)
}

// waitLayer polls until the layer reaches state (and site).
func waitLayer(t *testing.T, c *hap.Client, inv *inventory.Inventory, state, site string) layer.Verdict {
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
	c, err := hap.New(api, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// be_cc alone: site A serves, B is an idle backup.
	l := (Layer{}).Observe(ctx, haproxyInv(api, beCC)).Verdict(nil)
	if l.State != layer.ServeOne || l.Site != "A" || len(l.Rows) != 2 || l.Rows[0].State != "UP" {
		t.Fatalf("be_cc: %+v", l)
	}

	inv := haproxyInv(api, beCC, beRT)
	// be_rt has both sites active: split; the fix drains rt_b.
	l = layerNow(t, c, inv)
	if l.State != layer.ServeSplit || !strings.Contains(l.Detail, "be_rt (rt_a A, rt_b B)") {
		t.Fatalf("split: %+v", l)
	}
	if want := hap.SocatCommand(api, "set server be_rt/rt_b state drain"); l.Fix != want {
		t.Fatalf("fix %s, want %s", l.Fix, want)
	}
	applyFix(t, c, l.Fix)
	waitLayer(t, c, inv, layer.ServeOne, "A")

	// Drain site_a: be_cc goes to its backup (B), be_rt stays on A.
	if err := c.SetState(ctx, "be_cc", "site_a", hap.Drain); err != nil {
		t.Fatal(err)
	}
	l = waitLayer(t, c, inv, layer.ServeSplit, "")
	if !strings.Contains(l.Detail, "site A per be_rt; site B per be_cc") {
		t.Errorf("disagree: %s", l.Detail)
	}
	if want := hap.SocatCommand(api, "set server be_cc/site_a state ready"); l.Fix != want {
		t.Errorf("fix %s, want %s", l.Fix, want)
	}
	// The alternative (site B) is the switchover: drain A's rt_a, ready rt_b.
	alt := ""
	for _, n := range l.Notes {
		if s, ok := strings.CutPrefix(n, "to make site B serve instead: "); ok {
			alt = s
		}
	}
	if want := hap.SocatCommand(api, "set server be_rt/rt_b state ready", "set server be_rt/rt_a state drain"); alt != want {
		t.Fatalf("alternative %q, want %q", alt, want)
	}
	applyFix(t, c, alt)
	l = waitLayer(t, c, inv, layer.ServeOne, "B")
	t.Logf("after switchover: %s", l.Detail)

	// Everything out of service: none.
	for _, s := range [][2]string{{"be_cc", "site_b"}, {"be_rt", "rt_b"}} {
		if err := c.SetState(ctx, s[0], s[1], hap.Maint); err != nil {
			t.Fatal(err)
		}
	}
	l = waitLayer(t, c, inv, layer.ServeNone, "")
	if want := hap.SocatCommand(api, "set server be_cc/site_a state ready", "set server be_rt/rt_a state ready"); l.Fix != want {
		t.Errorf("none fix %s, want %s", l.Fix, want)
	}
	applyFix(t, c, l.Fix)
	waitLayer(t, c, inv, layer.ServeOne, "A")
	// B's chat server back as the idle backup (rt_b stays in maint).
	if err := c.SetState(ctx, "be_cc", "site_b", hap.Ready); err != nil {
		t.Fatal(err)
	}

	// Site A's chat server dies: be_cc fails over to B, be_rt stays on A.
	h.Standin("be_cc", "site_a").Kill()
	l = waitLayer(t, c, inv, layer.ServeSplit, "")
	if l.Fix != "sitectl takeover --site A" || !strings.Contains(l.Detail, "site A per be_rt; site B per be_cc") {
		t.Errorf("failover: fix %q detail %s", l.Fix, l.Detail)
	}
	if err := h.Standin("be_cc", "site_a").Revive(); err != nil {
		t.Fatal(err)
	}
	waitLayer(t, c, inv, layer.ServeOne, "A")

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
	rows, perr := hap.ParseStat(raw[:i+20])
	if !hap.IsPartial(perr) {
		t.Fatalf("truncated parse: %v", perr)
	}
	l = Judge(inv, rows, perr)
	if l.State != layer.ServeUnknown || !strings.Contains(l.Detail, "site_b missing from a partial show stat") || !strings.Contains(strings.Join(l.Notes, " "), "last line cut off") {
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
		c, err := hap.New(k.api, 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		l := layerNow(t, c, haproxyInv(k.api, beCC))
		if l.State != layer.ServeUnknown || !strings.Contains(l.Detail, "not reachable "+k.reason) {
			t.Errorf("%s: %s %s", k.api, l.State, l.Detail)
		}
	}
}

// HAProxy's view of site A from recorded "show stat" output (real HAProxy
// 2.6): a server whose check just failed to connect ("UP 1/2", L4CON) is
// already evidence of a loss; DOWN on L4CON too; the other site's server
// says nothing of A.
func TestHAProxyEvidenceRecorded(t *testing.T) {
	inv := &inventory.Inventory{HAProxy: &inventory.HAProxy{Backends: []*inventory.HAProxyBackend{{Name: "be_cc", Servers: map[string]string{"site_a": "A", "site_b": "B"}}}}}
	for _, tc := range []struct {
		file string
		a, b layer.Saw
	}{
		{"stat_going_down.csv", layer.SawDown, layer.SawAlive},
		{"stat_down_backup.csv", layer.SawDown, layer.SawAlive},
		{"stat_up.csv", layer.SawAlive, layer.SawAlive},
	} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "adapters", "haproxy", "testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := hap.ParseStat(string(raw))
		if err != nil {
			t.Fatal(err)
		}
		for site, want := range map[string]layer.Saw{"A": tc.a, "B": tc.b} {
			ev := SiteEvidence(inv, rows, nil, site)
			if len(ev) != 1 || ev[0].Saw != want || !ev[0].Independent {
				t.Errorf("%s, site %s: %+v, want %s", tc.file, site, ev, want)
			}
		}
	}
	if ev := SiteEvidence(inv, nil, errors.New("dial tcp: connection refused"), "A"); len(ev) != 1 || ev[0].Saw != layer.SawNoAnswer {
		t.Errorf("runtime API down: %+v, want no answer", ev)
	}
}
