// Package archtest enforces sitectl's layering: adapters never import
// runbooks or cmd; runbooks, checks, adapters and inventory never import
// cobra or bubbletea; only cmd (and tests) may.
package archtest

import (
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/sitectl/sitectl"

// rule: packages under from must not depend (directly or not) on any
// import path with one of the prefixes in deny.
var rules = []struct {
	from string
	deny []string
}{
	{"adapters/", []string{mod + "/runbooks", mod + "/cmd", mod + "/checks"}},
	{"inventory", []string{mod + "/runbooks", mod + "/cmd", mod + "/checks", mod + "/adapters"}},
	{"checks", []string{mod + "/runbooks", mod + "/cmd"}},
	{"runbooks", []string{mod + "/cmd"}},
	{"adapters/", []string{"github.com/spf13/cobra", "github.com/charmbracelet/", mod + "/third_party"}},
	{"checks", []string{"github.com/spf13/cobra", "github.com/charmbracelet/", mod + "/third_party"}},
	{"runbooks", []string{"github.com/spf13/cobra", "github.com/charmbracelet/", mod + "/third_party"}},
	{"inventory", []string{"github.com/spf13/cobra", "github.com/charmbracelet/", mod + "/third_party"}},
	// upstream Bubble Tea queries the terminal in its init (5 s blank on a
	// terminal that does not answer): only third_party/bubbletea, anywhere
	{"", []string{"github.com/charmbracelet/bubbletea"}},
}

func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps=false", "-f", `{{.ImportPath}}|{{join .Deps " "}}`, mod+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, deps, _ := strings.Cut(line, "|")
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, mod), "/")
		for _, r := range rules {
			if !strings.HasPrefix(rel, r.from) {
				continue
			}
			checked++
			for _, d := range strings.Fields(deps) {
				for _, deny := range r.deny {
					if strings.HasPrefix(d, deny) {
						t.Errorf("%s depends on %s (layering: %s must not depend on %s)", rel, d, r.from, deny)
					}
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d packages checked: the rules no longer match the tree", checked)
	}
}

// Commands never import commands: what two commands share lives in
// cmd/cmdutil or cmd/internal (only cmd/root assembles them, and
// cmd/sitectl calls it).
func TestCommandsDoNotImportCommands(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}|{{join .Deps " "}}`, mod+"/cmd/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, deps, _ := strings.Cut(line, "|")
		rel := strings.TrimPrefix(pkg, mod+"/")
		if rel == "cmd/root" || rel == "cmd/sitectl" || rel == "cmd/cmdutil" || strings.HasPrefix(rel, "cmd/internal/") {
			continue
		}
		checked++
		for _, d := range strings.Fields(deps) {
			dr, ok := strings.CutPrefix(d, mod+"/")
			if !ok || !strings.HasPrefix(dr, "cmd/") || dr == "cmd/cmdutil" || strings.HasPrefix(dr, "cmd/internal/") {
				continue
			}
			t.Errorf("%s depends on %s: commands share through cmd/cmdutil or cmd/internal, never by importing each other", rel, dr)
		}
	}
	if checked < 10 {
		t.Fatalf("only %d command packages checked: the rule no longer matches the tree", checked)
	}
}

// importsOf lists each package of pattern with its direct imports.
func importsOf(t *testing.T, pattern string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}|{{join .Imports " "}}`, pattern).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imps, _ := strings.Cut(line, "|")
		m[strings.TrimPrefix(pkg, mod+"/")] = strings.Fields(imps)
	}
	return m
}

// One home per layer: the protocol clients of MongoDB, ActiveMQ and
// HAProxy are imported only by their layer's package (checks/mongodb,
// checks/activemq, checks/haproxy) and by adapters and tests; runbooks and
// the rest of checks reach them through the layer contract (checks/layer).
// A layer's package imports neither checks nor runbooks (only the
// contract), so both may import every layer.
func TestOneHomePerLayer(t *testing.T) {
	homes := map[string]string{
		mod + "/adapters/mongo":    "checks/mongodb",
		mod + "/adapters/activemq": "checks/activemq",
		mod + "/adapters/haproxy":  "checks/haproxy",
	}
	checked := 0
	for pkg, imps := range importsOf(t, mod+"/...") {
		if strings.HasPrefix(pkg, "adapters/") || strings.HasPrefix(pkg, "internal/") {
			continue
		}
		checked++
		for _, imp := range imps {
			if home, ok := homes[imp]; ok && pkg != home {
				t.Errorf("%s imports %s: only %s may (the layer's one home); use the layer through checks/layer", pkg, imp, home)
			}
		}
	}
	for _, home := range append(slices.Collect(maps.Values(homes)), "checks/services") {
		for pkg, imps := range importsOf(t, mod+"/"+home) {
			for _, imp := range imps {
				if imp == mod+"/checks" || strings.HasPrefix(imp, mod+"/runbooks") || strings.HasPrefix(imp, mod+"/cmd") {
					t.Errorf("layer %s imports %s: a layer needs only the contract (checks/layer), adapters and inventory", pkg, imp)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d packages checked: the rule no longer matches the tree", checked)
	}
}

// The runbooks package (model, compiler, engine, the run's phases) reaches
// hosts, layers and receivers only through ports: services.HostRunner, the
// layer contract, runbooks.Poster. It imports no adapters package; the
// commands wire the adapters in. (runbooks/runlock keeps its lock copies on
// the lock hosts through remote.Runner.)
func TestRunbooksImportNoAdapter(t *testing.T) {
	imps := importsOf(t, mod+"/runbooks")["runbooks"]
	if len(imps) == 0 {
		t.Fatal("no imports listed for runbooks: the rule no longer matches the tree")
	}
	for _, imp := range imps {
		if strings.HasPrefix(imp, mod+"/adapters/") {
			t.Errorf("runbooks imports %s: reach it through a port (services.HostRunner, checks/layer, runbooks.Poster) wired by the commands", imp)
		}
	}
}
