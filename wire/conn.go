package wire

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/lxzan/gws"
)

// Errors returned by Conn.Send, Conn.SendBinary and Conn.WaitSendQueue.
var (
	// ErrClosed: the connection is closed or closing; the frame was not queued.
	ErrClosed = errors.New("wire: connection closed")
	// ErrSlowConsumer: the send queue overflowed; the connection is being closed
	// with 1008.
	ErrSlowConsumer = errors.New("wire: slow consumer")
)

// WebSocket close codes the package uses.
const (
	CloseNormal        uint16 = 1000
	CloseGoingAway     uint16 = 1001
	ClosePolicy        uint16 = 1008
	CloseMessageTooBig uint16 = 1009
)

// CloseError is the error Handler.Close receives when the connection ended with
// a close frame (sent by us or by the peer). Other endings (the peer vanished,
// a network error) pass the underlying error instead.
type CloseError struct {
	Code   uint16 // 0: a close frame without a status code (the peer sees 1005)
	Reason string
	Remote bool // the peer sent it; otherwise we did
}

// Error describes the close, e.g. `wire: local close 1008 "slow consumer: …"`.
func (e *CloseError) Error() string {
	who := "local"
	if e.Remote {
		who = "remote"
	}
	return "wire: " + who + " close " + strconv.Itoa(int(e.Code)) + " " + strconv.Quote(e.Reason)
}

// Conn is one WebSocket connection, server or client side.
//
// Writes: Send appends to a bounded queue and never blocks; one writer
// goroutine per connection drains the queue, encoding every queued frame into
// one buffer so that a burst goes out in one write syscall. The writer runs
// only while there is something to write: it is started by the frame that
// finds none running and ends when the queue is empty, so an idle
// connection holds no writer goroutine (and no stack for it). It writes to the
// socket directly instead of through gws: gws writes each of its own frames (the
// echo of a peer's close, a close on a read error) with a single Write call, and
// the kernel socket's write lock keeps whole Write calls from interleaving, so
// frames never mix. Pongs and our pings travel through the same writer, ahead of
// queued data.
//
// What coalescing buys, measured on loopback with 240-byte frames against plain
// gws (one WriteMessage, one syscall, per frame) in the same run
// (transport_bench_test.go, 2 shared cores, several runs): BenchmarkRelay
// (client → server echo, 256 in flight) 0.36-0.69 M msgs/s vs 0.04-0.07 M;
// BenchmarkFanOut (a burst of server → client frames) 0.6-1.6 M msgs/s vs
// 0.11-0.16 M.
type Conn struct {
	ws     *gws.Conn
	nc     net.Conn // the raw socket the writer writes to
	guard  *frameGuard
	o      *Options
	h      Handler      // nil for /otel sockets
	fh     FrameHandler // h, when it implements FrameHandler
	be     BurstEnder   // h, when it implements BurstEnder
	srv    *Server
	client bool

	header   http.Header
	path     string
	rawQuery string
	remoteIP string
	session  atomic.Pointer[any]

	// lastRead is the monotonic time (ns since epoch) of the last inbound bytes.
	lastRead atomic.Int64
	// busy is set while a Handler method runs: the socket is not read then, so
	// silence is not the peer's fault and must not count as idleness.
	busy  atomic.Bool
	timer *time.Timer

	mu        sync.Mutex
	state     uint8 // stateOpen → stateClosing (close frame pending) → stateClosed; see setStateLocked
	queue     []outFrame
	spare     []outFrame
	nFrames   int // queued + being written
	nBytes    int
	pingDue   bool
	pongDue   bool
	pong      [125]byte
	pongLen   int
	closeCode uint16
	closeMsg  string
	closeErr  error     // our own close, reported to Handler.Close
	writeErr  error     // the write that failed, if the writer gave up first
	deadline  time.Time // current write deadline (writer goroutine only)

	drained chan struct{} // made by a WaitSendQueue caller, closed by the writer after a batch

	writing    bool          // a writer goroutine runs (or is starting); under mu
	ended      bool          // the last writer has ended (writerDone is closed); under mu
	writerDone chan struct{} // closed when the connection's last writer ends
	opened     chan struct{} // closed after Handler.Open returned
	done       chan struct{} // closed when state leaves stateOpen

	delivered int64 // data messages handed to the handler (read goroutine only)

	// writer-owned scratch
	wbuf    []byte      // encoded frames of the pending write
	seg     int         // start of the part of wbuf not yet referenced by iov
	iov     [][]byte    // pending write as buffers, when a large frame is passed by reference
	iovTodo net.Buffers // what writev consumes (a field, so WriteTo does not allocate)
}

const (
	stateOpen uint8 = iota
	stateClosing
	stateClosed
)

// outFrame is one queued data frame and its opcode (opText or opBinary).
type outFrame struct {
	p    []byte
	op   byte
	pool *[]byte // set for a SendFrame buffer, recycled once p is written
}

// bigFrame is the payload size from which the server writer hands a frame to
// writev as its own buffer instead of copying it into the batch buffer.
const bigFrame = 16 << 10

// batchBytes caps how much one write call carries, so a huge backlog does not
// need an equally huge batch buffer.
const batchBytes = 256 << 10

var epoch = time.Now()

func monoNow() int64 { return int64(time.Since(epoch)) }

func newConn(nc net.Conn, g *frameGuard, o *Options, h Handler, client bool) *Conn {
	c := &Conn{
		nc:         nc,
		guard:      g,
		o:          o,
		h:          h,
		client:     client,
		writerDone: make(chan struct{}),
		opened:     make(chan struct{}),
		done:       make(chan struct{}),
	}
	c.fh, _ = h.(FrameHandler)
	c.be, _ = h.(BurstEnder)
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.remoteIP = a.IP.String()
	}
	c.touch()
	return c
}

// start runs the keepalive timer; gws may read frames after it. The writer
// starts with the first frame to write.
func (c *Conn) start() {
	c.guard.c = c
	if c.o.PingAfter > 0 || c.o.IdleTimeout > 0 {
		c.mu.Lock() // the callback reads c.timer under mu and may fire at once
		c.timer = time.AfterFunc(c.nextCheck(monoNow()), c.keepalive)
		c.mu.Unlock()
	}
}

func (c *Conn) touch() { c.lastRead.Store(monoNow()) }

// Header returns the headers of the upgrade request (server side) or of the
// upgrade response (client side).
func (c *Conn) Header() http.Header { return c.header }

// RawQuery returns the query string of the upgrade request, without '?'.
func (c *Conn) RawQuery() string { return c.rawQuery }

// Path returns the path of the upgrade request.
func (c *Conn) Path() string { return c.path }

// RemoteIP returns the TCP peer's IP ("127.0.0.1", "::1"), no port, no brackets.
func (c *Conn) RemoteIP() string { return c.remoteIP }

// SetSession stores the engine's per-connection state. Safe from any goroutine.
func (c *Conn) SetSession(v any) { c.session.Store(&v) }

// Session returns what SetSession stored, or nil.
func (c *Conn) Session() any {
	if p := c.session.Load(); p != nil {
		return *p
	}
	return nil
}

// Send queues one text frame. It never blocks. The connection keeps frame until
// it is written, so the caller must not modify it afterwards (sharing one frame
// between connections is fine: the writer never modifies it). If the queue is
// over Options.SendQueueFrames or SendQueueBytes (counting the batch being
// written), the connection is closed with 1008 and Send returns
// ErrSlowConsumer; on a closing or closed connection it returns ErrClosed.
func (c *Conn) Send(frame []byte) error { return c.send(frame, opText) }

// SendBinary queues one binary frame, in the same queue and under the same
// rules as Send.
func (c *Conn) SendBinary(frame []byte) error { return c.send(frame, opBinary) }

// framePool holds the buffers of frames sent with SendFrame once written:
// a reply built per call would otherwise be a fresh allocation each time.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooledFrame is the largest buffer framePool keeps, so that one huge
// frame does not stay pinned for small ones.
const maxPooledFrame = 4 << 10

// GetFrame returns an empty buffer to build a text frame in for SendFrame,
// or any bytes that are copied into one (see PutFrame).
func GetFrame() *[]byte {
	p := framePool.Get().(*[]byte)
	*p = (*p)[:0]
	return p
}

// SendFrame is Send for a frame built in *p, a buffer from GetFrame: the
// connection owns the buffer from the call on, and returns it with PutFrame
// once the frame is written or refused (a frame dropped from the queue of a
// closed connection is left to the collector).
func (c *Conn) SendFrame(p *[]byte) error {
	err := c.sendPooled(*p, opText, p)
	if err != nil {
		PutFrame(p)
	}
	return err
}

// PutFrame returns a GetFrame buffer that is no longer used (a scratch
// buffer copied into a frame, or a frame SendFrame no longer needs).
func PutFrame(p *[]byte) {
	if cap(*p) <= maxPooledFrame {
		framePool.Put(p)
	}
}

func (c *Conn) send(frame []byte, op byte) error { return c.sendPooled(frame, op, nil) }

func (c *Conn) sendPooled(frame []byte, op byte, pool *[]byte) error {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.nFrames+1 > c.o.SendQueueFrames || c.nBytes+len(frame) > c.o.SendQueueBytes {
		reason := "slow consumer: send queue over " + strconv.Itoa(c.o.SendQueueFrames) + " frames"
		if c.nFrames+1 <= c.o.SendQueueFrames {
			reason = "slow consumer: send queue over " + strconv.Itoa(c.o.SendQueueBytes) + " bytes"
		}
		c.beginCloseLocked(ClosePolicy, reason, false)
		c.mu.Unlock()
		c.afterClose()
		c.o.Logger.Warn("wire: closing slow consumer", "remote", c.remoteIP, "path", c.path, "reason", reason)
		return ErrSlowConsumer
	}
	c.queue = append(c.queue, outFrame{frame, op, pool})
	c.nFrames++
	c.nBytes += len(frame)
	start := c.startWriterLocked()
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
	return nil
}

// WaitSendQueue blocks until at most frames frames are queued or being written
// on c, so that a producer can follow the pace of a slow peer instead of
// overflowing the queue. It returns ErrClosed as soon as the connection is no
// longer open.
func (c *Conn) WaitSendQueue(frames int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.state == stateOpen && c.nFrames > frames {
		if c.drained == nil {
			c.drained = make(chan struct{})
		}
		drained := c.drained
		c.mu.Unlock()
		select {
		case <-drained:
		case <-c.done:
		}
		c.mu.Lock()
	}
	if c.state != stateOpen {
		return ErrClosed
	}
	return nil
}

// Done returns a channel that is closed once the connection is no longer
// open: Close was called, the queue overflowed, a write failed, or the socket
// ended. A Handler method that waits for something else should also wait on
// it, since Server.Close cannot finish while a Handler method blocks.
func (c *Conn) Done() <-chan struct{} { return c.done }

// setStateLocked moves the connection to s; leaving stateOpen closes done.
func (c *Conn) setStateLocked(s uint8) {
	if c.state == stateOpen && s != stateOpen {
		close(c.done)
	}
	c.state = s
}

// Close sends the frames already queued, then a close frame with code and
// reason, then closes the socket once the peer has answered (or after
// Options.CloseTimeout). Code 0 sends a close frame without a status code (the
// peer sees 1005), as after AUTH_ERROR. It does not block. No Handler.Message
// is delivered after Close is called; Handler.Close follows once the socket is
// closed. Closing a closed connection does nothing.
func (c *Conn) Close(code uint16, reason string) {
	c.closeWith(code, reason, true)
}

func (c *Conn) closeWith(code uint16, reason string, flush bool) {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return
	}
	c.beginCloseLocked(code, reason, flush)
	c.mu.Unlock()
	c.afterClose()
}

func (c *Conn) beginCloseLocked(code uint16, reason string, flush bool) {
	c.setStateLocked(stateClosing)
	c.closeCode, c.closeMsg = code, reason
	if c.closeErr == nil {
		c.closeErr = &CloseError{Code: code, Reason: reason}
	}
	if !flush {
		c.dropQueueLocked()
	}
}

// afterClose bounds the time the writer may still block on a peer that does
// not read, then wakes it to write the close frame.
func (c *Conn) afterClose() {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.o.CloseTimeout))
	c.signal()
}

func (c *Conn) dropQueueLocked() {
	for _, f := range c.queue {
		c.nBytes -= len(f.p)
	}
	c.nFrames -= len(c.queue)
	clear(c.queue)
	c.queue = c.queue[:0]
}

// signal makes sure a writer runs to pick up what was just made due (a
// ping, a pong, a close).
func (c *Conn) signal() {
	c.mu.Lock()
	start := c.startWriterLocked()
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// startWriterLocked reports whether the caller must start a writer (none
// runs, and the connection's writing has not ended), and marks it running.
func (c *Conn) startWriterLocked() bool {
	if c.writing || c.ended {
		return false
	}
	c.writing = true
	return true
}

// endWriter marks the connection's writing as over for good.
func (c *Conn) endWriter() {
	c.mu.Lock()
	c.ended = true
	c.mu.Unlock()
	close(c.writerDone)
}

// writeLoop is the connection's only writer of data, ping, pong and close
// frames (see Conn).
func (c *Conn) writeLoop() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 && !c.pingDue && !c.pongDue && c.state == stateOpen {
			c.writing = false // nothing to write: the next frame starts a writer
			c.mu.Unlock()
			return
		}
		if c.state == stateClosed {
			c.mu.Unlock()
			c.endWriter()
			return
		}
		batch := c.queue
		c.queue = c.spare[:0]
		c.spare = nil
		ping, pong := c.pingDue, c.pongDue
		c.pingDue, c.pongDue = false, false
		var pongPayload [125]byte
		pongLen := copy(pongPayload[:], c.pong[:c.pongLen])
		closing := c.state == stateClosing
		code, reason := c.closeCode, c.closeMsg
		c.mu.Unlock()

		if !closing { // a closing connection runs on afterClose's deadline
			c.renewDeadline()
		}
		if pong {
			c.wbuf = c.appendFrame(c.wbuf, opPong, pongPayload[:pongLen])
		}
		if ping {
			c.wbuf = c.appendFrame(c.wbuf, opPing, nil)
		}
		var err error
		for _, f := range batch {
			if len(c.wbuf) >= batchBytes {
				if err = c.flush(); err != nil {
					break
				}
			}
			c.addData(f.p, f.op)
		}
		if err == nil && closing {
			c.wbuf = c.appendFrame(c.wbuf, opClose, closePayload(code, reason))
		}
		if err == nil {
			err = c.flush()
		}
		if cap(c.wbuf) > 4*batchBytes {
			c.wbuf = nil
		}

		c.mu.Lock()
		c.nFrames -= len(batch)
		for _, f := range batch {
			c.nBytes -= len(f.p)
			if f.pool != nil {
				PutFrame(f.pool)
			}
		}
		if c.drained != nil {
			close(c.drained)
			c.drained = nil
		}
		clear(batch)
		if cap(batch) <= 4096 { // keep the slice for the next batch, unless a burst made it huge
			c.spare = batch[:0]
		}
		if err != nil && c.state == stateOpen {
			c.setStateLocked(stateClosing) // Sends fail from now on; the reader reports the end
			c.writeErr = err
		}
		c.mu.Unlock()
		switch {
		case err != nil:
			_ = c.nc.Close() // the read loop ends, and with it the connection
			c.endWriter()
			return
		case closing:
			c.lingerClose()
			c.endWriter()
			return
		}
	}
}

// lingerClose ends our side after the close frame: it half-closes the socket
// (FIN) and lets the read loop run on, dropping frames, until the peer answers
// with its own close and hangs up, or CloseTimeout passes. Closing the socket
// at once while the peer's frames sit unread would send a TCP reset, which can
// destroy our last frames (an AUTH_ERROR, the close frame) before the peer
// reads them.
func (c *Conn) lingerClose() {
	_ = c.nc.SetReadDeadline(time.Now().Add(c.o.CloseTimeout))
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		return
	}
	_ = c.nc.Close()
}

// addData adds one data frame (opText or opBinary) to the pending write.
func (c *Conn) addData(p []byte, op byte) {
	if c.client || len(p) < bigFrame {
		c.wbuf = c.appendFrame(c.wbuf, op, p)
		return
	}
	// Large server frame: header in wbuf, payload as its own writev buffer.
	c.wbuf = appendHeader(c.wbuf, op, len(p), false, [4]byte{})
	c.iov = append(c.iov, c.wbuf[c.seg:], p)
	c.seg = len(c.wbuf)
}

// renewDeadline moves the write deadline WriteDeadline ahead. A socket
// deadline costs a timer update, so it is renewed only once less than half
// of the period is left.
func (c *Conn) renewDeadline() {
	if d := c.o.WriteDeadline; d > 0 {
		if now := time.Now(); c.deadline.Sub(now) < d/2 {
			c.deadline = now.Add(d)
			_ = c.nc.SetWriteDeadline(c.deadline)
		}
	}
}

// flush writes everything pending under the write deadline.
func (c *Conn) flush() error {
	err := c.write()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("slow consumer: the peer accepted no bytes within the %s write deadline: %w", c.o.WriteDeadline, err)
		c.o.Logger.Warn("wire: slow consumer disconnected", "remote", c.RemoteIP(), "write_deadline", c.o.WriteDeadline)
	}
	return err
}

// write sends everything pending in one write (writev when a large frame is
// passed by reference) and resets the buffers.
func (c *Conn) write() error {
	var err error
	switch {
	case len(c.iov) == 0:
		if len(c.wbuf) > 0 {
			_, err = c.nc.Write(c.wbuf)
		}
	default:
		if c.seg < len(c.wbuf) {
			c.iov = append(c.iov, c.wbuf[c.seg:])
		}
		c.iovTodo = c.iov
		_, err = c.iovTodo.WriteTo(c.nc)
		clear(c.iov)
		c.iovTodo = nil
	}
	c.wbuf, c.seg, c.iov = c.wbuf[:0], 0, c.iov[:0]
	return err
}

func closePayload(code uint16, reason string) []byte {
	if code == 0 {
		return nil
	}
	p := []byte{byte(code >> 8), byte(code)}
	// Control frames carry at most 125 bytes; cut the reason on a rune boundary.
	for len(reason) > 123 {
		_, size := utf8.DecodeLastRuneInString(reason)
		reason = reason[:len(reason)-size]
	}
	return append(p, reason...)
}

// keepalive runs on a timer: ping after PingAfter of inbound silence, close
// with 1001 after IdleTimeout.
func (c *Conn) keepalive() {
	if c.busy.Load() {
		c.touch() // a Handler method runs: the silence is ours, not the peer's
	}
	now := monoNow()
	idle := time.Duration(now - c.lastRead.Load())
	if c.o.IdleTimeout > 0 && idle >= c.o.IdleTimeout {
		c.o.Logger.Info("wire: closing idle connection", "remote", c.remoteIP, "path", c.path, "idle", idle)
		c.closeWith(CloseGoingAway, "idle timeout", false)
		return
	}
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return
	}
	ping := c.o.PingAfter > 0 && idle >= c.o.PingAfter
	if ping {
		c.pingDue = true
	}
	t := c.timer
	c.mu.Unlock()
	if ping {
		c.signal()
	}
	next := c.nextCheck(now)
	if ping && c.o.PingAfter < next {
		next = c.o.PingAfter // keep pinging every PingAfter while silent
	}
	t.Reset(next)
}

// nextCheck is the delay until the silence that began at the last read reaches
// the next threshold.
func (c *Conn) nextCheck(now int64) time.Duration {
	last := c.lastRead.Load()
	next := time.Duration(-1)
	for _, d := range []time.Duration{c.o.PingAfter, c.o.IdleTimeout} {
		if d <= 0 {
			continue
		}
		wait := time.Duration(last + int64(d) - now)
		if wait <= 0 {
			continue
		}
		if next < 0 || wait < next {
			next = wait
		}
	}
	if next < 0 {
		// Past the ping threshold already: next stop is the idle timeout, or
		// another ping interval.
		next = c.o.PingAfter
		if next <= 0 {
			next = c.o.IdleTimeout
		}
	}
	return next
}

// connEvents adapts gws callbacks to Handler; one value serves all connections.
type connEvents struct{}

func connOf(s *gws.Conn) *Conn { return s.Session().(*connSession).c }

func (connEvents) OnOpen(s *gws.Conn) {
	c := connOf(s)
	if c.h != nil {
		c.busy.Store(true)
		c.h.Open(c)
		c.busy.Store(false)
	}
	close(c.opened)
}

func (connEvents) OnPing(s *gws.Conn, payload []byte) {
	c := connOf(s)
	c.mu.Lock()
	if c.state == stateOpen {
		c.pongLen = copy(c.pong[:], payload)
		c.pongDue = true
	}
	c.mu.Unlock()
	c.signal()
}

func (connEvents) OnPong(*gws.Conn, []byte) {} // frameGuard already counted the bytes

func (connEvents) OnMessage(s *gws.Conn, m *gws.Message) {
	defer m.Close()
	c := connOf(s)
	c.delivered++
	if c.h == nil {
		return // /otel: drained
	}
	if c.be != nil {
		defer c.endBurst()
	}
	b := m.Bytes()
	if c.fh != nil {
		if c.isOpen() {
			c.busy.Store(true)
			c.fh.Frame(c, m.Opcode == gws.OpcodeBinary, b)
			c.busy.Store(false)
		}
		return
	}
	if m.Opcode == gws.OpcodeBinary {
		if isTelemetry(b) {
			return
		}
		if !utf8.Valid(b) { // text frames are checked by gws (1007, as RFC 6455 requires)
			// Binary frames carry no UTF-8 promise: like any frame that does
			// not decode, this one is answered and the connection stays.
			c.o.Logger.Debug("wire: binary frame is neither telemetry nor UTF-8 JSON", "remote", c.RemoteIP(), "bytes", len(b))
			_ = c.Send(AppendErrorFrame(nil, CodeInvalidMessage, "binary frame is neither telemetry (OTLP, MTRC, LOGS) nor UTF-8 JSON"))
			return
		}
	}
	if blank(b) {
		return
	}
	if c.isOpen() {
		c.busy.Store(true)
		c.h.Message(c, b)
		c.busy.Store(false)
	}
}

// endBurst calls BurstEnd when the message just handled or dropped was the
// last one read.
func (c *Conn) endBurst() {
	if !c.More() {
		c.be.BurstEnd(c)
	}
}

// More reports, during Handler.Message (or FrameHandler.Frame), whether the
// next message has already been read from the socket: the one being handled
// is not the last of the burst that arrived with it. A handler can then hold
// work back and do it once for the whole burst (see BurstEnder), without
// waiting for bytes that have not come. Read goroutine only.
func (c *Conn) More() bool { return c.guard.msgs > c.delivered }

func (c *Conn) isOpen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == stateOpen
}

func (connEvents) OnClose(s *gws.Conn, err error) {
	c := connOf(s)
	c.mu.Lock()
	if c.closeErr == nil {
		var ce *gws.CloseError
		switch {
		case errors.As(err, &ce):
			err = &CloseError{Code: ce.Code, Reason: string(ce.Reason), Remote: true}
		case c.writeErr != nil:
			err = c.writeErr // more telling than the read side's "use of closed connection"
		}
		c.closeErr = err
	}
	c.setStateLocked(stateClosed)
	c.dropQueueLocked()
	cause, t := c.closeErr, c.timer
	c.mu.Unlock()
	c.signal()
	_ = c.nc.Close()
	<-c.writerDone
	if t != nil {
		t.Stop()
	}
	if c.h != nil {
		c.h.Close(c, cause)
	}
	if c.srv != nil {
		c.srv.forget(c)
	}
}

// isTelemetry reports an OTLP/MTRC/LOGS binary frame
// (docs/wire-protocol.md#telemetry).
func isTelemetry(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	switch string(b[:4]) {
	case "OTLP", "MTRC", "LOGS":
		return true
	}
	return false
}

func blank(b []byte) bool {
	for _, ch := range b {
		if !isWS(ch) {
			return false
		}
	}
	return true
}

// connSession is the gws SessionStorage of every connection: it only links the
// gws.Conn back to our Conn without a map lookup per frame.
type connSession struct{ c *Conn }

func newConnSession() gws.SessionStorage { return &connSession{} }

func (*connSession) Len() int                     { return 0 }
func (*connSession) Load(string) (any, bool)      { return nil, false }
func (*connSession) Delete(string)                {}
func (*connSession) Store(string, any)            {}
func (*connSession) Range(func(string, any) bool) {}
