package activemq

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// Ops used in Error.Op.
const (
	OpCredentials = "credentials" // the inventory's credentials could not be read
	OpDial        = "dial"        // TCP connect to the STOMP port
	OpConnect     = "connect"     // STOMP CONNECT/CONNECTED handshake
	OpAuth        = "auth"        // the broker refused the login
	OpSubscribe   = "subscribe"   // subscribing to the advisory topics
	OpRead        = "read"        // the connection failed while reading advisories
)

var (
	// ErrAuth matches an Error whose Op is OpAuth: the broker refused the
	// credentials (or anonymous access).
	ErrAuth = errors.New("authentication refused by the broker")
	// ErrRefused matches an Error whose dial was refused: nothing listens
	// on the STOMP port, the broker is down.
	ErrRefused = errors.New("connection refused: the broker is not listening")
	// ErrTimeout matches an Error that ran out of time (dial, handshake).
	ErrTimeout = errors.New("timed out")
)

// Error is why a broker could not be observed. Its text names the broker
// and its address and never holds the password.
type Error struct {
	Broker  string // inventory name
	Address string // STOMP host:port
	Op      string // OpDial, OpAuth, …
	Err     error

	timeout bool
}

func (e *Error) Error() string {
	return fmt.Sprintf("activemq broker %s (stomp %s): %s: %v", e.Broker, e.Address, e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Is lets errors.Is match ErrAuth, ErrRefused and ErrTimeout.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrAuth:
		return e.Op == OpAuth
	case ErrRefused:
		return e.Op == OpDial && errors.Is(e.Err, syscall.ECONNREFUSED)
	case ErrTimeout:
		return e.timeout
	}
	return false
}

// Down reports whether the error says the broker is certainly not running
// (its STOMP port refused the connection), as opposed to "could not tell"
// (timeout, no route, authentication, protocol error).
func (e *Error) Down() bool { return e.Is(ErrRefused) }

// IsDown reports whether err is an *Error saying the broker is down.
func IsDown(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Down()
}

// textError is an error whose text has been scrubbed of secrets; it drops
// the original (a stomp.Error carries the whole ERROR frame).
type textError struct{ s string }

func (e textError) Error() string { return e.s }

// scrub removes the password from s. Short passwords are masked too: a
// garbled message is better than a leaked secret.
func scrub(s, password string) string {
	if password == "" {
		return s
	}
	return strings.ReplaceAll(s, password, "********")
}

// authFailure reports whether an ERROR frame's message is ActiveMQ refusing
// the login ("User name [x] or password is invalid.", SecurityException,
// "not authorized", …).
func authFailure(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range []string{"password is invalid", "user name", "securityexception", "not authorized", "authentication", "access denied", "access refused", "credentials"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}
