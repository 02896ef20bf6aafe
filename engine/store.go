package engine

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/iii-go/iii/log"
	"github.com/iii-go/iii/projections"
)

// store is the engine's view of the log: the projections every record is
// folded into, guarded by one lock so reads never see half an Apply. It is
// the log.State the sequencer drives; after a record is applied, the change
// events it produced are handed to the fan-out in log order.
type store struct {
	mu       sync.RWMutex
	streams  *projections.Streams
	states   *projections.States
	registry *projections.Registry
	subs     *projections.Subscriptions

	// changed is called on the sequencer goroutine, outside mu, once per
	// applied record that produced a stream or state change. It is nil while
	// the log replays history on open, so nothing is re-delivered.
	changed func(rec *log.Record, res applied)
}

// applied is what Apply hands back to the Append caller.
type applied struct {
	stream projections.StreamChange
	state  projections.StateChange
}

func newStore() *store {
	return &store{
		streams:  &projections.Streams{},
		states:   &projections.States{},
		registry: &projections.Registry{},
		subs:     &projections.Subscriptions{},
	}
}

// Apply folds one durable record into every projection.
func (s *store) Apply(rec *log.Record) any {
	var res applied
	s.mu.Lock()
	switch rec.Kind {
	case log.KindStreamSet, log.KindStreamUpdate, log.KindStreamDelete, log.KindStreamSend:
		res.stream = s.streams.Apply(rec)
	case log.KindStateSet, log.KindStateUpdate, log.KindStateDelete:
		res.state = s.states.Apply(rec)
	default:
		s.registry.Apply(rec)
		s.subs.Apply(rec)
	}
	s.mu.Unlock()
	if s.changed != nil {
		s.changed(rec, res)
	}
	return res
}

// snapshotVersion guards the layout written by Snapshot.
const snapshotVersion = 1

// Snapshot writes every projection, in a fixed order, each as a
// length-prefixed part so one projection's reader can never eat the next's.
func (s *store) Snapshot(w io.Writer) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	enc := msgpack.NewEncoder(w)
	if err := enc.EncodeUint(snapshotVersion); err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, p := range s.parts() {
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
func (s *store) Restore(r io.Reader) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	dec := msgpack.NewDecoder(r)
	v, err := dec.DecodeUint()
	if err != nil {
		return fmt.Errorf("engine snapshot: %w", err)
	}
	if v != snapshotVersion {
		return fmt.Errorf("engine snapshot: version %d, this engine reads %d", v, snapshotVersion)
	}
	for _, p := range s.parts() {
		b, err := dec.DecodeBytes()
		if err != nil {
			return fmt.Errorf("engine snapshot: %w", err)
		}
		if err := p.Restore(bytes.NewReader(b)); err != nil {
			return fmt.Errorf("engine snapshot: %w", err)
		}
	}
	return nil
}

type snapshotter interface {
	Snapshot(w io.Writer) error
	Restore(r io.Reader) error
}

func (s *store) parts() []snapshotter {
	return []snapshotter{s.streams, s.states, s.registry, s.subs}
}
