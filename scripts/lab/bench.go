package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sitectl/sitectl/internal/lab"
	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks"
	"github.com/sitectl/sitectl/runbooks/journal"
)

// benchDrill runs drill 1 (site A cut off, `sitectl takeover --site B`) n
// times against the lab and prints, for each run, the takeover's wall
// time next to its critical path (read from the run's journal: the waits
// the deployment imposed along the runbook's order), then times `sitectl
// status` and `sitectl check` against the healthy lab.
func benchDrill(ctx context.Context, e *lab.Env, args []string) error {
	fs := flag.NewFlagSet("bench-drill", flag.ContinueOnError)
	n := fs.Int("n", 5, "takeovers to time")
	statusN := fs.Int("status", 10, "status and check runs to time")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	tmp, bin, err := buildSitectl(ctx, "sitectl-bench-drill-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	state := filepath.Join(tmp, "state")
	sitectl := func(args ...string) (string, time.Duration, error) {
		c := exec.CommandContext(ctx, bin, args...)
		c.Env = append(os.Environ(), "SITECTL_INVENTORY="+e.InventoryFile(), "SITECTL_STATE_DIR="+state, "NO_COLOR=1")
		start := time.Now()
		out, err := c.CombinedOutput()
		return string(out), time.Since(start), err
	}
	quiet := e.Out
	e.Out = nil
	defer func() { e.Out = quiet }()
	if err := benchTakeovers(ctx, e, *n, state, sitectl); err != nil {
		return err
	}
	if err := e.Up(ctx, lab.UpOptions{Reset: true}); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	return benchStatus(*statusN, sitectl)
}

// benchTakeovers runs drill 1 n times and prints each run's wall time next
// to its critical path, then the medians and what the columns mean.
func benchTakeovers(ctx context.Context, e *lab.Env, n int, state string, sitectl func(...string) (string, time.Duration, error)) error {
	fmt.Printf("drill 1 x %d: reset the lab, cut site A, time `sitectl takeover --site B --yes`\n\n", n)
	fmt.Printf("%-3s %9s %9s %9s %9s %9s %9s %9s %9s %9s  %s\n", "#", "wall", "journal", "critical", "overhead", "% of crit", "process", "after", "rest", "preflight", "critical path (step: intrinsic)")
	// the takeover's plan, for the order of its steps (the lab is up: its
	// inventory is there, and a reset writes the same one)
	inv, err := inventory.Load(e.InventoryFile())
	if err != nil {
		return err
	}
	cat, err := runbooks.Builtin()
	if err != nil {
		return err
	}
	plan, err := cat.Compile("takeover", inv, "B")
	if err != nil {
		return err
	}
	var walls, crits, overs []time.Duration
	runID := regexp.MustCompile(`\(run (\S+?),`)
	for i := 1; i <= n; i++ {
		if err := e.Up(ctx, lab.UpOptions{Reset: true}); err != nil {
			return fmt.Errorf("reset before run %d: %w", i, err)
		}
		if err := e.Fail(ctx, lab.SiteA); err != nil {
			return err
		}
		out, wall, err := sitectl("takeover", "--site", "B", "--yes")
		if err != nil {
			return fmt.Errorf("run %d: sitectl takeover --site B: %v\n%s", i, err, out)
		}
		m := runID.FindStringSubmatch(out)
		if m == nil {
			return fmt.Errorf("run %d: no run id in the output:\n%s", i, out)
		}
		run, err := journal.Read(journal.Path(state, m[1]))
		if err != nil {
			return err
		}
		r := runbooks.CriticalPath(run, plan)
		var path []string
		for _, s := range r.Path {
			path = append(path, fmt.Sprintf("%s %s", s, sec(r.StepCost[s])))
		}
		over := wall - r.Critical
		rest := r.Span - r.After - r.Critical
		fmt.Printf("%-3d %9s %9s %9s %9s %8.1f%% %9s %9s %9s %9s  %s\n", i, sec(wall), sec(r.Span), sec(r.Critical), sec(over),
			100*over.Seconds()/r.Critical.Seconds(), sec(wall-r.Span), sec(r.After), sec(rest), sec(r.Before), strings.Join(path, " → "))
		walls, crits, overs = append(walls, wall), append(crits, r.Critical), append(overs, over)
	}
	fmt.Printf("\nmedian: wall %s, critical path %s, overhead %s (%.1f%% of the critical path)\n",
		sec(median(walls)), sec(median(crits)), sec(median(overs)), 100*median(overs).Seconds()/median(crits).Seconds())
	fmt.Println("wall = the sitectl process, start to exit; journal = run.start to run.end; overhead = wall - critical, made of:")
	fmt.Println("process = wall - journal (start-up, inventory, exit); after = last step to run end (the invariant and the")
	fmt.Println("verdict of every layer, observed again); rest = the journal's span outside the critical path and after it:")
	fmt.Println("observing before acting, polling granularity, waiting between steps, and the preflight where no wait")
	fmt.Println("overlapped it. preflight = run start to the first step (both sites observed, lock), shown for reference: the")
	fmt.Println("election that the cut started runs meanwhile, and the first step's cost counts from the run's start to it.")
	return nil
}

// benchStatus times `sitectl status` and `sitectl check` n times each
// against the healthy lab.
func benchStatus(n int, sitectl func(...string) (string, time.Duration, error)) error {
	for _, cmd := range [][]string{{"status"}, {"check", "--site", "A"}} {
		var ds []time.Duration
		for i := 0; i < n; i++ {
			out, d, err := sitectl(cmd...)
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				return fmt.Errorf("sitectl %s: %v\n%s", strings.Join(cmd, " "), err, out)
			}
			ds = append(ds, d)
		}
		slices.Sort(ds)
		fmt.Printf("\nsitectl %s against the lab (2 sites, 10 services, 3 MongoDB members, 2 brokers, HAProxy) x %d: median %s, min %s, max %s\n",
			strings.Join(cmd, " "), n, sec(median(ds)), sec(ds[0]), sec(ds[len(ds)-1]))
	}
	return nil
}

func sec(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// buildSitectl builds ./cmd/sitectl into a new temporary directory and
// returns both; the caller removes the directory.
func buildSitectl(ctx context.Context, prefix string) (dir, bin string, err error) {
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "sitectl")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/sitectl").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("go build ./cmd/sitectl: %v\n%s", err, out)
	}
	return dir, bin, nil
}
