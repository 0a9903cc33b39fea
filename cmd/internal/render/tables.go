package render

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/checks/services"
)

// WriteSites prints a table of every site's hosts and services.
func WriteSites(w io.Writer, sites []services.SiteStatus) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tROLE\tCORE\tREPORTING\tHOST\tSERVICE\tSTATE\tDETAIL")
	for _, s := range sites {
		first := true
		for _, h := range s.Hosts {
			if !h.Reachable {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", col(first, s.Site), col(first, s.Role), col(first, string(s.Core)), col(first, string(s.Reporting)), h.Host, "-", h.Reach.HostLabel(), "(the error is below)")
				first = false
				continue
			}
			for _, svc := range h.Services {
				detail := svc.Error
				if svc.Probe != nil {
					detail = svc.Probe.Detail
					if !svc.Probe.OK {
						detail = "probe failing: " + detail
					}
				}
				state := string(svc.State)
				if svc.State == services.Unknown {
					state = "UNKNOWN"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", col(first, s.Site), col(first, s.Role), col(first, string(s.Core)), col(first, string(s.Reporting)), h.Host, svc.Service, state, oneLine(detail))
				first = false
			}
		}
	}
	tw.Flush()
	for _, s := range sites {
		for _, h := range s.Hosts {
			if !h.Reachable {
				what := "did not answer"
				if h.Reach == checks.SawAccess {
					what = "could not be accessed (an access problem, not a loss)"
				}
				fmt.Fprintf(w, "\nhost %s (site %s) %s:\n  %s\n", h.Host, s.Site, what, h.Error)
			}
		}
	}
	WriteLoss(w, sites)
}

// WriteLoss prints, for each site that does not answer here, its loss
// verdict and every observer's evidence.
func WriteLoss(w io.Writer, sites []services.SiteStatus) {
	for _, s := range sites {
		if s.Loss == nil || s.Loss.State == checks.SiteReachable {
			continue
		}
		fmt.Fprintf(w, "\nSite %s: %s: %s\n", s.Site, s.Loss.State, WithoutHostErrors([]string{s.Loss.Summary}, sites)[0])
		for _, l := range WithoutHostErrors(s.Loss.Lines(), sites) {
			fmt.Fprintf(w, "  %s\n", oneLine(l))
		}
	}
}

// WithoutHostErrors shortens texts (readiness reasons) that repeat the
// error of an unreachable host WriteSites has printed: the error once, not
// three times.
func WithoutHostErrors(texts []string, sites []services.SiteStatus) []string {
	out := make([]string, len(texts))
	for i, t := range texts {
		for _, s := range sites {
			for _, h := range s.Hosts {
				if !h.Reachable && h.Error != "" {
					t = strings.ReplaceAll(t, ": "+h.Error, " (error above)")
					t = strings.ReplaceAll(t, h.Error, "(error above)")
				}
			}
		}
		out[i] = t
	}
	return out
}

func col(first bool, s string) string {
	if first {
		return s
	}
	return ""
}

func oneLine(s string) string {
	s = strings.ReplaceAll(strings.TrimSpace(s), "\n", " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// WriteVerdict prints the per-layer table, the combined verdict and the
// commands that would fix a verdict that is not "one site serves".
func WriteVerdict(w io.Writer, v checks.Verdict, rows bool) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tSERVES\tSITE\tDETAIL")
	for _, l := range v.Layers {
		site := l.Site
		if site == "" && len(l.Sites) > 0 {
			site = strings.Join(l.Sites, "+")
		}
		state := l.State
		if state != checks.ServeOne {
			state = strings.ToUpper(state)
		}
		if l.Neutral {
			state = "ok"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.Layer, state, site, oneLine(l.Detail))
	}
	tw.Flush()
	for _, l := range v.Layers {
		if rows && l.Layer != checks.LayerServices && len(l.Rows) > 0 {
			fmt.Fprintf(w, "\n%s:\n", l.Layer)
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			for _, r := range l.Rows {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", r.Site, r.Name, r.State, oneLine(r.Detail))
			}
			tw.Flush()
		}
		for _, n := range l.Notes {
			fmt.Fprintf(w, "  %s: %s\n", l.Layer, n)
		}
	}
	fmt.Fprintf(w, "\nVerdict: %s\n", v.Summary)
	for _, f := range v.Fixes {
		fmt.Fprintf(w, "  fix %s\n", f)
	}
}
