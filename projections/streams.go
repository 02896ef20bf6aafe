// Package projections holds the engine's state as pure, deterministic folds
// of log records: stream items, state values, the registry of workers,
// functions and triggers, and the index of stream/state subscriptions. Every
// value comes from the record (no clocks, randomness or I/O) so a replay
// rebuilds exactly the same state.
//
// Nothing here locks: the engine serialises Apply against reads. Byte slices
// handed out (values, configs, metadata) are shared with the projection and
// must not be modified. Apply copies what it keeps from a record.
//
// Snapshot/Restore use msgpack, each snapshot starting with the projection's
// name and a format version. Several snapshots may be written back to back
// into one file; Restore then reads exactly its own bytes only if the reader
// implements io.ByteScanner (e.g. a shared *bufio.Reader), since otherwise
// the msgpack decoder buffers ahead.
package projections

import (
	"io"
	"slices"

	"github.com/iii-go/iii/log"
	"github.com/vmihailenco/msgpack/v5"
)

// Streams is the stream item store: stream -> group -> items in insertion
// order. Empty groups and streams are dropped, so a group that is emptied and
// written again counts as newly created.
type Streams struct {
	streams omap[*groups]
	groups  int
	items   int
}

// groups is one stream's groups in first-creation order.
type groups = omap[*bucket]

// StreamChange is what a stream record did. Old is nil when the item was
// missing; for a delete New is nil. Errors lists failed update ops.
type StreamChange struct {
	Existed  bool
	Old, New []byte
	Errors   []OpError
	Deleted  bool
}

// StreamGroups is one entry of ListAll.
type StreamGroups struct {
	ID     string
	Groups []string
}

// Apply folds one record; kinds other than stream.set/update/delete yield a
// zero StreamChange (stream.send changes nothing).
func (s *Streams) Apply(rec *log.Record) StreamChange {
	switch rec.Kind {
	case log.KindStreamSet, log.KindStreamUpdate:
		b := s.bucket(rec.Stream, rec.Group)
		var w itemWrite
		if rec.Kind == log.KindStreamSet {
			w = setItem(b, rec.Item, rec.Value)
		} else {
			w = updateItem(b, rec.Item, rec.Value)
		}
		if !w.existed {
			s.items++
		}
		return StreamChange{Existed: w.existed, Old: w.old, New: w.new, Errors: w.errs}
	case log.KindStreamDelete:
		gs, ok := s.streams.get(rec.Stream)
		if !ok {
			return StreamChange{}
		}
		b, ok := gs.get(rec.Group)
		if !ok {
			return StreamChange{}
		}
		old, existed := b.del(rec.Item)
		if !existed {
			return StreamChange{}
		}
		s.items--
		if b.len() == 0 {
			gs.del(rec.Group)
			s.groups--
			if gs.len() == 0 {
				s.streams.del(rec.Stream)
			}
		}
		return StreamChange{Existed: true, Old: old, Deleted: true}
	}
	return StreamChange{}
}

// bucket returns the group's bucket, creating stream and group as needed.
func (s *Streams) bucket(stream, group string) *bucket {
	gs, ok := s.streams.get(stream)
	if !ok {
		gs = &groups{}
		s.streams.set(stream, gs)
	}
	b, ok := gs.get(group)
	if !ok {
		b = &bucket{}
		gs.set(group, b)
		s.groups++
	}
	return b
}

// Get returns an item's stored value.
func (s *Streams) Get(stream, group, item string) ([]byte, bool) {
	if gs, ok := s.streams.get(stream); ok {
		if b, ok := gs.get(group); ok {
			return b.get(item)
		}
	}
	return nil, false
}

// List returns a group's values in insertion order (empty, not nil, when
// the group is unknown).
func (s *Streams) List(stream, group string) [][]byte {
	if gs, ok := s.streams.get(stream); ok {
		if b, ok := gs.get(group); ok {
			return b.values()
		}
	}
	return [][]byte{}
}

// ListGroups returns the stream's non-empty groups in first-creation order.
func (s *Streams) ListGroups(stream string) []string {
	if gs, ok := s.streams.get(stream); ok {
		return gs.keys()
	}
	return []string{}
}

// ListAll returns every stream sorted by id, each with its groups sorted.
func (s *Streams) ListAll() []StreamGroups {
	out := make([]StreamGroups, 0, s.streams.len())
	for id, gs := range s.streams.all() {
		g := gs.keys()
		slices.Sort(g)
		out = append(out, StreamGroups{ID: id, Groups: g})
	}
	slices.SortFunc(out, func(a, b StreamGroups) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// Counts reports how many streams, groups and items are stored.
func (s *Streams) Counts() (streams, groups, items int) {
	return s.streams.len(), s.groups, s.items
}

// Snapshot writes the store (msgpack), preserving every order.
func (s *Streams) Snapshot(w io.Writer) error {
	return writeSnapshot(w, "streams", func(enc *msgpack.Encoder) error {
		if err := enc.EncodeArrayLen(s.streams.len()); err != nil {
			return err
		}
		for id, gs := range s.streams.all() {
			if err := enc.EncodeString(id); err != nil {
				return err
			}
			if err := enc.EncodeArrayLen(gs.len()); err != nil {
				return err
			}
			for g, b := range gs.all() {
				if err := encodeBucket(enc, g, b); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Restore replaces the store with a snapshot's content.
func (s *Streams) Restore(r io.Reader) error {
	var fresh Streams
	err := readSnapshot(r, "streams", func(dec *msgpack.Decoder) error {
		n, err := decodeLen(dec)
		if err != nil {
			return err
		}
		for range n {
			id, err := dec.DecodeString()
			if err != nil {
				return err
			}
			ng, err := decodeLen(dec)
			if err != nil {
				return err
			}
			gs := &groups{}
			for range ng {
				g, b, err := decodeBucket(dec)
				if err != nil {
					return err
				}
				if b.len() == 0 {
					continue
				}
				gs.set(g, b)
				fresh.groups++
				fresh.items += b.len()
			}
			if gs.len() > 0 {
				fresh.streams.set(id, gs)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	*s = fresh
	return nil
}
