// Package journal records every sitectl run as a JSON-lines file, one
// event.Event per line, in <state-dir>/runs/<run-id>.jsonl. The Writer makes
// each record durable before the next one is written, so a run killed at any
// moment (SIGKILL, power loss after fsync) leaves every earlier record
// readable; Read tolerates the torn last line such a kill can leave. List, Find
// and Markdown turn journals into the run history and the post-run report.
package journal

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Ext is the file extension of a journal.
const Ext = ".jsonl"

// DefaultDir returns the state directory: $SITECTL_STATE_DIR, else
// $XDG_STATE_HOME/sitectl, else ~/.local/state/sitectl. It does not create it.
func DefaultDir() (string, error) {
	if d := os.Getenv("SITECTL_STATE_DIR"); d != "" {
		return d, nil
	}
	// The XDG spec says a relative XDG_STATE_HOME is invalid and ignored.
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "sitectl"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("journal: no state directory: set SITECTL_STATE_DIR: %w", err)
	}
	return filepath.Join(home, ".local", "state", "sitectl"), nil
}

// RunsDir is where the journals of dir live.
func RunsDir(dir string) string { return filepath.Join(dir, "runs") }

// Path is the journal file of runID in state directory dir.
func Path(dir, runID string) string { return filepath.Join(RunsDir(dir), runID+Ext) }

// NewRunID returns a run id that sorts by start time and is unique in
// practice: UTC time to the second plus 24 random bits, e.g.
// 20261122T063000Z-3f9a1c. Create refuses an id that already exists; a
// caller that gets fs.ErrExist from Create draws a new id.
func NewRunID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// ValidateRunID rejects ids that cannot be a single file name.
func ValidateRunID(id string) error {
	switch {
	case id == "":
		return errors.New("journal: empty run id")
	case id == "." || id == "..",
		strings.ContainsAny(id, "/\\\x00\n"):
		return fmt.Errorf("journal: invalid run id %q", id)
	}
	return nil
}
