package projections

import (
	"bytes"
	"fmt"
	"io"
	"slices"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/iii-go/iii/log"
)

// Model is every projection of the log together — the engine's read model.
// It is the one place that knows which projection folds which record kind,
// how the projections snapshot as one, and how to walk their items; the
// engine (behind its lock), replay and the benchmarks all fold through it.
type Model struct {
	Streams  *Streams
	States   *States
	Registry *Registry
	Subs     *Subscriptions
	Queues   *Queues
}

// NewModel returns an empty model.
func NewModel() *Model {
	return &Model{Streams: &Streams{}, States: &States{}, Registry: &Registry{}, Subs: &Subscriptions{}, Queues: &Queues{}}
}

// Change is what one record did, as the projection that folded it reports.
type Change struct {
	Stream   StreamChange
	State    StateChange
	Registry RegistryChange
	Job      *Job // the queue job a queue.* record concerns (nil once done or discarded)
}

// kindFold is how the model folds one kind of record, and the part of the
// Change a writer of that kind gets back from Append (nil: none of them
// reads one, and boxing the whole Change would cost an allocation of its
// full size per record).
type kindFold struct {
	fold   func(m *Model, rec *log.Record) Change
	result func(Change) any
}

// folds maps every record kind to the projections that fold it. A kind
// missing here would be silently ignored, so TestEveryKindIsFolded checks
// the table against log.Kinds().
var folds = func() (t [256]kindFold) {
	stream := kindFold{
		fold:   func(m *Model, rec *log.Record) Change { return Change{Stream: m.Streams.Apply(rec)} },
		result: func(ch Change) any { return ch.Stream },
	}
	state := kindFold{
		fold:   func(m *Model, rec *log.Record) Change { return Change{State: m.States.Apply(rec)} },
		result: func(ch Change) any { return ch.State },
	}
	registry := kindFold{fold: func(m *Model, rec *log.Record) Change {
		ch := Change{Registry: m.Registry.Apply(rec)}
		m.Subs.Apply(rec)
		if len(ch.Registry.Workers) > 0 {
			m.Subs.DropWorkers(ch.Registry.Workers...) // a cluster node's connections
		}
		return ch
	}}
	job := kindFold{fold: func(m *Model, rec *log.Record) Change { return Change{Job: m.Queues.Apply(rec)} }}
	for _, k := range []log.Kind{log.KindJobEnqueued, log.KindJobFailed, log.KindJobDone, log.KindJobDead,
		log.KindJobRedriven, log.KindJobDiscarded} {
		t[k] = job
	}
	for _, k := range []log.Kind{log.KindStreamSet, log.KindStreamUpdate, log.KindStreamDelete, log.KindStreamSend} {
		t[k] = stream
	}
	for _, k := range []log.Kind{log.KindStateSet, log.KindStateUpdate, log.KindStateDelete} {
		t[k] = state
	}
	for _, k := range []log.Kind{log.KindEngineStarted, log.KindWorkerConnected, log.KindWorkerUpdated, log.KindWorkerDisconnected,
		log.KindFunctionRegistered, log.KindFunctionUnregistered, log.KindTriggerRegistered, log.KindTriggerUnregistered,
		log.KindTriggerTypeRegistered, log.KindTriggerTypeUnregistered, log.KindNodeLost} {
		t[k] = registry
	}
	return t
}()

// Folds reports whether the model folds records of kind k.
func Folds(k log.Kind) bool { return folds[k].fold != nil }

// Fold folds one record into the projections of its kind. Kinds this build
// does not know (written by a newer one) change nothing.
func (m *Model) Fold(rec *log.Record) Change {
	if f := folds[rec.Kind].fold; f != nil {
		return f(m, rec)
	}
	return Change{}
}

// Result is what the writer of a record of kind k gets back from Append
// when the fold changed ch: the StreamChange of a stream record, the
// StateChange of a state record, nil for the others.
func Result(k log.Kind, ch Change) any {
	if r := folds[k].result; r != nil {
		return r(ch)
	}
	return nil
}

// Apply is Fold as a log.Projection: the log hands Result back to the
// Append caller.
func (m *Model) Apply(rec *log.Record) any { return Result(rec.Kind, m.Fold(rec)) }

// modelSnapshotVersion guards the layout Snapshot writes: a msgpack uint,
// then one msgpack bytes blob per projection holding that projection's own
// Snapshot output, in the order streams, states, registry, subscriptions,
// queues. Version 1 (before queues) is still read: its queues are empty.
const modelSnapshotVersion = 2

// Snapshot writes every projection as one snapshot, each as a
// length-prefixed part so one projection's reader can never eat the next's.
func (m *Model) Snapshot(w io.Writer) error {
	enc := msgpack.NewEncoder(w)
	if err := enc.EncodeUint(modelSnapshotVersion); err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, p := range m.parts() {
		buf.Reset()
		if err := p.Snapshot(&buf); err != nil {
			return err
		}
		if err := enc.EncodeBytes(buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// Restore replaces every projection with the contents of a snapshot.
func (m *Model) Restore(r io.Reader) error {
	dec := msgpack.NewDecoder(r)
	v, err := dec.DecodeUint()
	if err != nil {
		return fmt.Errorf("model snapshot: %w", err)
	}
	if v < 1 || v > modelSnapshotVersion {
		return fmt.Errorf("model snapshot: layout version %d, this build reads 1 to %d", v, modelSnapshotVersion)
	}
	parts := m.parts()
	if v == 1 {
		m.Queues = &Queues{}
		parts = parts[:4]
	}
	for _, p := range parts {
		b, err := dec.DecodeBytes()
		if err != nil {
			return fmt.Errorf("model snapshot: %w", err)
		}
		if err := p.Restore(bytes.NewReader(b)); err != nil {
			return fmt.Errorf("model snapshot: %w", err)
		}
	}
	return nil
}

type snapshotter interface {
	Snapshot(w io.Writer) error
	Restore(r io.Reader) error
}

func (m *Model) parts() []snapshotter {
	return []snapshotter{m.Streams, m.States, m.Registry, m.Subs, m.Queues}
}

// Item is one stream item.
type Item struct {
	Stream, Group, Item string
	Value               []byte
}

// Entry is one state value (scope/key).
type Entry struct {
	Scope, Key string
	Value      []byte
}

// Items lists every stream item: streams and groups sorted by id, items in
// their stored (insertion) order.
func (m *Model) Items() []Item {
	var items []Item
	for _, stream := range sortedKeys(&m.Streams.streams) {
		gs, _ := m.Streams.streams.get(stream)
		for _, group := range sortedKeys(gs) {
			b, _ := gs.get(group)
			for id, v := range b.all() {
				items = append(items, Item{Stream: stream, Group: group, Item: id, Value: orNull(v)})
			}
		}
	}
	return items
}

// Entries lists every state value: scopes sorted, keys in stored order.
func (m *Model) Entries() []Entry {
	var entries []Entry
	for _, scope := range sortedKeys(&m.States.scopes) {
		b, _ := m.States.scopes.get(scope)
		for key, v := range b.all() {
			entries = append(entries, Entry{Scope: scope, Key: key, Value: orNull(v)})
		}
	}
	return entries
}

func orNull(v []byte) []byte {
	if v == nil {
		return nullLit
	}
	return v
}

// sortedKeys returns an ordered map's keys, sorted.
func sortedKeys[V any](m *omap[V]) []string {
	ks := m.keys()
	slices.Sort(ks)
	return ks
}
