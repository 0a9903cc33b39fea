// Command standin is the lab's stand-in for one contact-center service
// (ccm, comms, mre, chat, reporting) on one site, plus two small clients the
// lab uses. It is built by `go run ./scripts/lab up` into the lab's state
// directory and started by the per-service start scripts, inside the site's
// network namespace. See docs/lab.md.
//
//	standin serve --name chat --site A --listen 10.213.0.11:8080 \
//	    [--stomp 10.213.0.11:61613,10.213.0.21:61613 --queue ef.chat.requests \
//	     --priority 10 --client-id site-a-connector]
//	standin probe [--timeout 5s] URL        exit 0 once URL answers 200
//	standin sessions --url URL --n N [--hold D] [--reconnect]
//	                                        hold N chat sessions open (a client)
//
// The service answers:
//
//	GET  /health              200 {"status":"UP",...} (503 DOWN after POST /health/fail)
//	POST /health/fail, /health/ok
//	GET  /chat/session        a chat session: a long-lived streamed response
//	                          (HAProxy's scur counts it) until the client goes
//	                          away or the session is closed by the server
//	GET  /sessions            {"open":N,"total":M}
//	POST /sessions/close?n=K  end K sessions gracefully (all without n)
//	GET  /connector           the STOMP connector's state (chat with --stomp)
//
// With --stomp the service also runs the site's ActiveMQ "connector": one
// STOMP consumer on --queue with header activemq.priority=--priority, host
// header --client-id and client-id "<client-id>-<pid>-<n>", on the first
// broker of --stomp that answers (the site's own broker first; the others
// are fallbacks, left again for the first one as soon as it is back). It
// reconnects whenever the connection drops and acknowledges and counts every
// message it receives.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-stomp/stomp/v3"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2:])
	case "probe":
		probe(os.Args[2:])
	case "sessions":
		sessions(os.Args[2:])
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: standin serve|probe|sessions [flags]  (see go doc ./scripts/lab/standin)")
	os.Exit(2)
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, a...))
}

// ---------------------------------------------------------------- serve

type server struct {
	name, site string
	failing    atomic.Bool

	mu       sync.Mutex
	sessions map[int64]chan struct{} // open sessions: closing the chan ends it
	nextID   int64
	total    int64

	conn *connector
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	name := fs.String("name", "", "service name")
	site := fs.String("site", "", "site name")
	listen := fs.String("listen", "", "host:port of the HTTP endpoint")
	stompAddrs := fs.String("stomp", "", "brokers' STOMP host:port, comma-separated, preferred first (enables the connector)")
	queue := fs.String("queue", "", "queue the connector consumes")
	prio := fs.Int("priority", 0, "the connector's consumer priority (activemq.priority)")
	clientID := fs.String("client-id", "", "the connector's STOMP host header and client-id prefix")
	_ = fs.Parse(args)
	if *name == "" || *listen == "" {
		fs.Usage()
		os.Exit(2)
	}
	s := &server{name: *name, site: *site, sessions: map[int64]chan struct{}{}}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		logf("%s: listen %s: %v", *name, *listen, err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *stompAddrs != "" {
		s.conn = &connector{
			addrs:    strings.Split(*stompAddrs, ","),
			queue:    *queue,
			priority: *prio,
			clientID: *clientID,
		}
		go s.conn.run(ctx)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.health)
	mux.HandleFunc("GET /chat/health", s.health)
	mux.HandleFunc("POST /health/fail", func(w http.ResponseWriter, _ *http.Request) {
		s.failing.Store(true)
		writeJSON(w, 200, map[string]any{"failing": true})
	})
	mux.HandleFunc("POST /health/ok", func(w http.ResponseWriter, _ *http.Request) {
		s.failing.Store(false)
		writeJSON(w, 200, map[string]any{"failing": false})
	})
	mux.HandleFunc("GET /chat/session", s.session)
	mux.HandleFunc("GET /sessions", s.count)
	mux.HandleFunc("POST /sessions/close", s.closeSessions)
	mux.HandleFunc("GET /connector", func(w http.ResponseWriter, _ *http.Request) {
		if s.conn == nil {
			writeJSON(w, 404, map[string]any{"error": "no connector in this service"})
			return
		}
		writeJSON(w, 200, s.conn.state())
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		s.endAll()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	logf("%s (site %s) listening on %s", *name, *site, *listen)
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logf("%s: %v", *name, err)
		os.Exit(1)
	}
	if s.conn != nil {
		s.conn.close()
	}
	logf("%s stopped", *name)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *server) health(w http.ResponseWriter, _ *http.Request) {
	if s.failing.Load() {
		writeJSON(w, 503, map[string]any{"status": "DOWN", "service": s.name, "site": s.site})
		return
	}
	writeJSON(w, 200, map[string]any{"status": "UP", "service": s.name, "site": s.site})
}

// session holds a chat session: a streamed response that lasts until the
// client leaves or the server ends it (POST /sessions/close, SIGTERM).
func (s *server) session(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "no streaming", 500)
		return
	}
	end := make(chan struct{})
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	s.total++
	s.sessions[id] = end
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, id)
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Site", s.site)
	w.WriteHeader(200)
	fmt.Fprintf(w, "session %d on %s site %s\n", id, s.name, s.site)
	fl.Flush()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-end:
			fmt.Fprintf(w, "bye\n")
			fl.Flush()
			return
		case <-tick.C:
			if _, err := fmt.Fprintf(w, ".\n"); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

func (s *server) count(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	open, total := len(s.sessions), s.total
	s.mu.Unlock()
	writeJSON(w, 200, map[string]any{"open": open, "total": total, "site": s.site})
}

func (s *server) closeSessions(w http.ResponseWriter, r *http.Request) {
	n := -1
	if v := r.URL.Query().Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			writeJSON(w, 400, map[string]any{"error": "n must be a non-negative integer"})
			return
		}
	}
	s.mu.Lock()
	closed := 0
	for id, end := range s.sessions {
		if n >= 0 && closed >= n {
			break
		}
		close(end)
		delete(s.sessions, id)
		closed++
	}
	left := len(s.sessions)
	s.mu.Unlock()
	writeJSON(w, 200, map[string]any{"closed": closed, "open": left})
}

func (s *server) endAll() {
	s.mu.Lock()
	for id, end := range s.sessions {
		close(end)
		delete(s.sessions, id)
	}
	s.mu.Unlock()
}

// ---------------------------------------------------------------- connector

type connector struct {
	addrs    []string
	queue    string
	priority int
	clientID string

	mu        sync.Mutex
	connected string // broker address, "" when not connected
	current   string // client-id of the current connection
	since     time.Time
	lastErr   string
	consumed  int64
	reconnect int64
	conn      *stomp.Conn
	closed    bool
}

type connectorState struct {
	Connected  bool      `json:"connected"`
	Broker     string    `json:"broker,omitempty"`
	Preferred  string    `json:"preferred"`
	ClientID   string    `json:"client_id,omitempty"`
	Host       string    `json:"host"`
	Queue      string    `json:"queue"`
	Priority   int       `json:"priority"`
	Since      time.Time `json:"since,omitzero"`
	Consumed   int64     `json:"consumed"`
	Reconnects int64     `json:"reconnects"`
	LastError  string    `json:"last_error,omitempty"`
}

func (c *connector) state() connectorState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return connectorState{
		Connected: c.connected != "", Broker: c.connected, Preferred: c.addrs[0], ClientID: c.current,
		Host: c.clientID, Queue: c.queue, Priority: c.priority, Since: c.since,
		Consumed: c.consumed, Reconnects: c.reconnect, LastError: c.lastErr,
	}
}

func (c *connector) close() {
	c.mu.Lock()
	c.closed = true
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		_ = conn.Disconnect()
	}
}

func (c *connector) setErr(err error) {
	c.mu.Lock()
	c.lastErr = err.Error()
	c.mu.Unlock()
}

// run keeps one subscription alive until ctx ends.
func (c *connector) run(ctx context.Context) {
	var seq int
	for ctx.Err() == nil {
		for i, addr := range c.addrs {
			if ctx.Err() != nil {
				return
			}
			seq++
			id := fmt.Sprintf("%s-%d-%d", c.clientID, os.Getpid(), seq)
			conn, sub, err := c.subscribe(addr, id)
			if err != nil {
				c.setErr(fmt.Errorf("%s: %w", addr, err))
				continue
			}
			c.consume(ctx, addr, id, conn, sub, i > 0)
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (c *connector) subscribe(addr, id string) (*stomp.Conn, *stomp.Subscription, error) {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(3 * time.Second))
	conn, err := stomp.Connect(nc,
		stomp.ConnOpt.Host(c.clientID),
		stomp.ConnOpt.Header("client-id", id),
		stomp.ConnOpt.HeartBeat(2*time.Second, 2*time.Second),
		stomp.ConnOpt.HeartBeatError(3*time.Second),
	)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	sub, err := conn.Subscribe("/queue/"+c.queue, stomp.AckClientIndividual,
		stomp.SubscribeOpt.Header("activemq.priority", strconv.Itoa(c.priority)))
	if err != nil {
		_ = conn.MustDisconnect()
		return nil, nil, err
	}
	return conn, sub, nil
}

// consume reads messages until the connection breaks; on a fallback broker
// it also tries the preferred one every 2s and moves back when it answers.
func (c *connector) consume(ctx context.Context, addr, id string, conn *stomp.Conn, sub *stomp.Subscription, fallback bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = conn.Disconnect()
		return
	}
	c.connected, c.current, c.since, c.conn, c.lastErr = addr, id, time.Now(), conn, ""
	c.reconnect++
	c.mu.Unlock()
	logf("connector: subscribed to /queue/%s on %s as %s (priority %d)", c.queue, addr, id, c.priority)
	defer func() {
		c.mu.Lock()
		c.connected, c.current, c.conn = "", "", nil
		c.mu.Unlock()
		_ = conn.MustDisconnect()
	}()
	var back <-chan time.Time
	if fallback {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		back = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-back:
			if pc, err := net.DialTimeout("tcp", c.addrs[0], 500*time.Millisecond); err == nil {
				pc.Close()
				logf("connector: preferred broker %s is back; leaving %s", c.addrs[0], addr)
				return
			}
		case m, ok := <-sub.C:
			if !ok {
				c.setErr(fmt.Errorf("%s: subscription closed", addr))
				logf("connector: subscription on %s closed", addr)
				return
			}
			if m.Err != nil {
				c.setErr(fmt.Errorf("%s: %w", addr, m.Err))
				logf("connector: %s: %v", addr, m.Err)
				return
			}
			_ = conn.Ack(m)
			c.mu.Lock()
			c.consumed++
			c.mu.Unlock()
		}
	}
}

// ---------------------------------------------------------------- probe

func probe(args []string) {
	fs := flag.NewFlagSet("probe", flag.ExitOnError)
	timeout := fs.Duration("timeout", 5*time.Second, "give up after")
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		fs.Usage()
		os.Exit(2)
	}
	url := fs.Arg(0)
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(*timeout)
	var last error
	for time.Now().Before(deadline) {
		resp, err := hc.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "%s not healthy after %s: %v\n", url, *timeout, last)
	os.Exit(1)
}

// ---------------------------------------------------------------- sessions

// sessions holds n chat sessions open through url (the HAProxy frontend)
// until SIGTERM, each for --hold when set. With --reconnect a session that
// the server side drops (a crash, a site cut off) is opened again, as a web
// chat client would resume it on another instance; a session the server
// ends gracefully ("bye") is not.
func sessions(args []string) {
	fs := flag.NewFlagSet("sessions", flag.ExitOnError)
	url := fs.String("url", "", "session URL (http://EDGE:PORT/chat/session)")
	n := fs.Int("n", 1, "number of sessions")
	hold := fs.Duration("hold", 0, "end each session after this long (0: until stopped)")
	reconnect := fs.Bool("reconnect", false, "open a dropped session again")
	_ = fs.Parse(args)
	if *url == "" || *n < 1 {
		fs.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *hold > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *hold)
		defer cancel()
	}
	var wg sync.WaitGroup
	for i := range *n {
		wg.Go(func() { holdSession(ctx, *url, i, *reconnect) })
	}
	wg.Wait()
}

func holdSession(ctx context.Context, url string, i int, reconnect bool) {
	for ctx.Err() == nil {
		graceful, err := openSession(ctx, url, func(line string) { logf("session %d: %s", i, line) })
		switch {
		case ctx.Err() != nil:
			return
		case graceful:
			logf("session %d: ended by the server", i)
			return
		case !reconnect:
			logf("session %d: dropped: %v", i, err)
			return
		}
		logf("session %d: dropped (%v); reconnecting", i, err)
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// openSession opens one session and reads it until it ends. graceful is
// true when the server said "bye".
func openSession(ctx context.Context, url string, first func(string)) (graceful bool, err error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return false, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	for n := 0; sc.Scan(); n++ {
		line := sc.Text()
		if n == 0 {
			first(line)
		}
		if line == "bye" {
			return true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, err
	}
	return false, io.ErrUnexpectedEOF
}
