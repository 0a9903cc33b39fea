// Package activemq observes ActiveMQ Classic 5.x brokers over STOMP: which
// consumers each watched queue has (with their priority, connection, client
// id and STOMP host header, and whether they are network-bridge consumers),
// and which connections the broker holds. It reads the broker's advisory
// topics, which replay the current consumers and connections to a new
// subscriber, until they are quiet.
//
// It uses go-stomp v3 with a real deadline on every step (the TCP dial, the
// STOMP handshake, the read), never logs to stderr, and never puts the
// password in an error.
package activemq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"

	"github.com/sitectl/sitectl/adapters/netwatch"
	"github.com/sitectl/sitectl/inventory"
)

// Defaults.
const (
	DefaultTimeout = 3 * time.Second        // connect + read-until-quiet, per broker
	DefaultQuiet   = 500 * time.Millisecond // no advisory for this long ends the read
	DefaultHost    = "sitectl"              // STOMP host header (the broker shows it as clientIp)
)

// Advisory topics, as STOMP destinations.
const (
	ConnectionAdvisoryTopic  = "/topic/ActiveMQ.Advisory.Connection"
	consumerAdvisoryPrefix   = "/topic/ActiveMQ.Advisory.Consumer.Queue."
	maxMalformedSampleLength = 300
	disconnectReceipt        = 300 * time.Millisecond
)

// ConsumerAdvisoryTopic is the STOMP destination of queue's consumer advisories.
func ConsumerAdvisoryTopic(queue string) string { return consumerAdvisoryPrefix + queue }

// BrokerObservation is what one broker showed, or why it could not be seen.
type BrokerObservation struct {
	Broker  string `json:"broker"`  // inventory name
	Site    string `json:"site"`    // the broker's site in the inventory
	Address string `json:"address"` // STOMP host:port

	// Err is nil when the broker was observed. Otherwise it is an *Error
	// (errors.Is ErrRefused, ErrAuth, ErrTimeout), and Queues and
	// Connections hold only what was read before it happened.
	Err error `json:"-"`
	// ErrText is Err's text, for JSON.
	ErrText string `json:"error,omitempty"`

	BrokerName string `json:"broker_name,omitempty"` // brokerName (advisory originBrokerName)
	BrokerID   string `json:"broker_id,omitempty"`   // broker id (originBrokerId), as in other brokers' brokerPath
	Server     string `json:"server,omitempty"`      // STOMP server header, e.g. ActiveMQ/5.17.2
	Session    string `json:"session,omitempty"`     // our own connection id

	Queues      []QueueObservation `json:"queues"`
	Connections []Connection       `json:"connections"`

	Advisories int `json:"advisories"` // advisory messages read
	// Malformed counts advisory bodies that could not be decoded; the
	// observation may then miss consumers or connections.
	Malformed       int    `json:"malformed,omitempty"`
	MalformedSample string `json:"malformed_sample,omitempty"` // the first one: why, and the body (truncated)
	// Quiet is true when the read ended because the advisories went quiet
	// (the replay was complete), false when the deadline cut it.
	Quiet bool `json:"quiet"`

	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
}

// Up reports whether the broker was observed.
func (o *BrokerObservation) Up() bool { return o != nil && o.Err == nil }

// Queue returns the observation of one queue, or nil.
func (o *BrokerObservation) Queue(name string) *QueueObservation {
	for i := range o.Queues {
		if o.Queues[i].Name == name {
			return &o.Queues[i]
		}
	}
	return nil
}

// Connection returns the connection with that id, or nil.
func (o *BrokerObservation) Connection(id string) *Connection {
	for i := range o.Connections {
		if o.Connections[i].ID == id {
			return &o.Connections[i]
		}
	}
	return nil
}

// QueueObservation lists one queue's live consumers on one broker.
type QueueObservation struct {
	Name string `json:"name"`
	// Consumers by descending priority, then id.
	Consumers []Consumer `json:"consumers"`
	// ConsumerCount is the broker's count in the last advisory's
	// consumerCount header (-1 when no advisory came).
	ConsumerCount int `json:"consumer_count"`
	// Malformed advisories on this queue's topic: a consumer may be missing.
	Malformed int `json:"malformed,omitempty"`
}

// Consumer is one consumer of a queue on one broker.
type Consumer struct {
	ID           string `json:"consumer_id"` // connectionId:sessionId:value
	ConnectionID string `json:"connection_id"`
	// ClientID and ClientIP come from the consumer's connection (the
	// ConnectionInfo advisory): the client id, and the STOMP host header
	// (for OpenWire clients the tcp://address:port they came from).
	ClientID string `json:"client_id,omitempty"`
	ClientIP string `json:"client_ip,omitempty"`
	// ConnectionKnown is false when no ConnectionInfo was seen for it.
	ConnectionKnown bool   `json:"connection_known"`
	Priority        int    `json:"priority"`
	Browser         bool   `json:"browser,omitempty"` // a queue browser: gets no dispatched messages
	Selector        string `json:"selector,omitempty"`
	// Network: a network bridge's subscription mirroring consumers of
	// another broker (brokerPath or a NetworkBridgeFilter is present).
	Network bool `json:"network"`
	// RemoteBrokerID is the broker a network consumer forwards to.
	RemoteBrokerID string `json:"remote_broker_id,omitempty"`
	// RemoteBroker is that broker's name, read from the bridge connection
	// id ("amqA->amqB-…") when it has the usual form.
	RemoteBroker string   `json:"remote_broker,omitempty"`
	BrokerPath   []string `json:"broker_path,omitempty"`
}

// Connection is one client or bridge connection on a broker.
type Connection struct {
	ID       string `json:"connection_id"`
	ClientID string `json:"client_id,omitempty"`
	ClientIP string `json:"client_ip,omitempty"`
	UserName string `json:"user_name,omitempty"`
	// Bridge: a network bridge's connection (its id is "a->b-…").
	Bridge bool `json:"bridge,omitempty"`
}

// Option tunes Observe.
type Option func(*config)

type config struct {
	creds  Credentials
	host   string
	quiet  time.Duration
	logger stomp.Logger
}

// WithCredentials logs in with c (from LoadCredentials).
func WithCredentials(c Credentials) Option { return func(o *config) { o.creds = c } }

// WithQuiet sets how long without an advisory ends the read (default 500ms).
func WithQuiet(d time.Duration) Option { return func(o *config) { o.quiet = d } }

// WithLogger sends go-stomp's log lines to l at debug level (warnings and
// errors keep their level). The default discards them; nothing is ever
// written to stderr.
func WithLogger(l *slog.Logger) Option {
	return func(o *config) {
		if l != nil {
			o.logger = slogLogger{l}
		}
	}
}

// Observe connects to one broker, subscribes to the consumer advisories of
// every queue and to the connection advisories, reads until they are quiet
// (bounded by timeout and ctx), and returns what it saw. It never returns
// nil; a broker that cannot be observed has Err set, naming the broker and
// its address. timeout <= 0 means DefaultTimeout.
func Observe(ctx context.Context, b *inventory.Broker, queues []string, timeout time.Duration, opts ...Option) *BrokerObservation {
	cfg := config{host: DefaultHost, quiet: DefaultQuiet, logger: discardLogger{}}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	obs := &BrokerObservation{Broker: b.Name, Site: b.Site, Address: b.STOMP, Started: time.Now()}
	for _, q := range queues {
		obs.Queues = append(obs.Queues, QueueObservation{Name: q, ConsumerCount: -1})
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := observe(ctx, &cfg, obs); err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Op: OpRead, Err: textError{scrub(err.Error(), cfg.creds.Password)}}
		}
		e.Broker, e.Address = b.Name, b.STOMP
		obs.Err, obs.ErrText = e, e.Error()
	}
	obs.Duration = time.Since(obs.Started)
	return obs
}

// ObserveAll observes every broker of the inventory in parallel, each with
// a.Timeout (default 3s), logging in with a.Credentials read from the
// environment (getenv, nil for os.Getenv) or their file. The result is in
// inventory order.
func ObserveAll(ctx context.Context, a *inventory.ActiveMQ, getenv func(string) string, opts ...Option) []*BrokerObservation {
	if a == nil {
		return nil
	}
	creds, credErr := LoadCredentials(a.Credentials, getenv)
	out := make([]*BrokerObservation, len(a.Brokers))
	var wg sync.WaitGroup
	for i, b := range a.Brokers {
		if credErr != nil {
			out[i] = &BrokerObservation{Broker: b.Name, Site: b.Site, Address: b.STOMP, Started: time.Now()}
			e := &Error{Broker: b.Name, Address: b.STOMP, Op: OpCredentials, Err: credErr}
			out[i].Err, out[i].ErrText = e, e.Error()
			continue
		}
		wg.Go(func() {
			o := append([]Option{WithCredentials(creds)}, opts...)
			out[i] = Observe(ctx, b, a.Queues, a.Timeout.D(), o...)
		})
	}
	wg.Wait()
	return out
}

// observe asks one broker, in four steps: a TCP connection bounded by the
// deadline, the STOMP handshake, a subscription to the advisory topics,
// then reading the advisories until they go quiet.
func observe(ctx context.Context, cfg *config, obs *BrokerObservation) error {
	pw := cfg.creds.Password
	deadline, _ := ctx.Deadline()
	budget := time.Until(deadline).Round(time.Millisecond)
	nc, err := dialBroker(ctx, obs.Address, budget)
	if err != nil {
		return err
	}
	conn, stopAfter, err := handshake(ctx, cfg, obs, nc, deadline, budget)
	if err != nil {
		return err
	}
	// From here the read loop below is bounded by ctx; go-stomp's own
	// goroutines must not hit a stale socket deadline.
	_ = nc.SetDeadline(time.Time{})
	obs.Server, obs.Session = conn.Server(), conn.Session()
	defer func() {
		stopAfter()
		// A graceful DISCONNECT (the broker then logs nothing about a
		// dropped connection) when there is time for its receipt;
		// otherwise just close.
		if time.Until(deadline) > disconnectReceipt {
			_ = conn.Disconnect()
		} else {
			_ = conn.MustDisconnect()
		}
		_ = nc.Close()
	}()
	merged := make(chan advisoryItem)
	done := make(chan struct{})
	defer close(done)
	if err := subscribeAdvisories(conn, obs, merged, done, pw); err != nil {
		return err
	}
	return readAdvisories(ctx, cfg, obs, merged, budget)
}

// dialBroker opens the TCP connection to address, bounded by the deadline
// (stomp.DialWithContext is not).
func dialBroker(ctx context.Context, address string, budget time.Duration) (net.Conn, error) {
	// A broker that did not answer earlier in this command is not waited
	// for again while its background probe keeps failing (netwatch).
	var d net.Dialer
	nc, err := netwatch.DialContext(ctx, &d, address, budget)
	if err != nil {
		e := &Error{Op: OpDial, Err: err}
		var dead *netwatch.DeadError
		switch {
		case errors.As(err, &dead): // says since when, and that it is probed
			e.timeout = dead.Timeout()
		case isTimeout(err) || ctx.Err() != nil:
			e.timeout = true
			e.Err = fmt.Errorf("no TCP connection within %s: %w", budget, err)
		}
		return nil, e
	}
	return nc, nil
}

// handshake runs the STOMP handshake on nc. It returns the connection and
// the function that stops ctx's cancellation from closing the socket.
func handshake(ctx context.Context, cfg *config, obs *BrokerObservation, nc net.Conn, deadline time.Time, budget time.Duration) (*stomp.Conn, func() bool, error) {
	pw := cfg.creds.Password
	// The socket deadline bounds the CONNECT write and the CONNECTED
	// read; ctx cancellation closes the socket.
	_ = nc.SetDeadline(deadline)
	stopAfter := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	hb := max(time.Until(deadline), time.Second)
	copts := []func(*stomp.Conn) error{
		stomp.ConnOpt.Host(cfg.host),
		stomp.ConnOpt.AcceptVersion(stomp.V12, stomp.V11),
		stomp.ConnOpt.HeartBeat(hb, hb),
		stomp.ConnOpt.HeartBeatError(time.Second),
		stomp.ConnOpt.MsgSendTimeout(hb),
		stomp.ConnOpt.DisconnectReceiptTimeout(disconnectReceipt),
		stomp.ConnOpt.UnsubscribeReceiptTimeout(disconnectReceipt),
		stomp.ConnOpt.Logger(cfg.logger),
	}
	if !cfg.creds.IsZero() {
		copts = append(copts, stomp.ConnOpt.Login(cfg.creds.Username, pw))
	}
	conn, err := stomp.ConnectWithContext(ctx, nc, copts...)
	if err != nil {
		_ = nc.Close()
		stopAfter()
		cerr := connectError(ctx, err, pw, budget)
		if closedDuringHandshake(err) && ctx.Err() == nil {
			// The broker may have answered ERROR (a refused login) and
			// closed at once, and the frame was lost with the socket
			// (it happened with anonymous logins): ask once more and
			// read what it says before it closes.
			if msg := rawConnectError(ctx, obs.Address, cfg, pw, deadline); msg != "" {
				return nil, nil, connectError(ctx, stomp.Error{Message: msg, Frame: &frame.Frame{Command: frame.ERROR}}, pw, budget)
			}
		}
		return nil, nil, cerr
	}
	return conn, stopAfter, nil
}

// advisoryItem is one advisory message and the index of its queue in
// obs.Queues (-1 for the connection topic).
type advisoryItem struct {
	msg   *stomp.Message
	queue int
}

// subscribeAdvisories subscribes to one advisory topic per watched queue,
// plus the connection topic, merging their messages into merged until
// done is closed.
func subscribeAdvisories(conn *stomp.Conn, obs *BrokerObservation, merged chan<- advisoryItem, done <-chan struct{}, pw string) error {
	subscribe := func(dest string, queue int) error {
		sub, err := conn.Subscribe(dest, stomp.AckAuto,
			stomp.SubscribeOpt.Header("transformation", "jms-advisory-json"))
		if err != nil {
			return &Error{Op: OpSubscribe, Err: textError{fmt.Sprintf("%s: %s", dest, scrub(err.Error(), pw))}}
		}
		// go-stomp stops reading the socket when one subscription's
		// channel is not drained, so every channel gets a goroutine that
		// keeps draining until the library closes it.
		go func() {
			for m := range sub.C {
				select {
				case merged <- advisoryItem{m, queue}:
				case <-done:
				}
			}
		}()
		return nil
	}
	for i := range obs.Queues {
		if err := subscribe(ConsumerAdvisoryTopic(obs.Queues[i].Name), i); err != nil {
			return err
		}
	}
	if err := subscribe(ConnectionAdvisoryTopic, -1); err != nil {
		return err
	}
	return nil
}

// readAdvisories reads until quiet, bounded by ctx.
func readAdvisories(ctx context.Context, cfg *config, obs *BrokerObservation, merged <-chan advisoryItem, budget time.Duration) error {
	pw := cfg.creds.Password
	// The broker replays every connection, this one included, to a new
	// Connection advisory subscriber: until this connection's own
	// ConnectionInfo has come, the replay has not started (the broker's
	// first JSON advisory pays for XStream's start-up, which can take
	// seconds on a busy host), so the quiet period only counts from then
	// on.
	st := newState(obs)
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			st.finish()
			if errors.Is(ctx.Err(), context.Canceled) {
				return &Error{Op: OpRead, Err: ctx.Err()}
			}
			if !st.sawSelf {
				return &Error{Op: OpRead, timeout: true, Err: textError{fmt.Sprintf(
					"no advisory replay within %s (not even this connection's own ConnectionInfo): advisorySupport may be off, or the broker cannot render JSON advisories (XStream and Jettison missing from its lib/)", budget)}}
			}
			return nil // deadline: keep what was read, Quiet stays false
		case <-quiet.C:
			obs.Quiet = true
			st.finish()
			return nil
		case it := <-merged:
			if it.msg.Err != nil {
				st.finish()
				return readError(it.msg.Err, pw)
			}
			st.apply(it.msg, it.queue)
			if st.sawSelf {
				quiet.Reset(cfg.quiet)
			}
		}
	}
}

func closedDuringHandshake(err error) bool {
	var se stomp.Error
	return !(errors.As(err, &se) && se.Frame != nil) && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET))
}

// rawConnectError sends one CONNECT frame, as go-stomp would, on a new
// connection and reads everything the broker sends until it closes: the
// message of its ERROR frame, or "" (no answer, another frame, no time).
func rawConnectError(ctx context.Context, addr string, cfg *config, pw string, deadline time.Time) string {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return ""
	}
	defer nc.Close()
	_ = nc.SetDeadline(deadline)
	var b strings.Builder
	b.WriteString("CONNECT\naccept-version:1.2,1.1\nhost:" + cfg.host + "\nheart-beat:0,0\n")
	if !cfg.creds.IsZero() {
		b.WriteString("login:" + cfg.creds.Username + "\npasscode:" + pw + "\n")
	}
	b.WriteString("\n\x00")
	if _, err := io.WriteString(nc, b.String()); err != nil {
		return ""
	}
	answer, _ := io.ReadAll(io.LimitReader(nc, 64<<10))
	text := string(answer)
	if !strings.HasPrefix(strings.TrimLeft(text, "\r\n"), "ERROR") {
		return ""
	}
	for _, line := range strings.Split(text, "\n") {
		if m, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "message:"); ok {
			return m
		}
	}
	return "ERROR frame without a message"
}

func connectError(ctx context.Context, err error, pw string, budget time.Duration) error {
	var se stomp.Error
	if errors.As(err, &se) && se.Frame != nil {
		msg := scrub(se.Message, pw)
		if authFailure(msg) {
			return &Error{Op: OpAuth, Err: textError{"the broker refused the login: " + msg}}
		}
		return &Error{Op: OpConnect, Err: textError{"the broker answered CONNECT with ERROR: " + msg}}
	}
	if isTimeout(err) || ctx.Err() != nil {
		return &Error{Op: OpConnect, timeout: true, Err: textError{fmt.Sprintf("no STOMP CONNECTED frame within %s (is this a STOMP port?)", budget)}}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Op: OpConnect, Err: textError{"the server closed the connection during the STOMP handshake (is this a STOMP port?)"}}
	}
	return &Error{Op: OpConnect, Err: textError{scrub(err.Error(), pw)}}
}

func readError(err error, pw string) error {
	msg := scrub(err.Error(), pw)
	var se *stomp.Error
	// go-stomp also reports its own failures ("connection closed", "read
	// timeout") as ERROR frames, with only a message header.
	if errors.As(err, &se) && se.Frame != nil && se.Frame.Command == "ERROR" && se.Frame.Header.Len() > 1 {
		if strings.Contains(strings.ToLower(msg), "not authorized") {
			return &Error{Op: OpAuth, Err: textError{"not allowed to read the advisory topics (grant read on ActiveMQ.Advisory.>): " + msg}}
		}
		return &Error{Op: OpSubscribe, Err: textError{"the broker sent ERROR: " + msg}}
	}
	return &Error{Op: OpRead, Err: textError{msg}}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
}

// state accumulates advisories into an observation.
type state struct {
	obs       *BrokerObservation
	consumers []map[string]*Consumer // per queue, by consumer id
	conns     map[string]*Connection
	// gone holds removed connections: connection ids are never reused, and
	// the connection topic's removal may be read before the consumer
	// topic's last ConsumerInfo of that connection.
	gone map[string]bool
	// sawSelf: this connection's own ConnectionInfo came (the replay began)
	sawSelf bool
}

func newState(obs *BrokerObservation) *state {
	s := &state{obs: obs, conns: map[string]*Connection{}, gone: map[string]bool{}}
	for range obs.Queues {
		s.consumers = append(s.consumers, map[string]*Consumer{})
	}
	return s
}

func (s *state) apply(m *stomp.Message, queue int) {
	o := s.obs
	o.Advisories++
	if m.Header != nil {
		if v := m.Header.Get("originBrokerName"); v != "" {
			o.BrokerName = v
		}
		if v := m.Header.Get("originBrokerId"); v != "" {
			o.BrokerID = v
		}
		if queue >= 0 {
			if n, err := strconv.Atoi(m.Header.Get("consumerCount")); err == nil {
				o.Queues[queue].ConsumerCount = n
			}
		}
	}
	a, err := DecodeAdvisory(m.Body)
	if err != nil {
		s.malformed(queue, err, m.Body)
		return
	}
	switch {
	case a.Consumer != nil:
		if queue < 0 {
			return // not expected on the connection topic
		}
		c := a.Consumer
		if s.gone[c.ConnectionID] {
			return
		}
		s.consumers[queue][c.ID()] = &Consumer{
			ID:             c.ID(),
			ConnectionID:   c.ConnectionID,
			ClientID:       c.ClientID,
			Priority:       c.Priority,
			Browser:        c.Browser,
			Selector:       c.Selector,
			Network:        c.Network(),
			RemoteBrokerID: c.RemoteBrokerID(),
			BrokerPath:     c.BrokerPath,
		}
	case a.Connection != nil:
		c := a.Connection
		if c.ConnectionID == o.Session {
			s.sawSelf = true
			return // ourselves
		}
		if s.gone[c.ConnectionID] {
			return // already closed
		}
		_, _, bridge := BridgeBrokers(c.ConnectionID)
		s.conns[c.ConnectionID] = &Connection{ID: c.ConnectionID, ClientID: c.ClientID, ClientIP: c.ClientIP, UserName: c.UserName, Bridge: bridge}
	case a.Remove != nil:
		r := a.Remove
		switch r.Class {
		case "ConsumerId":
			if queue >= 0 {
				delete(s.consumers[queue], r.ConsumerID())
			} else {
				for _, q := range s.consumers {
					delete(q, r.ConsumerID())
				}
			}
		case "ConnectionId":
			s.gone[r.ConnectionID] = true
			delete(s.conns, r.ConnectionID)
			for _, q := range s.consumers {
				for id, c := range q {
					if c.ConnectionID == r.ConnectionID {
						delete(q, id)
					}
				}
			}
		}
	}
}

func (s *state) malformed(queue int, err error, body []byte) {
	o := s.obs
	o.Malformed++
	if queue >= 0 {
		o.Queues[queue].Malformed++
	}
	if o.MalformedSample == "" {
		b := string(body)
		if len(b) > maxMalformedSampleLength {
			b = b[:maxMalformedSampleLength] + "…"
		}
		topic := ConnectionAdvisoryTopic
		if queue >= 0 {
			topic = ConsumerAdvisoryTopic(o.Queues[queue].Name)
		}
		o.MalformedSample = fmt.Sprintf("%s: %v: %q", topic, err, b)
	}
}

// finish resolves consumers against connections and sorts everything.
func (s *state) finish() {
	o := s.obs
	o.Connections = o.Connections[:0]
	for _, c := range s.conns {
		o.Connections = append(o.Connections, *c)
	}
	sort.Slice(o.Connections, func(i, j int) bool { return o.Connections[i].ID < o.Connections[j].ID })
	for i, q := range s.consumers {
		list := make([]Consumer, 0, len(q))
		for _, c := range q {
			if conn, ok := s.conns[c.ConnectionID]; ok {
				c.ConnectionKnown = true
				if conn.ClientID != "" {
					c.ClientID = conn.ClientID
				}
				c.ClientIP = conn.ClientIP
			}
			if c.Network {
				if _, remote, ok := BridgeBrokers(c.ConnectionID); ok {
					c.RemoteBroker = remote
				}
			}
			list = append(list, *c)
		}
		slices.SortFunc(list, func(a, b Consumer) int {
			if a.Priority != b.Priority {
				return b.Priority - a.Priority
			}
			return strings.Compare(a.ID, b.ID)
		})
		o.Queues[i].Consumers = list
	}
}

// discardLogger drops go-stomp's log lines (its default writes to stderr).
type discardLogger struct{}

func (discardLogger) Debugf(string, ...any)   {}
func (discardLogger) Infof(string, ...any)    {}
func (discardLogger) Warningf(string, ...any) {}
func (discardLogger) Errorf(string, ...any)   {}
func (discardLogger) Debug(string)            {}
func (discardLogger) Info(string)             {}
func (discardLogger) Warning(string)          {}
func (discardLogger) Error(string)            {}

// slogLogger adapts *slog.Logger to stomp.Logger. go-stomp's info lines
// (closed subscriptions on disconnect) are routine, so they go to debug.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Debugf(f string, v ...any)   { s.l.Debug(fmt.Sprintf(f, v...), "lib", "go-stomp") }
func (s slogLogger) Infof(f string, v ...any)    { s.l.Debug(fmt.Sprintf(f, v...), "lib", "go-stomp") }
func (s slogLogger) Warningf(f string, v ...any) { s.l.Warn(fmt.Sprintf(f, v...), "lib", "go-stomp") }
func (s slogLogger) Errorf(f string, v ...any)   { s.l.Error(fmt.Sprintf(f, v...), "lib", "go-stomp") }
func (s slogLogger) Debug(m string)              { s.l.Debug(m, "lib", "go-stomp") }
func (s slogLogger) Info(m string)               { s.l.Debug(m, "lib", "go-stomp") }
func (s slogLogger) Warning(m string)            { s.l.Warn(m, "lib", "go-stomp") }
func (s slogLogger) Error(m string)              { s.l.Error(m, "lib", "go-stomp") }
