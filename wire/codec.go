package wire

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unsafe"
)

// JSON decoding approach, chosen by measurement. BenchmarkDecode* in
// codec_bench_test.go (go test -bench Decode -benchmem), median of 3 runs in one
// session on the 2-core amd64 dev machine, Go 1.26; ns/op and allocs/op:
//
//	frame                                   scanner   encoding/json   goccy/go-json   sonic
//	invokefunction (relay shape, 240 B)     215  0    3157  12        1153  6         1075  5
//	invocationresult (12 items, 1.15 KB)    803  0    11461 12        4911  6         7097  5
//	registertrigger (stray field, 213 B)    239  0    3438  13        1261  8         1290  6
//	escapes and unicode (189 B)             354  0    6142  15        812   8         927   8
//
// The hand-written single-pass scanner is 14-17x faster than encoding/json and
// 2-9x faster than goccy/go-json v0.12.0 or sonic v1.15.5 (both decoding into the
// same struct, measured in a scratch module so neither became a dependency). It
// walks the top-level object once, validates every value it skips (so raw fields
// are always valid JSON), unescapes only the string fields it keeps, and
// allocates nothing in steady state: the frame is copied into the Message's
// arena and every field is a view into it. The libraries need one allocation per
// string and raw field and cannot give the field-naming errors the engine
// answers bad input with (docs/wire-protocol.md#bad-input).

// Type is a protocol message type (the "type" field).
type Type uint8

// The message types of the worker protocol (docs/wire-protocol.md#messages).
const (
	TypeInvalid Type = iota
	TypeRegisterFunction
	TypeUnregisterFunction
	TypeRegisterTrigger
	TypeUnregisterTrigger
	TypeRegisterTriggerType
	TypeUnregisterTriggerType
	TypeTriggerRegistrationResult
	TypeInvokeFunction
	TypeInvocationResult
	TypeRegisterService
	TypeReattach
	TypePing
	TypePong
	TypeWorkerRegistered
	TypeError
)

var typeNames = [...]string{
	TypeInvalid:                   "",
	TypeRegisterFunction:          "registerfunction",
	TypeUnregisterFunction:        "unregisterfunction",
	TypeRegisterTrigger:           "registertrigger",
	TypeUnregisterTrigger:         "unregistertrigger",
	TypeRegisterTriggerType:       "registertriggertype",
	TypeUnregisterTriggerType:     "unregistertriggertype",
	TypeTriggerRegistrationResult: "triggerregistrationresult",
	TypeInvokeFunction:            "invokefunction",
	TypeInvocationResult:          "invocationresult",
	TypeRegisterService:           "registerservice",
	TypeReattach:                  "reattach",
	TypePing:                      "ping",
	TypePong:                      "pong",
	TypeWorkerRegistered:          "workerregistered",
	TypeError:                     "error",
}

// String returns the wire name ("invokefunction"), or "" for TypeInvalid.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return ""
}

func lookupType(s string) Type {
	switch s {
	case "registerfunction":
		return TypeRegisterFunction
	case "unregisterfunction":
		return TypeUnregisterFunction
	case "registertrigger":
		return TypeRegisterTrigger
	case "unregistertrigger":
		return TypeUnregisterTrigger
	case "registertriggertype":
		return TypeRegisterTriggerType
	case "unregistertriggertype":
		return TypeUnregisterTriggerType
	case "triggerregistrationresult":
		return TypeTriggerRegistrationResult
	case "invokefunction":
		return TypeInvokeFunction
	case "invocationresult":
		return TypeInvocationResult
	case "registerservice":
		return TypeRegisterService
	case "reattach":
		return TypeReattach
	case "ping":
		return TypePing
	case "pong":
		return TypePong
	case "workerregistered":
		return TypeWorkerRegistered
	case "error":
		return TypeError
	}
	return TypeInvalid
}

// ActionType is invokefunction's optional "action".
type ActionType uint8

// Actions: none (request/response or fire-and-forget by invocation_id), void, enqueue.
const (
	ActionNone ActionType = iota
	ActionVoid
	ActionEnqueue
)

// Message is one decoded protocol message of any type. Decode fills only the
// fields of the message's own type; everything else stays zero.
//
// Memory: a Message owns an arena that holds a copy of the last decoded frame.
// Every string and json.RawMessage in it is a view into that arena and is valid
// only until the next Decode into (or Reset of) the same Message. Copy what you
// keep: strings.Clone for strings, bytes.Clone (or an append into your own
// buffer) for raw fields. In -race builds Reset overwrites the arena, so a kept
// view shows up as garbage in tests instead of as a rare production bug.
type Message struct {
	Type Type

	// ID is the "id" of registerfunction, unregisterfunction, registertrigger,
	// unregistertrigger, (un)registertriggertype, registerservice and
	// triggerregistrationresult.
	ID string

	// InvocationID of invokefunction (optional: absent and null both leave
	// HasInvocationID false) and invocationresult (required).
	InvocationID    string
	HasInvocationID bool

	FunctionID      string // invokefunction, invocationresult, registertrigger, triggerregistrationresult
	TriggerType     string // registertrigger, unregistertrigger, triggerregistrationresult
	Description     string // registerfunction, (un)registertriggertype (missing reads as ""), registerservice
	Name            string // registerservice
	ParentServiceID string // registerservice

	PreviousWorkerID string // reattach
	ReattachToken    string // reattach, workerregistered
	WorkerID         string // workerregistered (client side)

	Traceparent, Baggage string // invokefunction, invocationresult

	// Raw JSON values, exactly as sent: nil when the key is absent, the 4 bytes
	// `null` when it was an explicit null.
	Data                 json.RawMessage // invokefunction
	Result               json.RawMessage // invocationresult
	Error                json.RawMessage // invocationresult, triggerregistrationresult, error
	Config               json.RawMessage // registertrigger
	Metadata             json.RawMessage // invokefunction (any JSON), registerfunction and registertrigger (object)
	RequestFormat        json.RawMessage // registerfunction
	ResponseFormat       json.RawMessage // registerfunction
	Invocation           json.RawMessage // registerfunction (object)
	TriggerRequestFormat json.RawMessage // registertriggertype
	CallRequestFormat    json.RawMessage // registertriggertype

	Action ActionType // invokefunction
	Queue  string     // invokefunction with action enqueue

	arena []byte
}

// Reset clears m for reuse, keeping its arena's capacity.
func (m *Message) Reset() {
	a := m.arena
	if poisonArena {
		for i := range a {
			a[i] = 0xff
		}
	}
	*m = Message{arena: a[:0]}
}

// DecodeError is the error Decode and DecodeStreamRequest return. Its fields
// carry whatever could be read, so the engine can answer in the right frame
// (invocationresult, triggerregistrationresult or error); for CodeTooDeep that
// includes the members after the deep value. Its strings are copies, safe to
// keep.
type DecodeError struct {
	Code    string // CodeInvalidMessage, CodeInvalidArgument or CodeTooDeep
	Message string // names the field, e.g. `invokefunction: function_id must be a string, got number`

	Type            Type
	InvocationID    string
	HasInvocationID bool
	ID              string
	HasID           bool
}

// Error returns "code: message".
func (e *DecodeError) Error() string { return e.Code + ": " + e.Message }

// Error codes of DecodeError (docs/wire-protocol.md#error-codes).
const (
	CodeInvalidMessage  = "invalid_message"
	CodeInvalidArgument = "invalid_argument"
	// CodeTooDeep: valid JSON, but a value nests deeper than the decoder's
	// limit (see DecodeDepth).
	CodeTooDeep = "nesting_too_deep"
)

// Field slots filled by the scan, in no particular order.
const (
	fType = iota
	fID
	fInvocationID
	fFunctionID
	fTriggerType
	fDescription
	fName
	fParentServiceID
	fPreviousWorkerID
	fReattachToken
	fWorkerID
	fTraceparent
	fBaggage
	fData
	fResult
	fError
	fConfig
	fMetadata
	fRequestFormat
	fResponseFormat
	fInvocation
	fTriggerRequestFormat
	fCallRequestFormat
	fAction
	numFields
)

var fieldNames = [numFields]string{
	fType: "type", fID: "id", fInvocationID: "invocation_id", fFunctionID: "function_id",
	fTriggerType: "trigger_type", fDescription: "description", fName: "name",
	fParentServiceID: "parent_service_id", fPreviousWorkerID: "previous_worker_id",
	fReattachToken: "reattach_token", fWorkerID: "worker_id", fTraceparent: "traceparent",
	fBaggage: "baggage", fData: "data", fResult: "result", fError: "error", fConfig: "config",
	fMetadata: "metadata", fRequestFormat: "request_format", fResponseFormat: "response_format",
	fInvocation: "invocation", fTriggerRequestFormat: "trigger_request_format",
	fCallRequestFormat: "call_request_format", fAction: "action",
}

func fieldIndex(k []byte) int {
	switch string(k) {
	case "type":
		return fType
	case "id":
		return fID
	case "invocation_id":
		return fInvocationID
	case "function_id":
		return fFunctionID
	case "trigger_type":
		return fTriggerType
	case "description":
		return fDescription
	case "name":
		return fName
	case "parent_service_id":
		return fParentServiceID
	case "previous_worker_id":
		return fPreviousWorkerID
	case "reattach_token":
		return fReattachToken
	case "worker_id":
		return fWorkerID
	case "traceparent":
		return fTraceparent
	case "baggage":
		return fBaggage
	case "data":
		return fData
	case "result":
		return fResult
	case "error":
		return fError
	case "config":
		return fConfig
	case "metadata":
		return fMetadata
	case "request_format":
		return fRequestFormat
	case "response_format":
		return fResponseFormat
	case "invocation":
		return fInvocation
	case "trigger_request_format":
		return fTriggerRequestFormat
	case "call_request_format":
		return fCallRequestFormat
	case "action":
		return fAction
	}
	return -1
}

// span locates one field's value in the arena.
type span struct {
	start, end int32
	kind       byte // kindNone when the key was absent
	esc        bool
}

// decodeState is the per-call state of Decode; it lives on the stack.
type decodeState struct {
	b     []byte
	f     [numFields]span
	typ   Type
	tname string
	deep  int // offset of the first bracket over the nesting limit, 0 if none
	err   *DecodeError
}

// str returns the unescaped string value of slot i as a view into the arena.
// Unescaping happens at most once per slot (it rewrites the arena in place).
func (d *decodeState) str(i int) string {
	s := &d.f[i]
	v := d.b[s.start+1 : s.end-1]
	if s.esc {
		v = v[:unescapeInPlace(v)]
		s.esc = false
		s.end = s.start + int32(len(v)) + 2
	}
	if len(v) == 0 {
		return ""
	}
	return unsafe.String(&v[0], len(v))
}

func (d *decodeState) fail(code, msg string) {
	if d.err == nil {
		d.err = &DecodeError{Code: code, Message: msg}
	}
}

func (d *decodeState) wrongType(i int, want string) {
	d.fail(CodeInvalidMessage, d.tname+": "+fieldNames[i]+" must be "+want+", got "+kindName(d.f[i].kind))
}

// reqString reads a required string field.
func (d *decodeState) reqString(i int) string {
	switch d.f[i].kind {
	case kindString:
		return d.str(i)
	case kindNone:
		d.fail(CodeInvalidMessage, d.tname+": "+fieldNames[i]+" is missing")
	default:
		d.wrongType(i, "a string")
	}
	return ""
}

// optString reads an optional string field: absent and null read as "".
func (d *decodeState) optString(i int) string {
	switch d.f[i].kind {
	case kindString:
		return d.str(i)
	case kindNone, kindNull:
	default:
		d.wrongType(i, "a string")
	}
	return ""
}

// nonEmpty flags an empty required id as invalid_argument.
func (d *decodeState) nonEmpty(i int, v string) string {
	if v == "" && d.f[i].kind == kindString {
		d.fail(CodeInvalidArgument, d.tname+": "+fieldNames[i]+" must not be empty")
	}
	return v
}

// raw returns any JSON value, nil when absent.
func (d *decodeState) raw(i int) json.RawMessage {
	s := d.f[i]
	if s.kind == kindNone {
		return nil
	}
	return d.b[s.start:s.end:s.end]
}

// rawObject returns an object (or explicit null) value, nil when absent.
func (d *decodeState) rawObject(i int) json.RawMessage {
	switch d.f[i].kind {
	case kindNone, kindObject, kindNull:
		return d.raw(i)
	}
	d.wrongType(i, "an object")
	return nil
}

// Decode decodes one protocol frame into m, reusing m's memory (see Message).
// The frame is not retained. On failure it returns a *DecodeError and m holds
// whatever was decoded; the engine should answer with the error, not use m.
// It is DecodeDepth with DefaultMaxDepth.
func Decode(frame []byte, m *Message) error {
	return DecodeDepth(frame, m, DefaultMaxDepth)
}

// DecodeDepth is Decode with a nesting limit: every member value of the
// frame's top-level object (data, result, metadata, config, error, …) may
// contain at most maxDepth levels of objects and arrays, counting the value
// itself; the top-level object does not count. With maxDepth 2, "data":[[1]]
// and "data":{"a":[1]} are accepted and "data":[[[1]]] is not; scalars nest 0
// levels, so maxDepth 1 still allows "data":{"a":1}. maxDepth <= 0 means
// DefaultMaxDepth, and limits above HardMaxDepth are lowered to it.
//
// A frame over the limit fails with CodeTooDeep and a message naming the type,
// the limit and the offset of the first bracket over it, e.g.
// "invokefunction: message nests deeper than 128 levels at offset 97". The
// rest of the deep value is still validated (without recursion) and the
// members after it are read, so the error carries Type, InvocationID and ID
// wherever they appear. Invalid JSON anywhere in the frame takes precedence
// (CodeInvalidMessage); CodeTooDeep takes precedence over the checks of the
// fields.
func DecodeDepth(frame []byte, m *Message, maxDepth int) error {
	m.Reset()
	if len(frame) > math.MaxInt32 { // spans are int32
		return &DecodeError{Code: CodeInvalidMessage, Message: "message larger than 2 GiB"}
	}
	if cap(m.arena) > arenaKeep && len(frame) < cap(m.arena)/4 {
		m.arena = nil // drop a buffer grown by one huge frame
	}
	m.arena = append(m.arena[:0], frame...)
	d := decodeState{b: m.arena}
	limit := clampDepth(maxDepth)
	if serr := d.scanTop(limit); serr != nil {
		d.err = nil
		d.fail(CodeInvalidMessage, syntaxMessage(serr))
		return d.finishError()
	}
	if d.deep != 0 {
		tname := ""
		if d.f[fType].kind == kindString {
			tname = lookupType(d.str(fType)).String()
		}
		d.fail(CodeTooDeep, tooDeepMessage(tname, limit, d.deep))
		return d.finishError()
	}
	t := d.f[fType]
	switch t.kind {
	case kindString:
	case kindNone:
		d.fail(CodeInvalidMessage, "type is missing")
		return d.finishError()
	default:
		d.fail(CodeInvalidMessage, "type must be a string, got "+kindName(t.kind))
		return d.finishError()
	}
	name := d.str(fType)
	d.typ = lookupType(name)
	if d.typ == TypeInvalid {
		d.fail(CodeInvalidMessage, fmt.Sprintf("unknown type %q", name))
		return d.finishError()
	}
	d.tname = d.typ.String()
	m.Type = d.typ
	d.fill(m)
	if d.err != nil {
		return d.finishError()
	}
	return nil
}

// arenaKeep is the arena size above which Decode shrinks it again once frames
// get small, so one 16 MiB message does not pin 16 MiB per connection forever.
const arenaKeep = 1 << 20

// scanTop walks the top-level object, recording the spans of known fields and
// where a member value first went over maxDepth.
func (d *decodeState) scanTop(maxDepth int) *syntaxError {
	b := d.b
	i := skipWS(b, 0)
	if i >= len(b) {
		return &syntaxError{i, "empty message"}
	}
	if b[i] != '{' {
		j, k, serr := skipDeep(b, i) // not a message at any depth
		if serr != nil {
			return serr
		}
		if j = skipWS(b, j); j != len(b) {
			return &syntaxError{j, "data after the top-level value"}
		}
		return &syntaxError{-1, "message must be a JSON object, got " + kindName(k)}
	}
	it := newObjectIter(b, i, maxDepth)
	for {
		mb, ok, serr := it.next()
		if serr != nil {
			return serr
		}
		if !ok {
			break
		}
		if fi := fieldIndex(mb.key); fi >= 0 {
			d.f[fi] = span{start: int32(mb.start), end: int32(mb.end), kind: mb.kind, esc: mb.esc}
		}
	}
	if j := skipWS(b, it.i); j != len(b) {
		return &syntaxError{j, "data after the top-level object"}
	}
	d.deep = it.deep
	return nil
}

func syntaxMessage(e *syntaxError) string {
	if e.off < 0 {
		return e.msg
	}
	return fmt.Sprintf("message is not valid JSON: %s at offset %d", e.msg, e.off)
}

// tooDeepMessage is the CodeTooDeep message; tname is the type's name or "".
func tooDeepMessage(tname string, limit, off int) string {
	msg := fmt.Sprintf("message nests deeper than %d levels at offset %d", limit, off)
	if tname != "" {
		msg = tname + ": " + msg
	}
	return msg
}

// fill validates and copies the fields of d.typ into m.
func (d *decodeState) fill(m *Message) {
	switch d.typ {
	case TypeInvokeFunction:
		d.invocationID(m, false)
		m.FunctionID = d.reqString(fFunctionID)
		m.Data = d.raw(fData)
		m.Metadata = d.raw(fMetadata)
		m.Traceparent = d.optString(fTraceparent)
		m.Baggage = d.optString(fBaggage)
		d.action(m)
	case TypeInvocationResult:
		d.invocationID(m, true)
		m.FunctionID = d.reqString(fFunctionID)
		m.Result = d.raw(fResult)
		m.Error = d.raw(fError)
		m.Traceparent = d.optString(fTraceparent)
		m.Baggage = d.optString(fBaggage)
	case TypeRegisterFunction:
		m.ID = d.nonEmpty(fID, d.reqString(fID))
		m.Description = d.optString(fDescription)
		m.RequestFormat = d.raw(fRequestFormat)
		m.ResponseFormat = d.raw(fResponseFormat)
		m.Metadata = d.rawObject(fMetadata)
		m.Invocation = d.rawObject(fInvocation)
	case TypeUnregisterFunction:
		m.ID = d.reqString(fID)
	case TypeRegisterTrigger:
		m.ID = d.nonEmpty(fID, d.reqString(fID))
		m.TriggerType = d.nonEmpty(fTriggerType, d.reqString(fTriggerType))
		m.FunctionID = d.nonEmpty(fFunctionID, d.reqString(fFunctionID))
		m.Config = d.raw(fConfig)
		m.Metadata = d.rawObject(fMetadata)
	case TypeUnregisterTrigger:
		m.ID = d.reqString(fID)
		m.TriggerType = d.optString(fTriggerType)
	case TypeRegisterTriggerType:
		m.ID = d.nonEmpty(fID, d.reqString(fID))
		m.Description = d.optString(fDescription)
		m.TriggerRequestFormat = d.raw(fTriggerRequestFormat)
		m.CallRequestFormat = d.raw(fCallRequestFormat)
	case TypeUnregisterTriggerType:
		m.ID = d.reqString(fID)
		m.Description = d.optString(fDescription)
	case TypeTriggerRegistrationResult:
		m.ID = d.reqString(fID)
		m.TriggerType = d.reqString(fTriggerType)
		m.FunctionID = d.reqString(fFunctionID)
		m.Error = d.raw(fError)
	case TypeRegisterService:
		m.ID = d.reqString(fID)
		m.Name = d.optString(fName)
		m.Description = d.optString(fDescription)
		m.ParentServiceID = d.optString(fParentServiceID)
	case TypeReattach:
		m.PreviousWorkerID = d.reqString(fPreviousWorkerID)
		m.ReattachToken = d.optString(fReattachToken)
	case TypeWorkerRegistered:
		m.WorkerID = d.reqString(fWorkerID)
		m.ReattachToken = d.optString(fReattachToken)
	case TypeError:
		m.Error = d.raw(fError)
	case TypePing, TypePong:
	}
}

func (d *decodeState) invocationID(m *Message, required bool) {
	switch k := d.f[fInvocationID].kind; {
	case k == kindString:
		m.InvocationID, m.HasInvocationID = d.str(fInvocationID), true
	case required:
		d.reqString(fInvocationID)
	case k != kindNone && k != kindNull:
		d.wrongType(fInvocationID, "a string")
	}
}

// action decodes {"type":"void"} / {"type":"enqueue","queue":"q"}.
func (d *decodeState) action(m *Message) {
	s := d.f[fAction]
	switch s.kind {
	case kindNone, kindNull:
		return
	case kindObject:
	default:
		d.wrongType(fAction, "an object")
		return
	}
	var typ, queue []byte
	var tk, qk byte
	it := newObjectIter(d.b[:s.end], int(s.start), HardMaxDepth) // within the limit: scanned already
	for {
		mb, ok, _ := it.next() // already validated by the scan
		if !ok {
			break
		}
		var dst *[]byte
		switch string(mb.key) {
		case "type":
			dst, tk = &typ, mb.kind
		case "queue":
			dst, qk = &queue, mb.kind
		default:
			continue
		}
		*dst = nil
		if mb.kind == kindString {
			v := d.b[mb.start+1 : mb.end-1]
			if mb.esc {
				v = v[:unescapeInPlace(v)]
			}
			*dst = v
		}
	}
	switch {
	case tk == kindNone:
		d.fail(CodeInvalidMessage, d.tname+": action.type is missing")
	case tk != kindString:
		d.fail(CodeInvalidMessage, d.tname+": action.type must be a string, got "+kindName(tk))
	case string(typ) == "void":
		m.Action = ActionVoid
	case string(typ) == "enqueue":
		switch qk {
		case kindString:
			m.Action = ActionEnqueue
			if len(queue) > 0 {
				m.Queue = unsafe.String(&queue[0], len(queue))
			}
		case kindNone:
			d.fail(CodeInvalidMessage, d.tname+": action.queue is missing")
		default:
			d.fail(CodeInvalidMessage, d.tname+": action.queue must be a string, got "+kindName(qk))
		}
	default:
		d.fail(CodeInvalidMessage, fmt.Sprintf("%s: action.type must be \"void\" or \"enqueue\", got %q", d.tname, typ))
	}
}

// finishError fills the "whatever could be read" part of d.err.
func (d *decodeState) finishError() error {
	e := d.err
	e.Type = d.typ
	if d.typ == TypeInvalid && d.f[fType].kind == kindString {
		e.Type = lookupType(d.str(fType))
	}
	if d.f[fInvocationID].kind == kindString {
		e.InvocationID, e.HasInvocationID = strings.Clone(d.str(fInvocationID)), true
	}
	if d.f[fID].kind == kindString {
		e.ID, e.HasID = strings.Clone(d.str(fID)), true
	}
	return e
}
