package projections

import (
	"encoding/json"
	"io"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/iii-go/iii/log"
)

// Queues is the durable queues' state: every job not yet done, per queue in
// enqueue order, with its attempts and whether it waits in the queue or in
// its dead-letter queue. Every field comes from the records (queue.*), so a
// replay rebuilds exactly what the engine had: jobs in flight at a crash are
// simply pending again, with the attempts that were recorded.
type Queues struct {
	queues omap[*omap[*Job]]
}

// Job is one queued message.
type Job struct {
	ID       string `msgpack:"id"`
	Queue    string `msgpack:"q"`
	Function string `msgpack:"f"`
	Group    string `msgpack:"g,omitempty"` // FIFO message group value
	Payload  []byte `msgpack:"p,omitempty"`
	Meta     []byte `msgpack:"m,omitempty"`
	// EnqueuedAt is the queue.enqueued record's time (Unix ns).
	EnqueuedAt int64 `msgpack:"at"`
	// Attempts counts the deliveries that failed.
	Attempts uint32 `msgpack:"n,omitempty"`
	// RetryAt is the earliest time of the next delivery (Unix ns; 0: now).
	RetryAt int64 `msgpack:"r,omitempty"`
	// Dead says the job is in the queue's dead-letter queue.
	Dead bool `msgpack:"d,omitempty"`
	// LastError is the ErrorBody of the last failed attempt.
	LastError []byte `msgpack:"e,omitempty"`
	// FailedAt is when the job was dead-lettered (Unix ns).
	FailedAt int64 `msgpack:"fa,omitempty"`
}

// failure is the Value of queue.failed and queue.dead records.
type failure struct {
	Error   json.RawMessage `json:"error"`
	RetryAt int64           `json:"retry_at"`
}

// Apply folds one queue.* record; other kinds change nothing. It reports
// the job the record concerns (nil when there is none any more).
func (q *Queues) Apply(rec *log.Record) *Job {
	if rec.Kind == log.KindJobEnqueued {
		jobs, ok := q.queues.get(rec.Queue)
		if !ok {
			jobs = &omap[*Job]{}
			q.queues.set(rec.Queue, jobs)
		}
		if j, exists := jobs.get(rec.Job); exists {
			return j // an id is enqueued once; a retried publish changes nothing
		}
		j := &Job{ID: rec.Job, Queue: rec.Queue, Function: rec.Function, Group: rec.Group,
			Payload: cloneBytes(rec.Value), Meta: cloneBytes(rec.Meta), EnqueuedAt: rec.Time}
		jobs.set(rec.Job, j)
		return j
	}
	jobs, ok := q.queues.get(rec.Queue)
	if !ok {
		return nil
	}
	j, ok := jobs.get(rec.Job)
	if !ok {
		return nil
	}
	switch rec.Kind {
	case log.KindJobFailed, log.KindJobDead:
		var f failure
		_ = json.Unmarshal(rec.Value, &f) // written by the engine; a damaged value only loses the detail
		j.Attempts, j.LastError = rec.Attempt, cloneBytes(f.Error)
		if rec.Kind == log.KindJobDead {
			j.Dead, j.RetryAt, j.FailedAt = true, 0, rec.Time
		} else {
			j.RetryAt = f.RetryAt
		}
	case log.KindJobRedriven:
		j.Dead, j.Attempts, j.RetryAt, j.LastError, j.FailedAt = false, 0, 0, nil, 0
	case log.KindJobDone, log.KindJobDiscarded:
		q.remove(rec.Queue, jobs, rec.Job)
		return nil
	}
	return j
}

func (q *Queues) remove(queue string, jobs *omap[*Job], id string) {
	jobs.del(id)
	if jobs.len() == 0 {
		q.queues.del(queue)
	}
}

// Job returns a job of a queue.
func (q *Queues) Job(queue, id string) (*Job, bool) {
	jobs, ok := q.queues.get(queue)
	if !ok {
		return nil, false
	}
	return jobs.get(id)
}

// Jobs calls fn for every job of a queue, pending and dead, in enqueue
// order, until fn returns false. The jobs are the projection's own: read
// them, do not change them.
func (q *Queues) Jobs(queue string, fn func(*Job) bool) {
	jobs, ok := q.queues.get(queue)
	if !ok {
		return
	}
	for _, j := range jobs.all() {
		if !fn(j) {
			return
		}
	}
}

// Names returns the queues that hold jobs, in order of first use.
func (q *Queues) Names() []string { return q.queues.keys() }

// Counts returns how many jobs of a queue wait (pending) and how many are in
// its dead-letter queue.
func (q *Queues) Counts(queue string) (pending, dead int) {
	q.Jobs(queue, func(j *Job) bool {
		if j.Dead {
			dead++
		} else {
			pending++
		}
		return true
	})
	return pending, dead
}

// Snapshot writes every queue's jobs in order (msgpack).
func (q *Queues) Snapshot(w io.Writer) error {
	return writeSnapshot(w, "queues", func(enc *msgpack.Encoder) error {
		if err := enc.EncodeArrayLen(q.queues.len()); err != nil {
			return err
		}
		for name, jobs := range q.queues.all() {
			list := make([]*Job, 0, jobs.len())
			for _, j := range jobs.all() {
				list = append(list, j)
			}
			if err := enc.EncodeString(name); err != nil {
				return err
			}
			if err := enc.Encode(list); err != nil {
				return err
			}
		}
		return nil
	})
}

// Restore replaces every queue with a snapshot's content.
func (q *Queues) Restore(r io.Reader) error {
	var fresh Queues
	err := readSnapshot(r, "queues", func(dec *msgpack.Decoder) error {
		n, err := decodeLen(dec)
		if err != nil {
			return err
		}
		for range n {
			name, err := dec.DecodeString()
			if err != nil {
				return err
			}
			var list []*Job
			if err := dec.Decode(&list); err != nil {
				return err
			}
			jobs := &omap[*Job]{}
			for _, j := range list {
				jobs.set(j.ID, j)
			}
			if jobs.len() > 0 {
				fresh.queues.set(name, jobs)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	*q = fresh
	return nil
}
