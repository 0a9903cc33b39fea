package inventory

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// want is one expected error: position and a substring of the message.
type want struct {
	line, col int
	msg       string
}

var wantRE = regexp.MustCompile(`^# want (\d+)(?::(\d+))? (.+)$`)

// readWants reads the "# want L:C message" comments of a snippet.
func readWants(t *testing.T, data []byte) []want {
	t.Helper()
	var ws []want
	for _, l := range strings.Split(string(data), "\n") {
		m := wantRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		w := want{msg: m[3]}
		w.line, _ = strconv.Atoi(m[1])
		if m[2] != "" {
			w.col, _ = strconv.Atoi(m[2])
		}
		ws = append(ws, w)
	}
	return ws
}

// checkErrors asserts that err holds exactly the wanted errors, in order.
func checkErrors(t *testing.T, file string, err error, ws []want) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %d", len(ws))
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want Errors: %v", err, err)
	}
	for i := 0; i < len(errs) || i < len(ws); i++ {
		switch {
		case i >= len(ws):
			t.Errorf("unexpected error: %v", errs[i])
		case i >= len(errs):
			t.Errorf("missing error at %d:%d: %s", ws[i].line, ws[i].col, ws[i].msg)
		default:
			e, w := errs[i], ws[i]
			if e.Pos.File != file || e.Pos.Line != w.line || e.Pos.Column != w.col || !strings.Contains(e.Msg, w.msg) {
				t.Errorf("error %d:\n got  %v\n want %s:%d:%d: …%s…", i, e, file, w.line, w.col, w.msg)
			}
		}
	}
}

// TestInvalidSnippets parses every file of testdata/invalid and checks the
// errors against the file's "# want" comments.
func TestInvalidSnippets(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) < 20 {
		t.Fatalf("snippets: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ws := readWants(t, data)
			if len(ws) == 0 {
				t.Fatal("snippet has no # want comment")
			}
			inv, err := Parse(name, data)
			if inv != nil {
				t.Errorf("got an inventory along with errors")
			}
			checkErrors(t, name, err, ws)
		})
	}
}

// base is a small valid inventory; the table below edits it.
const base = `deployment: t
sites:
  - name: A
    role: primary
    hosts:
      - {name: a1, address: 127.0.0.1}
    services:
      - {name: chat, kind: chat, host: a1, start: s, stop: t, status: u}
  - name: B
    role: secondary
    hosts:
      - {name: b1, address: 127.0.0.2}
    services:
      - {name: chat, kind: chat, host: b1, start: s, stop: t, status: u}
`

func TestInline(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []want // nil: must be valid
	}{
		{"base", base, nil},
		{"extra valid sections", base + `witness: {name: W, hosts: [{name: w1, local: true}]}
runbooks: [extra/]
lock: {path: /var/lock/sitectl.lock}
`, nil},
		{"service on a witness-free site B", strings.Replace(base, "{name: chat, kind: chat, host: b1, start: s, stop: t, status: u}", "{name: chat, kind: chat, hosts: [b1], start: s, stop: t, status: u, passive: running, group: core}", 1), nil},
		{"site without services", strings.Replace(base, "    services:\n      - {name: chat, kind: chat, host: b1, start: s, stop: t, status: u}\n", "", 1), []want{
			{9, 5, "site B has no services (list the services a takeover starts there)"},
		}},
		{"unknown key in service", strings.Replace(base, "status: u", "stat: u", 1), []want{
			{8, 9, `service "chat" has no status command`},
			{8, 63, `unknown key "stat" in service (expected one of: name, kind, group, host, hosts, start, stop, status, passive, timeout, probe)`},
		}},
		{"service on unknown host", strings.Replace(base, "host: a1", "host: a9", 1), []want{
			{8, 40, `service "chat" is on unknown host "a9" (site A has hosts: a1)`},
		}},
		{"duplicate host", strings.Replace(base, "b1", "a1", -1), []want{
			{12, 16, `duplicate host name "a1" (first defined at t.yaml:6:16)`},
		}},
		{"three sites", base + `  - {name: C, role: secondary, hosts: [{name: c1, address: c.example}]}
`, []want{
			{3, 3, "sites must have exactly 2 entries (one primary, one secondary), got 3"},
			{15, 5, "site C has no services"},
			{15, 21, "sites B and C are both secondary"},
		}},
		{"duration", base + "defaults: {command_timeout: 2x}\n", []want{
			{15, 29, `command_timeout: invalid duration "2x"`},
		}},
		{"tab indentation", base + "\tlock: {}\n", []want{
			{15, 1, "invalid YAML: found character that cannot start any token"},
		}},
		{"error on the first line", "deployment: a: b\n", []want{
			{1, 14, "invalid YAML: mapping values are not allowed in this context"},
		}},
		{"unclosed quote", "deployment: t\nsites:\n  - name: \"A\n", []want{
			{3, 11, "invalid YAML: found unexpected end of stream"},
		}},
		{"tab inside the indentation", "deployment: t\nsites:\n  - name: A\n    \trole: primary\n", []want{
			{4, 5, "invalid YAML: found a tab character that violates indentation"},
		}},
		{"not UTF-8", "deployment: t\nsites: []\nlock: {path: /caf\xe9}\n", []want{
			{3, 18, "invalid YAML: "},
		}},
		{"unclosed single quote after valid lines", "deployment: t\nsites: []\nlock: {path: '/x}\nruns: []\n", []want{
			{3, 14, "invalid YAML: "},
		}},
		{"scalar root", "hello\n", []want{
			{1, 1, `the inventory must be a mapping (deployment:, sites:, ...), got "hello"`},
		}},
		{"only a document marker", "---\n", []want{
			{1, 1, "empty inventory"},
		}},
		{"empty input", "", []want{
			{1, 1, "empty inventory"},
		}},
		{"key that is a list", base + "[a]: b\n", []want{
			{15, 1, "expected a key name in inventory, got a list"},
		}},
		{"binary string", strings.Replace(base, "deployment: t", "deployment: !!binary aGk=", 1), []want{
			{1, 13, `deployment: expected a string, got !!binary "aGk="`},
		}},
		{"integer too large", base + "defaults: {ssh: {port: 99999999999999999999}}\n", []want{
			{15, 24, "port: expected an integer, got 99999999999999999999"},
		}},
		{"probe status without http", strings.Replace(base, "status: u}", "status: u, probe: {tcp: \"a1:80\", json_field: x}}", 1), []want{
			{8, 108, `probe of service "chat": json_field only applies to http probes`},
		}},
		{"credentials with bad env name", base + "mongodb: {replica_set: rs, credentials: {username_env: u, password_env: 's3cr3t!'}, members: [{name: m, address: 'a1:1', site: A}]}\n", []want{
			{15, 73, `mongodb credentials: password_env "s3cr3t!" is not an environment variable name`},
		}},
		{"env on a local host", base + "witness: {name: W, hosts: [{name: w1, local: true, env: [EF_HOME, TZ]}]}\n", nil},
		{"env on a remote host or not a name", base + "witness: {name: W, hosts: [{name: w1, address: w1.example, env: ['A=b']}]}\n", []want{
			{15, 65, `host w1: env applies to local hosts only`},
			{15, 65, `host w1: env "A=b" is not an environment variable name`},
		}},
		{"max_handshakes on a host", base + "witness: {name: W, hosts: [{name: w1, address: w1.example, ssh: {max_handshakes: 4}}]}\n", []want{
			{15, 82, `host w1: ssh.max_handshakes bounds sitectl's handshakes across all hosts: set it in defaults.ssh`},
		}},
		{"max_handshakes negative", base + "defaults: {ssh: {max_handshakes: -1}}\n", []want{
			{15, 34, `defaults.ssh: max_handshakes -1 must be positive`},
		}},
		{"ssh handshake settings", base + "defaults: {ssh: {max_handshakes: 4, handshake_timeout: 1m}}\n", nil},
		{"unix runtime api", base + "haproxy: {runtime_api: 'unix:///run/haproxy/admin.sock', backends: [{name: x, servers: {a: A, b: B}}]}\n", nil},
		{"ipv6 addresses", base + "haproxy: {runtime_api: 'tcp://[::1]:9999', backends: [{name: x, servers: {a: A, b: B}}]}\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := Parse("t.yaml", []byte(tc.yaml))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected errors:\n%v", err)
				}
				if inv == nil {
					t.Fatal("nil inventory without error")
				}
				return
			}
			checkErrors(t, "t.yaml", err, tc.want)
		})
	}
}

// TestManyErrorsAtOnce checks that problems of every kind (syntax aside)
// are reported together, sorted by position.
func TestManyErrorsAtOnce(t *testing.T) {
	src := `deployment: ""
defaults: {verify_timeout: 10, ssh: {port: 0x10000}}
sites:
  - name: A
    role: primary
    hosts: [{name: a1}]
    services:
      - {name: chat, kind: chat, host: a2, start: s, stop: t, status: u, probe: {http: "127.0.0.1"}}
  - name: B
    role: primary
    colour: red
    hosts: [{name: a1, address: 127.0.0.2}]
`
	_, err := Parse("m.yaml", []byte(src))
	checkErrors(t, "m.yaml", err, []want{
		{1, 13, "deployment is required"},
		{2, 28, `verify_timeout: expected a duration with a unit`},
		{2, 44, "defaults.ssh: port 65536 is out of range (1-65535)"},
		{6, 13, "host a1 has no address"},
		{8, 40, `service "chat" is on unknown host "a2" (site A has hosts: a1)`},
		{8, 88, `probe of service "chat": http "127.0.0.1" is not an http:// or https:// URL`},
		{9, 5, "site B has no services"},
		{10, 11, "sites A and B are both primary"},
		{11, 5, `unknown key "colour" in site`},
		{12, 20, `duplicate host name "a1" (first defined at m.yaml:6:20)`},
	})
	if s := err.Error(); strings.Count(s, "\n") != 9 || !strings.HasPrefix(s, "m.yaml:1:13: deployment is required") {
		t.Errorf("Error() should print one problem per line:\n%s", s)
	}
}

func TestExample(t *testing.T) {
	data, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	inv, err := Load("example.yaml")
	if err != nil {
		t.Fatalf("example.yaml:\n%v", err)
	}
	sum := sha256.Sum256(data)
	if inv.File != "example.yaml" || inv.Digest != hex.EncodeToString(sum[:]) {
		t.Errorf("File, Digest = %q, %q", inv.File, inv.Digest)
	}
	if inv.Deployment != "hybrid-chat" || inv.Lock.Path != "~/.local/state/sitectl/remote/hybrid-chat.lock" {
		t.Errorf("deployment %q lock %q", inv.Deployment, inv.Lock.Path)
	}
	a, b := inv.PrimarySite(), inv.SecondarySite()
	if a == nil || b == nil || a.Name != "A" || b.Name != "B" || inv.Other("A") != b || inv.Other("B") != a || inv.Site("B") != b {
		t.Fatalf("sites: %+v", inv.Sites)
	}
	if inv.Other("W") != nil || inv.Site("W") != nil {
		t.Error("the witness is not a site")
	}
	for _, s := range []*Site{a, b} {
		lc := strings.ToLower(s.Name)
		var hosts []string
		for _, h := range s.Hosts {
			hosts = append(hosts, h.Name)
			if h.Site != s.Name || inv.Host(h.Name) != h || s.Host(h.Name) != h {
				t.Errorf("host %s: site %q", h.Name, h.Site)
			}
		}
		if strings.Join(hosts, ",") != lc+"-app,"+lc+"-rpt" {
			t.Errorf("site %s hosts %v", s.Name, hosts)
		}
		var names []string
		for _, svc := range s.ServicesIn(Core) {
			names = append(names, svc.Name)
			if svc.OnHosts()[0] != lc+"-app" {
				t.Errorf("%s/%s on %v", s.Name, svc.Name, svc.OnHosts())
			}
		}
		if strings.Join(names, ",") != "ccm,comms,mre,chat" {
			t.Errorf("site %s core services %v", s.Name, names)
		}
		rep := s.ServicesIn(Reporting)
		if len(rep) != 1 || rep[0].Name != "reporting" || rep[0].Host != lc+"-rpt" || !rep[0].StoppedWhenPassive() {
			t.Errorf("site %s reporting services %+v", s.Name, rep)
		}
		if s.Service("ccm").StoppedWhenPassive() || !s.Service("chat").StoppedWhenPassive() {
			t.Errorf("site %s: ccm runs on both sites, chat is stopped on the passive one", s.Name)
		}
		for _, svc := range s.Services {
			if svc.Site != s.Name || svc.Pos.File != "example.yaml" || svc.Pos.Line == 0 || svc.Pos.Column == 0 {
				t.Errorf("service %s/%s: site %q pos %v", s.Name, svc.Name, svc.Site, svc.Pos)
			}
			if !strings.HasPrefix(svc.Status, "systemctl is-active --quiet ef-") && svc.Kind != "reporting" {
				t.Errorf("service %s/%s status %q", s.Name, svc.Name, svc.Status)
			}
		}
		if chat := s.Service("chat").Probe; chat == nil || !strings.HasPrefix(chat.HTTP, "http://") || chat.Status != 200 || chat.JSONField != "status" || chat.Timeout.D() != 2*time.Second {
			t.Errorf("site %s chat probe %+v", s.Name, chat)
		}
		if comms := s.Service("comms").Probe; comms == nil || comms.TCP == "" {
			t.Errorf("site %s comms probe %+v", s.Name, comms)
		}
		if len(s.ConsumerMatch) == 0 {
			t.Errorf("site %s has no consumer_match", s.Name)
		}
	}
	// B's services come from A's anchors with their own hosts and probes.
	if a.Service("chat").Probe.HTTP == b.Service("chat").Probe.HTTP || b.Service("mre").Timeout.D() != time.Minute {
		t.Error("merge keys: B should override the probe and inherit the timeout")
	}
	if w := inv.Witness; w == nil || w.Name != "W" || len(w.Hosts) != 1 || inv.Host("w-arb").Site != "W" {
		t.Errorf("witness %+v", inv.Witness)
	}
	m := inv.MongoDB
	if m == nil || len(m.Members) != 3 || m.Members[0].Site != "A" || m.Members[1].Site != "B" || !m.Members[2].Arbiter || m.Members[2].Site != "W" || m.Credentials == nil || m.Credentials.PasswordEnv == "" {
		t.Errorf("mongodb %+v", m)
	}
	q := inv.ActiveMQ
	if q == nil || len(q.Brokers) != 2 || q.Brokers[0].Site != "A" || q.Brokers[1].Site != "B" || len(q.Queues) == 0 {
		t.Errorf("activemq %+v", q)
	}
	h := inv.HAProxy
	if h == nil || len(h.Backends) == 0 || h.Backends[0].Servers["chat-a"] != "A" || h.Backends[0].Servers["chat-b"] != "B" {
		t.Errorf("haproxy %+v", h)
	}

	// Every address is a loopback placeholder, and says so.
	if !strings.Contains(string(data), "loopback placeholders: replace with your hosts") {
		t.Error("example.yaml must say its addresses are loopback placeholders")
	}
	loopback := func(what, hostport string) {
		host := hostport
		if h, _, err := net.SplitHostPort(hostport); err == nil {
			host = h
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			t.Errorf("%s: %q is not a loopback address", what, hostport)
		}
	}
	for _, s := range inv.Sites {
		for _, h := range s.Hosts {
			loopback(h.Name, h.Address)
		}
		for _, svc := range s.Services {
			if p := svc.Probe; p != nil && p.TCP != "" {
				loopback(svc.Name, p.TCP)
			} else if p != nil {
				loopback(svc.Name, strings.Split(strings.TrimPrefix(p.HTTP, "http://"), "/")[0])
			}
		}
	}
	for _, h := range inv.Witness.Hosts {
		loopback(h.Name, h.Address)
	}
	for _, mm := range m.Members {
		loopback(mm.Name, mm.Address)
	}
	for _, br := range q.Brokers {
		loopback(br.Name, br.STOMP)
	}
	loopback("haproxy", strings.TrimPrefix(h.RuntimeAPI, "tcp://"))
	for _, ip := range regexp.MustCompile(`\b\d+\.\d+\.\d+\.\d+\b`).FindAllString(string(data), -1) {
		loopback("example.yaml", ip)
	}
}

func TestDefaults(t *testing.T) {
	_, err := Parse("d.yaml", []byte(base+`witness: {name: W, hosts: [{name: w1, address: w.example, ssh: {port: 2222, user: arb, agent: true}}]}
defaults:
  ssh: {user: ops, key: ~/.ssh/id, known_hosts: ~/.ssh/kh}
mongodb: {replica_set: rs, members: [{name: m, address: "127.0.0.1:27017", site: A}]}
activemq: {brokers: [{name: q, site: B, stomp: "127.0.0.2:61613"}], queues: [x]}
haproxy: {runtime_api: "tcp://127.0.0.3:9999", backends: [{name: x, servers: {a: A, b: B}}]}
`))
	if err == nil {
		t.Fatal("activemq without consumer_match should fail")
	}
	src := strings.Replace(base, "role: primary", "role: primary\n    consumer_match: [a-]", 1)
	src = strings.Replace(src, "role: secondary", "role: secondary\n    consumer_match: [b-]", 1)
	src = strings.Replace(src, "status: u}", "status: u, probe: {http: 'http://127.0.0.1/'}}\n      - {name: rpt, kind: reporting, host: a1, start: s, stop: t, status: u, group: reporting, probe: {tcp: '127.0.0.1:1'}}", 1)
	inv, err := Parse("d.yaml", []byte(src+`witness: {name: W, hosts: [{name: w1, address: w.example, ssh: {port: 2222, user: arb, agent: true}}]}
defaults:
  ssh: {user: ops, key: ~/.ssh/id, known_hosts: ~/.ssh/kh}
mongodb: {replica_set: rs, members: [{name: m, address: "127.0.0.1:27017", site: A}]}
activemq: {brokers: [{name: q, site: B, stomp: "127.0.0.2:61613"}], queues: [x]}
haproxy: {runtime_api: "tcp://127.0.0.3:9999", backends: [{name: x, servers: {a: A, b: B}}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	d := inv.Defaults
	if d.CommandTimeout.D() != 30*time.Second || d.VerifyTimeout.D() != 60*time.Second || d.SSH.Port != 22 || d.SSH.ConnectTimeout.D() != 5*time.Second || d.SSH.HandshakeTimeout.D() != 30*time.Second {
		t.Errorf("defaults %+v", d)
	}
	if inv.Lock.Path != "~/.local/state/sitectl/remote/t.lock" {
		t.Errorf("lock %q", inv.Lock.Path)
	}
	chat := inv.Site("A").Service("chat")
	if chat.Group != Core || chat.Passive != "stopped" || chat.Probe.Status != 200 || chat.Probe.Timeout.D() != 2*time.Second {
		t.Errorf("service defaults %+v probe %+v", chat, chat.Probe)
	}
	if rpt := inv.Site("A").Service("rpt"); rpt.Probe.Status != 0 || rpt.Probe.Timeout.D() != 2*time.Second {
		t.Errorf("tcp probe defaults %+v", rpt.Probe)
	}
	if inv.MongoDB.Timeout.D() != 3*time.Second || inv.ActiveMQ.Timeout.D() != 3*time.Second || inv.HAProxy.Timeout.D() != 2*time.Second {
		t.Error("mongodb/activemq/haproxy timeouts not defaulted")
	}
	if got := inv.TimeoutFor(chat); got != 30*time.Second {
		t.Errorf("TimeoutFor = %v", got)
	}
	chat.Timeout = Duration(time.Minute)
	if got := inv.TimeoutFor(chat); got != time.Minute {
		t.Errorf("TimeoutFor = %v", got)
	}
	// SSH inherits field by field.
	a1 := inv.SSHFor(inv.Host("a1"))
	if a1.User != "ops" || a1.Port != 22 || a1.Key != "~/.ssh/id" || a1.KnownHosts != "~/.ssh/kh" || a1.Agent || a1.ConnectTimeout.D() != 5*time.Second {
		t.Errorf("a1 ssh %+v", a1)
	}
	w1 := inv.SSHFor(inv.Host("w1"))
	if w1.User != "arb" || w1.Port != 2222 || w1.Key != "~/.ssh/id" || !w1.Agent {
		t.Errorf("w1 ssh %+v", w1)
	}
	if h := inv.Host("w1"); h.SSH.Key != "" {
		t.Error("SSHFor must not change the host")
	}
	if inv.Host("nope") != nil || inv.Site("A").Host("b1") != nil {
		t.Error("Host found a host that is not there")
	}
	// Re-validating a loaded inventory (defaults applied) still passes.
	if err := inv.Validate(); err != nil {
		t.Errorf("Validate after defaults: %v", err)
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	src := `deployment: t
sites:
  - name: A
    role: primary
    hosts: &hosts
      - {name: a1, address: 127.0.0.1}
    services:
      - &base
        name: chat
        kind: chat
        host: a1
        start: &start systemctl start ef-chat
        stop: systemctl stop ef-chat
        status: systemctl is-active --quiet ef-chat
        timeout: 10s
      - &extra {name: mre, kind: mre, group: reporting, passive: running}
      - <<: [*base, *extra]   # the first wins: name chat, group reporting
        host: a1
        start: *start
      - *base
  - name: B
    role: secondary
    hosts: [{name: b1, address: 127.0.0.2}]
    services:
      - <<: *base
        host: b1
        timeout: 20s
`
	_, err := Parse("m.yaml", []byte(src))
	// A's mre (the &extra entry) has no host or commands; in the merged
	// entry *base comes first so it wins: another chat, as is "- *base".
	checkErrors(t, "m.yaml", err, []want{
		{16, 9, `service "mre" names no host`},
		{16, 9, `service "mre" has no start command`},
		{16, 9, `service "mre" has no stop command`},
		{16, 9, `service "mre" has no status command`},
		{17, 14, `duplicate service name "chat" in site A (first defined at m.yaml:9:15)`}, // the alias that brought the name in
		{20, 9, `duplicate service name "chat" in site A (first defined at m.yaml:9:15)`},  // position of the alias
	})

	src = strings.Replace(src, "      - &extra {name: mre, kind: mre, group: reporting, passive: running}\n", "", 1)
	src = strings.Replace(src, "      - <<: [*base, *extra]   # the first wins: name chat, group reporting\n", "      - <<: [{name: mre, kind: mre, group: reporting, passive: running}, *base]\n", 1)
	src = strings.Replace(src, "      - *base\n  - name: B", "  - name: B", 1)
	inv, err := Parse("m.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	a, b := inv.Site("A"), inv.Site("B")
	mre := a.Service("mre")
	if mre == nil || mre.Kind != "mre" || mre.Group != Reporting || mre.Passive != "running" || mre.Start != "systemctl start ef-chat" || mre.Stop != "systemctl stop ef-chat" || mre.Timeout.D() != 10*time.Second {
		t.Fatalf("merged service %+v", mre)
	}
	chatB := b.Service("chat")
	if chatB == nil || chatB.Host != "b1" || chatB.Timeout.D() != 20*time.Second || chatB.Status != "systemctl is-active --quiet ef-chat" || chatB.Site != "B" {
		t.Fatalf("B chat %+v", chatB)
	}
	if chatB == a.Service("chat") || chatB.Pos.Line != 23 {
		t.Errorf("aliased services must be distinct values with their own position, got %v", chatB.Pos)
	}
}

func TestAliasBomb(t *testing.T) {
	src := `a: &a ["x","x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]
deployment: t
runbooks: *g
`
	// The schema is shallow, so a bomb must go wide at each level: 100
	// sites of 100 services of 100 hosts each.
	refs := func(name string) string {
		return "[" + strings.TrimSuffix(strings.Repeat(name+",", 100), ",") + "]"
	}
	src = "deployment: t\nlock: {path: &h /x}\n" +
		"defaults: {ssh: {user: &v {name: c, kind: chat, hosts: " + refs("*h") + ", start: s, stop: t, status: u}}}\n" +
		"runbooks: [&s {name: A, services: " + refs("*v") + "}]\n" +
		"sites: " + refs("*s") + "\n"
	start := time.Now()
	_, err := Parse("bomb.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "inventory too large") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > time.Minute { // an expanding bomb would take far longer; not a timing
		t.Errorf("took %v", d)
	}
	src = "m0: &m0 {name: x}\n"
	for i := 1; i < 40; i++ {
		src += "m" + strconv.Itoa(i) + ": &m" + strconv.Itoa(i) + " {<<: [*m" + strconv.Itoa(i-1) + ", *m" + strconv.Itoa(i-1) + "]}\n"
	}
	src += "deployment: t\nlock: {<<: *m39}\n"
	if _, err := Parse("merge-bomb.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), "inventory too large") {
		t.Fatalf("merge bomb: %v", err)
	}
}

func TestValidateInCode(t *testing.T) {
	inv := &Inventory{
		Deployment: "x",
		Sites: []*Site{
			{Name: "A", Role: Primary, Hosts: []*Host{{Name: "a1", Local: true}},
				Services: []*Service{{Name: "chat", Kind: "chat", Hosts: []string{"a1"}, Start: "s", Stop: "t", Status: "u"}}},
			{Name: "B", Role: Secondary, Hosts: []*Host{{Name: "b1", Address: "b.example", Pos: Pos{File: "x.yaml", Line: 7, Column: 3}}},
				Services: []*Service{{Name: "chat", Kind: "chat", Hosts: []string{"b1"}, Start: "s", Stop: "t", Status: "u"}}},
		},
	}
	if err := inv.Validate(); err != nil {
		t.Fatal(err)
	}
	if inv.Sites[0].Services[0].Site != "A" || inv.Host("b1").Site != "B" {
		t.Error("Validate must fill Site fields")
	}
	inv.ApplyDefaults()
	if inv.Sites[0].Services[0].Group != Core || inv.Defaults.SSH.Port != 22 || inv.Lock.Path != "~/.local/state/sitectl/remote/x.lock" {
		t.Error("ApplyDefaults")
	}
	inv.Sites[1].Hosts[0].Address = ""
	inv.Sites = append(inv.Sites, nil)
	err := inv.Validate()
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("err = %v", err)
	}
	if got := errs[2].Error(); got != "x.yaml:7:3: host b1 has no address (set address, or local: true to run its commands on this machine)" {
		t.Errorf("got %q", got)
	}
	if got := errs[0].Error(); got != "sites must have exactly 2 entries (one primary, one secondary), got 3" {
		t.Errorf("got %q", got)
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{Pos{"f.yaml", 3, 5}, "m"}, "f.yaml:3:5: m"},
		{Error{Pos{"f.yaml", 3, 0}, "m"}, "f.yaml:3: m"},
		{Error{Pos{"f.yaml", 0, 0}, "m"}, "f.yaml: m"},
		{Error{Pos{"", 3, 5}, "m"}, "3:5: m"},
		{Error{Pos{}, "m"}, "m"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	errs := Errors{{Pos{"b", 1, 1}, "x"}, {Pos{"a", 9, 9}, "y"}, {Pos{"a", 9, 2}, "z"}, {Pos{"a", 9, 2}, "z"}}.sorted()
	if got := errs.Error(); got != "a:9:2: z\na:9:9: y\nb:1:1: x" {
		t.Errorf("sorted: %q", got)
	}
	var target *Error
	if !errors.As(error(errs), &target) || target.Msg != "z" {
		t.Error("errors.As should find the first *Error")
	}
}

func TestDuration(t *testing.T) {
	var v struct{ T Duration }
	if err := yaml.Unmarshal([]byte("t: 1m30s"), &v); err != nil || v.T.D() != 90*time.Second || v.T.String() != "1m30s" {
		t.Fatalf("%v %v", v.T, err)
	}
	out, err := yaml.Marshal(v)
	if err != nil || string(out) != "t: 1m30s\n" {
		t.Errorf("marshal: %q %v", out, err)
	}
	for _, bad := range []string{"t: 30", "t: -1s", "t: [1s]", "t: abc"} {
		if err := yaml.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v", err)
	}
}

// An inventory over MaxSize is refused before it is parsed, by Load (which
// reads no more than that) and by Parse.
func TestInventoryOverTheSizeCap(t *testing.T) {
	big := []byte(base + "# " + strings.Repeat("x", MaxSize) + "\n")
	f := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(f, big, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, parse := range map[string]func() (*Inventory, error){
		"Load":  func() (*Inventory, error) { return Load(f) },
		"Parse": func() (*Inventory, error) { return Parse(f, big) },
	} {
		inv, err := parse()
		if inv != nil || err == nil || !strings.Contains(err.Error(), "big.yaml:1:1: the inventory is larger than 4 MiB") {
			t.Errorf("%s of a %d-byte inventory: %v", name, len(big), err)
		}
	}
}

// notify retries: unset is the default (3 more attempts), 0 is none.
func TestNotifyRetriesZeroMeansNone(t *testing.T) {
	zero, three := 0, 3
	for _, tc := range []struct {
		retries *int
		want    int
	}{{nil, 1 + DefaultNotifyRetries}, {&zero, 1}, {&three, 4}} {
		if got := (&NotifyTarget{Retries: tc.retries}).Attempts(); got != tc.want {
			t.Errorf("retries %v: %d attempts, want %d", tc.retries, got, tc.want)
		}
	}
}
