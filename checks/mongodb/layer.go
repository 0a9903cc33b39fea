package mongodb

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sitectl/sitectl/adapters/mongo"
	"github.com/sitectl/sitectl/checks/layer"
	"github.com/sitectl/sitectl/inventory"
)

// MongoDB failover scenarios (seed 003, "Component Failover / MongoDB").
const (
	ScenarioHealthy            = "healthy"
	ScenarioPrimaryDown        = "primary-down"             // row 1
	ScenarioArbiterDown        = "arbiter-down"             // row 2
	ScenarioSecondaryDown      = "secondary-down"           // row 3
	ScenarioPrimaryArbiterDown = "primary-and-arbiter-down" // row 4
	ScenarioSecondaryLinkDown  = "secondary-link-down"      // row 5
	ScenarioLinkRestored       = "link-restored"            // rows 5/6, link restored: catching up
	ScenarioPrimaryLinkDown    = "primary-link-down"        // row 6
	ScenarioPrecedencePending  = "precedence-pending"       // row 7: member _id 0 back, priority takeover expected
	ScenarioPrecedenceRestored = "precedence-restored"      // row 7: member _id 0 took the primary back
	ScenarioElection           = "election-in-progress"     // row 8
	ScenarioNoMajority         = "no-majority"              // no primary and no election possible (beyond row 4)
	ScenarioTwoPrimaries       = "two-primaries"            // a stale primary has not stepped down yet
	ScenarioMembersRemoved     = "members-removed"          // after a forced reconfig: members no longer in the configuration
	ScenarioUnknown            = "unknown"                  // cannot tell from here
)

// Election outlook in a Scenario.
const (
	ElectionNotNeeded  = "not needed"
	ElectionExpected   = "expected" // a majority can see each other: a primary within ~12s
	ElectionHalted     = "halted"   // no majority: no election until members come back
	ElectionDone       = "done"     // a new primary was elected
	ElectionTakeover   = "takeover" // a priority takeover is coming
	ElectionIfPrimary  = "halted if the primary fails"
	ElectionUnknownOut = "unknown"
)

// Scenario is the recognised MongoDB situation with what it means for the
// operator.
type Scenario struct {
	ID       string `json:"id"`
	Row      string `json:"row,omitempty"` // row of the seed 003 MongoDB table
	Title    string `json:"title"`
	Writable bool   `json:"writable"`          // some member accepts writes
	Primary  string `json:"primary,omitempty"` // that member
	Site     string `json:"site,omitempty"`    // its site
	Election string `json:"election"`
	// Explanation says what is going on, Action what to do.
	Explanation string `json:"explanation"`
	Action      string `json:"action,omitempty"`
	Fix         string `json:"fix,omitempty"` // exact command, when one fixes it
}

// String is the scenario in one paragraph.
func (s Scenario) String() string {
	out := s.Title + ": " + s.Explanation
	if s.Action != "" {
		out += " " + s.Action
	}
	return out
}

// mongoView indexes an observation for classification.
type mongoView struct {
	obs       *mongo.Observation
	data, arb []*mongo.MemberStatus
	preferred *mongo.MemberStatus // highest priority data member (member _id 0 in a fresh PSA set)
	majority  int
	voters    map[string]int // member name -> votes
}

func newMongoView(obs *mongo.Observation) *mongoView {
	v := &mongoView{obs: obs, voters: map[string]int{}}
	for i := range obs.Members {
		m := &obs.Members[i]
		if m.Member.Arbiter || m.ArbiterOnly {
			v.arb = append(v.arb, m)
		} else {
			v.data = append(v.data, m)
		}
	}
	// The configuration: the primary's, else the newest observed.
	var cfg *mongo.MemberStatus
	if p := obs.Primary(); p != nil && p.ConfigKnown {
		cfg = p
	}
	for i := range obs.Members {
		if m := &obs.Members[i]; m.ConfigKnown && (cfg == nil || m.ConfigVersion > cfg.ConfigVersion && !cfg.Writable) {
			cfg = m
		}
	}
	total := 0
	if cfg != nil {
		best, bestID := -1.0, 0
		for _, c := range cfg.Config {
			total += c.Votes
			if c.Member != "" {
				v.voters[c.Member] = c.Votes
			}
			if c.Arbiter || c.Member == "" {
				continue
			}
			if c.Priority > best || (c.Priority == best && c.ID < bestID) {
				best, bestID = c.Priority, c.ID
				v.preferred = obs.Member(c.Member)
			}
		}
	} else {
		for i := range obs.Members {
			v.voters[obs.Members[i].Member.Name] = 1
			total++
		}
		if len(v.data) > 0 {
			v.preferred = v.data[0]
		}
	}
	v.majority = total/2 + 1
	return v
}

// sees: x observed y healthy (x's own replSetGetStatus).
func sees(x, y *mongo.MemberStatus) (healthy, known bool) {
	if !x.StatusKnown {
		return false, false
	}
	if x == y {
		return true, true
	}
	p := x.Peer(y.Member.Name)
	if p == nil {
		return false, false
	}
	return p.Health == 1, true
}

// down: nobody that can be asked sees m healthy, and at least one observed
// member (or this observer) says so.
func (v *mongoView) down(m *mongo.MemberStatus) bool {
	if m.Observed() {
		for i := range v.obs.Members {
			o := &v.obs.Members[i]
			if o != m {
				if h, k := sees(o, m); k && h {
					return false
				}
			}
		}
		// Reachable from here but cut off from every member that answered.
		return v.seenBy(m) > 0 && v.connectedTo(m) == 0
	}
	for i := range v.obs.Members {
		o := &v.obs.Members[i]
		if o == m {
			continue
		}
		if h, k := sees(o, m); k && h {
			return false
		}
	}
	return true
}

// seenBy counts observed members that report on m.
func (v *mongoView) seenBy(m *mongo.MemberStatus) int {
	return v.countOthers(m, func(o *mongo.MemberStatus) bool { _, k := sees(o, m); return k })
}

// connectedTo counts the members m itself sees healthy.
func (v *mongoView) connectedTo(m *mongo.MemberStatus) int {
	return v.countOthers(m, func(o *mongo.MemberStatus) bool { h, _ := sees(m, o); return h })
}

// countOthers counts the members other than m for which f holds.
func (v *mongoView) countOthers(m *mongo.MemberStatus, f func(o *mongo.MemberStatus) bool) int {
	n := 0
	for i := range v.obs.Members {
		if o := &v.obs.Members[i]; o != m && f(o) {
			n++
		}
	}
	return n
}

// visibleVotes counts the votes m can gather: its own and those of the
// voters it sees healthy.
func (v *mongoView) visibleVotes(m *mongo.MemberStatus) int {
	n := v.voters[m.Member.Name]
	for i := range v.obs.Members {
		if o := &v.obs.Members[i]; o != m {
			if h, _ := sees(m, o); h {
				n += v.voters[o.Member.Name]
			}
		}
	}
	return n
}

func names(ms []*mongo.MemberStatus) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Member.Name)
	}
	return strings.Join(s, ", ")
}

func siteOf(m *mongo.MemberStatus) string { return m.Member.Site }

func labelOf(m *mongo.MemberStatus) string {
	return fmt.Sprintf("%s (site %s)", m.Member.Name, m.Member.Site)
}

// Classify recognises the MongoDB scenario of the deployment's runbook
// (seed 003's table) from one observation: which members answer, what each
// says about the others, who is primary and why it was elected. A member
// that cannot be observed is never assumed healthy.
func Classify(obs *mongo.Observation) Scenario {
	if obs == nil || len(obs.Members) == 0 {
		return Scenario{ID: ScenarioUnknown, Title: "MongoDB not observed", Election: ElectionUnknownOut,
			Explanation: "no MongoDB observation was made."}
	}
	v := newMongoView(obs)
	prims := obs.Primaries()
	observed := 0
	for i := range obs.Members {
		if obs.Members[i].Observed() {
			observed++
		}
	}
	if observed == 0 {
		return Scenario{ID: ScenarioUnknown, Title: "no MongoDB member answers", Election: ElectionUnknownOut,
			Explanation: "none of " + names(ptrs(obs)) + " could be observed from here; they may be down, or this machine may be cut off from them.",
			Action:      "Check from a machine on each site (sitectl status there), and the network between here and the sites."}
	}
	if len(prims) > 1 {
		newer, stale := prims[0], prims[1:]
		return Scenario{ID: ScenarioTwoPrimaries, Row: "6", Title: "two members accept writes", Writable: true,
			Primary: newer.Member.Name, Site: siteOf(newer), Election: ElectionDone,
			Explanation: fmt.Sprintf("%s (term %d) is the primary elected last; %s still claims to be primary in an older term: "+
				"it is cut off from the majority and steps down within the election timeout. Writes sent to it (w:1) will be rolled back.",
				labelOf(newer), newer.Term, names(stale)),
			Action: fmt.Sprintf("Make sure no client writes to %s; if it does not step down within ~10s, fence its site.", names(stale))}
	}
	if len(prims) == 1 {
		return v.withPrimary(prims[0])
	}
	return v.withoutPrimary()
}

func ptrs(obs *mongo.Observation) []*mongo.MemberStatus {
	out := make([]*mongo.MemberStatus, len(obs.Members))
	for i := range obs.Members {
		out[i] = &obs.Members[i]
	}
	return out
}

// condition of a member as the primary sees it.
type mongoCond int

const (
	condUp       mongoCond = iota
	condLinkDown           // answers here, but the primary cannot see it
	condDown               // the primary cannot see it and it does not answer here
)

func (v *mongoView) cond(p, m *mongo.MemberStatus) mongoCond {
	if h, k := sees(p, m); k {
		switch {
		case h:
			return condUp
		case m.Observed():
			return condLinkDown
		}
		return condDown
	}
	if v.down(m) {
		if m.Observed() {
			return condLinkDown
		}
		return condDown
	}
	return condUp
}

// withPrimary tells the scenario when a member is primary: the primary
// cut off from the majority, members removed from the configuration, then
// by which members are not up as the primary sees them.
func (v *mongoView) withPrimary(p *mongo.MemberStatus) Scenario {
	sc := Scenario{Writable: true, Primary: p.Member.Name, Site: siteOf(p)}
	if v.primaryCutOff(&sc, p) || v.membersRemoved(&sc, p) {
		return sc
	}
	notUpData, notUpArb, unobs := v.notUp(p)
	el := p.LastElection
	recent := el != nil && !el.Date.IsZero() && v.obs.At.Sub(el.Date) < 10*time.Minute
	switch {
	case len(notUpArb) > 0:
		v.arbiterDown(&sc, p, notUpArb, notUpData)
	case len(notUpData) > 0:
		v.dataMemberDown(&sc, p, notUpData[0], el)
	case len(unobs) > 0:
		sc.ID, sc.Election = ScenarioHealthy, ElectionNotNeeded
		sc.Title = "primary up; some members not observed from here"
		sc.Explanation = fmt.Sprintf("%s is primary and sees every member healthy, but %s could not be observed from here.", labelOf(p), names(unobs))
		sc.Action = "Check the network between this machine and " + names(unobs) + "."
	case v.preferred != nil && v.preferred != p && prefHealthy(p, v.preferred):
		sc.ID, sc.Row, sc.Election = ScenarioPrecedencePending, "7", ElectionTakeover
		sc.Title = "member with precedence is back: priority takeover expected"
		sc.Explanation = fmt.Sprintf("%s is primary, but %s has a higher priority and is healthy: once it has caught up it calls an election "+
			"and takes the primary back (priorityTakeover); writes pause for a few seconds.", labelOf(p), labelOf(v.preferred))
		sc.Action = "If site " + p.Member.Site + " must stay primary, change the priorities (a planned move: sitectl takeover --site " + p.Member.Site + ")."
	case recent && el.Reason == "priorityTakeover":
		sc.ID, sc.Row, sc.Election = ScenarioPrecedenceRestored, "7", ElectionDone
		sc.Title = "member with precedence took the primary back"
		sc.Explanation = fmt.Sprintf("%s took the primary back by priority takeover at %s (term %d).", labelOf(p), el.Date.Format(time.RFC3339), el.Term)
	case lagging(v.data, p) != nil:
		m := lagging(v.data, p)
		sc.ID, sc.Row, sc.Election = ScenarioLinkRestored, "5", ElectionNotNeeded
		sc.Title = "a member is catching up"
		sc.Explanation = fmt.Sprintf("%s is back in contact and synchronising from %s (%s behind).", labelOf(m), p.Member.Name, time.Duration(*m.Lag).Round(time.Millisecond))
	default:
		sc.ID, sc.Election = ScenarioHealthy, ElectionNotNeeded
		sc.Title = "healthy"
		sc.Explanation = fmt.Sprintf("%s is primary and every member is up.", labelOf(p))
	}
	return sc
}

// primaryCutOff sets the scenario of row 6 when the primary sees fewer
// votes than a majority: it is about to step down.
func (v *mongoView) primaryCutOff(sc *Scenario, p *mongo.MemberStatus) bool {
	if p.StatusKnown && v.visibleVotes(p) < v.majority {
		sc.ID, sc.Row, sc.Election = ScenarioPrimaryLinkDown, "6", ElectionExpected
		sc.Title = "the primary is cut off from the majority"
		sc.Explanation = fmt.Sprintf("%s is still primary but sees only %d of %d votes needed: it steps down within the election timeout "+
			"(\"can't see a majority\"), and the other side elects a primary if it has a majority.", labelOf(p), v.visibleVotes(p), v.majority)
		sc.Action = "Wait ~12s and check again (sitectl status); writes accepted meanwhile by " + p.Member.Name + " may be rolled back."
		return true
	}
	return false
}

// membersRemoved sets the scenario of row 4 when the primary's
// configuration no longer holds some of the inventory's members (a forced
// reconfig happened).
func (v *mongoView) membersRemoved(sc *Scenario, p *mongo.MemberStatus) bool {
	if p.ConfigKnown {
		var removed []*mongo.MemberStatus
		for i := range v.obs.Members {
			if m := &v.obs.Members[i]; configID(p, m.Member.Name) < 0 {
				removed = append(removed, m)
			}
		}
		// Only when the configuration really is smaller: an inventory
		// address that differs from the configured host name (an IP for a
		// DNS name) must not read as "removed".
		if len(removed) > 0 && len(p.Config) == len(v.obs.Members)-len(removed) {
			var kept []string
			for _, c := range p.Config {
				if c.Member != "" {
					kept = append(kept, c.Member)
				} else {
					kept = append(kept, c.Host)
				}
			}
			sc.ID, sc.Row, sc.Election = ScenarioMembersRemoved, "4", ElectionNotNeeded
			sc.Title = "members removed from the replica set"
			sc.Explanation = fmt.Sprintf("%s is primary of a configuration with only %s (config version %d%s): %s no longer belong to the set. "+
				"Writes they accepted but %s never received are lost.", labelOf(p), strings.Join(kept, ", "), p.ConfigVersion,
				map[bool]string{true: ", no term: a forced reconfig", false: ""}[p.ConfigTerm < 0], names(removed), p.Member.Name)
			sc.Action = "Keep " + names(removed) + " shut down or decommissioned; to add them back, wipe or resync them and add them with a normal " +
				"(non-force) replSetReconfig on " + p.Member.Name + ", one voting member at a time."
			return true
		}
	}
	return false
}

// notUp is the data members and arbiters that are not up as the primary
// sees them, and the other members that could not be observed from here.
func (v *mongoView) notUp(p *mongo.MemberStatus) (notUpData, notUpArb, unobs []*mongo.MemberStatus) {
	for _, m := range v.data {
		if m != p && v.cond(p, m) != condUp {
			notUpData = append(notUpData, m)
		}
	}
	for _, m := range v.arb {
		if v.cond(p, m) != condUp {
			notUpArb = append(notUpArb, m)
		}
	}
	for i := range v.obs.Members {
		if m := &v.obs.Members[i]; !m.Observed() && !slicesContains(notUpData, m) && !slicesContains(notUpArb, m) {
			unobs = append(unobs, m)
		}
	}
	return notUpData, notUpArb, unobs
}

// arbiterDown sets the scenario of row 2: the arbiter is down or cut off,
// so elections are halted.
func (v *mongoView) arbiterDown(sc *Scenario, p *mongo.MemberStatus, notUpArb, notUpData []*mongo.MemberStatus) {
	remaining := 0
	for name, votes := range v.voters {
		if name != p.Member.Name && !slicesContains(notUpArb, v.obs.Member(name)) && !slicesContains(notUpData, v.obs.Member(name)) {
			remaining += votes
		}
	}
	sc.ID, sc.Row, sc.Election = ScenarioArbiterDown, "2", ElectionIfPrimary
	sc.Title = "the arbiter is down"
	sc.Explanation = fmt.Sprintf("%s is down or cut off from the primary: %s keeps reads and writes, the other data members are read-only. "+
		"Elections are halted: if %s fails now, no other member can be elected (%d of %d votes needed).",
		names(notUpArb), labelOf(p), p.Member.Name, remaining, v.majority)
	if len(notUpData) > 0 {
		sc.Explanation += " Also down or cut off: " + names(notUpData) + "."
	}
	sc.Action = "Restore the arbiter (" + names(notUpArb) + ") before anything else fails; do not take site " + p.Member.Site + " down meanwhile."
}

// dataMemberDown sets the scenario when data member d is not up: whether
// it was the primary this one replaced (a failover, rows 1 and 6) or a
// secondary (rows 3 and 5), and whether it answers here (only its link is
// down) or not.
func (v *mongoView) dataMemberDown(sc *Scenario, p, d *mongo.MemberStatus, el *mongo.Election) {
	cutOff := v.cond(p, d) == condLinkDown
	// d was the primary this one replaced, and it did not hand over:
	// a priority takeover or a step-up request means the old primary
	// was alive then and stepped down, so its absence now is a
	// secondary gone, not the failover of row 1.
	failover := v.preferred == d || (el != nil && el.PriorPrimary >= 0 && configID(p, d.Member.Name) == el.PriorPrimary &&
		!slices.Contains([]string{"priorityTakeover", "stepUpRequest", "stepUpRequestSkipDryRun", "catchupTakeover"}, el.Reason))
	switch {
	case cutOff && failover:
		sc.ID, sc.Row, sc.Election = ScenarioPrimaryLinkDown, "6", ElectionDone
		sc.Title = "the network link of the former primary is down"
		sc.Explanation = fmt.Sprintf("%s answers here but the primary cannot reach it: it stepped down and is read-only. "+
			"%s was elected primary (term %d, %s).", labelOf(d), labelOf(p), p.Term, reasonOf(el))
		if v.preferred == d {
			sc.Explanation += fmt.Sprintf(" When the link is restored, %s (the highest-priority member, _id %d) takes the primary back by priority takeover.",
				d.Member.Name, configID(p, d.Member.Name))
		}
		sc.Action = "Restore the link of " + d.Member.Name + "; writes continue on " + p.Member.Name + "."
	case cutOff:
		sc.ID, sc.Row, sc.Election = ScenarioSecondaryLinkDown, "5", ElectionNotNeeded
		sc.Title = "the network link of the secondary is down"
		sc.Explanation = fmt.Sprintf("%s keeps reads and writes with %s disconnected; %s answers here but cannot reach the primary and is read-only "+
			"(it cannot be elected while the other voters see a healthy primary). When the link is restored it resynchronises from %s automatically.",
			labelOf(p), d.Member.Name, labelOf(d), p.Member.Name)
		sc.Action = "Restore the link of " + d.Member.Name + "; w:\"majority\" writes wait until then."
	case failover:
		sc.ID, sc.Row, sc.Election = ScenarioPrimaryDown, "1", ElectionDone
		sc.Title = "the primary is down: failover done"
		sc.Explanation = fmt.Sprintf("%s is down or unreachable; %s was elected primary (term %d, %s) and serves reads and writes.",
			labelOf(d), labelOf(p), p.Term, reasonOf(el))
		if v.preferred == d {
			sc.Explanation += fmt.Sprintf(" When %s recovers it resynchronises and, as the highest-priority member, takes the primary back by priority takeover.", d.Member.Name)
		}
		sc.Action = "Bring " + d.Member.Name + " back, or move the other layers to site " + p.Member.Site + "."
	default:
		sc.ID, sc.Row, sc.Election = ScenarioSecondaryDown, "3", ElectionIfPrimary
		sc.Title = "the secondary is down"
		sc.Explanation = fmt.Sprintf("%s is down or unreachable: %s keeps reads and writes (w:1); w:\"majority\" writes cannot be acknowledged until it is back. "+
			"When it recovers it resynchronises from %s.", labelOf(d), labelOf(p), p.Member.Name)
		sc.Action = "Bring " + d.Member.Name + " back; meanwhile a failure of " + p.Member.Name + " would leave no primary."
	}
}

func slicesContains(ms []*mongo.MemberStatus, m *mongo.MemberStatus) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

func prefHealthy(p, pref *mongo.MemberStatus) bool {
	h, k := sees(p, pref)
	return k && h && pref.Observed() && pref.State == mongo.StateSecondary
}

// laggingAfter: a secondary further behind the primary is "catching up".
const laggingAfter = 2 * time.Second

func lagging(data []*mongo.MemberStatus, p *mongo.MemberStatus) *mongo.MemberStatus {
	for _, m := range data {
		if m != p && m.Lag != nil && time.Duration(*m.Lag) > laggingAfter {
			return m
		}
	}
	return nil
}

func configID(cfgHolder *mongo.MemberStatus, member string) int {
	for _, c := range cfgHolder.Config {
		if c.Member == member {
			return c.ID
		}
	}
	return -1
}

func reasonOf(el *mongo.Election) string {
	if el == nil || el.Reason == "" {
		return "reason not reported"
	}
	return el.Reason
}

// withoutPrimary tells the scenario when no member is primary: the
// primary is not reachable from here, an election is under way, no
// secondary is observed, the primary and the arbiter are down (a forced
// promotion is the way out), or no majority is left.
func (v *mongoView) withoutPrimary() Scenario {
	sc := Scenario{}
	if v.primaryUnreachable(&sc) {
		return sc
	}
	var alive, gone []*mongo.MemberStatus
	for _, m := range v.data {
		if m.Observed() && m.State == mongo.StateSecondary && !v.down(m) {
			alive = append(alive, m)
		}
	}
	for i := range v.obs.Members {
		if m := &v.obs.Members[i]; v.down(m) {
			gone = append(gone, m)
		}
	}
	best, bestVotes := (*mongo.MemberStatus)(nil), 0
	for _, m := range v.data {
		if m.Observed() && m.State == mongo.StateSecondary && (best == nil || v.visibleVotes(m) > bestVotes) {
			best, bestVotes = m, v.visibleVotes(m)
		}
	}
	sc.Writable = false
	switch {
	case best != nil && bestVotes >= v.majority:
		v.electionExpected(&sc, best, bestVotes, gone)
	case best == nil:
		v.noSecondary(&sc)
	default:
		sc.Election = ElectionHalted
		var downData, downArb []*mongo.MemberStatus
		for _, m := range gone {
			if m.Member.Arbiter || m.ArbiterOnly {
				downArb = append(downArb, m)
			} else {
				downData = append(downData, m)
			}
		}
		if len(alive) == 1 && len(downData) >= 1 && len(downArb) >= 1 {
			v.primaryArbiterDown(&sc, alive[0], bestVotes, downData, downArb)
		} else {
			v.noMajority(&sc, best, bestVotes, gone)
		}
	}
	return sc
}

// primaryUnreachable sets the scenario when a member others see as PRIMARY
// is not observed from here: writes may well work for clients that can
// reach it.
func (v *mongoView) primaryUnreachable(sc *Scenario) bool {
	for i := range v.obs.Members {
		o := &v.obs.Members[i]
		if o.SeenPrimaryMember != "" {
			if pm := v.obs.Member(o.SeenPrimaryMember); pm != nil && !pm.Observed() {
				sc.ID, sc.Election = ScenarioUnknown, ElectionUnknownOut
				sc.Title = "the primary is not reachable from here"
				sc.Explanation = fmt.Sprintf("%s reports %s as primary, but it cannot be observed from here.", labelOf(o), labelOf(pm))
				sc.Action = "Check the network between this machine and " + pm.Member.Name + "."
				return true
			}
		}
	}
	return false
}

// electionExpected sets the scenario of row 8: best can gather a majority,
// so an election is expected; rows 6 and 1 when members are cut off or
// gone.
func (v *mongoView) electionExpected(sc *Scenario, best *mongo.MemberStatus, bestVotes int, gone []*mongo.MemberStatus) {
	sc.ID, sc.Row, sc.Election = ScenarioElection, "8", ElectionExpected
	sc.Title = "election in progress"
	sc.Explanation = fmt.Sprintf("no member is primary, but %s can gather %d of %d votes needed: an election is expected within about 12 seconds "+
		"(electionTimeoutMillis 10s). Writes fail until then; reads work on secondaries with a secondary read preference.", labelOf(best), bestVotes, v.majority)
	var cut, dead []*mongo.MemberStatus
	for _, m := range gone {
		if m.Observed() { // answers here: only its link to the others is down
			cut = append(cut, m)
		} else {
			dead = append(dead, m)
		}
	}
	switch {
	case len(cut) > 0 && len(dead) == 0:
		sc.Row = "6, 8"
		sc.Title = "the network link of " + names(cut) + " is down: election in progress"
		sc.Explanation = names(cut) + " answers here but the other members cannot reach it: it is read-only (a primary cut off from the majority steps down); " + sc.Explanation
	case len(gone) > 0:
		sc.Row = "1, 8"
		sc.Title = "the primary is down: election in progress"
		sc.Explanation = names(gone) + " down or unreachable; " + sc.Explanation
	}
	sc.Action = "Wait and check again (sitectl status); if no primary appears within ~30s, look at the members' logs."
}

// noSecondary sets the scenario when no data-bearing member is observed as
// a secondary: nothing can be told from here.
func (v *mongoView) noSecondary(sc *Scenario) {
	sc.ID, sc.Election = ScenarioUnknown, ElectionUnknownOut
	sc.Title = "no primary, and no secondary observed"
	sc.Explanation = "no data-bearing member could be observed as a secondary from here: " + v.obs.Summary() + "."
	sc.Action = "Check the members and the network from a machine on each site."
}

// primaryArbiterDown sets the scenario of row 4: s is the only data member
// left and cannot be elected; a forced reconfig is the only way to make it
// writable.
func (v *mongoView) primaryArbiterDown(sc *Scenario, s *mongo.MemberStatus, bestVotes int, downData, downArb []*mongo.MemberStatus) {
	sc.ID, sc.Row = ScenarioPrimaryArbiterDown, "4"
	sc.Title = "the primary and the arbiter are down"
	sc.Fix = fmt.Sprintf("sitectl takeover --site %s --force-promote-mongo --reason %q", s.Member.Site, "site "+siteOfAll(downData)+" lost")
	total := 0
	for _, n := range v.voters {
		total += n
	}
	sc.Explanation = fmt.Sprintf("%s and %s are down or unreachable: %s is read-only (SECONDARY). It cannot be elected with %d of %d votes "+
		"(a majority is %d), so no election will happen.", names(downData), names(downArb), labelOf(s), bestVotes, total, v.majority)
	sc.Action = fmt.Sprintf("Bring back %s or %s; or, if site %s is lost, the only way to make %s writable is a forced reconfig: %s "+
		"(it asks you to confirm that site %s is fenced; writes that never reached %s are rolled back).",
		names(downArb), names(downData), siteOfAll(downData), s.Member.Name, sc.Fix, siteOfAll(downData), s.Member.Name)
}

// noMajority sets the scenario when no member can gather a majority.
func (v *mongoView) noMajority(sc *Scenario, best *mongo.MemberStatus, bestVotes int, gone []*mongo.MemberStatus) {
	sc.ID = ScenarioNoMajority
	sc.Title = "no primary and no majority"
	sc.Explanation = fmt.Sprintf("no member can gather a majority (best: %s with %d of %d votes needed): no election will happen until members come back; the set is read-only.",
		labelOf(best), bestVotes, v.majority)
	if len(gone) > 0 {
		sc.Explanation += " Down or unreachable: " + names(gone) + "."
	}
	sc.Action = "Bring members back (or restore the links between them)."
}

func siteOfAll(ms []*mongo.MemberStatus) string {
	seen := map[string]bool{}
	var s []string
	for _, m := range ms {
		if !seen[m.Member.Site] {
			seen[m.Member.Site] = true
			s = append(s, m.Member.Site)
		}
	}
	sort.Strings(s)
	return strings.Join(s, "/")
}

// verdictOf is the verdict of one observation, or of the credentials that
// kept it from being made.
func verdictOf(inv *inventory.Inventory, obs *mongo.Observation, credErr error) layer.Verdict {
	if inv == nil || inv.MongoDB == nil {
		return layer.Verdict{Layer: layer.LayerMongoDB, State: layer.ServeUnknown, Detail: "the inventory has no mongodb section"}
	}
	if credErr != nil {
		return layer.Verdict{Layer: layer.LayerMongoDB, State: layer.ServeUnknown, Detail: "MongoDB not observed: " + credErr.Error(),
			Access: "MongoDB credentials: " + credErr.Error()}
	}
	return neutralUnlessFollowing(inv, Judge(inv, obs))
}

// neutralUnlessFollowing marks a healthy mongodb layer neutral when the
// inventory does not require the primary on the active site: a writable
// primary on either site serves the active one.
func neutralUnlessFollowing(inv *inventory.Inventory, l layer.Verdict) layer.Verdict {
	if l.State == layer.ServeOne && !inv.MongoDB.PrimaryFollowsActive {
		l.Neutral = true
		l.Notes = append(l.Notes, "the primary may be on either site (mongodb.primary_follows_active is off): it counts as healthy, not as a vote for site "+l.Site)
	}
	return l
}

// Judge says which site holds the writable primary. It is "one" when
// exactly one member accepts writes, "split" when members of different
// sites both do (a stale primary has not stepped down yet), "none" when
// every data-bearing member was observed and none is primary, and
// "unknown" when there is no observed primary and a data-bearing member
// could not be observed (it might be a primary cut off from here). The
// scenario of the deployment's runbook is added as notes.
func Judge(inv *inventory.Inventory, obs *mongo.Observation) layer.Verdict {
	l := layer.Verdict{Layer: layer.LayerMongoDB}
	if obs == nil {
		l.State, l.Detail = layer.ServeUnknown, "MongoDB was not observed"
		return l
	}
	site := memberSite(inv)
	var unobservedData []string
	for i := range obs.Members {
		m := &obs.Members[i]
		if !m.Observed() && !(m.Member.Arbiter || m.ArbiterOnly) {
			unobservedData = append(unobservedData, m.Member.Name)
		}
		l.Rows = append(l.Rows, memberRow(obs, m, site(m)))
	}
	sc := Classify(obs)
	l.Notes = append(l.Notes, sc.String())
	judgePrimaries(&l, obs, sc, site, unobservedData)
	if inv != nil {
		for _, s := range inv.Sites {
			if s != nil {
				l.Evidence = append(l.Evidence, SiteEvidence(obs, s.Name)...)
			}
		}
	}
	return l
}

// memberSite returns a member's site: the inventory's, else the one the
// observation carries.
func memberSite(inv *inventory.Inventory) func(*mongo.MemberStatus) string {
	siteOf := map[string]string{}
	if inv != nil && inv.MongoDB != nil {
		for _, m := range inv.MongoDB.Members {
			if m != nil {
				siteOf[m.Name] = m.Site
			}
		}
	}
	return func(m *mongo.MemberStatus) string {
		if s, ok := siteOf[m.Member.Name]; ok {
			return s
		}
		return m.Member.Site
	}
}

// memberRow is the layer's row for member m: its state, or why it is
// unknown, and its term, lag and priority when known.
func memberRow(obs *mongo.Observation, m *mongo.MemberStatus, site string) layer.Row {
	row := layer.Row{Site: site, Name: m.Member.Name}
	switch {
	case !m.Reachable:
		row.State = layer.ServeUnknown
		if m.Err != nil {
			row.Detail, row.Brief = m.Err.Error(), "unreachable ("+string(m.Err.Kind)+")"
		}
	case !m.Observed():
		row.State = layer.ServeUnknown
		if len(m.Errors) > 0 {
			row.Detail, row.Brief = m.Errors[0].Error(), "not observed ("+string(m.Errors[0].Kind)+")"
		}
	default:
		row.State = strings.ToLower(m.StateStr)
		row.Detail = memberDetail(m)
		row.Brief = memberBrief(obs, m)
		row.Values = map[string]float64{}
		if m.StatusKnown {
			row.Values["term"] = float64(m.Term)
		}
		if m.Lag != nil {
			row.Values["lag_seconds"] = time.Duration(*m.Lag).Seconds()
		}
		if m.ConfigKnown && !m.ArbiterOnly {
			row.Values["priority"] = m.Priority
		}
	}
	return row
}

// judgePrimaries sets the layer's state from the members that accept
// writes: split across sites, one, unknown when none is seen but a
// data-bearing member could not be observed, else none.
func judgePrimaries(l *layer.Verdict, obs *mongo.Observation, sc Scenario, site func(*mongo.MemberStatus) string, unobservedData []string) {
	prims := obs.Primaries()
	sites := map[string]bool{}
	for _, p := range prims {
		sites[site(p)] = true
	}
	switch {
	case len(sites) > 1:
		l.State = layer.ServeSplit
		for s := range sites {
			l.Sites = append(l.Sites, s)
		}
		sort.Strings(l.Sites)
		var parts []string
		for _, p := range prims {
			parts = append(parts, fmt.Sprintf("%s at site %s (term %d)", p.Member.Name, site(p), p.Term))
		}
		l.Detail = "more than one member accepts writes: " + strings.Join(parts, ", ")
	case len(prims) >= 1:
		p := prims[0]
		l.State, l.Site, l.Sites = layer.ServeOne, site(p), []string{site(p)}
		l.Detail = fmt.Sprintf("the writable primary is %s at site %s (term %d)", p.Member.Name, site(p), p.Term)
		if len(unobservedData) > 0 {
			l.Notes = append(l.Notes, "not observed from here: "+strings.Join(unobservedData, ", "))
		}
	case len(unobservedData) > 0:
		l.State = layer.ServeUnknown
		l.Detail = fmt.Sprintf("no writable primary among the members observed; %s could not be observed", strings.Join(unobservedData, ", "))
		l.Fix = sc.Fix
	default:
		l.State = layer.ServeNone
		l.Detail = "no member accepts writes: " + sc.Title
		l.Fix = sc.Fix
	}
}

// memberBrief: "prio 2, health 1, lag 0s"; health is the primary's view
// of the member (its own when it is the primary or there is none).
func memberBrief(obs *mongo.Observation, m *mongo.MemberStatus) string {
	var parts []string
	if m.ConfigKnown && !m.ArbiterOnly {
		parts = append(parts, fmt.Sprintf("prio %g", m.Priority))
	}
	health := "?"
	if p := obs.Primary(); p != nil && p != m {
		if v := p.Peer(m.Member.Name); v != nil {
			health = fmt.Sprintf("%g", v.Health)
		}
	} else if v := m.Peer(m.Member.Name); v != nil {
		health = fmt.Sprintf("%g", v.Health)
	}
	parts = append(parts, "health "+health)
	if m.Lag != nil {
		parts = append(parts, "lag "+time.Duration(*m.Lag).Round(time.Second).String())
	}
	return strings.Join(parts, ", ")
}

func memberDetail(m *mongo.MemberStatus) string {
	var parts []string
	if m.StatusKnown {
		parts = append(parts, fmt.Sprintf("term %d", m.Term))
	}
	if m.ConfigKnown && !m.ArbiterOnly {
		parts = append(parts, fmt.Sprintf("priority %g", m.Priority))
	}
	if m.Lag != nil {
		parts = append(parts, "lag "+time.Duration(*m.Lag).Round(time.Millisecond).String())
	}
	if m.LastElection != nil && m.Writable {
		parts = append(parts, fmt.Sprintf("elected %s (%s)", m.LastElection.Date.Format(time.RFC3339), m.LastElection.Reason))
	}
	var views []string
	for _, p := range m.Peers {
		if p.Self {
			continue
		}
		name := p.Member
		if name == "" {
			name = p.Host
		}
		views = append(views, name+" "+p.StateStr)
	}
	if len(views) > 0 {
		parts = append(parts, "sees "+strings.Join(views, ", "))
	}
	if len(m.Errors) > 0 && !m.ArbiterOnly {
		parts = append(parts, m.Errors[0].Error())
	}
	return strings.Join(parts, "; ")
}

// SiteEvidence is what the replica set says of site: for each member
// outside the site that answered here, how it sees the site's members in
// replSetGetStatus (health, the age of its last heartbeat, the heartbeat
// message). An arbiter that only answers hello (auth-enabled sets) sees the
// site alive when it names one of the site's members primary, and gives no
// view otherwise. A member that does not answer here gives no answer; one
// that refuses our credentials is an access problem.
func SiteEvidence(obs *mongo.Observation, site string) []layer.Evidence {
	if obs == nil {
		return nil
	}
	inSite := map[string]bool{}
	for _, m := range obs.Members {
		if m.Member.Site == site {
			inSite[m.Member.Name] = true
		}
	}
	if len(inSite) == 0 {
		return nil
	}
	var out []layer.Evidence
	for i := range obs.Members {
		o := &obs.Members[i]
		if o.Member.Site == site {
			continue
		}
		e := layer.Evidence{Site: site, Observer: "mongodb " + o.Member.Name, Independent: true, At: obs.At}
		switch {
		case !o.Reachable:
			e.Saw, e.Detail = layer.SawNoAnswer, "not reachable from here"
			if o.Err != nil {
				e.Detail = o.Err.Error()
				if o.Err.Kind == mongo.KindAuth {
					e.Saw = layer.SawAccess
				}
			}
		case o.StatusKnown:
			e.Saw, e.Detail = layer.SawNoAnswer, "its replSetGetStatus lists no member of site "+site
			for _, p := range o.Peers {
				if p.Self || !inSite[p.Member] {
					continue
				}
				silent := heartbeatSilence(o, p)
				switch {
				case p.Health == 1 && silent > staleHeartbeat && e.Saw != layer.SawAlive:
					// health is only marked 0 at the heartbeat timeout;
					// heartbeats stopping arriving is the fresh news
					e.Saw, e.For = layer.SawDown, silent
					e.Detail = fmt.Sprintf("still lists %s healthy (%s) but has received no heartbeat from it", p.Member, p.StateStr)
				case p.Health == 1:
					e.Saw, e.Detail, e.For = layer.SawAlive, fmt.Sprintf("sees %s healthy (%s)", p.Member, p.StateStr), 0
				case e.Saw != layer.SawAlive:
					e.Saw, e.Detail = layer.SawDown, fmt.Sprintf("sees %s down (health 0, %s)", p.Member, p.StateStr)
					if p.LastHeartbeatMessage != "" {
						e.Detail += ": " + p.LastHeartbeatMessage
					}
					if silent > 0 {
						e.Detail += "; no heartbeat from it"
						e.For = silent
					}
				}
			}
		case o.SeenPrimaryMember != "" && inSite[o.SeenPrimaryMember]:
			e.Saw, e.Detail = layer.SawAlive, fmt.Sprintf("names %s primary (hello)", o.SeenPrimaryMember)
		default:
			e.Saw, e.Detail = layer.SawNoAnswer, "answers hello only (no member health without replSetGetStatus)"
			if len(o.Errors) > 0 && o.Errors[0].Kind == mongo.KindAuth {
				e.Saw, e.Detail = layer.SawAccess, o.Errors[0].Error()
			}
		}
		out = append(out, e)
	}
	return out
}

// staleHeartbeat: members send each other a heartbeat every 2 s
// (heartbeatIntervalMillis); none received for longer than this (two
// missed, plus room for a slow one) means the member stopped answering,
// long before its health is marked 0 at the heartbeat timeout (10 s).
const staleHeartbeat = 5 * time.Second

// heartbeatSilence is how long observer o has received no heartbeat from
// peer p, by o's own clock (replSetGetStatus' date): 0 when unknown.
func heartbeatSilence(o *mongo.MemberStatus, p mongo.PeerView) time.Duration {
	if o.StatusDate.IsZero() || p.LastHeartbeatRecv.IsZero() || p.LastHeartbeatRecv.Unix() <= 0 {
		return 0
	}
	return max(o.StatusDate.Sub(p.LastHeartbeatRecv), 0)
}
