// Package resume implements `sitectl resume <run>`: finish a half-done run.
package resume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/cmd/internal/runexec"
	"github.com/sitectl/sitectl/runbooks"
	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/journal"
)

// Options of sitectl resume.
type Options struct {
	F      *cmdutil.Factory
	Run    string
	Yes    bool
	NoWait bool
	// InventoryChanged lets a resume go on with an inventory whose path or
	// content differs from the run's (same deployment only); journaled.
	InventoryChanged bool
	// Sleep waits for commands left in flight (nil: a real timer that
	// ctx cancels); tests record the wait instead.
	Sleep func(ctx context.Context, d time.Duration) error
}

// NewCmdResume builds the command; runF replaces resumeRun in tests.
func NewCmdResume(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "resume <run>",
		Short: "Finish a half-done run: re-observe reality and skip what already holds",
		Long: `Resume re-runs the same runbook against the same site as the given run.
Every step observes the current state again, so what already holds is
skipped. It refuses when the runbook has changed since the run started, and
takes over the lock left by that run if its process is gone.

A run that was killed may have left a command running on a host (sshd does
not end a command whose client died). Every remote command runs under the
host's own timeout, so resume lists those steps and waits until their
deadline has passed before it observes again; --no-wait skips that wait.

` + cmdutil.ExitCodesHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Run = args[0]
			if !opts.Yes && !f.IO.CanPrompt() {
				return cmdutil.FlagErrorf("--yes required when not running interactively (stdin is not a terminal)")
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return resumeRun(c.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation (required when stdin is not a terminal)")
	cmd.Flags().BoolVar(&opts.InventoryChanged, "inventory-changed", false, "resume although the inventory file or its content changed since the run (same deployment only; journaled)")
	cmd.Flags().BoolVar(&opts.NoWait, "no-wait", false, "do not wait for commands the interrupted run left in flight to reach their deadline")
	return cmd
}

func resumeRun(ctx context.Context, opts *Options) error {
	f := opts.F
	old, err := runexec.Load(f, opts.Run)
	if err != nil {
		return err
	}
	if old.Info == nil {
		return cmdutil.Exit(cmdutil.ExitUsage, fmt.Errorf("run %s has no start record: nothing to resume", opts.Run))
	}
	info := old.Info
	if info.Mode != "run" && info.Mode != "resume" {
		return cmdutil.Exit(cmdutil.ExitUsage, fmt.Errorf("run %s was a %s, not a run that changes anything", info.ID, info.Mode))
	}
	changedInv, err := sameDeployment(opts, info)
	if err != nil {
		return noteRefusal(f, old, err)
	}
	plan, err := runexec.Plan(f, info)
	var changed *runexec.ChangedError
	var exit *cmdutil.ExitError
	switch {
	case errors.As(err, &exit):
		return err // an invalid inventory or runbooks: their own exit code
	case errors.As(err, &changed):
		return noteRefusal(f, old, cmdutil.Exit(cmdutil.ExitRefused, fmt.Errorf("cannot resume %s: %w; start a new run instead: sitectl %s --site %s", info.ID, err, info.Runbook, info.Site)))
	case err != nil:
		return noteRefusal(f, old, cmdutil.Exit(cmdutil.ExitRefused, fmt.Errorf("cannot resume %s: %w", info.ID, err)))
	}
	if !old.Interrupted() && old.Outcome == "ok" {
		fmt.Fprintf(f.IO.ErrOut, "run %s already ended ok; resuming re-verifies it\n", info.ID)
	}
	if old.Interrupted() {
		if err := waitInFlight(ctx, opts, runbooks.InFlightTasks(old, plan)); err != nil {
			return err
		}
	}
	ro := &runexec.Options{F: f, Runbook: info.Runbook, Site: info.Site, Yes: opts.Yes, ResumeOf: info.ID, Args: f.Args,
		Reason: info.Reason, Force: info.Reason != "" && hasForce(info.Args), InventoryChanged: changedInv,
		HooksDone: runbooks.HooksDone(old.Events)}
	return runexec.Run(ctx, ro)
}

// sameDeployment binds a resume to the run's deployment and inventory. The
// run's inventory is used when none is given, and its --runbooks when no
// --runbooks is given. Another deployment is always refused; another
// inventory file, or the same file with another content, only goes on with
// --inventory-changed, and the difference is returned to be journaled.
func sameDeployment(opts *Options, info *event.RunInfo) (string, error) {
	f := opts.F
	if f.Globals.Inventory == "" && f.Getenv("SITECTL_INVENTORY") == "" {
		f.Globals.Inventory = info.Inventory
	}
	if len(f.Globals.Runbooks) == 0 && len(info.Runbooks) > 0 {
		f.Globals.Runbooks = info.Runbooks
		fmt.Fprintf(f.IO.ErrOut, "runbooks of run %s: %s\n", info.ID, strings.Join(info.Runbooks, ", "))
	}
	inv, err := f.Inventory()
	if err != nil {
		return "", err
	}
	if info.Deployment != "" && inv.Deployment != info.Deployment {
		return "", cmdutil.Exit(cmdutil.ExitRefused, fmt.Errorf("cannot resume %s: it ran on deployment %q (inventory %s), but inventory %s is deployment %q; resume it with its own inventory: sitectl resume %s --inventory %s",
			info.ID, info.Deployment, info.Inventory, inv.File, inv.Deployment, info.ID, info.Inventory))
	}
	was, _ := filepath.Abs(info.Inventory)
	now, _ := filepath.Abs(inv.File)
	var diff []string
	if info.Inventory != "" && was != now {
		diff = append(diff, fmt.Sprintf("the run used %s, this resume %s", was, now))
	}
	if info.InventoryDigest != "" && info.InventoryDigest != inv.Digest {
		diff = append(diff, fmt.Sprintf("its content changed (sha256 %s, now %s)", short(info.InventoryDigest), short(inv.Digest)))
	}
	if len(diff) == 0 {
		return "", nil
	}
	why := "inventory changed since run " + info.ID + ": " + strings.Join(diff, "; ")
	if !opts.InventoryChanged {
		return "", cmdutil.Exit(cmdutil.ExitRefused, fmt.Errorf("cannot resume %s: %s. Check the change; then resume with --inventory-changed (journaled), or start a new run: sitectl %s --site %s", info.ID, why, info.Runbook, info.Site))
	}
	fmt.Fprintf(f.IO.ErrOut, "warning: %s (--inventory-changed: going on; journaled)\n", why)
	return why, nil
}

func short(digest string) string {
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}

// waitInFlight says which steps the interrupted run left in flight and
// waits until the hosts have ended their commands (their deadline under
// coreutils timeout), so that resume does not run a second start or stop
// beside one still running.
func waitInFlight(ctx context.Context, opts *Options, tasks []runbooks.InFlight) error {
	f := opts.F
	if len(tasks) == 0 {
		return nil
	}
	now := f.Now()
	var until time.Time
	fmt.Fprintf(f.IO.ErrOut, "run %s was interrupted with %d step(s) in flight:\n", opts.Run, len(tasks))
	for _, t := range tasks {
		switch {
		case t.Local:
			fmt.Fprintf(f.IO.ErrOut, "  %s: ran inside sitectl and ended with it\n", t.Task)
		case !t.EndsBy.After(now):
			fmt.Fprintf(f.IO.ErrOut, "  %s on %s: any command it left has been ended by the host (deadline %s)\n", t.Task, t.Host, t.EndsBy.Local().Format(time.TimeOnly))
		default:
			fmt.Fprintf(f.IO.ErrOut, "  %s on %s: its command may still be running there until %s (its deadline): %s\n", t.Task, t.Host, t.EndsBy.Local().Format(time.TimeOnly), t.Command)
			if t.EndsBy.After(until) {
				until = t.EndsBy
			}
		}
	}
	if until.IsZero() {
		return nil
	}
	wait := until.Sub(now).Round(time.Second)
	if opts.NoWait {
		fmt.Fprintf(f.IO.ErrOut, "--no-wait: not waiting %s for them; a step may act beside a command still running\n", wait)
		return nil
	}
	fmt.Fprintf(f.IO.ErrOut, "waiting %s for the hosts to end them before observing again (Ctrl-C stops; --no-wait skips this)\n", wait)
	sleep := opts.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	return sleep(ctx, until.Sub(now))
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

func hasForce(args []string) bool {
	for _, a := range args {
		if a == "--force" {
			return true
		}
	}
	return false
}

// noteRefusal adds a refused resume to the journal of the run it would have
// resumed (who, from where, why), so that the run's history shows every
// attempt, and returns err. Only refusals (exit 3) are noted; a journal
// that cannot be appended to is said on stderr and does not change err.
func noteRefusal(f *cmdutil.Factory, old journal.Run, err error) error {
	var exit *cmdutil.ExitError
	if !errors.As(err, &exit) || exit.Code != cmdutil.ExitRefused {
		return err
	}
	dir, derr := f.StateDir()
	if derr != nil {
		return err
	}
	runID := old.Info.ID
	who, host := cmdutil.Who(f)
	jw, jerr := journal.OpenAppend(dir, runID, journal.WithRedactor(f.Redactor()))
	if jerr == nil {
		jw.Emit(event.Event{Time: f.Now(), RunID: runID, Seq: old.LastSeq + 1, Kind: event.Message, Outcome: event.Refused, Action: "resume",
			Message: fmt.Sprintf("resume refused (%s@%s pid %d): %s", who, host, os.Getpid(), err.Error())})
		jerr = errors.Join(jw.Err(), jw.Close())
	}
	if jerr != nil {
		fmt.Fprintf(f.IO.ErrOut, "warning: the refusal could not be added to the journal of %s: %v\n", runID, jerr)
	}
	return err
}
