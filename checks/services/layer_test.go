package services

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/sitectl/sitectl/adapters/netwatch"
	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/checks/layer"
)

func TestReach(t *testing.T) {
	he := func(op string, err error) error {
		return &remote.HostError{Host: "a-app", Addr: "10.0.0.1:22", Op: op, Err: err}
	}
	dialTimeout := &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}
	cases := []struct {
		name string
		err  error
		want layer.Saw
	}{
		{"nil", nil, layer.SawAlive},
		{"dial timeout", he(remote.OpDial, dialTimeout), layer.SawDown},
		{"refused", he(remote.OpDial, &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), layer.SawDown},
		{"no route", he(remote.OpDial, syscall.EHOSTUNREACH), layer.SawDown},
		{"remembered dead", he(remote.OpDial, &netwatch.DeadError{Addr: "x", Last: dialTimeout}), layer.SawDown},
		{"host key", he(remote.OpHostKey, &remote.HostKeyError{Mismatch: true}), layer.SawAccess},
		{"auth", he(remote.OpAuth, errors.New("unable to authenticate")), layer.SawAccess},
		{"unknown host", he(remote.OpDial, remote.ErrUnknownHost), layer.SawAccess},
		{"slow handshake", he(remote.OpHandshake, errors.New("no complete SSH handshake within 5s")), layer.SawNoAnswer},
		{"slow after the banner", he(remote.OpHandshake, fmt.Errorf("%w: %w", remote.ErrSlowHandshake, &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}})), layer.SawNoAnswer},
		{"no banner", he(remote.OpHandshake, fmt.Errorf("%w: %w", remote.ErrNoBanner, &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}})), layer.SawNoAnswer},
		{"reset in handshake", he(remote.OpHandshake, syscall.ECONNRESET), layer.SawDown},
		{"command failed", he(remote.OpRun, errors.New("exit")), layer.SawNoAnswer},
		{"our own deadline", fmt.Errorf("a-app: no answer within 10s: %w", errTestDeadline), layer.SawNoAnswer},
	}
	for _, tc := range cases {
		if got := Reach(tc.err); got != tc.want {
			t.Errorf("%s: Reach = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestServicesLayer(t *testing.T) {
	site := func(name string, core Activity) SiteStatus { return SiteStatus{Site: name, Core: core} }
	lost := func(name string, st layer.SiteState) SiteStatus {
		return SiteStatus{Site: name, Core: Unreachable, Loss: &layer.SiteVerdict{Site: name, State: st, Summary: "site " + name + " " + string(st)}}
	}
	cases := []struct {
		name  string
		sites []SiteStatus
		state string
		site  string
	}{
		{"A active", []SiteStatus{site("A", Active), site("B", Passive)}, layer.ServeOne, "A"},
		{"partial counts", []SiteStatus{site("A", Passive), site("B", Partial)}, layer.ServeOne, "B"},
		{"both", []SiteStatus{site("A", Active), site("B", Partial)}, layer.ServeSplit, ""},
		{"none", []SiteStatus{site("A", Passive), site("B", Passive)}, layer.ServeNone, ""},
		// a site that does not answer counts as not serving only when its
		// loss is confirmed: otherwise it may be serving
		{"A cut off, loss not judged, B active: unknown", []SiteStatus{site("A", Unreachable), site("B", Active)}, layer.ServeUnknown, ""},
		{"A unreachable from here, B active: unknown", []SiteStatus{lost("A", layer.SiteUnreachableHere), site("B", Active)}, layer.ServeUnknown, ""},
		{"A loss unknown, B active: unknown", []SiteStatus{lost("A", layer.SiteUnknown), site("B", Active)}, layer.ServeUnknown, ""},
		{"A DOWN, B active", []SiteStatus{lost("A", layer.SiteDown), site("B", Active)}, layer.ServeOne, "B"},
		{"A DOWN, B passive: none", []SiteStatus{lost("A", layer.SiteDown), site("B", Passive)}, layer.ServeNone, ""},
		{"A cut off, B passive: unknown", []SiteStatus{site("A", Unreachable), site("B", Passive)}, layer.ServeUnknown, ""},
		{"undecided", []SiteStatus{site("A", Undecided), site("B", Passive)}, layer.ServeUnknown, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := Verdict(tc.sites)
			if l.State != tc.state || l.Site != tc.site {
				t.Errorf("got %s %q (%s)", l.State, l.Site, l.Detail)
			}
		})
	}
}

func TestServicesLayerComponentFailure(t *testing.T) {
	svc := func(name string, st State, probeOK bool) ServiceStatus {
		s := ServiceStatus{Host: "a-app", Service: name, Group: "core", Passive: "stopped", State: st}
		if st == Running {
			s.Probe = &ProbeResult{OK: probeOK}
		}
		return s
	}
	sites := []SiteStatus{
		{Site: "A", Core: Partial, Hosts: []HostStatus{{Host: "a-app", Reachable: true, Services: []ServiceStatus{
			svc("comms", Running, true), svc("mre", Running, false), svc("chat", Stopped, false)}}}},
		{Site: "B", Core: Passive},
	}
	l := Verdict(sites)
	if l.State != layer.ServeOne || l.Site != "A" {
		t.Fatalf("got %s %q, want one A", l.State, l.Site)
	}
	notes := strings.Join(l.Notes, "\n")
	for _, want := range []string{"component failure on the active site A: a-app/chat stopped", "sitectl takeover --site A", "a-app/mre runs but fails its health probe"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if !strings.Contains(l.Detail, "a-app/chat is not running") || l.Fix != "sitectl takeover --site A" {
		t.Errorf("detail %q fix %q", l.Detail, l.Fix)
	}
	// all up: no such note
	sites[0].Hosts[0].Services = []ServiceStatus{svc("comms", Running, true), svc("chat", Running, true)}
	if l := Verdict(sites); len(l.Notes) != 0 || l.Fix != "" {
		t.Errorf("healthy site A: notes %q fix %q", l.Notes, l.Fix)
	}
}

// timeoutErr is a net.Error that timed out.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var errTestDeadline = timeoutErr{}
