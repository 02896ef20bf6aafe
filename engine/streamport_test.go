package engine

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/iii-go/iii/engine/config"
)

// The stream port (docs/wire-protocol.md#stream-port): browsers join stream groups
// and get every change envelope that matches.

func (c *client) join(sub, stream, group string, item any) {
	d := map[string]any{"subscriptionId": sub, "streamName": stream, "groupId": group}
	if item != nil {
		d["id"] = item
	}
	c.send(map[string]any{"type": "join", "data": d})
}

func (c *client) leave(sub, stream, group string) {
	c.send(map[string]any{"type": "leave", "data": map[string]any{"subscriptionId": sub, "streamName": stream, "groupId": group}})
}

// envelope waits for the next stream envelope, checks its timestamp and
// returns it without.
func (c *client) envelope() map[string]any {
	c.t.Helper()
	f := c.next("stream", func(frame) bool { return true })
	ts, _ := f["timestamp"].(float64)
	if now := float64(time.Now().UnixMilli()); ts < now-60_000 || ts > now+1000 {
		c.t.Fatalf("envelope timestamp %v is not now (%v)", f["timestamp"], now)
	}
	delete(f, "timestamp")
	return f
}

func env(stream, group string, item any, event map[string]any) map[string]any {
	return map[string]any{"type": "stream", "streamName": stream, "groupId": group, "id": item, "event": event}
}

func TestStreamPortSubscriptions(t *testing.T) {
	e := startEngine(t, nil, nil)
	w := dial(t, e.url(0))
	w.mustCall("stream::set", addr("todo", "g1", "i1", "data", 1))
	w.mustCall("stream::set", addr("todo", "g1", "i2", "data", 2))
	group, item := dialRaw(t, e.streamURL(), nil), dialRaw(t, e.streamURL(), nil)

	group.join("all", "todo", "g1", nil)
	sameJSON(t, "group sync", group.envelope(), env("todo", "g1", nil, map[string]any{"type": "sync", "data": []any{1, 2}}))
	item.join("one", "todo", "g1", "i1")
	sameJSON(t, "item sync", item.envelope(), env("todo", "g1", "i1", map[string]any{"type": "sync", "data": 1}))
	item.join("missing", "todo", "g1", "i9")
	sameJSON(t, "sync of a missing item", item.envelope(), env("todo", "g1", "i9", map[string]any{"type": "sync", "data": nil}))
	item.join("empty", "todo", "nope", nil)
	sameJSON(t, "sync of an empty group", item.envelope(), env("todo", "nope", nil, map[string]any{"type": "sync", "data": []any{}}))

	steps := []struct {
		name    string
		fn      string
		in      map[string]any
		toGroup map[string]any // nil: the group subscriber gets nothing
		toItem  map[string]any // nil: the item subscriber gets nothing
	}{
		{"update of the item", "stream::set", addr("todo", "g1", "i1", "data", 3),
			env("todo", "g1", "i1", map[string]any{"type": "update", "data": 3}), env("todo", "g1", "i1", map[string]any{"type": "update", "data": 3})},
		{"another item of the group", "stream::set", addr("todo", "g1", "i2", "data", 4),
			env("todo", "g1", "i2", map[string]any{"type": "update", "data": 4}), nil},
		{"another group", "stream::set", addr("todo", "g2", "i1", "data", 5), nil, nil},
		{"another stream", "stream::set", addr("other", "g1", "i1", "data", 6), nil, nil},
		{"a custom event for the group", "stream::send", map[string]any{"stream_name": "todo", "group_id": "g1", "type": "typing", "data": "u1"},
			env("todo", "g1", nil, map[string]any{"type": "event", "event": map[string]any{"type": "typing", "data": "u1"}}), nil},
		{"a custom event for the item", "stream::send", map[string]any{"stream_name": "todo", "group_id": "g1", "type": "typing", "data": "u2", "id": "i1"},
			env("todo", "g1", "i1", map[string]any{"type": "event", "event": map[string]any{"type": "typing", "data": "u2"}}),
			env("todo", "g1", "i1", map[string]any{"type": "event", "event": map[string]any{"type": "typing", "data": "u2"}})},
		{"delete of the item", "stream::delete", addr("todo", "g1", "i1"),
			env("todo", "g1", "i1", map[string]any{"type": "delete", "data": 3}), env("todo", "g1", "i1", map[string]any{"type": "delete", "data": 3})},
		{"create of the item again", "stream::update", addr("todo", "g1", "i1", "ops", []any{map[string]any{"type": "set", "path": "", "value": 7}}),
			env("todo", "g1", "i1", map[string]any{"type": "create", "data": 7}), env("todo", "g1", "i1", map[string]any{"type": "create", "data": 7})},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			w.mustCall(s.fn, s.in)
			// A change both see closes the step: envelopes arrive in log
			// order, so anything this step sent is ahead of it.
			w.mustCall("stream::send", map[string]any{"stream_name": "todo", "group_id": "g1", "type": "barrier", "data": nil, "id": "i1"})
			barrier := env("todo", "g1", "i1", map[string]any{"type": "event", "event": map[string]any{"type": "barrier", "data": nil}})
			for _, sub := range []struct {
				c    *client
				want map[string]any
			}{{group, s.toGroup}, {item, s.toItem}} {
				if sub.want != nil {
					sameJSON(t, "envelope", sub.c.envelope(), sub.want)
				}
				sameJSON(t, "barrier", sub.c.envelope(), barrier)
				sub.c.none("stream")
			}
		})
	}

	t.Run("two subscriptions to one group get each change once", func(t *testing.T) {
		group.join("all-again", "todo", "g1", nil)
		group.envelope() // its sync
		w.mustCall("stream::set", addr("todo", "g1", "i3", "data", 8))
		sameJSON(t, "envelope", group.envelope(), env("todo", "g1", "i3", map[string]any{"type": "create", "data": 8}))
		w.mustCall("stream::set", addr("todo", "g1", "i3", "data", 9))
		sameJSON(t, "envelope", group.envelope(), env("todo", "g1", "i3", map[string]any{"type": "update", "data": 9}))
		group.none("stream")
	})
	t.Run("leave stops the envelopes", func(t *testing.T) {
		group.leave("all", "todo", "g1")
		group.leave("all-again", "todo", "g1")
		group.leave("never-joined", "todo", "g1")
		group.join("g2", "todo", "g2", nil) // applied after the leaves
		sameJSON(t, "sync", group.envelope(), env("todo", "g2", nil, map[string]any{"type": "sync", "data": []any{5}}))
		w.mustCall("stream::set", addr("todo", "g1", "i1", "data", 10))
		w.mustCall("stream::set", addr("todo", "g2", "i1", "data", 11))
		sameJSON(t, "envelope", group.envelope(), env("todo", "g2", "i1", map[string]any{"type": "update", "data": 11}))
		group.none("stream")
		sameJSON(t, "the item subscriber's envelope", item.envelope(), env("todo", "g1", "i1", map[string]any{"type": "update", "data": 10}))
	})
	t.Run("joining again under one subscription id replaces it", func(t *testing.T) {
		item.join("one", "todo", "g2", "i1")
		sameJSON(t, "sync", item.envelope(), env("todo", "g2", "i1", map[string]any{"type": "sync", "data": 11}))
		item.leave("missing", "todo", "g1")
		item.leave("empty", "todo", "nope")
		w.mustCall("stream::set", addr("todo", "g1", "i1", "data", 12))
		w.mustCall("stream::set", addr("todo", "g2", "i1", "data", 13))
		sameJSON(t, "envelope", item.envelope(), env("todo", "g2", "i1", map[string]any{"type": "update", "data": 13}))
		item.none("stream")
	})
}

func TestStreamPortAuthAndJoinTriggers(t *testing.T) {
	e := startEngine(t, nil, func(c *config.Config) { c.Stream.AuthFunction = "sauth::fn" })
	w := dial(t, e.url(0))
	auth, joins := newCapture(), newCapture()
	w.serve("sauth::fn", func(data json.RawMessage, f frame) (any, error) {
		var in map[string]any
		json.Unmarshal(data, &in)
		q, _ := in["query_params"].(map[string]any)
		fail := q["fail"] != nil
		auth.ch <- in
		if fail {
			return nil, errors.New("no such token")
		}
		return map[string]any{"context": map[string]any{"user": "u7"}}, nil
	})
	w.serve("guard::join", func(data json.RawMessage, f frame) (any, error) {
		var in map[string]any
		json.Unmarshal(data, &in)
		group := in["group_id"]
		joins.ch <- in
		switch group {
		case "secret":
			return map[string]any{"unauthorized": true}, nil
		case "boom":
			return nil, errors.New("guard failed")
		}
		return map[string]any{"unauthorized": false}, nil
	})
	w.register("guard::leave") // answered by hand: nothing waits for it
	w.send(map[string]any{"type": "registertrigger", "id": "j", "trigger_type": "stream:join", "function_id": "guard::join", "config": map[string]any{}})
	w.send(map[string]any{"type": "registertrigger", "id": "l", "trigger_type": "stream:leave", "function_id": "guard::leave", "config": map[string]any{}})
	w.sync()

	h := http.Header{}
	h.Set("X-Token", "abc")
	s := dialRaw(t, e.streamURL()+"/?token=t%201", h)
	in := auth.next(t).(map[string]any)
	if in["headers"].(map[string]any)["x-token"] != "abc" {
		t.Errorf("auth headers %v", in["headers"])
	}
	delete(in, "headers")
	sameJSON(t, "auth input", in, map[string]any{"path": "/", "query_params": map[string]any{"token": []any{"t 1"}}, "addr": "127.0.0.1"})
	ctx := map[string]any{"user": "u7"}

	s.join("s1", "todo", "secret", nil)
	sameJSON(t, "veto", s.envelope(), env("todo", "secret", nil, map[string]any{"type": "unauthorized"}))
	sameJSON(t, "join input", joins.next(t), map[string]any{"subscription_id": "s1", "stream_name": "todo", "group_id": "secret", "id": nil, "context": ctx})

	s.join("s2", "todo", "open", "i1")
	sameJSON(t, "sync", s.envelope(), env("todo", "open", "i1", map[string]any{"type": "sync", "data": nil}))
	sameJSON(t, "join input", joins.next(t), map[string]any{"subscription_id": "s2", "stream_name": "todo", "group_id": "open", "id": "i1", "context": ctx})

	s.join("s3", "todo", "boom", nil) // a failing join trigger does not veto
	sameJSON(t, "sync", s.envelope(), env("todo", "boom", nil, map[string]any{"type": "sync", "data": []any{}}))
	joins.next(t)

	w.mustCall("stream::set", addr("todo", "secret", "i1", "data", 1)) // s1 was vetoed: not subscribed
	w.mustCall("stream::set", addr("todo", "open", "i1", "data", 2))
	sameJSON(t, "envelope", s.envelope(), env("todo", "open", "i1", map[string]any{"type": "create", "data": 2}))
	s.none("stream")

	left := func(want map[string]any) {
		t.Helper()
		f := w.invoked("guard::leave")
		sameJSON(t, "leave input", f["data"], want)
		w.reply(f, map[string]any{})
	}
	s.leave("s2", "todo", "open")
	left(map[string]any{"subscription_id": "s2", "stream_name": "todo", "group_id": "open", "id": "i1", "context": ctx})
	s.leave("s1", "todo", "secret") // never subscribed: no leave trigger
	s.conn.Close(1000, "")          // s3 is left on close
	left(map[string]any{"subscription_id": "s3", "stream_name": "todo", "group_id": "boom", "id": nil, "context": ctx})

	// The stream port's auth function cannot refuse: a failure only leaves
	// the connection without context.
	s2 := dialRaw(t, e.streamURL()+"/?fail=1", nil)
	auth.next(t)
	s2.join("x", "todo", "open", nil)
	sameJSON(t, "sync", s2.envelope(), env("todo", "open", nil, map[string]any{"type": "sync", "data": []any{2}}))
	sameJSON(t, "join input", joins.next(t), map[string]any{"subscription_id": "x", "stream_name": "todo", "group_id": "open", "id": nil, "context": nil})
	s2.conn.Close(1000, "")
	left(map[string]any{"subscription_id": "x", "stream_name": "todo", "group_id": "open", "id": nil, "context": nil})
	w.sync()
	w.none("invokefunction")
}

func TestStreamPortCustomImplementation(t *testing.T) {
	e := startEngine(t, nil, nil)
	impl := dial(t, e.url(0))
	impl.register("stream::list(custom)")
	impl.register("stream::get(custom)")
	impl.sync()
	s := dialRaw(t, e.streamURL(), nil)

	s.join("a", "custom", "g", nil)
	f := impl.invoked("stream::list(custom)")
	sameJSON(t, "list payload", f["data"], map[string]any{"stream_name": "custom", "group_id": "g"})
	impl.reply(f, map[string]any{"result": []any{"x", "y"}})
	sameJSON(t, "sync", s.envelope(), env("custom", "g", nil, map[string]any{"type": "sync", "data": []any{"x", "y"}}))

	s.join("b", "custom", "g", "i")
	f = impl.invoked("stream::get(custom)")
	sameJSON(t, "get payload", f["data"], map[string]any{"stream_name": "custom", "group_id": "g", "item_id": "i"})
	impl.reply(f, map[string]any{"error": map[string]any{"code": "E", "message": "down"}}) // no sync

	s.join("c", "custom", "g", "j")
	f = impl.invoked("stream::get(custom)")
	impl.reply(f, map[string]any{"result": nil})
	sameJSON(t, "sync", s.envelope(), env("custom", "g", "j", map[string]any{"type": "sync", "data": nil}))
	s.none("stream")
}

func TestStreamPortBadFrames(t *testing.T) {
	e := startEngine(t, nil, func(c *config.Config) { c.Engine.MaxJSONDepth = 2 })
	tests := []struct {
		name, raw, msg string
	}{
		{"not JSON", `nope`, "message is not valid JSON: invalid literal at offset 0"},
		{"not an object", `"join"`, "message must be a JSON object, got string"},
		{"no type", `{"data":{}}`, "type is missing"},
		{"unknown type", `{"type":"subscribe","data":{}}`, `unknown type "subscribe" (want "join" or "leave")`},
		{"no data", `{"type":"join"}`, "join: data is missing"},
		{"data not an object", `{"type":"leave","data":[]}`, "leave: data must be an object, got array"},
		{"no stream name", `{"type":"join","data":{"subscriptionId":"s"}}`, "join: data.streamName is missing"},
		{"group id not a string", `{"type":"join","data":{"subscriptionId":"s","streamName":"x","groupId":1}}`, "join: data.groupId must be a string, got number"},
		{"item id not a string", `{"type":"join","data":{"subscriptionId":"s","streamName":"x","groupId":"g","id":5}}`, "join: data.id must be a string, got number"},
		{"too deep", `{"type":"join","data":{"subscriptionId":"s","streamName":"x","groupId":"g","id":{"a":{"b":1}}}}`, "join: message nests deeper than 2 levels at offset 85"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := dialRaw(t, e.streamURL(), nil)
			s.sendRaw(tt.raw)
			sameJSON(t, "error", s.next("error", func(frame) bool { return true }),
				map[string]any{"type": "error", "error": map[string]any{"code": "invalid_message", "message": tt.msg}})
			s.join("ok", "x", "g", nil) // the connection still works
			sameJSON(t, "sync", s.envelope(), env("x", "g", nil, map[string]any{"type": "sync", "data": []any{}}))
			s.none("")
		})
	}
}
