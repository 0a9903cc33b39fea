// Package runlock keeps two operators from running takeover or renounce
// against the same deployment at once. A run holds a local lock file in the
// state directory and, optionally, a lock file on a host of the deployment
// (reached through remote.Runner), so that operators on different machines
// exclude each other too. Both are created atomically and carry a Holder
// saying who holds them; both are released only by the run that took them,
// broken only on an operator's explicit request (sitectl unlock), and taken
// over only from a dead holder or from the run being resumed.
package runlock

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"
)

// Holder says who holds a lock. It is the content of the lock file.
type Holder struct {
	RunID    string    `json:"run_id"`
	User     string    `json:"user"`
	Hostname string    `json:"hostname"` // the machine sitectl runs on
	PID      int       `json:"pid"`
	Command  string    `json:"command"`
	Since    time.Time `json:"since"`
}

// NewHolder describes this process holding a lock for runID.
func NewHolder(runID, command string) Holder {
	h := Holder{RunID: runID, PID: os.Getpid(), Command: command, Since: time.Now().UTC()}
	h.Hostname, _ = os.Hostname()
	if u, err := user.Current(); err == nil {
		h.User = u.Username
	} else {
		h.User = os.Getenv("USER")
	}
	return h
}

func (h Holder) validate() error {
	if h.RunID == "" {
		return errors.New("runlock: holder has no run id")
	}
	if y := h.Since.Year(); y < 0 || y > 9999 {
		return fmt.Errorf("runlock: holder time %v out of range", h.Since)
	}
	return nil
}

func (h Holder) encode() []byte {
	if h.Since.IsZero() {
		h.Since = time.Now().UTC()
	}
	return mustJSON(h) // validate checked Since, the only field that can fail
}

func decodeHolder(b []byte) (Holder, error) {
	var h Holder
	t := strings.TrimSpace(string(b))
	if t == "" {
		return h, errors.New("lock file is empty (being written, or its writer crashed)")
	}
	if err := json.Unmarshal([]byte(t), &h); err != nil {
		return h, fmt.Errorf("lock file is not a lock record: %w", err)
	}
	if h.RunID == "" {
		return h, errors.New("lock record has no run id")
	}
	return h, nil
}

// ErrHeld matches every *HeldError (errors.Is).
var ErrHeld = errors.New("runlock: lock held")

// ErrNotLocked is returned (wrapped) by Read and Break when there is no lock.
var ErrNotLocked = errors.New("runlock: not locked")

// ErrNotOwner is returned (wrapped) by Release when the lock now belongs to
// another run or was removed by someone else; the lock is left alone.
var ErrNotOwner = errors.New("runlock: lock no longer ours")

// HeldError says a lock is held by someone else.
type HeldError struct {
	Holder Holder // zero when the lock file could not be parsed (see Detail)
	Where  string // lock file path, or host:path for a remote lock
	// Stale: the holder runs on this machine and its process is gone. The
	// lock is left over from a killed run: resume that run or break the lock.
	Stale  bool
	Detail string // why the holder is unknown, when Holder is zero
}

func (e *HeldError) Error() string {
	var b strings.Builder
	h := e.Holder
	if h.RunID == "" {
		fmt.Fprintf(&b, "deployment is locked (lock %s), but the holder is unknown", e.Where)
		if e.Detail != "" {
			fmt.Fprintf(&b, " (%s)", e.Detail)
		}
		b.WriteString(".")
	} else {
		fmt.Fprintf(&b, "deployment is locked by run %s: user %s on machine %s, pid %d",
			h.RunID, orUnknown(h.User), orUnknown(h.Hostname), h.PID)
		if !h.Since.IsZero() {
			fmt.Fprintf(&b, ", since %s (%s ago)", h.Since.UTC().Format(time.RFC3339), time.Since(h.Since).Round(time.Second))
		}
		if h.Command != "" {
			fmt.Fprintf(&b, ", running %q", h.Command)
		}
		fmt.Fprintf(&b, "; lock %s.", e.Where)
	}
	if e.Stale {
		fmt.Fprintf(&b, " That process is no longer running on this machine: the lock is stale. Resume run %s, or", h.RunID)
	} else {
		b.WriteString(" If you are sure that run is dead (ask its operator first),")
	}
	b.WriteString(` break the lock with: sitectl unlock --reason "..."`)
	return b.String()
}

// Is makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// IsStale reports whether h is a holder on this machine whose process is
// gone. A holder on another machine is never stale: its liveness cannot be
// checked from here.
func IsStale(h Holder) bool {
	host, err := os.Hostname()
	return err == nil && h.Hostname == host && h.PID > 0 && !processAlive(h.PID)
}

// aliveHere reports whether h is a process verifiably running on this machine.
func aliveHere(h Holder) bool {
	host, err := os.Hostname()
	return err == nil && h.Hostname == host && h.PID > 0 && processAlive(h.PID)
}

// mayTakeOver reports whether a run resuming resumeOf may replace holder.
// A holder verifiably alive on this machine is never taken over, even when
// it is the run being resumed.
func mayTakeOver(holder Holder, resumeOf string) bool {
	if IsStale(holder) {
		return true
	}
	return resumeOf != "" && holder.RunID == resumeOf && !aliveHere(holder)
}
