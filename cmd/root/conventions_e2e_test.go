package root

// The conventions every command follows (issue 11): usage errors exit 2,
// every informational command speaks JSON with -o json (snake_case keys,
// a schema_version in each document), and the run report's HTML and the
// refused run's numbers.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks/journal"
)

var snakeKey = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// dataKeys hold maps keyed by names from the inventory or runbooks (step,
// server, service names), not by sitectl's own keys.
var dataKeys = map[string]bool{"step_cost_ns": true, "servers": true}

// checkKeys fails on any key that is not snake_case, anywhere in v.
func checkKeys(t *testing.T, where string, v any, path string) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			if !snakeKey.MatchString(k) {
				t.Errorf("%s: key %q at %s is not snake_case", where, k, path)
			}
			if !dataKeys[k] {
				checkKeys(t, where, child, path+"."+k)
			}
		}
	case []any:
		for _, child := range x {
			checkKeys(t, where, child, path+"[]")
		}
	}
}

// jsonDocs decodes every JSON document of out (one, or one per line) and
// checks the envelope and the keys of each.
func jsonDocs(t *testing.T, where, out string) []map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: not JSON documents: %v\n%s", where, err, out)
		}
		if doc["schema_version"] != float64(cmdutil.SchemaVersion) {
			t.Errorf("%s: schema_version %v, want %d", where, doc["schema_version"], cmdutil.SchemaVersion)
		}
		if mt, _ := doc["message_type"].(string); mt == "" {
			t.Errorf("%s: no message_type", where)
		}
		checkKeys(t, where, doc, "")
		docs = append(docs, doc)
	}
	if len(docs) == 0 {
		t.Errorf("%s: no JSON document on stdout", where)
	}
	return docs
}

// TestJSONEverywhere runs every command that prints information with -o
// json, against real sshd hosts, and checks that stdout is JSON documents
// with schema_version, message_type and snake_case keys only.
func TestJSONEverywhere(t *testing.T) {
	d := newDeployment(t)
	r := d.sitectl(t.Context(), nil, "takeover", "--site", "B", "--yes", "-o", "json")
	if r.code != 0 {
		t.Fatalf("takeover: exit %d\n%s", r.code, r.errOut)
	}
	jsonDocs(t, "takeover -o json", r.out)
	run := d.lastRun().ID()
	for _, tc := range []struct {
		args []string
		code cmdutil.ExitCode
		typ  string
	}{
		{[]string{"exit-codes"}, 0, "exit_codes"},
		{[]string{"version"}, 0, "version"},
		{[]string{"inventory", "check"}, 0, "inventory_check"},
		{[]string{"inventory", "show"}, 0, "inventory"},
		{[]string{"runbook", "list"}, 0, "runbook_list"},
		{[]string{"runbook", "show", "takeover"}, 0, "runbook"},
		{[]string{"runbook", "lint"}, 0, "runbook_lint"},
		{[]string{"plan", "takeover", "--site", "B"}, 0, "plan"},
		{[]string{"plan", "renounce", "--site", "B"}, cmdutil.ExitRefused, "plan"}, // B is the only active site
		{[]string{"plan", "--all", "--offline"}, 0, "plan_all"},
		{[]string{"journal", "list"}, 0, "journal_list"},
		{[]string{"journal", "show", run}, 0, "event"},
		{[]string{"report", run}, 0, "report"},
		{[]string{"status"}, 0, "status"},
		{[]string{"check", "--site", "A"}, cmdutil.ExitRefused, "check"},
		{[]string{"unlock", "--reason", "test"}, 0, "unlock"},
		{[]string{"plan", "nope", "--site", "B"}, cmdutil.ExitUsage, "exit_error"},
	} {
		name := strings.Join(tc.args, " ")
		r := d.sitectl(t.Context(), nil, append(tc.args, "-o", "json")...)
		if r.code != tc.code {
			t.Errorf("%s -o json: exit %d, want %d\n%s", name, r.code, tc.code, r.errOut)
			continue
		}
		docs := jsonDocs(t, name, r.out)
		if len(docs) > 0 && docs[0]["message_type"] != tc.typ {
			t.Errorf("%s: message_type %v, want %s", name, docs[0]["message_type"], tc.typ)
		}
		if name == "inventory show" && len(docs) == 1 {
			validateInventory(t, docs[0]["inventory"])
		}
	}
	// an inventory problem in JSON: one document, one object per problem
	r = d.sitectl(t.Context(), nil, "inventory", "check", "../../inventory/testdata/invalid/service_rules.yaml", "-o", "json")
	if docs := jsonDocs(t, "inventory check (invalid)", r.out); r.code != cmdutil.ExitUsage || len(docs) != 1 || len(docs[0]["problems"].([]any)) < 3 {
		t.Errorf("inventory check of an invalid inventory: exit %d, %d documents\n%s", r.code, len(docs), r.out)
	}
	// a runbook problem in JSON: one object per problem, with its position
	bad := d.dir + "/bad.yaml"
	writeFile(t, bad, "name: bad\ndescription: x\nsteps:\n  - name: s\n    action: frobnicate\n")
	r = d.sitectl(t.Context(), nil, "runbook", "lint", bad, "-o", "json")
	if r.code != cmdutil.ExitUsage {
		t.Fatalf("lint of a bad runbook: exit %d, want 2\n%s%s", r.code, r.out, r.errOut)
	}
	doc := jsonDocs(t, "runbook lint bad.yaml", r.out)[0]
	probs, _ := doc["problems"].([]any)
	if len(probs) == 0 {
		t.Fatalf("no problems listed:\n%s", r.out)
	}
	p0 := probs[0].(map[string]any)
	if p0["file"] != bad || p0["line"].(float64) < 1 || p0["column"].(float64) < 1 || p0["message"] == "" {
		t.Errorf("problem without file, line, column and message: %v", p0)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// validateInventory validates `inventory show`'s inventory against the
// schema `inventory schema` prints.
func validateInventory(t *testing.T, v any) {
	t.Helper()
	b, _ := json.Marshal(inventory.Schema())
	schemaDoc, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	c := jsonschema.NewCompiler()
	if err := c.AddResource(inventory.SchemaID, schemaDoc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(inventory.SchemaID)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(v)
	inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err := s.Validate(inst); err != nil {
		t.Errorf("inventory show's inventory does not validate against the schema: %v", err)
	}
}

// TestUsageErrorsExit2: cobra's own rejections are usage errors (exit 2),
// as docs/exit-codes.md says, with the usage printed.
func TestUsageErrorsExit2(t *testing.T) {
	d := &deployment{t: t, dir: t.TempDir()}
	d.state, d.inv = d.dir, "../../inventory/example.yaml"
	for _, args := range [][]string{
		{"frobnicate"}, {"inventory", "frobnicate"}, {"journal", "nope"},
		{"status", "--no-such-flag"}, {"plan"}, {"plan", "a", "b", "--site", "A"},
		{"report"}, {"exit-codes", "extra"}, {"status", "--interval", "soon"}, {"check", "-s"},
	} {
		r := d.sitectl(t.Context(), nil, args...)
		if r.code != cmdutil.ExitUsage {
			t.Errorf("sitectl %s: exit %d, want 2\n%s", strings.Join(args, " "), r.code, r.errOut)
		}
		if !strings.Contains(r.errOut, "Usage:") {
			t.Errorf("sitectl %s: no usage printed:\n%s", strings.Join(args, " "), r.errOut)
		}
	}
	// a group without a subcommand shows its help and succeeds
	if r := d.sitectl(t.Context(), nil, "inventory"); r.code != 0 {
		t.Errorf("sitectl inventory: exit %d", r.code)
	}
}

// TestMissingInventorySaysNotFound: a missing file is "not found", not
// "invalid".
func TestMissingInventorySaysNotFound(t *testing.T) {
	d := &deployment{t: t, dir: t.TempDir()}
	d.state, d.inv = d.dir, d.dir+"/nope.yaml"
	for _, args := range [][]string{{"status"}, {"inventory", "check"}, {"plan", "takeover", "--site", "A", "--offline"}} {
		r := d.sitectl(t.Context(), nil, args...)
		if r.code != cmdutil.ExitUsage || !strings.Contains(r.errOut, "nope.yaml not found") || strings.Contains(r.errOut, "invalid") {
			t.Errorf("sitectl %s: exit %d\n%s", strings.Join(args, " "), r.code, r.errOut)
		}
	}
}

// TestReportOfARefusedRun: a run refused before its first step reports
// its whole time as preflight, not "0.000 s before the first step" and a
// percentage of a critical path of zero.
func TestReportOfARefusedRun(t *testing.T) {
	d := newDeployment(t)
	for _, n := range []string{"a-ccm", "a-comms", "a-mre", "a-chat"} {
		d.svc.Start(n)
	}
	if r := d.sitectl(t.Context(), nil, "takeover", "--site", "B", "--yes"); r.code != cmdutil.ExitRefused {
		t.Fatalf("exit %d, want 3\n%s", r.code, r.errOut)
	}
	run := d.lastRun()
	r := d.sitectl(t.Context(), nil, "report", run.ID())
	if r.code != 0 {
		t.Fatalf("report: exit %d\n%s", r.code, r.errOut)
	}
	if strings.Contains(r.out, "% of the critical path") || strings.Contains(r.out, "before the first step") {
		t.Errorf("the refused run's report splits time around steps that never ran:\n%s", r.out)
	}
	span := journal.Timings(run).Total
	if !strings.Contains(r.out, "no step started: all of it was preflight") || span <= 0 {
		t.Errorf("the report does not say the whole run (%s) was preflight:\n%s", span, r.out)
	}
	r = d.sitectl(t.Context(), nil, "report", run.ID(), "--format", "html")
	if r.code != 0 || strings.Contains(r.out, "% of the critical path") || !strings.Contains(r.out, "no step started") {
		t.Errorf("html report of the refused run: exit %d\n%s", r.code, r.out)
	}
}

// TestHTMLReport: the HTML report of a takeover over SSH has one bar per
// task, the markers, the critical path outlined, and fetches nothing.
func TestHTMLReport(t *testing.T) {
	d := newDeployment(t)
	if r := d.sitectl(t.Context(), nil, "takeover", "--site", "B", "--yes"); r.code != 0 {
		t.Fatalf("takeover: exit %d\n%s", r.code, r.errOut)
	}
	run := d.lastRun()
	r := d.sitectl(t.Context(), nil, "report", run.ID(), "--format", "html")
	if r.code != 0 {
		t.Fatalf("report: exit %d\n%s", r.code, r.errOut)
	}
	checkHTMLReport(t, r.out, run)
	if out := os.Getenv("SITECTL_TEST_REPORT_OUT"); out != "" { // to look at it
		writeFile(t, out, r.out)
	}
}

// checkHTMLReport checks an HTML report against its run's journal.
func checkHTMLReport(t *testing.T, html string, run journal.Run) {
	t.Helper()
	tasks := journal.Timings(run).Tasks
	bars := regexp.MustCompile(`<rect class="bar [^"]*" data-task="([^"]+)"`).FindAllStringSubmatch(html, -1)
	if len(bars) != len(tasks) || len(tasks) == 0 {
		t.Errorf("%d bars for %d tasks", len(bars), len(tasks))
	}
	seen := map[string]bool{}
	for _, b := range bars {
		seen[b[1]] = true
	}
	for _, tt := range tasks {
		if !seen[tt.Task] {
			t.Errorf("no bar for task %s", tt.Task)
		}
	}
	for _, want := range []string{`class="marker m-run-start"`, `class="marker m-first-service-up"`, `class="marker m-verdict"`, `class="marker m-rto"`, `critical"`, "Measured RTO", "Where the time went", "<svg"} {
		if !strings.Contains(html, want) {
			t.Errorf("the HTML report lacks %s", want)
		}
	}
	for _, fetch := range []string{"<script", "<link", "src=", "url(", "@import"} {
		if strings.Contains(html, fetch) {
			t.Errorf("the HTML report is not self-contained: it has %q", fetch)
		}
	}
}

// TestCheckPrintsAnSSHErrorOnce: a host that does not answer is named in
// the table, its error printed once below it, and the readiness reason
// refers to it instead of repeating it.
func TestCheckPrintsAnSSHErrorOnce(t *testing.T) {
	d := newDeployment(t)
	s := d.servers["b-app"]
	d.override["b-app"] = fmt.Sprintf("{name: b-app, address: 127.0.0.1, ssh: {port: %d, user: %s, key: %s, known_hosts: %s, connect_timeout: 1s}}", silentListener(t), s.User, s.KeyFile, s.KnownHostsFile)
	d.write()
	r := d.sitectl(t.Context(), nil, "check", "--site", "B")
	if r.code != cmdutil.ExitRefused {
		t.Fatalf("check: exit %d, want 3\n%s%s", r.code, r.out, r.errOut)
	}
	m := regexp.MustCompile(`host b-app \(site B\) did not answer:\n  (.+)\n`).FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("the error of b-app is not printed:\n%s", r.out)
	}
	if n := strings.Count(r.out, m[1]); n != 1 {
		t.Errorf("the error of b-app is printed %d times:\n%s", n, r.out)
	}
	if !strings.Contains(r.out, "host b-app of site B does not answer (error above)") {
		t.Errorf("the readiness reason does not refer to the error:\n%s", r.out)
	}
}

// TestNoColourQueryAtStart: sitectl, on a terminal that answers nothing
// (script(1) gives it one; its input is empty), never writes the OSC 11
// background-colour query that Bubble Tea v1's init used to send, after
// which termenv waited up to 5 s: every command, and the board's first
// frame, stayed blank that long (third_party/bubbletea/tea_init.go).
func TestNoColourQueryAtStart(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) is not installed (util-linux)")
	}
	bin := buildBinary(t)
	for _, args := range []string{"version", "exit-codes"} {
		cmd := exec.Command(scriptBin, "-qfec", bin+" "+args, "/dev/null")
		cmd.Env = append(os.Environ(), "TERM=xterm-256color")
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("script -c 'sitectl %s': %v\n%q", args, err, out)
		}
		if !strings.Contains(string(out), "sitectl") && !strings.Contains(string(out), "EXIT STATUS") {
			t.Fatalf("sitectl %s printed nothing on the terminal: %q", args, out)
		}
		if strings.Contains(string(out), "\x1b]11;?") || strings.Contains(string(out), "\x1b[6n") {
			t.Errorf("sitectl %s queried the terminal at start: %q", args, out)
		}
	}
}

// TestDynamicCompletions: sites, runbooks, hosts and services come from the
// inventory and the catalog; run ids from the journal, newest first (the
// shell is told to keep that order), described by runbook, site and
// outcome.
func TestDynamicCompletions(t *testing.T) {
	d := newDeployment(t)
	for _, args := range [][]string{{"takeover"}, {"renounce", "--force", "--reason", "test: leave no site active"}} {
		rb := args[0]
		if r := d.sitectl(t.Context(), nil, append(args, "--site", "B", "--yes")...); r.code != 0 {
			t.Fatalf("%s: exit %d\n%s", rb, r.code, r.errOut)
		}
	}
	runs, err := journal.List(d.state)
	if err != nil || len(runs) != 2 {
		t.Fatalf("journal: %v %v", runs, err)
	}
	complete := func(args ...string) (lines []string, directive string) {
		t.Helper()
		r := d.sitectl(t.Context(), nil, append([]string{"__complete"}, args...)...)
		if r.code != 0 {
			t.Fatalf("__complete %v: exit %d\n%s", args, r.code, r.errOut)
		}
		for _, l := range strings.Split(strings.TrimSpace(r.out), "\n") {
			if strings.HasPrefix(l, ":") {
				directive = l
			} else {
				lines = append(lines, l)
			}
		}
		return lines, directive
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"takeover", "--site", ""}, []string{"A\tprimary, 2 hosts", "B\tsecondary, 2 hosts"}},
		{[]string{"status", "--host", ""}, []string{"a-app\tsite A", "a-rpt\tsite A", "b-app\tsite B", "b-rpt\tsite B"}},
		{[]string{"status", "--service", ""}, []string{"ccm\tccm, core group", "comms\tcomms, core group", "mre\tmre, core group", "chat\tchat, core group", "reporting\treporting, reporting group"}},
		{[]string{"report", ""}, []string{runs[0].ID + "\trenounce --site B: ok, ", runs[1].ID + "\ttakeover --site B: ok, "}},
	} {
		got, _ := complete(tc.args...)
		if len(got) != len(tc.want) {
			t.Errorf("__complete %v: %q, want %q", tc.args, got, tc.want)
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], tc.want[i]) {
				t.Errorf("__complete %v [%d]: %q, want %q…", tc.args, i, got[i], tc.want[i])
			}
		}
	}
	if _, dir := complete("resume", ""); dir != ":36" { // NoFileComp | KeepOrder
		t.Errorf("run ids: directive %s, want :36 (keep the newest-first order)", dir)
	}
	rbs, _ := complete("plan", "")
	if len(rbs) != 6 || !strings.HasPrefix(rbs[0], "renounce\t") {
		t.Errorf("runbooks: %q", rbs)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		if r := d.sitectl(t.Context(), nil, "completion", shell); r.code != 0 || !strings.Contains(r.out, "__complete") {
			t.Errorf("completion %s: exit %d", shell, r.code)
		}
	}
}

// TestManPages: `sitectl man --dir` writes one page per command.
func TestManPages(t *testing.T) {
	d := &deployment{t: t, dir: t.TempDir()}
	d.state, d.inv = d.dir, "../../inventory/example.yaml"
	dir := filepath.Join(d.dir, "man")
	if r := d.sitectl(t.Context(), nil, "man", "--dir", dir); r.code != 0 {
		t.Fatalf("man: exit %d\n%s", r.code, r.errOut)
	}
	for _, page := range []string{"sitectl.1", "sitectl-takeover.1", "sitectl-inventory-schema.1", "sitectl-report.1", "sitectl-plan.1"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil || !bytes.Contains(b, []byte(".TH \"SITECTL\" \"1\"")) {
			t.Errorf("%s: %v\n%.200s", page, err, b)
		}
	}
	if r := d.sitectl(t.Context(), nil, "man"); r.code != cmdutil.ExitUsage {
		t.Errorf("man without --dir: exit %d, want 2", r.code)
	}
}
