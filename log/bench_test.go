package log

import (
	"bytes"
	"io"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/iii-go/iii/internal/disk"
)

// benchAppenders is the number of goroutines appending at once in the
// parallel benchmarks (SetParallelism multiplies GOMAXPROCS), and the batch
// size of the raw baseline.
const benchAppenders = 64

// nopState applies nothing, so benchmarks measure the log alone.
type nopState struct{}

func (nopState) Apply(*Record) any         { return nil }
func (nopState) Snapshot(io.Writer) error  { return nil }
func (nopState) Restore(r io.Reader) error { return nil }

// benchRecord is a typical stream.set: short names and a ~120-byte value.
func benchRecord() *Record {
	return &Record{
		Kind:   KindStreamSet,
		Stream: "todos",
		Group:  "inbox",
		Item:   "01HZX3K9J7Q8W5V4T2R1N0M9P8",
		Value:  []byte(`{"id":"01HZX3K9J7Q8W5V4T2R1N0M9P8","title":"buy milk","done":false,"tags":["home","errand"],"due":"2026-12-01"}`),
	}
}

func benchAppend(b *testing.B, policy SyncPolicy) {
	l, err := Open(b.TempDir(), nopState{}, Options{Sync: policy, SnapshotEvery: noAutoSnapshots, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	procs := max(1, benchAppenders/runtime.GOMAXPROCS(0))
	b.SetParallelism(procs)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rec := benchRecord()
		for pb.Next() {
			rec.ID, rec.Time = ulid.ULID{}, 0 // nopState keeps nothing: reuse
			if _, err := l.Append(rec); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	s := l.Stats()
	b.ReportMetric(float64(s.Appends)/float64(max(s.Batches, 1)), "recs/batch")
	b.ReportMetric(float64(s.Appends)/float64(max(s.Syncs, 1)), "recs/fsync")
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAppendAlways measures Append under SyncAlways with 64 appenders:
// group commit, one fsync per batch.
func BenchmarkAppendAlways(b *testing.B) { benchAppend(b, SyncAlways) }

// BenchmarkAppendNever measures the sequencer without fsync.
func BenchmarkAppendNever(b *testing.B) { benchAppend(b, SyncNever) }

// BenchmarkRawWAL is the raw limit for BenchmarkAppendAlways: batches of
// benchAppenders pre-encoded entries, each batch one write and one
// fdatasync into preallocated space, with no sequencer, encoding or Apply.
// ns/op is per record.
func BenchmarkRawWAL(b *testing.B) {
	a, err := disk.NewAppender(filepath.Join(b.TempDir(), "raw"), DefaultSegmentSize)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	frame, _ := EncodeRecord(nil, benchRecord())
	entry := AppendEntry(nil, frame)
	batch := bytes.Repeat(entry, benchAppenders)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(benchAppenders, b.N-done)
		if err := a.Append(batch[:n*len(entry)]); err != nil {
			b.Fatal(err)
		}
		done += n
	}
}

func BenchmarkEncodeRecord(b *testing.B) {
	rec := benchRecord()
	rec.V, rec.ID, rec.Time = RecordVersion, ulid.Make(), 1_700_000_000_000_000_000
	buf, _ := EncodeRecord(nil, rec)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf, _ = EncodeRecord(buf[:0], rec)
	}
}

func BenchmarkDecodeRecord(b *testing.B) {
	rec := benchRecord()
	rec.V, rec.ID, rec.Time = RecordVersion, ulid.Make(), 1_700_000_000_000_000_000
	frame, _ := EncodeRecord(nil, rec)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	var r Record
	for i := 0; i < b.N; i++ {
		if err := DecodeRecord(frame, &r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScan reads a log of b.N records with Scan; ns/op is per record.
func BenchmarkScan(b *testing.B) {
	dir := b.TempDir()
	l, err := Open(dir, nopState{}, Options{Sync: SyncNever, SnapshotEvery: noAutoSnapshots, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]*Record, 0, 1000)
	for left := b.N; left > 0; left -= len(recs) {
		recs = recs[:0]
		for i := 0; i < min(left, cap(recs)); i++ {
			recs = append(recs, benchRecord())
		}
		if _, err := l.AppendBatch(recs); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	if err := Scan(dir, 0, func(*Record) error { n++; return nil }); err != nil {
		b.Fatal(err)
	}
	if n != b.N {
		b.Fatalf("scanned %d records, want %d", n, b.N)
	}
}
