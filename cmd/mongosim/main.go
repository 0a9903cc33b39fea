// Command mongosim runs ONE simulated MongoDB replica-set member (see
// internal/mongosim: a test double, not MongoDB). The lab starts one process
// per member, each in its own network namespace, so that cutting links or
// killing processes really partitions the set:
//
//	mongosim --name mongo-a --listen 10.0.1.1:27017 --priority 2 \
//	  --peers 'mongo-b=10.0.2.1:27017,mongo-arb=10.0.3.1:27017?arbiter=true'
//
// Every process must be given the same members (itself plus --peers) with the
// same attributes: the initial replica-set configuration is built from them
// independently in each process. A peer is name=host:port, optionally
// followed by ?priority=N&votes=0|1&arbiter=true&id=N. Member _id values not
// given with id= are assigned in this order: data members by name, then
// arbiters by name.
//
// Authentication (SCRAM-SHA-256) is on when --auth-user is given; the
// password is read from the environment variable MONGOSIM_PASSWORD, never
// from a flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sitectl/sitectl/internal/mongosim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "mongosim:", err)
		os.Exit(2)
	}
}

// run starts the member and blocks until ctx is done. ready, if not nil,
// receives the node once it listens.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- *mongosim.Node) error {
	fs := flag.NewFlagSet("mongosim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usageText); fs.PrintDefaults() }
	name := fs.String("name", "", "this member's name (required)")
	listen := fs.String("listen", "", "host:port to listen on (required)")
	advertise := fs.String("advertise", "", "host:port written in the replica-set configuration (default: --listen)")
	peers := fs.String("peers", "", "the other members: name=host:port[?priority=N&votes=N&arbiter=true&id=N],...")
	id := fs.Int("id", -1, "this member's _id (default: assigned, see the package doc)")
	priority := fs.Float64("priority", 1, "this member's priority (arbiters: 0)")
	votes := fs.Int("votes", 1, "this member's votes (0 or 1)")
	arbiter := fs.Bool("arbiter", false, "this member is an arbiter")
	setName := fs.String("set", "rs0", "replica set name")
	electionTimeout := fs.Duration("election-timeout", 10*time.Second, "electionTimeoutMillis")
	heartbeat := fs.Duration("heartbeat", 500*time.Millisecond, "heartbeat interval between members")
	initialPrimary := fs.String("initial-primary", "", "member that starts as primary in term 1 (default: elect one after --election-timeout)")
	legacy := fs.Bool("legacy-election-metrics", false, "report electionCandidateMetrics.termAtElection (MongoDB 4.2) instead of electionTerm")
	authUser := fs.String("auth-user", "", "require SCRAM-SHA-256 authentication as this user (password from $MONGOSIM_PASSWORD)")
	quiet := fs.Bool("quiet", false, "do not log state changes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *name == "" || *listen == "" {
		return errors.New("--name and --listen are required")
	}
	if *advertise == "" {
		*advertise = *listen
	}
	self := mongosim.MemberSpec{Name: *name, Addr: *advertise, ID: *id, Priority: *priority, Votes: *votes, Arbiter: *arbiter}
	others, err := parsePeers(*peers)
	if err != nil {
		return err
	}
	members, err := assignIDs(append([]mongosim.MemberSpec{self}, others...))
	if err != nil {
		return err
	}
	var auth *mongosim.Auth
	if *authUser != "" {
		pw := os.Getenv("MONGOSIM_PASSWORD")
		if pw == "" {
			return errors.New("--auth-user needs the password in $MONGOSIM_PASSWORD")
		}
		auth = &mongosim.Auth{User: *authUser, Password: pw}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05.000")}, a...)...)
	}
	if *quiet {
		logf = nil
	}
	n, err := mongosim.NewNode(mongosim.NodeOptions{
		Name: *name, Members: members, SetName: *setName, Listener: ln,
		ElectionTimeout: *electionTimeout, Heartbeat: *heartbeat, InitialPrimary: *initialPrimary,
		LegacyElectionMetrics: *legacy, Auth: auth, Logf: logf,
	})
	if err != nil {
		_ = ln.Close()
		return err
	}
	if err := n.Start(); err != nil {
		return err
	}
	if ready != nil {
		ready <- n
	}
	<-ctx.Done()
	n.Stop()
	return nil
}

// parsePeers reads name=host:port[?priority=N&votes=N&arbiter=true&id=N],...
func parsePeers(s string) ([]mongosim.MemberSpec, error) {
	var out []mongosim.MemberSpec
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		name, rest, ok := strings.Cut(p, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("peer %q: expected name=host:port", p)
		}
		addr, query, _ := strings.Cut(rest, "?")
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("peer %s: %q is not host:port", name, addr)
		}
		m := mongosim.MemberSpec{Name: name, Addr: addr, ID: -1, Priority: 1, Votes: 1}
		q, err := url.ParseQuery(query)
		if err != nil {
			return nil, fmt.Errorf("peer %s: %v", name, err)
		}
		for k, vs := range q {
			v := vs[len(vs)-1]
			switch k {
			case "priority":
				if m.Priority, err = strconv.ParseFloat(v, 64); err != nil {
					return nil, fmt.Errorf("peer %s: priority %q is not a number", name, v)
				}
			case "votes":
				if m.Votes, err = strconv.Atoi(v); err != nil || (m.Votes != 0 && m.Votes != 1) {
					return nil, fmt.Errorf("peer %s: votes must be 0 or 1", name)
				}
			case "arbiter":
				if m.Arbiter, err = strconv.ParseBool(v); err != nil {
					return nil, fmt.Errorf("peer %s: arbiter %q is not a boolean", name, v)
				}
			case "id":
				if m.ID, err = strconv.Atoi(v); err != nil || m.ID < 0 {
					return nil, fmt.Errorf("peer %s: id must be an integer >= 0", name)
				}
			default:
				return nil, fmt.Errorf("peer %s: unknown attribute %q (expected priority, votes, arbiter, id)", name, k)
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// assignIDs gives every member without an explicit _id (ID < 0) the
// lowest free one: data members by name first, then arbiters by name. So
// every process computes the same configuration.
func assignIDs(ms []mongosim.MemberSpec) ([]mongosim.MemberSpec, error) {
	used, names := map[int]bool{}, map[string]bool{}
	for _, m := range ms {
		if names[m.Name] {
			return nil, fmt.Errorf("member name %q is given twice", m.Name)
		}
		names[m.Name] = true
		if m.ID >= 0 {
			if used[m.ID] {
				return nil, fmt.Errorf("member _id %d is given twice", m.ID)
			}
			used[m.ID] = true
		}
	}
	order := append([]mongosim.MemberSpec(nil), ms...)
	sort.SliceStable(order, func(i, j int) bool {
		if order[i].Arbiter != order[j].Arbiter {
			return !order[i].Arbiter
		}
		return order[i].Name < order[j].Name
	})
	next := 0
	for i := range order {
		if order[i].ID >= 0 {
			continue
		}
		for used[next] {
			next++
		}
		order[i].ID = next
		used[next] = true
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].ID < order[j].ID })
	return order, nil
}

const usageText = `Usage: mongosim --name NAME --listen HOST:PORT [--peers LIST] [flags]

Runs ONE simulated MongoDB replica-set member (a test double, not MongoDB;
see internal/mongosim). Every process of a set must be given the same
members (itself plus --peers) with the same attributes: each builds the
initial replica-set configuration from them on its own.

  --peers 'mongo-b=10.0.2.1:27017,mongo-arb=10.0.3.1:27017?arbiter=true'

A peer is name=host:port, optionally followed by
?priority=N&votes=0|1&arbiter=true&id=N.

Member ids (_id in the configuration): a member given --id (or id= in
--peers) keeps it; the others get the smallest ids not taken, in this
order: data members by name, then arbiters by name. With mongo-a, mongo-b
and the arbiter mongo-arb and no ids given: mongo-a 0, mongo-b 1,
mongo-arb 2. Two members with the same id are an error.

Authentication (SCRAM-SHA-256) is on with --auth-user; the password is read
from $MONGOSIM_PASSWORD, never from a flag.

Flags:
`
