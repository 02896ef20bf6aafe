package projections

import (
	"cmp"
	"io"
	"maps"
	"slices"

	"github.com/iii-go/iii/log"
	"github.com/vmihailenco/msgpack/v5"
)

// Worker is one connection known to the engine.
type Worker struct {
	ID string `msgpack:"id"`
	// From worker.connected.
	Listener string `msgpack:"listener,omitempty"`
	IP       string `msgpack:"ip,omitempty"`
	RBAC     bool   `msgpack:"rbac,omitempty"`
	// Info is the raw worker.connected value, unknown keys included.
	Info []byte `msgpack:"info,omitempty"`
	// Node is the cluster node the connection is on ("" on a single engine).
	Node string `msgpack:"node,omitempty"`
	// ConnectedAt is the worker.connected record's time (Unix nanoseconds).
	ConnectedAt int64 `msgpack:"at,omitempty"`
	// Connected is set by worker.connected; a disconnected worker is removed,
	// so every worker the registry returns is connected.
	Connected bool `msgpack:"connected,omitempty"`

	// From engine::workers::register (worker.updated), merged field by field.
	Name        string `msgpack:"name,omitempty"`
	Description string `msgpack:"description,omitempty"`
	Runtime     string `msgpack:"runtime,omitempty"`
	Version     string `msgpack:"version,omitempty"`
	OS          string `msgpack:"os,omitempty"`
	Isolation   string `msgpack:"isolation,omitempty"`
	PID         int64  `msgpack:"pid,omitempty"`
	// HasPID tells a reported pid 0 from none (workers::list hides workers
	// that never reported a pid).
	HasPID    bool   `msgpack:"has_pid,omitempty"`
	Telemetry []byte `msgpack:"telemetry,omitempty"`

	// Functions is how many functions the worker owns; filled in by reads.
	Functions int `msgpack:"-"`
}

// Function is a registered function and its current owner.
type Function struct {
	ID             string `msgpack:"id"`
	Worker         string `msgpack:"worker"`
	Description    string `msgpack:"description,omitempty"`
	Metadata       []byte `msgpack:"metadata,omitempty"`
	RequestFormat  []byte `msgpack:"request_format,omitempty"`
	ResponseFormat []byte `msgpack:"response_format,omitempty"`
	// Invocation, when set, is an HTTP endpoint that implements the
	// function (iii-http-functions) instead of its worker.
	Invocation []byte `msgpack:"invocation,omitempty"`
}

// Trigger is a registered trigger instance. Whether it is live or pending
// depends on whether its type currently has a provider.
type Trigger struct {
	ID       string `msgpack:"id"`
	Type     string `msgpack:"type"`
	Function string `msgpack:"function"`
	Worker   string `msgpack:"worker"`
	Config   []byte `msgpack:"config,omitempty"`
	Metadata []byte `msgpack:"metadata,omitempty"`
}

// TriggerType is a trigger type and the worker providing it.
type TriggerType struct {
	ID                   string `msgpack:"id"`
	Worker               string `msgpack:"worker"`
	Description          string `msgpack:"description,omitempty"`
	TriggerRequestFormat []byte `msgpack:"trigger_request_format,omitempty"`
	CallRequestFormat    []byte `msgpack:"call_request_format,omitempty"`
}

// Registry holds workers, functions, triggers and trigger types.
type Registry struct {
	workers   omap[*Worker]
	functions map[string]Function
	owned     map[string]map[string]struct{} // worker -> function ids it owns
	triggers  omap[Trigger]
	types     map[string]TriggerType
	// nodes maps each cluster node that started and was not lost since to
	// the ID of its engine.started record (its incarnation).
	nodes map[string]string
}

// RegistryChange describes what one record did to the registry.
type RegistryChange struct {
	// Existed: the record's subject (worker, function, trigger or trigger
	// type, by id) was known before the record.
	Existed bool
	// PrevWorker is the subject's owner or provider before the record.
	PrevWorker string
	// Functions, Triggers and TriggerTypes list what the record removed;
	// Triggers also holds a trigger replaced by re-registration.
	Functions    []string
	Triggers     []Trigger
	TriggerTypes []string
	// Workers lists the connections a node-scoped engine.started or a
	// node.lost removed.
	Workers []string
}

// Apply folds one registry record; other kinds yield a zero change.
func (g *Registry) Apply(rec *log.Record) RegistryChange {
	switch rec.Kind {
	case log.KindEngineStarted:
		if rec.Node != "" {
			// A cluster node (re)started: only its own earlier connections
			// are gone; the other nodes' stay.
			if g.nodes == nil {
				g.nodes = make(map[string]string)
			}
			g.nodes[rec.Node] = rec.ID.String()
			return g.dropNode(rec.Node)
		}
		ch := RegistryChange{
			Functions:    slices.Sorted(maps.Keys(g.functions)),
			Triggers:     g.triggers.values(),
			TriggerTypes: slices.Sorted(maps.Keys(g.types)),
		}
		*g = Registry{}
		return ch

	case log.KindNodeLost:
		// Declared against one incarnation: a node that has started again
		// since keeps its new connections.
		cur, live := g.nodes[rec.Node]
		if inc := NodeLostIncarnation(rec.Value); !live || (inc != "" && inc != cur) {
			return RegistryChange{}
		}
		delete(g.nodes, rec.Node)
		return g.dropNode(rec.Node)

	case log.KindWorkerConnected:
		w := &Worker{ID: rec.Worker, Node: rec.Node, ConnectedAt: rec.Time, Connected: true, Info: cloneBytes(rec.Value)}
		eachField(w.Info, func(name string, v []byte) {
			switch name {
			case "listener":
				w.Listener, _ = stringValue(v)
			case "ip_address":
				w.IP, _ = stringValue(v)
			case "rbac":
				w.RBAC = string(v) == "true"
			}
		})
		old, existed := g.workers.set(rec.Worker, w)
		return RegistryChange{Existed: existed, PrevWorker: workerID(old)}

	case log.KindWorkerUpdated:
		// An update for an unknown (already gone) worker is ignored rather
		// than resurrecting it.
		w, existed := g.workers.get(rec.Worker)
		if existed {
			w.merge(rec.Value)
		}
		return RegistryChange{Existed: existed}

	case log.KindWorkerDisconnected:
		_, existed := g.workers.del(rec.Worker)
		return g.dropWorkers([]string{rec.Worker}, RegistryChange{Existed: existed})

	case log.KindFunctionRegistered:
		prev, existed := g.functions[rec.Function]
		if existed {
			g.disown(prev.Worker, prev.ID)
		}
		f := Function{ID: rec.Function, Worker: rec.Worker}
		eachField(cloneBytes(rec.Value), func(name string, v []byte) {
			switch name {
			case "description":
				f.Description, _ = stringValue(v)
			case "metadata":
				f.Metadata = v
			case "request_format":
				f.RequestFormat = v
			case "response_format":
				f.ResponseFormat = v
			case "invocation":
				f.Invocation = v
			}
		})
		if g.functions == nil {
			g.functions = make(map[string]Function)
			g.owned = make(map[string]map[string]struct{})
		}
		g.functions[f.ID] = f
		ids := g.owned[f.Worker]
		if ids == nil {
			ids = make(map[string]struct{})
			g.owned[f.Worker] = ids
		}
		ids[f.ID] = struct{}{}
		return RegistryChange{Existed: existed, PrevWorker: prev.Worker}

	case log.KindFunctionUnregistered:
		f, existed := g.functions[rec.Function]
		ch := RegistryChange{Existed: existed, PrevWorker: f.Worker}
		if existed && f.Worker == rec.Worker {
			delete(g.functions, f.ID)
			g.disown(f.Worker, f.ID)
			ch.Functions = []string{f.ID}
		}
		return ch

	case log.KindTriggerRegistered:
		t := Trigger{
			ID: rec.Trigger, Type: rec.TriggerType, Function: rec.Function, Worker: rec.Worker,
			Config: cloneBytes(rec.Value), Metadata: cloneBytes(rec.Meta),
		}
		old, existed := g.triggers.set(t.ID, t)
		ch := RegistryChange{Existed: existed, PrevWorker: old.Worker}
		if existed {
			ch.Triggers = []Trigger{old}
		}
		return ch

	case log.KindTriggerUnregistered:
		old, existed := g.triggers.del(rec.Trigger)
		ch := RegistryChange{Existed: existed, PrevWorker: old.Worker}
		if existed {
			ch.Triggers = []Trigger{old}
		}
		return ch

	case log.KindTriggerTypeRegistered:
		t := TriggerType{ID: rec.TriggerType, Worker: rec.Worker}
		eachField(cloneBytes(rec.Value), func(name string, v []byte) {
			switch name {
			case "description":
				t.Description, _ = stringValue(v)
			case "trigger_request_format":
				t.TriggerRequestFormat = v
			case "call_request_format":
				t.CallRequestFormat = v
			}
		})
		prev, existed := g.types[t.ID]
		if g.types == nil {
			g.types = make(map[string]TriggerType)
		}
		g.types[t.ID] = t
		return RegistryChange{Existed: existed, PrevWorker: prev.Worker}

	case log.KindTriggerTypeUnregistered:
		t, existed := g.types[rec.TriggerType]
		ch := RegistryChange{Existed: existed, PrevWorker: t.Worker}
		if existed && t.Worker == rec.Worker {
			delete(g.types, t.ID)
			ch.TriggerTypes = []string{t.ID}
		}
		return ch
	}
	return RegistryChange{}
}

func workerID(w *Worker) string {
	if w == nil {
		return ""
	}
	return w.ID
}

// dropWorkers removes everything the departed workers owned: their
// functions, their triggers and the trigger types they provide, in one pass
// however many left together. Other workers' triggers of those types stay
// (pending until the type is provided again).
func (g *Registry) dropWorkers(workers []string, ch RegistryChange) RegistryChange {
	gone := make(map[string]bool, len(workers))
	for _, w := range workers {
		gone[w] = true
		for id := range g.owned[w] {
			delete(g.functions, id)
			ch.Functions = append(ch.Functions, id)
		}
		delete(g.owned, w)
	}
	slices.Sort(ch.Functions)
	for _, t := range g.triggers.all() {
		if gone[t.Worker] {
			ch.Triggers = append(ch.Triggers, t)
		}
	}
	for _, t := range ch.Triggers {
		g.triggers.del(t.ID)
	}
	for id, t := range g.types {
		if gone[t.Worker] {
			ch.TriggerTypes = append(ch.TriggerTypes, id)
			delete(g.types, id)
		}
	}
	slices.Sort(ch.TriggerTypes)
	return ch
}

// dropNode removes every connection on a cluster node and what they owned.
func (g *Registry) dropNode(node string) RegistryChange {
	var ch RegistryChange
	for _, w := range g.workers.all() {
		if w.Node == node {
			ch.Workers = append(ch.Workers, w.ID)
		}
	}
	for _, id := range ch.Workers {
		g.workers.del(id)
	}
	return g.dropWorkers(ch.Workers, ch)
}

// NodeLostIncarnation reads the incarnation a node.lost record names ("" if
// none).
func NodeLostIncarnation(value []byte) string {
	var inc string
	eachField(value, func(name string, v []byte) {
		if name == "incarnation" {
			inc, _ = stringValue(v)
		}
	})
	return inc
}

// Nodes returns the cluster nodes that started and were not lost since,
// each with its incarnation (the ID of its engine.started record).
func (g *Registry) Nodes() map[string]string { return maps.Clone(g.nodes) }

func (g *Registry) disown(worker, fn string) {
	if ids := g.owned[worker]; ids != nil {
		delete(ids, fn)
		if len(ids) == 0 {
			delete(g.owned, worker)
		}
	}
}

// merge applies an engine::workers::register payload: each known field that
// is present with the right type overwrites; null or mistyped fields leave
// the current value alone.
func (w *Worker) merge(raw []byte) {
	eachField(cloneBytes(raw), func(name string, v []byte) {
		var dst *string
		switch name {
		case "name":
			dst = &w.Name
		case "description":
			dst = &w.Description
		case "runtime":
			dst = &w.Runtime
		case "version":
			dst = &w.Version
		case "os":
			dst = &w.OS
		case "isolation":
			dst = &w.Isolation
		case "pid":
			if pid, ok := parseInt64Literal(v); ok {
				w.PID, w.HasPID = pid, true
			}
		case "telemetry":
			if v[0] != 'n' {
				w.Telemetry = v
			}
		}
		if s, ok := stringValue(v); ok && dst != nil {
			*dst = s
		}
	})
}

// eachField calls fn for every top-level member of a raw JSON object whose
// value is not null (values alias raw). Non-objects have no fields.
func eachField(raw []byte, fn func(name string, v []byte)) {
	raw = trimJSON(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return
	}
	eachMember(raw, func(k, v []byte) bool {
		if len(v) > 0 && string(v) != "null" {
			fn(decodeString(k), v)
		}
		return true
	})
}

// stringValue decodes v when it is a JSON string.
func stringValue(v []byte) (string, bool) {
	if len(v) == 0 || v[0] != '"' {
		return "", false
	}
	return decodeString(v), true
}

// Function returns the function registered under id.
func (g *Registry) Function(id string) (Function, bool) {
	f, ok := g.functions[id]
	return f, ok
}

// Functions returns every function sorted by id.
func (g *Registry) Functions() []Function {
	return sortedByID(slices.Collect(maps.Values(g.functions)), func(f Function) string { return f.ID })
}

// FunctionsOf returns the functions a worker owns, sorted by id.
func (g *Registry) FunctionsOf(worker string) []Function {
	out := make([]Function, 0, len(g.owned[worker]))
	for id := range g.owned[worker] {
		out = append(out, g.functions[id])
	}
	return sortedByID(out, func(f Function) string { return f.ID })
}

// Worker returns the worker with that id.
func (g *Registry) Worker(id string) (Worker, bool) {
	w, ok := g.workers.get(id)
	if !ok {
		return Worker{}, false
	}
	c := *w
	c.Functions = len(g.owned[id])
	return c, true
}

// Workers returns every worker in order of first appearance.
func (g *Registry) Workers() []Worker {
	out := make([]Worker, 0, g.workers.len())
	for id, w := range g.workers.all() {
		c := *w
		c.Functions = len(g.owned[id])
		out = append(out, c)
	}
	return out
}

// Trigger returns the trigger registered under id.
func (g *Registry) Trigger(id string) (Trigger, bool) {
	return g.triggers.get(id)
}

// Triggers returns every trigger in registration order (re-registering an
// id keeps its place).
func (g *Registry) Triggers() []Trigger {
	return g.triggers.values()
}

// TriggersOfType returns the triggers of one type in registration order.
func (g *Registry) TriggersOfType(typ string) []Trigger {
	return g.filterTriggers(func(t *Trigger) bool { return t.Type == typ })
}

// TriggersOf returns a worker's triggers in registration order.
func (g *Registry) TriggersOf(worker string) []Trigger {
	return g.filterTriggers(func(t *Trigger) bool { return t.Worker == worker })
}

func (g *Registry) filterTriggers(keep func(*Trigger) bool) []Trigger {
	var out []Trigger
	for _, t := range g.triggers.all() {
		if keep(&t) {
			out = append(out, t)
		}
	}
	return out
}

// TriggerType returns the trigger type registered under id.
func (g *Registry) TriggerType(id string) (TriggerType, bool) {
	t, ok := g.types[id]
	return t, ok
}

// TriggerTypes returns every trigger type sorted by id.
func (g *Registry) TriggerTypes() []TriggerType {
	return sortedByID(slices.Collect(maps.Values(g.types)), func(t TriggerType) string { return t.ID })
}

func sortedByID[T any](s []T, id func(T) string) []T {
	slices.SortFunc(s, func(a, b T) int { return cmp.Compare(id(a), id(b)) })
	return s
}

// registrySnapshot is the registry's msgpack form; every list is in a fixed
// order so equal registries give equal bytes.
type registrySnapshot struct {
	Workers      []Worker          `msgpack:"workers"`
	Functions    []Function        `msgpack:"functions"`
	Triggers     []Trigger         `msgpack:"triggers"`
	TriggerTypes []TriggerType     `msgpack:"trigger_types"`
	Nodes        map[string]string `msgpack:"nodes,omitempty"`
}

// Snapshot writes the registry (msgpack).
func (g *Registry) Snapshot(w io.Writer) error {
	snap := registrySnapshot{
		Workers:      make([]Worker, 0, g.workers.len()),
		Functions:    g.Functions(),
		Triggers:     g.Triggers(),
		TriggerTypes: g.TriggerTypes(),
		Nodes:        g.nodes,
	}
	for _, w := range g.workers.all() {
		snap.Workers = append(snap.Workers, *w)
	}
	return writeSnapshot(w, "registry", func(enc *msgpack.Encoder) error { return enc.Encode(&snap) })
}

// Restore replaces the registry with a snapshot's content.
func (g *Registry) Restore(r io.Reader) error {
	var snap registrySnapshot
	if err := readSnapshot(r, "registry", func(dec *msgpack.Decoder) error { return dec.Decode(&snap) }); err != nil {
		return err
	}
	fresh := Registry{nodes: snap.Nodes}
	for i := range snap.Workers {
		fresh.workers.set(snap.Workers[i].ID, &snap.Workers[i])
	}
	for _, f := range snap.Functions {
		if fresh.functions == nil {
			fresh.functions = make(map[string]Function)
			fresh.owned = make(map[string]map[string]struct{})
		}
		fresh.functions[f.ID] = f
		if fresh.owned[f.Worker] == nil {
			fresh.owned[f.Worker] = make(map[string]struct{})
		}
		fresh.owned[f.Worker][f.ID] = struct{}{}
	}
	for _, t := range snap.Triggers {
		fresh.triggers.set(t.ID, t)
	}
	for _, t := range snap.TriggerTypes {
		if fresh.types == nil {
			fresh.types = make(map[string]TriggerType)
		}
		fresh.types[t.ID] = t
	}
	*g = fresh
	return nil
}
