package engine

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// The stream module: its functions, custom implementations a worker
// provides, and the stream triggers its changes fire.

// step is one call of a module function and what it must answer.
type step struct {
	name    string
	fn      string
	in      any
	want    any            // the result (ignored when absent or wantErr is set)
	absent  bool           // the result frame has no result at all
	wantErr map[string]any // the error body
}

func runSteps(t *testing.T, c *client, steps []step) {
	t.Helper()
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			r := c.call(s.fn, s.in)
			switch {
			case s.wantErr != nil:
				sameJSON(t, "error", r["error"], s.wantErr)
				if _, has := r["result"]; has {
					t.Fatalf("a failed call carries a result: %v", r)
				}
			case s.absent:
				sameJSON(t, "frame", r, map[string]any{"type": "invocationresult", "invocation_id": r.str("invocation_id"), "function_id": s.fn})
			default:
				if r["error"] != nil {
					t.Fatalf("%s: %v", s.fn, r["error"])
				}
				if _, has := r["result"]; !has {
					t.Fatalf("%s: no result in %v", s.fn, r)
				}
				sameJSON(t, "result", r["result"], s.want)
			}
		})
	}
}

func addr(stream, group, item string, more ...any) map[string]any {
	m := map[string]any{"stream_name": stream, "group_id": group, "item_id": item}
	for i := 0; i+1 < len(more); i += 2 {
		m[more[i].(string)] = more[i+1]
	}
	return m
}

func TestStreamFunctions(t *testing.T) {
	e := startEngine(t, nil, nil)
	c := dial(t, e.url(0))
	runSteps(t, c, []step{
		{name: "get a missing item", fn: "stream::get", in: addr("todo", "g1", "i1"), absent: true},
		{name: "create", fn: "stream::set", in: addr("todo", "g1", "i1", "data", map[string]any{"t": "a"}),
			want: map[string]any{"old_value": nil, "new_value": map[string]any{"t": "a"}}},
		{name: "replace", fn: "stream::set", in: addr("todo", "g1", "i1", "data", map[string]any{"t": "b"}),
			want: map[string]any{"old_value": map[string]any{"t": "a"}, "new_value": map[string]any{"t": "b"}}},
		{name: "a second item", fn: "stream::set", in: addr("todo", "g1", "i2", "data", 2), want: map[string]any{"old_value": nil, "new_value": 2}},
		{name: "a null item", fn: "stream::set", in: addr("todo", "g1", "i3", "data", nil), want: map[string]any{"old_value": nil, "new_value": nil}},
		{name: "another group", fn: "stream::set", in: addr("todo", "g2", "i1", "data", "x"), want: map[string]any{"old_value": nil, "new_value": "x"}},
		{name: "another stream", fn: "stream::set", in: addr("notes", "n", "i1", "data", true), want: map[string]any{"old_value": nil, "new_value": true}},
		{name: "get", fn: "stream::get", in: addr("todo", "g1", "i1"), want: map[string]any{"t": "b"}},
		{name: "list in insertion order", fn: "stream::list", in: map[string]any{"stream_name": "todo", "group_id": "g1"}, want: []any{map[string]any{"t": "b"}, 2, nil}},
		{name: "list an unknown group", fn: "stream::list", in: map[string]any{"stream_name": "todo", "group_id": "nope"}, want: []any{}},
		{name: "list groups", fn: "stream::list_groups", in: map[string]any{"stream_name": "todo"}, want: []any{"g1", "g2"}},
		{name: "list groups of an unknown stream", fn: "stream::list_groups", in: map[string]any{"stream_name": "nope"}, want: []any{}},
		{name: "list all", fn: "stream::list_all", in: map[string]any{}, want: map[string]any{"count": 2, "stream": []any{
			map[string]any{"id": "notes", "groups": []any{"n"}}, map[string]any{"id": "todo", "groups": []any{"g1", "g2"}}}}},
		{name: "update", fn: "stream::update", in: addr("todo", "g1", "i1", "ops", []any{
			map[string]any{"type": "set", "path": "done", "value": true},
			map[string]any{"type": "increment", "path": "n", "by": 2},
			map[string]any{"type": "merge", "value": map[string]any{"m": 1}},
			map[string]any{"type": "append", "path": "tags", "value": 1},
		}), want: map[string]any{"old_value": map[string]any{"t": "b"}, "new_value": map[string]any{"t": "b", "done": true, "n": 2, "m": 1, "tags": []any{1}}}},
		{name: "update that creates", fn: "stream::update", in: addr("todo", "g1", "new", "ops", []any{map[string]any{"type": "set", "path": "", "value": 5}}),
			want: map[string]any{"old_value": nil, "new_value": 5}},
		{name: "update with a failing op", fn: "stream::update", in: addr("todo", "g1", "i1", "ops", []any{
			map[string]any{"type": "increment", "path": "t", "by": 1}, map[string]any{"type": "remove", "path": "tags"}}),
			want: map[string]any{"old_value": map[string]any{"t": "b", "done": true, "n": 2, "m": 1, "tags": []any{1}},
				"new_value": map[string]any{"t": "b", "done": true, "n": 2, "m": 1},
				"errors": []any{map[string]any{"op_index": 0, "code": "increment.not_number",
					"message": "increment at t: value is string, not a number", "doc_url": "https://iii.dev/docs/workers/iii-state#error-codes"}}}},
		{name: "delete", fn: "stream::delete", in: addr("todo", "g1", "i2"), want: map[string]any{"old_value": 2}},
		{name: "delete again", fn: "stream::delete", in: addr("todo", "g1", "i2"), want: map[string]any{"old_value": nil}},
		{name: "delete from an unknown stream", fn: "stream::delete", in: addr("ghost", "g", "i"), want: map[string]any{"old_value": nil}},
		{name: "delete the last item of a group", fn: "stream::delete", in: addr("todo", "g2", "i1"), want: map[string]any{"old_value": "x"}},
		{name: "an emptied group is gone", fn: "stream::list_groups", in: map[string]any{"stream_name": "todo"}, want: []any{"g1"}},
		{name: "send", fn: "stream::send", in: map[string]any{"stream_name": "todo", "group_id": "g1", "type": "ping", "data": map[string]any{"x": 1}}, want: nil},
		{name: "send changes nothing", fn: "stream::list", in: map[string]any{"stream_name": "todo", "group_id": "g1"},
			want: []any{map[string]any{"t": "b", "done": true, "n": 2, "m": 1}, nil, 5}},
	})
}

func TestStreamFunctionArguments(t *testing.T) {
	e := startEngine(t, nil, nil)
	c := dial(t, e.url(0))
	missing := func(fn, f string) map[string]any {
		return map[string]any{"code": "deserialization_error", "message": "Failed to deserialize input for " + fn + ": missing field `" + f + "`"}
	}
	runSteps(t, c, []step{
		{name: "set without stream_name", fn: "stream::set", in: map[string]any{"group_id": "g", "item_id": "i", "data": 1}, wantErr: missing("stream::set", "stream_name")},
		{name: "set without group_id", fn: "stream::set", in: map[string]any{"stream_name": "s", "item_id": "i", "data": 1}, wantErr: missing("stream::set", "group_id")},
		{name: "set without item_id", fn: "stream::set", in: map[string]any{"stream_name": "s", "group_id": "g", "data": 1}, wantErr: missing("stream::set", "item_id")},
		{name: "set without data", fn: "stream::set", in: addr("s", "g", "i"), wantErr: missing("stream::set", "data")},
		{name: "set with a null payload", fn: "stream::set", in: nil, wantErr: missing("stream::set", "stream_name")},
		{name: "get without item_id", fn: "stream::get", in: map[string]any{"stream_name": "s", "group_id": "g"}, wantErr: missing("stream::get", "item_id")},
		{name: "delete without group_id", fn: "stream::delete", in: map[string]any{"stream_name": "s", "item_id": "i"}, wantErr: missing("stream::delete", "group_id")},
		{name: "update without ops", fn: "stream::update", in: addr("s", "g", "i"), wantErr: missing("stream::update", "ops")},
		{name: "update with ops not a list", fn: "stream::update", in: addr("s", "g", "i", "ops", map[string]any{}),
			wantErr: map[string]any{"code": "deserialization_error", "message": "Failed to deserialize input for stream::update: ops must be an array, got object"}},
		{name: "update with an unknown op", fn: "stream::update", in: addr("s", "g", "i", "ops", []any{map[string]any{"type": "frobnicate"}}),
			wantErr: map[string]any{"code": "deserialization_error", "message": `Failed to deserialize input for stream::update: ops[0]: unknown op type "frobnicate" (expected set, merge, increment, decrement, append or remove)`}},
		{name: "list without group_id", fn: "stream::list", in: map[string]any{"stream_name": "s"}, wantErr: missing("stream::list", "group_id")},
		{name: "list_groups without stream_name", fn: "stream::list_groups", in: map[string]any{}, wantErr: missing("stream::list_groups", "stream_name")},
		{name: "send without type", fn: "stream::send", in: map[string]any{"stream_name": "s", "group_id": "g", "data": 1}, wantErr: missing("stream::send", "type")},
		{name: "send without data", fn: "stream::send", in: map[string]any{"stream_name": "s", "group_id": "g", "type": "t"}, wantErr: missing("stream::send", "data")},
		{name: "send without group_id", fn: "stream::send", in: map[string]any{"stream_name": "s"}, wantErr: missing("stream::send", "group_id")},
	})
	t.Run("a field of the wrong type", func(t *testing.T) {
		r := c.call("stream::set", map[string]any{"stream_name": 5, "group_id": "g", "item_id": "i", "data": 1})
		if errorCode(r) != "deserialization_error" || !strings.HasPrefix(errBody(r)["message"].(string), "Failed to deserialize input for stream::set: json: ") {
			t.Fatalf("got %v", r)
		}
	})
	if got := c.result("stream::list_all", nil); field(t, got, "count") != 0.0 {
		t.Fatalf("refused writes stored something: %v", got)
	}
}

// firings returns the recorded invocations of functions under prefix, in
// arrival order, as function id → payload (timestamps dropped), and marks
// them taken.
func (c *client) firings(prefix string) map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]any{}
	for i, f := range c.frames {
		if c.taken[i] || f.str("type") != "invokefunction" || !strings.HasPrefix(f.str("function_id"), prefix) {
			continue
		}
		c.taken[i] = true
		d, _ := f["data"].(map[string]any)
		delete(d, "timestamp")
		out[f.str("function_id")] = d
	}
	return out
}

func keys(m map[string]any) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestStreamTriggers(t *testing.T) {
	e := startEngine(t, nil, nil)
	w := dial(t, e.url(0))
	for id, cfg := range map[string]map[string]any{
		"on::all":   {"stream_name": "todo"},
		"on::g1":    {"stream_name": "todo", "group_id": "g1"},
		"on::i1":    {"stream_name": "todo", "group_id": "g1", "item_id": "i1"},
		"on::item":  {"stream_name": "todo", "item_id": "i1", "group_id": nil},
		"on::other": {"stream_name": "other"},
	} {
		w.register(id)
		w.send(map[string]any{"type": "registertrigger", "id": "t-" + id, "trigger_type": "stream", "function_id": id, "config": cfg,
			"metadata": map[string]any{"trigger": id}})
	}
	w.sync()
	env := func(stream, group string, item any, event map[string]any) map[string]any {
		return map[string]any{"type": "stream", "streamName": stream, "groupId": group, "id": item, "event": event}
	}
	tests := []struct {
		name  string
		fn    string
		in    map[string]any
		fired []string
		env   map[string]any // the payload every fired function gets
	}{
		{"create", "stream::set", addr("todo", "g1", "i1", "data", 1), []string{"on::all", "on::g1", "on::i1", "on::item"},
			env("todo", "g1", "i1", map[string]any{"type": "create", "data": 1})},
		{"update by set", "stream::set", addr("todo", "g1", "i1", "data", 2), []string{"on::all", "on::g1", "on::i1", "on::item"},
			env("todo", "g1", "i1", map[string]any{"type": "update", "data": 2})},
		{"the same item id in another group", "stream::set", addr("todo", "g2", "i1", "data", 3), []string{"on::all", "on::item"},
			env("todo", "g2", "i1", map[string]any{"type": "create", "data": 3})},
		{"another item of the group", "stream::set", addr("todo", "g1", "i2", "data", 4), []string{"on::all", "on::g1"},
			env("todo", "g1", "i2", map[string]any{"type": "create", "data": 4})},
		{"update op", "stream::update", addr("todo", "g1", "i1", "ops", []any{map[string]any{"type": "increment", "path": "", "by": 5}}),
			[]string{"on::all", "on::g1", "on::i1", "on::item"}, env("todo", "g1", "i1", map[string]any{"type": "update", "data": 7})},
		{"delete", "stream::delete", addr("todo", "g1", "i1"), []string{"on::all", "on::g1", "on::i1", "on::item"},
			env("todo", "g1", "i1", map[string]any{"type": "delete", "data": 7})},
		{"delete of a missing item fires nothing", "stream::delete", addr("todo", "g1", "i1"), nil, nil},
		{"send to a group", "stream::send", map[string]any{"stream_name": "todo", "group_id": "g1", "type": "ping", "data": map[string]any{"x": 1}},
			[]string{"on::all", "on::g1"}, env("todo", "g1", nil, map[string]any{"type": "event", "event": map[string]any{"type": "ping", "data": map[string]any{"x": 1}}})},
		{"send to an item", "stream::send", map[string]any{"stream_name": "todo", "group_id": "g1", "type": "ping", "data": nil, "id": "i1"},
			[]string{"on::all", "on::g1", "on::i1", "on::item"}, env("todo", "g1", "i1", map[string]any{"type": "event", "event": map[string]any{"type": "ping", "data": nil}})},
		{"another stream", "stream::set", addr("other", "x", "y", "data", 0), []string{"on::other"},
			env("other", "x", "y", map[string]any{"type": "create", "data": 0})},
		{"an unwatched stream", "stream::set", addr("quiet", "x", "y", "data", 0), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.mustCall(tt.fn, tt.in) // the firings are queued on w before the answer
			got := w.firings("on::")
			want := map[string]any{}
			for _, fn := range tt.fired {
				want[fn] = tt.env
			}
			sameJSON(t, "firings", got, want)
		})
	}
	t.Run("firings carry the trigger's metadata and an engine traceparent", func(t *testing.T) {
		w.mustCall("stream::set", addr("other", "x", "z", "data", 1))
		f := w.invoked("on::other")
		sameJSON(t, "metadata", f["metadata"], map[string]any{"trigger": "on::other"})
		if tp := f.str("traceparent"); !strings.HasPrefix(tp, "00-69696901") || len(tp) != 55 {
			t.Fatalf("traceparent %q", tp)
		}
	})
	t.Run("an unregistered trigger stops firing", func(t *testing.T) {
		w.send(map[string]any{"type": "unregistertrigger", "id": "t-on::all", "trigger_type": "stream"})
		w.mustCall("stream::set", addr("todo", "g9", "i9", "data", 1))
		sameJSON(t, "firings", keys(w.firings("on::")), []string{})
	})
}

// Condition functions are called by the engine, which waits for each
// answer; the test answers by hand, so it sees the exact order of calls.
func TestStreamTriggerConditions(t *testing.T) {
	e := startEngine(t, nil, nil)
	w := dial(t, e.url(0))
	w.register("cond::check")
	w.register("h::cond")
	w.send(map[string]any{"type": "registertrigger", "id": "t-cond", "trigger_type": "stream", "function_id": "h::cond",
		"config": map[string]any{"stream_name": "c", "condition_function_id": "cond::check"}})
	w.sync()
	answers := []struct {
		answer  map[string]any
		handled bool
	}{
		{map[string]any{"result": false}, false},
		{map[string]any{"error": map[string]any{"code": "E", "message": "condition failed"}}, false},
		{map[string]any{"result": true}, true},
		{map[string]any{"result": false}, false},
		{map[string]any{"result": nil}, true},     // no answer counts as yes
		{map[string]any{"result": "false"}, true}, // only the boolean false refuses
	}
	for i := range answers {
		w.mustCall("stream::set", addr("c", "g", seqID("i", i), "data", i))
	}
	for i, a := range answers {
		want := map[string]any{"type": "stream", "streamName": "c", "groupId": "g", "id": seqID("i", i), "event": map[string]any{"type": "create", "data": i}}
		cond := w.invoked("cond::check")
		payload := cond["data"].(map[string]any)
		delete(payload, "timestamp")
		sameJSON(t, "condition payload", payload, want)
		w.reply(cond, a.answer)
		if !a.handled {
			continue // had the handler been called, the next condition call would wait for it
		}
		h := w.invoked("h::cond")
		payload = h["data"].(map[string]any)
		delete(payload, "timestamp")
		sameJSON(t, "handler payload", payload, want)
		if h.str("traceparent") != cond.str("traceparent") || !strings.HasPrefix(h.str("traceparent"), "00-69696901") {
			t.Fatalf("condition and handler traceparents %q and %q; want one engine mark", cond.str("traceparent"), h.str("traceparent"))
		}
		w.reply(h, map[string]any{})
	}
	w.sync()
	w.none("invokefunction")
}

func TestCustomStreamImplementation(t *testing.T) {
	e := startEngine(t, nil, nil)
	impl := dial(t, e.url(0))
	for _, op := range []string{"set", "get", "delete", "update", "list", "list_groups"} {
		impl.register("stream::" + op + "(custom)")
	}
	impl.sync()
	w := dial(t, e.url(0)) // caller, and owner of a trigger on the custom stream
	w.register("on::custom")
	w.send(map[string]any{"type": "registertrigger", "id": "t-custom", "trigger_type": "stream", "function_id": "on::custom", "config": map[string]any{"stream_name": "custom"}})
	w.sync()
	ops := []any{map[string]any{"type": "increment", "path": "", "by": 1}}
	boom := map[string]any{"code": "E_IMPL", "message": "boom"}
	tests := []struct {
		name     string
		fn       string
		in       map[string]any
		implGets any            // payload of the implementation's call
		answer   map[string]any // the implementation's result fields
		want     map[string]any // fields of the caller's result frame besides type/ids
		event    map[string]any // the event the trigger gets; nil = none
	}{
		{"set", "stream::set", addr("custom", "g", "i", "data", map[string]any{"v": 1}), addr("custom", "g", "i", "data", map[string]any{"v": 1}),
			map[string]any{"result": map[string]any{"old_value": nil, "new_value": map[string]any{"v": 1}}},
			map[string]any{"result": map[string]any{"old_value": nil, "new_value": map[string]any{"v": 1}}},
			map[string]any{"type": "create", "data": map[string]any{"v": 1}}},
		{"set over a value", "stream::set", addr("custom", "g", "i", "data", 2), addr("custom", "g", "i", "data", 2),
			map[string]any{"result": map[string]any{"old_value": 1, "new_value": 2}},
			map[string]any{"result": map[string]any{"old_value": 1, "new_value": 2}},
			map[string]any{"type": "update", "data": 2}},
		{"set fails", "stream::set", addr("custom", "g", "i", "data", 2), addr("custom", "g", "i", "data", 2),
			map[string]any{"error": boom},
			map[string]any{"error": map[string]any{"code": "STREAM_SET_ERROR", "message": "failed to set value: boom"}}, nil},
		{"set answers nothing", "stream::set", addr("custom", "g", "i", "data", 2), addr("custom", "g", "i", "data", 2),
			map[string]any{"result": nil},
			map[string]any{"error": map[string]any{"code": "STREAM_SET_ERROR", "message": "failed to set value: stream::set(custom) returned no result"}}, nil},
		{"set answers the wrong shape", "stream::set", addr("custom", "g", "i", "data", 2), addr("custom", "g", "i", "data", 2),
			map[string]any{"result": map[string]any{"x": 1}},
			map[string]any{"error": map[string]any{"code": "JSON_ERROR", "message": `stream::set(custom) answered {"x":1}; expected {old_value?, new_value}`}}, nil},
		{"update", "stream::update", addr("custom", "g", "i", "ops", ops), addr("custom", "g", "i", "ops", ops),
			map[string]any{"result": map[string]any{"old_value": 2, "new_value": 3, "errors": []any{map[string]any{"op_index": 0, "code": "c", "message": "m", "doc_url": "u"}}}},
			map[string]any{"result": map[string]any{"old_value": 2, "new_value": 3, "errors": []any{map[string]any{"op_index": 0, "code": "c", "message": "m", "doc_url": "u"}}}},
			map[string]any{"type": "update", "data": 3}},
		{"update fails", "stream::update", addr("custom", "g", "i", "ops", ops), addr("custom", "g", "i", "ops", ops),
			map[string]any{"error": boom},
			map[string]any{"error": map[string]any{"code": "STREAM_UPDATE_ERROR", "message": "failed to update value: boom"}}, nil},
		{"get", "stream::get", addr("custom", "g", "i"), addr("custom", "g", "i"),
			map[string]any{"result": 3}, map[string]any{"result": 3}, nil},
		{"get of a missing item", "stream::get", addr("custom", "g", "x"), addr("custom", "g", "x"),
			map[string]any{"result": nil}, map[string]any{}, nil},
		{"get fails", "stream::get", addr("custom", "g", "x"), addr("custom", "g", "x"),
			map[string]any{"error": boom}, map[string]any{"error": boom}, nil},
		{"list", "stream::list", map[string]any{"stream_name": "custom", "group_id": "g"}, map[string]any{"stream_name": "custom", "group_id": "g"},
			map[string]any{"result": []any{3}}, map[string]any{"result": []any{3}}, nil},
		{"list groups", "stream::list_groups", map[string]any{"stream_name": "custom"}, map[string]any{"stream_name": "custom"},
			map[string]any{"result": []any{"g"}}, map[string]any{"result": []any{"g"}}, nil},
		{"delete", "stream::delete", addr("custom", "g", "i"), addr("custom", "g", "i"),
			map[string]any{"result": map[string]any{"old_value": 3}}, map[string]any{"result": map[string]any{"old_value": 3}},
			map[string]any{"type": "delete", "data": 3}},
		{"delete of a missing item", "stream::delete", addr("custom", "g", "i"), addr("custom", "g", "i"),
			map[string]any{"result": map[string]any{}}, map[string]any{"result": map[string]any{"old_value": nil}}, nil},
		{"delete fails", "stream::delete", addr("custom", "g", "i"), addr("custom", "g", "i"),
			map[string]any{"error": boom}, map[string]any{"error": map[string]any{"code": "STREAM_DELETE_ERROR", "message": "failed to delete value: boom"}}, nil},
		{"delete answers nothing", "stream::delete", addr("custom", "g", "i"), addr("custom", "g", "i"),
			map[string]any{}, map[string]any{"error": map[string]any{"code": "STREAM_DELETE_ERROR", "message": "failed to delete value: stream::delete(custom) returned no result"}}, nil},
		{"delete answers the wrong shape", "stream::delete", addr("custom", "g", "i"), addr("custom", "g", "i"),
			map[string]any{"result": "gone"}, map[string]any{"error": map[string]any{"code": "JSON_ERROR", "message": `stream::delete(custom) answered "gone"; expected {old_value?}`}}, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := seqID("custom", i)
			w.invokeAsync(id, tt.fn, tt.in)
			f := impl.invoked(tt.fn + "(custom)")
			sameJSON(t, "the implementation's payload", f["data"], tt.implGets)
			impl.reply(f, tt.answer)
			want := map[string]any{"type": "invocationresult", "invocation_id": id, "function_id": tt.fn}
			for k, v := range tt.want {
				want[k] = v
			}
			sameJSON(t, "result", w.waitResult(id), want)
			got := w.firings("on::custom")
			if tt.event == nil {
				sameJSON(t, "firings", got, map[string]any{})
				return
			}
			sameJSON(t, "firing", got, map[string]any{"on::custom": map[string]any{"type": "stream", "streamName": "custom", "groupId": "g", "id": "i", "event": tt.event}})
		})
	}
	// The engine's own store never saw the custom stream; other streams are
	// still the engine's.
	sameJSON(t, "list_all", w.result("stream::list_all", map[string]any{}), map[string]any{"stream": []any{}, "count": 0})
	sameJSON(t, "plain stream", w.result("stream::set", addr("plain", "g", "i", "data", 1)), map[string]any{"old_value": nil, "new_value": 1})
}

// Sets a connection pipelines are appended in the order it sent them (they
// are submitted from its read goroutine), so each answer's old_value is the
// value the previous set wrote; void sets are written too.
func TestPipelinedSetsKeepTheirOrder(t *testing.T) {
	e := startEngine(t, nil, nil)
	c := dial(t, e.url(0))
	const n = 200
	for i := range n {
		m := map[string]any{"type": "invokefunction", "invocation_id": "set-" + strconv.Itoa(i), "function_id": "stream::set",
			"data": addr("s", "g", "item", "data", i)}
		if i%10 == 9 {
			m["action"] = map[string]any{"type": "void"}
			delete(m, "invocation_id")
		}
		c.send(m)
	}
	for i := range n {
		if i%10 == 9 {
			continue
		}
		f := c.next("invocationresult", func(f frame) bool { return f.str("invocation_id") == "set-"+strconv.Itoa(i) })
		res, _ := f["result"].(map[string]any)
		var want any
		if i > 0 {
			want = float64(i - 1)
		}
		if res == nil || res["old_value"] != want || res["new_value"] != float64(i) {
			t.Fatalf("set %d answered %v, want old_value %v and new_value %d", i, f, want, i)
		}
	}
	// The last set is void: nothing answers it, and a read is not ordered
	// after a write still on its way to the disk, so the read may come
	// before it is applied.
	eventually(t, "the last (void) set applied", func() bool {
		return c.mustCall("stream::get", addr("s", "g", "item")) == float64(n-1)
	})
}

// TestCustomStreamEventsRaceLogEvents writes to a custom stream (whose
// change events the engine emits from the caller's goroutine) while records
// of a plain stream are applied, both streams watched by triggers: under
// -race, the two event paths must share no scratch state.
func TestCustomStreamEventsRaceLogEvents(t *testing.T) {
	e := startEngine(t, nil, nil)
	impl := dial(t, e.url(0))
	impl.serve("stream::set(custom)", func(data json.RawMessage, _ frame) (any, error) {
		var in struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(data, &in); err != nil {
			return nil, err
		}
		return map[string]any{"old_value": nil, "new_value": in.Data}, nil
	})
	impl.sync()
	var seen atomic.Int64
	w := dial(t, e.url(0))
	w.serve("on::write", func(json.RawMessage, frame) (any, error) { seen.Add(1); return nil, nil })
	for _, stream := range []string{"custom", "plain"} {
		w.send(map[string]any{"type": "registertrigger", "id": "t-" + stream, "trigger_type": "stream", "function_id": "on::write", "config": map[string]any{"stream_name": stream}})
	}
	w.sync()
	const n = 100
	var wg sync.WaitGroup
	for _, stream := range []string{"custom", "plain"} {
		c := dial(t, e.url(0))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				if f := c.call("stream::set", addr(stream, "g", strconv.Itoa(i), "data", i)); f["error"] != nil {
					t.Errorf("%s set %d: %v", stream, i, f["error"])
					return
				}
			}
		}()
	}
	wg.Wait()
	eventually(t, "every write's event delivered", func() bool { return seen.Load() == 2*n })
}
