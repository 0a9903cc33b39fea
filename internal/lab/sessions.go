package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/go-stomp/stomp/v3"
)

func (e *Env) serviceClient() *http.Client {
	return &http.Client{Timeout: 2 * time.Second}
}

func (e *Env) getJSON(ctx context.Context, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := e.serviceClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: HTTP %d: %s", url, resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// ConnectorState is what a site's ActiveMQ connector (in its chat stand-in)
// reports.
type ConnectorState struct {
	Connected  bool      `json:"connected"`
	Broker     string    `json:"broker"`    // STOMP address it is subscribed on
	Preferred  string    `json:"preferred"` // its own site's broker
	ClientID   string    `json:"client_id"`
	Host       string    `json:"host"` // STOMP host header (= consumer_match)
	Queue      string    `json:"queue"`
	Priority   int       `json:"priority"`
	Since      time.Time `json:"since"`
	Consumed   int64     `json:"consumed"`
	Reconnects int64     `json:"reconnects"`
	LastError  string    `json:"last_error"`
}

// Connector asks a site's chat stand-in for its connector's state.
func (e *Env) Connector(ctx context.Context, site string) (ConnectorState, error) {
	var c ConnectorState
	if _, err := siteService(site, "chat"); err != nil {
		return c, err
	}
	err := e.getJSON(ctx, ServiceURL(site, "chat")+"/connector", &c)
	return c, err
}

// Sessions is the number of chat sessions open on a site's chat stand-in.
func (e *Env) Sessions(ctx context.Context, site string) (int, error) {
	var r struct {
		Open int `json:"open"`
	}
	if _, err := siteService(site, "chat"); err != nil {
		return 0, err
	}
	err := e.getJSON(ctx, ServiceURL(site, "chat")+"/sessions", &r)
	return r.Open, err
}

// CloseSessions ends n of a site's chat sessions gracefully (n < 0: all),
// as chats that finish; it returns how many it ended.
func (e *Env) CloseSessions(ctx context.Context, site string, n int) (int, error) {
	if _, err := siteService(site, "chat"); err != nil {
		return 0, err
	}
	url := ServiceURL(site, "chat") + "/sessions/close"
	if n >= 0 {
		url += "?n=" + strconv.Itoa(n)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := e.serviceClient().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Closed int `json:"closed"`
	}
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("POST %s: HTTP %d", url, resp.StatusCode)
	}
	err = json.NewDecoder(resp.Body).Decode(&r)
	return r.Closed, err
}

// HAProxySessions is HAProxy's current session count (scur) on a site's
// server of a backend ("chat").
func HAProxySessions(backend, site string) (int, error) {
	servers, err := HAProxyServers()
	if err != nil {
		return 0, err
	}
	for _, s := range servers {
		if s.Backend == backend && s.Server == ServerName(backend, site) {
			return s.Scur, nil
		}
	}
	return 0, fmt.Errorf("no server %s/%s in show stat", backend, ServerName(backend, site))
}

// OpenSessionsBackground starts a session client (standin sessions) in the
// root namespace that holds n chat sessions through HAProxy until it is
// killed (EndSessions, Down) or for hold. It returns its pid.
func (e *Env) OpenSessionsBackground(n int, hold time.Duration, reconnect bool) (int, error) {
	if n < 1 {
		return 0, errors.New("open at least one session")
	}
	name := fmt.Sprintf("sessions-%d", time.Now().UnixNano())
	args := []string{e.StandinBin(), "sessions", "--url", SessionURL(), "--n", strconv.Itoa(n)}
	if hold > 0 {
		args = append(args, "--hold", hold.String())
	}
	if reconnect {
		args = append(args, "--reconnect")
	}
	return launch("", filepath.Join(e.runDir(), name+".log"), filepath.Join(e.runDir(), name+".pid"), nil, args...)
}

// EndSessions kills the background session clients and ends every open
// session on both sites' chat stand-ins (sites that do not answer are
// skipped).
func (e *Env) EndSessions(ctx context.Context) error {
	pids, _ := filepath.Glob(filepath.Join(e.runDir(), "sessions-*.pid"))
	for _, p := range pids {
		if pid, err := readPid(p); err == nil {
			stopGroup(pid, e.StandinBin(), syscall.SIGTERM, 2*time.Second)
		}
		_ = os.Remove(p)
		_ = os.Remove(p[:len(p)-len(".pid")] + ".log")
	}
	for _, site := range []string{SiteA, SiteB} {
		if _, ok := e.servicePid(site, "chat"); ok && LinkUp(*NodeOf(site)) {
			_, _ = e.CloseSessions(ctx, site, -1)
		}
	}
	return nil
}

// SessionSet is a group of chat sessions held open by this process through
// HAProxy (the test side of a graceful drain).
type SessionSet struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	bySite  map[string]int // open sessions per site (the X-Site the server answered)
	ended   int            // ended gracefully by the server
	dropped int            // dropped (server died, network cut)
}

// OpenSessions opens n chat sessions through the HAProxy frontend and
// returns once each has been answered (so HAProxy counts them). With
// reconnect, a dropped session is opened again (as a web chat client would
// resume it on the other site); sessions the server ends are not.
func OpenSessions(ctx context.Context, n int, reconnect bool) (*SessionSet, error) {
	sctx, cancel := context.WithCancel(context.Background())
	s := &SessionSet{cancel: cancel, bySite: map[string]int{}}
	ready := make(chan error, n)
	for range n {
		s.wg.Go(func() { s.hold(sctx, reconnect, ready) })
	}
	for range n {
		select {
		case err := <-ready:
			if err != nil {
				s.Close()
				return nil, err
			}
		case <-ctx.Done():
			s.Close()
			return nil, ctx.Err()
		}
	}
	return s, nil
}

func (s *SessionSet) hold(ctx context.Context, reconnect bool, ready chan<- error) {
	first := true
	for ctx.Err() == nil {
		graceful, err := s.once(ctx, func(err error) {
			if first {
				first = false
				ready <- err
			}
		})
		if first { // failed before the first answer
			first = false
			ready <- err
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		if graceful {
			s.ended++
		} else {
			s.dropped++
		}
		s.mu.Unlock()
		if graceful || !reconnect {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func (s *SessionSet) once(ctx context.Context, opened func(error)) (graceful bool, err error) {
	req, err := http.NewRequestWithContext(ctx, "GET", SessionURL(), nil)
	if err != nil {
		return false, err
	}
	c := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext, DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return false, fmt.Errorf("open session: HTTP %d", resp.StatusCode)
	}
	site := resp.Header.Get("X-Site")
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() {
		return false, fmt.Errorf("open session: no greeting: %v", sc.Err())
	}
	s.mu.Lock()
	s.bySite[site]++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.bySite[site]--
		s.mu.Unlock()
	}()
	opened(nil)
	for sc.Scan() {
		if sc.Text() == "bye" {
			return true, nil
		}
	}
	return false, io.ErrUnexpectedEOF
}

// Open is the number of sessions open now, per site.
func (s *SessionSet) Open() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.bySite {
		if v > 0 {
			out[k] = v
		}
	}
	return out
}

// Ended is the number of sessions the server ended gracefully, Dropped the
// number it dropped.
func (s *SessionSet) Ended() int   { s.mu.Lock(); defer s.mu.Unlock(); return s.ended }
func (s *SessionSet) Dropped() int { s.mu.Lock(); defer s.mu.Unlock(); return s.dropped }

// Close ends the sessions from the client side and waits for them.
func (s *SessionSet) Close() {
	s.cancel()
	s.wg.Wait()
}

// Send puts n messages on the watched queue of a site's broker (STOMP);
// whichever connector the brokers route the queue to consumes them.
func Send(ctx context.Context, site string, n int) error {
	if _, err := siteService(site, "chat"); err != nil {
		return err
	}
	nc, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, "tcp", hp(NodeOf(site).IP, StompPort))
	if err != nil {
		return err
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	conn, err := stomp.Connect(nc, stomp.ConnOpt.Host("sitectl-lab-sender"))
	if err != nil {
		nc.Close()
		return err
	}
	defer func() { _ = conn.Disconnect() }()
	for i := range n {
		if err := conn.Send("/queue/"+Queue, "text/plain", []byte(fmt.Sprintf("lab message %d", i)), stomp.SendOpt.Receipt); err != nil {
			return err
		}
	}
	return nil
}
