package activemq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/sitectl/sitectl/adapters/netwatch"
	"github.com/sitectl/sitectl/internal/testenv/closedport"
	"github.com/sitectl/sitectl/inventory"
)

// fakeBroker is a minimal STOMP server that answers CONNECT and replays
// scripted advisory bodies to each subscription, as ActiveMQ replays
// current consumers and connections to a new advisory subscriber.
type fakeBroker struct {
	ln       net.Listener
	login    string // when set, CONNECT must carry login/passcode
	passcode string
	replay   map[string][]string // destination → bodies
	// errorOn: destination → message of an ERROR frame sent on SUBSCRIBE
	errorOn map[string]string
	// noSelf: do not replay the subscriber's own connection (a broker
	// with advisories off, or unable to render them)
	noSelf bool
	// replayDelay delays the first replayed message
	replayDelay time.Duration

	mu       sync.Mutex
	hosts    []string // CONNECT host headers seen
	connects int
}

func startFake(t *testing.T, f *fakeBroker) *inventory.Broker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.ln = ln
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return &inventory.Broker{Name: "fake", Site: "A", STOMP: ln.Addr().String()}
}

func (f *fakeBroker) serve(c net.Conn) {
	defer c.Close()
	r, w := frame.NewReader(c), frame.NewWriter(c)
	fr, err := r.Read()
	if err != nil || fr == nil {
		return
	}
	f.mu.Lock()
	f.connects++
	f.hosts = append(f.hosts, fr.Header.Get("host"))
	f.mu.Unlock()
	if f.login != "" && (fr.Header.Get("login") != f.login || fr.Header.Get("passcode") != f.passcode) {
		_ = w.Write(frame.New(frame.ERROR, frame.Message, "User name ["+fr.Header.Get("login")+"] or password is invalid.", "content-type", "text/plain"))
		return
	}
	_ = w.Write(frame.New(frame.CONNECTED, frame.Version, "1.2", frame.Session, "ID:observer-1", frame.Server, "FakeMQ/1.0", frame.HeartBeat, "0,0"))
	seq := 0
	delayed := false
	for {
		fr, err := r.Read()
		if err != nil {
			return
		}
		if fr == nil {
			continue // heart-beat
		}
		switch fr.Command {
		case frame.SUBSCRIBE:
			dest, id := fr.Header.Get(frame.Destination), fr.Header.Get(frame.Id)
			if msg, ok := f.errorOn[dest]; ok {
				_ = w.Write(frame.New(frame.ERROR, frame.Message, msg, "content-type", "text/plain"))
				return
			}
			bodies := f.replay[dest]
			if dest == ConnectionAdvisoryTopic && !f.noSelf {
				// like ActiveMQ, replay the subscriber's own connection
				bodies = append([]string{`{"ConnectionInfo":{"connectionId":{"value":"ID:observer-1"},"clientId":"ID:observer-1","clientIp":"sitectl"}}`}, bodies...)
			}
			if !delayed && f.replayDelay > 0 {
				delayed = true
				time.Sleep(f.replayDelay)
			}
			for _, body := range bodies {
				seq++
				m := frame.New(frame.MESSAGE, frame.Destination, dest, frame.Subscription, id,
					frame.MessageId, fmt.Sprint("m", seq), "type", "Advisory",
					"originBrokerName", "fakeA", "originBrokerId", "ID:fakeA-0:1", "consumerCount", "2")
				m.Body = []byte(body)
				_ = w.Write(m)
			}
		case frame.DISCONNECT:
			if rc := fr.Header.Get(frame.Receipt); rc != "" {
				_ = w.Write(frame.New(frame.RECEIPT, frame.ReceiptId, rc))
			}
			return
		}
	}
}

func TestObserveFakeBroker(t *testing.T) {
	conn := func(id, clientID, host string) string {
		return fmt.Sprintf(`{"ConnectionInfo":{"connectionId":{"value":%q},"clientId":%q,"clientIp":%q,"password":""}}`, id, clientID, host)
	}
	cons := func(connID string, value, prio int) string {
		return fmt.Sprintf(`{"ConsumerInfo":{"consumerId":{"connectionId":%q,"sessionId":-1,"value":%d},"destination":{"@class":"ActiveMQQueue","string":"CC.Q"},"priority":%d}}`, connID, value, prio)
	}
	f := &fakeBroker{replay: map[string][]string{
		ConnectionAdvisoryTopic: {
			conn("ID:a-1", "siteA-c1", "siteA-app1"),
			conn("ID:b-1", "siteB-c1", "siteB-app1"),
			conn("ID:gone-1", "gone", "gone-host"),
			`{"RemoveInfo":{"objectId":{"@class":"ConnectionId","value":"ID:gone-1"}}}`,
			recorded["bridge-connection"],
		},
		ConsumerAdvisoryTopic("CC.Q"): {
			cons("ID:a-1", 1, 10),
			cons("ID:b-1", 1, 5),
			cons("ID:b-1", 2, 5),
			`{"RemoveInfo":{"objectId":{"@class":"ConsumerId","connectionId":"ID:b-1","sessionId":-1,"value":2}}}`,
			cons("ID:gone-1", 1, 99), // its connection goes away: dropped too
			recorded["bridge-consumer"],
			`{"ConsumerInfo":{"consumerId":{"connectionId":"ID:x","value":1},"priority":"high"}}`, // malformed
			`{"ProducerInfo":{}}`, // ignored
		},
		ConsumerAdvisoryTopic("OTHER.Q"): {`not json at all`},
	}}
	b := startFake(t, f)
	start := time.Now()
	o := Observe(context.Background(), b, []string{"CC.Q", "OTHER.Q", "EMPTY.Q"}, 5*time.Minute, WithQuiet(200*time.Millisecond))
	if o.Err != nil {
		t.Fatal(o.Err)
	}
	// ended by the quiet period, not the 5-minute timeout (a guard, not a timing)
	if el := time.Since(start); el > time.Minute {
		t.Errorf("observation took %s, want about the quiet period", el)
	}
	if !o.Quiet || o.BrokerName != "fakeA" || o.BrokerID != "ID:fakeA-0:1" || o.Server != "FakeMQ/1.0" || o.Session != "ID:observer-1" {
		t.Errorf("observation header fields: %+v", o)
	}
	if f.hosts[0] != DefaultHost {
		t.Errorf("host header %q, want %q", f.hosts[0], DefaultHost)
	}
	q := o.Queue("CC.Q")
	var got []string
	for _, c := range q.Consumers {
		got = append(got, fmt.Sprintf("%s/%s/%d/%v/%v", c.ClientID, c.ClientIP, c.Priority, c.Network, c.ConnectionKnown))
	}
	want := []string{"siteA-c1/siteA-app1/10/false/true", "siteB-c1/siteB-app1/5/false/true", "amqA-to-amqB_amqB_inbound_amqA/vm://amqA#0/5/true/true"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("consumers:\n got %v\nwant %v", got, want)
	}
	bridge := q.Consumers[2]
	if bridge.RemoteBroker != "amqB" || bridge.RemoteBrokerID != "ID:vm-39027-1795331367132-0:1" {
		t.Errorf("bridge consumer %+v", bridge)
	}
	if q.Malformed != 1 || q.ConsumerCount != 2 {
		t.Errorf("CC.Q malformed %d consumerCount %d", q.Malformed, q.ConsumerCount)
	}
	// the sample is the first malformed body read; topics interleave
	sampleOK := strings.Contains(o.MalformedSample, "ConsumerInfo.priority") && strings.Contains(o.MalformedSample, "CC.Q") ||
		strings.Contains(o.MalformedSample, "not JSON") && strings.Contains(o.MalformedSample, "OTHER.Q")
	if o.Malformed != 2 || !sampleOK {
		t.Errorf("malformed %d sample %q", o.Malformed, o.MalformedSample)
	}
	if oq := o.Queue("OTHER.Q"); oq.Malformed != 1 || len(oq.Consumers) != 0 {
		t.Errorf("OTHER.Q %+v", oq)
	}
	if eq := o.Queue("EMPTY.Q"); eq.ConsumerCount != -1 || len(eq.Consumers) != 0 {
		t.Errorf("EMPTY.Q %+v", eq)
	}
	var ids []string
	for _, c := range o.Connections {
		ids = append(ids, fmt.Sprintf("%s:%v", c.ID, c.Bridge))
	}
	if want := "ID:a-1:false ID:b-1:false amqA->amqB-43841-1795331367129-5:1:true"; strings.Join(ids, " ") != want {
		t.Errorf("connections %v, want %s", ids, want)
	}
}

func TestObserveAuthFake(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	f := &fakeBroker{login: "sitectl", passcode: secret}
	b := startFake(t, f)
	for _, c := range []Credentials{{Username: "sitectl", Password: "wrong-" + secret}, {}} {
		o := Observe(context.Background(), b, []string{"Q"}, 2*time.Second, WithCredentials(c))
		if !errors.Is(o.Err, ErrAuth) {
			t.Fatalf("%v: want ErrAuth, got %v", c, o.Err)
		}
		if strings.Contains(o.Err.Error(), secret) || strings.Contains(o.ErrText, secret) {
			t.Fatalf("error leaks the password: %v", o.Err)
		}
		if !strings.Contains(o.Err.Error(), "fake") || !strings.Contains(o.Err.Error(), b.STOMP) {
			t.Fatalf("error does not name the broker and address: %v", o.Err)
		}
	}
	o := Observe(context.Background(), b, []string{"Q"}, 2*time.Second, WithCredentials(Credentials{Username: "sitectl", Password: secret}), WithQuiet(100*time.Millisecond))
	if o.Err != nil {
		t.Fatal(o.Err)
	}
}

// A broker that replays nothing, not even the observer's own connection:
// an error, not an empty (and falsely reassuring) observation.
func TestObserveNoReplay(t *testing.T) {
	b := startFake(t, &fakeBroker{noSelf: true})
	start := time.Now()
	o := Observe(context.Background(), b, []string{"Q"}, 800*time.Millisecond, WithQuiet(100*time.Millisecond))
	if o.Err == nil || !errors.Is(o.Err, ErrTimeout) || !strings.Contains(o.ErrText, "advisorySupport") {
		t.Fatalf("want a no-replay error, got %v", o.Err)
	}
	if el := time.Since(start); el > 30*time.Second { // a guard against a hang, not a timing
		t.Fatalf("took %s", el)
	}
}

// The replay starting late (the broker's first JSON advisory initialises
// XStream) does not end the read early.
func TestObserveSlowReplay(t *testing.T) {
	f := &fakeBroker{replayDelay: 600 * time.Millisecond, replay: map[string][]string{
		ConsumerAdvisoryTopic("Q"): {`{"ConsumerInfo":{"consumerId":{"connectionId":"ID:a","value":1},"priority":3}}`},
	}}
	b := startFake(t, f)
	o := Observe(context.Background(), b, []string{"Q"}, 3*time.Second, WithQuiet(150*time.Millisecond))
	if o.Err != nil || len(o.Queue("Q").Consumers) != 1 || !o.Quiet {
		t.Fatalf("err %v consumers %+v", o.Err, o.Queue("Q").Consumers)
	}
}

func TestObserveSubscribeError(t *testing.T) {
	f := &fakeBroker{errorOn: map[string]string{ConsumerAdvisoryTopic("Q"): "User sitectl is not authorized to read from: topic://ActiveMQ.Advisory.Consumer.Queue.Q"}}
	b := startFake(t, f)
	o := Observe(context.Background(), b, []string{"Q"}, 2*time.Second)
	if !errors.Is(o.Err, ErrAuth) || !strings.Contains(o.Err.Error(), "ActiveMQ.Advisory") {
		t.Fatalf("want an auth error about the advisory topics, got %v", o.Err)
	}
}

// A listener that accepts and never speaks STOMP: the error must come
// within the timeout, say so, and name the broker.
func TestObserveSilentListenerTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	b := &inventory.Broker{Name: "mute", Site: "A", STOMP: ln.Addr().String()}
	const timeout = 700 * time.Millisecond
	start := time.Now()
	o := Observe(context.Background(), b, []string{"Q"}, timeout)
	el := time.Since(start)
	if !errors.Is(o.Err, ErrTimeout) || errors.Is(o.Err, ErrRefused) || IsDown(o.Err) {
		t.Fatalf("want a timeout, got %v", o.Err)
	}
	if el > timeout+300*time.Millisecond {
		t.Fatalf("took %s with a %s timeout", el, timeout)
	}
	if !strings.Contains(o.ErrText, "mute") || !strings.Contains(o.ErrText, b.STOMP) || !strings.Contains(o.ErrText, "STOMP") {
		t.Fatalf("error text %q", o.ErrText)
	}
}

// A listener that closes at once (not STOMP either).
func TestObserveClosingListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	b := &inventory.Broker{Name: "closer", STOMP: ln.Addr().String()}
	o := Observe(context.Background(), b, []string{"Q"}, time.Second)
	var e *Error
	if !errors.As(o.Err, &e) || e.Op != OpConnect {
		t.Fatalf("want a connect error, got %v", o.Err)
	}
}

func TestObserveRefused(t *testing.T) {
	addr := closedport.Addr(t)
	b := &inventory.Broker{Name: "gone", Site: "A", STOMP: addr}
	start := time.Now()
	o := Observe(context.Background(), b, []string{"Q"}, 5*time.Minute)
	if !errors.Is(o.Err, ErrRefused) || !IsDown(o.Err) || o.Up() {
		t.Fatalf("want refused, got %v", o.Err)
	}
	// refused at once, not at the 5-minute timeout (a guard, not a timing)
	if el := time.Since(start); el > time.Minute {
		t.Fatalf("refused took %s", el)
	}
	if !strings.Contains(o.ErrText, "gone") || !strings.Contains(o.ErrText, addr) {
		t.Fatalf("error text %q", o.ErrText)
	}
}

func TestObserveCanceled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	o := Observe(ctx, &inventory.Broker{Name: "x", STOMP: ln.Addr().String()}, nil, 2*time.Minute)
	if o.Err == nil || time.Since(start) > time.Minute { // the cancel ended it, not the 2-minute timeout
		t.Fatalf("cancel: err %v after %s", o.Err, time.Since(start))
	}
}

func TestObserveLoggerNeverStderr(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := &fakeBroker{replay: map[string][]string{}}
	b := startFake(t, f)
	// stderr is redirected to a pipe for the duration: nothing may reach it.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	o1 := Observe(context.Background(), b, []string{"Q"}, time.Second, WithQuiet(50*time.Millisecond))
	o2 := Observe(context.Background(), b, []string{"Q"}, time.Second, WithQuiet(50*time.Millisecond), WithLogger(l))
	time.Sleep(100 * time.Millisecond) // go-stomp logs from its goroutines after Disconnect
	os.Stderr = old
	w.Close()
	var got bytes.Buffer
	_, _ = got.ReadFrom(r)
	if o1.Err != nil || o2.Err != nil {
		t.Fatal(o1.Err, o2.Err)
	}
	if got.Len() > 0 {
		t.Fatalf("wrote to stderr: %q", got.String())
	}
}

func TestLoadCredentials(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := map[string]string{"AMQ_USER": "sitectl", "AMQ_PASS": "p:w#1"}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name    string
		c       *inventory.Credentials
		want    Credentials
		wantErr string
	}{
		{"nil is anonymous", nil, Credentials{}, ""},
		{"env", &inventory.Credentials{UsernameEnv: "AMQ_USER", PasswordEnv: "AMQ_PASS"}, Credentials{"sitectl", "p:w#1"}, ""},
		{"env unset", &inventory.Credentials{UsernameEnv: "AMQ_USER", PasswordEnv: "NOPE"}, Credentials{}, "NOPE"},
		{"file line", &inventory.Credentials{File: write("line", "# comment\n\n admin : top:secret \n")}, Credentials{"admin", "top:secret"}, ""},
		{"file yaml", &inventory.Credentials{File: write("yaml", "username: admin\npassword: \"y-secret\"\n")}, Credentials{"admin", "y-secret"}, ""},
		{"file bad", &inventory.Credentials{File: write("bad", "onlyapassword\n")}, Credentials{}, "username:password"},
		{"file yaml half", &inventory.Credentials{File: write("half", "password: hidden-one\n")}, Credentials{}, "both"},
		{"file missing", &inventory.Credentials{File: filepath.Join(dir, "missing")}, Credentials{}, "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadCredentials(tt.c, getenv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				for _, s := range []string{"onlyapassword", "hidden-one", "p:w#1"} {
					if strings.Contains(err.Error(), s) {
						t.Fatalf("error leaks a secret: %v", err)
					}
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	c := Credentials{Username: "u", Password: "hunter2"}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c)} {
		if strings.Contains(s, "hunter2") {
			t.Fatalf("formatting leaks the password: %s", s)
		}
	}
}

func TestObserveAllCredentialError(t *testing.T) {
	a := &inventory.ActiveMQ{
		Credentials: &inventory.Credentials{UsernameEnv: "U", PasswordEnv: "P"},
		Brokers:     []*inventory.Broker{{Name: "b1", Site: "A", STOMP: "127.0.0.1:1"}},
		Queues:      []string{"Q"},
	}
	obs := ObserveAll(context.Background(), a, func(string) string { return "" })
	if len(obs) != 1 || obs[0].Err == nil || !strings.Contains(obs[0].ErrText, "credentials") || !strings.Contains(obs[0].ErrText, "b1") {
		t.Fatalf("%+v", obs[0])
	}
}

// With a netwatch in the context, a broker that refused is reported down at
// once by the next observation, still as refused, naming the broker.
func TestObserveRemembersDeadBroker(t *testing.T) {
	addr := closedport.Addr(t)
	w := netwatch.New()
	defer w.Close()
	ctx := netwatch.NewContext(t.Context(), w)
	b := &inventory.Broker{Name: "gone", Site: "A", STOMP: addr}
	if o := Observe(ctx, b, []string{"Q"}, 3*time.Second); !errors.Is(o.Err, ErrRefused) {
		t.Fatalf("first observation: %v", o.Err)
	}
	o := Observe(ctx, b, []string{"Q"}, 3*time.Second)
	if !errors.Is(o.Err, ErrRefused) || !IsDown(o.Err) || o.Up() {
		t.Fatalf("second observation: want refused and down, got %v", o.Err)
	}
	if !strings.Contains(o.ErrText, "gone") || !strings.Contains(o.ErrText, "probed again in the background") {
		t.Errorf("error text %q", o.ErrText)
	}
}

// A broker that closes the connection right after a refused login can
// lose its ERROR frame with the socket (seen with anonymous logins against
// ActiveMQ): the observation asks once more and reads the answer until
// the close, so the refusal is an auth error, not "is this a STOMP port?".
// One that closes without a word both times stays a handshake failure.
func TestRefusedLoginWhoseErrorFrameIsLost(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answer   string // to the second CONNECT
		wantAuth bool
	}{
		{"ERROR on the second try", "ERROR\nmessage:User name [null] or password is invalid.\n\n\x00", true},
		{"silent both times", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for i := 0; ; i++ {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					buf := make([]byte, 4096)
					_, _ = c.Read(buf) // the CONNECT frame
					if i > 0 && tc.answer != "" {
						_, _ = c.Write([]byte(tc.answer))
					}
					c.Close()
				}
			}()
			b := &inventory.Broker{Name: "lossy", Site: "A", STOMP: ln.Addr().String()}
			o := Observe(t.Context(), b, []string{"Q"}, 5*time.Second)
			if got := errors.Is(o.Err, ErrAuth); got != tc.wantAuth {
				t.Fatalf("ErrAuth %v, want %v: %v", got, tc.wantAuth, o.Err)
			}
			if IsDown(o.Err) {
				t.Errorf("a broker that answers is not down: %v", o.Err)
			}
			t.Logf("%v", o.Err)
		})
	}
}
