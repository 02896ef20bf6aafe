package wire

import (
	"encoding/json"
	"reflect"
	"testing"
)

// decodeStd parses b with encoding/json, failing the test if it is not JSON.
func decodeStd(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not valid JSON: %v\n%s", err, b)
	}
	return v
}

func TestEncodersRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string // the same object, as encoding/json reads it
	}{
		{"workerregistered", AppendWorkerRegistered(nil, "w1", "tok"),
			`{"type":"workerregistered","worker_id":"w1","reattach_token":"tok"}`},
		{"workerregistered without token", AppendWorkerRegistered(nil, "w1", ""),
			`{"type":"workerregistered","worker_id":"w1"}`},
		{"invokefunction full", AppendInvokeFunction(nil, &Invoke{InvocationID: "i1", FunctionID: "todos::list", Data: raw(`{"a":[1,2]}`), Metadata: raw(`{"m":true}`), Traceparent: "tp", Baggage: "k=v"}),
			`{"type":"invokefunction","invocation_id":"i1","function_id":"todos::list","data":{"a":[1,2]},"metadata":{"m":true},"traceparent":"tp","baggage":"k=v"}`},
		{"invokefunction no data", AppendInvokeFunction(nil, &Invoke{InvocationID: "i1", FunctionID: "f"}),
			`{"type":"invokefunction","invocation_id":"i1","function_id":"f"}`},
		{"invokefunction null data", AppendInvokeFunction(nil, &Invoke{InvocationID: "i1", FunctionID: "f", Data: raw(`null`)}),
			`{"type":"invokefunction","invocation_id":"i1","function_id":"f","data":null}`},
		{"invokefunction fire and forget", AppendInvokeFunction(nil, &Invoke{FunctionID: "f", Data: raw(`1`)}),
			`{"type":"invokefunction","function_id":"f","data":1}`},
		{"invocationresult result", AppendInvocationResult(nil, &Result{InvocationID: "i", FunctionID: "f", Result: raw(`{"items":[]}`), HasResult: true}),
			`{"type":"invocationresult","invocation_id":"i","function_id":"f","result":{"items":[]}}`},
		{"invocationresult null result", AppendInvocationResult(nil, &Result{InvocationID: "i", FunctionID: "f", HasResult: true}),
			`{"type":"invocationresult","invocation_id":"i","function_id":"f","result":null}`},
		{"invocationresult absent result", AppendInvocationResult(nil, &Result{InvocationID: "i", FunctionID: "f", Result: raw(`5`)}),
			`{"type":"invocationresult","invocation_id":"i","function_id":"f"}`},
		{"invocationresult error", AppendInvocationResult(nil, &Result{InvocationID: "i", FunctionID: "f", Error: AppendErrorBody(nil, "function_not_found", "Function todos::lst not found"), Traceparent: "tp", Baggage: "b"}),
			`{"type":"invocationresult","invocation_id":"i","function_id":"f","error":{"code":"function_not_found","message":"Function todos::lst not found"},"traceparent":"tp","baggage":"b"}`},
		{"error body", AppendErrorBody(nil, "invalid_message", `invokefunction: function_id must be a string, got number`),
			`{"code":"invalid_message","message":"invokefunction: function_id must be a string, got number"}`},
		{"error frame", AppendErrorFrame(nil, "AUTH_ERROR", "invalid token"),
			`{"type":"error","error":{"code":"AUTH_ERROR","message":"invalid token"}}`},
		{"triggerregistrationresult failure", AppendTriggerRegistrationResult(nil, "t1", "stream", "ui::x", AppendErrorBody(nil, "trigger_registration_failed", "stream trigger config: stream_name is missing")),
			`{"type":"triggerregistrationresult","id":"t1","trigger_type":"stream","function_id":"ui::x","error":{"code":"trigger_registration_failed","message":"stream trigger config: stream_name is missing"}}`},
		{"triggerregistrationresult ok", AppendTriggerRegistrationResult(nil, "t1", "stream", "f", nil),
			`{"type":"triggerregistrationresult","id":"t1","trigger_type":"stream","function_id":"f"}`},
		{"registertrigger", AppendRegisterTrigger(nil, "trig-ok", "probe-tt", "todos::list", raw(`{"every":5}`), raw(`{"m":1}`)),
			`{"type":"registertrigger","id":"trig-ok","trigger_type":"probe-tt","function_id":"todos::list","config":{"every":5},"metadata":{"m":1}}`},
		{"registertrigger nil config", AppendRegisterTrigger(nil, "t", "tt", "f", nil, nil),
			`{"type":"registertrigger","id":"t","trigger_type":"tt","function_id":"f","config":null}`},
		{"unregistertrigger", AppendUnregisterTrigger(nil, "trig-ok", "probe-tt"),
			`{"type":"unregistertrigger","id":"trig-ok","trigger_type":"probe-tt"}`},
		{"pong", AppendPong(nil), `{"type":"pong"}`},
		{"escaped strings", AppendErrorFrame(nil, "c\"o\\d\ne", "tab\there \x01 \u2028 é 😀 <&>"),
			`{"type":"error","error":{"code":"c\"o\\d\ne","message":"tab\there \u0001 \u2028 é 😀 <&>"}}`},
		{"prefix kept", AppendPong([]byte("x")[:0]), `{"type":"pong"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := decodeStd(t, tt.got), decodeStd(t, []byte(tt.want))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %s\nwant %s", tt.got, tt.want)
			}
			// And our own decoder reads engine frames back (error bodies are not messages).
			if tt.name != "error body" {
				var m Message
				if err := Decode(tt.got, &m); err != nil {
					t.Errorf("Decode(own output) = %v", err)
				}
			}
		})
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " backslash \ slash /`, "\x00\x01\x1f\x7f", "\b\f\n\r\t",
		"é中😀", "\u2028\u2029", "<script>&amp;</script>",
		"bad \xff utf8 \xc3", "\xed\xa0\x80 surrogate half", string([]byte{0xf4, 0x90, 0x80, 0x80}),
	} {
		var want, got string
		enc, _ := json.Marshal(s)
		_ = json.Unmarshal(enc, &want)
		out := AppendString([]byte("prefix"), s)
		if string(out[:6]) != "prefix" {
			t.Fatalf("AppendString clobbered dst: %q", out)
		}
		if err := json.Unmarshal(out[6:], &got); err != nil {
			t.Fatalf("AppendString(%q) = %s: %v", s, out[6:], err)
		}
		if got != want {
			t.Errorf("AppendString(%q) reads back as %q, encoding/json gives %q", s, got, want)
		}
	}
}

func TestAppendWithField(t *testing.T) {
	tests := []struct{ obj, want string }{
		{`{}`, `{"_caller_worker_id":"w"}`},
		{` { } `, ` { "_caller_worker_id":"w"} `},
		{`{"a":1}`, `{"a":1,"_caller_worker_id":"w"}`},
		{"{\"a\":{\"b\":[]}\n}\n", "{\"a\":{\"b\":[]}\n,\"_caller_worker_id\":\"w\"}\n"},
		{`{"_caller_worker_id":"spoofed"}`, `{"_caller_worker_id":"spoofed","_caller_worker_id":"w"}`},
		{`null`, `null`},
		{`[1,2]`, `[1,2]`},
		{`"str"`, `"str"`},
		{`42`, `42`},
		{``, ``},
		{`{`, `{`},
	}
	for _, tt := range tests {
		got := AppendWithField([]byte("P"), json.RawMessage(tt.obj), "_caller_worker_id", "w")
		if string(got) != "P"+tt.want {
			t.Errorf("AppendWithField(%q) = %q, want %q", tt.obj, got[1:], tt.want)
		}
	}
	// The appended member wins when the object is read.
	var v map[string]string
	if err := json.Unmarshal(AppendWithField(nil, raw(`{"_caller_worker_id":"spoofed"}`), "_caller_worker_id", "w"), &v); err != nil || v["_caller_worker_id"] != "w" {
		t.Errorf("appended member does not win: %v %v", v, err)
	}
}

func TestEncodeZeroAllocs(t *testing.T) {
	in := &Invoke{InvocationID: "i", FunctionID: "f", Data: raw(`{"x":1}`)}
	r := &Result{InvocationID: "i", FunctionID: "f", Result: raw(`{}`), HasResult: true}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() {
		buf = AppendInvokeFunction(buf[:0], in)
		buf = AppendInvocationResult(buf, r)
		buf = AppendWithField(buf, in.Data, "_caller_worker_id", "w")
	}); n != 0 {
		t.Errorf("encoders allocate %v times, want 0", n)
	}
}

// TestInvocationResultOneGrowth checks that a frame of unescaped strings
// fits the capacity AppendInvocationResult grows to first, whichever fields
// it has: encoding into nil allocates once.
func TestInvocationResultOneGrowth(t *testing.T) {
	tests := []Result{
		{},
		{InvocationID: "0c4f5a8e-1b2d-4e6f-8a9b-0c1d2e3f4a5b", FunctionID: "stream::set", Result: raw(`{"old_value":null,"new_value":1}`), HasResult: true},
		{InvocationID: "i", FunctionID: "f", HasResult: true},
		{InvocationID: "i", FunctionID: "f", Result: raw(`1`), HasResult: true, Error: raw(`{"code":"c","message":"m"}`), Traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Baggage: "k=v"},
	}
	var frame []byte
	for i := range tests {
		r := &tests[i]
		if n := testing.AllocsPerRun(10, func() { frame = AppendInvocationResult(frame[:0:0], r) }); n != 1 {
			t.Errorf("encoding %+v into nil allocates %v times, want 1", *r, n)
		}
	}
}
