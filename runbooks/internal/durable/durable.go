// Package durable holds what the journal and the lock share to make their
// files survive a crash: a directory's entries synced to disk.
package durable

import (
	"fmt"
	"os"
)

// SyncDir fsyncs dir, so that the entries created or renamed in it are on
// disk (a file's own fsync does not cover its name).
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
