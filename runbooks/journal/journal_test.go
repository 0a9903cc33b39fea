package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitectl/sitectl/runbooks/event"
)

var t0 = time.Date(2026, 11, 22, 6, 30, 0, 0, time.UTC)

func TestDefaultDir(t *testing.T) {
	home := t.TempDir()
	tests := []struct {
		name, state, xdg, want string
	}{
		{"explicit", "/srv/sitectl", "/xdg", "/srv/sitectl"},
		{"xdg", "", "/xdg/state", "/xdg/state/sitectl"},
		{"relative xdg ignored", "", "rel/state", filepath.Join(home, ".local/state/sitectl")},
		{"home", "", "", filepath.Join(home, ".local/state/sitectl")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HOME", home)
			t.Setenv("SITECTL_STATE_DIR", tc.state)
			t.Setenv("XDG_STATE_HOME", tc.xdg)
			got, err := DefaultDir()
			if err != nil || got != tc.want {
				t.Fatalf("DefaultDir() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestNewRunID(t *testing.T) {
	re := regexp.MustCompile(`^\d{8}T\d{6}Z-[0-9a-f]{6}$`)
	// 24 random bits: ids of one second differ (uniqueness proper is
	// Create's O_EXCL; a birthday collision needs thousands per second).
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		id := NewRunID(t0)
		if !re.MatchString(id) || !strings.HasPrefix(id, "20261122T063000Z-") {
			t.Fatalf("bad id %q", id)
		}
		seen[id] = true
	}
	if len(seen) < 45 {
		t.Fatalf("only %d distinct ids of 50", len(seen))
	}
	a, b := NewRunID(t0), NewRunID(t0.Add(time.Second))
	if !(a < b) {
		t.Fatalf("ids do not sort by time: %q !< %q", a, b)
	}
	// Local times are converted to UTC.
	if id := NewRunID(t0.In(time.FixedZone("x", 3600))); !strings.HasPrefix(id, "20261122T063000Z") {
		t.Fatalf("not UTC: %q", id)
	}
}

func TestValidateRunID(t *testing.T) {
	for _, bad := range []string{"", ".", "..", "a/b", `a\b`, "a\x00b", "a\nb"} {
		if ValidateRunID(bad) == nil {
			t.Errorf("ValidateRunID(%q) = nil", bad)
		}
		if _, err := Create(t.TempDir(), bad); err == nil {
			t.Errorf("Create(%q) succeeded", bad)
		}
	}
}

// sampleRun returns the events of a small run, already stamped.
func sampleRun(id string) []event.Event {
	code0, code1 := event.IntPtr(0), event.IntPtr(1)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	ev := []event.Event{
		{Time: at(0), Kind: event.RunStart, Run: &event.RunInfo{
			ID: id, Runbook: "takeover", RunbookDigest: "sha256:ab", Site: "b", Deployment: "cc-prod",
			User: "alice", Hostname: "ops1", PID: 4242, Version: "1.0.0", Mode: "run",
			Args: []string{"sitectl", "takeover", "--site", "b"}, ResumeOf: "20261122T060000Z-aaaaaa", Started: at(0),
		}},
		{Time: at(1), Kind: event.StepStart, Task: "stop-a/h1/dialer", Step: "stop-a", Host: "h1", Service: "dialer"},
		{Time: at(2), Kind: event.StepAct, Task: "stop-a/h1/dialer", Action: "stop", Command: "systemctl stop dialer", ExitCode: code0},
		{Time: at(3), Kind: event.StepVerify, Task: "stop-a/h1/dialer", Attempt: 1},
		{Time: at(4), Kind: event.StepEnd, Task: "stop-a/h1/dialer", Outcome: event.OK, Duration: 3 * time.Second},
		{Time: at(4), Kind: event.StepStart, Task: "db/h2/db", Step: "db", Host: "h2", Service: "db"},
		{Time: at(4.5), Kind: event.StepEnd, Task: "db/h2/db", Outcome: event.Skipped},
		{Time: at(5), Kind: event.StepStart, Task: "start-b/h3/dialer", Step: "start-b", Host: "h3", Service: "dialer"},
		{Time: at(6), Kind: event.StepAct, Task: "start-b/h3/dialer", Action: "start", Command: "systemctl start dialer", ExitCode: code0},
		{Time: at(12), Kind: event.StepEnd, Task: "start-b/h3/dialer", Outcome: event.OK},
		{Time: at(13), Kind: event.StepStart, Task: "smoke/h3/dialer", Step: "smoke", Host: "h3", Service: "dialer"},
		{Time: at(14), Kind: event.StepAct, Task: "smoke/h3/dialer", Action: "check", Command: "curl -fsS http://h3/health",
			ExitCode: code1, Stderr: "curl: (7) Failed to connect to h3 port 80\n"},
		{Time: at(20), Kind: event.StepEnd, Task: "smoke/h3/dialer", Outcome: event.Failed, Message: "health check failed",
			Hint: "ssh h3 journalctl -u dialer -n 100"},
		{Time: at(20), Kind: event.StepStart, Task: "announce/h3/dialer", Step: "announce", Host: "h3"},
		{Time: at(20), Kind: event.StepEnd, Task: "announce/h3/dialer", Outcome: event.Blocked},
		{Time: at(21), Kind: event.RunEnd, Outcome: event.Failed},
	}
	for i := range ev {
		ev[i].RunID = id
		ev[i].Seq = int64(i + 1)
	}
	return ev
}

func writeRun(t *testing.T, dir, id string, evs []event.Event, opts ...Option) string {
	t.Helper()
	w, err := Create(dir, id, opts...)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		w.Emit(e)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.Path()
}

func TestWriterReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	id := "20261122T063000Z-3f9a1c"
	evs := sampleRun(id)
	p := writeRun(t, dir, id, evs)
	if p != filepath.Join(dir, "runs", id+".jsonl") {
		t.Fatalf("path %s", p)
	}
	b, _ := os.ReadFile(p)
	if n := bytes.Count(b, []byte("\n")); n != len(evs) {
		t.Fatalf("%d lines, want %d", n, len(evs))
	}
	r, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Events, evs) {
		t.Fatalf("events differ:\n got %+v\nwant %+v", r.Events, evs)
	}
	if r.Info == nil || r.Info.Runbook != "takeover" || r.ID() != id {
		t.Fatalf("info %+v", r.Info)
	}
	if r.Outcome != event.Failed || r.Interrupted() || r.Truncated {
		t.Fatalf("outcome %q interrupted %v truncated %v", r.Outcome, r.Interrupted(), r.Truncated)
	}
	if !r.Started.Equal(t0) || !r.Ended.Equal(t0.Add(21*time.Second)) || r.LastSeq != int64(len(evs)) {
		t.Fatalf("started %v ended %v lastseq %d", r.Started, r.Ended, r.LastSeq)
	}
	want := map[string]event.Outcome{
		"stop-a/h1/dialer": event.OK, "db/h2/db": event.Skipped, "start-b/h3/dialer": event.OK,
		"smoke/h3/dialer": event.Failed, "announce/h3/dialer": event.Blocked,
	}
	if got := r.TaskOutcomes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("TaskOutcomes = %v", got)
	}
	// A second Create of the same run must fail, not clobber it.
	if _, err := Create(dir, id); err == nil {
		t.Fatal("Create over an existing journal succeeded")
	}
}

func TestInterruptedRunTaskOutcomes(t *testing.T) {
	evs := sampleRun("x")[:9] // ends after start-b's act: in flight
	dir := t.TempDir()
	r, err := Read(writeRun(t, dir, "x", evs))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Interrupted() || r.Outcome != "" || !r.Ended.IsZero() {
		t.Fatalf("want interrupted, got %q", r.Outcome)
	}
	got := r.TaskOutcomes()
	if o, ok := got["start-b/h3/dialer"]; !ok || o != "" || o.Succeeded() {
		t.Fatalf("in-flight task: %q %v", o, ok)
	}
	if got["stop-a/h1/dialer"] != event.OK {
		t.Fatalf("%v", got)
	}
}

func TestConcurrentEmit(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, "conc")
	if err != nil {
		t.Fatal(err)
	}
	s := &event.Stamper{RunID: "conc", Next: w}
	const G, N = 16, 50
	var wg sync.WaitGroup
	for g := 0; g < G; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < N; i++ {
				s.Emit(event.Event{Kind: event.Message, Message: strings.Repeat("x", 100*g)})
			}
		}()
	}
	// Emit directly as well: the Writer itself must be safe without a Stamper.
	for i := 0; i < N; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); w.Emit(event.Event{Kind: event.Message, Seq: -1}) }()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Read(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Events) != G*N+N || r.LastSeq != G*N || w.Written() != G*N+N {
		t.Fatalf("%d events, lastseq %d, written %d", len(r.Events), r.LastSeq, w.Written())
	}
}

func TestWriterErrorsAreNotSilent(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var reported []error
	w, err := Create(dir, "err", WithErrorHandler(func(err error) {
		mu.Lock()
		reported = append(reported, err)
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	w.Emit(event.Event{Kind: event.RunStart, Seq: 1})
	// Make every later write fail: swap in a read-only descriptor.
	ro, err := os.Open(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	w.f.Close()
	w.f = ro
	w.mu.Unlock()
	for i := 2; i < 5; i++ {
		w.Emit(event.Event{Kind: event.Message, Seq: int64(i)})
	}
	if w.Err() == nil || !strings.Contains(w.Err().Error(), "write") {
		t.Fatalf("Err() = %v", w.Err())
	}
	if len(reported) != 1 || reported[0] != w.Err() {
		t.Fatalf("callback got %v, want exactly the first error once", reported)
	}
	if err := w.Close(); err == nil || err != reported[0] {
		t.Fatalf("Close() = %v", err)
	}
	r, err := Read(w.Path())
	if err != nil || len(r.Events) != 1 {
		t.Fatalf("earlier record lost: %v %d", err, len(r.Events))
	}

	// Emit after Close is an error too.
	var got error
	w2, _ := Create(dir, "closed", WithErrorHandler(func(err error) { got = err }))
	w2.Close()
	w2.Emit(event.Event{Kind: event.Message})
	if !errors.Is(got, ErrClosed) || !errors.Is(w2.Err(), ErrClosed) {
		t.Fatalf("emit after close: %v / %v", got, w2.Err())
	}

	// An event that cannot be encoded is reported, and later ones still land.
	var enc error
	w3, _ := Create(dir, "enc", WithErrorHandler(func(err error) { enc = err }))
	w3.Emit(event.Event{Kind: event.Message, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
	w3.Emit(event.Event{Kind: event.Message, Seq: 2})
	w3.Close()
	if enc == nil || w3.Err() == nil {
		t.Fatal("encode error not reported")
	}
	if r, err := Read(w3.Path()); err != nil || len(r.Events) != 1 {
		t.Fatalf("%v %d", err, len(r.Events))
	}
}

func TestOpenAppend(t *testing.T) {
	tests := []struct {
		name      string
		tail      string // appended raw after two complete records
		wantCount int    // records after appending one more
	}{
		{"clean", "", 3},
		{"torn record", `{"time":"2026-11-22T06:30:00Z","run":"a","seq":3,"ki`, 3},
		{"complete record without newline", `{"run":"a","seq":3,"kind":"message"}`, 4},
		{"nul bytes", "\x00\x00\x00\x00", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := writeRun(t, dir, "a", []event.Event{{Kind: event.RunStart, Seq: 1}, {Kind: event.Message, Seq: 2}})
			f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString(tc.tail)
			f.Close()
			w, err := OpenAppend(dir, "a")
			if err != nil {
				t.Fatal(err)
			}
			w.Emit(event.Event{Kind: event.Lock, Seq: 9, Message: "unlocked by bob"})
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			r, err := Read(p)
			if err != nil || r.Truncated || len(r.Events) != tc.wantCount {
				t.Fatalf("Read: %v truncated=%v n=%d", err, r.Truncated, len(r.Events))
			}
			if last := r.Events[len(r.Events)-1]; last.Kind != event.Lock || r.LastSeq != 9 {
				t.Fatalf("last %+v", last)
			}
		})
	}
	if _, err := OpenAppend(t.TempDir(), "missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenAppend missing: %v", err)
	}
}

func TestReadTolerance(t *testing.T) {
	good := `{"run":"r","seq":1,"kind":"run.start","run_info":{"id":"r","runbook":"rb","started":"2026-11-22T06:30:00Z"}}` + "\n" +
		`{"run":"r","seq":2,"kind":"message"}` + "\n"
	tests := []struct {
		name      string
		data      string
		wantN     int
		truncated bool
		errLine   int // 0: no error
	}{
		{"clean", good, 2, false, 0},
		{"empty file", "", 0, false, 0},
		{"blank lines", "\n" + good + "\n\n", 2, false, 0},
		{"torn last line", good + `{"run":"r","seq":3,"ki`, 2, true, 0},
		{"corrupt last line with newline", good + "garbage\n", 2, true, 0},
		{"corrupt last line then blanks", good + "garbage\n\n  \n", 2, true, 0},
		{"nul tail", good + "\x00\x00\x00", 2, true, 0},
		{"last line without newline", good + `{"seq":3,"kind":"message"}`, 3, false, 0},
		{"record without kind at end", good + `{"seq":3}` + "\n", 2, true, 0},
		{"corrupt middle", good + "garbage\n" + `{"seq":4,"kind":"message"}` + "\n", 0, false, 3},
		{"corrupt first", "{\n" + good, 0, false, 1},
		{"record without kind in middle", `{"seq":1}` + "\n" + good, 0, false, 1},
		{"wrong type in middle", `{"seq":"x","kind":"message"}` + "\n" + good, 0, false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "r.jsonl")
			os.WriteFile(p, []byte(tc.data), 0o600)
			r, err := Read(p)
			if tc.errLine > 0 {
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Line != tc.errLine || ce.Path != p {
					t.Fatalf("err = %v, want CorruptError at line %d", err, tc.errLine)
				}
				if !strings.Contains(err.Error(), p+":"+itoa(tc.errLine)+":") {
					t.Fatalf("message lacks file:line: %v", err)
				}
				return
			}
			if err != nil || len(r.Events) != tc.wantN || r.Truncated != tc.truncated {
				t.Fatalf("err=%v n=%d truncated=%v; want n=%d truncated=%v", err, len(r.Events), r.Truncated, tc.wantN, tc.truncated)
			}
		})
	}
	if _, err := Read(filepath.Join(t.TempDir(), "nope.jsonl")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// Every possible kill point inside the last record leaves a readable journal
// with exactly the complete records before it.
func TestReadEveryTruncationPoint(t *testing.T) {
	dir := t.TempDir()
	evs := sampleRun("cut")
	p := writeRun(t, dir, "cut", evs)
	full, _ := os.ReadFile(p)
	lastStart := bytes.LastIndexByte(full[:len(full)-1], '\n') + 1
	for cut := lastStart; cut < len(full); cut++ {
		r, err := Decode(bytes.NewReader(full[:cut]))
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		wantN := len(evs) - 1
		if cut == len(full)-1 { // only the newline is missing
			wantN = len(evs)
		}
		if len(r.Events) != wantN || r.Truncated != (cut > lastStart && wantN < len(evs)) {
			t.Fatalf("cut at %d: n=%d truncated=%v", cut, len(r.Events), r.Truncated)
		}
	}
}

func TestRedactionNeverReachesDisk(t *testing.T) {
	secrets := []string{"hunter2-db-pass", "s3cr'et-tok", "p|a\"ss<w>rd"}
	leaks := append([]string{"literalpw", "envpw99", "flagpw77", "jsonpw55", "yamlpw33", "urlpw11", "bearer-xyz"}, secrets...)
	dir := t.TempDir()
	w, err := Create(dir, "redact", WithRedactor(NewRedactor(append(secrets, "", "abc")...)))
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(secrets, " ")
	w.Emit(event.Event{Kind: event.RunStart, Run: &event.RunInfo{
		ID: "redact", Args: []string{"sitectl", "takeover", "--password", "flagpw77", "--db-password=" + secrets[0], "token=" + secrets[1]},
		Reason: "rotated " + secrets[2],
	}})
	w.Emit(event.Event{Kind: event.StepAct,
		Command:  "mysql -uroot --password flagpw77 -e 'select 1' && PGPASSWORD=envpw99 psql 'postgres://u:urlpw11@db/x' && echo '" + strings.ReplaceAll(secrets[1], "'", `'\''`) + "'",
		Stdout:   "config:\n  password: yamlpw33\n{\"api_key\": \"jsonpw55\"}\n" + all,
		Stderr:   "Authorization: Bearer bearer-xyz\npassword=literalpw",
		Message:  "using " + secrets[0],
		Hint:     "ssh h1 'mysql --password=" + secrets[0] + "'",
		Expected: secrets[2],
		Observed: "passcode=literalpw",
	})
	w.Close()
	b, _ := os.ReadFile(w.Path())
	for _, s := range leaks {
		for _, form := range []string{s, jsonString(s)} {
			if bytes.Contains(b, []byte(form)) {
				t.Errorf("secret %q found in journal:\n%s", form, b)
			}
		}
	}
	if !bytes.Contains(b, []byte("***")) || !bytes.Contains(b, []byte("mysql -uroot")) {
		t.Fatalf("over- or under-redacted:\n%s", b)
	}
	// The short secret "abc" is ignored (too short to mask safely).
	r, _ := Read(w.Path())
	if r.Events[0].Run.Args[1] != "takeover" {
		t.Fatalf("args: %q", r.Events[0].Run.Args)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func TestRedactorPatterns(t *testing.T) {
	r := NewRedactor("Sup3rS3cret")
	tests := []struct{ in, want string }{
		{"", ""},
		{"systemctl restart dialer", "systemctl restart dialer"},
		{"password=abc", "password=***"},
		{"PASSWORD=abc next", "PASSWORD=*** next"},
		{"MYSQL_ROOT_PASSWORD='a b c' cmd", "MYSQL_ROOT_PASSWORD=*** cmd"},
		{"passcode=1234;echo", "passcode=***;echo"},
		{"--password hunter2 --user x", "--password *** --user x"},
		{"--password=hunter2", "--password=***"},
		{"--db-password 'x y'", "--db-password ***"},
		{"--token-file /etc/tok", "--token-file /etc/tok"},
		{"--password --user x", "--password --user x"},
		{`{"password": "a\"b", "user": "u"}`, `{"password": "***", "user": "u"}`},
		{"db:\n  password: hunter2\n  user: u", "db:\n  password: ***\n  user: u"},
		{"https://admin:hunter2@h/x", "https://admin:***@h/x"},
		{"Authorization: Bearer abc.def", "Authorization: Bearer ***"},
		{"echo Sup3rS3cret", "echo ***"},
		{"echo 'Sup3rS3cret'", "echo '***'"},
		{"api-key=abc", "api-key=***"},
		{"x password = abc y", "x password = *** y"},
		{`--api-token "a b" --x`, "--api-token *** --x"},
		{"kubectl get secret mysecret", "kubectl get secret mysecret"},
		{"cat /etc/passwd: No such file", "cat /etc/passwd: No such file"},
		{"password: hunter2\r\nnext", "password: ***\r\nnext"},
		{"tokens are fine", "tokens are fine"},
		{"a=1 password=\"q q\" b=2", "a=1 password=*** b=2"},
	}
	for _, tc := range tests {
		if got := r(tc.in); got != tc.want {
			t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := r(r(tc.in)); got != tc.want {
			t.Errorf("not idempotent on %q: %q", tc.in, got)
		}
	}
	// Overlapping secrets: the longer one is masked whole.
	r2 := NewRedactor("abcd", "abcdefgh")
	if got := r2("x abcdefgh y abcd"); got != "x *** y ***" {
		t.Fatalf("overlap: %q", got)
	}
}

func TestListAndFind(t *testing.T) {
	dir := t.TempDir()
	mk := func(id string, start time.Time, end *event.Outcome, resumeOf string) {
		evs := []event.Event{{Time: start, RunID: id, Seq: 1, Kind: event.RunStart, Run: &event.RunInfo{
			ID: id, Runbook: "takeover", Site: "b", User: "alice", Mode: "run", ResumeOf: resumeOf, Started: start}},
			{Time: start.Add(30 * time.Second), RunID: id, Seq: 2, Kind: event.StepEnd, Task: "t", Outcome: event.OK}}
		if end != nil {
			evs = append(evs, event.Event{Time: start.Add(time.Minute), RunID: id, Seq: 3, Kind: event.RunEnd, Outcome: *end})
		}
		writeRun(t, dir, id, evs)
	}
	ok, failed := event.OK, event.Failed
	mk("20261122T060000Z-aaaaaa", t0.Add(-30*time.Minute), nil, "")
	mk("20261122T063000Z-3f9a1c", t0, &ok, "20261122T060000Z-aaaaaa")
	mk("20261122T063000Z-3f0000", t0, &failed, "")
	mk("20261121T000000Z-bbbbbb", t0.Add(-30*time.Hour), &ok, "")
	// Not journals: ignored.
	os.WriteFile(filepath.Join(RunsDir(dir), "notes.txt"), []byte("x"), 0o600)
	os.Mkdir(filepath.Join(RunsDir(dir), "sub.jsonl"), 0o700)
	// A corrupt journal is listed, not fatal.
	os.WriteFile(Path(dir, "20261120T000000Z-cccccc"), []byte("x\n{}\n"), 0o600)

	list, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	want := []string{"20261122T063000Z-3f9a1c", "20261122T063000Z-3f0000", "20261122T060000Z-aaaaaa", "20261121T000000Z-bbbbbb", "20261120T000000Z-cccccc"}
	if !reflect.DeepEqual(ids, want) {
		t.Fatalf("order %v\nwant  %v", ids, want)
	}
	if s := list[0]; s.Outcome != "ok" || s.Duration != time.Minute || s.ResumeOf != "20261122T060000Z-aaaaaa" ||
		s.Runbook != "takeover" || s.Site != "b" || s.User != "alice" || !s.Started.Equal(t0) {
		t.Fatalf("summary %+v", s)
	}
	if s := list[2]; s.Outcome != Interrupted || s.Duration != 30*time.Second {
		t.Fatalf("interrupted summary %+v", s)
	}
	if s := list[4]; s.Outcome != Unreadable || !strings.Contains(s.Error, ":1:") {
		t.Fatalf("corrupt summary %+v", s)
	}
	if empty, err := List(t.TempDir()); err != nil || len(empty) != 0 {
		t.Fatalf("empty dir: %v %v", empty, err)
	}

	tests := []struct {
		q, want string
		amb     []string
		notFnd  bool
	}{
		{q: "20261122T063000Z-3f9a1c", want: "20261122T063000Z-3f9a1c"},
		{q: "20261122T063000Z-3f9", want: "20261122T063000Z-3f9a1c"},
		{q: "20261121", want: "20261121T000000Z-bbbbbb"},
		{q: "20261122T063000Z-3f9a1c.jsonl", want: "20261122T063000Z-3f9a1c"},
		{q: "20261122T063000Z-3f", amb: []string{"20261122T063000Z-3f0000", "20261122T063000Z-3f9a1c"}},
		{q: "2026", amb: []string{"20261120T000000Z-cccccc", "20261121T000000Z-bbbbbb", "20261122T060000Z-aaaaaa", "20261122T063000Z-3f0000", "20261122T063000Z-3f9a1c"}},
		{q: "1999", notFnd: true},
		{q: "notes", notFnd: true},
	}
	for _, tc := range tests {
		p, err := Find(dir, tc.q)
		switch {
		case tc.amb != nil:
			var ae *AmbiguousError
			if !errors.As(err, &ae) || !reflect.DeepEqual(ae.Candidates, tc.amb) {
				t.Errorf("Find(%q) = %q, %v; want ambiguous %v", tc.q, p, err, tc.amb)
			}
			for _, c := range tc.amb {
				if err != nil && !strings.Contains(err.Error(), c) {
					t.Errorf("ambiguity message lacks %s: %v", c, err)
				}
			}
		case tc.notFnd:
			if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), tc.q) {
				t.Errorf("Find(%q) = %q, %v; want not found", tc.q, p, err)
			}
		default:
			if err != nil || p != Path(dir, tc.want) {
				t.Errorf("Find(%q) = %q, %v; want %s", tc.q, p, err, tc.want)
			}
		}
	}
	// An exact id wins even though it prefixes another id.
	writeRun(t, dir, "20261122T063000Z-3f", []event.Event{{Kind: event.RunStart}})
	if p, err := Find(dir, "20261122T063000Z-3f"); err != nil || p != Path(dir, "20261122T063000Z-3f") {
		t.Fatalf("exact: %q %v", p, err)
	}
	// A path to a journal is accepted as is.
	if p, err := Find(dir, Path(dir, "20261121T000000Z-bbbbbb")); err != nil || p != Path(dir, "20261121T000000Z-bbbbbb") {
		t.Fatalf("path: %q %v", p, err)
	}
	if _, err := Find(dir, " "); err == nil {
		t.Fatal("empty query accepted")
	}
}

func TestTimingsAndMarkdown(t *testing.T) {
	dir := t.TempDir()
	id := "20261122T063000Z-3f9a1c"
	r, err := Read(writeRun(t, dir, id, sampleRun(id)))
	if err != nil {
		t.Fatal(err)
	}
	tm := Timings(r)
	if !tm.HasRTO || tm.RTO != 12*time.Second || tm.RTOTask != "start-b/h3/dialer" {
		t.Fatalf("RTO %v %v %q", tm.HasRTO, tm.RTO, tm.RTOTask)
	}
	if tm.Total != 21*time.Second || !tm.Ended {
		t.Fatalf("total %v", tm.Total)
	}
	var order []string
	for _, tt := range tm.Tasks {
		order = append(order, tt.Task)
	}
	wantOrder := []string{"stop-a/h1/dialer", "db/h2/db", "start-b/h3/dialer", "smoke/h3/dialer", "announce/h3/dialer"}
	if !reflect.DeepEqual(order, wantOrder) {
		t.Fatalf("task order %v", order)
	}
	byTask := map[string]TaskTiming{}
	for _, tt := range tm.Tasks {
		byTask[tt.Task] = tt
	}
	if d := byTask["stop-a/h1/dialer"]; d.Duration != 3*time.Second || d.Offset != time.Second || d.Polls != 1 || d.Attempts != 1 {
		t.Fatalf("stop-a %+v", d) // step.end's own Duration wins
	}
	if d := byTask["start-b/h3/dialer"]; d.Duration != 7*time.Second || d.Offset != 5*time.Second {
		t.Fatalf("start-b %+v", d) // end - start
	}

	var buf bytes.Buffer
	if err := Markdown(&buf, r); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{
		"# sitectl run " + id,
		"| Runbook | `takeover` (`sha256:ab`) |",
		"| Site | b |", "| Who | alice |", "| Where | ops1 (pid 4242) |", "| Mode | run |",
		"| Resumed from | `20261122T060000Z-aaaaaa` |",
		"## Outcome", "**failed**", "5 tasks: 2 ok, 1 skipped, 1 failed, 1 blocked.",
		"## Recovery time (RTO)", "Measured RTO: **12s** (12.0 s)", "`start-b/h3/dialer`",
		"## Timeline", "| time | task | event | outcome | duration |",
		"| +14s | smoke/h3/dialer | step.act: check exit 1 |  |  |",
		"| +4s | stop-a/h1/dialer | step.end | ok | 3s |",
		"## Task durations", "| `start-b/h3/dialer` | +5s | 7s | ok | 0 | 0 |",
		"## Failures", "### `smoke/h3/dialer`: failed", "- Host: h3\n- Service: dialer\n- Action: check\n",
		"- Command: `curl -fsS http://h3/health`", "- Exit code: 1", "- Message: health check failed",
		"- Hint: `ssh h3 journalctl -u dialer -n 100`",
		"stderr:\n\n```text\ncurl: (7) Failed to connect to h3 port 80\n```",
		"Blocked (not run because a dependency did not succeed): `announce/h3/dialer`.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(md, "step.verify") {
		t.Error("timeline lists verification polls")
	}
	// Sections in order.
	last := -1
	for _, h := range []string{"## Outcome", "## Recovery time", "## Timeline", "## Task durations", "## Failures"} {
		i := strings.Index(md, h)
		if i < last {
			t.Errorf("section %q out of order", h)
		}
		last = i
	}
	if t.Failed() {
		t.Log(md)
	}
}

func TestMarkdownNoVerificationAndInterrupted(t *testing.T) {
	evs := []event.Event{
		{Time: t0, Seq: 1, RunID: "i", Kind: event.RunStart, Run: &event.RunInfo{ID: "i", Runbook: "renounce", Mode: "resume"}},
		{Time: t0.Add(time.Second), Seq: 2, RunID: "i", Kind: event.StepStart, Task: "a|b`c"},
		{Time: t0.Add(2 * time.Second), Seq: 3, RunID: "i", Kind: event.StepEnd, Task: "a|b`c", Outcome: event.Skipped},
		{Time: t0.Add(3 * time.Second), Seq: 4, RunID: "i", Kind: event.StepStart, Task: "in-flight"},
	}
	dir := t.TempDir()
	p := writeRun(t, dir, "i", evs)
	f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"seq":5,"ki`)
	f.Close()
	r, err := Read(p)
	if err != nil || !r.Truncated {
		t.Fatal(err, r.Truncated)
	}
	tm := Timings(r)
	if tm.HasRTO || tm.Ended || tm.Total != 3*time.Second {
		t.Fatalf("%+v", tm)
	}
	var buf bytes.Buffer
	if err := Markdown(&buf, r); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{"**interrupted**", "no verification succeeded", "never (no run.end record)",
		"torn", "(did not end)", "1 skipped, 1 in flight", "a\\|b`c", "None."} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q\n%s", want, md)
		}
	}
	// A failing writer's error is returned.
	if err := Markdown(failWriter{}, r); err == nil {
		t.Fatal("write error swallowed")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestCodeSpan(t *testing.T) {
	for in, want := range map[string]string{
		"a":      "`a`",
		"a`b":    "``a`b``",
		"`x`":    "`` `x` ``",
		"a|b":    "`a\\|b`",
		"l1\nl2": "`l1 ⏎ l2`",
	} {
		if got := code(in); got != want {
			t.Errorf("code(%q) = %q, want %q", in, got, want)
		}
	}
	if f := fence("a ```` b"); f != "`````" {
		t.Errorf("fence %q", f)
	}
}

func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	for _, e := range sampleRun("fz") {
		b, _ := json.Marshal(e)
		buf.Write(b)
		buf.WriteByte('\n')
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()/2])
	f.Add([]byte(""))
	f.Add([]byte("\n\n{}\n"))
	f.Add([]byte(`{"kind":"run.end","outcome":"ok","time":"2026-11-22T06:30:00Z"}`))
	f.Add([]byte(`{"kind":"step.end","task":"t","duration_ns":-5,"time":"0001-01-01T00:00:00Z"}` + "\nnull\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(bytes.NewReader(data))
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Line < 1 {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		for _, e := range r.Events {
			if e.Kind == "" {
				t.Fatal("record without kind accepted")
			}
		}
		// Whatever parsed must summarise and render without panicking.
		_ = r.TaskOutcomes()
		_ = Summarize(r)
		_ = Timings(r)
		if err := Markdown(&bytes.Buffer{}, r); err != nil {
			t.Fatal(err)
		}
		// Re-encoding what was read must read back the same records.
		var out bytes.Buffer
		for _, e := range r.Events {
			b, err := json.Marshal(e)
			if err != nil {
				return // e.g. a year outside 0..9999 parsed from text
			}
			out.Write(b)
			out.WriteByte('\n')
		}
		r2, err := Decode(&out)
		if err != nil || len(r2.Events) != len(r.Events) || r2.Truncated {
			t.Fatalf("re-read: %v n=%d want %d", err, len(r2.Events), len(r.Events))
		}
	})
}

var _ = sort.Strings

func TestIsSecretFlag(t *testing.T) {
	for arg, want := range map[string]bool{
		"--password": true, "-password": true, "--db-password": true, "--api-key": true, "--token2": true,
		"--PASSWORD": true, "--password-file": false, "--token-ttl": false, "--password=x": false,
		"password": false, "--": false, "-": false, "--site": false, "--secret.name": false,
	} {
		if got := isSecretFlag(arg); got != want {
			t.Errorf("isSecretFlag(%q) = %v, want %v", arg, got, want)
		}
	}
}

func FuzzRedactor(f *testing.F) {
	f.Add("password=abc --token x", "Sup3rS3cret")
	f.Add("Authorization: Bearer z\nuser: u\npassword: p", "abcd")
	f.Add("postgres://u:pw@h/x 'Sup3r'\\''S3cret'", "Sup3r'S3cret")
	f.Fuzz(func(t *testing.T, in, secret string) {
		r := NewRedactor(secret)
		out := r(in)
		// Masking can only re-create a secret that contains '*'.
		if len(secret) >= MinSecretLen && !strings.Contains(secret, "*") && strings.Contains(out, secret) {
			t.Fatalf("secret %q survives in %q", secret, out)
		}
	})
}
