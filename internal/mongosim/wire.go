package mongosim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Wire protocol op codes (https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/).
const (
	OpReply      int32 = 1
	OpQuery      int32 = 2004
	OpCompressed int32 = 2012
	OpMsg        int32 = 2013
)

// OP_MSG flag bits.
const (
	FlagChecksumPresent uint32 = 1 << 0
	FlagMoreToCome      uint32 = 1 << 1
	FlagExhaustAllowed  uint32 = 1 << 16
)

// OP_REPLY response flag: the server supports awaitData (always set by mongod).
const replyAwaitCapable int32 = 8

const (
	headerLen = 16
	// MaxMessageSize is the largest message accepted (mongod's maxMessageSizeBytes).
	MaxMessageSize = 48_000_000
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrMalformed wraps every parse failure.
var ErrMalformed = errors.New("malformed wire message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Header is the standard message header.
type Header struct {
	Length     int32
	RequestID  int32
	ResponseTo int32
	OpCode     int32
}

// Sequence is an OP_MSG kind-1 section (a document sequence).
type Sequence struct {
	Identifier string
	Docs       []bson.Raw
}

// Message is one parsed request or reply.
type Message struct {
	Header Header

	// OP_MSG
	Flags     uint32
	Body      bson.Raw // the kind-0 section
	Sequences []Sequence

	// OP_QUERY
	QueryFlags     int32
	FullCollection string
	NumberToSkip   int32
	NumberToReturn int32
	Query          bson.Raw

	// OP_REPLY
	ResponseFlags int32
	CursorID      int64
	StartingFrom  int32
	Documents     []bson.Raw
}

// Command returns the command document: the OP_MSG body, or the OP_QUERY
// query with a $query wrapper removed.
func (m *Message) Command() bson.Raw {
	switch m.Header.OpCode {
	case OpMsg:
		return m.Body
	case OpQuery:
		if v, err := m.Query.LookupErr("$query"); err == nil {
			if d, ok := v.DocumentOK(); ok {
				return d
			}
		}
		return m.Query
	case OpReply:
		if len(m.Documents) > 0 {
			return m.Documents[0]
		}
	}
	return nil
}

// ReadMessage reads one whole message from r. It never allocates more than
// MaxMessageSize bytes and never panics on bad input.
func ReadMessage(r io.Reader) (*Message, error) {
	var lb [4]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return nil, err
	}
	n := int32(binary.LittleEndian.Uint32(lb[:]))
	if n < headerLen || n > MaxMessageSize {
		return nil, malformed("message length %d out of range [%d, %d]", n, headerLen, MaxMessageSize)
	}
	buf := make([]byte, n)
	copy(buf, lb[:])
	if _, err := io.ReadFull(r, buf[4:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return ParseMessage(buf)
}

// ParseMessage parses one whole message (header included).
func ParseMessage(b []byte) (*Message, error) {
	if len(b) < headerLen {
		return nil, malformed("%d bytes is shorter than a header", len(b))
	}
	m := &Message{Header: Header{
		Length:     int32(binary.LittleEndian.Uint32(b[0:])),
		RequestID:  int32(binary.LittleEndian.Uint32(b[4:])),
		ResponseTo: int32(binary.LittleEndian.Uint32(b[8:])),
		OpCode:     int32(binary.LittleEndian.Uint32(b[12:])),
	}}
	if int(m.Header.Length) != len(b) {
		return nil, malformed("header says %d bytes, message has %d", m.Header.Length, len(b))
	}
	body := b[headerLen:]
	switch m.Header.OpCode {
	case OpMsg:
		return m, parseMsg(m, b, body)
	case OpQuery:
		return m, parseQuery(m, body)
	case OpReply:
		return m, parseReply(m, body)
	case OpCompressed:
		return nil, malformed("OP_COMPRESSED is not supported (no compressor was negotiated)")
	}
	return nil, malformed("unsupported op code %d", m.Header.OpCode)
}

func parseMsg(m *Message, whole, b []byte) error {
	if len(b) < 4 {
		return malformed("OP_MSG without flags")
	}
	m.Flags = binary.LittleEndian.Uint32(b)
	b = b[4:]
	// Bits 0-15 are required: a parser must error on unknown ones.
	if unknown := m.Flags & 0xffff &^ (FlagChecksumPresent | FlagMoreToCome); unknown != 0 {
		return malformed("OP_MSG has unknown required flag bits %#x", unknown)
	}
	if m.Flags&FlagChecksumPresent != 0 {
		if len(b) < 4 {
			return malformed("OP_MSG checksum flag set but no checksum")
		}
		want := binary.LittleEndian.Uint32(b[len(b)-4:])
		if got := crc32.Checksum(whole[:len(whole)-4], castagnoli); got != want {
			return malformed("OP_MSG checksum mismatch (got %#x, message says %#x)", got, want)
		}
		b = b[:len(b)-4]
	}
	for len(b) > 0 {
		kind := b[0]
		b = b[1:]
		switch kind {
		case 0:
			doc, rest, err := readDoc(b)
			if err != nil {
				return err
			}
			if m.Body != nil {
				return malformed("OP_MSG has two kind-0 sections")
			}
			m.Body, b = doc, rest
		case 1:
			if len(b) < 4 {
				return malformed("OP_MSG kind-1 section without size")
			}
			size := int(int32(binary.LittleEndian.Uint32(b)))
			if size < 5 || size > len(b) {
				return malformed("OP_MSG kind-1 section size %d out of range (%d bytes left)", size, len(b))
			}
			sec := b[4:size]
			b = b[size:]
			id, rest, err := readCString(sec)
			if err != nil {
				return err
			}
			seq := Sequence{Identifier: id}
			for len(rest) > 0 {
				var doc bson.Raw
				doc, rest, err = readDoc(rest)
				if err != nil {
					return err
				}
				seq.Docs = append(seq.Docs, doc)
			}
			m.Sequences = append(m.Sequences, seq)
		default:
			return malformed("OP_MSG section kind %d", kind)
		}
	}
	if m.Body == nil {
		return malformed("OP_MSG without a kind-0 section")
	}
	return nil
}

func parseQuery(m *Message, b []byte) error {
	if len(b) < 4 {
		return malformed("OP_QUERY without flags")
	}
	m.QueryFlags = int32(binary.LittleEndian.Uint32(b))
	name, rest, err := readCString(b[4:])
	if err != nil {
		return err
	}
	m.FullCollection = name
	if len(rest) < 8 {
		return malformed("OP_QUERY without skip/return")
	}
	m.NumberToSkip = int32(binary.LittleEndian.Uint32(rest))
	m.NumberToReturn = int32(binary.LittleEndian.Uint32(rest[4:]))
	m.Query, rest, err = readDoc(rest[8:])
	if err != nil {
		return err
	}
	if len(rest) > 0 { // optional returnFieldsSelector
		if _, rest, err = readDoc(rest); err != nil {
			return err
		}
		if len(rest) > 0 {
			return malformed("OP_QUERY has %d trailing bytes", len(rest))
		}
	}
	return nil
}

func parseReply(m *Message, b []byte) error {
	if len(b) < 20 {
		return malformed("OP_REPLY shorter than its fixed fields")
	}
	m.ResponseFlags = int32(binary.LittleEndian.Uint32(b))
	m.CursorID = int64(binary.LittleEndian.Uint64(b[4:]))
	m.StartingFrom = int32(binary.LittleEndian.Uint32(b[12:]))
	n := int32(binary.LittleEndian.Uint32(b[16:]))
	b = b[20:]
	for len(b) > 0 {
		doc, rest, err := readDoc(b)
		if err != nil {
			return err
		}
		m.Documents = append(m.Documents, doc)
		b = rest
	}
	if int(n) != len(m.Documents) {
		return malformed("OP_REPLY numberReturned %d but %d documents", n, len(m.Documents))
	}
	return nil
}

func readCString(b []byte) (string, []byte, error) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), b[i+1:], nil
		}
	}
	return "", nil, malformed("unterminated C string")
}

func readDoc(b []byte) (bson.Raw, []byte, error) {
	if len(b) < 5 {
		return nil, nil, malformed("document shorter than 5 bytes")
	}
	n := int(int32(binary.LittleEndian.Uint32(b)))
	if n < 5 || n > len(b) {
		return nil, nil, malformed("document length %d out of range (%d bytes left)", n, len(b))
	}
	doc := bson.Raw(b[:n:n])
	if err := doc.Validate(); err != nil {
		return nil, nil, malformed("invalid BSON document: %v", err)
	}
	return doc, b[n:], nil
}

func appendHeader(dst []byte, requestID, responseTo, opCode int32) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, 0) // length, patched by finish
	dst = binary.LittleEndian.AppendUint32(dst, uint32(requestID))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(responseTo))
	return binary.LittleEndian.AppendUint32(dst, uint32(opCode))
}

func finish(dst []byte, start int) []byte {
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst
}

// AppendMsg appends an OP_MSG with one kind-0 section (and optional
// sequences). With FlagChecksumPresent in flags, a CRC-32C is appended.
func AppendMsg(dst []byte, requestID, responseTo int32, flags uint32, body bson.Raw, seqs ...Sequence) []byte {
	start := len(dst)
	dst = appendHeader(dst, requestID, responseTo, OpMsg)
	dst = binary.LittleEndian.AppendUint32(dst, flags)
	dst = append(dst, 0)
	dst = append(dst, body...)
	for _, s := range seqs {
		dst = append(dst, 1)
		sizeAt := len(dst)
		dst = binary.LittleEndian.AppendUint32(dst, 0)
		dst = append(dst, s.Identifier...)
		dst = append(dst, 0)
		for _, d := range s.Docs {
			dst = append(dst, d...)
		}
		binary.LittleEndian.PutUint32(dst[sizeAt:], uint32(len(dst)-sizeAt))
	}
	if flags&FlagChecksumPresent != 0 {
		dst = binary.LittleEndian.AppendUint32(dst, 0) // room for the checksum
		dst = finish(dst, start)
		sum := crc32.Checksum(dst[start:len(dst)-4], castagnoli)
		binary.LittleEndian.PutUint32(dst[len(dst)-4:], sum)
		return dst
	}
	return finish(dst, start)
}

// AppendReply appends an OP_REPLY carrying docs.
func AppendReply(dst []byte, requestID, responseTo int32, docs ...bson.Raw) []byte {
	start := len(dst)
	dst = appendHeader(dst, requestID, responseTo, OpReply)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(replyAwaitCapable))
	dst = binary.LittleEndian.AppendUint64(dst, 0) // cursorID
	dst = binary.LittleEndian.AppendUint32(dst, 0) // startingFrom
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(docs)))
	for _, d := range docs {
		dst = append(dst, d...)
	}
	return finish(dst, start)
}

// AppendQuery appends an OP_QUERY (used by tests and by the legacy handshake).
func AppendQuery(dst []byte, requestID int32, fullCollection string, query bson.Raw) []byte {
	start := len(dst)
	dst = appendHeader(dst, requestID, 0, OpQuery)
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	dst = append(dst, fullCollection...)
	dst = append(dst, 0)
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(0xffffffff)) // -1: one document
	dst = append(dst, query...)
	return finish(dst, start)
}
