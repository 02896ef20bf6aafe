package engine

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/iii-go/iii/internal/syncbuf"
)

// The engine::* functions, called over the wire like any other function.

// ids lists the function_id (or id) of each row of a list result.
func ids(t *testing.T, rows any) []string {
	t.Helper()
	var rs []map[string]any
	into(t, rows, &rs)
	out := []string{}
	for _, r := range rs {
		if id, ok := r["function_id"].(string); ok {
			out = append(out, id)
		} else {
			out = append(out, r["id"].(string))
		}
	}
	return out
}

// field is one key of a map-shaped result.
func field(t *testing.T, v any, key string) any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("result %v is not an object", v)
	}
	return m[key]
}

// named registers the client as a worker with that name (and a pid, so it is
// listed by engine::workers::list).
func (c *client) named(name string) {
	c.t.Helper()
	sameJSON(c.t, "engine::workers::register", c.result("engine::workers::register", map[string]any{"name": name, "pid": 4242}), map[string]any{"success": true})
}

func TestFunctionsList(t *testing.T) {
	e := startEngine(t, nil, nil)
	a, b := dial(t, e.url(0)), dial(t, e.url(0))
	a.named("alpha")
	a.register("alpha::one", "description", "One", "metadata", map[string]any{"team": "a"})
	a.register("alpha::two")
	a.register("alpha::internal", "metadata", map[string]any{"internal": true})
	b.register("beta::one")
	a.sync()
	b.sync()
	one := map[string]any{"function_id": "alpha::one", "worker_name": "alpha", "description": "One", "metadata": map[string]any{"team": "a"}}
	two := map[string]any{"function_id": "alpha::two", "worker_name": "alpha"}
	internal := map[string]any{"function_id": "alpha::internal", "worker_name": "alpha", "metadata": map[string]any{"internal": true}}
	beta := map[string]any{"function_id": "beta::one", "worker_name": b.id}
	tests := []struct {
		name   string
		filter map[string]any
		want   []map[string]any
	}{
		{"search", map[string]any{"search": "one"}, []map[string]any{one, beta}},
		{"prefix", map[string]any{"prefix": "alpha::"}, []map[string]any{one, two}},
		{"worker by name", map[string]any{"worker": "alpha"}, []map[string]any{one, two}},
		{"worker by id", map[string]any{"worker": b.id}, []map[string]any{beta}},
		{"workers", map[string]any{"workers": []string{"alpha", b.id}, "prefix": "a"}, []map[string]any{one, two}},
		{"workers by id", map[string]any{"workers": []string{b.id}}, []map[string]any{beta}},
		{"include internal", map[string]any{"prefix": "alpha::", "include_internal": true}, []map[string]any{internal, one, two}},
		{"engine functions are internal", map[string]any{"prefix": "engine::health"}, []map[string]any{}},
		{"engine functions with include_internal", map[string]any{"prefix": "engine::health", "include_internal": true},
			[]map[string]any{{"function_id": "engine::health::check", "worker_name": "iii-engine-functions", "description": "Engine health"}}},
		{"module functions are listed", map[string]any{"prefix": "state::list"}, []map[string]any{
			{"function_id": "state::list", "worker_name": "iii-state", "description": "List the values of a scope"},
			{"function_id": "state::list_groups", "worker_name": "iii-state", "description": "List every scope"}}},
		{"no match", map[string]any{"search": "zzz"}, []map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sameJSON(t, "functions", b.result("engine::functions::list", tt.filter), map[string]any{"functions": tt.want})
		})
	}
	t.Run("null payload lists everything visible", func(t *testing.T) {
		got := ids(t, field(t, b.result("engine::functions::list", nil), "functions"))
		for _, want := range []string{"alpha::one", "alpha::two", "beta::one", "stream::set", "state::get"} {
			if !strings.Contains(strings.Join(got, " "), want) {
				t.Errorf("%s missing from %v", want, got)
			}
		}
		if strings.Contains(strings.Join(got, " "), "engine::") || strings.Contains(strings.Join(got, " "), "alpha::internal") {
			t.Errorf("internal functions listed: %v", got)
		}
	})
	t.Run("bad payload", func(t *testing.T) {
		r := b.call("engine::functions::list", map[string]any{"search": 5})
		if errorCode(r) != "deserialization_error" || !strings.HasPrefix(errBody(r)["message"].(string), "Failed to deserialize input for engine::functions::list: ") {
			t.Fatalf("got %v", r)
		}
	})
}

func TestFunctionsInfo(t *testing.T) {
	e := startEngine(t, nil, nil)
	a := dial(t, e.url(0))
	a.named("alpha")
	a.register("alpha::one", "description", "One", "metadata", map[string]any{"team": "a"},
		"request_format", map[string]any{"type": "object"}, "response_format", map[string]any{"type": "string"})
	a.register("alpha::two")
	a.send(map[string]any{"type": "registertrigger", "id": "t1", "trigger_type": "state", "function_id": "alpha::one", "config": map[string]any{"scope": "s"}})
	a.send(map[string]any{"type": "registertrigger", "id": "t2", "trigger_type": "custom", "function_id": "alpha::one"})
	a.sync()
	one := map[string]any{"function_id": "alpha::one", "worker_name": "alpha", "description": "One", "metadata": map[string]any{"team": "a"},
		"request_schema": map[string]any{"type": "object"}, "response_schema": map[string]any{"type": "string"},
		"registered_triggers": []any{
			map[string]any{"id": "t1", "trigger_type": "state", "config": map[string]any{"scope": "s"}},
			map[string]any{"id": "t2", "trigger_type": "custom", "config": nil}}}
	two := map[string]any{"function_id": "alpha::two", "worker_name": "alpha", "registered_triggers": []any{}}
	many := make([]string, 33)
	for i := range many {
		many[i] = "alpha::two"
	}
	tests := []struct {
		name    string
		in      any
		want    any
		wantErr map[string]any
	}{
		{"one function", map[string]any{"function_id": "alpha::one"}, one, nil},
		{"several functions", map[string]any{"function_ids": []string{"alpha::two", "alpha::one"}}, map[string]any{"functions": []any{two, one}}, nil},
		{"an engine function", map[string]any{"function_id": "stream::get"},
			map[string]any{"function_id": "stream::get", "worker_name": "iii-stream", "description": "Read an item of a stream", "registered_triggers": []any{}}, nil},
		{"both", map[string]any{"function_id": "alpha::one", "function_ids": []string{}}, nil,
			map[string]any{"code": "INVALID_ARGUMENTS", "message": "give exactly one of function_id or function_ids"}},
		{"neither", map[string]any{}, nil, map[string]any{"code": "INVALID_ARGUMENTS", "message": "give exactly one of function_id or function_ids"}},
		{"too many", map[string]any{"function_ids": many}, nil,
			map[string]any{"code": "INVALID_ARGUMENTS", "message": "function_ids holds 33 ids; at most 32 are allowed"}},
		{"unknown", map[string]any{"function_id": "ghost::fn"}, nil, map[string]any{"code": "NOT_FOUND", "message": "Function 'ghost::fn' is not registered."}},
		{"unknown in a list", map[string]any{"function_ids": []string{"alpha::one", "ghost::fn"}}, nil,
			map[string]any{"code": "NOT_FOUND", "message": "Function 'ghost::fn' is not registered."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.call("engine::functions::info", tt.in)
			if tt.wantErr != nil {
				sameJSON(t, "error", r["error"], tt.wantErr)
				return
			}
			if r["error"] != nil {
				t.Fatal(r["error"])
			}
			sameJSON(t, "info", r["result"], tt.want)
		})
	}
}

// workerRows returns engine::workers::list's rows, with connected_at_ms
// checked and dropped (it is a clock reading).
func listWorkers(t *testing.T, c *client, filter map[string]any) []map[string]any {
	t.Helper()
	var out struct {
		Workers []map[string]any `json:"workers"`
	}
	into(t, c.result("engine::workers::list", filter), &out)
	for _, w := range out.Workers {
		if at, _ := w["connected_at_ms"].(float64); at < float64(time.Now().Add(-time.Hour).UnixMilli()) {
			t.Fatalf("worker %v: connected_at_ms %v", w["id"], w["connected_at_ms"])
		}
		delete(w, "connected_at_ms")
	}
	return out.Workers
}

// moduleRow is the workers::list row of one of the engine's modules.
func moduleRow(t *testing.T, c *client, name string) map[string]any {
	t.Helper()
	fns := field(t, c.result("engine::functions::list", map[string]any{"worker": name, "include_internal": true}), "functions").([]any)
	return map[string]any{"name": name, "description": nil, "version": Version, "id": name, "runtime": "engine", "os": nil, "status": "connected",
		"function_count": len(fns), "active_invocations": 0, "isolation": nil, "ip_address": nil}
}

func TestWorkersListAndInfo(t *testing.T) {
	e := startEngine(t, openRBAC(), nil)
	a, quiet := dial(t, e.url(0)), dial(t, e.url(0))
	sameJSON(t, "register", a.result("engine::workers::register", map[string]any{"name": "alpha", "description": "Alpha worker", "runtime": "go",
		"version": "1.2.3", "os": "linux", "isolation": "none", "pid": 42, "telemetry": map[string]any{"sdk": "x"}, "_caller_worker_id": "ignored"}),
		map[string]any{"success": true})
	a.register("alpha::slow")
	a.send(map[string]any{"type": "registertriggertype", "id": "alpha-type", "description": "Alpha events"})
	a.send(map[string]any{"type": "registertrigger", "id": "at", "trigger_type": "state", "function_id": "alpha::slow", "config": map[string]any{"scope": "x"}})
	a.sync()
	quiet.register("quiet::fn") // never reports a pid: not listed
	quiet.sync()
	u := dial(t, e.url(1))
	u.result("engine::workers::register", map[string]any{"name": "tab", "pid": 7, "runtime": "browser"})

	alpha := map[string]any{"name": "alpha", "description": "Alpha worker", "version": "1.2.3", "id": a.id, "runtime": "go", "os": "linux",
		"status": "connected", "function_count": 1, "active_invocations": 0, "isolation": "none", "ip_address": "127.0.0.1"}
	tab := map[string]any{"name": "untrusted:tab", "description": nil, "version": nil, "id": u.id, "runtime": "browser", "os": nil,
		"status": "connected", "function_count": 0, "active_invocations": 0, "isolation": nil, "ip_address": "127.0.0.1"}
	modules := []map[string]any{moduleRow(t, quiet, "iii-engine-functions"), moduleRow(t, quiet, "iii-state"), moduleRow(t, quiet, "iii-stream")}
	tests := []struct {
		name   string
		filter map[string]any
		want   []map[string]any
	}{
		{"everything", map[string]any{}, append(append([]map[string]any{}, modules...), alpha, tab)},
		{"search by name", map[string]any{"search": "alph"}, []map[string]any{alpha}},
		{"search by id", map[string]any{"search": u.id}, []map[string]any{tab}},
		{"runtime", map[string]any{"runtime": "engine"}, modules},
		{"status", map[string]any{"status": "disconnected"}, []map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sameJSON(t, "workers", listWorkers(t, quiet, tt.filter), tt.want)
		})
	}

	t.Run("active invocations", func(t *testing.T) {
		quiet.invokeAsync("busy", "alpha::slow", 1)
		f := a.invoked("alpha::slow")
		rows := listWorkers(t, quiet, map[string]any{"search": "alpha"})
		if len(rows) != 1 || rows[0]["active_invocations"] != 1.0 {
			t.Fatalf("rows %v, want alpha with one active invocation", rows)
		}
		a.reply(f, map[string]any{"result": 1})
		quiet.waitResult("busy")
		rows = listWorkers(t, quiet, map[string]any{"search": "alpha"})
		if rows[0]["active_invocations"] != 0.0 {
			t.Fatalf("rows %v after the answer", rows)
		}
	})

	t.Run("info of a worker", func(t *testing.T) {
		got := quiet.result("engine::workers::info", map[string]any{"name": "alpha"}).(map[string]any)
		delete(got["worker"].(map[string]any), "connected_at_ms")
		sameJSON(t, "info", got, map[string]any{"worker": alpha, "functions": []string{"alpha::slow"}, "trigger_types": []string{"alpha-type"},
			"registered_triggers": []any{map[string]any{"id": "at", "trigger_type": "state", "function_id": "alpha::slow", "worker_name": "alpha",
				"config": map[string]any{"scope": "x"}, "config_summary": `{"scope":"x"}`, "pending": false}}})
		byID := quiet.result("engine::workers::info", map[string]any{"name": a.id}).(map[string]any)
		if field(t, byID["worker"], "id") != a.id {
			t.Fatalf("info by id: %v", byID)
		}
	})
	t.Run("info of a module", func(t *testing.T) {
		got := quiet.result("engine::workers::info", map[string]any{"name": "iii-stream"}).(map[string]any)
		sameJSON(t, "functions", got["functions"], []string{"stream::delete", "stream::get", "stream::list", "stream::list_all", "stream::list_groups", "stream::send", "stream::set", "stream::update"})
		sameJSON(t, "trigger types", got["trigger_types"], []string{"stream", "stream:join", "stream:leave"})
	})
	t.Run("info of an unknown worker", func(t *testing.T) {
		sameJSON(t, "error", quiet.call("engine::workers::info", map[string]any{"name": "ghost"})["error"],
			map[string]any{"code": "NOT_FOUND", "message": "Worker 'ghost' is not connected."})
	})
	t.Run("bad register payload", func(t *testing.T) {
		r := quiet.call("engine::workers::register", []any{1})
		if errorCode(r) != "deserialization_error" {
			t.Fatalf("got %v", r)
		}
	})
	t.Run("a departed worker is not listed", func(t *testing.T) {
		a.conn.Close(1000, "")
		a.waitClosed()
		eventually(t, "alpha to leave the list", func() bool { return len(listWorkers(t, quiet, map[string]any{"search": "alpha"})) == 0 })
	})
}

func TestTriggerTypesList(t *testing.T) {
	e := startEngine(t, nil, nil)
	p := dial(t, e.url(0))
	p.named("provider")
	p.send(map[string]any{"type": "registertriggertype", "id": "cron", "description": "Cron jobs"})
	p.send(map[string]any{"type": "registertrigger", "id": "c1", "trigger_type": "cron", "function_id": "jobs::a"})
	p.send(map[string]any{"type": "registertrigger", "id": "c2", "trigger_type": "cron", "function_id": "jobs::b"})
	p.sync()
	row := func(id, worker, desc string) map[string]any {
		return map[string]any{"id": id, "worker_name": worker, "description": desc}
	}
	state := row("state", "iii-state", "iii-state trigger type")
	stream := row("stream", "iii-stream", "iii-stream trigger type")
	join := row("stream:join", "iii-stream", "iii-stream trigger type")
	leave := row("stream:leave", "iii-stream", "iii-stream trigger type")
	cron := row("cron", "provider", "Cron jobs")
	fns := row("engine::functions-available", "iii-engine-functions", "iii-engine-functions trigger type")
	wks := row("engine::workers-available", "iii-engine-functions", "iii-engine-functions trigger type")
	tests := []struct {
		name   string
		filter map[string]any
		want   []map[string]any
	}{
		{"everything but internal types", map[string]any{}, []map[string]any{cron, state, stream, join, leave}},
		{"with internal types", map[string]any{"include_internal": true}, []map[string]any{cron, fns, wks, state, stream, join, leave}},
		{"search", map[string]any{"search": "stream:"}, []map[string]any{join, leave}},
		{"prefix", map[string]any{"prefix": "st"}, []map[string]any{state, stream, join, leave}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sameJSON(t, "engine::triggers::list", p.result("engine::triggers::list", tt.filter), map[string]any{"triggers": tt.want})
			sameJSON(t, "engine::trigger-types::list", p.result("engine::trigger-types::list", tt.filter), map[string]any{"trigger_types": tt.want})
		})
	}
	infos := []struct {
		id      string
		want    map[string]any
		wantErr map[string]any
	}{
		{"cron", map[string]any{"id": "cron", "worker_name": "provider", "description": "Cron jobs", "instance_count": 2}, nil},
		{"stream", map[string]any{"id": "stream", "worker_name": "iii-stream", "description": "iii-stream trigger type", "instance_count": 0}, nil},
		{"engine::workers-available", map[string]any{"id": "engine::workers-available", "worker_name": "iii-engine-functions",
			"description": "iii-engine-functions trigger type", "instance_count": 0}, nil},
		{"nope", nil, map[string]any{"code": "NOT_FOUND", "message": "Trigger type 'nope' is not registered."}},
	}
	for _, tt := range infos {
		t.Run("info "+tt.id, func(t *testing.T) {
			r := p.call("engine::triggers::info", map[string]any{"id": tt.id})
			if tt.wantErr != nil {
				sameJSON(t, "error", r["error"], tt.wantErr)
				return
			}
			sameJSON(t, "info", r["result"], tt.want)
		})
	}
}

func TestRegisteredTriggersListAndInfo(t *testing.T) {
	e := startEngine(t, nil, nil)
	a, b := dial(t, e.url(0)), dial(t, e.url(0))
	a.named("alpha")
	long := map[string]any{"stream_name": strings.Repeat("s", 100)}
	a.send(map[string]any{"type": "registertrigger", "id": "a-stream", "trigger_type": "stream", "function_id": "alpha::on", "config": long,
		"metadata": map[string]any{"note": "n"}})
	a.send(map[string]any{"type": "registertrigger", "id": "a-state", "trigger_type": "state", "function_id": "alpha::state", "config": map[string]any{}})
	a.send(map[string]any{"type": "registertrigger", "id": "a-fns", "trigger_type": "engine::functions-available", "function_id": "alpha::fns"})
	a.sync()
	b.send(map[string]any{"type": "registertrigger", "id": "b-queue", "trigger_type": "queue", "function_id": "beta::job", "config": "q1"})
	b.sync()
	longJSON, _ := json.Marshal(long)
	aStream := map[string]any{"id": "a-stream", "trigger_type": "stream", "function_id": "alpha::on", "worker_name": "alpha", "config": long,
		"config_summary": string(longJSON[:77]) + "...", "metadata": map[string]any{"note": "n"}, "pending": false}
	aState := map[string]any{"id": "a-state", "trigger_type": "state", "function_id": "alpha::state", "worker_name": "alpha",
		"config": map[string]any{}, "config_summary": "{}", "pending": false}
	aFns := map[string]any{"id": "a-fns", "trigger_type": "engine::functions-available", "function_id": "alpha::fns", "worker_name": "alpha",
		"config": nil, "config_summary": "null", "pending": false}
	bQueue := map[string]any{"id": "b-queue", "trigger_type": "queue", "function_id": "beta::job", "worker_name": b.id,
		"config": "q1", "config_summary": `"q1"`, "pending": true}
	tests := []struct {
		name   string
		filter map[string]any
		want   []map[string]any
	}{
		{"everything but internal types", map[string]any{}, []map[string]any{aStream, aState, bQueue}},
		{"include internal", map[string]any{"include_internal": true}, []map[string]any{aStream, aState, aFns, bQueue}},
		{"search by id", map[string]any{"search": "a-st"}, []map[string]any{aStream, aState}},
		{"search by function", map[string]any{"search": "beta::"}, []map[string]any{bQueue}},
		{"trigger type", map[string]any{"trigger_type": "state"}, []map[string]any{aState}},
		{"function id", map[string]any{"function_id": "alpha::on"}, []map[string]any{aStream}},
		{"worker by name", map[string]any{"worker": "alpha"}, []map[string]any{aStream, aState}},
		{"worker by id", map[string]any{"worker": b.id}, []map[string]any{bQueue}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sameJSON(t, "rows", b.result("engine::registered-triggers::list", tt.filter), map[string]any{"registered_triggers": tt.want})
		})
	}
	t.Run("info", func(t *testing.T) {
		sameJSON(t, "info", b.result("engine::registered-triggers::info", map[string]any{"id": "a-stream"}), aStream)
		sameJSON(t, "unknown", b.call("engine::registered-triggers::info", map[string]any{"id": "ghost"})["error"],
			map[string]any{"code": "NOT_FOUND", "message": "Trigger 'ghost' is not registered."})
	})
}

func TestEngineRegisterTrigger(t *testing.T) {
	e := startEngine(t, nil, nil)
	h, p := dial(t, e.url(0)), dial(t, e.url(0))
	h.register("audit::on") // firings are recorded on h, in order, before h's write is answered
	p.send(map[string]any{"type": "registertriggertype", "id": "cron"})
	h.sync()
	p.sync()
	refusals := []struct {
		name string
		in   any
		want map[string]any
	}{
		{"no trigger type", map[string]any{"function_id": "audit::on"}, map[string]any{"code": "INVALID_ARGUMENTS", "message": "trigger_type and function_id are required"}},
		{"no function", map[string]any{"trigger_type": "state"}, map[string]any{"code": "INVALID_ARGUMENTS", "message": "trigger_type and function_id are required"}},
		{"bad config", map[string]any{"trigger_type": "stream", "function_id": "audit::on", "config": map[string]any{}},
			map[string]any{"code": "trigger_registration_failed", "message": "stream trigger config: stream_name is missing"}},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			sameJSON(t, "error", h.call("engine::register_trigger", tt.in)["error"], tt.want)
		})
	}

	// A trigger the engine owns outlives the connection that asked for it.
	caller := dial(t, e.url(0))
	id := field(t, caller.result("engine::register_trigger", map[string]any{"trigger_type": "state", "function_id": "audit::on",
		"config": map[string]any{"scope": "audit"}, "metadata": map[string]any{"by": "test"}}), "id").(string)
	caller.conn.Close(1000, "")
	caller.waitClosed()
	eventually(t, "the caller to be gone", func() bool { return h.result("engine::health::check", nil).(map[string]any)["workers"] == 2.0 })
	sameJSON(t, "row", h.result("engine::registered-triggers::info", map[string]any{"id": id}), map[string]any{"id": id, "trigger_type": "state",
		"function_id": "audit::on", "worker_name": "engine", "config": map[string]any{"scope": "audit"}, "config_summary": `{"scope":"audit"}`,
		"metadata": map[string]any{"by": "test"}, "pending": false})
	h.mustCall("state::set", map[string]any{"scope": "audit", "key": "k", "value": 1})
	sameJSON(t, "firing", h.firings("audit::"), map[string]any{"audit::on": map[string]any{"type": "state", "event_type": "state:created",
		"scope": "audit", "key": "k", "old_value": nil, "new_value": 1}})

	// A trigger of a worker-provided type goes to the provider.
	cid := field(t, h.result("engine::register_trigger", map[string]any{"trigger_type": "cron", "function_id": "audit::on", "config": map[string]any{"every": "1m"}}), "id").(string)
	sameJSON(t, "forwarded", p.next("registertrigger", func(frame) bool { return true }), map[string]any{"type": "registertrigger", "id": cid,
		"trigger_type": "cron", "function_id": "audit::on", "config": map[string]any{"every": "1m"}})
	sameJSON(t, "removed", h.result("engine::unregister_trigger", map[string]any{"id": cid}), map[string]any{"removed": true})
	sameJSON(t, "unregister forwarded", p.next("unregistertrigger", func(frame) bool { return true }),
		map[string]any{"type": "unregistertrigger", "id": cid, "trigger_type": "cron"})
	sameJSON(t, "removed twice", h.result("engine::unregister_trigger", map[string]any{"id": cid}), map[string]any{"removed": false})

	// Any trigger can be removed through the engine, a worker's too.
	p.send(map[string]any{"type": "registertrigger", "id": "p-own", "trigger_type": "state", "function_id": "audit::on", "config": map[string]any{"scope": "p"}})
	p.sync()
	sameJSON(t, "worker trigger removed", h.result("engine::unregister_trigger", map[string]any{"id": "p-own"}), map[string]any{"removed": true})
	sameJSON(t, "engine trigger removed", h.result("engine::unregister_trigger", map[string]any{"id": id}), map[string]any{"removed": true})
	h.mustCall("state::set", map[string]any{"scope": "audit", "key": "k", "value": 2})
	h.mustCall("state::set", map[string]any{"scope": "p", "key": "k", "value": 2})
	sameJSON(t, "firings after removal", h.firings("audit::"), map[string]any{})
}

func TestHealthCheck(t *testing.T) {
	e := startEngine(t, nil, nil)
	a := dial(t, e.url(0))
	dial(t, e.url(0))
	got := a.result("engine::health::check", nil).(map[string]any)
	if up, _ := got["uptime_ms"].(float64); up < 0 {
		t.Fatalf("uptime_ms %v", got["uptime_ms"])
	}
	if idx, _ := got["log_last_index"].(float64); idx < 1 {
		t.Fatalf("log_last_index %v", got["log_last_index"])
	}
	before := got["log_last_index"].(float64)
	delete(got, "uptime_ms")
	delete(got, "log_last_index")
	sameJSON(t, "health", got, map[string]any{"status": "healthy", "version": Version, "workers": 2})
	a.mustCall("state::set", map[string]any{"scope": "s", "key": "k", "value": 1})
	if after := a.result("engine::health::check", nil).(map[string]any)["log_last_index"].(float64); after != before+1 {
		t.Fatalf("log_last_index %v after one write, was %v", after, before)
	}
}

// logSink collects the engine's log lines as JSON objects.
type logSink struct{ syncbuf.Buffer }

// find returns the first line whose msg is msg.
func (s *logSink) find(msg string) map[string]any {
	for _, line := range strings.Split(s.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			return m
		}
	}
	return nil
}

// startLoggedEngine is startEngine with the engine's log kept in sink.
func startLoggedEngine(t *testing.T, sink *logSink) *Engine {
	t.Helper()
	return startEngineLogging(t, nil, nil, slog.New(slog.NewJSONHandler(sink, &slog.HandlerOptions{Level: slog.LevelDebug - 4})))
}

func TestLogFunctions(t *testing.T) {
	sink := &logSink{}
	e := startLoggedEngine(t, sink)
	c := dial(t, e.url(0))
	tests := []struct {
		fn    string
		level string
		in    map[string]any
		want  map[string]any // extra attributes of the line
	}{
		{"engine::log::info", "INFO", map[string]any{"message": "hello info", "data": map[string]any{"a": 1}, "service_name": "svc"},
			map[string]any{"service": "svc", "data": `{"a":1}`}},
		{"engine::log::warn", "WARN", map[string]any{"message": "hello warn"}, map[string]any{}},
		{"engine::log::error", "ERROR", map[string]any{"message": "hello error", "data": nil}, map[string]any{}},
		{"engine::log::debug", "DEBUG", map[string]any{"message": "hello debug", "trace_id": "t", "span_id": "s"}, map[string]any{}},
		{"engine::log::trace", "DEBUG-4", map[string]any{"message": "hello trace", "data": "x"}, map[string]any{"data": `"x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.fn, func(t *testing.T) {
			r := c.call(tt.fn, tt.in)
			sameJSON(t, "result", r, map[string]any{"type": "invocationresult", "invocation_id": r.str("invocation_id"), "function_id": tt.fn})
			line := sink.find(tt.in["message"].(string))
			if line == nil {
				t.Fatalf("no log line %q", tt.in["message"])
			}
			delete(line, "time")
			want := map[string]any{"level": tt.level, "msg": tt.in["message"], "source": "worker", "worker_id": c.id}
			for k, v := range tt.want {
				want[k] = v
			}
			sameJSON(t, "log line", line, want)
		})
	}
	t.Run("bad payload", func(t *testing.T) {
		r := c.call("engine::log::info", map[string]any{"message": 5})
		if errorCode(r) != "deserialization_error" || !strings.HasPrefix(errBody(r)["message"].(string), "Failed to deserialize input for engine::log: ") {
			t.Fatalf("got %v", r)
		}
	})
}

func TestBaggageFunctions(t *testing.T) {
	e := startEngine(t, nil, nil)
	c := dial(t, e.url(0))
	for _, tt := range []struct {
		fn   string
		want any
	}{
		{"engine::baggage::get", nil},
		{"engine::baggage::set", nil},
		{"engine::baggage::get_all", map[string]any{}},
	} {
		r := c.call(tt.fn, map[string]any{"key": "k", "value": "v"})
		res, present := r["result"]
		if !present || r["error"] != nil {
			t.Fatalf("%s: %v", tt.fn, r)
		}
		sameJSON(t, tt.fn, res, tt.want)
	}
}

// engine::functions-available and engine::workers-available firings are
// calls the engine waits for, one at a time per trigger; the test answers
// them by hand.
func TestAvailabilityTriggers(t *testing.T) {
	e := startEngine(t, nil, nil)
	w := dial(t, e.url(0))
	w.register("watch::fns")
	w.register("watch::workers")
	w.send(map[string]any{"type": "registertrigger", "id": "on-fns", "trigger_type": "engine::functions-available", "function_id": "watch::fns"})
	w.send(map[string]any{"type": "registertrigger", "id": "on-wks", "trigger_type": "engine::workers-available", "function_id": "watch::workers",
		"metadata": map[string]any{"m": 1}})
	w.sync()
	workerEvent := func(want map[string]any) {
		t.Helper()
		f := w.invoked("watch::workers")
		sameJSON(t, "workers-available payload", f["data"], want)
		sameJSON(t, "trigger metadata", f["metadata"], map[string]any{"m": 1})
		w.reply(f, map[string]any{})
	}

	x := dial(t, e.url(0))
	workerEvent(map[string]any{"event": "worker_connected", "worker_id": x.id})
	x.named("late")
	workerEvent(map[string]any{"event": "worker_metadata_updated", "worker_id": x.id})

	x.register("late::fn")
	x.sync()
	f := w.invoked("watch::fns")
	list := field(t, w.result("engine::functions::list", map[string]any{}), "functions")
	sameJSON(t, "functions_changed", f["data"], map[string]any{"event": "functions_changed", "functions": list})
	if !strings.Contains(strings.Join(ids(t, list), " "), "late::fn") {
		t.Fatalf("late::fn missing from %v", list)
	}
	w.reply(f, map[string]any{})
	x.send(map[string]any{"type": "unregisterfunction", "id": "late::fn"})
	f = w.invoked("watch::fns")
	if strings.Contains(strings.Join(ids(t, f["data"].(map[string]any)["functions"]), " "), "late::fn") {
		t.Fatalf("late::fn still listed after unregisterfunction: %v", f["data"])
	}
	w.reply(f, map[string]any{})

	x.conn.Close(1000, "")
	workerEvent(map[string]any{"event": "worker_disconnected", "worker_id": x.id})
	sameJSON(t, "hidden from the default trigger list", triggerRows(t, w, map[string]any{}), []any{})
	if rows := triggerRows(t, w, map[string]any{"include_internal": true}); len(rows) != 2 {
		t.Fatalf("rows with include_internal: %v", rows)
	}
	w.sync()
	w.none("invokefunction")
}
