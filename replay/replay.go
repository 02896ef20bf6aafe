// Package replay answers questions about the engine's history by reading its
// write-ahead log: which records match a filter, what the state was at a
// point, what changed between two points, and what is being written now.
// It only reads (log.Scan and snapshots), so it is safe on the data
// directory of a running engine, and it never writes to the log.
package replay

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/iii-go/iii/log"
)

// ErrPastEnd is wrapped by errors about an index beyond the log's last
// record.
var ErrPastEnd = errors.New("past the end of the log")

// errStop ends a log.Scan early; it never leaves this package.
var errStop = errors.New("replay: stop scan")

// LogDir finds the log directory for dir, which may be the log directory
// itself (holding wal/: the stream module's file_path, such as
// ./data/stream_store) or an engine data directory holding it under log/
// (or under stream_store/, where the seed's config puts it).
// Otherwise the error wraps log.ErrNotALog.
func LogDir(dir string) (string, error) {
	// stream_store: the seed's config puts the log at ./data/stream_store.
	for _, d := range []string{dir, filepath.Join(dir, "log"), filepath.Join(dir, "stream_store")} {
		if fi, err := os.Stat(filepath.Join(d, "wal")); err == nil && fi.IsDir() {
			return d, nil
		}
	}
	return "", fmt.Errorf("%s: %w; nor is %s", dir, log.ErrNotALog, filepath.Join(dir, "log"))
}

// Records calls fn, in index order, for every record in the log directory
// dir that f selects. The *log.Record is reused between calls (keep its
// fields, not the pointer). The scan ends at the first record after
// f.ToIndex or f.Until: record times do not go backwards (the sequencer
// keeps them monotonic; only a clock set back between two engine runs
// could break that, and then a time-bounded scan ends early). A FromIndex or ToIndex beyond the last record is an
// error wrapping ErrPastEnd. An error from fn ends the scan and is returned.
func Records(dir string, f Filter, fn func(*log.Record) error) error {
	return RecordsProgress(dir, f, nil, fn)
}

// RecordsProgress is Records reporting every index it reads, matching or
// not, to p (which may be nil).
func RecordsProgress(dir string, f Filter, p *Progress, fn func(*log.Record) error) error {
	// A bound past the end is refused before anything is printed.
	if f.FromIndex > 0 || f.ToIndex > 0 {
		last, err := LastIndex(dir)
		if err != nil {
			return err
		}
		switch {
		case f.FromIndex > last:
			return pastEnd(dir, "from_index", f.FromIndex)
		case f.ToIndex > last:
			return pastEnd(dir, "to_index", f.ToIndex)
		}
	}
	m := f.compile()
	var last uint64
	n := 0
	err := log.Scan(dir, m.from, func(rec *log.Record) error {
		last = rec.Index
		if rec.Index > m.to || rec.Time > m.until {
			return errStop
		}
		p.set(rec.Index)
		if !m.match(rec) {
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
	// The scan reached the end of the log.
	switch {
	case f.FromIndex > 0 && last == 0:
		return pastEnd(dir, "from_index", f.FromIndex)
	case f.ToIndex > 0 && last < f.ToIndex:
		return pastEnd(dir, "to_index", f.ToIndex)
	}
	return nil
}

// pastEnd builds the error for a point beyond the last record.
func pastEnd(dir, what string, index uint64) error {
	last, err := LastIndex(dir)
	if err != nil {
		return err
	}
	if last == 0 {
		return fmt.Errorf("%s %d is %w (the log is empty)", what, index, ErrPastEnd)
	}
	return fmt.Errorf("%s %d is %w (last index %d)", what, index, ErrPastEnd, last)
}

// LastIndex returns the index of the last record in the log directory dir
// (0 for an empty log). It reads from the newest snapshot on, so it costs at
// most one snapshot interval of records.
func LastIndex(dir string) (uint64, error) {
	snap, _, err := log.LatestSnapshotBefore(dir, math.MaxUint64)
	if err != nil {
		return 0, err
	}
	last, err := scanEnd(dir, snap)
	if err == nil && last == 0 && snap > 1 {
		last, err = scanEnd(dir, 1) // a snapshot left ahead of a repaired tail
	}
	return last, err
}

func scanEnd(dir string, from uint64) (uint64, error) {
	var last uint64
	err := log.Scan(dir, from, func(rec *log.Record) error {
		last = rec.Index
		return nil
	})
	return last, err
}

// Query returns the records f selects as Rows, at most limit of them (or
// f.Limit, whichever is smaller; 0 means no bound), for a caller that wants
// values rather than a callback: engine::history::query answers with them.
func Query(dir string, f Filter, limit int) ([]Row, error) {
	if limit > 0 && (f.Limit == 0 || limit < f.Limit) {
		f.Limit = limit
	}
	rows := []Row{}
	err := Records(dir, f, func(rec *log.Record) error {
		rows = append(rows, NewRow(rec))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// FollowInterval is how often Follow looks for new records.
const FollowInterval = 200 * time.Millisecond

// Follow calls fn for every record f selects, like Records, and then keeps
// watching the log directory for new ones until ctx is done (it then
// returns nil), f's ToIndex, Until or Limit is reached, or fn fails. After
// each poll that delivered records it calls caughtUp (if not nil): the
// moment to flush output, since nothing more is waiting.
//
// It polls: every FollowInterval it runs log.Scan from the index after the
// last one seen. Scan is lock-free and read-only, so this works while an
// engine in another process appends, needs no cooperation from it, and a
// record shows up once it is fully written (a record still being written
// reads as the end of the log until the next poll). Each poll rereads the
// tail segment up to that index, which is cheap next to the interval;
// file-change notifications would save that but are not portable.
func Follow(ctx context.Context, dir string, f Filter, fn func(*log.Record) error, caughtUp func() error) error {
	m := f.compile()
	next := m.from
	n := 0
	done := false
	tick := time.NewTicker(FollowInterval)
	defer tick.Stop()
	for {
		delivered := false
		err := log.Scan(dir, next, func(rec *log.Record) error {
			next = rec.Index + 1
			if rec.Index > m.to || rec.Time > m.until {
				done = true
				return errStop
			}
			if rec.Index&1023 == 0 && ctx.Err() != nil {
				return errStop
			}
			if !m.match(rec) {
				return nil
			}
			if err := fn(rec); err != nil {
				return err
			}
			delivered = true
			if n++; n == f.Limit {
				done = true
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return err
		}
		if delivered && caughtUp != nil {
			if err := caughtUp(); err != nil {
				return err
			}
		}
		if done || next > m.to {
			return nil
		}
		// Once until has passed, one more poll picks up records stamped
		// before it that were still being written.
		late := m.until != math.MaxInt64 && time.Now().UnixNano() > m.until
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if late {
			done = true
		}
	}
}
