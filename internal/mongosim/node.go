package mongosim

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdg-go/scram"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Auth makes members require SCRAM-SHA-256 authentication (user in the
// admin database) for every command except the handshake ones.
type Auth struct {
	User     string
	Password string
}

// String never shows the password.
func (a Auth) String() string { return fmt.Sprintf("{User:%s Password:[redacted]}", a.User) }

// NodeOptions configures one member.
type NodeOptions struct {
	Name    string       // this member's label (must match one of Members)
	Members []MemberSpec // the whole initial configuration, this member included
	SetName string       // replica set name; default "rs0"

	// Listener, if set, is used the first time the node starts (so a caller
	// can pick free ports before building Members). Later starts listen on
	// the member's Addr again.
	Listener net.Listener

	ElectionTimeout time.Duration // default 10s
	Heartbeat       time.Duration // default 500ms

	// InitialPrimary names the member that starts as primary in term 1, as
	// if an election had already happened. Empty: all members start as
	// secondaries in term 0 and elect a primary after ElectionTimeout.
	InitialPrimary string

	// LegacyElectionMetrics makes replSetGetStatus report
	// electionCandidateMetrics.termAtElection (as MongoDB 4.2 did) instead
	// of electionTerm.
	LegacyElectionMetrics bool

	Auth *Auth

	// Blocked, if set, is asked before any member-to-member message: a true
	// answer drops the message as a cut network link would.
	Blocked func(from, to string) bool

	Logf func(format string, args ...any)
}

// Node is one simulated replica-set member.
type Node struct {
	name      string
	host      string
	opts      NodeOptions
	nameByHst map[string]string
	scram     *scram.Server
	reqID     atomic.Int32
	connID    atomic.Int64

	mu sync.Mutex

	// Kept across Stop/Start (the "data files").
	cfg       rsConfig
	term      int64
	lastVote  struct{ term, candidate int64 }
	oplog     []entry
	data      map[string][]bson.Raw
	committed OpTime

	// Reset by Start.
	running      bool
	ln           net.Listener
	ctx          context.Context
	cancel       context.CancelFunc
	wg           sync.WaitGroup
	conns        map[net.Conn]struct{}
	pools        map[string][]net.Conn
	startedAt    time.Time
	processID    bson.ObjectID
	topoCounter  int64
	topoCh       chan struct{}
	helloSig     string
	state        int
	peers        map[int]*peer
	timerBase    time.Time
	offset       time.Duration
	takeoverAt   time.Time
	stepDownTill time.Time
	frozenTill   time.Time
	electing     bool
	electionTS   bson.Timestamp
	electionDate time.Time
	electionOpT  OpTime
	cand         *candidateMetrics
	part         *participantMetrics
	syncSource   int
	replPaused   bool
	hbInflight   map[int]bool
	intercept    func(cmd string, body bson.Raw) (bson.Raw, bool)
	initPrimary  bool // become primary in term 1 on the first Start
	lastPrimary  int  // member _id of the last primary seen, -1 if none
}

type entry struct {
	OpTime
	Wall time.Time
	Op   string // "n" no-op, "i" insert
	NS   string
	Doc  bson.Raw
}

type peer struct {
	id            int
	host          string
	healthy       bool
	contacted     bool
	lastOK        time.Time
	lastAttempt   time.Time
	lastRecv      time.Time
	upSince       time.Time
	lastErr       string
	ping          time.Duration
	state         int
	term          int64
	optime        OpTime
	optimeWall    time.Time
	configVersion int64
	configTerm    int64
	electionTS    bson.Timestamp
	electionDate  time.Time
	syncSource    string
	syncSourceID  int
}

type candidateMetrics struct {
	reason        string
	date          time.Time
	term          int64
	committed     OpTime
	lastSeen      OpTime
	votesNeeded   int
	priority      float64
	timeoutMillis int64
	priorPrimary  int
	newTermStart  time.Time
	wMajorityDate time.Time
}

type participantMetrics struct {
	voted       bool
	term        int64
	date        time.Time
	candidate   int
	reason      string
	lastApplied OpTime
	priority    float64
}

// NewNode prepares a member; Start makes it listen.
func NewNode(o NodeOptions) (*Node, error) {
	if o.SetName == "" {
		o.SetName = "rs0"
	}
	if o.ElectionTimeout <= 0 {
		o.ElectionTimeout = 10 * time.Second
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 500 * time.Millisecond
	}
	n := &Node{name: o.Name, opts: o, nameByHst: map[string]string{}, data: map[string][]bson.Raw{}}
	cfg := rsConfig{SetName: o.SetName, Version: 1, Term: 0, ElectionTimeout: o.ElectionTimeout, Heartbeat: o.Heartbeat,
		ReplicaSetID: replicaSetID(o.SetName, o.Members)}
	ids := map[int]bool{}
	for _, s := range o.Members {
		if s.Addr == "" {
			return nil, fmt.Errorf("member %q has no address", s.Name)
		}
		if ids[s.ID] {
			return nil, fmt.Errorf("member _id %d is used twice", s.ID)
		}
		ids[s.ID] = true
		name := s.Name
		if name == "" {
			name = s.Addr
		}
		n.nameByHst[s.Addr] = name
		if name == o.Name {
			n.host = s.Addr
		}
		m := rsMember{ID: s.ID, Host: s.Addr, Priority: s.Priority, Votes: s.Votes, Arbiter: s.Arbiter}
		if m.Arbiter {
			m.Priority, m.Votes = 0, 1
		}
		if m.Votes == 0 {
			m.Priority = 0
		}
		cfg.Members = append(cfg.Members, m)
	}
	if n.host == "" {
		return nil, fmt.Errorf("member %q is not in the member list", o.Name)
	}
	if o.InitialPrimary != "" {
		found := false
		for _, s := range o.Members {
			if s.Name == o.InitialPrimary {
				found = true
				if s.Arbiter || s.Priority <= 0 {
					return nil, fmt.Errorf("initial primary %q is not electable", s.Name)
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("initial primary %q is not a member", o.InitialPrimary)
		}
		cfg.Term = 1
		n.term = 1
	}
	if c, err := parseConfig(mustMarshal(cfg.doc()), &cfg); err != nil {
		return nil, fmt.Errorf("initial configuration: %w", err)
	} else {
		c.Term = cfg.Term
		n.cfg = c
	}
	if o.Auth != nil {
		salt := make([]byte, 16)
		for i := range salt {
			salt[i] = byte(rand.IntN(256))
		}
		client, err := scram.SHA256.NewClient(o.Auth.User, o.Auth.Password, "")
		if err != nil {
			return nil, fmt.Errorf("auth: %v", err)
		}
		creds := client.GetStoredCredentials(scram.KeyFactors{Salt: string(salt), Iters: 4096})
		user := o.Auth.User
		n.scram, err = scram.SHA256.NewServer(func(u string) (scram.StoredCredentials, error) {
			if u != user {
				return scram.StoredCredentials{}, errors.New("unknown user")
			}
			return creds, nil
		})
		if err != nil {
			return nil, fmt.Errorf("auth: %v", err)
		}
	}
	n.initPrimary = o.InitialPrimary == o.Name
	return n, nil
}

// replicaSetID derives settings.replicaSetId from the set name and the
// members, so that separate processes given the same members agree on it.
func replicaSetID(set string, ms []MemberSpec) bson.ObjectID {
	hosts := make([]string, 0, len(ms))
	for _, m := range ms {
		hosts = append(hosts, m.Addr)
	}
	sort.Strings(hosts)
	sum := sha256.Sum256([]byte(set + "\x00" + strings.Join(hosts, "\x00")))
	var id bson.ObjectID
	copy(id[:], sum[:])
	return id
}

func mustMarshal(d any) bson.Raw {
	b, err := bson.Marshal(d)
	if err != nil {
		panic(err)
	}
	return b
}

// Name is the member's label; Addr its host:port.
func (n *Node) Name() string { return n.name }
func (n *Node) Addr() string { return n.host }

func (n *Node) logf(format string, args ...any) {
	if n.opts.Logf != nil {
		n.opts.Logf("[%s] "+format, append([]any{n.name}, args...)...)
	}
}

func (n *Node) nameOf(host string) string {
	if s, ok := n.nameByHst[host]; ok {
		return s
	}
	return host
}

func (n *Node) blocked(other string) bool {
	return n.opts.Blocked != nil && n.opts.Blocked(n.name, other)
}

// Running reports whether the node is started.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.running
}

// Start makes the node listen and take part in the set again. A restarted
// node keeps its oplog, data, term and configuration; it comes back as a
// secondary (or arbiter) with a new topologyVersion processId.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.running {
		return nil
	}
	ln := n.opts.Listener
	n.opts.Listener = nil
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", n.host); err != nil {
			return fmt.Errorf("member %s: %w", n.name, err)
		}
	}
	now := time.Now()
	n.ln = ln
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.conns = map[net.Conn]struct{}{}
	n.pools = map[string][]net.Conn{}
	n.startedAt = now
	n.processID = bson.NewObjectID()
	n.topoCh = make(chan struct{})
	n.peers = map[int]*peer{}
	n.hbInflight = map[int]bool{}
	n.timerBase = now
	n.newOffsetLocked()
	n.takeoverAt, n.stepDownTill, n.frozenTill = time.Time{}, time.Time{}, time.Time{}
	n.electing, n.cand, n.part = false, nil, nil
	n.syncSource, n.lastPrimary = -1, -1
	n.running = true
	n.state = StateSecondary
	if self, ok := n.cfg.byHost(n.host); !ok {
		n.state = StateRemoved
	} else if self.Arbiter {
		n.state = StateArbiter
	} else if n.initPrimary {
		n.initPrimary = false
		n.becomePrimaryLocked("electionTimeout", 1, -1, now)
	}
	n.syncPeersLocked()
	n.afterChangeLocked()
	n.wg.Add(3)
	go n.acceptLoop(ln)
	go n.heartbeatLoop()
	go n.tickLoop()
	n.logf("listening on %s as %s (term %d)", n.host, StateString(n.state), n.term)
	return nil
}

// Stop closes the listener and every connection, as a killed process
// would. The node's data stays for the next Start.
func (n *Node) Stop() {
	n.mu.Lock()
	if !n.running {
		n.mu.Unlock()
		return
	}
	n.running = false
	n.cancel()
	_ = n.ln.Close()
	for c := range n.conns {
		_ = c.Close()
	}
	for _, p := range n.pools {
		for _, c := range p {
			_ = c.Close()
		}
	}
	n.pools = map[string][]net.Conn{}
	close(n.topoCh)
	n.topoCh = make(chan struct{})
	n.mu.Unlock()
	n.wg.Wait()
	n.logf("stopped")
}

func (n *Node) newOffsetLocked() {
	limit := int64(n.cfg.ElectionTimeout) * 15 / 100
	n.offset = time.Duration(rand.Int64N(limit + 1))
}

// SetIntercept installs a fault-injection hook: for every command the hook
// may return a reply document to send instead of the real one (ok true),
// or (nil, true) to close the connection without answering. Pass nil to
// remove it.
func (n *Node) SetIntercept(f func(cmd string, body bson.Raw) (reply bson.Raw, ok bool)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.intercept = f
}

// PauseReplication stops (or resumes) this member pulling oplog entries, so
// that it falls behind the primary.
func (n *Node) PauseReplication(paused bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.replPaused = paused
}

// NodeStatus is a test-side view of a member (not a MongoDB reply).
type NodeStatus struct {
	Name          string
	Addr          string
	Running       bool
	State         int
	StateStr      string
	Term          int64
	Applied       OpTime
	ConfigVersion int64
	ConfigTerm    int64 // -1: absent
	LastElection  string
}

// Status returns the member's own view.
func (n *Node) Status() NodeStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := NodeStatus{Name: n.name, Addr: n.host, Running: n.running, State: n.state, StateStr: StateString(n.state),
		Term: n.term, Applied: n.lastAppliedLocked(), ConfigVersion: n.cfg.Version, ConfigTerm: n.cfg.Term}
	if !n.running {
		s.StateStr = "(not running)"
	}
	if n.cand != nil {
		s.LastElection = n.cand.reason
	}
	return s
}

// bumpLocked signals a topology change to awaitable hello callers.
func (n *Node) bumpLocked() {
	n.topoCounter++
	close(n.topoCh)
	n.topoCh = make(chan struct{})
}

// afterChangeLocked bumps the topology version when what hello reports has
// changed.
func (n *Node) afterChangeLocked() {
	primary := ""
	if p := n.seenPrimaryLocked(); p != nil {
		primary = p.host
	}
	sig := fmt.Sprintf("%d|%s|%d|%d|%d", n.state, primary, n.cfg.Version, n.cfg.Term, n.term)
	if sig != n.helloSig {
		n.helloSig = sig
		n.bumpLocked()
	}
}

func (n *Node) acceptLoop(ln net.Listener) {
	defer n.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		n.mu.Lock()
		if !n.running || n.ln != ln {
			n.mu.Unlock()
			_ = c.Close()
			return
		}
		n.conns[c] = struct{}{}
		n.wg.Add(1)
		n.mu.Unlock()
		go n.serveConn(c)
	}
}

func (n *Node) forget(c net.Conn) {
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
	_ = c.Close()
}

var errLinkBlocked = errors.New("network link blocked")

func (n *Node) rpcTimeout() time.Duration {
	n.mu.Lock()
	et := n.cfg.ElectionTimeout
	n.mu.Unlock()
	return min(max(et/2, 200*time.Millisecond), 2*time.Second)
}

// rpc sends one command to another member and returns its reply document.
func (n *Node) rpc(host string, cmd bson.D, timeout time.Duration) (bson.Raw, error) {
	if n.blocked(n.nameOf(host)) {
		n.dropPool(host)
		return nil, errLinkBlocked
	}
	n.mu.Lock()
	if !n.running {
		n.mu.Unlock()
		return nil, errors.New("member stopped")
	}
	ctx := n.ctx
	var c net.Conn
	if p := n.pools[host]; len(p) > 0 {
		c, n.pools[host] = p[len(p)-1], p[:len(p)-1]
	}
	n.mu.Unlock()
	if c == nil {
		d := net.Dialer{Timeout: timeout}
		var err error
		if c, err = d.DialContext(ctx, "tcp", host); err != nil {
			return nil, err
		}
	}
	n.mu.Lock()
	if !n.running {
		n.mu.Unlock()
		_ = c.Close()
		return nil, errors.New("member stopped")
	}
	n.conns[c] = struct{}{} // closed by Stop if still in flight
	n.mu.Unlock()
	fail := func(err error) (bson.Raw, error) {
		n.forget(c)
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	body, err := bson.Marshal(append(cmd, bson.E{Key: "$db", Value: "admin"}))
	if err != nil {
		return fail(err)
	}
	if _, err := c.Write(AppendMsg(nil, n.reqID.Add(1), 0, 0, body)); err != nil {
		return fail(err)
	}
	msg, err := ReadMessage(c)
	if err != nil {
		return fail(err)
	}
	if n.blocked(n.nameOf(host)) {
		return fail(errLinkBlocked)
	}
	_ = c.SetDeadline(time.Time{})
	n.mu.Lock()
	delete(n.conns, c)
	if n.running && len(n.pools[host]) < 4 {
		n.pools[host] = append(n.pools[host], c)
		c = nil
	}
	n.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
	reply := msg.Command()
	if ok, _ := reply.Lookup("ok").AsFloat64OK(); ok != 1 {
		msg, _ := reply.Lookup("errmsg").StringValueOK()
		return reply, fmt.Errorf("%s: %s", host, msg)
	}
	return reply, nil
}

func (n *Node) dropPool(host string) {
	n.mu.Lock()
	p := n.pools[host]
	delete(n.pools, host)
	n.mu.Unlock()
	for _, c := range p {
		_ = c.Close()
	}
}

// lastAppliedLocked is the optime of the newest oplog entry.
func (n *Node) lastAppliedLocked() OpTime {
	if len(n.oplog) == 0 {
		return OpTime{}
	}
	return n.oplog[len(n.oplog)-1].OpTime
}

func (n *Node) lastWallLocked() time.Time {
	if len(n.oplog) == 0 {
		return time.Time{}
	}
	return n.oplog[len(n.oplog)-1].Wall
}

// appendLocked writes a new oplog entry as primary in term t.
func (n *Node) appendLocked(e entry, t int64) OpTime {
	now := time.Now()
	ts := bson.Timestamp{T: uint32(now.Unix()), I: 1}
	if last := n.lastAppliedLocked(); !last.IsZero() && ts.Compare(last.TS) <= 0 {
		ts = bson.Timestamp{T: last.TS.T, I: last.TS.I + 1}
	}
	e.OpTime = OpTime{TS: ts, T: t}
	e.Wall = now
	n.oplog = append(n.oplog, e)
	n.applyLocked(e)
	return e.OpTime
}

func (n *Node) applyLocked(e entry) {
	if e.Op == "i" {
		n.data[e.NS] = append(n.data[e.NS], e.Doc)
	}
}

func (n *Node) rebuildLocked() {
	n.data = map[string][]bson.Raw{}
	for _, e := range n.oplog {
		n.applyLocked(e)
	}
}
