package wire

import (
	"encoding/json"

	"github.com/iii-go/iii/internal/jsontext"
)

// AppendString appends s as a JSON string (see jsontext.AppendString).
func AppendString(dst []byte, s string) []byte { return jsontext.AppendString(dst, s) }

// Encoders for the frames the engine sends. They append to dst and never use
// reflection: the invoke relay (AppendInvokeFunction, AppendInvocationResult,
// AppendWithField) is the hot path. Raw JSON arguments are written as given, so
// they must be valid JSON (Decode guarantees that for the fields it returns).

// appendStringField appends ,"key":"value" (key is a trusted literal).
func appendStringField(dst []byte, key, value string) []byte {
	dst = append(dst, ",\""...)
	dst = append(dst, key...)
	dst = append(dst, "\":"...)
	return AppendString(dst, value)
}

func appendRawField(dst []byte, key string, value json.RawMessage) []byte {
	dst = append(dst, ",\""...)
	dst = append(dst, key...)
	dst = append(dst, "\":"...)
	return append(dst, value...)
}

// AppendWorkerRegistered appends {"type":"workerregistered","worker_id":..,"reattach_token":..};
// reattach_token is left out when empty.
func AppendWorkerRegistered(dst []byte, workerID, reattachToken string) []byte {
	dst = append(dst, `{"type":"workerregistered"`...)
	dst = appendStringField(dst, "worker_id", workerID)
	if reattachToken != "" {
		dst = appendStringField(dst, "reattach_token", reattachToken)
	}
	return append(dst, '}')
}

// Invoke is the content of an invokefunction frame.
type Invoke struct {
	InvocationID string // left out when empty (only a client's fire-and-forget call has none)
	FunctionID   string
	Data         json.RawMessage // left out when nil; pass []byte("null") to send null
	Metadata     json.RawMessage // left out when nil
	Traceparent  string          // left out when empty
	Baggage      string          // left out when empty
}

// AppendInvokeFunction appends an invokefunction frame.
func AppendInvokeFunction(dst []byte, in *Invoke) []byte {
	dst = append(dst, `{"type":"invokefunction"`...)
	if in.InvocationID != "" {
		dst = appendStringField(dst, "invocation_id", in.InvocationID)
	}
	dst = appendStringField(dst, "function_id", in.FunctionID)
	if in.Data != nil {
		dst = appendRawField(dst, "data", in.Data)
	}
	if in.Metadata != nil {
		dst = appendRawField(dst, "metadata", in.Metadata)
	}
	if in.Traceparent != "" {
		dst = appendStringField(dst, "traceparent", in.Traceparent)
	}
	if in.Baggage != "" {
		dst = appendStringField(dst, "baggage", in.Baggage)
	}
	return append(dst, '}')
}

// Result is the content of an invocationresult frame.
type Result struct {
	InvocationID string
	FunctionID   string
	Result       json.RawMessage // written only when HasResult (nil is then written as null)
	HasResult    bool
	Error        json.RawMessage // written only when non-nil (an ErrorBody, see AppendErrorBody)
	Traceparent  string          // left out when empty
	Baggage      string          // left out when empty
}

// AppendInvocationResult appends an invocationresult frame. It grows dst
// once, to the frame's size when its strings need no escaping.
func AppendInvocationResult(dst []byte, r *Result) []byte {
	// The fixed text of every field is 112 bytes; the rest spares escapes.
	if need := 128 + len(r.InvocationID) + len(r.FunctionID) + len(r.Result) + len(r.Error) + len(r.Traceparent) + len(r.Baggage); cap(dst)-len(dst) < need {
		dst = append(make([]byte, 0, len(dst)+need), dst...)
	}
	dst = append(dst, `{"type":"invocationresult"`...)
	dst = appendStringField(dst, "invocation_id", r.InvocationID)
	dst = appendStringField(dst, "function_id", r.FunctionID)
	if r.HasResult {
		if r.Result == nil {
			dst = append(dst, `,"result":null`...)
		} else {
			dst = appendRawField(dst, "result", r.Result)
		}
	}
	if r.Error != nil {
		dst = appendRawField(dst, "error", r.Error)
	}
	if r.Traceparent != "" {
		dst = appendStringField(dst, "traceparent", r.Traceparent)
	}
	if r.Baggage != "" {
		dst = appendStringField(dst, "baggage", r.Baggage)
	}
	return append(dst, '}')
}

// AppendErrorBody appends an ErrorBody {"code":..,"message":..}.
func AppendErrorBody(dst []byte, code, message string) []byte {
	dst = append(dst, `{"code":`...)
	dst = AppendString(dst, code)
	dst = appendStringField(dst, "message", message)
	return append(dst, '}')
}

// AppendErrorFrame appends {"type":"error","error":{"code":..,"message":..}}.
func AppendErrorFrame(dst []byte, code, message string) []byte {
	dst = append(dst, `{"type":"error","error":`...)
	dst = AppendErrorBody(dst, code, message)
	return append(dst, '}')
}

// AppendTriggerRegistrationResult appends a triggerregistrationresult frame;
// "error" is written only when errBody is non-nil.
func AppendTriggerRegistrationResult(dst []byte, id, triggerType, functionID string, errBody json.RawMessage) []byte {
	dst = append(dst, `{"type":"triggerregistrationresult"`...)
	dst = appendStringField(dst, "id", id)
	dst = appendStringField(dst, "trigger_type", triggerType)
	dst = appendStringField(dst, "function_id", functionID)
	if errBody != nil {
		dst = appendRawField(dst, "error", errBody)
	}
	return append(dst, '}')
}

// AppendRegisterTrigger appends the registertrigger frame the engine forwards
// to a trigger-type provider. config is always written (null when nil), as
// upstream does; metadata only when non-nil.
func AppendRegisterTrigger(dst []byte, id, triggerType, functionID string, config, metadata json.RawMessage) []byte {
	dst = append(dst, `{"type":"registertrigger"`...)
	dst = appendStringField(dst, "id", id)
	dst = appendStringField(dst, "trigger_type", triggerType)
	dst = appendStringField(dst, "function_id", functionID)
	if config == nil {
		dst = append(dst, `,"config":null`...)
	} else {
		dst = appendRawField(dst, "config", config)
	}
	if metadata != nil {
		dst = appendRawField(dst, "metadata", metadata)
	}
	return append(dst, '}')
}

// AppendUnregisterTrigger appends {"type":"unregistertrigger","id":..,"trigger_type":..}.
func AppendUnregisterTrigger(dst []byte, id, triggerType string) []byte {
	dst = append(dst, `{"type":"unregistertrigger"`...)
	dst = appendStringField(dst, "id", id)
	dst = appendStringField(dst, "trigger_type", triggerType)
	return append(dst, '}')
}

// AppendPong appends {"type":"pong"}.
func AppendPong(dst []byte) []byte {
	return append(dst, `{"type":"pong"}`...)
}

// AppendWithField appends a copy of the JSON object obj with one more string
// member, "key":"value", at the end (used to add "_caller_worker_id"). Because
// the new member comes last it wins over a member of the same name the sender
// put there (JSON.parse keeps the last). If obj is not an object it is appended
// unchanged.
func AppendWithField(dst []byte, obj json.RawMessage, key, value string) []byte {
	first := skipWS(obj, 0)
	last := len(obj) - 1
	for last >= 0 && isWS(obj[last]) {
		last--
	}
	if first >= len(obj) || obj[first] != '{' || last <= first || obj[last] != '}' {
		return append(dst, obj...)
	}
	dst = append(dst, obj[:last]...)
	if skipWS(obj, first+1) != last { // not empty: separate from the last member
		dst = append(dst, ',')
	}
	dst = AppendString(dst, key)
	dst = append(dst, ':')
	dst = AppendString(dst, value)
	return append(dst, obj[last:]...)
}
