package services

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/checks/layer"
	"github.com/sitectl/sitectl/internal/testenv/closedport"
	"github.com/sitectl/sitectl/internal/testenv/sshd"
)

// Real connection failures, classified: only the network's own failures
// (a closed port) are UNREACHABLE; a host that accepts the connection but
// whose SSH server stays silent, or answers and then is too slow to finish
// the handshake, is NO ANSWER (slow), never evidence that its site is down.
func TestReachOfRealDialFailures(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t)
	listen := func(greet string) int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var held sync.WaitGroup
		t.Cleanup(func() { ln.Close(); held.Wait() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				held.Go(func() {
					_, _ = io.WriteString(c, greet)
					_, _ = io.Copy(io.Discard, c)
					c.Close()
				})
			}
		}()
		return ln.Addr().(*net.TCPAddr).Port
	}
	closedPort := closedport.Port(t)

	for _, tc := range []struct {
		name  string
		port  int
		want  layer.Saw
		label string
	}{
		{"closed port", closedPort, layer.SawDown, "UNREACHABLE"},
		{"silent listener", listen(""), layer.SawNoAnswer, "NO ANSWER"},
		{"slow after its version line", listen("SSH-2.0-OpenSSH_9.2p1 busy\r\n"), layer.SawNoAnswer, "NO ANSWER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := srv.Target("a-app")
			target.Port = tc.port
			target.ConnectTimeout = 500 * time.Millisecond
			target.HandshakeTimeout = 500 * time.Millisecond
			r, err := remote.SSHDialer{}.Dial(t.Context(), target)
			if err == nil {
				r.Close()
				t.Fatal("Dial succeeded")
			}
			if got := Reach(err); got != tc.want || got.HostLabel() != tc.label {
				t.Errorf("Reach(%v) = %s (%s)\nexpected: %s (%s)", err, got, got.HostLabel(), tc.want, tc.label)
			}
		})
	}
}
