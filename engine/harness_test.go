package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iii-go/iii/engine/config"
	"github.com/iii-go/iii/internal/wait"
	"github.com/iii-go/iii/wire"
)

// A test engine on loopback: the real Engine with its listeners on ports the
// OS picks and the log in memory, driven by clients speaking the wire
// protocol over real WebSocket connections.

// startEngine runs an engine with a trusted listener (index 0), the given
// extra listeners, and the stream and state modules.
func startEngine(t testing.TB, extra []config.Listener, tune func(*config.Config)) *Engine {
	t.Helper()
	return startEngineLogging(t, extra, tune, discardLogger)
}

// startEngineLogging is startEngine with the engine's log going to logger.
func startEngineLogging(t testing.TB, extra []config.Listener, tune func(*config.Config), logger *slog.Logger) *Engine {
	t.Helper()
	cfg := &config.Config{
		Listeners: append([]config.Listener{{Host: "127.0.0.1"}}, extra...),
		Stream:    &config.Stream{Host: "127.0.0.1", StoreMethod: config.StoreInMemory},
		State:     &config.State{StoreMethod: config.StoreInMemory, TriggersEnabled: true},
	}
	for i := range cfg.Listeners {
		cfg.Listeners[i].Host = "127.0.0.1"
	}
	if tune != nil {
		tune(cfg)
	}
	e, err := New(cfg, Options{DataDir: t.TempDir(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	return e
}

// url is the ws:// address of listener i.
func (e *Engine) url(i int) string { return "ws://" + e.servers[i].Addr().String() }

// frame is one decoded frame a test client received.
type frame map[string]any

func (f frame) str(k string) string { s, _ := f[k].(string); return s }

// client is a raw protocol client: it records every frame and can serve
// functions with Go handlers.
type client struct {
	t    *testing.T
	conn *wire.Conn
	id   string // worker id from workerregistered

	mu       sync.Mutex
	frames   []frame
	taken    []bool
	wake     chan struct{}
	handlers map[string]func(data json.RawMessage, f frame) (any, error)
	closed   chan error
	seq      atomic.Int64
}

func (c *client) Open(*wire.Conn) {}

func (c *client) Message(_ *wire.Conn, b []byte) {
	var f frame
	if json.Unmarshal(b, &f) != nil {
		return
	}
	if f.str("type") == "invokefunction" {
		c.mu.Lock()
		h := c.handlers[f.str("function_id")]
		c.mu.Unlock()
		if h != nil {
			data, _ := json.Marshal(f["data"])
			go c.answer(f, h, data)
			return
		}
	}
	c.mu.Lock()
	c.frames = append(c.frames, f)
	c.taken = append(c.taken, false)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *client) Close(_ *wire.Conn, err error) { c.closed <- err }

func (c *client) answer(f frame, h func(json.RawMessage, frame) (any, error), data json.RawMessage) {
	res, err := h(data, f)
	id, ok := f["invocation_id"].(string)
	if !ok {
		return
	}
	reply := map[string]any{"type": "invocationresult", "invocation_id": id, "function_id": f.str("function_id")}
	if err != nil {
		reply["error"] = map[string]string{"code": "invocation_failed", "message": err.Error()}
	} else {
		reply["result"] = res
	}
	c.send(reply)
}

// dial connects a client to url and waits for its workerregistered frame;
// the connection is closed when the test ends.
func dial(t *testing.T, url string) *client {
	t.Helper()
	c := connect(t, url)
	t.Cleanup(func() { c.conn.Close(wire.CloseNormal, "") })
	return c
}

// connect is dial for a client the test closes itself (nothing keeps it
// alive until the test ends).
func connect(t *testing.T, url string) *client {
	t.Helper()
	c := &client{t: t, wake: make(chan struct{}, 1), handlers: map[string]func(json.RawMessage, frame) (any, error){}, closed: make(chan error, 1)}
	conn, err := wire.Dial(context.Background(), url, c, wire.Options{Logger: discardLogger})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c.conn = conn
	c.id = c.next("workerregistered", func(frame) bool { return true }).str("worker_id")
	return c
}

func (c *client) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	// A handler may still answer after its test closed the connection.
	if err := c.conn.Send(b); err != nil && !errors.Is(err, wire.ErrClosed) {
		c.t.Errorf("send: %v", err)
	}
}

// next returns the first untaken frame of type typ that match accepts,
// waiting up to five seconds.
func (c *client) next(typ string, match func(frame) bool) frame {
	c.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		c.mu.Lock()
		for i, f := range c.frames {
			if !c.taken[i] && f.str("type") == typ && match(f) {
				c.taken[i] = true
				c.mu.Unlock()
				return f
			}
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			c.t.Fatalf("no %s frame within 5 s; frames: %v", typ, c.frames)
			return nil
		}
	}
}

// serve registers a function answered by h.
func (c *client) serve(id string, h func(data json.RawMessage, f frame) (any, error)) {
	c.mu.Lock()
	c.handlers[id] = h
	c.mu.Unlock()
	c.send(map[string]any{"type": "registerfunction", "id": id})
}

// call invokes a function and waits for its result frame.
func (c *client) call(fn string, data any, extra ...any) frame {
	c.t.Helper()
	id := "inv-" + strconv.FormatInt(c.seq.Add(1), 10)
	m := map[string]any{"type": "invokefunction", "invocation_id": id, "function_id": fn, "data": data}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	c.send(m)
	return c.next("invocationresult", func(f frame) bool { return f.str("invocation_id") == id })
}

// mustCall is call that fails the test on an error result.
func (c *client) mustCall(fn string, data any) any {
	c.t.Helper()
	r := c.call(fn, data)
	if r["error"] != nil {
		c.t.Fatalf("%s: %v", fn, r["error"])
	}
	return r["result"]
}

// errorCode is the code of a result or error frame's error ("" if none).
func errorCode(f frame) string {
	e, _ := f["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// sync makes a round trip, so every frame sent before has been applied.
func (c *client) sync() { c.call("engine::health::check", map[string]any{}) }

// eventually polls cond for up to five seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, 5*time.Second, what, cond)
}

// eventuallyWithin polls cond for up to d.
func eventuallyWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	wait.For(t, d, what, cond)
}

// counter counts calls, safely across handler goroutines.
type counter struct{ n atomic.Int64 }

func (c *counter) inc() int64     { return c.n.Add(1) }
func (c *counter) get() int64     { return c.n.Load() }
func (c *counter) String() string { return fmt.Sprint(c.get()) }
