package engine

import (
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/iii-go/iii/log"
	"github.com/iii-go/iii/projections"
	"github.com/iii-go/iii/wire"
)

// fanout delivers change events to the functions bound by triggers, in log
// order per trigger; a trigger whose owner cannot keep up gets its owner
// disconnected, and no event is ever dropped silently
// (docs/wire-protocol.md#delivery-order). The common case — a plain trigger
// whose function lives on a worker connection — is a frame queued on that
// connection straight from the sequencer, so order is the connection's
// write order and nothing blocks the log. Triggers that need the engine to
// wait (a condition function, or a target that is itself an engine
// function) get a FIFO queue and a goroutine of their own.
type fanout struct {
	e *Engine

	mu     sync.Mutex
	queues map[string]*triggerQueue
	closed bool

	subs []projections.Sub // scratch for matching the log's events; only used by deliver
}

// triggerQueue serialises deliveries to one trigger that needs waiting.
type triggerQueue struct {
	ch   chan delivery
	rate firingRate // untrusted owners only
}

// Untrusted triggers whose calls run on other connections are also bounded
// in rate: a worker that does not pass trace context on (OpenTelemetry off
// in its SDK) hides its writes' cause, and the rate bound is then what
// keeps one frame from driving writes as fast as the log takes them.
const (
	untrustedFiringsPerSecond = 50
	untrustedFiringBurst      = 100
)

// firingRate is a token bucket; it is only used on the trigger's goroutine.
type firingRate struct {
	tokens  float64
	last    time.Time
	dropped int       // firings refused since the last log line
	logged  time.Time // when that line was written
}

// allow takes a token, refilling at untrustedFiringsPerSecond.
func (r *firingRate) allow(now time.Time) bool {
	if r.last.IsZero() {
		r.tokens = untrustedFiringBurst
	} else {
		r.tokens = min(untrustedFiringBurst, r.tokens+now.Sub(r.last).Seconds()*untrustedFiringsPerSecond)
	}
	r.last = now
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}

type delivery struct {
	sub         projections.Sub
	payload     json.RawMessage
	traceparent string // the firing's mark (cause.go); "" for engine events
}

// triggerQueueLen bounds one trigger's undelivered events; beyond it the
// trigger's owner is closed as a slow consumer
// (docs/wire-protocol.md#delivery-order).
const triggerQueueLen = 65536

func newFanout(e *Engine) *fanout {
	return &fanout{e: e, queues: map[string]*triggerQueue{}}
}

// deliver is the store's change hook: it runs on the sequencer goroutine
// after each durable record is applied.
func (f *fanout) deliver(rec *log.Record, res projections.Change) {
	from := cause{trigger: rec.Cause, depth: rec.Depth}
	switch rec.Kind {
	case log.KindTriggerRegistered, log.KindTriggerUnregistered, log.KindWorkerDisconnected, log.KindEngineStarted, log.KindNodeLost:
		if c := f.e.cron; c != nil {
			c.poke() // jobs are cron triggers
		}
		if h := f.e.http; h != nil {
			h.dirty.Store(true) // routes are http triggers
		}
	}
	f.registryEvents(rec, res.Registry)
	if n := f.e.node; n != nil {
		n.applied(rec)
		if rec.Node != n.name {
			f.e.forwardRemote(rec, res.Registry)
		}
	}
	if q := f.e.queues; q != nil {
		switch rec.Kind {
		// A new job, or a worker (and its functions) that jobs may wait for.
		case log.KindJobEnqueued, log.KindJobRedriven, log.KindFunctionRegistered, log.KindTriggerRegistered:
			q.poke()
		}
	}
	switch rec.Kind {
	case log.KindStreamSet, log.KindStreamUpdate:
		f.streamEvent(&f.subs, from, rec.Time, rec.Stream, rec.Group, rec.Item, true, changeType(res.Stream.Existed), res.Stream.New)
	case log.KindStreamDelete:
		if res.Stream.Existed {
			f.streamEvent(&f.subs, from, rec.Time, rec.Stream, rec.Group, rec.Item, true, "delete", res.Stream.Old)
		}
	case log.KindStreamSend:
		var v struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
			ID   *string         `json:"id"`
		}
		if json.Unmarshal(rec.Value, &v) != nil || !f.match(&f.subs, rec.Stream, rec.Group, deref(v.ID), v.ID != nil) {
			return
		}
		ev := append(append([]byte(`{"type":"event","event":{"type":`), wire.AppendString(nil, v.Type)...), `,"data":`...)
		ev = append(append(ev, rawOrNull(v.Data)...), `}}`...)
		f.publishStream(f.subs, from, rec.Time, rec.Stream, rec.Group, deref(v.ID), v.ID != nil, ev)
	case log.KindStateSet, log.KindStateUpdate, log.KindStateDelete:
		if s := f.e.cfg.State; s == nil || !s.TriggersEnabled {
			return
		}
		f.stateEvent(from, rec, res.State)
	}
}

func changeType(existed bool) string {
	if existed {
		return "update"
	}
	return "create"
}

// customEvent emits the event of a write a custom stream implementation
// performed (it is not in our log: the worker owns that data).
func (f *fanout) customEvent(stream, group, item string, existed bool, data json.RawMessage, deleted bool) {
	typ := changeType(existed)
	if deleted {
		typ = "delete"
	}
	// It runs on the caller's goroutine, alongside deliver: a scratch of its own.
	var subs []projections.Sub
	f.streamEvent(&subs, cause{}, nowMillis()*1e6, stream, group, item, true, typ, data)
}

// streamEvent offers a change event to the stream triggers it fires
// (matched into *subs, scratch owned by the calling goroutine) and to
// stream-port subscribers; nothing is encoded when nobody receives it.
func (f *fanout) streamEvent(subs *[]projections.Sub, from cause, timeNanos int64, stream, group, item string, hasItem bool, typ string, data []byte) {
	if !f.match(subs, stream, group, item, hasItem) {
		return
	}
	ev := append([]byte(`{"type":"`+typ+`","data":`), rawOrNull(data)...)
	ev = append(ev, '}')
	f.publishStream(*subs, from, timeNanos, stream, group, item, hasItem, ev)
}

// match sets *subs to the stream triggers an event of stream, group and
// item fires, and says whether anyone (a trigger or a stream-port
// subscriber) receives the event.
func (f *fanout) match(subs *[]projections.Sub, stream, group, item string, hasItem bool) bool {
	e := f.e
	e.view.mu.RLock()
	*subs = e.view.Subs.AppendMatchStream((*subs)[:0], stream, group, item, hasItem)
	e.view.mu.RUnlock()
	return len(*subs) > 0 || e.streams != nil && e.streams.watched(stream, group)
}

// publishStream builds the envelope (docs/wire-protocol.md#stream-envelopes)
// and offers it to subs, the stream triggers match found, and to
// stream-port subscribers.
func (f *fanout) publishStream(subs []projections.Sub, from cause, timeNanos int64, stream, group, item string, hasItem bool, event []byte) {
	env := make([]byte, 0, 96+len(stream)+len(group)+len(item)+len(event))
	env = append(env, `{"type":"stream","timestamp":`...)
	env = strconv.AppendInt(env, timeNanos/1e6, 10)
	env = append(env, `,"streamName":`...)
	env = wire.AppendString(env, stream)
	env = append(env, `,"groupId":`...)
	env = wire.AppendString(env, group)
	env = append(env, `,"id":`...)
	if hasItem {
		env = wire.AppendString(env, item)
	} else {
		env = append(env, "null"...)
	}
	env = append(env, `,"event":`...)
	env = append(env, event...)
	env = append(env, '}')

	for _, s := range subs {
		f.fire(s, env, from)
	}
	if f.e.streams != nil {
		f.e.streams.publish(stream, group, item, hasItem, env)
	}
}

func (f *fanout) stateEvent(from cause, rec *log.Record, ch projections.StateChange) {
	e := f.e
	e.view.mu.RLock()
	f.subs = e.view.Subs.AppendMatchState(f.subs[:0], rec.Scope, rec.Key)
	e.view.mu.RUnlock()
	if len(f.subs) == 0 {
		return // nothing is encoded when no trigger receives it
	}
	typ := "state:updated"
	switch {
	case rec.Kind == log.KindStateDelete:
		typ = "state:deleted"
	case !ch.Existed:
		typ = "state:created"
	}
	var b []byte
	b = append(b, `{"type":"state","event_type":"`+typ+`","scope":`...)
	b = wire.AppendString(b, rec.Scope)
	b = append(b, `,"key":`...)
	b = wire.AppendString(b, rec.Key)
	b = append(b, `,"old_value":`...)
	b = append(b, rawOrNull(ch.Old)...)
	b = append(b, `,"new_value":`...)
	b = append(b, rawOrNull(ch.New)...)
	b = append(b, '}')
	for _, s := range f.subs {
		f.fire(s, b, from)
	}
}

// fire delivers one event to one trigger's function. from is the firing
// whose call made the change: a trigger is not fired for its own writes, and
// a chain of firings stops at engine.max_trigger_depth (cause.go).
func (f *fanout) fire(s projections.Sub, payload json.RawMessage, from cause) {
	e := f.e
	if !e.firesHere(s.Worker) {
		return // another cluster node fires it (and says so when it does not)
	}
	h := triggerHash(s.TriggerID)
	if from.depth > 0 && from.trigger == h {
		e.logger.Debug("trigger not fired for a change its own call made", "trigger_id", s.TriggerID)
		return
	}
	if limit := min(e.cfg.Engine.MaxTriggerDepth, 255); int(from.depth) >= limit {
		e.logger.Warn("trigger not fired: chain of triggers firing triggers is too deep", "trigger_id", s.TriggerID,
			"function_id", s.Function, "depth", int(from.depth)+1, "limit", limit, "setting", "engine.max_trigger_depth")
		return
	}
	tp := traceparent(h, from.depth+1)
	if s.Condition == "" {
		t, ok := e.lookup(s.Function)
		if !ok {
			e.logger.Debug("trigger function not found", "trigger_id", s.TriggerID, "function_id", s.Function)
			return
		}
		// A worker's own function, or a trusted trigger's target: a frame
		// queued straight from here. Firings are not tracked: their results
		// are dropped like any result nobody waits for.
		if t.owner != nil && (t.owner.id == s.Worker || !f.untrusted(s.Worker)) {
			t.owner.send(wire.AppendInvokeFunction(nil, &wire.Invoke{
				InvocationID: newInvocationID(),
				FunctionID:   t.owner.localID(s.Function),
				Data:         payload,
				Metadata:     nonNull(s.Metadata),
				Traceparent:  tp,
			}))
			return
		}
	}
	f.enqueue(s, payload, tp)
}

// untrusted reports whether a trigger's owner is an RBAC session, whose
// firings run with its rights rather than the engine's.
func (f *fanout) untrusted(worker string) bool {
	s := f.e.session(worker)
	return s != nil && s.grants != nil
}

// enqueue hands a delivery to the trigger's own FIFO goroutine.
func (f *fanout) enqueue(s projections.Sub, payload json.RawMessage, traceparent string) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	q := f.queues[s.TriggerID]
	if q == nil {
		q = &triggerQueue{ch: make(chan delivery, triggerQueueLen)}
		f.queues[s.TriggerID] = q
		go f.run(q)
	}
	f.mu.Unlock()
	select {
	case q.ch <- delivery{sub: s, payload: payload, traceparent: traceparent}:
	default:
		// The trigger's owner cannot keep up: disconnect it rather than drop
		// events silently; every trigger gets its events in log order or not
		// at all.
		f.e.logger.Error("slow consumer: trigger queue full", "trigger_id", s.TriggerID, "worker_id", s.Worker)
		if w := f.e.session(s.Worker); w != nil {
			w.conn.Close(1008, "slow consumer: trigger "+s.TriggerID+" has "+strconv.Itoa(triggerQueueLen)+" undelivered events")
		}
	}
}

func (f *fanout) run(q *triggerQueue) {
	for d := range q.ch {
		e := f.e
		call := e.callTraced
		if d.sub.Worker != engineWorker {
			owner := e.session(d.sub.Worker)
			if owner == nil {
				continue // the owner left and its triggers with it
			}
			if owner.grants != nil {
				call = owner.callAs
				if now := time.Now(); !q.rate.allow(now) {
					q.rate.dropped++
					if now.Sub(q.rate.logged) >= time.Second {
						e.logger.Warn("trigger firings dropped: an untrusted session's trigger fires faster than allowed",
							"trigger_id", d.sub.TriggerID, "worker_id", d.sub.Worker, "dropped", q.rate.dropped,
							"limit_per_second", untrustedFiringsPerSecond)
						q.rate.dropped, q.rate.logged = 0, now
					}
					continue
				}
			}
		}
		if d.sub.Condition != "" {
			o := call(d.sub.Condition, d.payload, nil, d.traceparent)
			if o.failed() {
				e.logger.Debug("condition failed", "trigger_id", d.sub.TriggerID, "err", o.errorMessage())
				continue
			}
			if o.hasResult && string(o.result) == "false" {
				continue
			}
		}
		if o := call(d.sub.Function, d.payload, nonNull(d.sub.Metadata), d.traceparent); o.failed() {
			e.logger.Debug("trigger handler failed", "trigger_id", d.sub.TriggerID, "err", o.errorMessage())
		}
	}
}

// stop ends every trigger goroutine.
func (f *fanout) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for id, q := range f.queues {
		close(q.ch)
		delete(f.queues, id)
	}
}

// workersChanged fires engine::workers-available triggers.
func (f *fanout) workersChanged(event, workerID string) {
	f.fireEngineType("engine::workers-available", func() json.RawMessage {
		b, _ := json.Marshal(map[string]string{"event": event, "worker_id": workerID})
		return b
	})
}

// registryEvents fires engine::workers-available and
// engine::functions-available triggers for a record of workers or
// functions, whichever session or cluster node wrote it.
func (f *fanout) registryEvents(rec *log.Record, ch projections.RegistryChange) {
	switch rec.Kind {
	case log.KindWorkerConnected:
		f.workersChanged("worker_connected", rec.Worker)
	case log.KindWorkerUpdated:
		if ch.Existed {
			f.workersChanged("worker_metadata_updated", rec.Worker)
		}
	case log.KindWorkerDisconnected:
		if ch.Existed {
			f.workersChanged("worker_disconnected", rec.Worker)
		}
	case log.KindEngineStarted, log.KindNodeLost: // a cluster node's connections
		for _, w := range ch.Workers {
			f.workersChanged("worker_disconnected", w)
		}
	case log.KindFunctionRegistered, log.KindFunctionUnregistered:
		f.functionsChanged()
	}
}

// functionsChanged fires engine::functions-available triggers.
func (f *fanout) functionsChanged() {
	f.fireEngineType("engine::functions-available", func() json.RawMessage {
		b, _ := json.Marshal(map[string]any{"event": "functions_changed", "functions": f.e.functionRows(functionFilter{})})
		return b
	})
}

func (f *fanout) fireEngineType(typ string, payload func() json.RawMessage) {
	e := f.e
	e.view.mu.RLock()
	ts := e.view.Registry.TriggersOfType(typ)
	e.view.mu.RUnlock()
	if len(ts) == 0 {
		return
	}
	var p json.RawMessage
	for _, t := range ts {
		if !e.firesHere(t.Worker) {
			continue // another cluster node fires it
		}
		if p == nil {
			p = payload()
		}
		f.enqueue(projections.Sub{TriggerID: t.ID, Function: t.Function, Worker: t.Worker, Metadata: t.Metadata}, p, "")
	}
}
