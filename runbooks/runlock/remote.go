package runlock

import (
	"context"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
)

// Exit codes of the lock scripts.
const (
	exitHeld     = 73 // the lock exists; stdout is its content
	exitNoCreate = 74 // could not create the lock file; stderr says why
	exitMissing  = 3  // there is no lock
	exitOther    = 4  // the lock belongs to another run; stdout is its content
	exitChanged  = 75 // takeover: the lock changed since it was judged; stdout is its content
	exitBusy     = 76 // takeover: another takeover holds the token; stdout is the token
)

// busyRetry bounds how long TakeOverRemote waits for another takeover.
var busyRetry = 5 * time.Second

// RemoteLock is a lock file held on a host of the deployment.
type RemoteLock struct {
	r      remote.Runner
	host   string
	path   string
	holder Holder

	mu       sync.Mutex
	released bool
}

// Where is host:path.
func (l *RemoteLock) Where() string { return where(l.host, l.path) }

// Holder is the record written in the lock file.
func (l *RemoteLock) Holder() Holder { return l.holder }

func where(host, p string) string { return host + ":" + p }

func checkPath(p string) error {
	if p == "" || strings.ContainsRune(p, 0) {
		return fmt.Errorf("runlock: invalid remote lock path %q", p)
	}
	return nil
}

// run runs script with POSIX sh on the host, whatever the login shell is.
func run(ctx context.Context, r remote.Runner, host, p, op, script string) (remote.Result, error) {
	res, err := r.Run(ctx, "sh -c "+remote.Quote(script))
	if err != nil {
		return res, fmt.Errorf("runlock: %s %s: %w", op, where(host, p), err)
	}
	return res, nil
}

func scriptErr(host, p, op string, res remote.Result) error {
	msg := strings.TrimSpace(string(res.Stderr))
	if msg == "" {
		msg = strings.TrimSpace(string(res.Stdout))
	}
	return fmt.Errorf("runlock: %s %s: exit %d: %s", op, where(host, p), res.ExitCode, msg)
}

// createScript creates the lock with the shell's noclobber (O_EXCL) and
// exits 0; if the lock exists it prints it and exits exitHeld.
func createScript(p string, content []byte) string {
	q := shpath(p)
	return fmt.Sprintf(`set -C
umask 077
mkdir -p -- %s || exit %d
i=0
while [ "$i" -lt 3 ]; do
	if printf '%%s\n' %s > %s; then exit 0; fi
	if [ -e %s ]; then cat -- %s; exit %d; fi
	i=$((i+1))
done
exit %d`, shpath(path.Dir(p)), exitNoCreate, remote.Quote(string(content)), q, q, q, exitHeld, exitNoCreate)
}

// AcquireRemote takes the lock file path on host hostName through r. If it
// is held it returns a *HeldError naming host:path and the holder. If r
// fails (host unreachable, deadline) the error wraps r's error: whether to
// go on without the remote lock is the caller's decision.
func AcquireRemote(ctx context.Context, r remote.Runner, hostName, p string, h Holder) (*RemoteLock, error) {
	if err := checkPath(p); err != nil {
		return nil, err
	}
	if err := h.validate(); err != nil {
		return nil, err
	}
	if h.Since.IsZero() {
		h.Since = time.Now().UTC()
	}
	return acquireRemote(ctx, r, hostName, p, h, createScript(p, h.encode()))
}

func acquireRemote(ctx context.Context, r remote.Runner, host, p string, h Holder, script string) (*RemoteLock, error) {
	for attempt := 0; ; attempt++ {
		res, err := run(ctx, r, host, p, "lock", script)
		if err != nil {
			return nil, err
		}
		switch res.ExitCode {
		case 0:
			return &RemoteLock{r: r, host: host, path: p, holder: h}, nil
		case exitHeld, exitChanged:
			held, ok := heldFrom(host, p, res.Stdout)
			if ok || attempt == 2 {
				return nil, held
			}
			// Caught half-written (noclobber creates, then writes) or
			// just released: look again.
			select {
			case <-ctx.Done():
				return nil, held
			case <-time.After(time.Duration(attempt+1) * 50 * time.Millisecond):
			}
			script = createScript(p, h.encode())
		default:
			return nil, scriptErr(host, p, "lock", res)
		}
	}
}

func heldFrom(host, p string, content []byte) (*HeldError, bool) {
	h, err := decodeHolder(content)
	if err != nil {
		return &HeldError{Where: where(host, p), Detail: err.Error()}, false
	}
	return &HeldError{Holder: h, Where: where(host, p), Stale: IsStale(h)}, true
}

// Release removes the remote lock file if it still names this lock's run,
// checking and removing in one shell command. If it was broken or belongs
// to another run, it is left alone and the error wraps ErrNotOwner. A Runner
// failure is returned wrapped (the lock may still be there). Releasing twice
// is harmless.
func (l *RemoteLock) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil
	}
	q := shpath(l.path)
	mine := remote.Quote(`"run_id":` + string(mustJSON(l.holder.RunID)))
	script := fmt.Sprintf(`c=$(cat -- %s 2>/dev/null) || exit %d
case $c in
*%s*) rm -f -- %s || exit 1; exit 0;;
esac
printf '%%s' "$c"
exit %d`, q, exitMissing, mine, q, exitOther)
	res, err := run(ctx, l.r, l.host, l.path, "unlock", script)
	if err != nil {
		return err
	}
	switch res.ExitCode {
	case 0:
		l.released = true
		return nil
	case exitMissing:
		l.released = true
		return fmt.Errorf("%w: %s was removed by someone else (sitectl unlock?)", ErrNotOwner, l.Where())
	case exitOther:
		l.released = true
		h, derr := decodeHolder(res.Stdout)
		return fmt.Errorf("%w: %s now holds %s", ErrNotOwner, describe(h, derr), l.Where())
	}
	return scriptErr(l.host, l.path, "unlock", res)
}

// readRemote returns the raw lock content; exists is false when there is
// no lock.
func readRemote(ctx context.Context, r remote.Runner, host, p string) (content []byte, exists bool, err error) {
	q := shpath(p)
	// The lock can vanish between the test and the read (a takeover renames
	// it aside): a read that fails because the file is gone is "missing".
	script := fmt.Sprintf(`if [ -e %[1]s ]; then
  cat -- %[1]s 2>/dev/null && exit 0
  [ -e %[1]s ] || exit %[2]d
  exec cat -- %[1]s
fi
exit %[2]d`, q, exitMissing)
	res, err := run(ctx, r, host, p, "read lock", script)
	if err != nil {
		return nil, false, err
	}
	switch res.ExitCode {
	case 0:
		return res.Stdout, true, nil
	case exitMissing:
		return nil, false, nil
	}
	return nil, false, scriptErr(host, p, "read lock", res)
}

// ReadRemote returns the holder of the lock at host:path without taking it;
// the error wraps ErrNotLocked when there is none.
func ReadRemote(ctx context.Context, r remote.Runner, hostName, p string) (Holder, error) {
	if err := checkPath(p); err != nil {
		return Holder{}, err
	}
	b, ok, err := readRemote(ctx, r, hostName, p)
	if err != nil {
		return Holder{}, err
	}
	if !ok {
		return Holder{}, fmt.Errorf("%w: %s", ErrNotLocked, where(hostName, p))
	}
	h, err := decodeHolder(b)
	if err != nil {
		return Holder{}, fmt.Errorf("runlock: %s: %w", where(hostName, p), err)
	}
	return h, nil
}

// BreakRemote removes the lock at host:path whoever holds it (sitectl
// unlock), and a takeover token left by a killed takeover, and returns the
// holder it removed (zero if unreadable). The lock is renamed aside first,
// so the record returned is the one removed. The error wraps ErrNotLocked
// when there was no lock.
func BreakRemote(ctx context.Context, r remote.Runner, hostName, p string) (Holder, error) {
	if err := checkPath(p); err != nil {
		return Holder{}, err
	}
	q := shpath(p)
	t := shpath(p + ".broken." + randHex())
	script := fmt.Sprintf(`if ! mv -f -- %s %s 2>/dev/null; then
	[ -e %s ] || exit %d
	mv -f -- %s %s || exit 1
fi
rm -f -- %s
cat -- %s
rm -f -- %s`, q, t, q, exitMissing, q, t, shpath(tokenPath(p)), t, t)
	res, err := run(ctx, r, hostName, p, "break lock", script)
	if err != nil {
		return Holder{}, err
	}
	switch res.ExitCode {
	case 0:
		h, _ := decodeHolder(res.Stdout)
		return h, nil
	case exitMissing:
		return Holder{}, fmt.Errorf("%w: %s", ErrNotLocked, where(hostName, p))
	}
	return Holder{}, scriptErr(hostName, p, "break lock", res)
}

// TakeOverRemote replaces the lock at host:path with one held by h, under the
// same rule as TakeOverLocal: the present holder is stale (its sitectl
// process is gone from this machine) or is the run being resumed and not
// verifiably alive here. It returns the previous holder (zero if there was
// no lock). Takeovers are serialised by a token file (<path>.takeover,
// created with noclobber, removed when the command exits) and the record is
// re-checked under it, so two concurrent takeovers cannot both win.
func TakeOverRemote(ctx context.Context, r remote.Runner, hostName, p string, h Holder, resumeOf string) (*RemoteLock, Holder, error) {
	if err := checkPath(p); err != nil {
		return nil, Holder{}, err
	}
	if err := h.validate(); err != nil {
		return nil, Holder{}, err
	}
	if h.Since.IsZero() {
		h.Since = time.Now().UTC()
	}
	old, exists, err := readRemote(ctx, r, hostName, p)
	if err != nil {
		return nil, Holder{}, err
	}
	if !exists {
		l, err := AcquireRemote(ctx, r, hostName, p, h)
		return l, Holder{}, err
	}
	prev, derr := decodeHolder(old)
	if derr != nil {
		return nil, Holder{}, &HeldError{Where: where(hostName, p), Detail: derr.Error()}
	}
	if !mayTakeOver(prev, resumeOf) {
		return nil, Holder{}, &HeldError{Holder: prev, Where: where(hostName, p), Stale: IsStale(prev)}
	}
	script := takeOverScript(p, old, h.encode())
	deadline := time.Now().Add(busyRetry)
	for {
		res, err := run(ctx, r, hostName, p, "take over lock", script)
		if err != nil {
			return nil, Holder{}, err
		}
		switch res.ExitCode {
		case 0:
			return &RemoteLock{r: r, host: hostName, path: p, holder: h}, prev, nil
		case exitHeld, exitChanged:
			held, ok := heldFrom(hostName, p, res.Stdout)
			if ok {
				return nil, Holder{}, held
			}
			// Someone else's lock, caught half-written: read it again.
			l, err := acquireRemote(ctx, r, hostName, p, h, createScript(p, h.encode()))
			return l, Holder{}, err
		case exitBusy:
			if time.Now().After(deadline) {
				return nil, Holder{}, fmt.Errorf("runlock: take over %s: another takeover has been in progress for %s (token %s: %s); if none is, break the lock with: sitectl unlock --reason \"...\"",
					where(hostName, p), busyRetry, tokenPath(p), strings.TrimSpace(string(res.Stdout)))
			}
			select {
			case <-ctx.Done():
				return nil, Holder{}, fmt.Errorf("runlock: take over %s: %w", where(hostName, p), ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		default:
			return nil, Holder{}, scriptErr(hostName, p, "take over lock", res)
		}
	}
}

// tokenPath is the file that serialises takeovers of the lock at p.
func tokenPath(p string) string { return p + ".takeover" }

// takeOverScript, in one shell command: take the takeover token (noclobber;
// removed on exit), check that the lock still holds exactly old, remove it
// and create ours. Under the token no other takeover can act between the
// check and the removal.
func takeOverScript(p string, old, content []byte) string {
	q, tok := shpath(p), shpath(tokenPath(p))
	return fmt.Sprintf(`set -C
umask 077
i=0
until printf '%%s\n' %s > %s; do
	if [ -e %s ]; then cat -- %s; exit %d; fi
	i=$((i+1))
	[ "$i" -lt 3 ] || exit %d
done
trap %s EXIT
trap 'exit 1' HUP INT TERM
if [ -e %s ]; then
	c=$(cat -- %s)
	if [ "$c" != %s ]; then printf '%%s' "$c"; exit %d; fi
	rm -f -- %s || exit 1
fi
%s`, remote.Quote(string(content)), tok, tok, tok, exitBusy, exitNoCreate,
		remote.Quote("rm -f -- "+tok), q, q, remote.Quote(strings.TrimRight(string(old), "\n")), exitChanged, q, createScript(p, content))
}
