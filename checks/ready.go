package checks

import (
	"fmt"
	"strings"

	"github.com/sitectl/sitectl/checks/services"
)

// Readiness is the answer to "is this site ready for takeover?".
type Readiness struct {
	Site    string   `json:"site"`
	Ready   bool     `json:"ready"`
	Reasons []string `json:"reasons"` // why not (or, when ready, notes)
	Notes   []string `json:"notes,omitempty"`
}

// ReadyForTakeover evaluates the services layer: every host of the target
// answers, every status is known, and the other site is not serving, or
// does not answer here and its loss is confirmed by independent observers
// (DOWN); UNREACHABLE FROM HERE and UNKNOWN are reasons not to take over.
func ReadyForTakeover(sites []services.SiteStatus, target string) Readiness {
	r := Readiness{Site: target, Ready: true}
	no := func(f string, a ...any) { r.Ready = false; r.Reasons = append(r.Reasons, fmt.Sprintf(f, a...)) }
	found := false
	for _, s := range sites {
		if s.Site == target {
			found = true
			for _, h := range s.Hosts {
				if !h.Reachable {
					no("host %s of site %s does not answer: %s", h.Host, s.Site, h.Error)
					continue
				}
				for _, svc := range h.Services {
					if svc.State == services.Unknown {
						no("%s/%s on site %s: state unknown (%s)", h.Host, svc.Service, s.Site, svc.Error)
					}
				}
			}
			continue
		}
		switch s.Core {
		case services.Active, services.Partial:
			no("site %s is still active (running %s): renounce it first (sitectl renounce --site %s) or use sitectl switchover --site %s", s.Site, strings.Join(s.Running("core"), ", "), s.Site, target)
		case services.Undecided:
			no("cannot tell whether site %s is active; inspect: sitectl status --site %s", s.Site, s.Site)
		case services.Unreachable:
			switch {
			case s.Loss.Down():
				r.Notes = append(r.Notes, s.Loss.Summary+": a takeover fences it first (sites[].fence), or says it is not fenced")
			default:
				no("%s; a takeover would risk two active sites (inspect: sitectl status --site %s)", s.LossSummary(), s.Site)
			}
			if s.Loss != nil {
				for _, l := range s.Loss.Lines() {
					r.Notes = append(r.Notes, "evidence of site "+s.Site+": "+l)
				}
			}
		}
	}
	if !found {
		no("no site %q", target)
	}
	return r
}

// ReadyWithVerdict adds the other layers' view to a services readiness:
// another site serving per any layer, or a layer split, is a reason not to
// take over; unknown layers are noted.
func ReadyWithVerdict(r Readiness, v Verdict, target string) Readiness {
	for _, l := range v.Layers {
		if l.Layer == LayerServices {
			continue
		}
		switch {
		case l.State == ServeSplit:
			r.Ready = false
			r.Reasons = append(r.Reasons, fmt.Sprintf("%s is split: %s", l.Layer, l.Detail))
		case (l.State == ServeOne || l.State == ServePartial) && l.Site != target && l.Layer == LayerHAProxy:
			r.Notes = append(r.Notes, fmt.Sprintf("haproxy still sends traffic to site %s: takeover sets site %s's servers ready; renounce --site %s drains them", l.Site, target, l.Site))
		case l.Access != "":
			r.Ready = false
			r.Reasons = append(r.Reasons, fmt.Sprintf("%s could not be observed: access problem: %s (fix the access, then look again)", l.Layer, l.Access))
		case l.State == ServeUnknown:
			r.Ready = false
			r.Reasons = append(r.Reasons, fmt.Sprintf("%s could not be observed: %s", l.Layer, l.Detail))
		}
		for _, n := range l.Notes {
			r.Notes = append(r.Notes, l.Layer+": "+n)
		}
	}
	return r
}
