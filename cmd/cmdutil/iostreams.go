package cmdutil

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"
)

// IOStreams are the command's standard streams, injected so tests use buffers.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer // data (tables, JSON)
	ErrOut io.Writer // progress, warnings, prompts

	stdinTTY, stdoutTTY, stderrTTY bool
	colorOff                       bool
	reader                         *bufio.Reader
	mu                             sync.Mutex
	pending                        chan lineResult // a read in progress
}

// System returns the process's streams.
func System() *IOStreams {
	return &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		stdinTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		stdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		stderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		colorOff:  os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb",
	}
}

// Test returns streams backed by buffers: in, out, errOut.
func Test() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut, colorOff: true}, in, out, errOut
}

// SetTTY marks the streams as terminals (tests).
func (s *IOStreams) SetTTY(stdin, stdout bool) {
	s.stdinTTY, s.stdoutTTY, s.stderrTTY = stdin, stdout, stdout
}

// CanPrompt reports whether a person can answer a prompt.
func (s *IOStreams) CanPrompt() bool { return s.stdinTTY && s.stderrTTY }

// IsStdoutTTY reports whether stdout is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// IsStderrTTY reports whether stderr is a terminal (live progress lines).
func (s *IOStreams) IsStderrTTY() bool { return s.stderrTTY }

// ColorEnabled reports whether colour may be used (NO_COLOR respected).
func (s *IOStreams) ColorEnabled() bool { return !s.colorOff && s.stderrTTY }

// ReadLine reads one line of input without the newline.
func (s *IOStreams) ReadLine() (string, error) { return s.ReadLineContext(context.Background()) }

type lineResult struct {
	line string
	err  error
}

// ReadLineContext reads one line of input without the newline, or returns
// ctx's error as soon as ctx ends (Ctrl-C at a prompt exits without Enter).
// The read itself goes on in the background; a later call gets its line.
func (s *IOStreams) ReadLineContext(ctx context.Context) (string, error) {
	s.mu.Lock()
	if s.reader == nil {
		s.reader = bufio.NewReader(s.In)
	}
	if s.pending == nil {
		ch := make(chan lineResult, 1)
		s.pending = ch
		r := s.reader
		go func() {
			line, err := r.ReadString('\n')
			if err != nil && line != "" {
				err = nil
			}
			ch <- lineResult{strings.TrimRight(line, "\r\n"), err}
		}()
	}
	ch := s.pending
	s.mu.Unlock()
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case r := <-ch:
		s.mu.Lock()
		s.pending = nil
		s.mu.Unlock()
		return r.line, r.err
	}
}
