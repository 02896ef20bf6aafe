package engine

import (
	"encoding/json"
	"time"

	"testing"

	"github.com/iii-go/iii/engine/config"
)

// Routing and the invocation lifecycle (docs/wire-protocol.md#invocations and #disconnect-cleanup), driven
// over real connections: a caller, an owner that answers by hand, and the
// exact frames each side sees.

func TestInvokeRelay(t *testing.T) {
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	tests := []struct {
		name      string
		data      any
		extra     []any          // more invokefunction fields from the caller
		wantData  any            // data the owner receives ("<caller>" is the caller's worker id)
		wantExtra map[string]any // more fields on the owner's frame
		answer    map[string]any // the owner's invocationresult fields
		want      map[string]any // result frame fields besides type, invocation_id and function_id
	}{
		{name: "object payload gains the caller id",
			data: map[string]any{"a": 1}, wantData: map[string]any{"a": 1, "_caller_worker_id": "<caller>"},
			answer: map[string]any{"result": map[string]any{"ok": true}}, want: map[string]any{"result": map[string]any{"ok": true}}},
		{name: "caller id overrides a forged one",
			data: map[string]any{"_caller_worker_id": "forged"}, wantData: map[string]any{"_caller_worker_id": "<caller>"},
			answer: map[string]any{"result": 1}, want: map[string]any{"result": 1}},
		{name: "array payload is passed unchanged",
			data: []any{1, "two"}, wantData: []any{1, "two"},
			answer: map[string]any{"result": "x"}, want: map[string]any{"result": "x"}},
		{name: "string payload is passed unchanged",
			data: "hi", wantData: "hi",
			answer: map[string]any{"result": false}, want: map[string]any{"result": false}},
		{name: "null payload stays null",
			data: nil, wantData: nil,
			answer: map[string]any{"result": []any{}}, want: map[string]any{"result": []any{}}},
		{name: "a null result reaches the caller as an absent result",
			data: map[string]any{}, wantData: map[string]any{"_caller_worker_id": "<caller>"},
			answer: map[string]any{"result": nil}, want: map[string]any{}},
		{name: "no result at all is an absent result",
			data: map[string]any{}, wantData: map[string]any{"_caller_worker_id": "<caller>"},
			answer: map[string]any{}, want: map[string]any{}},
		{name: "an error body is relayed verbatim",
			data: 1, wantData: 1,
			answer: map[string]any{"error": map[string]any{"code": "E_CUSTOM", "message": "boom", "stacktrace": "at f (x.js:1)"}},
			want:   map[string]any{"error": map[string]any{"code": "E_CUSTOM", "message": "boom", "stacktrace": "at f (x.js:1)"}}},
		{name: "an error wins over a result",
			data: 1, wantData: 1,
			answer: map[string]any{"result": 5, "error": map[string]any{"code": "E", "message": "m"}},
			want:   map[string]any{"error": map[string]any{"code": "E", "message": "m"}}},
		{name: "trace context is forwarded and the caller's is echoed",
			data: 1, extra: []any{"traceparent", tp, "baggage", "user=7"}, wantData: 1,
			wantExtra: map[string]any{"traceparent": tp, "baggage": "user=7"},
			answer:    map[string]any{"result": 2, "traceparent": "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01", "baggage": "other=1"},
			want:      map[string]any{"result": 2, "traceparent": tp, "baggage": "user=7"}},
		{name: "invocation metadata is forwarded",
			data: 1, extra: []any{"metadata", map[string]any{"tenant": "t1"}}, wantData: 1,
			wantExtra: map[string]any{"metadata": map[string]any{"tenant": "t1"}},
			answer:    map[string]any{"result": 3}, want: map[string]any{"result": 3}},
	}
	e := startEngine(t, nil, nil)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := seqID("svc::relay", i)
			owner := dial(t, e.url(0))
			owner.register(fn)
			owner.sync()
			caller := dial(t, e.url(0))
			id := seqID("relay", i)
			caller.invokeAsync(id, fn, tt.data, tt.extra...)

			got := owner.invoked(fn)
			wantData := norm(t, tt.wantData)
			if m, ok := wantData.(map[string]any); ok && m["_caller_worker_id"] == "<caller>" {
				m["_caller_worker_id"] = caller.id
			}
			wantFrame := map[string]any{"type": "invokefunction", "invocation_id": id, "function_id": fn, "data": wantData}
			for k, v := range tt.wantExtra {
				wantFrame[k] = v
			}
			sameJSON(t, "the owner's invokefunction", got, wantFrame)

			owner.reply(got, tt.answer)
			want := map[string]any{"type": "invocationresult", "invocation_id": id, "function_id": fn}
			for k, v := range tt.want {
				want[k] = v
			}
			sameJSON(t, "the caller's invocationresult", caller.waitResult(id), want)
		})
	}
}

func TestInvokeWithoutReply(t *testing.T) {
	e := startEngine(t, nil, nil)
	owner := dial(t, e.url(0))
	owner.register("svc::sink")
	owner.sync()
	tests := []struct {
		name   string
		frame  map[string]any
		sameID bool // the owner sees the caller's invocation id
	}{
		{"void action", map[string]any{"invocation_id": "void-1", "action": map[string]any{"type": "void"}}, true},
		{"no invocation id", map[string]any{}, false},
		{"null invocation id", map[string]any{"invocation_id": nil}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			caller := dial(t, e.url(0))
			m := map[string]any{"type": "invokefunction", "function_id": "svc::sink", "data": map[string]any{"n": 1}}
			for k, v := range tt.frame {
				m[k] = v
			}
			caller.send(m)
			got := owner.invoked("svc::sink")
			if id := got.str("invocation_id"); id == "" || (id == "void-1") != tt.sameID {
				t.Fatalf("the owner got invocation id %q", id)
			}
			sameJSON(t, "data", got["data"], map[string]any{"n": 1, "_caller_worker_id": caller.id})
			owner.reply(got, map[string]any{"result": "ignored"})
			owner.sync()  // the owner's result has been applied ...
			caller.sync() // ... and anything it sent the caller is ahead of this
			caller.none("invocationresult")
		})
	}
}

func TestInvokeRefusals(t *testing.T) {
	e := startEngine(t, nil, nil)
	notFound := map[string]any{"code": "function_not_found", "message": "Function nope::x not found"}
	tests := []struct {
		name   string
		frame  map[string]any
		wantID string // "" = a fresh id the engine picks
		want   map[string]any
	}{
		{"unknown function", map[string]any{"invocation_id": "r-1"}, "r-1", notFound},
		{"unknown function, void call", map[string]any{"invocation_id": "r-2", "action": map[string]any{"type": "void"}}, "r-2", notFound},
		{"unknown function, no invocation id", map[string]any{}, "", notFound},
		{"enqueue without a queue provider", map[string]any{"invocation_id": "r-3", "action": map[string]any{"type": "enqueue", "queue": "jobs"}}, "r-3",
			map[string]any{"code": "enqueue_error", "message": "No queue provider is installed. Add the iii-queue module to use action enqueue."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, e.url(0))
			m := map[string]any{"type": "invokefunction", "function_id": "nope::x", "data": 1}
			for k, v := range tt.frame {
				m[k] = v
			}
			c.send(m)
			r := c.next("invocationresult", func(frame) bool { return true })
			if tt.wantID != "" && r.str("invocation_id") != tt.wantID || r.str("invocation_id") == "" {
				t.Fatalf("result under invocation id %q, want %q", r.str("invocation_id"), tt.wantID)
			}
			sameJSON(t, "result", r, map[string]any{"type": "invocationresult", "invocation_id": r.str("invocation_id"), "function_id": "nope::x", "error": tt.want})
		})
	}
}

func TestOwnerDisconnectStopsInvocations(t *testing.T) {
	e := startEngine(t, nil, nil)
	owner := dial(t, e.url(0))
	owner.register("svc::slow")
	owner.sync()
	caller := dial(t, e.url(0))
	for i := range 3 {
		caller.invokeAsync(seqID("slow", i), "svc::slow", i)
	}
	for range 3 {
		owner.invoked("svc::slow")
	}
	owner.conn.Close(1000, "")
	for i := range 3 {
		sameJSON(t, "stopped call", caller.waitResult(seqID("slow", i)), map[string]any{
			"type": "invocationresult", "invocation_id": seqID("slow", i), "function_id": "svc::slow",
			"error": map[string]any{"code": "invocation_stopped", "message": "Invocation stopped"}})
	}
	// Until the departure is recorded a call may still be stopped; then the
	// function is gone.
	eventually(t, "svc::slow to be gone", func() bool {
		switch got := errorCode(caller.call("svc::slow", 1)); got {
		case "function_not_found":
			return true
		case "invocation_stopped":
			return false
		default:
			t.Fatalf("calling a departed worker's function: %q", got)
			return false
		}
	})
}

func TestSameInvocationIDFromTwoCallers(t *testing.T) {
	e := startEngine(t, nil, nil)
	owner := dial(t, e.url(0))
	owner.register("svc::who")
	owner.sync()
	a, b := dial(t, e.url(0)), dial(t, e.url(0))
	a.invokeAsync("dup", "svc::who", map[string]any{})
	first := owner.invoked("svc::who")
	b.invokeAsync("dup", "svc::who", map[string]any{})
	second := owner.invoked("svc::who")
	if first.str("invocation_id") != "dup" || second.str("invocation_id") == "dup" || second.str("invocation_id") == "" {
		t.Fatalf("owner saw invocation ids %q and %q; want dup and a fresh one", first.str("invocation_id"), second.str("invocation_id"))
	}
	// Answer the second first: each answer must reach its own caller.
	for _, f := range []frame{second, first} {
		owner.reply(f, map[string]any{"result": f["data"].(map[string]any)["_caller_worker_id"]})
	}
	for _, c := range []*client{a, b} {
		sameJSON(t, "result", c.waitResult("dup"), map[string]any{"type": "invocationresult", "invocation_id": "dup", "function_id": "svc::who", "result": c.id})
	}
}

func TestLateAndUnknownResultsAreDropped(t *testing.T) {
	e := startEngine(t, nil, nil)
	owner := dial(t, e.url(0))
	owner.register("svc::twice")
	owner.sync()
	caller := dial(t, e.url(0))
	caller.invokeAsync("t-1", "svc::twice", 1)
	f := owner.invoked("svc::twice")
	owner.reply(f, map[string]any{"result": "first"})
	owner.reply(f, map[string]any{"result": "second"})
	owner.send(map[string]any{"type": "invocationresult", "invocation_id": "nobody-asked", "function_id": "svc::twice", "result": 1})
	sameJSON(t, "result", caller.waitResult("t-1"), map[string]any{"type": "invocationresult", "invocation_id": "t-1", "function_id": "svc::twice", "result": "first"})
	owner.sync()
	caller.sync()
	caller.none("invocationresult")
	owner.none("error")
}

// An engine-originated call (here: an auth function) that is never answered
// fails after engine.call_timeout; the answer that comes later is dropped.
func TestEngineCallTimeout(t *testing.T) {
	e := startEngine(t, gated(), func(c *config.Config) { c.Engine.CallTimeout = 250 * time.Millisecond })
	tr := dial(t, e.url(0))
	tr.register("test::auth")
	tr.sync()
	u := dialRaw(t, e.url(1), nil)
	inv := tr.invoked("test::auth")
	sameJSON(t, "refusal", u.next("error", func(frame) bool { return true }), map[string]any{"type": "error",
		"error": map[string]any{"code": "AUTH_ERROR", "message": "auth function test::auth did not answer within 250 ms"}})
	u.waitClosed()
	tr.reply(inv, map[string]any{"result": map[string]any{}})
	tr.sync()
	tr.none("error")
}

func TestReattach(t *testing.T) {
	tests := []struct {
		name    string
		token   func(old *client) string
		prev    func(old *client) string
		retired bool
	}{
		{"right token retires the old connection", func(o *client) string { return o.token() }, func(o *client) string { return o.id }, true},
		{"wrong token is ignored", func(*client) string { return "not-the-token" }, func(o *client) string { return o.id }, false},
		{"no token is ignored", func(*client) string { return "" }, func(o *client) string { return o.id }, false},
		{"unknown worker is ignored", func(o *client) string { return o.token() }, func(*client) string { return "no-such-worker" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEngine(t, nil, nil)
			old := dial(t, e.url(0))
			old.serve("svc::mine", func(json.RawMessage, frame) (any, error) { return "old", nil })
			old.sync()
			if old.token() == "" {
				t.Fatal("workerregistered carried no reattach_token")
			}
			fresh := dial(t, e.url(0))
			fresh.send(map[string]any{"type": "reattach", "previous_worker_id": tt.prev(old), "reattach_token": tt.token(old)})
			fresh.sync()
			if !tt.retired {
				if got := fresh.result("svc::mine", nil); got != "old" {
					t.Fatalf("svc::mine answered %v after a refused reattach", got)
				}
				return
			}
			old.waitClosed()
			if got := errorCode(fresh.call("svc::mine", nil)); got != "function_not_found" {
				t.Fatalf("the retired connection's function is still callable (%q)", got)
			}
			fresh.serve("svc::mine", func(json.RawMessage, frame) (any, error) { return "new", nil })
			if got := fresh.result("svc::mine", nil); got != "new" {
				t.Fatalf("svc::mine answered %v after re-registration", got)
			}
		})
	}
}

func TestPingAndIgnoredFrames(t *testing.T) {
	e := startEngine(t, nil, nil)
	c := dial(t, e.url(0))
	c.send(map[string]any{"type": "ping"})
	sameJSON(t, "pong", c.next("pong", func(frame) bool { return true }), map[string]any{"type": "pong"})
	c.send(map[string]any{"type": "pong"})
	c.send(map[string]any{"type": "registerservice", "id": "svc", "name": "Service", "description": "d"})
	c.send(map[string]any{"type": "unregisterfunction", "id": "never::registered"})
	c.send(map[string]any{"type": "unregistertrigger", "id": "never-registered"})
	c.send(map[string]any{"type": "unregistertriggertype", "id": "never-registered"})
	c.send(map[string]any{"type": "triggerregistrationresult", "id": "x", "trigger_type": "y", "function_id": "z"})
	c.sync()
	c.none("")
}

func TestBadFrames(t *testing.T) {
	e := startEngine(t, nil, func(c *config.Config) { c.Engine.MaxJSONDepth = 4 })
	errFrame := func(code, msg string) map[string]any {
		return map[string]any{"type": "error", "error": map[string]any{"code": code, "message": msg}}
	}
	tests := []struct {
		name string
		raw  string
		want map[string]any
	}{
		{"not JSON", `not json`, errFrame("invalid_message", "message is not valid JSON: invalid literal at offset 0")},
		{"not an object", `[1,2]`, errFrame("invalid_message", "message must be a JSON object, got array")},
		{"trailing data", `{"type":"ping"} x`, errFrame("invalid_message", "message is not valid JSON: data after the top-level object at offset 16")},
		{"no type", `{}`, errFrame("invalid_message", "type is missing")},
		{"type not a string", `{"type":5}`, errFrame("invalid_message", "type must be a string, got number")},
		{"unknown type", `{"type":"bogus"}`, errFrame("invalid_message", `unknown type "bogus"`)},
		{"server-only type", `{"type":"workerregistered","worker_id":"w"}`, errFrame("invalid_message", `message type "workerregistered" is not accepted from a client`)},
		{"error frame from a client", `{"type":"error","error":{"code":"x"}}`, errFrame("invalid_message", `message type "error" is not accepted from a client`)},
		{"empty function id", `{"type":"registerfunction","id":""}`, errFrame("invalid_argument", "registerfunction: id must not be empty")},
		{"metadata not an object", `{"type":"registerfunction","id":"f","metadata":[1]}`, errFrame("invalid_message", "registerfunction: metadata must be an object, got array")},
		{"invoke without invocation id", `{"type":"invokefunction","function_id":7}`, errFrame("invalid_message", "invokefunction: function_id must be a string, got number")},
		{"invocation id of the wrong type", `{"type":"invokefunction","invocation_id":3,"function_id":"f"}`, errFrame("invalid_message", "invokefunction: invocation_id must be a string, got number")},
		{"invoke with a bad function id", `{"type":"invokefunction","invocation_id":"bad-1","function_id":7}`, map[string]any{
			"type": "invocationresult", "invocation_id": "bad-1", "function_id": "",
			"error": map[string]any{"code": "invalid_message", "message": "invokefunction: function_id must be a string, got number"}}},
		{"invoke with a bad action", `{"type":"invokefunction","invocation_id":"bad-2","function_id":"f","action":{"type":"later"}}`, map[string]any{
			"type": "invocationresult", "invocation_id": "bad-2", "function_id": "f",
			"error": map[string]any{"code": "invalid_message", "message": `invokefunction: action.type must be "void" or "enqueue", got "later"`}}},
		{"enqueue without a queue", `{"type":"invokefunction","invocation_id":"bad-3","function_id":"f","action":{"type":"enqueue"}}`, map[string]any{
			"type": "invocationresult", "invocation_id": "bad-3", "function_id": "f",
			"error": map[string]any{"code": "invalid_message", "message": "invokefunction: action.queue is missing"}}},
		{"too deep", `{"type":"invokefunction","invocation_id":"deep-1","function_id":"f","data":[[[[[1]]]]]}`, map[string]any{
			"type": "invocationresult", "invocation_id": "deep-1", "function_id": "",
			"error": map[string]any{"code": "nesting_too_deep", "message": "invokefunction: message nests deeper than 4 levels at offset 79"}}},
		{"trigger with an empty function id", `{"type":"registertrigger","id":"t-bad","trigger_type":"stream","function_id":""}`, map[string]any{
			"type": "triggerregistrationresult", "id": "t-bad", "trigger_type": "stream", "function_id": "",
			"error": map[string]any{"code": "invalid_argument", "message": "registertrigger: function_id must not be empty"}}},
		{"result nobody waits for, malformed", `{"type":"invocationresult","invocation_id":"nobody","function_id":1}`,
			errFrame("invalid_message", "invocationresult: function_id must be a string, got number")},
		{"reattach without a worker id", `{"type":"reattach"}`, errFrame("invalid_message", "reattach: previous_worker_id is missing")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, e.url(0))
			c.sendRaw(tt.raw)
			typ := tt.want["type"].(string)
			sameJSON(t, "answer", c.next(typ, func(frame) bool { return true }), tt.want)
			c.sync() // the connection is still usable
			c.none("")
		})
	}
}

// A worker's result that does not decode still ends the call it answers.
func TestMalformedResultFailsTheCall(t *testing.T) {
	e := startEngine(t, nil, nil)
	owner := dial(t, e.url(0))
	owner.register("svc::broken")
	owner.sync()
	caller := dial(t, e.url(0))
	caller.invokeAsync("m-1", "svc::broken", 1)
	f := owner.invoked("svc::broken")
	owner.sendRaw(`{"type":"invocationresult","invocation_id":"` + f.str("invocation_id") + `","function_id":5}`)
	sameJSON(t, "owner's error frame", owner.next("error", func(frame) bool { return true }),
		map[string]any{"type": "error", "error": map[string]any{"code": "invalid_message", "message": "invocationresult: function_id must be a string, got number"}})
	sameJSON(t, "caller's result", caller.waitResult("m-1"), map[string]any{"type": "invocationresult", "invocation_id": "m-1", "function_id": "svc::broken",
		"error": map[string]any{"code": "invalid_message", "message": "the worker's result was refused: invocationresult: function_id must be a string, got number"}})
}
