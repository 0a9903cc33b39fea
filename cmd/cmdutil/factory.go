package cmdutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	osuser "os/user"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks"
	"github.com/sitectl/sitectl/runbooks/journal"
)

// ErrNotExist is what a missing file's error wraps.
var ErrNotExist = fs.ErrNotExist

// Globals are the persistent flags every command shares.
type Globals struct {
	Inventory string        // --inventory, $SITECTL_INVENTORY
	Output    string        // --output text|json
	Timeout   time.Duration // --timeout: the whole command's deadline (0: none)
	Verbose   bool          // --verbose
	Runbooks  []string      // --runbooks: extra runbook files or directories
}

// JSON reports whether machine output was asked for.
func (g *Globals) JSON() bool { return g.Output == "json" }

// Factory builds dependencies lazily, so a command that never touches the
// network never dials anything and tests replace single fields.
type Factory struct {
	IO      *IOStreams
	Globals *Globals
	Version string
	Commit  string // git commit the binary was built from ("" when unknown)
	Date    string // build date ("" when unknown)
	Now     func() time.Time
	Getenv  func(string) string
	// Args is the command line after the program name, as Main received
	// it (set by root.Execute): what journals and locks record.
	Args []string

	// Dialer opens connections to hosts (SSH or local).
	Dialer remote.Dialer
	// NewTicker makes the ticker of the live progress (nil: time.NewTicker).
	NewTicker func(time.Duration) (<-chan time.Time, func())
	// StateDir is where journals and local locks live.
	StateDir func() (string, error)

	limitOnce sync.Once
	limit     *remote.HandshakeLimit

	invOnce sync.Once
	inv     *inventory.Inventory
	invErr  error

	redactMu sync.Mutex
	redactor journal.Redactor
}

// Redactor is the one redactor of every output: the renderers (text and
// JSON), the journal, the report, the board, $SITECTL_LOG and the final
// error line. Until the inventory is loaded it masks password-like
// assignments only; from then on also the secrets the inventory points at.
func (f *Factory) Redactor() journal.Redactor {
	f.redactMu.Lock()
	defer f.redactMu.Unlock()
	if f.redactor == nil {
		f.redactor = journal.NewRedactor()
	}
	return f.redactor
}

// Redact masks the secrets in s (see Redactor).
func (f *Factory) Redact(s string) string { return f.Redactor()(s) }

func (f *Factory) learnSecrets(inv *inventory.Inventory) {
	r := Redactor(inv, f.Getenv)
	f.redactMu.Lock()
	f.redactor = r
	f.redactMu.Unlock()
}

// Inventory loads the inventory named by --inventory / $SITECTL_INVENTORY once.
func (f *Factory) Inventory() (*inventory.Inventory, error) {
	f.invOnce.Do(func() {
		path := f.Globals.Inventory
		if path == "" {
			path = f.Getenv("SITECTL_INVENTORY")
		}
		if path == "" {
			f.invErr = &FlagError{Err: fmt.Errorf("no inventory: pass --inventory FILE or set SITECTL_INVENTORY (example: --inventory inventory/example.yaml)")}
			return
		}
		inv, err := inventory.Load(path)
		if errors.Is(err, ErrNotExist) {
			f.invErr = Exit(ExitUsage, fmt.Errorf("inventory %s not found (pass --inventory FILE or set SITECTL_INVENTORY; an example: inventory/example.yaml)", path))
			return
		}
		if err != nil {
			f.invErr = Exit(ExitUsage, fmt.Errorf("inventory %s is invalid:\n%w\ncheck it with: sitectl inventory check --inventory %s", path, err, path))
			return
		}
		f.inv = inv
		f.learnSecrets(inv)
		for _, w := range inv.CredentialFileWarnings() {
			fmt.Fprintf(f.IO.ErrOut, "warning: %s\n", w)
		}
	})
	return f.inv, f.invErr
}

// Catalog loads the built-in runbooks plus the inventory's and --runbooks'.
func (f *Factory) Catalog(inv *inventory.Inventory) (*runbooks.Catalog, error) {
	var paths []string
	if inv != nil {
		dir := filepath.Dir(inv.File)
		for _, p := range inv.Runbooks {
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			paths = append(paths, p)
		}
	}
	paths = append(paths, f.Globals.Runbooks...)
	if env := f.Getenv("SITECTL_RUNBOOKS"); env != "" {
		paths = append(paths, strings.Split(env, string(os.PathListSeparator))...)
	}
	c, err := runbooks.Load(paths...)
	if err != nil {
		return nil, Exit(ExitUsage, fmt.Errorf("runbooks are invalid:\n%w\ncheck them with: sitectl runbook lint", err))
	}
	return c, nil
}

// InventoryAndRunbooks loads the inventory and the runbooks and checks that
// they fit each other (named services and hosts exist).
func (f *Factory) InventoryAndRunbooks() (*inventory.Inventory, *runbooks.Catalog, error) {
	inv, err := f.Inventory()
	if err != nil {
		return nil, nil, err
	}
	cat, err := f.Catalog(inv)
	if err != nil {
		return nil, nil, err
	}
	if errs, _ := cat.Lint(inv); len(errs) > 0 {
		return nil, nil, Exit(ExitUsage, fmt.Errorf("runbooks do not fit inventory %s:\n%w", inv.File, errs))
	}
	return inv, cat, nil
}

// Who names the operator and this machine, as the journal and the locks
// record them ("unknown" when the user cannot be looked up).
func Who(*Factory) (user, hostname string) {
	hostname, _ = os.Hostname()
	user = "unknown"
	if u, err := osuser.Current(); err == nil {
		user = u.Username
	}
	return user, hostname
}
