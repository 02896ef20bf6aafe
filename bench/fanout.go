package bench

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
)

// Fan-out: one writer publishes events, each numbered with "seq"; every
// subscriber reports each event it receives to a tracker, which knows when
// the last subscriber got an event.

const (
	fanWindow = 8               // events published but not yet delivered to everyone, in the throughput run
	fanSlots  = 1024            // tracker ring size; larger than fanWindow
	fanGrace  = 5 * time.Second // how long a run waits for its last events
)

var tagSeq = []byte(`"seq":`)

// fanTracker counts deliveries per event.
type fanTracker struct {
	n         int64
	base      time.Time
	slots     [fanSlots]fanSlot
	delivered atomic.Uint64
	done      chan time.Duration // last-subscriber latency of each completed event
}

type fanSlot struct {
	seq       atomic.Uint64
	remaining atomic.Int64
	sent      atomic.Int64 // ns since base
}

func newFanTracker(n int) *fanTracker {
	return &fanTracker{n: int64(n), base: time.Now(), done: make(chan time.Duration, fanSlots)}
}

// expect arms the slot of event seq just before it is published.
func (t *fanTracker) expect(seq uint64) {
	s := &t.slots[seq%fanSlots]
	s.seq.Store(0)
	s.remaining.Store(t.n)
	s.sent.Store(int64(time.Since(t.base)))
	s.seq.Store(seq)
}

// deliver records that one subscriber received event seq.
func (t *fanTracker) deliver(seq uint64) {
	s := &t.slots[seq%fanSlots]
	if s.seq.Load() != seq {
		return // a straggler of an event given up on
	}
	t.delivered.Add(1)
	if s.remaining.Add(-1) == 0 {
		select {
		case t.done <- time.Since(t.base) - time.Duration(s.sent.Load()):
		default: // nobody is counting (between runs); never block a subscriber
		}
	}
}

// deliverFrame is the subscribers' hook: it reads the event number.
func (t *fanTracker) deliverFrame(frame []byte) {
	if seq, ok := numberAfter(frame, tagSeq); ok {
		t.deliver(seq)
	}
}

// publisher sends the writer's frames and counts the answers.
type publisher interface {
	publish(seq uint64) error
	errors() (n uint64, last string)
	close()
}

// fanResult is one measured run.
type fanResult struct {
	deliveries uint64
	elapsed    time.Duration
	lat        []time.Duration // sorted
	incomplete int             // events some subscriber never got
}

func (f fanResult) rate() float64 {
	if f.elapsed <= 0 {
		return 0
	}
	return float64(f.deliveries) / f.elapsed.Seconds()
}

func (f *fanResult) add(o fanResult) {
	f.deliveries += o.deliveries
	f.elapsed += o.elapsed
	f.incomplete += o.incomplete
	f.lat = append(f.lat, o.lat...)
	sort.Slice(f.lat, func(i, j int) bool { return f.lat[i] < f.lat[j] })
}

// errIncomplete says a probe event never reached every subscriber.
var errIncomplete = errors.New("an event did not reach every subscriber")

// fanRun publishes for d with up to window events outstanding and counts
// the deliveries that arrived in that time, then waits up to fanGrace for the
// events still outstanding. Seq numbers come from next.
func fanRun(t *fanTracker, p publisher, next *uint64, window int, d time.Duration) fanResult {
	// Drop completions of earlier runs.
	for len(t.done) > 0 {
		<-t.done
	}
	var res fanResult
	d0 := t.delivered.Load()
	t0 := time.Now()
	timer := time.NewTimer(d)
	defer timer.Stop()
	outstanding := 0
publishing:
	for {
		for outstanding < window {
			*next++
			t.expect(*next)
			if p.publish(*next) != nil {
				break publishing
			}
			outstanding++
		}
		select {
		case l := <-t.done:
			res.lat = append(res.lat, l)
			outstanding--
		case <-timer.C:
			break publishing
		}
	}
	res.elapsed = time.Since(t0)
	res.deliveries = t.delivered.Load() - d0
	// Let the outstanding events land before the next run starts.
	timer.Reset(fanGrace)
	for outstanding > 0 {
		select {
		case <-t.done:
			outstanding--
		case <-timer.C:
			res.incomplete = outstanding
			outstanding = 0
		}
	}
	sort.Slice(res.lat, func(i, j int) bool { return res.lat[i] < res.lat[j] })
	return res
}

// fanReady publishes probe events until one reaches every subscriber:
// trigger registrations are not acknowledged on the wire.
func fanReady(t *fanTracker, p publisher, next *uint64) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		*next++
		t.expect(*next)
		if err := p.publish(*next); err != nil {
			return err
		}
		select {
		case <-t.done: // this probe or a late earlier one: either way everyone is subscribed
			return nil
		case <-time.After(time.Second):
		}
	}
	if n, last := p.errors(); n > 0 {
		return fmt.Errorf("%w (%d publish errors, last: %s)", errIncomplete, n, last)
	}
	return errIncomplete
}

// wsPublisher publishes stream::set frames over WebSocket.
type wsPublisher struct {
	gws.BuiltinEventHandler
	conn    *gws.Conn
	stream  string
	mu      sync.Mutex
	buf     []byte
	failed  atomic.Uint64
	lastErr atomic.Pointer[string]
}

func dialPublisher(url, stream string) (*wsPublisher, error) {
	p := &wsPublisher{stream: stream}
	if err := dial(url, p, func(c *gws.Conn, _ *pipeConn) { p.conn = c }); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *wsPublisher) publish(seq uint64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf[:0], `{"type":"invokefunction","invocation_id":"`...)
	p.buf = appendID(p.buf, seq, 0)
	p.buf = append(p.buf, `","function_id":"stream::set","data":{"stream_name":"`...)
	p.buf = append(p.buf, p.stream...)
	p.buf = append(p.buf, `","group_id":"g","item_id":"e","data":{"seq":`...)
	p.buf = strconv.AppendUint(p.buf, seq, 10)
	p.buf = append(p.buf, `}}}`...)
	return p.conn.WriteMessage(gws.OpcodeText, p.buf)
}

// OnMessage implements gws.Event.
func (p *wsPublisher) OnMessage(_ *gws.Conn, m *gws.Message) {
	if b := m.Bytes(); bytes.Contains(b, tagResult) && isError(b) {
		msg := string(b)
		p.lastErr.Store(&msg)
		p.failed.Add(1)
	}
	m.Close()
}

func (p *wsPublisher) errors() (uint64, string) {
	if e := p.lastErr.Load(); e != nil {
		return p.failed.Load(), *e
	}
	return 0, ""
}

func (p *wsPublisher) close() { p.conn.NetConn().Close() }

// fanSide is n subscribers and a writer on one server.
type fanSide struct {
	t    *fanTracker
	pub  publisher
	subs []interface{ close() }
	next uint64
}

func (f *fanSide) close() {
	if f == nil {
		return
	}
	if f.pub != nil {
		f.pub.close()
	}
	for _, s := range f.subs {
		s.close()
	}
}

// dialFanSide connects n subscribers, each registering a function and a
// stream trigger on stream (the broadcaster only looks at the function
// registration), then the writer, and waits until an event reaches all.
func dialFanSide(url, stream string, n int) (*fanSide, error) {
	f := &fanSide{t: newFanTracker(n)}
	for i := range n {
		fn := "bench::sub::" + stream + "::" + strconv.Itoa(i)
		w, err := dialWorker(url, f.t.deliverFrame,
			`{"type":"registerfunction","id":"`+fn+`"}`,
			`{"type":"registertrigger","id":"bench-sub-`+stream+`-`+strconv.Itoa(i)+`","trigger_type":"stream","function_id":"`+fn+`","config":{"stream_name":"`+stream+`","group_id":"g"}}`)
		if err != nil {
			f.close()
			return nil, err
		}
		f.subs = append(f.subs, w)
	}
	if err := f.publishTo(url, stream); err != nil {
		return nil, err
	}
	return f, nil
}

// publishTo connects the publisher (a worker connection writing to stream)
// and waits until an event reaches every subscriber; on failure f is closed.
func (f *fanSide) publishTo(url, stream string) error {
	p, err := dialPublisher(url, stream)
	if err == nil {
		f.pub = p
		err = fanReady(f.t, f.pub, &f.next)
	}
	if err != nil {
		f.close()
	}
	return err
}

// streamSub is a stream-port client joined to one group: the tracker
// counts every envelope it receives, and it answers nothing (pure push).
type streamSub struct {
	gws.BuiltinEventHandler
	conn *gws.Conn
	on   func([]byte)
}

// OnMessage implements gws.Event.
func (s *streamSub) OnMessage(_ *gws.Conn, m *gws.Message) {
	s.on(m.Bytes())
	m.Close()
}

func (s *streamSub) close() { s.conn.NetConn().Close() }

// dialStreamFanSide joins n stream-port subscribers to the group the
// publisher (a worker connection) writes to.
func dialStreamFanSide(workerURL, streamURL, stream string, n int) (*fanSide, error) {
	f := &fanSide{t: newFanTracker(n)}
	for range n {
		sub := &streamSub{on: f.t.deliverFrame}
		if err := dial(streamURL, sub, func(c *gws.Conn, _ *pipeConn) { sub.conn = c }); err != nil {
			f.close()
			return nil, err
		}
		f.subs = append(f.subs, sub)
		if err := sub.conn.WriteString(`{"type":"join","data":{"subscriptionId":"s","streamName":"` + stream + `","groupId":"g"}}`); err != nil {
			f.close()
			return nil, fmt.Errorf("bench: join: %w", err)
		}
	}
	if err := f.publishTo(workerURL, stream); err != nil {
		return nil, err
	}
	return f, nil
}

// measureFan runs the throughput run (fanWindow events outstanding),
// alternating ours and base, then, if withLatency, the latency run (one
// event at a time).
func (r *runner) measureFan(ours, base *fanSide, withLatency bool) (oThr, bThr, oLat, bLat fanResult) {
	half := r.o.Duration / 2
	for range 2 {
		if ours != nil {
			oThr.add(fanRun(ours.t, ours.pub, &ours.next, fanWindow, half))
		}
		bThr.add(fanRun(base.t, base.pub, &base.next, fanWindow, half))
	}
	if !withLatency {
		return
	}
	if ours != nil {
		oLat = fanRun(ours.t, ours.pub, &ours.next, 1, half)
	}
	bLat = fanRun(base.t, base.pub, &base.next, 1, half)
	return
}

func fanNote(o, b fanResult) string {
	var n []string
	if o.incomplete > 0 {
		n = append(n, fmt.Sprintf("%d events not delivered to all (ours)", o.incomplete))
	}
	if b.incomplete > 0 {
		n = append(n, fmt.Sprintf("%d events not delivered to all (baseline)", b.incomplete))
	}
	return joinNotes(n...)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fanout: stream::set events delivered by the engine to N stream-trigger
// subscribers, against a bare gws broadcast of the writer's frame.
func (r *runner) fanout() error {
	for _, n := range r.o.Subscribers {
		if err := r.fanoutSize(n); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) fanoutSize(n int) error {
	stream := "b" + strconv.Itoa(n)
	label := fmt.Sprintf("fan-out %d subs", n)
	r.progress("%s: connecting", label)
	ours, note := r.engineFanSide(stream, n)
	defer ours.close()
	bsrv, err := startServer(&broadcaster{})
	if err != nil {
		return err
	}
	defer bsrv.close()
	base, err := dialFanSide(bsrv.url(), stream, n)
	if err != nil {
		return fmt.Errorf("%s: broadcast: %w", label, err)
	}
	defer base.close()
	r.progress("%s: measuring", label)
	oThr, bThr, oLat, bLat := r.measureFan(ours, base, true)
	missing := ours == nil
	thr := Row{Scenario: label, Unit: "deliveries/s", Ours: nanIf(missing, oThr.rate()), Baseline: bThr.rate(), Against: "gws broadcast", Note: joinNotes(note, fanNote(oThr, bThr))}
	r.add(thr)
	r.add(Row{Scenario: label + " last-subscriber p50", Unit: "ms", Ours: nanIf(missing, ms(percentile(oLat.lat, 0.5))), Baseline: ms(percentile(bLat.lat, 0.5)), Against: "gws broadcast",
		Note: joinNotes(note, "p99 "+formatValue(nanIf(missing, ms(percentile(oLat.lat, 0.99))), "ms")+" / "+formatValue(ms(percentile(bLat.lat, 0.99)), "ms"), fanNote(oLat, bLat))})
	r.rep.Summary.FanoutRatio = thr.Ratio()
	return nil
}

// engineFanSide connects the subscribers to the engine when there is one;
// a failure is kept as a note so the baseline is still measured.
func (r *runner) engineFanSide(stream string, n int) (*fanSide, string) {
	if r.t.EngineURL == "" {
		return nil, "no engine"
	}
	f, err := dialFanSide(r.t.EngineURL, stream, n)
	if err != nil {
		return nil, "engine: " + err.Error()
	}
	return f, ""
}
