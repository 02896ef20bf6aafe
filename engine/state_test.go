package engine

import (
	"testing"

	"github.com/iii-go/iii/engine/config"
)

// The state module: scope → key → value, and the state triggers its
// changes fire.

func TestStateFunctions(t *testing.T) {
	e := startEngine(t, nil, func(c *config.Config) { c.State.MaxValueBytes = 16 })
	c := dial(t, e.url(0))
	missing := func(fn, f string) map[string]any {
		return map[string]any{"code": "deserialization_error", "message": "Failed to deserialize input for " + fn + ": missing field `" + f + "`"}
	}
	sk := func(scope, key string, more ...any) map[string]any {
		m := map[string]any{"scope": scope, "key": key}
		for i := 0; i+1 < len(more); i += 2 {
			m[more[i].(string)] = more[i+1]
		}
		return m
	}
	runSteps(t, c, []step{
		{name: "get a missing key", fn: "state::get", in: sk("s", "k"), absent: true},
		{name: "list an unknown scope", fn: "state::list", in: map[string]any{"scope": "s"}, want: []any{}},
		{name: "no scopes yet", fn: "state::list_groups", in: nil, want: map[string]any{"groups": []any{}}},
		{name: "set", fn: "state::set", in: sk("s", "k", "value", map[string]any{"a": 1}), want: map[string]any{"old_value": nil, "new_value": map[string]any{"a": 1}}},
		{name: "set again", fn: "state::set", in: sk("s", "k", "value", 2), want: map[string]any{"old_value": map[string]any{"a": 1}, "new_value": 2}},
		{name: "set with data instead of value", fn: "state::set", in: sk("s", "k2", "data", "d"), want: map[string]any{"old_value": nil, "new_value": "d"}},
		{name: "value wins over data", fn: "state::set", in: sk("b", "k", "value", 1, "data", 2), want: map[string]any{"old_value": nil, "new_value": 1}},
		{name: "a value at the size limit", fn: "state::set", in: sk("b", "big", "value", "12345678901234"), want: map[string]any{"old_value": nil, "new_value": "12345678901234"}},
		{name: "a value over the size limit", fn: "state::set", in: sk("b", "big", "value", "123456789012345"),
			wantErr: map[string]any{"code": "VALUE_TOO_LARGE", "message": "value is 17 bytes; max_value_bytes is 16"}},
		{name: "get", fn: "state::get", in: sk("s", "k"), want: 2},
		{name: "list in insertion order", fn: "state::list", in: map[string]any{"scope": "s"}, want: []any{2, "d"}},
		{name: "list scopes sorted", fn: "state::list_groups", in: map[string]any{}, want: map[string]any{"groups": []any{"b", "s"}}},
		{name: "update", fn: "state::update", in: sk("s", "k", "ops", []any{map[string]any{"type": "decrement", "path": "", "by": 3}}),
			want: map[string]any{"old_value": 2, "new_value": -1}},
		{name: "update that creates", fn: "state::update", in: sk("s", "obj", "ops", []any{map[string]any{"type": "merge", "value": map[string]any{"x": 1}}}),
			want: map[string]any{"old_value": nil, "new_value": map[string]any{"x": 1}}},
		{name: "update with a failing op", fn: "state::update", in: sk("s", "obj", "ops", []any{map[string]any{"type": "append", "path": "x", "value": 2}}),
			want: map[string]any{"old_value": map[string]any{"x": 1}, "new_value": map[string]any{"x": 1}, "errors": []any{map[string]any{"op_index": 0,
				"code": "append.type_mismatch", "message": "append at x: target is number; append needs an array, a string or null",
				"doc_url": "https://iii.dev/docs/workers/iii-state#error-codes"}}}},
		{name: "delete answers the old value", fn: "state::delete", in: sk("s", "k"), want: -1},
		{name: "delete of a missing key", fn: "state::delete", in: sk("s", "k"), absent: true},
		{name: "delete in another scope", fn: "state::delete", in: sk("b", "k"), want: 1},
		{name: "get after delete", fn: "state::get", in: sk("s", "k"), absent: true},
		{name: "set without scope", fn: "state::set", in: map[string]any{"key": "k", "value": 1}, wantErr: missing("state::set", "scope")},
		{name: "set without key", fn: "state::set", in: map[string]any{"scope": "s", "value": 1}, wantErr: missing("state::set", "key")},
		{name: "set without value", fn: "state::set", in: sk("s", "k"), wantErr: missing("state::set", "value")},
		{name: "get without key", fn: "state::get", in: map[string]any{"scope": "s"}, wantErr: missing("state::get", "key")},
		{name: "delete without scope", fn: "state::delete", in: nil, wantErr: missing("state::delete", "scope")},
		{name: "update without ops", fn: "state::update", in: sk("s", "k"), wantErr: missing("state::update", "ops")},
		{name: "update with an op missing its path", fn: "state::update", in: sk("s", "k", "ops", []any{map[string]any{"type": "increment", "by": 1}}),
			wantErr: map[string]any{"code": "deserialization_error", "message": "Failed to deserialize input for state::update: ops[0] (increment): path is missing"}},
		{name: "list without scope", fn: "state::list", in: map[string]any{}, wantErr: missing("state::list", "scope")},
		{name: "a payload that is not an object", fn: "state::get", in: []any{},
			wantErr: map[string]any{"code": "deserialization_error", "message": "Failed to deserialize input for state::get: json: cannot unmarshal array into Go value of type engine.stateAddr"}},
	})
}

func TestStateTriggers(t *testing.T) {
	e := startEngine(t, nil, nil)
	w := dial(t, e.url(0))
	for id, cfg := range map[string]map[string]any{
		"on::all":     {},
		"on::scope":   {"scope": "s"},
		"on::key":     {"scope": "s", "key": "k"},
		"on::anykey":  {"key": "k"},
		"on::emptysc": {"scope": ""},
		"on::nullkey": {"scope": "s", "key": nil},
	} {
		w.register(id)
		w.send(map[string]any{"type": "registertrigger", "id": "t-" + id, "trigger_type": "state", "function_id": id, "config": cfg})
	}
	w.sync()
	ev := func(typ, scope, key string, old, new any) map[string]any {
		return map[string]any{"type": "state", "event_type": typ, "scope": scope, "key": key, "old_value": old, "new_value": new}
	}
	all := []string{"on::all", "on::scope", "on::key", "on::anykey", "on::nullkey"}
	tests := []struct {
		name  string
		fn    string
		in    map[string]any
		fired []string
		event map[string]any
	}{
		{"created", "state::set", map[string]any{"scope": "s", "key": "k", "value": 1}, all, ev("state:created", "s", "k", nil, 1)},
		{"updated", "state::set", map[string]any{"scope": "s", "key": "k", "value": 2}, all, ev("state:updated", "s", "k", 1, 2)},
		{"updated by ops", "state::update", map[string]any{"scope": "s", "key": "k", "ops": []any{map[string]any{"type": "increment", "path": "", "by": 1}}},
			all, ev("state:updated", "s", "k", 2, 3)},
		{"deleted", "state::delete", map[string]any{"scope": "s", "key": "k"}, all, ev("state:deleted", "s", "k", 3, nil)},
		{"another key of the scope", "state::set", map[string]any{"scope": "s", "key": "other", "value": true},
			[]string{"on::all", "on::scope", "on::nullkey"}, ev("state:created", "s", "other", nil, true)},
		{"the key in another scope", "state::set", map[string]any{"scope": "t", "key": "k", "value": "v"},
			[]string{"on::all", "on::anykey"}, ev("state:created", "t", "k", nil, "v")},
		{"the empty scope is a scope", "state::set", map[string]any{"scope": "", "key": "z", "value": 0},
			[]string{"on::all", "on::emptysc"}, ev("state:created", "", "z", nil, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.mustCall(tt.fn, tt.in) // firings are queued on w before the answer
			want := map[string]any{}
			for _, fn := range tt.fired {
				want[fn] = tt.event
			}
			sameJSON(t, "firings", w.firings("on::"), want)
		})
	}
}

func TestStateTriggerCondition(t *testing.T) {
	e := startEngine(t, nil, nil)
	w := dial(t, e.url(0))
	w.register("cond::big")
	w.register("h::big")
	w.send(map[string]any{"type": "registertrigger", "id": "t-big", "trigger_type": "state", "function_id": "h::big",
		"config": map[string]any{"scope": "n", "condition_function_id": "cond::big"}})
	w.sync()
	values := []float64{1, 50, 3, 11}
	for i, v := range values {
		w.mustCall("state::set", map[string]any{"scope": "n", "key": seqID("k", i), "value": v})
	}
	for i, v := range values {
		want := map[string]any{"type": "state", "event_type": "state:created", "scope": "n", "key": seqID("k", i), "old_value": nil, "new_value": v}
		cond := w.invoked("cond::big")
		sameJSON(t, "condition payload", cond["data"], want)
		w.reply(cond, map[string]any{"result": v > 10})
		if v > 10 {
			h := w.invoked("h::big")
			sameJSON(t, "handler payload", h["data"], want)
			w.reply(h, map[string]any{})
		}
	}
	w.sync()
	w.none("invokefunction")
}

func TestStateTriggersDisabled(t *testing.T) {
	e := startEngine(t, nil, func(c *config.Config) { c.State.TriggersEnabled = false })
	w := dial(t, e.url(0))
	w.register("on::all")
	w.send(map[string]any{"type": "registertrigger", "id": "t", "trigger_type": "state", "function_id": "on::all", "config": map[string]any{}})
	w.sync()
	w.mustCall("state::set", map[string]any{"scope": "s", "key": "k", "value": 1})
	w.mustCall("state::delete", map[string]any{"scope": "s", "key": "k"})
	sameJSON(t, "firings", w.firings("on::"), map[string]any{})
}
