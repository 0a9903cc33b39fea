package remote

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Ops used in HostError.Op.
const (
	OpDial      = "dial"      // TCP connect (or no such host in the pool)
	OpHandshake = "handshake" // SSH version/key exchange did not complete
	OpHostKey   = "hostkey"   // host key unknown, changed, revoked, or known_hosts unreadable
	OpAuth      = "auth"      // no usable credentials, or the server refused them
	OpRun       = "run"       // running one command
)

var (
	// ErrNotStarted marks a Run error where the command certainly did not
	// start on the host (no session could be opened, or ctx was already
	// done). Retrying it cannot run the command twice.
	ErrNotStarted = errors.New("command not started")

	// ErrConnLost marks a Run error where the connection broke while the
	// command ran: it may or may not have taken effect.
	ErrConnLost = errors.New("connection lost while the command ran; its outcome is unknown")

	// ErrUnknownHost is returned by Pool for a host it has no Target for.
	ErrUnknownHost = errors.New("no such host in the inventory")

	// ErrNoBanner marks a handshake error where the host accepted the TCP
	// connection but sent no SSH version line within ConnectTimeout: it
	// answers the network, but no SSH server answers there in time.
	ErrNoBanner = errors.New("no SSH version line from the server")

	// ErrSlowHandshake marks a handshake error where the server answered
	// but key exchange and authentication did not finish within
	// HandshakeTimeout: the host (or this machine) is slow, not unreachable.
	ErrSlowHandshake = errors.New("SSH handshake too slow")

	// ErrPoolClosed is returned by Pool after Close.
	ErrPoolClosed = errors.New("connection pool closed")
)

// HostKeyError is the Err of a HostError with Op "hostkey" when the server's
// key could not be trusted. Nothing has been sent to the server (no
// authentication, no command) when it is returned.
type HostKeyError struct {
	Host        string // inventory host name
	Addr        string // address as dialed, host:port
	KeyType     string // type of the key the server offered, e.g. ssh-ed25519
	Fingerprint string // SHA256:… of the offered key
	KnownHosts  string // the known_hosts file that was consulted

	Mismatch          bool     // the host is in KnownHosts with other keys
	Known             []string // for a mismatch: "file:line type SHA256:…" of the stored keys
	Revoked           bool     // the offered key is marked @revoked
	KnownHostsMissing bool     // KnownHosts does not exist

	Port int // port, as dialed
	// Line is the known_hosts line of the key the server offered, to add
	// once its fingerprint has been verified out of band.
	Line string
}

func (e *HostKeyError) Error() string {
	add := fmt.Sprintf("add this line to %s: %s", e.KnownHosts, e.Line)
	if e.Line == "" {
		add = "add it to " + e.KnownHosts
	}
	if e.KnownHostsMissing {
		if dir := filepath.Dir(e.KnownHosts); dir != "." {
			if _, err := os.Stat(dir); err != nil {
				add = fmt.Sprintf("create %s (mkdir -p -m 700 %s) and %s", dir, dir, add)
			}
		}
	}
	switch {
	case e.Revoked:
		return fmt.Sprintf("host key of %s (%s) is REVOKED: the server offered %s %s, which %s marks @revoked; do not connect, and ask the host's owner what happened",
			e.Host, e.Addr, e.KeyType, e.Fingerprint, e.KnownHosts)
	case e.Mismatch:
		return fmt.Sprintf("HOST KEY MISMATCH for %s (%s): the server offered %s %s, but %s holds a different key for it (%s). "+
			"Someone may be intercepting the connection (man in the middle), or the host was reinstalled. "+
			"Do not replace the stored key until the host's owner has confirmed the new fingerprint out of band",
			e.Host, e.Addr, e.KeyType, e.Fingerprint, e.KnownHosts, strings.Join(e.Known, "; "))
	case e.KnownHostsMissing:
		return fmt.Sprintf("cannot check the host key of %s (%s): known_hosts file %s does not exist. The server offered %s %s. "+
			"Verify that fingerprint out of band (on the host: ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub), then %s",
			e.Host, e.Addr, e.KnownHosts, e.KeyType, e.Fingerprint, keyscanType(e.KeyType), add)
	default:
		return fmt.Sprintf("host key of %s (%s) is not in %s: the server offered %s %s. "+
			"Verify that fingerprint out of band (on the host: ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub), then %s",
			e.Host, e.Addr, e.KnownHosts, e.KeyType, e.Fingerprint, keyscanType(e.KeyType), add)
	}
}

// keyscanType maps an SSH key type to the name ssh-keyscan -t takes.
func keyscanType(t string) string {
	switch {
	case t == "ssh-ed25519":
		return "ed25519"
	case t == "ssh-rsa":
		return "rsa"
	case strings.HasPrefix(t, "ecdsa-sha2-"):
		return "ecdsa"
	case t == "ssh-dss":
		return "dsa"
	}
	return t
}

// capBuffer keeps the first max bytes written to it and drops the rest,
// while still accepting (draining) everything. Safe for concurrent use.
type capBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *capBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// Bytes returns a copy of what was kept.
func (b *capBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf...)
}
