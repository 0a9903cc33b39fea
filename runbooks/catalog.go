package runbooks

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/sitectl/sitectl/inventory"
)

//go:embed builtin/*.yaml
var builtinFS embed.FS

// Catalog is the set of runbooks available to a run: the built-in ones,
// overridden or extended by user files.
type Catalog struct {
	byName map[string]*Runbook
}

// Builtin returns the catalog of embedded runbooks.
func Builtin() (*Catalog, error) {
	c := &Catalog{byName: map[string]*Runbook{}}
	ents, err := builtinFS.ReadDir("builtin")
	if err != nil {
		return nil, err
	}
	var probs Problems
	for _, e := range ents {
		data, err := builtinFS.ReadFile("builtin/" + e.Name())
		if err != nil {
			return nil, err
		}
		rb, err := Parse("builtin:"+e.Name(), data)
		if err != nil {
			probs = append(probs, asProblems(err)...)
			continue
		}
		rb.Builtin = true
		c.byName[rb.Name] = rb
	}
	if err := probs.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// Load returns the built-in catalog plus the runbook files found at paths
// (files or directories of *.yaml / *.yml). A user runbook with the name of a
// built-in one overrides it. Every error of every file is reported.
func Load(paths ...string) (*Catalog, error) {
	c, err := Builtin()
	if err != nil {
		return nil, err
	}
	var probs Problems
	userSeen := map[string]string{}
	for _, p := range paths {
		files, err := runbookFiles(p)
		if err != nil {
			probs = append(probs, &Problem{Pos: inventory.Pos{File: p}, Msg: err.Error()})
			continue
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				probs = append(probs, &Problem{Pos: inventory.Pos{File: f}, Msg: err.Error()})
				continue
			}
			rb, err := Parse(f, data)
			if err != nil {
				probs = append(probs, asProblems(err)...)
				continue
			}
			if prev, dup := userSeen[rb.Name]; dup {
				probs = append(probs, &Problem{Pos: rb.Pos, Msg: fmt.Sprintf("runbook %q is also defined in %s", rb.Name, prev)})
				continue
			}
			userSeen[rb.Name] = f
			if b := c.byName[rb.Name]; b != nil && b.Builtin {
				// the effect and scope are what the safety checks read
				// (takeover is refused while the other site serves): an
				// override may change the steps, never those
				bad := false
				if rb.Effect != b.Effect {
					probs = append(probs, &Problem{Pos: rb.at("effect"), Msg: fmt.Sprintf("runbook %q overrides the built-in one: its effect must stay %q (got %q); the effect decides the safety checks, so give the runbook another name", rb.Name, b.Effect, rb.Effect)})
					bad = true
				}
				if rb.Scope != b.Scope {
					probs = append(probs, &Problem{Pos: rb.at("scope"), Msg: fmt.Sprintf("runbook %q overrides the built-in one: its scope must stay %q (got %q); give the runbook another name", rb.Name, b.Scope, rb.Scope)})
					bad = true
				}
				if bad {
					continue
				}
				rb.Overrides = b.Source
			}
			c.byName[rb.Name] = rb
		}
	}
	probs = append(probs, c.checkIncludes()...)
	if err := probs.Err(); err != nil {
		return c, err
	}
	return c, nil
}

func runbookFiles(p string) ([]string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("runbook path: %w", err)
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	var out []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, _ := filepath.Glob(filepath.Join(p, pat))
		out = append(out, m...)
	}
	sort.Strings(out)
	return out, nil
}

func asProblems(err error) Problems {
	if ps, ok := err.(Problems); ok {
		return ps
	}
	return Problems{{Msg: err.Error()}}
}

// Overrides describes every user runbook that replaces a built-in one
// ("takeover: built-in replaced by /etc/sitectl/takeover.yaml"), sorted:
// printed on every run and journaled in its run.start record.
func (c *Catalog) Overrides() []string {
	var out []string
	for _, rb := range c.All() {
		if rb.Overrides != "" {
			out = append(out, fmt.Sprintf("%s: built-in replaced by %s", rb.Name, rb.Source))
		}
	}
	return out
}

// Get returns a runbook by name.
func (c *Catalog) Get(name string) (*Runbook, error) {
	rb, ok := c.byName[name]
	if !ok {
		return nil, fmt.Errorf("no runbook named %q (available: %s); see: sitectl runbook list", name, strings.Join(c.Names(), ", "))
	}
	return rb, nil
}

// Names lists the runbooks, sorted.
func (c *Catalog) Names() []string { return keys(c.byName) }

// All returns the runbooks sorted by name.
func (c *Catalog) All() []*Runbook {
	var out []*Runbook
	for _, n := range c.Names() {
		out = append(out, c.byName[n])
	}
	return out
}

// checkIncludes reports includes of unknown runbooks and include cycles.
func (c *Catalog) checkIncludes() Problems {
	var ps Problems
	for _, rb := range c.All() {
		for _, st := range rb.Steps {
			if st != nil && st.Action == ActionInclude && c.byName[st.Runbook] == nil {
				ps = append(ps, &Problem{Pos: st.Pos, Msg: fmt.Sprintf("step %q includes unknown runbook %q (available: %s)", st.Name, st.Runbook, strings.Join(c.Names(), ", "))})
			}
		}
		if path := c.includeCycle(rb.Name, nil); path != nil && path[0] == rb.Name {
			ps = append(ps, &Problem{Pos: rb.Pos, Msg: "runbooks include each other in a cycle: " + strings.Join(path, " -> ")})
		}
	}
	return ps
}

func (c *Catalog) includeCycle(name string, stack []string) []string {
	if slices.Contains(stack, name) {
		return append(stack, name)
	}
	rb := c.byName[name]
	if rb == nil {
		return nil
	}
	stack = append(stack, name)
	for _, st := range rb.Steps {
		if st != nil && st.Action == ActionInclude {
			if p := c.includeCycle(st.Runbook, stack); p != nil {
				return p
			}
		}
	}
	return nil
}

// Lint checks every runbook against an inventory: services named by a
// selector must exist, hosts named by a run step must exist, and selectors
// that match nothing on either site are reported as warnings.
func (c *Catalog) Lint(inv *inventory.Inventory) (errs Problems, warnings Problems) {
	services := map[string]bool{}
	for _, s := range inv.Sites {
		for _, svc := range s.Services {
			services[svc.Name] = true
		}
	}
	for _, rb := range c.All() {
		if rb.Hooks != nil {
			for _, e := range inventory.ValidateHooks(rb.Hooks, inv) {
				errs = append(errs, &Problem{Pos: rb.at("hooks"), Msg: fmt.Sprintf("runbook %q: %s", rb.Name, e.Msg)})
			}
		}
		for _, st := range rb.Steps {
			if st == nil {
				continue
			}
			if st.Select != nil {
				for _, n := range st.Select.Names {
					if !services[n] {
						errs = append(errs, &Problem{Pos: st.Select.Pos, Msg: fmt.Sprintf("runbook %q step %q names unknown service %q (inventory %s has: %s)", rb.Name, st.Name, n, inv.File, strings.Join(keys(services), ", "))})
					}
				}
			}
			for _, h := range st.Hosts {
				if inv.Host(h) == nil {
					errs = append(errs, &Problem{Pos: st.Pos, Msg: fmt.Sprintf("runbook %q step %q names unknown host %q", rb.Name, st.Name, h)})
				}
			}
			if st.Select != nil && (st.Action == ActionStart || st.Action == ActionStop) {
				any := false
				for _, s := range inv.Sites {
					for _, svc := range s.Services {
						if st.Select.Matches(svc) {
							any = true
						}
					}
				}
				if !any && len(st.Select.Names) > 0 {
					warnings = append(warnings, &Problem{Pos: st.Select.Pos, Msg: fmt.Sprintf("runbook %q step %q selects no service on either site", rb.Name, st.Name)})
				}
			}
		}
	}
	return errs.Sorted(), warnings.Sorted()
}
