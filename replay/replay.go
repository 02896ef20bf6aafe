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

	"github.com/iii-go/iii/history"
	"github.com/iii-go/iii/log"
)

// ErrPastEnd is wrapped by errors about an index beyond the log's last
// record.
var ErrPastEnd = history.ErrPastEnd

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

// RecordsProgress calls fn, in index order, for every record of src that f
// selects (history.Select has the rules), reporting every index it reads,
// matching or not, to p (which may be nil).
func RecordsProgress(src history.Source, f history.Filter, p *Progress, fn func(*log.Record) error) error {
	return history.Select(src, f, p.set, fn)
}

// dirSource reads the log directory dir.
func dirSource(dir string) history.Source {
	return history.Dir(dir, func() (uint64, error) { return lastIndex(dir) })
}

// lastIndex returns the index of the last record in the log directory dir
// (0 for an empty log). It reads from the newest snapshot on, so it costs at
// most one snapshot interval of records.
func lastIndex(dir string) (uint64, error) {
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

// FollowInterval is how often FollowSource looks for new records.
const FollowInterval = 200 * time.Millisecond

// FollowSource calls fn for every record of src f selects, like
// RecordsProgress, and then keeps watching src for new ones until ctx is
// done (it then returns nil), f's ToIndex, Until or Limit is reached, or
// fn fails. After each poll that delivered records it calls caughtUp (if
// not nil): the moment to flush output, since nothing more is waiting.
//
// It polls: every FollowInterval it reads src from the index after the
// last one seen. For a log directory that is log.Scan, lock-free and
// read-only, so this works while an engine in another process appends,
// needs no cooperation from it, and a record shows up once it is fully
// written (a record still being written reads as the end of the log until
// the next poll). Each poll rereads the tail segment up to that index,
// which is cheap next to the interval; file-change notifications would
// save that but are not portable.
func FollowSource(ctx context.Context, src history.Source, f history.Filter, fn func(*log.Record) error, caughtUp func() error) error {
	m := f.Compile()
	next := m.From()
	n := 0
	done := false
	tick := time.NewTicker(FollowInterval)
	defer tick.Stop()
	for {
		delivered := false
		err := src.Read(next, func(rec *log.Record) error {
			next = rec.Index + 1
			if m.Beyond(rec) {
				done = true
				return errStop
			}
			if rec.Index&1023 == 0 && ctx.Err() != nil {
				return errStop
			}
			if !m.Match(rec) {
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
		if done || next > m.To() {
			return nil
		}
		// Once until has passed, one more poll picks up records stamped
		// before it that were still being written.
		late := !f.Until.IsZero() && time.Now().After(f.Until)
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
