package engine

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iii-go/iii/engine/config"
	"github.com/iii-go/iii/internal/wstest"
	"github.com/iii-go/iii/log"
)

// burstClient writes frames by hand, so that several go out in one write
// and reach the engine as one burst.
type burstClient struct {
	t *testing.T
	*wstest.Conn
}

func dialBurst(t *testing.T, url string) *burstClient {
	t.Helper()
	wc, err := wstest.Dial(strings.TrimPrefix(url, "ws://"), "/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wc.Close() })
	c := &burstClient{t: t, Conn: wc}
	if f := c.read(); f.str("type") != "workerregistered" {
		t.Fatalf("first frame %v", f)
	}
	return c
}

// write sends frames (JSON values, or []byte payloads as they are) in one
// write, as text frames masked with a zero key.
func (c *burstClient) write(frames ...any) {
	var b []byte
	for _, f := range frames {
		p, ok := f.([]byte) // as it is
		if !ok {
			var err error
			if p, err = json.Marshal(f); err != nil {
				c.t.Fatal(err)
			}
		}
		b = append(b, 0x81)
		switch {
		case len(p) < 126:
			b = append(b, 0x80|byte(len(p)))
		default:
			b = append(b, 0x80|126)
			b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
		}
		b = append(append(b, 0, 0, 0, 0), p...)
	}
	if _, err := c.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next frame the engine sent.
func (c *burstClient) read() frame {
	c.t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, p, err := c.ReadFrame()
	if err != nil {
		c.t.Fatal(err)
	}
	var f frame
	if err := json.Unmarshal(p, &f); err != nil {
		c.t.Fatalf("frame %q: %v", p, err)
	}
	return f
}

// results reads frames until every invocation in ids is answered.
func (c *burstClient) results(ids ...string) map[string]frame {
	c.t.Helper()
	got := map[string]frame{}
	for len(got) < len(ids) {
		if f := c.read(); f.str("type") == "invocationresult" {
			got[f.str("invocation_id")] = f
		}
	}
	for _, id := range ids {
		if f, ok := got[id]; !ok || f["error"] != nil {
			c.t.Fatalf("invocation %s: %v", id, f)
		}
	}
	return got
}

func setFrame(id, stream, item string, v any) map[string]any {
	return map[string]any{"type": "invokefunction", "invocation_id": id, "function_id": "stream::set",
		"data": map[string]any{"stream_name": stream, "group_id": "g", "item_id": item, "data": v}}
}

// The stream::sets a client pipelines in one burst reach the log as one
// request, one write and one fsync for all of them: however many clients
// burst at once, no other record falls between them.
func TestBurstOfSetsIsOneCommit(t *testing.T) {
	e := startEngine(t, nil, func(c *config.Config) { c.Engine.Sync = "always" })
	const clients, rounds, n = 8, 10, 20
	cs := make([]*burstClient, clients)
	for k := range cs {
		cs[k] = dialBurst(t, e.url(0))
	}
	from := e.log.LastIndex() + 1
	var wg sync.WaitGroup
	for k, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				var frames []any
				var ids []string
				for i := range n {
					ids = append(ids, fmt.Sprint("s", i))
					frames = append(frames, setFrame(ids[i], fmt.Sprint("burst", k), fmt.Sprint(r), i))
				}
				c.write(frames...)
				c.results(ids...)
			}
		}()
	}
	wg.Wait()
	var runs []string // stream/item of each run of consecutive sets to one item
	err := e.log.Read(from, func(rec *log.Record) error {
		if rec.Kind == log.KindStreamSet {
			key := rec.Stream + "/" + rec.Item
			if len(runs) == 0 || runs[len(runs)-1] != key {
				runs = append(runs, key)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != clients*rounds {
		t.Fatalf("%d bursts of %d sets were logged as %d runs, want one run each: %v", clients*rounds, n, len(runs), runs)
	}
}

// A write that does not go through the burst (stream::update runs on its
// own goroutine) is logged after the sets the connection sent before it.
// (With one CPU the goroutine only runs once the burst has ended, so the
// test can catch a missing flush only with two or more.)
// (Pipelined calls are not ordered among themselves otherwise: a set sent
// after the update may be logged first, as upstream runs each call as its
// own task.)
func TestBurstKeepsWritesAfterItInOrder(t *testing.T) {
	e := startEngine(t, nil, func(c *config.Config) { c.Engine.Sync = "always" })
	c := dialBurst(t, e.url(0))
	for round := range 100 {
		item := fmt.Sprint("item", round)
		update := map[string]any{"type": "invokefunction", "invocation_id": "u", "function_id": "stream::update",
			"data": map[string]any{"stream_name": "burst", "group_id": "g", "item_id": item,
				"ops": []any{map[string]any{"type": "set", "path": "v", "value": 2}}}}
		// Reads after the update keep the burst going while the update's
		// goroutine runs, so that it would overtake the held sets.
		frames := []any{setFrame("a", "burst", item, map[string]any{"v": 1}), setFrame("b", "burst", item, map[string]any{"v": 1}), update}
		ids := []string{"a", "b", "u"}
		for i := range 24 {
			ids = append(ids, fmt.Sprint("r", i))
			frames = append(frames, map[string]any{"type": "invokefunction", "invocation_id": ids[len(ids)-1], "function_id": "engine::functions::list", "data": map[string]any{}})
		}
		c.write(frames...)
		c.results(ids...)
		c.write(map[string]any{"type": "invokefunction", "invocation_id": "g", "function_id": "stream::get",
			"data": map[string]any{"stream_name": "burst", "group_id": "g", "item_id": item}})
		got := c.results("g")["g"]["result"]
		if v, _ := got.(map[string]any)["v"].(float64); v != 2 {
			t.Fatalf("round %d: item after two sets of 1 and an update to 2 in one burst = %v", round, got)
		}
	}
}

// A burst whose last frame is dropped unread (a blank frame) still hands
// its writes to the log: the set is answered without another frame.
func TestBurstEndingInADroppedFrame(t *testing.T) {
	e := startEngine(t, nil, func(c *config.Config) { c.Engine.Sync = "always" })
	c := dialBurst(t, e.url(0))
	c.write(setFrame("s", "burst", "i", 1), []byte("  "))
	c.results("s")
}

// indexOf returns the log index of the first record after from that match
// says is the one, or 0.
func indexOf(t *testing.T, e *Engine, from uint64, match func(*log.Record) bool) uint64 {
	t.Helper()
	var at uint64
	err := e.log.Read(from, func(rec *log.Record) error {
		if at == 0 && match(rec) {
			at = rec.Index
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// A registration sent after sets in the same burst is logged after them,
// though its record is appended at once and theirs wait for the burst's end.
func TestBurstKeepsRegistrationsAfterIt(t *testing.T) {
	e := startEngine(t, nil, func(c *config.Config) { c.Engine.Sync = "always" })
	c := dialBurst(t, e.url(0))
	from := e.log.LastIndex() + 1
	c.write(setFrame("s", "burst", "i", 1), map[string]any{"type": "registerfunction", "id": "burst::fn"})
	c.results("s")
	set := indexOf(t, e, from, func(r *log.Record) bool { return r.Kind == log.KindStreamSet })
	reg := indexOf(t, e, from, func(r *log.Record) bool { return r.Kind == log.KindFunctionRegistered && r.Function == "burst::fn" })
	if set == 0 || reg == 0 || reg < set {
		t.Fatalf("set logged at %d, the registration sent after it at %d", set, reg)
	}
}

// A burst that ends in a frame the connection refuses (text that is not
// UTF-8 closes it with 1007) still hands its writes to the log, as they
// were before bursts were held: the set read before the bad frame is
// applied, though its answer cannot be sent on the closed connection.
func TestBurstCutByABadFrame(t *testing.T) {
	e := startEngine(t, nil, func(c *config.Config) { c.Engine.Sync = "always" })
	c := dialBurst(t, e.url(0))
	c.write(setFrame("s", "burst", "cut", 1), []byte("\xff"))
	other := dial(t, e.url(0))
	eventually(t, "the set before the bad frame applied", func() bool {
		f := other.call("stream::get", map[string]any{"stream_name": "burst", "group_id": "g", "item_id": "cut"})
		return f["result"] == float64(1)
	})
}

// A call routed to a worker is sent after the sets before it are handed to
// the log, so what the worker writes lands after them.
func TestBurstKeepsWorkersWritesAfterIt(t *testing.T) {
	e := startEngine(t, nil, func(c *config.Config) { c.Engine.Sync = "always" })
	w := dial(t, e.url(0))
	w.serve("burst::bump", func(data json.RawMessage, _ frame) (any, error) {
		var in struct{ Item string }
		_ = json.Unmarshal(data, &in)
		if f := w.call("stream::set", map[string]any{"stream_name": "burst", "group_id": "g", "item_id": in.Item, "data": 2}); f["error"] != nil {
			return nil, fmt.Errorf("%v", f["error"])
		}
		return true, nil
	})
	w.sync()
	c := dialBurst(t, e.url(0))
	other := dial(t, e.url(0))
	for round := range 20 {
		item := fmt.Sprint("w", round)
		frames := []any{setFrame("s", "burst", item, 1),
			map[string]any{"type": "invokefunction", "invocation_id": "w", "function_id": "burst::bump", "data": map[string]any{"item": item}}}
		ids := []string{"s", "w"}
		for i := range 24 { // the burst goes on while the worker writes
			ids = append(ids, fmt.Sprint("r", i))
			frames = append(frames, map[string]any{"type": "invokefunction", "invocation_id": ids[len(ids)-1], "function_id": "engine::functions::list", "data": map[string]any{}})
		}
		c.write(frames...)
		c.results(ids...)
		if got := other.call("stream::get", map[string]any{"stream_name": "burst", "group_id": "g", "item_id": item})["result"]; got != float64(2) {
			t.Fatalf("round %d: item after a set of 1 and a worker's set of 2 = %v", round, got)
		}
	}
}
