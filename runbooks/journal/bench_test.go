package journal

import (
	"strings"
	"testing"

	"github.com/sitectl/sitectl/runbooks/event"
)

// BenchmarkRedactOutput measures masking 64 KiB of command output that
// contains the trigger words, the worst case of the pattern scan.
func BenchmarkRedactOutput(b *testing.B) {
	r := NewRedactor("hunter2-db-pass", "another-secret")
	out := strings.Repeat("INFO loaded key store from /etc/pki, token cache warm, password policy ok\n", 900)
	b.SetBytes(int64(len(out)))
	for b.Loop() {
		_ = r(out)
	}
}

// BenchmarkEmit measures one durable (fsynced) record.
func BenchmarkEmit(b *testing.B) {
	w, err := Create(b.TempDir(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	e := event.Event{Kind: event.StepAct, Task: "t", Command: "systemctl restart dialer", Stdout: strings.Repeat("x", 1024)}
	for b.Loop() {
		w.Emit(e)
	}
	if err := w.Err(); err != nil {
		b.Fatal(err)
	}
}
