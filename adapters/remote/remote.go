// Package remote runs shell commands on the hosts of a deployment: over SSH
// (goph on x/crypto/ssh, strict host-key checking) or, for a host marked
// local, on the machine sitectl runs on. It knows nothing about runbooks.
package remote

import (
	"context"
	"fmt"
	"time"
)

// Target says how to reach one host. It is built from the inventory by the
// caller so that this package does not depend on the inventory format.
type Target struct {
	Name                  string        // inventory host name, used in every error
	Local                 bool          // run on this machine without SSH
	Address               string        // IP or DNS name
	Port                  int           // default 22
	User                  string        // remote user
	KeyFile               string        // private key file; empty with UseAgent
	UseAgent              bool          // authenticate through $SSH_AUTH_SOCK
	KnownHosts            string        // known_hosts file; default ~/.ssh/known_hosts
	InsecureIgnoreHostKey bool          // only when the inventory says so explicitly
	ConnectTimeout        time.Duration // TCP connect + the server's first byte; default 5s
	// HandshakeTimeout bounds key exchange and authentication, once the
	// server has answered and a handshake slot is free; default 30s.
	HandshakeTimeout time.Duration
	// Env is the environment of a local target's commands besides
	// LocalBaseEnv ("NAME=value"): what the inventory declares, nothing
	// else of sitectl's own environment.
	Env []string
}

// Result of one command. A non-zero exit is not an error: it is ExitCode.
type Result struct {
	Command  string
	ExitCode int
	Stdout   []byte
	Stderr   []byte
	Duration time.Duration
}

// Runner runs commands on one host. Implementations are safe for concurrent
// use: several commands may run at once over one connection.
type Runner interface {
	// Run runs command through the remote shell and waits for it. The
	// context's deadline ends the remote command itself, not just the wait.
	// err is non-nil only when the outcome is not known (transport failure,
	// deadline, cancellation); then Result may be partial.
	Run(ctx context.Context, command string) (Result, error)
	Close() error
}

// Dialer opens a Runner for a target.
type Dialer interface {
	Dial(ctx context.Context, t Target) (Runner, error)
}

// DialerFunc adapts a function to Dialer.
type DialerFunc func(ctx context.Context, t Target) (Runner, error)

// Dial calls f.
func (f DialerFunc) Dial(ctx context.Context, t Target) (Runner, error) { return f(ctx, t) }

// HostError wraps any failure with the host it happened on.
type HostError struct {
	Host string
	Addr string
	Op   string // dial, handshake, hostkey, auth, run
	Err  error
}

func (e *HostError) Error() string {
	if e.Addr == "" {
		return fmt.Sprintf("host %s: %s: %v", e.Host, e.Op, e.Err)
	}
	return fmt.Sprintf("host %s (%s): %s: %v", e.Host, e.Addr, e.Op, e.Err)
}

func (e *HostError) Unwrap() error { return e.Err }
