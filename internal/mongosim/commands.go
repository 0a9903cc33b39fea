package mongosim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/xdg-go/scram"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Error codes (mongodb/mongo:src/mongo/base/error_codes.yml).
var codeNames = map[int32]string{
	2:     "BadValue",
	13:    "Unauthorized",
	18:    "AuthenticationFailed",
	50:    "MaxTimeMSExpired",
	59:    "CommandNotFound",
	64:    "WriteConcernTimeout",
	74:    "NodeNotFound",
	93:    "InvalidReplicaSetConfig",
	95:    "NotSecondary",
	103:   "NewReplicaSetConfigurationIncompatible",
	125:   "CommandFailed",
	189:   "PrimarySteppedDown",
	262:   "ExceededTimeLimit",
	352:   "UnsupportedOpQueryCommand",
	11600: "InterruptedAtShutdown",
	11602: "InterruptedDueToReplStateChange",
	10107: "NotWritablePrimary",
	13435: "NotPrimaryNoSecondaryOk",
	13436: "NotPrimaryOrSecondary",
}

// CmdError is a command failure, sent as {ok: 0, errmsg, code, codeName}.
type CmdError struct {
	Code int32
	Msg  string
}

func (e *CmdError) Error() string { return fmt.Sprintf("(%s) %s", codeNames[e.Code], e.Msg) }

func cmdErr(code int32, format string, args ...any) error {
	return &CmdError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

type connState struct {
	id     int64
	conn   net.Conn
	authed bool
	conv   *scram.ServerConversation
}

type request struct {
	msg  *Message
	cmd  bson.Raw
	name string
	db   string
}

// docs returns the documents of a write command: the named array of the
// body, or the kind-1 sequence of that name.
func (r *request) docs(field string) []bson.Raw {
	var out []bson.Raw
	if arr, ok := r.cmd.Lookup(field).ArrayOK(); ok {
		vals, _ := arr.Values()
		for _, v := range vals {
			if d, ok := v.DocumentOK(); ok {
				out = append(out, d)
			}
		}
	}
	for _, s := range r.msg.Sequences {
		if s.Identifier == field {
			out = append(out, s.Docs...)
		}
	}
	return out
}

func firstKey(d bson.Raw) string {
	e, err := d.IndexErr(0)
	if err != nil {
		return ""
	}
	k, err := e.KeyErr()
	if err != nil {
		return ""
	}
	return k
}

func isHello(name string) bool { return name == "hello" || name == "isMaster" || name == "ismaster" }

func (n *Node) serveConn(c net.Conn) {
	defer n.wg.Done()
	defer n.forget(c)
	cs := &connState{id: n.connID.Add(1), conn: c}
	for {
		msg, err := ReadMessage(c)
		if err != nil {
			if errors.Is(err, ErrMalformed) {
				n.logf("closing connection from %s: %v", c.RemoteAddr(), err)
			}
			return
		}
		if !n.handleMessage(cs, msg) {
			return
		}
	}
}

func (n *Node) write(c net.Conn, b []byte) bool {
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Write(b)
	return err == nil
}

// handleMessage answers one request; false closes the connection.
func (n *Node) handleMessage(cs *connState, msg *Message) bool {
	cmd := msg.Command()
	req := &request{msg: msg, cmd: cmd, name: firstKey(cmd)}
	switch msg.Header.OpCode {
	case OpQuery:
		req.db, _, _ = strings.Cut(msg.FullCollection, ".")
		var doc bson.Raw
		if !strings.HasSuffix(msg.FullCollection, ".$cmd") || !isHello(req.name) {
			doc = errorDoc(n, &CmdError{Code: 352, Msg: fmt.Sprintf("Unsupported OP_QUERY command: %s. The client driver may require an upgrade. "+
				"For more details see https://dochub.mongodb.org/core/legacy-opcode-removal", req.name)})
		} else {
			var drop bool
			if doc, drop = n.dispatch(cs, req); drop {
				return false
			}
		}
		return n.write(cs.conn, AppendReply(nil, n.reqID.Add(1), msg.Header.RequestID, doc))
	case OpMsg:
		req.db, _ = cmd.Lookup("$db").StringValueOK()
		if isHello(req.name) {
			if _, err := cmd.LookupErr("maxAwaitTimeMS"); err == nil {
				return n.awaitHello(cs, req)
			}
		}
		doc, drop := n.dispatch(cs, req)
		if drop {
			return false
		}
		if msg.Flags&FlagMoreToCome != 0 {
			return true // the client wants no reply
		}
		return n.write(cs.conn, AppendMsg(nil, n.reqID.Add(1), msg.Header.RequestID, 0, doc))
	}
	return false
}

// awaitHello implements the awaitable hello: when the client's
// topologyVersion is current, the reply waits up to maxAwaitTimeMS for a
// change. With exhaustAllowed, replies keep coming (moreToCome) until the
// connection closes.
func (n *Node) awaitHello(cs *connState, req *request) bool {
	maxAwait, _ := req.cmd.Lookup("maxAwaitTimeMS").AsInt64OK()
	wait := time.Duration(max(maxAwait, 0)) * time.Millisecond
	exhaust := req.msg.Flags&FlagExhaustAllowed != 0
	closed := make(chan struct{})
	tv, hasTV := req.cmd.Lookup("topologyVersion").DocumentOK()
	pid, _ := tv.Lookup("processId").ObjectIDOK()
	counter, _ := tv.Lookup("counter").AsInt64OK()
	waitFor := func(pid bson.ObjectID, counter int64) {
		n.mu.Lock()
		if pid != n.processID || counter != n.topoCounter || !n.running {
			n.mu.Unlock()
			return
		}
		ch, ctx := n.topoCh, n.ctx
		n.mu.Unlock()
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
		case <-closed:
		}
	}
	if hasTV {
		waitFor(pid, counter)
	}
	respTo := req.msg.Header.RequestID
	started := false
	for {
		doc, drop := n.dispatch(cs, req)
		if drop {
			return false
		}
		id := n.reqID.Add(1)
		var flags uint32
		if exhaust {
			flags = FlagMoreToCome
		}
		if !n.write(cs.conn, AppendMsg(nil, id, respTo, flags, doc)) {
			return false
		}
		if !exhaust {
			return true
		}
		if !started {
			// In exhaust mode the client sends nothing more on this
			// connection: a read only returns when it is closed.
			started = true
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				defer close(closed)
				var b [512]byte
				for {
					if _, err := cs.conn.Read(b[:]); err != nil {
						return
					}
				}
			}()
		}
		respTo = id
		select {
		case <-closed:
			return false
		default:
		}
		tv, _ := doc.Lookup("topologyVersion").DocumentOK()
		pid, _ := tv.Lookup("processId").ObjectIDOK()
		counter, _ := tv.Lookup("counter").AsInt64OK()
		waitFor(pid, counter)
		n.mu.Lock()
		running := n.running
		n.mu.Unlock()
		if !running {
			return false
		}
		select {
		case <-closed:
			return false
		default:
		}
	}
}

func errorDoc(n *Node, err error) bson.Raw {
	var ce *CmdError
	if !errors.As(err, &ce) {
		ce = &CmdError{Code: 1, Msg: err.Error()}
	}
	d := bson.D{{Key: "ok", Value: 0.0}, {Key: "errmsg", Value: ce.Msg}, {Key: "code", Value: ce.Code}}
	if name, ok := codeNames[ce.Code]; ok {
		d = append(d, bson.E{Key: "codeName", Value: name})
	}
	switch ce.Code {
	case 10107, 13435, 13436, 189, 11602:
		n.mu.Lock()
		d = append(d, bson.E{Key: "topologyVersion", Value: bson.D{{Key: "processId", Value: n.processID}, {Key: "counter", Value: n.topoCounter}}})
		n.mu.Unlock()
	}
	return mustMarshal(d)
}

var authExempt = map[string]bool{
	"hello": true, "isMaster": true, "ismaster": true, "saslStart": true, "saslContinue": true, "ping": true,
	"buildInfo": true, "buildinfo": true, "endSessions": true, "logout": true,
	// internal (real mongod would require keyFile authentication)
	"replSetHeartbeat": true, "replSetRequestVotes": true,
}

var adminOnly = map[string]bool{
	"replSetGetStatus": true, "replSetGetConfig": true, "replSetReconfig": true, "replSetStepDown": true,
	"replSetStepUp": true, "replSetFreeze": true, "replSetHeartbeat": true, "replSetRequestVotes": true,
	"getParameter": true, "serverStatus": false,
}

type handler func(n *Node, cs *connState, r *request) (bson.D, error)

var handlers map[string]handler

func init() {
	handlers = map[string]handler{
		"hello":               (*Node).cmdHello,
		"isMaster":            (*Node).cmdHello,
		"ismaster":            (*Node).cmdHello,
		"ping":                func(*Node, *connState, *request) (bson.D, error) { return bson.D{}, nil },
		"buildInfo":           (*Node).cmdBuildInfo,
		"buildinfo":           (*Node).cmdBuildInfo,
		"getParameter":        (*Node).cmdGetParameter,
		"serverStatus":        (*Node).cmdServerStatus,
		"endSessions":         func(*Node, *connState, *request) (bson.D, error) { return bson.D{}, nil },
		"logout":              func(_ *Node, cs *connState, _ *request) (bson.D, error) { cs.authed = false; return bson.D{}, nil },
		"saslStart":           (*Node).cmdSaslStart,
		"saslContinue":        (*Node).cmdSaslContinue,
		"replSetGetStatus":    (*Node).cmdGetStatus,
		"replSetGetConfig":    (*Node).cmdGetConfig,
		"replSetReconfig":     (*Node).cmdReconfig,
		"replSetStepDown":     (*Node).cmdStepDown,
		"replSetStepUp":       (*Node).cmdStepUp,
		"replSetFreeze":       (*Node).cmdFreeze,
		"replSetHeartbeat":    func(n *Node, _ *connState, r *request) (bson.D, error) { return n.handleHeartbeat(r.cmd) },
		"replSetRequestVotes": func(n *Node, _ *connState, r *request) (bson.D, error) { return n.handleRequestVotes(r.cmd) },
		"insert":              (*Node).cmdInsert,
		"find":                (*Node).cmdFind,
	}
}

// dispatch runs one command and returns the reply document; drop means
// close the connection without answering (a cut link).
func (n *Node) dispatch(cs *connState, r *request) (reply bson.Raw, drop bool) {
	n.mu.Lock()
	hook := n.intercept
	n.mu.Unlock()
	if hook != nil {
		if doc, ok := hook(r.name, r.cmd); ok {
			return doc, doc == nil
		}
	}
	handoff, _ := r.cmd.Lookup("$mongosimHandoff").BooleanOK()
	if r.name == "replSetHeartbeat" || r.name == "replSetRequestVotes" || (r.name == "replSetStepUp" && handoff) {
		if from, _ := r.cmd.Lookup("from").StringValueOK(); n.blocked(n.nameOf(from)) {
			return nil, true
		}
	}
	if n.opts.Auth != nil && !cs.authed && !authExempt[r.name] && !(r.name == "replSetStepUp" && handoff) {
		return errorDoc(n, cmdErr(13, "Command %s requires authentication", r.name)), false
	}
	h, ok := handlers[r.name]
	if !ok {
		return errorDoc(n, cmdErr(59, "no such command: '%s'", r.name)), false
	}
	if adminOnly[r.name] && r.db != "admin" && r.msg.Header.OpCode == OpMsg {
		return errorDoc(n, cmdErr(13, "%s may only be run against the admin database.", r.name)), false
	}
	d, err := h(n, cs, r)
	if err != nil {
		return errorDoc(n, err), false
	}
	return mustMarshal(append(d, bson.E{Key: "ok", Value: 1.0})), false
}

func (n *Node) topologyVersionLocked() bson.D {
	return bson.D{{Key: "processId", Value: n.processID}, {Key: "counter", Value: n.topoCounter}}
}

func (n *Node) cmdHello(cs *connState, r *request) (bson.D, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	writable := n.state == StatePrimary
	d := bson.D{}
	if r.name == "hello" {
		d = append(d, bson.E{Key: "isWritablePrimary", Value: writable})
	} else {
		d = append(d, bson.E{Key: "ismaster", Value: writable})
	}
	d = append(d, bson.E{Key: "topologyVersion", Value: n.topologyVersionLocked()})
	self, inCfg := n.selfLocked()
	if !inCfg {
		d = append(d, bson.E{Key: "secondary", Value: false}, bson.E{Key: "info", Value: "Does not have a valid replica set config"},
			bson.E{Key: "isreplicaset", Value: true})
	} else {
		var hosts, passives, arbiters bson.A
		for _, m := range n.cfg.Members {
			switch {
			case m.Hidden:
			case m.Arbiter:
				arbiters = append(arbiters, m.Host)
			case m.Priority == 0:
				passives = append(passives, m.Host)
			default:
				hosts = append(hosts, m.Host)
			}
		}
		d = append(d, bson.E{Key: "hosts", Value: hosts})
		if len(passives) > 0 {
			d = append(d, bson.E{Key: "passives", Value: passives})
		}
		if len(arbiters) > 0 {
			d = append(d, bson.E{Key: "arbiters", Value: arbiters})
		}
		d = append(d, bson.E{Key: "setName", Value: n.cfg.SetName}, bson.E{Key: "setVersion", Value: int32(n.cfg.Version)},
			bson.E{Key: "secondary", Value: n.state == StateSecondary})
		if ph, _ := n.primaryHostLocked(); ph != "" {
			d = append(d, bson.E{Key: "primary", Value: ph})
		}
		if self.Arbiter {
			d = append(d, bson.E{Key: "arbiterOnly", Value: true})
		}
		if self.Priority == 0 && !self.Arbiter {
			d = append(d, bson.E{Key: "passive", Value: true})
		}
		d = append(d, bson.E{Key: "me", Value: n.host})
		if writable {
			d = append(d, bson.E{Key: "electionId", Value: electionID(n.term)})
		}
		if !self.Arbiter {
			last := n.lastAppliedLocked()
			d = append(d, bson.E{Key: "lastWrite", Value: bson.D{
				{Key: "opTime", Value: last.doc()},
				{Key: "lastWriteDate", Value: bson.NewDateTimeFromTime(n.lastWallLocked())},
				{Key: "majorityOpTime", Value: n.committed.doc()},
				{Key: "majorityWriteDate", Value: bson.NewDateTimeFromTime(n.wallOfLocked(n.committed))},
			}})
		}
	}
	if ok, _ := r.cmd.Lookup("helloOk").BooleanOK(); ok {
		d = append(d, bson.E{Key: "helloOk", Value: true})
	}
	if u, ok := r.cmd.Lookup("saslSupportedMechs").StringValueOK(); ok && n.opts.Auth != nil && u == "admin."+n.opts.Auth.User {
		d = append(d, bson.E{Key: "saslSupportedMechs", Value: bson.A{"SCRAM-SHA-256"}})
	}
	return append(d,
		bson.E{Key: "maxBsonObjectSize", Value: int32(16 * 1024 * 1024)},
		bson.E{Key: "maxMessageSizeBytes", Value: int32(MaxMessageSize)},
		bson.E{Key: "maxWriteBatchSize", Value: int32(100000)},
		bson.E{Key: "localTime", Value: bson.NewDateTimeFromTime(time.Now())},
		bson.E{Key: "logicalSessionTimeoutMinutes", Value: int32(30)},
		bson.E{Key: "connectionId", Value: int32(cs.id)},
		bson.E{Key: "minWireVersion", Value: int32(0)},
		bson.E{Key: "maxWireVersion", Value: int32(21)},
		bson.E{Key: "readOnly", Value: false},
	), nil
}

func (n *Node) wallOfLocked(o OpTime) time.Time {
	if i, ok := n.findAfterLocked(o); ok && i > 0 {
		return n.oplog[i-1].Wall
	}
	return time.Time{}
}

func (n *Node) cmdBuildInfo(*connState, *request) (bson.D, error) {
	return bson.D{
		{Key: "version", Value: "7.0.0-mongosim"},
		{Key: "gitVersion", Value: "mongosim (a test double, not MongoDB)"},
		{Key: "versionArray", Value: bson.A{int32(7), int32(0), int32(0), int32(0)}},
		{Key: "bits", Value: int32(64)},
		{Key: "maxBsonObjectSize", Value: int32(16 * 1024 * 1024)},
	}, nil
}

func (n *Node) cmdGetParameter(_ *connState, r *request) (bson.D, error) {
	d := bson.D{}
	if _, err := r.cmd.LookupErr("featureCompatibilityVersion"); err == nil {
		d = append(d, bson.E{Key: "featureCompatibilityVersion", Value: bson.D{{Key: "version", Value: "7.0"}}})
	}
	return d, nil
}

func (n *Node) cmdServerStatus(*connState, *request) (bson.D, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ph, _ := n.primaryHostLocked()
	return bson.D{
		{Key: "host", Value: n.host},
		{Key: "version", Value: "7.0.0-mongosim"},
		{Key: "process", Value: "mongosim"},
		{Key: "pid", Value: int64(os.Getpid())},
		{Key: "uptime", Value: time.Since(n.startedAt).Seconds()},
		{Key: "localTime", Value: bson.NewDateTimeFromTime(time.Now())},
		{Key: "repl", Value: bson.D{
			{Key: "setName", Value: n.cfg.SetName},
			{Key: "isWritablePrimary", Value: n.state == StatePrimary},
			{Key: "secondary", Value: n.state == StateSecondary},
			{Key: "primary", Value: ph},
			{Key: "me", Value: n.host},
		}},
	}, nil
}

func (n *Node) cmdSaslStart(cs *connState, r *request) (bson.D, error) {
	if n.scram == nil {
		return nil, cmdErr(18, "Authentication failed.")
	}
	mech, _ := r.cmd.Lookup("mechanism").StringValueOK()
	if mech != "SCRAM-SHA-256" {
		return nil, cmdErr(18, "Authentication failed.")
	}
	_, payload, _ := r.cmd.Lookup("payload").BinaryOK()
	cs.conv = n.scram.NewConversation()
	out, err := cs.conv.Step(string(payload))
	if err != nil {
		cs.conv = nil
		return nil, cmdErr(18, "Authentication failed.")
	}
	return bson.D{{Key: "conversationId", Value: int32(1)}, {Key: "done", Value: false},
		{Key: "payload", Value: bson.Binary{Data: []byte(out)}}}, nil
}

func (n *Node) cmdSaslContinue(cs *connState, r *request) (bson.D, error) {
	if cs.conv == nil {
		return nil, cmdErr(18, "Authentication failed.")
	}
	if cs.conv.Done() {
		// The client acknowledges the server's final message.
		if !cs.conv.Valid() {
			return nil, cmdErr(18, "Authentication failed.")
		}
		cs.authed, cs.conv = true, nil
		return bson.D{{Key: "conversationId", Value: int32(1)}, {Key: "done", Value: true}, {Key: "payload", Value: bson.Binary{}}}, nil
	}
	_, payload, _ := r.cmd.Lookup("payload").BinaryOK()
	out, err := cs.conv.Step(string(payload))
	if err != nil || !cs.conv.Valid() {
		cs.conv = nil
		return nil, cmdErr(18, "Authentication failed.")
	}
	skip := false
	if o, ok := r.cmd.Lookup("options").DocumentOK(); ok {
		skip, _ = o.Lookup("skipEmptyExchange").BooleanOK()
	}
	if skip {
		cs.authed, cs.conv = true, nil
	}
	return bson.D{{Key: "conversationId", Value: int32(1)}, {Key: "done", Value: skip},
		{Key: "payload", Value: bson.Binary{Data: []byte(out)}}}, nil
}

func dt(t time.Time) bson.DateTime {
	if t.IsZero() {
		return bson.DateTime(0)
	}
	return bson.NewDateTimeFromTime(t)
}

func (n *Node) cmdGetStatus(*connState, *request) (bson.D, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	self, ok := n.selfLocked()
	if !ok {
		return nil, cmdErr(93, "Our replica set config is invalid or we are not a member of it")
	}
	now := time.Now()
	last, lastWall := n.lastAppliedLocked(), n.lastWallLocked()
	voting, writableVoting := 0, 0
	for _, m := range n.cfg.Members {
		if m.Votes > 0 {
			voting++
			if !m.Arbiter {
				writableVoting++
			}
		}
	}
	d := bson.D{
		{Key: "set", Value: n.cfg.SetName},
		{Key: "date", Value: dt(now)},
		{Key: "myState", Value: int32(n.state)},
		{Key: "term", Value: n.term},
		{Key: "syncSourceHost", Value: n.syncSourceHostLocked()},
		{Key: "syncSourceId", Value: int32(n.syncSource)},
		{Key: "heartbeatIntervalMillis", Value: n.cfg.Heartbeat.Milliseconds()},
		{Key: "majorityVoteCount", Value: int32(n.cfg.majority())},
		{Key: "writeMajorityCount", Value: int32(n.cfg.writeMajority())},
		{Key: "votingMembersCount", Value: int32(voting)},
		{Key: "writableVotingMembersCount", Value: int32(writableVoting)},
		{Key: "optimes", Value: bson.D{
			{Key: "lastCommittedOpTime", Value: n.committed.doc()},
			{Key: "lastCommittedWallTime", Value: dt(n.wallOfLocked(n.committed))},
			{Key: "readConcernMajorityOpTime", Value: n.committed.doc()},
			{Key: "appliedOpTime", Value: last.doc()},
			{Key: "durableOpTime", Value: last.doc()},
			{Key: "lastAppliedWallTime", Value: dt(lastWall)},
			{Key: "lastDurableWallTime", Value: dt(lastWall)},
		}},
	}
	if c := n.cand; c != nil {
		termKey := "electionTerm"
		if n.opts.LegacyElectionMetrics {
			termKey = "termAtElection"
		}
		m := bson.D{
			{Key: "lastElectionReason", Value: c.reason},
			{Key: "lastElectionDate", Value: dt(c.date)},
			{Key: termKey, Value: c.term},
			{Key: "lastCommittedOpTimeAtElection", Value: c.committed.doc()},
			{Key: "lastSeenOpTimeAtElection", Value: c.lastSeen.doc()},
			{Key: "numVotesNeeded", Value: int32(c.votesNeeded)},
			{Key: "priorityAtElection", Value: c.priority},
			{Key: "electionTimeoutMillis", Value: c.timeoutMillis},
		}
		if c.priorPrimary >= 0 {
			m = append(m, bson.E{Key: "priorPrimaryMemberId", Value: int32(c.priorPrimary)})
		}
		m = append(m, bson.E{Key: "newTermStartDate", Value: dt(c.newTermStart)})
		if !c.wMajorityDate.IsZero() {
			m = append(m, bson.E{Key: "wMajorityWriteAvailabilityDate", Value: dt(c.wMajorityDate)})
		}
		d = append(d, bson.E{Key: "electionCandidateMetrics", Value: m})
	}
	if p := n.part; p != nil {
		d = append(d, bson.E{Key: "electionParticipantMetrics", Value: bson.D{
			{Key: "votedForCandidate", Value: p.voted},
			{Key: "electionTerm", Value: p.term},
			{Key: "lastVoteDate", Value: dt(p.date)},
			{Key: "electionCandidateMemberId", Value: int32(p.candidate)},
			{Key: "voteReason", Value: p.reason},
			{Key: "lastAppliedOpTimeAtElection", Value: p.lastApplied.doc()},
			{Key: "priorityAtElection", Value: p.priority},
		}})
	}
	var members bson.A
	for _, m := range n.cfg.Members {
		if m.Host == n.host {
			e := bson.D{
				{Key: "_id", Value: int32(m.ID)}, {Key: "name", Value: m.Host}, {Key: "health", Value: 1.0},
				{Key: "state", Value: int32(n.state)}, {Key: "stateStr", Value: StateString(n.state)},
				{Key: "uptime", Value: int32(now.Sub(n.startedAt).Seconds())},
			}
			if !self.Arbiter {
				e = append(e, bson.E{Key: "optime", Value: last.doc()}, bson.E{Key: "optimeDate", Value: dt(lastWall)},
					bson.E{Key: "lastAppliedWallTime", Value: dt(lastWall)}, bson.E{Key: "lastDurableWallTime", Value: dt(lastWall)})
			}
			e = append(e, bson.E{Key: "syncSourceHost", Value: n.syncSourceHostLocked()}, bson.E{Key: "syncSourceId", Value: int32(n.syncSource)},
				bson.E{Key: "infoMessage", Value: ""})
			if n.state == StatePrimary {
				e = append(e, bson.E{Key: "electionTime", Value: n.electionTS}, bson.E{Key: "electionDate", Value: dt(n.electionDate)})
			}
			e = append(e, bson.E{Key: "configVersion", Value: int32(n.cfg.Version)}, bson.E{Key: "configTerm", Value: n.cfg.Term},
				bson.E{Key: "self", Value: true}, bson.E{Key: "lastHeartbeatMessage", Value: ""})
			members = append(members, e)
			continue
		}
		p := n.peers[m.ID]
		if p == nil {
			continue
		}
		state, stateStr, health, uptime := StateDown, "(not reachable/healthy)", 0.0, int32(0)
		if p.healthy {
			state, stateStr, health, uptime = p.state, StateString(p.state), 1.0, int32(now.Sub(p.upSince).Seconds())
		} else if !p.contacted && p.lastErr == "" {
			state, stateStr = StateUnknown, StateString(StateUnknown)
		}
		e := bson.D{
			{Key: "_id", Value: int32(m.ID)}, {Key: "name", Value: m.Host}, {Key: "health", Value: health},
			{Key: "state", Value: int32(state)}, {Key: "stateStr", Value: stateStr}, {Key: "uptime", Value: uptime},
		}
		if !m.Arbiter {
			o, w := p.optime, p.optimeWall
			if !p.healthy {
				o, w = OpTime{}, time.Time{}
			}
			e = append(e, bson.E{Key: "optime", Value: o.doc()}, bson.E{Key: "optimeDurable", Value: o.doc()},
				bson.E{Key: "optimeDate", Value: dt(w)}, bson.E{Key: "optimeDurableDate", Value: dt(w)},
				bson.E{Key: "lastAppliedWallTime", Value: dt(w)}, bson.E{Key: "lastDurableWallTime", Value: dt(w)})
		}
		e = append(e,
			bson.E{Key: "lastHeartbeat", Value: dt(p.lastAttempt)},
			bson.E{Key: "lastHeartbeatRecv", Value: dt(p.lastRecv)},
			bson.E{Key: "pingMs", Value: p.ping.Milliseconds()},
			bson.E{Key: "lastHeartbeatMessage", Value: p.lastErr},
			bson.E{Key: "syncSourceHost", Value: p.syncSource},
			bson.E{Key: "syncSourceId", Value: int32(p.syncSourceID)},
			bson.E{Key: "infoMessage", Value: ""},
		)
		if p.healthy && p.state == StatePrimary {
			e = append(e, bson.E{Key: "electionTime", Value: p.electionTS}, bson.E{Key: "electionDate", Value: dt(p.electionDate)})
		}
		e = append(e, bson.E{Key: "configVersion", Value: int32(p.configVersion)}, bson.E{Key: "configTerm", Value: p.configTerm})
		members = append(members, e)
	}
	return append(d, bson.E{Key: "members", Value: members}), nil
}

func (n *Node) cmdGetConfig(_ *connState, r *request) (bson.D, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	d := bson.D{{Key: "config", Value: n.cfg.doc()}}
	if cs, _ := r.cmd.Lookup("commitmentStatus").BooleanOK(); cs {
		if n.state != StatePrimary {
			return nil, cmdErr(10107, "commitmentStatus is only supported on primary.")
		}
		d = append(d, bson.E{Key: "commitmentStatus", Value: n.configCommittedLocked()})
	}
	return d, nil
}

// configCommittedLocked reports whether a majority of voters have this
// member's configuration.
func (n *Node) configCommittedLocked() bool {
	c := 0
	for _, m := range n.cfg.Members {
		if m.Votes == 0 {
			continue
		}
		if m.Host == n.host {
			c++
		} else if p := n.peers[m.ID]; p != nil && p.healthy && p.configVersion == n.cfg.Version && p.configTerm == n.cfg.Term {
			c++
		}
	}
	return c >= n.cfg.majority()
}

func (n *Node) cmdReconfig(_ *connState, r *request) (bson.D, error) {
	cd, ok := r.cmd.Lookup("replSetReconfig").DocumentOK()
	if !ok {
		return nil, cmdErr(2, "replSetReconfig takes a configuration document")
	}
	force, _ := r.cmd.Lookup("force").BooleanOK()
	maxTime, hasMax := r.cmd.Lookup("maxTimeMS").AsInt64OK()
	n.mu.Lock()
	c, err := parseConfig(cd, &n.cfg)
	if err != nil {
		n.mu.Unlock()
		return nil, cmdErr(93, "%v", err)
	}
	if c.SetName != n.cfg.SetName {
		n.mu.Unlock()
		return nil, cmdErr(103, "New and old configurations differ in replica set name; old was %s, and new is %s", n.cfg.SetName, c.SetName)
	}
	if _, ok := c.byHost(n.host); !ok {
		n.mu.Unlock()
		return nil, cmdErr(74, "No host described in new configuration with {version: %d} for replica set %s maps to this node", c.Version, c.SetName)
	}
	if force {
		c.Version = max(c.Version, n.cfg.Version) + 10000 + rand.Int64N(90000)
		c.Term = -1
		n.installConfigLocked(c, "forced reconfig")
		n.afterChangeLocked()
		n.mu.Unlock()
		go n.heartbeatAll(false)
		return bson.D{}, nil
	}
	if n.state != StatePrimary {
		st := StateString(n.state)
		n.mu.Unlock()
		return nil, cmdErr(10107, "replSetReconfig should only be run on a writable PRIMARY. Current state %s;", st)
	}
	if c.Version <= n.cfg.Version {
		v := n.cfg.Version
		n.mu.Unlock()
		return nil, cmdErr(103, "BadValue: New config version %d must be greater than old version %d", c.Version, v)
	}
	oldVoters, newVoters := map[string]bool{}, map[string]bool{}
	for _, m := range n.cfg.Members {
		if m.Votes > 0 {
			oldVoters[m.Host] = true
		}
	}
	changes := 0
	for _, m := range c.Members {
		if m.Votes > 0 {
			newVoters[m.Host] = true
			if !oldVoters[m.Host] {
				changes++
			}
		}
	}
	for h := range oldVoters {
		if !newVoters[h] {
			changes++
		}
	}
	if changes > 1 {
		n.mu.Unlock()
		return nil, cmdErr(103, "Non force replica set reconfig can only add or remove at most 1 voting member.")
	}
	c.Term = n.term
	n.installConfigLocked(c, "replSetReconfig")
	n.afterChangeLocked()
	ctx := n.ctx
	n.mu.Unlock()
	n.heartbeatAll(false)
	limit := 30 * time.Second
	if hasMax && maxTime > 0 {
		limit = time.Duration(maxTime) * time.Millisecond
	}
	deadline := time.Now().Add(limit)
	for {
		n.mu.Lock()
		done := n.configCommittedLocked()
		n.mu.Unlock()
		if done {
			return bson.D{}, nil
		}
		if time.Now().After(deadline) {
			if hasMax {
				return nil, cmdErr(50, "operation exceeded time limit: the new configuration (version %d) has not yet propagated to a majority of nodes", c.Version)
			}
			return nil, cmdErr(262, "the new configuration (version %d) has not yet propagated to a majority of nodes", c.Version)
		}
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return nil, cmdErr(11600, "interrupted at shutdown")
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// electableCaughtUpLocked returns the best hand-off target: a healthy,
// electable secondary that has applied everything this primary has
// (highest priority first, then newest optime), or nil.
func (n *Node) electableCaughtUpLocked() *peer {
	last := n.lastAppliedLocked()
	var best *peer
	var bestPri float64
	for _, m := range n.cfg.Members {
		p := n.peers[m.ID]
		if m.Host == n.host || !m.electable() || p == nil || !p.healthy || p.state != StateSecondary || p.optime.Compare(last) < 0 {
			continue
		}
		if best == nil || m.Priority > bestPri || (m.Priority == bestPri && p.optime.Compare(best.optime) > 0) {
			best, bestPri = p, m.Priority
		}
	}
	return best
}

func (n *Node) cmdStepDown(_ *connState, r *request) (bson.D, error) {
	secs := 60.0
	if v, ok := r.cmd.Lookup("replSetStepDown").AsFloat64OK(); ok {
		secs = v
	}
	force, _ := r.cmd.Lookup("force").BooleanOK()
	catchUp := 10.0
	if force {
		catchUp = 0
	}
	if v, err := r.cmd.LookupErr("secondaryCatchUpPeriodSecs"); err == nil {
		f, ok := v.AsFloat64OK()
		if !ok || f < 0 {
			return nil, cmdErr(2, "secondaryCatchUpPeriodSecs must be a non-negative number")
		}
		catchUp = f
	}
	n.mu.Lock()
	if n.state != StatePrimary {
		n.mu.Unlock()
		return nil, cmdErr(10107, "not primary so can't step down")
	}
	if secs < catchUp {
		n.mu.Unlock()
		return nil, cmdErr(2, "stepdown period must be longer than secondaryCatchUpPeriodSecs")
	}
	ctx := n.ctx
	n.mu.Unlock()
	deadline := time.Now().Add(time.Duration(catchUp * float64(time.Second)))
	var target *peer
	for {
		n.mu.Lock()
		if n.state != StatePrimary {
			n.mu.Unlock()
			return nil, cmdErr(189, "primary stepped down while waiting for a secondary to catch up")
		}
		target = n.electableCaughtUpLocked()
		if target != nil || !time.Now().Before(deadline) {
			break
		}
		n.mu.Unlock()
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return nil, cmdErr(11600, "interrupted at shutdown")
		}
	}
	if target == nil && !force {
		n.mu.Unlock()
		return nil, cmdErr(262, "No electable secondaries caught up as of %s. Please use the replSetStepDown command with the argument {force: true} to force node to step down.",
			time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	}
	n.stepDownLocked(fmt.Sprintf("replSetStepDown %gs (catch-up period %gs, force %v)", secs, catchUp, force))
	n.stepDownTill = time.Now().Add(time.Duration(secs * float64(time.Second)))
	n.afterChangeLocked()
	var host string
	if target != nil {
		host = target.host
	}
	n.wg.Add(1)
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		// Tell the set at once that this member is no longer primary, then
		// hand the election off to the most caught-up electable secondary.
		n.heartbeatAll(true)
		if host == "" {
			return
		}
		n.logf("handing the election off to %s", n.nameOf(host))
		_, err := n.rpc(host, bson.D{{Key: "replSetStepUp", Value: int32(1)}, {Key: "skipDryRun", Value: true},
			{Key: "$mongosimHandoff", Value: true}, {Key: "from", Value: n.host}}, 4*n.rpcTimeout())
		if err != nil {
			n.logf("election hand-off to %s failed: %v", n.nameOf(host), err)
		}
	}()
	return bson.D{}, nil
}

func (n *Node) cmdStepUp(_ *connState, r *request) (bson.D, error) {
	skip, _ := r.cmd.Lookup("skipDryRun").BooleanOK()
	n.mu.Lock()
	if n.state == StatePrimary {
		n.mu.Unlock()
		return bson.D{{Key: "info", Value: "already primary"}}, nil
	}
	self, ok := n.selfLocked()
	why := ""
	switch {
	case n.state != StateSecondary:
		why = "not a secondary (" + StateString(n.state) + ")"
	case !ok || !self.electable():
		why = "not electable (priority 0, no vote, or arbiter)"
	case time.Now().Before(n.frozenTill):
		why = "frozen"
	case n.electing:
		why = "an election is already running"
	}
	if why != "" {
		n.mu.Unlock()
		n.logf("replSetStepUp refused: %s", why)
		return nil, cmdErr(125, "Election failed.")
	}
	n.electing = true
	n.mu.Unlock()
	reason := "stepUpRequest"
	if skip {
		reason = "stepUpRequestSkipDryRun"
	}
	if won, _ := n.runElection(reason, skip); !won {
		return nil, cmdErr(125, "Election failed.")
	}
	return bson.D{}, nil
}

func (n *Node) cmdFreeze(_ *connState, r *request) (bson.D, error) {
	secs, ok := r.cmd.Lookup("replSetFreeze").AsFloat64OK()
	if !ok || secs < 0 {
		return nil, cmdErr(2, "replSetFreeze takes a number of seconds")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state == StatePrimary || n.electing {
		return nil, cmdErr(95, "cannot freeze node when primary or running for election. state: %s", StateString(n.state))
	}
	if secs == 0 {
		n.frozenTill = time.Time{}
		return bson.D{{Key: "info", Value: "unfreezing"}}, nil
	}
	n.frozenTill = time.Now().Add(time.Duration(secs * float64(time.Second)))
	n.takeoverAt = time.Time{}
	return bson.D{}, nil
}

func (n *Node) cmdInsert(_ *connState, r *request) (bson.D, error) {
	coll, ok := r.cmd.Lookup("insert").StringValueOK()
	if !ok || coll == "" {
		return nil, cmdErr(2, "insert takes a collection name")
	}
	docs := r.docs("documents")
	n.mu.Lock()
	if n.state != StatePrimary {
		n.mu.Unlock()
		return nil, cmdErr(10107, "not primary")
	}
	var last OpTime
	for _, d := range docs {
		if _, err := d.LookupErr("_id"); err != nil {
			d = slices.Clone(d)
			d = mustMarshal(append(bson.D{{Key: "_id", Value: bson.NewObjectID()}}, rawToD(d)...))
		}
		last = n.appendLocked(entry{Op: "i", NS: r.db + "." + coll, Doc: slices.Clone(d)}, n.term)
	}
	n.advanceCommitLocked()
	ctx := n.ctx
	n.mu.Unlock()
	reply := bson.D{{Key: "n", Value: int32(len(docs))}}
	wc, ok := r.cmd.Lookup("writeConcern").DocumentOK()
	if !ok || len(docs) == 0 {
		return reply, nil
	}
	wtimeout, _ := wc.Lookup("wtimeout").AsInt64OK()
	var need int
	wv := wc.Lookup("w")
	if s, ok := wv.StringValueOK(); ok && s == "majority" {
		n.mu.Lock()
		need = n.cfg.writeMajority()
		n.mu.Unlock()
	} else if w, ok := wv.AsInt64OK(); ok {
		need = int(w)
	}
	if need <= 1 {
		return reply, nil
	}
	limit := time.Duration(wtimeout) * time.Millisecond
	if limit <= 0 {
		limit = time.Minute
	}
	deadline := time.Now().Add(limit)
	for {
		n.mu.Lock()
		got := n.replicatedToLocked(last)
		n.mu.Unlock()
		if got >= need {
			return reply, nil
		}
		if time.Now().After(deadline) {
			return append(reply, bson.E{Key: "writeConcernError", Value: bson.D{
				{Key: "code", Value: int32(64)}, {Key: "codeName", Value: "WriteConcernTimeout"},
				{Key: "errmsg", Value: "waiting for replication timed out"},
				{Key: "errInfo", Value: bson.D{{Key: "wtimeout", Value: true}}},
			}}), nil
		}
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return nil, cmdErr(11600, "interrupted at shutdown")
		}
	}
}

func rawToD(r bson.Raw) bson.D {
	var d bson.D
	_ = bson.Unmarshal(r, &d)
	return d
}

func (n *Node) cmdFind(_ *connState, r *request) (bson.D, error) {
	coll, ok := r.cmd.Lookup("find").StringValueOK()
	if !ok || coll == "" {
		return nil, cmdErr(2, "find takes a collection name")
	}
	mode := "primary"
	if rp, ok := r.cmd.Lookup("$readPreference").DocumentOK(); ok {
		if m, ok := rp.Lookup("mode").StringValueOK(); ok {
			mode = m
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.state == StatePrimary:
	case n.state == StateSecondary && mode != "primary":
	case n.state == StateSecondary:
		return nil, cmdErr(13435, "not primary and secondaryOk=false")
	default:
		return nil, cmdErr(13436, "node is not in primary or recovering state")
	}
	filter, _ := r.cmd.Lookup("filter").DocumentOK()
	fels, _ := filter.Elements()
	limit, _ := r.cmd.Lookup("limit").AsInt64OK()
	batch := bson.A{}
	ns := r.db + "." + coll
docs:
	for _, d := range n.data[ns] {
		for _, fe := range fels {
			v, err := d.LookupErr(fe.Key())
			if err != nil || !v.Equal(fe.Value()) {
				continue docs
			}
		}
		batch = append(batch, d)
		if limit > 0 && int64(len(batch)) >= limit {
			break
		}
	}
	return bson.D{{Key: "cursor", Value: bson.D{{Key: "firstBatch", Value: batch}, {Key: "id", Value: int64(0)}, {Key: "ns", Value: ns}}}}, nil
}
