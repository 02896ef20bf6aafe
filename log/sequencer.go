package log

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// request is one Append, AppendBatch or Snapshot call waiting for the
// sequencer. The sequencer fills results and err, then signals done.
type request struct {
	recs    []*Record
	results []any
	snap    bool
	err     error
	done    chan struct{}
	thens   []func(result any, err error) // AppendAsync's callbacks, one per record, instead of done
}

var requestPool = sync.Pool{New: func() any { return &request{done: make(chan struct{}, 1)} }}

func getRequest() *request { return requestPool.Get().(*request) }

func putRequest(r *request) {
	clear(r.recs)
	clear(r.results)
	clear(r.thens)
	r.recs, r.results, r.thens = r.recs[:0], r.results[:0], r.thens[:0]
	r.snap, r.err = false, nil
	requestPool.Put(r)
}

func (r *request) answer(err error) {
	if len(r.thens) == 0 {
		r.err = err
		r.done <- struct{}{}
		return
	}
	for i, then := range r.thens {
		then(r.results[i], err)
	}
	putRequest(r)
}

// run is the sequencer goroutine. Requests that queue up while a batch is
// being written and fsynced form the next batch: one write and one fsync
// for all of them (group commit).
func (l *Log) run() {
	var tick <-chan time.Time
	if l.opts.Sync == SyncInterval {
		t := time.NewTicker(l.opts.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	var carry *request // a Snapshot request that ended the previous batch
	for {
		r := carry
		carry = nil
		if r == nil {
			select {
			case req, ok := <-l.reqs:
				if !ok {
					l.shutdown()
					return
				}
				r = req
			case <-tick:
				if l.dirty && l.failed() == nil && l.syncStore() == nil {
					l.dirty = false
				}
				continue
			}
		}
		if r.snap {
			l.takeSnapshot(r)
			continue
		}
		batch := append(l.batch[:0], r)
		n, closing := len(r.recs), false
	drain:
		for n < maxBatchRecords {
			select {
			case req, ok := <-l.reqs:
				if !ok {
					closing = true
					break drain
				}
				if req.snap {
					carry = req
					break drain
				}
				batch = append(batch, req)
				n += len(req.recs)
			default:
				break drain
			}
		}
		l.commit(batch)
		clear(batch)
		l.batch = batch[:0]
		if l.snapJobs != nil && l.failed() == nil && l.snapPending.Load() == 0 &&
			(l.sinceRecords >= l.opts.SnapshotEvery || l.sinceBytes >= l.opts.SnapshotBytes) {
			l.takeSnapshot(nil)
		}
		if closing {
			l.shutdown()
			return
		}
	}
}

// pending is one written batch on its way to the syncer, or a barrier the
// syncer closes once every batch before it is answered.
type pending struct {
	batch   []*request
	barrier chan struct{}
}

// commit stamps, encodes and writes one batch. Under SyncAlways it hands the
// batch to the syncer; otherwise it applies and answers it at once.
func (l *Log) commit(batch []*request) {
	if err := l.failed(); err != nil {
		for _, r := range batch {
			r.answer(err)
		}
		return
	}
	first := l.written + 1
	l.buf, l.ends = l.buf[:0], l.ends[:0]
	for _, r := range batch {
		mark, bufMark := len(l.ends), len(l.buf)
		for _, rec := range r.recs {
			l.stamp(rec, first+uint64(len(l.ends)))
			var err error
			if l.buf, err = l.enc.encode(l.buf, rec); err != nil {
				// Leave the request out of the batch; its records get no index.
				for _, rec := range r.recs {
					rec.Index = 0
				}
				l.ends, l.buf = l.ends[:mark], l.buf[:bufMark]
				r.err = fmt.Errorf("log: append: encode record: %w", err)
				break
			}
			l.ends = append(l.ends, len(l.buf))
		}
	}
	if len(l.ends) > 0 {
		last := first + uint64(len(l.ends)) - 1
		if err := l.store.write(first, l.buf, l.ends); err != nil {
			l.fail(fmt.Errorf("%w: write records %d to %d: %w", ErrFailed, first, last, err))
		} else {
			l.written = last
			l.batches.Add(1)
			l.appends.Add(uint64(len(l.ends)))
			l.bytes.Add(uint64(len(l.buf)))
			l.sinceRecords += uint64(len(l.ends))
			l.sinceBytes += int64(len(l.buf))
			l.dirty = l.durable == nil
		}
	}
	if cap(l.buf) > maxKeptBuf {
		l.buf = nil
	}
	if l.durable != nil {
		// The sequencer reuses its batch slice; the syncer gets its own.
		l.durable <- pending{batch: append([]*request(nil), batch...)}
		return
	}
	l.finish(batch, l.failed())
}

// finish applies the records of a batch in index order and answers each
// request; err (a failed write or fsync) answers the ones still unanswered.
func (l *Log) finish(batch []*request, err error) {
	for _, r := range batch {
		if r.err == nil && err != nil {
			r.err = err
		}
		if r.err == nil {
			for i, rec := range r.recs {
				r.results[i] = l.st.Apply(rec)
				l.lastIndex.Store(rec.Index)
			}
		}
		r.answer(r.err)
	}
}

// syncer runs under SyncAlways. Batches written while it fsyncs queue up in
// l.durable, and its next fsync covers all of them.
func (l *Log) syncer() {
	defer close(l.syncerDone)
	var group []pending
	for p := range l.durable {
		group = append(group[:0], p)
	more:
		for {
			select {
			case q, ok := <-l.durable:
				if !ok {
					break more
				}
				group = append(group, q)
			default:
				break more
			}
		}
		err := l.failed()
		if err == nil {
			err = l.syncStore()
		}
		for _, p := range group {
			if p.barrier != nil {
				close(p.barrier)
			} else {
				l.finish(p.batch, err)
			}
		}
		clear(group)
	}
}

// settle waits until every batch handed to the syncer is answered, so the
// Projection holds exactly the records up to LastIndex.
func (l *Log) settle() {
	if l.durable != nil {
		done := make(chan struct{})
		l.durable <- pending{barrier: done}
		<-done
	}
}

// failed returns the error that failed the log, or nil.
func (l *Log) failed() error {
	l.failMu.Lock()
	defer l.failMu.Unlock()
	return l.failure
}

// fail records err as the log's failure unless one is already recorded, and
// returns the recorded one.
func (l *Log) fail(err error) error {
	l.failMu.Lock()
	defer l.failMu.Unlock()
	if l.failure == nil {
		l.failure = err
	}
	return l.failure
}

// stamp assigns rec its index and fills in zero V, Time and ID.
func (l *Log) stamp(rec *Record, index uint64) {
	rec.Index = index
	l.stamper.Stamp(rec)
}

// syncStore fsyncs the store. A failure marks the log failed and is
// returned.
func (l *Log) syncStore() error {
	if err := l.store.sync(); err != nil {
		return l.fail(fmt.Errorf("%w: fsync after index %d: %w", ErrFailed, l.lastIndex.Load(), err))
	}
	l.syncs.Add(1)
	return nil
}

// shutdown runs on the sequencer goroutine once the queue is closed and
// drained.
func (l *Log) shutdown() {
	var errs []error
	if l.durable != nil {
		close(l.durable)
		<-l.syncerDone
	}
	if l.dirty && l.failed() == nil {
		errs = append(errs, l.syncStore())
	}
	if l.snapJobs != nil {
		close(l.snapJobs)
		<-l.snapDone
	}
	errs = append(errs, l.store.close(), l.failed())
	if err := errors.Join(errs...); err != nil {
		l.closeErr = fmt.Errorf("log: close: %w", err)
	}
	close(l.seqDone)
}
