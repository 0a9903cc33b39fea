package activemq

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// ClientOptions describe a STOMP client of a test broker, as a site's
// application would connect.
type ClientOptions struct {
	// ClientID is sent as the CONNECT client-id header ("" lets the broker
	// use the connection id).
	ClientID string
	// Host is the CONNECT host header; the broker reports it as the
	// connection's clientIp. Default "testenv".
	Host string
	// Login and Passcode for a broker with authentication.
	Login, Passcode string
}

// Consumer is a STOMP consumer of one queue. It acknowledges and counts
// every message it gets.
type Consumer struct {
	Queue    string
	Priority int

	conn     *stomp.Conn
	sub      *stomp.Subscription
	received atomic.Int64
	done     chan struct{}
	once     sync.Once
}

// Connect opens a STOMP connection (5s deadline) as o describes. It is
// closed in t.Cleanup.
func (b *Broker) Connect(t testing.TB, o ClientOptions) *stomp.Conn {
	t.Helper()
	c, err := b.connect(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.MustDisconnect() })
	return c
}

func (b *Broker) connect(o ClientOptions) (*stomp.Conn, error) {
	if o.Host == "" {
		o.Host = "testenv"
	}
	nc, err := net.DialTimeout("tcp", b.STOMPAddr(), 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("broker %s: %w", b.Name, err)
	}
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	opts := []func(*stomp.Conn) error{
		stomp.ConnOpt.Host(o.Host),
		stomp.ConnOpt.HeartBeat(0, 0),
		stomp.ConnOpt.Logger(quietLogger{}),
		stomp.ConnOpt.DisconnectReceiptTimeout(time.Second),
	}
	if o.ClientID != "" {
		opts = append(opts, stomp.ConnOpt.Header("client-id", o.ClientID))
	}
	if o.Login != "" {
		opts = append(opts, stomp.ConnOpt.Login(o.Login, o.Passcode))
	}
	c, err := stomp.Connect(nc, opts...)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("broker %s: STOMP connect: %w", b.Name, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// Subscribe connects a consumer of queue with the given consumer priority
// (SUBSCRIBE header activemq.priority) and returns once the broker has it.
// Close it to make it go away; it is closed in t.Cleanup anyway.
func (b *Broker) Subscribe(t testing.TB, queue string, priority int, o ClientOptions) *Consumer {
	t.Helper()
	conn, err := b.connect(o)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := conn.Subscribe("/queue/"+queue, stomp.AckAuto,
		stomp.SubscribeOpt.Header("activemq.priority", strconv.Itoa(priority)))
	if err != nil {
		_ = conn.MustDisconnect()
		t.Fatal(err)
	}
	// SUBSCRIBE is not acknowledged; the broker handles a connection's
	// frames in order, so a receipted SEND after it returns once the
	// consumer exists. The sync topic has no subscriber: the message is
	// dropped.
	if err := conn.Send("/topic/testenv.sync", "text/plain", nil, stomp.SendOpt.Receipt); err != nil {
		_ = conn.MustDisconnect()
		t.Fatalf("subscribe to %s on %s: %v", queue, b.Name, err)
	}
	c := &Consumer{Queue: queue, Priority: priority, conn: conn, sub: sub, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for m := range sub.C {
			if m.Err == nil {
				c.received.Add(1)
			}
		}
	}()
	t.Cleanup(c.Close)
	return c
}

// Received is how many messages the consumer got.
func (c *Consumer) Received() int { return int(c.received.Load()) }

// Close disconnects the consumer (the broker removes it at once).
func (c *Consumer) Close() {
	c.once.Do(func() {
		_ = c.conn.Disconnect()
		<-c.done
	})
}

// Send sends n text messages to queue on this broker, each with a receipt,
// so they are on the broker when Send returns.
func (b *Broker) Send(t testing.TB, queue string, n int, o ClientOptions) {
	t.Helper()
	conn, err := b.connect(o)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Disconnect()
	for i := range n {
		if err := conn.Send("/queue/"+queue, "text/plain", []byte("msg "+strconv.Itoa(i)), stomp.SendOpt.Receipt); err != nil {
			t.Fatalf("send to %s on %s: %v", queue, b.Name, err)
		}
	}
}

// quietLogger keeps go-stomp from writing to stderr.
type quietLogger struct{}

func (quietLogger) Debugf(string, ...any)   {}
func (quietLogger) Infof(string, ...any)    {}
func (quietLogger) Warningf(string, ...any) {}
func (quietLogger) Errorf(string, ...any)   {}
func (quietLogger) Debug(string)            {}
func (quietLogger) Info(string)             {}
func (quietLogger) Warning(string)          {}
func (quietLogger) Error(string)            {}
