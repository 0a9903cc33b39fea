package mongosim

import (
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

const maxEntriesPerHeartbeat = 500

func (n *Node) selfLocked() (rsMember, bool) { return n.cfg.byHost(n.host) }

// syncPeersLocked makes the peer table match the configuration.
func (n *Node) syncPeersLocked() {
	keep := map[int]bool{}
	for _, m := range n.cfg.Members {
		if m.Host == n.host {
			continue
		}
		keep[m.ID] = true
		if p, ok := n.peers[m.ID]; !ok || p.host != m.Host {
			n.peers[m.ID] = &peer{id: m.ID, host: m.Host, state: StateUnknown, syncSourceID: -1}
		}
	}
	for id := range n.peers {
		if !keep[id] {
			delete(n.peers, id)
		}
	}
}

// seenPrimaryLocked is the healthy peer that reports itself PRIMARY in the
// newest term not older than ours, or nil.
func (n *Node) seenPrimaryLocked() *peer {
	var best *peer
	for _, p := range n.peers {
		if p.healthy && p.state == StatePrimary && p.term >= n.term && (best == nil || p.term > best.term) {
			best = p
		}
	}
	return best
}

// primaryHostLocked is the primary this member knows of (itself included).
func (n *Node) primaryHostLocked() (string, int) {
	if n.state == StatePrimary {
		if s, ok := n.selfLocked(); ok {
			return n.host, s.ID
		}
	}
	if p := n.seenPrimaryLocked(); p != nil {
		return p.host, p.id
	}
	return "", -1
}

func (n *Node) heartbeatLoop() {
	defer n.wg.Done()
	for {
		n.mu.Lock()
		hb, ctx := n.cfg.Heartbeat, n.ctx
		n.mu.Unlock()
		n.heartbeatAll(false)
		select {
		case <-ctx.Done():
			return
		case <-time.After(hb):
		}
	}
}

// heartbeatAll sends one heartbeat to every other member. With wait it also
// sends to members that already have one in flight and returns when all
// answered or timed out (used to tell the set at once that this member
// stepped down).
func (n *Node) heartbeatAll(wait bool) {
	n.mu.Lock()
	if !n.running {
		n.mu.Unlock()
		return
	}
	var targets []rsMember
	for _, m := range n.cfg.Members {
		if m.Host == n.host || (!wait && n.hbInflight[m.ID]) {
			continue
		}
		n.hbInflight[m.ID] = true
		targets = append(targets, m)
	}
	n.wg.Add(len(targets))
	n.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(len(targets))
	for _, m := range targets {
		go func() {
			defer n.wg.Done()
			defer wg.Done()
			n.heartbeat(m)
		}()
	}
	if wait {
		wg.Wait()
	}
}

func (n *Node) heartbeat(m rsMember) {
	n.mu.Lock()
	if !n.running {
		delete(n.hbInflight, m.ID)
		n.mu.Unlock()
		return
	}
	last := n.lastAppliedLocked()
	self, inCfg := n.selfLocked()
	fromID := -1
	if inCfg {
		fromID = self.ID
	}
	req := bson.D{
		{Key: "replSetHeartbeat", Value: n.cfg.SetName},
		{Key: "configVersion", Value: n.cfg.Version},
		{Key: "configTerm", Value: n.cfg.Term},
		{Key: "from", Value: n.host},
		{Key: "fromId", Value: int32(fromID)},
		{Key: "term", Value: n.term},
		{Key: "state", Value: int32(n.state)},
		{Key: "optime", Value: last.doc()},
		{Key: "wall", Value: bson.NewDateTimeFromTime(n.lastWallLocked())},
	}
	pulling := n.state == StateSecondary && !n.replPaused && n.syncSource == m.ID
	if pulling {
		req = append(req, bson.E{Key: "pull", Value: true})
	}
	n.mu.Unlock()

	start := time.Now()
	reply, err := n.rpc(m.Host, req, n.rpcTimeout())
	rtt := time.Since(start)

	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.hbInflight, m.ID)
	p := n.peers[m.ID]
	if !n.running || p == nil || p.host != m.Host {
		return
	}
	p.lastAttempt = time.Now()
	if err != nil {
		if p.healthy {
			n.logf("heartbeat to %s failed, member is now DOWN: %v", n.nameOf(m.Host), err)
		}
		p.healthy = false
		p.lastErr = err.Error()
		n.afterChangeLocked()
		return
	}
	n.heartbeatReplyLocked(p, reply, rtt, pulling, last)
	n.afterChangeLocked()
}

func (n *Node) heartbeatReplyLocked(p *peer, r bson.Raw, rtt time.Duration, pulling bool, sentAfter OpTime) {
	now := time.Now()
	if !p.healthy {
		p.upSince = now
	}
	p.healthy, p.contacted, p.lastOK, p.lastErr, p.ping = true, true, now, "", rtt
	if s, ok := r.Lookup("state").AsInt64OK(); ok {
		if int(s) != p.state {
			n.logf("member %s is now in state %s", n.nameOf(p.host), StateString(int(s)))
		}
		p.state = int(s)
	}
	p.term, _ = r.Lookup("term").AsInt64OK()
	p.optime = opTimeFrom(r.Lookup("optime"))
	p.optimeWall, _ = r.Lookup("wall").TimeOK()
	p.configVersion, _ = r.Lookup("configVersion").AsInt64OK()
	p.configTerm, _ = r.Lookup("configTerm").AsInt64OK()
	p.syncSource, _ = r.Lookup("syncSourceHost").StringValueOK()
	if id, ok := r.Lookup("syncSourceId").AsInt64OK(); ok {
		p.syncSourceID = int(id)
	}
	p.electionTS, p.electionDate = bson.Timestamp{}, time.Time{}
	if p.state == StatePrimary {
		if t, i, ok := r.Lookup("electionTime").TimestampOK(); ok {
			p.electionTS = bson.Timestamp{T: t, I: i}
		}
		p.electionDate, _ = r.Lookup("electionDate").TimeOK()
	}
	if p.term > n.term {
		n.adoptTermLocked(p.term, "heartbeat reply from "+n.nameOf(p.host))
	}
	if cd, ok := r.Lookup("config").DocumentOK(); ok {
		if c, err := parseConfig(cd, &n.cfg); err == nil && c.newerThan(&n.cfg) {
			n.installConfigLocked(c, "heartbeat reply from "+n.nameOf(p.host))
			p = n.peers[p.id]
			if p == nil {
				return
			}
		}
	}
	if p.state == StatePrimary && p.term >= n.term && n.state != StatePrimary {
		n.timerBase = now
		n.lastPrimary = p.id
	}
	if c := opTimeFrom(r.Lookup("committed")); n.state != StatePrimary && c.Compare(n.committed) > 0 {
		n.committed = c
	}
	if !pulling || n.state != StateSecondary || n.lastAppliedLocked() != sentAfter {
		return
	}
	if rb, _ := r.Lookup("rollback").BooleanOK(); rb {
		n.rollbackLocked(r.Lookup("runs"), p.host)
		return
	}
	arr, ok := r.Lookup("entries").ArrayOK()
	if !ok {
		return
	}
	vals, _ := arr.Values()
	for _, v := range vals {
		d, ok := v.DocumentOK()
		if !ok {
			return
		}
		e := entry{OpTime: opTimeFrom(v)}
		e.Wall, _ = d.Lookup("wall").TimeOK()
		e.Op, _ = d.Lookup("op").StringValueOK()
		e.NS, _ = d.Lookup("ns").StringValueOK()
		if o, ok := d.Lookup("o").DocumentOK(); ok {
			e.Doc = slices.Clone(o)
		}
		if e.OpTime.Compare(n.lastAppliedLocked()) <= 0 {
			continue
		}
		n.oplog = append(n.oplog, e)
		n.applyLocked(e)
	}
}

// findAfterLocked returns the index just past the entry at o (0 for the
// zero optime), or false if this oplog does not hold o.
func (n *Node) findAfterLocked(o OpTime) (int, bool) {
	if o.IsZero() {
		return 0, true
	}
	i := sort.Search(len(n.oplog), func(i int) bool { return n.oplog[i].TS.Compare(o.TS) >= 0 })
	if i < len(n.oplog) && n.oplog[i].OpTime == o {
		return i + 1, true
	}
	return 0, false
}

// termRunsLocked summarises the oplog as (term, first ts, last ts) runs, so
// a diverged member can find the common point.
func (n *Node) termRunsLocked() bson.A {
	var runs bson.A
	for i := 0; i < len(n.oplog); {
		j := i
		for j+1 < len(n.oplog) && n.oplog[j+1].T == n.oplog[i].T {
			j++
		}
		runs = append(runs, bson.D{{Key: "t", Value: n.oplog[i].T}, {Key: "first", Value: n.oplog[i].TS}, {Key: "last", Value: n.oplog[j].TS}})
		i = j + 1
	}
	return runs
}

func (n *Node) rollbackLocked(v bson.RawValue, from string) {
	type run struct {
		t           int64
		first, last bson.Timestamp
	}
	var runs []run
	if arr, ok := v.ArrayOK(); ok {
		vals, _ := arr.Values()
		for _, rv := range vals {
			d, ok := rv.DocumentOK()
			if !ok {
				return
			}
			var r run
			r.t, _ = d.Lookup("t").AsInt64OK()
			t, i, _ := d.Lookup("first").TimestampOK()
			r.first = bson.Timestamp{T: t, I: i}
			t, i, _ = d.Lookup("last").TimestampOK()
			r.last = bson.Timestamp{T: t, I: i}
			runs = append(runs, r)
		}
	}
	has := func(o OpTime) bool {
		for _, r := range runs {
			if r.t == o.T && o.TS.Compare(r.first) >= 0 && o.TS.Compare(r.last) <= 0 {
				return true
			}
		}
		return false
	}
	keep := 0
	for i := len(n.oplog) - 1; i >= 0; i-- {
		if has(n.oplog[i].OpTime) {
			keep = i + 1
			break
		}
	}
	n.logf("ROLLBACK: %d oplog entries are not on %s; rolling back to the common point", len(n.oplog)-keep, n.nameOf(from))
	n.oplog = slices.Clone(n.oplog[:keep])
	n.rebuildLocked()
}

// handleHeartbeat answers another member's heartbeat.
func (n *Node) handleHeartbeat(r bson.Raw) (bson.D, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	set, _ := r.Lookup("replSetHeartbeat").StringValueOK()
	if set != n.cfg.SetName {
		return nil, cmdErr(93, "replica set names do not match, ours: %s; remote node's: %s", n.cfg.SetName, set)
	}
	now := time.Now()
	from, _ := r.Lookup("from").StringValueOK()
	reqTerm, _ := r.Lookup("term").AsInt64OK()
	reqState, _ := r.Lookup("state").AsInt64OK()
	if m, ok := n.cfg.byHost(from); ok {
		if p := n.peers[m.ID]; p != nil {
			p.lastRecv = now
			p.optime = opTimeFrom(r.Lookup("optime"))
			if p.contacted {
				p.state, p.term = int(reqState), reqTerm
			}
		}
		if int(reqState) == StatePrimary && reqTerm >= n.term && n.state != StatePrimary {
			n.timerBase = now
			n.lastPrimary = m.ID
		}
	}
	if reqTerm > n.term {
		n.adoptTermLocked(reqTerm, "heartbeat from "+n.nameOf(from))
	}
	primaryHost, primaryID := n.primaryHostLocked()
	_ = primaryHost
	last := n.lastAppliedLocked()
	resp := bson.D{
		{Key: "set", Value: n.cfg.SetName},
		{Key: "state", Value: int32(n.state)},
		{Key: "term", Value: n.term},
		{Key: "configVersion", Value: n.cfg.Version},
		{Key: "configTerm", Value: n.cfg.Term},
		{Key: "optime", Value: last.doc()},
		{Key: "wall", Value: bson.NewDateTimeFromTime(n.lastWallLocked())},
		{Key: "primaryId", Value: int32(primaryID)},
		{Key: "syncSourceHost", Value: n.syncSourceHostLocked()},
		{Key: "syncSourceId", Value: int32(n.syncSource)},
		{Key: "committed", Value: n.committed.doc()},
	}
	if n.state == StatePrimary {
		resp = append(resp, bson.E{Key: "electionTime", Value: n.electionTS}, bson.E{Key: "electionDate", Value: bson.NewDateTimeFromTime(n.electionDate)})
	}
	rv, _ := r.Lookup("configVersion").AsInt64OK()
	rt, ok := r.Lookup("configTerm").AsInt64OK()
	if !ok {
		rt = -1
	}
	if configNewer(n.cfg.Version, n.cfg.Term, rv, rt) {
		resp = append(resp, bson.E{Key: "config", Value: n.cfg.doc()})
	}
	if pull, _ := r.Lookup("pull").BooleanOK(); pull {
		after := opTimeFrom(r.Lookup("optime"))
		if i, ok := n.findAfterLocked(after); ok {
			var es bson.A
			for _, e := range n.oplog[i:min(len(n.oplog), i+maxEntriesPerHeartbeat)] {
				d := bson.D{{Key: "ts", Value: e.TS}, {Key: "t", Value: e.T}, {Key: "wall", Value: bson.NewDateTimeFromTime(e.Wall)}, {Key: "op", Value: e.Op}, {Key: "ns", Value: e.NS}}
				if e.Doc != nil {
					d = append(d, bson.E{Key: "o", Value: e.Doc})
				}
				es = append(es, d)
			}
			resp = append(resp, bson.E{Key: "entries", Value: es})
		} else if n.state == StatePrimary || n.state == StateSecondary {
			resp = append(resp, bson.E{Key: "rollback", Value: true}, bson.E{Key: "runs", Value: n.termRunsLocked()})
		}
	}
	n.advanceCommitLocked()
	n.afterChangeLocked()
	return resp, nil
}

func (n *Node) syncSourceHostLocked() string {
	if p := n.peers[n.syncSource]; p != nil {
		return p.host
	}
	return ""
}

func (n *Node) adoptTermLocked(t int64, why string) {
	if t <= n.term {
		return
	}
	n.term = t
	if n.state == StatePrimary {
		n.stepDownLocked("stepping down: saw a newer term " + itoa(t) + " (" + why + ")")
	}
}

func (n *Node) stepDownLocked(why string) {
	if n.state != StatePrimary {
		return
	}
	n.state = StateSecondary
	n.cand = nil
	n.electionTS, n.electionDate = bson.Timestamp{}, time.Time{}
	n.timerBase = time.Now()
	n.takeoverAt = time.Time{}
	n.newOffsetLocked()
	n.logf("transition to SECONDARY: %s", why)
}

func (n *Node) installConfigLocked(c rsConfig, why string) {
	n.cfg = c
	self, ok := n.selfLocked()
	switch {
	case !ok:
		n.stepDownLocked("this member is not in the new configuration")
		if n.state != StateRemoved {
			n.logf("transition to REMOVED: not in configuration version %d", c.Version)
		}
		n.state = StateRemoved
	case n.state == StateRemoved:
		n.state = StateSecondary
		if self.Arbiter {
			n.state = StateArbiter
		}
		n.timerBase = time.Now()
	case self.Arbiter:
		n.stepDownLocked("now an arbiter")
		n.state = StateArbiter
	case n.state == StatePrimary && !self.electable():
		n.stepDownLocked("no longer electable in the new configuration")
	}
	n.syncPeersLocked()
	n.logf("installed configuration version %d term %d (%s)", c.Version, c.Term, why)
}

// advanceCommitLocked moves the primary's commit point to the newest
// optime a write majority of data-bearing voters has applied.
func (n *Node) advanceCommitLocked() {
	if n.state != StatePrimary {
		return
	}
	var ops []OpTime
	for _, m := range n.cfg.Members {
		if m.Votes == 0 || m.Arbiter {
			continue
		}
		if m.Host == n.host {
			ops = append(ops, n.lastAppliedLocked())
		} else if p := n.peers[m.ID]; p != nil {
			ops = append(ops, p.optime)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].Compare(ops[j]) > 0 })
	if k := n.cfg.writeMajority(); k > 0 && len(ops) >= k && ops[k-1].Compare(n.committed) > 0 {
		n.committed = ops[k-1]
	}
	if n.cand != nil && n.cand.wMajorityDate.IsZero() && n.committed.Compare(n.electionOpT) >= 0 {
		n.cand.wMajorityDate = time.Now()
	}
}

// replicatedToLocked counts data-bearing members that have applied o.
func (n *Node) replicatedToLocked(o OpTime) int {
	c := 0
	for _, m := range n.cfg.Members {
		if m.Arbiter {
			continue
		}
		if m.Host == n.host {
			if n.lastAppliedLocked().Compare(o) >= 0 {
				c++
			}
		} else if p := n.peers[m.ID]; p != nil && p.optime.Compare(o) >= 0 {
			c++
		}
	}
	return c
}

func (n *Node) canSeeMajorityLocked(now time.Time) bool {
	self, ok := n.selfLocked()
	if !ok {
		return false
	}
	et := n.cfg.ElectionTimeout
	count := self.Votes
	for _, m := range n.cfg.Members {
		if m.Host == n.host || m.Votes == 0 {
			continue
		}
		p := n.peers[m.ID]
		if p == nil {
			continue
		}
		last := p.lastOK
		if p.lastRecv.After(last) {
			last = p.lastRecv
		}
		if n.electionDate.After(last) {
			last = n.electionDate
		}
		if now.Sub(last) < et {
			count++
		}
	}
	return count >= n.cfg.majority()
}

func (n *Node) tickLoop() {
	defer n.wg.Done()
	n.mu.Lock()
	ctx := n.ctx
	n.mu.Unlock()
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.tick()
	}
}

func (n *Node) tick() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.running {
		return
	}
	defer n.afterChangeLocked()
	now := time.Now()
	switch n.state {
	case StatePrimary:
		if !n.canSeeMajorityLocked(now) {
			n.stepDownLocked("Can't see a majority of the set, relinquishing primary")
			return
		}
		n.advanceCommitLocked()
		return
	case StateSecondary:
	default:
		return
	}
	p := n.seenPrimaryLocked()
	n.syncSource = -1
	if p != nil {
		n.syncSource = p.id
	}
	self, ok := n.selfLocked()
	if n.electing || !ok || !self.electable() {
		n.takeoverAt = time.Time{}
		return
	}
	if now.Before(n.frozenTill) || now.Before(n.stepDownTill) {
		n.takeoverAt = time.Time{}
		return
	}
	et := n.cfg.ElectionTimeout
	if p != nil {
		pm, _ := n.cfg.member(p.id)
		if self.Priority > pm.Priority && n.lastAppliedLocked().Compare(p.optime) >= 0 {
			if n.takeoverAt.IsZero() {
				rank := 0
				for _, m := range n.cfg.Members {
					if m.Host != n.host && m.electable() && m.Priority > self.Priority {
						rank++
					}
				}
				n.takeoverAt = now.Add(et/2*time.Duration(rank+1) + n.offset)
			} else if !now.Before(n.takeoverAt) {
				n.takeoverAt = time.Time{}
				n.startElectionLocked("priorityTakeover")
			}
		} else {
			n.takeoverAt = time.Time{}
		}
		return
	}
	n.takeoverAt = time.Time{}
	if now.Sub(n.timerBase) >= et+n.offset {
		n.startElectionLocked("electionTimeout")
	}
}

func (n *Node) startElectionLocked(reason string) {
	n.electing = true
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.runElection(reason, false)
	}()
}

// runElection stands for election; n.electing must already be set. It
// reports whether this member won.
func (n *Node) runElection(reason string, skipDryRun bool) (bool, string) {
	defer func() {
		n.mu.Lock()
		n.electing = false
		n.mu.Unlock()
	}()
	n.mu.Lock()
	self, ok := n.selfLocked()
	if !ok || !n.running || n.state != StateSecondary {
		n.mu.Unlock()
		return false, "not a secondary"
	}
	term, last, cfg := n.term, n.lastAppliedLocked(), n.cfg.clone()
	prior := n.lastPrimary
	n.mu.Unlock()
	need := cfg.majority()
	fail := func(why string) (bool, string) {
		n.mu.Lock()
		n.timerBase = time.Now()
		n.newOffsetLocked()
		n.mu.Unlock()
		n.logf("election (%s) in term %d failed: %s", reason, term+1, why)
		return false, why
	}
	if !skipDryRun {
		got, higher, denials := n.requestVotes(cfg, self, term+1, last, true)
		if higher > term+1 {
			n.mu.Lock()
			n.adoptTermLocked(higher, "vote reply")
			n.mu.Unlock()
			return fail("a voter has a newer term")
		}
		if got < need {
			return fail("dry run got " + itoa(int64(got)) + " of " + itoa(int64(need)) + " votes needed" + denials)
		}
	}
	n.mu.Lock()
	if n.term != term || n.state != StateSecondary || !n.running {
		n.mu.Unlock()
		return fail("the term or state changed during the dry run")
	}
	n.term = term + 1
	n.lastVote.term, n.lastVote.candidate = term+1, int64(self.ID)
	n.afterChangeLocked()
	n.mu.Unlock()
	got, higher, denials := n.requestVotes(cfg, self, term+1, last, false)
	n.mu.Lock()
	defer n.mu.Unlock()
	if higher > term+1 {
		n.adoptTermLocked(higher, "vote reply")
	}
	if n.term != term+1 || n.state != StateSecondary || !n.running {
		n.timerBase = time.Now()
		return false, "the term or state changed during the election"
	}
	if got < need {
		n.timerBase = time.Now()
		n.newOffsetLocked()
		why := "got " + itoa(int64(got)) + " of " + itoa(int64(need)) + " votes needed" + denials
		n.logf("election (%s) in term %d lost: %s", reason, term+1, why)
		return false, why
	}
	n.becomePrimaryLocked(reason, term+1, prior, time.Now())
	n.afterChangeLocked()
	return true, ""
}

func (n *Node) requestVotes(cfg rsConfig, self rsMember, term int64, last OpTime, dry bool) (granted int, higher int64, denials string) {
	granted = self.Votes
	type res struct {
		ok     bool
		term   int64
		reason string
		who    string
	}
	var targets []rsMember
	for _, m := range cfg.Members {
		if m.Host != n.host && m.Votes > 0 {
			targets = append(targets, m)
		}
	}
	ch := make(chan res, len(targets))
	timeout := n.rpcTimeout()
	for _, m := range targets {
		go func() {
			r, err := n.rpc(m.Host, bson.D{
				{Key: "replSetRequestVotes", Value: int32(1)},
				{Key: "setName", Value: cfg.SetName},
				{Key: "dryRun", Value: dry},
				{Key: "term", Value: term},
				{Key: "candidateIndex", Value: int32(self.ID)},
				{Key: "from", Value: n.host},
				{Key: "configVersion", Value: cfg.Version},
				{Key: "configTerm", Value: cfg.Term},
				{Key: "lastAppliedOpTime", Value: last.doc()},
			}, timeout)
			if err != nil {
				ch <- res{who: n.nameOf(m.Host), reason: err.Error()}
				return
			}
			g, _ := r.Lookup("voteGranted").BooleanOK()
			t, _ := r.Lookup("term").AsInt64OK()
			why, _ := r.Lookup("reason").StringValueOK()
			ch <- res{ok: g, term: t, reason: why, who: n.nameOf(m.Host)}
		}()
	}
	for range targets {
		r := <-ch
		if r.ok {
			granted++
		} else {
			denials += "; " + r.who + ": " + r.reason
		}
		higher = max(higher, r.term)
	}
	return granted, higher, denials
}

// handleRequestVotes answers a candidate.
func (n *Node) handleRequestVotes(r bson.Raw) (bson.D, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	set, _ := r.Lookup("setName").StringValueOK()
	dry, _ := r.Lookup("dryRun").BooleanOK()
	term, _ := r.Lookup("term").AsInt64OK()
	cand, _ := r.Lookup("candidateIndex").AsInt64OK()
	cv, _ := r.Lookup("configVersion").AsInt64OK()
	ct, ok := r.Lookup("configTerm").AsInt64OK()
	if !ok {
		ct = -1
	}
	last := opTimeFrom(r.Lookup("lastAppliedOpTime"))
	reply := func(granted bool, reason string) (bson.D, error) {
		if !dry {
			n.part = &participantMetrics{voted: granted, term: term, date: time.Now(), candidate: int(cand), reason: reason,
				lastApplied: n.lastAppliedLocked()}
			if s, ok := n.selfLocked(); ok {
				n.part.priority = s.Priority
			}
		}
		if !granted {
			n.logf("denied vote to member %d for term %d (dry run %v): %s", cand, term, dry, reason)
		}
		return bson.D{{Key: "term", Value: n.term}, {Key: "voteGranted", Value: granted}, {Key: "reason", Value: reason}}, nil
	}
	self, inCfg := n.selfLocked()
	if set != n.cfg.SetName {
		return reply(false, "candidate's set name ("+set+") differs from mine ("+n.cfg.SetName+")")
	}
	if !inCfg || self.Votes == 0 {
		return reply(false, "I am not a voting member of the set")
	}
	if term < n.term {
		return reply(false, "candidate's term ("+itoa(term)+") is lower than mine ("+itoa(n.term)+")")
	}
	if configNewer(n.cfg.Version, n.cfg.Term, cv, ct) {
		return reply(false, "candidate's config with {version: "+itoa(cv)+", term: "+itoa(ct)+"} is older than mine with {version: "+
			itoa(n.cfg.Version)+", term: "+itoa(n.cfg.Term)+"}")
	}
	if !dry && term > n.term {
		n.adoptTermLocked(term, "vote request")
	}
	if !dry && n.lastVote.term == term && n.lastVote.candidate != cand {
		return reply(false, "already voted for another candidate (member "+itoa(n.lastVote.candidate)+") this term ("+itoa(term)+")")
	}
	if !self.Arbiter && last.Compare(n.lastAppliedLocked()) < 0 {
		return reply(false, "candidate's data is staler than mine. candidate's last applied OpTime: "+last.String()+
			", my last applied OpTime: "+n.lastAppliedLocked().String())
	}
	cm, ok := n.cfg.member(int(cand))
	if !ok {
		return reply(false, "candidate is not in my configuration")
	}
	if n.state == StatePrimary && self.Priority >= cm.Priority {
		return reply(false, "I am the primary and my priority is not lower than the candidate's")
	}
	if p := n.seenPrimaryLocked(); p != nil && p.id != int(cand) {
		if pm, ok := n.cfg.member(p.id); ok && pm.Priority >= cm.Priority {
			return reply(false, "I can see a healthy primary ("+p.host+") of equal or greater priority")
		}
	}
	if !dry {
		n.lastVote.term, n.lastVote.candidate = term, cand
		n.timerBase = time.Now()
	}
	return reply(true, "")
}

func (n *Node) becomePrimaryLocked(reason string, term int64, prior int, now time.Time) {
	self, _ := n.selfLocked()
	lastSeen := n.lastAppliedLocked()
	n.state = StatePrimary
	n.electionOpT = n.appendLocked(entry{Op: "n"}, term)
	n.electionTS, n.electionDate = n.electionOpT.TS, now
	if n.cfg.Term >= 0 {
		n.cfg.Term = term // the new primary bumps the config term
	}
	n.cand = &candidateMetrics{reason: reason, date: now, term: term, committed: n.committed, lastSeen: lastSeen,
		votesNeeded: n.cfg.majority(), priority: self.Priority, timeoutMillis: n.cfg.ElectionTimeout.Milliseconds(),
		priorPrimary: prior, newTermStart: now}
	n.takeoverAt, n.syncSource = time.Time{}, -1
	n.lastPrimary = self.ID
	n.advanceCommitLocked()
	n.logf("transition to PRIMARY in term %d (%s)", term, reason)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
