package engine

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iii-go/iii/engine/config"
	"github.com/iii-go/iii/wire"
)

// gated is an RBAC listener exposing todos::* whose auth function grants
// every session the AuthResult in test::auth's answer.
func gated() []config.Listener {
	return []config.Listener{{RBAC: &config.RBAC{
		AuthFunctionID: "test::auth",
		Expose:         []config.ExposeRule{{Glob: "todos::*"}},
	}}}
}

// withAuth starts a trusted client serving test::auth with answer.
func withAuth(t *testing.T, e *Engine, answer map[string]any) *client {
	tr := dial(t, e.url(0))
	tr.serve("test::auth", func(json.RawMessage, frame) (any, error) { return answer, nil })
	tr.sync()
	return tr
}

func TestTraceparentMark(t *testing.T) {
	h := triggerHash("trg-1")
	tp := traceparent(h, 3)
	if len(tp) != 55 || !strings.HasPrefix(tp, "00-69696901") || !strings.HasSuffix(tp, "-01") {
		t.Fatalf("traceparent %q is not a W3C version 00 traceparent with our magic", tp)
	}
	c, ok := parseCause(tp)
	if !ok || c != (cause{trigger: h, depth: 3}) {
		t.Fatalf("parseCause(%q) = %+v, %v", tp, c, ok)
	}
	if traceparent(h, 3) == tp {
		t.Fatal("two marks for one trigger are equal; each firing needs its own trace")
	}
	for _, foreign := range []string{"", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "00-69696901zz", "00-6969690100" + strings.Repeat("0", 22) + "-0102030405060708-01"} {
		if _, ok := parseCause(foreign); ok {
			t.Errorf("parseCause(%q) claims an engine mark", foreign)
		}
	}
}

func TestUntrustedTriggerFunctionIDs(t *testing.T) {
	tests := []struct {
		name      string
		grant     map[string]any
		function  string
		condition string
		wantCode  string // "" = accepted
		wantCond  string // stored condition_function_id when accepted
	}{
		{"condition names a private function", map[string]any{}, "ui::h", "priv::secret", codeForbidden, ""},
		{"handler names a private function", map[string]any{}, "priv::secret", "", codeForbidden, ""},
		{"condition names an exposed function", map[string]any{}, "ui::h", "todos::check", "", "todos::check"},
		{"prefix applies to the condition", map[string]any{"function_registration_prefix": "tab"}, "ui::h", "priv::secret", "", "tab::priv::secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEngine(t, gated(), nil)
			tr := withAuth(t, e, tt.grant)
			var secret counter
			tr.serve("priv::secret", func(json.RawMessage, frame) (any, error) { secret.inc(); return true, nil })
			tr.serve("todos::check", func(json.RawMessage, frame) (any, error) { return true, nil })
			tr.sync()
			u := dial(t, e.url(1))
			u.serve("ui::h", func(json.RawMessage, frame) (any, error) { return nil, nil })
			cfg := map[string]any{"stream_name": "s", "group_id": "g"}
			if tt.condition != "" {
				cfg["condition_function_id"] = tt.condition
			}
			u.send(map[string]any{"type": "registertrigger", "id": "trg", "trigger_type": "stream", "function_id": tt.function, "config": cfg})
			u.sync()
			e.view.mu.RLock()
			trg, registered := e.view.Registry.Trigger("trg")
			e.view.mu.RUnlock()
			if tt.wantCode != "" {
				r := u.next("triggerregistrationresult", func(f frame) bool { return f.str("id") == "trg" })
				if errorCode(r) != tt.wantCode || registered {
					t.Fatalf("got %v (registered %v), want a %s refusal", r, registered, tt.wantCode)
				}
			} else {
				var got struct {
					Condition string `json:"condition_function_id"`
				}
				json.Unmarshal(trg.Config, &got)
				if !registered || got.Condition != tt.wantCond {
					t.Fatalf("registered %v with config %s, want condition %q", registered, trg.Config, tt.wantCond)
				}
			}
			tr.mustCall("stream::set", map[string]any{"stream_name": "s", "group_id": "g", "item_id": "i", "data": 1})
			time.Sleep(100 * time.Millisecond)
			if secret.get() != 0 {
				t.Fatalf("priv::secret ran %d times for an untrusted trigger", secret.get())
			}
		})
	}
}

// A target registered after the trigger is checked at firing time.
func TestUntrustedFiringRunsWithSessionRights(t *testing.T) {
	e := startEngine(t, gated(), nil)
	tr := withAuth(t, e, map[string]any{})
	u := dial(t, e.url(1))
	u.send(map[string]any{"type": "registertrigger", "id": "trg", "trigger_type": "stream", "function_id": "priv::late",
		"config": map[string]any{"stream_name": "s", "group_id": "g"}})
	u.sync()
	var late counter
	tr.serve("priv::late", func(json.RawMessage, frame) (any, error) { late.inc(); return nil, nil })
	tr.sync()
	tr.mustCall("stream::set", map[string]any{"stream_name": "s", "group_id": "g", "item_id": "i", "data": 1})
	time.Sleep(150 * time.Millisecond)
	if late.get() != 0 {
		t.Fatalf("priv::late ran %d times with the engine's rights", late.get())
	}
}

// writer serves todos::create on a trusted client: it writes one item to
// stream s, passing the traceparent it was called with on when propagate is
// set (as the SDKs do with OpenTelemetry on).
func writer(t *testing.T, e *Engine, s string, propagate bool) (*client, *counter) {
	w := dial(t, e.url(0))
	n := &counter{}
	w.serve("todos::create", func(_ json.RawMessage, f frame) (any, error) {
		i := n.inc()
		m := map[string]any{"type": "invokefunction", "function_id": "stream::set", "action": map[string]any{"type": "void"},
			"data": map[string]any{"stream_name": s, "group_id": "g", "item_id": "i" + itoa(i), "data": i}}
		if propagate && f.str("traceparent") != "" {
			m["traceparent"] = f.str("traceparent")
		}
		w.send(m)
		return map[string]any{"n": i}, nil
	})
	w.sync()
	return w, n
}

func TestWriteLoopFromOneFrame(t *testing.T) {
	for _, propagate := range []bool{true, false} {
		t.Run(map[bool]string{true: "worker passes trace context on", false: "worker passes nothing on"}[propagate], func(t *testing.T) {
			e := startEngine(t, gated(), nil)
			withAuth(t, e, map[string]any{})
			_, created := writer(t, e, "todo", propagate)
			u := dial(t, e.url(1))
			u.serve("ui::noop", func(json.RawMessage, frame) (any, error) { return nil, nil })
			u.send(map[string]any{"type": "registertrigger", "id": "loop", "trigger_type": "stream", "function_id": "ui::noop",
				"config": map[string]any{"stream_name": "todo", "group_id": "g", "condition_function_id": "todos::create"}})
			u.sync()
			u.mustCall("todos::create", map[string]any{})
			time.Sleep(time.Second)
			n := created.get()
			switch {
			case propagate && n != 2:
				t.Fatalf("todos::create ran %d times; want 2 (the session's call and the condition's, which does not re-fire)", n)
			case !propagate && n > untrustedFiringBurst+2*untrustedFiringsPerSecond:
				t.Fatalf("todos::create ran %d times in a second; the untrusted rate bound should hold it", n)
			}
		})
	}
}

func TestTriggerChainDepth(t *testing.T) {
	e := startEngine(t, nil, func(c *config.Config) { c.Engine.MaxTriggerDepth = 3 })
	w := dial(t, e.url(0))
	var hops counter
	hop := func(to string) func(json.RawMessage, frame) (any, error) {
		return func(_ json.RawMessage, f frame) (any, error) {
			i := hops.inc()
			w.send(map[string]any{"type": "invokefunction", "function_id": "stream::set", "action": map[string]any{"type": "void"},
				"traceparent": f.str("traceparent"), "data": map[string]any{"stream_name": to, "group_id": "g", "item_id": itoa(i), "data": i}})
			return nil, nil
		}
	}
	w.serve("chain::a", hop("b"))
	w.serve("chain::b", hop("a"))
	for _, s := range []string{"a", "b"} {
		w.send(map[string]any{"type": "registertrigger", "id": "on-" + s, "trigger_type": "stream", "function_id": "chain::" + s,
			"config": map[string]any{"stream_name": s, "group_id": "g"}})
	}
	w.sync()
	w.mustCall("stream::set", map[string]any{"stream_name": "a", "group_id": "g", "item_id": "start", "data": 0})
	time.Sleep(500 * time.Millisecond)
	if hops.get() != 3 {
		t.Fatalf("the chain made %d hops; max_trigger_depth is 3", hops.get())
	}
}

// An untrusted session cannot forge a mark to hide its writes from triggers.
func TestUntrustedMarksAreIgnored(t *testing.T) {
	e := startEngine(t, []config.Listener{{RBAC: &config.RBAC{Expose: []config.ExposeRule{{Glob: "stream::set"}}}}}, nil)
	tr := dial(t, e.url(0))
	var fired counter
	tr.serve("audit::on", func(json.RawMessage, frame) (any, error) { fired.inc(); return nil, nil })
	tr.send(map[string]any{"type": "registertrigger", "id": "audit", "trigger_type": "stream", "function_id": "audit::on",
		"config": map[string]any{"stream_name": "s", "group_id": "g"}})
	tr.sync()
	u := dial(t, e.url(1))
	forged := traceparent(triggerHash("audit"), 200)
	r := u.call("stream::set", map[string]any{"stream_name": "s", "group_id": "g", "item_id": "x", "data": 1}, "traceparent", forged)
	if r["error"] != nil {
		t.Fatal(r["error"])
	}
	eventually(t, "the audit trigger to fire", func() bool { return fired.get() == 1 })
}

func TestUntrustedLimits(t *testing.T) {
	e := startEngine(t, gated(), func(c *config.Config) {
		c.Engine.RegistrationsPerSession = 3
		c.Engine.MaxIDBytes = 16
		c.Engine.MaxMetadataBytes = 64
		c.Engine.ChannelsPerSession = 2
	})
	withAuth(t, e, map[string]any{})
	u := dial(t, e.url(1))
	refused := func(code, part string) {
		t.Helper()
		f := u.next("error", func(frame) bool { return true })
		msg, _ := f["error"].(map[string]any)["message"].(string)
		if errorCode(f) != code || !strings.Contains(msg, part) {
			t.Fatalf("got %v, want %s naming %q", f, code, part)
		}
	}
	u.send(map[string]any{"type": "registerfunction", "id": strings.Repeat("x", 17)})
	refused(codeLimitExceeded, "engine.max_id_bytes")
	u.send(map[string]any{"type": "registerfunction", "id": "ui::fat", "metadata": map[string]string{"b": strings.Repeat("y", 64)}})
	refused(codeLimitExceeded, "engine.max_metadata_bytes")
	u.send(map[string]any{"type": "registerfunction", "id": "stream::get(todo)"})
	refused(codeForbidden, "reserved")
	for _, id := range []string{"ui::a", "ui::b", "ui::c", "ui::a"} { // re-registering ui::a takes no new slot
		u.send(map[string]any{"type": "registerfunction", "id": id})
	}
	u.send(map[string]any{"type": "registerfunction", "id": "ui::d"})
	refused(codeLimitExceeded, "engine.registrations_per_session")
	u.send(map[string]any{"type": "unregisterfunction", "id": "ui::b"})
	u.send(map[string]any{"type": "registerfunction", "id": "ui::d"})
	u.sync()
	if !u.owns(e, "ui::d") {
		t.Fatal("a slot freed by unregisterfunction was not reusable")
	}

	if r := u.call("engine::workers::register", map[string]any{"name": "api-worker", "pid": 1}); r["error"] != nil {
		t.Fatal(r["error"])
	}
	if r := u.call("engine::workers::register", map[string]any{"name": strings.Repeat("n", 100)}); errorCode(r) != codeLimitExceeded {
		t.Fatalf("a 100-byte worker payload: %v", r)
	}
	e.view.mu.RLock()
	w, _ := e.view.Registry.Worker(u.id)
	e.view.mu.RUnlock()
	if w.Name != "untrusted:api-worker" {
		t.Fatalf("untrusted worker name %q", w.Name)
	}

	for i := 0; i < 2; i++ {
		u.mustCall("engine::channels::create", map[string]any{})
	}
	if r := u.call("engine::channels::create", map[string]any{}); errorCode(r) != codeLimitExceeded {
		t.Fatalf("third channel: %v", r)
	}
	u.conn.Close(1000, "")
	eventually(t, "the session's channels to be dropped", func() bool {
		e.channels.mu.Lock()
		defer e.channels.mu.Unlock()
		return len(e.channels.byID) == 0
	})
}

// owns reports whether the client's session owns a function.
func (c *client) owns(e *Engine, id string) bool {
	e.view.mu.RLock()
	defer e.view.mu.RUnlock()
	f, ok := e.view.Registry.Function(id)
	return ok && f.Worker == c.id
}

func TestListenerOrigins(t *testing.T) {
	e := startEngine(t, []config.Listener{{RBAC: &config.RBAC{}}, {RBAC: &config.RBAC{}, AllowedOrigins: []string{"http://app.example"}}}, nil)
	tests := []struct {
		listener int
		origin   string
		ok       bool
	}{
		{0, "", true}, {0, "http://evil.example", false},
		{1, "", true}, {1, "http://evil.example", true},
		{2, "http://app.example", true}, {2, "http://evil.example", false},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.origin != "" {
			h.Set("Origin", tt.origin)
		}
		c := &client{t: t, wake: make(chan struct{}, 1), closed: make(chan error, 1)}
		conn, err := wire.Dial(context.Background(), e.url(tt.listener), c, wire.Options{Header: h, Logger: discardLogger})
		if (err == nil) != tt.ok {
			t.Errorf("listener %d, Origin %q: dial error %v, want accepted=%v", tt.listener, tt.origin, err, tt.ok)
		}
		if err == nil {
			conn.Close(wire.CloseNormal, "")
		}
	}
}

func TestPendingCallsPerConnection(t *testing.T) {
	e := startEngine(t, nil, func(c *config.Config) { c.Engine.MaxPendingCalls = 2 })
	w := dial(t, e.url(0))
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	w.serve("slow::op", func(json.RawMessage, frame) (any, error) { <-hold; return nil, nil })
	w.sync()
	c := dial(t, e.url(0))
	for _, id := range []string{"p1", "p2", "p3"} {
		c.send(map[string]any{"type": "invokefunction", "invocation_id": id, "function_id": "slow::op", "data": map[string]any{}})
	}
	r := c.next("invocationresult", func(f frame) bool { return f.str("invocation_id") == "p3" })
	if errorCode(r) != codeLimitExceeded {
		t.Fatalf("third call: %v", r)
	}
}

// A client that pipelines engine calls without waiting is held to
// max_pending_calls too: the rest are refused at once, and everything in
// flight is answered.
func TestPipelinedBuiltinsAreBounded(t *testing.T) {
	e := startEngine(t, nil, func(c *config.Config) { c.Engine.MaxPendingCalls = 8; c.Engine.Sync = "always" })
	c := dial(t, e.url(0))
	const n = 2000
	for i := range n {
		c.send(map[string]any{"type": "invokefunction", "invocation_id": "s" + itoa(int64(i)), "function_id": "stream::set",
			"data": map[string]any{"stream_name": "flood", "group_id": "g", "item_id": itoa(int64(i)), "data": i}})
	}
	ok, refused := 0, 0
	for i := range n {
		r := c.next("invocationresult", func(f frame) bool { return f.str("invocation_id") == "s"+itoa(int64(i)) })
		switch errorCode(r) {
		case "":
			ok++
		case codeLimitExceeded:
			refused++
		default:
			t.Fatalf("%v", r)
		}
	}
	if ok == 0 || refused == 0 || ok+refused != n {
		t.Fatalf("%d written, %d refused", ok, refused)
	}
	t.Logf("%d written, %d refused", ok, refused)
}
