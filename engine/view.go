package engine

import (
	"io"
	"sync"

	"github.com/iii-go/iii/log"
	"github.com/iii-go/iii/projections"
)

// view is the engine's read model: the projections the log folds every
// record into (projections.Model), behind one lock so reads never see half
// an Apply. It is the log.Projection the sequencer drives; after a record is
// applied, what it changed is handed to the fan-out in log order.
type view struct {
	mu sync.RWMutex
	*projections.Model

	// changed is called on the sequencer goroutine, outside mu, once per
	// applied record. It is nil while the log replays history on open, so
	// nothing is re-delivered.
	changed func(rec *log.Record, ch projections.Change)
}

func newView() *view { return &view{Model: projections.NewModel()} }

// Apply folds one durable record. What Append returns to the writer is the
// part of the projections.Change its record's kind concerns: a StreamChange
// for a stream record, a StateChange for a state record, the whole Change
// otherwise. Boxing the whole Change cost an allocation of its full size
// (320 bytes) on every stream::set.
func (v *view) Apply(rec *log.Record) any {
	v.mu.Lock()
	ch := v.Model.Fold(rec)
	v.mu.Unlock()
	if v.changed != nil {
		v.changed(rec, ch)
	}
	switch rec.Kind {
	case log.KindStreamSet, log.KindStreamUpdate, log.KindStreamDelete, log.KindStreamSend:
		return ch.Stream
	case log.KindStateSet, log.KindStateUpdate, log.KindStateDelete:
		return ch.State
	}
	return ch
}

// Snapshot writes the model under the read lock.
func (v *view) Snapshot(w io.Writer) error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.Model.Snapshot(w)
}

// Restore replaces the model with a snapshot's contents.
func (v *view) Restore(r io.Reader) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.Model.Restore(r)
}
