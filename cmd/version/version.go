// Package version implements `sitectl version` (and `sitectl --version`).
package version

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/cmd/cmdutil"
)

// NewCmdVersion builds the command.
func NewCmdVersion(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print sitectl's version, commit and build date",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if f.Globals.JSON() {
				return cmdutil.WriteJSON(f.IO.Out, "version", map[string]any{
					"version": f.Version, "commit": orUnknown(f.Commit), "date": orUnknown(f.Date),
					"go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH,
				})
			}
			fmt.Fprintln(f.IO.Out, Text(f))
			return nil
		},
	}
}

// Text is the version line: "sitectl 1.2.0 (commit abc1234, built
// 2026-12-01T10:00:00Z, go1.26.8, linux/amd64)".
func Text(f *cmdutil.Factory) string {
	commit := orUnknown(f.Commit)
	if len(commit) > 12 {
		commit = commit[:12]
	}
	return fmt.Sprintf("sitectl %s (commit %s, built %s, %s, %s/%s)", f.Version, commit, orUnknown(f.Date), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
