package board

import (
	"context"
	"testing"

	tea "github.com/sitectl/sitectl/third_party/bubbletea"
)

// BenchmarkView renders one frame of a board with 200 services. The goal is
// well under one 60 Hz frame (16ms).
func BenchmarkView(b *testing.B) {
	for _, sz := range []struct {
		name string
		w, h int
	}{{"80x24", 80, 24}, {"120x40", 120, 40}, {"250x120", 250, 120}} {
		b.Run(sz.name, func(b *testing.B) {
			f := newFake()
			f.snap = bigSnapshot(200)
			var m tea.Model = New(context.Background(), f.deps())
			m, _ = m.Update(tea.WindowSizeMsg{Width: sz.w, Height: sz.h})
			m, _ = m.Update(refreshMsg{snap: f.snap, at: t0})
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				_ = m.View()
			}
		})
	}
}
