package checks

import (
	"fmt"
	"sort"
	"strings"

	"github.com/sitectl/sitectl/checks/services"
)

// A site the operator cannot reach is not a site that is down. These types
// carry what each observer saw of a site, and JudgeSite turns that into the
// site's loss verdict: DOWN only when the operator's own path fails at the
// network level AND enough independent observers (the other site, the
// witness, the replica set, HAProxy's health checks, the brokers) confirm
// it; UNREACHABLE FROM HERE when any of them sees the site alive; UNKNOWN
// otherwise. Access problems (host keys, authentication, credentials) are
// never evidence that a site is down.

// JudgeSite decides a site's loss verdict. operator is the operator's own
// evidence (one row per host of the site), others the independent
// observers' rows (several rows of one observer count once: the observer
// saw the site alive if any row says so, down if all its answering rows
// say down). configured is how many independent observers the inventory
// provides (each member outside the site, HAProxy, each broker outside the
// site, each prober host): the quorum is min(lossQuorum, configured), so
// observers that fail to answer never lower the bar.
//
// An observer whose "alive" may be stale (Evidence.Weak) does not hold off
// a loss the quorum of the others confirms.
func JudgeSite(site string, operator, others []Evidence, lossQuorum, configured int) SiteVerdict {
	v := SiteVerdict{Site: site, Evidence: append(append([]Evidence(nil), operator...), others...)}
	if lossQuorum <= 0 {
		lossQuorum = 2
	}
	v.Quorum = min(lossQuorum, configured)
	p := operatorPath(operator)
	w := observerAnswers(others)
	v.Confirmed = len(w.downBy)
	if judgeOperator(&v, site, p) {
		return v
	}
	judgeObservers(&v, site, w)
	return v
}

// operatorView is the operator's own path to the site's hosts: those it
// reached, and the details of those with an access problem, no answer in
// time, or down at the network level.
type operatorView struct {
	hosts                           int
	reached, access, noAnswer, down []string
}

// operatorPath sorts the operator's evidence by what it saw.
func operatorPath(operator []Evidence) operatorView {
	p := operatorView{hosts: len(operator)}
	for _, e := range operator {
		switch e.Saw {
		case SawAlive:
			p.reached = append(p.reached, e.Observer)
		case SawAccess:
			p.access = append(p.access, e.Detail)
		case SawDown:
			p.down = append(p.down, e.Detail)
		default:
			p.noAnswer = append(p.noAnswer, e.Detail)
		}
	}
	return p
}

// observersView is the independent observers' answers, one each: alive,
// alive but maybe stale (weak), down, or silent.
type observersView struct {
	aliveBy, weakBy, downBy, silent []string
}

// observerAnswers merges each independent observer's rows into one answer:
// alive if any row says so, down if its answering rows all say down.
func observerAnswers(others []Evidence) observersView {
	type answer struct {
		alive, down, weak bool
		detail            []string
		access            bool
	}
	var w observersView
	byObs := map[string]*answer{}
	var order []string
	for _, e := range others {
		a := byObs[e.Observer]
		if a == nil {
			a = &answer{}
			byObs[e.Observer] = a
			order = append(order, e.Observer)
		}
		switch e.Saw {
		case SawAlive:
			a.alive = true
			a.weak = a.weak || e.Weak
			a.detail = append(a.detail, e.Detail)
		case SawDown:
			a.down = true
		case SawAccess:
			a.access = true
		}
	}
	for _, o := range order {
		a := byObs[o]
		switch {
		case a.alive && a.weak:
			w.weakBy = append(w.weakBy, o+" ("+strings.Join(a.detail, "; ")+", may be stale)")
		case a.alive:
			w.aliveBy = append(w.aliveBy, o+" ("+strings.Join(a.detail, "; ")+")")
		case a.down:
			w.downBy = append(w.downBy, o)
		default:
			w.silent = append(w.silent, o)
		}
	}
	return w
}

// judgeOperator decides from the operator's own path when it says enough:
// the site answers here (in full or in part), or what hides it is access
// or slowness, not a loss; or there is no host to reach. It returns false
// when the operator cannot reach any host at the network level.
func judgeOperator(v *SiteVerdict, site string, p operatorView) bool {
	switch {
	case len(p.reached) > 0 && len(p.access) == 0 && len(p.noAnswer) == 0 && len(p.down) == 0:
		v.State = SiteReachable
		v.Summary = fmt.Sprintf("site %s answers here", site)
		return true
	case len(p.reached) > 0:
		// part of the site answers: it is observed directly, and what
		// the rest hides makes its activity unknown (never down)
		v.State = SiteReachable
		v.Summary = fmt.Sprintf("site %s answers here in part", site)
		return true
	case len(p.access) > 0:
		v.State = SiteUnknown
		v.Summary = fmt.Sprintf("site %s: access problem, not a loss: %s; fix the access and look again", site, strings.Join(p.access, "; "))
		return true
	case len(p.noAnswer) > 0:
		v.State = SiteUnknown
		v.Summary = fmt.Sprintf("site %s answers the network but not in time (%s): it is not down", site, strings.Join(p.noAnswer, "; "))
		return true
	case p.hosts == 0:
		v.State = SiteUnknown
		v.Summary = fmt.Sprintf("site %s has no host to reach", site)
		return true
	}
	return false
}

// judgeObservers decides, when the operator cannot reach any host of the
// site at the network level, from the independent observers: alive
// elsewhere, down when a quorum confirms, else unknown.
func judgeObservers(v *SiteVerdict, site string, w observersView) {
	switch {
	case len(w.aliveBy) > 0:
		v.State = SiteUnreachableHere
		v.Summary = fmt.Sprintf("site %s is UNREACHABLE FROM HERE but alive: seen by %s", site, strings.Join(w.aliveBy, ", "))
	case v.Quorum > 0 && v.Confirmed >= v.Quorum:
		v.State = SiteDown
		v.Summary = fmt.Sprintf("site %s is DOWN: the operator cannot reach it and %d independent observer(s) confirm (%s; quorum %d)",
			site, v.Confirmed, strings.Join(w.downBy, ", "), v.Quorum)
		if len(w.weakBy) > 0 {
			v.Summary += "; not yet seen gone by " + strings.Join(w.weakBy, ", ")
		}
	case len(w.weakBy) > 0:
		v.State = SiteUnreachableHere
		v.Summary = fmt.Sprintf("site %s is UNREACHABLE FROM HERE; %s still see it (%d of %d observers needed confirm its loss)",
			site, strings.Join(w.weakBy, ", "), v.Confirmed, v.Quorum)
	default:
		v.State = SiteUnknown
		why := fmt.Sprintf("%d of %d independent observers needed confirm it", v.Confirmed, v.Quorum)
		if v.Quorum == 0 {
			why = "no independent observer is configured (mongodb, haproxy, activemq, or probers in the inventory)"
		}
		v.Summary = fmt.Sprintf("site %s does not answer here; its loss is not confirmed: %s", site, why)
		if len(w.silent) > 0 {
			v.Summary += "; no answer from " + strings.Join(w.silent, ", ")
		}
	}
}

// judgeSites sets each site's Loss verdict from the operator's path and
// every other observer's evidence.
func judgeSites(sites []services.SiteStatus, evidence []Evidence, quorum int, configured map[string]int) {
	for i := range sites {
		s := &sites[i]
		var others []Evidence
		for _, e := range evidence {
			if e.Site == s.Site {
				others = append(others, e)
			}
		}
		sort.SliceStable(others, func(a, b int) bool { return others[a].Observer < others[b].Observer })
		v := JudgeSite(s.Site, services.Evidence(*s), others, quorum, configured[s.Site])
		s.Loss = &v
	}
}

// DownSites is the set of sites whose loss is confirmed (SiteDown): only
// these may count as not serving without being observed.
func DownSites(sites []services.SiteStatus) map[string]bool {
	out := map[string]bool{}
	for _, s := range sites {
		if s.Loss.Down() {
			out[s.Site] = true
		}
	}
	return out
}
