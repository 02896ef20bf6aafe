// Package config loads the engine's configuration file.
//
// Two styles are accepted and normalised into one Config: the current one
// (`workers: - name: iii-worker-manager`) and the older one the todo seed
// uses (`modules: - class: modules::worker::WorkerModule`). `${VAR}` and
// `${VAR:default}` are expanded in the raw text first. Every problem is
// reported as an *Error naming the file, the line and the key.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// Defaults used when the file does not say otherwise (docs/config.md#defaults).
const (
	DefaultHost             = "0.0.0.0"
	DefaultListenerPort     = 49134
	DefaultStreamPort       = 3112
	DefaultHandshakeTimeout = 10 * time.Second
)

// Upper bounds of settings whose larger values would be unsafe: deeper JSON
// risks the decoder's stack, and trigger chain depth is carried in one byte.
const (
	MaxJSONDepthLimit    = 10000
	MaxTriggerDepthLimit = 255
)

// Store methods of the kv adapter.
const (
	StoreFileBased = "file_based"
	StoreInMemory  = "in_memory"
)

// Config is one loaded configuration, normalised from either file style.
type Config struct {
	// Path is the file the config came from; "" for the embedded default.
	Path string
	// Listeners holds every iii-worker-manager (WorkerModule) entry in file
	// order; the first is the primary one. When the file declares none it
	// holds one trusted listener on 0.0.0.0:49134 (or the deprecated
	// top-level `port:`).
	Listeners []Listener
	// Stream is the stream module, nil when the file does not list it.
	Stream *Stream
	// State is the state module, nil when the file does not list it.
	State *State
	// Exec is the exec module, nil when the file does not list it.
	Exec *Exec
	// Queue is the queue module (iii-queue), nil when the file does not
	// list it.
	Queue *Queue
	// HTTP is the HTTP trigger module (iii-http), nil when not listed.
	HTTP *HTTP
	// PubSub is the pubsub module (iii-pubsub), nil when not listed.
	PubSub *PubSub
	// Cron is the cron module (iii-cron), nil when not listed.
	Cron *Cron
	// HTTPFunctions lets workers register functions implemented by HTTP
	// endpoints (iii-http-functions), nil when not listed.
	HTTPFunctions *HTTPFunctions
	// Engine holds this engine's own settings (top-level `engine:` key).
	Engine Engine
	// Ignored names, in file order, the listed workers this engine knows
	// but does not implement (iii-http, iii-cron, …); they are skipped.
	Ignored []string
	// Warnings are messages ("file:line: key: text") the caller should log:
	// ignored workers, deprecated keys, ignored entry keys.
	Warnings []string
}

// Listener is one worker-manager WebSocket server.
type Listener struct {
	// Host is the address to bind (default 0.0.0.0).
	Host string
	// Port is the TCP port (default 49134; 0 lets the OS choose).
	Port int
	// HandshakeTimeout bounds the HTTP upgrade request (default 10 s).
	HandshakeTimeout time.Duration
	// MiddlewareFunctionID, when set, receives every allowed invocation
	// from this listener's sessions instead of the target.
	MiddlewareFunctionID string
	// AllowedOrigins lists the browser origins (e.g. http://localhost:5173,
	// or "*") whose WebSocket upgrades this listener accepts. Upgrades
	// without an Origin header (worker processes) are always accepted. When
	// empty, a trusted listener refuses every upgrade that carries an Origin
	// and an RBAC listener accepts any.
	AllowedOrigins []string
	// RBAC gates the listener; nil means trusted (everything allowed).
	RBAC *RBAC
}

// RBAC is a listener's `rbac` block. Unknown keys in it are ignored.
type RBAC struct {
	// AuthFunctionID is called for every new connection; "" = no auth step.
	AuthFunctionID string
	// Expose lists the rules of expose_functions, OR-ed.
	Expose []ExposeRule
	// OnFunctionRegistration is the function registration hook, or "".
	OnFunctionRegistration string
	// OnTriggerRegistration is the trigger registration hook, or "".
	OnTriggerRegistration string
	// OnTriggerTypeRegistration is the trigger type registration hook, or "".
	OnTriggerTypeRegistration string
}

// ExposeRule is one expose_functions item: exactly one of Glob (from
// `match("…")`) and Metadata (from a `metadata:` map) is set.
type ExposeRule struct {
	// Glob matches the function id (see MatchGlob) when Metadata is nil.
	Glob string
	// Metadata, when non-nil, must match every listed top-level key of the
	// function's registered metadata.
	Metadata map[string]MetaMatch
}

// MetaMatch is the condition on one metadata key.
type MetaMatch struct {
	// Glob is the pattern when IsGlob; it only ever matches string values.
	Glob string
	// IsGlob says the YAML value was `match("…")`.
	IsGlob bool
	// Value is the exact JSON value otherwise (nil, bool, string, int64,
	// uint64, float64, []any, map[string]any), compared as JSON: true ≠
	// "true", and integer 1 ≠ float 1.0 as upstream.
	Value any
}

// Stream is the stream module (iii-stream) and its WebSocket port.
type Stream struct {
	// Host is the address of the stream port (default 0.0.0.0).
	Host string
	// Port is the stream WebSocket port (default 3112).
	Port int
	// AuthFunction authenticates stream port connections; "" = none.
	AuthFunction string
	// StoreMethod is StoreFileBased or StoreInMemory (upstream default
	// in_memory when the adapter does not say).
	StoreMethod string
	// FilePath is the adapter's file_path (a directory); "" if not given.
	FilePath string
}

// State is the state module (iii-state).
type State struct {
	// StoreMethod is StoreFileBased or StoreInMemory (default in_memory).
	StoreMethod string
	// FilePath is the adapter's file_path; "" if not given.
	FilePath string
	// TriggersEnabled says whether state triggers fire (default true).
	TriggersEnabled bool
	// MaxValueBytes caps one stored value; 0 means no limit.
	MaxValueBytes int
}

// Exec is the exec module (iii-exec).
type Exec struct {
	// Commands are the shell command lines, run in order.
	Commands []string
	// Watch are glob patterns whose matching files restart the pipeline.
	Watch []string
}

// HTTP is the iii-http module: an HTTP server whose routes are `http`
// triggers.
type HTTP struct {
	// Host and Port are where it listens (default 0.0.0.0:3111).
	Host string
	Port int
	// DefaultTimeout bounds a request and each middleware call (30 s).
	DefaultTimeout time.Duration
	// ConcurrencyLimit bounds requests being handled; more wait (1024).
	ConcurrencyLimit int
	// CORS restricts browsers; nil allows any origin and method.
	CORS *CORS
	// Middleware runs before every route's handler, by ascending priority.
	Middleware []HTTPMiddleware
}

// CORS is iii-http's cors block; an empty list (or "*") allows any.
type CORS struct {
	AllowedOrigins []string
	AllowedMethods []string
}

// HTTPMiddleware is one global middleware function.
type HTTPMiddleware struct {
	FunctionID string
	Phase      string // only "preHandler" runs
	Priority   int
}

// DefaultHTTP is iii-http with every setting at its default.
func DefaultHTTP() *HTTP {
	return &HTTP{Host: DefaultHost, Port: 3111, DefaultTimeout: 30 * time.Second, ConcurrencyLimit: 1024}
}

// PubSub is the iii-pubsub module (local adapter).
type PubSub struct{}

// HTTPFunctions is iii-http-functions' security block.
type HTTPFunctions struct {
	// URLAllowlist are globs on the host; empty allows any.
	URLAllowlist []string
	// BlockPrivateIPs refuses hosts that are or resolve to private,
	// loopback or link-local addresses (default true).
	BlockPrivateIPs bool
	// RequireHTTPS refuses http:// URLs (default true).
	RequireHTTPS bool
}

// Cron is the iii-cron module (its kv adapter's locks are process-local,
// so it has no settings here).
type Cron struct{}

// Queue is the queue module (iii-queue): named queues whose every job
// change is a record in the engine's log.
type Queue struct {
	// Queues are the named queues by name; "default" always exists.
	Queues map[string]QueueConfig
	// StoreMethod is StoreFileBased or StoreInMemory (default in_memory).
	StoreMethod string
	// FilePath is the adapter's file_path; "" if not given.
	FilePath string
}

// Queue types.
const (
	QueueStandard = "standard"
	QueueFIFO     = "fifo"
)

// QueueConfig is one named queue's settings.
type QueueConfig struct {
	// MaxRetries is the number of delivery attempts in all (0 acts as 1)
	// before a job moves to the dead-letter queue (default 3).
	MaxRetries int
	// Concurrency bounds deliveries in flight (default 10; one per message
	// group for fifo).
	Concurrency int
	// Type is QueueStandard or QueueFIFO.
	Type string
	// MessageGroupField names the payload field whose value groups FIFO
	// messages; required for fifo.
	MessageGroupField string
	// BackoffMS is the base of the exponential retry delay:
	// BackoffMS × 2^(attempt−1) (default 1000).
	BackoffMS int
	// PollIntervalMS is how often the queue looks for due retries when
	// nothing else wakes it (default 100).
	PollIntervalMS int
}

// DefaultQueueConfig is a queue with every setting at its default.
func DefaultQueueConfig() QueueConfig {
	return QueueConfig{MaxRetries: 3, Concurrency: 10, Type: QueueStandard, BackoffMS: 1000, PollIntervalMS: 100}
}

// Engine holds this engine's own settings, read from the top-level
// `engine:` key. Keys (all optional): sync (always|interval|never),
// sync_interval_ms, call_timeout_ms, max_message_bytes, send_queue_frames,
// send_queue_bytes, ping_after_ms, idle_timeout_ms, write_deadline_ms, snapshot_every,
// retain_bytes, retain_age (a Go duration such as "168h"), and the limits
// max_json_depth, max_trigger_depth, channel_buffer_bytes,
// channels_per_session, registrations_per_session, max_id_bytes,
// max_metadata_bytes, max_connections, max_pending_calls, auth_timeout_ms.
type Engine struct {
	// Sync is the durability policy: "always" (default), "interval", "never".
	Sync string
	// SyncIntervalMS is the fsync period for "interval" (default 100).
	SyncIntervalMS int
	// CallTimeout bounds engine-originated calls (default 30 s).
	CallTimeout time.Duration
	// MaxMessageBytes is the inbound frame limit (default 16 MiB).
	MaxMessageBytes int
	// SendQueueFrames caps one connection's send queue (default 65536).
	SendQueueFrames int
	// SendQueueBytes caps one connection's send queue (default 64 MiB).
	SendQueueBytes int
	// PingAfter is the idle time before the engine pings (default 20 s).
	PingAfter time.Duration
	// IdleTimeout closes a silent connection (default 60 s).
	IdleTimeout time.Duration
	// WriteDeadline disconnects a peer whose socket accepts no bytes for
	// this long: a slow consumer (default 10 s).
	WriteDeadline time.Duration
	// SnapshotEvery is records between snapshots; 0 = the log's default.
	SnapshotEvery uint64
	// RetainBytes is history kept for replay; 0 = the log's default.
	RetainBytes int64
	// RetainAge is history kept for replay; 0 = the log's default.
	RetainAge time.Duration

	// MaxJSONDepth bounds the nesting of any value in an inbound frame
	// (default 128, as upstream's serde_json).
	MaxJSONDepth int
	// MaxTriggerDepth bounds chains of triggers firing triggers (a write
	// made by a trigger's handler firing the next); default 8.
	MaxTriggerDepth int
	// ChannelBufferBytes bounds the bytes one data channel holds for its
	// reader; a writer beyond it is not read until the reader catches up
	// (default 4 MiB).
	ChannelBufferBytes int
	// ChannelsPerSession bounds the open data channels one untrusted
	// session may create (default 16).
	ChannelsPerSession int
	// RegistrationsPerSession bounds the functions, triggers and trigger
	// types one untrusted session may hold (default 256).
	RegistrationsPerSession int
	// MaxIDBytes bounds function, trigger and trigger type ids from
	// untrusted sessions (default 256).
	MaxIDBytes int
	// MaxMetadataBytes bounds registration metadata, trigger configs and
	// worker metadata from untrusted sessions (default 64 KiB).
	MaxMetadataBytes int
	// MaxConnections bounds the open connections of each listener
	// (default 10000); more are answered 503.
	MaxConnections int
	// MaxPendingCalls bounds the calls one connection may have waiting for
	// a result (default 10000).
	MaxPendingCalls int
	// AuthTimeout bounds an RBAC listener's auth function call (default 5 s).
	AuthTimeout time.Duration

	// Cluster, when set, puts the log on a NATS JetStream stream shared
	// with other engines instead of the local write-ahead log.
	Cluster *Cluster
}

// Cluster is the engine.cluster block: several engines folding one log on
// NATS JetStream (docs/config.md#cluster).
type Cluster struct {
	// NATSURL lists one or more servers, comma-separated.
	NATSURL string
	// Node is this engine's name in the cluster, unique among the engines
	// sharing the stream (letters, digits, '-' and '_').
	Node string
	// Stream is the JetStream stream name (default iii).
	Stream string
	// Replicas is the stream's replica count when this engine creates it
	// (default 1; 3 in production).
	Replicas int
	// Creds is an optional NATS credentials file.
	Creds string
	// NodeTimeout is how long a node may stay silent before the others
	// declare it lost (default 5 s; heartbeats go out every second).
	NodeTimeout time.Duration
}

// Cluster defaults.
const (
	DefaultClusterStream      = "iii"
	DefaultClusterNodeTimeout = 5 * time.Second
)

// Error is a configuration problem located in the file.
type Error struct {
	File string // the name given to Parse (the path for Load)
	Line int    // 1-based; 0 when the parser gave none
	Col  int    // 1-based column of a YAML syntax error; 0 otherwise
	Key  string // e.g. workers[1].config.rbac.expose_functions[0]; may be ""
	Msg  string
}

// Error formats as "file:line: key: message" ("file:line:col: message" for
// a YAML syntax error).
func (e *Error) Error() string {
	s := e.File
	if e.Line > 0 {
		s = fmt.Sprintf("%s:%d", s, e.Line)
		if e.Col > 0 {
			s = fmt.Sprintf("%s:%d", s, e.Col)
		}
	}
	if e.Key != "" {
		s += ": " + e.Key
	}
	return s + ": " + e.Msg
}

// WithDefaults returns e with every zero setting replaced by its default,
// for configs built in code rather than loaded.
func (e Engine) WithDefaults() Engine {
	d := defaultEngine()
	for _, f := range []struct{ v, def *int }{
		{&e.SyncIntervalMS, &d.SyncIntervalMS}, {&e.MaxMessageBytes, &d.MaxMessageBytes},
		{&e.SendQueueFrames, &d.SendQueueFrames}, {&e.SendQueueBytes, &d.SendQueueBytes},
		{&e.MaxJSONDepth, &d.MaxJSONDepth}, {&e.MaxTriggerDepth, &d.MaxTriggerDepth},
		{&e.ChannelBufferBytes, &d.ChannelBufferBytes}, {&e.ChannelsPerSession, &d.ChannelsPerSession},
		{&e.RegistrationsPerSession, &d.RegistrationsPerSession}, {&e.MaxIDBytes, &d.MaxIDBytes},
		{&e.MaxMetadataBytes, &d.MaxMetadataBytes}, {&e.MaxConnections, &d.MaxConnections},
		{&e.MaxPendingCalls, &d.MaxPendingCalls},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if e.Sync == "" {
		e.Sync = d.Sync
	}
	for _, f := range []struct{ v, def *time.Duration }{
		{&e.CallTimeout, &d.CallTimeout}, {&e.PingAfter, &d.PingAfter}, {&e.IdleTimeout, &d.IdleTimeout},
		{&e.WriteDeadline, &d.WriteDeadline}, {&e.AuthTimeout, &d.AuthTimeout},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	return e
}

// defaultEngine returns the default engine settings
// (docs/config.md#engine-settings).
func defaultEngine() Engine {
	return Engine{
		Sync:            "always",
		SyncIntervalMS:  100,
		CallTimeout:     30 * time.Second,
		MaxMessageBytes: 16 << 20,
		SendQueueFrames: 65536,
		SendQueueBytes:  64 << 20,
		PingAfter:       20 * time.Second,
		IdleTimeout:     60 * time.Second,
		WriteDeadline:   10 * time.Second,

		MaxJSONDepth:            128,
		MaxTriggerDepth:         8,
		ChannelBufferBytes:      4 << 20,
		ChannelsPerSession:      16,
		RegistrationsPerSession: 256,
		MaxIDBytes:              256,
		MaxMetadataBytes:        64 << 10,
		MaxConnections:          10000,
		MaxPendingCalls:         10000,
		AuthTimeout:             5 * time.Second,
	}
}

// defaultListener is the trusted listener every engine has when the file
// declares none.
func defaultListener(port int) Listener {
	return Listener{Host: DefaultHost, Port: port, HandshakeTimeout: DefaultHandshakeTimeout}
}

// Default returns the embedded configuration, used when no --config is
// given and there is no ./config.yaml (no file is written): a trusted
// listener on 0.0.0.0:49134, the stream module on 0.0.0.0:3112 and the state
// module, both file based with no file_path (the engine keeps their data
// under its data directory). See docs/config.md#embedded-default.
func Default() *Config {
	return &Config{
		Listeners: []Listener{defaultListener(DefaultListenerPort)},
		Stream:    &Stream{Host: DefaultHost, Port: DefaultStreamPort, StoreMethod: StoreFileBased},
		State:     &State{StoreMethod: StoreFileBased, TriggersEnabled: true},
		Engine:    defaultEngine(),
	}
}

// Load reads the config file at path. With path "" it loads ./config.yaml
// when that exists and otherwise returns Default(); an explicit path that
// does not exist is an error.
func Load(path string) (*Config, error) {
	explicit := path != ""
	if !explicit {
		path = "config.yaml"
	}
	text, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return Default(), nil
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, text)
}

// Parse parses config text; name is used as Config.Path and in errors.
func Parse(name string, text []byte) (*Config, error) {
	text, err := expandEnv(name, text)
	if err != nil {
		return nil, err
	}
	d := &decoder{file: name}
	cfg, err := d.document(text)
	if err != nil {
		return nil, err
	}
	cfg.Path = name
	cfg.Warnings = d.warnings
	return cfg, nil
}
