package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Interrupted is the Summary.Outcome of a run without a run.end record.
const Interrupted = "interrupted"

// Unreadable is the Summary.Outcome of a journal that could not be parsed.
const Unreadable = "unreadable"

// Summary is one line of the run history.
type Summary struct {
	ID         string        `json:"id"`
	Path       string        `json:"path"`
	Runbook    string        `json:"runbook"`
	Site       string        `json:"site"`
	Deployment string        `json:"deployment"`
	User       string        `json:"user"`
	Hostname   string        `json:"hostname"`
	Mode       string        `json:"mode"`
	Started    time.Time     `json:"started"`
	Duration   time.Duration `json:"duration_ns"` // to run.end, or to the last record if interrupted
	Outcome    string        `json:"outcome"`     // an event.Outcome, Interrupted or Unreadable
	ResumeOf   string        `json:"resume_of,omitempty"`
	Truncated  bool          `json:"truncated,omitempty"`
	Error      string        `json:"error,omitempty"` // why the journal is Unreadable
}

// Summarize condenses a parsed run.
func Summarize(r Run) Summary {
	s := Summary{ID: r.ID(), Path: r.Path, Started: r.Started, Truncated: r.Truncated}
	if r.Info != nil {
		s.Runbook, s.Site, s.Deployment = r.Info.Runbook, r.Info.Site, r.Info.Deployment
		s.User, s.Hostname, s.Mode, s.ResumeOf = r.Info.User, r.Info.Hostname, r.Info.Mode, r.Info.ResumeOf
	}
	end := r.Ended
	if r.Interrupted() {
		s.Outcome = Interrupted
		end = r.Last
	} else {
		s.Outcome = string(r.Outcome)
	}
	if !s.Started.IsZero() && end.After(s.Started) {
		s.Duration = end.Sub(s.Started)
	}
	return s
}

// List summarises every journal in dir, newest first. A journal that cannot
// be parsed is listed with Outcome Unreadable and the reason in Error rather
// than hiding the others. A missing runs directory is an empty history.
func List(dir string) ([]Summary, error) {
	ids, err := runIDs(dir)
	if err != nil {
		return nil, err
	}
	out := make([]Summary, 0, len(ids))
	for _, id := range ids {
		p := Path(dir, id)
		r, err := Read(p)
		s := Summarize(r)
		if s.ID == "" {
			s.ID = id
		}
		s.Path = p
		if err != nil {
			s.Outcome, s.Error = Unreadable, err.Error()
			if s.Started.IsZero() {
				s.Started = idTime(id)
			}
			if st, serr := os.Stat(p); serr == nil && s.Started.IsZero() {
				s.Started = st.ModTime().UTC()
			}
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.After(out[j].Started)
		}
		return out[i].ID > out[j].ID
	})
	return out, nil
}

// idTime is the start time encoded in an id made by NewRunID, or zero.
func idTime(id string) time.Time {
	const layout = "20060102T150405Z"
	if len(id) < len(layout) {
		return time.Time{}
	}
	t, err := time.Parse(layout, id[:len(layout)])
	if err != nil {
		return time.Time{}
	}
	return t
}

// runIDs lists the run ids (file names without Ext) in dir's runs directory.
func runIDs(dir string) ([]string, error) {
	entries, err := os.ReadDir(RunsDir(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var ids []string
	for _, e := range entries {
		name := e.Name()
		if e.Type().IsRegular() && strings.HasSuffix(name, Ext) && len(name) > len(Ext) {
			ids = append(ids, strings.TrimSuffix(name, Ext))
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// ErrNotFound is wrapped by Find when nothing matches.
var ErrNotFound = errors.New("no such run")

// AmbiguousError is returned by Find when a prefix matches several runs.
type AmbiguousError struct {
	Prefix     string
	Candidates []string // matching run ids, sorted
}

func (e *AmbiguousError) Error() string {
	const show = 10
	c := e.Candidates
	more := ""
	if len(c) > show {
		more = fmt.Sprintf(", … (%d more)", len(c)-show)
		c = c[:show]
	}
	return fmt.Sprintf("run id prefix %q is ambiguous: it matches %d runs: %s%s; give more characters",
		e.Prefix, len(e.Candidates), strings.Join(c, ", "), more)
}

// Find resolves a run id, a unique prefix of one, or the path of an existing
// journal file, to the journal's path. An exact id wins over longer ids it
// prefixes.
func Find(dir, idOrPrefix string) (string, error) {
	q := strings.TrimSpace(idOrPrefix)
	if q == "" {
		return "", errors.New("journal: empty run id")
	}
	if strings.ContainsRune(q, filepath.Separator) || strings.HasSuffix(q, Ext) {
		if st, err := os.Stat(q); err == nil && st.Mode().IsRegular() {
			return q, nil
		}
		q = strings.TrimSuffix(filepath.Base(q), Ext)
	}
	ids, err := runIDs(dir)
	if err != nil {
		return "", err
	}
	var matches []string
	for _, id := range ids {
		if id == q {
			return Path(dir, id), nil
		}
		if strings.HasPrefix(id, q) {
			matches = append(matches, id)
		}
	}
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("journal: %w %q in %s", ErrNotFound, idOrPrefix, RunsDir(dir))
	case 1:
		return Path(dir, matches[0]), nil
	}
	return "", &AmbiguousError{Prefix: q, Candidates: matches}
}

// IDs lists the run ids in dir's runs directory, oldest first (ids made by
// NewRunID sort by their start), without reading the journals.
func IDs(dir string) ([]string, error) { return runIDs(dir) }
