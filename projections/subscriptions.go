package projections

import (
	"cmp"
	"fmt"
	"io"
	"slices"

	"github.com/iii-go/iii/log"
	"github.com/vmihailenco/msgpack/v5"
)

// The trigger types Subscriptions indexes.
const (
	TriggerTypeStream = "stream"
	TriggerTypeState  = "state"
)

// StreamFilter is a decoded `stream` trigger config
// (docs/wire-protocol.md#stream-triggers).
type StreamFilter struct {
	Stream    string // stream_name, required
	Group     string // group_id; "" matches any group
	Item      string // item_id; "" matches any item
	Condition string // condition_function_id; "" = none
}

// StateFilter is a decoded `state` trigger config
// (docs/wire-protocol.md#state-triggers).
// Scope and Key match exactly when present (the empty string is a legal
// scope, so presence is explicit).
type StateFilter struct {
	Scope, Key       string
	HasScope, HasKey bool
	Condition        string
}

// Sub is one trigger to fire for a matching change.
type Sub struct {
	TriggerID string
	Function  string
	Worker    string
	Condition string // condition_function_id; "" = none
	Metadata  []byte
}

// ParseStreamTriggerConfig decodes and checks a `stream` trigger config.
// Unknown keys are ignored; null optional fields count as absent.
func ParseStreamTriggerConfig(raw []byte) (StreamFilter, error) {
	var f StreamFilter
	hasStream := false
	err := parseConfig("stream", raw, func(name string, v []byte) error {
		var dst *string
		switch name {
		case "stream_name":
			if v[0] == 'n' {
				return fmt.Errorf("stream_name must be a string, got null")
			}
			dst, hasStream = &f.Stream, true
		case "group_id":
			dst = &f.Group
		case "item_id":
			dst = &f.Item
		case "condition_function_id":
			dst = &f.Condition
		default:
			return nil
		}
		return stringField(name, v, dst)
	})
	if err == nil && !hasStream {
		err = fmt.Errorf("stream trigger config: stream_name is missing")
	}
	return f, err
}

// ParseStateTriggerConfig decodes and checks a `state` trigger config; every
// field is optional and {} matches every state change.
func ParseStateTriggerConfig(raw []byte) (StateFilter, error) {
	var f StateFilter
	err := parseConfig("state", raw, func(name string, v []byte) error {
		var dst *string
		switch name {
		case "scope":
			dst, f.HasScope = &f.Scope, v[0] != 'n'
		case "key":
			dst, f.HasKey = &f.Key, v[0] != 'n'
		case "condition_function_id":
			dst = &f.Condition
		default:
			return nil
		}
		return stringField(name, v, dst)
	})
	return f, err
}

func parseConfig(typ string, raw []byte, field func(name string, v []byte) error) error {
	raw = trimJSON(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return fmt.Errorf("%s trigger config: must be an object, got %s", typ, jsonType(raw))
	}
	var err error
	eachMember(raw, func(k, v []byte) bool {
		if len(v) == 0 {
			return true
		}
		if e := field(decodeString(k), v); e != nil {
			err = fmt.Errorf("%s trigger config: %w", typ, e)
		}
		return err == nil
	})
	return err
}

// stringField stores a string field; null leaves it empty.
func stringField(name string, v []byte, dst *string) error {
	switch v[0] {
	case 'n':
		return nil
	case '"':
		*dst = decodeString(v)
		return nil
	}
	return fmt.Errorf("%s must be a string, got %s", name, jsonType(v))
}

// Subscriptions indexes `stream` and `state` triggers for matching. It folds
// trigger and worker records exactly as Registry does, so match results come
// in the same registration order as Registry.Triggers.
type Subscriptions struct {
	byStream map[string][]streamSub // stream name -> subs in seq order
	state    []stateSub             // in seq order
	// ids tracks every registered trigger, not only stream/state ones, so a
	// trigger id keeps its registration position across re-registrations
	// that change its type.
	ids     map[string]subRef
	nextSeq uint64
}

type subKind uint8

const (
	subOther subKind = iota // another type, or a config that failed to parse
	subStream
	subState
)

type subRef struct {
	seq    uint64
	kind   subKind
	stream string
	worker string
}

type streamSub struct {
	seq         uint64
	group, item string
	sub         Sub
}

type stateSub struct {
	seq uint64
	f   StateFilter
	sub Sub
}

// Apply folds trigger.registered/unregistered, worker.disconnected and
// engine.started; it reports whether the index changed.
func (s *Subscriptions) Apply(rec *log.Record) bool {
	switch rec.Kind {
	case log.KindEngineStarted:
		if rec.Node != "" {
			return false // a cluster node: Model drops its workers' triggers
		}
		changed := len(s.ids) > 0
		*s = Subscriptions{nextSeq: s.nextSeq}
		return changed

	case log.KindTriggerRegistered:
		ref, existed := s.remove(rec.Trigger)
		oldKind := ref.kind
		if !existed {
			ref.seq = s.nextSeq
			s.nextSeq++
		}
		sub := Sub{TriggerID: rec.Trigger, Function: rec.Function, Worker: rec.Worker, Metadata: cloneBytes(rec.Meta)}
		ref.kind, ref.stream, ref.worker = subOther, "", rec.Worker
		switch rec.TriggerType {
		case TriggerTypeStream:
			if f, err := ParseStreamTriggerConfig(rec.Value); err == nil {
				sub.Condition = f.Condition
				ref.kind, ref.stream = subStream, f.Stream
				s.insertStream(f.Stream, streamSub{seq: ref.seq, group: f.Group, item: f.Item, sub: sub})
			}
		case TriggerTypeState:
			if f, err := ParseStateTriggerConfig(rec.Value); err == nil {
				sub.Condition = f.Condition
				ref.kind = subState
				s.insertState(stateSub{seq: ref.seq, f: f, sub: sub})
			}
		}
		if s.ids == nil {
			s.ids = make(map[string]subRef)
		}
		s.ids[rec.Trigger] = ref
		return oldKind != subOther || ref.kind != subOther

	case log.KindTriggerUnregistered:
		ref, existed := s.remove(rec.Trigger)
		if existed {
			delete(s.ids, rec.Trigger)
		}
		return ref.kind != subOther

	case log.KindWorkerDisconnected:
		return s.DropWorkers(rec.Worker)
	}
	return false
}

// DropWorkers removes the triggers the given workers registered; it reports
// whether the index changed.
func (s *Subscriptions) DropWorkers(workers ...string) bool {
	gone := make(map[string]bool, len(workers))
	for _, w := range workers {
		gone[w] = true
	}
	changed := false
	for id, ref := range s.ids {
		if gone[ref.worker] {
			s.remove(id)
			delete(s.ids, id)
			changed = changed || ref.kind != subOther
		}
	}
	return changed
}

// remove takes the trigger out of the match indexes (not out of ids) and
// returns what was known about it.
func (s *Subscriptions) remove(id string) (subRef, bool) {
	ref, ok := s.ids[id]
	if !ok {
		return subRef{}, false
	}
	switch ref.kind {
	case subStream:
		subs := s.byStream[ref.stream]
		if i, found := slices.BinarySearchFunc(subs, ref.seq, func(e streamSub, seq uint64) int { return cmp.Compare(e.seq, seq) }); found {
			subs = slices.Delete(subs, i, i+1)
		}
		if len(subs) == 0 {
			delete(s.byStream, ref.stream)
		} else {
			s.byStream[ref.stream] = subs
		}
	case subState:
		if i, found := slices.BinarySearchFunc(s.state, ref.seq, func(e stateSub, seq uint64) int { return cmp.Compare(e.seq, seq) }); found {
			s.state = slices.Delete(s.state, i, i+1)
		}
	}
	return ref, true
}

func (s *Subscriptions) insertStream(stream string, e streamSub) {
	if s.byStream == nil {
		s.byStream = make(map[string][]streamSub)
	}
	subs := s.byStream[stream]
	i, _ := slices.BinarySearchFunc(subs, e.seq, func(x streamSub, seq uint64) int { return cmp.Compare(x.seq, seq) })
	s.byStream[stream] = slices.Insert(subs, i, e)
}

func (s *Subscriptions) insertState(e stateSub) {
	i, _ := slices.BinarySearchFunc(s.state, e.seq, func(x stateSub, seq uint64) int { return cmp.Compare(x.seq, seq) })
	s.state = slices.Insert(s.state, i, e)
}

// MatchStream returns the `stream` triggers that match a change, in
// registration order. hasItem is false for a stream::send without id, which
// never matches a trigger with a non-empty item_id.
func (s *Subscriptions) MatchStream(stream, group, item string, hasItem bool) []Sub {
	return s.AppendMatchStream(nil, stream, group, item, hasItem)
}

// AppendMatchStream is MatchStream appending to dst; it does not allocate
// when nothing matches or dst has room.
func (s *Subscriptions) AppendMatchStream(dst []Sub, stream, group, item string, hasItem bool) []Sub {
	subs := s.byStream[stream]
	for i := range subs {
		e := &subs[i]
		if e.group != "" && e.group != group {
			continue
		}
		if e.item != "" && (!hasItem || e.item != item) {
			continue
		}
		dst = append(dst, e.sub)
	}
	return dst
}

// MatchState returns the `state` triggers that match a change, in
// registration order.
func (s *Subscriptions) MatchState(scope, key string) []Sub {
	return s.AppendMatchState(nil, scope, key)
}

// AppendMatchState is MatchState appending to dst.
func (s *Subscriptions) AppendMatchState(dst []Sub, scope, key string) []Sub {
	for i := range s.state {
		e := &s.state[i]
		if (e.f.HasScope && e.f.Scope != scope) || (e.f.HasKey && e.f.Key != key) {
			continue
		}
		dst = append(dst, e.sub)
	}
	return dst
}

// Counts reports how many stream and state triggers are indexed.
func (s *Subscriptions) Counts() (stream, state int) {
	for _, subs := range s.byStream {
		stream += len(subs)
	}
	return stream, len(s.state)
}

// subSnapshot is one trigger in the snapshot, in registration order.
type subSnapshot struct {
	Seq    uint64       `msgpack:"seq"`
	ID     string       `msgpack:"id"`
	Kind   subKind      `msgpack:"kind"`
	Worker string       `msgpack:"worker"`
	Sub    Sub          `msgpack:"sub,omitempty"`
	Stream StreamFilter `msgpack:"stream,omitempty"`
	State  StateFilter  `msgpack:"state,omitempty"`
}

type subscriptionsSnapshot struct {
	NextSeq  uint64        `msgpack:"next_seq"`
	Triggers []subSnapshot `msgpack:"triggers"`
}

// Snapshot writes the index (msgpack).
func (s *Subscriptions) Snapshot(w io.Writer) error {
	snap := subscriptionsSnapshot{NextSeq: s.nextSeq, Triggers: make([]subSnapshot, 0, len(s.ids))}
	for id, ref := range s.ids {
		snap.Triggers = append(snap.Triggers, subSnapshot{Seq: ref.seq, ID: id, Kind: ref.kind, Worker: ref.worker})
	}
	slices.SortFunc(snap.Triggers, func(a, b subSnapshot) int { return cmp.Compare(a.Seq, b.Seq) })
	streamIdx := map[uint64]*streamSub{}
	for _, subs := range s.byStream {
		for i := range subs {
			streamIdx[subs[i].seq] = &subs[i]
		}
	}
	stateIdx := map[uint64]*stateSub{}
	for i := range s.state {
		stateIdx[s.state[i].seq] = &s.state[i]
	}
	for i := range snap.Triggers {
		t := &snap.Triggers[i]
		switch t.Kind {
		case subStream:
			e := s.ids[t.ID]
			ss := streamIdx[t.Seq]
			t.Sub = ss.sub
			t.Stream = StreamFilter{Stream: e.stream, Group: ss.group, Item: ss.item, Condition: ss.sub.Condition}
		case subState:
			st := stateIdx[t.Seq]
			t.Sub, t.State = st.sub, st.f
		}
	}
	return writeSnapshot(w, "subscriptions", func(enc *msgpack.Encoder) error { return enc.Encode(&snap) })
}

// Restore replaces the index with a snapshot's content.
func (s *Subscriptions) Restore(r io.Reader) error {
	var snap subscriptionsSnapshot
	if err := readSnapshot(r, "subscriptions", func(dec *msgpack.Decoder) error { return dec.Decode(&snap) }); err != nil {
		return err
	}
	fresh := Subscriptions{nextSeq: snap.NextSeq, ids: make(map[string]subRef, len(snap.Triggers))}
	for _, t := range snap.Triggers {
		ref := subRef{seq: t.Seq, kind: t.Kind, worker: t.Worker}
		switch t.Kind {
		case subStream:
			ref.stream = t.Stream.Stream
			fresh.insertStream(t.Stream.Stream, streamSub{seq: t.Seq, group: t.Stream.Group, item: t.Stream.Item, sub: t.Sub})
		case subState:
			fresh.insertState(stateSub{seq: t.Seq, f: t.State, sub: t.Sub})
		}
		fresh.ids[t.ID] = ref
	}
	*s = fresh
	return nil
}
