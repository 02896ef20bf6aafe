package bench

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"time"
)

// Durable queues: jobs enqueued (each acknowledged once its record is
// fsynced) and handled by a worker, each job two records (enqueued, done),
// against the log's own durable append rate with as many appenders. The
// engine must run the queue module with a queue named benchQueue.

const (
	benchQueue = "bench"
	jobFn      = "bench::job"
)

// enqueueBody is the rest of an enqueue call.
func enqueueBody(dst []byte, _ uint64) []byte {
	return append(dst, `","function_id":"`+jobFn+`","data":{"n":1},"action":{"type":"enqueue","queue":"`+benchQueue+`"}}`...)
}

var tagJob = []byte(`"function_id":"` + jobFn + `"`)

func (r *runner) queue() error {
	if r.t.EngineURL == "" {
		r.add(Row{Scenario: "queue: enqueue→handled", Unit: "jobs/s", Ours: nanIf(true, 0), Baseline: nanIf(true, 0), Note: "no engine"})
		return nil
	}
	var handled atomic.Uint64
	w, err := dialWorker(r.t.EngineURL, func(b []byte) {
		if bytes.Contains(b, tagJob) {
			handled.Add(1)
		}
	}, `{"type":"registerfunction","id":"`+jobFn+`"}`)
	if err != nil {
		return err
	}
	defer w.close()
	var callers []*caller
	defer func() {
		for _, c := range callers {
			c.close()
		}
	}()
	for range manyConns {
		c, err := dialCaller(r.t.EngineURL, enqueueBody)
		if err != nil {
			return err
		}
		callers = append(callers, c)
		if err := c.ready(15 * time.Second); err != nil {
			return fmt.Errorf("enqueue: %w", err)
		}
	}
	r.progress("queue: %d enqueuers, %d in flight, for %s", manyConns, inFlight, r.o.Duration)
	before, t0 := handled.Load(), time.Now()
	res, err := runLoad(callers, inFlight/manyConns, r.o.Duration, false)
	if err != nil {
		return err
	}
	jobs := float64(handled.Load()-before) / time.Since(t0).Seconds()

	l, _, done, err := r.tempLog("queue")
	if err != nil {
		return err
	}
	defer done()
	r.progress("queue baseline: log appends, %d appenders, for %s", inFlight, r.o.Duration)
	appends, err := appendLoad(l, inFlight, r.o.Duration)
	if err != nil {
		return err
	}
	r.add(Row{Scenario: "queue: enqueue acknowledged", Unit: "jobs/s", Ours: res.rate(), Baseline: appends, Against: "log appends",
		Note: "one durable record per enqueue"})
	r.add(Row{Scenario: "queue: enqueue→handled", Unit: "jobs/s", Ours: jobs, Baseline: appends, Against: "log appends",
		Note: "two durable records per job (enqueued, done): 0.5 is the log's limit"})
	r.rep.Summary.QueueRatio = jobs / appends
	return nil
}
