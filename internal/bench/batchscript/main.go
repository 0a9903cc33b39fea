// Command batchscript prints the status batch sitectl sends to one host for
// the given status commands (services.BatchStatusInline), with -eval the
// batch it falls back to (services.BatchStatus, each command eval'ed), or
// with -old the shape it had before issue 13 (each command in its own
// background subshell, then wait), so that scripts/bench-peers.sh can
// measure the hosts' CPU for each over the same warm connections.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/sitectl/sitectl/checks/services"

	"github.com/sitectl/sitectl/adapters/remote"
)

func main() {
	old := flag.Bool("old", false, "the batch as it was before issue 13 (parallel background subshells)")
	eval := flag.Bool("eval", false, "the batch with each command eval'ed (services.BatchStatus, the fallback)")
	timeout := flag.Duration("timeout", 0, "each command's own timeout (a service's timeout in the inventory; 0: none, as by default)")
	flag.Parse()
	cmds := flag.Args()
	if len(cmds) == 0 {
		fmt.Fprintln(os.Stderr, "usage: batchscript [-old|-eval] [-timeout 10s] COMMAND...")
		os.Exit(2)
	}
	if *old {
		var b strings.Builder
		for i, c := range cmds {
			fmt.Fprintf(&b, "( sh -c %s </dev/null >/dev/null 2>&1; echo \"@@sitectl-status %d $?\" ) &\n", remote.Quote(c), i)
		}
		b.WriteString("wait\n")
		fmt.Print(b.String())
		return
	}
	ts := make([]time.Duration, len(cmds))
	for i := range ts {
		ts[i] = *timeout
	}
	if *eval {
		fmt.Print(services.BatchStatus(cmds, ts))
		return
	}
	fmt.Print(services.BatchStatusInline(cmds, ts))
}
