package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

// Frames the decode benchmarks use: the shapes of the invoke relay.
var (
	benchInvoke = []byte(`{"type":"invokefunction","invocation_id":"830898b6-a29f-4cdd-b51b-36538826e879","function_id":"todos::create","data":{"title":"buy milk","completed":false,"tags":["home","urgent"],"_caller_worker_id":"6fa7b496-9b3b-459a-a463-15482e336099"}}`)
	benchResult = []byte(`{"type":"invocationresult","invocation_id":"830898b6-a29f-4cdd-b51b-36538826e879","function_id":"todos::list","result":{"items":[` +
		strings.TrimSuffix(strings.Repeat(`{"id":"5b1f3c2e-8d4a-4e59-9c1b-2f6e7a8d9c0b","title":"item title","completed":false},`, 12), ",") + `]}}`)
	benchTrigger = []byte(`{"type":"registertrigger","function_id":"ui::on-todo-change","config":{"stream_name":"todo","group_id":"todos"},"id":"0e59e8a2-bc46-42f0-b09d-50aeeabd55ef","message_type":"registertrigger","trigger_type":"stream"}`)
	benchEscaped = []byte(`{"type":"invokefunction","invocation_id":"a\"b","function_id":"caf\u00e9::x","data":{"msg":"line\nbreak \"quoted\""},"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`)
)

// stdMessage is the encoding/json baseline: the same fields, decoded by
// reflection into a reused struct.
type stdMessage struct {
	Type            string          `json:"type"`
	ID              *string         `json:"id"`
	InvocationID    *string         `json:"invocation_id"`
	FunctionID      *string         `json:"function_id"`
	TriggerType     *string         `json:"trigger_type"`
	Description     *string         `json:"description"`
	Traceparent     *string         `json:"traceparent"`
	Baggage         *string         `json:"baggage"`
	Data            json.RawMessage `json:"data"`
	Result          json.RawMessage `json:"result"`
	Error           json.RawMessage `json:"error"`
	Config          json.RawMessage `json:"config"`
	Metadata        json.RawMessage `json:"metadata"`
	RequestFormat   json.RawMessage `json:"request_format"`
	ResponseFormat  json.RawMessage `json:"response_format"`
	PreviousWorker  *string         `json:"previous_worker_id"`
	ReattachToken   *string         `json:"reattach_token"`
	ParentServiceID *string         `json:"parent_service_id"`
	Action          *struct {
		Type  string `json:"type"`
		Queue string `json:"queue"`
	} `json:"action"`
}

func benchDecode(b *testing.B, frame []byte) {
	b.Run("scanner", func(b *testing.B) {
		var m Message
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			if err := Decode(frame, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		var m stdMessage
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			m = stdMessage{}
			if err := json.Unmarshal(frame, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDecodeInvoke(b *testing.B)  { benchDecode(b, benchInvoke) }
func BenchmarkDecodeResult(b *testing.B)  { benchDecode(b, benchResult) }
func BenchmarkDecodeTrigger(b *testing.B) { benchDecode(b, benchTrigger) }
func BenchmarkDecodeEscaped(b *testing.B) { benchDecode(b, benchEscaped) }

// BenchmarkRelayCodec is the codec work of relaying one call and its result:
// decode invokefunction, re-encode it with _caller_worker_id, decode the
// worker's invocationresult, re-encode it for the caller.
func BenchmarkRelayCodec(b *testing.B) {
	var m Message
	var buf, data []byte
	b.ReportAllocs()
	for b.Loop() {
		if err := Decode(benchInvoke, &m); err != nil {
			b.Fatal(err)
		}
		data = AppendWithField(data[:0], m.Data, "_caller_worker_id", "6fa7b496-9b3b-459a-a463-15482e336099")
		buf = AppendInvokeFunction(buf[:0], &Invoke{InvocationID: m.InvocationID, FunctionID: m.FunctionID, Data: data, Metadata: m.Metadata, Traceparent: m.Traceparent, Baggage: m.Baggage})
		if err := Decode(benchResult, &m); err != nil {
			b.Fatal(err)
		}
		buf = AppendInvocationResult(buf[:0], &Result{InvocationID: m.InvocationID, FunctionID: m.FunctionID, Result: m.Result, HasResult: m.Result != nil, Error: m.Error})
	}
}

func BenchmarkEncodeInvoke(b *testing.B) {
	in := &Invoke{InvocationID: "830898b6-a29f-4cdd-b51b-36538826e879", FunctionID: "todos::create", Data: json.RawMessage(`{"title":"buy milk","completed":false}`), Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendInvokeFunction(buf[:0], in)
	}
}

func BenchmarkEncodeResult(b *testing.B) {
	r := &Result{InvocationID: "830898b6-a29f-4cdd-b51b-36538826e879", FunctionID: "todos::list", Result: json.RawMessage(`{"items":[]}`), HasResult: true}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendInvocationResult(buf[:0], r)
	}
}

func BenchmarkAppendString(b *testing.B) {
	s := strings.Repeat("plain ascii text with no escapes ", 4)
	var buf []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = AppendString(buf[:0], s)
	}
}
