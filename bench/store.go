package bench

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iii-go/iii/internal/disk"
	iiilog "github.com/iii-go/iii/log"
)

// The log alone: durable appends through the sequencer (group commit under
// sync always) against the same entries written the way the segment store
// writes them, one write and one fdatasync into preallocated space per
// batch of as many entries as there are appenders.

// nopState applies nothing, so the store scenario measures the log alone.
type nopState struct{}

func (nopState) Apply(*iiilog.Record) any  { return nil }
func (nopState) Snapshot(io.Writer) error  { return nil }
func (nopState) Restore(r io.Reader) error { return nil }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// storeRecord is a typical stream.set: short names, a ~100-byte value.
func storeRecord(item string) *iiilog.Record {
	return &iiilog.Record{
		Kind:   iiilog.KindStreamSet,
		Stream: "todos",
		Group:  "inbox",
		Item:   item,
		Value:  []byte(`{"id":"` + item + `","title":"buy milk","done":false,"tags":["home","errand"],"due":"2026-12-01"}`),
	}
}

// appendLoad runs n goroutines appending to l for d and returns appends/s.
func appendLoad(l *iiilog.Log, n int, d time.Duration) (float64, error) {
	var (
		count    atomic.Uint64
		stop     atomic.Bool
		wg       sync.WaitGroup
		firstErr atomic.Pointer[error]
	)
	t0 := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if _, err := l.Append(storeRecord("item-1")); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				count.Add(1)
			}
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return 0, *e
	}
	return float64(count.Load()) / time.Since(t0).Seconds(), nil
}

// rawWAL writes batches of batch pre-encoded segment entries with a, one
// write and one fdatasync each. It returns records/s.
func rawWAL(a *disk.Appender, entry []byte, batch int, d time.Duration) (float64, error) {
	buf := bytes.Repeat(entry, batch)
	count := 0
	t0 := time.Now()
	for time.Since(t0) < d {
		if err := a.Append(buf); err != nil {
			return 0, err
		}
		count += batch
	}
	return float64(count) / time.Since(t0).Seconds(), nil
}

// tempLog opens a durable log (sync always) in a fresh directory under
// TempDir; done closes it and removes the directory.
func (r *runner) tempLog(name string) (l *iiilog.Log, dir string, done func(), err error) {
	dir, err = os.MkdirTemp(r.o.TempDir, "iii-bench-"+name+"-*")
	if err != nil {
		return nil, "", nil, err
	}
	l, err = iiilog.Open(filepath.Join(dir, "log"), nopState{}, iiilog.Options{Sync: iiilog.SyncAlways, Logger: quiet})
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", nil, err
	}
	return l, dir, func() { l.Close(); os.RemoveAll(dir) }, nil
}

func (r *runner) store() error {
	l, dir, done, err := r.tempLog("store")
	if err != nil {
		return err
	}
	defer done()
	a, err := disk.NewAppender(filepath.Join(dir, "raw"), iiilog.DefaultSegmentSize)
	if err != nil {
		return err
	}
	defer a.Close()
	frame, err := iiilog.EncodeRecord(nil, storeRecord("item-1"))
	if err != nil {
		return err
	}
	entry := iiilog.AppendEntry(nil, frame)
	for _, n := range []int{1, inFlight} {
		r.progress("store %d appenders", n)
		var ours, base float64
		half := r.o.Duration / 2
		for range 2 {
			o, err := appendLoad(l, n, half)
			if err != nil {
				return fmt.Errorf("log append: %w", err)
			}
			b, err := rawWAL(a, entry, n, half)
			if err != nil {
				return fmt.Errorf("raw wal: %w", err)
			}
			ours, base = ours+o/2, base+b/2
		}
		label := fmt.Sprintf("log append, %d appenders, sync always", n)
		if n == 1 {
			label = "log append, 1 appender, sync always"
		}
		row := Row{Scenario: label, Unit: "appends/s", Ours: ours, Baseline: base, Against: "raw wal"}
		r.add(row)
		if n == inFlight {
			r.rep.Summary.StoreRatio = row.Ratio()
		}
	}
	return nil
}
