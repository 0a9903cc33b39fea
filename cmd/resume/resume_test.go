package resume

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/runbooks"
)

func TestWaitInFlight(t *testing.T) {
	now := time.Now()
	remote := func(ends time.Duration) runbooks.InFlight {
		return runbooks.InFlight{Task: "start-chat/a-app/chat", Host: "a-app", Command: "/svc/chat/start", Last: now.Add(-time.Second), EndsBy: now.Add(ends)}
	}
	local := runbooks.InFlight{Task: "wait-mongodb/mongodb", Last: now, EndsBy: now, Local: true}
	cases := []struct {
		name     string
		tasks    []runbooks.InFlight
		noWait   bool
		wait     time.Duration // the wait asked for (0: none)
		want     []string
		wantNone []string
	}{
		{"nothing in flight", nil, false, 0, nil, []string{"in flight"}},
		{"a layer step ended with sitectl", []runbooks.InFlight{local}, false, 0,
			[]string{"1 step(s) in flight", "wait-mongodb/mongodb: ran inside sitectl and ended with it"}, []string{"waiting"}},
		{"a remote command past its deadline", []runbooks.InFlight{remote(-time.Second)}, false, 0,
			[]string{"has been ended by the host"}, []string{"waiting"}},
		{"a remote command still within its deadline is waited for", []runbooks.InFlight{local, remote(400 * time.Millisecond)}, false, 400 * time.Millisecond,
			[]string{"2 step(s) in flight", "start-chat/a-app/chat on a-app: its command may still be running there until", "/svc/chat/start", "waiting "}, nil},
		{"--no-wait says it does not wait", []runbooks.InFlight{remote(5 * time.Second)}, true, 0,
			[]string{"--no-wait: not waiting 5s", "may act beside a command still running"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			io, _, _, errOut := cmdutil.Test()
			var waited time.Duration
			opts := &Options{F: &cmdutil.Factory{IO: io, Now: func() time.Time { return now }}, Run: "r1", NoWait: c.noWait,
				Sleep: func(_ context.Context, d time.Duration) error { waited += d; return nil }}
			if err := waitInFlight(t.Context(), opts, c.tasks); err != nil {
				t.Fatal(err)
			}
			if waited != c.wait {
				t.Errorf("waited %s, want %s", waited, c.wait)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, errOut)
				}
			}
			for _, w := range c.wantNone {
				if strings.Contains(errOut.String(), w) {
					t.Errorf("output has %q:\n%s", w, errOut)
				}
			}
		})
	}
	// Ctrl-C ends the wait
	io, _, _, _ := cmdutil.Test()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := waitInFlight(ctx, &Options{F: &cmdutil.Factory{IO: io, Now: time.Now}, Run: "r1"}, []runbooks.InFlight{{Task: "x", Host: "h", EndsBy: time.Now().Add(time.Minute)}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled wait: %v", err)
	}
}
