package haproxy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Base states of the "status" column (servers, backends, frontends).
const (
	StateUp      = "UP"
	StateDown    = "DOWN"
	StateNoLB    = "NOLB"
	StateDrain   = "DRAIN"
	StateMaint   = "MAINT"
	StateNoCheck = "no check"
	StateOpen    = "OPEN"   // frontend
	StateStop    = "STOP"   // frontend
	StatePaused  = "PAUSED" // frontend
	StateFull    = "FULL"   // listener
	StateWaiting = "WAITING"
)

// base states, longest-first where one is a prefix of another.
var baseStates = []string{StateNoCheck, StateMaint, StateDrain, StateNoLB, StateDown, StateUp,
	StateOpen, StateStop, StatePaused, StateFull, StateWaiting}

// Status is a parsed "status" column: "UP", "UP 1/3", "DOWN 1/2",
// "MAINT (via be/srv)", "MAINT (resolution)", "DRAIN (agent)", "no check", …
type Status struct {
	Raw        string // as printed
	State      string // one of the State* constants, "" when not recognised
	N, M       int    // "UP 1/3" → 1, 3 (also a backend's " (1/3)"); 0, 0 when absent
	Via        string // "be/srv" of "MAINT (via be/srv)"
	Agent      bool   // "(agent)"
	Resolution bool   // "(resolution)"
	Rest       string // any trailing text that was not understood
}

// ParseStatus parses a status by prefix; it never fails (an unknown status
// has an empty State and the text in Raw).
func ParseStatus(raw string) Status {
	st := Status{Raw: raw}
	s := strings.TrimSpace(raw)
	for _, b := range baseStates {
		if strings.HasPrefix(s, b) && (len(s) == len(b) || s[len(b)] == ' ' || s[len(b)] == '(') {
			st.State, s = b, s[len(b):]
			break
		}
	}
	if st.State == "" {
		st.Rest = s
		return st
	}
	var rest []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		var tok string
		if s[0] == '(' {
			end := strings.IndexByte(s, ')')
			if end < 0 {
				rest = append(rest, s)
				break
			}
			tok, s = s[1:end], s[end+1:]
			switch {
			case tok == "agent":
				st.Agent = true
			case tok == "resolution":
				st.Resolution = true
			case strings.HasPrefix(tok, "via "):
				st.Via = strings.TrimSpace(tok[4:])
			case st.setCounter(tok):
			default:
				rest = append(rest, "("+tok+")")
			}
			continue
		}
		end := strings.IndexAny(s, " (")
		if end < 0 {
			end = len(s)
		}
		tok, s = s[:end], s[end:]
		if !st.setCounter(tok) {
			rest = append(rest, tok)
		}
	}
	st.Rest = strings.Join(rest, " ")
	return st
}

func (st *Status) setCounter(tok string) bool {
	a, b, ok := strings.Cut(tok, "/")
	if !ok || st.M != 0 {
		return false
	}
	n, err1 := strconv.Atoi(a)
	m, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || n < 0 || m <= 0 {
		return false
	}
	st.N, st.M = n, m
	return true
}

// Known reports whether the base state was recognised.
func (s Status) Known() bool { return s.State != "" }

// Up reports a server that is operational for load balancing as far as its
// status says: UP (also "UP n/m", failing checks but not down yet) or
// "no check". DRAIN, NOLB, MAINT and DOWN are not.
func (s Status) Up() bool { return s.State == StateUp || s.State == StateNoCheck }

// Transitional reports a status with an n/m counter on a server (going down
// or going up), not a backend's "(n/m)".
func (s Status) Transitional() bool {
	return s.M > 0 && !strings.Contains(s.Raw, "(")
}

func (s Status) String() string { return s.Raw }

// Row types, from the "type" column (or svname when it is missing).
const (
	TypeFrontend = "frontend"
	TypeBackend  = "backend"
	TypeServer   = "server"
	TypeListener = "listener"
)

// StatRow is one line of "show stat". Numeric fields are -1 when the column
// is missing, empty or not a number.
type StatRow struct {
	Line         int    // 1-based line number in the output
	Proxy        string // pxname
	Name         string // svname: FRONTEND, BACKEND or the server's name
	Type         string // frontend, backend, server, listener
	Status       Status
	Weight       int64
	Act, Bck     int64 // server: 1 if active / backup; backend: active / backup servers UP
	Qcur         int64 // queued requests
	Scur         int64 // current sessions
	Smax         int64
	Stot         int64
	ChkFail      int64
	LastChg      int64  // seconds since the last UP<->DOWN change
	CheckStatus  string // L7OK, L4CON, … without the "* " of a running check
	CheckRunning bool   // a check was in progress
	Addr         string // empty on a level-user socket (HAProxy hides addresses there)
	SID          int64  // server id (puid)

	cols   map[string]int
	fields []string
}

// Field returns any column by header name ("check_desc", "lbtot", …).
func (r StatRow) Field(name string) (string, bool) {
	i, ok := r.cols[name]
	if !ok || i >= len(r.fields) {
		return "", false
	}
	return r.fields[i], true
}

// IsServer reports a server row.
func (r StatRow) IsServer() bool { return r.Type == TypeServer }

// Backup reports a backup server.
func (r StatRow) Backup() bool { return r.IsServer() && r.Bck == 1 }

// Issue is one line or value the parser could not use.
type Issue struct {
	Line   int    // 1-based; 0 for the whole output
	Reason string // what was wrong
	Text   string // the line (shortened)
}

func (i Issue) String() string {
	if i.Line == 0 {
		return i.Reason
	}
	if i.Text == "" {
		return fmt.Sprintf("line %d: %s", i.Line, i.Reason)
	}
	return fmt.Sprintf("line %d: %s: %q", i.Line, i.Reason, i.Text)
}

// PartialError is returned with the rows that could be parsed when some
// lines or values had to be skipped. Callers may use the rows.
type PartialError struct {
	What   string // "show stat", "show servers state"
	Issues []Issue
}

func (e *PartialError) Error() string {
	var parts []string
	for i, is := range e.Issues {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(e.Issues)-5))
			break
		}
		parts = append(parts, is.String())
	}
	return fmt.Sprintf("%s: partial result, skipped: %s", e.What, strings.Join(parts, "; "))
}

// IsPartial reports an error that still came with usable rows.
func IsPartial(err error) bool {
	var p *PartialError
	return errors.As(err, &p)
}

// ErrNoCSV is returned (wrapped) when a "show stat" reply has no CSV header.
var ErrNoCSV = errors.New("no CSV header (\"# pxname,svname,…\")")

// statRequired are the columns without which no row is usable.
var statRequired = []string{"pxname", "svname", "status"}

// statWanted are the other columns StatRow decodes; a missing one is an issue.
var statWanted = []string{"weight", "act", "bck", "qcur", "scur", "smax", "stot", "chkfail", "lastchg", "check_status", "addr"}

// ParseStat parses "show stat" CSV by header name. It returns an error and
// no rows when nothing can be used (empty output, no header, no
// pxname/svname/status column); rows and a *PartialError when some lines
// (short, long, unterminated quotes, truncated at the end) or values had to
// be skipped. Unknown columns are kept (see StatRow.Field). A second header
// line (several outputs concatenated) starts a new column map. It never
// panics.
func ParseStat(out string) ([]StatRow, error) {
	if strings.TrimSpace(out) == "" {
		return nil, errors.New("show stat: empty output")
	}
	var rows []StatRow
	var issues []Issue
	var cols map[string]int
	var width int
	headers := 0
	lines := strings.Split(out, "\n")
	// The reply ends with an empty line; a last line without its newline
	// was cut off.
	truncated := !strings.HasSuffix(out, "\n")
	for n, line := range lines {
		lineNo := n + 1
		line = strings.TrimSuffix(line, "\r")
		switch {
		case strings.TrimSpace(line) == "":
		case strings.HasPrefix(line, "#"):
			var counted bool
			cols, width, counted, issues = statHeader(line, lineNo, issues)
			if counted {
				headers++
			}
		case cols == nil:
			if headers == 0 && len(rows) == 0 && len(issues) == 0 {
				// Not CSV at all: HAProxy answered with an error text.
				return nil, fmt.Errorf("show stat: %w; reply: %q", ErrNoCSV, short(strings.TrimSpace(out)))
			}
			issues = append(issues, Issue{lineNo, "row without a usable header", short(line)})
		case truncated && n == len(lines)-1:
			issues = append(issues, Issue{lineNo, "last line cut off (no end of line)", short(line)})
		default:
			var row *StatRow
			if row, issues = statRow(line, lineNo, cols, width, issues); row != nil {
				rows = append(rows, *row)
			}
		}
	}
	return statResult(out, rows, issues, headers, truncated, len(lines))
}

// statHeader reads a header line ("# pxname,svname,..."): the column map
// and width (nil when the header cannot be used), and whether it counts as
// a header (a line that is not even CSV does not).
func statHeader(line string, lineNo int, issues []Issue) (map[string]int, int, bool, []Issue) {
	names, err := splitCSV(strings.TrimSpace(strings.TrimPrefix(line, "#")))
	if err != nil {
		return nil, 0, false, append(issues, Issue{lineNo, "header: " + err.Error(), short(line)})
	}
	names = trimTrailingEmpty(names)
	cols, missing := headerColumns(names, statRequired)
	if len(missing) > 0 {
		return nil, len(names), true, append(issues, Issue{lineNo, "header lacks column " + strings.Join(missing, ", "), ""})
	}
	if _, missing = headerColumns(names, statWanted); len(missing) > 0 {
		issues = append(issues, Issue{lineNo, "header lacks column " + strings.Join(missing, ", ") + " (values reported as unknown)", ""})
	}
	return cols, len(names), true, issues
}

// statRow decodes one data line; nil when the line cannot be used (the
// issue says why).
func statRow(line string, lineNo int, cols map[string]int, width int, issues []Issue) (*StatRow, []Issue) {
	fields, err := splitCSV(line)
	if err != nil {
		return nil, append(issues, Issue{lineNo, err.Error(), short(line)})
	}
	if len(fields) == width+1 && fields[width] == "" {
		fields = fields[:width] // the trailing comma
	}
	if len(fields) != width {
		// HAProxy prints every column on every line; a different
		// count means the columns cannot be trusted.
		if len(fields) < width {
			return nil, append(issues, Issue{lineNo, fmt.Sprintf("short row: %d of %d fields", len(fields), width), short(line)})
		}
		return nil, append(issues, Issue{lineNo, fmt.Sprintf("long row: %d fields for %d columns", len(fields), width), short(line)})
	}
	row := StatRow{Line: lineNo, cols: cols, fields: fields}
	get := func(name string) string { v, _ := row.Field(name); return v }
	num := func(name string) int64 {
		v, ok := row.Field(name)
		if !ok || v == "" {
			return -1
		}
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			issues = append(issues, Issue{lineNo, fmt.Sprintf("column %s: %q is not a number", name, short(v)), ""})
			return -1
		}
		return x
	}
	row.Proxy, row.Name = get("pxname"), get("svname")
	if row.Proxy == "" || row.Name == "" {
		return nil, append(issues, Issue{lineNo, "empty pxname or svname", short(line)})
	}
	row.Status = ParseStatus(get("status"))
	row.Weight, row.Act, row.Bck = num("weight"), num("act"), num("bck")
	row.Qcur, row.Scur, row.Smax, row.Stot = num("qcur"), num("scur"), num("smax"), num("stot")
	row.ChkFail, row.LastChg, row.SID = num("chkfail"), num("lastchg"), num("sid")
	cs := get("check_status")
	if strings.HasPrefix(cs, "* ") {
		row.CheckRunning, cs = true, cs[2:]
	}
	row.CheckStatus, row.Addr = cs, get("addr")
	row.Type = rowType(get("type"), row.Name)
	return &row, issues
}

// statResult is what ParseStat returns for the rows and issues found: an
// error and no rows when nothing is usable, rows and a *PartialError when
// lines were skipped or the output was cut off.
func statResult(out string, rows []StatRow, issues []Issue, headers int, truncated bool, nlines int) ([]StatRow, error) {
	if len(rows) == 0 {
		if headers == 0 {
			return nil, fmt.Errorf("show stat: %w; reply: %q", ErrNoCSV, short(strings.TrimSpace(out)))
		}
		if len(issues) > 0 {
			// Nothing usable: a plain error, never a "partial" one.
			return nil, errors.New(strings.Replace((&PartialError{What: "show stat", Issues: issues}).Error(), "partial result, skipped", "no usable row", 1))
		}
		// A header and no rows: a valid answer for an empty selection.
		return nil, nil
	}
	if truncated && (len(issues) == 0 || issues[len(issues)-1].Line != nlines) {
		issues = append(issues, Issue{0, "output cut off: rows may be missing", ""})
	}
	if len(issues) > 0 {
		return rows, &PartialError{What: "show stat", Issues: issues}
	}
	return rows, nil
}

func rowType(t, svname string) string {
	switch t {
	case "0":
		return TypeFrontend
	case "1":
		return TypeBackend
	case "2":
		return TypeServer
	case "3":
		return TypeListener
	}
	switch svname {
	case "FRONTEND":
		return TypeFrontend
	case "BACKEND":
		return TypeBackend
	}
	return TypeServer
}

// splitCSV splits one CSV line; fields may be double-quoted with "" inside.
func splitCSV(line string) ([]string, error) {
	var fields []string
	var b strings.Builder
	for i := 0; ; {
		if i < len(line) && line[i] == '"' {
			b.Reset()
			i++
			closed := false
			for i < len(line) {
				if line[i] == '"' {
					if i+1 < len(line) && line[i+1] == '"' {
						b.WriteByte('"')
						i += 2
						continue
					}
					i++
					closed = true
					break
				}
				b.WriteByte(line[i])
				i++
			}
			if !closed {
				return nil, fmt.Errorf("unterminated quote in field %d", len(fields)+1)
			}
			if i < len(line) && line[i] != ',' {
				return nil, fmt.Errorf("text after a closing quote in field %d", len(fields)+1)
			}
			fields = append(fields, b.String())
		} else {
			end := strings.IndexByte(line[i:], ',')
			if end < 0 {
				fields = append(fields, line[i:])
				return fields, nil
			}
			fields = append(fields, line[i:i+end])
			i += end
		}
		if i >= len(line) {
			return fields, nil
		}
		i++ // the comma
		if i == len(line) {
			return append(fields, ""), nil
		}
	}
}

// trimTrailingEmpty drops the one empty field the trailing comma makes.
func trimTrailingEmpty(f []string) []string {
	if len(f) > 0 && f[len(f)-1] == "" {
		return f[:len(f)-1]
	}
	return f
}

func short(s string) string {
	const max = 120
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// ShowStat runs "show stat" (every proxy) and parses it. A *PartialError
// comes with usable rows; any other error comes with none.
func (c *Client) ShowStat(ctx context.Context) ([]StatRow, error) {
	return c.showStat(ctx, "show stat")
}

// ShowStatBackend runs "show stat <backend> 4 -1": the servers of one backend.
func (c *Client) ShowStatBackend(ctx context.Context, backend string) ([]StatRow, error) {
	cmd := "show stat " + Arg(backend) + " 4 -1"
	if err := c.needNames(cmd, backend); err != nil {
		return nil, err
	}
	return c.showStat(ctx, cmd)
}

func (c *Client) showStat(ctx context.Context, cmd string) ([]StatRow, error) {
	out, err := c.Exec(ctx, cmd)
	if err != nil {
		return nil, err
	}
	if t := strings.TrimSpace(out); t != "" && !strings.HasPrefix(t, "#") {
		return nil, c.replyError(cmd, out)
	}
	rows, err := ParseStat(out)
	if err != nil && !IsPartial(err) {
		return nil, &Error{API: c.API, Command: cmd, Op: "reply", Kind: KindParse, Reply: short(out), Err: err}
	}
	if len(rows) > 0 {
		err = checkEnd("show stat", out, err)
	}
	return rows, err
}

// checkEnd flags a runtime-API reply cut at a line boundary: HAProxy ends
// every "show" reply with an empty line.
func checkEnd(what, out string, err error) error {
	if strings.HasSuffix(out, "\n\n") || !strings.HasSuffix(out, "\n") {
		return err // complete, or already reported as cut mid-line
	}
	is := Issue{Reason: "reply did not end with its empty line: rows may be missing"}
	var p *PartialError
	if errors.As(err, &p) {
		p.Issues = append(p.Issues, is)
		return err
	}
	return &PartialError{What: what, Issues: []Issue{is}}
}

// headerColumns indexes a header's column names (the first of duplicates
// wins; "" and "-" are placeholders) and lists the names of want it lacks.
func headerColumns(names, want []string) (cols map[string]int, missing []string) {
	cols = make(map[string]int, len(names))
	for i, name := range names {
		if name == "" || name == "-" {
			continue
		}
		if _, dup := cols[name]; !dup {
			cols[name] = i
		}
	}
	for _, w := range want {
		if _, ok := cols[w]; !ok {
			missing = append(missing, w)
		}
	}
	return cols, missing
}
