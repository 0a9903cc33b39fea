package mongosim

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"
)

// MemberConfig is one member of a simulated set.
type MemberConfig struct {
	Name string // label for Stop/Start/Block; default "m<index>"
	Addr string // host:port; "" picks a free port on 127.0.0.1
	// Priority defaults to 1 for data members; a negative value means 0
	// (a member that can never become primary). Arbiters always have 0.
	Priority float64
	// Votes defaults to 1; a negative value means 0 (non-voting, which
	// also forces priority 0).
	Votes   int
	Arbiter bool
}

// Config describes a simulated replica set. Member _id values follow the
// order of Members: the first member is _id 0.
type Config struct {
	SetName         string // default "rs0"
	Members         []MemberConfig
	ElectionTimeout time.Duration // default 10s
	Heartbeat       time.Duration // default 500ms
	// InitialPrimary starts this member as primary in term 1; empty: the
	// set elects a primary after ElectionTimeout.
	InitialPrimary        string
	LegacyElectionMetrics bool // emit termAtElection instead of electionTerm
	Auth                  *Auth
	Logf                  func(format string, args ...any)
}

// Sim runs a whole replica set in this process, one TCP listener per member.
type Sim struct {
	nodes  []*Node
	byName map[string]*Node

	mu      sync.Mutex
	blocked map[[2]string]bool
}

// Start starts every member.
func Start(cfg Config) (*Sim, error) {
	if len(cfg.Members) == 0 {
		return nil, errors.New("mongosim: no members")
	}
	s := &Sim{byName: map[string]*Node{}, blocked: map[[2]string]bool{}}
	specs := make([]MemberSpec, len(cfg.Members))
	lns := make([]net.Listener, len(cfg.Members))
	closeAll := func() {
		for _, l := range lns {
			if l != nil {
				_ = l.Close()
			}
		}
	}
	for i, m := range cfg.Members {
		addr := m.Addr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("mongosim: member %d: %w", i, err)
		}
		lns[i] = ln
		name := m.Name
		if name == "" {
			name = fmt.Sprintf("m%d", i)
		}
		spec := MemberSpec{Name: name, Addr: ln.Addr().String(), ID: i, Priority: m.Priority, Votes: m.Votes, Arbiter: m.Arbiter}
		switch {
		case spec.Priority == 0 && !m.Arbiter:
			spec.Priority = 1
		case spec.Priority < 0:
			spec.Priority = 0
		}
		switch {
		case spec.Votes == 0:
			spec.Votes = 1
		case spec.Votes < 0:
			spec.Votes, spec.Priority = 0, 0
		}
		if _, dup := s.byName[name]; dup {
			closeAll()
			return nil, fmt.Errorf("mongosim: member name %q is used twice", name)
		}
		s.byName[name] = nil
		specs[i] = spec
	}
	for i, spec := range specs {
		n, err := NewNode(NodeOptions{
			Name: spec.Name, Members: specs, SetName: cfg.SetName, Listener: lns[i],
			ElectionTimeout: cfg.ElectionTimeout, Heartbeat: cfg.Heartbeat, InitialPrimary: cfg.InitialPrimary,
			LegacyElectionMetrics: cfg.LegacyElectionMetrics, Auth: cfg.Auth, Blocked: s.isBlocked, Logf: cfg.Logf,
		})
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("mongosim: %w", err)
		}
		s.nodes = append(s.nodes, n)
		s.byName[spec.Name] = n
	}
	for _, n := range s.nodes {
		if err := n.Start(); err != nil {
			s.Close()
			closeAll()
			return nil, err
		}
	}
	return s, nil
}

func (s *Sim) isBlocked(a, b string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blocked[linkKey(a, b)]
}

func linkKey(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// Node returns a member by name (nil if there is none).
func (s *Sim) Node(name string) *Node { return s.byName[name] }

// Nodes returns the members in _id order.
func (s *Sim) Nodes() []*Node { return append([]*Node(nil), s.nodes...) }

// Addr returns a member's host:port.
func (s *Sim) Addr(name string) string { return s.must(name).Addr() }

// URI is a direct-connection URI for one member.
func (s *Sim) URI(name string) string {
	return "mongodb://" + s.Addr(name) + "/?directConnection=true"
}

func (s *Sim) must(name string) *Node {
	n := s.byName[name]
	if n == nil {
		panic("mongosim: no member named " + name)
	}
	return n
}

// Stop stops a member as if its process died (its data is kept).
func (s *Sim) Stop(name string) { s.must(name).Stop() }

// Restart starts a stopped member again on the same address.
func (s *Sim) Restart(name string) error { return s.must(name).Start() }

// Block cuts the network link between members a and b (both directions).
func (s *Sim) Block(a, b string) {
	s.must(a)
	s.must(b)
	s.mu.Lock()
	s.blocked[linkKey(a, b)] = true
	s.mu.Unlock()
}

// Unblock restores the link between a and b.
func (s *Sim) Unblock(a, b string) {
	s.mu.Lock()
	delete(s.blocked, linkKey(a, b))
	s.mu.Unlock()
}

// Isolate cuts every link of a member to the other members (clients can
// still reach it, as an operator on the member's own site could).
func (s *Sim) Isolate(name string) {
	for _, n := range s.nodes {
		if n.name != name {
			s.Block(name, n.name)
		}
	}
}

// Heal restores every link.
func (s *Sim) Heal() {
	s.mu.Lock()
	s.blocked = map[[2]string]bool{}
	s.mu.Unlock()
}

// Primaries lists the members that currently consider themselves primary,
// newest term first.
func (s *Sim) Primaries() []NodeStatus {
	var out []NodeStatus
	for _, n := range s.nodes {
		if st := n.Status(); st.Running && st.State == StatePrimary {
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Term > out[j].Term })
	return out
}

// Close stops every member.
func (s *Sim) Close() {
	var wg sync.WaitGroup
	for _, n := range s.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.Stop()
		}()
	}
	wg.Wait()
}
