package engine

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/iii-go/iii/wire"
)

// Helpers for the black-box tests: everything here drives the engine over
// the wire protocol, on top of harness_test.go's client.

// norm turns v into what json.Unmarshal into an any gives (float64 numbers,
// map[string]any objects), so expectations can be written with Go literals.
func norm(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameJSON fails the test unless got and want are the same JSON value.
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, w := norm(t, got), norm(t, want)
	if !reflect.DeepEqual(g, w) {
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		t.Fatalf("%s:\n got  %s\n want %s", what, gb, wb)
	}
}

// into decodes a JSON-shaped value (a result from a frame) into dst.
func into(t *testing.T, v any, dst any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, dst); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

// errBody is the error body of a result or error frame.
func errBody(f frame) map[string]any {
	e, _ := f["error"].(map[string]any)
	return e
}

// dialRaw connects a client without waiting for workerregistered (auth may
// refuse it, or the port may be the stream port, which sends none).
func dialRaw(t *testing.T, url string, h http.Header) *client {
	t.Helper()
	c := &client{t: t, wake: make(chan struct{}, 1), handlers: map[string]func(json.RawMessage, frame) (any, error){}, closed: make(chan error, 1)}
	conn, err := wire.Dial(context.Background(), url, c, wire.Options{Header: h, Logger: discardLogger})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c.conn = conn
	t.Cleanup(func() { conn.Close(wire.CloseNormal, "") })
	return c
}

// dialHeader is dial with upgrade request headers.
func dialHeader(t *testing.T, url string, h http.Header) *client {
	t.Helper()
	c := dialRaw(t, url, h)
	c.id = c.next("workerregistered", func(frame) bool { return true }).str("worker_id")
	return c
}

// streamURL is the ws:// address of the engine's stream port (the last
// server the engine bound).
func (e *Engine) streamURL() string {
	return "ws://" + e.servers[len(e.servers)-1].Addr().String()
}

// token is the reattach token the engine gave the client.
func (c *client) token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.frames {
		if f.str("type") == "workerregistered" {
			return f.str("reattach_token")
		}
	}
	return ""
}

// register registers a function without a Go handler: its invocations are
// recorded as frames, to be answered with reply.
func (c *client) register(id string, extra ...any) {
	m := map[string]any{"type": "registerfunction", "id": id}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	c.send(m)
}

// invoked waits for an invokefunction frame for function fn.
func (c *client) invoked(fn string) frame {
	c.t.Helper()
	return c.next("invokefunction", func(f frame) bool { return f.str("function_id") == fn })
}

// reply answers a recorded invokefunction frame; fields are added to the
// invocationresult as given ("result", "error", ...).
func (c *client) reply(f frame, fields map[string]any) {
	m := map[string]any{"type": "invocationresult", "invocation_id": f.str("invocation_id"), "function_id": f.str("function_id")}
	for k, v := range fields {
		m[k] = v
	}
	c.send(m)
}

// invokeAsync sends an invokefunction with the given invocation id and
// does not wait.
func (c *client) invokeAsync(id, fn string, data any, extra ...any) {
	m := map[string]any{"type": "invokefunction", "invocation_id": id, "function_id": fn, "data": data}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	c.send(m)
}

// waitResult waits for the invocationresult with that invocation id.
func (c *client) waitResult(id string) frame {
	c.t.Helper()
	return c.next("invocationresult", func(f frame) bool { return f.str("invocation_id") == id })
}

// pending returns the untaken frames of type typ (all types for "").
func (c *client) pending(typ string) []frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []frame
	for i, f := range c.frames {
		if !c.taken[i] && (typ == "" || f.str("type") == typ) {
			out = append(out, f)
		}
	}
	return out
}

// none fails the test if an untaken frame of type typ is recorded. Call it
// after a round trip that orders it behind anything that could have come.
func (c *client) none(typ string) {
	c.t.Helper()
	if fs := c.pending(typ); len(fs) > 0 {
		c.t.Fatalf("unexpected %s frames: %v", typ, fs)
	}
}

// sendRaw sends bytes as one text frame.
func (c *client) sendRaw(s string) {
	if err := c.conn.Send([]byte(s)); err != nil {
		c.t.Errorf("send: %v", err)
	}
}

// waitClosed waits for the engine to end the client's connection.
func (c *client) waitClosed() error {
	c.t.Helper()
	select {
	case err := <-c.closed:
		return err
	case <-time.After(5 * time.Second):
		c.t.Fatal("the connection was not closed within 5 s")
		return nil
	}
}

// closeCode is the close code of a connection's end (0 if not a close frame).
func closeCode(err error) uint16 {
	var ce *wire.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// result is the "result" of a successful call, failing the test otherwise;
// it also checks that the frame echoes the function id.
func (c *client) result(fn string, data any) any {
	c.t.Helper()
	r := c.call(fn, data)
	if r["error"] != nil {
		c.t.Fatalf("%s(%v): %v", fn, data, r["error"])
	}
	if r.str("function_id") != fn {
		c.t.Fatalf("%s: result frame names function %q", fn, r.str("function_id"))
	}
	return r["result"]
}

// seqID makes distinct invocation ids within one test.
func seqID(prefix string, n int) string { return prefix + "-" + strconv.Itoa(n) }

// recv waits up to five seconds for a value on ch.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("nothing received within 5 s")
		var zero T
		return zero
	}
}
