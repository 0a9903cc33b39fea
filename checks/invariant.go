package checks

import (
	"fmt"
	"strings"
)

// Invariant is the verdict of "two sites are never active at once".
type Invariant struct {
	Holds   bool     `json:"holds"`
	Known   bool     `json:"known"`
	Active  []string `json:"active"` // sites serving (active or partial)
	Message string   `json:"message"`
}

// CheckNotBothActive evaluates the invariant over observed sites (core group).
func CheckNotBothActive(sites []SiteStatus) Invariant {
	var active, unknown []string
	for _, s := range sites {
		switch {
		case s.Core.Serving():
			active = append(active, s.Site)
		case s.Core == Undecided:
			unknown = append(unknown, s.Site)
		}
	}
	inv := Invariant{Active: active}
	switch {
	case len(active) >= 2:
		inv.Known = true
		var parts []string
		for _, s := range sites {
			parts = append(parts, fmt.Sprintf("%s runs %s", s.Site, strings.Join(s.Running("core"), ", ")))
		}
		inv.Message = fmt.Sprintf("SPLIT: sites %s are both active (%s)", strings.Join(active, " and "), strings.Join(parts, "; "))
	case len(unknown) > 0:
		inv.Message = fmt.Sprintf("cannot tell whether site %s is active: some service states are unknown", strings.Join(unknown, ", "))
	default:
		inv.Holds, inv.Known = true, true
		switch len(active) {
		case 0:
			inv.Message = "no site is active"
		default:
			inv.Message = fmt.Sprintf("only site %s is active", active[0])
		}
	}
	return inv
}
