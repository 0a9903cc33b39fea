package checks

import (
	"fmt"
	"sort"
	"strings"

	"github.com/sitectl/sitectl/inventory"
)

// Verdict combines the layers: exactly one site serves, none, or split.
type Verdict struct {
	State   string         `json:"state"` // one, none, split, unknown
	Site    string         `json:"site,omitempty"`
	Summary string         `json:"summary"`
	Layers  []LayerVerdict `json:"layers"`
	Fixes   []string       `json:"fixes,omitempty"`
}

// Serves reports whether site alone serves traffic.
func (v Verdict) Serves(site string) bool { return v.State == ServeOne && v.Site == site }

// Combine folds layer verdicts into one. A layer that could not be observed
// makes the whole verdict unknown (never healthy); layers that name
// different sites, or a layer that is split, make it split, unless the
// disagreement rests only on an unverified layer (LayerVerdict.Unverified):
// then it is unknown.
func Combine(layers []LayerVerdict) Verdict {
	t := tallyLayers(layers)
	v := Verdict{Layers: layers, Fixes: t.fixes}
	v.judge(t)
	return v
}

// layerTally is the layers summed up by state: the layers unknown, split,
// none, partial and unverified; the layers naming each site (serving,
// sites in order) and the sites a verified layer names; and the layers'
// fixes.
type layerTally struct {
	unknown, split, none, partial, unverified []string
	serving                                   map[string][]string
	verified                                  map[string]bool
	sites                                     []string
	fixes                                     []string
}

// tallyLayers sums the layers up. A neutral layer names no site; an
// unverified one is marked so.
func tallyLayers(layers []LayerVerdict) layerTally {
	t := layerTally{serving: map[string][]string{}, verified: map[string]bool{}}
	for _, l := range layers {
		if l.Unverified && (l.State == ServeOne || l.State == ServePartial || l.State == ServeSplit) && !l.Neutral {
			t.unverified = append(t.unverified, l.Layer)
		} else if (l.State == ServeOne || l.State == ServePartial) && !l.Neutral && l.Site != "" {
			t.verified[l.Site] = true
		}
		switch l.State {
		case ServeUnknown:
			t.unknown = append(t.unknown, l.Layer)
		case ServeSplit:
			if l.Unverified {
				for _, s := range l.Sites {
					t.serving[s] = append(t.serving[s], l.Layer+" (unverified)")
				}
				break
			}
			t.split = append(t.split, l.Layer)
		case ServeNone:
			t.none = append(t.none, l.Layer)
		case ServePartial:
			t.partial = append(t.partial, l.Layer)
			if !l.Neutral && l.Site != "" {
				t.serving[l.Site] = append(t.serving[l.Site], l.Layer+" (partly)"+unverifiedMark(l))
			}
		case ServeOne:
			if !l.Neutral {
				t.serving[l.Site] = append(t.serving[l.Site], l.Layer+unverifiedMark(l))
			}
		}
		if l.Fix != "" && l.State != ServeOne {
			t.fixes = append(t.fixes, fmt.Sprintf("%s: %s", l.Layer, l.Fix))
		}
	}
	t.sites = make([]string, 0, len(t.serving))
	for s := range t.serving {
		t.sites = append(t.sites, s)
	}
	sort.Strings(t.sites)
	return t
}

// judge sets the verdict's state and summary from the tally: unknown when
// the layers disagree only through unverified ones, split, unknown, one,
// partial, else none.
func (v *Verdict) judge(t layerTally) {
	switch {
	case len(t.split) == 0 && len(t.sites) > 1 && len(t.verified) <= 1 && len(t.unverified) > 0:
		// the layers disagree only through what could not be verified
		v.State = ServeUnknown
		var parts []string
		for _, s := range t.sites {
			parts = append(parts, fmt.Sprintf("%s per %s", s, strings.Join(t.serving[s], ", ")))
		}
		v.Summary = "UNKNOWN: cannot tell who serves: the layers disagree (" + strings.Join(parts, "; ") + "), but " +
			strings.Join(t.unverified, ", ") + " rests on what could not be observed"
	case len(t.split) > 0 || len(t.sites) > 1:
		v.State = ServeSplit
		var parts []string
		for _, s := range t.sites {
			parts = append(parts, fmt.Sprintf("%s per %s", s, strings.Join(t.serving[s], ", ")))
		}
		for _, l := range t.split {
			parts = append(parts, l+" is split")
		}
		v.Summary = "SPLIT: the layers disagree: " + strings.Join(parts, "; ")
		if len(t.none) > 0 {
			v.Summary += "; none per " + strings.Join(t.none, ", ")
		}
	case len(t.unknown) > 0:
		v.State = ServeUnknown
		v.Summary = "UNKNOWN: cannot tell who serves: " + strings.Join(t.unknown, ", ") + " could not be observed"
		if len(t.sites) == 1 {
			v.Summary += fmt.Sprintf(" (the other layers say site %s)", t.sites[0])
		}
	case len(t.sites) == 1 && len(t.none) == 0 && len(t.partial) == 0:
		v.State, v.Site = ServeOne, t.sites[0]
		v.Summary = fmt.Sprintf("site %s serves traffic (every layer agrees)", t.sites[0])
	case len(t.sites) == 1:
		// One site and nothing else: part of the traffic is not served,
		// but nothing is active twice.
		v.State, v.Site = ServePartial, t.sites[0]
		v.Summary = fmt.Sprintf("PARTIAL: site %s per %s", t.sites[0], strings.Join(t.serving[t.sites[0]], ", "))
		if len(t.none) > 0 {
			v.Summary += ", but no site per " + strings.Join(t.none, ", ")
		}
	default:
		v.State = ServeNone
		v.Summary = "no site serves traffic"
		if len(t.partial) > 0 { // partial layers of neutral sites only
			v.Summary += " (partly per " + strings.Join(t.partial, ", ") + ")"
		}
	}
}

func unverifiedMark(l LayerVerdict) string {
	if l.Unverified {
		return " (unverified)"
	}
	return ""
}

// ServicesLayer turns observed sites into the services layer's verdict.
func ServicesLayer(sites []SiteStatus) LayerVerdict {
	l := LayerVerdict{Layer: LayerServices}
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
			unseen = append(unseen, lossSummary(s))
		}
		for _, svc := range s.Services() {
			l.Rows = append(l.Rows, Row{Site: s.Site, Name: svc.Host + "/" + svc.Service, State: string(svc.State), Detail: svc.Error})
		}
	}
	switch {
	case len(active) > 1:
		l.State, l.Sites = ServeSplit, active
		l.Detail = "core services run on sites " + strings.Join(active, " and ")
		l.Fix = "sitectl renounce --site <the site that must go passive>"
	case len(unknown) > 0:
		l.State = ServeUnknown
		l.Detail = "service states unknown on site " + strings.Join(unknown, ", ")
		if len(unseen) > 0 {
			l.Detail += ": " + strings.Join(unseen, "; ")
		}
	case len(active) == 1:
		l.State, l.Site, l.Sites = ServeOne, active[0], active
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
		l.State = ServeNone
		l.Detail = "site " + strings.Join(unreachable, ", ") + " is DOWN (confirmed) and no other site runs its core services"
		l.Fix = "sitectl takeover --site <the surviving site>"
	default:
		l.State = ServeNone
		l.Detail = "no site runs its core services"
		l.Fix = "sitectl takeover --site <site>"
	}
	return l
}
