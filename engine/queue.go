package engine

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/iii-go/iii/engine/config"
	"github.com/iii-go/iii/log"
	"github.com/iii-go/iii/projections"
	"github.com/iii-go/iii/wire"
)

// The queue module (iii-queue). Every change of a job — enqueued, an attempt
// failed, done, dead-lettered, redriven, discarded — is a log record, and
// the jobs not yet done are a projection (projections.Queues). The
// dispatcher here only decides what to deliver next: it keeps no state the
// log does not have, except which deliveries are in flight, so after a
// crash the jobs that were in flight are simply pending again (delivered at
// least once, with their recorded attempts), and a job recorded as done is
// never delivered again.
//
// Named queues come from the config (queue_configs; "default" always
// exists). Topics come from durable:subscriber triggers: each subscribed
// function has its own queue named "<topic>::<function id>", with the
// trigger's queue_config.

// durableSubscriber is the trigger type of topic subscriptions.
const durableSubscriber = "durable:subscriber"

type queues struct {
	e   *Engine
	cfg *config.Queue

	mu       sync.Mutex
	inFlight map[string]map[string]bool // queue → job ids being delivered
	groups   map[string]bool            // queue + "\x00" + group: a FIFO group with a job in flight
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
}

func newQueues(e *Engine, cfg *config.Queue) *queues {
	return &queues{e: e, cfg: cfg, inFlight: map[string]map[string]bool{}, groups: map[string]bool{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// poke makes the dispatcher look for deliverable jobs.
func (q *queues) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// settings are the delivery rules of one (named or topic) queue.
type settings struct {
	attempts    int           // in all, before the DLQ
	concurrency int           // deliveries in flight
	fifo        bool          // one job per message group at a time, in order, blocking on failure
	backoff     time.Duration // base of the exponential retry delay
	poll        time.Duration
	condition   string // topic subscriptions: the trigger's condition function
}

func namedSettings(c config.QueueConfig) settings {
	return settings{attempts: max(c.MaxRetries, 1), concurrency: max(c.Concurrency, 1), fifo: c.Type == config.QueueFIFO,
		backoff: time.Duration(c.BackoffMS) * time.Millisecond, poll: time.Duration(c.PollIntervalMS) * time.Millisecond}
}

// subscriberConfig is a durable:subscriber trigger's config; queue_config
// keys are camelCase, as upstream reads them.
type subscriberConfig struct {
	Topic       string `json:"topic"`
	Condition   string `json:"condition_function_id"`
	QueueConfig *struct {
		Type        string `json:"type"`
		MaxRetries  *int   `json:"maxRetries"`
		Concurrency *int   `json:"concurrency"`
		BackoffMS   *int   `json:"backoffDelayMs"`
	} `json:"queue_config"`
}

// topicSettings: maxRetries N means N+1 attempts (a retry count, unlike a
// named queue's max_retries); without it 3 attempts.
func topicSettings(raw json.RawMessage) settings {
	st := namedSettings(config.DefaultQueueConfig())
	var c subscriberConfig
	if json.Unmarshal(raw, &c) != nil {
		return st
	}
	st.condition = c.Condition
	if qc := c.QueueConfig; qc != nil {
		st.fifo = qc.Type == "fifo"
		if qc.MaxRetries != nil {
			st.attempts = max(*qc.MaxRetries, 0) + 1
		}
		if qc.Concurrency != nil {
			st.concurrency = max(*qc.Concurrency, 1)
		}
		if qc.BackoffMS != nil {
			st.backoff = time.Duration(max(*qc.BackoffMS, 0)) * time.Millisecond
		}
	}
	return st
}

// settingsOf returns the rules of queue name: a named queue, or a topic
// subscriber's queue while its trigger is registered (the last registered
// trigger of that topic and function wins).
func (q *queues) settingsOf(name string) (settings, bool) {
	if c, ok := q.cfg.Queues[name]; ok {
		return namedSettings(c), true
	}
	var st settings
	found := false
	q.e.view.mu.RLock()
	for _, t := range q.e.view.Registry.TriggersOfType(durableSubscriber) {
		var c subscriberConfig
		if json.Unmarshal(t.Config, &c) == nil && c.Topic+"::"+t.Function == name {
			st, found = topicSettings(t.Config), true
		}
	}
	q.e.view.mu.RUnlock()
	return st, found
}

// run is the dispatcher goroutine.
func (q *queues) run() {
	defer close(q.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := q.dispatch()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
		select {
		case <-q.stop:
			return
		case <-q.wake:
		case <-timer.C:
		}
	}
}

// attempt is one delivery the dispatcher starts.
type attempt struct {
	job projections.Job
	st  settings
}

// dispatch starts every delivery the rules allow now and returns how long
// to sleep before looking again (a due retry, or the poll interval).
func (q *queues) dispatch() time.Duration {
	now := time.Now().UnixNano()
	sleep := time.Second
	var start []attempt
	e := q.e
	if !e.firesHere(engineWorker) {
		return sleep // in a cluster the leader dispatches; jobs wait in the shared log
	}
	e.view.mu.RLock()
	names := e.view.Queues.Names()
	e.view.mu.RUnlock()
	for _, name := range names {
		st, ok := q.settingsOf(name)
		if !ok {
			continue // a topic queue whose subscription is gone: its jobs wait for it
		}
		sleep = min(sleep, st.poll)
		q.mu.Lock()
		busy := q.inFlight[name]
		slots := st.concurrency - len(busy)
		blocked := map[string]bool{} // FIFO groups with an earlier job waiting
		e.view.mu.RLock()
		e.view.Queues.Jobs(name, func(j *projections.Job) bool {
			if slots <= 0 {
				return false
			}
			if j.Dead || busy[j.ID] {
				if st.fifo && busy[j.ID] {
					blocked[j.Group] = true
				}
				return true
			}
			if st.fifo && (blocked[j.Group] || q.groups[name+"\x00"+j.Group]) {
				return true
			}
			if st.fifo {
				blocked[j.Group] = true // later jobs of the group wait for this one
			}
			if j.RetryAt > now {
				sleep = min(sleep, time.Duration(j.RetryAt-now))
				return true
			}
			if !e.liveLocked(j.Function) {
				return true // no worker has it: wait without burning an attempt
			}
			start = append(start, attempt{job: *j, st: st})
			slots--
			return true
		})
		e.view.mu.RUnlock()
		for _, d := range start {
			if q.inFlight[name] == nil {
				q.inFlight[name] = map[string]bool{}
			}
			q.inFlight[name][d.job.ID] = true
			if d.st.fifo {
				q.groups[name+"\x00"+d.job.Group] = true
			}
		}
		q.mu.Unlock()
		for _, d := range start {
			go q.deliver(d)
		}
		start = start[:0]
	}
	return max(sleep, time.Millisecond)
}

// deliver makes one attempt and records its outcome.
func (q *queues) deliver(d attempt) {
	e, j := q.e, &d.job
	n := j.Attempts + 1 // this attempt's number
	o := callOutcome{}
	skip := false
	if d.st.condition != "" {
		o = e.call(d.st.condition, j.Payload, nil)
		skip = !o.failed() && o.hasResult && string(o.result) == "false"
	}
	if !o.failed() && !skip {
		o = e.call(j.Function, j.Payload, nonNull(j.Meta))
	}
	rec := &log.Record{Queue: j.Queue, Job: j.ID, Attempt: n}
	switch {
	case !o.failed():
		rec.Kind = log.KindJobDone
	case int(n) >= d.st.attempts:
		rec.Kind = log.KindJobDead
		rec.Value = failureValue(o.errorBody(), 0)
	default:
		rec.Kind = log.KindJobFailed
		delay := d.st.backoff << (n - 1)
		rec.Value = failureValue(o.errorBody(), time.Now().Add(delay).UnixNano())
	}
	if _, err := e.log.Append(rec); err != nil {
		e.logger.Error("queue: outcome not recorded; the job stays pending", "queue", j.Queue, "job", j.ID, "err", err)
	}
	if rec.Kind == log.KindJobDead {
		e.logger.Warn("queue: job moved to the dead-letter queue", "queue", j.Queue, "job", j.ID, "attempts", n, "err", o.errorMessage())
	}
	q.mu.Lock()
	delete(q.inFlight[j.Queue], j.ID)
	if d.st.fifo {
		delete(q.groups, j.Queue+"\x00"+j.Group)
	}
	q.mu.Unlock()
	q.poke()
}

func failureValue(errBody json.RawMessage, retryAt int64) []byte {
	b := append([]byte(`{"error":`), rawOrNull(errBody)...)
	if retryAt > 0 {
		b = append(append(b, `,"retry_at":`...), strconv.FormatInt(retryAt, 10)...)
	}
	return append(b, '}')
}

// enqueue answers invokefunction with action enqueue: the job is recorded
// (durably) before the receipt is sent. Validation runs on the connection's
// read goroutine and the record goes to the log with the rest of its burst
// (appendAsync), which keeps the connection's order; the log's group commit
// batches whatever queued up meanwhile, so a producer need not wait an
// fsync per job, and the log's callback sends the receipt.
func (q *queues) enqueue(s *session, m *wire.Message, replyID string) {
	fid, queue := m.FunctionID, m.Queue
	req := enqueueReq{replyID: strings.Clone(replyID), fid: strings.Clone(fid), reply: m.HasInvocationID,
		traceparent: strings.Clone(m.Traceparent), baggage: strings.Clone(m.Baggage)}
	c, ok := q.cfg.Queues[queue]
	if !ok {
		s.answerEnqueue(req, failure(codeEnqueueError, "Queue '"+queue+"' not found"))
		return
	}
	group, msg := fifoGroup(queue, c, m.Data)
	if msg != "" {
		s.answerEnqueue(req, failure(codeEnqueueError, msg))
		return
	}
	job := newUUID()
	rec := &log.Record{Kind: log.KindJobEnqueued, Queue: strings.Clone(queue), Job: job, Function: req.fid, Group: group,
		Value: bytes.Clone(rawOrNull(m.Data)), Meta: bytes.Clone(m.Metadata)}
	answer := func(_ any, err error) {
		if err != nil {
			s.answerEnqueue(req, failure(codeEnqueueError, "the job was not recorded: "+err.Error()))
		} else {
			s.answerEnqueue(req, resultOf(json.RawMessage(`{"messageReceiptId":"`+job+`"}`)))
		}
	}
	s.appendAsync(rec, answer)
}

// enqueueReq is how an enqueue is answered.
type enqueueReq struct {
	replyID, fid         string
	traceparent, baggage string
	reply                bool
}

func (s *session) answerEnqueue(r enqueueReq, o callOutcome) {
	if r.reply {
		s.reply(r.replyID, r.fid, o, r.traceparent, r.baggage)
	}
}

// fifoGroup reads the message group of a FIFO queue's payload; msg is the
// refusal when the field is missing or null.
func fifoGroup(queue string, c config.QueueConfig, data json.RawMessage) (group, msg string) {
	if c.Type != config.QueueFIFO {
		return "", ""
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) != nil {
		fields = nil
	}
	raw, ok := fields[c.MessageGroupField]
	switch {
	case !ok:
		return "", "FIFO queue '" + queue + "' requires field '" + c.MessageGroupField + "' in data, but it was not found"
	case isNull(raw):
		return "", "FIFO queue '" + queue + "': field '" + c.MessageGroupField + "' must not be null"
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, "" // a string groups by its text; any other value by its JSON
	}
	return string(bytes.TrimSpace(raw)), ""
}

// liveLocked reports whether a function can be called now (the caller holds
// view.mu): a built-in, or a worker function whose connection is live.
func (e *Engine) liveLocked(functionID string) bool {
	f, ok := e.view.Registry.Function(functionID)
	if !ok {
		return false
	}
	if f.Worker == engineWorker {
		return e.builtins[functionID] != nil
	}
	if e.session(f.Worker) != nil {
		return true
	}
	if e.node == nil {
		return false
	}
	// Connected to another cluster node; this node's own worker without a
	// session is leaving (its disconnection not applied yet).
	w, ok := e.view.Registry.Worker(f.Worker)
	return ok && w.Node != "" && w.Node != e.node.name
}
