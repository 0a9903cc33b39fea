package mongo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sitectl/sitectl/adapters/mongo"
	"github.com/sitectl/sitectl/adapters/netwatch"
	"github.com/sitectl/sitectl/internal/mongosim"
	"github.com/sitectl/sitectl/internal/testenv/closedport"
	"github.com/sitectl/sitectl/inventory"
)

// fakeServer listens on loopback and hands every connection to handle.
func fakeServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

func holdOpen(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

// Members that answer garbage, close mid-reply, never answer or refuse:
// each gets a typed error within the timeout; nothing panics or hangs.
func TestBadMembersTypedAndBounded(t *testing.T) {
	t.Parallel()
	httpish := fakeServer(t, func(c net.Conn) {
		_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
		holdOpen(c)
	})
	smallGarbage := fakeServer(t, func(c net.Conn) {
		b := []byte{40, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0xdd, 7, 0, 0}
		_, _ = c.Write(append(b, make([]byte, 24)...))
		holdOpen(c)
	})
	midReply := fakeServer(t, func(c net.Conn) {
		if _, err := mongosim.ReadMessage(c); err != nil {
			return
		}
		doc, _ := bson.Marshal(bson.D{{Key: "ismaster", Value: true}, {Key: "maxWireVersion", Value: 21}, {Key: "ok", Value: 1.0}})
		reply := mongosim.AppendReply(nil, 1, 0, doc)
		_, _ = c.Write(reply[:len(reply)/2])
		_ = c.Close()
	})
	silent := fakeServer(t, holdOpen)
	refused := closedport.Addr(t)

	members := []mongo.Member{
		{Name: "httpish", Address: httpish, Site: "A"},
		{Name: "garbage", Address: smallGarbage, Site: "A"},
		{Name: "mid-reply", Address: midReply, Site: "B"},
		{Name: "silent", Address: silent, Site: "B"},
		{Name: "refused", Address: refused, Site: "W"},
	}
	const timeout = time.Second
	start := time.Now()
	o := mongo.Observe(t.Context(), members, mongo.Credentials{}, timeout)
	took := time.Since(start)
	if took > 30*time.Second { // a guard against a hang, not a timing
		t.Errorf("Observe took %s with a %s timeout", took, timeout)
	}
	want := map[string]mongo.ErrorKind{
		"httpish": mongo.KindProtocol, "garbage": mongo.KindProtocol, "mid-reply": mongo.KindProtocol,
		"silent": mongo.KindTimeout, "refused": mongo.KindRefused,
	}
	for i := range o.Members {
		m := &o.Members[i]
		if m.Reachable || m.Observed() || m.Err == nil {
			t.Errorf("%s: reachable %v err %v", m.Member.Name, m.Reachable, m.Err)
			continue
		}
		if m.Err.Kind != want[m.Member.Name] {
			t.Errorf("%s: kind %s, want %s: %v", m.Member.Name, m.Err.Kind, want[m.Member.Name], m.Err)
		}
		if !strings.Contains(m.Err.Error(), m.Member.Address) || !strings.Contains(m.Err.Error(), m.Member.Name) {
			t.Errorf("%s: the error does not say where: %v", m.Member.Name, m.Err)
		}
		t.Logf("%s: %v", m.Member.Name, m.Err)
	}
	if o.Primary() != nil {
		t.Error("a primary among broken members")
	}
}

// A member that answers with documents of the wrong shape: a typed
// protocol error naming the field, the rest of the member still reported.
func TestUnexpectedReplyDocuments(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	weird := func(d bson.D) bson.Raw { b, _ := bson.Marshal(d); return b }
	l.sim.Node("mongo-b").SetIntercept(func(cmd string, _ bson.Raw) (bson.Raw, bool) {
		switch cmd {
		case "replSetGetStatus":
			return weird(bson.D{{Key: "myState", Value: "PRIMARY"}, {Key: "members", Value: 5}, {Key: "ok", Value: 1.0}}), true
		case "replSetGetConfig":
			return weird(bson.D{{Key: "config", Value: "none"}, {Key: "ok", Value: 1.0}}), true
		}
		return nil, false
	})
	l.sim.Node("mongo-arb").SetIntercept(func(cmd string, _ bson.Raw) (bson.Raw, bool) {
		if cmd == "hello" {
			return weird(bson.D{{Key: "isWritablePrimary", Value: "yes"}, {Key: "ok", Value: 1.0}}), true
		}
		return nil, false
	})
	o := l.observe()
	b := member(t, o, "mongo-b")
	if !b.Reachable || b.StatusKnown || b.ConfigKnown || b.Observed() || len(b.Errors) != 2 {
		t.Fatalf("mongo-b: %+v", b)
	}
	for i, want := range []string{"myState is a string", "config is a string"} {
		if e := b.Errors[i]; e.Kind != mongo.KindProtocol || !strings.Contains(e.Error(), want) {
			t.Errorf("error %d: %v (want %q)", i, e, want)
		}
	}
	arb := member(t, o, "mongo-arb")
	if arb.Reachable || arb.Err == nil || arb.Err.Kind != mongo.KindProtocol || !strings.Contains(arb.Err.Message, "isWritablePrimary is a string") {
		t.Fatalf("arbiter: %+v", arb.Err)
	}
	if a := member(t, o, "mongo-a"); !a.Observed() || !a.Writable {
		t.Fatalf("mongo-a: %+v", a)
	}
}

const secret = "s3cr3t-Pa55w0rd-never-print-me"

// Wrong credentials: a typed auth error, and the password appears in no
// error, string or JSON.
func TestAuthFailureNeverLeaksPassword(t *testing.T) {
	t.Parallel()
	const good = "the-right-password-42"
	l := newLab(t, func(c *mongosim.Config) { c.Auth = &mongosim.Auth{User: "sitectl", Password: good} })
	l.set.Creds = mongo.Credentials{Username: "sitectl", Password: secret}
	o := l.observe()
	for _, name := range []string{"mongo-a", "mongo-b"} {
		m := member(t, o, name)
		if m.Reachable || m.Err == nil || m.Err.Kind != mongo.KindAuth || m.Err.Code != 18 {
			t.Errorf("%s: %+v", name, m.Err)
		}
	}
	// The driver does not authenticate to arbiters: hello works, the rest is
	// Unauthorized, and that still counts as observed.
	arb := member(t, o, "mongo-arb")
	if !arb.Observed() || len(arb.Errors) != 1 || arb.Errors[0].Code != 13 || arb.Errors[0].Kind != mongo.KindAuth {
		t.Errorf("arbiter: observed %v errors %v", arb.Observed(), arb.Errors)
	}
	js, _ := json.Marshal(o)
	texts := []string{string(js), o.Summary(), fmt.Sprintf("%v %+v %#v", o, *o, l.set), fmt.Sprint(l.set.Creds),
		fmt.Sprintf("%s %v %+v %#v %q", l.set.Creds, l.set.Creds, l.set.Creds, l.set.Creds, l.set.Creds.Password)}
	for i := range o.Members {
		if e := o.Members[i].Err; e != nil {
			texts = append(texts, e.Error(), fmt.Sprintf("%+v", *e), e.Message)
		}
	}
	_, err := l.set.WaitPrimary(t.Context(), mongo.WaitOptions{Timeout: 200 * time.Millisecond})
	texts = append(texts, err.Error())
	_, err = l.set.MovePrimary(t.Context(), "mongo-b", mongo.MoveOptions{})
	texts = append(texts, err.Error())
	for _, s := range texts {
		if strings.Contains(s, secret) {
			t.Fatalf("the password leaked: %s", s)
		}
	}
	l.set.Creds.Password = good
	o = l.observe()
	if p := o.Primary(); p == nil || p.Member.Name != "mongo-a" || !member(t, o, "mongo-b").Observed() {
		t.Fatalf("with the right password: %s", o.Summary())
	}
}

func TestLoadCredentials(t *testing.T) {
	t.Setenv("T_MONGO_USER", "alice")
	t.Setenv("T_MONGO_PASS", secret)
	c, err := mongo.LoadCredentials(&inventory.Credentials{UsernameEnv: "T_MONGO_USER", PasswordEnv: "T_MONGO_PASS"})
	if err != nil || c.Username != "alice" || string(c.Password) != secret {
		t.Fatalf("%v %v", c, err)
	}
	_, err = mongo.LoadCredentials(&inventory.Credentials{UsernameEnv: "T_MONGO_USER", PasswordEnv: "T_MONGO_UNSET_PASS"})
	if err == nil || !strings.Contains(err.Error(), "T_MONGO_UNSET_PASS") {
		t.Fatalf("unset variable: %v", err)
	}
	if c, err := mongo.LoadCredentials(nil); err != nil || !c.IsZero() {
		t.Fatalf("nil: %v %v", c, err)
	}
	dir := t.TempDir()
	for name, content := range map[string]string{
		"line":  "bob:" + secret + "\n",
		"yaml":  "username: bob\npassword: " + secret + "\n",
		"crlf":  "bob:" + secret + "\r\n",
		"colon": "bob:" + secret + ":x\n",
	} {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := mongo.LoadCredentials(&inventory.Credentials{File: f})
		want := secret
		if name == "colon" {
			want = secret + ":x"
		}
		if err != nil || c.Username != "bob" || string(c.Password) != want {
			t.Errorf("%s: %#v %v", name, c, err)
		}
	}
	for name, content := range map[string]string{"empty": "", "nouser": ":" + secret, "nopass": "bob:", "yaml-half": "username: bob\n", "word": secret} {
		f := filepath.Join(dir, "bad-"+name)
		_ = os.WriteFile(f, []byte(content), 0o600)
		_, err := mongo.LoadCredentials(&inventory.Credentials{File: f})
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("%s: %v", name, err)
		}
	}
	c = mongo.Credentials{Username: "bob", Password: secret}
	js, _ := json.Marshal(struct{ C mongo.Credentials }{c})
	for _, s := range []string{fmt.Sprintf("%v|%+v|%#v|%s|%q|%x", c, c, c, c, c.Password, c.Password), string(js)} {
		if strings.Contains(s, secret) || strings.Contains(s, fmt.Sprintf("%x", secret)) {
			t.Fatalf("leak: %s", s)
		}
	}
}

// With a netwatch in the context, a member that refused is not dialed again
// while it stays dead: the next observation reports it at once, with the
// same kind, and says it is probed in the background.
func TestObserveRemembersDeadMember(t *testing.T) {
	refused := closedport.Addr(t)
	w := netwatch.New()
	defer w.Close()
	ctx := netwatch.NewContext(t.Context(), w)
	members := []mongo.Member{{Name: "gone", Address: refused, Site: "A"}}
	first := mongo.Observe(ctx, members, mongo.Credentials{}, time.Second).Member("gone")
	if first.Err == nil || first.Err.Kind != mongo.KindRefused {
		t.Fatalf("first observation: %v", first.Err)
	}
	second := mongo.Observe(ctx, members, mongo.Credentials{}, time.Second).Member("gone")
	if second.Err == nil || second.Err.Kind != mongo.KindRefused || second.Reachable {
		t.Fatalf("second observation: %+v", second.Err)
	}
	if !strings.Contains(second.Err.Error(), "probed again in the background") || !strings.Contains(second.Err.Error(), "gone") {
		t.Errorf("second observation's error: %v", second.Err)
	}
}

// blackhole returns a loopback address whose TCP handshakes go unanswered,
// as a cut network does: a listening socket with a backlog of 0 that never
// accepts, its queue filled by one connection (Linux then drops new SYNs).
func blackhole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr // the queue is full: handshakes now go unanswered
		}
		t.Cleanup(func() { c.Close() })
		if i == 8 {
			t.Fatalf("%s still completes handshakes after %d connections", addr, i+1)
		}
	}
}

// A member that did not answer before the caller's deadline (shorter than
// the member timeout, as a board refresh is) is remembered as dead too, so
// the next observation does not wait for it again.
func TestObserveRemembersMemberCutByDeadline(t *testing.T) {
	addr := blackhole(t)
	w := netwatch.New()
	defer w.Close()
	base := netwatch.NewContext(t.Context(), w)
	members := []mongo.Member{{Name: "cut", Address: addr, Site: "A"}}
	observe := func() (*mongo.MemberStatus, time.Duration) {
		ctx, cancel := context.WithTimeout(base, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		return mongo.Observe(ctx, members, mongo.Credentials{}, 2*time.Second).Member("cut"), time.Since(start)
	}
	first, took := observe()
	if first.Reachable || first.Err == nil || first.Err.Kind != mongo.KindTimeout {
		t.Fatalf("first observation after %s: %+v", took, first.Err)
	}
	second, took := observe()
	// remembered, not waited for again: the error says so (its duration
	// is logged, not asserted)
	if second.Reachable || second.Err == nil || !strings.Contains(second.Err.Error(), "probed again in the background") {
		t.Fatalf("second observation after %s: %v", took, second.Err)
	}
}
