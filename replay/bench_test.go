//go:build unix

package replay

import (
	"fmt"
	"github.com/iii-go/iii/history"
	"github.com/iii-go/iii/projections"
	"syscall"
	"testing"
	"time"

	"github.com/iii-go/iii/log"
)

// benchRecords is the size of the benchmark log.
const benchRecords = 200_000

// writeBenchLog writes stream sets spread over 16 streams and 64 items, with
// a registry record every 100, like an engine under steady write load.
func writeBenchLog(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	l, err := log.Open(dir, projections.NewModel(), log.Options{Sync: log.SyncNever})
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]*log.Record, 0, 1000)
	for i := range benchRecords {
		rec := &log.Record{Kind: log.KindStreamSet, Stream: fmt.Sprintf("s%d", i%16), Group: "g",
			Item: fmt.Sprintf("item-%d", i%64), Value: []byte(`{"title":"a todo item","done":false,"n":12345}`)}
		if i%100 == 0 {
			rec = &log.Record{Kind: log.KindFunctionRegistered, Worker: "w1", Function: fmt.Sprintf("f%d", i%10)}
		}
		if batch = append(batch, rec); len(batch) == cap(batch) {
			if _, err := l.AppendBatch(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	return dir
}

// cpuTime is the process's user+system CPU time: on a shared, loaded
// machine it tracks the work done far better than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkScanFilter measures filtered scans of a 200 000-record log. Each
// iteration also runs a bare log.Scan of the same log (outside the measured
// time) as the baseline, and the filtered scan's cost is reported relative
// to it (x_raw, by CPU time), since absolute rates on a shared machine vary
// run to run. records/cpu-s is the filtered scan's rate per CPU second.
func BenchmarkScanFilter(b *testing.B) {
	dir := writeBenchLog(b)
	rawScan := func() {
		n := 0
		if err := log.Scan(dir, 0, func(*log.Record) error { n++; return nil }); err != nil || n != benchRecords {
			b.Fatalf("raw scan: %d records, %v", n, err)
		}
	}
	cases := []struct {
		name string
		f    history.Filter
	}{
		{"none", history.Filter{}},
		{"stream+kind", history.Filter{Stream: "s7", Kinds: []log.Kind{log.KindStreamSet}}},
		{"item+time", history.Filter{Item: "item-3", Since: time.Unix(0, 1)}},
		{"function", history.Filter{Function: "f0"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var raw, filtered time.Duration
			matched := 0
			for b.Loop() {
				b.StopTimer()
				start := cpuTime()
				rawScan()
				raw += cpuTime() - start
				b.StartTimer()
				matched = 0
				start = cpuTime()
				if err := Records(dir, c.f, func(*log.Record) error { matched++; return nil }); err != nil {
					b.Fatal(err)
				}
				filtered += cpuTime() - start
			}
			n := float64(b.N) * benchRecords
			b.ReportMetric(n/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(n/filtered.Seconds(), "records/cpu-s")
			b.ReportMetric(float64(filtered)/float64(raw), "x_raw")
			b.ReportMetric(float64(matched), "matched")
		})
	}
}
