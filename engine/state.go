package engine

import (
	"encoding/json"
	"strconv"

	"github.com/iii-go/iii/log"
	"github.com/iii-go/iii/projections"
)

// The state module (docs/wire-protocol.md#state-functions): scope → key →
// value, on the same log as streams but a separate projection.

type stateAddr struct {
	Scope *string `json:"scope"`
	Key   *string `json:"key"`
}

func (a *stateAddr) require(fn string, key bool) *callOutcome {
	missing := ""
	switch {
	case a.Scope == nil:
		missing = "scope"
	case key && a.Key == nil:
		missing = "key"
	}
	if missing == "" {
		return nil
	}
	o := failure(codeDeserialization, "Failed to deserialize input for "+fn+": missing field `"+missing+"`")
	return &o
}

func (e *Engine) registerStateFunctions() {
	const mod = "iii-state"
	for _, b := range []*builtin{
		{id: "state::set", description: "Store a value", fn: e.stateSet},
		{id: "state::get", description: "Read a value", reads: true, fn: e.stateGet},
		{id: "state::delete", description: "Delete a value", fn: e.stateDelete},
		{id: "state::update", description: "Apply update operations to a value", fn: e.stateUpdate},
		{id: "state::list", description: "List the values of a scope", reads: true, fn: e.stateList},
		{id: "state::list_groups", description: "List every scope", inline: true, reads: true, fn: e.stateListGroups},
	} {
		b.module = mod
		e.addBuiltin(b)
	}
	e.builtinTypes["state"] = mod
}

func (e *Engine) appendState(code string, rec *log.Record) (projections.StateChange, *callOutcome) {
	res, err := e.log.Append(rec)
	if err != nil {
		o := logFailure(code, err)
		return projections.StateChange{}, &o
	}
	return res.(projections.StateChange), nil
}

func (e *Engine) stateSet(c *builtinCall) callOutcome {
	var in struct {
		stateAddr
		Value json.RawMessage `json:"value"`
		Data  json.RawMessage `json:"data"`
	}
	if o := c.decode("state::set", &in); o != nil {
		return *o
	}
	if o := in.require("state::set", true); o != nil {
		return *o
	}
	v := in.Value
	if v == nil {
		v = in.Data
	}
	if v == nil {
		return failure(codeDeserialization, "Failed to deserialize input for state::set: missing field `value`")
	}
	if max := e.cfg.State.MaxValueBytes; max > 0 && len(v) > max {
		return failure("VALUE_TOO_LARGE", "value is "+strconv.Itoa(len(v))+" bytes; max_value_bytes is "+strconv.Itoa(max))
	}
	ch, o := e.appendState("SET_ERROR", c.mark(&log.Record{Kind: log.KindStateSet, Scope: *in.Scope, Key: *in.Key, Value: v}))
	if o != nil {
		return *o
	}
	return oldNew(ch.Old, ch.New)
}

func (e *Engine) stateGet(c *builtinCall) callOutcome {
	var in stateAddr
	if o := c.decode("state::get", &in); o != nil {
		return *o
	}
	if o := in.require("state::get", true); o != nil {
		return *o
	}
	e.view.mu.RLock()
	v, ok := e.view.States.Get(*in.Scope, *in.Key)
	e.view.mu.RUnlock()
	if !ok {
		return callOutcome{}
	}
	return resultOf(v)
}

func (e *Engine) stateDelete(c *builtinCall) callOutcome {
	var in stateAddr
	if o := c.decode("state::delete", &in); o != nil {
		return *o
	}
	if o := in.require("state::delete", true); o != nil {
		return *o
	}
	ch, o := e.appendState("DELETE_ERROR", c.mark(&log.Record{Kind: log.KindStateDelete, Scope: *in.Scope, Key: *in.Key}))
	if o != nil {
		return *o
	}
	if !ch.Existed {
		return callOutcome{}
	}
	return resultOf(rawOrNull(ch.Old))
}

func (e *Engine) stateUpdate(c *builtinCall) callOutcome {
	var in struct {
		stateAddr
		Ops json.RawMessage `json:"ops"`
	}
	if o := c.decode("state::update", &in); o != nil {
		return *o
	}
	if o := in.require("state::update", true); o != nil {
		return *o
	}
	if in.Ops == nil {
		return failure(codeDeserialization, "Failed to deserialize input for state::update: missing field `ops`")
	}
	if _, err := projections.ParseOps(in.Ops); err != nil {
		return failure(codeDeserialization, "Failed to deserialize input for state::update: "+err.Error())
	}
	ch, o := e.appendState("UPDATE_ERROR", c.mark(&log.Record{Kind: log.KindStateUpdate, Scope: *in.Scope, Key: *in.Key, Value: in.Ops}))
	if o != nil {
		return *o
	}
	return updateResult(ch.Old, ch.New, ch.Errors)
}

func (e *Engine) stateList(c *builtinCall) callOutcome {
	var in stateAddr
	if o := c.decode("state::list", &in); o != nil {
		return *o
	}
	if o := in.require("state::list", false); o != nil {
		return *o
	}
	e.view.mu.RLock()
	items := e.view.States.List(*in.Scope)
	e.view.mu.RUnlock()
	return resultOf(joinArray(items))
}

func (e *Engine) stateListGroups(c *builtinCall) callOutcome {
	e.view.mu.RLock()
	scopes := e.view.States.ListScopes()
	e.view.mu.RUnlock()
	if scopes == nil {
		scopes = []string{}
	}
	return marshalResult(map[string]any{"groups": scopes})
}
