package checks

import (
	"fmt"
	"strings"

	"github.com/sitectl/sitectl/checks/services"
)

// Invariant is the verdict of "two sites are never active at once".
type Invariant struct {
	Holds   bool     `json:"holds"`
	Known   bool     `json:"known"`
	Active  []string `json:"active"` // sites serving (active or partial)
	Message string   `json:"message"`
}

// CheckNotBothActive evaluates the invariant over observed sites (core group).
func CheckNotBothActive(sites []services.SiteStatus) Invariant {
	var active, unknown, unseen []string
	for _, s := range sites {
		switch {
		case s.Core.Serving():
			active = append(active, s.Site)
		case s.Core == services.Undecided:
			unknown = append(unknown, s.Site)
		case s.Core == services.Unreachable && !s.Loss.Down():
			// not observed and its loss not confirmed: it may be serving
			unknown = append(unknown, s.Site)
			unseen = append(unseen, s.LossSummary())
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
		if len(unseen) > 0 {
			inv.Message = fmt.Sprintf("cannot tell whether site %s is active: %s", strings.Join(unknown, ", "), strings.Join(unseen, "; "))
		}
	default:
		inv.Holds, inv.Known = true, true
		switch len(active) {
		case 0:
			inv.Message = "no site is active"
		default:
			inv.Message = fmt.Sprintf("only site %s is active", active[0])
		}
		for _, s := range sites {
			if s.Core == services.Unreachable {
				inv.Message += fmt.Sprintf(" (site %s is DOWN, confirmed by %d independent observers)", s.Site, s.Loss.Confirmed)
			}
		}
	}
	return inv
}
