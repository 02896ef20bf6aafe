package replay

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/iii-go/iii/log"
	"github.com/iii-go/iii/projections"
	"github.com/vmihailenco/msgpack/v5"
)

// State is the engine's state as of one record: the projections the engine
// folds its log into, rebuilt from the nearest snapshot and the records
// after it.
type State struct {
	// Index is the last record folded in; 0 is the empty state before the
	// first record.
	Index uint64
	// Time is that record's time (zero when it is unknown: index 0, or a
	// snapshot whose own record retention has removed).
	Time time.Time

	Streams  *projections.Streams
	States   *projections.States
	Registry *projections.Registry
}

// StateAt rebuilds the state at point at in the log directory dir: the
// newest snapshot at or before it, plus the records after the snapshot up
// to the point. An index beyond the last record is an error wrapping
// ErrPastEnd; a time after the last record gives the current state, one
// before the first record the empty state.
func StateAt(dir string, at Point) (*State, error) {
	st, err := startState(dir, at)
	if err != nil {
		return nil, err
	}
	if err := st.advance(dir, at, nil); err != nil {
		return nil, err
	}
	return st, nil
}

func newState() *State {
	return &State{Streams: new(projections.Streams), States: new(projections.States), Registry: new(projections.Registry)}
}

// apply folds rec into the projection it concerns, as the engine does.
func (s *State) apply(rec *log.Record) {
	switch rec.Kind {
	case log.KindStreamSet, log.KindStreamUpdate, log.KindStreamDelete, log.KindStreamSend:
		s.Streams.Apply(rec)
	case log.KindStateSet, log.KindStateUpdate, log.KindStateDelete:
		s.States.Apply(rec)
	default:
		s.Registry.Apply(rec)
	}
	s.Index, s.Time = rec.Index, time.Unix(0, rec.Time).UTC()
}

// startState restores the newest snapshot at or before at (or returns the
// empty state when there is none).
func startState(dir string, at Point) (*State, error) {
	snap, data, err := snapshotFor(dir, at)
	if err != nil {
		return nil, err
	}
	st := newState()
	if data != nil {
		if err := st.restore(data); err != nil {
			return nil, fmt.Errorf("snapshot %d: %w", snap, err)
		}
		st.Index = snap
	}
	return st, nil
}

// snapshotFor finds the newest snapshot at or before at. For a time point
// that is the newest one whose record is not later than the time.
func snapshotFor(dir string, at Point) (uint64, []byte, error) {
	if !at.IsTime() {
		return log.LatestSnapshotBefore(dir, at.Index)
	}
	limit := uint64(math.MaxUint64)
	for {
		snap, data, err := log.LatestSnapshotBefore(dir, limit)
		if err != nil || data == nil {
			return 0, nil, err
		}
		index, t, err := firstFrom(dir, snap)
		if err != nil {
			return 0, nil, err
		}
		// The snapshot's record, or (if retention removed it) a later one:
		// either way, not after the time means the snapshot is not either.
		if index != 0 && at.includes(index, t) {
			return snap, data, nil
		}
		if snap == 0 {
			return 0, nil, nil
		}
		limit = snap - 1
	}
}

// firstFrom returns the index and time of the first record at or after
// index (index 0: there is none).
func firstFrom(dir string, index uint64) (uint64, int64, error) {
	var i uint64
	var t int64
	err := log.Scan(dir, index, func(rec *log.Record) error {
		i, t = rec.Index, rec.Time
		return errStop
	})
	if err != nil && err != errStop {
		return 0, 0, err
	}
	return i, t, nil
}

// engineSnapshotVersion is the version of the engine's snapshot layout: a
// msgpack uint, then one msgpack bytes blob per projection, each holding
// that projection's own Snapshot output, in the order streams, states,
// registry, subscriptions.
const engineSnapshotVersion = 1

// restore loads an engine snapshot. Parts after the registry
// (subscriptions, derived from the registry's triggers) answer no history
// question and are not read.
func (s *State) restore(data []byte) error {
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	v, err := dec.DecodeUint()
	if err != nil {
		return fmt.Errorf("engine snapshot: %w", err)
	}
	if v != engineSnapshotVersion {
		return fmt.Errorf("engine snapshot layout version %d, this build reads %d", v, engineSnapshotVersion)
	}
	parts := []interface{ Restore(io.Reader) error }{s.Streams, s.States, s.Registry}
	for _, p := range parts {
		b, err := dec.DecodeBytes()
		if err != nil {
			return fmt.Errorf("engine snapshot: %w", err)
		}
		if err := p.Restore(bytes.NewReader(b)); err != nil {
			return err
		}
	}
	return nil
}

// advance folds the records after s.Index up to point to. before, if not
// nil, sees each record just before it is applied.
func (s *State) advance(dir string, to Point, before func(*log.Record)) error {
	// Reading from s.Index itself (not after it) yields the time of a
	// snapshot's record.
	err := log.Scan(dir, max(s.Index, 1), func(rec *log.Record) error {
		if rec.Index == s.Index {
			s.Time = time.Unix(0, rec.Time).UTC()
			return nil
		}
		// A gap means retention removed records the point needs, unless
		// the point is exactly where the state already is.
		gap := rec.Index != s.Index+1
		if !to.includes(rec.Index, rec.Time) && (!gap || (!to.IsTime() && to.Index == s.Index)) {
			return errStop
		}
		if gap {
			return fmt.Errorf("records %d to %d were removed by retention and no snapshot covers point %s", s.Index+1, rec.Index-1, to)
		}
		if before != nil {
			before(rec)
		}
		s.apply(rec)
		return nil
	})
	if err == errStop {
		return nil
	}
	if err != nil {
		return err
	}
	if !to.IsTime() && s.Index < to.Index {
		if s.Index == 0 {
			return fmt.Errorf("index %d is %w (the log is empty)", to.Index, ErrPastEnd)
		}
		return fmt.Errorf("index %d is %w (last index %d)", to.Index, ErrPastEnd, s.Index)
	}
	return nil
}

// Item is one stream item in a State.
type Item struct {
	Stream, Group, Item string
	Value               []byte
}

// Entry is one state value (scope/key) in a State.
type Entry struct {
	Scope, Key string
	Value      []byte
}

// Items lists every stream item: streams and groups sorted by id, items in
// their stored (insertion) order.
func (s *State) Items() ([]Item, error) {
	var items []Item
	err := walkSnapshot(s.Streams, "streams", func(dec *msgpack.Decoder) error {
		return decodeArray(dec, func() error {
			stream, err := dec.DecodeString()
			if err != nil {
				return err
			}
			return decodeArray(dec, func() error {
				return decodeBucket(dec, func(group, id string, v []byte) {
					items = append(items, Item{Stream: stream, Group: group, Item: id, Value: v})
				})
			})
		})
	})
	// Stable: items of one group keep their order.
	slices.SortStableFunc(items, func(a, b Item) int {
		return cmp.Or(cmp.Compare(a.Stream, b.Stream), cmp.Compare(a.Group, b.Group))
	})
	return items, err
}

// Entries lists every state value: scopes sorted, keys in stored order.
func (s *State) Entries() ([]Entry, error) {
	var entries []Entry
	err := walkSnapshot(s.States, "states", func(dec *msgpack.Decoder) error {
		return decodeArray(dec, func() error {
			return decodeBucket(dec, func(scope, key string, v []byte) {
				entries = append(entries, Entry{Scope: scope, Key: key, Value: v})
			})
		})
	})
	slices.SortStableFunc(entries, func(a, b Entry) int { return cmp.Compare(a.Scope, b.Scope) })
	return entries, err
}

// walkSnapshot reads a projection's own snapshot encoding. Streams and
// States expose values but not the item ids next to them, and their
// snapshot is the one public view that has both; the name and format
// version are checked so a change in projections fails loudly here.
func walkSnapshot(p interface{ Snapshot(io.Writer) error }, name string, body func(*msgpack.Decoder) error) error {
	var buf bytes.Buffer
	if err := p.Snapshot(&buf); err != nil {
		return err
	}
	dec := msgpack.NewDecoder(&buf)
	got, err := dec.DecodeString()
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	v, err := dec.DecodeUint64()
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if got != name || v != 1 {
		return fmt.Errorf("read %s: unexpected encoding %q v%d", name, got, v)
	}
	if err := body(dec); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}

func decodeArray(dec *msgpack.Decoder, each func() error) error {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	for range max(n, 0) {
		if err := each(); err != nil {
			return err
		}
	}
	return nil
}

// decodeBucket reads a named bucket: its name, then id/value pairs.
func decodeBucket(dec *msgpack.Decoder, fn func(name, id string, v []byte)) error {
	name, err := dec.DecodeString()
	if err != nil {
		return err
	}
	return decodeArray(dec, func() error {
		id, err := dec.DecodeString()
		if err != nil {
			return err
		}
		v, err := dec.DecodeBytes()
		if err != nil {
			return err
		}
		if v == nil {
			v = []byte("null")
		}
		fn(name, id, v)
		return nil
	})
}
