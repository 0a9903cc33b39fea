package inventory

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Default values applied by Parse after validation (and by ApplyDefaults).
const (
	DefaultCommandTimeout   = 30 * time.Second
	DefaultVerifyTimeout    = 60 * time.Second
	DefaultSSHPort          = 22
	DefaultConnectTimeout   = 5 * time.Second
	DefaultHandshakeTimeout = 30 * time.Second
	DefaultProbeStatus      = 200
	DefaultProbeTimeout     = 2 * time.Second
	DefaultMongoTimeout     = 3 * time.Second
	DefaultActiveMQTimeout  = 3 * time.Second
	DefaultHAProxyTimeout   = 2 * time.Second
)

// maxNodes bounds the work done on one file, counting every node visited
// after aliases and merge keys are expanded (a "billion laughs" document
// would otherwise take forever). Real inventories use a few hundred.
const maxNodes = 100000

// MaxSize is the largest inventory file accepted: real ones are a few KiB;
// a file this large is a mistake (or an attack on the parser).
const MaxSize = 4 << 20

// Load reads and parses an inventory file. See Parse.
func Load(path string) (*Inventory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates an inventory. file is used in positions and
// stored in Inventory.File. Unknown keys, values of the wrong type and every
// rule of Validate are reported together as Errors, sorted by position; in
// that case the returned inventory is nil. On success the defaults are
// applied and the derived fields (Pos, Host.Site, Service.Site, File,
// Digest) are filled in.
func Parse(file string, data []byte) (*Inventory, error) {
	if len(data) > MaxSize {
		return nil, Errors{{Pos: Pos{File: file, Line: 1, Column: 1}, Msg: fmt.Sprintf("the inventory is larger than %d MiB: not an inventory (real ones are a few KiB)", MaxSize>>20)}}
	}
	sum := sha256.Sum256(data)
	root, errs := parseYAML(file, data)
	if errs != nil {
		return nil, errs.result()
	}
	inv := &Inventory{File: file, Digest: hex.EncodeToString(sum[:])}
	if root == nil || isNull(root) {
		p := Pos{File: file, Line: 1, Column: 1}
		return nil, Errors{{Pos: p, Msg: "empty inventory: expected a mapping with deployment, sites and the other keys"}}
	}
	d := &decoder{
		file:    file,
		fields:  make(map[any]map[string]Pos),
		bad:     make(map[any]map[string]bool),
		merging: make(map[*yaml.Node]bool),
	}
	if root.Kind != yaml.MappingNode {
		p := Pos{File: file, Line: max(root.Line, 1), Column: root.Column}
		return nil, Errors{{Pos: p, Msg: fmt.Sprintf("the inventory must be a mapping (deployment:, sites:, ...), got %s", describe(root))}}
	}
	ok := d.decode(root, reflect.ValueOf(inv).Elem(), nil, "inventory")
	all := d.errs
	if ok && !d.tooBig {
		inv.link()
		v := &validator{file: file, fields: d.fields, bad: d.bad}
		v.inventory(inv)
		all = append(all, v.errs...)
	}
	if err := all.result(); err != nil {
		return nil, err
	}
	inv.ApplyDefaults()
	return inv, nil
}

// DecodeStrict decodes the single YAML document in data into out (a pointer
// to a struct with yaml tags) with the rules Parse uses: unknown keys and
// wrong types are errors, anchors and merge keys work, expansion is bounded,
// and every problem is an *Error with its position, all of them reported.
// A struct field `Pos Pos` receives the struct's position; a type may name
// itself in messages with a YAMLKind() string method. The returned map
// gives, per decoded struct pointer, the position of each key's value (key
// "" is the mapping itself).
func DecodeStrict(file string, data []byte, out any) (map[any]map[string]Pos, error) {
	root, errs := parseYAML(file, data)
	if errs != nil {
		return nil, errs.result()
	}
	if root == nil || isNull(root) {
		return nil, Errors{{Pos: Pos{File: file, Line: 1, Column: 1}, Msg: "empty document: expected a mapping"}}
	}
	d := &decoder{file: file, fields: make(map[any]map[string]Pos), bad: make(map[any]map[string]bool), merging: make(map[*yaml.Node]bool)}
	d.decode(root, reflect.ValueOf(out).Elem(), nil, "document")
	if err := d.errs.result(); err != nil {
		return d.fields, err
	}
	return d.fields, nil
}

// parseYAML returns the root node of the single document in data (nil when
// there is none), or the syntax error with its position.
func parseYAML(file string, data []byte) (*yaml.Node, Errors) {
	doc, extra, err := decodeDocuments(data)
	if err != nil {
		return nil, Errors{syntaxError(file, data, err)}
	}
	if extra != nil {
		p := Pos{File: file, Line: extra.Line, Column: extra.Column}
		if p.Line <= 0 {
			p.Line, p.Column = 1, 0
		}
		return nil, Errors{{Pos: p, Msg: `a second YAML document starts here: an inventory file holds exactly one (remove the "---" separator)`}}
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0], nil
	}
	return nil, nil
}

// decodeDocuments parses the first document of data and reports a second
// one, if any. Panics of the YAML parser are turned into errors.
func decodeDocuments(data []byte) (doc, extra *yaml.Node, err error) {
	defer func() {
		// yaml.v3 panics on a few malformed inputs instead of failing.
		if r := recover(); r != nil {
			doc, extra, err = nil, nil, fmt.Errorf("yaml: the parser failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	doc = new(yaml.Node)
	if err := dec.Decode(doc); err != nil {
		if errors.Is(err, io.EOF) {
			return new(yaml.Node), nil, nil
		}
		return nil, nil, err
	}
	extra = new(yaml.Node)
	if err := dec.Decode(extra); err != nil {
		if errors.Is(err, io.EOF) {
			return doc, nil, nil
		}
		return nil, nil, err
	}
	return doc, extra, nil
}

var yamlLineRE = regexp.MustCompile(`^line (\d+): (.*)$`)
var unknownAnchorRE = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

// syntaxError turns a yaml.v3 error ("yaml: line 3: ...") into an *Error.
// yaml.v3 only gives a line (and none for problems on the first line).
func syntaxError(file string, data []byte, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Pos{File: file}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if m := unknownAnchorRE.FindStringSubmatch(msg); m != nil {
		p.Line, p.Column = findAlias(data, m[1])
		msg = fmt.Sprintf("alias *%s refers to an unknown anchor (define it earlier with &%s)", m[1], m[1])
	} else {
		if l := problemLine(data, msg); l > 0 {
			p.Line = l
		}
		msg = "invalid YAML: " + msg
	}
	if p.Line <= 0 {
		p.Line, p.Column = 1, 0
	}
	if bad, line, col := firstInvalidUTF8(data); bad && strings.Contains(msg, "UTF-8") {
		p.Line, p.Column = line, col // yaml.v3 names the wrong line for these
	} else if p.Column == 0 {
		p.Column = syntaxColumn(data, p.Line, msg)
	}
	return &Error{Pos: p, Msg: msg}
}

// syntaxColumn finds the column of a syntax error on line (yaml.v3 gives
// none): the tab for a tab error, the opening quote of an unclosed quoted
// scalar, the second ": " of "a: b: c", otherwise the line's first
// character that is not a blank. 1-based, in characters; 0 if the line is
// out of range.
func syntaxColumn(data []byte, line int, msg string) int {
	lines := strings.Split(string(data), "\n")
	if line < 1 || line > len(lines) {
		return 0
	}
	l := strings.TrimRight(lines[line-1], "\r")
	col := func(i int) int { return utf8.RuneCountInString(l[:i]) + 1 }
	switch {
	case strings.Contains(msg, "tab character"), strings.Contains(msg, "cannot start any token"):
		if i := strings.IndexByte(l, '\t'); i >= 0 {
			return col(i)
		}
	case strings.Contains(msg, "unexpected end of stream"), strings.Contains(msg, "quoted scalar"):
		for i := len(l) - 1; i >= 0; i-- {
			if c := l[i]; (c == '"' || c == '\'') && strings.Count(l, string(c))%2 == 1 {
				// the first quote of that kind opens the scalar left open
				return col(strings.IndexByte(l, c))
			}
		}
	case strings.Contains(msg, "mapping values are not allowed"):
		if i := strings.LastIndex(l, ": "); i > 0 {
			return col(i)
		}
		if strings.HasSuffix(l, ":") {
			return col(len(l) - 1)
		}
	}
	if i := strings.IndexFunc(l, func(r rune) bool { return r != ' ' && r != '\t' }); i >= 0 {
		return col(i)
	}
	return 1
}

// firstInvalidUTF8 returns the line and column (1-based, in characters) of
// the first byte of data that is not valid UTF-8.
func firstInvalidUTF8(data []byte) (bool, int, int) {
	line, start := 1, 0
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return true, line, utf8.RuneCount(data[start:i]) + 1
		}
		if r == '\n' {
			line, start = line+1, i+1
		}
		i += n
	}
	return false, 0, 0
}

// problemLine finds the line of a syntax error. yaml.v3 often reports the
// line where the enclosing construct starts (or none on the first line), so
// look for the shortest prefix of whole lines that fails with the same
// message: the problem is on its last line. 0 if not found.
func problemLine(data []byte, msg string) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	fails := func(k int) bool {
		_, _, err := decodeDocuments(bytes.Join(lines[:k], nil))
		if err == nil {
			return false
		}
		m := strings.TrimPrefix(err.Error(), "yaml: ")
		if sm := yamlLineRE.FindStringSubmatch(m); sm != nil {
			m = sm[2]
		}
		return m == msg
	}
	if len(lines) == 0 || !fails(len(lines)) {
		return 0
	}
	lo, hi := 1, len(lines) // the answer is in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo)/2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// findAlias returns the 1-based line and column of the first "*name" alias.
func findAlias(data []byte, name string) (line, col int) {
	needle := []byte("*" + name)
	from := 0
	for {
		i := bytes.Index(data[from:], needle)
		if i < 0 {
			return 0, 0
		}
		i += from
		end := i + len(needle)
		if end == len(data) || strings.IndexByte(" \t\r\n,[]{}", data[end]) >= 0 {
			before := data[:i]
			line = bytes.Count(before, []byte("\n")) + 1
			col = utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
			return line, col
		}
		from = i + 1
	}
}

// UnmarshalYAML reads a duration written as "30s", "2m" or "1m30s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf(`expected a duration such as "30s" or "2m", got %s`, describe(n))
	}
	switch n.ShortTag() {
	case "!!null":
		*d = 0
		return nil
	case "!!int", "!!float":
		return fmt.Errorf(`expected a duration with a unit such as "30s" or "2m", got the bare number %s`, n.Value)
	case "!!str":
	default:
		return fmt.Errorf(`expected a duration such as "30s" or "2m", got %s`, describe(n))
	}
	x, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf(`invalid duration %q (expected e.g. "30s", "2m", "1m30s")`, n.Value)
	}
	if x < 0 {
		return fmt.Errorf("duration %q must not be negative", n.Value)
	}
	*d = Duration(x)
	return nil
}

// MarshalYAML writes the duration as a string such as "30s".
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// String formats the duration like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the duration as Go does ("1.2s"): in JSON, a string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// ApplyDefaults fills in every value left unset. Parse calls it after a
// successful validation; call it on an inventory built in code.
func (inv *Inventory) ApplyDefaults() {
	inv.link()
	d := &inv.Defaults
	setDur(&d.CommandTimeout, DefaultCommandTimeout)
	setDur(&d.VerifyTimeout, DefaultVerifyTimeout)
	if d.SSH.Port == 0 {
		d.SSH.Port = DefaultSSHPort
	}
	setDur(&d.SSH.ConnectTimeout, DefaultConnectTimeout)
	setDur(&d.SSH.HandshakeTimeout, DefaultHandshakeTimeout)
	if inv.Lock.Path == "" {
		// in the lock host's user's home, not in a world-writable /tmp
		inv.Lock.Path = DefaultLockDir + "/" + inv.Deployment + ".lock"
	}
	for _, s := range inv.Sites {
		if s == nil {
			continue
		}
		for _, svc := range s.Services {
			if svc == nil {
				continue
			}
			if svc.Group == "" {
				svc.Group = Core
			}
			if svc.Passive == "" {
				svc.Passive = "stopped"
			}
			if p := svc.Probe; p != nil {
				if p.HTTP != "" && p.Status == 0 {
					p.Status = DefaultProbeStatus
				}
				setDur(&p.Timeout, DefaultProbeTimeout)
			}
		}
	}
	if inv.MongoDB != nil {
		setDur(&inv.MongoDB.Timeout, DefaultMongoTimeout)
	}
	if inv.ActiveMQ != nil {
		setDur(&inv.ActiveMQ.Timeout, DefaultActiveMQTimeout)
	}
	if inv.HAProxy != nil {
		setDur(&inv.HAProxy.Timeout, DefaultHAProxyTimeout)
	}
	if inv.Notify != nil {
		for _, t := range inv.Notify.Targets {
			if t != nil {
				t.applyDefaults()
			}
		}
	}
}

func setDur(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

// link fills the derived fields Host.Site and Service.Site.
func (inv *Inventory) link() {
	for _, s := range inv.Sites {
		if s == nil {
			continue
		}
		for _, h := range s.Hosts {
			if h != nil {
				h.Site = s.Name
			}
		}
		for _, svc := range s.Services {
			if svc != nil {
				svc.Site = s.Name
			}
		}
	}
	if w := inv.Witness; w != nil {
		for _, h := range w.Hosts {
			if h != nil {
				h.Site = w.Name
			}
		}
	}
}

// SSHFor returns the SSH settings for a host: every field the host sets
// overrides defaults.ssh, the others are inherited. Booleans (agent,
// insecure_ignore_host_key) are on if either sets them. Port, connect and
// handshake timeout fall back to 22, 5s and 30s.
func (inv *Inventory) SSHFor(h *Host) SSH {
	s := inv.Defaults.SSH
	if h != nil {
		o := h.SSH
		if o.User != "" {
			s.User = o.User
		}
		if o.Port != 0 {
			s.Port = o.Port
		}
		if o.Key != "" {
			s.Key = o.Key
		}
		if o.KnownHosts != "" {
			s.KnownHosts = o.KnownHosts
		}
		if o.ConnectTimeout != 0 {
			s.ConnectTimeout = o.ConnectTimeout
		}
		if o.HandshakeTimeout != 0 {
			s.HandshakeTimeout = o.HandshakeTimeout
		}
		s.Agent = s.Agent || o.Agent
		s.InsecureIgnoreHostKey = s.InsecureIgnoreHostKey || o.InsecureIgnoreHostKey
	}
	if s.Port == 0 {
		s.Port = DefaultSSHPort
	}
	setDur(&s.ConnectTimeout, DefaultConnectTimeout)
	setDur(&s.HandshakeTimeout, DefaultHandshakeTimeout)
	return s
}

// TimeoutFor returns the command timeout of a service: its own timeout, or
// defaults.command_timeout, or 30s.
func (inv *Inventory) TimeoutFor(s *Service) time.Duration {
	if s != nil && s.Timeout > 0 {
		return s.Timeout.D()
	}
	if inv.Defaults.CommandTimeout > 0 {
		return inv.Defaults.CommandTimeout.D()
	}
	return DefaultCommandTimeout
}

// ---- strict decoding of the node tree ----

// decoder walks a yaml.Node tree into the inventory structs, checking keys
// against the yaml tags and the node kinds against the field types. It
// records the position of every key's value so that validation can point
// at the offending value, and which values failed to decode so that
// validation does not report them a second time.
type decoder struct {
	file    string
	errs    Errors
	fields  map[any]map[string]Pos  // struct pointer -> key -> position ("" is the mapping)
	bad     map[any]map[string]bool // struct pointer -> key whose value failed to decode
	merging map[*yaml.Node]bool     // mappings whose merge keys are being expanded
	via     *yaml.Node              // the alias being expanded, if any
	steps   int
	tooBig  bool
}

func (d *decoder) pos(n *yaml.Node) Pos { return Pos{File: d.file, Line: n.Line, Column: n.Column} }

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: d.pos(n), Msg: fmt.Sprintf(format, args...)})
}

// where is the position recorded for a value: its own, or that of the
// alias that brought it in (so that two copies of an anchor are told apart
// and problems point at the place that uses the anchor).
func (d *decoder) where(n *yaml.Node) Pos {
	if d.via != nil {
		return d.pos(d.via)
	}
	return d.pos(n)
}

func (d *decoder) record(owner any, key string, n *yaml.Node) {
	m := d.fields[owner]
	if m == nil {
		m = make(map[string]Pos)
		d.fields[owner] = m
	}
	m[key] = d.where(n)
}

func (d *decoder) markBad(owner any, key string) {
	m := d.bad[owner]
	if m == nil {
		m = make(map[string]bool)
		d.bad[owner] = m
	}
	m[key] = true
}

// step counts work and reports false once the budget is exhausted.
func (d *decoder) step(n *yaml.Node) bool {
	if d.tooBig {
		return false
	}
	d.steps++
	if d.steps > maxNodes {
		d.tooBig = true
		d.errorf(n, "inventory too large: more than %d YAML nodes once aliases and merge keys are expanded", maxNodes)
		return false
	}
	return true
}

var (
	durationType = reflect.TypeOf(Duration(0))
	posType      = reflect.TypeOf(Pos{})
	unmarshaler  = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

// decode stores node n into v (addressable). key names the value in
// messages ("port", "hosts[1]"). It reports false when the value could not
// be stored as written (wrong kind, dropped list element); problems inside
// a mapping that was decoded are reported but do not make it false.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, owner any, key string) bool {
	if n == nil || !d.step(n) {
		return false
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.errorf(n, "%s: alias *%s refers to an unknown anchor", key, n.Value)
			return false
		}
		if d.via == nil {
			d.via = n
			defer func() { d.via = nil }()
		}
		n = n.Alias
	}
	if isNull(n) {
		d.errorf(n, "%s: expected %s, got null", key, expected(v.Type()))
		return false
	}
	if v.Addr().Type().Implements(unmarshaler) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.errorf(n, "%s: %v", key, err)
			return false
		}
		return true
	}
	switch v.Kind() {
	case reflect.Pointer:
		nv := reflect.New(v.Type().Elem())
		if !d.decode(n, nv.Elem(), owner, key) {
			return false
		}
		v.Set(nv)
		return true
	case reflect.Struct:
		return d.decodeStruct(n, v, key)
	case reflect.Slice:
		return d.decodeSlice(n, v, owner, key)
	case reflect.Map:
		return d.decodeMap(n, v, owner, key)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			break
		}
		switch n.ShortTag() {
		case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
			v.SetString(n.Value)
			return true
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			break
		}
		var i int64
		if err := n.Decode(&i); err != nil || v.OverflowInt(i) {
			d.errorf(n, "%s: integer %s is out of range", key, n.Value)
			return false
		}
		v.SetInt(i)
		return true
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			break
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			break
		}
		v.SetBool(b)
		return true
	}
	d.errorf(n, "%s: expected %s, got %s", key, expected(v.Type()), describe(n))
	return false
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, key string) bool {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: expected %s, got %s", key, expected(v.Type()), describe(n))
		return false
	}
	info := structInfoOf(v.Type())
	owner := v.Addr().Interface()
	d.record(owner, "", n)
	for _, p := range d.pairs(n, info.what) {
		fi, ok := info.byKey[p.name]
		if !ok {
			d.errorf(p.k, "unknown key %q in %s (expected one of: %s)", p.name, info.what, strings.Join(info.keys, ", "))
			continue
		}
		at := p.v
		if p.at != nil {
			at = p.at
		}
		d.record(owner, p.name, at)
		if isNull(p.v) {
			continue // an empty value leaves the field unset
		}
		if !d.decodeVia(p.v, v.Field(fi), owner, p.name, p.at) {
			d.markBad(owner, p.name)
		}
	}
	if info.pos >= 0 {
		v.Field(info.pos).Set(reflect.ValueOf(d.where(n)))
	}
	return true
}

// decodeVia decodes a value brought in by a merge key, recording the
// position of the merge's alias for it (see where).
func (d *decoder) decodeVia(n *yaml.Node, v reflect.Value, owner any, key string, at *yaml.Node) bool {
	if at != nil && d.via == nil {
		d.via = at
		defer func() { d.via = nil }()
	}
	return d.decode(n, v, owner, key)
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, owner any, key string) bool {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: expected a list, got %s", key, describe(n))
		return false
	}
	complete := true
	out := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, c := range n.Content {
		elem := reflect.New(v.Type().Elem()).Elem()
		ek := fmt.Sprintf("%s[%d]", key, i)
		if c != nil {
			d.record(owner, ek, c)
		}
		if d.decode(c, elem, owner, ek) {
			out = reflect.Append(out, elem)
		} else {
			complete = false
		}
	}
	v.Set(out)
	return complete
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, owner any, key string) bool {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: expected a mapping, got %s", key, describe(n))
		return false
	}
	complete := true
	out := reflect.MakeMap(v.Type())
	for _, p := range d.pairs(n, key) {
		elem := reflect.New(v.Type().Elem()).Elem()
		ek := key + "." + p.name
		d.record(owner, ek, p.v)
		if d.decode(p.v, elem, owner, ek) {
			out.SetMapIndex(reflect.ValueOf(p.name).Convert(v.Type().Key()), elem)
		} else {
			complete = false
		}
	}
	v.Set(out)
	return complete
}

type pair struct {
	name string
	k, v *yaml.Node
	at   *yaml.Node // for a merged pair: the alias (or mapping) in the "<<" value
}

// pairs returns the key/value pairs of a mapping with merge keys ("<<")
// expanded: the mapping's own keys win over merged ones, and earlier merged
// mappings win over later ones. Duplicate keys and non-scalar keys are
// reported.
func (d *decoder) pairs(m *yaml.Node, what string) []pair {
	d.merging[m] = true
	defer delete(d.merging, m)
	seen := make(map[string]*yaml.Node)
	var out []pair
	var merges []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k == nil || v == nil || !d.step(k) {
			return out
		}
		if isMergeKey(k) {
			merges = append(merges, v)
			continue
		}
		kk := k
		if kk.Kind == yaml.AliasNode && kk.Alias != nil {
			kk = kk.Alias
		}
		if kk.Kind != yaml.ScalarNode {
			d.errorf(k, "expected a key name in %s, got %s", what, describe(k))
			continue
		}
		if first := seen[kk.Value]; first != nil {
			d.errorf(k, "duplicate key %q in %s (first at %s)", kk.Value, what, d.pos(first))
			continue
		}
		seen[kk.Value] = k
		out = append(out, pair{name: kk.Value, k: k, v: v})
	}
	for _, mv := range merges {
		for _, src := range d.mergeSources(mv) {
			for _, p := range d.pairs(src.m, what) {
				if seen[p.name] == nil {
					seen[p.name] = p.k
					p.at = src.ref
					out = append(out, p)
				}
			}
		}
	}
	return out
}

type mergeSource struct {
	m   *yaml.Node // the mapping to merge
	ref *yaml.Node // where the merge names it
}

// mergeSources returns the mappings named by the value of a merge key: a
// mapping, an alias of one, or a list of those.
func (d *decoder) mergeSources(v *yaml.Node) []mergeSource {
	var out []mergeSource
	add := func(n *yaml.Node) {
		orig := n
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		switch {
		case n.Kind != yaml.MappingNode:
			d.errorf(orig, "merge key << expects a mapping or a list of mappings, got %s", describe(orig))
		case d.merging[n]:
			d.errorf(orig, "merge key << refers to a mapping that contains it")
		default:
			out = append(out, mergeSource{m: n, ref: orig})
		}
	}
	if v.Kind == yaml.AliasNode && v.Alias != nil && v.Alias.Kind == yaml.SequenceNode {
		v = v.Alias
	}
	if v.Kind == yaml.SequenceNode {
		for _, c := range v.Content {
			if c != nil {
				add(c)
			}
		}
		return out
	}
	add(v)
	return out
}

func isMergeKey(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Value == "<<" && n.ShortTag() == "!!merge"
}

func isNull(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe says what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	if n.Kind == yaml.AliasNode && n.Alias != nil && n.Alias.Kind != yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if utf8.RuneCountInString(v) > 40 {
			v = string([]rune(v)[:40]) + "…"
		}
		switch tag := n.ShortTag(); tag {
		case "!!null":
			return "null"
		case "!!str":
			return strconv.Quote(v)
		case "!!int", "!!float", "!!bool":
			return v
		case "!!timestamp":
			return "the timestamp " + v
		default:
			return fmt.Sprintf("%s %q", tag, v)
		}
	}
	return "an empty value"
}

// expected says what a Go type is written as in YAML.
func expected(t reflect.Type) string {
	if t == durationType {
		return `a duration such as "30s" or "2m"`
	}
	switch t.Kind() {
	case reflect.Pointer:
		return expected(t.Elem())
	case reflect.Struct:
		return "a mapping (" + structInfoOf(t).what + ")"
	case reflect.Slice:
		return "a list"
	case reflect.Map:
		return "a mapping"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Bool:
		return "true or false"
	}
	return t.String()
}

// typeNames are the names of the structs in messages.
var typeNames = map[reflect.Type]string{
	reflect.TypeOf(Inventory{}):      "inventory",
	reflect.TypeOf(Defaults{}):       "defaults",
	reflect.TypeOf(LockSpec{}):       "lock",
	reflect.TypeOf(SSH{}):            "ssh",
	reflect.TypeOf(Site{}):           "site",
	reflect.TypeOf(Witness{}):        "witness",
	reflect.TypeOf(Host{}):           "host",
	reflect.TypeOf(Service{}):        "service",
	reflect.TypeOf(Probe{}):          "probe",
	reflect.TypeOf(Credentials{}):    "credentials",
	reflect.TypeOf(MongoDB{}):        "mongodb",
	reflect.TypeOf(MongoMember{}):    "mongodb member",
	reflect.TypeOf(ActiveMQ{}):       "activemq",
	reflect.TypeOf(Broker{}):         "activemq broker",
	reflect.TypeOf(HAProxy{}):        "haproxy",
	reflect.TypeOf(HAProxyBackend{}): "haproxy backend",
}

type structInfo struct {
	what  string
	keys  []string       // yaml keys in field order
	byKey map[string]int // yaml key -> field index
	pos   int            // index of the Pos field, or -1
}

var structInfos sync.Map // reflect.Type -> *structInfo

func structInfoOf(t reflect.Type) *structInfo {
	if si, ok := structInfos.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{what: typeNames[t], byKey: make(map[string]int), pos: -1}
	if k, ok := reflect.New(t).Interface().(interface{ YAMLKind() string }); ok && si.what == "" {
		si.what = k.YAMLKind()
	}
	if si.what == "" {
		si.what = strings.ToLower(t.Name())
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if f.Name == "Pos" && f.Type == posType {
			si.pos = i
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		si.keys = append(si.keys, name)
		si.byKey[name] = i
	}
	structInfos.Store(t, si)
	return si
}
