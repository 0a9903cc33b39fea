package runbooks

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitectl/sitectl/inventory"
)

func TestParseErrorsArePositionedAndComplete(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string // "line:col: substring"
	}{
		{"unknown key", "name: x\neffect: none\nsteps:\n  - name: a\n    action: start\n    selct: {group: core}\n",
			[]string{`6:5: unknown key "selct" in step (expected one of: name, description, action, select`}},
		{"several errors at once", "name: x\neffect: sideways\nsteps:\n  - name: a\n    action: jump\n  - name: a\n    action: stop\n    select: {kinds: [fax]}\n",
			[]string{`2:9: effect "sideways"`, `4:5: step "a": action "jump": expected start, stop, run, include, haproxy, mongodb or activemq`, `6:5: duplicate step name "a" (first defined at t.yaml:4:5)`, `8:13: step "a": unknown service kind "fax"`}},
		{"after unknown step", "name: x\neffect: none\nsteps:\n  - name: a\n    action: stop\n    select: {group: core}\n    after: [b]\n",
			[]string{`4:5: step "a": after names unknown step "b" (steps: a)`}},
		{"cycle", "name: x\neffect: none\nsteps:\n  - {name: a, action: stop, select: {group: core}, after: [b]}\n  - {name: b, action: stop, select: {group: core}, after: [a]}\n",
			[]string{`1:1: runbook "x": steps form a cycle: a -> b -> a`}},
		{"bad duration", "name: x\neffect: none\nsteps:\n  - {name: a, action: stop, select: {group: core}, timeout: soon}\n",
			[]string{`4:61: timeout: invalid duration "soon"`}},
		{"list expected", "name: x\neffect: none\nsteps: {name: a}\n",
			[]string{`3:8: steps: expected a list, got a mapping`}},
		{"run needs command and where", "name: x\neffect: none\nsteps:\n  - {name: a, action: run}\n",
			[]string{`step "a": action run needs command`, `step "a": action run needs hosts or select`}},
		{"syntax error", "name: x\n  steps: [\n", []string{`2:`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.src))
			if err == nil {
				t.Fatal("no error")
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("error %T is not Problems", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), "t.yaml:"+w) && !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
			for _, p := range ps {
				if p.Pos.Line == 0 {
					t.Errorf("problem without a line: %v", p)
				}
			}
		})
	}
}

func TestBuiltinsParseAndLintAgainstTheExample(t *testing.T) {
	c, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"renounce", "renounce-reporting", "switchover", "takeover", "takeover-reporting", "up"}
	if got := strings.Join(c.Names(), ","); got != strings.Join(want, ",") {
		t.Fatalf("builtins %s", got)
	}
	inv, err := inventory.Load("../inventory/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	errs, warns := c.Lint(inv)
	if len(errs)+len(warns) > 0 {
		t.Fatalf("lint: %v %v", errs, warns)
	}
	for _, name := range want {
		for _, site := range []string{"A", "B"} {
			p, err := c.Compile(name, inv, site)
			if err != nil {
				t.Fatalf("%s %s: %v", name, site, err)
			}
			if len(p.Tasks()) == 0 {
				t.Errorf("%s --site %s compiles to no task", name, site)
			}
		}
	}
	p, _ := c.Compile("switchover", inv, "B")
	for _, tk := range p.Tasks() {
		if tk.Action == ActionStop && tk.Site != "A" || tk.Action == ActionStart && tk.Site != "B" {
			t.Errorf("switchover to B: %s acts on site %s", tk.ID, tk.Site)
		}
	}
}

func TestUserRunbooksOverrideAndLint(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("takeover.yaml", "name: takeover\neffect: activate\nsteps:\n  - {name: only-chat, action: start, select: {names: [chat]}}\n")
	write("bad.yaml", "name: restart\neffect: none\nsteps:\n  - {name: a, action: stop, select: {names: [chatt]}}\n  - {name: b, action: include, runbook: nope}\n")
	c, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), `step "b" includes unknown runbook "nope"`) || !strings.Contains(err.Error(), "bad.yaml:5:5") {
		t.Fatalf("want include error with position, got %v", err)
	}
	rb, _ := c.Get("takeover")
	if rb.Builtin || len(rb.Steps) != 1 {
		t.Errorf("user takeover did not override the built-in one")
	}
	inv, err := inventory.Load("../inventory/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	errs, _ := c.Lint(inv)
	if !strings.Contains(errs.Error(), `bad.yaml:4:37: runbook "restart" step "a" names unknown service "chatt"`) {
		t.Errorf("lint: %v", errs)
	}
}

func FuzzParse(f *testing.F) {
	ents, _ := builtinFS.ReadDir("builtin")
	for _, e := range ents {
		b, _ := builtinFS.ReadFile("builtin/" + e.Name())
		f.Add(b)
	}
	f.Add([]byte("name: x\neffect: none\nsteps:\n  - {name: a, action: run, command: x, hosts: [h], after: [a]}\n"))
	f.Add([]byte("steps: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rb, err := Parse("f.yaml", data)
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("error is %T, want Problems", err)
			}
			for _, p := range ps {
				if p.Pos.Line <= 0 || p.Pos.File != "f.yaml" {
					t.Fatalf("problem without a position: %#v", p)
				}
			}
			return
		}
		if rb.Name == "" || len(rb.Steps) == 0 {
			t.Fatalf("accepted a runbook without name or steps: %q", data)
		}
	})
}

// A user runbook named like a built-in may change its steps, never its
// effect or scope: those decide the safety checks ("takeover" with effect
// none would turn off the refusal while the other site serves).
func TestUserRunbookMayNotChangeABuiltinsEffectOrScope(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "takeover.yaml"), []byte("name: takeover\neffect: none\nscope: all\nsteps:\n  - {name: only-chat, action: start, select: {names: [chat]}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), `takeover.yaml:2:9: runbook "takeover" overrides the built-in one: its effect must stay "activate" (got "none")`) ||
		!strings.Contains(err.Error(), `takeover.yaml:3:8: runbook "takeover" overrides the built-in one: its scope must stay "core" (got "all")`) {
		t.Fatalf("want the effect and scope refused with positions, got %v", err)
	}
	if rb, _ := c.Get("takeover"); !rb.Builtin || rb.Effect != EffectActivate {
		t.Errorf("the refused override replaced the built-in takeover: %+v", rb)
	}
	if o := c.Overrides(); len(o) != 0 {
		t.Errorf("overrides %q after a refused one", o)
	}

	ok := t.TempDir()
	f := filepath.Join(ok, "takeover.yaml")
	if err := os.WriteFile(f, []byte("name: takeover\neffect: activate\nsteps:\n  - {name: only-chat, action: start, select: {names: [chat]}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = Load(ok)
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Overrides(); len(o) != 1 || o[0] != "takeover: built-in replaced by "+f {
		t.Errorf("overrides %q", o)
	}
}
