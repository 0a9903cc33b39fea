package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// MongoDB modes of the lab.
const (
	MongoSim    = "sim"    // cmd/mongosim, one member per process (a simulator)
	MongoReal   = "mongod" // real mongod --replSet, when mongod is on PATH
	MongoAbsent = "none"   // no MongoDB: the inventory has no mongodb section
)

// mongoMember is one member of the lab's replica set.
type mongoMember struct {
	Name     string
	Node     string // A, B or W
	Priority int
	Arbiter  bool
}

func mongoMembers() []mongoMember {
	return []mongoMember{
		{Name: siteOf(SiteA).Mongo, Node: SiteA, Priority: siteOf(SiteA).MongoPrio},
		{Name: siteOf(SiteB).Mongo, Node: SiteB, Priority: siteOf(SiteB).MongoPrio},
		{Name: ArbiterName, Node: Witness, Arbiter: true},
	}
}

func mongoMemberOf(key string) *mongoMember {
	for _, m := range mongoMembers() {
		if strings.EqualFold(m.Node, key) || m.Name == key {
			return &m
		}
	}
	return nil
}

// MongoAddr is a member's host:port.
func MongoAddr(key string) string { return hp(NodeOf(mongoMemberOf(key).Node).IP, MongoPort) }

// electionTimeout of the lab's replica set (SITECTL_LAB_ELECTION_TIMEOUT,
// default 3s; MongoDB's own default is 10s).
func electionTimeout() time.Duration {
	if v := os.Getenv("SITECTL_LAB_ELECTION_TIMEOUT"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			return d
		}
	}
	return 3 * time.Second
}

// chooseMongo picks the MongoDB mode: SITECTL_LAB_MONGO (sim, mongod, none)
// if set, else mongod when it is on PATH, else the simulator when its source
// (cmd/mongosim) is in the module, else none.
func (e *Env) chooseMongo() (string, error) {
	switch v := os.Getenv("SITECTL_LAB_MONGO"); v {
	case MongoSim, MongoReal, MongoAbsent:
		return v, nil
	case "":
	default:
		return "", fmt.Errorf("SITECTL_LAB_MONGO=%q: want sim, mongod or none", v)
	}
	if _, err := exec.LookPath("mongod"); err == nil {
		return MongoReal, nil
	}
	if st, err := os.Stat(filepath.Join(e.root, "cmd", "mongosim")); err == nil && st.IsDir() {
		return MongoSim, nil
	}
	return MongoAbsent, nil
}

func (e *Env) MongosimBin() string         { return filepath.Join(e.Dir, "bin", "mongosim") }
func (e *Env) mongoDir(name string) string { return filepath.Join(e.Dir, "mongo", name) }
func (e *Env) MongoLog(key string) string {
	return filepath.Join(e.mongoDir(mongoMemberOf(key).Name), "member.log")
}
func (e *Env) mongoPidFile(name string) string {
	return filepath.Join(e.runDir(), name+".pid")
}

// mongoMarker is what a member's command line contains.
func (e *Env) mongoMarker(m mongoMember) string {
	if e.state.Mongo == MongoReal {
		return e.mongoDir(m.Name)
	}
	return e.MongosimBin()
}

// simFlags lists the flags `mongosim -h` shows.
var flagRE = regexp.MustCompile(`(?m)^\s+--?([a-zA-Z][a-zA-Z0-9-]*)`)

func (e *Env) simFlags() map[string]bool {
	out, _ := exec.Command(e.MongosimBin(), "-h").CombinedOutput()
	flags := map[string]bool{}
	for _, m := range flagRE.FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	return flags
}

// mongoArgv is the command line of one member. initial: the whole set
// starts now, with mongo-a primary in term 1 (no election to wait for);
// a member restarted later joins the set as it is.
func (e *Env) mongoArgv(m mongoMember, initial bool) ([]string, error) {
	addr := hp(NodeOf(m.Node).IP, MongoPort)
	if e.state.Mongo == MongoReal {
		return []string{"mongod", "--replSet", ReplicaSet, "--bind_ip", NodeOf(m.Node).IP,
			"--port", strconv.Itoa(MongoPort), "--dbpath", filepath.Join(e.mongoDir(m.Name), "db"),
			"--nounixsocket", "--quiet"}, nil
	}
	flags := e.simFlags()
	for _, f := range []string{"name", "listen", "peers", "priority", "arbiter", "id", "set", "election-timeout"} {
		if !flags[f] {
			return nil, fmt.Errorf("%s has no --%s flag (flags seen: %v)", e.MongosimBin(), f, keys(flags))
		}
	}
	// every process gets the same members with the same attributes and _ids
	var peers []string
	for i, p := range mongoMembers() {
		if p.Name == m.Name {
			continue
		}
		attrs := "?id=" + strconv.Itoa(i)
		if p.Arbiter {
			attrs += "&arbiter=true"
		} else {
			attrs += "&priority=" + strconv.Itoa(p.Priority)
		}
		peers = append(peers, p.Name+"="+hp(NodeOf(p.Node).IP, MongoPort)+attrs)
	}
	id := 0
	for i, p := range mongoMembers() {
		if p.Name == m.Name {
			id = i
		}
	}
	argv := []string{e.MongosimBin(), "--name", m.Name, "--listen", addr, "--id", strconv.Itoa(id),
		"--set", ReplicaSet, "--peers", strings.Join(peers, ","),
		"--election-timeout", electionTimeout().String()}
	if m.Arbiter {
		argv = append(argv, "--arbiter")
	} else {
		argv = append(argv, "--priority", strconv.Itoa(m.Priority))
	}
	if initial && flags["initial-primary"] {
		argv = append(argv, "--initial-primary", siteOf(SiteA).Mongo)
	}
	return argv, nil
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// MongoRunning reports whether a member's process runs (key: A, B, W or a
// member name).
func (e *Env) MongoRunning(key string) bool {
	m := mongoMemberOf(key)
	if m == nil || e.state.Mongo == MongoAbsent {
		return false
	}
	_, ok := pidAlive(e.mongoPidFile(m.Name), e.mongoMarker(*m))
	return ok
}

// startMongo starts one member unless it runs, and waits until it answers
// hello.
func (e *Env) startMongo(ctx context.Context, key string) error {
	return e.startMongoMember(ctx, key, false)
}

func (e *Env) startMongoMember(ctx context.Context, key string, initial bool) error {
	m := mongoMemberOf(key)
	if m == nil {
		return fmt.Errorf("no MongoDB member %q (A, B or W)", key)
	}
	if e.state.Mongo == MongoAbsent {
		return errors.New("this lab runs no MongoDB (see `lab status`)")
	}
	if !e.MongoRunning(key) {
		argv, err := e.mongoArgv(*m, initial)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(e.mongoDir(m.Name), "db"), 0o755); err != nil {
			return err
		}
		if _, err := launch(NodeOf(m.Node).NS, e.MongoLog(key), e.mongoPidFile(m.Name), nil, argv...); err != nil {
			return err
		}
	}
	return waitFor(ctx, 30*time.Second, 50*time.Millisecond, "MongoDB member "+m.Name, func() error {
		if !e.MongoRunning(key) {
			return fmt.Errorf("it exited:\n%s", tail(e.MongoLog(key), 10))
		}
		_, err := mongoHello(ctx, MongoAddr(key))
		return err
	})
}

func (e *Env) stopMongo(key string) error {
	m := mongoMemberOf(key)
	if m == nil {
		return fmt.Errorf("no MongoDB member %q (A, B or W)", key)
	}
	if e.state.Mongo == MongoAbsent {
		return errors.New("this lab runs no MongoDB")
	}
	if pid, ok := pidAlive(e.mongoPidFile(m.Name), e.mongoMarker(*m)); ok {
		stopGroup(pid, e.mongoMarker(*m), syscall.SIGTERM, 5*time.Second)
	}
	return nil
}

// MemberState is what one member says of itself.
type MemberState struct {
	Primary   bool
	Secondary bool
	Arbiter   bool
	SetName   string
	PrimaryIs string // the primary it knows of (host:port)
}

func (s MemberState) String() string {
	switch {
	case s.Primary:
		return "PRIMARY"
	case s.Secondary:
		return "SECONDARY"
	case s.Arbiter:
		return "ARBITER"
	}
	return "OTHER"
}

// mongoHello asks one member "hello" (direct connection, short timeouts).
func mongoHello(ctx context.Context, addr string) (MemberState, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := mongo.Connect(options.Client().SetHosts([]string{addr}).SetDirect(true).
		SetConnectTimeout(time.Second).SetServerSelectionTimeout(1500 * time.Millisecond).SetTimeout(1500 * time.Millisecond))
	if err != nil {
		return MemberState{}, err
	}
	defer func() { _ = c.Disconnect(context.Background()) }()
	var r struct {
		IsWritablePrimary bool   `bson:"isWritablePrimary"`
		Secondary         bool   `bson:"secondary"`
		ArbiterOnly       bool   `bson:"arbiterOnly"`
		SetName           string `bson:"setName"`
		Primary           string `bson:"primary"`
	}
	if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&r); err != nil {
		return MemberState{}, err
	}
	return MemberState{Primary: r.IsWritablePrimary, Secondary: r.Secondary, Arbiter: r.ArbiterOnly, SetName: r.SetName, PrimaryIs: r.Primary}, nil
}

// MongoState asks a member (A, B or W) for its state.
func (e *Env) MongoState(ctx context.Context, key string) (MemberState, error) {
	if mongoMemberOf(key) == nil {
		return MemberState{}, fmt.Errorf("no MongoDB member %q", key)
	}
	return mongoHello(ctx, MongoAddr(key))
}

// initiateMongod runs replSetInitiate on mongo-a (real mongod only; a set
// already initiated is fine).
func (e *Env) initiateMongod(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := mongo.Connect(options.Client().SetHosts([]string{MongoAddr(SiteA)}).SetDirect(true).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		return err
	}
	defer func() { _ = c.Disconnect(context.Background()) }()
	var members bson.A
	for i, m := range mongoMembers() {
		d := bson.D{{Key: "_id", Value: i}, {Key: "host", Value: hp(NodeOf(m.Node).IP, MongoPort)}}
		if m.Arbiter {
			d = append(d, bson.E{Key: "arbiterOnly", Value: true})
		} else {
			d = append(d, bson.E{Key: "priority", Value: m.Priority})
		}
		members = append(members, d)
	}
	cfg := bson.D{
		{Key: "_id", Value: ReplicaSet},
		{Key: "members", Value: members},
		{Key: "settings", Value: bson.D{{Key: "electionTimeoutMillis", Value: electionTimeout().Milliseconds()}}},
	}
	err = c.Database("admin").RunCommand(ctx, bson.D{{Key: "replSetInitiate", Value: cfg}}).Err()
	var ce mongo.CommandError
	if errors.As(err, &ce) && (ce.Code == 23 || ce.Name == "AlreadyInitialized") {
		return nil
	}
	return err
}

// waitPrimary waits until member key is the writable primary.
func (e *Env) waitPrimary(ctx context.Context, key string, limit time.Duration) error {
	return waitFor(ctx, limit, 200*time.Millisecond, mongoMemberOf(key).Name+" primary", func() error {
		st, err := mongoHello(ctx, MongoAddr(key))
		if err != nil {
			return err
		}
		if !st.Primary {
			return fmt.Errorf("%s is %s (primary: %q)", mongoMemberOf(key).Name, st, st.PrimaryIs)
		}
		return nil
	})
}
