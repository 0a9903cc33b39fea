package root

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/journal"
)

// resume is bound to the run's deployment and inventory: another
// deployment is refused always, a changed inventory unless
// --inventory-changed (journaled); the run's --runbooks are loaded again
// without the flag.
func TestResumeIsBoundToItsDeploymentAndInventory(t *testing.T) {
	d := newDeployment(t)
	rbFile := filepath.Join(t.TempDir(), "mine.yaml")
	if err := os.WriteFile(rbFile, []byte("name: mine\nscope: core\neffect: none\nsteps:\n  - {name: start-mre, action: start, select: {kinds: [mre]}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.svc.Fail("b-mre", "mre: cannot bind")
	r := d.sitectl(t.Context(), nil, "--runbooks", rbFile, "run", "mine", "--site", "B", "--yes")
	if r.code != cmdutil.ExitFailed {
		t.Fatalf("run mine: exit %d, want 1\n%s", r.code, r.errOut)
	}
	id := d.lastRun().ID()
	d.svc.Fix("b-mre")

	// another deployment: refused, naming both and the run's inventory
	orig, err := os.ReadFile(d.inv)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.yaml")
	if err := os.WriteFile(other, []byte(strings.Replace(string(orig), "deployment: e2e", "deployment: other-prod", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r = d.sitectl(t.Context(), nil, "--inventory", other, "--runbooks", rbFile, "resume", id, "--yes", "--inventory-changed")
	if r.code != cmdutil.ExitRefused || !strings.Contains(r.errOut, `it ran on deployment "e2e"`) || !strings.Contains(r.errOut, `is deployment "other-prod"`) || !strings.Contains(r.errOut, "--inventory "+d.inv) {
		t.Fatalf("resume with another deployment's inventory: exit %d, want 3 naming both deployments\n%s", r.code, r.errOut)
	}
	d.stopped("b-mre")

	// the same deployment, its inventory changed: refused without the flag
	if err := os.WriteFile(d.inv, append(orig, []byte("# edited\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	r = d.sitectl(t.Context(), nil, "resume", id, "--yes")
	if r.code != cmdutil.ExitRefused || !strings.Contains(r.errOut, "inventory changed since run "+id) || !strings.Contains(r.errOut, "--inventory-changed") {
		t.Fatalf("resume with a changed inventory: exit %d, want 3 naming --inventory-changed\n%s", r.code, r.errOut)
	}
	d.stopped("b-mre")
	// both refusals are in the journal of the run they would have resumed
	path, err := journal.Find(d.state, id)
	if err != nil {
		t.Fatal(err)
	}
	old, err := journal.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	var refusals []string
	for i, e := range old.Events {
		if i > 0 && e.Seq <= old.Events[i-1].Seq {
			t.Errorf("event %d of run %s has seq %d after %d: the journal's sequence is broken", i, id, e.Seq, old.Events[i-1].Seq)
		}
		if e.Kind == event.Message && e.Outcome == event.Refused && e.Action == "resume" {
			refusals = append(refusals, e.Message)
		}
	}
	if len(refusals) != 2 || !strings.Contains(refusals[0], `is deployment "other-prod"`) || !strings.Contains(refusals[1], "inventory changed since run") {
		t.Errorf("the refused resumes in run %s's journal: %q, want the other deployment, then the changed inventory", id, refusals)
	}

	// with the flag it goes on (journaled), and finds "mine" without --runbooks
	r = d.sitectl(t.Context(), nil, "resume", id, "--yes", "--inventory-changed")
	if r.code != 0 {
		t.Fatalf("resume --inventory-changed: exit %d\n%s", r.code, r.errOut)
	}
	d.running("b-mre")
	info := d.lastRun().Info
	if info == nil || !strings.Contains(info.InventoryChanged, "content changed") || len(info.Runbooks) != 1 || info.Runbooks[0] != rbFile || info.Inventory != d.inv {
		t.Errorf("the resume's run.start does not journal the change, its runbooks and the absolute inventory: %+v", info)
	}
}

// A user "takeover" with effect none is refused by lint and by every run
// (it would turn off the refusal while the other site serves); a valid
// override of a built-in is printed on every run and journaled.
func TestBuiltinOverrideRefusedOrAnnounced(t *testing.T) {
	d := newDeployment(t)
	dir := t.TempDir()
	weak := filepath.Join(dir, "weak", "takeover.yaml")
	ok := filepath.Join(dir, "ok", "takeover.yaml")
	for f, body := range map[string]string{
		weak: "name: takeover\nscope: core\neffect: none\nsteps:\n  - {name: start-chat, action: start, select: {kinds: [chat]}}\n",
		ok:   "name: takeover\nscope: core\neffect: activate\nsteps:\n  - {name: start-chat, action: start, select: {kinds: [chat]}}\n",
	} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := d.sitectl(t.Context(), nil, "--runbooks", weak, "runbook", "lint")
	if r.code != cmdutil.ExitUsage || !strings.Contains(r.errOut, `runbook "takeover" overrides the built-in one: its effect must stay "activate" (got "none")`) {
		t.Errorf("lint of a takeover with effect none: exit %d\n%s", r.code, r.errOut)
	}
	r = d.sitectl(t.Context(), nil, "--runbooks", weak, "takeover", "--site", "B", "--yes")
	if r.code != cmdutil.ExitUsage {
		t.Errorf("takeover with the weakened override: exit %d, want 2\n%s", r.code, r.errOut)
	}
	d.stopped("b-chat")
	r = d.sitectl(t.Context(), nil, "--runbooks", ok, "takeover", "--site", "B", "--yes")
	if r.code != 0 || !strings.Contains(r.errOut, "! runbook override: takeover: built-in replaced by "+ok) {
		t.Fatalf("takeover with a valid override: exit %d, want 0 and the override printed\n%s", r.code, r.errOut)
	}
	if info := d.lastRun().Info; info == nil || len(info.Overrides) != 1 || !strings.Contains(info.Overrides[0], ok) {
		t.Errorf("the override is not journaled: %+v", info)
	}
}

// insecure_ignore_host_key in defaults applies to every host: every run
// says so at its start and journals it.
func TestInsecureHostKeyWarnsEveryRunAndIsJournaled(t *testing.T) {
	d := newDeployment(t)
	b, err := os.ReadFile(d.inv)
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(b), "ssh: {connect_timeout: 2s}", "ssh: {connect_timeout: 10s, insecure_ignore_host_key: true}", 1) // 10s: a loaded machine must not make a host unknown
	if y == string(b) {
		t.Fatal("inventory has no defaults.ssh to change")
	}
	if err := os.WriteFile(d.inv, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "! warning: host keys are NOT verified for a-app, a-rpt, b-app, b-rpt (insecure_ignore_host_key in defaults.ssh, so for every host)"
	for i, site := range []string{"B", "B"} { // every run, the no-op second one too
		r := d.sitectl(t.Context(), nil, "takeover", "--site", site, "--yes")
		if r.code != 0 || !strings.Contains(r.errOut, want) {
			t.Fatalf("run %d: exit %d, want 0 and %q\n%s", i+1, r.code, want, r.errOut)
		}
		if info := d.lastRun().Info; info == nil || len(info.Warnings) != 1 || !strings.Contains(info.Warnings[0], "host keys are NOT verified") {
			t.Errorf("run %d: the warning is not journaled: %+v", i+1, info)
		}
	}
}
