package remote

// SetShellCommand replaces the command line that starts r's long-lived
// shell (r must be an *SSHRunner).
func SetShellCommand(r Runner, cmd string) { r.(*SSHRunner).shellCmd = cmd }
