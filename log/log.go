package log

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// Projection is what the log folds records into (the engine's read model). Its
// methods are called by one of the log's goroutines at a time and must not
// call back into the Log (Append, AppendBatch, Snapshot would wait on them).
type Projection interface {
	// Apply is called in index order, only
	// after the record is durable under the sync policy (and, on Open, for
	// every record after the restored snapshot). Its return value is
	// handed back to the Append caller. Apply may keep rec.
	Apply(rec *Record) any
	// Snapshot writes the Projection's full contents. It is called between
	// batches, with none in flight, so it sees a state that
	// includes exactly the records up to LastIndex.
	Snapshot(w io.Writer) error
	// Restore replaces the Projection's contents with a Snapshot's output. It is
	// called at most once, by Open, before any Apply.
	Restore(r io.Reader) error
}

var (
	// ErrClosed is returned by Append, AppendBatch and Snapshot after
	// Close, and by a second Close.
	ErrClosed = errors.New("log closed")
	// ErrFailed is wrapped by every append answered after a write or fsync
	// failed. A failed fsync cannot be retried safely (the kernel may have
	// dropped the dirty pages and a second fsync can report success), so
	// the log stops accepting appends; Close it and Open again, which
	// repairs whatever reached the disk.
	ErrFailed = errors.New("log failed: an earlier write or fsync error left durability unknown")
)

// Journal is the log as the engine uses it. *Log, the local write-ahead
// log, is the embedded default; package cluster serves the same contract
// from a NATS JetStream stream shared by several engines. In both, records
// are applied to the Projection in index order, each exactly once, and an
// append is answered only after its record is durable and applied.
type Journal interface {
	// Append blocks until rec is durable and applied and returns Apply's
	// result.
	Append(rec *Record) (any, error)
	// AppendAsync calls then with Apply's result (or the error) once rec is
	// durable and applied; then must be quick and must not call back in.
	AppendAsync(rec *Record, then func(result any, err error)) error
	// AppendAsyncBatch is AppendAsync for several records, thens[i]
	// answering recs[i], handed over together so that they can share a
	// write and an fsync.
	AppendAsyncBatch(recs []*Record, thens []func(result any, err error)) error
	// AppendBatch appends recs in order and returns Apply's result for each.
	AppendBatch(recs []*Record) ([]any, error)
	// Read calls fn for each record with index >= from, in order, up to
	// LastIndex as of the call; the *Record is reused between calls.
	Read(from uint64, fn func(*Record) error) error
	// FirstIndex is the oldest index held; LastIndex the last one applied.
	FirstIndex() uint64
	LastIndex() uint64
	// Snapshot saves the Projection so the next start replays less.
	Snapshot() error
	// Close answers what is queued and releases the log.
	Close() error
}

var _ Journal = (*Log)(nil)

// Stats counts the sequencer's work since Open.
type Stats struct {
	Appends uint64 // records committed
	Batches uint64 // group commits (one write each)
	Syncs   uint64 // fsyncs of the log
	Bytes   uint64 // frame bytes written (checksum + msgpack)
}

// Log is a write-ahead log with a single sequencer goroutine that assigns
// indexes and group-commits (under SyncAlways a syncer goroutine fsyncs
// behind it) and applies records to a Projection in index order. All methods
// are safe for concurrent use.
type Log struct {
	dir       string
	opts      Options
	recovered Recovery
	logger    *slog.Logger
	st        Projection
	store     store
	wal       *walStore // nil in InMemory mode

	mu     sync.RWMutex // guards closed and sending on reqs
	closed bool
	reqs   chan *request

	seqDone  chan struct{} // closed when the sequencer has shut down
	closeErr error         // set before seqDone is closed

	lastIndex atomic.Uint64 // last applied (acknowledged) index
	appends   atomic.Uint64
	batches   atomic.Uint64
	syncs     atomic.Uint64
	bytes     atomic.Uint64

	snapJobs    chan snapJob // nil in InMemory mode
	snapDone    chan struct{}
	snapPending atomic.Int32  // snapshots queued or being written
	snapWritten atomic.Uint64 // index of the newest snapshot on disk

	// failure is set once a write or sync fails; it answers every later
	// append. The sequencer and the syncer both set it.
	failMu  sync.Mutex
	failure error

	// durable carries written batches from the sequencer to the syncer
	// goroutine under SyncAlways (nil otherwise), which fsyncs them, then
	// applies and answers them in order; meanwhile the sequencer writes
	// the next batch.
	durable    chan pending
	syncerDone chan struct{}

	// Owned by the sequencer goroutine.
	written      uint64 // last index written to the store
	dirty        bool   // written but not fsynced (SyncInterval, SyncNever)
	enc          *recordEncoder
	buf          []byte
	ends         []int
	batch        []*request
	stamper      *Stamper
	sinceRecords uint64
	sinceBytes   int64
	lastSnapSize int
}

// Submit queue bound and group-commit size limit.
const (
	queueSize       = 1024
	maxBatchRecords = 4096
	// syncerQueue bounds the batches written but not yet fsynced: beyond
	// it the sequencer waits, and requests queue up into bigger batches.
	syncerQueue = 4
	// maxKeptBuf is the largest encode buffer kept between batches; one
	// huge batch should not pin its buffer forever.
	maxKeptBuf = 4 << 20
)

// Open opens (creating if needed) the log in dir and brings st up to date:
// it repairs a torn tail, restores the newest intact snapshot, and replays
// the records after it through st.Apply. In InMemory mode dir is unused and
// st starts empty.
func Open(dir string, st Projection, opts Options) (*Log, error) {
	opts = opts.withDefaults()
	l := &Log{
		dir:     dir,
		opts:    opts,
		logger:  opts.Logger,
		st:      st,
		reqs:    make(chan *request, queueSize),
		seqDone: make(chan struct{}),
		enc:     newRecordEncoder(),
		stamper: NewStamper(),
	}
	switch {
	case opts.disk != nil: // tests: nothing is replayed into st
		l.store = opts.disk
		var last uint64
		_ = opts.disk.read(opts.disk.firstIndex(), math.MaxUint64, func(i uint64, _ []byte) error { last = i; return nil })
		l.lastIndex.Store(last)
	case opts.InMemory:
		l.opts.Sync = SyncNever // nothing to fsync
		l.store = newMemStore(opts.RetainBytes, opts.RetainAge)
	default:
		ws, last, err := openWAL(dir, opts.SegmentSize, l.logger)
		if err != nil {
			return nil, err
		}
		l.wal, l.store = ws, ws
		if err := l.recover(last); err != nil {
			ws.close()
			return nil, err
		}
		l.snapJobs = make(chan snapJob, 1)
		l.snapDone = make(chan struct{})
		go l.snapshotWriter()
	}
	l.written = l.lastIndex.Load()
	if l.opts.Sync == SyncAlways {
		l.durable = make(chan pending, syncerQueue)
		l.syncerDone = make(chan struct{})
		go l.syncer()
	}
	go l.run()
	return l, nil
}

// recover restores the newest usable snapshot and replays the rest.
func (l *Log) recover(last uint64) error {
	first := l.wal.firstIndex()
	snapIndex, data, err := loadSnapshot(filepath.Join(l.dir, snapshotDirName), first, last, l.logger)
	if err != nil {
		return fmt.Errorf("log: open %s: snapshots: %w", l.dir, err)
	}
	if data != nil {
		if err := l.st.Restore(bytes.NewReader(data)); err != nil {
			return fmt.Errorf("log: open %s: restore snapshot %d: %w", l.dir, snapIndex, err)
		}
	} else if first > 1 {
		return fmt.Errorf("log: open %s: records before %d were removed and no intact snapshot covers them", l.dir, first)
	}
	d := newRecordDecoder()
	err = scanSegments(l.wal.walDir, snapIndex+1, last, true, func(index uint64, frame []byte) error {
		rec := new(Record) // Apply may keep it
		if err := d.decodePayload(frame[frameHeaderSize:], rec); err != nil {
			return fmt.Errorf("log: open %s: replay index %d: %w", l.dir, index, err)
		}
		rec.Index = index
		l.st.Apply(rec)
		l.sinceBytes += int64(len(frame))
		return nil
	})
	if err != nil {
		return fmt.Errorf("log: open %s: replay: %w", l.dir, err)
	}
	l.lastIndex.Store(last)
	l.snapWritten.Store(snapIndex)
	l.sinceRecords = last - snapIndex
	l.recovered = Recovery{SnapshotIndex: snapIndex, Replayed: last - snapIndex}
	return nil
}

// Recovery says how Open rebuilt the state: from which snapshot (0: none)
// and how many records after it were replayed.
type Recovery struct {
	SnapshotIndex uint64
	Replayed      uint64
}

// Recovered reports how Open rebuilt the state, so operators can see
// whether the snapshot path was taken.
func (l *Log) Recovered() Recovery { return l.recovered }

// Append assigns rec the next index, fills in a zero ID (a ULID, monotonic
// within the process), Time (Unix nanoseconds) and V, and blocks until the
// record is durable under the sync policy and applied to the Projection. It
// returns Projection.Apply's result. The log owns rec from the call on: do not
// modify it afterwards (Apply may keep it).
func (l *Log) Append(rec *Record) (result any, err error) {
	if rec == nil {
		return nil, errors.New("log: append: nil record")
	}
	r := getRequest()
	defer putRequest(r)
	r.recs = append(r.recs, rec)
	r.results = append(r.results, nil)
	if err := l.submit(r); err != nil {
		return nil, fmt.Errorf("log: append: %w", err)
	}
	<-r.done
	return r.results[0], r.err
}

// AppendAsync is Append without the wait: then is called with Apply's
// result, or the error, once the record is durable and applied. It runs on
// one of the log's goroutines, in index order, so it must be quick, must not
// block and must not call back into the Log. AppendAsync returns an error,
// and then is never called, only when the log is closed; it blocks while
// the submit queue is full.
func (l *Log) AppendAsync(rec *Record, then func(result any, err error)) error {
	if rec == nil || then == nil {
		return errors.New("log: append: nil record or callback")
	}
	r := getRequest()
	r.recs = append(r.recs, rec)
	r.results = append(r.results, nil)
	r.thens = append(r.thens, then)
	if err := l.submit(r); err != nil {
		putRequest(r)
		return fmt.Errorf("log: append: %w", err)
	}
	return nil
}

// AppendAsyncBatch is AppendAsync for several records, thens[i] answering
// recs[i]: they are written in one batch, so one fsync covers them all, and
// as with AppendBatch either all of them are committed or none. Callbacks
// run in index order.
func (l *Log) AppendAsyncBatch(recs []*Record, thens []func(result any, err error)) error {
	if len(recs) != len(thens) {
		return fmt.Errorf("log: append batch: %d records, %d callbacks", len(recs), len(thens))
	}
	for i, rec := range recs {
		if rec == nil || thens[i] == nil {
			return fmt.Errorf("log: append batch: record or callback %d is nil", i)
		}
	}
	if len(recs) == 0 {
		return nil
	}
	r := getRequest()
	r.recs = append(r.recs, recs...)
	for range recs {
		r.results = append(r.results, nil)
	}
	r.thens = append(r.thens, thens...)
	if err := l.submit(r); err != nil {
		putRequest(r)
		return fmt.Errorf("log: append batch: %w", err)
	}
	return nil
}

// AppendBatch appends recs as one group with consecutive indexes, written
// in the same batch, and returns Apply's result for each. Either all of
// them are committed or none.
func (l *Log) AppendBatch(recs []*Record) ([]any, error) {
	for i, rec := range recs {
		if rec == nil {
			return nil, fmt.Errorf("log: append batch: record %d is nil", i)
		}
	}
	if len(recs) == 0 {
		return nil, nil
	}
	r := getRequest()
	defer putRequest(r)
	r.recs = append(r.recs, recs...)
	results := make([]any, len(recs))
	r.results = results
	if err := l.submit(r); err != nil {
		return nil, fmt.Errorf("log: append batch: %w", err)
	}
	<-r.done
	r.results = nil // returned to the caller, not pooled
	if r.err != nil {
		return nil, r.err
	}
	return results, nil
}

// submit queues r for the sequencer; it blocks while the queue is full.
func (l *Log) submit(r *request) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	l.reqs <- r
	return nil
}

// Read calls fn for each record of the open log with index >= from, in
// order, up to LastIndex as of the call. Records removed by retention before
// the read are skipped (see also ErrCompacted). As with Scan, the *Record is reused between calls: keep its
// fields, not the pointer. An error from fn stops the read and is returned
// as is.
func (l *Log) Read(from uint64, fn func(*Record) error) error {
	d := decoderPool.Get().(*recordDecoder)
	defer decoderPool.Put(d)
	var rec Record
	return l.store.read(from, l.LastIndex(), func(index uint64, frame []byte) error {
		if err := d.decodePayload(frame[frameHeaderSize:], &rec); err != nil {
			return fmt.Errorf("log: read index %d: %w", index, err)
		}
		rec.Index = index
		return fn(&rec)
	})
}

// FirstIndex returns the index of the oldest record still held (retention
// removes older ones); it is LastIndex()+1 when the log holds none.
func (l *Log) FirstIndex() uint64 { return l.store.firstIndex() }

// LastIndex returns the index of the last record applied and acknowledged,
// or 0 for an empty log.
func (l *Log) LastIndex() uint64 { return l.lastIndex.Load() }

// Stats returns the sequencer's counters.
func (l *Log) Stats() Stats {
	return Stats{
		Appends: l.appends.Load(),
		Batches: l.batches.Load(),
		Syncs:   l.syncs.Load(),
		Bytes:   l.bytes.Load(),
	}
}

// Close stops accepting appends, lets the sequencer commit and answer
// everything already queued, waits for a snapshot being written, fsyncs and
// closes the files. It does not take a snapshot itself (call Snapshot first
// for a faster next Open). After a failure (ErrFailed) Close still closes
// the files and returns the failure.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("log: close: %w", ErrClosed)
	}
	l.closed = true
	close(l.reqs)
	l.mu.Unlock()
	<-l.seqDone
	return l.closeErr
}
