package services

import "github.com/sitectl/sitectl/adapters/remote"

// Result is what a HostRunner returns for one command: its exit code,
// output and duration (remote.Result), under the name of the port that
// returns it, so that code above checks runs commands without naming the
// adapter.
type Result = remote.Result
