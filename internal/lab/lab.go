package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Env is one lab: its state directory and what runs from it. Its methods
// return errors; tests use Lab (Up), which fails the test instead.
type Env struct {
	Dir string    // state directory (absolute)
	Out io.Writer // progress and timings; nil: discarded

	root  string // module root (builds the stand-in and the simulator)
	state labState
	t0    time.Time
	outMu sync.Mutex
}

// labState is lab.json in the state directory.
type labState struct {
	Created     time.Time `json:"created"`
	Mongo       string    `json:"mongo"`       // sim, mongod, none
	Initialized bool      `json:"initialized"` // services set to the initial state once
	BrokerLink  string    `json:"broker_link"` // duplex or both
}

// Global files: the network namespaces are machine-wide, so there is one
// lab per machine whatever its state directory.
const (
	globalLock  = "/run/sitectl-lab.lock"
	ownerMarker = "/run/sitectl-lab.owner" // state directory of the lab that is up
)

var dirRE = regexp.MustCompile(`^/[A-Za-z0-9._/+-]+$`)

// Open returns the lab of a state directory: dir, else $SITECTL_LAB_DIR,
// else <module root>/.lab. Nothing is started.
func Open(dir string) (*Env, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	if dir == "" {
		dir = os.Getenv("SITECTL_LAB_DIR")
	}
	if dir == "" {
		dir = filepath.Join(root, ".lab")
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	if !dirRE.MatchString(dir) {
		return nil, fmt.Errorf("lab state directory %q: use a path of letters, digits and . _ + - / only (it goes into shell commands and YAML)", dir)
	}
	e := &Env{Dir: dir, root: root, t0: time.Now()}
	e.loadState()
	return e, nil
}

// moduleRoot finds the sitectl module: `go env GOMOD` from the working
// directory, else the source tree this package was compiled from.
func moduleRoot() (string, error) {
	if out, err := exec.Command(goBin(), "env", "GOMOD").Output(); err == nil {
		if p := strings.TrimSpace(string(out)); p != "" && p != os.DevNull && isSitectl(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		if d := filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..")); isSitectl(d) {
			return d, nil
		}
	}
	return "", errors.New("cannot find the sitectl module (run from its checkout)")
}

func isSitectl(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	return err == nil && strings.Contains(string(b), "module github.com/sitectl/sitectl\n")
}

func goBin() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "root"
}

func (e *Env) runDir() string    { return filepath.Join(e.Dir, "run") }
func (e *Env) statePath() string { return filepath.Join(e.Dir, "lab.json") }

func (e *Env) loadState() {
	b, err := os.ReadFile(e.statePath())
	if err == nil {
		_ = json.Unmarshal(b, &e.state)
	}
}

func (e *Env) saveState() error {
	b, _ := json.MarshalIndent(e.state, "", "  ")
	return writeFile(e.statePath(), string(b)+"\n", 0o644)
}

// MongoMode is sim, mongod or none.
func (e *Env) MongoMode() string { return e.state.Mongo }

// logf prints a progress line with the time since the command started.
func (e *Env) logf(format string, a ...any) {
	if e.Out == nil {
		return
	}
	e.outMu.Lock()
	defer e.outMu.Unlock()
	fmt.Fprintf(e.Out, "[%6.2fs] %s\n", time.Since(e.t0).Seconds(), fmt.Sprintf(format, a...))
}

// timed runs fn and logs how long it took.
func (e *Env) timed(what string, fn func() error) error {
	start := time.Now()
	err := fn()
	if err != nil {
		e.logf("%-34s FAILED after %.2fs", what, time.Since(start).Seconds())
		return fmt.Errorf("%s: %w", what, err)
	}
	e.logf("%-34s %.2fs", what, time.Since(start).Seconds())
	return nil
}

// parallel runs the functions at once and joins their errors.
func parallel(fns ...func() error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = fn() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// gate is a dependency of a start-up job: done once, then open (or failed).
type gate struct {
	ch  chan struct{}
	err error
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

func (g *gate) done(err error) error {
	g.err = err
	close(g.ch)
	return err
}

// after wraps fn so that it runs once every gate is open, and not at all
// when one of them failed.
func after(gates ...*gate) func(func() error) func() error {
	return func(fn func() error) func() error {
		return func() error {
			for _, g := range gates {
				<-g.ch
				if g.err != nil {
					return nil // the gate's own job reports its error
				}
			}
			return fn()
		}
	}
}

// Lock takes the machine-wide lab lock (blocking until ctx ends) and
// returns its release.
func Lock(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(globalLock, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			_ = f.Truncate(0)
			_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			b, _ := os.ReadFile(globalLock)
			f.Close()
			return nil, fmt.Errorf("the lab is locked by pid %s (another lab command or a test using the lab): %w", strings.TrimSpace(string(b)), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Owner returns the state directory of the lab that is up ("" if none).
func Owner() string {
	b, err := os.ReadFile(ownerMarker)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// IsUp reports whether some lab's namespaces exist.
func IsUp() bool {
	for _, n := range Nodes {
		if nsExists(n.NS) {
			return true
		}
	}
	return linkExists("", Bridge)
}

// Requirements lists what is missing to run the lab here: root, ip and ss,
// sshd, haproxy, activemq and java, go, setsid and flock. (nft is only needed by
// CutBrokerLink: see NFTMissing.)
func Requirements() []string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (run as root: namespaces, veths, sshd)")
	}
	for _, tool := range []struct{ bin, pkg string }{
		{"ip", "iproute2"}, {"ss", "iproute2"}, {sshdPath(), "openssh-server"}, {haproxyPath(), "haproxy"},
		{activemqPath(), "activemq"}, {"java", "default-jre-headless (activemq depends on it)"},
		{"setsid", "util-linux"}, {"flock", "util-linux"}, {"timeout", "coreutils"}, {"pkill", "procps"},
	} {
		if _, err := findTool(tool.bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (package %s)", filepath.Base(tool.bin), tool.pkg))
		}
	}
	if _, err := exec.LookPath(goBin()); err != nil {
		missing = append(missing, "go (builds the stand-ins)")
	}
	for _, jar := range []string{"xstream.jar", "jettison.jar"} {
		if !fileExists("/usr/share/activemq/lib/extra/"+jar) && os.Getenv("SITECTL_LAB_ACTIVEMQ") == "" {
			missing = append(missing, "/usr/share/activemq/lib/extra/"+jar+" (scripts/install-test-deps.sh links it)")
		}
	}
	return missing
}

// NFTMissing says why the broker link cannot be cut here ("" when it can).
func NFTMissing() string {
	if _, err := findTool("nft"); err != nil {
		return "nft not found: install the nftables package (apt-get install nftables)"
	}
	return ""
}

// UpOptions tune Up.
type UpOptions struct {
	// Reset puts an existing lab back in its initial state (see Reset).
	Reset bool
	// Replace tears down a lab that is up from another state directory
	// first, instead of refusing.
	Replace bool
}

// Up brings the lab up, or completes it: every piece that already runs is
// left alone, so Up is idempotent. The stand-in services are set to the
// initial state (site A active, site B passive) the first time only, or
// with opts.Reset. The caller holds Lock.
func (e *Env) Up(ctx context.Context, opts UpOptions) error {
	e.t0 = time.Now()
	if m := Requirements(); len(m) > 0 {
		return fmt.Errorf("cannot bring the lab up, missing: %s", strings.Join(m, "; "))
	}
	if owner := Owner(); owner != "" && owner != e.Dir && IsUp() {
		if !opts.Replace {
			return fmt.Errorf("a lab is up from %s; take it down first: SITECTL_LAB_DIR=%s go run ./scripts/lab down", owner, owner)
		}
		other := &Env{Dir: owner, root: e.root, Out: e.Out, t0: e.t0}
		other.loadState()
		e.logf("a lab is up from %s: taking it down first", owner)
		if err := other.Down(ctx); err != nil {
			return err
		}
	}
	fresh := !fileExists(e.statePath())
	if fresh && IsUp() {
		// namespaces without their state (it was deleted): nothing of it
		// can be trusted or found again
		e.logf("lab namespaces exist without their state directory: taking them down first")
		if err := e.Down(ctx); err != nil {
			return err
		}
	}
	if fresh {
		mode, err := e.chooseMongo()
		if err != nil {
			return err
		}
		e.state = labState{Created: time.Now(), Mongo: mode, BrokerLink: brokerLinkFromEnv()}
	}
	if e.state.Mongo == "" {
		e.state.Mongo = MongoAbsent
	}
	if err := os.MkdirAll(e.runDir(), 0o755); err != nil {
		return err
	}
	if err := e.saveState(); err != nil {
		return err
	}
	if err := writeFile(ownerMarker, e.Dir+"\n", 0o644); err != nil {
		return err
	}
	e.logf("lab %s (MongoDB: %s)", e.Dir, e.mongoDescription())

	// Everything at once, each piece as soon as what it needs is there: the
	// network and the configuration first (the brokers, the slowest, start
	// right after them), the stand-ins once built, the members once built.
	netReady := newGate()
	standinBuilt := newGate()
	mongoBuilt := newGate()
	jobs := []func() error{
		func() error {
			return netReady.done(e.timed("network + configuration", func() error {
				err := parallel(
					func() error { return networkUp(ctx) },
					func() error {
						return errors.Join(e.writeSSH(), e.writeServiceScripts(), e.writeBrokerConfigs(),
							writeFile(e.haproxyConfig(), e.haproxyCfg(), 0o644))
					},
				)
				if err == nil && opts.Reset {
					err = e.healNet(ctx)
				}
				return err
			}))
		},
		func() error {
			return standinBuilt.done(e.timed("build stand-in", func() error {
				return e.build(ctx, "./scripts/lab/standin", e.StandinBin())
			}))
		},
		func() error {
			if e.state.Mongo != MongoSim {
				return mongoBuilt.done(nil)
			}
			return mongoBuilt.done(e.timed("build cmd/mongosim", func() error { return e.build(ctx, "./cmd/mongosim", e.MongosimBin()) }))
		},
		after(netReady)(func() error { return e.timed("sshd A", func() error { return e.startSSHD(ctx, SiteA) }) }),
		after(netReady)(func() error { return e.timed("sshd B", func() error { return e.startSSHD(ctx, SiteB) }) }),
		after(netReady)(func() error { return e.timed("sshd W", func() error { return e.startSSHD(ctx, Witness) }) }),
		after(netReady)(func() error {
			return e.timed("broker amq-a (STOMP up)", func() error { return e.startBroker(ctx, SiteA) })
		}),
		after(netReady)(func() error {
			return e.timed("broker amq-b (STOMP up)", func() error { return e.startBroker(ctx, SiteB) })
		}),
		after(netReady)(func() error { return e.timed("haproxy (runtime API up)", func() error { return e.startHAProxy(ctx) }) }),
	}
	if e.state.Mongo == MongoSim && opts.Reset {
		// A reset starts the simulated set from nothing (mongo-a primary,
		// the lab's priorities): a switchover or takeover before it raised
		// another member's priority with replSetReconfig, which no restart
		// of one member undoes, and mongo-a would never be elected again.
		for _, m := range mongoMembers() {
			if err := e.stopMongo(m.Node); err != nil {
				return err
			}
		}
	}
	if e.state.Mongo != MongoAbsent {
		// a set started from nothing begins with mongo-a primary
		initial := true
		for _, m := range mongoMembers() {
			if e.MongoRunning(m.Node) {
				initial = false
			}
		}
		for _, m := range mongoMembers() {
			jobs = append(jobs, after(netReady, mongoBuilt)(func() error {
				return e.timed("mongo "+m.Name, func() error { return e.startMongoMember(ctx, m.Node, initial) })
			}))
		}
	}
	if !e.state.Initialized || opts.Reset {
		jobs = append(jobs, after(netReady, standinBuilt)(func() error {
			return e.timed("services (A active, B passive)", func() error { return e.setServices(ctx) })
		}))
	}
	if err := parallel(jobs...); err != nil {
		return err
	}
	e.state.Initialized = true
	if err := e.saveState(); err != nil {
		return err
	}
	if opts.Reset {
		if err := e.timed("haproxy ready, sessions ended", func() error { return e.resetRuntime(ctx) }); err != nil {
			return err
		}
	}
	// 3. the steady state
	if err := e.settle(ctx, fresh || opts.Reset); err != nil {
		return err
	}
	if err := e.timed("inventory (written, loads)", e.writeInventory); err != nil {
		return err
	}
	e.logf("lab up in %.1fs; inventory %s", time.Since(e.t0).Seconds(), e.InventoryFile())
	return nil
}

func (e *Env) mongoDescription() string {
	switch e.state.Mongo {
	case MongoSim:
		return "simulated by cmd/mongosim"
	case MongoReal:
		return "real mongod"
	}
	return "none (no mongod on PATH and no cmd/mongosim in the module)"
}

// settle waits until the lab is in a steady state: the brokers bridged, a
// MongoDB primary (mongo-a when strict), HAProxy's checks matching the
// stand-ins, and each running connector subscribed.
func (e *Env) settle(ctx context.Context, strict bool) error {
	waits := []func() error{
		func() error {
			return e.timed("network bridge amq-a <-> amq-b", func() error {
				if BrokerLinkCut() || !LinkUp(*NodeOf(SiteA)) || !LinkUp(*NodeOf(SiteB)) || !e.BrokerRunning(SiteA) || !e.BrokerRunning(SiteB) {
					return nil // cut on purpose
				}
				return e.waitBridged(ctx, 60*time.Second)
			})
		},
		func() error {
			return e.timed("haproxy checks settled", func() error { return e.waitHAProxySettled(ctx, 20*time.Second) })
		},
		func() error {
			return e.timed("connectors subscribed", func() error { return e.waitConnectors(ctx, 30*time.Second) })
		},
	}
	if e.state.Mongo == MongoReal {
		waits = append(waits, func() error {
			return e.timed("replSetInitiate", func() error { return e.initiateMongod(ctx) })
		})
	}
	if e.state.Mongo != MongoAbsent && strict {
		waits = append(waits, func() error {
			return e.timed("mongo-a elected primary", func() error { return e.waitPrimary(ctx, SiteA, 60*time.Second) })
		})
	}
	return parallel(waits...)
}

// waitConnectors waits until the connector of every site whose chat runs
// is subscribed.
func (e *Env) waitConnectors(ctx context.Context, limit time.Duration) error {
	return waitFor(ctx, limit, 100*time.Millisecond, "connectors", func() error {
		for _, site := range []string{SiteA, SiteB} {
			if _, ok := e.servicePid(site, "chat"); !ok || !LinkUp(*NodeOf(site)) {
				continue
			}
			c, err := e.Connector(ctx, site)
			if err != nil {
				return err
			}
			if !c.Connected {
				return fmt.Errorf("the connector of site %s is not subscribed (%s)", site, c.LastError)
			}
		}
		return nil
	})
}

// build compiles a package of the module into out.
func (e *Env) build(ctx context.Context, pkg, out string) error {
	cmd := exec.CommandContext(ctx, goBin(), "build", "-o", out, pkg)
	cmd.Dir = e.root
	cmd.Env = os.Environ()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// Down kills every process of the lab, deletes its namespaces, links and
// state directory (the inventory included). The caller holds Lock.
func (e *Env) Down(ctx context.Context) error {
	e.t0 = time.Now()
	dirs := []string{e.Dir}
	if o := Owner(); o != "" && o != e.Dir {
		dirs = append(dirs, o)
	}
	// processes outside the namespaces: session clients
	for _, d := range dirs {
		pids, _ := filepath.Glob(filepath.Join(d, "run", "*.pid"))
		for _, p := range pids {
			if pid, err := readPid(p); err == nil {
				killGroupIf(pid, d)
			}
		}
	}
	// everything inside the namespaces
	var wg sync.WaitGroup
	for _, n := range Nodes {
		if !nsExists(n.NS) {
			continue
		}
		wg.Go(func() {
			for i := 0; i < 50; i++ {
				pids := nsPids(n.NS)
				if len(pids) == 0 {
					return
				}
				for _, p := range pids {
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	// stand-ins whose namespace is already gone (a half-deleted lab)
	for _, d := range dirs {
		killByMarker(filepath.Join(d, "bin") + "/")
	}
	errs := networkDown(ctx)
	for _, d := range dirs {
		if err := removeLabDir(d); err != nil {
			errs = append(errs, err)
		}
	}
	if o := Owner(); o == "" || o == e.Dir || !fileExists(o) {
		_ = os.Remove(ownerMarker)
	}
	e.state = labState{}
	e.logf("lab down: no namespace, no process, no state left")
	return errors.Join(errs...)
}

// killGroupIf SIGKILLs pid's group when pid's command line mentions dir.
func killGroupIf(pid int, dir string) {
	if alive(pid, dir) {
		killGroup(pid)
	}
}

// killByMarker SIGKILLs every process whose command line contains marker.
func killByMarker(marker string) {
	entries, _ := os.ReadDir("/proc")
	for _, en := range entries {
		var pid int
		if _, err := fmt.Sscanf(en.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		if alive(pid, marker) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// removeLabDir deletes a state directory, but only one that is a lab's
// (it holds lab.json or is empty).
func removeLabDir(d string) error {
	if !fileExists(d) {
		return nil
	}
	if !fileExists(filepath.Join(d, "lab.json")) {
		if entries, err := os.ReadDir(d); err != nil || len(entries) > 0 {
			return fmt.Errorf("%s does not look like a lab state directory (no lab.json): not deleted", d)
		}
	}
	return os.RemoveAll(d)
}

// Reset puts the lab back in its initial state without restarting what
// runs: links healed, broker link healed, every broker, MongoDB member,
// sshd and HAProxy running, HAProxy servers ready, sessions ended,
// services as at first (A active, B passive) and no start made to fail;
// then it waits for the steady state (mongo-a primary included).
func (e *Env) Reset(ctx context.Context) error {
	return e.Up(ctx, UpOptions{Reset: true})
}

// healNet undoes the network faults: links, broker link.
func (e *Env) healNet(ctx context.Context) error {
	var errs []error
	for _, n := range Nodes {
		if linkExists("", n.Veth) && !LinkUp(n) {
			errs = append(errs, setLink(ctx, n.Key, true))
		}
	}
	errs = append(errs, healBrokerLink(ctx), healMongoLinks(ctx), healOperatorPaths(ctx))
	return errors.Join(errs...)
}

// resetRuntime puts every HAProxy server back in load balancing, ends the
// chat sessions and makes every stand-in's health answer UP again.
func (e *Env) resetRuntime(ctx context.Context) error {
	errs := []error{setAllServersReady(), e.EndSessions(ctx)}
	for _, site := range []string{SiteA, SiteB} {
		for _, s := range Services {
			if _, ok := e.servicePid(site, s.Name); ok {
				if r, err := e.serviceClient().Post(ServiceURL(site, s.Name)+"/health/ok", "", nil); err == nil {
					r.Body.Close()
				}
			}
		}
	}
	return errors.Join(errs...)
}

// CutOperatorPath cuts only the path between sitectl (the root namespace)
// and node key; the node keeps reaching every other node.
func (e *Env) CutOperatorPath(ctx context.Context, key string) error {
	return cutOperatorPath(ctx, key)
}

// HealOperatorPaths undoes every CutOperatorPath.
func (e *Env) HealOperatorPaths(ctx context.Context) error { return healOperatorPaths(ctx) }

// Fail cuts a node (A, B, W or EDGE) off the network: its link goes down,
// so sitectl, the other nodes and HAProxy cannot reach it, nor it them.
func (e *Env) Fail(ctx context.Context, key string) error { return setLink(ctx, key, false) }

// Heal reconnects a node cut off by Fail.
func (e *Env) Heal(ctx context.Context, key string) error { return setLink(ctx, key, true) }

// StopBroker stops a site's broker (SIGTERM, as a service stop would).
func (e *Env) StopBroker(site string) error {
	if siteOf(site) == nil {
		return fmt.Errorf("no broker on %q (A or B)", site)
	}
	e.stopBroker(siteOf(site).Key)
	return nil
}

// StartBroker starts a site's broker again and waits for its STOMP port
// and, when both sites' links and the broker link are up, for the network
// bridge.
func (e *Env) StartBroker(ctx context.Context, site string) error {
	si := siteOf(site)
	if si == nil {
		return fmt.Errorf("no broker on %q (A or B)", site)
	}
	if err := e.startBroker(ctx, si.Key); err != nil {
		return err
	}
	if BrokerLinkCut() || !LinkUp(*NodeOf(SiteA)) || !LinkUp(*NodeOf(SiteB)) || !e.BrokerRunning(other(si.Key)) {
		return nil
	}
	return e.waitBridged(ctx, 60*time.Second)
}

// CutBrokerLink drops only the ActiveMQ network-connector traffic between
// the sites (nftables rules inside both site namespaces).
func (e *Env) CutBrokerLink(ctx context.Context) error { return cutBrokerLink(ctx) }

// HealBrokerLink removes those rules and waits for the bridge to be
// established again.
func (e *Env) HealBrokerLink(ctx context.Context) error {
	if err := healBrokerLink(ctx); err != nil {
		return err
	}
	if !e.BrokerRunning(SiteA) || !e.BrokerRunning(SiteB) || !LinkUp(*NodeOf(SiteA)) || !LinkUp(*NodeOf(SiteB)) {
		return nil
	}
	return e.waitBridged(ctx, 60*time.Second)
}

// CutMongoLink cuts the link of node key's MongoDB member (A, B or W) to
// the other members; sitectl still reaches it (seed 003 rows 5 and 6).
func (e *Env) CutMongoLink(ctx context.Context, key string) error { return cutMongoLink(ctx, key) }

// HealMongoLinks restores every cut MongoDB link.
func (e *Env) HealMongoLinks(ctx context.Context) error { return healMongoLinks(ctx) }

// StopMongo stops a MongoDB member (A, B or W).
func (e *Env) StopMongo(key string) error { return e.stopMongo(key) }

// StartMongo starts a stopped member again and waits until it answers.
func (e *Env) StartMongo(ctx context.Context, key string) error { return e.startMongo(ctx, key) }
