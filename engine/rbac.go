package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/iii-go/iii/engine/config"
	"github.com/iii-go/iii/wire"
)

// grants is what an RBAC listener's auth function allowed one session
// (docs/wire-protocol.md#auth-result).
type grants struct {
	rbac                *config.RBAC
	allowed             map[string]bool
	forbidden           map[string]bool
	triggerTypes        map[string]bool // nil: any type
	allowTriggerTypeReg bool
	allowFunctionReg    bool
	context             json.RawMessage
	prefix              string
	hasPrefix           bool
}

// authResult is the AuthResult shape; pointers tell omitted from given.
type authResult struct {
	AllowedFunctions             []string        `json:"allowed_functions"`
	ForbiddenFunctions           []string        `json:"forbidden_functions"`
	AllowedTriggerTypes          *[]string       `json:"allowed_trigger_types"`
	AllowTriggerTypeRegistration *bool           `json:"allow_trigger_type_registration"`
	AllowFunctionRegistration    *bool           `json:"allow_function_registration"`
	Context                      json.RawMessage `json:"context"`
	FunctionRegistrationPrefix   *string         `json:"function_registration_prefix"`
}

// authenticate builds a session's grants on an RBAC listener, calling the
// auth function when one is configured.
func (e *Engine) authenticate(lc *config.Listener, c *wire.Conn) (*grants, *callError) {
	r := lc.RBAC
	g := &grants{rbac: r, allowTriggerTypeReg: true, allowFunctionReg: true, context: json.RawMessage(`{}`)}
	if r.AuthFunctionID == "" {
		return g, nil
	}
	input, _ := json.Marshal(map[string]any{
		"headers":      lowerHeaders(c.Header()),
		"query_params": decodeQuery(c.RawQuery()),
		"ip_address":   c.RemoteIP(),
	})
	o := e.callWithin(r.AuthFunctionID, input, nil, "", min(e.cfg.Engine.AuthTimeout, e.cfg.Engine.CallTimeout))
	if o.failed() {
		msg := o.errorMessage()
		if o.err != nil && o.err.Code == codeTimeout {
			msg = "auth function " + o.err.Message
		}
		return nil, &callError{Code: codeAuthError, Message: msg}
	}
	if !o.hasResult || isNull(o.result) {
		return nil, &callError{Code: codeAuthError, Message: "auth function returned no result"}
	}
	if !isObject(o.result) {
		return nil, &callError{Code: codeAuthError, Message: "auth function returned " + jsonKind(o.result) + ", not an AuthResult object"}
	}
	var ar authResult
	if err := json.Unmarshal(o.result, &ar); err != nil {
		msg := "auth function result is not an AuthResult"
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			msg += ": " + te.Field + " must not be " + te.Value
		}
		return nil, &callError{Code: codeAuthError, Message: msg}
	}
	g.allowed = setOf(ar.AllowedFunctions)
	g.forbidden = setOf(ar.ForbiddenFunctions)
	if ar.AllowedTriggerTypes != nil {
		g.triggerTypes = setOf(*ar.AllowedTriggerTypes)
	}
	g.allowTriggerTypeReg = ar.AllowTriggerTypeRegistration != nil && *ar.AllowTriggerTypeRegistration
	g.allowFunctionReg = ar.AllowFunctionRegistration == nil || *ar.AllowFunctionRegistration
	if ar.Context != nil {
		g.context = ar.Context
	}
	if ar.FunctionRegistrationPrefix != nil {
		g.prefix, g.hasPrefix = *ar.FunctionRegistrationPrefix, true
	}
	return g, nil
}

func setOf(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// lowerHeaders flattens upgrade headers the way auth functions see them:
// lower-case names, last value wins, non-printable values dropped.
func lowerHeaders(h map[string][]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, vs := range h {
		for _, v := range vs {
			if printable(v) {
				out[strings.ToLower(k)] = v
			}
		}
	}
	return out
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 || c > 0x7e) && c != '\t' {
			return false
		}
	}
	return true
}

// decodeQuery splits a raw query string into per-key lists, percent-decoding
// keys and values like decodeURIComponent: '+' stays '+', and a malformed
// escape leaves the piece raw. Upstream passes them raw; decoded is what auth
// functions expect, and identical for plain tokens
// (docs/wire-protocol.md#auth-input).
func decodeQuery(raw string) map[string][]string {
	out := map[string][]string{}
	for _, piece := range strings.Split(raw, "&") {
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		if k == "" {
			continue
		}
		k, v = percentDecode(k), percentDecode(v)
		out[k] = append(out[k], v)
	}
	return out
}

func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	d, err := url.PathUnescape(s)
	if err != nil || !utf8.ValidString(d) {
		return s
	}
	return d
}

// infrastructure lists the ids every session may call
// (docs/wire-protocol.md#invocation-gating).
var infrastructure = map[string]bool{
	"engine::channels::create": true, "engine::workers::register": true,
	"engine::log::info": true, "engine::log::warn": true, "engine::log::error": true,
	"engine::log::debug": true, "engine::log::trace": true,
	"engine::baggage::get": true, "engine::baggage::set": true, "engine::baggage::get_all": true,
}

// denyInvoke decides whether this session may call a function; it returns
// the FORBIDDEN error, or nil when the call may proceed.
func (s *session) denyInvoke(functionID string) *callError {
	g := s.grants
	if g == nil {
		return nil
	}
	if g.forbidden[functionID] {
		return &callError{Code: codeForbidden, Message: fmt.Sprintf("function '%s' not allowed (remove from rbac.forbidden_functions)", functionID)}
	}
	if g.allowed[functionID] || infrastructure[functionID] || s.e.exposed(g.rbac, functionID) {
		return nil
	}
	return &callError{Code: codeForbidden, Message: fmt.Sprintf("function '%s' not allowed (add to rbac.expose_functions)", functionID)}
}

// mayCall is denyInvoke as a predicate, for filtering discovery results.
func (s *session) mayCall(functionID string) bool { return s.denyInvoke(functionID) == nil }

// exposed reports whether any expose_functions rule matches the function.
func (e *Engine) exposed(r *config.RBAC, functionID string) bool {
	if len(r.Expose) == 0 {
		return false
	}
	var meta json.RawMessage
	e.view.mu.RLock()
	if f, ok := e.view.Registry.Function(functionID); ok {
		meta = f.Metadata
	}
	e.view.mu.RUnlock()
	for _, rule := range r.Expose {
		if rule.Matches(functionID, meta) {
			return true
		}
	}
	return false
}

// viaMiddleware hands a call to the listener's middleware function, which
// decides and answers in place of the target (docs/wire-protocol.md#middleware).
func (s *session) viaMiddleware(mw string, m *wire.Message, replyID string) {
	var action []byte
	switch m.Action {
	case wire.ActionVoid:
		action = []byte(`{"type":"void"}`)
	case wire.ActionEnqueue:
		action = append(wire.AppendString([]byte(`{"type":"enqueue","queue":`), m.Queue), '}')
	}
	in := s.middlewareInput(m.FunctionID, m.Data, action)
	fid, tp, bg, meta := strings.Clone(m.FunctionID), strings.Clone(m.Traceparent), strings.Clone(m.Baggage), bytes.Clone(m.Metadata)
	go func() {
		o := s.e.call(mw, in, meta)
		if o.err != nil && o.err.Code == codeTimeout {
			o.err.Message = "middleware " + o.err.Message
		}
		s.reply(replyID, fid, o, tp, bg)
	}()
}

// middlewareInput is what a listener's middleware function receives for one
// call: the target, its payload, the action (nil: none) and the session's
// auth context.
func (s *session) middlewareInput(functionID string, payload json.RawMessage, action []byte) []byte {
	ctx := json.RawMessage(`{}`)
	if s.grants != nil {
		ctx = s.grants.context
	}
	var in bytes.Buffer
	in.WriteString(`{"function_id":`)
	in.Write(wire.AppendString(nil, functionID))
	in.WriteString(`,"payload":`)
	in.Write(rawOrNull(payload))
	in.WriteString(`,"action":`)
	in.Write(rawOrNull(action))
	in.WriteString(`,"context":`)
	in.Write(ctx)
	in.WriteByte('}')
	return in.Bytes()
}

// callAs makes a call on behalf of this session, with its rights: the same
// RBAC decision and middleware as its own invocations, except that calling
// a function the session registered itself is always allowed. Trigger
// firings for untrusted sessions go through here, so a trigger cannot reach
// what its owner could not call directly.
func (s *session) callAs(functionID string, data, metadata json.RawMessage, traceparent string) callOutcome {
	if !s.owns(functionID) {
		if deny := s.denyInvoke(functionID); deny != nil {
			return callOutcome{err: deny}
		}
	}
	if mw := s.lis.cfg.MiddlewareFunctionID; mw != "" && !isEngineFunction(functionID) {
		return s.e.callTraced(mw, s.middlewareInput(functionID, data, nil), metadata, traceparent)
	}
	return s.e.callTraced(functionID, data, metadata, traceparent)
}

// callerFor is how the engine calls functions for a trigger owned by
// worker: with the owner's rights when it is an untrusted session (on
// another cluster node, the call is made there, as that session), with the
// engine's otherwise.
func (e *Engine) callerFor(worker string) func(functionID string, data, metadata json.RawMessage, traceparent string) callOutcome {
	if s := e.session(worker); s != nil {
		if s.grants != nil {
			return s.callAs
		}
		return e.callTraced
	}
	if w, ok := e.remoteWorker(worker); ok && w.RBAC {
		return func(functionID string, data, metadata json.RawMessage, traceparent string) callOutcome {
			// Made there as the session, with its rights.
			return e.node.call(w.Node, callRequest{FunctionID: functionID, Data: data, Metadata: metadata, Traceparent: traceparent, As: worker},
				e.cfg.Engine.CallTimeout)
		}
	}
	return e.callTraced
}

// owns reports whether this session registered the function.
func (s *session) owns(functionID string) bool {
	s.e.view.mu.RLock()
	f, ok := s.e.view.Registry.Function(functionID)
	s.e.view.mu.RUnlock()
	return ok && f.Worker == s.id
}

func rawOrNull(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return json.RawMessage("null")
	}
	return raw
}

// hook calls a registration hook; only a JSON object result allows the
// registration (docs/wire-protocol.md#registration-hooks).
// what names the registration in the refusal message, e.g. registerfunction 'x'.
func (s *session) hook(what, fn string, input map[string]any) (map[string]json.RawMessage, *callError) {
	input["context"] = s.grants.context
	in, _ := json.Marshal(input)
	o := s.e.call(fn, in, nil)
	if o.failed() {
		return nil, &callError{Code: codeForbidden, Message: what + ": registration hook " + fn + " denied it: " + o.errorMessage()}
	}
	var out map[string]json.RawMessage
	if !o.hasResult || !isObject(o.result) || json.Unmarshal(o.result, &out) != nil {
		return nil, &callError{Code: codeForbidden, Message: what + ": registration hook " + fn + " denied it (it must return an object to allow)"}
	}
	return out, nil
}

// remapString replaces *dst with the hook's string value for key, if given.
func remapString(out map[string]json.RawMessage, key string, dst *string) {
	if raw, ok := out[key]; ok {
		var v string
		if json.Unmarshal(raw, &v) == nil {
			*dst = v
		}
	}
}

func (s *session) gateFunctionRegistration(id, desc string, meta json.RawMessage) (string, string, json.RawMessage, *callError) {
	g := s.grants
	if !g.allowFunctionReg {
		return "", "", nil, &callError{Code: codeForbidden, Message: "registerfunction '" + id + "': function registration is not allowed for this session"}
	}
	if fn := g.rbac.OnFunctionRegistration; fn != "" {
		out, deny := s.hook("registerfunction '"+id+"'", fn, map[string]any{"function_id": id, "description": desc, "metadata": rawOrNull(meta)})
		if deny != nil {
			return "", "", nil, deny
		}
		remapString(out, "function_id", &id)
		remapString(out, "description", &desc)
		if raw, ok := out["metadata"]; ok {
			meta = raw
		}
	}
	return id, desc, meta, nil
}

func (s *session) gateTriggerRegistration(tr *triggerSpec) *callError {
	g := s.grants
	if g.triggerTypes != nil && !g.triggerTypes[tr.typ] {
		return &callError{Code: codeForbidden, Message: "registertrigger '" + tr.id + "': trigger type '" + tr.typ + "' is not in allowed_trigger_types"}
	}
	if fn := g.rbac.OnTriggerRegistration; fn != "" {
		out, deny := s.hook("registertrigger '"+tr.id+"'", fn, map[string]any{"trigger_id": tr.id, "trigger_type": tr.typ, "function_id": tr.function,
			"config": rawOrNull(tr.config), "metadata": rawOrNull(tr.metadata)})
		if deny != nil {
			return deny
		}
		remapString(out, "trigger_id", &tr.id)
		remapString(out, "trigger_type", &tr.typ)
		remapString(out, "function_id", &tr.function)
		if raw, ok := out["config"]; ok {
			tr.config = raw
		}
	}
	return nil
}

func (s *session) gateTriggerTypeRegistration(id, desc string) (string, string, *callError) {
	g := s.grants
	if !g.allowTriggerTypeReg {
		return "", "", &callError{Code: codeForbidden, Message: "registertriggertype '" + id + "': trigger type registration is not allowed for this session"}
	}
	if fn := g.rbac.OnTriggerTypeRegistration; fn != "" {
		out, deny := s.hook("registertriggertype '"+id+"'", fn, map[string]any{"trigger_type_id": id, "description": desc})
		if deny != nil {
			return "", "", deny
		}
		remapString(out, "trigger_type_id", &id)
		remapString(out, "description", &desc)
	}
	return id, desc, nil
}

// jsonKind names the JSON type of a raw value, for error messages.
func jsonKind(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
