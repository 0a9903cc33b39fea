package journal

import (
	"os"
	"path/filepath"
	"testing"
)

// Journals hold commands, outputs and reasons: the runs directory is 0700
// and every journal 0600.
func TestJournalIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	w, err := Create(dir, "20261202T100000Z-abcdef")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for path, want := range map[string]os.FileMode{RunsDir(dir): 0o700, w.Path(): 0o600} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s: mode %04o, want %04o", path, got, want)
		}
	}
}
