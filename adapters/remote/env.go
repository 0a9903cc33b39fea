package remote

import (
	"context"
	"strings"
)

// Export prefixes command with the variables env (KEY=VALUE), exported, so
// that it gets them over SSH (sshd passes no environment) as on this
// machine: "export K='v' ...; command".
func Export(env []string, command string) string {
	if len(env) == 0 {
		return command
	}
	var b strings.Builder
	b.WriteString("export")
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		b.WriteString(" " + k + "=" + Quote(v))
	}
	b.WriteString("; ")
	b.WriteString(command)
	return b.String()
}

// RunEnv runs command on host with the variables env exported (Export).
func (p *Pool) RunEnv(ctx context.Context, host string, env []string, command string) (Result, error) {
	return p.Run(ctx, host, Export(env, command))
}

// LocalHost runs every command on this machine, whatever host it names: the
// runner of a run's local commands (fence commands without a host, hooks
// without a host), with the local runner's deadline wrapper.
type LocalHost struct{ r *LocalRunner }

// NewLocalHost returns a LocalHost.
func NewLocalHost() *LocalHost {
	return &LocalHost{r: NewLocalRunner(Target{Name: "local"}, Options{})}
}

// Run runs command on this machine.
func (l *LocalHost) Run(ctx context.Context, _ string, command string) (Result, error) {
	return l.r.Run(ctx, command)
}

// RunEnv runs command on this machine with the variables env exported.
func (l *LocalHost) RunEnv(ctx context.Context, _ string, env []string, command string) (Result, error) {
	return l.r.Run(ctx, Export(env, command))
}
