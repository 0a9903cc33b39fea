package mongosim

import (
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Member states (https://www.mongodb.com/docs/manual/reference/replica-states/).
const (
	StateStartup    = 0
	StatePrimary    = 1
	StateSecondary  = 2
	StateRecovering = 3
	StateStartup2   = 5
	StateUnknown    = 6
	StateArbiter    = 7
	StateDown       = 8
	StateRollback   = 9
	StateRemoved    = 10
)

// StateString is the stateStr MongoDB prints for a state number.
func StateString(s int) string {
	switch s {
	case StateStartup:
		return "STARTUP"
	case StatePrimary:
		return "PRIMARY"
	case StateSecondary:
		return "SECONDARY"
	case StateRecovering:
		return "RECOVERING"
	case StateStartup2:
		return "STARTUP2"
	case StateArbiter:
		return "ARBITER"
	case StateDown:
		return "DOWN"
	case StateRollback:
		return "ROLLBACK"
	case StateRemoved:
		return "REMOVED"
	}
	return "UNKNOWN"
}

// OpTime is an oplog position: term first, then timestamp.
type OpTime struct {
	TS bson.Timestamp
	T  int64
}

// Compare orders optimes as MongoDB does (term, then timestamp).
func (a OpTime) Compare(b OpTime) int {
	switch {
	case a.T < b.T:
		return -1
	case a.T > b.T:
		return 1
	}
	return a.TS.Compare(b.TS)
}

// IsZero reports an empty optime.
func (a OpTime) IsZero() bool { return a.T == 0 && a.TS.IsZero() }

func (a OpTime) doc() bson.D {
	if a.IsZero() {
		return bson.D{{Key: "ts", Value: bson.Timestamp{}}, {Key: "t", Value: int64(-1)}}
	}
	return bson.D{{Key: "ts", Value: a.TS}, {Key: "t", Value: a.T}}
}

func (a OpTime) String() string {
	return fmt.Sprintf("{ts: Timestamp(%d, %d), t: %d}", a.TS.T, a.TS.I, a.T)
}

func opTimeFrom(v bson.RawValue) OpTime {
	d, ok := v.DocumentOK()
	if !ok {
		return OpTime{}
	}
	var o OpTime
	if t, i, ok := d.Lookup("ts").TimestampOK(); ok {
		o.TS = bson.Timestamp{T: t, I: i}
	}
	if t, ok := d.Lookup("t").AsInt64OK(); ok && t > 0 {
		o.T = t
	}
	return o
}

// MemberSpec is one member of the initial replica-set configuration.
type MemberSpec struct {
	Name     string  // label used by the Sim API and in logs; defaults to Addr
	Addr     string  // host:port written in the configuration
	ID       int     // member _id
	Priority float64 // 0 for arbiters and never-electable members
	Votes    int     // 0 or 1
	Arbiter  bool
}

type rsMember struct {
	ID       int
	Host     string
	Priority float64
	Votes    int
	Arbiter  bool
	Hidden   bool
}

func (m rsMember) electable() bool { return !m.Arbiter && m.Priority > 0 && m.Votes > 0 }

type rsConfig struct {
	SetName         string
	Version         int64
	Term            int64 // -1: absent (a forced reconfig removes it)
	Members         []rsMember
	ElectionTimeout time.Duration
	Heartbeat       time.Duration
	ReplicaSetID    bson.ObjectID
}

func (c *rsConfig) member(id int) (rsMember, bool) {
	for _, m := range c.Members {
		if m.ID == id {
			return m, true
		}
	}
	return rsMember{}, false
}

func (c *rsConfig) byHost(host string) (rsMember, bool) {
	for _, m := range c.Members {
		if m.Host == host {
			return m, true
		}
	}
	return rsMember{}, false
}

func (c *rsConfig) voters() int {
	n := 0
	for _, m := range c.Members {
		n += m.Votes
	}
	return n
}

func (c *rsConfig) majority() int { return c.voters()/2 + 1 }

// writeMajority is the number of data-bearing voting members that
// w:"majority" needs.
func (c *rsConfig) writeMajority() int {
	data := 0
	for _, m := range c.Members {
		if m.Votes > 0 && !m.Arbiter {
			data++
		}
	}
	return min(c.majority(), data)
}

// newerThan reports whether c should replace o: by term when both have
// one and they differ, else by version.
func (c *rsConfig) newerThan(o *rsConfig) bool {
	return configNewer(c.Version, c.Term, o.Version, o.Term)
}

func configNewer(v1, t1, v2, t2 int64) bool {
	if t1 >= 0 && t2 >= 0 && t1 != t2 {
		return t1 > t2
	}
	return v1 > v2
}

func (c *rsConfig) clone() rsConfig {
	d := *c
	d.Members = append([]rsMember(nil), c.Members...)
	return d
}

func (c *rsConfig) doc() bson.D {
	ms := bson.A{}
	for _, m := range c.Members {
		ms = append(ms, bson.D{
			{Key: "_id", Value: int32(m.ID)},
			{Key: "host", Value: m.Host},
			{Key: "arbiterOnly", Value: m.Arbiter},
			{Key: "buildIndexes", Value: true},
			{Key: "hidden", Value: m.Hidden},
			{Key: "priority", Value: m.Priority},
			{Key: "tags", Value: bson.D{}},
			{Key: "secondaryDelaySecs", Value: int64(0)},
			{Key: "votes", Value: int32(m.Votes)},
		})
	}
	d := bson.D{
		{Key: "_id", Value: c.SetName},
		{Key: "version", Value: int32(c.Version)},
	}
	if c.Version > 1<<31-1 {
		d[1].Value = c.Version
	}
	if c.Term >= 0 {
		d = append(d, bson.E{Key: "term", Value: int32(c.Term)})
	}
	return append(d,
		bson.E{Key: "protocolVersion", Value: int64(1)},
		bson.E{Key: "writeConcernMajorityJournalDefault", Value: true},
		bson.E{Key: "members", Value: ms},
		bson.E{Key: "settings", Value: bson.D{
			{Key: "chainingAllowed", Value: true},
			{Key: "heartbeatIntervalMillis", Value: int32(c.Heartbeat / time.Millisecond)},
			{Key: "heartbeatTimeoutSecs", Value: int32(10)},
			{Key: "electionTimeoutMillis", Value: int32(c.ElectionTimeout / time.Millisecond)},
			{Key: "catchUpTimeoutMillis", Value: int32(-1)},
			{Key: "catchUpTakeoverDelayMillis", Value: int32(30000)},
			{Key: "getLastErrorModes", Value: bson.D{}},
			{Key: "getLastErrorDefaults", Value: bson.D{{Key: "w", Value: int32(1)}, {Key: "wtimeout", Value: int32(0)}}},
			{Key: "replicaSetId", Value: c.ReplicaSetID},
		}},
	)
}

// parseConfig reads a replica-set configuration document (as given to
// replSetReconfig or carried by a heartbeat). def supplies settings the
// document leaves out.
func parseConfig(d bson.Raw, def *rsConfig) (rsConfig, error) {
	c := rsConfig{Term: -1}
	if def != nil {
		c.ElectionTimeout, c.Heartbeat, c.ReplicaSetID = def.ElectionTimeout, def.Heartbeat, def.ReplicaSetID
	}
	id, ok := d.Lookup("_id").StringValueOK()
	if !ok || id == "" {
		return c, fmt.Errorf("the configuration has no _id (replica set name)")
	}
	c.SetName = id
	v, ok := d.Lookup("version").AsInt64OK()
	if !ok || v < 1 {
		return c, fmt.Errorf("the configuration has no valid version (a number >= 1)")
	}
	c.Version = v
	if t, ok := d.Lookup("term").AsInt64OK(); ok {
		c.Term = t
	}
	arr, ok := d.Lookup("members").ArrayOK()
	if !ok {
		return c, fmt.Errorf("the configuration has no members array")
	}
	vals, err := arr.Values()
	if err != nil {
		return c, fmt.Errorf("members: %v", err)
	}
	ids, hosts := map[int]bool{}, map[string]bool{}
	for i, mv := range vals {
		md, ok := mv.DocumentOK()
		if !ok {
			return c, fmt.Errorf("members[%d] is not a document", i)
		}
		mid, ok := md.Lookup("_id").AsInt64OK()
		if !ok || mid < 0 {
			return c, fmt.Errorf("members[%d]._id must be an integer >= 0", i)
		}
		host, ok := md.Lookup("host").StringValueOK()
		if !ok {
			return c, fmt.Errorf("members[%d].host must be a string", i)
		}
		if _, port, err := net.SplitHostPort(host); err != nil || port == "" {
			return c, fmt.Errorf("members[%d].host %q is not host:port", i, host)
		} else if _, err := strconv.Atoi(port); err != nil {
			return c, fmt.Errorf("members[%d].host %q has a bad port", i, host)
		}
		m := rsMember{ID: int(mid), Host: host, Votes: 1, Priority: 1}
		if b, ok := md.Lookup("arbiterOnly").BooleanOK(); ok {
			m.Arbiter = b
		}
		if m.Arbiter {
			m.Priority = 0
		}
		if b, ok := md.Lookup("hidden").BooleanOK(); ok {
			m.Hidden = b
		}
		if pv, err := md.LookupErr("priority"); err == nil {
			p, ok := pv.AsFloat64OK()
			if !ok || p < 0 || p > 1000 {
				return c, fmt.Errorf("members[%d].priority must be a number between 0 and 1000", i)
			}
			if m.Arbiter && p != 0 {
				return c, fmt.Errorf("members[%d]: arbiters must have priority 0", i)
			}
			m.Priority = p
		}
		if vv, err := md.LookupErr("votes"); err == nil {
			vn, ok := vv.AsInt64OK()
			if !ok || (vn != 0 && vn != 1) {
				return c, fmt.Errorf("members[%d].votes must be 0 or 1", i)
			}
			m.Votes = int(vn)
		}
		if m.Arbiter && m.Votes != 1 {
			return c, fmt.Errorf("members[%d]: arbiters must have votes 1", i)
		}
		if m.Votes == 0 && m.Priority != 0 {
			return c, fmt.Errorf("members[%d]: a member with votes 0 must have priority 0", i)
		}
		if ids[m.ID] {
			return c, fmt.Errorf("members[%d]._id %d is used twice", i, m.ID)
		}
		if hosts[m.Host] {
			return c, fmt.Errorf("members[%d].host %q is used twice", i, m.Host)
		}
		ids[m.ID], hosts[m.Host] = true, true
		c.Members = append(c.Members, m)
	}
	if len(c.Members) == 0 {
		return c, fmt.Errorf("the configuration has no members")
	}
	if c.voters() == 0 || c.voters() > 7 {
		return c, fmt.Errorf("the configuration has %d voting members (expected 1 to 7)", c.voters())
	}
	if s, ok := d.Lookup("settings").DocumentOK(); ok {
		if ms, ok := s.Lookup("electionTimeoutMillis").AsInt64OK(); ok && ms > 0 {
			c.ElectionTimeout = time.Duration(ms) * time.Millisecond
		}
		if ms, ok := s.Lookup("heartbeatIntervalMillis").AsInt64OK(); ok && ms > 0 {
			c.Heartbeat = time.Duration(ms) * time.Millisecond
		}
		if oid, ok := s.Lookup("replicaSetId").ObjectIDOK(); ok {
			c.ReplicaSetID = oid
		}
	}
	if c.ElectionTimeout <= 0 {
		c.ElectionTimeout = 10 * time.Second
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 500 * time.Millisecond
	}
	return c, nil
}

// electionID is the hello electionId MongoDB derives from a term
// (OID::fromTerm: 0x7fffffff followed by the term, big endian).
func electionID(term int64) bson.ObjectID {
	var id bson.ObjectID
	binary.BigEndian.PutUint32(id[0:4], 0x7fffffff)
	binary.BigEndian.PutUint64(id[4:12], uint64(term))
	return id
}
