// Package inventory describes a two-site deployment: its sites, hosts and
// services, and the MongoDB, ActiveMQ and HAProxy parts the checks observe.
// It parses YAML strictly and reports every problem with file:line:column.
package inventory

import (
	"fmt"
	"time"
)

// Pos is a position in a source file (1-based line and column).
type Pos struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Duration is a time.Duration written as "30s", "2m" in YAML.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Role is a site's default role.
type Role string

const (
	Primary   Role = "primary"
	Secondary Role = "secondary"
)

// Group says which runbooks manage a service.
type Group string

const (
	Core      Group = "core"      // takeover / renounce
	Reporting Group = "reporting" // takeover-reporting / renounce-reporting
)

// Kinds of service known to the runbooks. "custom" is anything else.
var Kinds = []string{"chat", "mre", "comms", "ccm", "reporting", "custom"}

// Inventory is the whole deployment.
type Inventory struct {
	Deployment string    `yaml:"deployment"` // name; also the lock name
	Defaults   Defaults  `yaml:"defaults"`
	Lock       LockSpec  `yaml:"lock"`
	Sites      []*Site   `yaml:"sites"`
	Witness    *Witness  `yaml:"witness"` // third location (arbiter), optional
	MongoDB    *MongoDB  `yaml:"mongodb"`
	ActiveMQ   *ActiveMQ `yaml:"activemq"`
	HAProxy    *HAProxy  `yaml:"haproxy"`
	Failover   *Failover `yaml:"failover"` // how a site's loss is confirmed; optional
	Runbooks   []string  `yaml:"runbooks"` // extra runbook files or directories, relative to this file
	Hooks      *Hooks    `yaml:"hooks"`    // commands run before and after runs and steps; optional
	Notify     *Notify   `yaml:"notify"`   // webhooks told of runs; optional

	File   string `yaml:"-"` // the file it was loaded from
	Digest string `yaml:"-"` // sha256 of the file's bytes
}

// Defaults apply to every host unless the host overrides them.
type Defaults struct {
	SSH            SSH      `yaml:"ssh"`
	CommandTimeout Duration `yaml:"command_timeout"` // per remote command; default 30s
	VerifyTimeout  Duration `yaml:"verify_timeout"`  // deadline to reach the desired state; default 60s
}

// DefaultLockDir is where the remote run lock lives unless lock.path says
// otherwise: in the SSH user's home on the lock host ("~/" is that home).
const DefaultLockDir = "~/.local/state/sitectl/remote"

// LockSpec says where the remote run lock lives.
type LockSpec struct {
	Path string `yaml:"path"` // file on the lock host; default ~/.local/state/sitectl/remote/<deployment>.lock (the SSH user's home)
}

// SSH connection settings.
type SSH struct {
	User                  string   `yaml:"user"`
	Port                  int      `yaml:"port"`
	Key                   string   `yaml:"key"`   // private key file
	Agent                 bool     `yaml:"agent"` // use $SSH_AUTH_SOCK
	KnownHosts            string   `yaml:"known_hosts"`
	InsecureIgnoreHostKey bool     `yaml:"insecure_ignore_host_key"` // never the default
	ConnectTimeout        Duration `yaml:"connect_timeout"`          // TCP connect + the server's first byte; default 5s
	// HandshakeTimeout bounds key exchange and authentication once the
	// server has answered and a handshake slot is free; default 30s.
	HandshakeTimeout Duration `yaml:"handshake_timeout"`
	// MaxHandshakes bounds the SSH handshakes sitectl runs at once (CPU
	// work, both ends); defaults.ssh only; 0: 4 per CPU, at least 8.
	MaxHandshakes int `yaml:"max_handshakes"`
}

// Site is one location: A (primary) or B (secondary).
type Site struct {
	Name     string     `yaml:"name"`
	Role     Role       `yaml:"role"`
	Hosts    []*Host    `yaml:"hosts"`
	Services []*Service `yaml:"services"`
	// ActiveMQ consumers of this site are recognised by these client-id
	// prefixes or STOMP host headers.
	ConsumerMatch []string `yaml:"consumer_match"`
	// Fence powers off or isolates the site before a disaster takeover of
	// the other site; optional.
	Fence *Fence `yaml:"fence"`

	Pos Pos `yaml:"-"`
}

// Failover says how a site's loss is confirmed before a disaster takeover,
// and how often the sites may switch (docs/checks.md, "Site loss").
type Failover struct {
	// LossQuorum is how many independent observers (MongoDB members and
	// brokers outside the site, HAProxy, probers) must confirm that a site
	// the operator cannot reach is down; default 2 (all of them if fewer
	// are configured).
	LossQuorum int `yaml:"loss_quorum"`
	// Probers are the hosts that probe a site over TCP (SSH port and the
	// services' probe ports) when its loss is judged; hosts of the judged
	// site itself are skipped. Default: each other site's first host and
	// the witness's first host.
	Probers      []string `yaml:"probers"`
	ProbeTimeout Duration `yaml:"probe_timeout"` // per TCP connect of a probe; default 2s
	// LossWait: when the other site does not answer and some observer
	// already sees it down, a takeover waits this long for its loss to be
	// confirmed (heartbeats and health checks catching up) before it
	// refuses; default 30s.
	LossWait Duration `yaml:"loss_wait"`
	// Cooldown: a takeover or switchover within this time after a
	// completed one is refused unless forced; default 10m.
	Cooldown Duration `yaml:"cooldown"`
	Pos      Pos      `yaml:"-"`
}

// Fence is how a lost site is fenced (STONITH): a command that powers it
// off or isolates it (an IPMI, cloud or switch CLI), and a check that
// confirms it, run with sh -c on the operator's machine or on Host.
type Fence struct {
	Command string   `yaml:"command"`
	Check   string   `yaml:"check"`   // exits 0 once the site is fenced
	Host    string   `yaml:"host"`    // an inventory host outside the site; default: this machine
	Timeout Duration `yaml:"timeout"` // for the command and for the check; default 60s
	Pos     Pos      `yaml:"-"`
}

// Witness is the third location (the MongoDB arbiter's host).
type Witness struct {
	Name  string  `yaml:"name"`
	Hosts []*Host `yaml:"hosts"`
	Pos   Pos     `yaml:"-"`
}

// Host is one machine reached over SSH, or the local machine.
type Host struct {
	Name    string `yaml:"name"`
	Address string `yaml:"address"`
	Local   bool   `yaml:"local"` // run commands here, without SSH
	SSH     SSH    `yaml:"ssh"`   // overrides defaults.ssh field by field
	// Env names the variables of sitectl's environment a local host's
	// commands get, besides PATH, HOME, LANG, LC_ALL, TZ, USER and
	// LOGNAME (local: true only; nothing else of sitectl's environment,
	// credentials included, reaches them).
	Env []string `yaml:"env"`

	Site string `yaml:"-"` // filled in by the loader
	Pos  Pos    `yaml:"-"`
}

// Service is one managed service on one or more hosts of a site.
type Service struct {
	Name    string   `yaml:"name"`
	Kind    string   `yaml:"kind"`  // chat, mre, comms, ccm, reporting, custom
	Group   Group    `yaml:"group"` // core (default) or reporting
	Host    string   `yaml:"host"`  // one host …
	Hosts   []string `yaml:"hosts"` // … or several
	Start   string   `yaml:"start"`
	Stop    string   `yaml:"stop"`
	Status  string   `yaml:"status"`  // exit 0 running; 1-3 stopped; anything else unknown
	Passive string   `yaml:"passive"` // state on the passive site: stopped (default) or running
	Timeout Duration `yaml:"timeout"` // overrides defaults.command_timeout
	Probe   *Probe   `yaml:"probe"`

	Site string `yaml:"-"` // filled in by the loader
	Pos  Pos    `yaml:"-"`
}

// OnHosts returns the hosts the service runs on (Host and Hosts merged).
func (s *Service) OnHosts() []string {
	if s.Host != "" {
		return append([]string{s.Host}, s.Hosts...)
	}
	return s.Hosts
}

// StoppedWhenPassive reports whether a passive site keeps it stopped.
func (s *Service) StoppedWhenPassive() bool { return s.Passive == "" || s.Passive == "stopped" }

// Probe is a health check done from the machine sitectl runs on.
type Probe struct {
	TCP       string   `yaml:"tcp"`        // host:port that must accept a connection
	HTTP      string   `yaml:"http"`       // URL to GET
	Status    int      `yaml:"status"`     // expected HTTP status; default 200
	JSONField string   `yaml:"json_field"` // dotted path in the JSON body
	JSONValue string   `yaml:"json_value"` // expected value (string form)
	Timeout   Duration `yaml:"timeout"`    // default 2s
	Pos       Pos      `yaml:"-"`
}

// Credentials are read from the environment or a file, never from flags.
type Credentials struct {
	UsernameEnv string `yaml:"username_env"`
	PasswordEnv string `yaml:"password_env"`
	File        string `yaml:"file"` // "username:password" on one line, or YAML {username, password}
}

// MongoDB replica set spread over the sites.
type MongoDB struct {
	ReplicaSet  string         `yaml:"replica_set"`
	Credentials *Credentials   `yaml:"credentials"`
	Timeout     Duration       `yaml:"timeout"` // per member; default 3s
	Members     []*MongoMember `yaml:"members"`
	// PrimaryFollowsActive: the primary must be on the active site after a
	// takeover (default false: any writable primary will do; in PSA the
	// member with the highest priority takes it back when it recovers).
	PrimaryFollowsActive bool `yaml:"primary_follows_active"`
	Pos                  Pos  `yaml:"-"`
}

// MongoMember is one replica-set member.
type MongoMember struct {
	Name    string `yaml:"name"`
	Address string `yaml:"address"` // host:port
	Site    string `yaml:"site"`    // a site name or the witness name
	Arbiter bool   `yaml:"arbiter"`
	Pos     Pos    `yaml:"-"`
}

// ActiveMQ brokers in a network of brokers.
type ActiveMQ struct {
	Credentials *Credentials `yaml:"credentials"`
	Timeout     Duration     `yaml:"timeout"` // connect + read-until-quiet; default 3s
	Brokers     []*Broker    `yaml:"brokers"`
	Queues      []string     `yaml:"queues"` // watched queues
	Pos         Pos          `yaml:"-"`
}

// Broker is one ActiveMQ broker.
type Broker struct {
	Name  string `yaml:"name"`
	Site  string `yaml:"site"`
	STOMP string `yaml:"stomp"` // host:port
	Pos   Pos    `yaml:"-"`
}

// HAProxy in front of both sites.
type HAProxy struct {
	RuntimeAPI string            `yaml:"runtime_api"` // unix:///path or tcp://host:port
	Timeout    Duration          `yaml:"timeout"`     // default 2s
	Backends   []*HAProxyBackend `yaml:"backends"`
	Pos        Pos               `yaml:"-"`
}

// HAProxyBackend maps a backend's servers to sites.
type HAProxyBackend struct {
	Name    string            `yaml:"name"`
	Servers map[string]string `yaml:"servers"` // server name -> site name
	Pos     Pos               `yaml:"-"`
}
