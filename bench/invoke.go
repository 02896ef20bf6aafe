package bench

import (
	"fmt"
	"strconv"
	"time"
)

const (
	inFlight  = 64 // calls kept in flight by the throughput runs
	manyConns = 8  // connections the calls are spread over in the multi-connection run
	echoFn    = "bench::echo"
)

// invokeBody is the rest of a call to the echo worker.
func invokeBody(dst []byte, _ uint64) []byte {
	return append(dst, `","function_id":"`+echoFn+`","data":{}}`...)
}

// setBody is the rest of a stream::set call; items cycle so the stream
// stays small however long the run.
func setBody(dst []byte, seq uint64) []byte {
	dst = append(dst, `","function_id":"stream::set","data":{"stream_name":"bench","group_id":"set","item_id":"i`...)
	dst = strconv.AppendUint(dst, seq%1024, 10)
	dst = append(dst, `","data":{"n":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	return append(dst, `}}}`...)
}

// side is one server under load: an optional echo worker and the callers.
type side struct {
	worker  *worker
	callers []*caller
}

// dialSide connects conns callers to url (and an echo worker first, when
// withWorker) and waits until a call goes through on every caller.
func dialSide(url string, withWorker bool, conns int, body func([]byte, uint64) []byte) (*side, error) {
	s := &side{}
	if withWorker {
		w, err := dialWorker(url, nil, `{"type":"registerfunction","id":"`+echoFn+`"}`)
		if err != nil {
			return nil, err
		}
		s.worker = w
	}
	for range conns {
		c, err := dialCaller(url, body)
		if err != nil {
			s.close()
			return nil, err
		}
		s.callers = append(s.callers, c)
	}
	for _, c := range s.callers {
		if err := c.ready(15 * time.Second); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

func (s *side) close() {
	if s == nil {
		return
	}
	for _, c := range s.callers {
		c.close()
	}
	if s.worker != nil {
		s.worker.close()
	}
}

// measurePair runs the same closed-loop load on ours and base (ours may be
// nil) in alternating halves, so a change in machine load in the middle of
// the run falls on both.
func (r *runner) measurePair(ours, base []*caller, perConn int, lat bool) (o, b loadResult, err error) {
	half := r.o.Duration / 2
	for range 2 {
		if ours != nil {
			res, err := runLoad(ours, perConn, half, lat)
			if err != nil {
				return o, b, fmt.Errorf("ours: %w", err)
			}
			o.add(res)
		}
		res, err := runLoad(base, perConn, half, lat)
		if err != nil {
			return o, b, fmt.Errorf("baseline: %w", err)
		}
		b.add(res)
	}
	return o, b, nil
}

// engineSide dials the engine when there is one; a failure is kept as a
// note so the baseline is still measured.
func (r *runner) engineSide(withWorker bool, body func([]byte, uint64) []byte) (*side, string) {
	if r.t.EngineURL == "" {
		return nil, "no engine"
	}
	s, err := dialSide(r.t.EngineURL, withWorker, manyConns, body)
	if err != nil {
		return nil, "engine: " + err.Error()
	}
	return s, ""
}

// loadRows measures c=1 latency, 64 in flight on one connection and 64 in
// flight on 8 connections, and returns the rows in that order.
func (r *runner) loadRows(name, unit string, ours, base *side, note string) ([]Row, error) {
	var oc []*caller
	if ours != nil {
		oc = ours.callers
	}
	pick := func(n int) []*caller {
		if oc == nil {
			return nil
		}
		return oc[:n]
	}
	var rows []Row
	row := func(label, u string, o, b loadResult, val func(loadResult) float64) {
		rows = append(rows, Row{Scenario: name + " " + label, Unit: u, Ours: nanIf(ours == nil, val(o)), Baseline: val(b), Against: "relay", Note: joinNotes(note, errNote(o, b))})
	}

	r.progress("%s c=1", name)
	o, b, err := r.measurePair(pick(1), base.callers[:1], 1, true)
	if err != nil {
		return rows, err
	}
	p := func(q float64) func(loadResult) float64 {
		return func(l loadResult) float64 { return float64(percentile(l.lat, q)) / float64(time.Microsecond) }
	}
	row("c=1 p50", "µs", o, b, p(0.5))
	row("c=1 p99", "µs", o, b, p(0.99))
	row("c=1", unit, o, b, loadResult.rate)

	r.progress("%s %d in flight, 1 connection", name, inFlight)
	if o, b, err = r.measurePair(pick(1), base.callers[:1], inFlight, false); err != nil {
		return rows, err
	}
	row(fmt.Sprintf("%d in flight, 1 conn", inFlight), unit, o, b, loadResult.rate)

	r.progress("%s %d in flight, %d connections", name, inFlight, manyConns)
	if o, b, err = r.measurePair(pick(manyConns), base.callers, inFlight/manyConns, false); err != nil {
		return rows, err
	}
	row(fmt.Sprintf("%d in flight, %d conns", inFlight, manyConns), unit, o, b, loadResult.rate)
	return rows, nil
}

func errNote(o, b loadResult) string {
	var n []string
	if o.errs > 0 {
		n = append(n, fmt.Sprintf("%d errors (ours)", o.errs))
	}
	if b.errs > 0 {
		n = append(n, fmt.Sprintf("%d errors (baseline)", b.errs))
	}
	if o.lost > 0 {
		n = append(n, fmt.Sprintf("%d calls never answered (ours)", o.lost))
	}
	if b.lost > 0 {
		n = append(n, fmt.Sprintf("%d calls never answered (baseline)", b.lost))
	}
	return joinNotes(n...)
}

func joinNotes(notes ...string) string {
	out := ""
	for _, n := range notes {
		if n == "" {
			continue
		}
		if out != "" {
			out += "; "
		}
		out += n
	}
	return out
}

// invoke: round trips through the engine to an echo worker, against the
// bare relay.
func (r *runner) invoke() error {
	ours, note := r.engineSide(true, invokeBody)
	defer ours.close()
	relaySrv, err := startServer(newRelay())
	if err != nil {
		return err
	}
	defer relaySrv.close()
	base, err := dialSide(relaySrv.url(), true, manyConns, invokeBody)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	defer base.close()
	rows, err := r.loadRows("invoke", "calls/s", ours, base, note)
	for _, row := range rows {
		r.add(row)
	}
	if err != nil {
		return err
	}
	r.rep.Summary.InvokeRatio = rows[len(rows)-1].Ratio()
	return nil
}

// set: durable stream::set calls answered by the engine after fsync,
// against the same frames answered by an echo worker behind the relay.
func (r *runner) set() error {
	ours, note := r.engineSide(false, setBody)
	defer ours.close()
	relaySrv, err := startServer(newRelay())
	if err != nil {
		return err
	}
	defer relaySrv.close()
	base, err := dialSide(relaySrv.url(), true, manyConns, setBody)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	defer base.close()
	rows, err := r.loadRows("stream::set", "sets/s", ours, base, note)
	for _, row := range rows {
		r.add(row)
	}
	if err != nil {
		return err
	}
	r.rep.Summary.SetRatio = rows[len(rows)-1].Ratio()
	return nil
}
