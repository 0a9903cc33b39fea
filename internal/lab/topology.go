package lab

import (
	"net"
	"strconv"
	"strings"
)

// The lab's network: one private /24 that exists only on the lab's bridge
// and veths. Nothing in the lab routes anywhere else (no default route in
// any namespace, IP forwarding is not touched).
const (
	Subnet   = "10.213.0.0/24"
	BridgeIP = "10.213.0.1" // the root namespace's address: sitectl runs here
	Bridge   = "sl-br0"
	prefix   = "/24"
)

// Host keys.
const (
	SiteA   = "A"
	SiteB   = "B"
	Witness = "W"
	Edge    = "EDGE"
)

// Node is one namespace of the lab.
type Node struct {
	Key  string // A, B, W, EDGE
	NS   string // network namespace
	Veth string // root-side end of its veth (the other end is eth0 in NS)
	IP   string
}

// Nodes of the lab, in a fixed order.
var Nodes = []Node{
	{Key: SiteA, NS: "sl-a", Veth: "slv-a", IP: "10.213.0.11"},
	{Key: SiteB, NS: "sl-b", Veth: "slv-b", IP: "10.213.0.21"},
	{Key: Witness, NS: "sl-w", Veth: "slv-w", IP: "10.213.0.31"},
	{Key: Edge, NS: "sl-edge", Veth: "slv-edge", IP: "10.213.0.41"},
}

// NodeOf returns the node with that key (case-insensitive; "edge" too), or
// nil.
func NodeOf(key string) *Node {
	for i := range Nodes {
		if strings.EqualFold(Nodes[i].Key, key) {
			return &Nodes[i]
		}
	}
	return nil
}

// Ports.
const (
	SSHPort      = 22
	StompPort    = 61613
	OpenWirePort = 61616
	MongoPort    = 27017
	RuntimePort  = 9999 // HAProxy runtime API (admin level), on the edge
)

// Service is one stand-in service of a site.
type Service struct {
	Name      string
	Kind      string // inventory kind
	Port      int    // HTTP port of the stand-in
	Group     string // core or reporting
	Passive   string // state on the passive site: stopped or running
	Probe     string // "http", "tcp" or ""
	Connector bool   // runs the site's ActiveMQ connector
	Frontend  int    // HAProxy frontend port on the edge (0: none)
}

// Services run on both sites (the same ports on each site's address).
var Services = []Service{
	{Name: "ccm", Kind: "ccm", Port: 8081, Group: "core", Passive: "running", Frontend: 8081},
	{Name: "comms", Kind: "comms", Port: 5222, Group: "core", Passive: "stopped", Probe: "tcp"},
	{Name: "mre", Kind: "mre", Port: 8082, Group: "core", Passive: "stopped"},
	{Name: "chat", Kind: "chat", Port: 8080, Group: "core", Passive: "stopped", Probe: "http", Connector: true, Frontend: 8080},
	{Name: "reporting", Kind: "reporting", Port: 8083, Group: "reporting", Passive: "stopped"},
}

// ServiceOf returns the service with that name, or nil.
func ServiceOf(name string) *Service {
	for i := range Services {
		if Services[i].Name == name {
			return &Services[i]
		}
	}
	return nil
}

// Messaging and database names.
const (
	Deployment = "sitectl-lab"
	Queue      = "ef.chat.requests"
	ReplicaSet = "expertflow"
)

// Site-specific values.
type siteInfo struct {
	Key          string
	Role         string
	Broker       string // broker name
	Mongo        string // member name
	MongoPrio    int
	ConsumerHost string // the connector's STOMP host header / client-id prefix
	Match        string // consumer_match entry
	Priority     int    // the connector's consumer priority
}

var sites = []siteInfo{
	{Key: SiteA, Role: "primary", Broker: "amq-a", Mongo: "mongo-a", MongoPrio: 2, ConsumerHost: "site-a-connector", Match: "site-a-", Priority: 10},
	{Key: SiteB, Role: "secondary", Broker: "amq-b", Mongo: "mongo-b", MongoPrio: 1, ConsumerHost: "site-b-connector", Match: "site-b-", Priority: 5},
}

// ArbiterName is the MongoDB arbiter member (on the witness).
const ArbiterName = "mongo-arbiter"

func siteOf(key string) *siteInfo {
	for i := range sites {
		if strings.EqualFold(sites[i].Key, key) {
			return &sites[i]
		}
	}
	return nil
}

// other returns the other site's key.
func other(key string) string {
	if key == SiteA {
		return SiteB
	}
	return SiteA
}

func hp(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }

// HostName is the inventory host of a site ("a-app", "b-app") or of the
// witness ("w-arb").
func HostName(key string) string {
	if key == Witness {
		return "w-arb"
	}
	return strings.ToLower(key) + "-app"
}

// ServerName is the HAProxy server of a service on a site ("chat-a").
func ServerName(svc, site string) string { return svc + "-" + strings.ToLower(site) }

// RuntimeAPI is the HAProxy runtime API address as the inventory writes it.
func RuntimeAPI() string { return "tcp://" + hp(NodeOf(Edge).IP, RuntimePort) }

// FrontendURL is the HAProxy frontend of a service ("http://10.213.0.41:8080").
func FrontendURL(svc string) string {
	s := ServiceOf(svc)
	if s == nil || s.Frontend == 0 {
		return ""
	}
	return "http://" + hp(NodeOf(Edge).IP, s.Frontend)
}

// SessionURL is where a chat client opens a session (through HAProxy).
func SessionURL() string { return FrontendURL("chat") + "/chat/session" }

// ServiceURL is a stand-in's own HTTP endpoint on a site.
func ServiceURL(site, svc string) string {
	return "http://" + hp(NodeOf(site).IP, ServiceOf(svc).Port)
}
