package engine

import (
	"encoding/json"
	"errors"
	"sync"

	"github.com/iii-go/iii/wire"
)

// streamPort serves the stream WebSocket port (docs/wire-protocol.md#stream-port):
// clients join and leave stream groups and receive every change envelope
// that matches, in log order.
type streamPort struct {
	e *Engine

	mu     sync.RWMutex
	groups map[groupKey]map[*streamConn]int // how many of a conn's subscriptions watch the group
}

type groupKey struct{ stream, group string }

// streamConn is one client of the stream port.
type streamConn struct {
	conn    *wire.Conn
	context json.RawMessage
	req     wire.StreamRequest

	mu   sync.Mutex
	subs map[string]subscription // by subscriptionId
}

type subscription struct {
	key     groupKey
	item    string
	hasItem bool
}

func newStreamPort(e *Engine) *streamPort {
	return &streamPort{e: e, groups: map[groupKey]map[*streamConn]int{}}
}

// Open attaches the connection's auth context; the stream port's auth
// function cannot refuse a connection (upstream behaviour).
func (p *streamPort) Open(c *wire.Conn) {
	sc := &streamConn{conn: c, subs: map[string]subscription{}, context: json.RawMessage("null")}
	if fn := p.e.cfg.Stream.AuthFunction; fn != "" {
		in, _ := json.Marshal(map[string]any{
			"headers": lowerHeaders(c.Header()), "path": c.Path(),
			"query_params": decodeQuery(c.RawQuery()), "addr": c.RemoteIP(),
		})
		o := p.e.call(fn, in, nil)
		var r struct {
			Context json.RawMessage `json:"context"`
		}
		if !o.failed() && o.hasResult && json.Unmarshal(o.result, &r) == nil && r.Context != nil {
			sc.context = r.Context
		}
	}
	c.SetSession(sc)
}

// Message applies one join or leave.
func (p *streamPort) Message(c *wire.Conn, frame []byte) {
	sc := c.Session().(*streamConn)
	r := &sc.req
	if err := wire.DecodeStreamRequestDepth(frame, r, p.e.cfg.Engine.MaxJSONDepth); err != nil {
		var de *wire.DecodeError
		msg := err.Error()
		if errors.As(err, &de) {
			msg = de.Message
		}
		c.Send(wire.AppendErrorFrame(nil, codeInvalidMessage, msg))
		return
	}
	key := groupKey{r.StreamName, r.GroupID}
	switch r.Type {
	case "join":
		sub := subscription{key: key, item: r.ItemID, hasItem: r.HasItemID}
		if p.vetoed(sc, "stream:join", r.SubscriptionID, sub) {
			c.Send(p.envelope(sub, `{"type":"unauthorized"}`))
			return
		}
		p.add(sc, r.SubscriptionID, sub)
		p.sync(sc, sub)
	case "leave":
		if sub, ok := p.remove(sc, r.SubscriptionID); ok {
			p.vetoed(sc, "stream:leave", r.SubscriptionID, sub)
		}
	}
}

// Close runs the leave triggers of every remaining subscription.
func (p *streamPort) Close(c *wire.Conn, err error) {
	sc, _ := c.Session().(*streamConn)
	if sc == nil {
		return
	}
	sc.mu.Lock()
	ids := make([]string, 0, len(sc.subs))
	for id := range sc.subs {
		ids = append(ids, id)
	}
	sc.mu.Unlock()
	for _, id := range ids {
		if sub, ok := p.remove(sc, id); ok {
			p.vetoed(sc, "stream:leave", id, sub)
		}
	}
}

func (p *streamPort) add(sc *streamConn, id string, sub subscription) {
	p.remove(sc, id) // a second join with the same id replaces the first
	sc.mu.Lock()
	sc.subs[id] = sub
	sc.mu.Unlock()
	p.mu.Lock()
	m := p.groups[sub.key]
	if m == nil {
		m = map[*streamConn]int{}
		p.groups[sub.key] = m
	}
	m[sc]++
	p.mu.Unlock()
}

func (p *streamPort) remove(sc *streamConn, id string) (subscription, bool) {
	sc.mu.Lock()
	sub, ok := sc.subs[id]
	delete(sc.subs, id)
	sc.mu.Unlock()
	if !ok {
		return sub, false
	}
	p.mu.Lock()
	if m := p.groups[sub.key]; m != nil {
		if m[sc]--; m[sc] <= 0 {
			delete(m, sc)
		}
		if len(m) == 0 {
			delete(p.groups, sub.key)
		}
	}
	p.mu.Unlock()
	return sub, true
}

// vetoed runs every join (or leave) trigger with the subscription and
// reports whether any join handler answered {"unauthorized": true}.
func (p *streamPort) vetoed(sc *streamConn, typ, id string, sub subscription) bool {
	e := p.e
	e.view.mu.RLock()
	ts := e.view.Registry.TriggersOfType(typ)
	e.view.mu.RUnlock()
	if len(ts) == 0 {
		return false
	}
	var item any
	if sub.hasItem {
		item = sub.item
	}
	in, _ := json.Marshal(map[string]any{"subscription_id": id, "stream_name": sub.key.stream, "group_id": sub.key.group, "id": item, "context": sc.context})
	veto := false
	for _, t := range ts {
		o := e.call(t.Function, in, nil)
		var r struct {
			Unauthorized bool `json:"unauthorized"`
		}
		if typ == "stream:join" && !o.failed() && o.hasResult && json.Unmarshal(o.result, &r) == nil && r.Unauthorized {
			veto = true
		}
	}
	return veto
}

// sync sends the subscription's initial snapshot through the same code path
// as the functions, so custom implementations are honoured.
func (p *streamPort) sync(sc *streamConn, sub subscription) {
	payload := map[string]any{"stream_name": sub.key.stream, "group_id": sub.key.group}
	fn := "stream::list"
	if sub.hasItem {
		payload["item_id"] = sub.item
		fn = "stream::get"
	}
	in, _ := json.Marshal(payload)
	o := p.e.call(fn, in, nil)
	if o.failed() {
		return
	}
	data := o.result
	if !o.hasResult {
		data = json.RawMessage("null")
	}
	sc.conn.Send(p.envelope(sub, `{"type":"sync","data":`+string(data)+`}`))
}

func (p *streamPort) envelope(sub subscription, event string) []byte {
	b := append([]byte(`{"type":"stream","timestamp":`), itoa(nowMillis())...)
	b = append(b, `,"streamName":`...)
	b = wire.AppendString(b, sub.key.stream)
	b = append(b, `,"groupId":`...)
	b = wire.AppendString(b, sub.key.group)
	b = append(b, `,"id":`...)
	if sub.hasItem {
		b = wire.AppendString(b, sub.item)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"event":`...)
	b = append(b, event...)
	return append(b, '}')
}

// watched says whether any client has joined stream's group (all of it, or
// one of its items).
func (p *streamPort) watched(stream, group string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.groups[groupKey{stream, group}]) > 0
}

// publish offers one envelope to every connection with a matching
// subscription, once per connection. It runs on the sequencer goroutine and
// never blocks (a connection that cannot keep up is closed by wire); the
// frame is shared, since wire never modifies a queued frame.
func (p *streamPort) publish(stream, group, item string, hasItem bool, env []byte) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for sc := range p.groups[groupKey{stream, group}] {
		if sc.matches(stream, group, item, hasItem) {
			sc.conn.Send(env)
		}
	}
}

func (sc *streamConn) matches(stream, group, item string, hasItem bool) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, s := range sc.subs {
		if s.key.stream == stream && s.key.group == group && (!s.hasItem || hasItem && s.item == item) {
			return true
		}
	}
	return false
}
