package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/internal/durable"
)

// ErrClosed is recorded when Emit is called after Close.
var ErrClosed = errors.New("journal: emit after close")

// Option configures a Writer.
type Option func(*Writer)

// WithRedactor replaces the default redactor (NewRedactor with no literal
// secrets, which masks password=… style assignments only). nil disables
// redaction.
func WithRedactor(r Redactor) Option { return func(w *Writer) { w.redact = r } }

// WithErrorHandler sets a function called once, outside any lock, with the
// first error that made the Writer lose an event. Err returns the same error.
func WithErrorHandler(fn func(error)) Option { return func(w *Writer) { w.onErr = fn } }

// Writer appends events to a journal file. It implements event.Sink and is
// safe for concurrent use. Each Emit writes one line with a single write call
// and fsyncs the file before returning.
//
// Errors are never silent: the first failure is kept (Err) and passed to the
// error handler. After a failed write or fsync the Writer stops writing, so a
// partly written record stays the last line of the file (which Read tolerates)
// instead of being followed by more records (which Read must reject).
type Writer struct {
	mu     sync.Mutex
	f      *os.File
	path   string
	redact Redactor
	onErr  func(error)
	err    error
	broken bool
	closed bool
	n      int64
}

// Create creates the journal of a new run, <dir>/runs/<runID>.jsonl. It fails
// if that file already exists. The file and the directory entry are fsynced
// before Create returns.
func Create(dir, runID string, opts ...Option) (*Writer, error) {
	if err := ValidateRunID(runID); err != nil {
		return nil, err
	}
	runs := RunsDir(dir)
	if err := mkdirAllSync(runs, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	p := Path(dir, runID)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: create: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("journal: create: %w", err)
	}
	if err := durable.SyncDir(runs); err != nil {
		f.Close()
		return nil, fmt.Errorf("journal: create: %w", err)
	}
	return newWriter(f, p, opts), nil
}

// OpenAppend opens the existing journal of runID to add records to it (an
// unlock, a note). Resuming a run does not use it: a resume is a new run whose
// RunInfo.ResumeOf names the old one.
//
// If the file ends in a torn record (the run was killed mid-write), OpenAppend
// first removes that unreadable fragment so that appended records do not turn
// it into a corrupt line in the middle of the file. A final line that is
// complete JSON but lacks its newline gets the newline instead.
func OpenAppend(dir, runID string, opts ...Option) (*Writer, error) {
	if err := ValidateRunID(runID); err != nil {
		return nil, err
	}
	p := Path(dir, runID)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("journal: open: %w", err)
	}
	if err := repairTail(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("journal: open %s: %w", p, err)
	}
	return newWriter(f, p, opts), nil
}

func newWriter(f *os.File, p string, opts []Option) *Writer {
	w := &Writer{f: f, path: p, redact: NewRedactor()}
	for _, o := range opts {
		o(w)
	}
	return w
}

// Path is the journal file.
func (w *Writer) Path() string { return w.path }

// Err returns the first error that lost an event, or nil.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Emit redacts e, writes it as one JSON line and fsyncs the file.
func (w *Writer) Emit(e event.Event) {
	if e.Kind == event.Progress {
		return // transient, for live display only
	}
	line, merr := json.Marshal(w.redactEvent(e))
	var first error
	w.mu.Lock()
	switch {
	case w.closed:
		first = w.fail(fmt.Errorf("%w (%s seq %d)", ErrClosed, e.Kind, e.Seq), false)
	case w.broken:
		// Already reported; the record is knowingly dropped.
	case merr != nil:
		first = w.fail(fmt.Errorf("journal: encode %s seq %d: %w", e.Kind, e.Seq, merr), false)
	default:
		line = append(line, '\n')
		if _, err := w.f.Write(line); err != nil {
			first = w.fail(fmt.Errorf("journal: write %s: %w", w.path, err), true)
		} else if err := w.f.Sync(); err != nil {
			first = w.fail(fmt.Errorf("journal: fsync %s: %w", w.path, err), true)
		} else {
			w.n++
		}
	}
	w.mu.Unlock()
	if first != nil && w.onErr != nil {
		w.onErr(first)
	}
}

// fail records err; it returns err if it is the first one (to be reported).
func (w *Writer) fail(err error, breaks bool) error {
	if breaks {
		w.broken = true
	}
	if w.err != nil {
		return nil
	}
	w.err = err
	return err
}

// Written is the number of records written so far.
func (w *Writer) Written() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Close closes the file. It returns the first write error, if any, or the
// close error. Closing twice is harmless.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.err
	}
	w.closed = true
	cerr := w.f.Close()
	if w.err != nil {
		return w.err
	}
	if cerr != nil {
		return fmt.Errorf("journal: close %s: %w", w.path, cerr)
	}
	return nil
}

func (w *Writer) redactEvent(e event.Event) event.Event { return RedactEvent(w.redact, e) }

// RedactSink masks every event with r before next sees it: the renderers
// (text, JSON), the board and the journal all go through the same
// redactor. r is called per event, so a redactor that learns its secrets
// later (once the inventory is loaded) applies from then on.
func RedactSink(r func() Redactor, next event.Sink) event.Sink {
	return event.SinkFunc(func(e event.Event) { next.Emit(RedactEvent(r(), e)) })
}

// RedactEvent masks every text field of e that may carry a secret: the
// command, its output, messages, hints, observed and expected states, the
// run's arguments and reason.
func RedactEvent(r Redactor, e event.Event) event.Event {
	if r == nil {
		return e
	}
	e.Command = r(e.Command)
	e.Stdout = r(e.Stdout)
	e.Stderr = r(e.Stderr)
	e.Message = r(e.Message)
	e.Hint = r(e.Hint)
	e.Expected = r(e.Expected)
	e.Observed = r(e.Observed)
	if e.Run != nil {
		ri := *e.Run
		if ri.Args != nil {
			args := make([]string, len(ri.Args))
			for i, a := range ri.Args {
				args[i] = r(a)
			}
			// "--password" "x" as two arguments: mask the value too.
			for i := 0; i+1 < len(args); i++ {
				if isSecretFlag(args[i]) {
					args[i+1] = masked
				}
			}
			ri.Args = args
		}
		ri.Reason = r(ri.Reason)
		e.Run = &ri
	}
	return e
}

// repairTail makes f end at a record boundary (see OpenAppend).
func repairTail(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if size == 0 {
		return nil
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, size-1); err != nil {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	// Read backwards in chunks to the start of the last line.
	const chunk = 64 << 10
	var tail []byte
	start := size
	for start > 0 {
		n := min(int64(chunk), start)
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, start-n); err != nil && err != io.EOF {
			return err
		}
		start -= n
		tail = append(buf, tail...)
		if i := bytes.LastIndexByte(tail, '\n'); i >= 0 {
			start += int64(i + 1)
			tail = tail[i+1:]
			break
		}
	}
	var e event.Event
	if json.Unmarshal(tail, &e) == nil && e.Kind != "" {
		// A complete record that only lacks its newline.
		if _, err := f.Write([]byte{'\n'}); err != nil {
			return err
		}
		return f.Sync()
	}
	if err := f.Truncate(start); err != nil {
		return err
	}
	return f.Sync()
}

func mkdirAllSync(dir string, perm os.FileMode) error {
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return nil
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	// Make the new directory entries durable too.
	if err := durable.SyncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	return durable.SyncDir(dir)
}
