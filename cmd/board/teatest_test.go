package board

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"
	tea "github.com/sitectl/sitectl/third_party/bubbletea"
	"github.com/sitectl/sitectl/third_party/teatest"
)

// These tests drive the real bubbletea program (keys in, frames out) and
// compare the final screen with testdata/<TestName>.golden. The final
// model's View is compared rather than the raw frame stream, whose number of
// intermediate frames depends on timing. Regenerate with:
//
//	go test ./cmd/board -run TestBoardGolden -update

func startBoard(t *testing.T, f *fakeDeps, w, h int) *teatest.TestModel {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tm := teatest.NewTestModel(t, New(ctx, f.deps()), teatest.WithInitialTermSize(w, h))
	waitFor(t, tm, "refreshed 08:00:00")
	return tm
}

func waitFor(t *testing.T, tm *teatest.TestModel, s string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(s)) },
		teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
}

func finalView(t *testing.T, tm *teatest.TestModel) Model {
	t.Helper()
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	return tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(Model)
}

var sizes = []struct {
	name string
	w, h int
}{{"80x24", 80, 24}, {"120x40", 120, 40}}

func TestBoardGoldenMain(t *testing.T) {
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			tm := startBoard(t, newFake(), sz.w, sz.h)
			m := finalView(t, tm)
			golden.RequireEqual(t, []byte(m.View()))
		})
	}
}

func TestBoardGoldenSplit(t *testing.T) {
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			f := newFake()
			f.snap = splitSnapshot()
			tm := startBoard(t, f, sz.w, sz.h)
			m := finalView(t, tm)
			golden.RequireEqual(t, []byte(m.View()))
		})
	}
}

func TestBoardGoldenConfirm(t *testing.T) {
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			f := newFake()
			tm := startBoard(t, f, sz.w, sz.h)
			tm.Send(tea.KeyMsg{Type: tea.KeyTab})
			tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("s")})
			tm.Type("B")
			waitFor(t, tm, "> B_")
			m := finalView(t, tm)
			if m.mode != modeConfirm || len(f.ran()) != 0 {
				t.Fatalf("mode %v runs %v", m.mode, f.ran())
			}
			golden.RequireEqual(t, []byte(m.View()))
		})
	}
}

func TestBoardGoldenRun(t *testing.T) {
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			f := newFake()
			tm := startBoard(t, f, sz.w, sz.h)
			tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("t")})
			tm.Type("A")
			tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
			waitFor(t, tm, "Run: takeover --site A · OK")
			m := finalView(t, tm)
			if got := f.ran(); len(got) != 1 || got[0] != "takeover A" {
				t.Fatalf("runs = %v", got)
			}
			golden.RequireEqual(t, []byte(m.View()))
		})
	}
}
