package bench

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
)

// The load-generating client. The same code drives the engine, the bare
// relay and the bare broadcast server, so the only difference in a pair of
// measurements is the server. It never decodes JSON: it finds the few
// fields it needs with byte searches, like the relay does.

var (
	tagInvoke     = []byte(`"invokefunction"`)
	tagResult     = []byte(`"invocationresult"`)
	tagRegisterFn = []byte(`"registerfunction"`)
	keyError      = []byte(`"error"`)
)

// field returns the string value of the first `"key": "value"` member in
// frame, or nil. Values the bench looks at (ids) hold no escapes, so the
// closing quote is the next '"'.
func field(frame []byte, key string) []byte {
	k := make([]byte, 0, len(key)+2)
	k = append(append(append(k, '"'), key...), '"')
	i := bytes.Index(frame, k)
	if i < 0 {
		return nil
	}
	i += len(k)
	for i < len(frame) && (frame[i] == ' ' || frame[i] == ':' || frame[i] == '\t' || frame[i] == '\n' || frame[i] == '\r') {
		i++
	}
	if i >= len(frame) || frame[i] != '"' {
		return nil
	}
	i++
	j := bytes.IndexByte(frame[i:], '"')
	if j < 0 {
		return nil
	}
	return frame[i : i+j]
}

// numberAfter returns the unsigned integer that follows tag in frame.
func numberAfter(frame, tag []byte) (uint64, bool) {
	i := bytes.Index(frame, tag)
	if i < 0 {
		return 0, false
	}
	i += len(tag)
	for i < len(frame) && frame[i] == ' ' {
		i++
	}
	var n uint64
	start := i
	for ; i < len(frame) && frame[i] >= '0' && frame[i] <= '9'; i++ {
		n = n*10 + uint64(frame[i]-'0')
	}
	return n, i > start
}

// isError says whether an invocationresult carries a non-null error.
func isError(frame []byte) bool {
	i := bytes.Index(frame, keyError)
	if i < 0 {
		return false
	}
	rest := bytes.TrimLeft(frame[i+len(keyError):], " :")
	return !bytes.HasPrefix(rest, []byte("null"))
}

// An invocation id is UUID-shaped hex carrying the call's sequence number
// (first 16 digits) and its send time in nanoseconds since the caller's
// base time (last 16), so a result alone says how long its round trip took
// and the caller keeps no per-call state.
const idLen = 36

func appendID(dst []byte, seq uint64, sent int64) []byte {
	var raw [16]byte
	for i := range 8 {
		raw[i] = byte(seq >> (56 - 8*i))
		raw[8+i] = byte(uint64(sent) >> (56 - 8*i))
	}
	var h [32]byte
	hex.Encode(h[:], raw[:])
	dst = append(dst, h[0:8]...)
	dst = append(append(dst, '-'), h[8:12]...)
	dst = append(append(dst, '-'), h[12:16]...)
	dst = append(append(dst, '-'), h[16:20]...)
	return append(append(dst, '-'), h[20:32]...)
}

func parseID(id []byte) (seq uint64, sent int64, ok bool) {
	if len(id) != idLen {
		return 0, 0, false
	}
	var h [32]byte
	n := copy(h[:], id[0:8])
	n += copy(h[n:], id[9:13])
	n += copy(h[n:], id[14:18])
	n += copy(h[n:], id[19:23])
	copy(h[n:], id[24:36])
	var raw [16]byte
	if _, err := hex.Decode(raw[:], h[:]); err != nil {
		return 0, 0, false
	}
	for i := range 8 {
		seq = seq<<8 | uint64(raw[i])
		sent = sent<<8 | int64(raw[8+i])
	}
	return seq, sent, true
}

// dial opens a WebSocket client connection whose socket is a pipeConn
// (pipelined handlers batch their writes with it), hands both to ready and
// only then starts the read loop: a frame the server sends at once must find
// the handler's fields set.
func dial(url string, h gws.Event, ready func(*gws.Conn, *pipeConn)) error {
	var pipe *pipeConn
	conn, _, err := gws.NewClient(h, &gws.ClientOption{
		Addr:             url,
		HandshakeTimeout: 10 * time.Second,
		NewDialer:        func() (gws.Dialer, error) { return pipeDialer{&pipe}, nil },
	})
	if err != nil {
		return fmt.Errorf("bench: dial %s: %w", url, err)
	}
	ready(conn, pipe)
	go conn.ReadLoop()
	return nil
}

// pipeDialer dials TCP and wraps the socket in a pipeConn.
type pipeDialer struct{ conn **pipeConn }

func (d pipeDialer) Dial(network, addr string) (net.Conn, error) {
	nc, err := (&net.Dialer{Timeout: 10 * time.Second}).Dial(network, addr)
	if err != nil {
		return nil, err
	}
	*d.conn = &pipeConn{Conn: nc}
	return *d.conn, nil
}

// worker answers every invokefunction with an invocationresult echoing the
// ids and "result":{}. onInvoke, if set, sees each invocation frame first
// (fan-out subscribers count deliveries with it).
type worker struct {
	pipelined
	conn     *gws.Conn
	onInvoke func(frame []byte)
	buf      []byte // used only on the read goroutine
}

// dialWorker connects a worker and sends its registration frames.
func dialWorker(url string, onInvoke func([]byte), register ...string) (*worker, error) {
	w := &worker{onInvoke: onInvoke}
	if err := dial(url, w, func(c *gws.Conn, p *pipeConn) { w.conn, w.pipe = c, p }); err != nil {
		return nil, err
	}
	for _, f := range register {
		if err := w.conn.WriteString(f); err != nil {
			w.conn.NetConn().Close()
			return nil, fmt.Errorf("bench: register worker: %w", err)
		}
	}
	return w, nil
}

// OnMessage implements gws.Event.
func (w *worker) OnMessage(s *gws.Conn, m *gws.Message) {
	defer m.Close()
	b := m.Bytes()
	defer w.pipe.end(w.pipe.begin(len(b)))
	if !bytes.Contains(b, tagInvoke) {
		return
	}
	if w.onInvoke != nil {
		w.onInvoke(b)
	}
	id := field(b, "invocation_id")
	if id == nil {
		return
	}
	w.buf = append(w.buf[:0], `{"type":"invocationresult","invocation_id":"`...)
	w.buf = append(w.buf, id...)
	w.buf = append(w.buf, `","function_id":"`...)
	w.buf = append(w.buf, field(b, "function_id")...)
	w.buf = append(w.buf, `","result":{}}`...)
	_ = s.WriteMessage(gws.OpcodeText, w.buf)
}

func (w *worker) close() { w.conn.NetConn().Close() }

// caller sends invokefunction frames in a closed loop: each result that
// arrives while the caller runs is answered with the next call, so the
// number of calls in flight stays what start put there.
type caller struct {
	pipelined
	conn *gws.Conn
	base time.Time
	// body appends what follows the invocation id in the frame (function
	// id and data) for call number seq.
	body func(dst []byte, seq uint64) []byte

	mu  sync.Mutex // serialises frame building and writing
	buf []byte

	seq      atomic.Uint64
	running  atomic.Bool
	record   atomic.Bool
	inflight atomic.Int64
	ok       atomic.Uint64
	failed   atomic.Uint64
	lastErr  atomic.Pointer[string]

	lat []time.Duration // appended on the read goroutine while record is set
}

func dialCaller(url string, body func([]byte, uint64) []byte) (*caller, error) {
	c := &caller{base: time.Now(), body: body}
	if err := dial(url, c, func(conn *gws.Conn, p *pipeConn) { c.conn, c.pipe = conn, p }); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *caller) send() error {
	seq := c.seq.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf[:0], `{"type":"invokefunction","invocation_id":"`...)
	c.buf = appendID(c.buf, seq, int64(time.Since(c.base)))
	c.buf = c.body(c.buf, seq)
	return c.conn.WriteMessage(gws.OpcodeText, c.buf)
}

// OnMessage implements gws.Event.
func (c *caller) OnMessage(s *gws.Conn, m *gws.Message) {
	defer m.Close()
	b := m.Bytes()
	defer c.flush(c.pipe.begin(len(b)))
	if !bytes.Contains(b, tagResult) {
		return
	}
	_, sent, okID := parseID(field(b, "invocation_id"))
	if isError(b) || !okID {
		msg := string(b)
		c.lastErr.Store(&msg)
		c.failed.Add(1)
	} else {
		c.ok.Add(1)
		if c.record.Load() {
			c.lat = append(c.lat, time.Since(c.base)-time.Duration(sent))
		}
	}
	if !c.running.Load() || c.send() != nil {
		c.inflight.Add(-1)
	}
}

// flush ends the handling of a frame: after the last one of a burst, the
// calls sent meanwhile go out together. A failed write leaves those calls
// unanswered; stop counts them as lost.
func (c *caller) flush(last bool) {
	if err := c.pipe.end(last); err != nil {
		msg := "write: " + err.Error()
		c.lastErr.Store(&msg)
	}
}

// start puts n calls in flight.
func (c *caller) start(n int) error {
	c.running.Store(true)
	for range n {
		c.inflight.Add(1)
		if err := c.send(); err != nil {
			c.inflight.Add(-1)
			return err
		}
	}
	return nil
}

// stop ends the loop and waits up to timeout for the calls in flight to
// come back. It returns how many never did; those are given up on.
func (c *caller) stop(timeout time.Duration) (lost int64) {
	c.running.Store(false)
	deadline := time.Now().Add(timeout)
	for c.inflight.Load() > 0 {
		if time.Now().After(deadline) {
			return c.inflight.Swap(0)
		}
		time.Sleep(time.Millisecond)
	}
	return 0
}

func (c *caller) close() { c.conn.NetConn().Close() }

// errNotReady is returned when a target never answers a call successfully.
var errNotReady = errors.New("bench: target never answered a call without an error")

// ready calls until one call succeeds: registrations are not acknowledged
// on the wire, so this is how a caller knows the worker is routable.
func (c *caller) ready(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ok := c.ok.Load()
		if err := c.start(1); err != nil {
			return err
		}
		c.stop(2 * time.Second)
		if c.ok.Load() > ok {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	if e := c.lastErr.Load(); e != nil {
		return fmt.Errorf("%w (last result: %s)", errNotReady, *e)
	}
	return errNotReady
}

// loadResult is what one measured run of a closed loop produced.
type loadResult struct {
	ops     uint64
	errs    uint64
	lost    int64 // calls never answered
	elapsed time.Duration
	lat     []time.Duration // sorted; only when latencies were recorded
}

func (r loadResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ops) / r.elapsed.Seconds()
}

func (r *loadResult) add(o loadResult) {
	r.ops += o.ops
	r.errs += o.errs
	r.lost += o.lost
	r.elapsed += o.elapsed
	r.lat = append(r.lat, o.lat...)
	sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] })
}

// stopTimeout bounds the wait for a run's last calls.
const stopTimeout = 5 * time.Second

// runLoad keeps perConn calls in flight on every caller for d and counts
// the results that arrived in that window. A call that is never answered
// is counted as lost, not waited for (the loop then runs one call short).
func runLoad(cs []*caller, perConn int, d time.Duration, recordLatency bool) (loadResult, error) {
	var ok0, err0 uint64
	for _, c := range cs {
		c.lat = c.lat[:0]
		c.record.Store(recordLatency)
		ok0 += c.ok.Load()
		err0 += c.failed.Load()
	}
	t0 := time.Now()
	for _, c := range cs {
		if err := c.start(perConn); err != nil {
			return loadResult{}, err
		}
	}
	time.Sleep(d)
	var ok1, err1 uint64
	for _, c := range cs {
		ok1 += c.ok.Load()
		err1 += c.failed.Load()
	}
	r := loadResult{ops: ok1 - ok0, errs: err1 - err0, elapsed: time.Since(t0)}
	for _, c := range cs {
		r.lost += c.stop(stopTimeout)
		c.record.Store(false)
	}
	for _, c := range cs {
		r.lat = append(r.lat, c.lat...)
	}
	sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] })
	return r, nil
}

// percentile returns the p-th percentile (0..1) of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}
