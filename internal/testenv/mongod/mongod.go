// Package mongod starts a real MongoDB replica set on loopback for tests:
// three mongod processes (priority 2, priority 1, arbiter) with a 2s
// election timeout, the shape of adapters/mongo's real lane. When mongod is
// not on PATH the test is skipped with the reason (Path).
package mongod

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Path returns the mongod binary on PATH, or skips the test saying why.
func Path(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("mongod")
	if err != nil {
		t.Skip("real mongod lane NOT run: mongod is not on PATH and SITECTL_TEST_MONGODB_URI is not set")
	}
	return p
}

// PSA is a running replica set: Hosts[0] (priority 2, primary once
// started), Hosts[1] (priority 1), Hosts[2] (arbiter).
type PSA struct {
	ReplicaSet string
	Hosts      []string
}

// StartPSA starts the set and waits (up to 90s, a failure guard) until
// Hosts[0] is the writable primary. Everything is stopped in t.Cleanup.
func StartPSA(t testing.TB, path string) *PSA {
	t.Helper()
	const rs = "sitectl-test"
	var hosts []string
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, ln.Addr().String())
		_ = ln.Close()
	}
	for i, h := range hosts {
		dir := t.TempDir()
		_, port, _ := net.SplitHostPort(h)
		cmd := exec.Command(path, "--replSet", rs, "--port", port, "--bind_ip", "127.0.0.1",
			"--dbpath", dir, "--oplogSize", "64", "--logpath", filepath.Join(dir, "mongod.log"))
		if err := cmd.Start(); err != nil {
			t.Fatalf("mongod %d: %v", i, err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	cfg := bson.D{{Key: "_id", Value: rs}, {Key: "members", Value: bson.A{
		bson.D{{Key: "_id", Value: 0}, {Key: "host", Value: hosts[0]}, {Key: "priority", Value: 2}},
		bson.D{{Key: "_id", Value: 1}, {Key: "host", Value: hosts[1]}, {Key: "priority", Value: 1}},
		bson.D{{Key: "_id", Value: 2}, {Key: "host", Value: hosts[2]}, {Key: "arbiterOnly", Value: true}},
	}}, {Key: "settings", Value: bson.D{{Key: "electionTimeoutMillis", Value: 2000}}}}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, h := range hosts {
		poll(t, ctx, h, "answers hello", func(r bson.M) bool { return true })
	}
	c := client(t, hosts[0])
	defer func() { _ = c.Disconnect(context.Background()) }()
	if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "replSetInitiate", Value: cfg}}).Err(); err != nil {
		t.Fatalf("replSetInitiate on %s: %v", hosts[0], err)
	}
	poll(t, ctx, hosts[0], "is the writable primary", func(r bson.M) bool { w, _ := r["isWritablePrimary"].(bool); return w })
	t.Logf("real mongod PSA set %s on %v", rs, hosts)
	return &PSA{ReplicaSet: rs, Hosts: hosts}
}

func client(t testing.TB, host string) *mdrv.Client {
	t.Helper()
	c, err := mdrv.Connect(options.Client().SetHosts([]string{host}).SetDirect(true).
		SetServerSelectionTimeout(2 * time.Second).SetServerMonitoringMode(options.ServerMonitoringModePoll))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// poll runs hello on host until ok holds; ctx's deadline is only a failure guard.
func poll(t testing.TB, ctx context.Context, host, what string, ok func(bson.M) bool) {
	t.Helper()
	c := client(t, host)
	defer func() { _ = c.Disconnect(context.Background()) }()
	var last error
	for {
		var r bson.M
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = c.Database("admin").RunCommand(hctx, bson.D{{Key: "hello", Value: 1}}).Decode(&r)
		cancel()
		if last == nil && ok(r) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("mongod on %s: expected it %s, observed %v / %v (see mongod.log in the test's temp dir)", host, what, r, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
