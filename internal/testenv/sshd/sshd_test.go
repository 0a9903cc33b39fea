package sshd_test

import (
	"bufio"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/sitectl/sitectl/internal/testenv/sshd"
)

func TestStartN(t *testing.T) {
	start := time.Now()
	servers := sshd.StartN(t, 40)
	t.Logf("40 sshd ready in %v", time.Since(start))
	ports := map[int]bool{}
	for _, s := range servers {
		if ports[s.Port] {
			t.Errorf("port %d used twice", s.Port)
		}
		ports[s.Port] = true
		kh, err := os.ReadFile(s.KnownHostsFile)
		if err != nil {
			t.Fatal(err)
		}
		want := "[127.0.0.1]:" + strconv.Itoa(s.Port) + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostPublicKey)))
		if strings.TrimSpace(string(kh)) != want {
			t.Errorf("known_hosts = %q, want %q", kh, want)
		}
		tg := s.Target("h")
		if tg.Name != "h" || tg.Port != s.Port || tg.KeyFile != s.KeyFile || tg.KnownHosts != s.KnownHostsFile || tg.User != s.User {
			t.Errorf("Target = %+v", tg)
		}
	}
}

func TestStop(t *testing.T) {
	s := sshd.Start(t)
	c, err := net.Dial("tcp", s.HostPort())
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if err != nil || !strings.HasPrefix(line, "SSH-2.0-") {
		t.Fatalf("banner %q, %v", line, err)
	}
	s.Stop()
	s.Stop()
	if c, err := net.DialTimeout("tcp", s.HostPort(), time.Second); err == nil {
		c.Close()
		t.Errorf("still listening after Stop")
	}
}
