package root

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/cmd/cmdutil"
)

// usageErrors makes every way cobra rejects a command line a usage error
// (exit 2, with the command's usage): unknown flags and bad flag values,
// a wrong number of arguments, and unknown commands, at the top and in
// command groups (`sitectl inventory frobnicate`).
func usageErrors(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cmdutil.FlagError{Err: err} })
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if args := c.Args; args != nil {
			c.Args = func(c *cobra.Command, a []string) error {
				if err := args(c, a); err != nil {
					return &cmdutil.FlagError{Err: err}
				}
				return nil
			}
		}
		if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
			// A group: bare, it shows its help; with an argument that is
			// no subcommand, it is a usage error (cobra would show the
			// help and exit 0).
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(c *cobra.Command, a []string) error {
				if len(a) == 0 {
					return c.Help()
				}
				return &cmdutil.FlagError{Err: fmt.Errorf("unknown command %q for %q%s", a[0], c.CommandPath(), suggest(c, a[0]))}
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(cmd)
}

func suggest(c *cobra.Command, arg string) string {
	if s := c.SuggestionsFor(arg); len(s) > 0 {
		return "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return ""
}

// isCobraUsage recognises the errors cobra returns before any command runs
// for an unknown top-level command (its Find), which no hook can type.
func isCobraUsage(err error) bool {
	return strings.HasPrefix(err.Error(), "unknown command ")
}
