package engine

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/iii-go/iii/history"
	"github.com/iii-go/iii/log"
	"github.com/iii-go/iii/projections"
	"github.com/iii-go/iii/wire"
)

// builtin is a function the engine provides itself. It is registered in the
// registry like any worker function (Worker "engine"), so discovery shows
// both kinds side by side.
type builtin struct {
	id          string
	module      string // the worker name it is listed under, e.g. iii-stream
	description string
	inline      bool // cheap and never blocks: run on the caller's read goroutine
	reads       bool // answers from the projections: in a cluster, catches up with the stream first
	fn          func(c *builtinCall) callOutcome
	// start, when set, is tried first for a worker's call, on its read
	// goroutine (c.caller is that worker's session), and spares the call a
	// goroutine: it either takes the call
	// and answers through done exactly once (possibly before it returns,
	// from any goroutine), or returns false without calling done and leaves
	// the call to fn. c.data is the connection's read buffer: start copies
	// what it keeps.
	start func(c *builtinCall, done func(callOutcome)) bool
}

// run calls b.fn; a read first waits until this node has applied every
// write acknowledged anywhere in the cluster (catchUp), so in a cluster a
// read is never run inline.
func (b *builtin) run(c *builtinCall) callOutcome {
	if b.reads {
		c.e.catchUp()
	}
	return b.fn(c)
}

// builtinCall is one invocation of a built-in function.
type builtinCall struct {
	e        *Engine
	caller   *session // nil when the engine calls itself
	data     json.RawMessage
	metadata json.RawMessage
	cause    cause // the trigger firing this call was made in, if any
}

// mark stamps a write record with the trigger firing that caused it.
func (c *builtinCall) mark(rec *log.Record) *log.Record {
	rec.Cause, rec.Depth = c.cause.trigger, c.cause.depth
	return rec
}

// decode unmarshals the payload into v, answering deserialization_error
// with the function id and the decoder's reason.
func (c *builtinCall) decode(fn string, v any) *callOutcome {
	data := c.data
	if data == nil || isNull(data) {
		data = json.RawMessage("{}")
	}
	if err := json.Unmarshal(data, v); err != nil {
		o := failure(codeDeserialization, "Failed to deserialize input for "+fn+": "+err.Error())
		return &o
	}
	return nil
}

func (b *builtin) registration() []byte {
	v, _ := json.Marshal(map[string]any{"description": b.description})
	return v
}

func (e *Engine) addBuiltin(b *builtin) { e.builtins[b.id] = b }

// registerBuiltins fills the engine's function table: engine::* always, the
// stream and state modules when configured.
func (e *Engine) registerBuiltins() {
	const mod = "iii-engine-functions"
	for _, b := range []*builtin{
		{id: "engine::workers::register", description: "Report worker metadata", fn: e.fnWorkersRegister},
		{id: "engine::functions::list", description: "List registered functions", inline: true, fn: e.fnFunctionsList},
		{id: "engine::functions::info", description: "Describe registered functions", inline: true, fn: e.fnFunctionsInfo},
		{id: "engine::workers::list", description: "List connected workers", inline: true, fn: e.fnWorkersList},
		{id: "engine::workers::info", description: "Describe one worker", inline: true, fn: e.fnWorkersInfo},
		{id: "engine::triggers::list", description: "List trigger types", inline: true, fn: e.fnTriggerTypesList("triggers")},
		{id: "engine::trigger-types::list", description: "List trigger types (0.11 name)", inline: true, fn: e.fnTriggerTypesList("trigger_types")},
		{id: "engine::triggers::info", description: "Describe one trigger type", inline: true, fn: e.fnTriggerTypesInfo},
		{id: "engine::registered-triggers::list", description: "List registered triggers", inline: true, fn: e.fnTriggersList},
		{id: "engine::registered-triggers::info", description: "Describe one registered trigger", inline: true, fn: e.fnTriggersInfo},
		{id: "engine::register_trigger", description: "Register a trigger owned by the engine", fn: e.fnRegisterTrigger},
		{id: "engine::unregister_trigger", description: "Remove a trigger", fn: e.fnUnregisterTrigger},
		{id: "engine::history::query", description: "Query the engine's history (the filters of iii replay)", fn: e.fnHistoryQuery},
		{id: "engine::channels::create", description: "Create a data channel", inline: true, fn: e.fnChannelsCreate},
		{id: "engine::health::check", description: "Engine health", inline: true, fn: e.fnHealth},
		{id: "engine::baggage::get", description: "Read a baggage entry", inline: true, fn: nullResult},
		{id: "engine::baggage::set", description: "Set a baggage entry", inline: true, fn: nullResult},
		{id: "engine::baggage::get_all", description: "Read all baggage", inline: true, fn: func(*builtinCall) callOutcome { return resultOf(json.RawMessage("{}")) }},
	} {
		b.module = mod
		e.addBuiltin(b)
	}
	for _, lvl := range []struct {
		name  string
		level slog.Level
	}{{"trace", slog.LevelDebug - 4}, {"debug", slog.LevelDebug}, {"info", slog.LevelInfo}, {"warn", slog.LevelWarn}, {"error", slog.LevelError}} {
		e.addBuiltin(&builtin{id: "engine::log::" + lvl.name, module: mod, description: "Write a " + lvl.name + " log line", inline: true, fn: e.fnLog(lvl.level)})
	}
	e.builtinTypes["engine::functions-available"] = mod
	e.builtinTypes["engine::workers-available"] = mod
	if e.cfg.Stream != nil {
		e.registerStreamFunctions()
	}
	if e.cfg.State != nil {
		e.registerStateFunctions()
	}
	if e.queues != nil {
		e.registerQueueFunctions()
	}
	if e.http != nil {
		e.builtinTypes["http"] = "iii-http"
	}
	if e.cfg.PubSub != nil {
		e.registerPubSub()
	}
	if e.cron != nil {
		e.builtinTypes["cron"] = "iii-cron"
	}
}

func nullResult(*builtinCall) callOutcome { return resultOf(json.RawMessage("null")) }

func marshalResult(v any) callOutcome {
	b, err := json.Marshal(v)
	if err != nil {
		return failure(codeInternal, err.Error())
	}
	return resultOf(b)
}

func (e *Engine) fnWorkersRegister(c *builtinCall) callOutcome {
	if c.caller == nil {
		return resultOf(json.RawMessage(`{"success":true}`))
	}
	var probe map[string]json.RawMessage
	if o := c.decode("engine::workers::register", &probe); o != nil {
		return *o
	}
	delete(probe, "_caller_worker_id")
	if c.caller.grants != nil {
		if deny := c.caller.untrustedWorkerInfo(probe, len(c.data)); deny != nil {
			return callOutcome{err: deny}
		}
	}
	v, _ := json.Marshal(probe)
	if !c.caller.append(&log.Record{Kind: log.KindWorkerUpdated, Worker: c.caller.id, Value: v}) {
		return failure(codeInternal, "worker metadata was not recorded")
	}
	if !c.caller.named.Swap(true) {
		var name string
		json.Unmarshal(probe["name"], &name)
		e.logger.Info("worker registered", "worker_id", c.caller.id, "name", name, "remote", c.caller.ip)
	}
	return resultOf(json.RawMessage(`{"success":true}`))
}

// workerName is the name a function's owner is listed under.
func (e *Engine) workerName(f projections.Function) string {
	if f.Worker == engineWorker {
		if b := e.builtins[f.ID]; b != nil {
			return b.module
		}
		return "engine"
	}
	if w, ok := e.view.Registry.Worker(f.Worker); ok && w.Name != "" {
		return w.Name
	}
	return f.Worker
}

// hiddenFunction: engine::* (except queue) and metadata.internal == true are
// left out of discovery unless include_internal is set.
func hiddenFunction(f projections.Function) bool {
	if strings.HasPrefix(f.ID, "engine::") && !strings.HasPrefix(f.ID, "engine::queue::") {
		return true
	}
	var m struct {
		Internal bool `json:"internal"`
	}
	return f.Metadata != nil && json.Unmarshal(f.Metadata, &m) == nil && m.Internal
}

type functionRow struct {
	FunctionID  string          `json:"function_id"`
	WorkerName  string          `json:"worker_name"`
	Description string          `json:"description,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
}

// functionFilter is what engine::functions::list selects by; the zero
// value selects every function but the engine's internal ones.
type functionFilter struct {
	Search          string   `json:"search"`
	Prefix          string   `json:"prefix"`
	Worker          string   `json:"worker"`
	Workers         []string `json:"workers"`
	IncludeInternal bool     `json:"include_internal"`
}

func (e *Engine) fnFunctionsList(c *builtinCall) callOutcome {
	var in functionFilter
	if o := c.decode("engine::functions::list", &in); o != nil {
		return *o
	}
	rows := e.functionRows(in)
	if c.caller != nil && c.caller.grants != nil {
		visible := rows[:0]
		for _, r := range rows {
			if c.caller.mayCall(r.FunctionID) {
				visible = append(visible, r)
			}
		}
		rows = visible
	}
	return marshalResult(map[string]any{"functions": rows})
}

// functionRows lists the registered functions in selects, as
// engine::functions::list shows them.
func (e *Engine) functionRows(in functionFilter) []functionRow {
	rows := []functionRow{}
	e.view.mu.RLock()
	defer e.view.mu.RUnlock()
	for _, f := range e.view.Registry.Functions() {
		name := e.workerName(f)
		switch {
		case !in.IncludeInternal && hiddenFunction(f),
			in.Search != "" && !strings.Contains(f.ID, in.Search),
			in.Prefix != "" && !strings.HasPrefix(f.ID, in.Prefix),
			in.Worker != "" && name != in.Worker && f.Worker != in.Worker,
			len(in.Workers) > 0 && !contains(in.Workers, name) && !contains(in.Workers, f.Worker):
			continue
		}
		rows = append(rows, functionRow{FunctionID: f.ID, WorkerName: name, Description: f.Description, Metadata: nonNull(f.Metadata)})
	}
	return rows
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func nonNull(raw json.RawMessage) json.RawMessage {
	if raw == nil || isNull(raw) {
		return nil
	}
	return raw
}

type triggerRow struct {
	ID            string          `json:"id"`
	TriggerType   string          `json:"trigger_type"`
	FunctionID    string          `json:"function_id"`
	WorkerName    string          `json:"worker_name"`
	Config        json.RawMessage `json:"config"`
	ConfigSummary string          `json:"config_summary"`
	Metadata      json.RawMessage `json:"metadata,omitempty"`
	Pending       bool            `json:"pending"`
}

func (e *Engine) triggerRow(t projections.Trigger) triggerRow {
	name := t.Worker
	if w, ok := e.view.Registry.Worker(t.Worker); ok && w.Name != "" {
		name = w.Name
	}
	cfg := t.Config
	if cfg == nil {
		cfg = json.RawMessage("null")
	}
	_, provided := e.view.Registry.TriggerType(t.Type)
	return triggerRow{ID: t.ID, TriggerType: t.Type, FunctionID: t.Function, WorkerName: name, Config: cfg,
		ConfigSummary: summarize(cfg), Metadata: nonNull(t.Metadata), Pending: !provided}
}

func summarize(cfg json.RawMessage) string {
	s := string(cfg)
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func (e *Engine) fnFunctionsInfo(c *builtinCall) callOutcome {
	var in struct {
		FunctionID  *string  `json:"function_id"`
		FunctionIDs []string `json:"function_ids"`
	}
	if o := c.decode("engine::functions::info", &in); o != nil {
		return *o
	}
	if (in.FunctionID == nil) == (in.FunctionIDs == nil) {
		return failure(codeInvalidArguments, "give exactly one of function_id or function_ids")
	}
	if len(in.FunctionIDs) > 32 {
		return failure(codeInvalidArguments, "function_ids holds "+strconv.Itoa(len(in.FunctionIDs))+" ids; at most 32 are allowed")
	}
	one := func(id string) (map[string]any, *callError) {
		if c.caller != nil && !c.caller.mayCall(id) {
			return nil, &callError{Code: codeForbidden, Message: "function '" + id + "' not allowed"}
		}
		e.view.mu.RLock()
		defer e.view.mu.RUnlock()
		f, ok := e.view.Registry.Function(id)
		if !ok {
			return nil, &callError{Code: codeNotFound, Message: "Function '" + id + "' is not registered."}
		}
		trs := []map[string]any{}
		for _, t := range e.view.Registry.Triggers() {
			if t.Function == id {
				trs = append(trs, map[string]any{"id": t.ID, "trigger_type": t.Type, "config": rawOrNull(t.Config)})
			}
		}
		out := map[string]any{"function_id": f.ID, "worker_name": e.workerName(f), "registered_triggers": trs}
		if f.Description != "" {
			out["description"] = f.Description
		}
		for k, v := range map[string]json.RawMessage{"request_schema": f.RequestFormat, "response_schema": f.ResponseFormat, "metadata": f.Metadata} {
			if v := nonNull(v); v != nil {
				out[k] = v
			}
		}
		return out, nil
	}
	if in.FunctionID != nil {
		out, err := one(*in.FunctionID)
		if err != nil {
			return callOutcome{err: err}
		}
		return marshalResult(out)
	}
	all := []map[string]any{}
	for _, id := range in.FunctionIDs {
		out, err := one(id)
		if err != nil {
			return callOutcome{err: err}
		}
		all = append(all, out)
	}
	return marshalResult(map[string]any{"functions": all})
}

type workerRow struct {
	Name              *string `json:"name"`
	Description       *string `json:"description"`
	Version           *string `json:"version"`
	ID                string  `json:"id"`
	Runtime           *string `json:"runtime"`
	OS                *string `json:"os"`
	Status            string  `json:"status"`
	FunctionCount     int     `json:"function_count"`
	ConnectedAtMS     int64   `json:"connected_at_ms"`
	ActiveInvocations int     `json:"active_invocations"`
	Isolation         *string `json:"isolation"`
	IPAddress         *string `json:"ip_address"`
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// workerRows lists connections that reported themselves (a pid), plus the
// engine's in-process modules.
func (e *Engine) workerRows() []workerRow {
	rows := []workerRow{}
	modules := map[string]int{} // engine functions per module name
	counts := map[string]int{}  // functions per worker id
	e.view.mu.RLock()
	for _, f := range e.view.Registry.Functions() {
		if f.Worker == engineWorker {
			modules[e.workerName(f)]++
		} else {
			counts[f.Worker]++
		}
	}
	workers := e.view.Registry.Workers()
	e.view.mu.RUnlock()
	for _, name := range sortedKeys(modules) {
		rows = append(rows, workerRow{Name: strPtr(name), ID: name, Runtime: strPtr("engine"), Version: strPtr(Version),
			Status: "connected", FunctionCount: modules[name], ConnectedAtMS: e.started.UnixMilli()})
	}
	for _, w := range workers {
		if w.PID == 0 {
			continue
		}
		active := 0
		if s := e.session(w.ID); s != nil {
			active = s.activeInvocations()
		}
		rows = append(rows, workerRow{Name: strPtr(w.Name), Description: strPtr(w.Description), Version: strPtr(w.Version), ID: w.ID,
			Runtime: strPtr(w.Runtime), OS: strPtr(w.OS), Status: "connected", FunctionCount: counts[w.ID],
			ConnectedAtMS: w.ConnectedAt / int64(time.Millisecond), ActiveInvocations: active, Isolation: strPtr(w.Isolation), IPAddress: strPtr(w.IP)})
	}
	return rows
}

func (e *Engine) fnWorkersList(c *builtinCall) callOutcome {
	var in struct {
		Search  string `json:"search"`
		Runtime string `json:"runtime"`
		Status  string `json:"status"`
	}
	if o := c.decode("engine::workers::list", &in); o != nil {
		return *o
	}
	rows := []workerRow{}
	for _, r := range e.workerRows() {
		name := ""
		if r.Name != nil {
			name = *r.Name
		}
		if in.Search != "" && !strings.Contains(name, in.Search) && !strings.Contains(r.ID, in.Search) ||
			in.Runtime != "" && (r.Runtime == nil || *r.Runtime != in.Runtime) ||
			in.Status != "" && r.Status != in.Status {
			continue
		}
		rows = append(rows, r)
	}
	return marshalResult(map[string]any{"workers": rows})
}

func (e *Engine) fnWorkersInfo(c *builtinCall) callOutcome {
	var in struct {
		Name string `json:"name"`
	}
	if o := c.decode("engine::workers::info", &in); o != nil {
		return *o
	}
	for _, r := range e.workerRows() {
		if (r.Name == nil || *r.Name != in.Name) && r.ID != in.Name {
			continue
		}
		fns, types, trs := []string{}, []string{}, []triggerRow{}
		e.view.mu.RLock()
		for _, f := range e.view.Registry.Functions() {
			if f.Worker == r.ID || f.Worker == engineWorker && e.workerName(f) == r.ID {
				fns = append(fns, f.ID)
			}
		}
		for _, tt := range e.view.Registry.TriggerTypes() {
			if tt.Worker == r.ID || tt.Worker == engineWorker && e.builtinTypes[tt.ID] == r.ID {
				types = append(types, tt.ID)
			}
		}
		for _, t := range e.view.Registry.TriggersOf(r.ID) {
			trs = append(trs, e.triggerRow(t))
		}
		e.view.mu.RUnlock()
		return marshalResult(map[string]any{"worker": r, "functions": fns, "trigger_types": types, "registered_triggers": trs})
	}
	return failure(codeNotFound, "Worker '"+in.Name+"' is not connected.")
}

type triggerTypeRow struct {
	ID          string `json:"id"`
	WorkerName  string `json:"worker_name"`
	Description string `json:"description"`
}

func (e *Engine) triggerTypeRows(includeInternal bool) []triggerTypeRow {
	rows := []triggerTypeRow{}
	e.view.mu.RLock()
	defer e.view.mu.RUnlock()
	for _, tt := range e.view.Registry.TriggerTypes() {
		if !includeInternal && strings.HasPrefix(tt.ID, "engine::") {
			continue
		}
		name := tt.Worker
		if tt.Worker == engineWorker {
			name = e.builtinTypes[tt.ID]
		} else if w, ok := e.view.Registry.Worker(tt.Worker); ok && w.Name != "" {
			name = w.Name
		}
		rows = append(rows, triggerTypeRow{ID: tt.ID, WorkerName: name, Description: tt.Description})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	return rows
}

func (e *Engine) fnTriggerTypesList(key string) func(c *builtinCall) callOutcome {
	return func(c *builtinCall) callOutcome {
		var in struct {
			Search          string `json:"search"`
			Prefix          string `json:"prefix"`
			IncludeInternal bool   `json:"include_internal"`
		}
		if o := c.decode("engine::triggers::list", &in); o != nil {
			return *o
		}
		rows := []triggerTypeRow{}
		for _, r := range e.triggerTypeRows(in.IncludeInternal) {
			if in.Search != "" && !strings.Contains(r.ID, in.Search) || in.Prefix != "" && !strings.HasPrefix(r.ID, in.Prefix) {
				continue
			}
			rows = append(rows, r)
		}
		return marshalResult(map[string]any{key: rows})
	}
}

func (e *Engine) fnTriggerTypesInfo(c *builtinCall) callOutcome {
	var in struct {
		ID string `json:"id"`
	}
	if o := c.decode("engine::triggers::info", &in); o != nil {
		return *o
	}
	for _, r := range e.triggerTypeRows(true) {
		if r.ID != in.ID {
			continue
		}
		e.view.mu.RLock()
		n := len(e.view.Registry.TriggersOfType(r.ID))
		e.view.mu.RUnlock()
		return marshalResult(map[string]any{"id": r.ID, "worker_name": r.WorkerName, "description": r.Description, "instance_count": n})
	}
	return failure(codeNotFound, "Trigger type '"+in.ID+"' is not registered.")
}

func (e *Engine) fnTriggersList(c *builtinCall) callOutcome {
	var in struct {
		Search          string `json:"search"`
		TriggerType     string `json:"trigger_type"`
		FunctionID      string `json:"function_id"`
		Worker          string `json:"worker"`
		IncludeInternal bool   `json:"include_internal"`
	}
	if o := c.decode("engine::registered-triggers::list", &in); o != nil {
		return *o
	}
	rows := []triggerRow{}
	e.view.mu.RLock()
	for _, t := range e.view.Registry.Triggers() {
		r := e.triggerRow(t)
		if !in.IncludeInternal && strings.HasPrefix(t.Type, "engine::") ||
			in.Search != "" && !strings.Contains(t.ID, in.Search) && !strings.Contains(t.Function, in.Search) ||
			in.TriggerType != "" && t.Type != in.TriggerType ||
			in.FunctionID != "" && t.Function != in.FunctionID ||
			in.Worker != "" && r.WorkerName != in.Worker && t.Worker != in.Worker {
			continue
		}
		rows = append(rows, r)
	}
	e.view.mu.RUnlock()
	return marshalResult(map[string]any{"registered_triggers": rows})
}

func (e *Engine) fnTriggersInfo(c *builtinCall) callOutcome {
	var in struct {
		ID string `json:"id"`
	}
	if o := c.decode("engine::registered-triggers::info", &in); o != nil {
		return *o
	}
	e.view.mu.RLock()
	defer e.view.mu.RUnlock()
	t, ok := e.view.Registry.Trigger(in.ID)
	if !ok {
		return failure(codeNotFound, "Trigger '"+in.ID+"' is not registered.")
	}
	return marshalResult(e.triggerRow(t))
}

// fnRegisterTrigger registers a trigger owned by the engine, so it outlives
// the calling connection.
func (e *Engine) fnRegisterTrigger(c *builtinCall) callOutcome {
	var in struct {
		TriggerType string          `json:"trigger_type"`
		FunctionID  string          `json:"function_id"`
		Config      json.RawMessage `json:"config"`
		Metadata    json.RawMessage `json:"metadata"`
	}
	if o := c.decode("engine::register_trigger", &in); o != nil {
		return *o
	}
	if in.TriggerType == "" || in.FunctionID == "" {
		return failure(codeInvalidArguments, "trigger_type and function_id are required")
	}
	if c.caller != nil {
		if g := c.caller.grants; g != nil && g.triggerTypes != nil && !g.triggerTypes[in.TriggerType] {
			return failure(codeForbidden, "trigger type '"+in.TriggerType+"' is not in allowed_trigger_types")
		}
		in.FunctionID = c.caller.qualify(in.FunctionID)
	}
	if msg := e.validateTriggerConfig(in.TriggerType, in.Config); msg != "" {
		return failure(codeTriggerRegFailed, msg)
	}
	id := newUUID()
	if _, err := e.log.Append(&log.Record{Kind: log.KindTriggerRegistered, Worker: engineWorker, Trigger: id, TriggerType: in.TriggerType,
		Function: in.FunctionID, Value: nonNull(in.Config), Meta: nonNull(in.Metadata)}); err != nil {
		return failure(codeInternal, "trigger was not recorded: "+err.Error())
	}
	e.forwardTrigger(in.TriggerType, id, in.FunctionID, in.Config, in.Metadata)
	return marshalResult(map[string]string{"id": id})
}

func (e *Engine) fnUnregisterTrigger(c *builtinCall) callOutcome {
	var in struct {
		ID string `json:"id"`
	}
	if o := c.decode("engine::unregister_trigger", &in); o != nil {
		return *o
	}
	e.view.mu.RLock()
	t, ok := e.view.Registry.Trigger(in.ID)
	e.view.mu.RUnlock()
	if !ok {
		return resultOf(json.RawMessage(`{"removed":false}`))
	}
	if _, err := e.log.Append(&log.Record{Kind: log.KindTriggerUnregistered, Worker: t.Worker, Trigger: t.ID, TriggerType: t.Type}); err != nil {
		return failure(codeUnregisterFailed, err.Error())
	}
	if p := e.provider(t.Type); p != nil {
		p.send(wire.AppendUnregisterTrigger(nil, t.ID, t.Type))
	}
	return resultOf(json.RawMessage(`{"removed":true}`))
}

func (e *Engine) fnHealth(*builtinCall) callOutcome {
	e.mu.RLock()
	n := len(e.sessions)
	e.mu.RUnlock()
	h := map[string]any{
		"status": "healthy", "version": Version, "uptime_ms": time.Since(e.started).Milliseconds(),
		"workers": n, "log_last_index": e.log.LastIndex(),
	}
	if e.node != nil {
		h["cluster"] = e.node.health()
	}
	return marshalResult(h)
}

func (e *Engine) fnLog(level slog.Level) func(c *builtinCall) callOutcome {
	return func(c *builtinCall) callOutcome {
		var in struct {
			Message     string          `json:"message"`
			Data        json.RawMessage `json:"data"`
			TraceID     string          `json:"trace_id"`
			SpanID      string          `json:"span_id"`
			ServiceName string          `json:"service_name"`
		}
		if o := c.decode("engine::log", &in); o != nil {
			return *o
		}
		attrs := []any{"source", "worker"}
		if c.caller != nil {
			attrs = append(attrs, "worker_id", c.caller.id)
		}
		if in.ServiceName != "" {
			attrs = append(attrs, "service", in.ServiceName)
		}
		if d := nonNull(in.Data); d != nil {
			attrs = append(attrs, "data", string(d))
		}
		e.logger.Log(context.Background(), level, in.Message, attrs...)
		return callOutcome{}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// historyLimit caps one engine::history::query answer when the caller gives
// no smaller limit.
const historyLimit = 1000

// fnHistoryQuery answers `iii replay`'s filters over the wire. It reads the
// live log (on disk or in memory) through log.Read, which never holds up
// the sequencer.
func (e *Engine) fnHistoryQuery(c *builtinCall) callOutcome {
	var f history.Filter
	if o := c.decode("engine::history::query", &f); o != nil {
		return *o
	}
	rows, err := history.Query(history.LiveLog(e.log), f, historyLimit)
	if err != nil {
		return failure(codeInvalidArguments, err.Error())
	}
	return marshalResult(map[string]any{"records": rows})
}
