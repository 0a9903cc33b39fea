package activemq

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestConfig(t *testing.T) {
	b := &Broker{Name: "amqA", Bind: "127.0.0.1", STOMPPort: 1613, OpenWirePort: 1616, Dir: "/tmp/x"}
	for _, tt := range []struct {
		decrease string
		want     string
		absent   string
	}{
		{"", `duplex="true"/>`, "decreaseNetworkConsumerPriority"},
		{"true", `decreaseNetworkConsumerPriority="true"`, ""},
		{"false", `decreaseNetworkConsumerPriority="false"`, ""},
	} {
		b.opts = Options{
			Users: []User{{Name: "u", Password: `p"<&`}},
			NetworkConnectors: []NetworkConnector{{Name: "amqA-to-amqB", URI: "static:(tcp://127.0.0.1:2616)?a=1&b=2", Duplex: true,
				DecreaseNetworkConsumerPriority: tt.decrease}},
		}
		x := b.config()
		for _, s := range []string{
			tt.want,
			`brokerName="amqA"`, `useJmx="false"`, `persistent="false"`,
			`<transportConnector name="stomp" uri="stomp://127.0.0.1:1613"/>`,
			`<transportConnector name="openwire" uri="tcp://127.0.0.1:1616"/>`,
			`uri="static:(tcp://127.0.0.1:2616)?a=1&amp;b=2"`,
			`<authenticationUser username="u" password="p&#34;&lt;&amp;" groups="admins"/>`,
		} {
			if !strings.Contains(x, s) {
				t.Errorf("decrease %q: config lacks %s:\n%s", tt.decrease, s, x)
			}
		}
		if tt.absent != "" && strings.Contains(x, tt.absent) {
			t.Errorf("decrease %q: config holds %s", tt.decrease, tt.absent)
		}
	}
}

// One broker: start, answer, stop (port closed), restart on the same ports.
func TestStartStopRestart(t *testing.T) {
	b := Start(t, Options{})
	if !b.Running() {
		t.Fatal("not running")
	}
	b.Stop()
	if b.Running() {
		t.Fatal("still running after Stop")
	}
	if c, err := net.DialTimeout("tcp", b.STOMPAddr(), time.Second); err == nil {
		c.Close()
		t.Fatal("STOMP port still open after Stop")
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	if cmd, err := stompHello(b.STOMPAddr()); err != nil || cmd != "CONNECTED" {
		t.Fatalf("after restart: %q %v", cmd, err)
	}
}

// Prepare lays a broker out for a caller that runs it itself (the lab).
func TestPrepare(t *testing.T) {
	Require(t)
	dir := t.TempDir()
	b, err := Prepare(dir, Options{Name: "amq-a", Bind: "10.213.0.11", STOMPPort: 61613, OpenWirePort: 61616, Persistent: true,
		Wrapper:           []string{"ip", "netns", "exec", "sl-a"},
		NetworkConnectors: []NetworkConnector{{Name: "a-to-b", URI: "static:(tcp://10.213.0.21:61616)", Duplex: true, DecreaseNetworkConsumerPriority: "false"}}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(b.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`persistent="true"`, "<kahaDB", `uri="stomp://10.213.0.11:61613"`, `decreaseNetworkConsumerPriority="false"`} {
		if !strings.Contains(string(data), s) {
			t.Errorf("config lacks %s", s)
		}
	}
	argv := strings.Join(b.Argv, " ")
	if !strings.HasPrefix(argv, "ip netns exec sl-a ") || !strings.Contains(argv, "-Xmx256m") || !strings.Contains(argv, "xbean:file:"+b.ConfigFile) {
		t.Errorf("argv %s", argv)
	}
	if b.STOMPAddr() != "10.213.0.11:61613" {
		t.Errorf("STOMPAddr %s", b.STOMPAddr())
	}
}
