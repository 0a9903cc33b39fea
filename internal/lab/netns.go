package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"
)

// linkExists reports whether a link exists in namespace ns ("" = root).
func linkExists(ns, name string) bool {
	args := []string{"link", "show", "dev", name}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	return exec.Command(tool("ip"), args...).Run() == nil
}

func nsExists(ns string) bool {
	_, err := os.Stat("/run/netns/" + ns)
	return err == nil
}

// LinkUp reports whether a node's root-side veth is up (false: the node is
// cut off by Fail, or the lab is down).
func LinkUp(n Node) bool {
	out, err := exec.Command(tool("ip"), "-j", "link", "show", "dev", n.Veth).Output()
	if err != nil {
		return false
	}
	var links []struct {
		Flags []string `json:"flags"`
	}
	if json.Unmarshal(out, &links) != nil || len(links) == 0 {
		return false
	}
	for _, f := range links[0].Flags {
		if f == "UP" {
			return true
		}
	}
	return false
}

// checkSubnetFree refuses to build the lab when the subnet is already routed
// by anything but the lab's bridge: the lab must never take over (or send
// to) somebody else's addresses.
func checkSubnetFree() error {
	_, lab, _ := net.ParseCIDR(Subnet)
	out, err := exec.Command(tool("ip"), "-j", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		return fmt.Errorf("ip route: %v", err)
	}
	var routes []struct {
		Dst string `json:"dst"`
		Dev string `json:"dev"`
	}
	if err := json.Unmarshal(out, &routes); err != nil {
		return fmt.Errorf("ip route: %v", err)
	}
	for _, r := range routes {
		if r.Dev == Bridge || r.Dst == "" || r.Dst == "default" {
			continue
		}
		dst := r.Dst
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		_, n, err := net.ParseCIDR(dst)
		if err != nil {
			continue
		}
		if n.Contains(lab.IP) || lab.Contains(n.IP) {
			return fmt.Errorf("the lab's subnet %s overlaps route %s dev %s on this machine; refusing to build the lab", Subnet, r.Dst, r.Dev)
		}
	}
	return nil
}

// networkUp creates (or completes) the bridge, the namespaces and their
// veths. Links that exist are left as they are (a node cut off by Fail
// stays cut off).
func networkUp(ctx context.Context) error {
	if !linkExists("", Bridge) {
		if err := checkSubnetFree(); err != nil {
			return err
		}
		if _, err := run(ctx, "", "ip", "link", "add", Bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0"); err != nil {
			return err
		}
	}
	// no IPv6 on the lab's links: nothing but the /24 exists there
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+Bridge+"/disable_ipv6", []byte("1"), 0o644)
	if err := ensureAddr(ctx, "", Bridge, BridgeIP+prefix); err != nil {
		return err
	}
	if _, err := run(ctx, "", "ip", "link", "set", Bridge, "up"); err != nil {
		return err
	}
	for _, n := range Nodes {
		if !nsExists(n.NS) {
			if linkExists("", n.Veth) { // left over from a half-deleted lab
				_, _ = run(ctx, "", "ip", "link", "del", n.Veth)
			}
			if _, err := run(ctx, "", "ip", "netns", "add", n.NS); err != nil {
				return err
			}
		}
		_, _ = run(ctx, n.NS, "sh", "-c", "echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6")
		if _, err := run(ctx, "", "ip", "-n", n.NS, "link", "set", "lo", "up"); err != nil {
			return err
		}
		fresh := false
		if !linkExists("", n.Veth) || !linkExists(n.NS, "eth0") {
			_, _ = run(ctx, "", "ip", "link", "del", n.Veth)
			_, _ = run(ctx, "", "ip", "-n", n.NS, "link", "del", "eth0")
			if _, err := run(ctx, "", "ip", "link", "add", n.Veth, "type", "veth", "peer", "name", "eth0", "netns", n.NS); err != nil {
				return err
			}
			fresh = true
		}
		_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+n.Veth+"/disable_ipv6", []byte("1"), 0o644)
		if _, err := run(ctx, "", "ip", "link", "set", n.Veth, "master", Bridge); err != nil {
			return err
		}
		if err := ensureAddr(ctx, n.NS, "eth0", n.IP+prefix); err != nil {
			return err
		}
		if _, err := run(ctx, "", "ip", "-n", n.NS, "link", "set", "eth0", "up"); err != nil {
			return err
		}
		if fresh {
			if _, err := run(ctx, "", "ip", "link", "set", n.Veth, "up"); err != nil {
				return err
			}
		}
	}
	return nil
}

func ensureAddr(ctx context.Context, ns, dev, cidr string) error {
	args := []string{"ip"}
	if ns != "" {
		args = append(args, "-n", ns)
	}
	out, err := run(ctx, "", append(args, "-4", "addr", "show", "dev", dev)...)
	if err != nil {
		return err
	}
	if strings.Contains(out, " "+cidr+" ") {
		return nil
	}
	_, err = run(ctx, "", append(args, "addr", "add", cidr, "dev", dev)...)
	return err
}

// networkDown deletes the namespaces (their veths go with them) and the
// bridge. The namespaces' processes must be gone first.
func networkDown(ctx context.Context) []error {
	var errs []error
	for _, n := range Nodes {
		if nsExists(n.NS) {
			if _, err := run(ctx, "", "ip", "netns", "del", n.NS); err != nil {
				errs = append(errs, err)
			}
		}
		// the root-side end goes with the namespace, a moment later
		for i := 0; i < 50 && linkExists("", n.Veth); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if linkExists("", n.Veth) {
			if out, err := run(ctx, "", "ip", "link", "del", n.Veth); err != nil && !strings.Contains(out, "Cannot find device") {
				errs = append(errs, err)
			}
		}
	}
	if linkExists("", Bridge) {
		if _, err := run(ctx, "", "ip", "link", "del", Bridge); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// setLink brings a node's root-side veth up or down: down cuts the node off
// from everything (sitectl, the other nodes), as a site losing its network.
func setLink(ctx context.Context, key string, up bool) error {
	n := NodeOf(key)
	if n == nil {
		return fmt.Errorf("no lab node %q (A, B, W or EDGE)", key)
	}
	if !linkExists("", n.Veth) {
		return fmt.Errorf("%s: link %s does not exist (is the lab up?)", n.Key, n.Veth)
	}
	state := "down"
	if up {
		state = "up"
	}
	_, err := run(ctx, "", "ip", "link", "set", n.Veth, state)
	return err
}

// nftTable holds the lab's rules inside a site namespace.
const nftTable = "sitectl_lab"

// cutBrokerLink stops the brokers' OpenWire traffic between the two sites
// (the network connector) in both site namespaces: every packet a broker
// sends to the other site's OpenWire port (or from its own to the other
// site) is rejected with a TCP reset delivered to the local socket, so the
// bridge breaks as soon as either side sends (keep-alives: within seconds)
// and reconnection attempts fail at once. Input is not filtered: the other
// namespace rejects its own side, and a drop rule there would also swallow
// the resets. STOMP clients (the connectors) are not affected.
func cutBrokerLink(ctx context.Context) error {
	if why := NFTMissing(); why != "" {
		return errors.New(why)
	}
	for _, key := range []string{SiteA, SiteB} {
		n, peer := NodeOf(key), NodeOf(other(key))
		rules := fmt.Sprintf(`table inet %[1]s {
  chain output {
    type filter hook output priority 0; policy accept;
    ip daddr %[2]s tcp dport %[3]d reject with tcp reset
    ip daddr %[2]s tcp sport %[3]d reject with tcp reset
  }
}
`, nftTable, peer.IP, OpenWirePort)
		if err := loadTable(ctx, n.NS, nftTable, rules); err != nil {
			return err
		}
	}
	return nil
}

// loadTable replaces nftables table (inet) in namespace ns with rules.
func loadTable(ctx context.Context, ns, table, rules string) error {
	_, _ = run(ctx, ns, "nft", "delete", "table", "inet", table)
	cmd := nsCmd(ctx, ns, "nft", "-f", "-")
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %v: %s", ns, err, out)
	}
	return nil
}

func healBrokerLink(ctx context.Context) error {
	for _, key := range []string{SiteA, SiteB} {
		n := NodeOf(key)
		if !nsExists(n.NS) {
			continue
		}
		if brokerLinkCutIn(n.NS) {
			if _, err := run(ctx, n.NS, "nft", "delete", "table", "inet", nftTable); err != nil {
				return err
			}
		}
	}
	return nil
}

func brokerLinkCutIn(ns string) bool {
	if NFTMissing() != "" {
		return false
	}
	return nsCmd(context.Background(), ns, "nft", "list", "table", "inet", nftTable).Run() == nil
}

// BrokerLinkCut reports whether CutBrokerLink is in force.
func BrokerLinkCut() bool {
	return nsExists(NodeOf(SiteA).NS) && brokerLinkCutIn(NodeOf(SiteA).NS)
}

// mongoTable holds the rules of a cut MongoDB link inside a node's namespace.
const mongoTable = "sitectl_lab_mongo"

// cutMongoLink cuts the network link of node key's MongoDB member to the
// other members (seed 003 rows 5 and 6): inside the node's namespace,
// packets to and from the other members' addresses on the MongoDB port are
// dropped silently, both ways, so heartbeats time out as on a broken link.
// sitectl (the root namespace) still reaches the member, and nothing else
// is cut: the member answers, and says what it sees.
func cutMongoLink(ctx context.Context, key string) error {
	if why := NFTMissing(); why != "" {
		return errors.New(why)
	}
	n := NodeOf(key)
	if n == nil || (key != SiteA && key != SiteB && key != Witness) {
		return fmt.Errorf("no MongoDB member on %q (A, B or W)", key)
	}
	var peers []string
	for _, k := range []string{SiteA, SiteB, Witness} {
		if k != key {
			peers = append(peers, NodeOf(k).IP)
		}
	}
	set := strings.Join(peers, ", ")
	rules := fmt.Sprintf(`table inet %[1]s {
  chain output {
    type filter hook output priority 0; policy accept;
    ip daddr { %[2]s } tcp dport %[3]d drop
    ip daddr { %[2]s } tcp sport %[3]d drop
  }
  chain input {
    type filter hook input priority 0; policy accept;
    ip saddr { %[2]s } tcp dport %[3]d drop
    ip saddr { %[2]s } tcp sport %[3]d drop
  }
}
`, mongoTable, set, MongoPort)
	return loadTable(ctx, n.NS, mongoTable, rules)
}

// healMongoLinks removes every cut MongoDB link.
func healMongoLinks(ctx context.Context) error {
	var errs []error
	for _, key := range []string{SiteA, SiteB, Witness} {
		n := NodeOf(key)
		if nsExists(n.NS) && MongoLinkCut(key) {
			if _, err := run(ctx, n.NS, "nft", "delete", "table", "inet", mongoTable); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// MongoLinkCut reports whether node key's MongoDB link is cut.
func MongoLinkCut(key string) bool {
	n := NodeOf(key)
	if n == nil || NFTMissing() != "" || !nsExists(n.NS) {
		return false
	}
	return nsCmd(context.Background(), n.NS, "nft", "list", "table", "inet", mongoTable).Run() == nil
}

// opTable holds, inside a node's namespace, the rules that cut the
// operator's path to it.
const opTable = "sitectl_op"

// cutOperatorPath drops every packet between the root namespace (where
// sitectl runs: BridgeIP) and node key, inside the node's namespace: the
// node still reaches the other nodes (the other site, the witness,
// HAProxy) and they reach it. This is the operator's VPN or firewall
// failing while the site itself is alive and serving.
func cutOperatorPath(ctx context.Context, key string) error {
	if why := NFTMissing(); why != "" {
		return errors.New(why)
	}
	n := NodeOf(key)
	if n == nil {
		return fmt.Errorf("no lab node %q (A, B, W or EDGE)", key)
	}
	rules := fmt.Sprintf(`table inet %[1]s {
  chain output {
    type filter hook output priority 0; policy accept;
    ip daddr %[2]s drop
  }
  chain input {
    type filter hook input priority 0; policy accept;
    ip saddr %[2]s drop
  }
}
`, opTable, BridgeIP)
	return loadTable(ctx, n.NS, opTable, rules)
}

// healOperatorPaths removes every operator-path cut.
func healOperatorPaths(ctx context.Context) error {
	var errs []error
	for _, n := range Nodes {
		if nsExists(n.NS) && OperatorPathCut(n.Key) {
			if _, err := run(ctx, n.NS, "nft", "delete", "table", "inet", opTable); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// OperatorPathCut reports whether node key's path to the operator is cut.
func OperatorPathCut(key string) bool {
	n := NodeOf(key)
	if n == nil || NFTMissing() != "" || !nsExists(n.NS) {
		return false
	}
	return nsCmd(context.Background(), n.NS, "nft", "list", "table", "inet", opTable).Run() == nil
}
