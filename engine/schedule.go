package engine

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/iii-go/iii/engine/cron"
	"github.com/iii-go/iii/projections"
)

// The cron module (iii-cron): every `cron` trigger runs its function on its
// schedule (engine/cron has the format), one run at a time — the next time
// is computed once a run has finished, so ticks that fall during a long run,
// or while the engine was down, are skipped rather than caught up, as
// upstream iii v0.22.1 does. The function gets {trigger: "cron", job_id,
// scheduled_time, actual_time}; a condition answering false (or failing)
// skips the tick.

type scheduler struct {
	e    *Engine
	mu   sync.Mutex
	jobs map[string]*cronJob // by trigger id
	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

type cronJob struct {
	config string // the trigger config it was started with
	stop   chan struct{}
}

type cronConfig struct {
	Expression string `json:"expression"`
	Condition  string `json:"condition_function_id"`
}

// validateCronTrigger returns the refusal of a cron trigger's config, or "".
func validateCronTrigger(raw json.RawMessage) string {
	var c cronConfig
	_ = json.Unmarshal(raw, &c)
	if c.Expression == "" {
		return "Cron expression is required"
	}
	if _, err := cron.Parse(c.Expression); err != nil {
		return "Invalid cron expression '" + c.Expression + "': " + err.Error()
	}
	return ""
}

func newScheduler(e *Engine) *scheduler {
	return &scheduler{e: e, jobs: map[string]*cronJob{}, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

func (s *scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run keeps one goroutine per cron trigger in the registry.
func (s *scheduler) run() {
	defer close(s.done)
	for {
		s.sync()
		select {
		case <-s.wake:
		case <-s.stop:
			s.mu.Lock()
			for id, j := range s.jobs {
				close(j.stop)
				delete(s.jobs, id)
			}
			s.mu.Unlock()
			return
		}
	}
}

func (s *scheduler) sync() {
	e := s.e
	e.view.mu.RLock()
	ts := e.view.Registry.TriggersOfType("cron")
	e.view.mu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	live := map[string]bool{}
	for _, t := range ts {
		live[t.ID] = true
		if j, ok := s.jobs[t.ID]; ok && j.config == string(t.Config) {
			continue
		} else if ok {
			close(j.stop) // re-registered with another config
		}
		j := &cronJob{config: string(t.Config), stop: make(chan struct{})}
		s.jobs[t.ID] = j
		go s.loop(t, j.stop)
	}
	for id, j := range s.jobs {
		if !live[id] {
			close(j.stop)
			delete(s.jobs, id)
		}
	}
}

// loop runs one trigger's ticks until stop closes.
func (s *scheduler) loop(t projections.Trigger, stop chan struct{}) {
	var c cronConfig
	_ = json.Unmarshal(t.Config, &c)
	sched, err := cron.Parse(c.Expression)
	if err != nil {
		return // refused at registration; a record from an older build may still hold one
	}
	e := s.e
	for {
		next := sched.Next(time.Now())
		if next.IsZero() {
			return
		}
		timer := time.NewTimer(time.Until(next))
		select {
		case <-stop:
			timer.Stop()
			return
		case <-timer.C:
		}
		if !e.firesHere(t.Worker) {
			continue // in a cluster, the owner's node (the leader for the engine's own) runs it
		}
		payload, _ := json.Marshal(map[string]string{"trigger": "cron", "job_id": t.ID,
			"scheduled_time": next.Format(rfc3339Offset), "actual_time": time.Now().UTC().Format(rfc3339Offset)})
		call := e.callerFor(t.Worker)
		if c.Condition != "" {
			o := call(c.Condition, payload, nil, "")
			if o.failed() || o.hasResult && string(o.result) == "false" {
				if o.failed() {
					e.logger.Debug("cron: condition failed; tick skipped", "trigger_id", t.ID, "err", o.errorMessage())
				}
				continue
			}
		}
		if o := call(t.Function, payload, nonNull(t.Metadata), ""); o.failed() {
			e.logger.Debug("cron: run failed", "trigger_id", t.ID, "err", o.errorMessage())
		}
	}
}

// rfc3339Offset is RFC 3339 with a numeric +00:00 offset and fractional
// seconds only when there are any, as upstream prints cron times.
const rfc3339Offset = "2006-01-02T15:04:05.999999999-07:00"
