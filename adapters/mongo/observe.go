package mongo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sitectl/sitectl/adapters/netwatch"
	"github.com/sitectl/sitectl/inventory"
)

// Member states (replSetGetStatus myState / members[].state).
const (
	StatePrimary   = 1
	StateSecondary = 2
	StateArbiter   = 7
	StateDown      = 8
	StateRollback  = 9
	StateRemoved   = 10
)

// DefaultTimeout bounds each member's observation when none is given.
const DefaultTimeout = 3 * time.Second

// OpTime is a replication position.
type OpTime struct {
	TS   bson.Timestamp `json:"ts"`
	Term int64          `json:"t"`
	Date time.Time      `json:"date"` // optimeDate (wall clock of the entry)
}

// Election is what a primary says about the election that made it primary.
type Election struct {
	Reason string    `json:"reason"` // electionTimeout, priorityTakeover, stepUpRequestSkipDryRun, …
	Date   time.Time `json:"date"`
	Term   int64     `json:"term"`
	// TermField is the field the term came from: electionTerm, or
	// termAtElection on older servers (4.2).
	TermField    string `json:"term_field"`
	PriorPrimary int    `json:"prior_primary"` // member _id, -1 if none was reported
}

// PeerView is one entry of a member's replSetGetStatus.members: how that
// member sees another (or itself).
type PeerView struct {
	ID            int       `json:"id"`
	Host          string    `json:"host"`
	Member        string    `json:"member,omitempty"` // inventory name, when the host maps to one
	Self          bool      `json:"self,omitempty"`
	Health        float64   `json:"health"`
	State         int       `json:"state"`
	StateStr      string    `json:"state_str"`
	Optime        *OpTime   `json:"optime,omitempty"`
	ElectionDate  time.Time `json:"election_date,omitzero"`
	LastHeartbeat time.Time `json:"last_heartbeat,omitzero"`
	// LastHeartbeatRecv: when the observing member last received a
	// heartbeat from this one, by the observing member's clock.
	LastHeartbeatRecv    time.Time `json:"last_heartbeat_recv,omitzero"`
	LastHeartbeatMessage string    `json:"last_heartbeat_message,omitempty"`
	ConfigVersion        int64     `json:"config_version"`
}

// ConfigMember is one member of the replica-set configuration.
type ConfigMember struct {
	ID       int     `json:"id"`
	Host     string  `json:"host"`
	Member   string  `json:"member,omitempty"`
	Priority float64 `json:"priority"`
	Votes    int     `json:"votes"`
	Arbiter  bool    `json:"arbiter,omitempty"`
	Hidden   bool    `json:"hidden,omitempty"`
}

// MemberStatus is what one member said (or why it said nothing).
type MemberStatus struct {
	Member Member `json:"member"`

	// Reachable: hello answered. When false, Err says why and nothing
	// below is known: such a member is unknown, never healthy.
	Reachable bool           `json:"reachable"`
	Err       *MemberError   `json:"error,omitempty"`
	Errors    []*MemberError `json:"errors,omitempty"` // later commands that failed (e.g. Unauthorized on an arbiter)
	RTT       time.Duration  `json:"rtt"`

	// From hello.
	SetName     string `json:"set_name,omitempty"`
	Me          string `json:"me,omitempty"`
	Writable    bool   `json:"writable"` // isWritablePrimary
	Secondary   bool   `json:"secondary"`
	ArbiterOnly bool   `json:"arbiter_only,omitempty"`
	SeenPrimary string `json:"seen_primary,omitempty"` // hello.primary (host:port)
	// SeenPrimaryMember is SeenPrimary mapped to an inventory name.
	SeenPrimaryMember string `json:"seen_primary_member,omitempty"`
	ElectionID        string `json:"election_id,omitempty"` // hex ObjectId, primary only

	// From replSetGetStatus (StatusKnown) or, for an arbiter that refused
	// it, from hello.
	StatusKnown bool `json:"status_known"`
	// StatusDate is replSetGetStatus' date: the member's clock when it
	// answered (ages of its heartbeats are taken against it).
	StatusDate   time.Time           `json:"status_date,omitzero"`
	State        int                 `json:"state"`
	StateStr     string              `json:"state_str"`
	Term         int64               `json:"term"`
	Optime       *OpTime             `json:"optime,omitempty"`
	Lag          *inventory.Duration `json:"lag,omitempty"` // behind the primary's optimeDate; nil when unknown
	SyncSource   string              `json:"sync_source,omitempty"`
	ElectionDate time.Time           `json:"election_date,omitzero"` // members[self].electionDate, primary only
	LastElection *Election           `json:"last_election,omitempty"`
	Peers        []PeerView          `json:"peers,omitempty"`

	// From replSetGetConfig (ConfigKnown).
	ConfigKnown   bool           `json:"config_known"`
	ConfigVersion int64          `json:"config_version"`
	ConfigTerm    int64          `json:"config_term"` // -1: absent (after a forced reconfig)
	Priority      float64        `json:"priority"`
	Votes         int            `json:"votes"`
	Hidden        bool           `json:"hidden,omitempty"`
	Config        []ConfigMember `json:"config,omitempty"`
	ConfigRaw     bson.Raw       `json:"-"`
}

// Observed reports that the member's state is known (hello answered, and
// replSetGetStatus too unless it is an arbiter that refused it).
func (m *MemberStatus) Observed() bool { return m.Reachable && (m.StatusKnown || m.ArbiterOnly) }

// Peer returns the member's view of the member with that inventory name.
func (m *MemberStatus) Peer(name string) *PeerView {
	for i := range m.Peers {
		if m.Peers[i].Member == name {
			return &m.Peers[i]
		}
	}
	return nil
}

// Summary is one line about the member, for errors and tables.
func (m *MemberStatus) Summary() string {
	if !m.Reachable {
		if m.Err != nil {
			return fmt.Sprintf("%s unreachable (%s)", m.Member.Name, m.Err.Kind)
		}
		return m.Member.Name + " unreachable"
	}
	s := m.Member.Name + " " + m.StateStr
	if m.StateStr == "" {
		s = m.Member.Name + " (state unknown)"
	}
	if m.StatusKnown && m.State != StateRemoved {
		s += fmt.Sprintf(" term %d", m.Term)
	}
	if m.Writable {
		s += " writable"
	}
	return s
}

// Observation is one parallel look at every member.
type Observation struct {
	At      time.Time      `json:"at"`
	Took    time.Duration  `json:"took"`
	Timeout time.Duration  `json:"timeout"`
	Members []MemberStatus `json:"members"`
}

// Member returns the status of the member with that name, or nil.
func (o *Observation) Member(name string) *MemberStatus {
	for i := range o.Members {
		if o.Members[i].Member.Name == name {
			return &o.Members[i]
		}
	}
	return nil
}

// ByHost maps a host:port as the set knows it to a member.
func (o *Observation) ByHost(host string) *MemberStatus {
	for i := range o.Members {
		if o.Members[i].Member.Address == host {
			return &o.Members[i]
		}
	}
	for i := range o.Members {
		if o.Members[i].Me != "" && o.Members[i].Me == host {
			return &o.Members[i]
		}
	}
	return nil
}

// Primaries are the members that answered isWritablePrimary: true, newest
// term first. More than one means a stale primary has not stepped down yet.
func (o *Observation) Primaries() []*MemberStatus {
	var out []*MemberStatus
	for i := range o.Members {
		if m := &o.Members[i]; m.Reachable && m.Writable {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Term > out[j].Term })
	return out
}

// Primary is the writable primary with the newest term, or nil.
func (o *Observation) Primary() *MemberStatus {
	if p := o.Primaries(); len(p) > 0 {
		return p[0]
	}
	return nil
}

// Summary is one line about the whole set.
func (o *Observation) Summary() string {
	parts := make([]string, 0, len(o.Members))
	for i := range o.Members {
		parts = append(parts, o.Members[i].Summary())
	}
	return strings.Join(parts, "; ")
}

// Observe looks at every member at once, each over its own direct
// connection, and returns within about timeout (DefaultTimeout if zero)
// whatever happens.
func Observe(ctx context.Context, members []Member, creds Credentials, timeout time.Duration) *Observation {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	start := time.Now()
	o := &Observation{At: start, Timeout: timeout, Members: make([]MemberStatus, len(members))}
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.Members[i] = observeMember(ctx, m, creds, timeout)
		}()
	}
	wg.Wait()
	o.resolve()
	o.Took = time.Since(start)
	return o
}

// resolve maps hosts to inventory names and computes lag.
func (o *Observation) resolve() {
	name := func(host string) string {
		if m := o.ByHost(host); m != nil {
			return m.Member.Name
		}
		return ""
	}
	for i := range o.Members {
		m := &o.Members[i]
		if m.SeenPrimary != "" {
			m.SeenPrimaryMember = name(m.SeenPrimary)
		}
		for j := range m.Peers {
			m.Peers[j].Member = name(m.Peers[j].Host)
		}
		for j := range m.Config {
			m.Config[j].Member = name(m.Config[j].Host)
		}
	}
	if p := o.Primary(); p != nil && p.Optime != nil {
		for i := range o.Members {
			m := &o.Members[i]
			if m.Optime != nil && !m.Optime.TS.IsZero() && !m.ArbiterOnly {
				lag := inventory.Duration(max(p.Optime.Date.Sub(m.Optime.Date), 0))
				m.Lag = &lag
			}
		}
	}
}

// connect opens a direct, short-lived client to one member. The TCP dial
// first gives a fast, precise answer for refused and unreachable members.
func connect(ctx context.Context, m Member, creds Credentials, timeout time.Duration) (*mdrv.Client, *MemberError) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", m.Address)
	if err != nil {
		return nil, classify(err, m, "connect", creds, timeout)
	}
	_ = c.Close()
	opts := options.Client().
		SetHosts([]string{m.Address}).
		SetDirect(true).
		SetConnectTimeout(timeout).
		SetServerSelectionTimeout(timeout).
		SetAppName("sitectl").
		// Polling, not the streaming hello: these clients live for one
		// observation, and a monitor blocked in an awaitable hello (up to
		// heartbeatFrequency, 10s) can hold Disconnect that long.
		SetServerMonitoringMode(options.ServerMonitoringModePoll).
		SetMaxPoolSize(2).
		SetRetryReads(false).
		SetRetryWrites(false)
	if !creds.IsZero() {
		opts.SetAuth(options.Credential{Username: creds.Username, Password: string(creds.Password), AuthSource: "admin"})
	}
	client, err := mdrv.Connect(opts)
	if err != nil {
		return nil, classify(err, m, "connect", creds, timeout)
	}
	return client, nil
}

func disconnect(c *mdrv.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.Disconnect(ctx)
}

func runCommand(ctx context.Context, c *mdrv.Client, m Member, creds Credentials, timeout time.Duration, cmd bson.D) (bson.Raw, *MemberError) {
	raw, err := c.Database("admin").RunCommand(ctx, cmd).Raw()
	if err != nil {
		return nil, classify(err, m, cmd[0].Key, creds, timeout)
	}
	return raw, nil
}

// observeMember asks member m hello, then replSetGetStatus and
// replSetGetConfig (readStatus, readConfig), each bounded by timeout. A
// member that does not answer is not waited for again while netwatch's
// probe of it keeps failing.
func observeMember(parent context.Context, m Member, creds Credentials, timeout time.Duration) MemberStatus {
	st := MemberStatus{Member: m, ConfigTerm: -1}
	// A member that did not answer earlier in this command is not waited
	// for again while its background probe keeps failing (netwatch).
	watch, addr := netwatch.FromContext(parent), withPort(m.Address)
	if err := watch.Check(addr); err != nil {
		kind := KindTimeout
		if errors.Is(err, syscall.ECONNREFUSED) {
			kind = KindRefused
		}
		st.Err = &MemberError{Kind: kind, Member: m.Name, Address: m.Address, Command: "hello", Message: err.Error(), Err: err}
		return st
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	// As netwatch.DialContext: a caller's deadline that ends the attempt
	// counts as no answer (a refresh shorter than the member timeout would
	// otherwise wait for a dead member every time); only a cancellation
	// says nothing about the member.
	noAnswer := func(merr *MemberError) {
		if !errors.Is(parent.Err(), context.Canceled) && (merr.Kind == KindTimeout || merr.Kind == KindRefused || merr.Kind == KindNetwork) {
			watch.Failed(addr, timeout, merr)
		}
	}
	client, merr := connect(ctx, m, creds, timeout)
	if merr != nil {
		noAnswer(merr)
		st.Err = merr
		return st
	}
	defer disconnect(client)
	start := time.Now()
	raw, merr := runCommand(ctx, client, m, creds, timeout, bson.D{{Key: "hello", Value: 1}})
	if merr != nil {
		noAnswer(merr)
		st.Err = merr
		return st
	}
	watch.Succeeded(addr)
	st.RTT = time.Since(start)
	if err := decodeHello(raw, &st); err != nil {
		st.Err = protoErr(m, "hello", err)
		return st
	}
	st.Reachable = true
	if st.ArbiterOnly {
		st.State, st.StateStr = StateArbiter, "ARBITER"
	}
	if readStatus(ctx, client, m, creds, timeout, &st) {
		readConfig(ctx, client, m, creds, timeout, &st)
	}
	return st
}

// readStatus reads replSetGetStatus into st; a removed member is told by
// its error. It returns false when the configuration is not worth asking
// for: an auth-enabled arbiter answers only hello (the driver does not
// authenticate to arbiters), which is expected, not a failure.
func readStatus(ctx context.Context, client *mdrv.Client, m Member, creds Credentials, timeout time.Duration, st *MemberStatus) bool {
	raw, merr := runCommand(ctx, client, m, creds, timeout, bson.D{{Key: "replSetGetStatus", Value: 1}})
	switch {
	case merr != nil && merr.Code == CodeInvalidReplicaSetConfig && !st.Writable:
		// "Our replica set config is invalid or we are not a member of
		// it": the member was removed from the configuration (after a
		// forced reconfig, typically).
		st.State, st.StateStr, st.StatusKnown = StateRemoved, "REMOVED", true
	case merr != nil:
		st.Errors = append(st.Errors, merr)
	default:
		if err := decodeStatus(raw, st); err != nil {
			st.Errors = append(st.Errors, protoErr(m, "replSetGetStatus", err))
		} else {
			st.StatusKnown = true
		}
	}
	if merr != nil && merr.Code == CodeUnauthorized && (st.ArbiterOnly || m.Arbiter) {
		// The driver does not authenticate to arbiters, so an auth-enabled
		// arbiter answers only hello. That is expected, not a failure.
		return false
	}
	return true
}

// readConfig reads replSetGetConfig into st.
func readConfig(ctx context.Context, client *mdrv.Client, m Member, creds Credentials, timeout time.Duration, st *MemberStatus) {
	raw, merr := runCommand(ctx, client, m, creds, timeout, bson.D{{Key: "replSetGetConfig", Value: 1}})
	if merr != nil {
		st.Errors = append(st.Errors, merr)
		return
	}
	if err := decodeConfig(raw, st); err != nil {
		st.Errors = append(st.Errors, protoErr(m, "replSetGetConfig", err))
	} else {
		st.ConfigKnown = true
	}
}

// withPort is addr with MongoDB's default port when it has none.
func withPort(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return net.JoinHostPort(addr, "27017")
	}
	return addr
}

func protoErr(m Member, cmd string, err error) *MemberError {
	return &MemberError{Kind: KindProtocol, Member: m.Name, Address: m.Address, Command: cmd,
		Message: "unexpected reply: " + err.Error(), Err: err}
}

// Lenient field readers: a missing field is fine unless the caller says it
// is required; a field of the wrong type is an error.

func getInt(d bson.Raw, key string, required bool) (int64, error) {
	v, err := d.LookupErr(key)
	if err != nil {
		if required {
			return 0, fmt.Errorf("%s is missing", key)
		}
		return 0, nil
	}
	n, ok := v.AsInt64OK()
	if !ok {
		return 0, fmt.Errorf("%s is a %s, not a number", key, v.Type)
	}
	return n, nil
}

func getFloat(d bson.Raw, key string, def float64) (float64, error) {
	v, err := d.LookupErr(key)
	if err != nil {
		return def, nil
	}
	f, ok := v.AsFloat64OK()
	if !ok {
		return 0, fmt.Errorf("%s is a %s, not a number", key, v.Type)
	}
	return f, nil
}

func getString(d bson.Raw, key string) (string, error) {
	v, err := d.LookupErr(key)
	if err != nil {
		return "", nil
	}
	s, ok := v.StringValueOK()
	if !ok {
		return "", fmt.Errorf("%s is a %s, not a string", key, v.Type)
	}
	return s, nil
}

func getBool(d bson.Raw, key string) (bool, error) {
	v, err := d.LookupErr(key)
	if err != nil {
		return false, nil
	}
	b, ok := v.BooleanOK()
	if !ok {
		return false, fmt.Errorf("%s is a %s, not a boolean", key, v.Type)
	}
	return b, nil
}

func getTime(d bson.Raw, key string) (time.Time, error) {
	v, err := d.LookupErr(key)
	if err != nil {
		return time.Time{}, nil
	}
	t, ok := v.TimeOK()
	if !ok {
		return time.Time{}, fmt.Errorf("%s is a %s, not a date", key, v.Type)
	}
	return t.UTC(), nil
}

func getOpTime(d bson.Raw, key, dateKey string) (*OpTime, error) {
	v, err := d.LookupErr(key)
	if err != nil {
		return nil, nil
	}
	od, ok := v.DocumentOK()
	if !ok {
		return nil, fmt.Errorf("%s is a %s, not a document", key, v.Type)
	}
	o := &OpTime{}
	if tv, err := od.LookupErr("ts"); err == nil {
		t, i, ok := tv.TimestampOK()
		if !ok {
			return nil, fmt.Errorf("%s.ts is a %s, not a timestamp", key, tv.Type)
		}
		o.TS = bson.Timestamp{T: t, I: i}
	}
	if o.Term, err = getInt(od, "t", false); err != nil {
		return nil, fmt.Errorf("%s.%v", key, err)
	}
	if dateKey != "" {
		if o.Date, err = getTime(d, dateKey); err != nil {
			return nil, err
		}
	}
	return o, nil
}

type firstErr struct{ err error }

func (f *firstErr) take(err error) {
	if f.err == nil && err != nil {
		f.err = err
	}
}

func decodeHello(r bson.Raw, st *MemberStatus) error {
	var fe firstErr
	var err error
	w, err := getBool(r, "isWritablePrimary")
	fe.take(err)
	if _, e := r.LookupErr("isWritablePrimary"); e != nil {
		w, err = getBool(r, "ismaster")
		fe.take(err)
	}
	st.Writable = w
	st.Secondary, err = getBool(r, "secondary")
	fe.take(err)
	st.ArbiterOnly, err = getBool(r, "arbiterOnly")
	fe.take(err)
	st.SetName, err = getString(r, "setName")
	fe.take(err)
	st.Me, err = getString(r, "me")
	fe.take(err)
	st.SeenPrimary, err = getString(r, "primary")
	fe.take(err)
	if v, e := r.LookupErr("electionId"); e == nil {
		if id, ok := v.ObjectIDOK(); ok {
			st.ElectionID = id.Hex()
		} else {
			fe.take(fmt.Errorf("electionId is a %s, not an ObjectId", v.Type))
		}
	}
	if fe.err == nil && st.SetName == "" && !st.Writable {
		// A member of no replica set (or a removed one) still answers hello;
		// its state comes from replSetGetStatus, if anything.
		if info, _ := getString(r, "info"); info != "" {
			st.StateStr = info
		}
	}
	return fe.err
}

// decodeStatus reads replSetGetStatus into st: the member's own state,
// term and sync source, its view of each member (decodePeer) and its last
// election (decodeElection). A missing or malformed state or members list
// is an error at once; any other field's problem is reported after the
// rest is read (the first one).
func decodeStatus(r bson.Raw, st *MemberStatus) error {
	var fe firstErr
	var err error
	state, err := getInt(r, "myState", true)
	if err != nil {
		return err
	}
	st.State = int(state)
	st.StatusDate, err = getTime(r, "date")
	fe.take(err)
	st.Term, err = getInt(r, "term", false)
	fe.take(err)
	st.SyncSource, err = getString(r, "syncSourceHost")
	fe.take(err)
	mv, e := r.LookupErr("members")
	if e != nil {
		return fmt.Errorf("members is missing")
	}
	arr, ok := mv.ArrayOK()
	if !ok {
		return fmt.Errorf("members is a %s, not an array", mv.Type)
	}
	vals, e := arr.Values()
	if e != nil {
		return fmt.Errorf("members: %v", e)
	}
	for i, v := range vals {
		d, ok := v.DocumentOK()
		if !ok {
			return fmt.Errorf("members[%d] is a %s, not a document", i, v.Type)
		}
		p, err := decodePeer(i, d, &fe)
		if err != nil {
			return err
		}
		if p.Self {
			st.StateStr = p.StateStr
			st.Optime = p.Optime
			st.ElectionDate = p.ElectionDate
		}
		st.Peers = append(st.Peers, p)
	}
	if st.StateStr == "" {
		st.StateStr = stateName(st.State)
	}
	if v, e := r.LookupErr("electionCandidateMetrics"); e == nil {
		d, ok := v.DocumentOK()
		if !ok {
			return fmt.Errorf("electionCandidateMetrics is a %s, not a document", v.Type)
		}
		st.LastElection = decodeElection(d, &fe)
	}
	return fe.err
}

// decodePeer reads members[i] of replSetGetStatus. A missing _id or name
// is an error; any other field's problem goes to fe.
func decodePeer(i int, d bson.Raw, fe *firstErr) (PeerView, error) {
	var p PeerView
	id, err := getInt(d, "_id", true)
	if err != nil {
		return p, fmt.Errorf("members[%d].%v", i, err)
	}
	p.ID = int(id)
	if p.Host, err = getString(d, "name"); err != nil {
		return p, fmt.Errorf("members[%d].%v", i, err)
	}
	p.Self, err = getBool(d, "self")
	fe.take(err)
	p.Health, err = getFloat(d, "health", 0)
	fe.take(err)
	s, err := getInt(d, "state", false)
	fe.take(err)
	p.State = int(s)
	p.StateStr, err = getString(d, "stateStr")
	fe.take(err)
	p.Optime, err = getOpTime(d, "optime", "optimeDate")
	fe.take(err)
	p.ElectionDate, err = getTime(d, "electionDate")
	fe.take(err)
	p.LastHeartbeat, err = getTime(d, "lastHeartbeat")
	fe.take(err)
	p.LastHeartbeatRecv, err = getTime(d, "lastHeartbeatRecv")
	fe.take(err)
	p.LastHeartbeatMessage, err = getString(d, "lastHeartbeatMessage")
	fe.take(err)
	p.ConfigVersion, err = getInt(d, "configVersion", false)
	fe.take(err)
	return p, nil
}

// decodeElection reads electionCandidateMetrics: the reason, date and term
// of the member's last election and the member it replaced (-1: not
// reported). Problems go to fe.
func decodeElection(d bson.Raw, fe *firstErr) *Election {
	var err error
	el := &Election{PriorPrimary: -1}
	el.Reason, err = getString(d, "lastElectionReason")
	fe.take(err)
	el.Date, err = getTime(d, "lastElectionDate")
	fe.take(err)
	for _, k := range []string{"electionTerm", "termAtElection"} {
		if _, e := d.LookupErr(k); e == nil {
			el.Term, err = getInt(d, k, false)
			fe.take(err)
			el.TermField = k
			break
		}
	}
	if _, e := d.LookupErr("priorPrimaryMemberId"); e == nil {
		pp, err := getInt(d, "priorPrimaryMemberId", false)
		fe.take(err)
		el.PriorPrimary = int(pp)
	}
	return el
}

func decodeConfig(r bson.Raw, st *MemberStatus) error {
	v, err := r.LookupErr("config")
	if err != nil {
		return fmt.Errorf("config is missing")
	}
	c, ok := v.DocumentOK()
	if !ok {
		return fmt.Errorf("config is a %s, not a document", v.Type)
	}
	if st.ConfigVersion, err = getInt(c, "version", true); err != nil {
		return fmt.Errorf("config.%v", err)
	}
	st.ConfigTerm = -1
	if _, e := c.LookupErr("term"); e == nil {
		if st.ConfigTerm, err = getInt(c, "term", false); err != nil {
			return fmt.Errorf("config.%v", err)
		}
	}
	mv, e := c.LookupErr("members")
	if e != nil {
		return fmt.Errorf("config.members is missing")
	}
	arr, ok := mv.ArrayOK()
	if !ok {
		return fmt.Errorf("config.members is a %s, not an array", mv.Type)
	}
	vals, e := arr.Values()
	if e != nil {
		return fmt.Errorf("config.members: %v", e)
	}
	me := st.Me
	if me == "" {
		me = st.Member.Address
	}
	for i, v := range vals {
		d, ok := v.DocumentOK()
		if !ok {
			return fmt.Errorf("config.members[%d] is a %s, not a document", i, v.Type)
		}
		var cm ConfigMember
		id, err := getInt(d, "_id", true)
		if err != nil {
			return fmt.Errorf("config.members[%d].%v", i, err)
		}
		cm.ID = int(id)
		if cm.Host, err = getString(d, "host"); err != nil {
			return fmt.Errorf("config.members[%d].%v", i, err)
		}
		if cm.Arbiter, err = getBool(d, "arbiterOnly"); err != nil {
			return fmt.Errorf("config.members[%d].%v", i, err)
		}
		def := 1.0
		if cm.Arbiter {
			def = 0
		}
		if cm.Priority, err = getFloat(d, "priority", def); err != nil {
			return fmt.Errorf("config.members[%d].%v", i, err)
		}
		votes, err := getFloat(d, "votes", 1)
		if err != nil {
			return fmt.Errorf("config.members[%d].%v", i, err)
		}
		cm.Votes = int(votes)
		if cm.Hidden, err = getBool(d, "hidden"); err != nil {
			return fmt.Errorf("config.members[%d].%v", i, err)
		}
		if cm.Host == me || cm.Host == st.Member.Address {
			st.Priority, st.Votes, st.Hidden = cm.Priority, cm.Votes, cm.Hidden
		}
		st.Config = append(st.Config, cm)
	}
	st.ConfigRaw = append(bson.Raw(nil), c...)
	return nil
}

func stateName(s int) string {
	switch s {
	case 0:
		return "STARTUP"
	case StatePrimary:
		return "PRIMARY"
	case StateSecondary:
		return "SECONDARY"
	case 3:
		return "RECOVERING"
	case 5:
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
