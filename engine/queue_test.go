package engine

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iii-go/iii/engine/config"
)

// queueEngine runs an engine with the queue module: "q" retries fast, "f"
// is FIFO by the field "g".
func queueEngine(t *testing.T) *Engine {
	return startEngine(t, nil, func(c *config.Config) {
		c.Queue = &config.Queue{StoreMethod: config.StoreInMemory, Queues: map[string]config.QueueConfig{
			"default": config.DefaultQueueConfig(),
			"q":       {MaxRetries: 3, Concurrency: 2, Type: config.QueueStandard, BackoffMS: 20, PollIntervalMS: 10},
			"f":       {MaxRetries: 3, Concurrency: 10, Type: config.QueueFIFO, MessageGroupField: "g", BackoffMS: 20, PollIntervalMS: 10},
		}}
	})
}

// enqueue sends an enqueue action and returns the invocation result.
func (c *client) enqueue(queue, fn string, data any) frame {
	c.t.Helper()
	return c.call(fn, data, "action", map[string]any{"type": "enqueue", "queue": queue})
}

// calls records the payloads a handler received, safely.
type calls struct {
	mu   sync.Mutex
	seen []json.RawMessage
}

func (c *calls) add(d json.RawMessage) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = append(c.seen, d)
	return len(c.seen)
}

func (c *calls) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func TestQueueDeliversOnceAndAnswersAReceipt(t *testing.T) {
	e := queueEngine(t)
	w := dial(t, e.url(0))
	var got calls
	w.serve("jobs::run", func(d json.RawMessage, _ frame) (any, error) { got.add(d); return "ok", nil })
	w.sync()
	r := w.enqueue("q", "jobs::run", map[string]any{"n": 1})
	id, _ := r["result"].(map[string]any)["messageReceiptId"].(string)
	if len(id) != 36 {
		t.Fatalf("enqueue answered %v", r)
	}
	eventually(t, "the delivery", func() bool { return got.n() == 1 })
	time.Sleep(100 * time.Millisecond)
	if got.n() != 1 || string(got.seen[0]) != `{"n":1}` {
		t.Fatalf("handler got %d calls: %s", got.n(), got.seen)
	}
	e.view.mu.RLock()
	_, pending := e.view.Queues.Job("q", id)
	e.view.mu.RUnlock()
	if pending {
		t.Fatal("a done job is still in the queue")
	}
}

func TestQueueRefusals(t *testing.T) {
	e := queueEngine(t)
	w := dial(t, e.url(0))
	tests := []struct {
		queue string
		data  any
		want  string
	}{
		{"nope", map[string]any{}, "Queue 'nope' not found"},
		{"f", map[string]any{"x": 1}, "FIFO queue 'f' requires field 'g' in data, but it was not found"},
		{"f", map[string]any{"g": nil}, "FIFO queue 'f': field 'g' must not be null"},
		{"f", "not an object", "FIFO queue 'f' requires field 'g' in data, but it was not found"},
	}
	for _, tt := range tests {
		r := w.enqueue(tt.queue, "jobs::run", tt.data)
		msg, _ := r["error"].(map[string]any)["message"].(string)
		if errorCode(r) != codeEnqueueError || msg != tt.want {
			t.Errorf("enqueue to %s %v: %v, want enqueue_error %q", tt.queue, tt.data, r, tt.want)
		}
	}
}

func TestQueueRetriesThenDeadLettersThenRedrives(t *testing.T) {
	e := queueEngine(t)
	w := dial(t, e.url(0))
	var got calls
	var fail sync.Map
	fail.Store("on", true)
	w.serve("jobs::flaky", func(d json.RawMessage, _ frame) (any, error) {
		got.add(d)
		if v, _ := fail.Load("on"); v == true {
			return nil, errString("boom")
		}
		return nil, nil
	})
	w.sync()
	id := w.enqueue("q", "jobs::flaky", map[string]any{"n": 1})["result"].(map[string]any)["messageReceiptId"].(string)
	eventually(t, "three attempts", func() bool { return got.n() == 3 })
	time.Sleep(150 * time.Millisecond)
	if got.n() != 3 {
		t.Fatalf("%d attempts; max_retries is 3 attempts in all", got.n())
	}
	dlq := w.mustCall("engine::queue::dlq_messages", map[string]any{"topic": "q"}).([]any)
	if len(dlq) != 1 {
		t.Fatalf("dlq: %v", dlq)
	}
	m := dlq[0].(map[string]any)
	if m["id"] != id || m["retries"] != float64(3) || !strings.Contains(m["error"].(string), "boom") {
		t.Fatalf("dlq message %v", m)
	}
	stats := w.mustCall("engine::queue::topic_stats", map[string]any{"topic": "q"}).(map[string]any)
	if stats["dlq_depth"] != float64(1) || stats["depth"] != float64(0) {
		t.Fatalf("stats %v", stats)
	}
	fail.Store("on", false)
	r := w.mustCall("iii::queue::redrive", map[string]any{"queue": "q"}).(map[string]any)
	if r["redriven"] != float64(1) {
		t.Fatalf("redrive %v", r)
	}
	eventually(t, "the redriven delivery", func() bool { return got.n() == 4 })
	if d := w.mustCall("engine::queue::dlq_messages", map[string]any{"topic": "q"}).([]any); len(d) != 0 {
		t.Fatalf("dlq after redrive: %v", d)
	}
}

// errString is an error with a fixed text.
type errString string

func (e errString) Error() string { return string(e) }

func TestQueueWaitsForAWorkerWithoutBurningAttempts(t *testing.T) {
	e := queueEngine(t)
	w := dial(t, e.url(0))
	w.enqueue("q", "jobs::later", map[string]any{"n": 1})
	time.Sleep(200 * time.Millisecond)
	var got calls
	w.serve("jobs::later", func(d json.RawMessage, _ frame) (any, error) { got.add(d); return nil, nil })
	eventually(t, "delivery once a worker has the function", func() bool { return got.n() == 1 })
}

// FIFO: one job at a time per group, in order; a failing job blocks its
// group (not the others) until it succeeds.
func TestQueueFIFOGroups(t *testing.T) {
	e := queueEngine(t)
	w := dial(t, e.url(0))
	var mu sync.Mutex
	var order []string
	failedOnce := false
	w.serve("jobs::fifo", func(d json.RawMessage, _ frame) (any, error) {
		var in struct{ G, N string }
		json.Unmarshal(d, &in)
		mu.Lock()
		defer mu.Unlock()
		if in.N == "a1" && !failedOnce {
			failedOnce = true
			order = append(order, "a1!")
			return nil, errString("first try fails")
		}
		order = append(order, in.N)
		return nil, nil
	})
	w.sync()
	for _, n := range []string{"a1", "a2", "a3"} {
		w.enqueue("f", "jobs::fifo", map[string]any{"g": "A", "n": n})
	}
	for _, n := range []string{"b1", "b2"} {
		w.enqueue("f", "jobs::fifo", map[string]any{"g": "B", "n": n})
	}
	eventually(t, "every job", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == 6 })
	var a, b []string
	for _, n := range order {
		if n[0] == 'a' {
			a = append(a, n)
		} else {
			b = append(b, n)
		}
	}
	if strings.Join(a, ",") != "a1!,a1,a2,a3" || strings.Join(b, ",") != "b1,b2" {
		t.Fatalf("order %v", order)
	}
}

func TestTopicFanOut(t *testing.T) {
	e := queueEngine(t)
	w := dial(t, e.url(0))
	var one, two calls
	w.serve("sub::one", func(d json.RawMessage, _ frame) (any, error) { one.add(d); return nil, nil })
	w.serve("sub::two", func(d json.RawMessage, _ frame) (any, error) { two.add(d); return nil, nil })
	for i, fn := range []string{"sub::one", "sub::two"} {
		w.send(map[string]any{"type": "registertrigger", "id": "t" + itoa(int64(i)), "trigger_type": durableSubscriber, "function_id": fn,
			"config": map[string]any{"topic": "orders"}})
	}
	w.sync()
	if r := w.call("iii::durable::publish", map[string]any{"topic": "orders", "data": map[string]any{"id": 7}}); r["error"] != nil {
		t.Fatal(r["error"])
	}
	eventually(t, "both subscribers", func() bool { return one.n() == 1 && two.n() == 1 })
	topics := w.mustCall("engine::queue::list_topics", map[string]any{}).([]any)
	found := false
	for _, r := range topics {
		if m := r.(map[string]any); m["name"] == "orders" && m["subscriber_count"] == float64(2) {
			found = true
		}
	}
	if !found {
		t.Fatalf("list_topics %v", topics)
	}
}
