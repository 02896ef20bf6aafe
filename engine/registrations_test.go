package engine

import (
	"encoding/json"
	"testing"

	"github.com/iii-go/iii/engine/config"
)

// Registrations: who may own a function id, and how triggers reach the
// worker that provides their type.

// openRBAC is an RBAC listener without an auth function: every session gets
// the default grants and may call what matches expose.
func openRBAC(expose ...string) []config.Listener {
	r := &config.RBAC{}
	for _, g := range expose {
		r.Expose = append(r.Expose, config.ExposeRule{Glob: g})
	}
	return []config.Listener{{RBAC: r}}
}

// ownerOf is the worker_name engine::functions::info reports for id, or ""
// when it is not registered.
func ownerOf(t *testing.T, c *client, id string) string {
	t.Helper()
	r := c.call("engine::functions::info", map[string]any{"function_id": id})
	if errorCode(r) == "NOT_FOUND" {
		return ""
	}
	if r["error"] != nil {
		t.Fatalf("engine::functions::info %s: %v", id, r["error"])
	}
	s, _ := r["result"].(map[string]any)["worker_name"].(string)
	return s
}

func TestFunctionRegistrationOwnership(t *testing.T) {
	const trusted, untrusted = 0, 1
	tests := []struct {
		name          string
		first, second int // listeners of the first and the second registrant
		id            string
		wantErr       map[string]any // error frame body the second gets; nil = accepted
		wantSecond    bool           // the second owns it afterwards
	}{
		{"trusted takes over a trusted worker's function", trusted, trusted, "svc::f", nil, true},
		{"trusted takes over an untrusted session's function", untrusted, trusted, "ui::f", nil, true},
		{"untrusted cannot take over a trusted worker's function", trusted, untrusted, "ui::f",
			map[string]any{"code": "FORBIDDEN", "message": `registerfunction "ui::f": id is owned by another connection`}, false},
		{"untrusted cannot take over another session's function", untrusted, untrusted, "ui::f",
			map[string]any{"code": "FORBIDDEN", "message": `registerfunction "ui::f": id is owned by another connection`}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEngine(t, openRBAC("*"), nil)
			obs := dial(t, e.url(0))
			first, second := dial(t, e.url(tt.first)), dial(t, e.url(tt.second))
			first.serve(tt.id, func(json.RawMessage, frame) (any, error) { return "first", nil })
			first.sync()
			second.serve(tt.id, func(json.RawMessage, frame) (any, error) { return "second", nil })
			second.sync()
			if tt.wantErr != nil {
				sameJSON(t, "refusal", second.next("error", func(frame) bool { return true }), map[string]any{"type": "error", "error": tt.wantErr})
			}
			second.none("error")
			want, answer := first.id, "first"
			if tt.wantSecond {
				want, answer = second.id, "second"
			}
			if got := ownerOf(t, obs, tt.id); got != want {
				t.Fatalf("owner %q, want %q", got, want)
			}
			if got := obs.result(tt.id, nil); got != answer {
				t.Fatalf("%s answered %v, want %v", tt.id, got, answer)
			}
		})
	}
}

func TestReservedFunctionIDs(t *testing.T) {
	e := startEngine(t, openRBAC("*"), nil)
	obs := dial(t, e.url(0))
	tests := []struct {
		listener int
		id       string
		msg      string
	}{
		{0, "engine::health::check", `registerfunction "engine::health::check": id belongs to a function the engine provides`},
		{0, "stream::set", `registerfunction "stream::set": id belongs to a function the engine provides`},
		{0, "state::get", `registerfunction "state::get": id belongs to a function the engine provides`},
		{1, "engine::mine", `registerfunction "engine::mine": ids under engine:: are reserved for the engine and trusted workers`},
		{1, "stream::set(todo)", `registerfunction "stream::set(todo)": ids under stream:: are reserved for the engine and trusted workers`},
		{1, "state::mine", `registerfunction "state::mine": ids under state:: are reserved for the engine and trusted workers`},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			c := dial(t, e.url(tt.listener))
			c.register(tt.id)
			sameJSON(t, "refusal", c.next("error", func(frame) bool { return true }),
				map[string]any{"type": "error", "error": map[string]any{"code": "FORBIDDEN", "message": tt.msg}})
			if got := ownerOf(t, obs, tt.id); got == c.id {
				t.Fatalf("%s was registered to the session", tt.id)
			}
		})
	}
	// A trusted worker may provide a custom stream implementation.
	w := dial(t, e.url(0))
	w.register("stream::get(custom)")
	w.sync()
	w.none("error")
	if got := ownerOf(t, obs, "stream::get(custom)"); got != w.id {
		t.Fatalf("stream::get(custom) owned by %q", got)
	}
}

func TestUnregisterFunction(t *testing.T) {
	e := startEngine(t, nil, nil)
	owner, other := dial(t, e.url(0)), dial(t, e.url(0))
	owner.register("svc::u", "description", "v1")
	owner.register("svc::keep")
	owner.sync()
	owner.register("svc::u", "description", "v2") // re-registration updates
	owner.sync()
	info := other.result("engine::functions::info", map[string]any{"function_id": "svc::u"}).(map[string]any)
	if info["description"] != "v2" {
		t.Fatalf("description %v after re-registration, want v2", info["description"])
	}
	other.send(map[string]any{"type": "unregisterfunction", "id": "svc::u"}) // not the owner: no-op
	other.sync()
	if ownerOf(t, other, "svc::u") != owner.id {
		t.Fatal("a non-owner removed svc::u")
	}
	owner.send(map[string]any{"type": "unregisterfunction", "id": "svc::u"})
	owner.sync()
	sameJSON(t, "info of a removed function", other.call("engine::functions::info", map[string]any{"function_id": "svc::u"})["error"],
		map[string]any{"code": "NOT_FOUND", "message": "Function 'svc::u' is not registered."})
	owner.conn.Close(1000, "")
	owner.waitClosed()
	eventually(t, "svc::keep to go with its owner", func() bool { return ownerOf(t, other, "svc::keep") == "" })
}

// triggerRows lists registered triggers through the engine.
func triggerRows(t *testing.T, c *client, filter map[string]any) []map[string]any {
	t.Helper()
	var out struct {
		Rows []map[string]any `json:"registered_triggers"`
	}
	into(t, c.result("engine::registered-triggers::list", filter), &out)
	return out.Rows
}

func TestWorkerProvidedTriggerType(t *testing.T) {
	e := startEngine(t, nil, nil)
	p, r, x := dial(t, e.url(0)), dial(t, e.url(0)), dial(t, e.url(0))
	p.send(map[string]any{"type": "registertriggertype", "id": "cron", "description": "Cron jobs"})
	p.sync()
	r.send(map[string]any{"type": "registertrigger", "id": "t1", "trigger_type": "cron", "function_id": "jobs::tick",
		"config": map[string]any{"expr": "* * * * *"}, "metadata": map[string]any{"owner": "r"}})
	sameJSON(t, "forwarded registertrigger", p.next("registertrigger", func(frame) bool { return true }), map[string]any{
		"type": "registertrigger", "id": "t1", "trigger_type": "cron", "function_id": "jobs::tick",
		"config": map[string]any{"expr": "* * * * *"}, "metadata": map[string]any{"owner": "r"}})

	failed := map[string]any{"type": "triggerregistrationresult", "id": "t1", "trigger_type": "cron", "function_id": "jobs::tick",
		"error": map[string]any{"code": "bad_expr", "message": "cannot parse"}}
	x.send(failed) // not the provider: ignored
	x.sync()
	p.send(map[string]any{"type": "triggerregistrationresult", "id": "t1", "trigger_type": "cron", "function_id": "jobs::tick"}) // success: nothing to say
	p.send(map[string]any{"type": "triggerregistrationresult", "id": "gone", "trigger_type": "cron", "function_id": "jobs::tick",
		"error": map[string]any{"code": "x", "message": "unknown trigger"}}) // unknown trigger: ignored
	p.send(failed)
	sameJSON(t, "provider failure routed to the registrant", r.next("triggerregistrationresult", func(frame) bool { return true }), failed)
	p.sync()
	r.sync()
	r.none("triggerregistrationresult")

	r.send(map[string]any{"type": "unregistertrigger", "id": "t1", "trigger_type": "cron"})
	sameJSON(t, "forwarded unregistertrigger", p.next("unregistertrigger", func(frame) bool { return true }),
		map[string]any{"type": "unregistertrigger", "id": "t1", "trigger_type": "cron"})

	// A registrant's triggers are unregistered at its provider when it leaves.
	r.send(map[string]any{"type": "registertrigger", "id": "t2", "trigger_type": "cron", "function_id": "jobs::tick"})
	sameJSON(t, "forwarded registertrigger without config", p.next("registertrigger", func(frame) bool { return true }), map[string]any{
		"type": "registertrigger", "id": "t2", "trigger_type": "cron", "function_id": "jobs::tick", "config": nil})
	r.conn.Close(1000, "")
	sameJSON(t, "unregistertrigger on the registrant's disconnect", p.next("unregistertrigger", func(frame) bool { return true }),
		map[string]any{"type": "unregistertrigger", "id": "t2", "trigger_type": "cron"})
	eventually(t, "the registrant's triggers to go", func() bool { return len(triggerRows(t, x, map[string]any{"trigger_type": "cron"})) == 0 })
}

func TestPendingTriggersGoToANewProvider(t *testing.T) {
	e := startEngine(t, nil, nil)
	r := dial(t, e.url(0))
	for _, id := range []string{"p1", "p2"} {
		r.send(map[string]any{"type": "registertrigger", "id": id, "trigger_type": "queue", "function_id": "jobs::" + id, "config": map[string]any{"q": id}})
	}
	r.sync()
	r.none("triggerregistrationresult")
	pending := func(want bool) {
		t.Helper()
		rows := triggerRows(t, r, map[string]any{"trigger_type": "queue"})
		if len(rows) != 2 {
			t.Fatalf("rows %v", rows)
		}
		for _, row := range rows {
			if row["pending"] != want {
				t.Fatalf("trigger %v pending=%v, want %v", row["id"], row["pending"], want)
			}
		}
	}
	pending(true)

	for round := range 2 {
		p := dial(t, e.url(0))
		p.send(map[string]any{"type": "registertriggertype", "id": "queue"})
		for _, id := range []string{"p1", "p2"} {
			sameJSON(t, "pending trigger delivered", p.next("registertrigger", func(frame) bool { return true }), map[string]any{
				"type": "registertrigger", "id": id, "trigger_type": "queue", "function_id": "jobs::" + id, "config": map[string]any{"q": id}})
		}
		pending(false)
		if round == 0 {
			p.conn.Close(1000, "") // the triggers stay, pending again
			p.waitClosed()
			eventually(t, "the type to lose its provider", func() bool {
				rows := triggerRows(t, r, map[string]any{"trigger_type": "queue"})
				return len(rows) == 2 && rows[0]["pending"] == true
			})
			continue
		}
		r.send(map[string]any{"type": "unregistertriggertype", "id": "queue"}) // not the provider: no-op
		r.sync()
		pending(false)
		p.send(map[string]any{"type": "unregistertriggertype", "id": "queue"})
		p.sync()
		pending(true)
	}
}

func TestTriggerRegistrationRefusals(t *testing.T) {
	e := startEngine(t, nil, nil)
	c := dial(t, e.url(0))
	for _, typ := range []string{"stream", "stream:join", "stream:leave", "state", "engine::functions-available", "engine::workers-available"} {
		c.send(map[string]any{"type": "registertriggertype", "id": typ})
		sameJSON(t, typ, c.next("error", func(frame) bool { return true }), map[string]any{"type": "error",
			"error": map[string]any{"code": "FORBIDDEN", "message": `registertriggertype "` + typ + `": the engine provides this trigger type itself`}})
	}
	tests := []struct {
		name   string
		typ    string
		config any
		msg    string // "" = accepted
	}{
		{"stream without stream_name", "stream", map[string]any{"group_id": "g"}, "stream trigger config: stream_name is missing"},
		{"stream config not an object", "stream", 5, "stream trigger config: must be an object, got number"},
		{"stream group_id not a string", "stream", map[string]any{"stream_name": "s", "group_id": 5}, "stream trigger config: group_id must be a string, got number"},
		{"stream_name null", "stream", map[string]any{"stream_name": nil}, "stream trigger config: stream_name must be a string, got null"},
		{"state config not an object", "state", "x", "state trigger config: must be an object, got string"},
		{"state key not a string", "state", map[string]any{"key": true}, "state trigger config: key must be a string, got boolean"},
		{"stream minimal", "stream", map[string]any{"stream_name": "s"}, ""},
		{"state matching everything", "state", map[string]any{}, ""},
		{"unprovided type, any config", "custom", []any{1}, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := seqID("trg", i)
			c := dial(t, e.url(0))
			c.send(map[string]any{"type": "registertrigger", "id": id, "trigger_type": tt.typ, "function_id": "h::on", "config": tt.config})
			c.sync()
			rows := triggerRows(t, c, map[string]any{"search": id})
			if tt.msg == "" {
				c.none("triggerregistrationresult")
				if len(rows) != 1 || rows[0]["trigger_type"] != tt.typ {
					t.Fatalf("accepted trigger listed as %v", rows)
				}
				return
			}
			sameJSON(t, "refusal", c.next("triggerregistrationresult", func(frame) bool { return true }), map[string]any{
				"type": "triggerregistrationresult", "id": id, "trigger_type": tt.typ, "function_id": "h::on",
				"error": map[string]any{"code": "trigger_registration_failed", "message": tt.msg}})
			if len(rows) != 0 {
				t.Fatalf("refused trigger listed: %v", rows)
			}
		})
	}
}
