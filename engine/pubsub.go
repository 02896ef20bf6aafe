package engine

import (
	"encoding/json"
)

// The pubsub module (iii-pubsub, local adapter): `subscribe` triggers with a
// topic, and the `publish` function, which hands the data to every
// subscribed function at once — fire and forget, unordered, no retries, as
// upstream v0.22.1's local adapter. Messages are not state, so they are not
// logged; durable delivery is what iii::durable::publish is for.

func (e *Engine) registerPubSub() {
	const mod = "iii-pubsub"
	e.addBuiltin(&builtin{id: "publish", module: mod, description: "Publish a message to a topic's subscribers", fn: e.fnPublish})
	e.builtinTypes["subscribe"] = mod
}

func (e *Engine) fnPublish(c *builtinCall) callOutcome {
	var in struct {
		Topic *string         `json:"topic"`
		Data  json.RawMessage `json:"data"`
	}
	if o := c.decode("publish", &in); o != nil {
		return *o
	}
	switch {
	case in.Topic == nil:
		return failure(codeDeserialization, "Failed to deserialize input for publish: missing field `topic`")
	case *in.Topic == "":
		return failure("topic_not_set", "Topic is not set")
	}
	data := rawOrNull(in.Data)
	e.view.mu.RLock()
	ts := e.view.Registry.TriggersOfType("subscribe")
	e.view.mu.RUnlock()
	tp := traceparentOf(c.cause)
	for _, t := range ts {
		var cfg struct {
			Topic string `json:"topic"`
		}
		if json.Unmarshal(t.Config, &cfg) != nil || cfg.Topic != *in.Topic {
			continue
		}
		call := e.callerFor(t.Worker)
		fn, meta := t.Function, nonNull(t.Metadata)
		go func() {
			if o := call(fn, data, meta, tp); o.failed() {
				e.logger.Debug("pubsub: subscriber failed", "topic", *in.Topic, "function_id", fn, "err", o.errorMessage())
			}
		}()
	}
	return resultOf(json.RawMessage("null"))
}

// traceparentOf carries a call's trigger mark on to the calls it causes, so
// loop protection sees through a publish.
func traceparentOf(c cause) string {
	if c.depth == 0 {
		return ""
	}
	return traceparent(c.trigger, c.depth)
}
