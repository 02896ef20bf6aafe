package engine

import (
	"bytes"
	"encoding/json"

	"github.com/iii-go/iii/log"
	"github.com/iii-go/iii/projections"
	"github.com/iii-go/iii/wire"
)

// The stream module (docs/wire-protocol.md#stream-functions): every write
// becomes a log record and is answered from the result of applying it; reads
// come from the projection. A worker may take over one stream's storage by
// registering stream::<op>(<name>); such calls go to it instead of the store
// (docs/wire-protocol.md#custom-stream-implementations).

type streamAddr struct {
	StreamName *string `json:"stream_name"`
	GroupID    *string `json:"group_id"`
	ItemID     *string `json:"item_id"`
}

// require checks that the named address fields were given.
func (a *streamAddr) require(fn string, group, item bool) *callOutcome {
	missing := ""
	switch {
	case a.StreamName == nil:
		missing = "stream_name"
	case group && a.GroupID == nil:
		missing = "group_id"
	case item && a.ItemID == nil:
		missing = "item_id"
	}
	if missing == "" {
		return nil
	}
	o := failure(codeDeserialization, "Failed to deserialize input for "+fn+": missing field `"+missing+"`")
	return &o
}

func (a *streamAddr) stream() string { return deref(a.StreamName) }
func (a *streamAddr) group() string  { return deref(a.GroupID) }
func (a *streamAddr) item() string   { return deref(a.ItemID) }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (e *Engine) registerStreamFunctions() {
	const mod = "iii-stream"
	for _, b := range []*builtin{
		{id: "stream::set", description: "Store an item in a stream", fn: e.streamSet, start: e.startStreamSet},
		{id: "stream::get", description: "Read an item of a stream", reads: true, fn: e.streamGet},
		{id: "stream::delete", description: "Delete an item of a stream", fn: e.streamDelete},
		{id: "stream::update", description: "Apply update operations to an item", fn: e.streamUpdate},
		{id: "stream::list", description: "List the items of a stream group", reads: true, fn: e.streamList},
		{id: "stream::list_groups", description: "List the groups of a stream", reads: true, fn: e.streamListGroups},
		{id: "stream::list_all", description: "List every stream and its groups", inline: true, reads: true, fn: e.streamListAll},
		{id: "stream::send", description: "Send a custom event to a stream's subscribers", fn: e.streamSend},
	} {
		b.module = mod
		e.addBuiltin(b)
	}
	for _, t := range []string{"stream", "stream:join", "stream:leave"} {
		e.builtinTypes[t] = mod
	}
}

// override returns the worker function that implements op for a stream, if
// one is registered.
func (e *Engine) override(op, stream string) (string, bool) {
	// Every stream call asks, and the answer is nearly always no: the id is
	// built on the stack, and the lookup's conversion of a short id does
	// not escape; only an id that exists becomes a string.
	var buf [96]byte
	id := append(append(append(buf[:0], "stream::"...), op...), '(')
	id = append(append(id, stream...), ')')
	e.view.mu.RLock()
	_, ok := e.view.Registry.Function(string(id))
	e.view.mu.RUnlock()
	if !ok {
		return "", false
	}
	return string(id), true
}

// overridePayload re-encodes only the fields a custom implementation gets.
func overridePayload(a *streamAddr, extraKey string, extra json.RawMessage) json.RawMessage {
	m := map[string]any{"stream_name": a.StreamName}
	if a.GroupID != nil {
		m["group_id"] = *a.GroupID
	}
	if a.ItemID != nil {
		m["item_id"] = *a.ItemID
	}
	if extraKey != "" {
		m[extraKey] = rawOrNull(extra)
	}
	b, _ := json.Marshal(m)
	return b
}

// appendStream writes a stream record, answering a storage failure with
// the module's error code.
func (e *Engine) appendStream(code string, rec *log.Record) (projections.StreamChange, *callOutcome) {
	res, err := e.log.Append(rec)
	if err != nil {
		o := logFailure(code, err)
		return projections.StreamChange{}, &o
	}
	return res.(projections.StreamChange), nil
}

// logFailure answers a write the log refused.
func logFailure(code string, err error) callOutcome {
	return failure(code, "failed to write to the log: "+err.Error())
}

func oldNew(old, new []byte) callOutcome {
	old, new = rawOrNull(old), rawOrNull(new)
	p := wire.GetFrame()
	b := append(*p, `{"old_value":`...)
	b = append(append(b, old...), `,"new_value":`...)
	*p = append(append(b, new...), '}')
	o := resultOf(*p)
	o.pooled = p
	return o
}

func (e *Engine) streamSet(c *builtinCall) callOutcome {
	var in struct {
		streamAddr
		Data json.RawMessage `json:"data"`
	}
	if o := c.decode("stream::set", &in); o != nil {
		return *o
	}
	if o := in.require("stream::set", true, true); o != nil {
		return *o
	}
	if in.Data == nil {
		return failure(codeDeserialization, "Failed to deserialize input for stream::set: missing field `data`")
	}
	if fn, ok := e.override("set", in.stream()); ok {
		return e.customWrite(fn, "STREAM_SET_ERROR", &in.streamAddr, "data", in.Data, true)
	}
	ch, o := e.appendStream("STREAM_SET_ERROR", c.setRecord(in.stream(), in.group(), in.item(), in.Data))
	if o != nil {
		return *o
	}
	return oldNew(ch.Old, ch.New)
}

// setRecord is the record of a stream::set made by this call.
func (c *builtinCall) setRecord(stream, group, item string, data []byte) *log.Record {
	return c.mark(&log.Record{Kind: log.KindStreamSet, Stream: stream, Group: group, Item: item, Value: data})
}

// streamSetKeys are the string members of a stream::set payload in its
// common shape; the fourth is "data".
var streamSetKeys = []string{"stream_name", "group_id", "item_id"}

// startStreamSet takes a worker's stream::set in its common shape (see
// wire.DecodeFlatObject) on a stream without a custom implementation: the
// record is appended without waiting, and the log's callback answers. Any
// other set goes to streamSet, whose encoding/json decoding words the
// errors.
func (e *Engine) startStreamSet(c *builtinCall, done func(callOutcome)) bool {
	var addr [3]string // stream, group, item
	data, ok := wire.DecodeFlatObject(c.data, streamSetKeys, addr[:], "data")
	if !ok {
		return false
	}
	if _, ok := e.override("set", addr[0]); ok {
		return false
	}
	rec := c.setRecord(addr[0], addr[1], addr[2], bytes.Clone(data))
	then := func(res any, err error) {
		if err != nil {
			done(logFailure("STREAM_SET_ERROR", err))
			return
		}
		ch := res.(projections.StreamChange)
		done(oldNew(ch.Old, ch.New))
	}
	c.caller.appendAsync(rec, then)
	return true
}

func (e *Engine) streamGet(c *builtinCall) callOutcome {
	var in streamAddr
	if o := c.decode("stream::get", &in); o != nil {
		return *o
	}
	if o := in.require("stream::get", true, true); o != nil {
		return *o
	}
	if fn, ok := e.override("get", in.stream()); ok {
		return e.customRead(fn, overridePayload(&in, "", nil))
	}
	e.view.mu.RLock()
	v, ok := e.view.Streams.Get(in.stream(), in.group(), in.item())
	e.view.mu.RUnlock()
	if !ok {
		return callOutcome{} // a missing item is an absent result, not null
	}
	return resultOf(v)
}

func (e *Engine) streamDelete(c *builtinCall) callOutcome {
	var in streamAddr
	if o := c.decode("stream::delete", &in); o != nil {
		return *o
	}
	if o := in.require("stream::delete", true, true); o != nil {
		return *o
	}
	if fn, ok := e.override("delete", in.stream()); ok {
		return e.customDelete(fn, &in)
	}
	ch, o := e.appendStream("STREAM_DELETE_ERROR", c.mark(&log.Record{Kind: log.KindStreamDelete, Stream: in.stream(), Group: in.group(), Item: in.item()}))
	if o != nil {
		return *o
	}
	return resultOf(append(append([]byte(`{"old_value":`), rawOrNull(ch.Old)...), '}'))
}

func (e *Engine) streamUpdate(c *builtinCall) callOutcome {
	var in struct {
		streamAddr
		Ops json.RawMessage `json:"ops"`
	}
	if o := c.decode("stream::update", &in); o != nil {
		return *o
	}
	if o := in.require("stream::update", true, true); o != nil {
		return *o
	}
	if in.Ops == nil {
		return failure(codeDeserialization, "Failed to deserialize input for stream::update: missing field `ops`")
	}
	if _, err := projections.ParseOps(in.Ops); err != nil {
		return failure(codeDeserialization, "Failed to deserialize input for stream::update: "+err.Error())
	}
	if fn, ok := e.override("update", in.stream()); ok {
		return e.customWrite(fn, "STREAM_UPDATE_ERROR", &in.streamAddr, "ops", in.Ops, false)
	}
	ch, o := e.appendStream("STREAM_UPDATE_ERROR", c.mark(&log.Record{Kind: log.KindStreamUpdate, Stream: in.stream(), Group: in.group(), Item: in.item(), Value: in.Ops}))
	if o != nil {
		return *o
	}
	return updateResult(ch.Old, ch.New, ch.Errors)
}

// updateResult is the {old_value, new_value, errors?} answer of an update.
func updateResult(old, new []byte, errs []projections.OpError) callOutcome {
	out := map[string]any{"old_value": json.RawMessage(rawOrNull(old)), "new_value": json.RawMessage(rawOrNull(new))}
	if len(errs) > 0 {
		out["errors"] = errs
	}
	return marshalResult(out)
}

func (e *Engine) streamList(c *builtinCall) callOutcome {
	var in streamAddr
	if o := c.decode("stream::list", &in); o != nil {
		return *o
	}
	if o := in.require("stream::list", true, false); o != nil {
		return *o
	}
	if fn, ok := e.override("list", in.stream()); ok {
		return e.customRead(fn, overridePayload(&in, "", nil))
	}
	e.view.mu.RLock()
	items := e.view.Streams.List(in.stream(), in.group())
	e.view.mu.RUnlock()
	return resultOf(joinArray(items))
}

// joinArray writes raw JSON values as one JSON array.
func joinArray(items [][]byte) []byte {
	n := 2
	for _, it := range items {
		n += len(it) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, ']')
}

func (e *Engine) streamListGroups(c *builtinCall) callOutcome {
	var in streamAddr
	if o := c.decode("stream::list_groups", &in); o != nil {
		return *o
	}
	if o := in.require("stream::list_groups", false, false); o != nil {
		return *o
	}
	if fn, ok := e.override("list_groups", in.stream()); ok {
		return e.customRead(fn, overridePayload(&in, "", nil))
	}
	e.view.mu.RLock()
	groups := e.view.Streams.ListGroups(in.stream())
	e.view.mu.RUnlock()
	if groups == nil {
		groups = []string{}
	}
	return marshalResult(groups)
}

func (e *Engine) streamListAll(c *builtinCall) callOutcome {
	type row struct {
		ID     string   `json:"id"`
		Groups []string `json:"groups"`
	}
	rows := []row{}
	e.view.mu.RLock()
	for _, s := range e.view.Streams.ListAll() {
		rows = append(rows, row{ID: s.ID, Groups: s.Groups})
	}
	e.view.mu.RUnlock()
	return marshalResult(map[string]any{"stream": rows, "count": len(rows)})
}

func (e *Engine) streamSend(c *builtinCall) callOutcome {
	var in struct {
		StreamName *string         `json:"stream_name"`
		GroupID    *string         `json:"group_id"`
		Type       *string         `json:"type"`
		Data       json.RawMessage `json:"data"`
		ID         *string         `json:"id"`
	}
	if o := c.decode("stream::send", &in); o != nil {
		return *o
	}
	for _, f := range []struct {
		name string
		ok   bool
	}{{"stream_name", in.StreamName != nil}, {"group_id", in.GroupID != nil}, {"type", in.Type != nil}, {"data", in.Data != nil}} {
		if !f.ok {
			return failure(codeDeserialization, "Failed to deserialize input for stream::send: missing field `"+f.name+"`")
		}
	}
	v, _ := json.Marshal(map[string]any{"type": *in.Type, "data": in.Data, "id": in.ID})
	if _, o := e.appendStream("STREAM_SEND_ERROR", c.mark(&log.Record{Kind: log.KindStreamSend, Stream: *in.StreamName, Group: *in.GroupID, Value: v})); o != nil {
		return *o
	}
	return resultOf(json.RawMessage("null"))
}

// customRead passes a custom implementation's answer through untouched; a
// null result counts as absent.
func (e *Engine) customRead(fn string, payload json.RawMessage) callOutcome {
	o := e.call(fn, payload, nil)
	if o.hasResult && isNull(o.result) {
		o.hasResult, o.result = false, nil
	}
	return o
}

// customWrite calls a custom set/update implementation, checks the shape of
// its answer and emits the change event from it. Nothing is stored in our
// projection: the worker owns that stream's data.
func (e *Engine) customWrite(fn, code string, a *streamAddr, key string, value json.RawMessage, isSet bool) callOutcome {
	o := e.call(fn, overridePayload(a, key, value), nil)
	if o.failed() {
		return failure(code, "failed to "+opName(isSet)+" value: "+o.errorMessage())
	}
	if !o.hasResult {
		return failure(code, "failed to "+opName(isSet)+" value: "+fn+" returned no result")
	}
	var r struct {
		OldValue json.RawMessage       `json:"old_value"`
		NewValue json.RawMessage       `json:"new_value"`
		Errors   []projections.OpError `json:"errors"`
	}
	if err := json.Unmarshal(o.result, &r); err != nil || r.NewValue == nil {
		return failure("JSON_ERROR", fn+" answered "+string(o.result)+"; expected {old_value?, new_value}")
	}
	e.fan.customEvent(a.stream(), a.group(), a.item(), nonNull(r.OldValue) != nil, r.NewValue, false)
	if isSet {
		return oldNew(nonNull(r.OldValue), r.NewValue)
	}
	return updateResult(nonNull(r.OldValue), r.NewValue, r.Errors)
}

func opName(isSet bool) string {
	if isSet {
		return "set"
	}
	return "update"
}

func (e *Engine) customDelete(fn string, a *streamAddr) callOutcome {
	o := e.call(fn, overridePayload(a, "", nil), nil)
	if o.failed() {
		return failure("STREAM_DELETE_ERROR", "failed to delete value: "+o.errorMessage())
	}
	if !o.hasResult {
		return failure("STREAM_DELETE_ERROR", "failed to delete value: "+fn+" returned no result")
	}
	var r struct {
		OldValue json.RawMessage `json:"old_value"`
	}
	if err := json.Unmarshal(o.result, &r); err != nil {
		return failure("JSON_ERROR", fn+" answered "+string(o.result)+"; expected {old_value?}")
	}
	old := nonNull(r.OldValue)
	if old != nil {
		e.fan.customEvent(a.stream(), a.group(), a.item(), true, old, true)
	}
	return resultOf(append(append([]byte(`{"old_value":`), rawOrNull(old)...), '}'))
}
