// Command lab brings up, breaks and tears down the two-site LAB on this
// machine: network namespaces joined by veths to a bridge in the root
// namespace, one sshd, stand-in services, an ActiveMQ broker and a MongoDB
// member per site, an arbiter on a witness and HAProxy on an edge. Run it as
// root from the module root (docs/lab.md):
//
//	go run ./scripts/lab up [--reset]     bring the lab up (idempotent); --reset: back to the initial state
//	go run ./scripts/lab down             kill everything, delete namespaces, links, state and inventory
//	go run ./scripts/lab status           what runs
//	go run ./scripts/lab fail A|B|W|EDGE  cut a node off the network (its link down)
//	go run ./scripts/lab heal A|B|W|EDGE
//	go run ./scripts/lab kill-service A chat        SIGKILL a stand-in (a crash)
//	go run ./scripts/lab start-service|stop-service A chat
//	go run ./scripts/lab fail-start A chat [MSG] / delay-start A chat 5s / fix-start A chat
//	go run ./scripts/lab stop-broker A / start-broker A
//	go run ./scripts/lab cut-broker-link / heal-broker-link
//	go run ./scripts/lab stop-mongo A|B|W / start-mongo A|B|W
//	go run ./scripts/lab sessions [open N [--hold 30s] [--reconnect] | close A|B [N] | end]
//	go run ./scripts/lab send A|B [N]     put N messages on the watched queue of a broker
//	go run ./scripts/lab inventory        print the inventory's path
//	go run ./scripts/lab bench-drill [-n 5] [-status 10]   time drill 1's takeover against its critical path; time status
//
// The state directory is .lab/ in the module root, or $SITECTL_LAB_DIR.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sitectl/sitectl/internal/lab"
)

const usage = `usage: go run ./scripts/lab COMMAND   (as root; docs/lab.md)
  up [--reset]                 bring the lab up (idempotent); --reset: back to A active / B passive, faults healed
  down                         kill every lab process; delete namespaces, links, state dir and inventory
  status                       what runs
  fail A|B|W|EDGE              cut a node off (its link down) / heal A|B|W|EDGE
  kill-service A|B SERVICE     SIGKILL a stand-in (ccm comms mre chat reporting)
  start-service|stop-service A|B SERVICE
  fail-start A|B SERVICE [MSG] make its start script fail
  delay-start A|B SERVICE D    make its start script sleep D first
  fix-start A|B SERVICE        undo fail-start and delay-start
  stop-broker A|B | start-broker A|B
  cut-broker-link | heal-broker-link
  stop-mongo A|B|W | start-mongo A|B|W
  cut-mongo-link A|B|W | heal-mongo-links   cut a member off the other members only (seed 003 rows 5, 6)
  cut-operator-path A|B|W|EDGE | heal-operator-path
                                          cut only sitectl's path to a node (the operator's VPN fails; the site lives)
  sessions                     open chat sessions per site and in HAProxy
  sessions open N [--hold D] [--reconnect]   hold N chat sessions through HAProxy (background client)
  sessions close A|B [N]       end N (all) sessions of a site, as chats that finish
  sessions end                 end every session and stop the session clients
  send A|B [N]                 put N messages on the watched queue of a site's broker
  inventory                    print the path of the lab's inventory
  bench-drill [-n 5] [-status 10]  time drill 1's takeover against its critical path, then status and check
  bench-board [-for 2m] [-every 10s] [-interval 1s]  memory and refresh time of a running board (site A cut halfway)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1], os.Args[2:])
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "lab: %v\n\n%s", err, usage)
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "lab: %v\n", err)
		os.Exit(1)
	}
}

type usageError string

func (u usageError) Error() string { return string(u) }

func arg(args []string, i int, what string) (string, error) {
	if i >= len(args) {
		return "", usageError("missing " + what)
	}
	return args[i], nil
}

func site(args []string, i int, allowed ...string) (string, error) {
	s, err := arg(args, i, strings.Join(allowed, "|"))
	if err != nil {
		return "", err
	}
	s = strings.ToUpper(s)
	for _, a := range allowed {
		if s == a {
			return s, nil
		}
	}
	return "", usageError(fmt.Sprintf("%q: want one of %s", args[i], strings.Join(allowed, ", ")))
}

// run opens the lab and runs one command: the read-only ones at once, the
// others as root under the lab's lock, and only on a lab that is up
// (except up and down).
func run(ctx context.Context, verb string, args []string) error {
	e, err := lab.Open("")
	if err != nil {
		return err
	}
	e.Out = os.Stdout
	switch verb {
	case "status":
		return e.Status(ctx, os.Stdout)
	case "inventory":
		fmt.Println(e.InventoryFile())
		return nil
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	if os.Geteuid() != 0 {
		return errors.New("run the lab as root (network namespaces, veths, sshd)")
	}
	lockCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	unlock, err := lab.Lock(lockCtx)
	if err != nil {
		return err
	}
	defer unlock()
	if verb != "up" && verb != "down" && !lab.IsUp() {
		return errors.New("the lab is not up: go run ./scripts/lab up")
	}
	return dispatch(ctx, e, verb, args)
}

// dispatch runs one lab command on the lab that is up (or being brought up
// or down), under the lab's lock.
func dispatch(ctx context.Context, e *lab.Env, verb string, args []string) error {
	switch verb {
	case "up":
		return labUp(ctx, e, args)
	case "down":
		return e.Down(ctx)
	case "fail", "heal":
		return failHeal(ctx, e, verb, args)
	case "kill-service", "start-service", "stop-service", "fail-start", "delay-start", "fix-start":
		return serviceVerb(ctx, e, verb, args)
	case "stop-broker", "start-broker":
		return brokerVerb(ctx, e, verb, args)
	case "cut-broker-link", "heal-broker-link", "cut-mongo-link", "heal-mongo-links", "cut-operator-path", "heal-operator-path":
		return linkVerb(ctx, e, verb, args)
	case "stop-mongo", "start-mongo":
		return mongoVerb(ctx, e, verb, args)
	case "sessions":
		return sessions(ctx, e, args)
	case "bench-drill":
		return benchDrill(ctx, e, args)
	case "bench-board":
		return benchBoard(ctx, e, args)
	case "send":
		return send(ctx, args)
	}
	return usageError("unknown command " + strconv.Quote(verb))
}

// labUp brings the lab up (-reset: back to the initial state).
func labUp(ctx context.Context, e *lab.Env, args []string) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	reset := fs.Bool("reset", false, "back to the initial state")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if err := e.Up(ctx, lab.UpOptions{Reset: *reset}); err != nil {
		return fmt.Errorf("%w\n(logs under %s; run up again to complete the lab, or down to remove it)", err, e.Dir)
	}
	fmt.Printf("\nnext: go run ./cmd/sitectl --inventory %s status\n", e.InventoryFile())
	return nil
}

// failHeal cuts a site (or the witness, or the edge) off, or reconnects it.
func failHeal(ctx context.Context, e *lab.Env, verb string, args []string) error {
	key, err := site(args, 0, "A", "B", "W", "EDGE")
	if err != nil {
		return err
	}
	if verb == "fail" {
		err = e.Fail(ctx, key)
	} else {
		err = e.Heal(ctx, key)
	}
	if err == nil {
		fmt.Printf("%s: %s %s\n", verb, key, map[string]string{"fail": "cut off (link down)", "heal": "reconnected (link up)"}[verb])
	}
	return err
}

// serviceVerb kills, starts or stops a service of a site, or makes its
// start fail, slow, or work again.
func serviceVerb(ctx context.Context, e *lab.Env, verb string, args []string) error {
	s, err := site(args, 0, "A", "B")
	if err != nil {
		return err
	}
	svc, err := arg(args, 1, "SERVICE")
	if err != nil {
		return err
	}
	switch verb {
	case "kill-service":
		err = e.KillService(s, svc)
	case "start-service":
		err = e.StartService(ctx, s, svc)
	case "stop-service":
		err = e.StopService(ctx, s, svc)
	case "fail-start":
		msg := "lab: start of " + svc + " made to fail (fail-start)"
		if len(args) > 2 {
			msg = strings.Join(args[2:], " ")
		}
		err = e.FailStart(s, svc, msg)
	case "delay-start":
		ds, aerr := arg(args, 2, "DURATION")
		if aerr != nil {
			return aerr
		}
		d, perr := time.ParseDuration(ds)
		if perr != nil || d <= 0 {
			return usageError("DURATION: a Go duration such as 5s")
		}
		err = e.DelayStart(s, svc, d)
	case "fix-start":
		err = e.FixStart(s, svc)
	}
	if err == nil {
		fmt.Printf("%s %s on site %s: done\n", verb, svc, s)
	}
	return err
}

// brokerVerb stops or starts a site's broker.
func brokerVerb(ctx context.Context, e *lab.Env, verb string, args []string) error {
	s, err := site(args, 0, "A", "B")
	if err != nil {
		return err
	}
	if verb == "stop-broker" {
		err = e.StopBroker(s)
	} else {
		err = e.StartBroker(ctx, s)
	}
	if err == nil {
		fmt.Printf("%s %s: done\n", verb, s)
	}
	return err
}

// linkVerb cuts or heals a link: between the brokers, a MongoDB member's
// links to the others, or the operator's path to a site.
func linkVerb(ctx context.Context, e *lab.Env, verb string, args []string) error {
	switch verb {
	case "cut-broker-link":
		if err := e.CutBrokerLink(ctx); err != nil {
			return err
		}
		fmt.Println("broker link amq-a <-> amq-b cut (OpenWire between the sites dropped)")
		return nil
	case "heal-broker-link":
		if err := e.HealBrokerLink(ctx); err != nil {
			return err
		}
		fmt.Println("broker link amq-a <-> amq-b healed")
		return nil
	case "cut-mongo-link":
		k, err := site(args, 0, "A", "B", "W")
		if err != nil {
			return err
		}
		if err := e.CutMongoLink(ctx, k); err != nil {
			return err
		}
		fmt.Printf("cut-mongo-link %s: done (the member still answers sitectl)\n", k)
		return nil
	case "heal-mongo-links":
		if err := e.HealMongoLinks(ctx); err != nil {
			return err
		}
		fmt.Println("heal-mongo-links: done")
		return nil
	case "cut-operator-path":
		k, err := site(args, 0, "A", "B", "W", "EDGE")
		if err != nil {
			return err
		}
		if err := e.CutOperatorPath(ctx, k); err != nil {
			return err
		}
		fmt.Printf("cut-operator-path %s: done (sitectl cannot reach it; the other nodes still do)\n", k)
		return nil
	case "heal-operator-path":
		if err := e.HealOperatorPaths(ctx); err != nil {
			return err
		}
		fmt.Println("heal-operator-path: done")
		return nil
	}
	return usageError("unknown command " + strconv.Quote(verb))
}

// mongoVerb stops or starts a site's MongoDB member.
func mongoVerb(ctx context.Context, e *lab.Env, verb string, args []string) error {
	key, err := site(args, 0, "A", "B", "W")
	if err != nil {
		return err
	}
	if verb == "stop-mongo" {
		err = e.StopMongo(key)
	} else {
		err = e.StartMongo(ctx, key)
	}
	if err == nil {
		fmt.Printf("%s %s: done\n", verb, key)
	}
	return err
}

// send sends N messages (default 1) to the watched queue on a site's
// broker.
func send(ctx context.Context, args []string) error {
	s, err := site(args, 0, "A", "B")
	if err != nil {
		return err
	}
	n := 1
	if len(args) > 1 {
		if n, err = strconv.Atoi(args[1]); err != nil || n < 1 {
			return usageError("N must be a positive number")
		}
	}
	if err := lab.Send(ctx, s, n); err != nil {
		return err
	}
	fmt.Printf("sent %d message(s) to %s on the broker of site %s\n", n, lab.Queue, s)
	return nil
}

func sessions(ctx context.Context, e *lab.Env, args []string) error {
	if len(args) == 0 {
		for _, s := range []string{lab.SiteA, lab.SiteB} {
			n, err := e.Sessions(ctx, s)
			hn, herr := lab.HAProxySessions("chat", s)
			line := fmt.Sprintf("site %s: ", s)
			if err != nil {
				line += "chat not answering"
			} else {
				line += fmt.Sprintf("%d open sessions", n)
			}
			if herr == nil {
				line += fmt.Sprintf("; haproxy chat/%s scur %d", lab.ServerName("chat", s), hn)
			}
			fmt.Println(line)
		}
		return nil
	}
	switch args[0] {
	case "open":
		fs := flag.NewFlagSet("sessions open", flag.ContinueOnError)
		hold := fs.Duration("hold", 0, "end each session after this long")
		reconnect := fs.Bool("reconnect", false, "open a dropped session again")
		if len(args) < 2 {
			return usageError("sessions open N")
		}
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 {
			return usageError("N must be a positive number")
		}
		if err := fs.Parse(args[2:]); err != nil {
			return usageError(err.Error())
		}
		pid, err := e.OpenSessionsBackground(n, *hold, *reconnect)
		if err != nil {
			return err
		}
		fmt.Printf("session client pid %d holds %d session(s) through %s\n", pid, n, lab.SessionURL())
		return nil
	case "close":
		s, err := site(args, 1, "A", "B")
		if err != nil {
			return err
		}
		n := -1
		if len(args) > 2 {
			if n, err = strconv.Atoi(args[2]); err != nil || n < 0 {
				return usageError("N must be a number")
			}
		}
		closed, err := e.CloseSessions(ctx, s, n)
		if err != nil {
			return err
		}
		fmt.Printf("site %s: ended %d session(s)\n", s, closed)
		return nil
	case "end":
		return e.EndSessions(ctx)
	}
	return usageError("sessions: open, close or end")
}
