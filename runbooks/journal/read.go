package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sitectl/sitectl/runbooks/event"
)

// Run is one journal, parsed.
type Run struct {
	Path   string         // file it was read from ("" for Decode)
	Info   *event.RunInfo // from the first run.start record; nil if there is none
	Events []event.Event  // every complete record, in file order
	// Outcome is the Outcome of the run.end record, or "" when the run never
	// ended (it was interrupted: killed, crashed, or still running).
	Outcome event.Outcome
	Started time.Time // RunInfo.Started, else the first record's time
	Ended   time.Time // time of run.end; zero when the run never ended
	Last    time.Time // time of the last record
	LastSeq int64     // highest Seq seen
	// Truncated reports that the last line was torn or corrupt (the writer
	// was killed mid-write) and was left out of Events.
	Truncated bool
}

// ID is the run id: RunInfo.ID, else the RunID of the records.
func (r Run) ID() string {
	if r.Info != nil && r.Info.ID != "" {
		return r.Info.ID
	}
	for _, e := range r.Events {
		if e.RunID != "" {
			return e.RunID
		}
	}
	return ""
}

// Interrupted reports that the run has no run.end record.
func (r Run) Interrupted() bool { return r.Outcome == "" }

// TaskOutcomes maps each task id to the outcome of its last step.end. A task
// that started but has no step.end (it was in flight when the run stopped)
// maps to "" — which, like Unknown, is never a success.
func (r Run) TaskOutcomes() map[string]event.Outcome {
	m := map[string]event.Outcome{}
	for _, e := range r.Events {
		if e.Task == "" {
			continue
		}
		switch e.Kind {
		case event.StepStart:
			if _, ok := m[e.Task]; !ok {
				m[e.Task] = ""
			}
		case event.StepEnd:
			m[e.Task] = e.Outcome
		}
	}
	return m
}

// CorruptError reports an unreadable record that is not the last line.
type CorruptError struct {
	Path string
	Line int // 1-based
	Err  error
}

func (e *CorruptError) Error() string {
	where := e.Path
	if where == "" {
		where = "journal"
	}
	return fmt.Sprintf("%s:%d: corrupt record: %v", where, e.Line, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// Read parses the journal at path. A torn or corrupt last line is tolerated
// (Run.Truncated); a corrupt line before the last is a *CorruptError naming
// the line.
func Read(path string) (Run, error) {
	f, err := os.Open(path)
	if err != nil {
		return Run{}, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	r, err := decode(f, path)
	r.Path = path
	return r, err
}

// Decode parses a journal from rd; see Read.
func Decode(rd io.Reader) (Run, error) { return decode(rd, "") }

func decode(rd io.Reader, path string) (Run, error) {
	var (
		run     Run
		br      = bufio.NewReaderSize(rd, 64<<10)
		lineNo  int
		pending *CorruptError // a bad line, fatal unless it is the last one
	)
	for {
		line, rerr := br.ReadBytes('\n')
		if rerr != nil && rerr != io.EOF {
			return run, fmt.Errorf("journal: read %s: %w", path, rerr)
		}
		if len(line) > 0 {
			lineNo++
			if trimmed := bytes.TrimSpace(line); len(trimmed) > 0 {
				if pending != nil {
					return run, pending
				}
				e, err := parseLine(trimmed)
				if err != nil {
					pending = &CorruptError{Path: path, Line: lineNo, Err: err}
				} else {
					run.add(e)
				}
			}
		}
		if rerr == io.EOF {
			break
		}
	}
	run.Truncated = pending != nil
	if run.Started.IsZero() && len(run.Events) > 0 {
		run.Started = run.Events[0].Time
	}
	return run, nil
}

func parseLine(b []byte) (event.Event, error) {
	var e event.Event
	if err := json.Unmarshal(b, &e); err != nil {
		return e, err
	}
	if e.Kind == "" {
		return e, errors.New("record has no kind")
	}
	return e, nil
}

func (run *Run) add(e event.Event) {
	run.Events = append(run.Events, e)
	if e.Seq > run.LastSeq {
		run.LastSeq = e.Seq
	}
	if !e.Time.IsZero() {
		run.Last = e.Time
	}
	switch e.Kind {
	case event.RunStart:
		if run.Info == nil && e.Run != nil {
			info := *e.Run
			run.Info = &info
			if !info.Started.IsZero() {
				run.Started = info.Started
			}
		}
		if run.Started.IsZero() {
			run.Started = e.Time
		}
	case event.RunEnd:
		run.Outcome = e.Outcome
		if run.Outcome == "" {
			run.Outcome = event.Unknown // ended, but without a verdict
		}
		run.Ended = e.Time
	}
}
