package engine

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iii-go/iii/engine/config"
)

// Starting, stopping and restarting an engine on a log on disk.

// diskConfig is a config whose stream and state data live in dir.
func diskConfig(dir string) *config.Config {
	return &config.Config{
		Listeners: []config.Listener{{Host: "127.0.0.1"}},
		Stream:    &config.Stream{Host: "127.0.0.1", StoreMethod: config.StoreFileBased, FilePath: dir},
		State:     &config.State{StoreMethod: config.StoreFileBased, TriggersEnabled: true},
	}
}

func shutdown(t *testing.T, e *Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func TestRestartKeepsDataNotConnections(t *testing.T) {
	dir := t.TempDir()
	e1, err := New(diskConfig(dir), Options{DataDir: t.TempDir(), Logger: discardLogger})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, e1.url(0))
	c.mustCall("stream::set", addr("todo", "g", "i1", "data", map[string]any{"title": "persist"}))
	c.mustCall("stream::set", addr("todo", "g", "i2", "data", 2))
	c.mustCall("stream::delete", addr("todo", "g", "i2"))
	c.mustCall("state::set", map[string]any{"scope": "cfg", "key": "k", "value": []any{1, 2}})
	c.register("svc::gone")
	c.send(map[string]any{"type": "registertrigger", "id": "t-gone", "trigger_type": "state", "function_id": "svc::gone", "config": map[string]any{}})
	c.mustCall("engine::register_trigger", map[string]any{"trigger_type": "state", "function_id": "svc::gone", "config": map[string]any{}})
	before := c.result("engine::health::check", nil).(map[string]any)["log_last_index"].(float64)
	shutdown(t, e1)
	if err := c.waitClosed(); closeCode(err) != 1001 {
		t.Fatalf("the connection ended with %v at shutdown, want close 1001", err)
	}

	e2, err := New(diskConfig(dir), Options{DataDir: t.TempDir(), Logger: discardLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, e2)
	c2 := dial(t, e2.url(0))
	runSteps(t, c2, []step{
		{name: "stream item kept", fn: "stream::get", in: addr("todo", "g", "i1"), want: map[string]any{"title": "persist"}},
		{name: "deleted item stays deleted", fn: "stream::get", in: addr("todo", "g", "i2"), absent: true},
		{name: "streams listed", fn: "stream::list_all", in: nil, want: map[string]any{"stream": []any{map[string]any{"id": "todo", "groups": []any{"g"}}}, "count": 1}},
		{name: "state kept", fn: "state::get", in: map[string]any{"scope": "cfg", "key": "k"}, want: []any{1, 2}},
		{name: "the old connection's function is gone", fn: "engine::functions::info", in: map[string]any{"function_id": "svc::gone"},
			wantErr: map[string]any{"code": "NOT_FOUND", "message": "Function 'svc::gone' is not registered."}},
		{name: "every trigger of the previous run is gone", fn: "engine::registered-triggers::list", in: map[string]any{"include_internal": true},
			want: map[string]any{"registered_triggers": []any{}}},
		{name: "built-ins are registered again", fn: "engine::functions::info", in: map[string]any{"function_id": "state::get"},
			want: map[string]any{"function_id": "state::get", "worker_name": "iii-state", "description": "Read a value", "registered_triggers": []any{}}},
	})
	if after := c2.result("engine::health::check", nil).(map[string]any)["log_last_index"].(float64); after <= before {
		t.Fatalf("log_last_index %v after the restart, was %v: the log did not continue", after, before)
	}
}

func TestNewRefusesBadSetups(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	tests := []struct {
		name string
		tune func(*config.Config)
		want string
	}{
		{"worker port taken", func(c *config.Config) { c.Listeners[0].Port = port }, "cannot listen on 127.0.0.1:" + strconv.Itoa(port)},
		{"stream port taken", func(c *config.Config) { c.Stream.Port = port }, "cannot listen on 127.0.0.1:" + strconv.Itoa(port)},
		{"unknown sync policy", func(c *config.Config) { c.Engine.Sync = "sometimes" }, "engine: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := diskConfig(t.TempDir())
			tt.tune(cfg)
			e, err := New(cfg, Options{DataDir: t.TempDir(), Logger: discardLogger})
			if err == nil {
				shutdown(t, e)
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not name %q", err, tt.want)
			}
		})
	}
}

// An engine without stream and state modules has none of their functions
// or trigger types.
func TestEngineWithoutModules(t *testing.T) {
	e, err := New(&config.Config{Listeners: []config.Listener{{Host: "127.0.0.1"}}}, Options{DataDir: t.TempDir(), Logger: discardLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, e)
	c := dial(t, e.url(0))
	for _, fn := range []string{"stream::set", "state::get"} {
		if got := errorCode(c.call(fn, map[string]any{})); got != "function_not_found" {
			t.Errorf("%s: %q, want function_not_found", fn, got)
		}
	}
	sameJSON(t, "trigger types", c.result("engine::triggers::list", map[string]any{}), map[string]any{"triggers": []any{}})
	c.register("stream::set(mine)") // no stream module: an ordinary id
	c.sync()
	c.none("error")
}
