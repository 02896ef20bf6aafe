package engine

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/iii-go/iii/engine/config"
)

// RBAC listeners (docs/wire-protocol.md#rbac): what the auth function sees,
// how its answer is refused, and what the grants then allow.

// serveMeta registers a function with metadata, answered by h.
func (c *client) serveMeta(id string, meta map[string]any, h func(json.RawMessage, frame) (any, error)) {
	c.mu.Lock()
	c.handlers[id] = h
	c.mu.Unlock()
	c.send(map[string]any{"type": "registerfunction", "id": id, "metadata": meta})
}

// capture is a handler that records each payload it gets and answers ans.
type capture struct{ ch chan any }

func newCapture() *capture { return &capture{ch: make(chan any, 64)} }

func (c *capture) answer(ans any, err error) func(json.RawMessage, frame) (any, error) {
	return func(data json.RawMessage, _ frame) (any, error) {
		var v any
		json.Unmarshal(data, &v)
		c.ch <- v
		return ans, err
	}
}

func (c *capture) next(t *testing.T) any {
	t.Helper()
	select {
	case v := <-c.ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("the function was not called within 5 s")
		return nil
	}
}

func (c *capture) none(t *testing.T) {
	t.Helper()
	select {
	case v := <-c.ch:
		t.Fatalf("unexpected call with %v", v)
	default:
	}
}

func TestAuthFunctionInput(t *testing.T) {
	e := startEngine(t, gated(), nil)
	tr := dial(t, e.url(0))
	in := newCapture()
	tr.serve("test::auth", in.answer(map[string]any{}, nil))
	tr.sync()
	h := http.Header{}
	h.Set("X-Api-Key", "k1")
	h.Add("X-Multi", "first")
	h.Add("X-Multi", "last")
	h.Set("X-Binary", "caf\xc3\xa9")
	dialHeader(t, e.url(1)+"/?a=1&b=hello%20world&a=2&plus=a+b&bad=%zz&=novalue&flag&enc%2Dkey=v", h)
	got := in.next(t).(map[string]any)
	headers := got["headers"].(map[string]any)
	for k, want := range map[string]any{"x-api-key": "k1", "x-multi": "last", "upgrade": "websocket", "x-binary": nil} {
		if headers[k] != want {
			t.Errorf("header %s = %v, want %v (headers %v)", k, headers[k], want, headers)
		}
	}
	sameJSON(t, "query_params", got["query_params"], map[string]any{
		"a": []any{"1", "2"}, "b": []any{"hello world"}, "plus": []any{"a+b"}, "bad": []any{"%zz"}, "flag": []any{""}, "enc-key": []any{"v"}})
	if got["ip_address"] != "127.0.0.1" {
		t.Errorf("ip_address %v", got["ip_address"])
	}
}

func TestAuthRefusals(t *testing.T) {
	tests := []struct {
		name   string
		answer any
		err    error
		absent bool // no auth function registered
		msg    string
	}{
		{name: "auth throws", err: errors.New("bad token"), msg: "bad token"},
		{name: "auth returns a string", answer: "yes", msg: "auth function returned a string, not an AuthResult object"},
		{name: "auth returns an array", answer: []any{}, msg: "auth function returned an array, not an AuthResult object"},
		{name: "auth returns a number", answer: 1, msg: "auth function returned a number, not an AuthResult object"},
		{name: "auth returns a boolean", answer: true, msg: "auth function returned a boolean, not an AuthResult object"},
		{name: "auth returns null", answer: nil, msg: "auth function returned no result"},
		{name: "a field of the wrong type", answer: map[string]any{"allowed_functions": "all"}, msg: "auth function result is not an AuthResult: allowed_functions must not be string"},
		{name: "no auth function", absent: true, msg: "Function test::auth not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEngine(t, gated(), nil)
			if !tt.absent {
				tr := dial(t, e.url(0))
				tr.serve("test::auth", func(json.RawMessage, frame) (any, error) { return tt.answer, tt.err })
				tr.sync()
			}
			u := dialRaw(t, e.url(1), nil)
			sameJSON(t, "refusal", u.next("error", func(frame) bool { return true }),
				map[string]any{"type": "error", "error": map[string]any{"code": "AUTH_ERROR", "message": tt.msg}})
			u.waitClosed()
			u.none("workerregistered")
		})
	}
}

func TestRBACInvokeDecisions(t *testing.T) {
	e := startEngine(t, []config.Listener{{RBAC: &config.RBAC{
		AuthFunctionID: "test::auth",
		Expose: []config.ExposeRule{
			{Glob: "todos::*"},
			{Metadata: map[string]config.MetaMatch{"public": {Value: true}}},
			{Metadata: map[string]config.MetaMatch{"tier": {Glob: "gold*", IsGlob: true}, "region": {Value: "eu"}}},
		},
	}}}, nil)
	tr := withAuth(t, e, map[string]any{
		"allowed_functions":   []string{"priv::allowed", "engine::functions::list", "engine::functions::info"},
		"forbidden_functions": []string{"todos::secret"},
	})
	echo := func(id string) func(json.RawMessage, frame) (any, error) {
		return func(json.RawMessage, frame) (any, error) { return id, nil }
	}
	for id, meta := range map[string]map[string]any{
		"todos::list": nil, "todos::secret": nil, "priv::allowed": nil, "priv::hidden": nil,
		"meta::pub": {"public": true}, "meta::strpub": {"public": "true"},
		"meta::gold": {"tier": "gold-plus", "region": "eu"}, "meta::gold-us": {"tier": "gold", "region": "us"},
		"meta::silver": {"tier": "silver", "region": "eu"}, "meta::numtier": {"tier": 1, "region": "eu"},
	} {
		tr.serveMeta(id, meta, echo(id))
	}
	tr.sync()
	u := dial(t, e.url(1))
	notExposed := func(id string) map[string]any {
		return map[string]any{"code": "FORBIDDEN", "message": "function '" + id + "' not allowed (add to rbac.expose_functions)"}
	}
	tests := []struct {
		fn      string
		wantErr map[string]any // nil = the call goes through
	}{
		{"todos::list", nil},
		{"todos::secret", map[string]any{"code": "FORBIDDEN", "message": "function 'todos::secret' not allowed (remove from rbac.forbidden_functions)"}},
		{"priv::allowed", nil},
		{"priv::hidden", notExposed("priv::hidden")},
		{"meta::pub", nil},
		{"meta::strpub", notExposed("meta::strpub")},
		{"meta::gold", nil},
		{"meta::gold-us", notExposed("meta::gold-us")},
		{"meta::silver", notExposed("meta::silver")},
		{"meta::numtier", notExposed("meta::numtier")},
		{"nope::unknown", notExposed("nope::unknown")},
		{"engine::health::check", notExposed("engine::health::check")},
	}
	for _, tt := range tests {
		t.Run(tt.fn, func(t *testing.T) {
			r := u.call(tt.fn, map[string]any{})
			if tt.wantErr != nil {
				sameJSON(t, "refusal", r["error"], tt.wantErr)
				return
			}
			if r["error"] != nil || r["result"] != tt.fn {
				t.Fatalf("got %v, want the result %q", r, tt.fn)
			}
		})
	}
	t.Run("infrastructure functions are always allowed", func(t *testing.T) {
		for _, fn := range []string{"engine::log::info", "engine::baggage::get", "engine::workers::register"} {
			if r := u.call(fn, map[string]any{"message": "hello"}); r["error"] != nil {
				t.Errorf("%s: %v", fn, r["error"])
			}
		}
	})
	t.Run("discovery shows only callable functions", func(t *testing.T) {
		var list struct {
			Functions []struct {
				ID string `json:"function_id"`
			} `json:"functions"`
		}
		into(t, u.result("engine::functions::list", map[string]any{}), &list)
		var ids []string
		for _, f := range list.Functions {
			ids = append(ids, f.ID)
		}
		sameJSON(t, "visible functions", ids, []string{"meta::gold", "meta::pub", "priv::allowed", "todos::list"})
		sameJSON(t, "info on a hidden function", u.call("engine::functions::info", map[string]any{"function_id": "priv::hidden"})["error"],
			map[string]any{"code": "FORBIDDEN", "message": "function 'priv::hidden' not allowed"})
		info := u.result("engine::functions::info", map[string]any{"function_id": "meta::pub"}).(map[string]any)
		sameJSON(t, "info on an exposed function", info, map[string]any{"function_id": "meta::pub", "worker_name": tr.id,
			"metadata": map[string]any{"public": true}, "registered_triggers": []any{}})
	})
}

func TestSessionGrants(t *testing.T) {
	tests := []struct {
		name  string
		grant map[string]any
		send  map[string]any
		want  map[string]any // the frame the session gets back
	}{
		{"function registration switched off", map[string]any{"allow_function_registration": false},
			map[string]any{"type": "registerfunction", "id": "ui::x"},
			map[string]any{"type": "error", "error": map[string]any{"code": "FORBIDDEN", "message": "registerfunction 'ui::x': function registration is not allowed for this session"}}},
		{"trigger type registration is off unless granted", map[string]any{},
			map[string]any{"type": "registertriggertype", "id": "q"},
			map[string]any{"type": "error", "error": map[string]any{"code": "FORBIDDEN", "message": "registertriggertype 'q': trigger type registration is not allowed for this session"}}},
		{"trigger type outside allowed_trigger_types", map[string]any{"allowed_trigger_types": []string{"state"}},
			map[string]any{"type": "registertrigger", "id": "t", "trigger_type": "stream", "function_id": "ui::h", "config": map[string]any{"stream_name": "s"}},
			map[string]any{"type": "triggerregistrationresult", "id": "t", "trigger_type": "stream", "function_id": "ui::h",
				"error": map[string]any{"code": "FORBIDDEN", "message": "registertrigger 't': trigger type 'stream' is not in allowed_trigger_types"}}},
		{"engine::register_trigger outside allowed_trigger_types", map[string]any{"allowed_trigger_types": []string{"state"}, "allowed_functions": []string{"engine::register_trigger"}},
			map[string]any{"type": "invokefunction", "invocation_id": "rt", "function_id": "engine::register_trigger",
				"data": map[string]any{"trigger_type": "stream", "function_id": "ui::h", "config": map[string]any{"stream_name": "s"}}},
			map[string]any{"type": "invocationresult", "invocation_id": "rt", "function_id": "engine::register_trigger",
				"error": map[string]any{"code": "FORBIDDEN", "message": "trigger type 'stream' is not in allowed_trigger_types"}}},
		{"a trigger id owned by another connection", map[string]any{},
			map[string]any{"type": "registertrigger", "id": "taken", "trigger_type": "state", "function_id": "ui::h", "config": map[string]any{}},
			map[string]any{"type": "triggerregistrationresult", "id": "taken", "trigger_type": "state", "function_id": "ui::h",
				"error": map[string]any{"code": "FORBIDDEN", "message": `registertrigger "taken": id is owned by another connection`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEngine(t, gated(), nil)
			tr := withAuth(t, e, tt.grant)
			tr.send(map[string]any{"type": "registertrigger", "id": "taken", "trigger_type": "state", "function_id": "ops::h", "config": map[string]any{}})
			tr.sync()
			u := dial(t, e.url(1))
			u.send(tt.send)
			sameJSON(t, "answer", u.next(tt.want["type"].(string), func(frame) bool { return true }), tt.want)
			if rows := triggerRows(t, tr, map[string]any{"worker": u.id}); len(rows) != 0 {
				t.Fatalf("the refused session holds triggers %v", rows)
			}
			if list := tr.result("engine::functions::list", map[string]any{"worker": u.id}).(map[string]any)["functions"].([]any); len(list) != 0 {
				t.Fatalf("the refused session holds functions %v", list)
			}
		})
	}
}

func TestFunctionRegistrationPrefix(t *testing.T) {
	e := startEngine(t, gated(), nil)
	tr := withAuth(t, e, map[string]any{"function_registration_prefix": "tab1", "allowed_functions": []string{"engine::register_trigger"}})
	u := dial(t, e.url(1))
	u.register("h")
	u.sync()
	if got := ownerOf(t, tr, "tab1::h"); got != u.id {
		t.Fatalf("tab1::h owned by %q, want the session", got)
	}
	if got := ownerOf(t, tr, "h"); got != "" {
		t.Fatalf("the unqualified id h is registered (owner %q)", got)
	}
	tr.invokeAsync("q-1", "tab1::h", map[string]any{"q": 1})
	f := u.invoked("h") // the session knows its function by the local id
	u.reply(f, map[string]any{"result": "from tab"})
	sameJSON(t, "trusted call of the qualified id", tr.waitResult("q-1"),
		map[string]any{"type": "invocationresult", "invocation_id": "q-1", "function_id": "tab1::h", "result": "from tab"})

	u.send(map[string]any{"type": "registertrigger", "id": "t-own", "trigger_type": "state", "function_id": "h", "config": map[string]any{"scope": "s"}})
	u.sync()
	res := u.result("engine::register_trigger", map[string]any{"trigger_type": "state", "function_id": "h", "config": map[string]any{"scope": "s2"}})
	engineTrigger := res.(map[string]any)["id"].(string)
	for id, wantFn := range map[string]string{"t-own": "tab1::h", engineTrigger: "tab1::h"} {
		row := tr.result("engine::registered-triggers::info", map[string]any{"id": id}).(map[string]any)
		if row["function_id"] != wantFn {
			t.Errorf("trigger %s bound to %v, want %s", id, row["function_id"], wantFn)
		}
	}
	// A state write fires the session's trigger, delivered under its local id.
	tr.mustCall("state::set", map[string]any{"scope": "s", "key": "k", "value": 1})
	if f := u.invoked("h"); f["data"].(map[string]any)["scope"] != "s" {
		t.Fatalf("state trigger delivered %v", f)
	}

	u.send(map[string]any{"type": "unregisterfunction", "id": "h"})
	u.sync()
	if got := ownerOf(t, tr, "tab1::h"); got != "" {
		t.Fatalf("tab1::h still owned by %q after unregisterfunction h", got)
	}
}

func TestRegistrationHooks(t *testing.T) {
	e := startEngine(t, []config.Listener{{RBAC: &config.RBAC{
		AuthFunctionID:            "test::auth",
		OnFunctionRegistration:    "hook::fn",
		OnTriggerRegistration:     "hook::trg",
		OnTriggerTypeRegistration: "hook::type",
	}}}, nil)
	tr := withAuth(t, e, map[string]any{"context": map[string]any{"user": "u1"}, "allow_trigger_type_registration": true})
	inputs := make(chan any, 16)
	hook := func(key string, decide map[string]func() (any, error)) func(json.RawMessage, frame) (any, error) {
		return func(data json.RawMessage, _ frame) (any, error) {
			var in map[string]any
			json.Unmarshal(data, &in)
			d := decide[in[key].(string)]
			inputs <- in
			if d != nil {
				return d()
			}
			return map[string]any{}, nil
		}
	}
	no := func() (any, error) { return nil, errors.New("no") }
	notObject := func() (any, error) { return false, nil }
	tr.serve("hook::fn", hook("function_id", map[string]func() (any, error){
		"rename": func() (any, error) {
			return map[string]any{"function_id": "renamed::x", "description": "by hook", "metadata": map[string]any{"k": 1}}, nil
		},
		"deny::err":   no,
		"deny::false": notObject,
	}))
	tr.serve("hook::trg", hook("trigger_id", map[string]func() (any, error){
		"t-rename": func() (any, error) {
			return map[string]any{"trigger_id": "t-renamed", "trigger_type": "state", "function_id": "ui::other", "config": map[string]any{"scope": "hooked"}}, nil
		},
		"t-deny": no,
	}))
	tr.serve("hook::type", hook("trigger_type_id", map[string]func() (any, error){
		"q-rename": func() (any, error) {
			return map[string]any{"trigger_type_id": "q-renamed", "description": "hooked"}, nil
		},
		"q-deny": notObject,
	}))
	tr.sync()
	u := dial(t, e.url(1))
	ctx := map[string]any{"user": "u1"}

	t.Run("function hook renames", func(t *testing.T) {
		u.register("rename", "description", "orig", "metadata", map[string]any{"a": 1})
		sameJSON(t, "hook input", recv(t, inputs), map[string]any{"function_id": "rename", "description": "orig", "metadata": map[string]any{"a": 1}, "context": ctx})
		u.sync()
		info := tr.result("engine::functions::info", map[string]any{"function_id": "renamed::x"})
		sameJSON(t, "registered", info, map[string]any{"function_id": "renamed::x", "worker_name": u.id, "description": "by hook",
			"metadata": map[string]any{"k": 1}, "registered_triggers": []any{}})
		if ownerOf(t, tr, "rename") != "" {
			t.Fatal("the original id was registered too")
		}
	})
	t.Run("function hook allows unchanged", func(t *testing.T) {
		u.register("keep")
		sameJSON(t, "hook input", recv(t, inputs), map[string]any{"function_id": "keep", "description": "", "metadata": nil, "context": ctx})
		u.sync()
		if ownerOf(t, tr, "keep") != u.id {
			t.Fatal("keep was not registered")
		}
	})
	for _, tt := range []struct{ id, msg string }{
		{"deny::err", "registerfunction 'deny::err': registration hook hook::fn denied it: no"},
		{"deny::false", "registerfunction 'deny::false': registration hook hook::fn denied it (it must return an object to allow)"},
	} {
		t.Run("function hook denies "+tt.id, func(t *testing.T) {
			u.register(tt.id)
			recv(t, inputs)
			sameJSON(t, "refusal", u.next("error", func(frame) bool { return true }),
				map[string]any{"type": "error", "error": map[string]any{"code": "FORBIDDEN", "message": tt.msg}})
			if ownerOf(t, tr, tt.id) != "" {
				t.Fatalf("%s was registered", tt.id)
			}
		})
	}
	t.Run("trigger hook rewrites", func(t *testing.T) {
		u.send(map[string]any{"type": "registertrigger", "id": "t-rename", "trigger_type": "stream", "function_id": "keep",
			"config": map[string]any{"stream_name": "s"}, "metadata": map[string]any{"m": true}})
		sameJSON(t, "hook input", recv(t, inputs), map[string]any{"trigger_id": "t-rename", "trigger_type": "stream", "function_id": "keep",
			"config": map[string]any{"stream_name": "s"}, "metadata": map[string]any{"m": true}, "context": ctx})
		u.sync()
		row := tr.result("engine::registered-triggers::info", map[string]any{"id": "t-renamed"}).(map[string]any)
		sameJSON(t, "rewritten trigger", []any{row["trigger_type"], row["function_id"], row["config"], row["metadata"]},
			[]any{"state", "ui::other", map[string]any{"scope": "hooked"}, map[string]any{"m": true}})
		if errorCode(tr.call("engine::registered-triggers::info", map[string]any{"id": "t-rename"})) != "NOT_FOUND" {
			t.Fatal("the original trigger id was registered too")
		}
	})
	t.Run("trigger hook denies", func(t *testing.T) {
		u.send(map[string]any{"type": "registertrigger", "id": "t-deny", "trigger_type": "state", "function_id": "keep"})
		recv(t, inputs)
		sameJSON(t, "refusal", u.next("triggerregistrationresult", func(frame) bool { return true }), map[string]any{
			"type": "triggerregistrationresult", "id": "t-deny", "trigger_type": "state", "function_id": "keep",
			"error": map[string]any{"code": "FORBIDDEN", "message": "registertrigger 't-deny': registration hook hook::trg denied it: no"}})
	})
	t.Run("trigger type hook renames", func(t *testing.T) {
		u.send(map[string]any{"type": "registertriggertype", "id": "q-rename", "description": "orig"})
		sameJSON(t, "hook input", recv(t, inputs), map[string]any{"trigger_type_id": "q-rename", "description": "orig", "context": ctx})
		u.sync()
		sameJSON(t, "registered type", tr.result("engine::triggers::info", map[string]any{"id": "q-renamed"}),
			map[string]any{"id": "q-renamed", "worker_name": u.id, "description": "hooked", "instance_count": 0})
	})
	t.Run("trigger type hook denies", func(t *testing.T) {
		u.send(map[string]any{"type": "registertriggertype", "id": "q-deny"})
		recv(t, inputs)
		sameJSON(t, "refusal", u.next("error", func(frame) bool { return true }), map[string]any{"type": "error",
			"error": map[string]any{"code": "FORBIDDEN", "message": "registertriggertype 'q-deny': registration hook hook::type denied it (it must return an object to allow)"}})
	})
}

func TestMiddleware(t *testing.T) {
	e := startEngine(t, []config.Listener{{MiddlewareFunctionID: "mw::gate", RBAC: &config.RBAC{
		AuthFunctionID: "test::auth", Expose: []config.ExposeRule{{Glob: "todos::*"}},
	}}}, nil)
	tr := withAuth(t, e, map[string]any{"context": map[string]any{"user": "u1"}})
	tr.named("trusted") // listed by engine::workers::list, with its active invocations
	mw := newCapture()
	tr.serve("mw::gate", func(data json.RawMessage, f frame) (any, error) {
		var in map[string]any
		json.Unmarshal(data, &in)
		target := in["function_id"]
		mw.ch <- in
		if target == "todos::fail" {
			return nil, errors.New("denied by middleware")
		}
		return map[string]any{"via": "mw", "target": target}, nil
	})
	var direct counter
	tr.serve("todos::get", func(json.RawMessage, frame) (any, error) { direct.inc(); return "direct", nil })
	tr.sync()
	u := dial(t, e.url(1))
	ctx := map[string]any{"user": "u1"}
	tests := []struct {
		name      string
		fn        string
		extra     []any
		wantInput map[string]any // nil: the middleware is not called
		want      map[string]any // result frame fields besides type/ids
	}{
		{name: "a call goes to the middleware", fn: "todos::get",
			wantInput: map[string]any{"function_id": "todos::get", "payload": map[string]any{"id": 1}, "action": nil, "context": ctx},
			want:      map[string]any{"result": map[string]any{"via": "mw", "target": "todos::get"}}},
		{name: "enqueue is the middleware's to decide", fn: "todos::get", extra: []any{"action", map[string]any{"type": "enqueue", "queue": "jobs"}},
			wantInput: map[string]any{"function_id": "todos::get", "payload": map[string]any{"id": 1}, "action": map[string]any{"type": "enqueue", "queue": "jobs"}, "context": ctx},
			want:      map[string]any{"result": map[string]any{"via": "mw", "target": "todos::get"}}},
		{name: "the middleware's error is relayed", fn: "todos::fail",
			wantInput: map[string]any{"function_id": "todos::fail", "payload": map[string]any{"id": 1}, "action": nil, "context": ctx},
			want:      map[string]any{"error": map[string]any{"code": "invocation_failed", "message": "denied by middleware"}}},
		{name: "engine functions bypass the middleware", fn: "engine::log::info", want: map[string]any{}},
		{name: "forbidden calls never reach the middleware", fn: "priv::x",
			want: map[string]any{"error": map[string]any{"code": "FORBIDDEN", "message": "function 'priv::x' not allowed (add to rbac.expose_functions)"}}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := seqID("mw", i)
			u.invokeAsync(id, tt.fn, map[string]any{"id": 1}, tt.extra...)
			want := map[string]any{"type": "invocationresult", "invocation_id": id, "function_id": tt.fn}
			for k, v := range tt.want {
				want[k] = v
			}
			sameJSON(t, "result", u.waitResult(id), want)
			if tt.wantInput != nil {
				sameJSON(t, "middleware input", mw.next(t), tt.wantInput)
			}
			mw.none(t)
		})
	}
	t.Run("void calls reach the middleware", func(t *testing.T) {
		u.invokeAsync("mw-void", "todos::get", 2, "action", map[string]any{"type": "void"})
		sameJSON(t, "middleware input", mw.next(t), map[string]any{"function_id": "todos::get", "payload": 2, "action": map[string]any{"type": "void"}, "context": ctx})
		// The middleware's answer is in once tr executes nothing.
		eventually(t, "the middleware to answer", func() bool {
			rows := listWorkers(t, tr, map[string]any{"search": tr.id})
			return len(rows) == 1 && rows[0]["active_invocations"] == 0.0
		})
	})
	if direct.get() != 0 {
		t.Fatalf("todos::get ran %d times behind the middleware's back", direct.get())
	}
}

func TestMiddlewareTimeout(t *testing.T) {
	e := startEngine(t, []config.Listener{{MiddlewareFunctionID: "mw::slow", RBAC: &config.RBAC{Expose: []config.ExposeRule{{Glob: "todos::*"}}}}},
		func(c *config.Config) { c.Engine.CallTimeout = 200 * time.Millisecond })
	tr := dial(t, e.url(0))
	tr.register("mw::slow")
	tr.sync()
	u := dial(t, e.url(1))
	u.invokeAsync("slow-1", "todos::x", 1)
	in := tr.invoked("mw::slow")
	sameJSON(t, "middleware input", in["data"], map[string]any{"function_id": "todos::x", "payload": 1, "action": nil, "context": map[string]any{}})
	sameJSON(t, "result", u.waitResult("slow-1"), map[string]any{"type": "invocationresult", "invocation_id": "slow-1", "function_id": "todos::x",
		"error": map[string]any{"code": "timeout", "message": "middleware mw::slow did not answer within 200 ms"}})
}

// Triggers of a session behind a middleware fire through it, with the
// session's rights.
func TestUntrustedTriggerFiresThroughMiddleware(t *testing.T) {
	e := startEngine(t, []config.Listener{{MiddlewareFunctionID: "mw::gate", RBAC: &config.RBAC{Expose: []config.ExposeRule{{Glob: "todos::*"}}}}}, nil)
	tr := dial(t, e.url(0))
	tr.register("mw::gate")
	tr.register("todos::on")
	tr.sync()
	u := dial(t, e.url(1))
	u.send(map[string]any{"type": "registertrigger", "id": "t", "trigger_type": "state", "function_id": "todos::on", "config": map[string]any{"scope": "sc"}})
	u.sync()
	tr.mustCall("state::set", map[string]any{"scope": "sc", "key": "k", "value": "v"})
	f := tr.invoked("mw::gate")
	sameJSON(t, "middleware input", f["data"], map[string]any{"function_id": "todos::on", "action": nil, "context": map[string]any{},
		"payload": map[string]any{"type": "state", "event_type": "state:created", "scope": "sc", "key": "k", "old_value": nil, "new_value": "v"}})
	tr.reply(f, map[string]any{"result": "handled"})
	tr.sync()
	tr.none("invokefunction") // todos::on itself is not called
}
