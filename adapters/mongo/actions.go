package mongo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdrv "go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sitectl/sitectl/inventory"
)

// Defaults for the actions.
const (
	DefaultWait     = 30 * time.Second // elections normally finish within 12s (MongoDB docs); poll longer
	DefaultPoll     = 500 * time.Millisecond
	DefaultCatchUp  = 10 * time.Second // replSetStepDown secondaryCatchUpPeriodSecs default
	DefaultStepDown = 60 * time.Second // replSetStepDown default period
)

// Set is a replica set to observe and drive.
type Set struct {
	Members []Member
	Creds   Credentials
	Timeout time.Duration // per member and command; DefaultTimeout if zero
	Poll    time.Duration // how often WaitPrimary looks; DefaultPoll if zero
}

// NewSet builds a Set from the inventory and loads its credentials.
func NewSet(m *inventory.MongoDB) (*Set, error) {
	if m == nil {
		return nil, errors.New("the inventory has no mongodb section")
	}
	creds, err := LoadCredentials(m.Credentials)
	if err != nil {
		return nil, err
	}
	return &Set{Members: MembersFrom(m), Creds: creds, Timeout: m.Timeout.D()}, nil
}

func (s *Set) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

func (s *Set) poll() time.Duration {
	if s.Poll > 0 {
		return s.Poll
	}
	return DefaultPoll
}

// Observe looks at every member (see the package function).
func (s *Set) Observe(ctx context.Context) *Observation {
	return Observe(ctx, s.Members, s.Creds, s.timeout())
}

func (s *Set) member(name string) (Member, bool) {
	for _, m := range s.Members {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// WaitOptions say which primary WaitPrimary waits for.
type WaitOptions struct {
	ExpectMember string // inventory name of the member that must be primary; empty: any
	ExpectSite   string // site the primary must be on; empty: any
	// An election must have happened after After (the primary's
	// electionDate or lastElectionDate is newer) and/or in a term newer
	// than AfterTerm. With both zero, any writable primary will do.
	After     time.Time
	AfterTerm int64
	Timeout   time.Duration // DefaultWait if zero (an earlier ctx deadline wins)
}

func (w WaitOptions) describe() string {
	var b strings.Builder
	b.WriteString("a writable primary")
	if w.ExpectMember != "" {
		b.WriteString(" on " + w.ExpectMember)
	}
	if w.ExpectSite != "" {
		b.WriteString(" at site " + w.ExpectSite)
	}
	if w.AfterTerm > 0 {
		fmt.Fprintf(&b, " elected in a term after %d", w.AfterTerm)
	}
	if !w.After.IsZero() {
		b.WriteString(" elected after " + w.After.UTC().Format(time.RFC3339Nano))
	}
	return b.String()
}

// ready reports whether obs shows the primary w waits for, and if not why.
func (w WaitOptions) ready(obs *Observation) (*MemberStatus, string) {
	p := obs.Primary()
	if p == nil {
		return nil, "no member is a writable primary: " + obs.Summary()
	}
	switch {
	case w.ExpectMember != "" && p.Member.Name != w.ExpectMember:
		return nil, fmt.Sprintf("the primary is %s, not %s: %s", p.Member.Name, w.ExpectMember, obs.Summary())
	case w.ExpectSite != "" && p.Member.Site != w.ExpectSite:
		return nil, fmt.Sprintf("the primary is %s at site %s, not site %s", p.Member.Name, p.Member.Site, w.ExpectSite)
	case w.AfterTerm > 0 && !p.StatusKnown:
		return nil, fmt.Sprintf("%s is writable but its term is unknown (replSetGetStatus failed)", p.Member.Name)
	case w.AfterTerm > 0 && p.Term <= w.AfterTerm:
		return nil, fmt.Sprintf("%s is primary but still in term %d: no election since term %d", p.Member.Name, p.Term, w.AfterTerm)
	}
	if !w.After.IsZero() {
		elected := p.ElectionDate
		if p.LastElection != nil && p.LastElection.Date.After(elected) {
			elected = p.LastElection.Date
		}
		if elected.IsZero() {
			return nil, fmt.Sprintf("%s is primary but its election date is unknown", p.Member.Name)
		}
		if !elected.After(w.After) {
			return nil, fmt.Sprintf("%s is primary since %s, before %s: no new election", p.Member.Name,
				elected.Format(time.RFC3339Nano), w.After.UTC().Format(time.RFC3339Nano))
		}
	}
	return p, ""
}

// WaitPrimary polls until a writable primary exists (on the expected member
// or site, if given) and an election really happened after the given time
// or term. It returns the observation that showed it, or an *ActionError
// wrapping ErrDeadline with the last observation.
func (s *Set) WaitPrimary(ctx context.Context, w WaitOptions) (*Observation, error) {
	if w.ExpectMember != "" {
		if _, ok := s.member(w.ExpectMember); !ok {
			return nil, &ActionError{Action: "wait-primary", Expected: w.describe(), Observed: "no such member", Err: ErrUnknownMember}
		}
	}
	limit := w.Timeout
	if limit <= 0 {
		limit = DefaultWait
	}
	// Observations run on their own context, never on the wait's deadline:
	// the driver fails an operation early when a deadline is nearer than
	// its round-trip estimate, so an observation cut by the deadline would
	// report healthy members as timed out, and could do so a moment before
	// the deadline has fired. When the deadline passes first, the wait ends
	// with the last complete observation and the one in flight is cancelled.
	obsCtx, cancelObs := context.WithCancel(ctx)
	defer cancelObs()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	start := time.Now()
	var last *Observation
	var why string
	for {
		done := make(chan *Observation, 1)
		go func() { done <- s.Observe(obsCtx) }()
		var obs *Observation
		select {
		case obs = <-done:
		case <-ctx.Done():
			if last == nil {
				obs = <-done // always one complete observation, however short the wait
			}
		}
		if obs != nil {
			last = obs
			var p *MemberStatus
			if p, why = w.ready(obs); p != nil {
				return obs, nil
			}
		}
		obs = last
		select {
		case <-ctx.Done():
			where := ""
			if w.ExpectMember != "" {
				m, _ := s.member(w.ExpectMember)
				where = fmt.Sprintf("%s (%s)", m.Name, m.Address)
			}
			return obs, &ActionError{Action: "wait-primary", Expected: w.describe(),
				Observed: fmt.Sprintf("after %s, %s", time.Since(start).Round(time.Millisecond), why),
				Where:    where, Err: ErrDeadline,
				Hint: "MongoDB elections normally complete within about 12s; with no majority of voting members reachable there is no election at all"}
		case <-time.After(s.poll()):
		}
	}
}

// MoveOptions tune MovePrimary.
type MoveOptions struct {
	CatchUp  time.Duration // secondaryCatchUpPeriodSecs; DefaultCatchUp if zero
	StepDown time.Duration // replSetStepDown period, must exceed CatchUp; DefaultStepDown if zero
	Timeout  time.Duration // deadline to see the target elected; DefaultWait if zero
}

// MoveResult reports a completed planned move.
type MoveResult struct {
	From           string       `json:"from"`
	To             string       `json:"to"`
	AlreadyPrimary bool         `json:"already_primary,omitempty"`
	Reconfigured   bool         `json:"reconfigured"`
	ConfigVersion  int64        `json:"config_version"`
	Priority       float64      `json:"priority"` // the target's new priority
	Term           int64        `json:"term"`
	Reason         string       `json:"reason,omitempty"` // lastElectionReason on the new primary
	Observation    *Observation `json:"observation"`
}

// MovePrimary makes target the primary in a planned way and keeps it there.
//
// A plain replSetStepDown (or replSetStepUp) is not enough: once the
// step-down period ends, a member with a higher priority calls an election
// and takes the primary back ("priorityTakeover"). So MovePrimary first
// raises the target's priority above every other member's with
// replSetReconfig on the current primary (one change, version+1), then
// steps the primary down with secondaryCatchUpPeriodSecs so that the target
// catches up, and finally waits until the target is elected.
func (s *Set) MovePrimary(ctx context.Context, target string, o MoveOptions) (*MoveResult, error) {
	catchUp, stepDown := o.CatchUp, o.StepDown
	if catchUp <= 0 {
		catchUp = DefaultCatchUp
	}
	if stepDown <= 0 {
		stepDown = DefaultStepDown
	}
	want := "the primary moved to " + target
	mp, err := s.movePreflight(ctx, target, catchUp, stepDown)
	if err != nil {
		return nil, err
	}
	p, where := mp.p, mp.where
	cfg, tPri, maxOther, err := raisePriority(p.ConfigRaw, []string{mp.t.Me, mp.tm.Address})
	if err != nil {
		return nil, moveFail(want, err.Error(), where, "", ErrNotElectable)
	}
	res := &MoveResult{From: p.Member.Name, To: target, Priority: tPri, ConfigVersion: p.ConfigVersion, Term: p.Term}
	if cfg == nil && p.Member.Name == target {
		res.AlreadyPrimary, res.Observation = true, mp.obs
		return res, nil
	}
	client, merr := connect(ctx, p.Member, s.Creds, s.timeout())
	if merr != nil {
		return nil, moveFail(want, "cannot connect to the primary", where, "", merr)
	}
	defer disconnect(client)
	hint := target + " already has the highest priority and takes over by priority once it has caught up; check with sitectl status"
	if cfg != nil {
		if merr := s.reconfig(ctx, client, p, cfg); merr != nil {
			return nil, moveFail(fmt.Sprintf("replSetReconfig raising %s's priority to %g accepted", target, maxOther+1), "it failed", where,
				"nothing was stepped down; the configuration may or may not have changed: check with sitectl status", merr)
		}
		res.Reconfigured = true
		res.ConfigVersion++
		res.Priority = maxOther + 1
		if p.Member.Name == target {
			res.AlreadyPrimary = true
			res.Observation = s.Observe(ctx)
			return res, nil
		}
		hint = fmt.Sprintf("the priority change is in place (config version %d): %s takes over by priority once it has caught up; "+
			"check with sitectl status", res.ConfigVersion, target)
	}
	if err := s.stepDown(ctx, client, p, catchUp, stepDown, where, hint); err != nil {
		return nil, err
	}
	return s.waitMoved(ctx, target, p.Term, o.Timeout, res)
}

// moveFail is a failed planned move: what was expected, what was observed,
// where, and how to go on.
func moveFail(expected, observed, where, hint string, err error) error {
	return &ActionError{Action: "move-primary", Expected: expected, Observed: observed, Where: where, Hint: hint, Err: err}
}

// movePlan is what a planned move starts from: the observation, its
// primary p (where: its name and address), the target's status t and its
// inventory member tm.
type movePlan struct {
	obs   *Observation
	p, t  *MemberStatus
	tm    Member
	where string
}

// movePreflight checks, before anything is changed, that target can be
// made primary: a data-bearing member, valid periods, a primary whose
// configuration is known, and the target a healthy secondary the primary
// sees.
func (s *Set) movePreflight(ctx context.Context, target string, catchUp, stepDown time.Duration) (movePlan, error) {
	want := "the primary moved to " + target
	tm, ok := s.member(target)
	if !ok {
		return movePlan{}, moveFail(want, "no member named "+target, "", "", ErrUnknownMember)
	}
	if tm.Arbiter {
		return movePlan{}, moveFail(want, target+" is an arbiter", "", "an arbiter holds no data and can never be primary", ErrNotElectable)
	}
	if stepDown <= catchUp {
		return movePlan{}, moveFail(want, fmt.Sprintf("step-down period %s is not longer than the catch-up period %s", stepDown, catchUp), "",
			"MongoDB rejects that with BadValue (2)", errors.New("invalid options"))
	}
	obs := s.Observe(ctx)
	p := obs.Primary()
	if p == nil {
		return movePlan{}, moveFail(want, "no writable primary to move from: "+obs.Summary(), "",
			"a planned move needs a primary; wait for an election (sitectl status) or, if the majority is lost, see the forced reconfig", ErrNoPrimary)
	}
	where := fmt.Sprintf("%s (%s)", p.Member.Name, p.Member.Address)
	if !p.ConfigKnown {
		return movePlan{}, moveFail(want, "the primary's configuration could not be read", where, "", firstMemberErr(p))
	}
	t := obs.Member(target)
	if p.Member.Name != target {
		v := p.Peer(target)
		switch {
		case !t.Observed() || t.State != StateSecondary:
			return movePlan{}, moveFail(want, fmt.Sprintf("%s is not a healthy secondary (%s)", target, t.Summary()), fmt.Sprintf("%s (%s)", tm.Name, tm.Address),
				"nothing was changed; a planned move needs the target up and replicating", ErrNotElectable)
		case v == nil || v.Health != 1:
			return movePlan{}, moveFail(want, fmt.Sprintf("the primary %s does not see %s healthy", p.Member.Name, target), where,
				"nothing was changed; restore the link between them first", ErrNotElectable)
		}
	}
	return movePlan{obs: obs, p: p, t: t, tm: tm, where: where}, nil
}

// reconfig runs replSetReconfig with cfg on the primary p.
func (s *Set) reconfig(ctx context.Context, client *mdrv.Client, p *MemberStatus, cfg bson.D) *MemberError {
	rctx, cancel := context.WithTimeout(ctx, max(s.timeout(), 10*time.Second))
	defer cancel()
	_, merr := runCommand(rctx, client, p.Member, s.Creds, s.timeout(), bson.D{{Key: "replSetReconfig", Value: cfg}})
	return merr
}

// stepDown steps the primary p down for stepDown, letting a secondary
// catch up for catchUp; the errors of a primary that steps down while
// answering are tolerated.
func (s *Set) stepDown(ctx context.Context, client *mdrv.Client, p *MemberStatus, catchUp, stepDown time.Duration, where, hint string) error {
	secs := func(d time.Duration) int64 { return int64(math.Ceil(d.Seconds())) }
	sctx, cancel := context.WithTimeout(ctx, catchUp+s.timeout()+5*time.Second)
	_, merr := runCommand(sctx, client, p.Member, s.Creds, catchUp+s.timeout(), bson.D{
		{Key: "replSetStepDown", Value: secs(stepDown)},
		{Key: "secondaryCatchUpPeriodSecs", Value: secs(catchUp)},
	})
	cancel()
	if merr != nil && !stepDownTolerated(merr) {
		if merr.Code == CodeExceededTimeLimit {
			return moveFail(fmt.Sprintf("an electable secondary caught up within %s", catchUp), "none did", where, hint, errors.Join(ErrNotCaughtUp, merr))
		}
		return moveFail("replSetStepDown accepted", "it failed", where, hint, merr)
	}
	return nil
}

// waitMoved waits until target is elected in a term after term and
// completes res with the new primary's term, election reason and
// configuration version.
func (s *Set) waitMoved(ctx context.Context, target string, term int64, timeout time.Duration, res *MoveResult) (*MoveResult, error) {
	wobs, err := s.WaitPrimary(ctx, WaitOptions{ExpectMember: target, AfterTerm: term, Timeout: timeout})
	if err != nil {
		var ae *ActionError
		if errors.As(err, &ae) {
			ae.Action = "move-primary"
			ae.Hint = "the step-down was accepted but " + target + " was not seen elected; a plain step-down is undone by priority takeover, " +
				"which is why the priority was raised first: check with sitectl status"
		}
		return nil, err
	}
	np := wobs.Primary()
	res.Term, res.Observation = np.Term, wobs
	if np.LastElection != nil {
		res.Reason = np.LastElection.Reason
	}
	if np.ConfigKnown {
		res.ConfigVersion = np.ConfigVersion
	}
	return res, nil
}

// stepDownTolerated: errors replSetStepDown is expected to produce while the
// primary steps down (connections closed by servers before 4.2, or the
// primary already stepped down because the target won by priority).
func stepDownTolerated(e *MemberError) bool {
	switch e.Code {
	case CodePrimarySteppedDown, CodeInterruptedDueToReplState, CodeShutdownInProgress, CodeInterruptedAtShutdown, CodeNotWritablePrimary:
		return true
	}
	return e.Kind == KindProtocol || e.Kind == KindNetwork || (e.Kind == KindTimeout && mdrv.IsNetworkError(e.Err))
}

func firstMemberErr(m *MemberStatus) error {
	if m.Err != nil {
		return m.Err
	}
	if len(m.Errors) > 0 {
		return m.Errors[0]
	}
	return errors.New("unknown")
}

// raisePriority returns the configuration with the target's priority raised
// above every other member's and version+1, or nil if the target already
// has the highest priority. hosts are the names the target may have in the
// configuration.
func raisePriority(raw bson.Raw, hosts []string) (cfg bson.D, targetPri, maxOther float64, err error) {
	if err := bson.Unmarshal(raw, &cfg); err != nil {
		return nil, 0, 0, fmt.Errorf("the configuration cannot be decoded: %v", err)
	}
	var members bson.A
	vi := -1
	for i, e := range cfg {
		switch e.Key {
		case "members":
			members, _ = e.Value.(bson.A)
		case "version":
			vi = i
		}
	}
	if members == nil || vi < 0 {
		return nil, 0, 0, errors.New("the configuration has no members or no version")
	}
	ti := -1
	for i, mv := range members {
		m, ok := mv.(bson.D)
		if !ok {
			return nil, 0, 0, fmt.Errorf("config members[%d] is not a document", i)
		}
		host, _ := lookupD(m, "host").(string)
		pri := toFloat(lookupD(m, "priority"), 1)
		if arb, _ := lookupD(m, "arbiterOnly").(bool); arb {
			pri = 0
		}
		isTarget := false
		for _, h := range hosts {
			if h != "" && h == host {
				isTarget = true
			}
		}
		if isTarget {
			ti, targetPri = i, pri
			if toFloat(lookupD(m, "votes"), 1) == 0 {
				return nil, 0, 0, fmt.Errorf("%s has votes: 0 in the configuration", host)
			}
			if arb, _ := lookupD(m, "arbiterOnly").(bool); arb {
				return nil, 0, 0, fmt.Errorf("%s is an arbiter in the configuration", host)
			}
			continue
		}
		maxOther = max(maxOther, pri)
	}
	if ti < 0 {
		return nil, 0, 0, fmt.Errorf("the target (%s) is not in the replica set configuration", strings.Join(hosts, " / "))
	}
	if targetPri > maxOther {
		return nil, targetPri, maxOther, nil
	}
	if maxOther+1 > 1000 {
		return nil, 0, 0, errors.New("priorities are already at the maximum (1000)")
	}
	m := members[ti].(bson.D)
	setD(&m, "priority", maxOther+1)
	members[ti] = m
	switch v := cfg[vi].Value.(type) {
	case int32:
		cfg[vi].Value = v + 1
	case int64:
		cfg[vi].Value = v + 1
	case float64:
		cfg[vi].Value = v + 1
	default:
		return nil, 0, 0, errors.New("config version is not a number")
	}
	return cfg, targetPri, maxOther, nil
}

func lookupD(d bson.D, key string) any {
	for _, e := range d {
		if e.Key == key {
			return e.Value
		}
	}
	return nil
}

func setD(d *bson.D, key string, v any) {
	for i := range *d {
		if (*d)[i].Key == key {
			(*d)[i].Value = v
			return
		}
	}
	*d = append(*d, bson.E{Key: key, Value: v})
}

func toFloat(v any, def float64) float64 {
	switch n := v.(type) {
	case int32:
		return float64(n)
	case int64:
		return float64(n)
	case float64:
		return n
	}
	return def
}

// Confirm is the operator's explicit go-ahead for ForcePromote. The CLI
// fills it from an interactive prompt (or explicit flags); the zero value
// refuses.
type Confirm struct {
	// Fenced: the operator attests that the members being removed are
	// powered off or isolated from every client (fencing).
	Fenced bool
	// TypedSite is what the operator typed when asked for the site that
	// must become primary; it must equal ExpectedSite exactly.
	TypedSite    string
	ExpectedSite string
}

// ConfirmError is returned when Confirm does not allow the forced reconfig.
type ConfirmError struct {
	Reason string
}

func (e *ConfirmError) Error() string {
	return "forced reconfig refused: " + e.Reason
}

func (e *ConfirmError) Unwrap() error { return ErrNotConfirmed }

func (c Confirm) check(survivor Member) error {
	switch {
	case c.ExpectedSite == "":
		return &ConfirmError{Reason: "no confirmation was given (the site to promote must be typed by the operator)"}
	case c.ExpectedSite != survivor.Site:
		return &ConfirmError{Reason: fmt.Sprintf("the confirmed site %s is not the survivor's site %s", c.ExpectedSite, survivor.Site)}
	case c.TypedSite != c.ExpectedSite:
		return &ConfirmError{Reason: fmt.Sprintf("the operator typed %q, not %q", c.TypedSite, c.ExpectedSite)}
	case !c.Fenced:
		return &ConfirmError{Reason: "the other members are not confirmed fenced (powered off or isolated)"}
	}
	return nil
}

// ForcePromoteWarnings is the exact text to print before asking for the
// confirmation and to write to the journal afterwards.
func ForcePromoteWarnings(survivor string, keep, removed []string) []string {
	voters := append([]string{survivor}, keep...)
	rm := strings.Join(removed, ", ")
	if rm == "" {
		rm = "(none)"
	}
	return []string{
		fmt.Sprintf("FORCED RECONFIG: the replica set configuration is rewritten on %s so that only %s remain members; "+
			"MongoDB documents this only for catastrophic failures, never for automatic scripts, and never while a primary exists.",
			survivor, strings.Join(voters, ", ")),
		fmt.Sprintf("Writes that reached %s but not %s are lost: when those members come back they are rolled back, "+
			"and a forced reconfig can roll back even majority-committed writes.", rm, survivor),
		fmt.Sprintf("Shut down or decommission %s now and keep them down: when they restart they find a configuration that "+
			"does not include them (state REMOVED); a member that still believes it is primary must not receive client traffic.", rm),
		fmt.Sprintf("To add %s back later: wipe or resync them as needed, then add them with normal (non-force) replSetReconfig "+
			"on the new primary, one voting member at a time.", rm),
	}
}

// ForceResult reports a forced promotion.
type ForceResult struct {
	Survivor      string       `json:"survivor"`
	Kept          []string     `json:"kept"`
	Removed       []string     `json:"removed"`
	VersionBefore int64        `json:"version_before"`
	VersionAfter  int64        `json:"version_after"`
	TermInConfig  bool         `json:"term_in_config"` // false: the forced reconfig removed config.term
	Term          int64        `json:"term"`
	Warnings      []string     `json:"warnings"`
	Observation   *Observation `json:"observation"`
}

// ForcePromote makes survivor primary when the majority is lost (PSA with
// the primary and the arbiter down): the documented forced reconfig on a
// surviving secondary, members = survivor plus keep, force: true. It
// refuses without a valid Confirm, and while any member is a writable
// primary. The returned Warnings (also in the error path, from
// ForcePromoteWarnings) must be printed and journaled.
func (s *Set) ForcePromote(ctx context.Context, survivor string, keep []string, c Confirm) (*ForceResult, error) {
	fail := forceFail(survivor)
	fp, err := s.forcePreflight(ctx, survivor, keep, c)
	if err != nil {
		return nil, err
	}
	cfg, kept, removed, err := s.forcedConfig(fp, survivor, keep)
	if err != nil {
		return nil, err
	}
	res := &ForceResult{Survivor: survivor, Kept: kept, Removed: removed, VersionBefore: fp.sv.ConfigVersion,
		Warnings: ForcePromoteWarnings(survivor, keep, removed)}
	client, merr := connect(ctx, fp.sm, s.Creds, s.timeout())
	if merr != nil {
		return res, fail("cannot connect to "+survivor, fp.where, "", merr)
	}
	defer disconnect(client)
	rctx, cancel := context.WithTimeout(ctx, max(s.timeout(), 10*time.Second))
	_, merr = runCommand(rctx, client, fp.sm, s.Creds, s.timeout(), bson.D{{Key: "replSetReconfig", Value: cfg}, {Key: "force", Value: true}})
	cancel()
	if merr != nil {
		return res, fail("replSetReconfig with force: true failed", fp.where, "", merr)
	}
	wobs, err := s.WaitPrimary(ctx, WaitOptions{ExpectMember: survivor, AfterTerm: fp.sv.Term})
	if err != nil {
		var ae *ActionError
		if errors.As(err, &ae) {
			ae.Action = "force-promote"
			ae.Hint = "the forced configuration was accepted; the survivor should elect itself within the election timeout: check with sitectl status"
		}
		return res, err
	}
	np := wobs.Member(survivor)
	res.Observation, res.Term = wobs, np.Term
	res.VersionAfter, res.TermInConfig = np.ConfigVersion, np.ConfigTerm >= 0
	return res, nil
}

// forceFail returns how a forced promotion of survivor fails: what was
// observed, where, and how to go on.
func forceFail(survivor string) func(observed, where, hint string, err error) error {
	want := survivor + " primary after a forced reconfig"
	return func(observed, where, hint string, err error) error {
		return &ActionError{Action: "force-promote", Expected: want, Observed: observed, Where: where, Hint: hint, Err: err}
	}
}

// forcePlan is what a forced promotion starts from: the survivor's
// inventory member sm and status sv (where: its name and address), the
// observation, and the members to keep besides it.
type forcePlan struct {
	sm      Member
	sv      *MemberStatus
	obs     *Observation
	keepSet map[string]bool
	where   string
}

// forcePreflight checks, before anything is changed, the confirmation,
// that survivor and keep are members, survivor a data-bearing SECONDARY
// whose configuration is known, and that no member is a writable primary.
func (s *Set) forcePreflight(ctx context.Context, survivor string, keep []string, c Confirm) (forcePlan, error) {
	fail := forceFail(survivor)
	sm, ok := s.member(survivor)
	if !ok {
		return forcePlan{}, fail("no member named "+survivor, "", "", ErrUnknownMember)
	}
	if err := c.check(sm); err != nil {
		return forcePlan{}, err
	}
	if sm.Arbiter {
		return forcePlan{}, fail(survivor+" is an arbiter", "", "", ErrNotElectable)
	}
	keepSet := map[string]bool{}
	for _, k := range keep {
		if _, ok := s.member(k); !ok {
			return forcePlan{}, fail("no member named "+k+" (to keep)", "", "", ErrUnknownMember)
		}
		keepSet[k] = true
	}
	obs := s.Observe(ctx)
	if p := obs.Primary(); p != nil {
		return forcePlan{}, fail(fmt.Sprintf("%s is a writable primary (term %d)", p.Member.Name, p.Term),
			fmt.Sprintf("%s (%s)", p.Member.Name, p.Member.Address),
			"never force a reconfig while a primary exists: use a planned move (sitectl takeover without --force-promote-mongo)", ErrPrimaryExists)
	}
	sv := obs.Member(survivor)
	where := fmt.Sprintf("%s (%s)", sm.Name, sm.Address)
	if !sv.Reachable || !sv.ConfigKnown {
		return forcePlan{}, fail(survivor+" could not be observed", where, "", firstMemberErr(sv))
	}
	if sv.State != StateSecondary {
		return forcePlan{}, fail(fmt.Sprintf("%s is %s, not SECONDARY", survivor, sv.StateStr), where, "", ErrNotElectable)
	}
	return forcePlan{sm: sm, sv: sv, obs: obs, keepSet: keepSet, where: where}, nil
}

// forcedConfig is the survivor's configuration with only the survivor and
// keep as members, and the members kept and removed.
func (s *Set) forcedConfig(fp forcePlan, survivor string, keep []string) (cfg bson.D, kept, removed []string, err error) {
	fail := forceFail(survivor)
	hosts := map[string]string{} // config host -> inventory name
	for _, m := range s.Members {
		if m.Name == survivor || fp.keepSet[m.Name] {
			hosts[m.Address] = m.Name
			if ms := fp.obs.Member(m.Name); ms != nil && ms.Me != "" {
				hosts[ms.Me] = m.Name
			}
		}
	}
	if err := bson.Unmarshal(fp.sv.ConfigRaw, &cfg); err != nil {
		return nil, nil, nil, fail("the configuration cannot be decoded", fp.where, "", err)
	}
	found := map[string]bool{}
	for i, e := range cfg {
		if e.Key != "members" {
			continue
		}
		arr, _ := e.Value.(bson.A)
		var nm bson.A
		for _, mv := range arr {
			m, _ := mv.(bson.D)
			host, _ := lookupD(m, "host").(string)
			if name, ok := hosts[host]; ok {
				nm = append(nm, m)
				kept = append(kept, name)
				found[name] = true
			} else {
				name := host
				if ms := fp.obs.ByHost(host); ms != nil {
					name = ms.Member.Name
				}
				removed = append(removed, name)
			}
		}
		cfg[i].Value = nm
	}
	for _, n := range append([]string{survivor}, keep...) {
		if !found[n] {
			return nil, nil, nil, fail(n+" is not in the replica set configuration", fp.where, "", ErrUnknownMember)
		}
	}
	return cfg, kept, removed, nil
}
