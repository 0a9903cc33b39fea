package mongodb_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sitectl/sitectl/adapters/mongo"
	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/checks/layer"
	"github.com/sitectl/sitectl/checks/mongodb"
	"github.com/sitectl/sitectl/internal/mongosim"
	"github.com/sitectl/sitectl/inventory"
)

// mongoLab: simulated PSA set (mongo-a at site A, priority 2, _id 0;
// mongo-b at site B; arbiter at witness W), its inventory and adapter.
type mongoLab struct {
	t   *testing.T
	sim *mongosim.Sim
	inv *inventory.Inventory
	set *mongo.Set
}

func newMongoLab(t *testing.T) *mongoLab {
	t.Helper()
	cfg := mongosim.Config{
		Members:         []mongosim.MemberConfig{{Name: "mongo-a", Priority: 2}, {Name: "mongo-b"}, {Name: "mongo-arb", Arbiter: true}},
		ElectionTimeout: time.Second, Heartbeat: 200 * time.Millisecond, InitialPrimary: "mongo-a",
	}
	if os.Getenv("MONGOSIM_LOG") != "" {
		cfg.Logf = t.Logf
	}
	s, err := mongosim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	inv := &inventory.Inventory{
		Deployment: "test",
		Sites:      []*inventory.Site{{Name: "A", Role: inventory.Primary}, {Name: "B", Role: inventory.Secondary}},
		Witness:    &inventory.Witness{Name: "W"},
		MongoDB: &inventory.MongoDB{ReplicaSet: "rs0", Timeout: inventory.Duration(time.Second), Members: []*inventory.MongoMember{
			{Name: "mongo-a", Address: s.Addr("mongo-a"), Site: "A"},
			{Name: "mongo-b", Address: s.Addr("mongo-b"), Site: "B"},
			{Name: "mongo-arb", Address: s.Addr("mongo-arb"), Site: "W", Arbiter: true},
		}},
	}
	set, err := mongo.NewSet(inv.MongoDB)
	if err != nil {
		t.Fatal(err)
	}
	l := &mongoLab{t: t, sim: s, inv: inv, set: set}
	l.waitScenario(5*time.Second, mongodb.ScenarioHealthy, func(_ mongodb.Scenario, lv layer.Verdict) bool {
		return strings.Contains(lv.Rows[1].Detail, "lag ") // mongo-b has replicated
	})
	return l
}

// waitScenario observes until the scenario is id (and cond, if given, holds).
func (l *mongoLab) waitScenario(d time.Duration, id string, cond ...func(mongodb.Scenario, layer.Verdict) bool) (mongodb.Scenario, layer.Verdict, *mongo.Observation) {
	l.t.Helper()
	start := time.Now()
	deadline := start.Add(d)
	for {
		o := l.set.Observe(l.t.Context())
		sc := mongodb.Classify(o)
		lv := mongodb.Judge(l.inv, o)
		ok := sc.ID == id
		for _, c := range cond {
			ok = ok && c(sc, lv)
		}
		if ok {
			l.t.Logf("scenario %s after %s", id, time.Since(start).Round(time.Millisecond))
			return sc, lv, o
		}
		if time.Now().After(deadline) {
			for _, m := range o.Members {
				if m.Lag != nil {
					l.t.Logf("%s lag %s optime %+v", m.Member.Name, time.Duration(*m.Lag), m.Optime)
				}
			}
			l.t.Fatalf("timed out after %s waiting for scenario %s; last: %s [%s]; layer %s %s: %s", d, id, sc.ID, sc.String(), lv.State, lv.Site, o.Summary())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (l *mongoLab) admin(member string, cmd bson.D) {
	l.t.Helper()
	c, err := mdrv.Connect(options.Client().SetHosts([]string{l.sim.Addr(member)}).SetDirect(true).SetServerSelectionTimeout(2 * time.Second).
		SetServerMonitoringMode(options.ServerMonitoringModePoll))
	if err != nil {
		l.t.Fatal(err)
	}
	defer func() { _ = c.Disconnect(context.Background()) }()
	ctx, cancel := context.WithTimeout(l.t.Context(), 5*time.Second)
	defer cancel()
	db := "admin"
	if cmd[0].Key == "insert" {
		db = "app"
	}
	if err := c.Database(db).RunCommand(ctx, cmd).Err(); err != nil {
		l.t.Fatalf("%s on %s: %v", cmd[0].Key, member, err)
	}
}

func mongoExpect(t *testing.T, sc mongodb.Scenario, lv layer.Verdict, row, layerState, layerSite string, texts ...string) {
	t.Helper()
	if sc.Row != row {
		t.Errorf("scenario %s: row %q, want %q", sc.ID, sc.Row, row)
	}
	if lv.State != layerState || lv.Site != layerSite {
		t.Errorf("layer %s/%s, want %s/%s: %s", lv.State, lv.Site, layerState, layerSite, lv.Detail)
	}
	all := sc.String() + " " + sc.Fix
	for _, s := range texts {
		if !strings.Contains(all, s) {
			t.Errorf("scenario %s lacks %q: %s", sc.ID, s, all)
		}
	}
	found := false
	for _, n := range lv.Notes {
		found = found || strings.Contains(n, sc.Title)
	}
	if !found {
		t.Errorf("the layer notes do not carry the scenario: %v", lv.Notes)
	}
}

func TestMongoLayerHealthy(t *testing.T) {
	t.Parallel()
	l := newMongoLab(t)
	sc, lv, _ := l.waitScenario(time.Second, mongodb.ScenarioHealthy)
	mongoExpect(t, sc, lv, "", layer.ServeOne, "A")
	if !sc.Writable || sc.Primary != "mongo-a" || sc.Site != "A" {
		t.Errorf("%+v", sc)
	}
	var states []string
	for _, r := range lv.Rows {
		states = append(states, r.Site+"/"+r.Name+"="+r.State)
	}
	if got := strings.Join(states, " "); got != "A/mongo-a=primary B/mongo-b=secondary W/mongo-arb=arbiter" {
		t.Errorf("rows %s", got)
	}
	// the board's short form: priority, the primary's view of its health, lag
	if b := lv.Rows[0].Brief; b != "prio 2, health 1, lag 0s" {
		t.Errorf("mongo-a brief %q", b)
	}
	if b := lv.Rows[1].Brief; !strings.HasPrefix(b, "prio 1, health 1, lag ") {
		t.Errorf("mongo-b brief %q", b)
	}
	if v := checks.Combine([]layer.Verdict{lv}); !v.Serves("A") {
		t.Errorf("combined: %+v", v)
	}
	if lv := (mongodb.Layer{}).Observe(t.Context(), l.inv).Verdict(nil); lv.State != layer.ServeOne || lv.Site != "A" {
		t.Errorf("Observe: %+v", lv)
	}
	// Credentials that cannot be loaded: unknown, naming the variable.
	inv := *l.inv
	mdb := *inv.MongoDB
	mdb.Credentials = &inventory.Credentials{UsernameEnv: "SITECTL_TEST_UNSET_USER", PasswordEnv: "SITECTL_TEST_UNSET_PASS"}
	inv.MongoDB = &mdb
	if lv := (mongodb.Layer{}).Observe(t.Context(), &inv).Verdict(nil); lv.State != layer.ServeUnknown || !strings.Contains(lv.Detail, "SITECTL_TEST_UNSET_USER") {
		t.Errorf("ObserveVerdict without credentials: %+v", lv)
	}
}

// Rows 2 and 4: the arbiter goes down (primary stays, elections halted),
// then the primary too (the secondary is read-only; only a forced reconfig
// helps).
func TestMongoArbiterThenPrimaryDown(t *testing.T) {
	t.Parallel()
	l := newMongoLab(t)
	l.sim.Stop("mongo-arb")
	sc, lv, _ := l.waitScenario(3*time.Second, mongodb.ScenarioArbiterDown)
	mongoExpect(t, sc, lv, "2", layer.ServeOne, "A", "mongo-arb", "halted", "1 of 2 votes needed", "Restore the arbiter")
	if sc.Election != mongodb.ElectionIfPrimary || !sc.Writable {
		t.Errorf("%+v", sc)
	}
	l.sim.Stop("mongo-a")
	sc, lv, _ = l.waitScenario(3*time.Second, mongodb.ScenarioPrimaryArbiterDown)
	mongoExpect(t, sc, lv, "4", layer.ServeUnknown, "", "read-only", "cannot be elected with 1 of 3 votes", "forced reconfig",
		"sitectl takeover --site B --force-promote-mongo")
	if sc.Writable || sc.Election != mongodb.ElectionHalted || lv.Fix != sc.Fix || !strings.HasPrefix(sc.Fix, "sitectl takeover --site B --force-promote-mongo --reason") {
		t.Errorf("%+v / fix %q", sc, lv.Fix)
	}
	var unknown []string
	for _, r := range lv.Rows {
		if r.State == layer.ServeUnknown {
			unknown = append(unknown, r.Name)
		}
	}
	if strings.Join(unknown, ",") != "mongo-a,mongo-arb" {
		t.Errorf("members that cannot be observed must be unknown: %v", lv.Rows)
	}
	if v := checks.Combine([]layer.Verdict{lv}); v.State != layer.ServeUnknown || len(v.Fixes) != 1 {
		t.Errorf("combined: %+v", v)
	}
	// The operator confirms and forces B primary; A comes back REMOVED.
	if _, err := l.set.ForcePromote(t.Context(), "mongo-b", nil, mongo.Confirm{Fenced: true, TypedSite: "B", ExpectedSite: "B"}); err != nil {
		t.Fatal(err)
	}
	if err := l.sim.Restart("mongo-a"); err != nil {
		t.Fatal(err)
	}
	sc, lv, _ = l.waitScenario(5*time.Second, mongodb.ScenarioMembersRemoved, func(_ mongodb.Scenario, lv layer.Verdict) bool {
		return lv.Rows[0].State == "removed"
	})
	mongoExpect(t, sc, lv, "4", layer.ServeOne, "B", "forced reconfig", "mongo-a, mongo-arb no longer belong", "normal (non-force) replSetReconfig")
}

// layer.Row 3: the secondary is down.
func TestMongoSecondaryDown(t *testing.T) {
	t.Parallel()
	l := newMongoLab(t)
	l.sim.Stop("mongo-b")
	sc, lv, _ := l.waitScenario(3*time.Second, mongodb.ScenarioSecondaryDown)
	mongoExpect(t, sc, lv, "3", layer.ServeOne, "A", "mongo-b", "w:\"majority\"", "resynchronises")
}

// Rows 1 and 8: the primary dies; while the secondary is frozen the
// election is pending; then it is elected.
func TestMongoPrimaryDownElection(t *testing.T) {
	t.Parallel()
	l := newMongoLab(t)
	l.admin("mongo-b", bson.D{{Key: "replSetFreeze", Value: 3}})
	l.sim.Stop("mongo-a")
	sc, lv, _ := l.waitScenario(2*time.Second, mongodb.ScenarioElection)
	mongoExpect(t, sc, lv, "1, 8", layer.ServeUnknown, "", "election is expected", "mongo-a", "2 of 2 votes needed")
	if sc.Writable || sc.Election != mongodb.ElectionExpected {
		t.Errorf("%+v", sc)
	}
	sc, lv, _ = l.waitScenario(8*time.Second, mongodb.ScenarioPrimaryDown)
	mongoExpect(t, sc, lv, "1", layer.ServeOne, "B", "mongo-a", "electionTimeout", "priority takeover")
}

// layer.Row 5: the secondary's link is down (seen from both sides); restored,
// it catches up.
func TestMongoSecondaryLinkDownAndRestored(t *testing.T) {
	t.Parallel()
	l := newMongoLab(t)
	l.sim.Isolate("mongo-b")
	start := time.Now()
	sc, lv, _ := l.waitScenario(3*time.Second, mongodb.ScenarioSecondaryLinkDown)
	mongoExpect(t, sc, lv, "5", layer.ServeOne, "A", "disconnected", "read-only", "resynchronises")
	// mongo-b notices the cut when its heartbeats to mongo-a time out,
	// which can be after the others saw it: wait for its own view.
	o := l.set.Observe(t.Context())
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); o = l.set.Observe(t.Context()) {
		if v := o.Member("mongo-b").Peer("mongo-a"); v != nil && v.Health == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v := o.Member("mongo-b").Peer("mongo-a"); v == nil || v.Health != 0 {
		t.Errorf("mongo-b's own view of mongo-a: %+v", v)
	}
	// Writes continue on A while B is cut off; B falls behind.
	time.Sleep(2500*time.Millisecond - time.Since(start))
	l.admin("mongo-a", bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "k", Value: 1}}}}})
	l.sim.Node("mongo-b").PauseReplication(true)
	l.sim.Heal()
	sc, lv, _ = l.waitScenario(3*time.Second, mongodb.ScenarioLinkRestored)
	mongoExpect(t, sc, lv, "5", layer.ServeOne, "A", "synchronising from mongo-a")
	l.sim.Node("mongo-b").PauseReplication(false)
	l.waitScenario(3*time.Second, mongodb.ScenarioHealthy)
}

// Rows 6 and 7: the primary's link is down (B elected, A read-only);
// restored, member _id 0 takes precedence back by priority takeover.
func TestMongoPrimaryLinkDownAndPrecedence(t *testing.T) {
	t.Parallel()
	l := newMongoLab(t)
	l.sim.Isolate("mongo-a")
	sc, lv, _ := l.waitScenario(6*time.Second, mongodb.ScenarioPrimaryLinkDown, func(sc mongodb.Scenario, _ layer.Verdict) bool {
		return sc.Election == mongodb.ElectionDone
	})
	mongoExpect(t, sc, lv, "6", layer.ServeOne, "B", "mongo-a", "stepped down", "priority takeover")
	l.admin("mongo-a", bson.D{{Key: "replSetFreeze", Value: 30}})
	l.sim.Heal()
	sc, lv, _ = l.waitScenario(4*time.Second, mongodb.ScenarioPrecedencePending)
	mongoExpect(t, sc, lv, "7", layer.ServeOne, "B", "higher priority", "priorityTakeover")
	l.admin("mongo-a", bson.D{{Key: "replSetFreeze", Value: 0}})
	sc, lv, _ = l.waitScenario(5*time.Second, mongodb.ScenarioPrecedenceRestored)
	mongoExpect(t, sc, lv, "7", layer.ServeOne, "A", "priority takeover")
	// then mongo-b goes down: it handed the primary over alive, so this is
	// the secondary down (row 3), not a failover away from it (row 1)
	l.sim.Stop("mongo-b")
	sc, lv, _ = l.waitScenario(3*time.Second, mongodb.ScenarioSecondaryDown)
	mongoExpect(t, sc, lv, "3", layer.ServeOne, "A", "mongo-b", "resynchronises")
}

// Situations that are hard to stage: built by hand.
func TestMongoSynthetic(t *testing.T) {
	now := time.Now()
	ms := func(name, site string, arb bool) mongo.MemberStatus {
		return mongo.MemberStatus{Member: mongo.Member{Name: name, Address: name + ":27017", Site: site, Arbiter: arb}, ConfigTerm: -1}
	}
	peer := func(name string, health float64, state int) mongo.PeerView {
		return mongo.PeerView{Member: name, Host: name + ":27017", Health: health, State: state}
	}
	cfg := []mongo.ConfigMember{
		{ID: 0, Host: "a:27017", Member: "a", Priority: 2, Votes: 1},
		{ID: 1, Host: "b:27017", Member: "b", Priority: 1, Votes: 1},
		{ID: 2, Host: "w:27017", Member: "w", Votes: 1, Arbiter: true},
	}
	up := func(m mongo.MemberStatus, state int, term int64, peers ...mongo.PeerView) mongo.MemberStatus {
		m.Reachable, m.StatusKnown, m.ConfigKnown, m.State, m.Term, m.Peers, m.Config = true, true, true, state, term, peers, cfg
		m.Writable = state == mongo.StatePrimary
		m.ArbiterOnly = m.Member.Arbiter
		m.StateStr = map[int]string{1: "PRIMARY", 2: "SECONDARY", 7: "ARBITER"}[state]
		return m
	}
	down := func(m mongo.MemberStatus) mongo.MemberStatus {
		m.Err = &mongo.MemberError{Kind: mongo.KindTimeout, Member: m.Member.Name, Command: "connect", Message: "no answer"}
		return m
	}
	inv := &inventory.Inventory{Sites: []*inventory.Site{{Name: "A"}, {Name: "B"}}, MongoDB: &inventory.MongoDB{Members: []*inventory.MongoMember{
		{Name: "a", Site: "A"}, {Name: "b", Site: "B"}, {Name: "w", Site: "W", Arbiter: true}}}}

	t.Run("two primaries", func(t *testing.T) {
		o := &mongo.Observation{At: now, Members: []mongo.MemberStatus{
			up(ms("a", "A", false), 1, 3, peer("b", 0, 8), peer("w", 0, 8)),
			up(ms("b", "B", false), 1, 4, peer("a", 0, 8), peer("w", 1, 7)),
			up(ms("w", "W", true), 7, 4, peer("a", 0, 8), peer("b", 1, 1)),
		}}
		sc := mongodb.Classify(o)
		lv := mongodb.Judge(inv, o)
		if sc.ID != mongodb.ScenarioTwoPrimaries || sc.Primary != "b" || lv.State != layer.ServeSplit || strings.Join(lv.Sites, ",") != "A,B" {
			t.Fatalf("%+v / %+v", sc, lv)
		}
	})
	t.Run("nothing observed", func(t *testing.T) {
		o := &mongo.Observation{At: now, Members: []mongo.MemberStatus{down(ms("a", "A", false)), down(ms("b", "B", false)), down(ms("w", "W", true))}}
		sc := mongodb.Classify(o)
		lv := mongodb.Judge(inv, o)
		if sc.ID != mongodb.ScenarioUnknown || lv.State != layer.ServeUnknown {
			t.Fatalf("%+v / %+v", sc, lv)
		}
		for _, r := range lv.Rows {
			if r.State != layer.ServeUnknown || r.Detail == "" {
				t.Errorf("row %+v", r)
			}
		}
	})
	t.Run("primary cut off from the majority", func(t *testing.T) {
		o := &mongo.Observation{At: now, Members: []mongo.MemberStatus{
			up(ms("a", "A", false), 1, 3, peer("b", 0, 8), peer("w", 0, 8)),
			down(ms("b", "B", false)), down(ms("w", "W", true)),
		}}
		sc := mongodb.Classify(o)
		if sc.ID != mongodb.ScenarioPrimaryLinkDown || sc.Election != mongodb.ElectionExpected || !strings.Contains(sc.Explanation, "steps down") {
			t.Fatalf("%+v", sc)
		}
	})
	t.Run("former primary cut off, stepped down, election pending", func(t *testing.T) {
		o := &mongo.Observation{At: now, Members: []mongo.MemberStatus{
			up(ms("a", "A", false), 2, 3, peer("b", 0, 8), peer("w", 0, 8)),
			up(ms("b", "B", false), 2, 3, peer("a", 0, 8), peer("w", 1, 7)),
			up(ms("w", "W", true), 7, 3, peer("a", 0, 8), peer("b", 1, 2)),
		}}
		sc := mongodb.Classify(o)
		if sc.ID != mongodb.ScenarioElection || sc.Row != "6, 8" || !strings.Contains(sc.Title, "network link of a is down") || !strings.Contains(sc.Explanation, "answers here") {
			t.Fatalf("%+v", sc)
		}
		// the same, but a does not answer here either: the primary is down
		o.Members[0] = down(ms("a", "A", false))
		if sc := mongodb.Classify(o); sc.Row != "1, 8" || !strings.Contains(sc.Title, "the primary is down") {
			t.Fatalf("%+v", sc)
		}
	})
	t.Run("primary unreachable from here only", func(t *testing.T) {
		b := up(ms("b", "B", false), 2, 3, peer("a", 1, 1), peer("w", 1, 7))
		b.SeenPrimaryMember = "a"
		o := &mongo.Observation{At: now, Members: []mongo.MemberStatus{down(ms("a", "A", false)), b, up(ms("w", "W", true), 7, 3, peer("a", 1, 1), peer("b", 1, 2))}}
		sc := mongodb.Classify(o)
		lv := mongodb.Judge(inv, o)
		if sc.ID != mongodb.ScenarioUnknown || lv.State != layer.ServeUnknown || !strings.Contains(sc.Explanation, "reports a (site A) as primary") {
			t.Fatalf("%+v / %+v", sc, lv)
		}
	})
	t.Run("no observation", func(t *testing.T) {
		if sc := mongodb.Classify(nil); sc.ID != mongodb.ScenarioUnknown {
			t.Fatal(sc)
		}
		if lv := mongodb.Judge(inv, nil); lv.State != layer.ServeUnknown {
			t.Fatal(lv)
		}
	})
}

// The replica set's view of site A: health, and heartbeats that stopped
// arriving before the health is marked 0.
func TestMongoEvidence(t *testing.T) {
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	member := func(name, site string) mongo.Member { return mongo.Member{Name: name, Site: site} }
	peer := func(health float64, recvAgo time.Duration) mongo.PeerView {
		return mongo.PeerView{Member: "mongo-a", Health: health, StateStr: "PRIMARY", LastHeartbeatRecv: now.Add(-recvAgo)}
	}
	obs := func(p mongo.PeerView) *mongo.Observation {
		return &mongo.Observation{At: now, Members: []mongo.MemberStatus{
			{Member: member("mongo-a", "A"), Reachable: false, Err: &mongo.MemberError{Kind: mongo.KindTimeout, Member: "mongo-a"}},
			{Member: member("mongo-b", "B"), Reachable: true, StatusKnown: true, StatusDate: now, Peers: []mongo.PeerView{p}},
		}}
	}
	for _, tc := range []struct {
		name string
		p    mongo.PeerView
		want layer.Saw
	}{
		{"healthy, heartbeats arriving", peer(1, time.Second), layer.SawAlive},
		{"healthy on paper, no heartbeat for 7s", peer(1, 7*time.Second), layer.SawDown},
		{"health 0", peer(0, 12*time.Second), layer.SawDown},
	} {
		var got *layer.Evidence
		for _, e := range mongodb.SiteEvidence(obs(tc.p), "A") {
			if e.Observer == "mongodb mongo-b" {
				got = &e
			}
		}
		if got == nil || got.Saw != tc.want {
			t.Errorf("%s: %+v, want %s", tc.name, got, tc.want)
		}
	}
	// the member of site A itself is not an observer of site A
	for _, e := range mongodb.SiteEvidence(obs(peer(1, 0)), "A") {
		if e.Observer == "mongodb mongo-a" {
			t.Error("site A's own member counted as an observer of A")
		}
	}
}
