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

// A site's endpoints are tried one after the other, the next one as soon
// as the one before fails, or once a stagger has passed without an answer
// (a connect that hangs does not hold up the others), and none once one
// is open: the site is alive for the prober then, whatever the others
// would say. The stagger is the probe timeout over twice the site's
// endpoints, within [probeStaggerMin, probeStaggerMax], so that every
// endpoint starts within half the timeout.
const (
	probeStaggerMin = 10 * time.Millisecond
	probeStaggerMax = 250 * time.Millisecond
)

// probeStagger is the delay before a site of n endpoints tries its next
// endpoint while the ones before have not answered.
func probeStagger(timeout time.Duration, n int) time.Duration {
	return min(max(timeout/time.Duration(2*max(n, 1)), probeStaggerMin), probeStaggerMax)
}

// probeSites groups eps by site, in their order: each site's indexes
// into eps.
func probeSites(eps []Endpoint) [][]int {
	var out [][]int
	at := map[string]int{}
	for i, e := range eps {
		k, ok := at[e.Site]
		if !ok {
			k = len(out)
			at[e.Site] = k
			out = append(out, nil)
		}
		out[k] = append(out[k], i)
	}
	return out
}

// probeDeadline is how long ProbeCommand runs at most: the probe timeout
// after the last endpoint's start (the stagger times the endpoints before
// it, at most half the timeout), so that each connect has the whole probe
// timeout.
func probeDeadline(eps []Endpoint, timeout time.Duration) time.Duration {
	return probeDeadlineWith(eps, timeout, 0)
}

// probeDeadlineWith is probeDeadline with a fixed stagger (0: probeStagger).
func probeDeadlineWith(eps []Endpoint, timeout, stagger time.Duration) time.Duration {
	timeout = max(timeout, 100*time.Millisecond)
	var last time.Duration
	for _, site := range probeSites(eps) {
		d := stagger
		if d <= 0 {
			d = probeStagger(timeout, len(site))
		}
		last = max(last, time.Duration(len(site)-1)*d)
	}
	return timeout + last
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

// probeScript is the bash script of ProbeCommand: c connects to one
// endpoint and reports it (on stdout, and to its site's loop on the
// site's pipe); s is one site's loop (stagger, then index host port for
// each endpoint), in the background for each site. The pipe is a process
// substitution opened read-write: it never ends, so that read -t waits
// for an answer or the stagger, in bash, without a process for a timer.
const probeScript = `c() { echo "` + probeMarker + ` $1 try"; if r=$( { exec 3<>"/dev/tcp/$2/$3"; } 2>&1 ); then s=open; else ` +
	`case $r in *refused*) s=refused;; *[Rr]oute*|*nreachable*) s=unreachable;; *reset*) s=reset;; *) s=error;; esac; fi; ` +
	`echo "` + probeMarker + ` $1 $s"; echo "$s" >&"$q"; }
s() { d=$1; shift; exec {q}<> <(:); n=0 k=0
while :; do
if [ $# -gt 0 ]; then c "$1" "$2" "$3" & n=$((n+1)); shift 3; fi
if [ $# -gt 0 ]; then read -r -t "$d" -u "$q" v; else read -r -u "$q" v; fi &&
{ k=$((k+1)); [ "$v" = open ] && return; [ $# -eq 0 ] && [ $k -ge $n ] && return; }
done; }
`

// ProbeCommand is the shell command a prober runs: one bash, bounded by
// one timeout(1) (probeDeadline), probes every site in parallel; within a
// site the endpoints one after the other (see probeStagger), until one is
// open or all have answered. Each endpoint tried prints
// "@@sitectl-probe <index> try", then, when its connect ends,
// "@@sitectl-probe <index> open|refused|unreachable|reset|error"; an
// endpoint tried without an end had not connected at the deadline
// (ParseProbe: timeout), one not tried has no line. Without bash or
// timeout there, every endpoint reports error.
func ProbeCommand(eps []Endpoint, timeout time.Duration) string {
	return probeCommand(eps, timeout, 0)
}

// probeCommand is ProbeCommand with a fixed stagger (0: probeStagger).
func probeCommand(eps []Endpoint, timeout, stagger time.Duration) string {
	timeout = max(timeout, 100*time.Millisecond)
	var b strings.Builder
	var all []string
	b.WriteString(probeScript)
	for _, site := range probeSites(eps) {
		var args []string
		for _, i := range site {
			host, port, err := net.SplitHostPort(eps[i].Addr)
			if err != nil {
				continue
			}
			args = append(args, strconv.Itoa(i), remote.Quote(host), remote.Quote(port))
			all = append(all, strconv.Itoa(i))
		}
		d := stagger
		if d <= 0 {
			d = probeStagger(timeout, len(site))
		}
		if len(args) > 0 {
			fmt.Fprintf(&b, "s %s %s &\n", seconds(d), strings.Join(args, " "))
		}
	}
	b.WriteString("wait\n")
	// 124: the deadline cut what was still connecting (reported by its
	// "try"); 125-127: timeout or bash is missing or failed to start
	return "timeout " + seconds(probeDeadlineWith(eps, timeout, stagger)) + " bash -c " + remote.Quote(b.String()) +
		"; case $? in 12[567]) for i in " + strings.Join(all, " ") + "; do echo \"" + probeMarker + " $i error\"; done;; esac; exit 0\n"
}

// ParseProbe reads ProbeCommand's output: index -> result (open, refused,
// timeout, unreachable, reset, error). An endpoint tried with no result
// line is timeout; one not tried (its site answered before) has no entry.
func ParseProbe(out []byte) map[int]string {
	res := map[int]string{}
	tried := map[int]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != probeMarker {
			continue
		}
		i, err := strconv.Atoi(f[1])
		if err != nil || i < 0 {
			continue
		}
		switch v := f[2]; v {
		case "try":
			tried[i] = true
		case "open", "refused", "timeout", "unreachable", "reset", "error":
			res[i] = v
		}
	}
	for i := range tried {
		if _, ok := res[i]; !ok {
			res[i] = "timeout"
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
	deadline := probeDeadline(j.eps, timeout) + inv.SSHFor(inv.Host(p)).ConnectTimeout.D() + 3*time.Second
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
