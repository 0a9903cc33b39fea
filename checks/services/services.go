// Package services is the services layer: each host's services observed
// with one script per host (their states, health probes), each site's
// activity, the services' verdict, and the operator's own path to each host
// as evidence of a site's liveness (Reach). It observes, read-only; the
// runbooks start and stop services with shell tasks (runbooks/compile.go).
package services

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/checks/layer"
	"github.com/sitectl/sitectl/inventory"
)

// HostRunner runs a command on an inventory host (remote.Pool implements it).
type HostRunner interface {
	Run(ctx context.Context, host, command string) (remote.Result, error)
}

// ScriptRunner is a HostRunner that runs scripts which change nothing in a
// host's long-lived shell (remote.Pool): the host batch of a refresh then
// reuses the shell, and the session, of the refresh before.
type ScriptRunner interface {
	RunScript(ctx context.Context, host, script string) (remote.Result, error)
}

// State of a service.
type State string

const (
	Running State = "running"
	Stopped State = "stopped"
	Unknown State = "unknown"
)

// Interpret maps a status command's exit code to a state: 0 running; 1, 2
// and 3 stopped (LSB: dead with pid file, dead with lock, not running; and
// systemctl is-active's 3); anything else unknown.
func Interpret(exit int) State {
	switch exit {
	case 0:
		return Running
	case 1, 2, 3:
		return Stopped
	}
	return Unknown
}

// ServiceStatus is one service on one host.
type ServiceStatus struct {
	Site     string       `json:"site"`
	Host     string       `json:"host"`
	Service  string       `json:"service"`
	Kind     string       `json:"kind"`
	Group    string       `json:"group"`
	Passive  string       `json:"passive"` // state a passive site keeps it in
	State    State        `json:"state"`
	ExitCode *int         `json:"exit_code,omitempty"`
	Probe    *ProbeResult `json:"probe,omitempty"`
	Error    string       `json:"error,omitempty"`
	Command  string       `json:"-"`
}

// Healthy reports whether the service is running and its probe (if any) passes.
func (s ServiceStatus) Healthy() bool {
	return s.State == Running && (s.Probe == nil || s.Probe.OK)
}

// HostStatus is one host's answer.
type HostStatus struct {
	Site      string `json:"site"`
	Host      string `json:"host"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// Reach classifies why the host could not be reached: down (network
	// level), access problem, or no answer (slow); empty when reachable.
	Reach    layer.Saw       `json:"reach,omitempty"`
	Latency  time.Duration   `json:"latency_ns"`
	Services []ServiceStatus `json:"services"`
}

// Activity of a site for a group of services.
type Activity string

const (
	Active      Activity = "active"      // every service a passive site keeps stopped is running
	Partial     Activity = "partial"     // some of them run: counts as active for safety
	Passive     Activity = "passive"     // none of them run
	Unreachable Activity = "unreachable" // no host of the site answered
	Undecided   Activity = "unknown"     // some states could not be observed
)

// Serving reports whether the activity means the site may be serving.
func (a Activity) Serving() bool { return a == Active || a == Partial }

// SiteStatus is a whole site.
type SiteStatus struct {
	Site      string       `json:"site"`
	Role      string       `json:"role"`
	Hosts     []HostStatus `json:"hosts"`
	Core      Activity     `json:"core"`
	Reporting Activity     `json:"reporting"`
	Observed  time.Time    `json:"observed"`
	// Loss is the site's loss verdict from every observer (set by
	// Deployment.Observe): whether a site that does not answer here is
	// DOWN, UNREACHABLE FROM HERE, or UNKNOWN.
	Loss *layer.SiteVerdict `json:"loss,omitempty"`
}

// LossSummary says why a site that was not observed counts as possibly
// serving: its loss verdict's summary.
func (s SiteStatus) LossSummary() string {
	if s.Loss == nil {
		return fmt.Sprintf("site %s did not answer and its loss was not judged", s.Site)
	}
	return s.Loss.Summary
}

// Services returns every service status of the site.
func (s SiteStatus) Services() []ServiceStatus {
	var out []ServiceStatus
	for _, h := range s.Hosts {
		out = append(out, h.Services...)
	}
	return out
}

// Running lists "host/service" of the services of group g that a passive
// site keeps stopped and that are running.
func (s SiteStatus) Running(g inventory.Group) []string {
	var out []string
	for _, svc := range s.Services() {
		if svc.Group == string(g) && svc.Passive == "stopped" && svc.State == Running {
			out = append(out, svc.Host+"/"+svc.Service)
		}
	}
	return out
}

// Observer observes sites. Zero values are filled with defaults.
type Observer struct {
	Inventory *inventory.Inventory
	Runner    HostRunner
	Probe     Prober // nil: RunProbe; probes only run for running services
	Now       func() time.Time
	NoProbes  bool
}

// Sites observes every site in parallel.
func (o *Observer) Sites(ctx context.Context) []SiteStatus {
	out := make([]SiteStatus, len(o.Inventory.Sites))
	var wg sync.WaitGroup
	for i, s := range o.Inventory.Sites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = o.Site(ctx, s)
		}()
	}
	wg.Wait()
	return out
}

// Site observes every host of one site in parallel, one round trip per host.
func (o *Observer) Site(ctx context.Context, s *inventory.Site) SiteStatus {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	st := SiteStatus{Site: s.Name, Role: string(s.Role), Observed: now()}
	byHost := map[string][]*inventory.Service{}
	for _, svc := range s.Services {
		for _, h := range svc.OnHosts() {
			byHost[h] = append(byHost[h], svc)
		}
	}
	st.Hosts = make([]HostStatus, len(s.Hosts))
	var wg sync.WaitGroup
	for i, h := range s.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.Hosts[i] = o.Host(ctx, s.Name, h.Name, byHost[h.Name])
		}()
	}
	wg.Wait()
	st.Core = activity(st, inventory.Core)
	st.Reporting = activity(st, inventory.Reporting)
	return st
}

const marker = "@@sitectl-status"

// BatchStatus builds one shell script that runs the status commands one
// after the other, in order, in the host's one session, and prints
// "<marker> <index> <exit>" for each as soon as it has finished. Each
// command runs in its own subshell (so that `exit` in it ends only it, and
// a syntax error only it), with stdin, stdout and stderr on /dev/null. A
// command with a timeout (timeouts[i] > 0, rounded up to whole seconds)
// runs under `timeout -k 1 SECS sh -c` where the host has coreutils
// timeout: killed on the host (exit 124, or 137), the commands after it
// still run. The others cost a fork, no exec: one shell, no background
// jobs, the least work on the host for one record per check.
func BatchStatus(cmds []string, timeouts []time.Duration) string {
	var b strings.Builder
	// r INDEX SECS CMD: one check, one record
	fmt.Fprintf(&b, "command -v timeout >/dev/null 2>&1 && T=1 || T=\n"+
		"r() { if [ -n \"$T\" ] && [ \"$2\" -gt 0 ]; then timeout -k 1 \"$2\" sh -c \"$3\"; else (eval \"$3\"); fi </dev/null >/dev/null 2>&1; echo \"%s $1 $?\"; }\n", marker)
	for i, c := range cmds {
		secs := 0
		if i < len(timeouts) && timeouts[i] > 0 {
			secs = int(math.Ceil(timeouts[i].Seconds()))
		}
		fmt.Fprintf(&b, "r %d %d %s\n", i, secs, remote.Quote(c))
	}
	return b.String()
}

// BatchStatusInline is BatchStatus with each command written into the
// script itself, in a subshell of its own, rather than eval'ed: one fork
// per check where BatchStatus costs two (dash runs an eval'ed command in a
// further child), about a third of a check's CPU on the host when the
// check is a small script; a simple command (a program and plain words,
// see simpleCommand) runs as is, without the subshell, as a peer's
// `for ...; do svc; done` would. The records, the order, the timeouts and the
// isolation of each check (`exit` ends only it) are BatchStatus's; but a
// syntax error in one command is one in the whole script: the shell stops
// there (exit 2) and the records from that check on are missing. Host
// then runs BatchStatus, which contains it, and keeps doing so for that
// batch (a read-only batch may run twice).
func BatchStatusInline(cmds []string, timeouts []time.Duration) string {
	var b strings.Builder
	b.WriteString("command -v timeout >/dev/null 2>&1 && T=1 || T=\n")
	for i, c := range cmds {
		secs := 0
		if i < len(timeouts) && timeouts[i] > 0 {
			secs = int(math.Ceil(timeouts[i].Seconds()))
		}
		// "( " with a space: "((" opens arithmetic in bash
		switch {
		case secs == 0 && simpleCommand(c):
			// a program and its words: run as is (dash does not even fork
			// its own image for it: vfork), it cannot touch the shell
			fmt.Fprintf(&b, "%s </dev/null >/dev/null 2>&1; echo \"%s %d $?\"\n", c, marker, i)
		case secs > 0:
			fmt.Fprintf(&b, "if [ -n \"$T\" ]; then timeout -k 1 %d sh -c %s; else ( %s\n); fi </dev/null >/dev/null 2>&1; echo \"%s %d $?\"\n", secs, remote.Quote(c), c, marker, i)
		default:
			fmt.Fprintf(&b, "( %s\n) </dev/null >/dev/null 2>&1; echo \"%s %d $?\"\n", c, marker, i)
		}
	}
	return b.String()
}

// simpleCommand reports whether c is nothing but words of plain
// characters (no quoting, expansion, globbing, redirection, operator or
// comment) whose first is neither an assignment nor a shell keyword nor a
// builtin that could change the shell (exit, cd, set, read, eval, ...):
// "/etc/init.d/x status", "systemctl is-active x". Run without a subshell
// of its own, such a command behaves exactly as in one.
func simpleCommand(c string) bool {
	f := strings.Fields(c)
	if len(f) == 0 || strings.ContainsAny(f[0], "=") || shellWords[f[0]] {
		return false
	}
	for _, r := range c {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("_./:,+@%=- \t", r):
		default:
			return false
		}
	}
	return true
}

// shellWords are the keywords and the builtins of sh, dash and bash that
// may change the shell running them, or run other commands in it.
var shellWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`. : alias bg break builtin caller case cd command compgen complete
		continue declare dirs disown do done elif else enable esac eval exec exit export fc fg fi for
		function getopts hash help history if in jobs let local logout mapfile popd pushd read readarray
		readonly return select set shift shopt source suspend then time times trap type typeset ulimit
		umask unalias unset until wait while`) {
		m[w] = true
	}
	return m
}()

// inlineBroken holds the BatchStatusInline scripts that did not parse on
// their host: their batches run as BatchStatus from then on.
var inlineBroken sync.Map

// ParseBatch reads BatchStatus output: index -> exit code.
func ParseBatch(out []byte) map[int]int {
	res := map[int]int{}
	for i, v := range MarkerLines(out, marker) {
		if code, err := strconv.Atoi(v); err == nil {
			res[i] = code
		}
	}
	return res
}

// MarkerLines reads the "<marker> <index> <value>" lines of a batch
// command's output: index -> value. Other lines are ignored.
func MarkerLines(out []byte, marker string) map[int]string {
	res := map[int]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != marker {
			continue
		}
		if i, err := strconv.Atoi(f[1]); err == nil && i >= 0 {
			res[i] = f[2]
		}
	}
	return res
}

// RunWithin runs cmd on host and waits for its answer until ctx's
// deadline, not until the runner has cleaned up after it (ending a command
// on a host that stopped answering takes a moment more): a dead host must
// not hold up the observation of the others.
func RunWithin(ctx context.Context, run HostRunner, host, cmd string) (remote.Result, error) {
	return answerWithin(ctx, host, func() (remote.Result, error) { return run.Run(ctx, host, cmd) })
}

// scriptWithin is runWithin for a script that changes nothing: in the
// host's long-lived shell when run has them (ScriptRunner).
func scriptWithin(ctx context.Context, run HostRunner, host, script string) (remote.Result, error) {
	sr, ok := run.(ScriptRunner)
	if !ok {
		return RunWithin(ctx, run, host, script)
	}
	return answerWithin(ctx, host, func() (remote.Result, error) { return sr.RunScript(ctx, host, script) })
}

func answerWithin(ctx context.Context, host string, run func() (remote.Result, error)) (remote.Result, error) {
	type answer struct {
		res remote.Result
		err error
	}
	start := time.Now()
	ac := make(chan answer, 1)
	go func() {
		res, err := run()
		ac <- answer{res, err}
	}()
	select {
	case a := <-ac:
		return a.res, a.err
	case <-ctx.Done():
		return remote.Result{}, fmt.Errorf("%s: no answer within %s: %w", host, time.Since(start).Round(time.Millisecond), ctx.Err())
	}
}

// Host observes the given services on one host with a single command (see
// BatchStatus): one round trip, one shell on the host, kept for the next
// refresh when the runner can (ScriptRunner).
func (o *Observer) Host(ctx context.Context, site, host string, svcs []*inventory.Service) HostStatus {
	hs := HostStatus{Site: site, Host: host}
	sort.SliceStable(svcs, func(i, j int) bool { return svcs[i].Name < svcs[j].Name })
	cmds := make([]string, len(svcs))
	timeouts := make([]time.Duration, len(svcs))
	// The checks run one after the other. Those with a timeout of their
	// own (service timeout: may hang) are killed on the host at it; the
	// host has the sum of those (and a second each for the kill), plus
	// defaults.command_timeout for the rest, to answer.
	timeout := o.Inventory.TimeoutFor(nil)
	for i, svc := range svcs {
		cmds[i] = svc.Status
		if t := svc.Timeout.D(); t > 0 {
			timeouts[i] = t
			timeout += t + time.Second
		}
	}
	start := time.Now()
	res, codes, err := o.runBatch(ctx, host, cmds, timeouts, timeout)
	hs.Latency = time.Since(start)
	if err != nil {
		hs.Error = err.Error()
		hs.Reach = Reach(err)
	} else {
		hs.Reachable = true
	}
	hs.Services = make([]ServiceStatus, len(svcs))
	var wg sync.WaitGroup
	for i, svc := range svcs {
		code, ok := codes[i]
		ss := serviceStatus(site, host, svc, code, ok, timeouts[i], res, err)
		hs.Services[i] = ss
		if svc.Probe != nil && ss.State == Running && !o.NoProbes {
			wg.Go(func() {
				pr := o.prober()(ctx, svc.Probe)
				hs.Services[i].Probe = &pr
			})
		}
	}
	wg.Wait()
	return hs
}

// runBatch runs the host's status checks as one script (the inline batch,
// or BatchStatus for a batch the host's shell could not parse) within
// timeout, and returns the exit code of each check that answered.
func (o *Observer) runBatch(ctx context.Context, host string, cmds []string, timeouts []time.Duration, timeout time.Duration) (remote.Result, map[int]int, error) {
	cmd, inline := "true", false
	if len(cmds) > 0 {
		cmd = BatchStatusInline(cmds, timeouts)
		if _, broken := inlineBroken.Load(cmd); broken {
			cmd = BatchStatus(cmds, timeouts)
		} else {
			inline = true
		}
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := scriptWithin(cctx, o.Runner, host, cmd)
	codes := map[int]int{}
	if err == nil {
		codes = ParseBatch(res.Stdout)
	}
	if inline && err == nil && len(codes) < len(cmds) && res.ExitCode != 0 {
		// a command the host's shell cannot parse: run the batch that
		// contains it (see BatchStatusInline)
		inlineBroken.Store(cmd, true)
		res, err = scriptWithin(cctx, o.Runner, host, BatchStatus(cmds, timeouts))
		if err == nil {
			codes = ParseBatch(res.Stdout)
		}
	}
	return res, codes, err
}

// serviceStatus is one service's status from its check's exit code (ok:
// the check answered), or why it is unknown: the host did not answer
// (err), or its answer has no line for the check.
func serviceStatus(site, host string, svc *inventory.Service, code int, ok bool, timeout time.Duration, res remote.Result, err error) ServiceStatus {
	ss := ServiceStatus{Site: site, Host: host, Service: svc.Name, Kind: svc.Kind, Group: string(svc.Group), Passive: passive(svc), State: Unknown, Command: svc.Status}
	switch {
	case ok:
		ss.ExitCode = &code
		ss.State = Interpret(code)
		switch {
		case ss.State != Unknown:
		case timeout > 0 && (code == 124 || code == 137):
			ss.Error = fmt.Sprintf("status command exited %d: it did not finish within its timeout (%s) and was killed on the host", code, timeout)
		default:
			ss.Error = fmt.Sprintf("status command exited %d (expected 0 running, 1-3 stopped)", code)
		}
	case err != nil:
		ss.Error = "host did not answer: " + err.Error()
	default:
		ss.Error = "no status line in the host's answer (exit " + strconv.Itoa(res.ExitCode) + ")"
	}
	return ss
}

func (o *Observer) prober() Prober {
	if o.Probe != nil {
		return o.Probe
	}
	return RunProbe
}

func passive(svc *inventory.Service) string {
	if svc.StoppedWhenPassive() {
		return "stopped"
	}
	return "running"
}

func activity(st SiteStatus, g inventory.Group) Activity {
	reachable := false
	for _, h := range st.Hosts {
		if h.Reachable {
			reachable = true
		}
	}
	if !reachable && len(st.Hosts) > 0 {
		return Unreachable
	}
	var total, running, unknown int
	for _, svc := range st.Services() {
		if svc.Group != string(g) || svc.Passive != "stopped" {
			continue
		}
		total++
		switch svc.State {
		case Running:
			running++
		case Unknown:
			unknown++
		}
	}
	switch {
	case total == 0:
		return Passive
	case running == total:
		return Active
	case running > 0:
		return Partial
	case unknown > 0:
		return Undecided
	}
	return Passive
}
