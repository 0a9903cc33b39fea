package cmdutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks"
)

// Targets converts the inventory's hosts into connection targets; a local
// host's declared env is read from the process environment.
func Targets(inv *inventory.Inventory) map[string]remote.Target { return TargetsEnv(inv, os.Getenv) }

// TargetsEnv is Targets with the values of a local host's env read with
// getenv: those variables, and remote.LocalBaseEnv, are all of sitectl's
// environment its commands get.
func TargetsEnv(inv *inventory.Inventory, getenv func(string) string) map[string]remote.Target {
	out := map[string]remote.Target{}
	for _, h := range inv.AllHosts() {
		ssh := inv.SSHFor(h)
		out[h.Name] = remote.Target{
			Name: h.Name, Local: h.Local, Address: h.Address, Port: ssh.Port, User: ssh.User,
			KeyFile: expandHome(ssh.Key), UseAgent: ssh.Agent, KnownHosts: expandHome(ssh.KnownHosts),
			InsecureIgnoreHostKey: ssh.InsecureIgnoreHostKey, ConnectTimeout: ssh.ConnectTimeout.D(),
			HandshakeTimeout: ssh.HandshakeTimeout.D(),
		}
		if h.Local {
			t := out[h.Name]
			for _, k := range h.Env {
				if v := getenv(k); v != "" {
					t.Env = append(t.Env, k+"="+v)
				}
			}
			out[h.Name] = t
		}
	}
	return out
}

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	return p
}

// Pool opens (lazily) one connection per host of the inventory. Every pool
// of the command shares one bound on SSH handshakes running at once
// (defaults.ssh.max_handshakes): it protects this machine's CPU.
func (f *Factory) Pool(inv *inventory.Inventory) *remote.Pool {
	f.limitOnce.Do(func() { f.limit = remote.NewHandshakeLimit(inv.Defaults.SSH.MaxHandshakes) })
	return remote.NewPoolWith(f.Dialer, TargetsEnv(inv, f.Getenv), remote.PoolOptions{Handshakes: f.limit})
}

// SSHCommand is the exact command an operator can paste to run cmd on host.
func SSHCommand(inv *inventory.Inventory, host, cmd string) string {
	h := inv.Host(host)
	if h == nil {
		return cmd
	}
	if h.Local {
		return "sh -c " + remote.Quote(cmd)
	}
	ssh := inv.SSHFor(h)
	var b strings.Builder
	b.WriteString("ssh")
	if ssh.Port != 0 && ssh.Port != 22 {
		fmt.Fprintf(&b, " -p %d", ssh.Port)
	}
	if ssh.Key != "" {
		b.WriteString(" -i " + remote.Quote(ssh.Key))
	}
	if ssh.KnownHosts != "" {
		b.WriteString(" -o UserKnownHostsFile=" + remote.Quote(ssh.KnownHosts))
	}
	target := h.Address
	if ssh.User != "" {
		target = ssh.User + "@" + target
	}
	b.WriteString(" " + target + " " + remote.Quote(cmd))
	return b.String()
}

// TaskHint returns, for a task, the command that inspects its state.
func TaskHint(inv *inventory.Inventory) func(*runbooks.Task) string {
	return func(t *runbooks.Task) string {
		cmd := t.Observe
		if cmd == "" {
			cmd = t.Act
		}
		return SSHCommand(inv, t.Host, cmd)
	}
}

// RunWarnings are the warnings every run prints at its start and journals
// in its run.start record: SSH hosts whose host key is not verified
// (insecure_ignore_host_key; in defaults.ssh it applies to every host).
func RunWarnings(inv *inventory.Inventory) []string {
	var hosts []string
	var all []*inventory.Host
	for _, s := range inv.Sites {
		all = append(all, s.Hosts...)
	}
	if inv.Witness != nil {
		all = append(all, inv.Witness.Hosts...)
	}
	for _, h := range all {
		if !h.Local && inv.SSHFor(h).InsecureIgnoreHostKey {
			hosts = append(hosts, h.Name)
		}
	}
	if len(hosts) == 0 {
		return nil
	}
	where := "their ssh settings"
	if inv.Defaults.SSH.InsecureIgnoreHostKey {
		where = "defaults.ssh, so for every host"
	}
	return []string{fmt.Sprintf("host keys are NOT verified for %s (insecure_ignore_host_key in %s): anyone on the path can impersonate them; for labs only", strings.Join(hosts, ", "), where)}
}
