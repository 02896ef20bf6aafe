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

// Apply folds one durable record; Append returns projections.Result to the
// writer.
func (v *view) Apply(rec *log.Record) any {
	v.mu.Lock()
	ch := v.Model.Fold(rec)
	v.mu.Unlock()
	if v.changed != nil {
		v.changed(rec, ch)
	}
	return projections.Result(rec.Kind, ch)
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
