package lab

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Status prints what runs: the network (links, broker link), every process
// of the lab and what it answers, HAProxy's servers and the chat sessions.
func (e *Env) Status(ctx context.Context, w io.Writer) error {
	if !IsUp() && !fileExists(e.statePath()) {
		fmt.Fprintln(w, "lab: down (no namespace, no state in "+e.Dir+")")
		return nil
	}
	fmt.Fprintf(w, "lab: %s (MongoDB: %s)\n", e.Dir, e.mongoDescription())
	if o := Owner(); o != "" && o != e.Dir {
		fmt.Fprintf(w, "  NOTE: the namespaces belong to the lab of %s\n", o)
	}
	if fileExists(e.InventoryFile()) {
		fmt.Fprintf(w, "inventory: %s\n", e.InventoryFile())
	}
	fmt.Fprintf(w, "network: bridge %s %s%s (root namespace: sitectl runs here)\n", Bridge, BridgeIP, prefix)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, n := range Nodes {
		state := "missing"
		switch {
		case !nsExists(n.NS):
		case LinkUp(n):
			state = "link up"
		default:
			state = "CUT OFF (fail " + n.Key + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", n.Key, n.NS, n.IP, state)
	}
	tw.Flush()
	if BrokerLinkCut() {
		fmt.Fprintln(w, "  broker link amq-a <-> amq-b: CUT (nftables in sl-a and sl-b)")
	} else {
		fmt.Fprintln(w, "  broker link amq-a <-> amq-b: open")
	}
	for _, k := range []string{SiteA, SiteB, Witness} {
		if MongoLinkCut(k) {
			fmt.Fprintf(w, "  MongoDB link of node %s to the other members: CUT (nftables in %s; heal-mongo-links)\n", k, NodeOf(k).NS)
		}
	}

	// probe everything in parallel, print in a fixed order
	type row struct{ node, name, pid, state, detail string }
	var rows []row
	var mu sync.Mutex
	var wg sync.WaitGroup
	add := func(i int, r row) {
		mu.Lock()
		rows[i] = r
		mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	type job func() row
	var jobs []job
	pidStr := func(pid int, ok bool) string {
		if !ok {
			return "-"
		}
		return fmt.Sprint(pid)
	}
	for _, site := range []string{SiteA, SiteB} {
		jobs = append(jobs, func() row {
			cfg := filepath.Join(e.nodeDir(site), "sshd_config")
			pid, ok := pidAlive(e.sshdPidFile(site), cfg)
			r := row{NodeOf(site).NS, "sshd", pidStr(pid, ok), "stopped", hp(NodeOf(site).IP, SSHPort)}
			if ok {
				r.state = "running"
				if !LinkUp(*NodeOf(site)) {
					r.state = "running, cut off"
				} else if err := sshBanner(hp(NodeOf(site).IP, SSHPort)); err != nil {
					r.state = "unreachable"
				}
			}
			return r
		})
		jobs = append(jobs, func() row {
			pid, ok := pidAlive(e.brokerPidFile(site), e.brokerConfig(site))
			r := row{NodeOf(site).NS, siteOf(site).Broker, pidStr(pid, ok), "stopped", "stomp " + hp(NodeOf(site).IP, StompPort) + ", openwire :" + fmt.Sprint(OpenWirePort)}
			if ok {
				r.state = "running"
				if !LinkUp(*NodeOf(site)) {
					r.state = "running, cut off"
				} else if err := stompHello(hp(NodeOf(site).IP, StompPort)); err != nil {
					r.state = "not answering"
				}
			}
			return r
		})
		for _, s := range Services {
			jobs = append(jobs, func() row {
				pid, ok := e.servicePid(site, s.Name)
				r := row{NodeOf(site).NS, s.Name, pidStr(pid, ok), "stopped", hp(NodeOf(site).IP, s.Port)}
				if !ok {
					return r
				}
				r.state = "running"
				if !LinkUp(*NodeOf(site)) {
					r.state = "running, cut off"
					return r
				}
				var h struct {
					Status string `json:"status"`
				}
				if err := e.getJSON(ctx, ServiceURL(site, s.Name)+"/health", &h); err != nil {
					r.state = "running, health: " + shortErr(err)
				}
				if s.Name == "chat" {
					if n, err := e.Sessions(ctx, site); err == nil {
						r.detail += fmt.Sprintf(", %d sessions", n)
					}
					if c, err := e.Connector(ctx, site); err == nil {
						if c.Connected {
							r.detail += fmt.Sprintf(", connector on %s as %s prio %d (%d consumed)", c.Broker, c.Host, c.Priority, c.Consumed)
						} else {
							r.detail += ", connector NOT subscribed: " + c.LastError
						}
					}
				}
				return r
			})
		}
	}
	if e.state.Mongo != MongoAbsent {
		for _, m := range mongoMembers() {
			jobs = append(jobs, func() row {
				pid, ok := pidAlive(e.mongoPidFile(m.Name), e.mongoMarker(m))
				r := row{NodeOf(m.Node).NS, m.Name, pidStr(pid, ok), "stopped", MongoAddr(m.Node)}
				if ok && !LinkUp(*NodeOf(m.Node)) {
					r.state = "running, cut off"
				} else if ok {
					st, err := mongoHello(ctx, MongoAddr(m.Node))
					if err != nil {
						r.state = "running, hello: " + shortErr(err)
					} else {
						r.state = st.String()
					}
				}
				return r
			})
		}
	}
	jobs = append(jobs, func() row {
		pid, ok := pidAlive(e.haproxyPidFile(), e.haproxyConfig())
		r := row{NodeOf(Edge).NS, "haproxy", pidStr(pid, ok), "stopped", "runtime API " + RuntimeAPI() + ", chat frontend " + FrontendURL("chat")}
		if ok {
			r.state = "running"
			if !LinkUp(*NodeOf(Edge)) {
				r.state = "running, cut off"
			}
		}
		return r
	})
	sessionPids, _ := filepath.Glob(filepath.Join(e.runDir(), "sessions-*.pid"))
	for _, p := range sessionPids {
		jobs = append(jobs, func() row {
			pid, ok := pidAlive(p, e.StandinBin())
			r := row{"(root)", "session client", pidStr(pid, ok), "ended", strings.TrimSuffix(filepath.Base(p), ".pid")}
			if ok {
				r.state = "running"
			}
			return r
		})
	}
	rows = make([]row, len(jobs))
	for i, j := range jobs {
		wg.Go(func() { add(i, j()) })
	}
	wg.Wait()
	fmt.Fprintln(w, "processes:")
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAMESPACE\tNAME\tPID\tSTATE\tDETAIL")
	for _, r := range rows {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", r.node, r.name, r.pid, r.state, r.detail)
	}
	tw.Flush()

	if servers, err := HAProxyServers(); err != nil {
		fmt.Fprintf(w, "haproxy: show stat: %s\n", shortErr(err))
	} else {
		sort.SliceStable(servers, func(i, j int) bool { return servers[i].Backend < servers[j].Backend })
		fmt.Fprintln(w, "haproxy servers:")
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for _, s := range servers {
			bk := ""
			if s.Backup {
				bk = " (backup)"
			}
			fmt.Fprintf(tw, "  %s/%s%s\t%s\t%d sessions\n", s.Backend, s.Server, bk, s.Status, s.Scur)
		}
		tw.Flush()
	}
	return nil
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.Index(s, ", current topology"); i > 0 {
		s = s[:i]
	}
	if len(s) > 70 {
		s = s[:67] + "..."
	}
	return s
}
