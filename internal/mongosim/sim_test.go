package mongosim

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

const (
	testET = time.Second
	testHB = 200 * time.Millisecond
)

func startPSA(t *testing.T, mod ...func(*Config)) *Sim {
	t.Helper()
	cfg := Config{
		Members:         []MemberConfig{{Name: "a", Priority: 2}, {Name: "b"}, {Name: "arb", Arbiter: true}},
		ElectionTimeout: testET, Heartbeat: testHB, InitialPrimary: "a",
	}
	if os.Getenv("MONGOSIM_LOG") != "" {
		cfg.Logf = t.Logf
	}
	for _, f := range mod {
		f(&cfg)
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	waitFor(t, 5*time.Second, "b and arb see a as primary", func() bool {
		for _, n := range []string{"b", "arb"} {
			nd := s.Node(n)
			nd.mu.Lock()
			p := nd.seenPrimaryLocked()
			nd.mu.Unlock()
			if p == nil || p.host != s.Addr("a") {
				return false
			}
		}
		return true
	})
	return s
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func client(t *testing.T, addr string, opts ...*options.ClientOptions) *mongo.Client {
	t.Helper()
	// Polling by default: a streaming monitor can hold Disconnect for up
	// to heartbeatFrequency (10s) in a driver race at shutdown.
	o := options.Client().SetHosts([]string{addr}).SetDirect(true).SetServerSelectionTimeout(3 * time.Second).SetConnectTimeout(3 * time.Second).
		SetServerMonitoringMode(options.ServerMonitoringModePoll)
	c, err := mongo.Connect(append([]*options.ClientOptions{o}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = c.Disconnect(ctx)
	})
	return c
}

func ctx(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return c
}

func admin(t *testing.T, c *mongo.Client, cmd bson.D) (bson.Raw, error) {
	t.Helper()
	return c.Database("admin").RunCommand(ctx(t, 10*time.Second), cmd).Raw()
}

func wantCode(t *testing.T, err error, code int32) {
	t.Helper()
	var ce mongo.CommandError
	if !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("want error code %d (%s), got %v", code, codeNames[code], err)
	}
	if ce.Name != codeNames[code] {
		t.Fatalf("want codeName %s, got %s", codeNames[code], ce.Name)
	}
}

// The driver's monitor uses the streaming (exhaust) hello protocol, so it
// learns of a step-down long before its 10s heartbeat interval.
func TestDriverStreamingMonitor(t *testing.T) {
	t.Parallel()
	s := startPSA(t)
	var mu sync.Mutex
	awaited := 0
	var kinds []string
	mon := &event.ServerMonitor{
		ServerHeartbeatSucceeded: func(e *event.ServerHeartbeatSucceededEvent) {
			mu.Lock()
			defer mu.Unlock()
			if e.Awaited {
				awaited++
			}
		},
		ServerDescriptionChanged: func(e *event.ServerDescriptionChangedEvent) {
			mu.Lock()
			defer mu.Unlock()
			kinds = append(kinds, e.NewDescription.Kind)
		},
	}
	c := client(t, s.Addr("a"), options.Client().SetServerMonitor(mon).SetServerMonitoringMode(options.ServerMonitoringModeStream).SetHeartbeatInterval(5*time.Minute))
	defer s.Close() // before the client's Disconnect: it ends the awaited hello at once
	if _, err := admin(t, c, bson.D{{Key: "ping", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	if _, err := admin(t, c, bson.D{{Key: "replSetStepDown", Value: 5}, {Key: "secondaryCatchUpPeriodSecs", Value: 2}}); err != nil {
		t.Fatal(err)
	}
	// a polling monitor would see it only at its next heartbeat (set to 5
	// minutes below): a guard far under that, not a timing
	waitFor(t, time.Minute, "the client's monitor sees a as a secondary", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(kinds) > 0 && kinds[len(kinds)-1] == "RSSecondary"
	})
	t.Logf("the monitor saw the step-down after %s", time.Since(start))
	mu.Lock()
	defer mu.Unlock()
	if awaited == 0 {
		t.Fatal("no awaited (streaming) heartbeat succeeded")
	}
}

func TestCommandErrors(t *testing.T) {
	t.Parallel()
	s := startPSA(t)
	a, b, arb := client(t, s.Addr("a")), client(t, s.Addr("b")), client(t, s.Addr("arb"))
	_, err := admin(t, a, bson.D{{Key: "noSuchCommand", Value: 1}})
	wantCode(t, err, 59)
	_, err = admin(t, b, bson.D{{Key: "replSetStepDown", Value: 60}})
	wantCode(t, err, 10107)
	_, err = admin(t, a, bson.D{{Key: "replSetStepDown", Value: 5}}) // default catch-up 10s
	wantCode(t, err, 2)
	_, err = admin(t, a, bson.D{{Key: "replSetFreeze", Value: 10}})
	wantCode(t, err, 95)
	_, err = b.Database("x").RunCommand(ctx(t, 5*time.Second), bson.D{{Key: "replSetGetStatus", Value: 1}}).Raw()
	wantCode(t, err, 13)
	_, err = b.Database("x").Collection("c").InsertOne(ctx(t, 5*time.Second), bson.D{{Key: "k", Value: 1}})
	var se mongo.ServerError
	if !errors.As(err, &se) || !se.HasErrorCode(10107) {
		t.Fatalf("insert on a secondary: want 10107, got %v", err)
	}
	_, err = arb.Database("x").RunCommand(ctx(t, 5*time.Second), bson.D{{Key: "find", Value: "c"}}).Raw()
	wantCode(t, err, 13436)

	raw, err := admin(t, a, bson.D{{Key: "replSetGetConfig", Value: 1}})
	if err != nil {
		t.Fatal(err)
	}
	var cfg bson.D
	if err := bson.Unmarshal(raw.Lookup("config").Document(), &cfg); err != nil {
		t.Fatal(err)
	}
	_, err = admin(t, b, bson.D{{Key: "replSetReconfig", Value: cfg}})
	wantCode(t, err, 10107)
	// Two voting members removed at once.
	two := append(bson.D(nil), cfg...)
	for i, e := range two {
		switch e.Key {
		case "members":
			two[i].Value = e.Value.(bson.A)[:1]
		case "version":
			two[i].Value = e.Value.(int32) + 1
		}
	}
	_, err = admin(t, a, bson.D{{Key: "replSetReconfig", Value: two}})
	wantCode(t, err, 103)
	_, err = admin(t, a, bson.D{{Key: "replSetReconfig", Value: cfg}}) // version not bumped
	wantCode(t, err, 103)
}

func TestOpQueryOnlyForHello(t *testing.T) {
	t.Parallel()
	s := startPSA(t)
	conn, err := net.DialTimeout("tcp", s.Addr("a"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	for _, tc := range []struct {
		cmd  bson.D
		code int32
	}{
		{bson.D{{Key: "isMaster", Value: 1}}, 0},
		{bson.D{{Key: "ping", Value: 1}}, 352},
	} {
		q, _ := bson.Marshal(tc.cmd)
		if _, err := conn.Write(AppendQuery(nil, 1, "admin.$cmd", q)); err != nil {
			t.Fatal(err)
		}
		m, err := ReadMessage(conn)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.OpCode != OpReply || len(m.Documents) != 1 {
			t.Fatalf("want OP_REPLY, got %+v", m.Header)
		}
		code, _ := m.Documents[0].Lookup("code").AsInt64OK()
		if int32(code) != tc.code {
			t.Fatalf("%v: code %d, want %d: %v", tc.cmd, code, tc.code, m.Documents[0])
		}
		if tc.code == 0 {
			if w, _ := m.Documents[0].Lookup("ismaster").BooleanOK(); !w {
				t.Fatalf("legacy hello: %v", m.Documents[0])
			}
		}
	}
}

func TestStepDownNeedsCaughtUpSecondary(t *testing.T) {
	t.Parallel()
	s := startPSA(t)
	a := client(t, s.Addr("a"))
	s.Stop("b")
	waitFor(t, 3*time.Second, "a sees b down", func() bool {
		nd := s.Node("a")
		nd.mu.Lock()
		defer nd.mu.Unlock()
		return !nd.peers[1].healthy
	})
	start := time.Now()
	_, err := admin(t, a, bson.D{{Key: "replSetStepDown", Value: 3}, {Key: "secondaryCatchUpPeriodSecs", Value: 1}})
	wantCode(t, err, 262)
	if d := time.Since(start); d < 900*time.Millisecond { // never early; late is the machine's load
		t.Fatalf("waited %s for the catch-up period of 1s", d)
	}
	if !strings.Contains(err.Error(), "No electable secondaries caught up") {
		t.Fatalf("message: %v", err)
	}
	if _, err := admin(t, a, bson.D{{Key: "replSetStepDown", Value: 3}, {Key: "force", Value: true}}); err != nil {
		t.Fatal(err)
	}
	if st := s.Node("a").Status(); st.State != StateSecondary {
		t.Fatalf("after a forced step-down a is %s", st.StateStr)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	const pass = "correct horse battery staple"
	s := startPSA(t, func(c *Config) { c.Auth = &Auth{User: "sitectl", Password: pass} })
	good := client(t, s.Addr("a"), options.Client().SetAuth(options.Credential{Username: "sitectl", Password: pass, AuthSource: "admin"}))
	if _, err := admin(t, good, bson.D{{Key: "replSetGetStatus", Value: 1}}); err != nil {
		t.Fatalf("good password: %v", err)
	}
	bad := client(t, s.Addr("a"), options.Client().SetAuth(options.Credential{Username: "sitectl", Password: "wrong-password-123", AuthSource: "admin"}))
	_, err := admin(t, bad, bson.D{{Key: "ping", Value: 1}})
	wantCode(t, err, 18)
	nouser := client(t, s.Addr("a"), options.Client().SetAuth(options.Credential{Username: "nobody", Password: pass, AuthSource: "admin"}))
	_, err = admin(t, nouser, bson.D{{Key: "ping", Value: 1}})
	wantCode(t, err, 18)
	anon := client(t, s.Addr("b"))
	if _, err := admin(t, anon, bson.D{{Key: "hello", Value: 1}}); err != nil {
		t.Fatalf("hello needs no authentication: %v", err)
	}
	_, err = admin(t, anon, bson.D{{Key: "replSetGetStatus", Value: 1}})
	wantCode(t, err, 13)
	// The driver does not authenticate to arbiters: only hello works there.
	arb := client(t, s.Addr("arb"), options.Client().SetAuth(options.Credential{Username: "sitectl", Password: pass, AuthSource: "admin"}))
	if _, err := admin(t, arb, bson.D{{Key: "hello", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	_, err = admin(t, arb, bson.D{{Key: "replSetGetStatus", Value: 1}})
	wantCode(t, err, 13)
}

func TestReplicationRollbackAndRestart(t *testing.T) {
	t.Parallel()
	s := startPSA(t)
	a, b := client(t, s.Addr("a")), client(t, s.Addr("b"))
	sec := options.Collection().SetReadPreference(readpref.SecondaryPreferred())
	count := func(c *mongo.Client, filter bson.D) int {
		t.Helper()
		n := 0
		cur, err := c.Database("app").Collection("c", sec).Find(ctx(t, 5*time.Second), filter)
		if err != nil {
			t.Fatal(err)
		}
		for cur.Next(t.Context()) {
			n++
		}
		return n
	}
	maj := options.Collection().SetWriteConcern(writeconcern.Majority())
	if _, err := a.Database("app").Collection("c", maj).InsertOne(ctx(t, 5*time.Second), bson.D{{Key: "k", Value: "committed"}}); err != nil {
		t.Fatal(err)
	}
	// Cut a off and write to it before it notices: that write never
	// reaches b and must be rolled back when a comes back.
	s.Isolate("a")
	if _, err := a.Database("app").Collection("c").InsertOne(ctx(t, 5*time.Second), bson.D{{Key: "k", Value: "lost"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b is elected", func() bool { return s.Node("b").Status().State == StatePrimary })
	if _, err := b.Database("app").Collection("c").InsertOne(ctx(t, 5*time.Second), bson.D{{Key: "k", Value: "new"}}); err != nil {
		t.Fatal(err)
	}
	s.Heal()
	waitFor(t, 5*time.Second, "a rolled back and caught up", func() bool {
		return count(a, bson.D{{Key: "k", Value: "lost"}}) == 0 && count(a, bson.D{{Key: "k", Value: "new"}}) == 1
	})
	if n := count(a, bson.D{{Key: "k", Value: "committed"}}); n != 1 {
		t.Fatalf("the majority-committed write: %d copies on a", n)
	}
	// A restarted member keeps its data.
	waitFor(t, 5*time.Second, "a is primary again", func() bool { return s.Node("a").Status().State == StatePrimary })
	s.Stop("b")
	if err := s.Restart("b"); err != nil {
		t.Fatal(err)
	}
	b2 := client(t, s.Addr("b"))
	if n := count(b2, bson.D{}); n != 2 {
		t.Fatalf("after restart b has %d documents, want 2", n)
	}
}

func TestMajorityWriteWithSecondaryDown(t *testing.T) {
	t.Parallel()
	s := startPSA(t)
	a := client(t, s.Addr("a"))
	s.Stop("b")
	start := time.Now()
	raw, err := a.Database("app").RunCommand(ctx(t, 5*time.Second), bson.D{{Key: "insert", Value: "c"},
		{Key: "documents", Value: bson.A{bson.D{{Key: "k", Value: 1}}}},
		{Key: "writeConcern", Value: bson.D{{Key: "w", Value: "majority"}, {Key: "wtimeout", Value: 300}}}}).Raw()
	var we mongo.WriteException
	switch {
	case errors.As(err, &we) && we.WriteConcernError != nil && we.WriteConcernError.Code == 64:
	case err == nil && raw.Lookup("writeConcernError", "code").Int32() == 64:
	default:
		t.Fatalf("want write concern error 64, got %v %v", err, raw)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("the write concern did not wait for wtimeout (%s)", d)
	}
	if _, err := a.Database("app").Collection("c").InsertOne(ctx(t, 5*time.Second), bson.D{{Key: "k", Value: 2}}); err != nil {
		t.Fatalf("w:1 write: %v", err)
	}
}

func TestLegacyElectionMetrics(t *testing.T) {
	t.Parallel()
	s := startPSA(t, func(c *Config) { c.LegacyElectionMetrics = true })
	raw, err := admin(t, client(t, s.Addr("a")), bson.D{{Key: "replSetGetStatus", Value: 1}})
	if err != nil {
		t.Fatal(err)
	}
	m := raw.Lookup("electionCandidateMetrics").Document()
	if _, err := m.LookupErr("electionTerm"); err == nil {
		t.Fatal("electionTerm present")
	}
	if v, _ := m.Lookup("termAtElection").AsInt64OK(); v != 1 {
		t.Fatalf("termAtElection: %v", m)
	}
}
