// Package history selects records from the engine's write-ahead log: the
// filter behind `iii replay` and engine::history::query, and the JSON row
// both print a record as. It reads through a Source, so the same query runs
// on a live log (on disk or in memory) and on a log directory read by
// another process.
package history

import (
	"errors"
	"fmt"

	"github.com/iii-go/iii/log"
)

// ErrPastEnd is wrapped by errors about an index beyond the log's last
// record.
var ErrPastEnd = errors.New("past the end of the log")

// errStop ends a read early; it never leaves this package.
var errStop = errors.New("history: stop")

// Source is a log to read: Read calls fn for every record with index >=
// from, in order (the *log.Record may be reused between calls); Last returns
// the index of the last record (0 for an empty log).
type Source struct {
	Read func(from uint64, fn func(*log.Record) error) error
	Last func() (uint64, error)
}

// LiveLog reads an open log, whichever store it keeps.
func LiveLog(l log.Journal) Source {
	return Source{Read: l.Read, Last: func() (uint64, error) { return l.LastIndex(), nil }}
}

// Dir reads the log directory dir with log.Scan, safe next to the engine
// appending to it. last finds its last index (replay has one that starts
// from the newest snapshot).
func Dir(dir string, last func() (uint64, error)) Source {
	return Source{Read: func(from uint64, fn func(*log.Record) error) error { return log.Scan(dir, from, fn) }, Last: last}
}

// Select calls fn, in index order, for every record of src that f selects.
// seen, if not nil, is told every index read, matching or not. The
// *log.Record is reused between calls (keep its fields, not the pointer).
// The read ends at the first record after f.ToIndex or f.Until: record times
// do not go backwards (the sequencer keeps them monotonic; only a clock set
// back between two engine runs could break that, and then a time-bounded
// read ends early). A FromIndex or ToIndex beyond the last record is an
// error wrapping ErrPastEnd. An error from fn ends the read and is returned.
func Select(src Source, f Filter, seen func(index uint64), fn func(*log.Record) error) error {
	// A bound past the end is refused before anything is delivered.
	if f.FromIndex > 0 || f.ToIndex > 0 {
		last, err := src.Last()
		if err != nil {
			return err
		}
		switch {
		case f.FromIndex > last:
			return pastEnd("from_index", f.FromIndex, last)
		case f.ToIndex > last:
			return pastEnd("to_index", f.ToIndex, last)
		}
	}
	m := f.Compile()
	var last uint64
	n := 0
	err := src.Read(m.From(), func(rec *log.Record) error {
		last = rec.Index
		if m.Beyond(rec) {
			return errStop
		}
		if seen != nil {
			seen(rec.Index)
		}
		if !m.Match(rec) {
			return nil
		}
		if err := fn(rec); err != nil {
			return err
		}
		if n++; n == f.Limit {
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return nil
	}
	if err != nil {
		return err
	}
	// The read reached the end of the log (which may have grown meanwhile).
	if (f.FromIndex > 0 && last == 0) || (f.ToIndex > 0 && last < f.ToIndex) {
		end, err := src.Last()
		if err != nil {
			return err
		}
		if f.FromIndex > 0 && last == 0 {
			return pastEnd("from_index", f.FromIndex, end)
		}
		return pastEnd("to_index", f.ToIndex, end)
	}
	return nil
}

// pastEnd builds the error for a point beyond the last record.
func pastEnd(what string, index, last uint64) error {
	if last == 0 {
		return fmt.Errorf("%s %d is %w (the log is empty)", what, index, ErrPastEnd)
	}
	return fmt.Errorf("%s %d is %w (last index %d)", what, index, ErrPastEnd, last)
}

// Query returns the records f selects as Rows, at most limit of them (or
// f.Limit, whichever is smaller; 0 means no bound), for a caller that wants
// values rather than a callback: engine::history::query answers with them.
func Query(src Source, f Filter, limit int) ([]Row, error) {
	if limit > 0 && (f.Limit == 0 || limit < f.Limit) {
		f.Limit = limit
	}
	rows := []Row{}
	err := Select(src, f, nil, func(rec *log.Record) error {
		rows = append(rows, NewRow(rec))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}
