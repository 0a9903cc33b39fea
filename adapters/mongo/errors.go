package mongo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	mdrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

// ErrorKind says why a member could not be observed or a command failed.
type ErrorKind string

const (
	KindTimeout  ErrorKind = "timeout"  // no answer within the deadline
	KindRefused  ErrorKind = "refused"  // connection refused: nothing listens there
	KindNetwork  ErrorKind = "network"  // other network failure (unreachable, reset, DNS)
	KindAuth     ErrorKind = "auth"     // authentication failed (18) or not authorized (13)
	KindCommand  ErrorKind = "command"  // the member answered with a command error (Code, CodeName)
	KindProtocol ErrorKind = "protocol" // the answer was not a usable MongoDB reply (garbage, cut short, unexpected document)
)

// Server error codes sitectl acts on (mongodb/mongo:src/mongo/base/error_codes.yml).
const (
	CodeBadValue                  = 2
	CodeUnauthorized              = 13
	CodeAuthenticationFailed      = 18
	CodeNodeNotFound              = 74
	CodeShutdownInProgress        = 91
	CodeInvalidReplicaSetConfig   = 93
	CodeNotYetInitialized         = 94
	CodeCommandFailed             = 125
	CodePrimarySteppedDown        = 189
	CodeExceededTimeLimit         = 262
	CodeNotWritablePrimary        = 10107
	CodeInterruptedDueToReplState = 11602
	CodeInterruptedAtShutdown     = 11600
)

// MemberError is a failure talking to one member.
type MemberError struct {
	Kind     ErrorKind `json:"kind"`
	Member   string    `json:"member"`
	Address  string    `json:"address"`
	Command  string    `json:"command"` // connect, hello, replSetGetStatus, …
	Code     int32     `json:"code,omitempty"`
	CodeName string    `json:"code_name,omitempty"`
	Message  string    `json:"message"` // the cause, password-free
	Err      error     `json:"-"`
}

func (e *MemberError) Error() string {
	what := string(e.Kind)
	switch e.Kind {
	case KindTimeout:
		what = "no answer in time"
	case KindRefused:
		what = "connection refused (is mongod running there?)"
	case KindAuth:
		what = "authentication failed"
		if e.Code == CodeUnauthorized {
			what = "not authorized"
		}
	case KindCommand:
		what = fmt.Sprintf("command error %d (%s)", e.Code, e.CodeName)
	case KindProtocol:
		what = "unusable reply"
	case KindNetwork:
		what = "network error"
	}
	return fmt.Sprintf("mongodb member %s (%s): %s: %s: %s", e.Member, e.Address, e.Command, what, e.Message)
}

func (e *MemberError) Unwrap() error { return e.Err }

// classify turns a driver or network error into a MemberError.
func classify(err error, m Member, command string, creds Credentials, timeout time.Duration) *MemberError {
	e := &MemberError{Member: m.Name, Address: m.Address, Command: command, Err: err}
	e.Kind, e.Code, e.CodeName = kindOf(err)
	msg := err.Error()
	if e.Kind == KindTimeout && (errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "server selection")) {
		msg = fmt.Sprintf("no answer within %s (%s)", timeout, msg)
	}
	e.Message = creds.redact(msg)
	return e
}

func kindOf(err error) (ErrorKind, int32, string) {
	var ce mdrv.CommandError
	if errors.As(err, &ce) {
		switch ce.Code {
		case CodeAuthenticationFailed, CodeUnauthorized:
			return KindAuth, ce.Code, ce.Name
		}
		if ce.Code != 0 || ce.Name != "" {
			return KindCommand, ce.Code, ce.Name
		}
	}
	var se mdrv.ServerError
	if errors.As(err, &se) {
		for _, c := range []int32{CodeAuthenticationFailed, CodeUnauthorized} {
			if se.HasErrorCode(int(c)) {
				return KindAuth, c, ""
			}
		}
	}
	if strings.Contains(err.Error(), "auth error") {
		return KindAuth, 0, ""
	}
	var sel topology.ServerSelectionError
	if errors.As(err, &sel) {
		for _, s := range sel.Desc.Servers {
			if s.LastError != nil {
				if k, c, n := kindOf(s.LastError); k != KindTimeout || c != 0 {
					return k, c, n
				}
			}
		}
		return KindTimeout, 0, ""
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindRefused, 0, ""
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), mdrv.IsTimeout(err):
		return KindTimeout, 0, ""
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return KindTimeout, 0, ""
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return KindProtocol, 0, "" // the member closed the connection before a whole reply
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return KindNetwork, 0, ""
	}
	return KindProtocol, 0, ""
}

// Sentinels wrapped by ActionError.
var (
	ErrNoPrimary     = errors.New("no writable primary")
	ErrDeadline      = errors.New("deadline exceeded before the expected state was observed")
	ErrNotConfirmed  = errors.New("forced reconfig not confirmed by the operator")
	ErrPrimaryExists = errors.New("a writable primary exists")
	ErrUnknownMember = errors.New("no such member in the inventory")
	ErrNotCaughtUp   = errors.New("no electable secondary caught up")
	ErrNotElectable  = errors.New("member cannot become primary")
)

// ActionError is a failed action: what was expected, what was observed and
// where, plus what to do about it.
type ActionError struct {
	Action   string `json:"action"` // wait-primary, move-primary, force-promote
	Expected string `json:"expected"`
	Observed string `json:"observed"`
	Where    string `json:"where,omitempty"`
	Hint     string `json:"hint,omitempty"`
	Err      error  `json:"-"`
}

func (e *ActionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mongodb %s: expected %s; observed %s", e.Action, e.Expected, e.Observed)
	if e.Where != "" {
		fmt.Fprintf(&b, " (at %s)", e.Where)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Hint != "" {
		b.WriteString(". " + e.Hint)
	}
	return b.String()
}

func (e *ActionError) Unwrap() error { return e.Err }
