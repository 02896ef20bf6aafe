package projections

import (
	"reflect"
	"testing"

	"github.com/iii-go/iii/log"
)

func workerConnected(w string, t int64, value string) *log.Record {
	return &log.Record{Kind: log.KindWorkerConnected, Worker: w, Time: t, Value: []byte(value)}
}

func workerUpdated(w, value string) *log.Record {
	return &log.Record{Kind: log.KindWorkerUpdated, Worker: w, Value: []byte(value)}
}

func workerGone(w string) *log.Record {
	return &log.Record{Kind: log.KindWorkerDisconnected, Worker: w}
}

func fnRegistered(w, fn, value string) *log.Record {
	return &log.Record{Kind: log.KindFunctionRegistered, Worker: w, Function: fn, Value: []byte(value)}
}

func fnUnregistered(w, fn string) *log.Record {
	return &log.Record{Kind: log.KindFunctionUnregistered, Worker: w, Function: fn}
}

func trigRegistered(w, id, typ, fn, config, meta string) *log.Record {
	r := &log.Record{Kind: log.KindTriggerRegistered, Worker: w, Trigger: id, TriggerType: typ, Function: fn, Value: []byte(config)}
	if meta != "" {
		r.Meta = []byte(meta)
	}
	return r
}

func trigUnregistered(w, id, typ string) *log.Record {
	return &log.Record{Kind: log.KindTriggerUnregistered, Worker: w, Trigger: id, TriggerType: typ}
}

func typeRegistered(w, id, value string) *log.Record {
	return &log.Record{Kind: log.KindTriggerTypeRegistered, Worker: w, TriggerType: id, Value: []byte(value)}
}

func typeUnregistered(w, id string) *log.Record {
	return &log.Record{Kind: log.KindTriggerTypeUnregistered, Worker: w, TriggerType: id}
}

func engineStarted() *log.Record {
	return &log.Record{Kind: log.KindEngineStarted, Value: []byte(`{"version":"test"}`)}
}

func ids[T any](items []T, id func(T) string) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, id(it))
	}
	return out
}

func fnIDs(fs []Function) []string  { return ids(fs, func(f Function) string { return f.ID }) }
func trigIDs(ts []Trigger) []string { return ids(ts, func(t Trigger) string { return t.ID }) }

func TestRegistryWorkers(t *testing.T) {
	var g Registry
	if ch := g.Apply(workerConnected("w1", 42, `{"listener":"0.0.0.0:49134","ip_address":"127.0.0.1","rbac":true,"extra":1}`)); ch.Existed {
		t.Error("new worker reported as existing")
	}
	g.Apply(workerConnected("w2", 43, `{"listener":"x","ip_address":"::1","rbac":false}`))
	g.Apply(workerUpdated("w1", `{"name":"api","runtime":"node","version":"0.11.6","os":"linux","pid":16000,"isolation":null,"description":"d","telemetry":{"language":"js"}}`))
	g.Apply(workerUpdated("w1", `{"name":"api2","pid":"bad","runtime":7}`)) // merge: wrong types leave fields alone
	if ch := g.Apply(workerUpdated("ghost", `{"name":"x"}`)); ch.Existed {
		t.Error("update of unknown worker reported as existing")
	}
	g.Apply(fnRegistered("w1", "a::f", `{}`))
	g.Apply(fnRegistered("w1", "a::g", `{}`))

	w, ok := g.Worker("w1")
	want := Worker{
		ID: "w1", Listener: "0.0.0.0:49134", IP: "127.0.0.1", RBAC: true,
		Info:        []byte(`{"listener":"0.0.0.0:49134","ip_address":"127.0.0.1","rbac":true,"extra":1}`),
		ConnectedAt: 42, Connected: true,
		Name: "api2", Description: "d", Runtime: "node", Version: "0.11.6", OS: "linux",
		PID: 16000, HasPID: true, Telemetry: []byte(`{"language":"js"}`), Functions: 2,
	}
	if !ok || !reflect.DeepEqual(w, want) {
		t.Errorf("Worker(w1) =\n%+v\nwant\n%+v", w, want)
	}
	if _, ok := g.Worker("ghost"); ok {
		t.Error("ghost worker created by worker.updated")
	}
	if got := ids(g.Workers(), func(w Worker) string { return w.ID }); !reflect.DeepEqual(got, []string{"w1", "w2"}) {
		t.Errorf("Workers = %q", got)
	}
	if w2, _ := g.Worker("w2"); w2.HasPID || w2.Functions != 0 || w2.RBAC {
		t.Errorf("w2 = %+v", w2)
	}
	if ch := g.Apply(workerGone("w2")); !ch.Existed {
		t.Error("disconnect of known worker not reported")
	}
	if _, ok := g.Worker("w2"); ok {
		t.Error("disconnected worker still listed")
	}
}

func TestRegistryFunctionOwnership(t *testing.T) {
	var g Registry
	steps := []struct {
		rec  *log.Record
		want RegistryChange
	}{
		{fnRegistered("w1", "todos::list", `{"description":"List","metadata":{"public":true},"request_format":{"type":"object"},"response_format":null}`), RegistryChange{}},
		{fnRegistered("w1", "todos::list", `{"description":"List v2"}`), RegistryChange{Existed: true, PrevWorker: "w1"}},
		{fnRegistered("w2", "todos::list", `{}`), RegistryChange{Existed: true, PrevWorker: "w1"}}, // newest wins
		{fnUnregistered("w1", "todos::list"), RegistryChange{Existed: true, PrevWorker: "w2"}},     // not the owner: no-op
		{fnUnregistered("w1", "nope"), RegistryChange{}},                                           // unknown
		{workerGone("w1"), RegistryChange{}}, // w1 lost it already
		{fnRegistered("w2", "todos::create", `{}`), RegistryChange{}},
		{fnUnregistered("w2", "todos::create"), RegistryChange{Existed: true, PrevWorker: "w2", Functions: []string{"todos::create"}}},
		{fnRegistered(log.EngineWorker, "stream::set", `{"description":"set"}`), RegistryChange{}},
		{fnRegistered("w3", "b", `{}`), RegistryChange{}},
		{fnRegistered("w3", "a", `{}`), RegistryChange{}},
		{workerGone("w3"), RegistryChange{Functions: []string{"a", "b"}}},
	}
	for i, st := range steps {
		if got := g.Apply(st.rec); !reflect.DeepEqual(got, st.want) {
			t.Errorf("step %d (%s): got %+v, want %+v", i, st.rec.Kind, got, st.want)
		}
	}
	f, ok := g.Function("todos::list")
	if !ok || f.Worker != "w2" || f.Description != "" || f.Metadata != nil {
		t.Errorf("todos::list = %+v %v", f, ok)
	}
	if got := fnIDs(g.Functions()); !reflect.DeepEqual(got, []string{"stream::set", "todos::list"}) {
		t.Errorf("Functions = %q", got)
	}
	if got := fnIDs(g.FunctionsOf("w2")); !reflect.DeepEqual(got, []string{"todos::list"}) {
		t.Errorf("FunctionsOf(w2) = %q", got)
	}

	var h Registry
	h.Apply(fnRegistered("w", "f", `{"description":"List","metadata":{"public":true},"request_format":{"type":"object"},"response_format":null}`))
	want := Function{ID: "f", Worker: "w", Description: "List", Metadata: []byte(`{"public":true}`), RequestFormat: []byte(`{"type":"object"}`)}
	if got, _ := h.Function("f"); !reflect.DeepEqual(got, want) {
		t.Errorf("Function = %+v, want %+v", got, want)
	}
}

func TestRegistryTriggers(t *testing.T) {
	var g Registry
	g.Apply(workerConnected("p", 1, `{}`))
	g.Apply(typeRegistered("p", "webhook", `{"description":"hooks","trigger_request_format":{"a":1}}`))
	g.Apply(typeRegistered(log.EngineWorker, "stream", `{"description":"stream changes"}`))
	g.Apply(trigRegistered("u", "t1", "webhook", "u::f", `{"every":5}`, `{"m":1}`))
	g.Apply(trigRegistered("p", "t2", "stream", "p::f", `{"stream_name":"todo"}`, ""))
	g.Apply(trigRegistered("u", "t3", "stream", "u::g", `{"stream_name":"x"}`, ""))
	g.Apply(trigRegistered("p", "t4", "webhook", "p::h", `{}`, ""))

	// Re-registering keeps the position and reports the replaced trigger.
	ch := g.Apply(trigRegistered("u", "t1", "webhook", "u::f2", `{"every":6}`, ""))
	if !ch.Existed || ch.PrevWorker != "u" || len(ch.Triggers) != 1 || string(ch.Triggers[0].Config) != `{"every":5}` {
		t.Errorf("re-register change = %+v", ch)
	}
	if got := trigIDs(g.Triggers()); !reflect.DeepEqual(got, []string{"t1", "t2", "t3", "t4"}) {
		t.Errorf("Triggers = %q", got)
	}
	if tr, _ := g.Trigger("t1"); tr.Function != "u::f2" || tr.Metadata != nil || tr.Worker != "u" || tr.Type != "webhook" {
		t.Errorf("t1 = %+v", tr)
	}
	if got := trigIDs(g.TriggersOfType("webhook")); !reflect.DeepEqual(got, []string{"t1", "t4"}) {
		t.Errorf("TriggersOfType = %q", got)
	}
	if got := trigIDs(g.TriggersOf("u")); !reflect.DeepEqual(got, []string{"t1", "t3"}) {
		t.Errorf("TriggersOf(u) = %q", got)
	}
	tt, ok := g.TriggerType("webhook")
	if !ok || tt.Worker != "p" || tt.Description != "hooks" || string(tt.TriggerRequestFormat) != `{"a":1}` || tt.CallRequestFormat != nil {
		t.Errorf("TriggerType = %+v", tt)
	}

	// Unregistering a trigger works whatever the owner.
	if ch := g.Apply(trigUnregistered("someone", "t3", "stream")); !ch.Existed || len(ch.Triggers) != 1 || ch.Triggers[0].ID != "t3" {
		t.Errorf("unregister = %+v", ch)
	}
	if ch := g.Apply(trigUnregistered("u", "t3", "stream")); ch.Existed || ch.Triggers != nil {
		t.Errorf("unregister unknown = %+v", ch)
	}

	// Trigger types: only the provider may unregister.
	if ch := g.Apply(typeUnregistered("u", "webhook")); ch.TriggerTypes != nil || ch.PrevWorker != "p" {
		t.Errorf("foreign type unregister = %+v", ch)
	}
	if ch := g.Apply(typeRegistered("q", "webhook", `{"description":"other"}`)); !ch.Existed || ch.PrevWorker != "p" {
		t.Errorf("type takeover = %+v", ch)
	}
	g.Apply(typeRegistered("p", "webhook", `{"description":"back"}`))

	// The provider leaves: its triggers and types go, others' triggers of its
	// types stay (pending).
	ch = g.Apply(workerGone("p"))
	if !ch.Existed || !reflect.DeepEqual(trigIDs(ch.Triggers), []string{"t2", "t4"}) || !reflect.DeepEqual(ch.TriggerTypes, []string{"webhook"}) {
		t.Errorf("disconnect change = %+v", ch)
	}
	if got := trigIDs(g.Triggers()); !reflect.DeepEqual(got, []string{"t1"}) {
		t.Errorf("Triggers after disconnect = %q", got)
	}
	if _, ok := g.TriggerType("webhook"); ok {
		t.Error("type of departed provider remains")
	}
	if got := ids(g.TriggerTypes(), func(t TriggerType) string { return t.ID }); !reflect.DeepEqual(got, []string{"stream"}) {
		t.Errorf("TriggerTypes = %q", got)
	}
	g.Apply(typeRegistered("q", "webhook", `{}`))
	if ch := g.Apply(typeUnregistered("q", "webhook")); !reflect.DeepEqual(ch.TriggerTypes, []string{"webhook"}) {
		t.Errorf("provider unregister = %+v", ch)
	}
}

func TestRegistryEngineStarted(t *testing.T) {
	var g Registry
	g.Apply(workerConnected("w", 1, `{}`))
	g.Apply(fnRegistered("w", "f", `{}`))
	g.Apply(fnRegistered(log.EngineWorker, "stream::set", `{}`))
	g.Apply(typeRegistered(log.EngineWorker, "stream", `{}`))
	g.Apply(trigRegistered("w", "t", "stream", "f", `{"stream_name":"s"}`, ""))
	ch := g.Apply(engineStarted())
	if !reflect.DeepEqual(ch.Functions, []string{"f", "stream::set"}) || len(ch.Triggers) != 1 || !reflect.DeepEqual(ch.TriggerTypes, []string{"stream"}) {
		t.Errorf("engine.started change = %+v", ch)
	}
	if len(g.Workers())+len(g.Functions())+len(g.Triggers())+len(g.TriggerTypes()) != 0 {
		t.Error("engine.started left registrations behind")
	}
	if _, ok := g.Function("stream::set"); ok {
		t.Error("engine function survived engine.started")
	}
	// Life goes on after the restart.
	g.Apply(fnRegistered("w9", "f", `{}`))
	if f, _ := g.Function("f"); f.Worker != "w9" {
		t.Errorf("f = %+v", f)
	}
}
