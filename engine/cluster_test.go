package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/iii-go/iii/engine/config"
	"github.com/iii-go/iii/internal/natstest"
	"github.com/iii-go/iii/log"
	"github.com/iii-go/iii/projections"
)

// Two engines of one cluster on an in-process JetStream server, each with
// its own listeners and data directory, driven over real connections.

// eventuallyRegistry waits until e's registry satisfies cond: records
// reach the other nodes through the stream, a moment later.
func eventuallyRegistry(t *testing.T, e *Engine, what string, cond func(*projections.Registry) bool) {
	t.Helper()
	eventually(t, what, func() bool {
		e.view.mu.RLock()
		defer e.view.mu.RUnlock()
		return cond(e.view.Registry)
	})
}

func startNode(t *testing.T, url, name string) *Engine {
	t.Helper()
	return startNodeWith(t, url, name, nil)
}

// startNodeWith is startNode with extra listeners (RBAC ones, say).
func startNodeWith(t *testing.T, url, name string, extra []config.Listener) *Engine {
	t.Helper()
	return startEngine(t, extra, func(c *config.Config) {
		c.PubSub = &config.PubSub{}
		c.Engine.Cluster = &config.Cluster{NATSURL: url, Node: name, Stream: "iii", Replicas: 1, NodeTimeout: 2 * time.Second}
		c.HTTP = config.DefaultHTTP()
		c.HTTP.Host, c.HTTP.Port = "127.0.0.1", 0
		c.Queue = &config.Queue{StoreMethod: config.StoreInMemory, Queues: map[string]config.QueueConfig{
			"default": config.DefaultQueueConfig(),
			"q":       {MaxRetries: 3, Concurrency: 4, Type: config.QueueStandard, BackoffMS: 20, PollIntervalMS: 10},
		}}
	})
}

// Jobs enqueued through any node are dispatched once, by the leader, to a
// worker on whichever node has the function.
func TestClusterQueueJobsRunOnce(t *testing.T) {
	url := natstest.Start(t).ClientURL()
	a, b := startNode(t, url, "a"), startNode(t, url, "b")
	wb := dial(t, b.url(0))
	var got calls
	wb.serve("jobs::run", func(d json.RawMessage, _ frame) (any, error) { got.add(d); return "ok", nil })
	wb.sync()
	wa := dial(t, a.url(0))
	const n = 40
	for i := range n {
		via := wa
		if i%2 == 1 {
			via = wb
		}
		if r := via.enqueue("q", "jobs::run", map[string]any{"i": i}); r["error"] != nil {
			t.Fatalf("enqueue %d: %v", i, r)
		}
	}
	eventually(t, "every job handled", func() bool { return got.n() >= n })
	time.Sleep(300 * time.Millisecond) // room for a second delivery, if any
	seen := map[string]int{}
	got.mu.Lock()
	for _, d := range got.seen {
		var in struct{ I int }
		json.Unmarshal(d, &in)
		seen[fmt.Sprint(in.I)]++
	}
	got.mu.Unlock()
	if len(seen) != n || got.n() != n {
		t.Errorf("%d deliveries of %d distinct jobs, want %d once each", got.n(), len(seen), n)
	}
}

// An HTTP route registered by a worker on one node is served by every
// node's HTTP port.
func TestClusterHTTPRouteOnEveryNode(t *testing.T) {
	url := natstest.Start(t).ClientURL()
	a, b := startNode(t, url, "a"), startNode(t, url, "b")
	wa := dial(t, a.url(0))
	wa.serve("api::hello", func(json.RawMessage, frame) (any, error) {
		return map[string]any{"status_code": 200, "body": map[string]any{"from": "a"}}, nil
	})
	wa.route("r1", "get", "/hello", "api::hello", nil)
	wa.sync()
	base := "http://" + b.http.ln.Addr().String()
	eventually(t, "b serves a's route", func() bool {
		r := do(t, "GET", base+"/hello", "", "")
		return r.status == 200 && r.body == `{"from":"a"}`
	})
}

func TestClusterCallsAcrossNodes(t *testing.T) {
	url := natstest.Start(t).ClientURL()
	a, b := startNode(t, url, "a"), startNode(t, url, "b")
	wa, wb := dial(t, a.url(0)), dial(t, b.url(0))
	wa.serve("math::add", func(data json.RawMessage, _ frame) (any, error) {
		var in struct {
			A, B   int
			Caller string `json:"_caller_worker_id"`
		}
		json.Unmarshal(data, &in)
		return map[string]any{"sum": in.A + in.B, "caller": in.Caller}, nil
	})
	wa.serve("math::fail", func(json.RawMessage, frame) (any, error) { return nil, errors.New("no such luck") })
	wa.serve("math::ctx", func(_ json.RawMessage, f frame) (any, error) {
		return map[string]any{"traceparent": f["traceparent"], "baggage": f["baggage"]}, nil
	})
	wa.sync()

	r := wb.mustCall("math::add", map[string]int{"a": 2, "b": 3}).(map[string]any)
	if r["sum"] != 5.0 || r["caller"] != wb.id {
		t.Errorf("cross-node call: %v (caller want %s)", r, wb.id)
	}
	h := wb.mustCall("engine::health::check", map[string]any{}).(map[string]any)
	cl, _ := h["cluster"].(map[string]any)
	if cl["node"] != "b" || cl["leader"] != false || cl["nats"] != "CONNECTED" || len(cl["nodes"].([]any)) != 2 {
		t.Errorf("health of node b: %v", h)
	}
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	ctx := wb.call("math::ctx", map[string]any{}, "traceparent", tp, "baggage", "user=ann")
	if r, _ := ctx["result"].(map[string]any); r["traceparent"] != tp || r["baggage"] != "user=ann" || ctx["traceparent"] != tp || ctx["baggage"] != "user=ann" {
		t.Errorf("trace context across nodes: %v", ctx)
	}
	f := wb.call("math::fail", map[string]any{})
	if errorCode(f) != "invocation_failed" {
		t.Errorf("a worker's error crosses nodes as is: %v", f)
	}
	if got := errorCode(wb.call("math::nothing", map[string]any{})); got != codeFunctionNotFound {
		t.Errorf("unknown function: %s", got)
	}

	// A crash of node a: calls to its functions fail at once, and within
	// the timeout b declares it lost and its functions go away.
	a.node.silence()
	start := time.Now()
	if got := errorCode(wb.call("math::add", map[string]int{})); got != codeNodeUnavailable {
		t.Errorf("call to a silent node: %s", got)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("call to a silent node took %s", d)
	}
	eventuallyWithin(t, 8*time.Second, "node a declared lost", func() bool {
		return errorCode(wb.call("math::add", map[string]int{})) == codeFunctionNotFound
	})
	found := false
	_ = b.log.Read(1, func(rec *log.Record) error {
		found = found || rec.Kind == log.KindNodeLost && rec.Node == "a"
		return nil
	})
	if !found {
		t.Error("no node.lost record for a")
	}
}

func TestClusterWritesTriggersAndOneOrder(t *testing.T) {
	url := natstest.Start(t).ClientURL()
	a, b := startNode(t, url, "a"), startNode(t, url, "b")
	wa, wb := dial(t, a.url(0)), dial(t, b.url(0))

	// No handler: the trigger's invocations are recorded in arrival order.
	wa.register("t::on")
	wa.send(map[string]any{"type": "registertrigger", "id": "tr", "trigger_type": "stream", "function_id": "t::on",
		"config": map[string]any{"stream_name": "s"}})
	wa.sync()
	eventuallyRegistry(t, b, "b sees a's trigger", func(g *projections.Registry) bool {
		_, ok := g.Trigger("tr")
		return ok
	})
	sub := dialRaw(t, a.streamURL(), nil) // a browser on a's stream port
	sub.join("all", "s", "g", nil)
	sub.envelope() // the sync

	const n = 100
	for i := range n {
		wb.mustCall("stream::set", map[string]any{"stream_name": "s", "group_id": "g", "item_id": fmt.Sprint(i), "data": i})
	}
	// Read on a right after b answered: reads catch up with the stream.
	got := wa.mustCall("stream::get", map[string]any{"stream_name": "s", "group_id": "g", "item_id": fmt.Sprint(n - 1)})
	if got != float64(n-1) {
		t.Errorf("read on a after write on b: %v", got)
	}
	for i := range n {
		f := wa.next("invokefunction", func(f frame) bool { return f.str("function_id") == "t::on" })
		d, _ := f["data"].(map[string]any)
		if d["id"] != fmt.Sprint(i) {
			t.Fatalf("trigger event %d is item %v: not in write order", i, d["id"])
		}
		if ev := sub.envelope(); ev["id"] != fmt.Sprint(i) {
			t.Fatalf("stream-port event %d is item %v: not in write order", i, ev["id"])
		}
	}

	// Concurrent updates of one item on both nodes: the answers form one
	// chain, as the single order every node applies.
	var wg sync.WaitGroup
	answers := make(chan [2]any, 2*n)
	for _, c := range []*client{wa, wb} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				r := c.call("stream::update", map[string]any{"stream_name": "s", "group_id": "g", "item_id": "ctr",
					"ops": []any{map[string]any{"type": "increment", "path": "n", "by": 1}}})
				res, _ := r["result"].(map[string]any)
				answers <- [2]any{res["old_value"], res["new_value"]}
			}
		}()
	}
	wg.Wait()
	close(answers)
	seen := map[float64]bool{}
	for ans := range answers {
		nv, _ := ans[1].(map[string]any)
		v, _ := nv["n"].(float64)
		if seen[v] {
			t.Fatalf("two updates answered new value %v", v)
		}
		seen[v] = true
	}
	if len(seen) != 2*n || !seen[2*n] {
		t.Errorf("update answers: %d distinct, want 1..%d", len(seen), 2*n)
	}
	for _, e := range []*Engine{a, b} {
		e.catchUp()
		e.view.mu.RLock()
		v, _ := e.view.Streams.Get("s", "g", "ctr")
		e.view.mu.RUnlock()
		if string(v) != fmt.Sprintf(`{"n":%d}`, 2*n) {
			t.Errorf("final counter on %s: %s", e.node.name, v)
		}
	}
}

// A node the others declared lost while it was alive (cut off, or too
// slow) starts again and closes its connections so its workers register
// anew.
func TestClusterLostNodeRejoins(t *testing.T) {
	url := natstest.Start(t).ClientURL()
	a, b := startNode(t, url, "a"), startNode(t, url, "b")
	wa := connect(t, a.url(0))
	a.node.mu.Lock()
	inc := a.node.incarnation
	a.node.mu.Unlock()
	v, _ := json.Marshal(map[string]string{"incarnation": inc, "by": "b", "reason": "test"})
	if _, err := b.log.Append(&log.Record{Kind: log.KindNodeLost, Node: "a", Value: v}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wa.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("a did not close its connections after being declared lost")
	}
	eventuallyRegistry(t, b, "a started again", func(g *projections.Registry) bool {
		cur, ok := g.Nodes()["a"]
		return ok && cur != inc
	})
	wa2 := dial(t, a.url(0))
	wa2.serve("back::fn", func(json.RawMessage, frame) (any, error) { return "back", nil })
	wa2.sync()
	wb := dial(t, b.url(0))
	eventually(t, "a's new function callable from b", func() bool {
		r := wb.call("back::fn", map[string]any{})
		return r["result"] == "back"
	})
}

// A trigger type provided by a worker on one node is bound by a worker on
// another: the provider hears of the triggers, their removal, and the
// removal of the triggers of a registrant that leaves.
func TestClusterTriggerTypeAcrossNodes(t *testing.T) {
	url := natstest.Start(t).ClientURL()
	a, b := startNode(t, url, "a"), startNode(t, url, "b")
	p, r := dial(t, a.url(0)), dial(t, b.url(0))
	p.send(map[string]any{"type": "registertriggertype", "id": "webhook", "description": "Webhooks"})
	p.sync()
	eventuallyRegistry(t, b, "b sees the trigger type", func(g *projections.Registry) bool {
		_, ok := g.TriggerType("webhook")
		return ok
	})
	r.send(map[string]any{"type": "registertrigger", "id": "t1", "trigger_type": "webhook", "function_id": "hooks::in",
		"config": map[string]any{"path": "/x"}})
	sameJSON(t, "registertrigger forwarded across nodes", p.next("registertrigger", func(frame) bool { return true }), map[string]any{
		"type": "registertrigger", "id": "t1", "trigger_type": "webhook", "function_id": "hooks::in", "config": map[string]any{"path": "/x"}})
	failed := map[string]any{"type": "triggerregistrationresult", "id": "t1", "trigger_type": "webhook", "function_id": "hooks::in",
		"error": map[string]any{"code": "bad_path", "message": "no such path"}}
	p.send(failed)
	sameJSON(t, "the provider's refusal reaches the registrant on the other node", r.next("triggerregistrationresult", func(frame) bool { return true }), failed)
	r.send(map[string]any{"type": "unregistertrigger", "id": "t1", "trigger_type": "webhook"})
	sameJSON(t, "unregistertrigger forwarded across nodes", p.next("unregistertrigger", func(frame) bool { return true }),
		map[string]any{"type": "unregistertrigger", "id": "t1", "trigger_type": "webhook"})
	r.send(map[string]any{"type": "registertrigger", "id": "t2", "trigger_type": "webhook", "function_id": "hooks::in"})
	p.next("registertrigger", func(f frame) bool { return f.str("id") == "t2" })
	r.conn.Close(1000, "")
	sameJSON(t, "the leaving registrant's trigger removed at the provider", p.next("unregistertrigger", func(frame) bool { return true }),
		map[string]any{"type": "unregistertrigger", "id": "t2", "trigger_type": "webhook"})
}

// engine::workers-available and engine::functions-available triggers hear
// of the workers and functions of every node.
func TestClusterEngineTriggersHearOtherNodes(t *testing.T) {
	url := natstest.Start(t).ClientURL()
	a, b := startNode(t, url, "a"), startNode(t, url, "b")
	wa := dial(t, a.url(0))
	events := make(chan map[string]any, 64)
	for _, fn := range []string{"watch::workers", "watch::functions"} {
		wa.serve(fn, func(data json.RawMessage, _ frame) (any, error) {
			var d map[string]any
			json.Unmarshal(data, &d)
			events <- d
			return nil, nil
		})
	}
	wa.send(map[string]any{"type": "registertrigger", "id": "tw", "trigger_type": "engine::workers-available", "function_id": "watch::workers"})
	wa.send(map[string]any{"type": "registertrigger", "id": "tf", "trigger_type": "engine::functions-available", "function_id": "watch::functions"})
	wa.sync()
	await := func(what string, match func(map[string]any) bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case d := <-events:
				if match(d) {
					return
				}
			case <-deadline:
				t.Fatalf("a's trigger did not hear %s", what)
			}
		}
	}

	wb := dial(t, b.url(0))
	await("a worker connecting to b", func(d map[string]any) bool {
		return d["event"] == "worker_connected" && d["worker_id"] == wb.id
	})
	wb.serve("fresh::fn", func(json.RawMessage, frame) (any, error) { return nil, nil })
	await("a function registered on b", func(d map[string]any) bool {
		fns, _ := d["functions"].([]any)
		for _, fn := range fns {
			if m, _ := fn.(map[string]any); m["function_id"] == "fresh::fn" {
				return true
			}
		}
		return false
	})
	wb.result("engine::workers::register", map[string]any{"name": "beta"})
	await("a worker on b reporting its metadata", func(d map[string]any) bool {
		return d["event"] == "worker_metadata_updated" && d["worker_id"] == wb.id
	})
	wb.conn.Close(1000, "")
	await("the worker on b leaving", func(d map[string]any) bool {
		return d["event"] == "worker_disconnected" && d["worker_id"] == wb.id
	})
}

// A trigger owned by an untrusted session fires with that session's rights
// even when the firing happens on another node: a publish on b reaches the
// session's own function, but not a private function the session could
// name only because it was not registered yet.
func TestClusterUntrustedTriggerKeepsItsRightsOnOtherNodes(t *testing.T) {
	url := natstest.Start(t).ClientURL()
	a, b := startNodeWith(t, url, "a", gated()), startNode(t, url, "b")
	withAuth(t, a, map[string]any{})
	u := dial(t, a.url(1))
	var mine counter
	u.serve("mine::h", func(json.RawMessage, frame) (any, error) { mine.inc(); return nil, nil })
	u.send(map[string]any{"type": "registertrigger", "id": "s-own", "trigger_type": "subscribe", "function_id": "mine::h", "config": map[string]any{"topic": "own"}})
	u.send(map[string]any{"type": "registertrigger", "id": "s-late", "trigger_type": "subscribe", "function_id": "late::private", "config": map[string]any{"topic": "late"}})
	u.sync()
	wb := dial(t, b.url(0))
	var private counter
	wb.serve("late::private", func(json.RawMessage, frame) (any, error) { private.inc(); return nil, nil })
	wb.sync()
	eventuallyRegistry(t, b, "b sees the session's triggers", func(g *projections.Registry) bool {
		_, own := g.Trigger("s-own")
		_, late := g.Trigger("s-late")
		return own && late
	})
	wb.mustCall("publish", map[string]any{"topic": "own", "data": map[string]any{}})
	wb.mustCall("publish", map[string]any{"topic": "late", "data": map[string]any{}})
	eventually(t, "the session's own function called", func() bool { return mine.get() == 1 })
	time.Sleep(200 * time.Millisecond)
	if private.get() != 0 {
		t.Error("a publish on b called a private function through an untrusted session's trigger, with the engine's rights")
	}
}
