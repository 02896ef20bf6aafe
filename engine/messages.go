package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/iii-go/iii/log"
	"github.com/iii-go/iii/projections"
	"github.com/iii-go/iii/wire"
)

const engineWorker = log.EngineWorker

// handle applies one decoded frame. Registrations are applied inline, in
// arrival order, so a function exists before the trigger or call that names it.
func (s *session) handle(m *wire.Message) {
	switch m.Type {
	case wire.TypeInvokeFunction:
		s.invoke(m)
	case wire.TypeInvocationResult:
		s.result(m)
	case wire.TypeRegisterFunction:
		s.registerFunction(m)
	case wire.TypeUnregisterFunction:
		s.unregisterFunction(m)
	case wire.TypeRegisterTrigger:
		s.registerTrigger(m)
	case wire.TypeUnregisterTrigger:
		s.unregisterTrigger(m)
	case wire.TypeRegisterTriggerType:
		s.registerTriggerType(m)
	case wire.TypeUnregisterTriggerType:
		s.unregisterTriggerType(m)
	case wire.TypeTriggerRegistrationResult:
		s.providerResult(m)
	case wire.TypeReattach:
		s.reattach(m)
	case wire.TypePing:
		s.send(wire.AppendPong(nil))
	case wire.TypeRegisterService, wire.TypePong:
		// Services only group functions for display; pongs need no answer.
	default:
		s.sendError(codeInvalidMessage, "message type "+strconv.Quote(m.Type.String())+" is not accepted from a client")
	}
}

// badFrame answers a frame that did not decode, in the frame the client
// will connect to its request (docs/wire-protocol.md#bad-input).
func (s *session) badFrame(err error) {
	var de *wire.DecodeError
	if !errors.As(err, &de) {
		s.sendError(codeInvalidMessage, err.Error())
		return
	}
	body := wire.AppendErrorBody(nil, de.Code, de.Message)
	switch {
	case de.Type == wire.TypeInvokeFunction && de.HasInvocationID:
		s.send(wire.AppendInvocationResult(nil, &wire.Result{InvocationID: de.InvocationID, FunctionID: s.msg.FunctionID, Error: body}))
	case de.Type == wire.TypeRegisterTrigger && de.HasID:
		s.send(wire.AppendTriggerRegistrationResult(nil, de.ID, s.msg.TriggerType, s.msg.FunctionID, body))
	case de.Type == wire.TypeInvocationResult && de.HasInvocationID:
		// The caller would otherwise wait for an answer that never comes.
		if c := s.untrack(de.InvocationID); c != nil {
			c.finish(failure(de.Code, "the worker's result was refused: "+de.Message))
		}
		s.send(wire.AppendErrorFrame(nil, de.Code, de.Message))
	default:
		s.send(wire.AppendErrorFrame(nil, de.Code, de.Message))
	}
}

func (s *session) sendError(code, msg string) {
	s.send(wire.AppendErrorFrame(nil, code, msg))
}

// append writes one record and reports whether it was accepted; a log
// failure is reported to the client (the fact was not accepted) and logged.
func (s *session) append(rec *log.Record) bool {
	if _, err := s.e.log.Append(rec); err != nil {
		s.e.logger.Error("log append failed", "kind", rec.Kind.String(), "worker_id", s.id, "err", err)
		s.sendError(codeInternal, rec.Kind.String()+" was not recorded: "+err.Error())
		return false
	}
	return true
}

func (s *session) registerFunction(m *wire.Message) {
	e := s.e
	id, desc, meta := m.ID, m.Description, json.RawMessage(bytes.Clone(m.Metadata))
	if s.grants != nil {
		var deny *callError
		id, desc, meta, deny = s.gateFunctionRegistration(id, desc, meta)
		if deny != nil {
			e.logger.Info("function registration refused", "worker_id", s.id, "function_id", m.ID, "reason", deny.Message)
			s.sendError(deny.Code, deny.Message)
			return
		}
	}
	full := strings.Clone(s.qualify(id)) // the record outlives the decode buffer
	what := "registerfunction " + strconv.Quote(full)
	deny := s.reservedID(what, full)
	if deny == nil {
		deny = s.checkRegistration(what, "f:"+full, id, map[string][]byte{"description": []byte(desc), "metadata": meta,
			"request_format": m.RequestFormat, "response_format": m.ResponseFormat, "invocation": m.Invocation})
	}
	if deny == nil && m.Invocation != nil && !isNull(m.Invocation) {
		if e.httpFns == nil {
			deny = &callError{Code: "http_functions_not_loaded", Message: what + ": an HTTP-invoked function (invocation) needs the iii-http-functions module in the config"}
		} else if err := e.httpFns.check(m.Invocation); err != nil {
			deny = &callError{Code: err.Code, Message: what + ": " + err.Message}
		}
	}
	if deny != nil {
		e.logger.Info("function registration refused", "worker_id", s.id, "function_id", full, "reason", deny.Message)
		s.sendError(deny.Code, deny.Message)
		return
	}
	e.view.mu.RLock()
	prev, exists := e.view.Registry.Function(full)
	e.view.mu.RUnlock()
	if exists && prev.Worker != s.id {
		switch {
		case prev.Worker == engineWorker:
			s.sendError(codeForbidden, "registerfunction "+strconv.Quote(full)+": id belongs to a function the engine provides")
			return
		case s.grants != nil:
			// An untrusted session never takes over another connection's function
			// (on trusted listeners the newest registration wins, as upstream:
			// 0.11.x clients re-register after a half-open reconnect).
			s.sendError(codeForbidden, "registerfunction "+strconv.Quote(full)+": id is owned by another connection")
			return
		default:
			e.logger.Warn("function taken over by a newer registration", "function_id", full, "from", prev.Worker, "to", s.id)
		}
	}
	var v bytes.Buffer
	v.WriteString(`{"description":`)
	v.Write(wire.AppendString(nil, desc))
	writeRawField(&v, "metadata", meta)
	writeRawField(&v, "request_format", m.RequestFormat)
	writeRawField(&v, "response_format", m.ResponseFormat)
	writeRawField(&v, "invocation", m.Invocation)
	v.WriteByte('}')
	if s.append(&log.Record{Kind: log.KindFunctionRegistered, Worker: s.id, Function: full, Value: v.Bytes()}) {
		if s.grants != nil {
			s.held.add("f:" + full)
		}
	}
}

func writeRawField(b *bytes.Buffer, key string, raw json.RawMessage) {
	if raw == nil || isNull(raw) {
		return
	}
	b.WriteString(`,"` + key + `":`)
	b.Write(raw)
}

func (s *session) unregisterFunction(m *wire.Message) {
	e := s.e
	full := strings.Clone(s.qualify(m.ID))
	e.view.mu.RLock()
	f, ok := e.view.Registry.Function(full)
	e.view.mu.RUnlock()
	if !ok || f.Worker != s.id {
		return // only the owner can remove it; anything else is a silent no-op
	}
	if s.append(&log.Record{Kind: log.KindFunctionUnregistered, Worker: s.id, Function: full}) {
		s.held.remove("f:" + full)
	}
}

// triggerRefused answers a registertrigger with a failure result.
func (s *session) triggerRefused(m *wire.Message, functionID, code, msg string) {
	s.send(wire.AppendTriggerRegistrationResult(nil, m.ID, m.TriggerType, functionID, wire.AppendErrorBody(nil, code, msg)))
}

func (s *session) registerTrigger(m *wire.Message) {
	e := s.e
	tr := triggerSpec{id: strings.Clone(m.ID), typ: strings.Clone(m.TriggerType), function: strings.Clone(m.FunctionID),
		config: bytes.Clone(m.Config), metadata: bytes.Clone(m.Metadata)}
	if s.grants != nil {
		if deny := s.gateTriggerRegistration(&tr); deny != nil {
			s.triggerRefused(m, s.qualify(m.FunctionID), deny.Code, deny.Message)
			return
		}
	}
	tr.function = s.qualify(tr.function)
	if s.grants != nil {
		deny := s.checkRegistration("registertrigger "+strconv.Quote(tr.id), "t:"+tr.id, tr.id, map[string][]byte{"config": tr.config, "metadata": tr.metadata})
		if deny == nil {
			deny = s.resolveTrigger(&tr)
		}
		if deny != nil {
			e.logger.Info("trigger registration refused", "worker_id", s.id, "trigger_id", tr.id, "reason", deny.Message)
			s.triggerRefused(m, tr.function, deny.Code, deny.Message)
			return
		}
	}
	e.view.mu.RLock()
	prev, exists := e.view.Registry.Trigger(tr.id)
	e.view.mu.RUnlock()
	if exists && prev.Worker != s.id && s.grants != nil {
		// An untrusted session's trigger ids are its own: it can neither
		// replace nor remove another connection's trigger.
		s.triggerRefused(m, tr.function, codeForbidden, "registertrigger "+strconv.Quote(tr.id)+": id is owned by another connection")
		return
	}
	if msg := e.validateTriggerConfig(tr.typ, tr.config); msg != "" {
		s.triggerRefused(m, tr.function, codeTriggerRegFailed, msg)
		return
	}
	if !s.append(&log.Record{Kind: log.KindTriggerRegistered, Worker: s.id, Trigger: tr.id, TriggerType: tr.typ, Function: tr.function, Value: tr.config, Meta: tr.metadata}) {
		return
	}
	if s.grants != nil {
		s.held.add("t:" + tr.id)
	}
	e.forwardTrigger(tr.typ, tr.id, tr.function, tr.config, tr.metadata)
}

// functionRefKeys are the trigger config keys, in any trigger type, that
// name a function the engine calls when the trigger fires.
var functionRefKeys = []string{"condition_function_id"}

// functionListKeys are trigger config keys holding lists of such ids.
var functionListKeys = []string{"middleware_function_ids"}

// resolveTrigger puts every function id an untrusted session's trigger
// names under the session's prefix, as function_id already is, and refuses
// one that names another connection's function the session may not call.
// Firings then run with the session's rights (session.callAs).
func (s *session) resolveTrigger(tr *triggerSpec) *callError {
	what := "registertrigger " + strconv.Quote(tr.id)
	if deny := s.denyBind(what, "function_id", tr.function); deny != nil {
		return deny
	}
	if !isObject(tr.config) {
		return nil
	}
	var cfg map[string]json.RawMessage
	if json.Unmarshal(tr.config, &cfg) != nil {
		return nil // validateTriggerConfig reports what is wrong with it
	}
	changed := false
	resolve := func(key string, raw json.RawMessage) (json.RawMessage, *callError) {
		var id string
		if json.Unmarshal(raw, &id) != nil {
			return raw, nil // not an id; the type's own validation decides
		}
		full := s.qualify(id)
		if deny := s.denyBind(what, key, full); deny != nil {
			return nil, deny
		}
		if full != id {
			changed = true
			return wire.AppendString(nil, full), nil
		}
		return raw, nil
	}
	for _, key := range functionRefKeys {
		if raw, ok := cfg[key]; ok && !isNull(raw) {
			v, deny := resolve(key, raw)
			if deny != nil {
				return deny
			}
			cfg[key] = v
		}
	}
	for _, key := range functionListKeys {
		var list []json.RawMessage
		if raw, ok := cfg[key]; !ok || json.Unmarshal(raw, &list) != nil {
			continue
		}
		for i, raw := range list {
			v, deny := resolve(key, raw)
			if deny != nil {
				return deny
			}
			list[i] = v
		}
		cfg[key], _ = json.Marshal(list)
	}
	if changed {
		tr.config, _ = json.Marshal(cfg)
	}
	return nil
}

// denyBind refuses a trigger that names (under key) a function owned by
// another connection which this session may not call. Functions not
// registered yet pass: every firing is checked again (session.callAs).
func (s *session) denyBind(what, key, functionID string) *callError {
	s.e.view.mu.RLock()
	f, ok := s.e.view.Registry.Function(functionID)
	s.e.view.mu.RUnlock()
	if !ok || f.Worker == s.id || s.denyInvoke(functionID) == nil {
		return nil
	}
	return &callError{Code: codeForbidden, Message: what + ": " + key + " '" + functionID + "' names a function this session may not call"}
}

// triggerSpec is a trigger registration on its way in, after RBAC hooks may
// have rewritten it.
type triggerSpec struct {
	id, typ, function string
	config, metadata  json.RawMessage
}

// validateTriggerConfig checks the config of a trigger type the engine
// provides; it returns the refusal message, or "" when the config is usable.
func (e *Engine) validateTriggerConfig(typ string, config json.RawMessage) string {
	var err error
	switch typ {
	case "stream":
		_, err = projections.ParseStreamTriggerConfig(config)
	case "state":
		_, err = projections.ParseStateTriggerConfig(config)
	case "http":
		if e.http != nil {
			return validateHTTPTrigger(config)
		}
	case "cron":
		if e.cron != nil {
			return validateCronTrigger(config)
		}
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// forwardTrigger tells a worker that provides a trigger type about a new
// trigger of that type. Without a provider the trigger simply waits
// (pending) until one registers the type.
func (e *Engine) forwardTrigger(typ, id, function string, config, metadata json.RawMessage) {
	p := e.provider(typ)
	if p == nil {
		return
	}
	p.send(wire.AppendRegisterTrigger(nil, id, typ, function, config, metadata))
}

// provider returns the live worker that provides a trigger type, or nil for
// engine-provided and unprovided types.
func (e *Engine) provider(typ string) *session {
	e.view.mu.RLock()
	tt, ok := e.view.Registry.TriggerType(typ)
	e.view.mu.RUnlock()
	if !ok || tt.Worker == engineWorker {
		return nil
	}
	return e.session(tt.Worker)
}

func (s *session) unregisterTrigger(m *wire.Message) {
	e := s.e
	e.view.mu.RLock()
	t, ok := e.view.Registry.Trigger(m.ID)
	e.view.mu.RUnlock()
	if !ok || (s.grants != nil && t.Worker != s.id) {
		return // unknown ids (and, on RBAC listeners, other connections' ids) are a silent no-op
	}
	if !s.append(&log.Record{Kind: log.KindTriggerUnregistered, Worker: s.id, Trigger: t.ID, TriggerType: t.Type}) {
		return
	}
	s.held.remove("t:" + t.ID)
	if p := e.provider(t.Type); p != nil {
		p.send(wire.AppendUnregisterTrigger(nil, t.ID, t.Type))
	}
}

func (s *session) registerTriggerType(m *wire.Message) {
	e := s.e
	id, desc := strings.Clone(m.ID), m.Description
	if s.grants != nil {
		var deny *callError
		id, desc, deny = s.gateTriggerTypeRegistration(id, desc)
		if deny != nil {
			s.sendError(deny.Code, deny.Message)
			return
		}
	}
	if _, builtin := e.builtinTypes[id]; builtin {
		s.sendError(codeForbidden, "registertriggertype "+strconv.Quote(id)+": the engine provides this trigger type itself")
		return
	}
	if deny := s.checkRegistration("registertriggertype "+strconv.Quote(id), "y:"+id, id, map[string][]byte{"description": []byte(desc),
		"trigger_request_format": m.TriggerRequestFormat, "call_request_format": m.CallRequestFormat}); deny != nil {
		s.sendError(deny.Code, deny.Message)
		return
	}
	var v bytes.Buffer
	v.WriteString(`{"description":`)
	v.Write(wire.AppendString(nil, desc))
	writeRawField(&v, "trigger_request_format", m.TriggerRequestFormat)
	writeRawField(&v, "call_request_format", m.CallRequestFormat)
	v.WriteByte('}')
	if !s.append(&log.Record{Kind: log.KindTriggerTypeRegistered, Worker: s.id, TriggerType: id, Value: v.Bytes()}) {
		return
	}
	if s.grants != nil {
		s.held.add("y:" + id)
	}
	// Every live and pending trigger of the type goes to the new provider.
	e.view.mu.RLock()
	ts := e.view.Registry.TriggersOfType(id)
	e.view.mu.RUnlock()
	for _, t := range ts {
		s.send(wire.AppendRegisterTrigger(nil, t.ID, t.Type, t.Function, t.Config, t.Metadata))
	}
}

func (s *session) unregisterTriggerType(m *wire.Message) {
	e := s.e
	e.view.mu.RLock()
	tt, ok := e.view.Registry.TriggerType(m.ID)
	e.view.mu.RUnlock()
	if !ok || tt.Worker != s.id {
		return
	}
	if s.append(&log.Record{Kind: log.KindTriggerTypeUnregistered, Worker: s.id, TriggerType: tt.ID}) {
		s.held.remove("y:" + tt.ID)
	}
}

// providerResult handles a provider's answer to a forwarded registertrigger:
// a failure goes back to the connection that registered the trigger.
func (s *session) providerResult(m *wire.Message) {
	if m.Error == nil || isNull(m.Error) {
		return
	}
	e := s.e
	if e.provider(m.TriggerType) != s {
		return // only the current provider of the type may answer
	}
	e.view.mu.RLock()
	t, ok := e.view.Registry.Trigger(m.ID)
	e.view.mu.RUnlock()
	if !ok {
		return
	}
	frame := wire.AppendTriggerRegistrationResult(nil, m.ID, m.TriggerType, t.Function, bytes.Clone(m.Error))
	if owner := e.session(t.Worker); owner != nil {
		owner.send(frame)
	} else if e.node != nil {
		e.node.tell(t.Worker, frame) // the registrant is on another node
	}
}

// unregisterProvided tells providers that the triggers a closing connection
// owned are gone. The registry itself forgets them on worker.disconnected.
func (e *Engine) unregisterProvided(s *session) {
	e.view.mu.RLock()
	ts := e.view.Registry.TriggersOf(s.id)
	e.view.mu.RUnlock()
	for _, t := range ts {
		if p := e.provider(t.Type); p != nil && p != s {
			p.send(wire.AppendUnregisterTrigger(nil, t.ID, t.Type))
		}
	}
}

// reattach retires the connection a reconnecting client had before, so its
// replay does not collide with its own stale registrations.
func (s *session) reattach(m *wire.Message) {
	e := s.e
	old := e.session(m.PreviousWorkerID)
	if old == nil || old == s || old.token != m.ReattachToken {
		return
	}
	old.conn.Close(1000, "replaced by reattach")
	old.retire("retired by reattach")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
