// Package bench holds benchmarks that need real servers: `sitectl status`
// over N hosts (one sshd each) against the sequential `ssh host 'status'`
// loop the shell scripts use. Run: bash scripts/bench-status.sh
package bench

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/sitectl/sitectl/checks/services"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/internal/testenv/sshd"
	"github.com/sitectl/sitectl/internal/testenv/standin"
	"github.com/sitectl/sitectl/inventory"
)

const servicesPerHost = 5

type fleet struct {
	inv     *inventory.Inventory
	servers []*sshd.Server
}

func newFleet(b *testing.B, n int) *fleet {
	b.Helper()
	svcs := standin.New(b)
	servers := sshd.StartN(b, n)
	var y strings.Builder
	fmt.Fprintf(&y, "deployment: bench\ndefaults:\n  command_timeout: 10s\nsites:\n")
	for si, site := range []string{"A", "B"} {
		role := map[int]string{0: "primary", 1: "secondary"}[si]
		fmt.Fprintf(&y, "  - name: %s\n    role: %s\n    hosts:\n", site, role)
		for i := si; i < n; i += 2 {
			s := servers[i]
			fmt.Fprintf(&y, "      - {name: h%d, address: 127.0.0.1, ssh: {port: %d, user: %s, key: %s, known_hosts: %s}}\n", i, s.Port, s.User, s.KeyFile, s.KnownHostsFile)
		}
		fmt.Fprintf(&y, "    services:\n")
		for i := si; i < n; i += 2 {
			for j := 0; j < servicesPerHost; j++ {
				name := fmt.Sprintf("h%d-s%d", i, j)
				if j%2 == 0 && si == 0 {
					svcs.Start(name)
				}
				fmt.Fprintf(&y, "      - {name: %s, kind: custom, host: h%d, start: %q, stop: %q, status: %q}\n", name, i, svcs.Cmd("start", name), svcs.Cmd("stop", name), svcs.Cmd("status", name))
			}
		}
	}
	inv, err := inventory.Parse("bench.yaml", []byte(y.String()))
	if err != nil {
		b.Fatal(err)
	}
	return &fleet{inv: inv, servers: servers}
}

// sitectlStatus is what `sitectl status` does: a fresh pool (cold SSH
// connections, as a new process would have), every host in parallel, one
// round trip per host.
func (f *fleet) sitectlStatus(b *testing.B) {
	pool := remote.NewPool(remote.NewDialer(remote.Options{}), cmdutil.Targets(f.inv))
	defer pool.Close()
	obs := &services.Observer{Inventory: f.inv, Runner: pool, NoProbes: true}
	for _, s := range obs.Sites(context.Background()) {
		for _, h := range s.Hosts {
			if !h.Reachable {
				b.Fatalf("%s unreachable: %s", h.Host, h.Error)
			}
		}
	}
}

// sshLoop is the shell-script way: one `ssh host 'status cmd'` per service,
// one after the other.
func (f *fleet) sshLoop(b *testing.B) {
	for _, s := range f.inv.Sites {
		for _, svc := range s.Services {
			h := f.inv.Host(svc.OnHosts()[0])
			ssh := f.inv.SSHFor(h)
			cmd := exec.Command("ssh", "-p", strconv.Itoa(ssh.Port), "-i", ssh.Key, "-o", "UserKnownHostsFile="+ssh.KnownHosts,
				"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", ssh.User+"@127.0.0.1", svc.Status)
			if err := cmd.Run(); err != nil {
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 255 {
					b.Fatalf("ssh %s: %v", h.Name, err)
				}
			}
		}
	}
}

// oneHost is the status of a single host (cold connection, its services'
// status commands): the round trip of one host, which a parallel status of
// the fleet approaches when every host has its own CPU.
func (f *fleet) oneHost(b *testing.B) {
	s := f.inv.Sites[0]
	h := s.Hosts[0]
	pool := remote.NewPool(remote.NewDialer(remote.Options{}), cmdutil.Targets(f.inv))
	defer pool.Close()
	obs := &services.Observer{Inventory: f.inv, Runner: pool, NoProbes: true}
	var svcs []*inventory.Service
	for _, svc := range s.Services {
		if svc.OnHosts()[0] == h.Name {
			svcs = append(svcs, svc)
		}
	}
	if hs := obs.Host(context.Background(), s.Name, h.Name, svcs); !hs.Reachable {
		b.Fatal(hs.Error)
	}
}

// oneRoundTrip is a single cold connection and command to one host: the
// floor for any status of the fleet.
func (f *fleet) oneRoundTrip(b *testing.B) {
	h := f.inv.Sites[0].Hosts[0]
	pool := remote.NewPool(remote.NewDialer(remote.Options{}), cmdutil.Targets(f.inv))
	defer pool.Close()
	if _, err := pool.Run(context.Background(), h.Name, "true"); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkStatus(b *testing.B) {
	for _, n := range []int{10, 40} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			f := newFleet(b, n)
			b.Run("sitectl", func(b *testing.B) {
				for b.Loop() {
					f.sitectlStatus(b)
				}
			})
			b.Run("sitectl-warm", func(b *testing.B) {
				// connections already open: what a status board refresh costs
				pool := remote.NewPool(remote.NewDialer(remote.Options{}), cmdutil.Targets(f.inv))
				defer pool.Close()
				obs := &services.Observer{Inventory: f.inv, Runner: pool, NoProbes: true}
				obs.Sites(context.Background())
				for b.Loop() {
					obs.Sites(context.Background())
				}
			})
			b.Run("ssh-loop", func(b *testing.B) {
				for b.Loop() {
					f.sshLoop(b)
				}
			})
			b.Run("one-host", func(b *testing.B) {
				for b.Loop() {
					f.oneHost(b)
				}
			})
			b.Run("one-round-trip", func(b *testing.B) {
				for b.Loop() {
					f.oneRoundTrip(b)
				}
			})
		})
	}
}
