package activemq

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Advisory kinds: the top-level key of an advisory's JSON body.
const (
	KindConsumer   = "ConsumerInfo"
	KindRemove     = "RemoveInfo"
	KindConnection = "ConnectionInfo"
)

// Advisory is one decoded advisory message body. Exactly one of Consumer,
// Remove and Connection is set for the kinds sitectl uses; other kinds
// (ProducerInfo, DestinationInfo, …) only have Kind.
type Advisory struct {
	Kind       string
	Consumer   *ConsumerInfo
	Remove     *RemoveInfo
	Connection *ConnectionInfo
}

// ConsumerInfo is the part of an ActiveMQ ConsumerInfo sitectl reads.
type ConsumerInfo struct {
	ConnectionID string
	SessionID    int64
	Value        int64
	Queue        string // destination's physical name
	Topic        bool   // the destination is a topic
	Priority     int
	Browser      bool
	ClientID     string // only set for durable subscriptions
	Selector     string
	// BrokerPath lists the broker ids the subscription travelled through
	// (network consumers only).
	BrokerPath []string
	// NetworkBrokerID is the remote broker of a NetworkBridgeFilter.
	NetworkBrokerID string
	// NetworkFilter: additionalPredicate is a NetworkBridgeFilter.
	NetworkFilter bool
}

// ID is "connectionId:sessionId:value", the consumer's identity.
func (c *ConsumerInfo) ID() string { return consumerKey(c.ConnectionID, c.SessionID, c.Value) }

// Network reports whether the consumer is a network bridge's subscription.
func (c *ConsumerInfo) Network() bool { return len(c.BrokerPath) > 0 || c.NetworkFilter }

// RemoteBrokerID is the broker the bridge consumer forwards to: the
// NetworkBridgeFilter's networkBrokerId, else the last broker of BrokerPath.
func (c *ConsumerInfo) RemoteBrokerID() string {
	if c.NetworkBrokerID != "" {
		return c.NetworkBrokerID
	}
	if n := len(c.BrokerPath); n > 0 {
		return c.BrokerPath[n-1]
	}
	return ""
}

// RemoveInfo is a removal advisory: of a consumer or of a connection.
type RemoveInfo struct {
	Class        string // "ConsumerId", "ConnectionId", "ProducerId", "SessionId", …
	ConnectionID string
	SessionID    int64
	Value        int64
}

// ConsumerID is the removed consumer's id (Class "ConsumerId").
func (r *RemoveInfo) ConsumerID() string { return consumerKey(r.ConnectionID, r.SessionID, r.Value) }

// ConnectionInfo is the part of an ActiveMQ ConnectionInfo sitectl reads.
type ConnectionInfo struct {
	ConnectionID string
	ClientID     string
	// ClientIP is the STOMP CONNECT host header for STOMP clients, the
	// remote address (tcp://ip:port) for OpenWire ones, vm://… for bridges.
	ClientIP string
	UserName string
}

func consumerKey(conn string, session, value int64) string {
	return conn + ":" + strconv.FormatInt(session, 10) + ":" + strconv.FormatInt(value, 10)
}

// ErrMalformed is wrapped by every DecodeAdvisory error.
var ErrMalformed = errors.New("malformed advisory")

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// DecodeAdvisory decodes an advisory's JSON body (XStream + Jettison
// "mapped" convention) leniently: numbers may be strings and strings may be
// numbers, a value may come as a one-element array, unknown fields are
// ignored. It returns an error wrapping ErrMalformed when the body is not a
// JSON object with one key, or when a ConsumerInfo, RemoveInfo or
// ConnectionInfo lacks what identifies it (ids, priority).
func DecodeAdvisory(body []byte) (Advisory, error) {
	body = bytes.TrimSpace(bytes.TrimRight(body, "\x00"))
	if len(body) == 0 {
		return Advisory{}, malformed("empty body")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var top any
	if err := dec.Decode(&top); err != nil {
		return Advisory{}, malformed("not JSON: %v", err)
	}
	if rest := bytes.TrimSpace(body[dec.InputOffset():]); len(rest) > 0 {
		return Advisory{}, malformed("trailing data after the JSON value")
	}
	obj, ok := unwrap(top).(map[string]any)
	if !ok {
		return Advisory{}, malformed("body is %s, not a JSON object", kindOf(top))
	}
	if len(obj) != 1 {
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		return Advisory{}, malformed("expected one top-level key (the command type), got %d %q", len(obj), keys)
	}
	var a Advisory
	var inner any
	for k, v := range obj {
		a.Kind, inner = k, unwrap(v)
	}
	switch a.Kind {
	case KindConsumer, KindRemove, KindConnection:
	case "":
		return Advisory{}, malformed("empty command type")
	default:
		return a, nil // a kind sitectl does not use
	}
	m, ok := inner.(map[string]any)
	if !ok {
		return Advisory{}, malformed("%s is %s, not an object", a.Kind, kindOf(inner))
	}
	var err error
	switch a.Kind {
	case KindConsumer:
		a.Consumer, err = decodeConsumer(m)
	case KindRemove:
		a.Remove, err = decodeRemove(m)
	case KindConnection:
		a.Connection, err = decodeConnection(m)
	}
	if err != nil {
		return Advisory{}, err
	}
	return a, nil
}

func decodeConsumer(m map[string]any) (*ConsumerInfo, error) {
	c := &ConsumerInfo{}
	id, ok := unwrap(m["consumerId"]).(map[string]any)
	if !ok {
		return nil, malformed("ConsumerInfo has no consumerId object")
	}
	var err error
	if c.ConnectionID, err = reqString(id, "connectionId", "ConsumerInfo.consumerId"); err != nil {
		return nil, err
	}
	if c.SessionID, err = optInt(id, "sessionId", "ConsumerInfo.consumerId", 0); err != nil {
		return nil, err
	}
	if c.Value, err = reqInt(id, "value", "ConsumerInfo.consumerId"); err != nil {
		return nil, err
	}
	p, err := reqInt(m, "priority", "ConsumerInfo")
	if err != nil {
		return nil, err
	}
	if p < math.MinInt8 || p > math.MaxInt8 {
		return nil, malformed("ConsumerInfo.priority %d is outside a byte (-128..127)", p)
	}
	c.Priority = int(p)
	if d, ok := unwrap(m["destination"]).(map[string]any); ok {
		c.Queue = str(d["physicalName"])
		if c.Queue == "" {
			c.Queue = str(d["string"])
		}
		class := str(d["@class"])
		c.Topic = strings.Contains(class, "Topic")
	} else if s := str(m["destination"]); s != "" {
		c.Queue = s
	}
	c.Browser = boolean(m["browser"])
	c.ClientID = str(m["clientId"])
	c.Selector = str(m["selector"])
	c.BrokerPath = brokerIDs(m["brokerPath"])
	if ap, ok := unwrap(m["additionalPredicate"]).(map[string]any); ok {
		c.NetworkFilter = strings.Contains(str(ap["@class"]), "NetworkBridgeFilter")
		if ids := brokerIDs(ap["networkBrokerId"]); len(ids) > 0 {
			c.NetworkBrokerID = ids[0]
		}
	}
	return c, nil
}

func decodeRemove(m map[string]any) (*RemoveInfo, error) {
	id, ok := unwrap(m["objectId"]).(map[string]any)
	if !ok {
		return nil, malformed("RemoveInfo has no objectId object")
	}
	r := &RemoveInfo{Class: str(id["@class"])}
	var err error
	switch r.Class {
	case "ConnectionId":
		// {"@class":"ConnectionId","value":"ID:…"}
		if r.ConnectionID, err = reqString(id, "value", "RemoveInfo.objectId"); err != nil {
			return nil, err
		}
	case "ConsumerId":
		if r.ConnectionID, err = reqString(id, "connectionId", "RemoveInfo.objectId"); err != nil {
			return nil, err
		}
		if r.SessionID, err = optInt(id, "sessionId", "RemoveInfo.objectId", 0); err != nil {
			return nil, err
		}
		if r.Value, err = reqInt(id, "value", "RemoveInfo.objectId"); err != nil {
			return nil, err
		}
	case "":
		return nil, malformed("RemoveInfo.objectId has no @class")
	default:
		// producer, session, destination removals: identity not needed
		r.ConnectionID = str(id["connectionId"])
	}
	return r, nil
}

func decodeConnection(m map[string]any) (*ConnectionInfo, error) {
	c := &ConnectionInfo{}
	switch v := unwrap(m["connectionId"]).(type) {
	case map[string]any:
		c.ConnectionID = str(v["value"])
	default:
		c.ConnectionID = str(v)
	}
	if c.ConnectionID == "" {
		return nil, malformed("ConnectionInfo has no connectionId.value")
	}
	c.ClientID = str(m["clientId"])
	c.ClientIP = str(m["clientIp"])
	c.UserName = str(m["userName"])
	return c, nil
}

// brokerIDs collects every BrokerId value under v, whatever the nesting:
// [{"BrokerId":{"value":"ID:x"}}], {"BrokerId":[{"value":…},…]},
// {"value":"ID:x"} or a bare string.
func brokerIDs(v any) []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			if s := str(x["value"]); s != "" {
				out = append(out, s)
				return
			}
			if b, ok := x["BrokerId"]; ok {
				walk(b)
			}
		case string:
			if x != "" {
				out = append(out, x)
			}
		}
	}
	walk(v)
	return out
}

// unwrap turns one-element arrays into their element, repeatedly.
func unwrap(v any) any {
	for {
		a, ok := v.([]any)
		if !ok || len(a) != 1 {
			return v
		}
		v = a[0]
	}
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

// str is the lenient string form of a scalar ("" for objects, null, absent).
func str(v any) string {
	switch x := unwrap(v).(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

func boolean(v any) bool {
	switch x := unwrap(v).(type) {
	case bool:
		return x
	case string:
		b, _ := strconv.ParseBool(strings.TrimSpace(x))
		return b
	case json.Number:
		return x.String() != "0"
	}
	return false
}

// integer parses a number or a numeric string; ok is false when absent.
func integer(v any) (n int64, present bool, err error) {
	switch x := unwrap(v).(type) {
	case nil:
		return 0, false, nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, true, nil
		}
		f, err := x.Float64()
		if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, true, fmt.Errorf("%q is not an integer", x.String())
		}
		return int64(f), true, nil
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return 0, false, nil
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, true, fmt.Errorf("%q is not an integer", x)
		}
		return i, true, nil
	default:
		return 0, true, fmt.Errorf("is %s, not an integer", kindOf(x))
	}
}

func reqInt(m map[string]any, key, where string) (int64, error) {
	n, ok, err := integer(m[key])
	switch {
	case err != nil:
		return 0, malformed("%s.%s %v", where, key, err)
	case !ok:
		return 0, malformed("%s has no %s", where, key)
	}
	return n, nil
}

func optInt(m map[string]any, key, where string, def int64) (int64, error) {
	n, ok, err := integer(m[key])
	switch {
	case err != nil:
		return 0, malformed("%s.%s %v", where, key, err)
	case !ok:
		return def, nil
	}
	return n, nil
}

func reqString(m map[string]any, key, where string) (string, error) {
	s := str(m[key])
	if s == "" {
		return "", malformed("%s has no %s", where, key)
	}
	return s, nil
}

// bridgeConnRE matches the connection ids a network bridge makes:
// "<localBroker>-><remoteBroker>-<idgenerator seed>:<n>", e.g.
// "amqA->amqB-43841-1795331367129-5:1".
var bridgeConnRE = regexp.MustCompile(`^(.+?)->(.+)-\d+-\d+-\d+:\d+$`)

// BridgeBrokers parses a bridge connection id into the local and remote
// broker names; ok is false for other connection ids.
func BridgeBrokers(connectionID string) (local, remote string, ok bool) {
	m := bridgeConnRE.FindStringSubmatch(connectionID)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}
