package wire

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// view is a Message without its arena, for comparisons.
func view(m *Message) Message {
	v := *m
	v.arena = nil
	return v
}

func TestDecodeMessages(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		want  Message
	}{
		// Frames as the SDKs send them (see docs/wire-protocol.md#messages).
		{"workerregistered", `{"type":"workerregistered","worker_id":"f286db05-34ed-4e45-8791-417f00c9e47c","reattach_token":"4a32285a-d69d-456e-a46e-9955c444455d"}`,
			Message{Type: TypeWorkerRegistered, WorkerID: "f286db05-34ed-4e45-8791-417f00c9e47c", ReattachToken: "4a32285a-d69d-456e-a46e-9955c444455d"}},
		{"reattach", `{"type":"reattach","previous_worker_id":"f286db05-34ed-4e45-8791-417f00c9e47c","reattach_token":"4a32285a-d69d-456e-a46e-9955c444455d"}`,
			Message{Type: TypeReattach, PreviousWorkerID: "f286db05-34ed-4e45-8791-417f00c9e47c", ReattachToken: "4a32285a-d69d-456e-a46e-9955c444455d"}},
		{"reattach without token", `{"type":"reattach","previous_worker_id":"w1","reattach_token":null}`,
			Message{Type: TypeReattach, PreviousWorkerID: "w1"}},
		{"registerfunction full", `{"type":"registerfunction","description":"List todos","metadata":{"public":true},"request_format":{"type":"object","properties":{}},"response_format":{"type":"object","properties":{"items":{"type":"array"}}},"id":"todos::list"}`,
			Message{Type: TypeRegisterFunction, ID: "todos::list", Description: "List todos", Metadata: raw(`{"public":true}`),
				RequestFormat: raw(`{"type":"object","properties":{}}`), ResponseFormat: raw(`{"type":"object","properties":{"items":{"type":"array"}}}`)}},
		{"registerfunction minimal", `{"type":"registerfunction","id":"probe::throws"}`,
			Message{Type: TypeRegisterFunction, ID: "probe::throws"}},
		{"registerfunction http invoked", `{"type":"registerfunction","id":"h","invocation":{"url":"http://x","method":"POST"},"metadata":null}`,
			Message{Type: TypeRegisterFunction, ID: "h", Invocation: raw(`{"url":"http://x","method":"POST"}`), Metadata: raw(`null`)}},
		{"unregisterfunction", `{"type":"unregisterfunction","id":"todos::list"}`,
			Message{Type: TypeUnregisterFunction, ID: "todos::list"}},
		{"registertrigger with stray message_type", `{"type":"registertrigger","function_id":"todos::list","config":{"stream_name":"todo","group_id":"todos"},"id":"0e59e8a2-bc46-42f0-b09d-50aeeabd55ef","message_type":"registertrigger","trigger_type":"stream"}`,
			Message{Type: TypeRegisterTrigger, ID: "0e59e8a2-bc46-42f0-b09d-50aeeabd55ef", TriggerType: "stream", FunctionID: "todos::list", Config: raw(`{"stream_name":"todo","group_id":"todos"}`)}},
		{"registertrigger to provider", `{"type":"registertrigger","id":"trig-ok","trigger_type":"probe-tt","function_id":"todos::list","config":{"every":5},"metadata":{"m":1}}`,
			Message{Type: TypeRegisterTrigger, ID: "trig-ok", TriggerType: "probe-tt", FunctionID: "todos::list", Config: raw(`{"every":5}`), Metadata: raw(`{"m":1}`)}},
		{"registertrigger missing config", `{"type":"registertrigger","id":"t","trigger_type":"cron","function_id":"f"}`,
			Message{Type: TypeRegisterTrigger, ID: "t", TriggerType: "cron", FunctionID: "f"}},
		{"unregistertrigger client", `{"type":"unregistertrigger","id":"0e59e8a2-bc46-42f0-b09d-50aeeabd55ef","message_type":"unregistertrigger","trigger_type":"stream"}`,
			Message{Type: TypeUnregisterTrigger, ID: "0e59e8a2-bc46-42f0-b09d-50aeeabd55ef", TriggerType: "stream"}},
		{"unregistertrigger without type", `{"type":"unregistertrigger","id":"trig-ok"}`,
			Message{Type: TypeUnregisterTrigger, ID: "trig-ok"}},
		{"registertriggertype", `{"type":"registertriggertype","id":"probe-tt","description":"Probe trigger type"}`,
			Message{Type: TypeRegisterTriggerType, ID: "probe-tt", Description: "Probe trigger type"}},
		{"registertriggertype missing description", `{"type":"registertriggertype","id":"probe-tt","trigger_request_format":{"a":1},"call_request_format":[]}`,
			Message{Type: TypeRegisterTriggerType, ID: "probe-tt", TriggerRequestFormat: raw(`{"a":1}`), CallRequestFormat: raw(`[]`)}},
		{"unregistertriggertype", `{"type":"unregistertriggertype","id":"probe-tt","description":"Probe trigger type"}`,
			Message{Type: TypeUnregisterTriggerType, ID: "probe-tt", Description: "Probe trigger type"}},
		{"triggerregistrationresult ok", `{"type":"triggerregistrationresult","id":"trig-ok","message_type":"triggerregistrationresult","function_id":"todos::list","trigger_type":"probe-tt"}`,
			Message{Type: TypeTriggerRegistrationResult, ID: "trig-ok", FunctionID: "todos::list", TriggerType: "probe-tt"}},
		{"triggerregistrationresult error", `{"type":"triggerregistrationresult","id":"trig-unknown","message_type":"triggerregistrationresult","function_id":"todos::list","error":{"code":"trigger_type_not_found","message":"Trigger type not found"},"trigger_type":"no-such-type"}`,
			Message{Type: TypeTriggerRegistrationResult, ID: "trig-unknown", FunctionID: "todos::list", TriggerType: "no-such-type", Error: raw(`{"code":"trigger_type_not_found","message":"Trigger type not found"}`)}},
		{"invokefunction", `{"type":"invokefunction","invocation_id":"d9182307-0372-4c2e-8e0a-c8b22f9f1b5a","function_id":"engine::functions::list","data":{}}`,
			Message{Type: TypeInvokeFunction, InvocationID: "d9182307-0372-4c2e-8e0a-c8b22f9f1b5a", HasInvocationID: true, FunctionID: "engine::functions::list", Data: raw(`{}`)}},
		{"invokefunction void", `{"type":"invokefunction","function_id":"probe::void-target","data":{"v":1},"action":{"type":"void"}}`,
			Message{Type: TypeInvokeFunction, FunctionID: "probe::void-target", Data: raw(`{"v":1}`), Action: ActionVoid}},
		{"invokefunction enqueue", `{"type":"invokefunction","invocation_id":"33d7d216-db22-4e43-bfa6-eede1cf60cc8","function_id":"probe::job","data":{"j":1},"action":{"type":"enqueue","queue":"jobs"}}`,
			Message{Type: TypeInvokeFunction, InvocationID: "33d7d216-db22-4e43-bfa6-eede1cf60cc8", HasInvocationID: true, FunctionID: "probe::job", Data: raw(`{"j":1}`), Action: ActionEnqueue, Queue: "jobs"}},
		{"invokefunction metadata", `{"type":"invokefunction","invocation_id":"0b8b1263-2315-4917-b2e2-f88097556d33","function_id":"probe::meta","data":{"m":1},"metadata":{"tenant":"acme"}}`,
			Message{Type: TypeInvokeFunction, InvocationID: "0b8b1263-2315-4917-b2e2-f88097556d33", HasInvocationID: true, FunctionID: "probe::meta", Data: raw(`{"m":1}`), Metadata: raw(`{"tenant":"acme"}`)}},
		{"invokefunction missing data", `{"type":"invokefunction","invocation_id":"bfa90ad0-5ab8-4218-8fcd-da3fb3b96469","function_id":"probe::nopayload"}`,
			Message{Type: TypeInvokeFunction, InvocationID: "bfa90ad0-5ab8-4218-8fcd-da3fb3b96469", HasInvocationID: true, FunctionID: "probe::nopayload"}},
		{"invokefunction null invocation_id", `{"type":"invokefunction","invocation_id":null,"function_id":"f","data":null}`,
			Message{Type: TypeInvokeFunction, FunctionID: "f", Data: raw(`null`)}},
		{"invokefunction traced", `{"type":"invokefunction","invocation_id":"i","function_id":"f","data":"s","traceparent":"00-abc-def-01","baggage":"k=v","action":null}`,
			Message{Type: TypeInvokeFunction, InvocationID: "i", HasInvocationID: true, FunctionID: "f", Data: raw(`"s"`), Traceparent: "00-abc-def-01", Baggage: "k=v"}},
		{"invokefunction engine to worker", `{"type":"invokefunction","invocation_id":"830898b6-a29f-4cdd-b51b-36538826e879","function_id":"todos::list","data":{"_caller_worker_id":"6fa7b496-9b3b-459a-a463-15482e336099"}}`,
			Message{Type: TypeInvokeFunction, InvocationID: "830898b6-a29f-4cdd-b51b-36538826e879", HasInvocationID: true, FunctionID: "todos::list", Data: raw(`{"_caller_worker_id":"6fa7b496-9b3b-459a-a463-15482e336099"}`)}},
		{"invokefunction empty function_id", `{"type":"invokefunction","invocation_id":"i","function_id":""}`,
			Message{Type: TypeInvokeFunction, InvocationID: "i", HasInvocationID: true}},
		{"invokefunction non-uuid id echoed", `{"type":"invokefunction","invocation_id":"not a uuid ✓","function_id":"f"}`,
			Message{Type: TypeInvokeFunction, InvocationID: "not a uuid ✓", HasInvocationID: true, FunctionID: "f"}},
		{"invocationresult", `{"type":"invocationresult","invocation_id":"830898b6-a29f-4cdd-b51b-36538826e879","function_id":"todos::list","result":{"items":[{"id":"1","title":"x","completed":false}]}}`,
			Message{Type: TypeInvocationResult, InvocationID: "830898b6-a29f-4cdd-b51b-36538826e879", HasInvocationID: true, FunctionID: "todos::list", Result: raw(`{"items":[{"id":"1","title":"x","completed":false}]}`)}},
		{"invocationresult error", `{"type":"invocationresult","invocation_id":"7f8488f9-3444-4694-8f2a-3f1a22f06887","function_id":"probe::throws","error":{"code":"invocation_failed","message":"kaboom","stacktrace":"Error: kaboom\n    at ..."}}`,
			Message{Type: TypeInvocationResult, InvocationID: "7f8488f9-3444-4694-8f2a-3f1a22f06887", HasInvocationID: true, FunctionID: "probe::throws", Error: raw(`{"code":"invocation_failed","message":"kaboom","stacktrace":"Error: kaboom\n    at ..."}`)}},
		{"invocationresult null result and error", `{"type":"invocationresult","invocation_id":"i","function_id":"f","result":null,"error":null,"traceparent":"tp"}`,
			Message{Type: TypeInvocationResult, InvocationID: "i", HasInvocationID: true, FunctionID: "f", Result: raw(`null`), Error: raw(`null`), Traceparent: "tp"}},
		{"invocationresult no result", `{"type":"invocationresult","invocation_id":"i","function_id":"f"}`,
			Message{Type: TypeInvocationResult, InvocationID: "i", HasInvocationID: true, FunctionID: "f"}},
		{"invocationresult string error", `{"type":"invocationresult","invocation_id":"i","function_id":"f","result":42,"error":"boom"}`,
			Message{Type: TypeInvocationResult, InvocationID: "i", HasInvocationID: true, FunctionID: "f", Result: raw(`42`), Error: raw(`"boom"`)}},
		{"registerservice", `{"type":"registerservice","id":"billing","name":"Billing","description":"...","parent_service_id":"platform"}`,
			Message{Type: TypeRegisterService, ID: "billing", Name: "Billing", Description: "...", ParentServiceID: "platform"}},
		{"registerservice minimal", `{"type":"registerservice","id":"billing"}`,
			Message{Type: TypeRegisterService, ID: "billing"}},
		{"ping", `{"type":"ping"}`, Message{Type: TypePing}},
		{"pong with junk", `{"type":"pong","x":[1,{"y":null}]}`, Message{Type: TypePong}},
		{"error frame", `{"type":"error","error":{"code":"AUTH_ERROR","message":"invalid token"}}`,
			Message{Type: TypeError, Error: raw(`{"code":"AUTH_ERROR","message":"invalid token"}`)}},

		// Lenience, escapes and unicode.
		{"fields of other types ignored", `{"type":"unregisterfunction","id":"x","function_id":5,"data":{"a":1},"config":"c"}`,
			Message{Type: TypeUnregisterFunction, ID: "x"}},
		{"whitespace everywhere", " \t\r\n{ \"type\" : \"invokefunction\" ,\n \"function_id\" : \"f\" , \"data\" : [ 1 , 2 ] }\n ",
			Message{Type: TypeInvokeFunction, FunctionID: "f", Data: raw(`[ 1 , 2 ]`)}},
		{"escapes in strings", `{"type":"invokefunction","invocation_id":"a\"b\\c\/d\b\f\n\r\t","function_id":"caf\u00e9 \ud83d\ude00 \u4e2d"}`,
			Message{Type: TypeInvokeFunction, InvocationID: "a\"b\\c/d\b\f\n\r\t", HasInvocationID: true, FunctionID: "café 😀 中"}},
		{"lone surrogate", `{"type":"invokefunction","function_id":"x\ud800y\udc00"}`,
			Message{Type: TypeInvokeFunction, FunctionID: "x\uFFFDy\uFFFD"}},
		{"raw unicode", `{"type":"invokefunction","function_id":"函数::名","data":{"k":"ü\u00fc😀"}}`,
			Message{Type: TypeInvokeFunction, FunctionID: "函数::名", Data: raw(`{"k":"ü\u00fc😀"}`)}},
		{"escaped key", `{"t\u0079pe":"invokefunction","function_\u0069d":"f"}`,
			Message{Type: TypeInvokeFunction, FunctionID: "f"}},
		{"duplicate key last wins", `{"type":"invokefunction","function_id":"a","function_id":"b","data":1,"data":2}`,
			Message{Type: TypeInvokeFunction, FunctionID: "b", Data: raw(`2`)}},
		{"escaped action", `{"type":"invokefunction","function_id":"f","action":{"queue":"j\u006fbs","type":"enq\u0075eue","x":{}}}`,
			Message{Type: TypeInvokeFunction, FunctionID: "f", Action: ActionEnqueue, Queue: "jobs"}},
		{"numbers", `{"type":"invokefunction","function_id":"f","data":[0,-0,1.5,-2e10,3E+2,4e-3,12345678901234567890]}`,
			Message{Type: TypeInvokeFunction, FunctionID: "f", Data: raw(`[0,-0,1.5,-2e10,3E+2,4e-3,12345678901234567890]`)}},
	}
	var m Message // reused on purpose: fields of the previous frame must not leak
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Decode([]byte(tt.frame), &m); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got := view(&m); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode(%s)\n got %+v\nwant %+v", tt.frame, got, tt.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		want  DecodeError // Message is matched as a substring
	}{
		{"not JSON", `hello`, DecodeError{Code: CodeInvalidMessage, Message: "message is not valid JSON: invalid character 'h' at offset 0"}},
		{"truncated", `{"type":"invokefunction","invocation_id":"abc","function_id":"x"`,
			DecodeError{Code: CodeInvalidMessage, Message: "not valid JSON: unexpected end of input", Type: TypeInvokeFunction, InvocationID: "abc", HasInvocationID: true}},
		{"trailing data", `{"type":"ping"} x`, DecodeError{Code: CodeInvalidMessage, Message: "data after the top-level object", Type: TypePing}},
		{"bad raw value", `{"type":"invokefunction","invocation_id":"i","function_id":"f","data":{"a":}}`,
			DecodeError{Code: CodeInvalidMessage, Message: "not valid JSON", Type: TypeInvokeFunction, InvocationID: "i", HasInvocationID: true}},
		{"control char", "{\"type\":\"ping\",\"x\":\"a\x01\"}", DecodeError{Code: CodeInvalidMessage, Message: "control character in string", Type: TypePing}},
		{"bad escape", `{"type":"ping","x":"\q"}`, DecodeError{Code: CodeInvalidMessage, Message: "invalid escape", Type: TypePing}},
		{"bad number", `{"type":"ping","x":01}`, DecodeError{Code: CodeInvalidMessage, Message: "not valid JSON", Type: TypePing}},
		{"array", `[1,2]`, DecodeError{Code: CodeInvalidMessage, Message: "message must be a JSON object, got array"}},
		{"string", `"invokefunction"`, DecodeError{Code: CodeInvalidMessage, Message: "message must be a JSON object, got string"}},
		{"null", `null`, DecodeError{Code: CodeInvalidMessage, Message: "message must be a JSON object, got null"}},
		{"type missing", `{"hello":"world"}`, DecodeError{Code: CodeInvalidMessage, Message: "type is missing"}},
		{"type number", `{"type":5,"id":"x"}`, DecodeError{Code: CodeInvalidMessage, Message: "type must be a string, got number", ID: "x", HasID: true}},
		{"unknown type", `{"type":"nosuch","invocation_id":"i"}`, DecodeError{Code: CodeInvalidMessage, Message: `unknown type "nosuch"`, InvocationID: "i", HasInvocationID: true}},
		{"function_id number", `{"type":"invokefunction","invocation_id":"i1","function_id":42}`,
			DecodeError{Code: CodeInvalidMessage, Message: "invokefunction: function_id must be a string, got number", Type: TypeInvokeFunction, InvocationID: "i1", HasInvocationID: true}},
		{"function_id missing", `{"type":"invokefunction","invocation_id":"i1","data":{}}`,
			DecodeError{Code: CodeInvalidMessage, Message: "invokefunction: function_id is missing", Type: TypeInvokeFunction, InvocationID: "i1", HasInvocationID: true}},
		{"function_id null", `{"type":"invokefunction","function_id":null}`,
			DecodeError{Code: CodeInvalidMessage, Message: "invokefunction: function_id must be a string, got null", Type: TypeInvokeFunction}},
		{"invocation_id number", `{"type":"invokefunction","invocation_id":7,"function_id":"f"}`,
			DecodeError{Code: CodeInvalidMessage, Message: "invokefunction: invocation_id must be a string, got number", Type: TypeInvokeFunction}},
		{"traceparent object", `{"type":"invokefunction","invocation_id":"i","function_id":"f","traceparent":{}}`,
			DecodeError{Code: CodeInvalidMessage, Message: "invokefunction: traceparent must be a string, got object", Type: TypeInvokeFunction, InvocationID: "i", HasInvocationID: true}},
		{"action string", `{"type":"invokefunction","invocation_id":"i","function_id":"f","action":"void"}`,
			DecodeError{Code: CodeInvalidMessage, Message: "invokefunction: action must be an object, got string", Type: TypeInvokeFunction, InvocationID: "i", HasInvocationID: true}},
		{"action unknown", `{"type":"invokefunction","function_id":"f","action":{"type":"later"}}`,
			DecodeError{Code: CodeInvalidMessage, Message: `invokefunction: action.type must be "void" or "enqueue", got "later"`, Type: TypeInvokeFunction}},
		{"action without type", `{"type":"invokefunction","function_id":"f","action":{}}`,
			DecodeError{Code: CodeInvalidMessage, Message: "invokefunction: action.type is missing", Type: TypeInvokeFunction}},
		{"enqueue without queue", `{"type":"invokefunction","function_id":"f","action":{"type":"enqueue"}}`,
			DecodeError{Code: CodeInvalidMessage, Message: "invokefunction: action.queue is missing", Type: TypeInvokeFunction}},
		{"invocationresult without id", `{"type":"invocationresult","function_id":"f","result":1}`,
			DecodeError{Code: CodeInvalidMessage, Message: "invocationresult: invocation_id is missing", Type: TypeInvocationResult}},
		{"invocationresult null id", `{"type":"invocationresult","invocation_id":null,"function_id":"f"}`,
			DecodeError{Code: CodeInvalidMessage, Message: "invocationresult: invocation_id must be a string, got null", Type: TypeInvocationResult}},
		{"invocationresult without function_id", `{"type":"invocationresult","invocation_id":"i"}`,
			DecodeError{Code: CodeInvalidMessage, Message: "invocationresult: function_id is missing", Type: TypeInvocationResult, InvocationID: "i", HasInvocationID: true}},
		{"registerfunction empty id", `{"type":"registerfunction","id":""}`,
			DecodeError{Code: CodeInvalidArgument, Message: "registerfunction: id must not be empty", Type: TypeRegisterFunction, HasID: true}},
		{"registerfunction id missing", `{"type":"registerfunction","description":"d"}`,
			DecodeError{Code: CodeInvalidMessage, Message: "registerfunction: id is missing", Type: TypeRegisterFunction}},
		{"registerfunction metadata string", `{"type":"registerfunction","id":"f","metadata":"public"}`,
			DecodeError{Code: CodeInvalidMessage, Message: "registerfunction: metadata must be an object, got string", Type: TypeRegisterFunction, ID: "f", HasID: true}},
		{"registerfunction description number", `{"type":"registerfunction","id":"f","description":1}`,
			DecodeError{Code: CodeInvalidMessage, Message: "registerfunction: description must be a string, got number", Type: TypeRegisterFunction, ID: "f", HasID: true}},
		{"registertrigger empty id", `{"type":"registertrigger","id":"","trigger_type":"stream","function_id":"f"}`,
			DecodeError{Code: CodeInvalidArgument, Message: "registertrigger: id must not be empty", Type: TypeRegisterTrigger, HasID: true}},
		{"registertrigger empty trigger_type", `{"type":"registertrigger","id":"t1","trigger_type":"","function_id":"f"}`,
			DecodeError{Code: CodeInvalidArgument, Message: "registertrigger: trigger_type must not be empty", Type: TypeRegisterTrigger, ID: "t1", HasID: true}},
		{"registertrigger empty function_id", `{"type":"registertrigger","id":"t1","trigger_type":"stream","function_id":""}`,
			DecodeError{Code: CodeInvalidArgument, Message: "registertrigger: function_id must not be empty", Type: TypeRegisterTrigger, ID: "t1", HasID: true}},
		{"registertrigger trigger_type number", `{"type":"registertrigger","id":"t1","trigger_type":1,"function_id":"f"}`,
			DecodeError{Code: CodeInvalidMessage, Message: "registertrigger: trigger_type must be a string, got number", Type: TypeRegisterTrigger, ID: "t1", HasID: true}},
		{"registertrigger missing function_id", `{"type":"registertrigger","id":"t1","trigger_type":"stream","config":{}}`,
			DecodeError{Code: CodeInvalidMessage, Message: "registertrigger: function_id is missing", Type: TypeRegisterTrigger, ID: "t1", HasID: true}},
		{"registertriggertype empty id", `{"type":"registertriggertype","id":"","description":"d"}`,
			DecodeError{Code: CodeInvalidArgument, Message: "registertriggertype: id must not be empty", Type: TypeRegisterTriggerType, HasID: true}},
		{"unregistertrigger id number", `{"type":"unregistertrigger","id":3}`,
			DecodeError{Code: CodeInvalidMessage, Message: "unregistertrigger: id must be a string, got number", Type: TypeUnregisterTrigger}},
		{"reattach missing worker", `{"type":"reattach","reattach_token":"t"}`,
			DecodeError{Code: CodeInvalidMessage, Message: "reattach: previous_worker_id is missing", Type: TypeReattach}},
		{"triggerregistrationresult missing type", `{"type":"triggerregistrationresult","id":"t","function_id":"f"}`,
			DecodeError{Code: CodeInvalidMessage, Message: "triggerregistrationresult: trigger_type is missing", Type: TypeTriggerRegistrationResult, ID: "t", HasID: true}},
		{"deep nesting", `{"type":"ping","x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`,
			DecodeError{Code: CodeTooDeep, Message: "ping: message nests deeper than 128 levels at offset 147", Type: TypePing}},
		{"empty", ``, DecodeError{Code: CodeInvalidMessage, Message: "empty message"}},
	}
	var m Message
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Decode([]byte(tt.frame), &m)
			de, ok := err.(*DecodeError)
			if !ok {
				t.Fatalf("Decode(%.80s) = %v, want *DecodeError", tt.frame, err)
			}
			if !strings.Contains(de.Message, tt.want.Message) {
				t.Errorf("Message = %q, want it to contain %q", de.Message, tt.want.Message)
			}
			got := *de
			got.Message = tt.want.Message
			if got != tt.want {
				t.Errorf("DecodeError = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeErrorStringsAreCopies(t *testing.T) {
	var m Message
	err := Decode([]byte(`{"type":"invokefunction","invocation_id":"keep-me","function_id":1}`), &m)
	de := err.(*DecodeError)
	_ = Decode([]byte(`{"type":"invokefunction","invocation_id":"XXXXXXX","function_id":"f"}`), &m)
	if de.InvocationID != "keep-me" {
		t.Fatalf("DecodeError.InvocationID changed to %q after reuse", de.InvocationID)
	}
}

func TestDecodeFrameNotRetained(t *testing.T) {
	frame := []byte(`{"type":"invokefunction","invocation_id":"abc","function_id":"f","data":{"x":1}}`)
	var m Message
	if err := Decode(frame, &m); err != nil {
		t.Fatal(err)
	}
	for i := range frame {
		frame[i] = 'Z'
	}
	if m.InvocationID != "abc" || string(m.Data) != `{"x":1}` {
		t.Fatalf("Message aliases the frame: %+v", view(&m))
	}
}

func TestDecodeZeroAllocs(t *testing.T) {
	for _, frame := range [][]byte{benchInvoke, benchResult, benchEscaped} {
		var m Message
		if err := Decode(frame, &m); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { _ = Decode(frame, &m) }); n != 0 {
			t.Errorf("Decode(%.40s…) allocates %v times per call, want 0", frame, n)
		}
	}
}

func TestDecodeStreamRequest(t *testing.T) {
	tests := []struct {
		frame   string
		want    StreamRequest
		wantErr string
	}{
		{`{ "type": "join",  "data": { "subscriptionId": "s1", "streamName": "todo", "groupId": "todos", "id": "a1" } }`,
			StreamRequest{Type: "join", SubscriptionID: "s1", StreamName: "todo", GroupID: "todos", ItemID: "a1", HasItemID: true}, ""},
		{`{ "type": "leave", "data": { "subscriptionId": "s1", "streamName": "todo", "groupId": "todos" } }`,
			StreamRequest{Type: "leave", SubscriptionID: "s1", StreamName: "todo", GroupID: "todos"}, ""},
		{`{"type":"join","data":{"subscriptionId":"s\u0031","streamName":"t","groupId":"g","id":null,"extra":[1]},"x":1}`,
			StreamRequest{Type: "join", SubscriptionID: "s1", StreamName: "t", GroupID: "g"}, ""},
		{`{"type":"join","data":{"subscriptionId":"s1","groupId":"g"}}`, StreamRequest{}, "join: data.streamName is missing"},
		{`{"type":"join","data":{"subscriptionId":"s1","streamName":5,"groupId":"g"}}`, StreamRequest{}, "join: data.streamName must be a string, got number"},
		{`{"type":"join","data":{"subscriptionId":"s1","streamName":"t","groupId":"g","id":1}}`, StreamRequest{}, "join: data.id must be a string, got number"},
		{`{"type":"join"}`, StreamRequest{}, "join: data is missing"},
		{`{"type":"join","data":[]}`, StreamRequest{}, "join: data must be an object, got array"},
		{`{"type":"subscribe","data":{}}`, StreamRequest{}, `unknown type "subscribe"`},
		{`{"data":{}}`, StreamRequest{}, "type is missing"},
		{`[]`, StreamRequest{}, "message must be a JSON object, got array"},
		{`{"type":"join",`, StreamRequest{}, "not valid JSON"},
	}
	for _, tt := range tests {
		var r StreamRequest
		err := DecodeStreamRequest([]byte(tt.frame), &r)
		if tt.wantErr != "" {
			de, ok := err.(*DecodeError)
			if !ok || de.Code != CodeInvalidMessage || !strings.Contains(de.Message, tt.wantErr) {
				t.Errorf("DecodeStreamRequest(%s) = %v, want invalid_message containing %q", tt.frame, err, tt.wantErr)
			}
			continue
		}
		if err != nil || r != tt.want {
			t.Errorf("DecodeStreamRequest(%s) = %+v, %v; want %+v", tt.frame, r, err, tt.want)
		}
	}
}

// fuzzSeeds are the frames of the table tests plus a few odd ones.
func fuzzSeeds() []string {
	return []string{
		`{"type":"invokefunction","invocation_id":"i","function_id":"f","data":{"a":[1,2,{"b":null}]},"action":{"type":"enqueue","queue":"q"}}`,
		`{"type":"invocationresult","invocation_id":"i","function_id":"f","result":null,"error":{"code":"c","message":"m"}}`,
		`{"type":"registertrigger","id":"t","trigger_type":"stream","function_id":"f","config":{"stream_name":"todo"},"message_type":"registertrigger"}`,
		`{"type":"registerfunction","id":"f","metadata":{"public":true},"request_format":{}}`,
		`{"type":"registertriggertype","id":"tt","description":"d\u00e9\ud83d\ude00"}`,
		`{"type":"reattach","previous_worker_id":"w","reattach_token":"t"}`,
		`{"type":"registerservice","id":"s","name":"n","parent_service_id":"p"}`,
		`{"type":"triggerregistrationresult","id":"t","trigger_type":"x","function_id":"f","error":"e"}`,
		`{"type":"workerregistered","worker_id":"w"}`,
		`{"type":"ping"}`, `{"type":"error","error":{}}`, `[1]`, `"x"`, `{"type":5}`, `{`, ``,
		`{"type":"join","data":{"subscriptionId":"s","streamName":"t","groupId":"g","id":"i"}}`,
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	var m Message
	f.Fuzz(func(t *testing.T, frame []byte) {
		err := Decode(frame, &m)
		if err != nil {
			if _, ok := err.(*DecodeError); !ok {
				t.Fatalf("error %T is not *DecodeError", err)
			}
			return
		}
		if !json.Valid(frame) {
			t.Fatalf("Decode accepted invalid JSON %q", frame)
		}
		for name, r := range map[string]json.RawMessage{
			"data": m.Data, "result": m.Result, "error": m.Error, "config": m.Config, "metadata": m.Metadata,
			"request_format": m.RequestFormat, "response_format": m.ResponseFormat, "invocation": m.Invocation,
			"trigger_request_format": m.TriggerRequestFormat, "call_request_format": m.CallRequestFormat,
		} {
			if r != nil && !json.Valid(r) {
				t.Fatalf("%s = %q is not valid JSON (frame %q)", name, r, frame)
			}
		}
		if m.Type == TypeInvalid {
			t.Fatalf("Decode succeeded without a type: %q", frame)
		}
		// Differential check against encoding/json for the string fields (it
		// rewrites invalid UTF-8, so only for valid input).
		if !utf8.Valid(frame) {
			return
		}
		var obj map[string]any
		if err := json.Unmarshal(frame, &obj); err != nil {
			t.Fatalf("encoding/json rejects what Decode accepted: %v (%q)", err, frame)
		}
		for key, got := range map[string]string{
			"id": m.ID, "function_id": m.FunctionID, "trigger_type": m.TriggerType, "invocation_id": m.InvocationID,
			"description": m.Description, "traceparent": m.Traceparent, "previous_worker_id": m.PreviousWorkerID,
		} {
			if want, ok := obj[key].(string); ok && got != want && got != "" {
				t.Fatalf("%s = %q, encoding/json says %q (frame %q)", key, got, want, frame)
			}
		}
	})
}

func FuzzDecodeStreamRequest(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var r StreamRequest
		if err := DecodeStreamRequest(frame, &r); err != nil {
			if _, ok := err.(*DecodeError); !ok {
				t.Fatalf("error %T is not *DecodeError", err)
			}
			return
		}
		if !json.Valid(frame) || (r.Type != "join" && r.Type != "leave") {
			t.Fatalf("accepted %q as %+v", frame, r)
		}
	})
}

// TestDecodeCapturedFrames decodes every JSON text frame of the captures
// of the real SDKs (iii-sdk 0.22.1 and 0.11.6, and the browser SDK) in
// testdata/frames, both directions: the engine-side ones are what our
// client side must read.
func TestDecodeCapturedFrames(t *testing.T) {
	files, _ := filepath.Glob("testdata/frames/*.jsonl")
	if len(files) == 0 {
		t.Fatal("no captures in testdata/frames")
	}
	var m Message
	n := 0
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
			var rec struct {
				Seq  int             `json:"seq"`
				Kind string          `json:"kind"`
				Data json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if rec.Kind != "text" || len(rec.Data) == 0 || rec.Data[0] != '{' {
				continue
			}
			var probe struct {
				Type string `json:"type"`
			}
			_ = json.Unmarshal(rec.Data, &probe)
			err := Decode(rec.Data, &m)
			switch {
			case lookupType(probe.Type) == TypeInvalid: // no type, or a stimulus like "bogus"
				if err == nil {
					t.Errorf("%s #%d: decoded a frame of unknown type: %s", filepath.Base(name), rec.Seq, rec.Data)
				}
			case err != nil:
				t.Errorf("%s #%d: %v\n%s", filepath.Base(name), rec.Seq, err, rec.Data)
			case m.Type.String() != probe.Type:
				t.Errorf("%s #%d: type %v, want %s", filepath.Base(name), rec.Seq, m.Type, probe.Type)
			}
			n++
		}
	}
	t.Logf("%d captured frames decoded", n)
}
