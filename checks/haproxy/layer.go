package haproxy

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	hap "github.com/sitectl/sitectl/adapters/haproxy"
	"github.com/sitectl/sitectl/checks/layer"
	"github.com/sitectl/sitectl/inventory"
)

// haproxyBackendView is one inventory backend as observed.
type haproxyBackendView struct {
	name    string
	state   string   // layer.ServeOne, layer.ServeNone, layer.ServeSplit, layer.ServeUnknown
	sites   []string // sites whose servers take new traffic, sorted
	detail  string   // "site_a (A)" or the reason it is unknown
	traffic hap.BackendTraffic
	servers map[string]string // server -> site, from the inventory
}

// Judge turns "show stat" rows (and the error of reading them) into
// the haproxy layer's verdict. For every backend of the inventory it finds
// the servers that take new traffic (hap.Traffic: active servers that
// are up; the backups when no active server is up) and maps them to sites
// with the inventory. The layer is:
//
//   - one: every backend sends new traffic to the same single site;
//   - none: no backend has a server that takes traffic;
//   - partial: some backends send to one site, the others to nobody;
//   - split: backends send to different sites, or one backend sends to
//     servers of both sites;
//   - unknown: the runtime API could not be read (refused, timeout, no
//     socket, permission, garbled reply: named in Detail), a backend is
//     missing from the stats, or a server the inventory does not map takes
//     traffic.
//
// Rows list every server with its status and current sessions. Fix is the
// runtime-API command (as an "echo … | socat …" line) or the sitectl runbook
// that makes a single site serve; Notes give the alternative site.
//
// Evidence holds what the health checks say of each site's liveness.
func Judge(inv *inventory.Inventory, rows []hap.StatRow, err error) layer.Verdict {
	l := haproxyLayer(inv, rows, err)
	if inv != nil {
		for _, s := range inv.Sites {
			if s != nil {
				l.Evidence = append(l.Evidence, SiteEvidence(inv, rows, err, s.Name)...)
			}
		}
	}
	return l
}

// haproxyLayer is Judge without the sites' evidence.
func haproxyLayer(inv *inventory.Inventory, rows []hap.StatRow, err error) layer.Verdict {
	l := layer.Verdict{Layer: layer.LayerHAProxy}
	if inv == nil || inv.HAProxy == nil {
		l.State, l.Detail = layer.ServeUnknown, "no haproxy section in the inventory"
		return l
	}
	h := inv.HAProxy
	if err != nil && !hap.IsPartial(err) {
		statUnusable(&l, h.RuntimeAPI, err)
		return l
	}
	partial := err != nil
	if partial {
		l.Notes = append(l.Notes, err.Error())
	}
	views := observeBackends(&l, h, rows, partial)
	if len(views) == 0 {
		l.State, l.Detail = layer.ServeUnknown, "the inventory lists no haproxy backend"
		return l
	}
	perSite, needsFix := judgeBackends(&l, views)
	if !needsFix {
		return l
	}
	target, other := haproxyFixTargets(inv, views, perSite)
	if target != "" {
		l.Fix = haproxyFix(inv, views, target)
		if other != "" {
			l.Notes = append(l.Notes, fmt.Sprintf("to make site %s serve instead: %s", other, haproxyFix(inv, views, other)))
		}
	}
	return l
}

// statUnusable makes the layer unknown when the runtime API gave no usable
// show stat, saying why and how to check it by hand.
func statUnusable(l *layer.Verdict, api string, err error) {
	l.State = layer.ServeUnknown
	var e *hap.Error
	switch {
	case errors.Is(err, hap.ErrUnreachable):
		l.Detail = fmt.Sprintf("runtime API not reachable (%s): %v", hap.Reason(err), err)
	case errors.As(err, &e) && e.Kind == hap.KindDenied:
		l.Detail = fmt.Sprintf("runtime API refused show stat (Permission denied): %v", err)
	default:
		l.Detail = fmt.Sprintf("HAProxy runtime API %s gave no usable show stat (%s): %v", api, hap.Reason(err), err)
	}
	l.Notes = append(l.Notes, "check it by hand: "+hap.SocatCommand(api, "show info"))
}

// observeBackends judges each backend of the inventory on its own and adds
// a row per server (and per inventory server missing from show stat) and
// the backends' notes.
func observeBackends(l *layer.Verdict, h *inventory.HAProxy, rows []hap.StatRow, partial bool) []*haproxyBackendView {
	var views []*haproxyBackendView
	for _, b := range h.Backends {
		if b == nil {
			continue
		}
		v := haproxyObserve(b, rows, partial)
		views = append(views, v)
		for _, s := range v.traffic.Servers {
			site := b.Servers[s.Name]
			if site == "" {
				site = "?"
			}
			row := layer.Row{Site: site, Name: b.Name + "/" + s.Name, State: s.Status.Raw, Detail: haproxyServerDetail(s), Brief: haproxyServerBrief(s)}
			if s.Sessions >= 0 {
				row.Values = map[string]float64{"sessions": float64(s.Sessions)}
			}
			l.Rows = append(l.Rows, row)
		}
		for _, name := range haproxySortedKeys(b.Servers) {
			if !haproxyHasServer(v.traffic, name) {
				l.Rows = append(l.Rows, layer.Row{Site: b.Servers[name], Name: b.Name + "/" + name, State: "missing", Detail: "not in show stat", Brief: "not in show stat"})
			}
		}
		for _, n := range v.traffic.Notes {
			l.Notes = append(l.Notes, b.Name+": "+n)
		}
	}
	return views
}

// judgeBackends sets the layer's state from the backends' own: partial
// when some go to one site and the others to nobody, split when they
// disagree, then unknown, one or none. It returns the backends sending
// only to each site, and whether the state calls for a fix (not when it is
// one or unknown).
func judgeBackends(l *layer.Verdict, views []*haproxyBackendView) (perSite map[string][]string, needsFix bool) {
	var split, unknown, none []*haproxyBackendView
	perSite = map[string][]string{} // site -> backends sending only to it
	all := map[string]bool{}
	for _, v := range views {
		for _, s := range v.sites {
			all[s] = true
		}
		switch v.state {
		case layer.ServeSplit:
			split = append(split, v)
		case layer.ServeUnknown:
			unknown = append(unknown, v)
		case layer.ServeNone:
			none = append(none, v)
		case layer.ServeOne:
			perSite[v.sites[0]] = append(perSite[v.sites[0]], v.name)
		}
	}
	sites := haproxySortedKeys(perSite)
	describe := func(vs []*haproxyBackendView) string {
		var p []string
		for _, v := range vs {
			p = append(p, v.name+" ("+v.detail+")")
		}
		return strings.Join(p, ", ")
	}
	switch {
	case len(split) == 0 && len(sites) == 1 && len(none) > 0 && len(unknown) == 0:
		// Part of the traffic goes to one site, the rest to nobody (after
		// a site loss: backups of services a passive site keeps running,
		// but no server for the others). Nothing goes to two sites.
		l.State, l.Site, l.Sites = layer.ServePartial, sites[0], sites
		l.Detail = fmt.Sprintf("only part of the traffic has a server: site %s per %s; no server takes traffic in %s",
			sites[0], strings.Join(perSite[sites[0]], ", "), describe(none))
	case len(split) > 0 || len(sites) > 1:
		l.State, l.Sites = layer.ServeSplit, haproxySortedKeys(all)
		var p []string
		if len(split) > 0 {
			p = append(p, "both sites take new traffic in "+describe(split))
		}
		for _, s := range sites {
			p = append(p, fmt.Sprintf("site %s per %s", s, strings.Join(perSite[s], ", ")))
		}
		if len(none) > 0 {
			p = append(p, "no server takes traffic in "+describe(none))
		}
		if len(unknown) > 0 {
			p = append(p, "unknown: "+describe(unknown))
		}
		l.Detail = "backends disagree: " + strings.Join(p, "; ")
	case len(unknown) > 0:
		l.State = layer.ServeUnknown
		l.Detail = "cannot tell which site HAProxy sends to: " + describe(unknown)
		if len(sites) == 1 {
			l.Detail += fmt.Sprintf(" (the other backends send to site %s)", sites[0])
		}
		return perSite, false
	case len(sites) == 1:
		l.State, l.Site, l.Sites = layer.ServeOne, sites[0], sites
		l.Detail = fmt.Sprintf("every backend sends new traffic to site %s: %s", sites[0], describe(views))
		return perSite, false
	default:
		l.State = layer.ServeNone
		l.Detail = "no backend has a server that takes traffic: " + describe(views)
	}

	return perSite, true
}

func haproxyObserve(b *inventory.HAProxyBackend, rows []hap.StatRow, partial bool) *haproxyBackendView {
	v := &haproxyBackendView{name: b.Name, servers: b.Servers, traffic: hap.Traffic(rows, b.Name)}
	if !v.traffic.Found {
		v.state, v.detail = layer.ServeUnknown, "not in show stat"
		return v
	}
	var unmapped, missing []string
	sites := map[string]bool{}
	var serving []string
	for _, s := range v.traffic.Servers {
		if !s.Serving {
			continue
		}
		site, ok := b.Servers[s.Name]
		if !ok {
			unmapped = append(unmapped, s.Name)
			continue
		}
		sites[site] = true
		serving = append(serving, fmt.Sprintf("%s %s", s.Name, site))
	}
	for _, name := range haproxySortedKeys(b.Servers) {
		if !haproxyHasServer(v.traffic, name) {
			missing = append(missing, name)
		}
	}
	v.sites = haproxySortedKeys(sites)
	switch {
	case len(unmapped) > 0:
		v.state = layer.ServeUnknown
		v.detail = fmt.Sprintf("%s: takes traffic but the inventory does not map it to a site", strings.Join(unmapped, ", "))
	case partial && len(missing) > 0:
		// A skipped row may be the serving server.
		v.state = layer.ServeUnknown
		v.detail = fmt.Sprintf("%s missing from a partial show stat", strings.Join(missing, ", "))
	case len(sites) == 0:
		v.state = layer.ServeNone
		var p []string
		for _, s := range v.traffic.Servers {
			p = append(p, s.Name+" "+s.Status.Raw)
		}
		v.detail = "no server takes traffic: " + strings.Join(p, ", ")
	case len(sites) == 1:
		v.state, v.detail = layer.ServeOne, strings.Join(serving, ", ")
		if v.traffic.OnBackup {
			v.detail += ", on backup"
		}
	default:
		v.state, v.detail = layer.ServeSplit, strings.Join(serving, ", ")
	}
	if len(missing) > 0 && v.state != layer.ServeUnknown {
		v.detail += fmt.Sprintf("; %s not configured in HAProxy", strings.Join(missing, ", "))
	}
	return v
}

func haproxyServerDetail(s hap.ServerTraffic) string {
	role := "active"
	if s.Backup {
		role = "backup"
	}
	sess := "sessions unknown"
	if s.Sessions >= 0 {
		sess = fmt.Sprintf("%d sessions", s.Sessions)
	}
	return fmt.Sprintf("%s; %s; %s", role, s.Why, sess)
}

func haproxyServerBrief(s hap.ServerTraffic) string {
	role := "active"
	if s.Backup {
		role = "backup"
	}
	if s.Sessions < 0 {
		return role + ", sess ?"
	}
	return fmt.Sprintf("%s, %d sess", role, s.Sessions)
}

// haproxyFixTargets picks the site the Fix makes serve and the alternative: the
// site most backends already send to, else the primary site, else the
// first site.
func haproxyFixTargets(inv *inventory.Inventory, views []*haproxyBackendView, perSite map[string][]string) (target, other string) {
	var names []string
	for _, s := range inv.Sites {
		if s != nil && s.Name != "" {
			names = append(names, s.Name)
		}
	}
	if len(names) == 0 {
		return "", ""
	}
	score := map[string]int{}
	for s, bs := range perSite {
		score[s] = len(bs)
	}
	primary := ""
	if p := inv.PrimarySite(); p != nil {
		primary = p.Name
	}
	sort.SliceStable(names, func(i, j int) bool {
		if score[names[i]] != score[names[j]] {
			return score[names[i]] > score[names[j]]
		}
		return names[i] == primary && names[j] != primary
	})
	target = names[0]
	if len(names) > 1 {
		other = names[1]
	}
	return target, other
}

// haproxyFix returns the command that makes site the only one taking new
// traffic: ready its admin-disabled servers (or the tracked server they
// inherit maintenance from), restore a weight of 0, drain the other site's
// servers that would still take new traffic, and, when its servers fail
// their health checks, start its services first with "sitectl takeover".
func haproxyFix(inv *inventory.Inventory, views []*haproxyBackendView, site string) string {
	var cmds []string
	takeover := false
	for _, v := range views {
		if !v.traffic.Found {
			continue
		}
		// Will site have an active server taking traffic after the fix?
		activeWillServe := false
		for _, s := range v.traffic.Servers {
			if v.servers[s.Name] != site {
				continue
			}
			switch st := s.Status; {
			case s.Usable:
			case st.State == hap.StateDrain || st.State == hap.StateMaint && st.Via == "" && !st.Resolution:
				cmds = append(cmds, hap.SetStateCommand(v.name, s.Name, hap.Ready))
			case st.State == hap.StateMaint && st.Via != "":
				be, srv, _ := strings.Cut(st.Via, "/")
				cmds = append(cmds, hap.SetStateCommand(be, srv, hap.Ready))
			case st.Up() && s.Weight == 0:
				cmds = append(cmds, "set weight "+hap.Arg(v.name)+"/"+hap.Arg(s.Name)+" 100%")
			case st.State == hap.StateMaint:
				continue // DNS resolution: nothing the runtime API can do
			default:
				// DOWN or NOLB: its service must come back (health checks).
				takeover = true
			}
			if !s.Backup {
				activeWillServe = true
			}
		}
		for _, s := range v.traffic.Servers {
			if v.servers[s.Name] == site || s.Status.State == hap.StateDrain || s.Status.State == hap.StateMaint {
				continue
			}
			// The other site's active servers (even DOWN ones, so they do
			// not take traffic back when they recover), and its usable
			// backups when site has no active server to take precedence.
			if !s.Backup || s.Usable && !activeWillServe {
				cmds = append(cmds, hap.SetStateCommand(v.name, s.Name, hap.Drain))
			}
		}
	}
	var parts []string
	if takeover {
		parts = append(parts, "sitectl takeover --site "+site)
	}
	if len(cmds) > 0 {
		parts = append(parts, hap.SocatCommand(inv.HAProxy.RuntimeAPI, cmds...))
	}
	return strings.Join(parts, " && ")
}

func haproxyHasServer(t hap.BackendTraffic, name string) bool {
	for _, s := range t.Servers {
		if s.Name == name {
			return true
		}
	}
	return false
}

func haproxySortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// SiteEvidence is what HAProxy's health checks say of site: alive when
// any of the site's servers passes its check or at least answers it (a
// layer-7 failure means the host answered), down when every checked server
// of the site is DOWN on a connection-level check failure (L4TOUT, L4CON,
// SOCKERR), for as long as lastchg says. Servers in MAINT are not checked
// and say nothing.
func SiteEvidence(inv *inventory.Inventory, rows []hap.StatRow, err error, site string) []layer.Evidence {
	if inv == nil || inv.HAProxy == nil {
		return nil
	}
	mine := map[[2]string]bool{}
	for _, b := range inv.HAProxy.Backends {
		for sv, s := range b.Servers {
			if s == site {
				mine[[2]string{b.Name, sv}] = true
			}
		}
	}
	if len(mine) == 0 {
		return nil
	}
	e := layer.Evidence{Site: site, Observer: "haproxy", Independent: true}
	if err != nil {
		e.Saw, e.Detail = layer.SawNoAnswer, err.Error()
		return []layer.Evidence{e}
	}
	var alive, down []string
	var downFor time.Duration
	for _, r := range rows {
		if r.Type != hap.TypeServer || !mine[[2]string{r.Proxy, r.Name}] {
			continue
		}
		name := r.Proxy + "/" + r.Name
		cs := r.CheckStatus
		switch {
		case r.Status.State == hap.StateMaint:
			continue
		case r.Status.Up() && r.Status.Transitional() && (strings.HasPrefix(cs, "L4") || cs == "SOCKERR"):
			// "UP 1/2": still in load balancing, but its check has just
			// failed to connect; the fall count will mark it DOWN
			down = append(down, fmt.Sprintf("%s %s, its check failing %s", name, r.Status.Raw, cs))
		case r.Status.Up() || r.Status.State == hap.StateDrain || r.Status.State == "NOLB":
			alive = append(alive, fmt.Sprintf("%s %s %s", name, r.Status.Raw, cs))
		case r.Status.State == hap.StateDown && (strings.HasPrefix(cs, "L4") || cs == "SOCKERR"):
			down = append(down, fmt.Sprintf("%s DOWN %s", name, cs))
			if r.LastChg >= 0 {
				d := time.Duration(r.LastChg) * time.Second
				if downFor == 0 || d < downFor {
					downFor = d
				}
			}
		case r.Status.State == hap.StateDown && cs != "":
			alive = append(alive, fmt.Sprintf("%s DOWN %s (the host answers its check)", name, cs))
		}
	}
	switch {
	case len(alive) > 0:
		e.Saw, e.Detail = layer.SawAlive, strings.Join(alive, ", ")
	case len(down) > 0:
		e.Saw, e.Detail, e.For = layer.SawDown, strings.Join(down, ", "), downFor
	default:
		e.Saw, e.Detail = layer.SawNoAnswer, "no checked server of site "+site+" (in MAINT, or not in the stats)"
	}
	return []layer.Evidence{e}
}
