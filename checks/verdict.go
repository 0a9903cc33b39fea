package checks

import (
	"fmt"
	"sort"
	"strings"
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
