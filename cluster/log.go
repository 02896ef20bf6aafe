// Package cluster keeps the engine's log on a NATS JetStream stream shared
// by several engines (engine.cluster). Every engine publishes its records to
// the one stream and applies the whole stream in sequence order, so every
// node's projections are the same fold of the same records; the stream
// sequence is the record's index. JetStream replicates and orders; nothing
// here votes or elects.
//
// The local data directory keeps only snapshots (and the lock that keeps
// two engines off one directory). Snapshots are also put in a JetStream
// object store, so a node started with an empty directory, or behind a
// stream whose oldest records were removed by its limits, starts from the
// newest one instead of the whole history.
package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/iii-go/iii/log"
)

// Options configure a cluster Log.
type Options struct {
	URL      string // one or more NATS servers, comma-separated
	Node     string // this engine's name in the cluster
	Stream   string // JetStream stream name
	Replicas int    // stream replicas when this node creates it
	Creds    string // optional NATS credentials file
	// Dir is the local directory for snapshots; it is locked like a local
	// log's directory.
	Dir string
	// SnapshotEvery takes a snapshot after this many applied records
	// (default log.DefaultSnapshotEvery).
	SnapshotEvery uint64
	// PublishTimeout bounds how long an append keeps retrying its publish
	// (with the same message id, so JetStream stores it once) before it is
	// answered with an error (default 10 s).
	PublishTimeout time.Duration
	Logger         *slog.Logger
}

// Subject returns the subject records are published on.
func Subject(stream string) string { return stream + ".log" }

// snapshotBucket is the object store holding the cluster's newest snapshot.
func snapshotBucket(stream string) string { return stream + "_snapshots" }

// DefaultStream is the JetStream stream of the log when none is named.
const DefaultStream = "iii"

const (
	snapshotObject = "latest"
	snapshotIndex  = "index" // object metadata key: the index the snapshot covers
	// dedupWindow is how long JetStream remembers a message id: a publish
	// retried within it is stored once.
	dedupWindow = 2 * time.Minute
	retryWait   = 250 * time.Millisecond
	apiTimeout  = 10 * time.Second
)

// ErrFailed is wrapped by appends answered after the log stopped applying
// (a record it cannot decode, or records removed before it read them).
var ErrFailed = errors.New("cluster log failed")

// Log is the engine's log on JetStream; it implements log.Journal.
type Log struct {
	opts    Options
	logger  *slog.Logger
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	subject string
	st      log.Projection
	unlock  func()

	consMu    sync.Mutex
	cc        jetstream.ConsumeContext // under consMu
	gen       atomic.Uint64            // the current consumer's generation
	deliverMu sync.Mutex
	stopWatch chan struct{}
	watchDone chan struct{}

	// applyMu is held while a record is applied or a snapshot taken, so a
	// snapshot holds exactly the records up to its index.
	applyMu   sync.Mutex
	applied   atomic.Uint64 // index of the last record applied
	sinceSnap uint64        // under applyMu
	snapIndex uint64        // under applyMu: newest snapshot taken
	snapBusy  atomic.Bool
	snapWG    sync.WaitGroup
	snapMu    sync.Mutex // one Snapshot at a time

	// target is the stream's last sequence when Open read it: records up to
	// it are history; records after it wait for Start.
	target   uint64
	live     chan struct{}
	caughtUp chan struct{}
	once     sync.Once

	mu      sync.Mutex
	waiting map[ulid.ULID]*waiter
	closed  bool
	failure error

	// Catch-up reads (CatchUp): readers that arrive while one stream-info
	// request is in flight share the next one.
	catchMu   sync.Mutex
	nextCatch *catchUp
	catching  bool
	appliedMu sync.Mutex
	appliedCv *sync.Cond
	watchers  atomic.Int32 // CatchUp callers waiting on appliedCv

	stampMu sync.Mutex // AppendAsync runs on many goroutines
	stamper *log.Stamper
}

// waiter is one append between its publish and its answer: it is answered
// once JetStream acknowledged it (stored on its replicas) and this node
// applied it at its sequence, whichever comes last.
type waiter struct {
	then     func(result any, err error)
	deadline time.Time
	acked    bool
	applied  bool
	result   any
	err      error // the publish kept failing: answered with it at once
}

// Open connects to NATS, creates the stream if it does not exist, restores
// the newest snapshot (local or from the object store) into st and applies
// every record the stream held at the call. It fails fast, with what to
// fix, when NATS is unreachable or JetStream is off. Records published
// after that are applied once Start is called.
func Open(opts Options, st log.Projection) (*Log, error) {
	if opts.Stream == "" {
		opts.Stream = DefaultStream
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.SnapshotEvery == 0 {
		opts.SnapshotEvery = log.DefaultSnapshotEvery
	}
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	l := &Log{
		opts: opts, logger: opts.Logger, st: st, subject: Subject(opts.Stream),
		waiting: map[ulid.ULID]*waiter{}, live: make(chan struct{}), caughtUp: make(chan struct{}),
		stamper: log.NewStamper(),
	}
	l.appliedCv = sync.NewCond(&l.appliedMu)
	unlock, err := log.LockDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	l.unlock = unlock
	if err := l.open(); err != nil {
		l.shut()
		return nil, err
	}
	return l, nil
}

func (l *Log) open() error {
	nc, err := Connect(l.opts.URL, l.opts.Creds, "iii engine "+l.opts.Node, l.logger)
	if err != nil {
		return err
	}
	l.nc = nc
	l.js, err = jetstream.New(nc,
		jetstream.WithPublishAsyncAckHandler(l.acked),
		jetstream.WithPublishAsyncErrHandler(l.publishFailed),
		jetstream.WithPublishAsyncTimeout(5*time.Second),
		jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	if l.stream, err = ensureStream(ctx, l.js, l.opts.Stream, l.opts.Replicas); err != nil {
		return fmt.Errorf("cluster: %s: %w", l.opts.URL, err)
	}
	info, err := l.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("cluster: stream %s: %w", l.opts.Stream, err)
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	snapIndex, data, from, err := l.newestSnapshot(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs > 0 && snapIndex+1 < first {
		return fmt.Errorf("cluster: stream %s starts at %d (older records were removed by its limits) and no snapshot covers %d..%d; start this node from a snapshot (another node publishes one every %d records)",
			l.opts.Stream, first, snapIndex+1, first-1, l.opts.SnapshotEvery)
	}
	if snapIndex > last {
		return fmt.Errorf("cluster: the %s snapshot is at index %d but stream %s ends at %d: the stream was recreated, or %s belongs to another stream; move that directory (and, for a recreated stream, the object store %s) away to start from the stream",
			from, snapIndex, l.opts.Stream, last, l.opts.Dir, snapshotBucket(l.opts.Stream))
	}
	if data != nil {
		if err := l.st.Restore(bytes.NewReader(data)); err != nil {
			return fmt.Errorf("cluster: restore snapshot %d (%s): %w", snapIndex, from, err)
		}
	}
	l.applied.Store(snapIndex)
	l.snapIndex = snapIndex
	l.target = last
	start := time.Now()
	if last <= snapIndex {
		l.once.Do(func() { close(l.caughtUp) })
	}
	if err := l.consume(ctx, snapIndex+1); err != nil {
		return err
	}
	<-l.caughtUp
	if err := l.failed(); err != nil {
		return err
	}
	l.stopWatch, l.watchDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(l.watchDone)
		l.watch(l.stopWatch)
	}()
	l.logger.Info("cluster log opened", "node", l.opts.Node, "stream", l.opts.Stream, "first_index", first,
		"last_index", last, "snapshot_index", snapIndex, "snapshot_from", from, "replayed", last-min(last, snapIndex),
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Connect dials NATS for the cluster: it fails at once when no server
// answers, and afterwards reconnects for ever.
func Connect(url, creds, name string, logger *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name), nats.Timeout(5 * time.Second), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("cluster: NATS connection lost; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { logger.Info("cluster: NATS reconnected", "server", c.ConnectedUrlRedacted()) }),
	}
	if creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: cannot connect to NATS at %s: %w (is nats-server running, with -js?)", url, err)
	}
	return nc, nil
}

// ensureStream finds the stream or creates it.
func ensureStream(ctx context.Context, js jetstream.JetStream, name string, replicas int) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, name)
	if err == nil {
		if subj := s.CachedInfo().Config.Subjects; !slices.Contains(subj, Subject(name)) {
			return nil, fmt.Errorf("stream %s exists but does not take subject %s (its subjects: %v): it is not an iii log; name another in engine.cluster.stream",
				name, Subject(name), subj)
		}
		return s, nil
	}
	if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) ||
		errors.Is(err, nats.ErrNoResponders) {
		return nil, fmt.Errorf("JetStream is not enabled on this NATS server (start it with -js): %w", err)
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	s, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Description: "iii engine log",
		Subjects:    []string{Subject(name)},
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  dedupWindow,
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return js.Stream(ctx, name) // another node created it first
	}
	if err != nil {
		return nil, fmt.Errorf("create stream %s (replicas %d): %w", name, replicas, err)
	}
	return s, nil
}

// Start lets records published after Open be applied. The engine calls it
// once its change hook is in place.
func (l *Log) Start() {
	select {
	case <-l.live:
	default:
		close(l.live)
	}
}

// consume starts a new ordered consumer of the stream from index from,
// replacing (and stopping) the current one. Each consumer is a generation:
// deliveries of a replaced one are ignored.
func (l *Log) consume(ctx context.Context, from uint64) error {
	cons, err := l.js.OrderedConsumer(ctx, l.opts.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{l.subject},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from,
	})
	if err != nil {
		return fmt.Errorf("cluster: consume stream %s: %w", l.opts.Stream, err)
	}
	l.consMu.Lock()
	defer l.consMu.Unlock()
	if l.cc != nil {
		l.cc.Stop()
	}
	gen := l.gen.Add(1)
	cc, err := cons.Consume(func(msg jetstream.Msg) { l.deliver(gen, msg) },
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			l.logger.Debug("cluster: consumer", "err", err)
		}))
	if err != nil {
		return fmt.Errorf("cluster: consume stream %s: %w", l.opts.Stream, err)
	}
	l.cc = cc
	return nil
}

// Watchdog timing: a consumer that applies nothing for stallAfter while the
// stream holds records past it is replaced. The client library re-creates
// a lost consumer itself, but under the same name, and in a JetStream
// cluster that name can stay assigned to a server that died.
const (
	watchEvery = time.Second
	stallAfter = 2 * time.Second
)

// watch replaces a stalled consumer until stop closes.
func (l *Log) watch(stop <-chan struct{}) {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	var since time.Time // when the stall began
	var watched uint64  // the applied index it is timed from
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		select {
		case <-l.live:
		default:
			continue // records past the history wait for Start on purpose
		}
		if !l.nc.IsConnected() || l.failed() != nil {
			since = time.Time{}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		info, err := l.stream.Info(ctx)
		cancel()
		applied := l.applied.Load()
		if err != nil || info.State.LastSeq <= applied {
			since = time.Time{}
			continue
		}
		if since.IsZero() || applied != watched {
			since, watched = time.Now(), applied
			continue
		}
		if time.Since(since) < stallAfter {
			continue
		}
		l.logger.Warn("cluster: the stream's consumer stalled; replacing it", "applied", applied, "stream_last", info.State.LastSeq,
			"stalled_for", time.Since(since).Round(time.Millisecond))
		ctx, cancel = context.WithTimeout(context.Background(), apiTimeout)
		if err := l.consume(ctx, applied+1); err != nil {
			l.logger.Warn("cluster: cannot replace the consumer; trying again", "err", err)
		}
		cancel()
		since = time.Time{}
	}
}

// deliver applies one message of the stream; a consumer calls it on one
// goroutine, in sequence order. deliverMu keeps a replaced consumer's last
// delivery from overlapping the next one's first.
func (l *Log) deliver(gen uint64, msg jetstream.Msg) {
	l.deliverMu.Lock()
	defer l.deliverMu.Unlock()
	if gen != l.gen.Load() {
		return
	}
	md, err := msg.Metadata()
	if err != nil {
		l.fail(fmt.Errorf("%w: message without metadata: %w", ErrFailed, err))
		return
	}
	seq := md.Sequence.Stream
	prev := l.applied.Load()
	if seq <= prev || l.failed() != nil {
		return // redelivered after a consumer reset, or failed already
	}
	if seq != prev+1 {
		l.fail(fmt.Errorf("%w: record %d follows %d: records %d..%d were removed from stream %s before this node applied them",
			ErrFailed, seq, prev, prev+1, seq-1, l.opts.Stream))
		return
	}
	if seq > l.target {
		<-l.live
	}
	rec := new(log.Record) // Apply may keep it
	if err := log.DecodeRecord(msg.Data(), rec); err != nil {
		l.fail(fmt.Errorf("%w: record %d: %w", ErrFailed, seq, err))
		return
	}
	rec.Index = seq
	l.applyMu.Lock()
	res := l.st.Apply(rec)
	l.applied.Store(seq)
	l.sinceSnap++
	due := l.sinceSnap >= l.opts.SnapshotEvery
	l.applyMu.Unlock()
	if seq == l.target {
		l.once.Do(func() { close(l.caughtUp) })
	}
	if l.watchers.Load() > 0 {
		l.appliedMu.Lock()
		l.appliedCv.Broadcast()
		l.appliedMu.Unlock()
	}
	// By id, not by the node field: a node.lost names the lost node.
	l.settle(rec.ID, settled{applied: true, result: res})
	if due && l.snapBusy.CompareAndSwap(false, true) {
		// Under mu, against Close: no snapshot starts once Close waits for
		// the running one.
		l.mu.Lock()
		closed := l.closed
		if !closed {
			l.snapWG.Add(1)
		}
		l.mu.Unlock()
		if closed {
			l.snapBusy.Store(false)
			return
		}
		go func() {
			defer l.snapWG.Done()
			defer l.snapBusy.Store(false)
			if err := l.Snapshot(); err != nil {
				l.logger.Warn("cluster: snapshot failed", "err", err)
			}
		}()
	}
}

// Append publishes rec and waits until it is stored by JetStream and
// applied here; it returns Apply's result.
func (l *Log) Append(rec *log.Record) (any, error) {
	type answer struct {
		res any
		err error
	}
	ch := make(chan answer, 1)
	if err := l.AppendAsync(rec, func(res any, err error) { ch <- answer{res, err} }); err != nil {
		return nil, err
	}
	a := <-ch
	return a.res, a.err
}

// AppendBatch appends recs one after the other, each once the one before
// is stored and applied: a publish that is retried can then never be stored
// after a later record of the batch. Unlike the local log's, the batch is
// not atomic: other nodes' records may fall between its records, and a
// failure or a node lost mid-batch leaves a prefix of it.
func (l *Log) AppendBatch(recs []*log.Record) ([]any, error) {
	results := make([]any, len(recs))
	for i, rec := range recs {
		res, err := l.Append(rec)
		if err != nil {
			return nil, fmt.Errorf("cluster: append batch: record %d of %d: %w", i+1, len(recs), err)
		}
		results[i] = res
	}
	return results, nil
}

// AppendAsync publishes rec; then is called with Apply's result once it is
// stored and applied, or with the error when the publish keeps failing for
// Options.PublishTimeout. It returns an error (and then is never called)
// only when the log is closed.
func (l *Log) AppendAsync(rec *log.Record, then func(result any, err error)) error {
	if rec == nil || then == nil {
		return errors.New("cluster: append: nil record or callback")
	}
	l.stamp(rec)
	frame, err := log.EncodeRecord(nil, rec)
	if err != nil {
		then(nil, err)
		return nil
	}
	w := &waiter{then: then, deadline: time.Now().Add(l.opts.PublishTimeout)}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("cluster: append: %w", log.ErrClosed)
	}
	if err := l.failure; err != nil {
		l.mu.Unlock()
		then(nil, err)
		return nil
	}
	l.waiting[rec.ID] = w
	l.mu.Unlock()
	l.publish(&nats.Msg{Subject: l.subject, Data: frame, Header: nats.Header{jetstream.MsgIDHeader: []string{rec.ID.String()}}})
	return nil
}

// AppendAsyncBatch publishes each record as AppendAsync does, thens[i]
// answering recs[i]. JetStream stores them one by one, so unlike the local
// log's the batch is not atomic. Once part of it is published, a close
// answers the rest with the error instead of returning it.
func (l *Log) AppendAsyncBatch(recs []*log.Record, thens []func(result any, err error)) error {
	if len(recs) != len(thens) {
		return fmt.Errorf("cluster: append batch: %d records, %d callbacks", len(recs), len(thens))
	}
	for i, rec := range recs {
		if rec == nil || thens[i] == nil {
			return fmt.Errorf("cluster: append batch: record or callback %d is nil", i)
		}
	}
	for i, rec := range recs {
		if err := l.AppendAsync(rec, thens[i]); err != nil {
			if i == 0 {
				return err
			}
			for _, then := range thens[i:] {
				then(nil, err)
			}
			return nil
		}
	}
	return nil
}

func (l *Log) publish(m *nats.Msg) {
	_, err := l.js.PublishMsgAsync(m)
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		// Retrying cannot help: answer at once, saying which limit.
		if id, perr := ulid.ParseStrict(m.Header.Get(jetstream.MsgIDHeader)); perr == nil {
			l.settle(id, settled{err: fmt.Errorf("cluster: record of %d bytes is larger than the NATS server's max_payload (%d bytes): %w",
				len(m.Data), l.nc.MaxPayload(), err)})
		}
	case err != nil:
		l.publishFailed(l.js, m, err)
	}
}

// acked runs on the publisher's ack goroutine.
func (l *Log) acked(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
	if id, err := ulid.ParseStrict(m.Header.Get(jetstream.MsgIDHeader)); err == nil {
		l.settle(id, settled{acked: true})
	}
}

// publishFailed retries a publish with the same message id (JetStream
// stores it once however often it arrives) until the append's deadline.
// It may run under the publisher's lock: the retry is scheduled, never
// made from here.
func (l *Log) publishFailed(_ jetstream.JetStream, m *nats.Msg, err error) {
	id, perr := ulid.ParseStrict(m.Header.Get(jetstream.MsgIDHeader))
	if perr != nil {
		return
	}
	l.mu.Lock()
	w := l.waiting[id]
	closed, acked := l.closed, w != nil && w.acked
	l.mu.Unlock()
	if w == nil || acked {
		return
	}
	if closed || time.Now().After(w.deadline) {
		l.settle(id, settled{err: fmt.Errorf("cluster: append not stored by JetStream within %s: %w", l.opts.PublishTimeout, err)})
		return
	}
	time.AfterFunc(retryWait, func() { l.publish(m) })
}

// settled is one thing that happened to an append: JetStream acked it,
// this node applied it (with Apply's result), or its publish failed for
// good.
type settled struct {
	acked, applied bool
	result         any
	err            error
}

// settle records what happened to the append with id and answers it once
// it is both stored and applied, or failed.
func (l *Log) settle(id ulid.ULID, s settled) {
	l.mu.Lock()
	w := l.waiting[id]
	if w == nil {
		l.mu.Unlock()
		return
	}
	w.acked = w.acked || s.acked
	if s.applied {
		w.applied, w.result = true, s.result
	}
	if s.err != nil {
		w.err = s.err
	}
	if w.err == nil && (!w.acked || !w.applied) {
		l.mu.Unlock()
		return
	}
	delete(l.waiting, id)
	l.mu.Unlock()
	if w.err != nil {
		w.then(nil, w.err)
		return
	}
	w.then(w.result, nil)
}

// stamp fills in the node, version, time and id of a record; the id is
// the publish's message id.
func (l *Log) stamp(rec *log.Record) {
	if rec.Node == "" {
		rec.Node = l.opts.Node
	}
	l.stampMu.Lock()
	l.stamper.Stamp(rec)
	l.stampMu.Unlock()
}

// Read calls fn for each record with index >= from up to LastIndex as of
// the call, read back from the stream.
func (l *Log) Read(from uint64, fn func(*log.Record) error) error {
	return ReadStream(context.Background(), l.js, l.opts.Stream, from, l.LastIndex(), fn)
}

// FirstIndex is the stream's first sequence (records before it were
// removed by the stream's limits).
func (l *Log) FirstIndex() uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 1
	}
	return info.State.FirstSeq
}

// LastIndex is the index of the last record applied on this node.
func (l *Log) LastIndex() uint64 { return l.applied.Load() }

// Conn is the log's NATS connection, shared with the engine's node traffic
// (heartbeats, calls to other nodes).
func (l *Log) Conn() *nats.Conn { return l.nc }

// Node is this engine's name in the cluster.
func (l *Log) Node() string { return l.opts.Node }

// Close stops applying, answers the appends still waiting (with an error
// after Options.PublishTimeout), waits for a snapshot being written and
// releases the directory.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("cluster: close: %w", log.ErrClosed)
	}
	l.closed = true
	l.mu.Unlock()
	deadline := time.Now().Add(l.opts.PublishTimeout)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		n := len(l.waiting)
		l.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.Start() // a consumer parked before Start must not hold up Stop
	l.snapWG.Wait()
	l.shut()
	return l.failed()
}

// shut releases what open acquired.
func (l *Log) shut() {
	if l.stopWatch != nil {
		close(l.stopWatch)
		<-l.watchDone
	}
	l.consMu.Lock()
	if l.cc != nil {
		l.cc.Stop()
	}
	l.consMu.Unlock()
	if l.nc != nil {
		l.nc.Close()
	}
	l.mu.Lock()
	left := l.waiting
	l.waiting = map[ulid.ULID]*waiter{}
	l.mu.Unlock()
	for _, w := range left {
		w.then(nil, fmt.Errorf("cluster: append: %w", log.ErrClosed))
	}
	if l.unlock != nil {
		l.unlock()
	}
}

func (l *Log) failed() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failure
}

// fail stops the log from applying: its projection can no longer follow
// the stream. Waiting appends are answered with the failure.
func (l *Log) fail(err error) {
	l.mu.Lock()
	if l.failure == nil {
		l.failure = err
	}
	left := l.waiting
	l.waiting = map[ulid.ULID]*waiter{}
	l.mu.Unlock()
	l.logger.Error("cluster log failed", "err", err)
	l.appliedMu.Lock()
	l.appliedCv.Broadcast() // CatchUp waiters see the failure
	l.appliedMu.Unlock()
	for _, w := range left {
		w.then(nil, err)
	}
	l.once.Do(func() { close(l.caughtUp) })
}

var _ log.Journal = (*Log)(nil)
