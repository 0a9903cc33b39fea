// The "show servers state" parser is a test oracle: the live tests read
// HAProxy's admin state flags (FMAINT, FDRAIN) with it, independently of the
// "show stat" the product reads. It lives in a test file: nothing of
// sitectl needs it.

package haproxy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// OpState is srv_op_state of "show servers state".
type OpState int

const (
	OpUnknown  OpState = -1
	OpStopped  OpState = 0
	OpStarting OpState = 1
	OpRunning  OpState = 2
	OpStopping OpState = 3
)

func (o OpState) String() string {
	switch o {
	case OpStopped:
		return "STOPPED"
	case OpStarting:
		return "STARTING"
	case OpRunning:
		return "RUNNING"
	case OpStopping:
		return "STOPPING"
	}
	return fmt.Sprintf("unknown(%d)", int(o))
}

// AdminState is the srv_admin_state bit mask.
type AdminState uint32

const (
	AdminFMaint AdminState = 0x01 // FMAINT: forced maintenance (set server … state maint, disable server)
	AdminIMaint AdminState = 0x02 // IMAINT: inherited from a tracked server
	AdminCMaint AdminState = 0x04 // CMAINT: "disabled" in the configuration
	AdminFDrain AdminState = 0x08 // FDRAIN: forced drain (set server … state drain)
	AdminIDrain AdminState = 0x10 // IDRAIN: inherited drain
	AdminRMaint AdminState = 0x20 // RMAINT: DNS resolution failed
	AdminHMaint AdminState = 0x40 // HMAINT: maint because the hostname changed (set server … fqdn)
)

var adminNames = []struct {
	bit  AdminState
	name string
}{
	{AdminFMaint, "FMAINT"}, {AdminIMaint, "IMAINT"}, {AdminCMaint, "CMAINT"},
	{AdminFDrain, "FDRAIN"}, {AdminIDrain, "IDRAIN"}, {AdminRMaint, "RMAINT"}, {AdminHMaint, "HMAINT"},
}

// Flags names the bits set ("FMAINT", "FDRAIN", …; unknown bits as 0x…).
func (a AdminState) Flags() []string {
	var out []string
	rest := a
	for _, n := range adminNames {
		if a&n.bit != 0 {
			out = append(out, n.name)
			rest &^= n.bit
		}
	}
	if rest != 0 {
		out = append(out, fmt.Sprintf("0x%x", uint32(rest)))
	}
	return out
}

// String is "READY" for 0, else the flags joined with "|".
func (a AdminState) String() string {
	if a == 0 {
		return "READY"
	}
	return strings.Join(a.Flags(), "|")
}

// Has reports whether every bit of f is set.
func (a AdminState) Has(f AdminState) bool { return a&f == f }

// Maint reports any maintenance bit (FMAINT, IMAINT, CMAINT, RMAINT, HMAINT).
func (a AdminState) Maint() bool {
	return a&(AdminFMaint|AdminIMaint|AdminCMaint|AdminRMaint|AdminHMaint) != 0
}

// Drain reports a drain bit (FDRAIN, IDRAIN).
func (a AdminState) Drain() bool { return a&(AdminFDrain|AdminIDrain) != 0 }

// ServerState is one row of "show servers state". Numeric fields are -1
// when the column is missing or unparsable.
type ServerState struct {
	Line        int
	BackendID   int64
	Backend     string
	ID          int64
	Name        string
	Addr        string
	Op          OpState
	Admin       AdminState
	AdminKnown  bool // srv_admin_state was present and numeric
	UWeight     int64
	IWeight     int64
	SinceChange int64 // srv_time_since_last_change, seconds
	CheckStatus int64 // numeric (15 = L7OK in 2.6)
	CheckResult int64
	CheckHealth int64
	CheckState  int64
	AgentState  int64
	FQDN        string // "-" when none
	Port        int64

	cols   map[string]int
	fields []string
}

// Field returns any column by header name.
func (s ServerState) Field(name string) (string, bool) {
	i, ok := s.cols[name]
	if !ok || i >= len(s.fields) {
		return "", false
	}
	return s.fields[i], true
}

var stateRequired = []string{"be_name", "srv_name", "srv_op_state", "srv_admin_state"}

// ErrNoStateHeader is returned (wrapped) when "show servers state" has no header.
var ErrNoStateHeader = errors.New("no \"# be_id be_name …\" header")

// ParseServersState parses "show servers state": a version line ("1"), a
// "# be_id be_name srv_id …" header, then space-separated rows, looked up by
// header name. Errors follow ParseStat: no rows and an error when nothing is
// usable, rows and a *PartialError when lines or values were skipped. It
// never panics.
func ParseServersState(out string) ([]ServerState, error) {
	if strings.TrimSpace(out) == "" {
		return nil, errors.New("show servers state: empty output")
	}
	var rows []ServerState
	var issues []Issue
	var cols map[string]int
	width, headers := 0, 0
	lines := strings.Split(out, "\n")
	truncated := !strings.HasSuffix(out, "\n")
	for n, line := range lines {
		lineNo := n + 1
		line = strings.TrimSuffix(line, "\r")
		t := strings.TrimSpace(line)
		if t == "" {
			continue
		}
		if strings.HasPrefix(t, "#") {
			names := strings.Fields(strings.TrimPrefix(t, "#"))
			var missing []string
			cols, missing = headerColumns(names, stateRequired)
			width = len(names)
			headers++
			if len(missing) > 0 {
				issues = append(issues, Issue{lineNo, "header lacks column " + strings.Join(missing, ", "), ""})
				cols = nil
			}
			continue
		}
		if cols == nil {
			if headers == 0 {
				if v, err := strconv.Atoi(t); err == nil {
					if v != 1 {
						issues = append(issues, Issue{lineNo, fmt.Sprintf("format version %d (expected 1); reading by header", v), ""})
					}
					continue
				}
				if len(rows) == 0 && len(issues) == 0 {
					return nil, fmt.Errorf("show servers state: %w; reply: %q", ErrNoStateHeader, short(t))
				}
			}
			issues = append(issues, Issue{lineNo, "row without a usable header", short(line)})
			continue
		}
		if truncated && n == len(lines)-1 {
			issues = append(issues, Issue{lineNo, "last line cut off (no end of line)", short(line)})
			continue
		}
		f := strings.Fields(t)
		if len(f) != width {
			issues = append(issues, Issue{lineNo, fmt.Sprintf("%d fields for %d columns", len(f), width), short(line)})
			continue
		}
		rows = append(rows, decodeStateRow(lineNo, cols, f, &issues))
	}
	if len(rows) == 0 {
		if headers == 0 {
			return nil, fmt.Errorf("show servers state: %w", ErrNoStateHeader)
		}
		if len(issues) > 0 {
			// Nothing usable: a plain error, never a "partial" one.
			return nil, errors.New(strings.Replace((&PartialError{What: "show servers state", Issues: issues}).Error(), "partial result, skipped", "no usable row", 1))
		}
		return nil, nil
	}
	if truncated && (len(issues) == 0 || issues[len(issues)-1].Line != len(lines)) {
		issues = append(issues, Issue{0, "output cut off: rows may be missing", ""})
	}
	if len(issues) > 0 {
		return rows, &PartialError{What: "show servers state", Issues: issues}
	}
	return rows, nil
}

// decodeStateRow reads one row of "show servers state" by header name (cols)
// into a ServerState; a value that is not a number reads as -1, and a
// problem is added to issues.
func decodeStateRow(lineNo int, cols map[string]int, f []string, issues *[]Issue) ServerState {
	r := ServerState{Line: lineNo, cols: cols, fields: f}
	get := func(name string) string { v, _ := r.Field(name); return v }
	num := func(name string) int64 {
		v, ok := r.Field(name)
		if !ok {
			return -1
		}
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			*issues = append(*issues, Issue{lineNo, fmt.Sprintf("column %s: %q is not a number", name, short(v)), ""})
			return -1
		}
		return x
	}
	r.Backend, r.Name, r.Addr, r.FQDN = get("be_name"), get("srv_name"), get("srv_addr"), get("srv_fqdn")
	r.BackendID, r.ID = num("be_id"), num("srv_id")
	op := num("srv_op_state")
	r.Op = OpUnknown
	if op >= 0 && op <= 3 {
		r.Op = OpState(op)
	} else if op > 3 {
		*issues = append(*issues, Issue{lineNo, fmt.Sprintf("srv_op_state %d out of range", op), ""})
	}
	if adm := num("srv_admin_state"); adm >= 0 && adm <= 0xffff {
		r.Admin, r.AdminKnown = AdminState(adm), true
	}
	r.UWeight, r.IWeight, r.SinceChange = num("srv_uweight"), num("srv_iweight"), num("srv_time_since_last_change")
	r.CheckStatus, r.CheckResult, r.CheckHealth = num("srv_check_status"), num("srv_check_result"), num("srv_check_health")
	r.CheckState, r.AgentState, r.Port = num("srv_check_state"), num("srv_agent_state"), num("srv_port")
	return r
}

// ShowServersState runs "show servers state [<backend>]" (every backend
// when backend is "").
func (c *Client) ShowServersState(ctx context.Context, backend string) ([]ServerState, error) {
	cmd := "show servers state"
	if backend != "" {
		cmd += " " + Arg(backend)
	}
	out, err := c.Exec(ctx, cmd)
	if err != nil {
		return nil, err
	}
	t := strings.TrimSpace(out)
	if first, _, _ := strings.Cut(t, "\n"); t != "" && !strings.HasPrefix(first, "#") {
		if _, err := strconv.Atoi(strings.TrimSpace(first)); err != nil {
			return nil, c.replyError(cmd, out)
		}
	}
	rows, err := ParseServersState(out)
	if err != nil && !IsPartial(err) {
		return nil, &Error{API: c.API, Command: cmd, Op: "reply", Kind: KindParse, Reply: short(out), Err: err}
	}
	if len(rows) > 0 {
		err = checkEnd("show servers state", out, err)
	}
	return rows, err
}
