package engine

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iii-go/iii/engine/config"
	"github.com/iii-go/iii/log"
	"github.com/iii-go/iii/wire"
)

// session is one worker connection: its identity, its RBAC grants and the
// invocations it is executing for others.
type session struct {
	e      *Engine
	conn   *wire.Conn
	lis    *listener
	id     string // worker id, also its id in the registry
	token  string // reattach token
	ip     string
	grants *grants  // nil on trusted listeners: everything is allowed
	held   holdings // what an untrusted session registered (limits.go)

	openChannels atomic.Int32 // data channels an untrusted session created that have not ended

	pending atomic.Int32 // calls this connection made that wait for a result
	named   atomic.Bool  // it reported worker metadata (engine::workers::register)

	msg wire.Message // decode buffer, reused: frames are read one at a time

	// Records of the burst being read, not yet handed to the log
	// (appendAsync); read goroutine only.
	heldRecs  []*log.Record
	heldThens []func(result any, err error)

	mu        sync.Mutex
	executing map[string]*call // calls sent to this connection, by the invocation id it was given
	closed    bool
	done      chan struct{} // closed once cleanup has finished
}

// listener adapts one worker listener's connections to the engine.
type listener struct {
	e   *Engine
	cfg *config.Listener
}

// Open runs on the connection's read goroutine before any frame is read, so
// frames a client sends while auth runs simply wait in the socket and are
// applied afterwards, in order.
func (l *listener) Open(c *wire.Conn) {
	e := l.e
	s := &session{
		e: e, conn: c, lis: l, id: newUUID(), token: newUUID(), ip: c.RemoteIP(),
		executing: map[string]*call{}, done: make(chan struct{}),
	}
	if l.cfg.RBAC != nil {
		g, err := e.authenticate(l.cfg, c)
		if err != nil {
			e.logger.Info("auth failed", "remote", s.ip, "err", err.Message)
			c.Send(wire.AppendErrorFrame(nil, codeAuthError, err.Message))
			c.Close(0, "")
			return
		}
		s.grants = g
	}
	info, _ := json.Marshal(map[string]any{"listener": strconv.Itoa(l.cfg.Port), "ip_address": s.ip, "rbac": l.cfg.RBAC != nil})
	if _, err := e.log.Append(&log.Record{Kind: log.KindWorkerConnected, Worker: s.id, Value: info}); err != nil {
		e.logger.Error("cannot record connection", "err", err)
		c.Send(wire.AppendErrorFrame(nil, "internal_error", "engine cannot record the connection: "+err.Error()))
		c.Close(1011, "log unavailable")
		return
	}
	e.mu.Lock()
	e.sessions[s.id] = s
	e.mu.Unlock()
	c.SetSession(s)
	c.Send(wire.AppendWorkerRegistered(nil, s.id, s.token))
	// Connections are churn (every `iii trigger` is one); a worker that
	// reports its name is logged at info when it does (builtins.go).
	e.logger.Debug("worker connected", "worker_id", s.id, "remote", s.ip, "listener", l.cfg.Port)
}

// Message decodes and applies one frame.
func (l *listener) Message(c *wire.Conn, frame []byte) {
	s, _ := c.Session().(*session)
	if s == nil {
		return // auth failed; the connection is closing
	}
	m := &s.msg
	if err := wire.DecodeDepth(frame, m, l.e.cfg.Engine.MaxJSONDepth); err != nil {
		s.badFrame(err)
		return
	}
	if m.Type != wire.TypeInvokeFunction {
		s.flushHeld() // a registration's record comes after the writes sent before it
	}
	s.handle(m)
}

// BurstEnd hands the log what the burst's frames held back (appendAsync).
// wire calls it after the burst's last frame, also when that frame was
// dropped unread.
func (l *listener) BurstEnd(c *wire.Conn) {
	if s, _ := c.Session().(*session); s != nil {
		s.flushHeld()
	}
}

var _ wire.BurstEnder = (*listener)(nil)

// maxHeld bounds the records one burst holds back.
const maxHeld = 64

// appendAsync appends the record of a write this connection sent and calls
// then with the log's answer. A client that pipelines sends its writes in
// bursts, the frames one read brings; their records go to the log as one
// request once the last frame already read is handled (BurstEnd), so their
// answers come back together and leave in one write, and the client's next
// burst comes whole too. Handed over one by one, a burst's answers often
// left in pieces, and each piece cost system calls and wake-ups on both
// sides. Nothing waits for frames not yet read. Whatever else this
// connection sends that may lead to a write (another kind of frame, a call
// to a worker, another node, an HTTP function or the middleware, a built-in
// on its own goroutine) calls flushHeld first, so the log keeps the
// connection's order.
func (s *session) appendAsync(rec *log.Record, then func(result any, err error)) {
	s.heldRecs = append(s.heldRecs, rec)
	s.heldThens = append(s.heldThens, then)
	if len(s.heldRecs) >= maxHeld {
		s.flushHeld()
	}
}

// flushHeld hands the held records to the log.
func (s *session) flushHeld() {
	if len(s.heldRecs) == 0 {
		return
	}
	if err := s.e.log.AppendAsyncBatch(s.heldRecs, s.heldThens); err != nil {
		for _, then := range s.heldThens {
			then(nil, err)
		}
	}
	clear(s.heldRecs)
	clear(s.heldThens)
	s.heldRecs, s.heldThens = s.heldRecs[:0], s.heldThens[:0]
}

// Close retires the connection: everything it owned goes away and every call
// it was executing fails at once.
func (l *listener) Close(c *wire.Conn, err error) {
	s, _ := c.Session().(*session)
	if s == nil {
		return
	}
	s.flushHeld() // frames read before the connection failed
	s.retire("disconnected")
}

// retire performs disconnect cleanup exactly once
// (docs/wire-protocol.md#disconnect-cleanup).
func (s *session) retire(why string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return
	}
	s.closed = true
	pending := s.executing
	s.executing = nil
	s.mu.Unlock()
	defer close(s.done)

	e := s.e
	for _, c := range pending {
		c.finish(callOutcome{err: &callError{Code: codeInvocationStopped, Message: "Invocation stopped"}})
	}
	e.mu.Lock()
	delete(e.sessions, s.id)
	e.mu.Unlock()
	e.unregisterProvided(s)
	if s.grants != nil {
		e.channels.endOwnedBy(s)
	}
	if _, err := e.log.Append(&log.Record{Kind: log.KindWorkerDisconnected, Worker: s.id}); err != nil {
		e.logger.Error("cannot record disconnection", "worker_id", s.id, "err", err)
	}
	level := slog.LevelDebug
	if s.named.Load() {
		level = slog.LevelInfo
	}
	e.logger.Log(context.Background(), level, "worker "+why, "worker_id", s.id, "remote", s.ip)
}

// send queues one frame; a connection that cannot take it is already being
// closed by wire (slow consumer), so the error is only logged.
func (s *session) send(frame []byte) { s.sent(s.conn.Send(frame)) }

// sent logs a send that failed for another reason than a closed
// connection (whose end is handled where it is noticed).
func (s *session) sent(err error) {
	if err != nil && err != wire.ErrClosed {
		s.e.logger.Warn("send failed", "worker_id", s.id, "err", err)
	}
}

// prefix returns the session's function registration prefix ("" if none).
func (s *session) prefix() (string, bool) {
	if s.grants == nil || !s.grants.hasPrefix {
		return "", false
	}
	return s.grants.prefix, true
}

// qualify applies the session's registration prefix to a function id.
func (s *session) qualify(id string) string {
	if p, ok := s.prefix(); ok {
		return p + "::" + id
	}
	return id
}

// localID strips the session's prefix from a function id before the id is
// sent to it, because the client only knows its local name.
func (s *session) localID(id string) string {
	if p, ok := s.prefix(); ok {
		if rest, found := strings.CutPrefix(id, p+"::"); found {
			return rest
		}
	}
	return id
}

// track records a call this connection is about to execute and returns the
// invocation id to put on the frame: the caller's own id when it is free on
// this connection, a fresh one otherwise (so two callers can never cross).
func (s *session) track(want string, c *call) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", false
	}
	id := want
	if id == "" {
		id = newInvocationID()
	}
	if _, taken := s.executing[id]; taken {
		id = newInvocationID()
	}
	s.executing[id] = c
	return id, true
}

// untrack removes and returns the call a result answers.
func (s *session) untrack(id string) *call {
	s.mu.Lock()
	c := s.executing[id]
	if c != nil {
		delete(s.executing, id)
	}
	s.mu.Unlock()
	return c
}

// activeInvocations counts calls this connection is executing.
func (s *session) activeInvocations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.executing)
}

// newUUID returns a random (version 4) UUID string.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// invocationIDs makes the ids of engine-originated calls: a random
// per-process prefix and a counter, shaped like a UUID. They only need to be
// unique (the SDKs key pending calls by them), not secret, and a firing to
// a thousand subscribers should not cost a thousand getrandom calls.
var invocationIDs struct {
	prefix [23]byte // "xxxxxxxx-xxxx-4xxx-8xxx"
	n      atomic.Uint64
}

func init() {
	copy(invocationIDs.prefix[:], newUUID()[:23])
}

// newInvocationID returns a fresh, process-unique invocation id.
func newInvocationID() string {
	var out [36]byte
	copy(out[:23], invocationIDs.prefix[:])
	out[23] = '-'
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], invocationIDs.n.Add(1))
	hex.Encode(out[24:], n[2:]) // 48 bits of counter: 12 hex digits
	return string(out[:])
}

// nowMillis is the engine clock in Unix milliseconds.
func nowMillis() int64 { return time.Now().UnixMilli() }
