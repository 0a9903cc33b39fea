// Package mongosim is a MongoDB replica-set SIMULATOR: a test double for
// sitectl's MongoDB adapter and checks. It is not MongoDB and must never be
// pointed at by production configuration.
//
// Each member listens on its own TCP address and speaks enough of the real
// MongoDB wire protocol that the unmodified Go driver
// (go.mongodb.org/mongo-driver/v2) connects to it, monitors it (including
// the awaitable/streaming hello protocol) and runs commands against it:
//
//   - OP_MSG with kind-0 and kind-1 sections, the checksum flag (CRC-32C is
//     verified when present), moreToCome on replies for exhaust hello;
//   - legacy OP_QUERY on <db>.$cmd for the isMaster/hello handshake, answered
//     with OP_REPLY; any other OP_QUERY gets error 352;
//   - no compression (none is advertised), no TLS.
//
// Commands: hello/isMaster, ping, buildInfo, getParameter, serverStatus
// (minimal), endSessions, replSetGetStatus, replSetGetConfig,
// replSetReconfig (normal and force), replSetStepDown, replSetStepUp,
// replSetFreeze, insert and find (equality filters only), saslStart and
// saslContinue (SCRAM-SHA-256 only) when Auth is configured. Anything else
// answers CommandNotFound (59).
//
// Replication model, following MongoDB's documented rules in simplified form:
// members exchange replSetHeartbeat messages over TCP every Heartbeat
// (default 500ms); a secondary pulls oplog entries from its sync source
// inside those heartbeats, so lag is at most about one heartbeat interval.
// Elections follow protocol version 1 in outline: terms, a dry run, one vote
// per term, majority of voting members (arbiters vote), priority-0 members
// and arbiters are never elected, a voter refuses a candidate whose oplog is
// behind its own or while it sees a healthy primary of equal or higher
// priority, a secondary runs for election after ElectionTimeout (plus up to
// 15% random offset) without a primary, priority takeover, step-down with
// election hand-off (stepUpRequestSkipDryRun), replSetFreeze, forced
// reconfig (version jump, term removed), and a primary that cannot see a
// majority for ElectionTimeout steps down. A member that comes back with
// oplog entries the new primary never had rolls them back.
//
// Not implemented (so results must not be read as MongoDB's): storage,
// durability and journaling (all state is in memory; Stop/Start keeps it
// only within the process), indexes, queries beyond top-level equality,
// updates/deletes, cursors beyond the first batch, transactions, read
// concern, catch-up and catch-up takeover, chaining through secondaries,
// hidden/delayed members' special behaviour, tags, keyFile/x509 internal
// authentication (replSetHeartbeat, replSetRequestVotes and the internal
// hand-off need no authentication), SCRAM-SHA-1, TLS, compression, and the
// exact timing of real elections (the election timer, the priority takeover
// delay and failure detection are simplified).
package mongosim
