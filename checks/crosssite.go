package checks

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/checks/services"
	"github.com/sitectl/sitectl/inventory"
)

// Cross-site probes: from a host outside a site (the other site's first
// host, the witness, or failover.probers), TCP connects to the site's hosts
// (their SSH port) and to its services' probe ports, with a short deadline.
// One command per prober host covers every site it probes; it needs bash
// (for /dev/tcp) and timeout(1) there.

// Endpoint is one TCP address probed.
type Endpoint struct {
	Site  string
	Label string // "a-app:22", or the probe's address
	Addr  string // host:port
}

// Endpoints lists the TCP endpoints of site that probers connect to: every
// host's SSH port, then every service probe's address. Local hosts and
// duplicates are skipped.
func Endpoints(inv *inventory.Inventory, site string) []Endpoint {
	s := inv.Site(site)
	if s == nil {
		return nil
	}
	var out []Endpoint
	seen := map[string]bool{}
	add := func(label, addr string) {
		if addr == "" || seen[addr] {
			return
		}
		seen[addr] = true
		out = append(out, Endpoint{Site: site, Label: label, Addr: addr})
	}
	for _, h := range s.Hosts {
		if h == nil || h.Local || h.Address == "" {
			continue
		}
		port := inv.SSHFor(h).Port
		add(h.Name+":"+strconv.Itoa(port), net.JoinHostPort(h.Address, strconv.Itoa(port)))
	}
	for _, svc := range s.Services {
		if svc == nil || svc.Probe == nil {
			continue
		}
		switch {
		case svc.Probe.TCP != "":
			add(svc.Name+" "+svc.Probe.TCP, svc.Probe.TCP)
		case svc.Probe.HTTP != "":
			if u, err := url.Parse(svc.Probe.HTTP); err == nil && u.Hostname() != "" {
				port := u.Port()
				if port == "" {
					port = map[bool]string{true: "443", false: "80"}[u.Scheme == "https"]
				}
				addr := net.JoinHostPort(u.Hostname(), port)
				add(svc.Name+" "+addr, addr)
			}
		}
	}
	return out
}

const probeMarker = "@@sitectl-probe"

// ProbeCommand is the shell command a prober runs: every endpoint in
// parallel, each bounded by timeout, one line per endpoint:
// "@@sitectl-probe <index> open|refused|timeout|unreachable|reset|error".
func ProbeCommand(eps []Endpoint, timeout time.Duration) string {
	secs := strconv.FormatFloat(max(timeout.Seconds(), 0.1), 'f', 1, 64)
	var b strings.Builder
	b.WriteString(`p() { r=$(timeout ` + secs + ` bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$2" "$3" 2>&1); c=$?; ` +
		`case $c in 0) s=open;; 124) s=timeout;; *) case $r in *refused*) s=refused;; *[Rr]oute*|*nreachable*) s=unreachable;; *reset*) s=reset;; *) s=error;; esac;; esac; ` +
		`echo "` + probeMarker + ` $1 $s"; }` + "\n")
	for i, e := range eps {
		host, port, err := net.SplitHostPort(e.Addr)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "p %d %s %s &\n", i, remote.Quote(host), remote.Quote(port))
	}
	b.WriteString("wait\n")
	return b.String()
}

// ParseProbe reads ProbeCommand's output: index -> result.
func ParseProbe(out []byte) map[int]string {
	res := map[int]string{}
	for i, v := range services.MarkerLines(out, probeMarker) {
		switch v {
		case "open", "refused", "timeout", "unreachable", "reset", "error":
			res[i] = v
		}
	}
	return res
}

// probeEvidence turns one prober's results for one site into evidence.
func probeEvidence(prober, site string, eps []Endpoint, res map[int]string, at time.Time) Evidence {
	e := Evidence{Site: site, Observer: "probe from " + prober, Independent: true, At: at}
	var open, dead, odd []string
	for i, ep := range eps {
		r, ok := res[i]
		switch {
		case !ok:
			odd = append(odd, "tcp "+ep.Label+": no result")
		case r == "open":
			open = append(open, "tcp "+ep.Label+" open")
		case r == "error":
			odd = append(odd, "tcp "+ep.Label+": probe error (bash and timeout needed on "+prober+")")
		default:
			what := map[string]string{"timeout": "timed out", "refused": "refused", "unreachable": "no route", "reset": "reset"}[r]
			dead = append(dead, "tcp "+ep.Label+" "+what)
		}
	}
	switch {
	case len(open) > 0:
		e.Saw, e.Detail = SawAlive, strings.Join(open, ", ")
	case len(dead) > 0 && len(odd) == 0:
		e.Saw, e.Detail = SawDown, strings.Join(dead, ", ")
	default:
		e.Saw, e.Detail = SawNoAnswer, strings.Join(append(odd, dead...), ", ")
		if e.Detail == "" {
			e.Detail = "nothing to probe"
		}
	}
	return e
}

// CrossSiteOf asks every prober host (failover.probers) whether the sites
// in only (nil: every site) answer from there: each site's hosts' SSH port
// and its services' probe addresses, with a short deadline; one command per
// prober. Its answers are independent evidence of each site's liveness.
func CrossSiteOf(ctx context.Context, inv *inventory.Inventory, run services.HostRunner, now func() time.Time, only map[string]bool) []Evidence {
	if run == nil || (only != nil && len(only) == 0) {
		return nil
	}
	jobs := probeJobs(inv, only)
	probers := make([]string, 0, len(jobs))
	for p := range jobs {
		probers = append(probers, p)
	}
	sort.Strings(probers)
	var mu sync.Mutex
	var out []Evidence
	var wg sync.WaitGroup
	for _, p := range probers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := probeFrom(ctx, inv, run, now, p, jobs[p])
			mu.Lock()
			out = append(out, ev...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// probeJob is what one prober host probes: the sites and their endpoints.
type probeJob struct {
	sites []string
	eps   []Endpoint
}

// probeJobs is, per prober host, the sites in only (nil: every site) it
// probes and their endpoints.
func probeJobs(inv *inventory.Inventory, only map[string]bool) map[string]*probeJob {
	jobs := map[string]*probeJob{}
	for _, s := range inv.Sites {
		if s == nil || (only != nil && !only[s.Name]) {
			continue
		}
		eps := Endpoints(inv, s.Name)
		if len(eps) == 0 {
			continue
		}
		for _, p := range inv.ProbersOf(s.Name) {
			j := jobs[p.Name]
			if j == nil {
				j = &probeJob{}
				jobs[p.Name] = j
			}
			j.sites = append(j.sites, s.Name)
			j.eps = append(j.eps, eps...)
		}
	}
	return jobs
}

// probeFrom runs job's probe command on prober p, bounded by the probe
// timeout and the SSH connect timeout, and returns its evidence for each
// site of the job: "no answer" (or an access problem) for every site when
// the prober cannot be asked.
func probeFrom(ctx context.Context, inv *inventory.Inventory, run services.HostRunner, now func() time.Time, p string, j *probeJob) []Evidence {
	timeout := inv.ProbeTimeout()
	deadline := timeout + inv.SSHFor(inv.Host(p)).ConnectTimeout.D() + 3*time.Second
	cctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	var a struct {
		res remote.Result
		err error
	}
	a.res, a.err = services.RunWithin(cctx, run, p, ProbeCommand(j.eps, timeout))
	at := now()
	var ev []Evidence
	for _, site := range j.sites {
		if a.err != nil {
			saw := services.Reach(a.err)
			if saw == SawDown || saw == SawAlive {
				saw = SawNoAnswer // the prober is unreachable: it says nothing of the site
			}
			ev = append(ev, Evidence{Site: site, Observer: "probe from " + p, Independent: true, Saw: saw, At: at,
				Detail: "the prober could not be asked: " + a.err.Error()})
			continue
		}
		res := ParseProbe(a.res.Stdout)
		var eps []Endpoint
		sub := map[int]string{}
		for i, ep := range j.eps {
			if ep.Site == site {
				if r, ok := res[i]; ok {
					sub[len(eps)] = r
				}
				eps = append(eps, ep)
			}
		}
		ev = append(ev, probeEvidence(p, site, eps, sub, at))
	}
	return ev
}

// Observers lists the independent observers the inventory provides for a
// site's loss: each layer's (MongoDB members outside the site, HAProxy when
// it balances some of the site's servers, brokers outside the site), then
// the probers.
func Observers(inv *inventory.Inventory, site string) []string {
	var out []string
	for _, l := range Layers() {
		if l.In(inv) {
			out = append(out, l.Observers(inv, site)...)
		}
	}
	if len(Endpoints(inv, site)) > 0 {
		for _, p := range inv.ProbersOf(site) {
			out = append(out, "probe from "+p.Name)
		}
	}
	return out
}
