// Package man implements `sitectl man --dir DIR`: one man page per command.
package man

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/sitectl/sitectl/cmd/cmdutil"
)

// NewCmdMan builds the command.
func NewCmdMan(f *cmdutil.Factory) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "man --dir <dir>",
		Short: "Write one man page per command (section 1) into a directory",
		Long: `Write sitectl.1 and one page per command (sitectl-takeover.1, …) into
--dir, generated from the commands' help. The packages install them under
/usr/share/man/man1. The date in the pages is $SOURCE_DATE_EPOCH when set
(reproducible builds), else today.`,
		Example: "  sitectl man --dir /tmp/man && man -l /tmp/man/sitectl.1",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" {
				return cmdutil.FlagErrorf("--dir is required")
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			date := f.Now()
			if s := f.Getenv("SOURCE_DATE_EPOCH"); s != "" {
				sec, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return cmdutil.FlagErrorf("SOURCE_DATE_EPOCH %q: expected seconds since 1970", s)
				}
				date = time.Unix(sec, 0).UTC()
			}
			root := c.Root()
			root.InitDefaultCompletionCmd()
			root.DisableAutoGenTag = true
			hdr := &doc.GenManHeader{Title: "SITECTL", Section: "1", Source: "sitectl " + f.Version, Manual: "sitectl manual", Date: &date}
			if err := doc.GenManTree(root, hdr, dir); err != nil {
				return fmt.Errorf("write man pages to %s: %w", dir, err)
			}
			entries, _ := os.ReadDir(dir)
			if f.Globals.JSON() {
				var files []string
				for _, e := range entries {
					files = append(files, e.Name())
				}
				return cmdutil.WriteJSON(f.IO.Out, "man", map[string]any{"dir": dir, "files": files})
			}
			fmt.Fprintf(f.IO.ErrOut, "wrote %d man pages to %s\n", len(entries), dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to write the pages into (created if missing)")
	return cmd
}
