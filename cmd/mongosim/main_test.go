package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sitectl/sitectl/internal/mongosim"
)

func TestParsePeersAndIDs(t *testing.T) {
	ps, err := parsePeers("b=127.0.0.1:2, arb=127.0.0.1:3?arbiter=true,c=127.0.0.1:4?priority=0&votes=0&id=9")
	if err != nil {
		t.Fatal(err)
	}
	all, err := assignIDs(append([]mongosim.MemberSpec{{Name: "a", Addr: "127.0.0.1:1", ID: -1, Priority: 2, Votes: 1}}, ps...))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range all {
		got = append(got, m.Name+"="+strconv.Itoa(m.ID))
	}
	if strings.Join(got, " ") != "a=0 b=1 arb=2 c=9" {
		t.Fatalf("ids: %v", got)
	}
	for _, bad := range []string{"b", "=1.2.3.4:5", "b=nohost", "b=h:1?priority=x", "b=h:1?votes=2", "b=h:1?color=red", "b=h:1?id=-1"} {
		if _, err := parsePeers(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if _, err := assignIDs([]mongosim.MemberSpec{{Name: "a", ID: 1}, {Name: "b", ID: 1}}); err == nil {
		t.Error("duplicate _id accepted")
	}
}

// Three processes' worth of members, each started from flags as the lab
// would: they elect the highest-priority member.
func TestThreeMembersFromFlags(t *testing.T) {
	var addrs []string
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		_ = ln.Close()
	}
	peers := map[string]string{
		"a":   "b=" + addrs[1] + ",arb=" + addrs[2] + "?arbiter=true",
		"b":   "a=" + addrs[0] + "?priority=2,arb=" + addrs[2] + "?arbiter=true",
		"arb": "a=" + addrs[0] + "?priority=2,b=" + addrs[1],
	}
	args := map[string][]string{
		"a":   {"--name", "a", "--listen", addrs[0], "--priority", "2"},
		"b":   {"--name", "b", "--listen", addrs[1]},
		"arb": {"--name", "arb", "--listen", addrs[2], "--arbiter"},
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 3)
	nodes := map[string]*mongosim.Node{}
	for _, name := range []string{"a", "b", "arb"} {
		ready := make(chan *mongosim.Node, 1)
		a := append(args[name], "--peers", peers[name], "--election-timeout", "1s", "--heartbeat", "100ms", "--quiet")
		go func() { done <- run(ctx, a, io.Discard, ready) }()
		select {
		case n := <-ready:
			nodes[name] = n
		case err := <-done:
			t.Fatalf("%s: %v", name, err)
		}
	}
	defer func() {
		cancel()
		for range 3 {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := nodes["a"].Status()
		if st.State == mongosim.StatePrimary && nodes["b"].Status().State == mongosim.StateSecondary && nodes["arb"].Status().State == mongosim.StateArbiter {
			if st.ConfigVersion != 1 {
				t.Fatalf("config version %d: the processes disagree on the configuration", st.ConfigVersion)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no primary on a: a=%+v b=%+v", st, nodes["b"].Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--name", "a"},
		{"--name", "a", "--listen", "127.0.0.1:0", "--peers", "a=127.0.0.1:1"},
		{"--name", "a", "--listen", "127.0.0.1:0", "--auth-user", "u"},
		{"--name", "a", "--listen", "127.0.0.1:0", "extra"},
	} {
		t.Setenv("MONGOSIM_PASSWORD", "")
		if err := run(t.Context(), args, io.Discard, nil); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// TestHelpExplainsMemberIDs: --help says how member ids are assigned, and
// its example is what assignIDs does.
func TestHelpExplainsMemberIDs(t *testing.T) {
	var b strings.Builder
	if err := run(t.Context(), []string{"--help"}, &b, nil); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"Member ids", "data members by name, then arbiters by name", "mongo-a 0, mongo-b 1,\nmongo-arb 2", "--peers"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, b.String())
		}
	}
	ms, err := assignIDs([]mongosim.MemberSpec{{Name: "mongo-arb", Arbiter: true, ID: -1}, {Name: "mongo-b", ID: -1}, {Name: "mongo-a", ID: -1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if want := map[string]int{"mongo-a": 0, "mongo-b": 1, "mongo-arb": 2}[m.Name]; m.ID != want {
			t.Errorf("%s: id %d, want %d (as --help says)", m.Name, m.ID, want)
		}
	}
}
