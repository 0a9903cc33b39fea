package inventory

import (
	"fmt"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Validate checks an inventory built in code (Parse already does it) and
// fills the derived fields Host.Site and Service.Site. It returns Errors
// or nil. Positions come from the Pos fields, when set.
func (inv *Inventory) Validate() error {
	inv.link()
	v := &validator{file: inv.File}
	v.inventory(inv)
	return v.errs.result()
}

// ---- look-ups ----

// Site returns the site with that name, or nil.
func (inv *Inventory) Site(name string) *Site {
	for _, s := range inv.Sites {
		if s != nil && s.Name == name {
			return s
		}
	}
	return nil
}

// Other returns the other of the two sites, or nil if name is not one of
// them.
func (inv *Inventory) Other(name string) *Site {
	if len(inv.Sites) != 2 || inv.Sites[0] == nil || inv.Sites[1] == nil {
		return nil
	}
	switch name {
	case inv.Sites[0].Name:
		return inv.Sites[1]
	case inv.Sites[1].Name:
		return inv.Sites[0]
	}
	return nil
}

// Host returns the host with that name, on either site or the witness, or
// nil.
func (inv *Inventory) Host(name string) *Host {
	for _, s := range inv.Sites {
		if s == nil {
			continue
		}
		if h := s.Host(name); h != nil {
			return h
		}
	}
	if inv.Witness != nil {
		for _, h := range inv.Witness.Hosts {
			if h != nil && h.Name == name {
				return h
			}
		}
	}
	return nil
}

// AllHosts lists every host: each site's, then the witness's.
func (inv *Inventory) AllHosts() []*Host {
	var out []*Host
	for _, s := range inv.Sites {
		if s != nil {
			out = append(out, s.Hosts...)
		}
	}
	if inv.Witness != nil {
		out = append(out, inv.Witness.Hosts...)
	}
	return out
}

// LossQuorum is failover.loss_quorum, or its default 2.
func (inv *Inventory) LossQuorum() int {
	if inv.Failover != nil && inv.Failover.LossQuorum > 0 {
		return inv.Failover.LossQuorum
	}
	return 2
}

// ProbeTimeout is failover.probe_timeout, or its default 2s.
func (inv *Inventory) ProbeTimeout() time.Duration {
	if inv.Failover != nil && inv.Failover.ProbeTimeout > 0 {
		return inv.Failover.ProbeTimeout.D()
	}
	return 2 * time.Second
}

// LossWait is failover.loss_wait, or its default 30s.
func (inv *Inventory) LossWait() time.Duration {
	if inv.Failover != nil && inv.Failover.LossWait > 0 {
		return inv.Failover.LossWait.D()
	}
	return 30 * time.Second
}

// Cooldown is failover.cooldown, or its default 10m.
func (inv *Inventory) Cooldown() time.Duration {
	if inv.Failover != nil && inv.Failover.Cooldown > 0 {
		return inv.Failover.Cooldown.D()
	}
	return 10 * time.Minute
}

// ProbersOf returns the hosts that probe site: failover.probers, or each
// other site's first host and the witness's first host; never a host of
// site itself.
func (inv *Inventory) ProbersOf(site string) []*Host {
	var cand []*Host
	if inv.Failover != nil && len(inv.Failover.Probers) > 0 {
		for _, n := range inv.Failover.Probers {
			if h := inv.Host(n); h != nil {
				cand = append(cand, h)
			}
		}
	} else {
		for _, s := range inv.Sites {
			if s != nil && s.Name != site && len(s.Hosts) > 0 {
				cand = append(cand, s.Hosts[0])
			}
		}
		if inv.Witness != nil && len(inv.Witness.Hosts) > 0 {
			cand = append(cand, inv.Witness.Hosts[0])
		}
	}
	var out []*Host
	for _, h := range cand {
		if h != nil && h.Site != site {
			out = append(out, h)
		}
	}
	return out
}

// PrimarySite returns the site whose role is primary, or nil.
func (inv *Inventory) PrimarySite() *Site { return inv.siteWithRole(Primary) }

// SecondarySite returns the site whose role is secondary, or nil.
func (inv *Inventory) SecondarySite() *Site { return inv.siteWithRole(Secondary) }

func (inv *Inventory) siteWithRole(r Role) *Site {
	for _, s := range inv.Sites {
		if s != nil && s.Role == r {
			return s
		}
	}
	return nil
}

// Host returns the site's host with that name, or nil.
func (s *Site) Host(name string) *Host {
	for _, h := range s.Hosts {
		if h != nil && h.Name == name {
			return h
		}
	}
	return nil
}

// Service returns the site's service with that name, or nil.
func (s *Site) Service(name string) *Service {
	for _, svc := range s.Services {
		if svc != nil && svc.Name == name {
			return svc
		}
	}
	return nil
}

// ServicesIn returns the site's services of a group, in file order. An
// unset group counts as core.
func (s *Site) ServicesIn(g Group) []*Service {
	var out []*Service
	for _, svc := range s.Services {
		if svc == nil {
			continue
		}
		sg := svc.Group
		if sg == "" {
			sg = Core
		}
		if sg == g {
			out = append(out, svc)
		}
	}
	return out
}

// ---- validation ----

var (
	// nameRE is the form of deployment, site, witness, host and service
	// names: they appear in lock paths, log lines and command arguments.
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	// hostRE is a DNS name (labels of letters, digits, '-' and '_').
	hostRE = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$`)
	envRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	lockRE = regexp.MustCompile(`^(/|~/)[A-Za-z0-9._/-]*$`)
	rsRE   = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

const nameRule = "only letters, digits, '.', '_' and '-', starting with a letter or digit"

type validator struct {
	file   string
	errs   Errors
	fields map[any]map[string]Pos  // from the decoder; nil for Validate
	bad    map[any]map[string]bool // values the decoder already rejected

	witnessName string
}

// at returns the position of obj's key (its value), else of obj's mapping,
// else of its Pos field, else just the file.
func (v *validator) at(obj any, key string) Pos {
	if m := v.fields[obj]; m != nil {
		if p, ok := m[key]; ok {
			return p
		}
		if p, ok := m[""]; ok {
			return p
		}
	}
	rv := reflect.ValueOf(obj)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() && rv.Elem().Kind() == reflect.Struct {
		if f := rv.Elem().FieldByName("Pos"); f.IsValid() && f.Type() == posType {
			if p := f.Interface().(Pos); p.Line > 0 {
				return p
			}
		}
	}
	return Pos{File: v.file}
}

// errf reports a problem with obj's key, unless the decoder already
// reported that value.
func (v *validator) errf(obj any, key, format string, args ...any) {
	base, _, _ := strings.Cut(key, "[")
	base, _, _ = strings.Cut(base, ".")
	if v.bad[obj][key] || v.bad[obj][base] {
		return
	}
	v.errs = append(v.errs, &Error{Pos: v.at(obj, key), Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) inventory(inv *Inventory) {
	switch {
	case inv.Deployment == "":
		v.errf(inv, "deployment", `deployment is required (a short name such as "chat-prod"; it also names the run lock)`)
	case !nameRE.MatchString(inv.Deployment):
		v.errf(inv, "deployment", "deployment %q: use %s", inv.Deployment, nameRule)
	}
	v.defaults(&inv.Defaults)
	if p := inv.Lock.Path; p != "" && (!lockRE.MatchString(p) || p == "/" || strings.HasSuffix(p, "/")) {
		v.errf(&inv.Lock, "path", "lock path %q must be an absolute file path (or one under ~/, the lock host's SSH user's home) made of letters, digits, '.', '_', '-' and '/'", p)
	}
	for i, r := range inv.Runbooks {
		if strings.TrimSpace(r) == "" {
			v.errf(inv, fmt.Sprintf("runbooks[%d]", i), "runbooks[%d] is empty (expected a runbook file or directory)", i)
		}
	}

	hosts := make(map[string]*Host) // every host name in the inventory
	siteNames := make(map[string]*Site)
	switch n := len(inv.Sites); {
	case n == 0:
		v.errf(inv, "sites", "sites is required: exactly 2 sites (one primary, one secondary)")
	case n != 2:
		v.errf(inv, "sites", "sites must have exactly 2 entries (one primary, one secondary), got %d", n)
	}
	var roles [2]*Site // first primary, first secondary
	for i, s := range inv.Sites {
		if s == nil {
			v.errf(inv, fmt.Sprintf("sites[%d]", i), "sites[%d] is empty", i)
			continue
		}
		v.site(s, siteNames, hosts, inv.ActiveMQ != nil)
		for j, r := range []Role{Primary, Secondary} {
			if s.Role != r {
				continue
			}
			if roles[j] != nil {
				v.errf(s, "role", "sites %s and %s are both %s; exactly one site must be primary and the other secondary", roles[j].Name, s.Name, r)
			} else {
				roles[j] = s
			}
		}
	}
	if len(inv.Sites) == 2 && inv.Sites[0] != nil && inv.Sites[1] != nil {
		v.consumerOverlap(inv.Sites[0], inv.Sites[1])
	}
	if w := inv.Witness; w != nil {
		v.witnessName = w.Name
		v.witness(w, siteNames, hosts)
	}
	// Services last: their hosts are checked against every host known.
	for _, s := range inv.Sites {
		if s != nil {
			v.services(s, hosts)
		}
	}
	if inv.MongoDB != nil {
		v.mongodb(inv, inv.MongoDB)
	}
	if inv.ActiveMQ != nil {
		v.activemq(inv, inv.ActiveMQ)
	}
	if inv.HAProxy != nil {
		v.haproxy(inv, inv.HAProxy)
	}
	if inv.Failover != nil {
		v.failover(inv.Failover, hosts)
	}
	for _, s := range inv.Sites {
		if s != nil && s.Fence != nil {
			v.fence(s, hosts)
		}
	}
	if inv.Hooks != nil {
		v.hooks(inv.Hooks, hosts)
	}
	if inv.Notify != nil {
		v.notify(inv.Notify)
	}
}

func (v *validator) failover(f *Failover, hosts map[string]*Host) {
	if f.LossQuorum < 0 {
		v.errf(f, "loss_quorum", "failover.loss_quorum %d must be at least 1 (0 or absent: the default, 2)", f.LossQuorum)
	}
	for i, p := range f.Probers {
		if hosts[p] == nil {
			v.errf(f, fmt.Sprintf("probers[%d]", i), "failover.probers[%d]: unknown host %q (expected a host of a site or of the witness)", i, p)
		}
	}
	if f.ProbeTimeout < 0 {
		v.errf(f, "probe_timeout", "failover.probe_timeout must not be negative")
	}
	if f.LossWait < 0 {
		v.errf(f, "loss_wait", "failover.loss_wait must not be negative (0: the default, 30s)")
	}
	if f.Cooldown < 0 {
		v.errf(f, "cooldown", "failover.cooldown must not be negative (0: the default, 10m)")
	}
}

func (v *validator) fence(s *Site, hosts map[string]*Host) {
	f := s.Fence
	if strings.TrimSpace(f.Command) == "" {
		v.errf(f, "command", "site %s: fence.command is required (the command that powers off or isolates the site)", s.Name)
	}
	if strings.TrimSpace(f.Check) == "" {
		v.errf(f, "check", "site %s: fence.check is required (a command that exits 0 once the site is fenced)", s.Name)
	}
	if f.Host != "" {
		switch h := hosts[f.Host]; {
		case h == nil:
			v.errf(f, "host", "site %s: fence.host: unknown host %q", s.Name, f.Host)
		case h.Site == s.Name || s.Host(f.Host) != nil:
			v.errf(f, "host", "site %s: fence.host %q is in the site it fences: a lost site cannot fence itself", s.Name, f.Host)
		}
	}
	if f.Timeout < 0 {
		v.errf(f, "timeout", "site %s: fence.timeout must not be negative", s.Name)
	}
}

func (v *validator) defaults(d *Defaults) {
	v.ssh(&d.SSH, "defaults.ssh")
}

func (v *validator) ssh(s *SSH, where string) {
	if s.Port != 0 && (s.Port < 1 || s.Port > 65535) {
		v.errf(s, "port", "%s: port %d is out of range (1-65535)", where, s.Port)
	}
	if s.MaxHandshakes < 0 {
		v.errf(s, "max_handshakes", "%s: max_handshakes %d must be positive (or left out for the default)", where, s.MaxHandshakes)
	}
	if s.ConnectTimeout < 0 || s.HandshakeTimeout < 0 {
		v.errf(s, "handshake_timeout", "%s: timeouts must not be negative", where)
	}
	if strings.ContainsAny(s.User, " \t\r\n@") {
		v.errf(s, "user", "%s: user %q must not contain spaces or '@'", where, s.User)
	}
}

func (v *validator) site(s *Site, siteNames map[string]*Site, hosts map[string]*Host, needConsumers bool) {
	label := s.Name
	switch {
	case s.Name == "":
		v.errf(s, "name", "site has no name")
		label = "(unnamed)"
	case !nameRE.MatchString(s.Name):
		v.errf(s, "name", "site name %q: use %s", s.Name, nameRule)
	case siteNames[s.Name] != nil:
		v.errf(s, "name", "duplicate site name %q (first defined at %s)", s.Name, v.at(siteNames[s.Name], "name"))
	default:
		siteNames[s.Name] = s
	}
	switch s.Role {
	case Primary, Secondary:
	case "":
		v.errf(s, "role", "site %s has no role (expected primary or secondary)", label)
	default:
		v.errf(s, "role", "site %s: unknown role %q (expected primary or secondary)", label, s.Role)
	}
	if len(s.Hosts) == 0 {
		v.errf(s, "hosts", "site %s has no hosts", label)
	}
	if len(s.Services) == 0 {
		// nothing to start or stop: every runbook would "succeed" there
		v.errf(s, "services", "site %s has no services (list the services a takeover starts there)", label)
	}
	for i, h := range s.Hosts {
		if h == nil {
			v.errf(s, fmt.Sprintf("hosts[%d]", i), "hosts[%d] of site %s is empty", i, label)
			continue
		}
		v.host(h, hosts)
	}
	seen := make(map[string]int)
	for i, c := range s.ConsumerMatch {
		key := fmt.Sprintf("consumer_match[%d]", i)
		if c == "" {
			v.errf(s, key, "consumer_match of site %s has an empty entry", label)
			continue
		}
		if j, dup := seen[c]; dup {
			v.errf(s, key, "duplicate consumer_match %q in site %s (first at %s)", c, label, v.at(s, fmt.Sprintf("consumer_match[%d]", j)))
			continue
		}
		seen[c] = i
	}
	if needConsumers && len(s.ConsumerMatch) == 0 {
		v.errf(s, "consumer_match", "site %s has no consumer_match: the activemq check needs the client-id prefixes or STOMP host headers of this site's consumers", label)
	}
}

func (v *validator) services(s *Site, hosts map[string]*Host) {
	label := s.Name
	if label == "" {
		label = "(unnamed)"
	}
	seen := make(map[string]*Service)
	for i, svc := range s.Services {
		if svc == nil {
			v.errf(s, fmt.Sprintf("services[%d]", i), "services[%d] of site %s is empty", i, label)
			continue
		}
		v.service(svc, s, label, seen, hosts)
	}
}

// consumerOverlap rejects a consumer_match entry that is a prefix of (or
// equal to) an entry of the other site: a consumer must belong to one site.
func (v *validator) consumerOverlap(a, b *Site) {
	for j, q := range b.ConsumerMatch {
		for _, p := range a.ConsumerMatch {
			if p == "" || q == "" {
				continue
			}
			if strings.HasPrefix(p, q) || strings.HasPrefix(q, p) {
				v.errf(b, fmt.Sprintf("consumer_match[%d]", j), "consumer_match %q of site %s overlaps %q of site %s: a consumer must match one site only", q, b.Name, p, a.Name)
				break
			}
		}
	}
}

func (v *validator) witness(w *Witness, siteNames map[string]*Site, hosts map[string]*Host) {
	label := w.Name
	switch {
	case w.Name == "":
		v.errf(w, "name", "witness has no name")
		label = "(unnamed)"
	case !nameRE.MatchString(w.Name):
		v.errf(w, "name", "witness name %q: use %s", w.Name, nameRule)
	case siteNames[w.Name] != nil:
		v.errf(w, "name", "witness name %q is also the name of a site", w.Name)
	}
	if len(w.Hosts) == 0 {
		v.errf(w, "hosts", "witness %s has no hosts", label)
	}
	for i, h := range w.Hosts {
		if h == nil {
			v.errf(w, fmt.Sprintf("hosts[%d]", i), "hosts[%d] of witness %s is empty", i, label)
			continue
		}
		v.host(h, hosts)
	}
}

func (v *validator) host(h *Host, hosts map[string]*Host) {
	label := h.Name
	switch {
	case h.Name == "":
		v.errf(h, "name", "host has no name")
		label = "(unnamed)"
	case !nameRE.MatchString(h.Name):
		v.errf(h, "name", "host name %q: use %s", h.Name, nameRule)
	case hosts[h.Name] != nil:
		v.errf(h, "name", "duplicate host name %q (first defined at %s)", h.Name, v.at(hosts[h.Name], "name"))
	default:
		hosts[h.Name] = h
	}
	switch {
	case h.Address == "" && !h.Local:
		v.errf(h, "address", "host %s has no address (set address, or local: true to run its commands on this machine)", label)
	case h.Address != "" && !validHost(h.Address):
		hint := ""
		if strings.Contains(h.Address, ":") {
			hint = "; the SSH port goes in ssh.port"
		}
		v.errf(h, "address", "host %s: address %q is not a host name or IP address%s", label, h.Address, hint)
	}
	v.ssh(&h.SSH, "host "+label+" ssh")
	if h.SSH.MaxHandshakes != 0 {
		v.errf(&h.SSH, "max_handshakes", "host %s: ssh.max_handshakes bounds sitectl's handshakes across all hosts: set it in defaults.ssh", label)
	}
	if len(h.Env) > 0 && !h.Local {
		v.errf(h, "env", "host %s: env applies to local hosts only (local: true); a remote host's commands get the environment its sshd gives them", label)
	}
	for _, e := range h.Env {
		if !envRE.MatchString(e) {
			v.errf(h, "env", "host %s: env %q is not an environment variable name (list names; their values are read from sitectl's environment)", label, e)
		}
	}
}

// service checks one service of site: its name (unique in the site),
// kind, group and passive state, its hosts, its commands and its probe.
func (v *validator) service(s *Service, site *Site, siteLabel string, seen map[string]*Service, hosts map[string]*Host) {
	label := v.serviceFields(s, siteLabel, seen)
	v.serviceHosts(s, label, site, siteLabel, hosts)
	for _, c := range []struct{ key, val string }{{"start", s.Start}, {"stop", s.Stop}, {"status", s.Status}} {
		if strings.TrimSpace(c.val) == "" {
			v.errf(s, c.key, "service %s has no %s command", label, c.key)
		}
	}
	if s.Probe != nil {
		v.probe(s.Probe, label)
	}
}

// serviceFields checks the service's name, kind, group and passive state,
// and returns its label for the messages.
func (v *validator) serviceFields(s *Service, siteLabel string, seen map[string]*Service) string {
	label := strconv.Quote(s.Name)
	switch {
	case s.Name == "":
		v.errf(s, "name", "service has no name")
		label = "(unnamed)"
	case !nameRE.MatchString(s.Name):
		v.errf(s, "name", "service name %q: use %s", s.Name, nameRule)
	case seen[s.Name] != nil:
		v.errf(s, "name", "duplicate service name %q in site %s (first defined at %s)", s.Name, siteLabel, v.at(seen[s.Name], "name"))
	default:
		seen[s.Name] = s
	}
	switch {
	case s.Kind == "":
		v.errf(s, "kind", "service %s has no kind (expected one of: %s)", label, strings.Join(Kinds, ", "))
	case !slices.Contains(Kinds, s.Kind):
		v.errf(s, "kind", "service %s: unknown kind %q (expected one of: %s)", label, s.Kind, strings.Join(Kinds, ", "))
	}
	switch s.Group {
	case "", Core, Reporting:
	default:
		v.errf(s, "group", "service %s: unknown group %q (expected core or reporting)", label, s.Group)
	}
	switch s.Passive {
	case "", "stopped", "running":
	default:
		v.errf(s, "passive", "service %s: unknown passive state %q (expected stopped or running)", label, s.Passive)
	}
	return label
}

// serviceHosts checks the service's hosts: at least one, each on this
// site, none twice.
func (v *validator) serviceHosts(s *Service, label string, site *Site, siteLabel string, hosts map[string]*Host) {
	type ref struct{ key, name string }
	var refs []ref
	if s.Host != "" {
		refs = append(refs, ref{"host", s.Host})
	}
	for i, h := range s.Hosts {
		refs = append(refs, ref{fmt.Sprintf("hosts[%d]", i), h})
	}
	if len(refs) == 0 && !v.bad[s]["hosts"] {
		v.errf(s, "host", "service %s names no host (set host: or hosts:)", label)
	}
	var siteHosts []string
	for _, h := range site.Hosts {
		if h != nil && h.Name != "" {
			siteHosts = append(siteHosts, h.Name)
		}
	}
	have := "site " + siteLabel + " has no hosts"
	if len(siteHosts) > 0 {
		have = "site " + siteLabel + " has hosts: " + strings.Join(siteHosts, ", ")
	}
	used := make(map[string]bool)
	for _, r := range refs {
		switch {
		case r.name == "":
			v.errf(s, r.key, "service %s: %s is empty", label, r.key)
		case used[r.name]:
			v.errf(s, r.key, "service %s names host %q twice", label, r.name)
		case !slices.Contains(siteHosts, r.name):
			elsewhere := ""
			if h := hosts[r.name]; h != nil && h.Site != site.Name {
				owner := "site " + h.Site
				if h.Site == v.witnessName {
					owner = "the witness " + h.Site
				}
				elsewhere = "; " + r.name + " belongs to " + owner
			}
			v.errf(s, r.key, "service %s is on unknown host %q (%s%s)", label, r.name, have, elsewhere)
		}
		used[r.name] = true
	}

}

func (v *validator) probe(p *Probe, svc string) {
	where := "probe of service " + svc
	switch {
	case p.TCP == "" && p.HTTP == "":
		v.errf(p, "", "%s must set exactly one of tcp or http, got neither", where)
	case p.TCP != "" && p.HTTP != "":
		v.errf(p, "http", "%s must set exactly one of tcp or http, got both", where)
	case p.TCP != "":
		if !validHostPort(p.TCP) {
			v.errf(p, "tcp", "%s: tcp %q is not host:port", where, p.TCP)
		}
		for _, f := range []struct {
			key string
			set bool
		}{{"status", p.Status != 0}, {"json_field", p.JSONField != ""}, {"json_value", p.JSONValue != ""}} {
			if f.set {
				v.errf(p, f.key, "%s: %s only applies to http probes", where, f.key)
			}
		}
	default:
		if !validHTTPURL(p.HTTP) {
			v.errf(p, "http", "%s: http %q is not an http:// or https:// URL with a host", where, p.HTTP)
		}
		if p.Status != 0 && (p.Status < 100 || p.Status > 599) {
			v.errf(p, "status", "%s: status %d is not an HTTP status code (100-599)", where, p.Status)
		}
		if p.JSONValue != "" && p.JSONField == "" {
			v.errf(p, "json_value", "%s: json_value needs json_field (the dotted path of the value to compare)", where)
		}
	}
}

func (v *validator) credentials(c *Credentials, where string) {
	env := c.UsernameEnv != "" || c.PasswordEnv != ""
	switch {
	case c.File == "" && !env:
		v.errf(c, "", "%s credentials are empty (set username_env and password_env, or file)", where)
	case c.File != "" && env:
		v.errf(c, "file", "%s credentials: set either file or username_env/password_env, not both", where)
	case env:
		for _, e := range []struct{ key, val string }{{"username_env", c.UsernameEnv}, {"password_env", c.PasswordEnv}} {
			switch {
			case e.val == "":
				v.errf(c, e.key, "%s credentials: %s is required with the other *_env key", where, e.key)
			case !envRE.MatchString(e.val):
				v.errf(c, e.key, "%s credentials: %s %q is not an environment variable name (the value is read from that variable; never write a secret here)", where, e.key, e.val)
			}
		}
	}
}

func (v *validator) mongodb(inv *Inventory, m *MongoDB) {
	switch {
	case m.ReplicaSet == "":
		v.errf(m, "replica_set", "mongodb replica_set is required")
	case !rsRE.MatchString(m.ReplicaSet):
		v.errf(m, "replica_set", "mongodb replica_set %q must be one replica set name (letters, digits, '.', '_', '-')", m.ReplicaSet)
	}
	if m.Credentials != nil {
		v.credentials(m.Credentials, "mongodb")
	}
	switch n := len(m.Members); {
	case n == 0:
		v.errf(m, "members", "mongodb has no members (expected 1 to 7)")
	case n > 7:
		v.errf(m, "members", "mongodb has %d members; a replica set has at most 7 voting members", n)
	}
	locations := siteNames(inv)
	if inv.Witness != nil && inv.Witness.Name != "" {
		locations = append(locations, inv.Witness.Name)
	}
	names := make(map[string]any)
	var arbiter *MongoMember
	data := 0
	for i, mm := range m.Members {
		if mm == nil {
			v.errf(m, fmt.Sprintf("members[%d]", i), "mongodb members[%d] is empty", i)
			continue
		}
		label := v.named(mm, "mongodb member", mm.Name, names)
		v.hostPort(mm, "address", "address", "mongodb member "+label, mm.Address)
		v.inSite(mm, "mongodb member "+label, mm.Site, locations)
		if mm.Arbiter {
			if arbiter != nil {
				v.errf(mm, "arbiter", "mongodb member %s is a second arbiter; at most one is allowed (the first is %q at %s)", label, arbiter.Name, v.at(arbiter, "arbiter"))
			} else {
				arbiter = mm
			}
		} else {
			data++
		}
	}
	if len(m.Members) > 0 && data == 0 {
		v.errf(m, "members", "mongodb needs at least one member that is not an arbiter")
	}
}

// named checks the name of one of a list's items (kind: "activemq
// broker"): given, and not given before in seen (name -> the item that
// has it), where it adds it. It returns the item's label for the other
// messages: the quoted name, or "(unnamed)".
func (v *validator) named(obj any, kind, name string, seen map[string]any) string {
	switch {
	case name == "":
		v.errf(obj, "name", "%s has no name", kind)
		return "(unnamed)"
	case seen[name] != nil:
		v.errf(obj, "name", "duplicate %s name %q (first defined at %s)", kind, name, v.at(seen[name], "name"))
	default:
		seen[name] = obj
	}
	return strconv.Quote(name)
}

// inSite checks that an item (what: "activemq broker \"amq-a\"") names one
// of sites.
func (v *validator) inSite(obj any, what, site string, sites []string) {
	switch {
	case site == "":
		v.errf(obj, "site", "%s has no site (expected one of: %s)", what, strings.Join(sites, ", "))
	case !slices.Contains(sites, site):
		v.errf(obj, "site", "%s: unknown site %q (expected one of: %s)", what, site, strings.Join(sites, ", "))
	}
}

// hostPort checks an item's host:port field key (noun: how a missing one
// is said, "stomp address").
func (v *validator) hostPort(obj any, key, noun, what, value string) {
	switch {
	case value == "":
		v.errf(obj, key, "%s has no %s (expected host:port)", what, noun)
	case !validHostPort(value):
		v.errf(obj, key, "%s: %s %q is not host:port", what, key, value)
	}
}

func (v *validator) activemq(inv *Inventory, a *ActiveMQ) {
	if a.Credentials != nil {
		v.credentials(a.Credentials, "activemq")
	}
	sites := siteNames(inv)
	if len(a.Brokers) == 0 {
		v.errf(a, "brokers", "activemq has no brokers")
	}
	names := make(map[string]any)
	for i, b := range a.Brokers {
		if b == nil {
			v.errf(a, fmt.Sprintf("brokers[%d]", i), "activemq brokers[%d] is empty", i)
			continue
		}
		label := v.named(b, "activemq broker", b.Name, names)
		v.inSite(b, "activemq broker "+label, b.Site, sites)
		v.hostPort(b, "stomp", "stomp address", "activemq broker "+label, b.STOMP)
	}
	if len(a.Queues) == 0 {
		v.errf(a, "queues", "activemq needs at least one queue to watch (queues:)")
	}
	queues := make(map[string]int)
	for i, q := range a.Queues {
		key := fmt.Sprintf("queues[%d]", i)
		if strings.TrimSpace(q) == "" {
			v.errf(a, key, "activemq queues[%d] is empty", i)
			continue
		}
		if j, dup := queues[q]; dup {
			v.errf(a, key, "duplicate activemq queue %q (first at %s)", q, v.at(a, fmt.Sprintf("queues[%d]", j)))
			continue
		}
		queues[q] = i
	}
}

func (v *validator) haproxy(inv *Inventory, h *HAProxy) {
	switch {
	case h.RuntimeAPI == "":
		v.errf(h, "runtime_api", "haproxy runtime_api is required (unix:///path/to/admin.sock or tcp://host:port)")
	case !validRuntimeAPI(h.RuntimeAPI):
		v.errf(h, "runtime_api", "haproxy runtime_api %q must be unix:///absolute/path or tcp://host:port", h.RuntimeAPI)
	}
	sites := siteNames(inv)
	if len(h.Backends) == 0 {
		v.errf(h, "backends", "haproxy has no backends")
	}
	names := make(map[string]any)
	for i, b := range h.Backends {
		if b == nil {
			v.errf(h, fmt.Sprintf("backends[%d]", i), "haproxy backends[%d] is empty", i)
			continue
		}
		label := v.named(b, "haproxy backend", b.Name, names)
		if len(b.Servers) == 0 {
			v.errf(b, "servers", "haproxy backend %s has no servers (expected server name: site name)", label)
			continue
		}
		servers := make([]string, 0, len(b.Servers))
		for s := range b.Servers {
			servers = append(servers, s)
		}
		sort.Slice(servers, func(i, j int) bool {
			pi, pj := v.at(b, "servers."+servers[i]), v.at(b, "servers."+servers[j])
			if pi.Line != pj.Line {
				return pi.Line < pj.Line
			}
			if pi.Column != pj.Column {
				return pi.Column < pj.Column
			}
			return servers[i] < servers[j]
		})
		covered := make(map[string]bool)
		for _, s := range servers {
			site := b.Servers[s]
			key := "servers." + s
			switch {
			case s == "":
				v.errf(b, key, "haproxy backend %s has a server with an empty name", label)
			case !slices.Contains(sites, site):
				v.errf(b, key, "haproxy backend %s: server %q maps to unknown site %q (expected one of: %s)", label, s, site, strings.Join(sites, ", "))
			default:
				covered[site] = true
			}
		}
		for _, site := range sites {
			if !covered[site] && !v.bad[b]["servers"] {
				v.errf(b, "servers", "haproxy backend %s has no server of site %s (each backend needs servers of both sites)", label, site)
			}
		}
	}
}

func siteNames(inv *Inventory) []string {
	var out []string
	for _, s := range inv.Sites {
		if s != nil && s.Name != "" && !slices.Contains(out, s.Name) {
			out = append(out, s.Name)
		}
	}
	return out
}

func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	return len(h) <= 253 && hostRE.MatchString(h)
}

func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || !validHost(host) {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535 && port == strconv.Itoa(n)
}

func validHTTPURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return false
	}
	if !validHost(u.Hostname()) {
		return false
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	return true
}

func validRuntimeAPI(s string) bool {
	switch {
	case strings.HasPrefix(s, "unix://"):
		p := strings.TrimPrefix(s, "unix://")
		return len(p) > 1 && p[0] == '/' && !strings.HasSuffix(p, "/") && !strings.ContainsAny(p, "\x00\n")
	case strings.HasPrefix(s, "tcp://"):
		return validHostPort(strings.TrimPrefix(s, "tcp://"))
	}
	return false
}
