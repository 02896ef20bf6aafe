package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/iii-go/iii/wire"
)

// Error codes the engine itself produces (docs/wire-protocol.md#error-codes).
const (
	codeInvalidMessage    = "invalid_message"
	codeFunctionNotFound  = "function_not_found"
	codeForbidden         = "FORBIDDEN"
	codeAuthError         = "AUTH_ERROR"
	codeTimeout           = "timeout"
	codeInvocationStopped = "invocation_stopped"
	codeEnqueueError      = "enqueue_error"
	codeDeserialization   = "deserialization_error"
	codeNotFound          = "NOT_FOUND"
	codeInvalidArguments  = "INVALID_ARGUMENTS"
	codeTriggerRegFailed  = "trigger_registration_failed"
	codeUnregisterFailed  = "unregister_failed"
	codeInternal          = "internal_error"
)

// callError is an ErrorBody the engine writes itself.
type callError struct {
	Code    string
	Message string
}

func (e *callError) body() json.RawMessage { return wire.AppendErrorBody(nil, e.Code, e.Message) }

// callOutcome is how a call ended: a result (possibly absent), an error body
// relayed verbatim from a worker, or an error the engine made.
type callOutcome struct {
	result    json.RawMessage
	hasResult bool
	errRaw    json.RawMessage
	err       *callError
	// pooled is result's buffer when it came from wire.GetFrame: answering
	// a caller (answerBuiltin) copies the result into the reply and returns
	// the buffer; an outcome that goes elsewhere leaves it to the collector.
	pooled *[]byte
}

func (o callOutcome) failed() bool { return o.err != nil || o.errRaw != nil }

// errorBody returns the outcome's ErrorBody JSON, or nil on success.
func (o callOutcome) errorBody() json.RawMessage {
	if o.err != nil {
		return o.err.body()
	}
	return o.errRaw
}

// errorMessage returns a readable description of a failed outcome.
func (o callOutcome) errorMessage() string {
	if o.err != nil {
		return o.err.Message
	}
	var b struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(o.errRaw, &b) == nil && b.Message != "" {
		return b.Message
	}
	return string(o.errRaw)
}

func resultOf(raw json.RawMessage) callOutcome { return callOutcome{result: raw, hasResult: true} }

func failure(code, msg string) callOutcome {
	return callOutcome{err: &callError{Code: code, Message: msg}}
}

// call is one invocation in flight on a worker connection, seen from the
// engine: who to answer when the worker replies.
type call struct {
	caller       *session         // connection that asked; nil for engine-originated calls
	callerID     string           // the caller's invocation id, echoed byte for byte
	callerFn     string           // the function id as the caller named it
	traceparent  string           // echoed on the reply
	baggage      string           // echoed on the reply
	done         chan callOutcome // engine-originated calls wait here (buffered)
	quietFailure bool             // trigger firings: failures are only logged at debug
}

// finish delivers the outcome to whoever is waiting.
func (c *call) finish(o callOutcome) {
	switch {
	case c.done != nil:
		c.done <- o
	case c.caller != nil:
		c.caller.pending.Add(-1)
		c.caller.reply(c.callerID, c.callerFn, o, c.traceparent, c.baggage)
	}
}

// reply sends an invocationresult for one of this connection's calls.
func (s *session) reply(invocationID, functionID string, o callOutcome, traceparent, baggage string) {
	r := wire.Result{
		InvocationID: invocationID,
		FunctionID:   functionID,
		Result:       o.result,
		HasResult:    o.hasResult,
		Error:        o.errorBody(),
		Traceparent:  traceparent,
		Baggage:      baggage,
	}
	p := wire.GetFrame()
	*p = wire.AppendInvocationResult(*p, &r)
	s.sent(s.conn.SendFrame(p))
}

// target is where a function id leads: an engine built-in, a worker on
// this engine, or (in a cluster) a worker on another node.
type target struct {
	builtin    *builtin
	owner      *session
	remote     string // the node whose worker owns the function
	id         string
	invocation json.RawMessage // an HTTP-invoked function's endpoint (httpfn.go)
}

// lookup resolves a function id against the registry projection.
func (e *Engine) lookup(functionID string) (target, bool) {
	e.view.mu.RLock()
	f, ok := e.view.Registry.Function(functionID)
	e.view.mu.RUnlock()
	if !ok {
		return target{}, false
	}
	if b := e.builtins[functionID]; b != nil && f.Worker == engineWorker {
		return target{builtin: b, id: functionID}, true
	}
	owner := e.session(f.Worker)
	if owner == nil {
		if w, ok := e.remoteWorker(f.Worker); ok {
			return target{remote: w.Node, id: functionID}, true
		}
		return target{}, false
	}
	t := target{owner: owner, id: functionID}
	if f.Invocation != nil && e.httpFns != nil {
		t.invocation = f.Invocation
	}
	return t, true
}

// invoke routes an invokefunction frame from a worker
// (docs/wire-protocol.md#routing).
func (s *session) invoke(m *wire.Message) {
	e := s.e
	fid := m.FunctionID
	wantsReply := m.HasInvocationID && m.Action != wire.ActionVoid
	replyID := m.InvocationID
	if !m.HasInvocationID {
		replyID = newInvocationID() // refusals are sent even for void calls, under a fresh id
	}
	if deny := s.denyInvoke(fid); deny != nil {
		s.reply(replyID, fid, callOutcome{err: deny}, m.Traceparent, m.Baggage)
		return
	}
	if mw := s.lis.cfg.MiddlewareFunctionID; mw != "" && !isEngineFunction(fid) {
		s.flushHeld() // what the call leads to comes after this connection's earlier writes
		s.viaMiddleware(mw, m, replyID)
		return
	}
	if m.Action == wire.ActionEnqueue {
		if e.queues == nil {
			s.reply(replyID, fid, failure(codeEnqueueError, "No queue provider is installed. Add the iii-queue module to use action enqueue."), m.Traceparent, m.Baggage)
			return
		}
		e.queues.enqueue(s, m, replyID)
		return
	}
	t, ok := e.lookup(fid)
	if !ok && e.node != nil {
		// Registered on another node a moment ago? Not found only once
		// this node has applied everything the stream holds.
		e.catchUp()
		t, ok = e.lookup(fid)
	}
	if !ok {
		s.reply(replyID, fid, failure(codeFunctionNotFound, "Function "+fid+" not found"), m.Traceparent, m.Baggage)
		return
	}
	if t.builtin != nil {
		s.invokeBuiltin(t.builtin, m, wantsReply)
		return
	}
	s.flushHeld() // what the call leads to comes after this connection's earlier writes
	data := m.Data
	if isObject(data) {
		data = wire.AppendWithField(nil, data, "_caller_worker_id", s.id)
	}
	if t.remote != "" {
		s.invokeRemote(t.remote, m, data, wantsReply)
		return
	}
	if t.invocation != nil {
		data, fid, tp, bg, id := bytes.Clone(data), strings.Clone(fid), strings.Clone(m.Traceparent), strings.Clone(m.Baggage), strings.Clone(m.InvocationID)
		go func() {
			o := e.httpFns.call(context.Background(), fid, t.invocation, data)
			if wantsReply {
				s.reply(id, fid, o, tp, bg)
			}
		}()
		return
	}
	// Decoded strings live in the connection's decode buffer: the call keeps copies.
	c := &call{callerID: strings.Clone(m.InvocationID), callerFn: strings.Clone(fid), traceparent: strings.Clone(m.Traceparent), baggage: strings.Clone(m.Baggage)}
	if wantsReply {
		if !s.reserveCall(replyID, fid, m.Traceparent, m.Baggage, true) {
			return
		}
		c.caller = s
	} else {
		c.quietFailure = true
	}
	legID, ok := t.owner.track(c.callerID, c)
	if !ok {
		s.reply(replyID, fid, failure(codeInvocationStopped, "Invocation stopped"), m.Traceparent, m.Baggage)
		return
	}
	t.owner.send(wire.AppendInvokeFunction(nil, &wire.Invoke{
		InvocationID: legID,
		FunctionID:   t.owner.localID(fid),
		Data:         data,
		Metadata:     m.Metadata,
		Traceparent:  s.passedTraceparent(m.Traceparent),
		Baggage:      m.Baggage,
	}))
}

// invokeRemote carries a worker's call to the cluster node whose worker
// owns the function; the answer comes back as from a local worker.
func (s *session) invokeRemote(to string, m *wire.Message, data json.RawMessage, wantsReply bool) {
	e := s.e
	n := e.node
	fid, tp := m.FunctionID, s.passedTraceparent(m.Traceparent)
	if !wantsReply {
		n.send(to, callRequest{FunctionID: fid, Data: data, Metadata: m.Metadata, Traceparent: tp, Baggage: m.Baggage})
		return
	}
	if !s.reserveCall(m.InvocationID, fid, m.Traceparent, m.Baggage, true) {
		return
	}
	// The decode buffer is reused by the next frame: keep private copies.
	id, fid, tp, bg := strings.Clone(m.InvocationID), strings.Clone(fid), strings.Clone(tp), strings.Clone(m.Baggage)
	data, meta, echoTP := bytes.Clone(data), bytes.Clone(m.Metadata), strings.Clone(m.Traceparent)
	go func() {
		o := n.call(to, callRequest{FunctionID: fid, Data: data, Metadata: meta, Traceparent: tp, Baggage: bg}, e.cfg.Engine.CallTimeout)
		s.pending.Add(-1)
		s.reply(id, fid, o, echoTP, bg)
	}()
}

// passedTraceparent is the traceparent forwarded for this session's call:
// an untrusted session's copy of an engine mark is dropped, so it cannot
// pass its writes off as a trigger's own (see cause.go).
func (s *session) passedTraceparent(tp string) string {
	if s.grants != nil {
		if _, ours := parseCause(tp); ours {
			return ""
		}
	}
	return tp
}

// causeOf is the trigger firing a call from this session was made in; only
// trusted connections are believed.
func (s *session) causeOf(tp string) cause {
	if s.grants != nil {
		return cause{}
	}
	c, _ := parseCause(tp)
	return c
}

// invokeBuiltin runs an engine function for a worker. Functions that may
// wait (log appends, calls into workers) run on their own goroutine so one
// connection can keep many in flight, unless their start takes the call
// (a plain stream::set answers from the log's callback); cheap reads run
// inline.
func (s *session) invokeBuiltin(b *builtin, m *wire.Message, wantsReply bool) {
	in := builtinCall{e: s.e, caller: s, data: m.Data, metadata: m.Metadata, cause: s.causeOf(m.Traceparent)}
	id, fid, tp, bg := m.InvocationID, m.FunctionID, m.Traceparent, m.Baggage
	if b.inline && (!b.reads || s.e.node == nil) { // a cluster read may wait for the stream
		s.answerBuiltin(wantsReply, id, fid, tp, bg, b.run(&in))
		return
	}
	// Each call in flight is a goroutine and its payload: bounded per
	// connection like the calls it routes to workers, so a client that
	// pipelines writes without waiting cannot grow the engine without limit.
	if !s.reserveCall(id, fid, tp, bg, wantsReply) {
		return
	}
	// The decode buffer is reused by the next frame: keep private copies
	// (the function id is the built-in's own).
	id, fid, tp, bg = strings.Clone(id), b.id, strings.Clone(tp), strings.Clone(bg)
	done := func(o callOutcome) {
		s.answerBuiltin(wantsReply, id, fid, tp, bg, o)
		s.pending.Add(-1)
	}
	if b.start != nil && b.start(&in, done) {
		return
	}
	s.flushHeld() // its writes come after the ones this connection sent before
	in.data = bytes.Clone(in.data)
	in.metadata = bytes.Clone(in.metadata)
	go func() { done(b.run(&in)) }()
}

// reserveCall counts one more call of this connection waiting for its
// result against engine.max_pending_calls (the caller releases it with
// pending.Add(-1)). Over the limit it refuses the call, answering the
// caller when it wants a reply, and returns false.
func (s *session) reserveCall(replyID, fid, traceparent, baggage string, wantsReply bool) bool {
	max := s.e.cfg.Engine.MaxPendingCalls
	if s.pending.Add(1) <= int32(max) {
		return true
	}
	s.pending.Add(-1)
	msg := "this connection already has " + strconv.Itoa(max) + " calls waiting for a result (engine.max_pending_calls)"
	if wantsReply {
		s.reply(replyID, fid, failure(codeLimitExceeded, msg), traceparent, baggage)
	} else {
		s.e.logger.Debug("void call refused", "function_id", fid, "reason", msg)
	}
	return false
}

// answerBuiltin sends a built-in call's outcome, or for a void call logs a
// failure.
func (s *session) answerBuiltin(wantsReply bool, id, fid, tp, bg string, o callOutcome) {
	if wantsReply {
		s.reply(id, fid, o, tp, bg)
	} else if o.failed() {
		s.e.logger.Debug("void call failed", "function_id", fid, "err", o.errorMessage())
	}
	if o.pooled != nil {
		wire.PutFrame(o.pooled) // the reply holds a copy
	}
}

// result applies an invocationresult from a worker: the call it answers is
// finished; results for calls nobody waits for any more are dropped quietly.
func (s *session) result(m *wire.Message) {
	c := s.untrack(m.InvocationID)
	if c == nil {
		return
	}
	o := callOutcome{}
	if m.Error != nil && !isNull(m.Error) {
		o.errRaw = m.Error
	} else if m.Result != nil && !isNull(m.Result) {
		// A worker's "result": null reaches the caller as an absent result.
		o.result, o.hasResult = m.Result, true
	}
	if c.quietFailure && o.failed() {
		s.e.logger.Debug("call failed", "worker_id", s.id, "err", o.errorMessage())
	}
	if c.done != nil {
		// The waiter reads the outcome after this frame's buffer is reused.
		o.errRaw, o.result = bytes.Clone(o.errRaw), bytes.Clone(o.result)
	}
	c.finish(o)
}

// call invokes a function on behalf of the engine itself (auth, hooks,
// middleware, condition functions, custom stream implementations) and waits
// for the outcome, at most the engine call timeout.
func (e *Engine) call(functionID string, data, metadata json.RawMessage) callOutcome {
	return e.callTraced(functionID, data, metadata, "")
}

// callTraced is call with a traceparent on the invocation (trigger firings
// mark their calls with one, see cause.go).
func (e *Engine) callTraced(functionID string, data, metadata json.RawMessage, traceparent string) callOutcome {
	return e.callWithin(functionID, data, metadata, traceparent, e.cfg.Engine.CallTimeout)
}

// callWithin is callTraced with its own timeout (the auth function's).
func (e *Engine) callWithin(functionID string, data, metadata json.RawMessage, traceparent string, timeout time.Duration) callOutcome {
	t, ok := e.lookup(functionID)
	if !ok {
		return failure(codeFunctionNotFound, "Function "+functionID+" not found")
	}
	if t.remote != "" {
		return e.node.call(t.remote, callRequest{FunctionID: functionID, Data: data, Metadata: metadata, Traceparent: traceparent}, timeout)
	}
	return e.callTarget(t, functionID, data, metadata, traceparent, "", timeout)
}

// callTarget is callWithin for a function found on this engine; baggage
// goes to the worker with the call (a call relayed from another node).
func (e *Engine) callTarget(t target, functionID string, data, metadata json.RawMessage, traceparent, baggage string, timeout time.Duration) callOutcome {
	if t.builtin != nil {
		c, _ := parseCause(traceparent)
		return t.builtin.run(&builtinCall{e: e, data: data, metadata: metadata, cause: c})
	}
	if t.invocation != nil {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return e.httpFns.call(ctx, functionID, t.invocation, data)
	}
	c := &call{done: make(chan callOutcome, 1)}
	legID, ok := t.owner.track("", c)
	if !ok {
		return failure(codeInvocationStopped, "Invocation stopped")
	}
	t.owner.send(wire.AppendInvokeFunction(nil, &wire.Invoke{
		InvocationID: legID,
		FunctionID:   t.owner.localID(functionID),
		Data:         data,
		Metadata:     metadata,
		Traceparent:  traceparent,
		Baggage:      baggage,
	}))
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case o := <-c.done:
		return o
	case <-timer.C:
		if t.owner.untrack(legID) == nil {
			return <-c.done // the answer raced the timer
		}
		return failure(codeTimeout, functionID+" did not answer within "+formatMillis(timeout))
	}
}

func formatMillis(d time.Duration) string {
	return itoa(d.Milliseconds()) + " ms"
}

func isEngineFunction(id string) bool { return len(id) >= 8 && id[:8] == "engine::" }

// isObject reports whether raw JSON is an object.
func isObject(raw json.RawMessage) bool {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

// isNull reports whether raw JSON is the literal null.
func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}
