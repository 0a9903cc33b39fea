package haproxy

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseStatus(t *testing.T) {
	cases := []struct {
		raw  string
		want Status
		up   bool
	}{
		{"UP", Status{State: StateUp}, true},
		{"UP 1/3", Status{State: StateUp, N: 1, M: 3}, true},
		{"UP 2/2", Status{State: StateUp, N: 2, M: 2}, true},
		{"DOWN", Status{State: StateDown}, false},
		{"DOWN 1/2", Status{State: StateDown, N: 1, M: 2}, false},
		{"DOWN (agent)", Status{State: StateDown, Agent: true}, false},
		{"NOLB", Status{State: StateNoLB}, false},
		{"NOLB 1/2", Status{State: StateNoLB, N: 1, M: 2}, false},
		{"DRAIN", Status{State: StateDrain}, false},
		{"DRAIN 1/3", Status{State: StateDrain, N: 1, M: 3}, false},
		{"DRAIN (agent)", Status{State: StateDrain, Agent: true}, false},
		{"MAINT", Status{State: StateMaint}, false},
		{"MAINT (via be/srv)", Status{State: StateMaint, Via: "be/srv"}, false},
		{"MAINT(via be_misc/chk)", Status{State: StateMaint, Via: "be_misc/chk"}, false}, // the manual's spelling
		{"MAINT (resolution)", Status{State: StateMaint, Resolution: true}, false},
		{"no check", Status{State: StateNoCheck}, true},
		{"UP (1/2)", Status{State: StateUp, N: 1, M: 2}, true}, // backend under no-maint
		{"OPEN", Status{State: StateOpen}, false},
		{"STOP", Status{State: StateStop}, false},
		{"PAUSED", Status{State: StatePaused}, false},
		{"  UP  ", Status{State: StateUp}, true},
		{"", Status{}, false},
		{"UPSIDE", Status{Rest: "UPSIDE"}, false},
		{"no checks", Status{Rest: "no checks"}, false},
		{"WEIRD 1/2", Status{Rest: "WEIRD 1/2"}, false},
		{"UP 1/x", Status{State: StateUp, Rest: "1/x"}, true},
		{"UP 1/0", Status{State: StateUp, Rest: "1/0"}, true},
		{"MAINT (via be/srv", Status{State: StateMaint, Rest: "(via be/srv"}, false},
		{"DRAIN (agent) (weird)", Status{State: StateDrain, Agent: true, Rest: "(weird)"}, false},
	}
	for _, c := range cases {
		got := ParseStatus(c.raw)
		c.want.Raw = c.raw
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseStatus(%q) = %+v, want %+v", c.raw, got, c.want)
		}
		if got.Up() != c.up {
			t.Errorf("ParseStatus(%q).Up() = %v", c.raw, got.Up())
		}
		if got.Known() != (c.want.State != "") {
			t.Errorf("ParseStatus(%q).Known() = %v", c.raw, got.Known())
		}
	}
	if !ParseStatus("UP 1/2").Transitional() || ParseStatus("UP (1/2)").Transitional() || ParseStatus("UP").Transitional() {
		t.Error("Transitional: want only server counters")
	}
}

func rowOf(t *testing.T, rows []StatRow, px, sv string) StatRow {
	t.Helper()
	for _, r := range rows {
		if r.Proxy == px && r.Name == sv {
			return r
		}
	}
	t.Fatalf("no row %s/%s", px, sv)
	return StatRow{}
}

// TestParseStatRecorded parses outputs recorded from HAProxy 2.6.12
// (TestRecordOutputs).
func TestParseStatRecorded(t *testing.T) {
	type srv struct {
		px, sv, status, state string
		act, bck              int64
		check                 string
	}
	cases := []struct {
		file    string
		rows    int
		servers []srv
		serving map[string][]string
		backup  map[string]bool
	}{
		{"stat_up.csv", 13, []srv{
			{"be_cc", "site_a", "UP", StateUp, 1, 0, "L7OK"},
			{"be_cc", "site_b", "UP", StateUp, 0, 1, "L7OK"},
			{"be_cc", "BACKEND", "UP", StateUp, 1, 1, ""},
			{"fe_cc", "FRONTEND", "OPEN", StateOpen, -1, -1, ""},
			{"be_misc", "nochk", "no check", StateNoCheck, 1, 0, ""},
		}, map[string][]string{"be_cc": {"site_a"}, "be_rt": {"rt_a", "rt_b"}, "be_misc": {"chk", "nochk", "trk"}}, nil},
		{"stat_drain_maint_via.csv", 13, []srv{
			{"be_cc", "site_a", "DRAIN", StateDrain, 1, 0, "L7OK"},
			{"be_rt", "rt_b", "MAINT", StateMaint, 1, 0, ""},
			{"be_misc", "trk", "MAINT (via be_misc/chk)", StateMaint, 1, 0, ""},
		}, map[string][]string{"be_cc": {"site_b"}, "be_rt": {"rt_a"}, "be_misc": {"nochk"}}, map[string]bool{"be_cc": true}},
		{"stat_going_down.csv", 3, []srv{
			{"be_cc", "site_a", "UP 1/2", StateUp, 1, 0, "L4CON"},
		}, map[string][]string{"be_cc": {"site_a"}}, nil},
		{"stat_down_backup.csv", 13, []srv{
			{"be_cc", "site_a", "DOWN", StateDown, 1, 0, "L4CON"},
			{"be_cc", "BACKEND", "UP", StateUp, 0, 1, ""},
		}, map[string][]string{"be_cc": {"site_b"}}, map[string]bool{"be_cc": true}},
		{"stat_going_up.csv", 2, []srv{
			{"be_cc", "site_a", "DOWN 1/2", StateDown, 1, 0, "L7OK"},
		}, map[string][]string{"be_cc": {"site_b"}}, map[string]bool{"be_cc": true}},
		{"stat_no_maint.csv", 13, []srv{
			{"be_cc", "BACKEND", "UP (1/2)", StateUp, 0, 1, ""},
		}, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			rows, err := ParseStat(readTestdata(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != c.rows {
				t.Errorf("%d rows, want %d", len(rows), c.rows)
			}
			for _, s := range c.servers {
				r := rowOf(t, rows, s.px, s.sv)
				if r.Status.Raw != s.status || r.Status.State != s.state || r.Act != s.act || r.Bck != s.bck || r.CheckStatus != s.check {
					t.Errorf("%s/%s: status %q (%s) act %d bck %d check %q; want %q (%s) %d %d %q",
						s.px, s.sv, r.Status.Raw, r.Status.State, r.Act, r.Bck, r.CheckStatus, s.status, s.state, s.act, s.bck, s.check)
				}
			}
			for be, want := range c.serving {
				tr := Traffic(rows, be)
				if !reflect.DeepEqual(tr.Serving, want) || tr.OnBackup != c.backup[be] {
					t.Errorf("Traffic(%s) = %v onBackup %v, want %v %v (%+v)", be, tr.Serving, tr.OnBackup, want, c.backup[be], tr.Servers)
				}
			}
			for _, r := range rows {
				if r.IsServer() && (r.Scur != 0 || r.Weight < 0 || !strings.HasPrefix(r.Addr, "127.0.0.1:") || r.SID <= 0) {
					t.Errorf("%s/%s: scur %d weight %d addr %q sid %d", r.Proxy, r.Name, r.Scur, r.Weight, r.Addr, r.SID)
				}
			}
		})
	}
	rows, _ := ParseStat(readTestdata(t, "stat_up.csv"))
	r := rowOf(t, rows, "be_cc", "site_a")
	if v, ok := r.Field("check_desc"); !ok || v != "Layer7 check passed" {
		t.Errorf("Field(check_desc) = %q %v", v, ok)
	}
	if v, ok := r.Field("h1_spliced_bytes_out"); !ok || v != "" {
		t.Errorf("Field(last column) = %q %v", v, ok)
	}
	if _, ok := r.Field("nosuch"); ok {
		t.Error("Field(nosuch) found")
	}
	if r.Type != TypeServer || rowOf(t, rows, "be_cc", "BACKEND").Type != TypeBackend || rowOf(t, rows, "fe_cc", "FRONTEND").Type != TypeFrontend {
		t.Error("row types")
	}
}

// recordedLine returns the header and be_cc/site_a's line of stat_up.csv.
func recordedLine(t *testing.T) (header, line string) {
	t.Helper()
	for _, l := range strings.Split(readTestdata(t, "stat_up.csv"), "\n") {
		switch {
		case strings.HasPrefix(l, "# "):
			header = l
		case strings.HasPrefix(l, "be_cc,site_a,"):
			line = l
		}
	}
	return header, line
}

// withStatus puts status into the status column of line.
func withStatus(t *testing.T, header, line, status string) string {
	t.Helper()
	names := strings.Split(strings.TrimPrefix(header, "# "), ",")
	f := strings.Split(line, ",")
	for i, n := range names {
		if n == "status" {
			f[i] = status
		}
	}
	return strings.Join(f, ",")
}

// TestParseStatStatuses runs every status string through a recorded row.
func TestParseStatStatuses(t *testing.T) {
	header, line := recordedLine(t)
	for _, st := range []string{"UP", "UP 1/3", "DOWN", "DOWN 1/2", "DOWN (agent)", "NOLB", "NOLB 1/2",
		"DRAIN", "DRAIN 1/2", "DRAIN (agent)", "MAINT", "MAINT (via be/srv)", "MAINT (resolution)", "no check"} {
		rows, err := ParseStat(header + "\n" + withStatus(t, header, line, st) + "\n\n")
		if err != nil || len(rows) != 1 {
			t.Fatalf("%q: %v %d rows", st, err, len(rows))
		}
		want := ParseStatus(st)
		if !reflect.DeepEqual(rows[0].Status, want) {
			t.Errorf("%q: %+v want %+v", st, rows[0].Status, want)
		}
		tr := Traffic(rows, "be_cc")
		serving := len(tr.Serving) == 1
		if serving != want.Up() {
			t.Errorf("%q: serving %v (%s)", st, tr.Serving, tr.Servers[0].Why)
		}
	}
}

func TestParseStatGarbled(t *testing.T) {
	header, line := recordedLine(t)
	other := strings.Replace(line, "site_a", "site_b", 1)
	cases := []struct {
		name     string
		in       string
		rows     int    // rows returned
		partial  bool   // a *PartialError
		fatal    string // substring of a non-partial error
		issueSub string // substring of the partial error
	}{
		{name: "empty", in: "", fatal: "empty output"},
		{name: "blank lines", in: "\n\n \n", fatal: "empty output"},
		{name: "permission denied", in: "Permission denied\n\n", fatal: "no CSV header"},
		{name: "unknown command", in: "Unknown command, but maybe one of the following ones is a better match:\n  help\n\n", fatal: "no CSV header"},
		{name: "rows without header", in: line + "\n" + other + "\n\n", fatal: "no CSV header"},
		{name: "header only", in: header + "\n\n", rows: 0},
		{name: "complete", in: header + "\n" + line + "\n" + other + "\n\n", rows: 2},
		{name: "cut mid row", in: header + "\n" + line + "\n" + other[:len(other)/2], rows: 1, partial: true, issueSub: "last line cut off"},
		{name: "cut mid header", in: header[:40], fatal: "no usable row: line 1: header lacks column status"},
		{name: "cut after a row", in: header + "\n" + line, fatal: "no usable row: line 2: last line cut off"},
		{name: "short row", in: header + "\n" + strings.Join(strings.Split(line, ",")[:20], ",") + "\n" + other + "\n\n", rows: 1, partial: true, issueSub: "short row: 20 of"},
		{name: "long row", in: header + "\n" + line + "1,2,3,\n" + other + "\n\n", rows: 1, partial: true, issueSub: "long row"},
		{name: "unterminated quote", in: header + "\n" + strings.Replace(line, "Layer7 check passed", "\"Layer7 check passed", 1) + "\n" + other + "\n\n", rows: 1, partial: true, issueSub: "unterminated quote"},
		{name: "quoted comma", in: header + "\n" + strings.Replace(line, "Layer7 check passed", "\"Layer7, \"\"check\"\" passed\"", 1) + "\n\n", rows: 1},
		{name: "not a number", in: header + "\n" + strings.Replace(line, ",UP,1,1,0,", ",UP,x,1,0,", 1) + "\n\n", rows: 1, partial: true, issueSub: "column weight: \"x\" is not a number"},
		{name: "missing status column", in: strings.Replace(header, ",status,", ",statux,", 1) + "\n" + line + "\n\n", fatal: "header lacks column status"},
		{name: "missing scur column", in: strings.Replace(header, ",scur,", ",scux,", 1) + "\n" + line + "\n\n", rows: 1, partial: true, issueSub: "lacks column scur"},
		{name: "empty names", in: header + "\n,,,\n" + line + "\n\n", rows: 1, partial: true},
		{name: "CRLF", in: strings.ReplaceAll(header+"\n"+line+"\n\n", "\n", "\r\n"), rows: 1},
		{name: "garbage", in: "\x00\xff,,,\"\n#\n#,,\n", fatal: "no CSV header"},
		{name: "two headers", in: header + "\n" + line + "\n\n" + header + "\n" + other + "\n\n", rows: 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows, err := ParseStat(c.in)
			var p *PartialError
			switch {
			case c.partial:
				if !errors.As(err, &p) {
					t.Fatalf("want a partial error, got %v", err)
				}
				if !strings.Contains(err.Error(), c.issueSub) {
					t.Errorf("error %q lacks %q", err, c.issueSub)
				}
			case c.fatal != "":
				if err == nil || IsPartial(err) || !strings.Contains(err.Error(), c.fatal) {
					t.Fatalf("want error %q, got %v", c.fatal, err)
				}
			case c.rows > 0 || c.name == "header only":
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
			default:
				if err == nil {
					t.Fatalf("want an error, got %d rows", len(rows))
				}
			}
			if len(rows) != c.rows {
				t.Errorf("%d rows, want %d", len(rows), c.rows)
			}
			for _, r := range rows {
				if r.Proxy == "" || r.Name == "" {
					t.Errorf("row without names: %+v", r)
				}
			}
		})
	}

	// Columns in another order and an unknown column are read by name.
	rows, err := ParseStat("# svname,extra,status,pxname,scur,bck,act,weight,qcur,smax,stot,chkfail,lastchg,check_status,addr\n" +
		"site_b,zz,UP,be_cc,4,1,0,1,0,4,9,0,12,* L7OK,127.0.0.1:1\n\n")
	if err != nil || len(rows) != 1 {
		t.Fatal(err, rows)
	}
	r := rows[0]
	if r.Proxy != "be_cc" || r.Name != "site_b" || r.Scur != 4 || !r.Backup() || r.CheckStatus != "L7OK" || !r.CheckRunning {
		t.Errorf("reordered: %+v", r)
	}
	if v, _ := r.Field("extra"); v != "zz" {
		t.Errorf("extra = %q", v)
	}
}

func TestParseServersState(t *testing.T) {
	rows, err := ParseServersState(readTestdata(t, "servers_state_drain_maint.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		op    OpState
		admin AdminState
		str   string
	}{
		"be_cc/site_a":  {OpRunning, AdminFDrain, "FDRAIN"},
		"be_cc/site_b":  {OpRunning, 0, "READY"},
		"be_rt/rt_b":    {OpStopped, AdminFMaint, "FMAINT"},
		"be_misc/chk":   {OpStopped, AdminFMaint, "FMAINT"},
		"be_misc/trk":   {OpStopped, AdminIMaint, "IMAINT"},
		"be_misc/nochk": {OpRunning, 0, "READY"},
	}
	if len(rows) != 7 {
		t.Errorf("%d rows", len(rows))
	}
	for _, r := range rows {
		w, ok := want[r.Backend+"/"+r.Name]
		if !ok {
			continue
		}
		if r.Op != w.op || r.Admin != w.admin || r.Admin.String() != w.str || !r.AdminKnown {
			t.Errorf("%s/%s: op %s admin %s, want %s %s", r.Backend, r.Name, r.Op, r.Admin, w.op, w.str)
		}
		if r.ID <= 0 || r.BackendID <= 0 || r.Addr != "127.0.0.1" || r.Port <= 0 || r.FQDN != "-" || r.CheckStatus < 0 {
			t.Errorf("%s/%s: %+v", r.Backend, r.Name, r)
		}
	}
	if a := AdminFMaint | AdminFDrain | 0x100; a.String() != "FMAINT|FDRAIN|0x100" || !a.Maint() || !a.Drain() || !a.Has(AdminFDrain) {
		t.Errorf("flags: %s", a)
	}
	if a := AdminState(0x7f); !reflect.DeepEqual(a.Flags(), []string{"FMAINT", "IMAINT", "CMAINT", "FDRAIN", "IDRAIN", "RMAINT", "HMAINT"}) {
		t.Errorf("all flags: %v", a.Flags())
	}

	up := readTestdata(t, "servers_state_up.txt")
	lines := strings.Split(up, "\n")
	cases := []struct {
		name    string
		in      string
		rows    int
		partial string
		fatal   string
	}{
		{name: "up", in: up, rows: 7},
		{name: "empty", in: "", fatal: "empty output"},
		{name: "error reply", in: "Can't find backend.\n\n", fatal: "no \"# be_id"},
		{name: "version only", in: "1\n\n", fatal: "no \"# be_id"},
		{name: "no version", in: strings.Join(lines[1:], "\n"), rows: 7},
		{name: "other version", in: "2\n" + strings.Join(lines[1:], "\n"), rows: 7, partial: "format version 2"},
		{name: "cut mid row", in: up[:len(up)-30], rows: 6, partial: "last line cut off"},
		{name: "short row", in: lines[0] + "\n" + lines[1] + "\n3 be_cc 1 site_a\n" + lines[3] + "\n\n", rows: 1, partial: "4 fields for 25 columns"},
		{name: "missing admin column", in: "1\n" + strings.Replace(lines[1], "srv_admin_state", "srv_admin_stat", 1) + "\n" + lines[2] + "\n\n", fatal: "lacks column srv_admin_state"},
		{name: "bad numbers", in: lines[0] + "\n" + lines[1] + "\n" + strings.Replace(lines[2], " 127.0.0.1 2 0 ", " 127.0.0.1 9 x ", 1) + "\n\n", rows: 1, partial: "srv_admin_state"},
		{name: "header only", in: lines[0] + "\n" + lines[1] + "\n\n", rows: 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows, err := ParseServersState(c.in)
			switch {
			case c.partial != "":
				if !IsPartial(err) || !strings.Contains(err.Error(), c.partial) {
					t.Errorf("want partial %q, got %v", c.partial, err)
				}
			case c.fatal != "":
				if err == nil || IsPartial(err) || !strings.Contains(err.Error(), c.fatal) {
					t.Errorf("want error %q, got %v", c.fatal, err)
				}
			default:
				if err != nil {
					t.Errorf("unexpected error %v", err)
				}
			}
			if len(rows) != c.rows {
				t.Errorf("%d rows, want %d", len(rows), c.rows)
			}
		})
	}
	rows, _ = ParseServersState(lines[0] + "\n" + lines[1] + "\n" + strings.Replace(lines[2], " 127.0.0.1 2 0 ", " 127.0.0.1 9 x ", 1) + "\n\n")
	if len(rows) == 1 && (rows[0].Op != OpUnknown || rows[0].AdminKnown) {
		t.Errorf("bad numbers decoded as %v %v", rows[0].Op, rows[0].Admin)
	}
}

func TestArgAndSocat(t *testing.T) {
	if got := Arg(`a;b\c d	e`); got != `a\;b\\c\ d\	e` {
		t.Errorf("Arg = %q", got)
	}
	if got := SetStateCommand("be_cc", "site_a", Drain); got != "set server be_cc/site_a state drain" {
		t.Errorf("SetStateCommand = %q", got)
	}
	cases := map[string]string{
		"unix:///run/haproxy/admin.sock": `echo 'set server be_cc/site_b state ready' | socat stdio unix-connect:/run/haproxy/admin.sock`,
		"tcp://127.0.0.41:9999":          `echo 'set server be_cc/site_b state ready' | socat stdio tcp-connect:127.0.0.41:9999`,
		"tcp://[::1]:9999":               `echo 'set server be_cc/site_b state ready' | socat stdio 'tcp6-connect:[::1]:9999'`,
	}
	for api, want := range cases {
		if got := SocatCommand(api, "set server be_cc/site_b state ready"); got != want {
			t.Errorf("SocatCommand(%s) = %s", api, got)
		}
	}
	if got := SocatCommand("unix:///tmp/a b.sock", `set server be/x\;y state ready`, "show stat"); got != `echo 'set server be/x\;y state ready; show stat' | socat stdio 'unix-connect:/tmp/a b.sock'` {
		t.Errorf("quoted: %s", got)
	}
	for _, bad := range []string{"", "http://x", "unix://relative", "tcp://nohost", "tcp://h:"} {
		if _, err := New(bad, 0); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	for _, name := range []string{"stat_up.csv", "stat_drain_maint_via.csv", "stat_going_down.csv", "stat_down_backup.csv", "stat_going_up.csv", "stat_no_maint.csv"} {
		f.Add(readTestdata(f, name))
	}
	f.Add("# pxname,svname,status,scur\nbe,\"a,b\",\"UP 1/2\",3\nbe,x,\"MAINT (via be/srv),1\n")
	f.Add("Permission denied\n\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		rows, err := ParseStat(in)
		if err != nil && !IsPartial(err) && rows != nil {
			t.Fatalf("rows with a fatal error: %v", err)
		}
		seen := map[string]bool{}
		for _, r := range rows {
			if r.Proxy == "" || r.Name == "" {
				t.Fatalf("row without names: %+v", r)
			}
			_ = r.Status.String()
			_, _ = r.Field("status")
			seen[r.Proxy] = true
		}
		for be := range seen {
			tr := Traffic(rows, be)
			for _, s := range tr.Serving {
				if s == "" {
					t.Fatal("empty serving name")
				}
			}
		}
		_ = ParseStatus(in)
	})
}

func FuzzParseServersState(f *testing.F) {
	f.Add(readTestdata(f, "servers_state_up.txt"))
	f.Add(readTestdata(f, "servers_state_drain_maint.txt"))
	f.Add("1\n# be_name srv_name srv_op_state srv_admin_state\nbe a 2 99999999999999999999\n")
	f.Add("Can't find backend.\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		rows, err := ParseServersState(in)
		if err != nil && !IsPartial(err) && rows != nil {
			t.Fatalf("rows with a fatal error: %v", err)
		}
		for _, r := range rows {
			_ = r.Op.String()
			_ = r.Admin.String()
			_, _ = r.Field("srv_name")
		}
	})
}
