package checks_test

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
	l.waitScenario(5*time.Second, checks.MongoHealthy, func(_ checks.Scenario, lv checks.LayerVerdict) bool {
		return strings.Contains(lv.Rows[1].Detail, "lag ") // mongo-b has replicated
	})
	return l
}

// waitScenario observes until the scenario is id (and cond, if given, holds).
func (l *mongoLab) waitScenario(d time.Duration, id string, cond ...func(checks.Scenario, checks.LayerVerdict) bool) (checks.Scenario, checks.LayerVerdict, *mongo.Observation) {
	l.t.Helper()
	start := time.Now()
	deadline := start.Add(d)
	for {
		o := l.set.Observe(l.t.Context())
		sc := checks.ClassifyMongo(o)
		lv := checks.MongoLayer(l.inv, o)
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

func mongoExpect(t *testing.T, sc checks.Scenario, lv checks.LayerVerdict, row, layerState, layerSite string, texts ...string) {
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
	sc, lv, _ := l.waitScenario(time.Second, checks.MongoHealthy)
	mongoExpect(t, sc, lv, "", checks.ServeOne, "A")
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
	if v := checks.Combine([]checks.LayerVerdict{lv}); !v.Serves("A") {
		t.Errorf("combined: %+v", v)
	}
	if lv := checks.ObserveMongo(t.Context(), l.inv); lv.State != checks.ServeOne || lv.Site != "A" {
		t.Errorf("ObserveMongo: %+v", lv)
	}
	// Credentials that cannot be loaded: unknown, naming the variable.
	inv := *l.inv
	mdb := *inv.MongoDB
	mdb.Credentials = &inventory.Credentials{UsernameEnv: "SITECTL_TEST_UNSET_USER", PasswordEnv: "SITECTL_TEST_UNSET_PASS"}
	inv.MongoDB = &mdb
	if lv := checks.ObserveMongo(t.Context(), &inv); lv.State != checks.ServeUnknown || !strings.Contains(lv.Detail, "SITECTL_TEST_UNSET_USER") {
		t.Errorf("ObserveMongo without credentials: %+v", lv)
	}
}

// Rows 2 and 4: the arbiter goes down (primary stays, elections halted),
// then the primary too (the secondary is read-only; only a forced reconfig
// helps).
func TestMongoArbiterThenPrimaryDown(t *testing.T) {
	t.Parallel()
	l := newMongoLab(t)
	l.sim.Stop("mongo-arb")
	sc, lv, _ := l.waitScenario(3*time.Second, checks.MongoArbiterDown)
	mongoExpect(t, sc, lv, "2", checks.ServeOne, "A", "mongo-arb", "halted", "1 of 2 votes needed", "Restore the arbiter")
	if sc.Election != checks.ElectionIfPrimary || !sc.Writable {
		t.Errorf("%+v", sc)
	}
	l.sim.Stop("mongo-a")
	sc, lv, _ = l.waitScenario(3*time.Second, checks.MongoPrimaryArbiterDown)
	mongoExpect(t, sc, lv, "4", checks.ServeUnknown, "", "read-only", "cannot be elected with 1 of 3 votes", "forced reconfig",
		"sitectl takeover --site B --force-promote-mongo")
	if sc.Writable || sc.Election != checks.ElectionHalted || lv.Fix != sc.Fix || !strings.HasPrefix(sc.Fix, "sitectl takeover --site B --force-promote-mongo --reason") {
		t.Errorf("%+v / fix %q", sc, lv.Fix)
	}
	var unknown []string
	for _, r := range lv.Rows {
		if r.State == checks.ServeUnknown {
			unknown = append(unknown, r.Name)
		}
	}
	if strings.Join(unknown, ",") != "mongo-a,mongo-arb" {
		t.Errorf("members that cannot be observed must be unknown: %v", lv.Rows)
	}
	if v := checks.Combine([]checks.LayerVerdict{lv}); v.State != checks.ServeUnknown || len(v.Fixes) != 1 {
		t.Errorf("combined: %+v", v)
	}
	// The operator confirms and forces B primary; A comes back REMOVED.
	if _, err := l.set.ForcePromote(t.Context(), "mongo-b", nil, mongo.Confirm{Fenced: true, TypedSite: "B", ExpectedSite: "B"}); err != nil {
		t.Fatal(err)
	}
	if err := l.sim.Restart("mongo-a"); err != nil {
		t.Fatal(err)
	}
	sc, lv, _ = l.waitScenario(5*time.Second, checks.MongoMembersRemoved, func(_ checks.Scenario, lv checks.LayerVerdict) bool {
		return lv.Rows[0].State == "removed"
	})
	mongoExpect(t, sc, lv, "4", checks.ServeOne, "B", "forced reconfig", "mongo-a, mongo-arb no longer belong", "normal (non-force) replSetReconfig")
}

// Row 3: the secondary is down.
func TestMongoSecondaryDown(t *testing.T) {
	t.Parallel()
	l := newMongoLab(t)
	l.sim.Stop("mongo-b")
	sc, lv, _ := l.waitScenario(3*time.Second, checks.MongoSecondaryDown)
	mongoExpect(t, sc, lv, "3", checks.ServeOne, "A", "mongo-b", "w:\"majority\"", "resynchronises")
}

// Rows 1 and 8: the primary dies; while the secondary is frozen the
// election is pending; then it is elected.
func TestMongoPrimaryDownElection(t *testing.T) {
	t.Parallel()
	l := newMongoLab(t)
	l.admin("mongo-b", bson.D{{Key: "replSetFreeze", Value: 3}})
	l.sim.Stop("mongo-a")
	sc, lv, _ := l.waitScenario(2*time.Second, checks.MongoElection)
	mongoExpect(t, sc, lv, "1, 8", checks.ServeUnknown, "", "election is expected", "mongo-a", "2 of 2 votes needed")
	if sc.Writable || sc.Election != checks.ElectionExpected {
		t.Errorf("%+v", sc)
	}
	sc, lv, _ = l.waitScenario(8*time.Second, checks.MongoPrimaryDown)
	mongoExpect(t, sc, lv, "1", checks.ServeOne, "B", "mongo-a", "electionTimeout", "priority takeover")
}

// Row 5: the secondary's link is down (seen from both sides); restored,
// it catches up.
func TestMongoSecondaryLinkDownAndRestored(t *testing.T) {
	t.Parallel()
	l := newMongoLab(t)
	l.sim.Isolate("mongo-b")
	start := time.Now()
	sc, lv, _ := l.waitScenario(3*time.Second, checks.MongoSecondaryLinkDown)
	mongoExpect(t, sc, lv, "5", checks.ServeOne, "A", "disconnected", "read-only", "resynchronises")
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
	sc, lv, _ = l.waitScenario(3*time.Second, checks.MongoLinkRestored)
	mongoExpect(t, sc, lv, "5", checks.ServeOne, "A", "synchronising from mongo-a")
	l.sim.Node("mongo-b").PauseReplication(false)
	l.waitScenario(3*time.Second, checks.MongoHealthy)
}

// Rows 6 and 7: the primary's link is down (B elected, A read-only);
// restored, member _id 0 takes precedence back by priority takeover.
func TestMongoPrimaryLinkDownAndPrecedence(t *testing.T) {
	t.Parallel()
	l := newMongoLab(t)
	l.sim.Isolate("mongo-a")
	sc, lv, _ := l.waitScenario(6*time.Second, checks.MongoPrimaryLinkDown, func(sc checks.Scenario, _ checks.LayerVerdict) bool {
		return sc.Election == checks.ElectionDone
	})
	mongoExpect(t, sc, lv, "6", checks.ServeOne, "B", "mongo-a", "stepped down", "priority takeover")
	l.admin("mongo-a", bson.D{{Key: "replSetFreeze", Value: 30}})
	l.sim.Heal()
	sc, lv, _ = l.waitScenario(4*time.Second, checks.MongoPrecedencePending)
	mongoExpect(t, sc, lv, "7", checks.ServeOne, "B", "higher priority", "priorityTakeover")
	l.admin("mongo-a", bson.D{{Key: "replSetFreeze", Value: 0}})
	sc, lv, _ = l.waitScenario(5*time.Second, checks.MongoPrecedenceRestored)
	mongoExpect(t, sc, lv, "7", checks.ServeOne, "A", "priority takeover")
	// then mongo-b goes down: it handed the primary over alive, so this is
	// the secondary down (row 3), not a failover away from it (row 1)
	l.sim.Stop("mongo-b")
	sc, lv, _ = l.waitScenario(3*time.Second, checks.MongoSecondaryDown)
	mongoExpect(t, sc, lv, "3", checks.ServeOne, "A", "mongo-b", "resynchronises")
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
		sc := checks.ClassifyMongo(o)
		lv := checks.MongoLayer(inv, o)
		if sc.ID != checks.MongoTwoPrimaries || sc.Primary != "b" || lv.State != checks.ServeSplit || strings.Join(lv.Sites, ",") != "A,B" {
			t.Fatalf("%+v / %+v", sc, lv)
		}
	})
	t.Run("nothing observed", func(t *testing.T) {
		o := &mongo.Observation{At: now, Members: []mongo.MemberStatus{down(ms("a", "A", false)), down(ms("b", "B", false)), down(ms("w", "W", true))}}
		sc := checks.ClassifyMongo(o)
		lv := checks.MongoLayer(inv, o)
		if sc.ID != checks.MongoUnknown || lv.State != checks.ServeUnknown {
			t.Fatalf("%+v / %+v", sc, lv)
		}
		for _, r := range lv.Rows {
			if r.State != checks.ServeUnknown || r.Detail == "" {
				t.Errorf("row %+v", r)
			}
		}
	})
	t.Run("primary cut off from the majority", func(t *testing.T) {
		o := &mongo.Observation{At: now, Members: []mongo.MemberStatus{
			up(ms("a", "A", false), 1, 3, peer("b", 0, 8), peer("w", 0, 8)),
			down(ms("b", "B", false)), down(ms("w", "W", true)),
		}}
		sc := checks.ClassifyMongo(o)
		if sc.ID != checks.MongoPrimaryLinkDown || sc.Election != checks.ElectionExpected || !strings.Contains(sc.Explanation, "steps down") {
			t.Fatalf("%+v", sc)
		}
	})
	t.Run("former primary cut off, stepped down, election pending", func(t *testing.T) {
		o := &mongo.Observation{At: now, Members: []mongo.MemberStatus{
			up(ms("a", "A", false), 2, 3, peer("b", 0, 8), peer("w", 0, 8)),
			up(ms("b", "B", false), 2, 3, peer("a", 0, 8), peer("w", 1, 7)),
			up(ms("w", "W", true), 7, 3, peer("a", 0, 8), peer("b", 1, 2)),
		}}
		sc := checks.ClassifyMongo(o)
		if sc.ID != checks.MongoElection || sc.Row != "6, 8" || !strings.Contains(sc.Title, "network link of a is down") || !strings.Contains(sc.Explanation, "answers here") {
			t.Fatalf("%+v", sc)
		}
		// the same, but a does not answer here either: the primary is down
		o.Members[0] = down(ms("a", "A", false))
		if sc := checks.ClassifyMongo(o); sc.Row != "1, 8" || !strings.Contains(sc.Title, "the primary is down") {
			t.Fatalf("%+v", sc)
		}
	})
	t.Run("primary unreachable from here only", func(t *testing.T) {
		b := up(ms("b", "B", false), 2, 3, peer("a", 1, 1), peer("w", 1, 7))
		b.SeenPrimaryMember = "a"
		o := &mongo.Observation{At: now, Members: []mongo.MemberStatus{down(ms("a", "A", false)), b, up(ms("w", "W", true), 7, 3, peer("a", 1, 1), peer("b", 1, 2))}}
		sc := checks.ClassifyMongo(o)
		lv := checks.MongoLayer(inv, o)
		if sc.ID != checks.MongoUnknown || lv.State != checks.ServeUnknown || !strings.Contains(sc.Explanation, "reports a (site A) as primary") {
			t.Fatalf("%+v / %+v", sc, lv)
		}
	})
	t.Run("no observation", func(t *testing.T) {
		if sc := checks.ClassifyMongo(nil); sc.ID != checks.MongoUnknown {
			t.Fatal(sc)
		}
		if lv := checks.MongoLayer(inv, nil); lv.State != checks.ServeUnknown {
			t.Fatal(lv)
		}
	})
}
