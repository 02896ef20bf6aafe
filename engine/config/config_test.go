package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	cfg, err := Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

// The seed's iii-config.yaml must load exactly as written.
func TestSeedConfig(t *testing.T) {
	cfg, err := Parse("iii-config.yaml", mustRead(t, "testdata/todo-app-seed.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Path: "iii-config.yaml",
		Listeners: []Listener{
			{Host: "0.0.0.0", Port: 49134, HandshakeTimeout: 10 * time.Second},
			{Host: "0.0.0.0", Port: 3111, HandshakeTimeout: 10 * time.Second, RBAC: &RBAC{
				AuthFunctionID: "todo-project::auth-function",
				Expose: []ExposeRule{
					{Glob: "todos::create"}, {Glob: "todos::list"}, {Glob: "todos::get"},
					{Glob: "todos::delete"}, {Glob: "todos::toggle"},
				},
			}},
		},
		Exec:   &Exec{Commands: []string{"pnpm dev"}},
		Stream: &Stream{Host: "0.0.0.0", Port: 3112, StoreMethod: StoreFileBased, FilePath: "./data/stream_store"},
		Engine: defaultEngine(),
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestUpstreamStyle(t *testing.T) {
	cfg, err := Parse("upstream.yaml", mustRead(t, "testdata/upstream.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	wantListeners := []Listener{
		{Host: "0.0.0.0", Port: 49134, HandshakeTimeout: 10 * time.Second},
		{Host: "127.0.0.1", Port: 3111, HandshakeTimeout: 2500 * time.Millisecond, MiddlewareFunctionID: "mw::gate",
			AllowedOrigins: []string{"https://app.example.com"},
			RBAC: &RBAC{
				AuthFunctionID:            "api::auth",
				OnFunctionRegistration:    "hooks::fn",
				OnTriggerRegistration:     "hooks::trigger",
				OnTriggerTypeRegistration: "hooks::type",
				Expose: []ExposeRule{
					{Glob: "api::*::read"},
					{Metadata: map[string]MetaMatch{
						"public": {Value: true},
						"tier":   {Glob: "*free*", IsGlob: true},
					}},
				},
			}},
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listeners", cfg.Listeners, wantListeners},
		{"stream", cfg.Stream, &Stream{Host: "0.0.0.0", Port: 3200, AuthFunction: "stream::auth", StoreMethod: StoreInMemory}},
		{"state", cfg.State, &State{StoreMethod: StoreFileBased, FilePath: "./data/state_store", MaxValueBytes: 1 << 20}},
		{"exec", cfg.Exec, &Exec{Commands: []string{"cd web && pnpm install", "pnpm dev"}, Watch: []string{"src/**/*.{ts,tsx}"}}},
		{"ignored (workers before modules)", cfg.Ignored, []string{"iii-observability"}},
		{"cron", cfg.Cron, &Cron{}},
		{"http", cfg.HTTP, &HTTP{Host: "0.0.0.0", Port: 3111, DefaultTimeout: 30 * time.Second, ConcurrencyLimit: 1024}},
		{"engine", cfg.Engine, Engine{
			Sync: "interval", SyncIntervalMS: 50, CallTimeout: 5 * time.Second, MaxMessageBytes: 1 << 20,
			SendQueueFrames: 1024, SendQueueBytes: 4 << 20, PingAfter: time.Second, IdleTimeout: 3 * time.Second, WriteDeadline: 2 * time.Second,
			SnapshotEvery: 5000, RetainBytes: 1 << 30, RetainAge: 168 * time.Hour,
			MaxJSONDepth: 64, MaxTriggerDepth: 4, ChannelBufferBytes: 1 << 20, ChannelsPerSession: 8,
			RegistrationsPerSession: 100, MaxIDBytes: 128, MaxMetadataBytes: 4096,
			MaxConnections: 10000, MaxPendingCalls: 10000, AuthTimeout: 5 * time.Second,
		}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s:\n got  %+v\n want %+v", c.name, c.got, c.want)
		}
	}
	if len(cfg.Warnings) != 1 {
		t.Errorf("want 1 warning (one per ignored worker), got %q", cfg.Warnings)
	}
	for _, w := range cfg.Warnings {
		if !strings.HasPrefix(w, "upstream.yaml:") || !strings.Contains(w, "not implemented") {
			t.Errorf("warning %q", w)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)

	cfg, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("no config.yaml: want Default(), got %+v", cfg)
	}

	if err := os.WriteFile("config.yaml", []byte("workers:\n  - name: iii-worker-manager\n    config: {port: 5000}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err = Load("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Path != "config.yaml" || len(cfg.Listeners) != 1 || cfg.Listeners[0].Port != 5000 || cfg.Stream != nil {
		t.Fatalf("config.yaml not loaded: %+v", cfg)
	}

	explicit := filepath.Join(dir, "other.yaml")
	if err := os.WriteFile(explicit, []byte("workers: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if cfg, err = Load(explicit); err != nil || cfg.Path != explicit {
		t.Fatalf("explicit path: %+v, %v", cfg, err)
	}

	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("explicit missing path: want an error naming it, got %v", err)
	}
}

func TestDefault(t *testing.T) {
	cfg := Default()
	if cfg.Path != "" || len(cfg.Listeners) != 1 || !reflect.DeepEqual(cfg.Listeners[0], defaultListener(49134)) {
		t.Fatalf("listeners: %+v", cfg.Listeners)
	}
	if *cfg.Stream != (Stream{Host: "0.0.0.0", Port: 3112, StoreMethod: StoreFileBased}) {
		t.Fatalf("stream: %+v", cfg.Stream)
	}
	if *cfg.State != (State{StoreMethod: StoreFileBased, TriggersEnabled: true}) || cfg.Exec != nil {
		t.Fatalf("state/exec: %+v %+v", cfg.State, cfg.Exec)
	}
	e := cfg.Engine
	if e.Sync != "always" || e.CallTimeout != 30*time.Second || e.MaxMessageBytes != 16<<20 ||
		e.SendQueueFrames != 65536 || e.SendQueueBytes != 64<<20 || e.PingAfter != 20*time.Second || e.IdleTimeout != 60*time.Second {
		t.Fatalf("engine: %+v", e)
	}
}

func TestEnvExpansion(t *testing.T) {
	t.Setenv("III_T_PORT", "4000")
	t.Setenv("III_T_EMPTY", "")
	const unset = "III_T_SURELY_UNSET"
	os.Unsetenv(unset)

	tests := []struct {
		name, in, want string
	}{
		{"set", "port: ${III_T_PORT}", "port: 4000"},
		{"set wins over default", "port: ${III_T_PORT:1}", "port: 4000"},
		{"set to empty wins over default", "h: '${III_T_EMPTY:x}'", "h: ''"},
		{"default", "p: ${III_T_SURELY_UNSET:3112}", "p: 3112"},
		{"default with colons", "u: ${III_T_SURELY_UNSET:ws://a:1/b}", "u: ws://a:1/b"},
		{"empty default", "u: '${III_T_SURELY_UNSET:}'", "u: ''"},
		{"several on a line", "${III_T_PORT}-${III_T_SURELY_UNSET:d}", "4000-d"},
		{"not a reference", "a: $III_T_PORT ${} ${:x}", "a: $III_T_PORT ${} ${:x}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := expandEnv("f.yaml", []byte(tt.in))
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}

	// The expanded text is typed by YAML afterwards.
	cfg := mustParse(t, "workers:\n  - name: iii-worker-manager\n    config:\n      port: ${III_T_PORT}\n      host: ${III_T_SURELY_UNSET:127.0.0.1}\n")
	if l := cfg.Listeners[0]; l.Port != 4000 || l.Host != "127.0.0.1" {
		t.Fatalf("listener %+v", l)
	}

	for _, tt := range []struct {
		name, in string
		line     int
	}{
		{"unset in a value", "workers:\n  - name: iii-worker-manager\n    config:\n      port: ${III_T_SURELY_UNSET}\n", 4},
		{"unset in a comment (as upstream)", "# port: ${III_T_SURELY_UNSET}\nworkers: []\n", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tt.in))
			var ce *Error
			if !errors.As(err, &ce) || ce.Line != tt.line || !strings.Contains(err.Error(), unset+" is not set") {
				t.Fatalf("got %v (line %d), want line %d naming %s", err, lineOf(err), tt.line, unset)
			}
		})
	}
}

func lineOf(err error) int {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Line
	}
	return -1
}

func TestErrorExample(t *testing.T) {
	text := `workers:
  - name: iii-worker-manager
    config:
      port: 49134

  - name: iii-worker-manager
    config:
      port: 3111
      rbac:
        auth_function_id: auth
        expose_functions:
          - todos::*
`
	_, err := Parse("iii-config.yaml", []byte(text))
	want := `iii-config.yaml:12: workers[1].config.rbac.expose_functions[0]: expected match("glob") or a metadata map, got "todos::*"`
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}

func TestErrors(t *testing.T) {
	const wm = "workers:\n  - name: iii-worker-manager\n    config:\n"
	tests := []struct {
		name, in string
		line     int
		want     string // substring of the message, after "test.yaml:<line>: "
	}{
		{"two documents", "workers: []\n---\nmodules: []\n", 2, "only one YAML document is allowed"},
		{"top level not a map", "- a\n", 1, "expected a map, got a list"},
		{"unknown top-level key", "workers: []\nplugins: []\n", 2, "plugins: unknown key (expected one of: workers, modules, port, engine)"},
		{"duplicate key", "workers: []\nworkers: []\n", 2, "workers: key defined twice (first at line 1)"},
		{"workers not a list", "workers: {a: 1}\n", 1, "workers: expected a list, got a map"},
		{"entry not a map", "workers:\n  - iii-stream\n", 2, `workers[0]: expected a map with name: or class:, got "iii-stream"`},
		{"name and class", "workers:\n  - name: iii-stream\n    class: modules::stream::StreamModule\n", 3, "workers[0]: has both name: and class:"},
		{"neither name nor class", "workers:\n  - config: {}\n", 2, "workers[0]: needs name:"},
		{"unknown worker", "modules:\n  - name: iii-foo\n", 2, `modules[0].name: unknown worker "iii-foo"`},
		{"unknown class", "modules:\n  - class: modules::foo::FooModule\n", 2, `modules[0].class: unknown module class "modules::foo::FooModule"`},
		{"name not a string", "workers:\n  - name: 5\n", 2, "workers[0].name: expected a string, got integer 5"},
		{"image on a built-in", "workers:\n  - name: iii-stream\n    image: x/y:1\n", 3, "workers[0].image: image is only for external workers"},
		{"unknown listener key", wm + "      prot: 1\n", 4, "workers[0].config.prot: unknown key (expected one of: port, host, middleware_function_id, rbac, handshake_timeout_ms, allowed_origins)"},
		{"port not an integer", wm + "      port: abc\n", 4, `workers[0].config.port: expected an integer, got "abc"`},
		{"port out of range", wm + "      port: 70000\n", 4, "workers[0].config.port: must be between 0 and 65535, got 70000"},
		{"rbac not a map", wm + "      rbac: [1]\n", 4, "workers[0].config.rbac: expected a map, got a list"},
		{"auth id not a string", wm + "      rbac:\n        auth_function_id: [a]\n", 5, "rbac.auth_function_id: expected a string, got a list"},
		{"expose not a list", wm + "      rbac:\n        expose_functions: match(\"a\")\n", 5, "rbac.expose_functions: expected a list"},
		{"expose number", wm + "      rbac:\n        expose_functions:\n          - 5\n", 6, `expose_functions[0]: expected match("glob") or a metadata map, got integer 5`},
		{"expose unbalanced quotes", wm + "      rbac:\n        expose_functions:\n          - match(\"a')\n", 6, `got "match(\"a')"`},
		{"expose map without metadata", wm + "      rbac:\n        expose_functions:\n          - tier: free\n", 6, "expose_functions[0].metadata: a map item needs a non-empty metadata map"},
		{"expose empty metadata", wm + "      rbac:\n        expose_functions:\n          - metadata: {}\n", 6, "needs a non-empty metadata map"},
		{"unknown stream key", "workers:\n  - name: iii-stream\n    config:\n      ports: 1\n", 4, "workers[0].config.ports: unknown key (expected one of: port, host, auth_function, adapter)"},
		{"unknown state key", "workers:\n  - name: iii-state\n    config:\n      ttl: 1\n", 4, "workers[0].config.ttl: unknown key"},
		{"unknown adapter config key", "workers:\n  - name: iii-state\n    config:\n      adapter:\n        name: kv\n        config: {channel_size: 5}\n", 6, "workers[0].config.adapter.config.channel_size: unknown key"},
		{"redis adapter", "workers:\n  - name: iii-stream\n    config:\n      adapter: {name: redis}\n", 4, "workers[0].config.adapter: the redis adapter is not supported"},
		{"bridge adapter class", "modules:\n  - class: modules::state::StateModule\n    config:\n      adapter:\n        class: modules::state::adapters::Bridge\n", 5, "the bridge adapter is not supported"},
		{"stream adapter class on state", "modules:\n  - class: modules::state::StateModule\n    config:\n      adapter:\n        class: modules::stream::adapters::KvStore\n", 5, `config.adapter.class: unknown state adapter class "modules::stream::adapters::KvStore"`},
		{"unknown adapter", "workers:\n  - name: iii-stream\n    config:\n      adapter: {name: s3}\n", 4, `unknown stream adapter "s3"`},
		{"bad store method", "workers:\n  - name: iii-stream\n    config:\n      adapter:\n        name: kv\n        config:\n          store_method: disk\n", 7, `store_method: expected file_based or in_memory, got "disk"`},
		{"exec without config", "workers:\n  - name: iii-exec\n", 2, "workers[0].config: iii-exec needs config.exec"},
		{"exec without exec", "workers:\n  - name: iii-exec\n    config:\n      watch: [a]\n", 4, "workers[0].config.exec: iii-exec needs config.exec"},
		{"exec empty list", "workers:\n  - name: exec\n    config:\n      exec: []\n", 4, "iii-exec needs config.exec"},
		{"exec unknown key", "workers:\n  - name: iii-exec\n    config:\n      exec: [a]\n      cwd: web\n", 5, "workers[0].config.cwd: unknown key (expected one of: exec, watch)"},
		{"exec line not a string", "workers:\n  - name: iii-exec\n    config:\n      exec:\n        - {a: 1}\n", 5, "config.exec[0]: expected a string, got a map"},
		{"stream twice", "workers:\n  - name: iii-stream\n  - name: iii-stream\n", 3, "iii-stream is listed twice (first at line 2)"},
		{"built-in and alias", "workers:\n  - name: iii-http\nmodules:\n  - name: http\n", 4, "modules[0]: http and iii-http (line 2) name the same worker"},
		{"top-level port not int", "port: x\n", 1, `port: expected an integer, got "x"`},
		{"engine unknown key", "engine:\n  fsync: always\n", 2, "engine.fsync: unknown key"},
		{"engine bad sync", "engine:\n  sync: sometimes\n", 2, `engine.sync: expected always, interval or never, got "sometimes"`},
		{"engine ping after idle", "engine:\n  ping_after_ms: 5000\n  idle_timeout_ms: 5000\n", 2, "engine: ping_after_ms (5000) must be less than idle_timeout_ms (5000)"},
		{"engine bad retain_age", "engine:\n  retain_age: 7\n", 2, "engine.retain_age: expected a duration such as 168h, got integer 7"},
		{"engine trigger depth over a byte", "engine:\n  max_trigger_depth: 256\n", 2, "engine.max_trigger_depth"},
		{"cluster without nats_url", "engine:\n  cluster:\n    node: a\n", 3, "engine.cluster.nats_url: required"},
		{"cluster without node", "engine:\n  cluster:\n    nats_url: nats://h:4222\n", 3, "engine.cluster.node: required"},
		{"cluster node with a dot", "engine:\n  cluster:\n    nats_url: nats://h:4222\n    node: a.b\n", 3, `(got "a.b")`},
		{"cluster replicas", "engine:\n  cluster:\n    nats_url: nats://h:4222\n    node: a\n    replicas: 7\n", 5, "engine.cluster.replicas"},
		{"cluster unknown key", "engine:\n  cluster:\n    nats: x\n", 3, "engine.cluster.nats: unknown key"},
		{"bool expected", "workers:\n  - name: iii-state\n    config: {triggers_enabled: yes please}\n", 3, `triggers_enabled: expected true or false, got "yes please"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tt.in))
			if err == nil {
				t.Fatal("no error")
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("%v is not a *config.Error", err)
			}
			prefix := "test.yaml:" + strconv.Itoa(tt.line) + ": "
			if ce.Line != tt.line || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got  %v\nwant %s…%s", err, prefix, tt.want)
			}
		})
	}
}

func TestAccepted(t *testing.T) {
	os.Unsetenv("III_T_SURELY_UNSET")
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, c *Config)
	}{
		{"cluster", "modules:\n  - class: modules::stream::StreamModule\nengine:\n  cluster:\n    nats_url: nats://a:4222,nats://b:4222\n    node: n-1\n    replicas: 3\n", func(t *testing.T, c *Config) {
			want := Cluster{NATSURL: "nats://a:4222,nats://b:4222", Node: "n-1", Stream: "iii", Replicas: 3, NodeTimeout: 5 * time.Second}
			if c.Engine.Cluster == nil || *c.Engine.Cluster != want {
				t.Errorf("%+v", c.Engine.Cluster)
			}
		}},
		{"cluster nats_url as a list", "engine:\n  cluster:\n    nats_url: [nats://a:4222, nats://b:4222]\n    node: a\n", func(t *testing.T, c *Config) {
			if c.Engine.Cluster == nil || c.Engine.Cluster.NATSURL != "nats://a:4222,nats://b:4222" {
				t.Errorf("%+v", c.Engine.Cluster)
			}
		}},
		{"empty file", "", func(t *testing.T, c *Config) {
			if len(c.Listeners) != 1 || c.Listeners[0].Port != 49134 || c.Stream != nil || c.State != nil {
				t.Errorf("%+v", c)
			}
		}},
		{"null lists", "workers:\nmodules: ~\n", func(t *testing.T, c *Config) {
			if len(c.Listeners) != 1 || c.Listeners[0].RBAC != nil {
				t.Errorf("%+v", c.Listeners)
			}
		}},
		{"deprecated top-level port", "port: 5000\nmodules: []\n", func(t *testing.T, c *Config) {
			if len(c.Listeners) != 1 || c.Listeners[0].Port != 5000 {
				t.Errorf("%+v", c.Listeners)
			}
			if len(c.Warnings) != 1 || !strings.HasPrefix(c.Warnings[0], "test.yaml:1: port: top-level port is deprecated") {
				t.Errorf("warnings %q", c.Warnings)
			}
		}},
		{"top-level port with listeners", "port: 5000\nworkers:\n  - name: iii-worker-manager\n", func(t *testing.T, c *Config) {
			if len(c.Listeners) != 1 || c.Listeners[0].Port != 49134 || !strings.Contains(c.Warnings[0], "ignored") {
				t.Errorf("%+v %q", c.Listeners, c.Warnings)
			}
		}},
		{"unknown rbac keys ignored, null hooks", "workers:\n  - name: iii-worker-manager\n    config:\n      rbac:\n        namespaces: {a: 1}\n        auth_function_id: ~\n", func(t *testing.T, c *Config) {
			if r := c.Listeners[0].RBAC; r == nil || r.AuthFunctionID != "" || len(r.Expose) != 0 {
				t.Errorf("%+v", r)
			}
		}},
		{"null rbac is no rbac, with a warning", "workers:\n  - name: iii-worker-manager\n    config:\n      rbac:\n", func(t *testing.T, c *Config) {
			if c.Listeners[0].RBAC != nil || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "NOT gated") {
				t.Errorf("%+v %q", c.Listeners[0], c.Warnings)
			}
		}},
		{"short names and defaults", "workers:\n  - name: stream\n  - name: state\n  - name: exec\n    config: {exec: [\"true\", make]}\n", func(t *testing.T, c *Config) {
			if *c.Stream != (Stream{Host: "0.0.0.0", Port: 3112, StoreMethod: StoreInMemory}) {
				t.Errorf("stream %+v", c.Stream)
			}
			if *c.State != (State{StoreMethod: StoreInMemory, TriggersEnabled: true}) {
				t.Errorf("state %+v", c.State)
			}
			if !reflect.DeepEqual(c.Exec.Commands, []string{"true", "make"}) {
				t.Errorf("exec %+v", c.Exec)
			}
		}},
		{"unquoted true is still a command line", "workers:\n  - name: exec\n    config:\n      exec:\n        - true\n", func(t *testing.T, c *Config) {
			if !reflect.DeepEqual(c.Exec.Commands, []string{"true"}) {
				t.Errorf("exec %+v", c.Exec)
			}
		}},
		{"duplicate listeners and ignored workers", "workers:\n  - name: iii-worker-manager\n  - name: iii-worker-manager\n    config: {port: 3111}\n  - name: iii-observability\n  - name: iii-observability\n  - name: configuration\n", func(t *testing.T, c *Config) {
			if len(c.Listeners) != 2 || c.Listeners[1].Port != 3111 {
				t.Errorf("%+v", c.Listeners)
			}
			if !reflect.DeepEqual(c.Ignored, []string{"iii-observability", "iii-observability", "configuration"}) || len(c.Warnings) != 3 {
				t.Errorf("%q %q", c.Ignored, c.Warnings)
			}
		}},
		{"unknown entry key warns", "workers:\n  - name: iii-worker-manager\n    labels: {a: b}\n", func(t *testing.T, c *Config) {
			if len(c.Warnings) != 1 || !strings.HasPrefix(c.Warnings[0], "test.yaml:3: workers[0].labels: unknown entry key ignored") {
				t.Errorf("%q", c.Warnings)
			}
		}},
		{"adapter without config is in_memory", "workers:\n  - name: iii-stream\n    config: {adapter: {name: kv}}\n", func(t *testing.T, c *Config) {
			if c.Stream.StoreMethod != StoreInMemory || c.Stream.FilePath != "" {
				t.Errorf("%+v", c.Stream)
			}
		}},
		{"merge key", "workers:\n  - name: iii-worker-manager\n    config: &base {port: 1, host: 127.0.0.1}\n  - name: iii-worker-manager\n    config:\n      <<: *base\n      port: 2\n", func(t *testing.T, c *Config) {
			if l := c.Listeners[1]; l.Port != 2 || l.Host != "127.0.0.1" {
				t.Errorf("%+v", l)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, mustParse(t, tt.in))
		})
	}
}

// A YAML syntax error is reported at the line (and column) of the mistake,
// not where yaml.v3 says the enclosing construct began.
func TestYAMLSyntaxErrors(t *testing.T) {
	tests := []struct {
		name, in  string
		line, col int
		want      string
	}{
		{"tab before a sequence", "workers:\n\t- name: x\n", 2, 1, "found character that cannot start any token"},
		{"tab in indentation", "workers:\n  - name: a\n\t  config: {}\n", 3, 1, "found a tab character that violates indentation"},
		{"unclosed flow sequence", "workers:\n  - name: x\n    config:\n      port: 1\n      host: [unclosed\n  - name: y\n", 5, 7, "did not find expected ',' or ']'"},
		{"bad indentation", "workers:\n  - name: x\n    config:\n      port: 1\n     bad: 2\n", 5, 6, "did not find expected key"},
		{"unterminated string", "a: 1\nb: 2\nc: \"open\nd: 4\n", 3, 1, "found unexpected end of stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tt.in))
			var ce *Error
			if !errors.As(err, &ce) || ce.Line != tt.line || ce.Col != tt.col || ce.Msg != tt.want {
				t.Fatalf("got %v, want test.yaml:%d:%d: %s", err, tt.line, tt.col, tt.want)
			}
		})
	}
}
