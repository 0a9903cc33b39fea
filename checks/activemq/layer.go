package activemq

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	amq "github.com/sitectl/sitectl/adapters/activemq"
	"github.com/sitectl/sitectl/checks/layer"
	"github.com/sitectl/sitectl/inventory"
)

// DecreasePriorityFix is the configuration change that removes the
// decreaseNetworkConsumerPriority trap.
const DecreasePriorityFix = `set decreaseNetworkConsumerPriority="false" on the <networkConnector> of every broker (the default became true in ActiveMQ 5.18) and restart the brokers`

// ConsumerSite maps a consumer's connection to a site: the site with a
// consumer_match entry that prefixes the connection's client id or its
// clientIp (the STOMP host header; for OpenWire clients tcp://ip:port,
// matched with and without the scheme). The longest matching prefix wins;
// ambiguous is true when two sites match equally long, and site is "" then
// and when nothing matches.
func ConsumerSite(inv *inventory.Inventory, clientID, clientIP string) (site string, ambiguous bool) {
	bare := clientIP
	if i := strings.Index(bare, "://"); i >= 0 {
		bare = bare[i+3:]
	}
	best := 0
	for _, s := range inv.Sites {
		if s == nil {
			continue
		}
		for _, p := range s.ConsumerMatch {
			if p == "" {
				continue
			}
			if !strings.HasPrefix(clientID, p) && !strings.HasPrefix(clientIP, p) && !strings.HasPrefix(bare, p) {
				continue
			}
			switch {
			case len(p) > best:
				best, site, ambiguous = len(p), s.Name, false
			case len(p) == best && s.Name != site:
				ambiguous = true
			}
		}
	}
	if ambiguous {
		return "", true
	}
	return site, false
}

// amqCandidate is one consumer competing for a queue's messages on a broker.
type amqCandidate struct {
	c *amq.Consumer
	// sites the messages it takes end up at: one site for a matched local
	// consumer; for a bridge consumer the site(s) winning on the remote
	// broker. Empty with why set: the site is not known.
	sites    []string
	why      string // why sites is empty (unmatched, unknown connection, …)
	inferred bool   // bridge site taken from the inventory, not observed
}

func (c amqCandidate) label() string {
	who := c.c.ClientID
	if who == "" {
		who = c.c.ID
	}
	if c.c.ClientIP != "" && c.c.ClientIP != who {
		who += " host " + c.c.ClientIP
	}
	if c.c.Network {
		remote := c.c.RemoteBroker
		if remote == "" {
			remote = c.c.RemoteBrokerID
		}
		who = "bridge to " + remote
	}
	s := strings.Join(c.sites, "+")
	if s == "" {
		s = "?"
	}
	if c.inferred {
		s += " (assumed)"
	}
	return fmt.Sprintf("%s [site %s] prio %d", who, s, c.c.Priority)
}

// amqDecision is where one broker sends one queue's messages.
// brief: "up, top A@10 local", "up, no consumer".
func (d amqDecision) brief() string {
	switch {
	case d.state == layer.ServeNone:
		return "up, no consumer"
	case len(d.sites) == 0:
		return "up, top ?"
	}
	kind := "bridge"
	if d.local {
		kind = "local"
	}
	return fmt.Sprintf("up, top %s@%d %s", strings.Join(d.sites, "+"), d.prio, kind)
}

type amqDecision struct {
	broker string
	site   string // the broker's site
	queue  string
	state  string   // layer.ServeOne, layer.ServeNone, layer.ServeSplit, layer.ServeUnknown
	sites  []string // winning sites (one or split)
	prio   int
	detail string
	local  bool // the winner is a local consumer (not a bridge)
	// inferred: a winner is a bridge to a broker that could not be
	// observed; its site is assumed from the inventory
	inferred bool
	// candidates, highest priority first
	cands []amqCandidate
}

type amqEval struct {
	inv     *inventory.Inventory
	byName  map[string]*amq.BrokerObservation
	brokers []*inventory.Broker
	queues  []string
	local   map[[2]string]amqDecision // (broker, queue) → winner among local consumers only
}

// JudgeDown says which site the brokers route the watched queues to:
// per broker and queue, the site holding the highest-priority live consumer
// (a bridge consumer counts for the site winning on the broker it forwards
// to, with the priority it carries). It is "one" when every broker that is
// up routes every queue to the same site, "none" when no queue has a
// consumer (or every broker is down, their sites' loss confirmed: when no
// broker answered and only this machine's refused connections say they are
// down, it is "unknown"), "split" when brokers or queues route
// to different sites (or two sites tie), and "unknown" when a broker could
// not be observed (or a winning consumer's site is not known) and the
// others do not settle it. Notes explain the decreaseNetworkConsumerPriority
// trap and recognise the failover scenarios of the deployment's runbook.
//
// The brokers of the sites in down (sites whose loss is confirmed:
// checks.DownSites) count as down when they cannot be observed, instead of
// unknown. Evidence holds what the brokers say of each site's liveness.
func JudgeDown(inv *inventory.Inventory, obs []*amq.BrokerObservation, down map[string]bool) layer.Verdict {
	l := judgeDown(inv, obs, down)
	for _, o := range obs {
		var ae *amq.Error
		if o != nil && l.State == layer.ServeUnknown && (errors.Is(o.Err, amq.ErrAuth) || errors.As(o.Err, &ae) && ae.Op == amq.OpCredentials) {
			l.Access = o.Err.Error()
			break
		}
	}
	if inv != nil {
		for _, s := range inv.Sites {
			if s != nil {
				l.Evidence = append(l.Evidence, SiteEvidence(inv, obs, s.Name)...)
			}
		}
	}
	return l
}

// amqBrokers are the inventory's brokers by what their observation says:
// up, down (refused, or not observed on a site whose loss is confirmed)
// or not observed.
type amqBrokers struct {
	up, down, unobserved []*inventory.Broker
}

// amqTally is the decisions summed up: the broker/queue pairs each site
// serves, the sites in order, and the pairs that are unknown, without a
// consumer, or served through an assumed bridge.
type amqTally struct {
	serving                          map[string][]string // site → "broker/queue"
	sites                            []string
	unknownParts, noneParts, assumed []string
}

func judgeDown(inv *inventory.Inventory, obs []*amq.BrokerObservation, down map[string]bool) layer.Verdict {
	l := layer.Verdict{Layer: layer.LayerActiveMQ}
	if inv == nil || inv.ActiveMQ == nil || len(inv.ActiveMQ.Brokers) == 0 {
		l.State = layer.ServeUnknown
		l.Detail = "the inventory has no activemq brokers to observe"
		return l
	}
	e := newAmqEval(inv, obs)
	bs := e.classify(down, &l)
	decisions := e.decideUp(bs.up, &l)
	decisions, unsettled := e.settleUnobserved(bs, decisions, &l)
	t := tallyDecisions(decisions)
	t.unknownParts = append(t.unknownParts, unsettled...)
	conclude(&l, bs, t, down)
	if len(t.assumed) > 0 && (l.State == layer.ServeOne || l.State == layer.ServeSplit) {
		// A bridge whose far broker did not answer may be a dead broker's
		// bridge, kept until its inactivity timeout: not proof of service.
		l.Unverified = true
		l.Notes = append(l.Notes, fmt.Sprintf("unverified: on %s the top consumer is a bridge to a broker that could not be observed; its site is assumed from the inventory (a dead broker's bridge lingers until its inactivity timeout), so this layer alone never makes the verdict SPLIT", strings.Join(t.assumed, ", ")))
	}
	l.Notes = append(l.Notes, e.trapNotes(bs.up, &l)...)
	l.Notes = append(l.Notes, e.observationNotes(bs.up)...)
	if n := e.scenario(bs.up, bs.down, bs.unobserved, l); n != "" {
		l.Notes = append(l.Notes, n)
	}
	return l
}

// newAmqEval indexes the observations by broker and keeps the inventory's
// brokers and watched queues.
func newAmqEval(inv *inventory.Inventory, obs []*amq.BrokerObservation) *amqEval {
	e := &amqEval{inv: inv, byName: map[string]*amq.BrokerObservation{}, local: map[[2]string]amqDecision{}}
	for _, o := range obs {
		if o != nil {
			e.byName[o.Broker] = o
		}
	}
	for _, b := range inv.ActiveMQ.Brokers {
		if b != nil {
			e.brokers = append(e.brokers, b)
		}
	}
	e.queues = inv.ActiveMQ.Queues
	return e
}

// classify sorts the brokers into up, down and not observed, and adds a
// row for each broker that is not up. A broker that cannot be observed on
// a site in down counts as down.
func (e *amqEval) classify(down map[string]bool, l *layer.Verdict) amqBrokers {
	var bs amqBrokers
	for _, b := range e.brokers {
		o := e.byName[b.Name]
		switch {
		case o.Up():
			bs.up = append(bs.up, b)
		case o != nil && amq.IsDown(o.Err):
			bs.down = append(bs.down, b)
			l.Rows = append(l.Rows, layer.Row{Site: b.Site, Name: b.Name, State: "down", Detail: o.ErrText, Brief: "broker down"})
		case down[b.Site]:
			bs.down = append(bs.down, b)
			detail := "not observed"
			if o != nil && o.Err != nil {
				detail = o.Err.Error()
			}
			l.Rows = append(l.Rows, layer.Row{Site: b.Site, Name: b.Name, State: "down", Detail: detail + "; site " + b.Site + " is DOWN (confirmed)", Brief: "broker down (site gone)"})
			l.Notes = append(l.Notes, fmt.Sprintf("broker %s could not be observed and site %s is DOWN (its loss confirmed by independent observers): it counts as down", b.Name, b.Site))
		default:
			bs.unobserved = append(bs.unobserved, b)
			detail := "not observed"
			if o != nil && o.Err != nil {
				detail = o.Err.Error()
			}
			l.Rows = append(l.Rows, layer.Row{Site: b.Site, Name: b.Name, State: layer.ServeUnknown, Detail: detail, Brief: "not observed"})
		}
	}
	return bs
}

// decideUp decides, for every broker that is up and every watched queue,
// where its messages go, and adds a row for each.
func (e *amqEval) decideUp(up []*inventory.Broker, l *layer.Verdict) []amqDecision {
	// Local winners first: a bridge consumer forwards to the remote
	// broker's local consumers (messages from the network are not sent
	// back over it, networkTTL 1).
	for _, b := range up {
		for _, q := range e.queues {
			e.local[[2]string{b.Name, q}] = e.decide(b, q, true)
		}
	}
	var decisions []amqDecision
	for _, b := range up {
		for _, q := range e.queues {
			d := e.decide(b, q, false)
			decisions = append(decisions, d)
			state := layer.ServeNone
			switch d.state {
			case layer.ServeOne:
				state = d.sites[0]
			case layer.ServeSplit, layer.ServeUnknown:
				state = d.state
			}
			row := layer.Row{Site: b.Site, Name: b.Name + "/" + q, State: state, Detail: d.detail, Brief: d.brief()}
			if d.state == layer.ServeOne { // State is then the top consumer's site
				row.Values = map[string]float64{"priority": float64(d.prio)}
			}
			l.Rows = append(l.Rows, row)
		}
	}
	return decisions
}

// settleUnobserved adds the decisions of the brokers that could not be
// observed, when the brokers that are up show they forward everything to
// them; it returns the others, unsettled, with why.
func (e *amqEval) settleUnobserved(bs amqBrokers, decisions []amqDecision, l *layer.Verdict) ([]amqDecision, []string) {
	var unsettled []string
	for _, b := range bs.unobserved {
		ds, why := e.settle(b, bs.up, decisions)
		if ds == nil {
			o := e.byName[b.Name]
			reason := "it was not observed"
			if o != nil && o.Err != nil {
				reason = o.Err.Error()
			}
			unsettled = append(unsettled, fmt.Sprintf("broker %s could not be observed (%s) and %s", b.Name, reason, why))
			continue
		}
		decisions = append(decisions, ds...)
		l.Notes = append(l.Notes, fmt.Sprintf("broker %s could not be observed, but %s", b.Name, why))
	}
	return decisions, unsettled
}

// tallyDecisions sums the decisions up by site and state.
func tallyDecisions(decisions []amqDecision) amqTally {
	t := amqTally{serving: map[string][]string{}}
	for _, d := range decisions {
		where := d.broker + "/" + d.queue
		switch d.state {
		case layer.ServeOne, layer.ServeSplit:
			for _, s := range d.sites {
				t.serving[s] = append(t.serving[s], where)
			}
			if d.inferred {
				t.assumed = append(t.assumed, where)
			}
		case layer.ServeUnknown:
			t.unknownParts = append(t.unknownParts, where+": "+d.detail)
		case layer.ServeNone:
			t.noneParts = append(t.noneParts, where)
		}
	}
	t.sites = make([]string, 0, len(t.serving))
	for s := range t.serving {
		t.sites = append(t.sites, s)
	}
	sort.Strings(t.sites)
	return t
}

// conclude sets the layer's state and detail from the tally: split when
// more than one site serves, else unknown when a part is unknown, else the
// one site, else none.
func conclude(l *layer.Verdict, bs amqBrokers, t amqTally, down map[string]bool) {
	sites := t.sites
	switch {
	case len(sites) > 1:
		l.State, l.Sites = layer.ServeSplit, sites
		var parts []string
		for _, s := range sites {
			parts = append(parts, fmt.Sprintf("site %s on %s", s, strings.Join(t.serving[s], ", ")))
		}
		l.Detail = "the brokers route to more than one site: " + strings.Join(parts, "; ")
		if len(t.unknownParts) > 0 {
			l.Detail += "; unknown: " + strings.Join(t.unknownParts, "; ")
		}
	case len(t.unknownParts) > 0:
		l.State = layer.ServeUnknown
		l.Detail = "cannot tell where ActiveMQ routes: " + strings.Join(t.unknownParts, "; ")
		if len(sites) == 1 {
			l.Detail += fmt.Sprintf(" (what was observed routes to site %s)", sites[0])
		}
	case len(sites) == 1:
		l.State, l.Site, l.Sites = layer.ServeOne, sites[0], sites
		var names []string
		for _, b := range bs.up {
			names = append(names, b.Name)
		}
		l.Detail = fmt.Sprintf("site %s holds the highest-priority consumer of every watched queue on every broker that is up (%s)", sites[0], strings.Join(names, ", "))
		if len(bs.down) > 0 {
			l.Detail += "; down: " + brokerNames(bs.down)
		}
		if len(t.noneParts) > 0 {
			l.Notes = append(l.Notes, "no consumer at all (messages wait there): "+strings.Join(t.noneParts, ", "))
		}
	case len(bs.up) == 0 && len(bs.unobserved) == 0 && len(refusedOnly(bs.down, down)) > 0:
		// Not one broker answered, and only this machine's refused
		// connections say they are down: what could not be read is
		// unknown, never "none" (a firewall rejecting us looks the same).
		l.State = layer.ServeUnknown
		l.Detail = "no broker could be observed from here: " + brokerNames(refusedOnly(bs.down, down)) +
			" refused the connection; that alone does not show where ActiveMQ routes (the brokers may be down, or something between here and them refuses): " +
			"check them from their sites (sitectl status there), or let the sites' loss be confirmed"
	default:
		l.State = layer.ServeNone
		switch {
		case len(bs.up) == 0 && len(bs.unobserved) == 0:
			l.Detail = "every broker is down (" + brokerNames(bs.down) + ")"
		default:
			l.Detail = "no watched queue has a consumer on any broker that is up (" + brokerNames(bs.up) + ")"
			if len(bs.down) > 0 {
				l.Detail += "; down: " + brokerNames(bs.down)
			}
		}
	}
}

// refusedOnly are the brokers of bs that count as down only because they
// refused this machine's connection: their site's loss is not confirmed.
func refusedOnly(bs []*inventory.Broker, down map[string]bool) []*inventory.Broker {
	var out []*inventory.Broker
	for _, b := range bs {
		if !down[b.Site] {
			out = append(out, b)
		}
	}
	return out
}

// holdsBridge reports whether a broker holds a network bridge: a bridge
// connection, or a bridge (network) consumer on a watched queue.
func holdsBridge(o *amq.BrokerObservation) bool {
	for _, c := range o.Connections {
		if c.Bridge {
			return true
		}
	}
	for _, q := range o.Queues {
		for _, c := range q.Consumers {
			if c.Network {
				return true
			}
		}
	}
	return false
}

func brokerNames(bs []*inventory.Broker) string {
	var n []string
	for _, b := range bs {
		n = append(n, b.Name)
	}
	return strings.Join(n, ", ")
}

// decide finds the winner of queue q on broker b among its local consumers
// (localOnly) or among all of them, bridges included.
func (e *amqEval) decide(b *inventory.Broker, q string, localOnly bool) amqDecision {
	o := e.byName[b.Name]
	d := amqDecision{broker: b.Name, site: b.Site, queue: q}
	qo := o.Queue(q)
	if qo == nil {
		d.state, d.detail = layer.ServeUnknown, "queue not observed"
		return d
	}
	for i := range qo.Consumers {
		c := &qo.Consumers[i]
		if c.Browser || (localOnly && c.Network) {
			continue
		}
		d.cands = append(d.cands, e.candidate(b, q, c))
	}
	sort.SliceStable(d.cands, func(i, j int) bool { return d.cands[i].c.Priority > d.cands[j].c.Priority })
	var labels []string
	for _, c := range d.cands {
		labels = append(labels, c.label())
	}
	list := strings.Join(labels, "; ")
	if qo.Malformed > 0 {
		d.state = layer.ServeUnknown
		d.detail = fmt.Sprintf("%d consumer advisories could not be decoded, a consumer may be missing", qo.Malformed)
		if list != "" {
			d.detail += "; seen: " + list
		}
		return d
	}
	if len(d.cands) == 0 {
		d.state, d.detail = layer.ServeNone, "no consumer"
		return d
	}
	top := d.cands[0].c.Priority
	d.prio = top
	set := map[string]bool{}
	var unknown []string
	local := true
	for _, c := range d.cands {
		if c.c.Priority != top {
			break
		}
		if c.c.Network {
			local = false
		}
		if c.inferred {
			d.inferred = true
		}
		if len(c.sites) == 0 {
			unknown = append(unknown, c.label()+": "+c.why)
		}
		for _, s := range c.sites {
			set[s] = true
		}
	}
	d.local = local
	for s := range set {
		d.sites = append(d.sites, s)
	}
	sort.Strings(d.sites)
	switch {
	case len(unknown) > 0:
		d.state = layer.ServeUnknown
		d.detail = "the highest-priority consumer's site is not known: " + strings.Join(unknown, "; ")
	case len(d.sites) == 1:
		d.state = layer.ServeOne
		d.detail = fmt.Sprintf("site %s wins at priority %d: %s", d.sites[0], top, list)
	default:
		d.state = layer.ServeSplit
		d.detail = fmt.Sprintf("sites %s tie at priority %d (round-robin): %s", strings.Join(d.sites, " and "), top, list)
	}
	return d
}

func (e *amqEval) candidate(b *inventory.Broker, q string, c *amq.Consumer) amqCandidate {
	cand := amqCandidate{c: c}
	if !c.Network {
		if !c.ConnectionKnown {
			cand.why = "no ConnectionInfo advisory for its connection " + c.ConnectionID
			return cand
		}
		site, ambiguous := ConsumerSite(e.inv, c.ClientID, c.ClientIP)
		switch {
		case ambiguous:
			cand.why = fmt.Sprintf("client id %q / host %q match the consumer_match of more than one site", c.ClientID, c.ClientIP)
		case site == "":
			cand.why = fmt.Sprintf("client id %q / host %q match no site's consumer_match", c.ClientID, c.ClientIP)
		default:
			cand.sites = []string{site}
		}
		return cand
	}
	remote := e.remoteOf(b, c)
	if remote == nil {
		cand.why = "the bridge's remote broker is not in the inventory"
		return cand
	}
	if ro := e.byName[remote.Name]; ro.Up() {
		rd, ok := e.local[[2]string{remote.Name, q}]
		if !ok {
			cand.why = "remote broker " + remote.Name + " not evaluated"
			return cand
		}
		switch rd.state {
		case layer.ServeOne, layer.ServeSplit:
			cand.sites = rd.sites
		case layer.ServeNone:
			cand.why = "remote broker " + remote.Name + " shows no local consumer (stale bridge subscription)"
		default:
			cand.why = "on remote broker " + remote.Name + ": " + rd.detail
		}
		return cand
	}
	cand.sites, cand.inferred = []string{remote.Site}, true
	return cand
}

// remoteOf finds the inventory broker a bridge consumer forwards to: by
// broker id (brokerPath / networkBrokerId against the other observations),
// then by broker name (bridge connection id), then, with two brokers, the
// other one.
func (e *amqEval) remoteOf(b *inventory.Broker, c *amq.Consumer) *inventory.Broker {
	for _, rb := range e.brokers {
		if o := e.byName[rb.Name]; rb != b && o != nil && o.BrokerID != "" && o.BrokerID == c.RemoteBrokerID {
			return rb
		}
	}
	for _, rb := range e.brokers {
		if o := e.byName[rb.Name]; rb != b && c.RemoteBroker != "" && (rb.Name == c.RemoteBroker || o != nil && o.BrokerName == c.RemoteBroker) {
			return rb
		}
	}
	if len(e.brokers) == 2 {
		for _, rb := range e.brokers {
			if rb != b {
				return rb
			}
		}
	}
	return nil
}

// settle decides for a broker that could not be observed, from the other
// broker of a two-broker network: when it is bridged to this one and its
// consumers (seen here as bridge consumers) rank below the winner here, it
// forwards everything here.
func (e *amqEval) settle(x *inventory.Broker, up []*inventory.Broker, decisions []amqDecision) ([]amqDecision, string) {
	if len(e.brokers) != 2 || len(up) != 1 {
		return nil, "no other broker settles it"
	}
	y := up[0]
	yo := e.byName[y.Name]
	if !holdsBridge(yo) {
		return nil, fmt.Sprintf("%s shows no network bridge to it, so it may serve its own consumers", y.Name)
	}
	var out []amqDecision
	var sites []string
	for _, q := range e.queues {
		var yd *amqDecision
		for i := range decisions {
			if decisions[i].broker == y.Name && decisions[i].queue == q {
				yd = &decisions[i]
			}
		}
		if yd == nil || yd.state != layer.ServeOne || !yd.local {
			return nil, fmt.Sprintf("%s does not show a local consumer winning %s there", y.Name, q)
		}
		for _, c := range yd.cands {
			if c.c.Network && c.c.Priority >= yd.prio {
				return nil, fmt.Sprintf("its consumers of %s (seen on %s at priority %d) may outrank %s's", q, y.Name, c.c.Priority, y.Name)
			}
			if c.c.Network && c.c.Priority < 0 {
				// trap: x's own consumers outrank the bridge there
				return nil, fmt.Sprintf("it has consumers of %s and decreaseNetworkConsumerPriority keeps them ahead of the bridge there", q)
			}
		}
		out = append(out, amqDecision{broker: x.Name, site: x.Site, queue: q, state: layer.ServeOne, sites: yd.sites, prio: yd.prio,
			detail: "forwards to " + y.Name + " (inferred)"})
		sites = append(sites, yd.sites[0])
	}
	slices.Sort(sites)
	sites = slices.Compact(sites)
	return out, fmt.Sprintf("%s shows it bridged with only lower-priority consumers, so it forwards to %s's winner (site %s)", y.Name, y.Name, strings.Join(sites, ", "))
}

// trapNotes explains bridge consumers whose priority was decreased.
func (e *amqEval) trapNotes(up []*inventory.Broker, l *layer.Verdict) []string {
	var notes []string
	for _, b := range up {
		o := e.byName[b.Name]
		for _, q := range o.Queues {
			var prios []string
			var remoteSites []string
			for _, c := range q.Consumers {
				if !c.Network || c.Priority >= 0 {
					continue
				}
				prios = append(prios, strconv.Itoa(c.Priority))
				cand := e.candidate(b, q.Name, &c)
				remoteSites = append(remoteSites, cand.sites...)
			}
			if len(prios) == 0 {
				continue
			}
			slices.Sort(remoteSites)
			remoteSites = slices.Compact(remoteSites)
			who := "the remote site's consumers"
			if len(remoteSites) > 0 {
				who = "site " + strings.Join(remoteSites, "/") + "'s consumers"
			}
			notes = append(notes, fmt.Sprintf(
				"decreaseNetworkConsumerPriority trap on broker %s, queue %s: its bridge consumers carry priority %s instead of the remote consumers' own, so %s behind the bridge can never win over a local consumer on %s, whatever their priority. "+
					"The network connector decreases network consumer priority (decreaseNetworkConsumerPriority=true, the default since ActiveMQ 5.18; it was false up to 5.17). "+
					"Fix: %s",
				b.Name, q.Name, strings.Join(prios, ", "), who, b.Name, DecreasePriorityFix))
		}
	}
	if len(notes) > 0 && l.Fix == "" {
		l.Fix = DecreasePriorityFix
	}
	return notes
}

// observationNotes reports what makes an observation less than complete.
func (e *amqEval) observationNotes(up []*inventory.Broker) []string {
	var notes []string
	for _, b := range up {
		o := e.byName[b.Name]
		if o.Malformed > 0 {
			notes = append(notes, fmt.Sprintf("broker %s: %d advisory message(s) could not be decoded; first: %s", b.Name, o.Malformed, o.MalformedSample))
		}
		if !o.Quiet {
			notes = append(notes, fmt.Sprintf("broker %s: advisories never went quiet before the deadline; consumers were still changing", b.Name))
		}
		seen := map[string]bool{}
		for _, q := range o.Queues {
			for _, c := range q.Consumers {
				if c.Network || !c.ConnectionKnown || seen[c.ConnectionID] {
					continue
				}
				if site, amb := ConsumerSite(e.inv, c.ClientID, c.ClientIP); site == "" && !amb {
					seen[c.ConnectionID] = true
					notes = append(notes, fmt.Sprintf("broker %s: consumer of %s with client id %q, host %q matches no site's consumer_match", b.Name, q.Name, c.ClientID, c.ClientIP))
				}
			}
		}
	}
	return notes
}

// scenario recognises the ActiveMQ failover scenarios of the deployment's
// runbook (seed 003) from broker reachability, which sites have local
// consumers, and whether the brokers are bridged.
func (e *amqEval) scenario(up, down, unobserved []*inventory.Broker, l layer.Verdict) string {
	var c amqScene
	c.pSite, c.sSite = e.sitePair()
	if c.pSite == "" || c.sSite == "" || len(e.inv.Sites) != 2 {
		return ""
	}
	pState, pNames := e.siteState(c.pSite, up, down)
	sState, sNames := e.siteState(c.sSite, up, down)
	c.pState, c.sState = pState, sState
	c.amq1 = strings.Join(pNames, "/")
	c.amq2 = strings.Join(sNames, "/")
	if pState == "none" || sState == "none" {
		return ""
	}
	if len(unobserved) > 0 {
		return fmt.Sprintf("failover scenario not recognised: broker %s could not be observed", brokerNames(unobserved))
	}
	consumers, bridged := e.consumerSites(up)
	c.cP, c.cS, c.bridged = consumers[c.pSite], consumers[c.sSite], bridged
	n, text, expect, plain := c.match(l)
	if n == "" {
		return plain
	}
	out := "failover scenario " + n + ": " + text
	switch {
	case expect == "split" && l.State != layer.ServeSplit && c.cP && c.cS:
		out += fmt.Sprintf(" — but the layer is %s", l.State)
	case expect != "split" && !(l.State == layer.ServeOne && l.Site == expect):
		got := l.State
		if l.State == layer.ServeOne {
			got = "site " + l.Site
		}
		out += fmt.Sprintf(" — expected site %s to receive the requests, observed: %s", expect, got)
	}
	return out
}

// amqScene is what the failover scenarios are told apart by: each site's
// brokers' state ("up", "down", "partial", "unknown" or "none") and names,
// whether each site has local consumers, and whether the brokers are
// bridged.
type amqScene struct {
	pSite, sSite   string // the primary site and the other one
	pState, sState string
	amq1, amq2     string // the brokers' names of pSite, sSite
	cP, cS         bool   // pSite, sSite has consumers
	bridged        bool
}

// sitePair is the inventory's primary site and the first other site.
func (e *amqEval) sitePair() (pSite, sSite string) {
	for _, s := range e.inv.Sites {
		if s != nil && s.Role == inventory.Primary && pSite == "" {
			pSite = s.Name
		}
	}
	for _, s := range e.inv.Sites {
		if s != nil && s.Name != pSite && sSite == "" {
			sSite = s.Name
		}
	}
	return pSite, sSite
}

// siteState is the state of site's brokers taken together ("none" when it
// has none, "up" or "down" when all are, "partial" when some are up, else
// "unknown") and their names.
func (e *amqEval) siteState(site string, up, down []*inventory.Broker) (string, []string) {
	var names []string
	n, nUp, nDown := 0, 0, 0
	for _, b := range e.brokers {
		if b.Site != site {
			continue
		}
		n++
		names = append(names, b.Name)
		if slices.Contains(up, b) {
			nUp++
		}
		if slices.Contains(down, b) {
			nDown++
		}
	}
	switch {
	case n == 0:
		return "none", names
	case nUp == n:
		return "up", names
	case nDown == n:
		return "down", names
	case nUp > 0:
		return "partial", names
	}
	return "unknown", names
}

// consumerSites is the sites with a local consumer on a broker that is up,
// and whether any broker holds a network bridge (a bridge connection or a
// bridge consumer).
func (e *amqEval) consumerSites(up []*inventory.Broker) (map[string]bool, bool) {
	consumers := map[string]bool{}
	bridged := false
	for _, b := range up {
		o := e.byName[b.Name]
		bridged = bridged || holdsBridge(o)
		for _, q := range o.Queues {
			for _, c := range q.Consumers {
				if c.Network {
					continue
				}
				if !c.ConnectionKnown || c.Browser {
					continue
				}
				if site, _ := ConsumerSite(e.inv, c.ClientID, c.ClientIP); site != "" {
					consumers[site] = true
				}
			}
		}
	}
	return consumers, bridged
}

// match is the runbook's scenario table: the scenario's number, its text
// and the site expected to receive the requests ("split" for scenario 4);
// or, for a situation the runbook does not number, n is empty and plain is
// the note (empty when there is none).
func (c amqScene) match(l layer.Verdict) (n, text, expect, plain string) {
	switch {
	case c.pState == "down" && c.sState == "down" && l.State == layer.ServeUnknown:
		return "", "", "", fmt.Sprintf("both brokers (%s of site %s, %s of site %s) refused this machine's connection: if they are down, nothing is routed", c.amq1, c.pSite, c.amq2, c.sSite)
	case c.pState == "down" && c.sState == "down":
		return "", "", "", fmt.Sprintf("both brokers (%s of site %s, %s of site %s) are down: nothing is routed", c.amq1, c.pSite, c.amq2, c.sSite)
	case c.pState == "down" && c.sState == "up" && c.cP:
		n, expect = "1", c.pSite
		text = fmt.Sprintf("%s (site %s's broker) is down while site %s is active: %s takes over and site %s's consumers, now connected to it, keep receiving the requests because of their higher consumer priority", c.amq1, c.pSite, c.pSite, c.amq2, c.pSite)
	case c.pState == "down" && c.sState == "up" && c.cS:
		n, expect = "2", c.sSite
		text = fmt.Sprintf("%s and site %s are both down: %s and site %s receive the requests (site %s takes over the agents' subscriptions)", c.amq1, c.pSite, c.amq2, c.sSite, c.sSite)
	case c.pState == "down" && c.sState == "up" && !c.cP && !c.cS:
		// scenario 2 before site B has taken over: nobody consumes yet
		return "", "", "", fmt.Sprintf("failover scenario 2, pending: %s and site %s are down and no site's consumers are on %s yet: requests wait on %s until site %s takes over (sitectl takeover --site %s)", c.amq1, c.pSite, c.amq2, c.amq2, c.sSite, c.sSite)
	case c.pState == "up" && c.sState == "down" && !c.cP && c.cS:
		n, expect = "5", c.sSite
		text = fmt.Sprintf("%s is up (back) while site %s has no consumers (still down, or passive) and %s is down: clients send to %s, which sends to site %s (client → %s → site %s → %s → client)", c.amq1, c.pSite, c.amq2, c.amq1, c.sSite, c.amq1, c.sSite, c.amq1)
	case c.pState == "up" && c.sState == "down" && c.cP:
		return "", "", "", fmt.Sprintf("%s (site %s's broker) is down; site %s's consumers are served through %s", c.amq2, c.sSite, c.pSite, c.amq1)
	case c.pState == "up" && c.sState == "up" && !c.bridged && (c.cP || c.cS):
		n, expect = "4", "split"
		text = fmt.Sprintf("the link between the brokers is down (no network bridge, no bridge consumers on %s or %s): each broker serves its own consumers independently", c.amq1, c.amq2)
		if !(c.cP && c.cS) {
			text += "; clients of the broker without consumers are not served"
		}
	case c.pState == "up" && c.sState == "up" && c.cP && c.cS && l.State == layer.ServeOne && l.Site == c.sSite:
		n, expect = "3", c.sSite
		text = fmt.Sprintf("site %s is restored but site %s keeps serving: site %s's connector continues to process requests until its clients lose connectivity to it or it goes down; switch back deliberately (sitectl switchover --site %s)", c.pSite, c.sSite, c.sSite, c.pSite)
	case c.pState == "up" && c.sState == "up" && c.cP && c.cS:
		if l.State == layer.ServeOne && l.Site == c.pSite {
			return "", "", "", fmt.Sprintf("normal operation: both brokers and both sites are up, site %s holds the highest consumer priority", c.pSite)
		}
		return "", "", "", ""
	case c.pState == "up" && c.sState == "up" && !c.cP && c.cS:
		n, expect = "6", c.sSite
		text = fmt.Sprintf("site %s has no consumers (it is down, or passive with its connector stopped) while both brokers are up: requests go to site %s as in scenario 5 (through the bridge for clients of %s)", c.pSite, c.sSite, c.amq1)
	case c.pState == "up" && c.sState == "up" && c.cP && !c.cS:
		n, expect = "7", c.pSite
		text = fmt.Sprintf("site %s has no consumers (it is down, or passive with its connector stopped) while both brokers are up: %s forwards its requests to %s and site %s handles them all (client → %s → %s → site %s)", c.sSite, c.amq2, c.amq1, c.pSite, c.amq2, c.amq1, c.pSite)
	default:
		return "", "", "", ""
	}
	return n, text, expect, ""
}

// SiteEvidence is what the brokers of the other sites say of site:
// alive when a broker holds a network bridge with one of the site's brokers
// (a bridge connection or a bridge consumer naming it) or a consumer of the
// site's clients; down when it holds none of these. A broker that could not
// be observed gives no answer (an access problem when it refused our
// credentials).
func SiteEvidence(inv *inventory.Inventory, obs []*amq.BrokerObservation, site string) []layer.Evidence {
	if inv == nil || inv.ActiveMQ == nil {
		return nil
	}
	names := map[string]bool{} // the site's brokers, by inventory and broker name
	for _, b := range inv.ActiveMQ.Brokers {
		if b.Site == site {
			names[b.Name] = true
		}
	}
	for _, o := range obs {
		if o != nil && o.Site == site && o.BrokerName != "" {
			names[o.BrokerName] = true
		}
	}
	if len(names) == 0 {
		return nil
	}
	var out []layer.Evidence
	for _, o := range obs {
		if o == nil || o.Site == site {
			continue
		}
		e := layer.Evidence{Site: site, Observer: "activemq " + o.Broker, Independent: true}
		if o.Err != nil {
			e.Saw, e.Detail = layer.SawNoAnswer, o.Err.Error()
			var ae *amq.Error
			if errors.Is(o.Err, amq.ErrAuth) || errors.As(o.Err, &ae) && ae.Op == amq.OpCredentials {
				e.Saw = layer.SawAccess
			}
			out = append(out, e)
			continue
		}
		var seen []string
		for _, c := range o.Connections {
			if l, r, ok := amq.BridgeBrokers(c.ID); ok && (names[l] || names[r]) {
				seen = append(seen, "bridge "+l+"->"+r)
			} else if s, _ := ConsumerSite(inv, c.ClientID, c.ClientIP); s == site {
				seen = append(seen, "connection of "+c.ClientID+c.ClientIP)
			}
		}
		for _, q := range o.Queues {
			for _, c := range q.Consumers {
				if c.Network && names[c.RemoteBroker] {
					seen = append(seen, q.Name+" bridge consumer to "+c.RemoteBroker)
				}
			}
		}
		if len(seen) > 0 {
			// a broker keeps a dead peer's bridge until its inactivity
			// timeout (30 s by default): what it holds may be stale
			e.Saw, e.Weak, e.Detail = layer.SawAlive, true, "holds "+strings.Join(dedupe(seen), ", ")
		} else {
			e.Saw, e.Detail = layer.SawDown, "holds no bridge with site "+site+"'s broker and no connection of its clients"
		}
		out = append(out, e)
	}
	return out
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
