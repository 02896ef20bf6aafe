package replay

import (
	"bytes"
	"fmt"
	"math"
	"time"

	"github.com/iii-go/iii/history"
	"github.com/iii-go/iii/log"
	"github.com/iii-go/iii/projections"
)

// View is the engine's read model as of one record: the projections the
// engine folds its log into, rebuilt from the nearest snapshot and the
// records after it.
type View struct {
	// Index is the last record folded in; 0 is the empty view before the
	// first record.
	Index uint64
	// Time is that record's time (zero when it is unknown: index 0, or a
	// snapshot whose own record retention has removed).
	Time time.Time

	*projections.Model
}

// Source is a log to rebuild views from: its records and, when it has
// them, its snapshots.
type Source struct {
	history.Source
	// Snapshot returns the newest snapshot at or before index ((0, nil,
	// nil) when there is none); nil means the log keeps no snapshots and
	// views are rebuilt from the first record.
	Snapshot func(index uint64) (uint64, []byte, error)
}

// DirSource is the log directory dir, with its snapshots.
func DirSource(dir string) Source {
	return Source{Source: dirSource(dir), Snapshot: func(index uint64) (uint64, []byte, error) {
		return log.LatestSnapshotBefore(dir, index)
	}}
}

// ViewAtSource rebuilds the read model at point at in src: the newest
// snapshot at or before it, plus the records after the snapshot up to the
// point. An index beyond the last record is an error wrapping ErrPastEnd; a
// time after the last record gives the current view, one before the first
// record the empty view.
func ViewAtSource(src Source, at Point) (*View, error) {
	v, err := startView(src, at)
	if err != nil {
		return nil, err
	}
	if err := v.advance(src, at, nil); err != nil {
		return nil, err
	}
	return v, nil
}

// apply folds rec into the model, as the engine does.
func (v *View) apply(rec *log.Record) {
	v.Model.Fold(rec)
	v.Index, v.Time = rec.Index, time.Unix(0, rec.Time).UTC()
}

// startView restores the newest snapshot at or before at (or returns the
// empty view when there is none).
func startView(src Source, at Point) (*View, error) {
	snap, data, err := snapshotFor(src, at)
	if err != nil {
		return nil, err
	}
	v := &View{Model: projections.NewModel()}
	if data != nil {
		if err := v.Model.Restore(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("snapshot %d: %w", snap, err)
		}
		v.Index = snap
	}
	return v, nil
}

// snapshotFor finds the newest snapshot at or before at. For a time point
// that is the newest one whose record is not later than the time.
func snapshotFor(src Source, at Point) (uint64, []byte, error) {
	if src.Snapshot == nil {
		return 0, nil, nil
	}
	if !at.IsTime() {
		return src.Snapshot(at.Index)
	}
	limit := uint64(math.MaxUint64)
	for {
		snap, data, err := src.Snapshot(limit)
		if err != nil || data == nil {
			return 0, nil, err
		}
		index, t, err := firstFrom(src, snap)
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
func firstFrom(src Source, index uint64) (uint64, int64, error) {
	var i uint64
	var t int64
	err := src.Read(index, func(rec *log.Record) error {
		i, t = rec.Index, rec.Time
		return errStop
	})
	if err != nil && err != errStop {
		return 0, 0, err
	}
	return i, t, nil
}

// advance folds the records after s.Index up to point to. before, if not
// nil, sees each record just before it is applied.
func (s *View) advance(src Source, to Point, before func(*log.Record)) error {
	// Reading from s.Index itself (not after it) yields the time of a
	// snapshot's record.
	err := src.Read(max(s.Index, 1), func(rec *log.Record) error {
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
