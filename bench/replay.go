package bench

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	iiilog "github.com/iii-go/iii/log"
	"github.com/iii-go/iii/projections"
)

// Replay and restart: a log of Options.Records stream.set records, read by
// log.Scan and reopened by log.Open into the engine's read model (from a
// snapshot, and from nothing),
// and an engine started on it, each against reading the same segments'
// entries with nothing else done (rawRead).

const (
	fillBatch   = 1000
	replayItems = 100_000 // distinct items the records cycle over
)

// fillLog writes n stream.set records (sync never) and a final snapshot.
func fillLog(dir string, n int) error {
	l, err := iiilog.Open(dir, projections.NewModel(), iiilog.Options{Sync: iiilog.SyncNever, Logger: quiet})
	if err != nil {
		return err
	}
	batch := make([]*iiilog.Record, 0, fillBatch)
	for i := 0; i < n; i += len(batch) {
		batch = batch[:0]
		for j := i; j < n && len(batch) < fillBatch; j++ {
			batch = append(batch, storeRecord("item-"+strconv.Itoa(j%replayItems)))
		}
		if _, err := l.AppendBatch(batch); err != nil {
			l.Close()
			return err
		}
	}
	if err := l.Snapshot(); err != nil {
		l.Close()
		return err
	}
	return l.Close()
}

// rawRead reads every segment entry under walDir, in file-name order,
// without checking anything: the raw limit of reading the log (which the
// bench wrote just before, so it holds no older tidwall START files).
func rawRead(walDir string) (int, time.Duration, error) {
	t0 := time.Now()
	ents, err := os.ReadDir(walDir)
	if err != nil {
		return 0, 0, err
	}
	n := 0
	br := bufio.NewReaderSize(nil, 64<<10)
	var buf []byte
	for _, e := range ents {
		if len(e.Name()) != 20 { // segments only: not the spare being prepared
			continue
		}
		f, err := os.Open(filepath.Join(walDir, e.Name()))
		if err != nil {
			return n, 0, err
		}
		br.Reset(f)
		for {
			size, err := binary.ReadUvarint(br)
			if err == io.EOF || (err == nil && size == 0) {
				break
			}
			if err == nil {
				buf = slices.Grow(buf[:0], int(size))[:size]
				_, err = io.ReadFull(br, buf)
			}
			if err != nil {
				f.Close()
				return n, 0, fmt.Errorf("%s: entry %d: %w", e.Name(), n, err)
			}
			n++
		}
		f.Close()
	}
	return n, time.Since(t0), nil
}

// scanAll reads every record with log.Scan.
func scanAll(dir string) (int, time.Duration, error) {
	t0 := time.Now()
	n := 0
	err := iiilog.Scan(dir, 0, func(*iiilog.Record) error { n++; return nil })
	return n, time.Since(t0), err
}

// timeOpen times log.Open of dir with a fresh stream projection.
func timeOpen(dir string) (time.Duration, error) {
	t0 := time.Now()
	l, err := iiilog.Open(dir, projections.NewModel(), iiilog.Options{Sync: iiilog.SyncNever, Logger: quiet})
	if err != nil {
		return 0, err
	}
	d := time.Since(t0)
	return d, l.Close()
}

// dropSnapshots empties dir's snapshot directory, so the next open
// replays every record.
func dropSnapshots(dir string) error {
	snaps := filepath.Join(dir, "snapshots")
	if err := os.RemoveAll(snaps); err != nil {
		return err
	}
	return os.Mkdir(snaps, 0o750)
}

func (r *runner) replay() error {
	tmp, err := os.MkdirTemp(r.o.TempDir, "iii-bench-replay-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "log")
	n := r.o.Records
	label := strconv.Itoa(n)
	if n%1_000_000 == 0 {
		label = strconv.Itoa(n/1_000_000) + "M"
	}
	r.progress("replay: writing %d records", n)
	if err := fillLog(dir, n); err != nil {
		return fmt.Errorf("fill log: %w", err)
	}

	// Both readers once to warm the page cache, then measured alternately.
	var scanT, rawT time.Duration
	var scanN, rawN int
	for round := range 3 {
		r.progress("replay: scan round %d", round+1)
		sn, st, err := scanAll(dir)
		if err != nil {
			return fmt.Errorf("log.Scan: %w", err)
		}
		rn, rt, err := rawRead(filepath.Join(dir, "wal"))
		if err != nil {
			return fmt.Errorf("raw wal read: %w", err)
		}
		if round > 0 {
			scanN, scanT, rawN, rawT = scanN+sn, scanT+st, rawN+rn, rawT+rt
		}
	}
	scanRate := float64(scanN) / scanT.Seconds()
	rawTime := rawT / 2
	r.add(Row{Scenario: "replay scan " + label + " records", Unit: "records/s", Ours: scanRate, Baseline: float64(rawN) / rawT.Seconds(), Against: "raw wal read"})
	r.rep.Summary.ReplayRate = scanRate

	r.progress("replay: log.Open from a snapshot")
	withSnap, err := timeOpen(dir)
	if err != nil {
		return fmt.Errorf("log.Open: %w", err)
	}
	r.add(Row{Scenario: "log.Open " + label + ", snapshot", Unit: "ms", Ours: ms(withSnap), Baseline: ms(rawTime), Against: "raw wal read"})

	r.progress("replay: log.Open without a snapshot")
	if err := dropSnapshots(dir); err != nil {
		return err
	}
	full, err := timeOpen(dir)
	if err != nil {
		return fmt.Errorf("log.Open: %w", err)
	}
	r.add(Row{Scenario: "log.Open " + label + ", no snapshot", Unit: "ms", Ours: ms(full), Baseline: ms(rawTime), Against: "raw wal read"})

	row := Row{Scenario: "engine start " + label + ", no snapshot", Unit: "ms", Ours: math.NaN(), Baseline: ms(rawTime), Against: "raw wal read", Note: "no engine"}
	if r.t.StartEngine != nil {
		// The snapshots above are the stream projection's alone, which an
		// engine cannot restore: it starts from the records.
		r.progress("replay: engine start")
		row.Note = ""
		if err := dropSnapshots(dir); err != nil {
			return err
		}
		t0 := time.Now()
		stop, err := r.t.StartEngine(dir)
		if err != nil {
			row.Note = "engine: " + err.Error()
		} else {
			row.Ours = ms(time.Since(t0))
			if err := stop(); err != nil {
				row.Note = "engine stop: " + err.Error()
			}
		}
	}
	r.add(row)
	return nil
}
