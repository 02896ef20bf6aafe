package bench

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/iii-go/iii/internal/natstest"
)

// The invoke and fan-out loads on NATS: an embedded nats-server on a free
// loopback port, request/reply to one responder connection (as calls go to
// one worker connection), and publish to N subscriber connections. The
// engine side is measured again next to it, with the same load.

const natsEcho = "bench.echo"

// natsInvoke is a responder and the callers' connections.
type natsInvoke struct {
	responder *nats.Conn
	callers   []*nats.Conn
	request   []byte
}

func dialNATSInvoke(url string, conns int) (*natsInvoke, error) {
	ni := &natsInvoke{request: invokeBody(appendID([]byte(`{"type":"invokefunction","invocation_id":"`), 1, 0), 1)}
	reply := []byte(`{"type":"invocationresult","invocation_id":"` + string(appendID(nil, 1, 0)) + `","function_id":"` + echoFn + `","result":{}}`)
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, err
	}
	ni.responder = nc
	if _, err := nc.Subscribe(natsEcho, func(m *nats.Msg) { _ = m.Respond(reply) }); err != nil {
		ni.close()
		return nil, err
	}
	if err := nc.Flush(); err != nil {
		ni.close()
		return nil, err
	}
	for range conns {
		c, err := nats.Connect(url)
		if err != nil {
			ni.close()
			return nil, err
		}
		ni.callers = append(ni.callers, c)
	}
	return ni, nil
}

func (ni *natsInvoke) close() {
	for _, c := range ni.callers {
		c.Close()
	}
	if ni.responder != nil {
		ni.responder.Close()
	}
}

// load keeps perConn requests in flight on each of the first conns callers
// for d (one goroutine per request in flight, as nats.go's Request blocks).
func (ni *natsInvoke) load(conns, perConn int, d time.Duration, recordLatency bool) (loadResult, error) {
	var (
		ok, failed atomic.Uint64
		stop       atomic.Bool
		wg         sync.WaitGroup
		mu         sync.Mutex
		lat        []time.Duration
		lastErr    atomic.Pointer[error]
	)
	t0 := time.Now()
	for _, nc := range ni.callers[:conns] {
		for range perConn {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []time.Duration
				for !stop.Load() {
					start := time.Now()
					if _, err := nc.Request(natsEcho, ni.request, 10*time.Second); err != nil {
						failed.Add(1)
						lastErr.Store(&err)
						continue
					}
					ok.Add(1)
					if recordLatency {
						mine = append(mine, time.Since(start))
					}
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
		}
	}
	time.Sleep(d)
	res := loadResult{ops: ok.Load(), errs: failed.Load(), elapsed: time.Since(t0)}
	stop.Store(true)
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res.lat = lat
	if res.ops == 0 {
		if e := lastErr.Load(); e != nil {
			return res, *e
		}
	}
	return res, nil
}

// natsPublisher publishes the fan-out frame on subject.
type natsPublisher struct {
	nc      *nats.Conn
	subject string
	buf     []byte
	failed  atomic.Uint64
}

func (p *natsPublisher) publish(seq uint64) error {
	p.buf = append(p.buf[:0], `{"type":"invokefunction","invocation_id":"`...)
	p.buf = appendID(p.buf, seq, 0)
	p.buf = append(p.buf, `","function_id":"stream::set","data":{"stream_name":"`...)
	p.buf = append(p.buf, p.subject...)
	p.buf = append(p.buf, `","group_id":"g","item_id":"e","data":{"seq":`...)
	p.buf = strconv.AppendUint(p.buf, seq, 10)
	p.buf = append(p.buf, `}}}`...)
	err := p.nc.Publish(p.subject, p.buf)
	if err != nil {
		p.failed.Add(1)
	}
	return err
}

func (p *natsPublisher) errors() (uint64, string) { return p.failed.Load(), "" }
func (p *natsPublisher) close()                   { p.nc.Close() }

type natsSub struct{ nc *nats.Conn }

func (s natsSub) close() { s.nc.Close() }

// dialNATSFan connects n subscriber connections and a publisher and waits
// until an event reaches all of them.
func dialNATSFan(url, subject string, n int) (*fanSide, error) {
	f := &fanSide{t: newFanTracker(n)}
	for range n {
		nc, err := nats.Connect(url)
		if err != nil {
			f.close()
			return nil, err
		}
		f.subs = append(f.subs, natsSub{nc})
		if _, err := nc.Subscribe(subject, func(m *nats.Msg) { f.t.deliverFrame(m.Data) }); err != nil {
			f.close()
			return nil, err
		}
		if err := nc.Flush(); err != nil {
			f.close()
			return nil, err
		}
	}
	nc, err := nats.Connect(url)
	if err != nil {
		f.close()
		return nil, err
	}
	f.pub = &natsPublisher{nc: nc, subject: subject}
	if err := fanReady(f.t, f.pub, &f.next); err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

func (r *runner) nats() error {
	s, err := natstest.Run(&server.Options{})
	if err != nil {
		return err
	}
	defer s.Shutdown()
	url := s.ClientURL()

	ours, note := r.engineSide(true, invokeBody)
	defer ours.close()
	ni, err := dialNATSInvoke(url, manyConns)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer ni.close()

	half := r.o.Duration / 2
	runs := []struct {
		label          string
		conns, perConn int
		lat            bool
	}{
		{"c=1", 1, 1, true},
		{fmt.Sprintf("%d in flight, 1 conn", inFlight), 1, inFlight, false},
		{fmt.Sprintf("%d in flight, %d conns", inFlight, manyConns), manyConns, inFlight / manyConns, false},
	}
	for _, run := range runs {
		r.progress("nats: invoke %s", run.label)
		var o, b loadResult
		for range 2 {
			if ours != nil {
				res, err := runLoad(ours.callers[:run.conns], run.perConn, half, run.lat)
				if err != nil {
					return fmt.Errorf("engine: %w", err)
				}
				o.add(res)
			}
			res, err := ni.load(run.conns, run.perConn, half, run.lat)
			if err != nil {
				return fmt.Errorf("nats: %w", err)
			}
			b.add(res)
		}
		if run.lat {
			p50 := func(l loadResult) float64 { return float64(percentile(l.lat, 0.5)) / float64(time.Microsecond) }
			r.add(Row{Scenario: "invoke c=1 p50 vs NATS", Unit: "µs", Ours: nanIf(ours == nil, p50(o)), Baseline: p50(b), Against: "NATS", Note: joinNotes(note, errNote(o, b))})
		}
		row := Row{Scenario: "invoke " + run.label + " vs NATS", Unit: "calls/s", Ours: nanIf(ours == nil, o.rate()), Baseline: b.rate(), Against: "NATS", Note: joinNotes(note, errNote(o, b))}
		r.add(row)
		r.rep.Summary.VsNATSInvoke = row.Ratio()
	}

	for _, n := range r.o.Subscribers {
		if err := r.natsFanout(url, n); err != nil {
			return err
		}
	}
	return r.natsPush(url, r.o.Subscribers[len(r.o.Subscribers)-1])
}

// natsPush is pure push on both sides: stream-port subscribers of the
// engine, which answer nothing, against NATS subscribers. (The trigger
// fan-out above is an invocation each subscriber answers.)
func (r *runner) natsPush(url string, n int) error {
	subject := "p" + strconv.Itoa(n)
	label := fmt.Sprintf("push fan-out %d stream-port subs vs NATS", n)
	r.progress("nats: %s", label)
	var ours *fanSide
	note := "no engine"
	if r.t.EngineURL != "" && r.t.StreamURL != "" {
		var err error
		if ours, err = dialStreamFanSide(r.t.EngineURL, r.t.StreamURL, subject, n); err != nil {
			ours, note = nil, "engine: "+err.Error()
		} else {
			note = ""
		}
	}
	defer ours.close()
	row, err := r.vsNATSFan(url, subject, label, n, ours, note)
	r.rep.Summary.VsNATSPush = row.Ratio()
	return err
}

func (r *runner) natsFanout(url string, n int) error {
	subject := "n" + strconv.Itoa(n)
	label := fmt.Sprintf("fan-out %d subs vs NATS", n)
	r.progress("nats: %s", label)
	ours, note := r.engineFanSide(subject, n)
	defer ours.close()
	row, err := r.vsNATSFan(url, subject, label, n, ours, note)
	r.rep.Summary.VsNATSFanout = row.Ratio()
	return err
}

// vsNATSFan measures the engine side ours (nil: not measured, for the
// reason in note) against n NATS subscribers of subject, and adds the row.
func (r *runner) vsNATSFan(url, subject, label string, n int, ours *fanSide, note string) (Row, error) {
	base, err := dialNATSFan(url, subject, n)
	if err != nil {
		return Row{Ours: math.NaN(), Baseline: math.NaN()}, fmt.Errorf("%s: %w", label, err)
	}
	defer base.close()
	oThr, bThr, _, _ := r.measureFan(ours, base, false)
	row := Row{Scenario: label, Unit: "deliveries/s", Ours: nanIf(ours == nil, oThr.rate()), Baseline: bThr.rate(), Against: "NATS", Note: joinNotes(note, fanNote(oThr, bThr))}
	r.add(row)
	return row, nil
}
