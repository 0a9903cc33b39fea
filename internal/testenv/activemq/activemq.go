// Package activemq starts real ActiveMQ Classic 5.x brokers for tests, alone
// or as a two-broker network of brokers (StartPair).
//
// Each broker gets its own generated activemq.xml, data directory, pid file,
// log file and loopback ports (STOMP and OpenWire; no web console, no JMX),
// runs in the foreground in its own process group with a small heap, and is
// killed (its whole process group) in t.Cleanup. The JVM is started the way
// Debian's /usr/bin/activemq starts it, but directly: the script would source
// /usr/share/activemq/activemq-options (which forces -Xmx512M and its own
// ACTIVEMQ_BASE) and, as root, switch to the activemq user, which cannot read
// the test's temporary directories.
//
// When ActiveMQ or Java is not installed the test is skipped, except when the
// CI environment variable is set: there it fails, so that a lane that could
// not run is never reported green. scripts/install-test-deps.sh installs
// them (packages activemq, libxstream-java, libjettison-java).
//
// Advisory messages over STOMP are JSON made by XStream + Jettison, which the
// Debian package does not put on the broker's classpath; they must be linked
// into /usr/share/activemq/lib/extra/. When they are not, but the jars are in
// /usr/share/java, each test broker links them into its own base directory's
// lib/extra (the launcher scans ${activemq.base}/lib/extra too).
package activemq

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sitectl/sitectl/internal/testenv/spawn"
)

// DefaultHome is where Debian's activemq package installs ActiveMQ. The
// SITECTL_ACTIVEMQ_HOME environment variable overrides it; SITECTL_JAVA
// overrides the java binary (default: java on PATH).
const DefaultHome = "/usr/share/activemq"

// Packages needed on Debian to run these brokers with JSON advisories.
var Packages = []string{"activemq", "libxstream-java", "libjettison-java"}

// advisoryJars are the jars STOMP advisories need (XStream + Jettison).
var advisoryJars = []string{"xstream.jar", "jettison.jar"}

// User is one user of the simple authentication plugin.
type User struct {
	Name     string
	Password string
	Groups   string // comma-separated; default "admins"
}

// NetworkConnector is one <networkConnector> of a broker.
type NetworkConnector struct {
	Name string // default "<local>-to-<remote>"
	// URI is the full discovery URI, e.g. "static:(tcp://127.0.0.1:61616)".
	// StartPair fills it in (with fast, non-exponential reconnects).
	URI    string
	Duplex bool
	// DecreaseNetworkConsumerPriority is written as the attribute when set
	// to "true" or "false"; empty leaves it out, so the broker's default
	// applies (false up to 5.17, true from 5.18).
	DecreaseNetworkConsumerPriority string
	// UserName and Password log the bridge into the remote broker when it
	// has authentication.
	UserName, Password string
	// Attrs are more attributes (conduitSubscriptions, networkTTL, …).
	Attrs map[string]string
}

// Options tune Start. The zero value is fine.
type Options struct {
	// Name is the brokerName; default "amq" plus a number.
	Name string
	// Bind is the address the transport connectors listen on; default
	// 127.0.0.1. A lab running the broker in a network namespace sets the
	// namespace's address (and Wrapper).
	Bind string
	// STOMPPort and OpenWirePort; 0 picks a free port on Bind (probed from
	// this process, so only meaningful when Bind is reachable from here).
	STOMPPort, OpenWirePort int
	// Heap is the JVM's -Xmx; default "256m".
	Heap string
	// Users turn on the simple authentication plugin (anonymous access off).
	Users []User
	// NetworkConnectors are written into the config as given.
	NetworkConnectors []NetworkConnector
	// ExtraXML is inserted inside <broker> verbatim (e.g. a destinationPolicy).
	ExtraXML string
	// Wrapper prefixes the java command, e.g. {"ip", "netns", "exec", "siteA"}.
	Wrapper []string
	// ReadyTimeout bounds the wait for the STOMP port to answer a CONNECT;
	// default 60s (a cold JVM on 2 busy cores can take several seconds).
	ReadyTimeout time.Duration
	// LogLevel of the broker's log4j root logger; default INFO. The log is
	// printed when the test fails.
	LogLevel string
	// Persistent turns on the KahaDB store in the data directory (default:
	// in-memory, which starts faster).
	Persistent bool
}

// Broker is one running (or stopped) ActiveMQ broker.
type Broker struct {
	Name         string
	Bind         string // address the connectors listen on
	STOMPPort    int
	OpenWirePort int

	Dir        string // ACTIVEMQ_BASE: conf/, data/, tmp/, lib/extra, broker.log, activemq.pid
	ConfigFile string // the generated activemq.xml
	PIDFile    string // the JVM's pid while it runs
	LogFile    string // stdout+stderr of the JVM, log4j output included
	// Argv is the java command line (Wrapper first) that runs the broker in
	// the foreground; Start and StartPair run it themselves, callers of
	// Prepare run it their own way.
	Argv []string

	opts Options
	t    testing.TB

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Available reports why brokers cannot be started here ("" when they can):
// no java, no ActiveMQ, or no XStream/Jettison for JSON advisories.
func Available() string {
	_, _, why := locate()
	return why
}

func locate() (java, home, why string) {
	home = os.Getenv("SITECTL_ACTIVEMQ_HOME")
	if home == "" {
		home = DefaultHome
	}
	if _, err := os.Stat(filepath.Join(home, "bin", "activemq.jar")); err != nil {
		return "", "", fmt.Sprintf("ActiveMQ not installed (%v)", err)
	}
	java = os.Getenv("SITECTL_JAVA")
	if java == "" {
		p, err := exec.LookPath("java")
		if err != nil {
			return "", "", "java not found on PATH"
		}
		java = p
	}
	for _, j := range advisoryJars {
		if _, err := os.Stat(filepath.Join(home, "lib", "extra", j)); err == nil {
			continue
		}
		if _, err := os.Stat(filepath.Join("/usr/share/java", j)); err != nil {
			return "", "", fmt.Sprintf("%s is neither in %s/lib/extra nor in /usr/share/java (STOMP advisories need XStream and Jettison)", j, home)
		}
	}
	return java, home, ""
}

// Require skips the test when brokers cannot be started here, and fails it
// when the CI environment variable is set.
func Require(t testing.TB) {
	t.Helper()
	if why := Available(); why != "" {
		msg := why + "; install it with scripts/install-test-deps.sh (apt-get install -y " + strings.Join(Packages, " ") + ")"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set: an ActiveMQ lane that cannot run is a failure, not a skip)")
		}
		t.Skip(msg)
	}
}

// Start starts one broker and returns once its STOMP port answers a CONNECT.
func Start(t testing.TB, o Options) *Broker {
	t.Helper()
	Require(t)
	b, err := newBroker(t, o)
	if err == nil {
		err = b.start()
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Link says how StartPair joins the two brokers.
type Link int

const (
	// LinkDuplex: one duplex networkConnector on A towards B (the setup the
	// tech notes observed).
	LinkDuplex Link = iota
	// LinkBoth: one plain networkConnector each way.
	LinkBoth
	// LinkNone: no network connector; two independent brokers.
	LinkNone
)

// PairOptions tune StartPair.
type PairOptions struct {
	A, B Options // per broker; names default to amqA and amqB
	Link Link
	// DecreaseNetworkConsumerPriority for the connector(s): "true", "false"
	// or "" (attribute left out: the broker's default).
	DecreaseNetworkConsumerPriority string
	// BridgeUser and BridgePassword log the bridge into the other broker.
	BridgeUser, BridgePassword string
}

// Pair is two brokers of one network.
type Pair struct {
	A, B *Broker
	Link Link
}

// StartPair starts two brokers in parallel, joined as o.Link says, and
// returns once both answer on STOMP and (unless LinkNone) the bridge is
// established.
func StartPair(t testing.TB, o PairOptions) *Pair {
	t.Helper()
	Require(t)
	if o.A.Name == "" {
		o.A.Name = "amqA"
	}
	if o.B.Name == "" {
		o.B.Name = "amqB"
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		a, err := newBroker(t, o.A)
		if err != nil {
			t.Fatal(err)
		}
		b, err := newBroker(t, o.B)
		if err != nil {
			t.Fatal(err)
		}
		conn := func(from, to *Broker, duplex bool) NetworkConnector {
			return NetworkConnector{
				Name:                            from.Name + "-to-" + to.Name,
				URI:                             to.StaticURI(),
				Duplex:                          duplex,
				DecreaseNetworkConsumerPriority: o.DecreaseNetworkConsumerPriority,
				UserName:                        o.BridgeUser,
				Password:                        o.BridgePassword,
			}
		}
		switch o.Link {
		case LinkDuplex:
			a.opts.NetworkConnectors = append(a.opts.NetworkConnectors, conn(a, b, true))
		case LinkBoth:
			a.opts.NetworkConnectors = append(a.opts.NetworkConnectors, conn(a, b, false))
			b.opts.NetworkConnectors = append(b.opts.NetworkConnectors, conn(b, a, false))
		}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, br := range []*Broker{a, b} {
			wg.Go(func() { errs[i] = br.start() })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			a.Kill()
			b.Kill()
			lastErr = err
			if isPortClash(a) || isPortClash(b) {
				continue
			}
			t.Fatal(err)
		}
		p := &Pair{A: a, B: b, Link: o.Link}
		if o.Link != LinkNone {
			if err := p.WaitBridged(30 * time.Second); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	t.Fatal(lastErr)
	return nil
}

// WaitBridged waits until every connector of the pair logged that its
// network bridge is established.
func (p *Pair) WaitBridged(limit time.Duration) error {
	var brokers []*Broker
	switch p.Link {
	case LinkDuplex:
		brokers = []*Broker{p.A}
	case LinkBoth:
		brokers = []*Broker{p.A, p.B}
	}
	for _, b := range brokers {
		if err := b.WaitLog("has been established", limit); err != nil {
			return fmt.Errorf("network bridge of %s: %w", b.Name, err)
		}
	}
	return nil
}

var nameSeq struct {
	sync.Mutex
	n int
}

func newBroker(t testing.TB, o Options) (*Broker, error) {
	b, err := Prepare(t.TempDir(), o)
	if err != nil {
		return nil, err
	}
	b.t = t
	return b, nil
}

// Prepare lays out a broker in dir (conf/activemq.xml, conf/log4j.properties,
// data/, tmp/, lib/extra) and returns it with its command line in Argv,
// without starting it. It is for callers that manage the process
// themselves (the lab, in a network namespace: set Bind, fixed ports and
// NetworkConnectors with explicit URIs); Start, StartPair, Stop and Restart
// are for tests. Ports left at 0 are picked free on Bind.
func Prepare(dir string, o Options) (*Broker, error) {
	java, home, why := locate()
	if why != "" {
		return nil, errors.New(why)
	}
	if o.Name == "" {
		nameSeq.Lock()
		nameSeq.n++
		o.Name = "amq" + strconv.Itoa(nameSeq.n)
		nameSeq.Unlock()
	}
	if o.Bind == "" {
		o.Bind = "127.0.0.1"
	}
	if o.Heap == "" {
		o.Heap = "256m"
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 60 * time.Second
	}
	if o.LogLevel == "" {
		o.LogLevel = "INFO"
	}
	b := &Broker{
		Name:         o.Name,
		Bind:         o.Bind,
		STOMPPort:    o.STOMPPort,
		OpenWirePort: o.OpenWirePort,
		Dir:          dir,
		ConfigFile:   filepath.Join(dir, "conf", "activemq.xml"),
		PIDFile:      filepath.Join(dir, "activemq.pid"),
		LogFile:      filepath.Join(dir, "broker.log"),
		opts:         o,
	}
	for _, d := range []string{"conf", "data", "tmp", filepath.Join("lib", "extra")} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	for _, j := range advisoryJars {
		if _, err := os.Stat(filepath.Join(home, "lib", "extra", j)); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("/usr/share/java", j), filepath.Join(dir, "lib", "extra", j)); err != nil {
			return nil, err
		}
	}
	var err error
	if b.STOMPPort == 0 {
		if b.STOMPPort, err = freePort(o.Bind); err != nil {
			return nil, err
		}
	}
	if b.OpenWirePort == 0 {
		if b.OpenWirePort, err = freePort(o.Bind); err != nil {
			return nil, err
		}
	}
	conf := filepath.Join(dir, "conf")
	log4j := strings.Join([]string{
		"log4j.rootLogger=" + o.LogLevel + ", out",
		"log4j.appender.out=org.apache.log4j.ConsoleAppender",
		"log4j.appender.out.layout=org.apache.log4j.PatternLayout",
		"log4j.appender.out.layout.ConversionPattern=%d{HH:mm:ss,SSS} %-5p %c{1} - %m%n",
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(conf, "log4j.properties"), []byte(log4j), 0o644); err != nil {
		return nil, err
	}
	b.Argv = append(append([]string{}, o.Wrapper...), java,
		"-Xms64m", "-Xmx"+o.Heap,
		"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData",
		"-Djava.net.preferIPv4Stack=true",
		"--add-reads=java.xml=java.logging",
		"--add-opens", "java.base/java.security=ALL-UNNAMED",
		"--add-opens", "java.base/java.net=ALL-UNNAMED",
		"--add-opens", "java.base/java.lang=ALL-UNNAMED",
		"--add-opens", "java.base/java.util=ALL-UNNAMED",
		"--add-opens", "java.naming/javax.naming.spi=ALL-UNNAMED",
		"--add-opens", "java.rmi/sun.rmi.transport.tcp=ALL-UNNAMED",
		"--add-opens", "java.base/java.util.concurrent=ALL-UNNAMED",
		"--add-opens", "java.base/java.util.concurrent.atomic=ALL-UNNAMED",
		"-Djava.awt.headless=true",
		"-Djava.io.tmpdir="+filepath.Join(dir, "tmp"),
		"-Dlog4j.configuration=file:"+filepath.Join(conf, "log4j.properties"),
		"-Dactivemq.classpath="+conf,
		"-Dactivemq.home="+home,
		"-Dactivemq.base="+dir,
		"-Dactivemq.conf="+conf,
		"-Dactivemq.data="+filepath.Join(dir, "data"),
		"-jar", filepath.Join(home, "bin", "activemq.jar"),
		"start", "xbean:file:"+b.ConfigFile,
	)
	if err := os.WriteFile(b.ConfigFile, []byte(b.config()), 0o644); err != nil {
		return nil, err
	}
	return b, nil
}

// STOMPAddr is "bind:stompport", what an inventory's broker stomp: holds.
func (b *Broker) STOMPAddr() string {
	return net.JoinHostPort(b.Bind, strconv.Itoa(b.STOMPPort))
}

// OpenWireAddr is "bind:openwireport".
func (b *Broker) OpenWireAddr() string {
	return net.JoinHostPort(b.Bind, strconv.Itoa(b.OpenWirePort))
}

// StaticURI is the discovery URI another broker's networkConnector uses to
// reach this one, with fast fixed-delay reconnects (a restarted broker is
// bridged again within about a second).
func (b *Broker) StaticURI() string {
	return "static:(tcp://" + b.OpenWireAddr() + ")?initialReconnectDelay=100&maxReconnectDelay=1000&useExponentialBackOff=false"
}

// Config returns the generated activemq.xml.
func (b *Broker) Config() string { return b.config() }

func attr(k, v string) string { return " " + k + `="` + html.EscapeString(v) + `"` }

func (b *Broker) config() string {
	o := b.opts
	var x strings.Builder
	x.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!-- generated by internal/testenv/activemq -->
<beans xmlns="http://www.springframework.org/schema/beans"
       xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
       xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
                           http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core"`)
	x.WriteString(attr("brokerName", b.Name))
	x.WriteString(attr("dataDirectory", filepath.Join(b.Dir, "data")))
	x.WriteString(attr("persistent", strconv.FormatBool(o.Persistent)))
	x.WriteString(` useJmx="false" schedulerSupport="false" advisorySupport="true">
`)
	if o.Persistent {
		x.WriteString("    <persistenceAdapter>\n      <kahaDB" + attr("directory", filepath.Join(b.Dir, "data", "kahadb")) + "/>\n    </persistenceAdapter>\n")
	}
	if len(o.Users) > 0 {
		x.WriteString("    <plugins>\n      <simpleAuthenticationPlugin anonymousAccessAllowed=\"false\">\n        <users>\n")
		for _, u := range o.Users {
			g := u.Groups
			if g == "" {
				g = "admins"
			}
			x.WriteString("          <authenticationUser" + attr("username", u.Name) + attr("password", u.Password) + attr("groups", g) + "/>\n")
		}
		x.WriteString("        </users>\n      </simpleAuthenticationPlugin>\n    </plugins>\n")
	}
	if len(o.NetworkConnectors) > 0 {
		x.WriteString("    <networkConnectors>\n")
		for _, nc := range o.NetworkConnectors {
			x.WriteString("      <networkConnector")
			x.WriteString(attr("name", nc.Name))
			x.WriteString(attr("uri", nc.URI))
			x.WriteString(attr("duplex", strconv.FormatBool(nc.Duplex)))
			if nc.DecreaseNetworkConsumerPriority != "" {
				x.WriteString(attr("decreaseNetworkConsumerPriority", nc.DecreaseNetworkConsumerPriority))
			}
			if nc.UserName != "" {
				x.WriteString(attr("userName", nc.UserName) + attr("password", nc.Password))
			}
			keys := make([]string, 0, len(nc.Attrs))
			for k := range nc.Attrs {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				x.WriteString(attr(k, nc.Attrs[k]))
			}
			x.WriteString("/>\n")
		}
		x.WriteString("    </networkConnectors>\n")
	}
	x.WriteString(`    <systemUsage>
      <systemUsage>
        <memoryUsage><memoryUsage limit="64 mb"/></memoryUsage>
        <storeUsage><storeUsage limit="1 gb"/></storeUsage>
        <tempUsage><tempUsage limit="1 gb"/></tempUsage>
      </systemUsage>
    </systemUsage>
`)
	if o.ExtraXML != "" {
		x.WriteString(o.ExtraXML + "\n")
	}
	x.WriteString("    <transportConnectors>\n")
	x.WriteString(`      <transportConnector name="openwire"` + attr("uri", "tcp://"+b.OpenWireAddr()) + "/>\n")
	x.WriteString(`      <transportConnector name="stomp"` + attr("uri", "stomp://"+b.STOMPAddr()) + "/>\n")
	x.WriteString("    </transportConnectors>\n  </broker>\n</beans>\n")
	return x.String()
}

// start writes the config and runs the JVM until STOMP answers.
func (b *Broker) start() error {
	if err := os.WriteFile(b.ConfigFile, []byte(b.config()), 0o644); err != nil {
		return err
	}
	logf, err := os.OpenFile(b.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== %s starting %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(b.Argv, " "))
	cmd := exec.Command(b.Argv[0], b.Argv[1:]...)
	cmd.Dir = b.Dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = append(os.Environ(), "ACTIVEMQ_PIDFILE="+b.PIDFile)
	// killed when the test binary ends (spawn: not when the thread that
	// forked it ends)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := spawn.Start(cmd); err != nil {
		logf.Close()
		return fmt.Errorf("start broker %s: %w", b.Name, err)
	}
	logf.Close()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	b.mu.Lock()
	first := b.cmd == nil
	b.cmd, b.exited = cmd, exited
	b.mu.Unlock()
	_ = os.WriteFile(b.PIDFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	if first {
		b.t.Cleanup(func() {
			b.Kill()
			if b.t.Failed() {
				b.t.Logf("broker %s (stomp %s) log:\n%s", b.Name, b.STOMPAddr(), tail(b.Log(), 120))
			}
		})
	}
	if err := b.waitSTOMP(b.opts.ReadyTimeout, exited); err != nil {
		b.Kill()
		return fmt.Errorf("broker %s (stomp %s, openwire %s): %w\n%s", b.Name, b.STOMPAddr(), b.OpenWireAddr(), err, tail(b.Log(), 60))
	}
	return nil
}

// Restart starts a stopped broker again with the same config and ports.
func (b *Broker) Restart() error {
	b.Kill()
	return b.start()
}

// Running reports whether the JVM is alive.
func (b *Broker) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return false
	}
	select {
	case <-b.exited:
		return false
	default:
		return true
	}
}

// Stop stops the broker gracefully (SIGTERM: the broker closes its
// connections and bridges), then kills what is left of its process group.
func (b *Broker) Stop() { b.signal(syscall.SIGTERM, 10*time.Second) }

// Kill kills the broker's JVM (and its whole process group) at once, as a
// crash would. Safe to call more than once and on a stopped broker.
func (b *Broker) Kill() { b.signal(syscall.SIGKILL, 0) }

func (b *Broker) signal(sig syscall.Signal, grace time.Duration) {
	b.mu.Lock()
	cmd, exited := b.cmd, b.exited
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	pgid := cmd.Process.Pid
	select {
	case <-exited:
		_ = syscall.Kill(-pgid, syscall.SIGKILL) // leftovers of a wrapper
		return
	default:
	}
	_ = syscall.Kill(-pgid, sig)
	if sig != syscall.SIGKILL {
		select {
		case <-exited:
		case <-time.After(grace):
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-exited
	_ = os.Remove(b.PIDFile)
}

// Log returns what the broker has logged so far.
func (b *Broker) Log() string {
	data, _ := os.ReadFile(b.LogFile)
	return string(data)
}

// WaitLog waits until the log of the current run contains s.
func (b *Broker) WaitLog(s string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		l := b.Log()
		if i := strings.LastIndex(l, "=== "); i >= 0 {
			l = l[i:]
		}
		if strings.Contains(l, s) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("broker %s did not log %q within %s", b.Name, s, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func isPortClash(b *Broker) bool {
	return strings.Contains(b.Log(), "Address already in use")
}

// waitSTOMP polls until a STOMP CONNECT gets CONNECTED or ERROR (with
// authentication on, an anonymous CONNECT is refused with an ERROR frame,
// which still proves the broker is up).
func (b *Broker) waitSTOMP(limit time.Duration, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var lastErr error
	for {
		select {
		case <-exited:
			return errors.New("the JVM exited before the broker was ready")
		case <-ctx.Done():
			return fmt.Errorf("STOMP not ready after %s: %v", limit, lastErr)
		default:
		}
		err := STOMPReady(b.STOMPAddr())
		if err == nil {
			return nil
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
}

// STOMPReady reports whether a STOMP server answers a CONNECT at addr
// (host:port) within a few seconds: CONNECTED, or ERROR (with
// authentication on, an anonymous CONNECT is refused, which still proves
// the broker is up).
func STOMPReady(addr string) error {
	cmd, err := stompHello(addr)
	if err != nil {
		return err
	}
	if cmd != "CONNECTED" && cmd != "ERROR" {
		return fmt.Errorf("unexpected answer %q to CONNECT", cmd)
	}
	return nil
}

// stompHello sends a STOMP CONNECT and returns the command of the answer.
func stompHello(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("CONNECT\naccept-version:1.2\nhost:testenv\nheart-beat:0,0\n\n\x00")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	_, _ = c.Write([]byte("DISCONNECT\n\n\x00"))
	return strings.TrimSpace(line), nil
}

func freePort(bind string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(bind, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, n int) string {
	lines := bytes.Split([]byte(s), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
