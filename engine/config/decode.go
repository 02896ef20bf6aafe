package config

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder walks the yaml.Node tree so every error can carry a line number.
type decoder struct {
	file     string
	warnings []string
}

func (d *decoder) fail(n *yaml.Node, key, format string, args ...any) error {
	return &Error{File: d.file, Line: n.Line, Key: key, Msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) warn(n *yaml.Node, key, format string, args ...any) {
	d.warnings = append(d.warnings, d.fail(n, key, format, args...).Error())
}

// yamlLine pulls the line out of yaml.v3's syntax errors ("yaml: line 3: …").
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document decodes the whole file.
func (d *decoder) document(text []byte) (*Config, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(text))
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return nil, d.syntaxError(text, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, d.fail(&extra, "", "only one YAML document is allowed (remove the second ---)")
	case err != io.EOF:
		return nil, d.syntaxError(text, err)
	}
	cfg := &Config{Engine: defaultEngine()}
	if len(doc.Content) == 0 {
		// An empty file (or only comments) declares nothing.
		cfg.Listeners = []Listener{defaultListener(DefaultListenerPort)}
		return cfg, nil
	}
	root := deref(doc.Content[0])
	top, err := d.mapping(root, "(top level)", "workers", "modules", "port", "engine")
	if err != nil {
		return nil, err
	}
	if n := top["engine"]; n != nil {
		if cfg.Engine, err = d.engine(n, "engine"); err != nil {
			return nil, err
		}
	}
	b := &builder{d: d, cfg: cfg, seen: map[string]seenEntry{}}
	// Declaration order is workers first, then modules, whatever the order
	// of the two keys in the file.
	for _, list := range []string{"workers", "modules"} {
		if top[list] == nil {
			continue
		}
		items, err := d.list(top[list], list)
		if err != nil {
			return nil, err
		}
		for i, item := range items {
			if err := b.entry(item, fmt.Sprintf("%s[%d]", list, i)); err != nil {
				return nil, err
			}
		}
	}
	port := DefaultListenerPort
	if n := top["port"]; n != nil {
		if port, err = d.integer(n, "port", 1, 65535); err != nil {
			return nil, err
		}
		if len(cfg.Listeners) > 0 {
			d.warn(n, "port", "top-level port is deprecated and ignored because the file declares iii-worker-manager listeners")
		} else {
			d.warn(n, "port", "top-level port is deprecated; declare an iii-worker-manager entry with config.port instead")
		}
	}
	if len(cfg.Listeners) == 0 {
		cfg.Listeners = []Listener{defaultListener(port)}
	}
	return cfg, nil
}

// syntaxError turns a yaml.v3 parse error into an *Error located at the
// mistake. yaml.v3 reports the line where the enclosing construct started,
// counted from 0 or 1 depending on the error, so the line is found again:
// the first line whose prefix of the file already fails with the same
// message is where the mistake is. The column is that of a tab on it when
// the mistake is a tab, else of its first non-blank character.
func (d *decoder) syntaxError(text []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		msg = m[2]
	}
	e := &Error{File: d.file, Msg: msg}
	lines := bytes.SplitAfter(text, []byte("\n"))
	for k := 1; k <= len(lines); k++ {
		if prefixFails(bytes.Join(lines[:k], nil), msg) {
			line := string(lines[k-1])
			col := strings.IndexFunc(line, func(r rune) bool { return r != ' ' })
			if strings.Contains(msg, "tab") {
				col = strings.IndexByte(line, '\t')
			}
			e.Line, e.Col = k, max(col, 0)+1
			return e
		}
	}
	return e
}

// prefixFails reports whether text fails to parse with the message msg.
func prefixFails(text []byte, msg string) bool {
	dec := yaml.NewDecoder(bytes.NewReader(text))
	// A document takes at least one byte: the bound only guards against a
	// decoder that stops advancing.
	for range len(text) + 1 {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			return err != io.EOF && strings.HasSuffix(err.Error(), msg)
		}
	}
	return false
}

// Canonical worker names.
const (
	workerManager = "iii-worker-manager"
	workerStream  = "iii-stream"
	workerState   = "iii-state"
	workerExec    = "iii-exec"
	workerQueue   = "iii-queue"
	workerHTTP    = "iii-http"
	workerPubSub  = "iii-pubsub"
	workerCron    = "iii-cron"
	workerHTTPFns = "iii-http-functions"
)

// workerNames maps every accepted `name:` to its canonical worker name.
// Short names (stream, http, …) are [Go] aliases of the built-ins.
var workerNames = map[string]string{
	workerManager:          workerManager,
	"iii-engine-functions": "iii-engine-functions",
	workerStream:           workerStream,
	"stream":               workerStream,
	workerState:            workerState,
	"state":                workerState,
	workerExec:             workerExec,
	"exec":                 workerExec,
	workerHTTP:             workerHTTP,
	"http":                 workerHTTP,
	workerPubSub:           workerPubSub,
	"pubsub":               workerPubSub,
	workerCron:             workerCron,
	"cron":                 workerCron,
	workerQueue:            workerQueue,
	"queue":                workerQueue,
	"iii-observability":    "iii-observability",
	workerHTTPFns:          workerHTTPFns,
	"iii-bridge":           "iii-bridge",
	"iii-telemetry":        "iii-telemetry",
	"configuration":        "configuration",
}

// workerClasses maps the old style's `class:` to canonical worker names.
var workerClasses = map[string]string{
	"modules::worker::WorkerModule":                workerManager,
	"modules::engine_fn::EngineFunctionsModule":    "iii-engine-functions",
	"modules::stream::StreamModule":                workerStream,
	"modules::state::StateModule":                  workerState,
	"modules::shell::ExecModule":                   workerExec,
	"modules::api::RestApiModule":                  workerHTTP,
	"modules::rest_api::RestApiModule":             workerHTTP,
	"modules::pubsub::PubSubModule":                workerPubSub,
	"modules::cron::CronModule":                    workerCron,
	"modules::queue::QueueModule":                  workerQueue,
	"modules::observability::OtelModule":           "iii-observability",
	"modules::http_functions::HttpFunctionsModule": workerHTTPFns,
	"modules::bridge_client::BridgeClientModule":   "iii-bridge",
	"modules::telemetry::TelemetryModule":          "iii-telemetry",
}

// builder accumulates entries into the Config.
type builder struct {
	d    *decoder
	cfg  *Config
	seen map[string]seenEntry // canonical name → first entry
}

// seenEntry remembers how a worker was first spelled, to reject a built-in
// listed together with its short alias (as upstream does) and duplicates of
// modules we run once.
type seenEntry struct {
	spelling string
	line     int
}

// entry decodes one item of `workers` or `modules`.
func (b *builder) entry(n *yaml.Node, key string) error {
	d := b.d
	if n.Kind != yaml.MappingNode {
		return d.fail(n, key, "expected a map with name: or class:, got %s", describe(n))
	}
	m, err := d.mapping(n, key)
	if err != nil {
		return err
	}
	for _, k := range sortedKeys(m) {
		if k != "name" && k != "class" && k != "config" && k != "image" {
			d.warn(m[k], key+"."+k, "unknown entry key ignored (expected name, class, config)")
		}
	}
	nameN, classN := m["name"], m["class"]
	var canon, spelling string
	switch {
	case nameN != nil && classN != nil:
		return d.fail(classN, key, "has both name: and class:; use one")
	case nameN != nil:
		if spelling, err = d.str(nameN, key+".name"); err != nil {
			return err
		}
		if canon = workerNames[spelling]; canon == "" {
			return d.fail(nameN, key+".name", "unknown worker %q (external workers are not supported; built-ins: %s)", spelling, strings.Join(sortedKeys(workerNames), ", "))
		}
	case classN != nil:
		if spelling, err = d.str(classN, key+".class"); err != nil {
			return err
		}
		if canon = workerClasses[spelling]; canon == "" {
			return d.fail(classN, key+".class", "unknown module class %q", spelling)
		}
		spelling = canon
	default:
		return d.fail(n, key, "needs name: (or the old style's class:)")
	}
	if img := m["image"]; img != nil {
		return d.fail(img, key+".image", "image is only for external workers; %s is built in", canon)
	}
	if prev, ok := b.seen[canon]; ok {
		short := func(s string) bool { return s != canon }
		if short(prev.spelling) != short(spelling) {
			return d.fail(n, key, "%s and %s (line %d) name the same worker; list it once", spelling, prev.spelling, prev.line)
		}
		if canon == workerStream || canon == workerState || canon == workerExec || canon == workerQueue || canon == workerHTTP || canon == workerPubSub || canon == workerCron || canon == workerHTTPFns {
			return d.fail(n, key, "%s is listed twice (first at line %d); only one is supported", canon, prev.line)
		}
	} else {
		b.seen[canon] = seenEntry{spelling: spelling, line: n.Line}
	}

	conf := m["config"]
	if conf == nil {
		conf = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line}
	}
	ckey := key + ".config"
	switch canon {
	case workerManager:
		l, err := d.listener(conf, ckey)
		if err != nil {
			return err
		}
		b.cfg.Listeners = append(b.cfg.Listeners, l)
	case workerStream:
		b.cfg.Stream, err = d.stream(conf, ckey)
	case workerState:
		b.cfg.State, err = d.state(conf, ckey)
	case workerExec:
		b.cfg.Exec, err = d.exec(conf, ckey)
	case workerQueue:
		b.cfg.Queue, err = d.queue(conf, ckey)
	case workerHTTP:
		b.cfg.HTTP, err = d.http(conf, ckey)
	case workerPubSub:
		b.cfg.PubSub, err = d.pubsub(conf, ckey)
	case workerCron:
		b.cfg.Cron, err = d.cron(conf, ckey)
	case workerHTTPFns:
		b.cfg.HTTPFunctions, err = d.httpFunctions(conf, ckey)
	default:
		b.cfg.Ignored = append(b.cfg.Ignored, canon)
		d.warn(n, key, "%s is not implemented by this engine; entry ignored", canon)
	}
	return err
}

// listener decodes an iii-worker-manager config block (strict).
func (d *decoder) listener(n *yaml.Node, key string) (Listener, error) {
	l := defaultListener(DefaultListenerPort)
	m, err := d.mapping(n, key, "port", "host", "middleware_function_id", "rbac", "handshake_timeout_ms", "allowed_origins")
	if err != nil {
		return l, err
	}
	if v := m["port"]; v != nil {
		if l.Port, err = d.integer(v, key+".port", 0, 65535); err != nil {
			return l, err
		}
	}
	if v := m["host"]; v != nil {
		if l.Host, err = d.str(v, key+".host"); err != nil {
			return l, err
		}
	}
	if v := m["middleware_function_id"]; v != nil && !isNull(v) {
		if l.MiddlewareFunctionID, err = d.str(v, key+".middleware_function_id"); err != nil {
			return l, err
		}
	}
	if v := m["allowed_origins"]; v != nil && !isNull(v) {
		if l.AllowedOrigins, err = d.lines(v, key+".allowed_origins"); err != nil {
			return l, err
		}
	}
	if v := m["handshake_timeout_ms"]; v != nil {
		ms, err := d.integer(v, key+".handshake_timeout_ms", 1, 1<<31-1)
		if err != nil {
			return l, err
		}
		l.HandshakeTimeout = time.Duration(ms) * time.Millisecond
	}
	if v := m["rbac"]; v != nil {
		if isNull(v) {
			// Upstream reads `rbac:` with no value as no rbac at all.
			d.warn(v, key+".rbac", "rbac is empty, so this listener is NOT gated (trusted)")
		} else if l.RBAC, err = d.rbac(v, key+".rbac"); err != nil {
			return l, err
		}
	}
	return l, nil
}

// rbac decodes a listener's rbac block; unknown keys are ignored as upstream.
func (d *decoder) rbac(n *yaml.Node, key string) (*RBAC, error) {
	m, err := d.mapping(n, key)
	if err != nil {
		return nil, err
	}
	r := &RBAC{}
	for _, f := range []struct {
		k   string
		dst *string
	}{
		{"auth_function_id", &r.AuthFunctionID},
		{"on_function_registration_function_id", &r.OnFunctionRegistration},
		{"on_trigger_registration_function_id", &r.OnTriggerRegistration},
		{"on_trigger_type_registration_function_id", &r.OnTriggerTypeRegistration},
	} {
		if v := m[f.k]; v != nil && !isNull(v) {
			if *f.dst, err = d.str(v, key+"."+f.k); err != nil {
				return nil, err
			}
		}
	}
	if v := m["expose_functions"]; v != nil {
		items, err := d.list(v, key+".expose_functions")
		if err != nil {
			return nil, err
		}
		for i, item := range items {
			rule, err := d.exposeRule(item, fmt.Sprintf("%s.expose_functions[%d]", key, i))
			if err != nil {
				return nil, err
			}
			r.Expose = append(r.Expose, rule)
		}
	}
	return r, nil
}

// exposeRule decodes `match("…")` or a map with a non-empty `metadata` map
// (other keys of that map are ignored, as upstream).
func (d *decoder) exposeRule(n *yaml.Node, key string) (ExposeRule, error) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		if g, ok := parseMatch(n.Value); ok {
			return ExposeRule{Glob: g}, nil
		}
	}
	if n.Kind != yaml.MappingNode {
		return ExposeRule{}, d.fail(n, key, `expected match("glob") or a metadata map, got %s`, describe(n))
	}
	m, err := d.mapping(n, key)
	if err != nil {
		return ExposeRule{}, err
	}
	meta := m["metadata"]
	if meta == nil || meta.Kind != yaml.MappingNode || len(meta.Content) == 0 {
		at := n
		if meta != nil {
			at = meta
		}
		return ExposeRule{}, d.fail(at, key+".metadata", "a map item needs a non-empty metadata map")
	}
	fields, err := d.mapping(meta, key+".metadata")
	if err != nil {
		return ExposeRule{}, err
	}
	rule := ExposeRule{Metadata: make(map[string]MetaMatch, len(fields))}
	for _, k := range sortedKeys(fields) {
		v := fields[k]
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" {
			if g, ok := parseMatch(v.Value); ok {
				rule.Metadata[k] = MetaMatch{Glob: g, IsGlob: true}
				continue
			}
		}
		val, err := d.jsonValue(v, key+".metadata."+k)
		if err != nil {
			return ExposeRule{}, err
		}
		rule.Metadata[k] = MetaMatch{Value: val}
	}
	return rule, nil
}

// stream decodes an iii-stream config block (strict).
func (d *decoder) stream(n *yaml.Node, key string) (*Stream, error) {
	s := &Stream{Host: DefaultHost, Port: DefaultStreamPort, StoreMethod: StoreInMemory}
	m, err := d.mapping(n, key, "port", "host", "auth_function", "adapter")
	if err != nil {
		return nil, err
	}
	if v := m["port"]; v != nil {
		if s.Port, err = d.integer(v, key+".port", 0, 65535); err != nil {
			return nil, err
		}
	}
	if v := m["host"]; v != nil {
		if s.Host, err = d.str(v, key+".host"); err != nil {
			return nil, err
		}
	}
	if v := m["auth_function"]; v != nil && !isNull(v) {
		if s.AuthFunction, err = d.str(v, key+".auth_function"); err != nil {
			return nil, err
		}
	}
	if v := m["adapter"]; v != nil {
		if s.StoreMethod, s.FilePath, err = d.kvAdapter(v, key+".adapter", "stream"); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// state decodes an iii-state config block (strict).
func (d *decoder) state(n *yaml.Node, key string) (*State, error) {
	s := &State{StoreMethod: StoreInMemory, TriggersEnabled: true}
	m, err := d.mapping(n, key, "adapter", "triggers_enabled", "max_value_bytes", "save_interval_ms")
	if err != nil {
		return nil, err
	}
	if v := m["adapter"]; v != nil {
		if s.StoreMethod, s.FilePath, err = d.kvAdapter(v, key+".adapter", "state"); err != nil {
			return nil, err
		}
	}
	if v := m["triggers_enabled"]; v != nil {
		if s.TriggersEnabled, err = d.boolean(v, key+".triggers_enabled"); err != nil {
			return nil, err
		}
	}
	if v := m["max_value_bytes"]; v != nil && !isNull(v) {
		if s.MaxValueBytes, err = d.integer(v, key+".max_value_bytes", 1, maxInt); err != nil {
			return nil, err
		}
	}
	if v := m["save_interval_ms"]; v != nil {
		// Accepted for upstream compatibility; the log decides persistence.
		if _, err = d.integer(v, key+".save_interval_ms", 0, maxInt); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// kvAdapter decodes `adapter: {name|class, config}` for the stream or state
// module. Only the kv adapter exists here; redis and bridge are refused.
func (d *decoder) kvAdapter(n *yaml.Node, key, module string) (method, path string, err error) {
	method = StoreInMemory
	m, err := d.mapping(n, key, "name", "class", "config")
	if err != nil {
		return "", "", err
	}
	var name string
	switch nameN, classN := m["name"], m["class"]; {
	case nameN != nil && classN != nil:
		return "", "", d.fail(classN, key, "has both name: and class:; use one")
	case nameN != nil:
		if name, err = d.str(nameN, key+".name"); err != nil {
			return "", "", err
		}
	case classN != nil:
		class, err := d.str(classN, key+".class")
		if err != nil {
			return "", "", err
		}
		prefix := "modules::" + module + "::adapters::"
		switch class {
		case prefix + "KvStore":
			name = "kv"
		case prefix + "RedisAdapter":
			name = "redis"
		case prefix + "Bridge":
			name = "bridge"
		default:
			return "", "", d.fail(classN, key+".class", "unknown %s adapter class %q (expected %sKvStore)", module, class, prefix)
		}
	default:
		return "", "", d.fail(n, key, "needs name: kv (or the old style's class:)")
	}
	switch name {
	case "kv":
	case "redis", "bridge":
		return "", "", d.fail(n, key, "the %s adapter is not supported by this engine; use kv (store_method file_based or in_memory)", name)
	default:
		return "", "", d.fail(n, key, "unknown %s adapter %q (expected kv)", module, name)
	}
	conf := m["config"]
	if conf == nil {
		return method, "", nil
	}
	allowed := []string{"store_method", "file_path", "save_interval_ms"}
	if module == "stream" {
		allowed = append(allowed, "channel_size")
	}
	ckey := key + ".config"
	c, err := d.mapping(conf, ckey, allowed...)
	if err != nil {
		return "", "", err
	}
	if method, path, err = d.storeConfig(c, ckey); err != nil {
		return "", "", err
	}
	// Accepted for upstream compatibility; the log decides persistence and
	// buffering.
	for _, k := range []string{"save_interval_ms", "channel_size"} {
		if v := c[k]; v != nil {
			if _, err := d.integer(v, ckey+"."+k, 0, maxInt); err != nil {
				return "", "", err
			}
		}
	}
	return method, path, nil
}

// exec decodes an iii-exec config block (strict); `exec` is required.
func (d *decoder) exec(n *yaml.Node, key string) (*Exec, error) {
	if isNull(n) {
		return nil, d.fail(n, key, "iii-exec needs config.exec (a list of command lines)")
	}
	m, err := d.mapping(n, key, "exec", "watch")
	if err != nil {
		return nil, err
	}
	x := &Exec{}
	if v := m["exec"]; v != nil {
		if x.Commands, err = d.lines(v, key+".exec"); err != nil {
			return nil, err
		}
	}
	if len(x.Commands) == 0 {
		return nil, d.fail(n, key+".exec", "iii-exec needs config.exec (a list of command lines)")
	}
	if v := m["watch"]; v != nil {
		if x.Watch, err = d.lines(v, key+".watch"); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// lines decodes a list of non-empty scalars as text (a command line such as
// `true` stays the string "true").
func (d *decoder) lines(n *yaml.Node, key string) ([]string, error) {
	items, err := d.list(n, key)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		k := fmt.Sprintf("%s[%d]", key, i)
		if it.Kind != yaml.ScalarNode || isNull(it) {
			return nil, d.fail(it, k, "expected a string, got %s", describe(it))
		}
		if strings.TrimSpace(it.Value) == "" {
			return nil, d.fail(it, k, "must not be empty")
		}
		out = append(out, it.Value)
	}
	return out, nil
}

// engine decodes our own `engine:` block (strict).
func (d *decoder) engine(n *yaml.Node, key string) (Engine, error) {
	e := defaultEngine()
	m, err := d.mapping(n, key, "sync", "sync_interval_ms", "call_timeout_ms", "max_message_bytes",
		"send_queue_frames", "send_queue_bytes", "ping_after_ms", "idle_timeout_ms", "write_deadline_ms",
		"snapshot_every", "retain_bytes", "retain_age",
		"max_json_depth", "max_trigger_depth", "channel_buffer_bytes", "channels_per_session",
		"registrations_per_session", "max_id_bytes", "max_metadata_bytes", "max_connections", "max_pending_calls", "auth_timeout_ms",
		"cluster")
	if err != nil {
		return e, err
	}
	if v := m["cluster"]; v != nil {
		if e.Cluster, err = d.cluster(v, key+".cluster"); err != nil {
			return e, err
		}
	}
	if v := m["sync"]; v != nil {
		if e.Sync, err = d.str(v, key+".sync"); err != nil {
			return e, err
		}
		if e.Sync != "always" && e.Sync != "interval" && e.Sync != "never" {
			return e, d.fail(v, key+".sync", "expected always, interval or never, got %q", e.Sync)
		}
	}
	ints := []struct {
		k   string
		dst *int
		max int
	}{
		{"sync_interval_ms", &e.SyncIntervalMS, maxInt},
		{"max_message_bytes", &e.MaxMessageBytes, maxInt},
		{"send_queue_frames", &e.SendQueueFrames, maxInt},
		{"send_queue_bytes", &e.SendQueueBytes, maxInt},
		{"max_json_depth", &e.MaxJSONDepth, MaxJSONDepthLimit},
		{"max_trigger_depth", &e.MaxTriggerDepth, MaxTriggerDepthLimit},
		{"channel_buffer_bytes", &e.ChannelBufferBytes, maxInt},
		{"channels_per_session", &e.ChannelsPerSession, maxInt},
		{"registrations_per_session", &e.RegistrationsPerSession, maxInt},
		{"max_id_bytes", &e.MaxIDBytes, maxInt},
		{"max_metadata_bytes", &e.MaxMetadataBytes, maxInt},
		{"max_connections", &e.MaxConnections, maxInt},
		{"max_pending_calls", &e.MaxPendingCalls, maxInt},
	}
	for _, f := range ints {
		if v := m[f.k]; v != nil {
			if *f.dst, err = d.integer(v, key+"."+f.k, 1, f.max); err != nil {
				return e, err
			}
		}
	}
	durs := []struct {
		k   string
		dst *time.Duration
	}{
		{"call_timeout_ms", &e.CallTimeout},
		{"ping_after_ms", &e.PingAfter},
		{"idle_timeout_ms", &e.IdleTimeout},
		{"write_deadline_ms", &e.WriteDeadline},
		{"auth_timeout_ms", &e.AuthTimeout},
	}
	for _, f := range durs {
		if v := m[f.k]; v != nil {
			ms, err := d.integer(v, key+"."+f.k, 1, maxInt)
			if err != nil {
				return e, err
			}
			*f.dst = time.Duration(ms) * time.Millisecond
		}
	}
	if e.PingAfter >= e.IdleTimeout {
		return e, d.fail(n, key, "ping_after_ms (%d) must be less than idle_timeout_ms (%d)", e.PingAfter.Milliseconds(), e.IdleTimeout.Milliseconds())
	}
	if v := m["snapshot_every"]; v != nil {
		i, err := d.integer(v, key+".snapshot_every", 0, maxInt)
		if err != nil {
			return e, err
		}
		e.SnapshotEvery = uint64(i)
	}
	if v := m["retain_bytes"]; v != nil {
		i, err := d.integer(v, key+".retain_bytes", 0, maxInt)
		if err != nil {
			return e, err
		}
		e.RetainBytes = int64(i)
	}
	if v := m["retain_age"]; v != nil {
		s, err := d.str(v, key+".retain_age")
		if err == nil {
			e.RetainAge, err = time.ParseDuration(s)
		}
		if err != nil || e.RetainAge < 0 {
			return e, d.fail(v, key+".retain_age", "expected a duration such as 168h, got %s", describe(v))
		}
	}
	return e, nil
}

// cluster decodes engine.cluster (strict).
func (d *decoder) cluster(n *yaml.Node, key string) (*Cluster, error) {
	c := &Cluster{Stream: DefaultClusterStream, Replicas: 1, NodeTimeout: DefaultClusterNodeTimeout}
	m, err := d.mapping(n, key, "nats_url", "node", "stream", "replicas", "creds", "node_timeout_ms")
	if err != nil {
		return nil, err
	}
	// nats_url: one string of comma-separated URLs, or a list of them.
	if v := m["nats_url"]; v != nil && deref(v).Kind == yaml.SequenceNode {
		urls, err := d.lines(v, key+".nats_url")
		if err != nil {
			return nil, err
		}
		c.NATSURL = strings.Join(urls, ",")
		delete(m, "nats_url")
	}
	for _, f := range []struct {
		k   string
		dst *string
	}{{"nats_url", &c.NATSURL}, {"node", &c.Node}, {"stream", &c.Stream}, {"creds", &c.Creds}} {
		if v := m[f.k]; v != nil {
			if *f.dst, err = d.str(v, key+"."+f.k); err != nil {
				return nil, err
			}
		}
	}
	if c.NATSURL == "" {
		return nil, d.fail(n, key+".nats_url", "required: the NATS server(s) holding the cluster's log, e.g. nats://127.0.0.1:4222")
	}
	// Node and stream names become parts of NATS subjects.
	if !isSubjectToken(c.Node) {
		return nil, d.fail(n, key+".node", "required: this engine's unique name in the cluster, made of letters, digits, '-' and '_' (got %q)", c.Node)
	}
	if !isSubjectToken(c.Stream) {
		return nil, d.fail(n, key+".stream", "a JetStream stream name is made of letters, digits, '-' and '_' (got %q)", c.Stream)
	}
	if v := m["replicas"]; v != nil {
		if c.Replicas, err = d.integer(v, key+".replicas", 1, 5); err != nil {
			return nil, err
		}
	}
	if v := m["node_timeout_ms"]; v != nil {
		ms, err := d.integer(v, key+".node_timeout_ms", 2000, 600000)
		if err != nil {
			return nil, err
		}
		c.NodeTimeout = time.Duration(ms) * time.Millisecond
	}
	return c, nil
}

// isSubjectToken reports whether s is a non-empty run of letters, digits,
// '-' and '_': safe as one token of a NATS subject and as a stream name.
func isSubjectToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// queue decodes an iii-queue config block (strict): queue_configs and the
// builtin adapter. A `default` queue always exists.
func (d *decoder) queue(n *yaml.Node, key string) (*Queue, error) {
	q := &Queue{Queues: map[string]QueueConfig{}, StoreMethod: StoreInMemory}
	m, err := d.mapping(n, key, "queue_configs", "adapter")
	if err != nil {
		return nil, err
	}
	if v := m["adapter"]; v != nil && !isNull(v) {
		if q.StoreMethod, q.FilePath, err = d.queueAdapter(v, key+".adapter"); err != nil {
			return nil, err
		}
	}
	if v := m["queue_configs"]; v != nil && !isNull(v) {
		qs, err := d.mapping(v, key+".queue_configs")
		if err != nil {
			return nil, err
		}
		for _, name := range sortedKeys(qs) {
			if q.Queues[name], err = d.queueConfig(qs[name], key+".queue_configs."+name, name); err != nil {
				return nil, err
			}
		}
	}
	if _, ok := q.Queues["default"]; !ok {
		q.Queues["default"] = DefaultQueueConfig()
	}
	return q, nil
}

func (d *decoder) queueConfig(n *yaml.Node, key, name string) (QueueConfig, error) {
	c := DefaultQueueConfig()
	m, err := d.mapping(n, key, "max_retries", "concurrency", "type", "message_group_field", "backoff_ms",
		"poll_interval_ms", "max_priority", "priority_field")
	if err != nil {
		return c, err
	}
	for _, f := range []struct {
		k   string
		dst *int
		min int
	}{{"max_retries", &c.MaxRetries, 0}, {"concurrency", &c.Concurrency, 1}, {"backoff_ms", &c.BackoffMS, 0}, {"poll_interval_ms", &c.PollIntervalMS, 1}} {
		if v := m[f.k]; v != nil {
			if *f.dst, err = d.integer(v, key+"."+f.k, f.min, maxInt); err != nil {
				return c, err
			}
		}
	}
	if v := m["type"]; v != nil {
		if c.Type, err = d.str(v, key+".type"); err != nil {
			return c, err
		}
		if c.Type != QueueStandard && c.Type != QueueFIFO {
			return c, d.fail(v, key+".type", "Queue '%s' has invalid type '%s'. Must be 'standard' or 'fifo'", name, c.Type)
		}
	}
	if v := m["message_group_field"]; v != nil && !isNull(v) {
		if c.MessageGroupField, err = d.str(v, key+".message_group_field"); err != nil {
			return c, err
		}
	}
	if c.Type == QueueFIFO && c.MessageGroupField == "" {
		return c, d.fail(n, key, "Queue '%s' is of type 'fifo' but 'message_group_field' is not set", name)
	}
	// RabbitMQ's priority settings are accepted for upstream compatibility
	// and have no effect on the builtin queue.
	for _, k := range []string{"max_priority", "priority_field"} {
		if v := m[k]; v != nil {
			d.warn(v, key+"."+k, "%s only applies to the RabbitMQ adapter; ignored", k)
		}
	}
	return c, nil
}

// queueAdapter decodes the queue's adapter: builtin only, whose store is
// the engine's log (file_based: on disk; in_memory: in memory).
func (d *decoder) queueAdapter(n *yaml.Node, key string) (method, path string, err error) {
	method = StoreInMemory
	m, err := d.mapping(n, key, "name", "config")
	if err != nil {
		return "", "", err
	}
	name := "builtin"
	if v := m["name"]; v != nil {
		if name, err = d.str(v, key+".name"); err != nil {
			return "", "", err
		}
	}
	switch name {
	case "builtin":
	case "redis", "rabbitmq", "bridge":
		return "", "", d.fail(n, key+".name", "the %s queue adapter is not supported: the builtin queue keeps every job in the engine's log, durable before it is acknowledged (to share queues between machines, run several engines on one NATS JetStream log: engine.cluster)", name)
	default:
		return "", "", d.fail(n, key+".name", "unknown queue adapter %q (expected builtin)", name)
	}
	conf := m["config"]
	if conf == nil || isNull(conf) {
		return method, "", nil
	}
	ckey := key + ".config"
	c, err := d.mapping(conf, ckey, "store_method", "file_path", "save_interval_ms")
	if err != nil {
		return "", "", err
	}
	if method, path, err = d.storeConfig(c, ckey); err != nil {
		return "", "", err
	}
	if v := c["save_interval_ms"]; v != nil {
		// Accepted for upstream compatibility: every job change is a log
		// record, durable before it is acknowledged.
		if _, err := d.integer(v, ckey+".save_interval_ms", 0, maxInt); err != nil {
			return "", "", err
		}
	}
	return method, path, nil
}

// http decodes an iii-http config block (strict).
func (d *decoder) http(n *yaml.Node, key string) (*HTTP, error) {
	h := DefaultHTTP()
	m, err := d.mapping(n, key, "host", "port", "default_timeout", "concurrency_request_limit", "cors", "middleware")
	if err != nil {
		return nil, err
	}
	if v := m["host"]; v != nil {
		if h.Host, err = d.str(v, key+".host"); err != nil {
			return nil, err
		}
	}
	if v := m["port"]; v != nil {
		if h.Port, err = d.integer(v, key+".port", 0, 65535); err != nil {
			return nil, err
		}
	}
	if v := m["default_timeout"]; v != nil {
		ms, err := d.integer(v, key+".default_timeout", 1, maxInt)
		if err != nil {
			return nil, err
		}
		h.DefaultTimeout = time.Duration(ms) * time.Millisecond
	}
	if v := m["concurrency_request_limit"]; v != nil {
		if h.ConcurrencyLimit, err = d.integer(v, key+".concurrency_request_limit", 0, maxInt); err != nil {
			return nil, err
		}
		if h.ConcurrencyLimit == 0 {
			d.warn(v, key+".concurrency_request_limit", "0 would serve nothing; using 1")
			h.ConcurrencyLimit = 1
		}
	}
	if v := m["cors"]; v != nil && !isNull(v) {
		c, err := d.mapping(v, key+".cors", "allowed_origins", "allowed_methods")
		if err != nil {
			return nil, err
		}
		h.CORS = &CORS{}
		if o := c["allowed_origins"]; o != nil && !isNull(o) {
			if h.CORS.AllowedOrigins, err = d.lines(o, key+".cors.allowed_origins"); err != nil {
				return nil, err
			}
		}
		if o := c["allowed_methods"]; o != nil && !isNull(o) {
			if h.CORS.AllowedMethods, err = d.lines(o, key+".cors.allowed_methods"); err != nil {
				return nil, err
			}
		}
	}
	if v := m["middleware"]; v != nil && !isNull(v) {
		items, err := d.list(v, key+".middleware")
		if err != nil {
			return nil, err
		}
		for i, it := range items {
			k := fmt.Sprintf("%s.middleware[%d]", key, i)
			mm, err := d.mapping(it, k, "function_id", "phase", "priority")
			if err != nil {
				return nil, err
			}
			mw := HTTPMiddleware{Phase: "preHandler"}
			if mm["function_id"] == nil {
				return nil, d.fail(it, k, "function_id is required")
			}
			if mw.FunctionID, err = d.str(mm["function_id"], k+".function_id"); err != nil {
				return nil, err
			}
			if p := mm["phase"]; p != nil {
				if mw.Phase, err = d.str(p, k+".phase"); err != nil {
					return nil, err
				}
			}
			if p := mm["priority"]; p != nil {
				if mw.Priority, err = d.integer(p, k+".priority", -maxInt, maxInt); err != nil {
					return nil, err
				}
			}
			h.Middleware = append(h.Middleware, mw)
		}
		slices.SortStableFunc(h.Middleware, func(a, b HTTPMiddleware) int { return a.Priority - b.Priority })
	}
	return h, nil
}

// pubsub decodes an iii-pubsub config block: only the local adapter.
func (d *decoder) pubsub(n *yaml.Node, key string) (*PubSub, error) {
	return &PubSub{}, d.soleAdapter(n, key, "pubsub", "local", "one engine delivers to its subscribers")
}

// cron decodes an iii-cron config block: the kv adapter (accepted, its
// settings have no effect here) or nothing; redis is refused.
func (d *decoder) cron(n *yaml.Node, key string) (*Cron, error) {
	return &Cron{}, d.soleAdapter(n, key, "cron", "kv", "one engine runs each job")
}

// soleAdapter decodes a module block whose only key is an adapter of which
// this engine has one kind, want; any other (a name, or an old-style
// class naming another) is refused, saying why.
func (d *decoder) soleAdapter(n *yaml.Node, key, module, want, why string) error {
	m, err := d.mapping(n, key, "adapter")
	if err != nil {
		return err
	}
	v := m["adapter"]
	if v == nil || isNull(v) {
		return nil
	}
	a, err := d.mapping(v, key+".adapter", "name", "class", "config")
	if err != nil {
		return err
	}
	name := want
	if nv := a["name"]; nv != nil {
		if name, err = d.str(nv, key+".adapter.name"); err != nil {
			return err
		}
	}
	if cv := a["class"]; cv != nil {
		class, err := d.str(cv, key+".adapter.class")
		if err != nil {
			return err
		}
		if strings.Contains(class, "Redis") {
			name = "redis"
		}
	}
	if name != want {
		return d.fail(v, key+".adapter", "the %s %s adapter is not supported by this engine; use %s (%s)", name, module, want, why)
	}
	return nil
}

// httpFunctions decodes an iii-http-functions config block (strict).
func (d *decoder) httpFunctions(n *yaml.Node, key string) (*HTTPFunctions, error) {
	h := &HTTPFunctions{BlockPrivateIPs: true, RequireHTTPS: true}
	m, err := d.mapping(n, key, "security")
	if err != nil {
		return nil, err
	}
	v := m["security"]
	if v == nil || isNull(v) {
		return h, nil
	}
	sk := key + ".security"
	sec, err := d.mapping(v, sk, "url_allowlist", "block_private_ips", "require_https")
	if err != nil {
		return nil, err
	}
	if l := sec["url_allowlist"]; l != nil && !isNull(l) {
		if h.URLAllowlist, err = d.lines(l, sk+".url_allowlist"); err != nil {
			return nil, err
		}
	}
	if b := sec["block_private_ips"]; b != nil {
		if h.BlockPrivateIPs, err = d.boolean(b, sk+".block_private_ips"); err != nil {
			return nil, err
		}
	}
	if b := sec["require_https"]; b != nil {
		if h.RequireHTTPS, err = d.boolean(b, sk+".require_https"); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// storeConfig reads an adapter config's store_method (default in_memory)
// and file_path.
func (d *decoder) storeConfig(c map[string]*yaml.Node, key string) (method, path string, err error) {
	method = StoreInMemory
	if v := c["store_method"]; v != nil {
		if method, err = d.str(v, key+".store_method"); err != nil {
			return "", "", err
		}
		if method != StoreFileBased && method != StoreInMemory {
			return "", "", d.fail(v, key+".store_method", "expected file_based or in_memory, got %q", method)
		}
	}
	if v := c["file_path"]; v != nil && !isNull(v) {
		if path, err = d.str(v, key+".file_path"); err != nil {
			return "", "", err
		}
	}
	return method, path, nil
}
