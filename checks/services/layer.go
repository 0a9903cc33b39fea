package services

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/sitectl/sitectl/adapters/netwatch"
	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/checks/layer"
	"github.com/sitectl/sitectl/inventory"
)

// Reach classifies a failure to reach a host over SSH (or run on it): a
// network-level failure (connect timeout, no route, refused, reset) is
// layer.SawDown; host keys, authentication, keys, agents and configuration are
// layer.SawAccess; anything else (a handshake or command that did not finish in
// time on a host that accepted the connection) is layer.SawNoAnswer. nil is
// layer.SawAlive.
func Reach(err error) layer.Saw {
	if err == nil {
		return layer.SawAlive
	}
	var he *remote.HostError
	if errors.As(err, &he) {
		switch he.Op {
		case remote.OpHostKey, remote.OpAuth:
			return layer.SawAccess
		case remote.OpDial:
			switch {
			case errors.Is(he.Err, remote.ErrUnknownHost):
				return layer.SawAccess // configuration: no such host in the inventory
			case netwatch.IsNetwork(he.Err) || networkErrno(he.Err):
				return layer.SawDown
			}
			return layer.SawNoAnswer
		case remote.OpHandshake:
			if networkErrno(he.Err) {
				return layer.SawDown // reset while the handshake ran
			}
			return layer.SawNoAnswer
		}
		return layer.SawNoAnswer
	}
	// not a connection attempt's own error (a deadline of ours, say): only
	// a remembered dead address or a network errno is evidence
	var de *netwatch.DeadError
	if errors.As(err, &de) || networkErrno(err) {
		return layer.SawDown
	}
	return layer.SawNoAnswer
}

func networkErrno(err error) bool {
	for _, e := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ETIMEDOUT, syscall.EHOSTDOWN} {
		if errors.Is(err, e) {
			return true
		}
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// layer.Evidence is the operator's own path to each host of a site.
func Evidence(s SiteStatus) []layer.Evidence {
	out := make([]layer.Evidence, 0, len(s.Hosts))
	for _, h := range s.Hosts {
		e := layer.Evidence{Site: s.Site, Observer: "operator → " + h.Host, At: s.Observed}
		switch {
		case h.Reachable:
			e.Saw, e.Detail = layer.SawAlive, "ssh answered"
		default:
			e.Saw, e.Detail = h.Reach, h.Error
			if e.Saw == "" {
				e.Saw = layer.SawNoAnswer
			}
		}
		out = append(out, e)
	}
	return out
}

// Verdict turns observed sites into the services layer's verdict.
func Verdict(sites []SiteStatus) layer.Verdict {
	l := layer.Verdict{Layer: layer.LayerServices}
	var active, unknown, unreachable, unseen []string
	for _, s := range sites {
		switch {
		case s.Core.Serving():
			active = append(active, s.Site)
		case s.Core == Undecided:
			unknown = append(unknown, s.Site)
		case s.Core == Unreachable && s.Loss.Down():
			unreachable = append(unreachable, s.Site)
		case s.Core == Unreachable:
			// not observed, loss not confirmed: it may be serving
			unknown = append(unknown, s.Site)
			unseen = append(unseen, s.LossSummary())
		}
		for _, svc := range s.Services() {
			l.Rows = append(l.Rows, layer.Row{Site: s.Site, Name: svc.Host + "/" + svc.Service, State: string(svc.State), Detail: svc.Error})
		}
	}
	switch {
	case len(active) > 1:
		l.State, l.Sites = layer.ServeSplit, active
		l.Detail = "core services run on sites " + strings.Join(active, " and ")
		l.Fix = "sitectl renounce --site <the site that must go passive>"
	case len(unknown) > 0:
		l.State = layer.ServeUnknown
		l.Detail = "service states unknown on site " + strings.Join(unknown, ", ")
		if len(unseen) > 0 {
			l.Detail += ": " + strings.Join(unseen, "; ")
		}
	case len(active) == 1:
		l.State, l.Site, l.Sites = layer.ServeOne, active[0], active
		l.Detail = "core services run on site " + active[0] + " only"
		if len(unreachable) > 0 {
			l.Notes = append(l.Notes, "site "+strings.Join(unreachable, ", ")+" is DOWN (its loss is confirmed by independent observers): it counts as not serving")
		}
		// a component failure on the active site: name it, and the runbook
		// that restarts it (takeover skips everything that already runs)
		for _, s := range sites {
			if s.Site != active[0] {
				continue
			}
			var down, sick []string
			for _, svc := range s.Services() {
				if svc.Group != string(inventory.Core) {
					continue
				}
				switch {
				case svc.State == Stopped:
					down = append(down, svc.Host+"/"+svc.Service)
				case svc.State == Running && !svc.Healthy():
					sick = append(sick, svc.Host+"/"+svc.Service)
				}
			}
			if len(down) > 0 {
				l.Detail = fmt.Sprintf("site %s is active but core service %s is not running", active[0], strings.Join(down, ", "))
				l.Notes = append(l.Notes, fmt.Sprintf("component failure on the active site %s: %s stopped; restart it with sitectl takeover --site %s (it skips what already runs), or look first: %s",
					active[0], strings.Join(down, ", "), active[0], "sitectl status --site "+active[0]))
				l.Fix = "sitectl takeover --site " + active[0]
			}
			if len(sick) > 0 {
				l.Notes = append(l.Notes, fmt.Sprintf("on the active site %s, %s runs but fails its health probe", active[0], strings.Join(sick, ", ")))
			}
		}
	case len(unreachable) > 0:
		l.State = layer.ServeNone
		l.Detail = "site " + strings.Join(unreachable, ", ") + " is DOWN (confirmed) and no other site runs its core services"
		l.Fix = "sitectl takeover --site <the surviving site>"
	default:
		l.State = layer.ServeNone
		l.Detail = "no site runs its core services"
		l.Fix = "sitectl takeover --site <site>"
	}
	return l
}
