// Package haproxy talks to the HAProxy runtime API (the "stats socket"):
// it reads "show stat" and "show servers state", changes a server's admin
// state (ready, drain, maint), drains servers until their sessions reach
// zero, and says which servers of a backend take new traffic.
//
// Every command is its own connection in non-interactive mode: connect,
// send one line, read until HAProxy closes the connection. Each command is
// bounded by the client's Timeout (dial, write and read together) and by the
// context. Arguments are escaped (backslash before '\', ';', space and tab)
// so a name can never smuggle a second command.
//
// Standard library only; this package must not import runbooks or cmd.
package haproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
)

// DefaultTimeout bounds one command when Client.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// MaxReply caps the bytes read for one command (a "show stat" of a large
// configuration is a few MB).
const MaxReply = 64 << 20

// Client reaches one HAProxy runtime API.
type Client struct {
	API     string        // as given: unix:///path or tcp://host:port
	Network string        // "unix" or "tcp"
	Address string        // socket path or host:port
	Timeout time.Duration // per command: dial + write + read; DefaultTimeout when zero
}

// New parses api ("unix:///run/haproxy/admin.sock" or "tcp://host:port").
func New(api string, timeout time.Duration) (*Client, error) {
	c := &Client{API: api, Timeout: timeout}
	switch {
	case strings.HasPrefix(api, "unix://"):
		c.Network, c.Address = "unix", strings.TrimPrefix(api, "unix://")
		if !strings.HasPrefix(c.Address, "/") || len(c.Address) < 2 {
			return nil, fmt.Errorf("haproxy runtime API %q: want unix:///absolute/path", api)
		}
	case strings.HasPrefix(api, "tcp://"):
		c.Network, c.Address = "tcp", strings.TrimPrefix(api, "tcp://")
		if _, port, err := net.SplitHostPort(c.Address); err != nil || port == "" {
			return nil, fmt.Errorf("haproxy runtime API %q: want tcp://host:port", api)
		}
	default:
		return nil, fmt.Errorf("haproxy runtime API %q: want unix:///path or tcp://host:port", api)
	}
	return c, nil
}

// Kind classifies an Error.
type Kind string

const (
	KindNoSocket     Kind = "no socket"         // unix socket file missing
	KindRefused      Kind = "refused"           // connection refused (haproxy down, stale socket, closed port)
	KindTimeout      Kind = "timeout"           // no (complete) answer within the deadline
	KindCanceled     Kind = "canceled"          // the context was canceled
	KindClosed       Kind = "closed"            // the connection broke while reading
	KindUnreachable  Kind = "unreachable"       // any other dial failure
	KindDenied       Kind = "permission denied" // socket file not accessible, or the socket's level is too low
	KindNoSuchServer Kind = "no such server"
	KindNoSuchProxy  Kind = "no such backend"
	KindReply        Kind = "error reply" // any other text where success is silent or CSV is expected
	KindParse        Kind = "unparsable"  // the reply is not what the command returns
	KindBadRequest   Kind = "bad request" // refused before sending (newline in a command, empty name)
)

// Sentinels for errors.Is on an *Error.
var (
	ErrUnreachable      = errors.New("haproxy runtime API unreachable") // dial or read failed: KindNoSocket, KindRefused, KindTimeout, KindClosed, KindUnreachable, dial-level KindDenied
	ErrTimeout          = errors.New("haproxy runtime API timeout")
	ErrPermissionDenied = errors.New("permission denied")
	ErrNoSuchServer     = errors.New("no such server")
	ErrNoSuchBackend    = errors.New("no such backend")
)

// Error is a failed runtime-API command.
type Error struct {
	API     string // the runtime API as configured
	Command string // the command line sent (or about to be)
	Op      string // "dial", "write", "read" (the transport) or "reply" (HAProxy answered with an error)
	Kind    Kind
	Reply   string        // HAProxy's text, for Op "reply"
	After   time.Duration // how long the command ran
	Err     error         // the transport error, if any
}

func (e *Error) Error() string {
	where := "haproxy runtime API " + e.API
	switch e.Op {
	case "reply":
		if e.Kind == KindParse {
			return fmt.Sprintf("%s: %q: unusable reply: %v", where, e.Command, e.Err)
		}
		return fmt.Sprintf("%s: %q: %s", where, e.Command, firstLine(e.Reply))
	}
	switch e.Kind {
	case KindNoSocket:
		return fmt.Sprintf("%s: no such socket (is haproxy running, and is the stats socket path right?)", where)
	case KindRefused:
		return fmt.Sprintf("%s: connection refused (haproxy not running, or a stale socket)", where)
	case KindTimeout:
		return fmt.Sprintf("%s: %q: no complete answer within %s (%s timed out)", where, e.Command, e.After.Round(time.Millisecond), e.Op)
	case KindCanceled:
		return fmt.Sprintf("%s: %q: canceled after %s", where, e.Command, e.After.Round(time.Millisecond))
	case KindDenied:
		return fmt.Sprintf("%s: cannot open the socket: permission denied", where)
	}
	return fmt.Sprintf("%s: %q: %s: %v", where, e.Command, e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches the package's sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnreachable:
		return e.Unreachable()
	case ErrTimeout:
		return e.Kind == KindTimeout
	case ErrPermissionDenied:
		return e.Kind == KindDenied
	case ErrNoSuchServer:
		return e.Kind == KindNoSuchServer
	case ErrNoSuchBackend:
		return e.Kind == KindNoSuchProxy
	}
	return false
}

// Unreachable reports a transport failure: HAProxy gave no usable answer.
func (e *Error) Unreachable() bool {
	return e.Op != "reply" && e.Kind != KindBadRequest && e.Kind != KindParse
}

// Reason is a short name for what went wrong ("refused", "timeout",
// "no socket", "permission denied", "No such server.", …), for tables.
func Reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		if e.Op == "reply" && e.Kind != KindParse {
			return firstLine(e.Reply)
		}
		return string(e.Kind)
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// Arg escapes one argument for the runtime API: a backslash before '\',
// ';', space and tab, so it stays one argument of one command.
func Arg(s string) string {
	if !strings.ContainsAny(s, "\\; \t") {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', ';', ' ', '\t':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Exec sends one command line and returns HAProxy's raw reply. It does not
// interpret the reply (see ShowStat, SetState, …). A command holding a
// newline, carriage return or NUL is refused before anything is sent.
func (c *Client) Exec(ctx context.Context, command string) (string, error) {
	start := time.Now()
	fail := func(op string, kind Kind, err error) (string, error) {
		return "", &Error{API: c.API, Command: command, Op: op, Kind: kind, Err: err, After: time.Since(start)}
	}
	if strings.ContainsAny(command, "\n\r\x00") {
		return fail("write", KindBadRequest, errors.New("command holds a newline, carriage return or NUL"))
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	deadline := start.Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	d := net.Dialer{Deadline: deadline}
	conn, err := d.DialContext(ctx, c.Network, c.Address)
	if err != nil {
		return fail("dial", dialKind(ctx, err), err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	// Cancelation interrupts a blocked read or write at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := io.WriteString(conn, command+"\n"); err != nil {
		return fail("write", ioKind(ctx, err), err)
	}
	b, err := io.ReadAll(io.LimitReader(conn, MaxReply+1))
	if err != nil {
		return fail("read", ioKind(ctx, err), err)
	}
	if len(b) > MaxReply {
		return fail("read", KindParse, fmt.Errorf("reply larger than %d bytes", MaxReply))
	}
	return string(b), nil
}

func dialKind(ctx context.Context, err error) Kind {
	switch {
	case ctx.Err() == context.Canceled:
		return KindCanceled
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return KindTimeout
	case errors.Is(err, syscall.ENOENT):
		return KindNoSocket
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindRefused
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return KindDenied
	}
	return KindUnreachable
}

func ioKind(ctx context.Context, err error) Kind {
	switch {
	case ctx.Err() == context.Canceled:
		return KindCanceled
	case errors.Is(err, os.ErrDeadlineExceeded), isTimeout(err):
		return KindTimeout
	}
	return KindClosed
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// needNames refuses empty arguments: an empty word would shift the
// command's arguments (e.g. "show stat  4 -1").
func (c *Client) needNames(cmd string, names ...string) error {
	for _, n := range names {
		if n == "" {
			return &Error{API: c.API, Command: cmd, Op: "write", Kind: KindBadRequest, Err: errors.New("empty backend, server or state name")}
		}
	}
	return nil
}

// replyError turns HAProxy's error text into an *Error.
func (c *Client) replyError(command, reply string) *Error {
	r := strings.TrimSpace(reply)
	kind := KindReply
	switch {
	case strings.HasPrefix(r, "Permission denied"):
		kind = KindDenied
	case strings.HasPrefix(r, "No such server"):
		kind = KindNoSuchServer
	case strings.HasPrefix(r, "No such backend"), strings.HasPrefix(r, "Can't find backend"),
		strings.HasPrefix(r, "No such proxy"):
		kind = KindNoSuchProxy
	}
	return &Error{API: c.API, Command: command, Op: "reply", Kind: kind, Reply: r}
}

// Silent runs a command whose success is an empty reply (set server, enable,
// disable, set weight, …) and turns any text into an error carrying it.
func (c *Client) Silent(ctx context.Context, command string) error {
	out, err := c.Exec(ctx, command)
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != "" {
		return c.replyError(command, out)
	}
	return nil
}

// Info runs "show info" and returns its "Key: value" lines (Name, Version,
// Pid, Uptime_sec, …): a liveness and version probe.
func (c *Client) Info(ctx context.Context) (map[string]string, error) {
	const cmd = "show info"
	out, err := c.Exec(ctx, cmd)
	if err != nil {
		return nil, err
	}
	info := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			info[k] = v
		}
	}
	if info["Name"] == "" {
		return nil, c.replyError(cmd, out)
	}
	return info, nil
}

// SocatCommand is the shell command an operator can paste to send the given
// runtime-API commands (joined with "; ") to api, e.g.
//
//	echo 'set server be_cc/site_b state ready' | socat stdio unix-connect:/run/haproxy/admin.sock
func SocatCommand(api string, commands ...string) string {
	line := strings.Join(commands, "; ")
	var addr string
	switch {
	case strings.HasPrefix(api, "unix://"):
		addr = "unix-connect:" + strings.TrimPrefix(api, "unix://")
	case strings.HasPrefix(api, "tcp://"):
		hp := strings.TrimPrefix(api, "tcp://")
		addr = "tcp-connect:" + hp
		if host, port, err := net.SplitHostPort(hp); err == nil && strings.Contains(host, ":") {
			addr = "tcp6-connect:[" + host + "]:" + port
		}
	default:
		addr = api
	}
	return "echo " + remote.Quote(line) + " | socat stdio " + remote.Quote(addr)
}
