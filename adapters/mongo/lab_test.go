package mongo_test

import (
	"context"
	"os"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sitectl/sitectl/adapters/mongo"
	"github.com/sitectl/sitectl/internal/mongosim"
)

// Timings of the simulated sets: elections take about electionTimeout
// (1s) plus up to 15%.
const (
	labET = time.Second
	labHB = 200 * time.Millisecond
)

// lab is a simulated PSA set: mongo-a (site A, priority 2, member _id 0),
// mongo-b (site B, priority 1), mongo-arb (witness W, arbiter).
type lab struct {
	t   *testing.T
	sim *mongosim.Sim
	set *mongo.Set
}

func newLab(t *testing.T, mod ...func(*mongosim.Config)) *lab {
	t.Helper()
	cfg := mongosim.Config{
		Members: []mongosim.MemberConfig{
			{Name: "mongo-a", Priority: 2}, {Name: "mongo-b"}, {Name: "mongo-arb", Arbiter: true},
		},
		ElectionTimeout: labET, Heartbeat: labHB, InitialPrimary: "mongo-a",
	}
	if os.Getenv("MONGOSIM_LOG") != "" {
		cfg.Logf = t.Logf
	}
	for _, f := range mod {
		f(&cfg)
	}
	s, err := mongosim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	l := &lab{t: t, sim: s, set: &mongo.Set{
		Members: []mongo.Member{
			{Name: "mongo-a", Address: s.Addr("mongo-a"), Site: "A"},
			{Name: "mongo-b", Address: s.Addr("mongo-b"), Site: "B"},
			{Name: "mongo-arb", Address: s.Addr("mongo-arb"), Site: "W", Arbiter: true},
		},
		Timeout: time.Second, Poll: 50 * time.Millisecond,
	}}
	if cfg.Auth == nil {
		l.waitObs(5*time.Second, "a healthy set with mongo-a primary", healthyOn("mongo-a"))
	}
	return l
}

// healthyOn: name is the writable primary and sees every member healthy,
// and every member answered.
func healthyOn(name string) func(*mongo.Observation) bool {
	return func(o *mongo.Observation) bool {
		p := o.Primary()
		if p == nil || p.Member.Name != name || len(o.Primaries()) != 1 {
			return false
		}
		for i := range o.Members {
			m := &o.Members[i]
			if !m.Observed() {
				return false
			}
			if v := p.Peer(m.Member.Name); v == nil || v.Health != 1 {
				return false
			}
			if !m.ArbiterOnly && (m.Lag == nil || time.Duration(*m.Lag) > time.Second) {
				return false
			}
		}
		return true
	}
}

func (l *lab) observe() *mongo.Observation { return l.set.Observe(l.t.Context()) }

func (l *lab) waitObs(d time.Duration, what string, cond func(*mongo.Observation) bool) *mongo.Observation {
	l.t.Helper()
	deadline := time.Now().Add(d)
	for {
		o := l.observe()
		if cond(o) {
			return o
		}
		if time.Now().After(deadline) {
			for _, m := range o.Members {
				l.t.Logf("%s: lag %v optime %+v peers %+v errors %v", m.Member.Name, m.Lag, m.Optime, m.Peers, m.Errors)
			}
			l.t.Fatalf("timed out after %s waiting for %s; last observation: %s", d, what, o.Summary())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// admin runs a command on one member over a direct connection.
func (l *lab) admin(member string, cmd bson.D) (bson.Raw, error) {
	l.t.Helper()
	return l.run(member, "admin", cmd)
}

func (l *lab) run(member, db string, cmd bson.D) (bson.Raw, error) {
	l.t.Helper()
	c, err := mdrv.Connect(options.Client().SetHosts([]string{l.sim.Addr(member)}).SetDirect(true).
		SetServerSelectionTimeout(2 * time.Second).SetRetryWrites(false).SetServerMonitoringMode(options.ServerMonitoringModePoll))
	if err != nil {
		l.t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = c.Disconnect(ctx)
	}()
	ctx, cancel := context.WithTimeout(l.t.Context(), 15*time.Second)
	defer cancel()
	return c.Database(db).RunCommand(ctx, cmd).Raw()
}

// insert writes one document on a member (w:1).
func (l *lab) insert(member string, k string) error {
	l.t.Helper()
	_, err := l.run(member, "app", bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "k", Value: k}}}}})
	return err
}

func member(t *testing.T, o *mongo.Observation, name string) *mongo.MemberStatus {
	t.Helper()
	m := o.Member(name)
	if m == nil {
		t.Fatalf("no member %s in the observation", name)
	}
	return m
}
