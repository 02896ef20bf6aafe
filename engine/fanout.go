package engine

import (
	"encoding/json"
	"strconv"
	"sync"

	"github.com/iii-go/iii/log"
	"github.com/iii-go/iii/projections"
	"github.com/iii-go/iii/wire"
)

// fanout delivers change events to the functions bound by triggers, in log
// order per trigger (Decision 7). The common case — a plain trigger whose
// function lives on a worker connection — is a frame queued on that
// connection straight from the sequencer, so order is the connection's
// write order and nothing blocks the log. Triggers that need the engine to
// wait (a condition function, or a target that is itself an engine
// function) get a FIFO queue and a goroutine of their own.
type fanout struct {
	e *Engine

	mu     sync.Mutex
	queues map[string]*triggerQueue
	closed bool

	subs []projections.Sub // scratch for matching; only used on the sequencer goroutine
}

// triggerQueue serialises deliveries to one trigger that needs waiting.
type triggerQueue struct {
	ch chan delivery
}

type delivery struct {
	sub     projections.Sub
	payload json.RawMessage
}

// triggerQueueLen bounds one trigger's undelivered events (README Defaults).
const triggerQueueLen = 65536

func newFanout(e *Engine) *fanout {
	return &fanout{e: e, queues: map[string]*triggerQueue{}}
}

// deliver is the store's change hook: it runs on the sequencer goroutine
// after each durable record is applied.
func (f *fanout) deliver(rec *log.Record, res applied) {
	switch rec.Kind {
	case log.KindStreamSet, log.KindStreamUpdate:
		f.streamEvent(rec.Time, rec.Stream, rec.Group, rec.Item, true, changeType(res.stream.Existed), res.stream.New)
	case log.KindStreamDelete:
		if res.stream.Existed {
			f.streamEvent(rec.Time, rec.Stream, rec.Group, rec.Item, true, "delete", res.stream.Old)
		}
	case log.KindStreamSend:
		var v struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
			ID   *string         `json:"id"`
		}
		if json.Unmarshal(rec.Value, &v) != nil {
			return
		}
		ev := append(append([]byte(`{"type":"event","event":{"type":`), wire.AppendString(nil, v.Type)...), `,"data":`...)
		ev = append(append(ev, rawOrNull(v.Data)...), `}}`...)
		f.publishStream(rec.Time, rec.Stream, rec.Group, deref(v.ID), v.ID != nil, ev)
	case log.KindStateSet, log.KindStateUpdate, log.KindStateDelete:
		if s := f.e.cfg.State; s == nil || !s.TriggersEnabled {
			return
		}
		f.stateEvent(rec, res.state)
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
	f.streamEvent(nowMillis()*1e6, stream, group, item, true, typ, data)
}

func (f *fanout) streamEvent(timeNanos int64, stream, group, item string, hasItem bool, typ string, data []byte) {
	ev := append([]byte(`{"type":"`+typ+`","data":`), rawOrNull(data)...)
	ev = append(ev, '}')
	f.publishStream(timeNanos, stream, group, item, hasItem, ev)
}

// publishStream builds the envelope (streams-and-state.md §6.1) and offers
// it to stream triggers and stream-port subscribers.
func (f *fanout) publishStream(timeNanos int64, stream, group, item string, hasItem bool, event []byte) {
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

	e := f.e
	e.st.mu.RLock()
	f.subs = e.st.subs.AppendMatchStream(f.subs[:0], stream, group, item, hasItem)
	e.st.mu.RUnlock()
	for _, s := range f.subs {
		f.fire(s, env)
	}
	if e.streams != nil {
		e.streams.publish(stream, group, item, hasItem, env)
	}
}

func (f *fanout) stateEvent(rec *log.Record, ch projections.StateChange) {
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
	e := f.e
	e.st.mu.RLock()
	f.subs = e.st.subs.AppendMatchState(f.subs[:0], rec.Scope, rec.Key)
	e.st.mu.RUnlock()
	for _, s := range f.subs {
		f.fire(s, b)
	}
}

// fire delivers one event to one trigger's function.
func (f *fanout) fire(s projections.Sub, payload json.RawMessage) {
	if s.Condition == "" {
		t, ok := f.e.lookup(s.Function)
		if ok && t.owner != nil {
			// Firings are not tracked: their results are dropped like any
			// result nobody waits for.
			t.owner.send(wire.AppendInvokeFunction(nil, &wire.Invoke{
				InvocationID: newInvocationID(),
				FunctionID:   t.owner.localID(s.Function),
				Data:         payload,
				Metadata:     nonNull(s.Metadata),
			}))
			return
		}
		if !ok {
			f.e.logger.Debug("trigger function not found", "trigger_id", s.TriggerID, "function_id", s.Function)
			return
		}
	}
	f.enqueue(s, payload)
}

// enqueue hands a delivery to the trigger's own FIFO goroutine.
func (f *fanout) enqueue(s projections.Sub, payload json.RawMessage) {
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
	case q.ch <- delivery{sub: s, payload: payload}:
	default:
		// The trigger's owner cannot keep up: disconnect it rather than drop
		// events silently (Decision 7).
		f.e.logger.Error("slow consumer: trigger queue full", "trigger_id", s.TriggerID, "worker_id", s.Worker)
		if w := f.e.session(s.Worker); w != nil {
			w.conn.Close(1008, "slow consumer: trigger "+s.TriggerID+" has "+strconv.Itoa(triggerQueueLen)+" undelivered events")
		}
	}
}

func (f *fanout) run(q *triggerQueue) {
	for d := range q.ch {
		e := f.e
		if d.sub.Condition != "" {
			o := e.call(d.sub.Condition, d.payload, nil)
			if o.failed() {
				e.logger.Debug("condition failed", "trigger_id", d.sub.TriggerID, "err", o.errorMessage())
				continue
			}
			if o.hasResult && string(o.result) == "false" {
				continue
			}
		}
		if o := e.call(d.sub.Function, d.payload, nonNull(d.sub.Metadata)); o.failed() {
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

// functionsChanged fires engine::functions-available triggers.
func (f *fanout) functionsChanged() {
	f.fireEngineType("engine::functions-available", func() json.RawMessage {
		o := f.e.fnFunctionsList(&builtinCall{e: f.e})
		var list struct {
			Functions json.RawMessage `json:"functions"`
		}
		json.Unmarshal(o.result, &list)
		b, _ := json.Marshal(map[string]any{"event": "functions_changed", "functions": list.Functions})
		return b
	})
}

func (f *fanout) fireEngineType(typ string, payload func() json.RawMessage) {
	e := f.e
	e.st.mu.RLock()
	ts := e.st.registry.TriggersOfType(typ)
	e.st.mu.RUnlock()
	if len(ts) == 0 {
		return
	}
	p := payload()
	for _, t := range ts {
		f.enqueue(projections.Sub{TriggerID: t.ID, Function: t.Function, Worker: t.Worker, Metadata: t.Metadata}, p)
	}
}
