package mongosim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func doc(t testing.TB, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMsgRoundTrip(t *testing.T) {
	body := doc(t, bson.D{{Key: "insert", Value: "c"}, {Key: "$db", Value: "x"}})
	seq := Sequence{Identifier: "documents", Docs: []bson.Raw{doc(t, bson.D{{Key: "a", Value: 1}}), doc(t, bson.D{{Key: "a", Value: 2}})}}
	for _, flags := range []uint32{0, FlagChecksumPresent, FlagExhaustAllowed} {
		b := AppendMsg(nil, 7, 3, flags, body, seq)
		m, err := ReadMessage(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("flags %#x: %v", flags, err)
		}
		if m.Header.RequestID != 7 || m.Header.ResponseTo != 3 || m.Flags != flags || !bytes.Equal(m.Body, body) {
			t.Fatalf("flags %#x: %+v", flags, m)
		}
		if len(m.Sequences) != 1 || m.Sequences[0].Identifier != "documents" || len(m.Sequences[0].Docs) != 2 {
			t.Fatalf("sequences %+v", m.Sequences)
		}
		if firstKey(m.Command()) != "insert" {
			t.Fatalf("command %v", m.Command())
		}
	}
}

func TestChecksumMismatch(t *testing.T) {
	b := AppendMsg(nil, 1, 0, FlagChecksumPresent, doc(t, bson.D{{Key: "ping", Value: 1}}))
	b[len(b)-1] ^= 0xff
	if _, err := ParseMessage(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("want checksum error, got %v", err)
	}
}

func TestQueryAndReply(t *testing.T) {
	q := doc(t, bson.D{{Key: "$query", Value: bson.D{{Key: "isMaster", Value: 1}, {Key: "helloOk", Value: true}}}, {Key: "$readPreference", Value: bson.D{{Key: "mode", Value: "primaryPreferred"}}}})
	m, err := ParseMessage(AppendQuery(nil, 5, "admin.$cmd", q))
	if err != nil {
		t.Fatal(err)
	}
	if m.FullCollection != "admin.$cmd" || firstKey(m.Command()) != "isMaster" || m.NumberToReturn != -1 {
		t.Fatalf("%+v", m)
	}
	r, err := ParseMessage(AppendReply(nil, 9, 5, doc(t, bson.D{{Key: "ok", Value: 1.0}})))
	if err != nil {
		t.Fatal(err)
	}
	if r.Header.ResponseTo != 5 || len(r.Documents) != 1 || r.ResponseFlags != replyAwaitCapable {
		t.Fatalf("%+v", r)
	}
}

func TestMalformed(t *testing.T) {
	good := AppendMsg(nil, 1, 0, 0, doc(t, bson.D{{Key: "ping", Value: 1}}))
	le := func(b []byte, off int, v uint32) []byte {
		c := append([]byte(nil), b...)
		binary.LittleEndian.PutUint32(c[off:], v)
		return c
	}
	cases := map[string][]byte{
		"empty":            nil,
		"short header":     good[:10],
		"length mismatch":  le(good, 0, uint32(len(good)+1)),
		"unknown op":       le(good, 12, 9999),
		"unknown flag":     le(good, 16, 1<<5),
		"section kind 7":   append(append([]byte(nil), good[:20]...), append([]byte{7}, good[21:]...)...),
		"doc len too big":  le(good, 21, 1<<20),
		"no kind-0":        AppendMsg(nil, 1, 0, 0, nil)[:21],
		"compressed":       le(good, 12, uint32(OpCompressed)),
		"bad bson":         append(append([]byte(nil), good[:len(good)-1]...), 1),
		"negative length":  le(good, 0, 0xffffffff),
		"checksum missing": le(good[:20], 16, FlagChecksumPresent),
	}
	for name, b := range cases {
		b = append([]byte(nil), b...)
		if len(b) >= 4 && name != "length mismatch" && name != "negative length" {
			binary.LittleEndian.PutUint32(b, uint32(len(b)))
		}
		if _, err := ParseMessage(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	// ReadMessage refuses absurd lengths before allocating.
	if _, err := ReadMessage(bytes.NewReader(le(good, 0, MaxMessageSize+1))); !errors.Is(err, ErrMalformed) {
		t.Errorf("huge length: %v", err)
	}
	if _, err := ReadMessage(bytes.NewReader(good[:len(good)-3])); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut short: %v", err)
	}
}

// FuzzParseMessage: the parser never panics, and whatever it accepts is a
// message whose documents are valid BSON.
func FuzzParseMessage(f *testing.F) {
	body, _ := bson.Marshal(bson.D{{Key: "hello", Value: 1}, {Key: "$db", Value: "admin"}})
	d1, _ := bson.Marshal(bson.D{{Key: "a", Value: 1}})
	f.Add(AppendMsg(nil, 1, 0, 0, body))
	f.Add(AppendMsg(nil, 1, 0, FlagChecksumPresent, body, Sequence{Identifier: "documents", Docs: []bson.Raw{d1, d1}}))
	f.Add(AppendQuery(nil, 2, "admin.$cmd", body))
	f.Add(AppendReply(nil, 3, 2, body))
	f.Add([]byte{16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xdd, 7, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			return
		}
		for _, d := range append(append([]bson.Raw{m.Body, m.Query}, m.Documents...), seqDocs(m)...) {
			if d != nil {
				if err := d.Validate(); err != nil {
					t.Fatalf("accepted an invalid document: %v", err)
				}
			}
		}
		_ = firstKey(m.Command())
		if _, err := ReadMessage(bytes.NewReader(b)); err != nil {
			t.Fatalf("ParseMessage accepted what ReadMessage refuses: %v", err)
		}
	})
}

func seqDocs(m *Message) []bson.Raw {
	var out []bson.Raw
	for _, s := range m.Sequences {
		out = append(out, s.Docs...)
	}
	return out
}
