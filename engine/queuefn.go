package engine

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/iii-go/iii/log"
	"github.com/iii-go/iii/projections"
)

// The queue module's functions, with upstream v0.22.1's inputs and result
// shapes (docs/wire-protocol.md#queues).

func (e *Engine) registerQueueFunctions() {
	const mod = "iii-queue"
	q := e.queues
	for _, b := range []*builtin{
		{id: "iii::durable::publish", description: "Enqueue a message", fn: q.fnPublish},
		{id: "iii::queue::redrive", description: "Redrive all DLQ messages back to the main queue", fn: q.fnRedrive},
		{id: "iii::queue::redrive_message", description: "Redrive a single DLQ message by ID back to the main queue", fn: q.fnRedriveMessage(log.KindJobRedriven)},
		{id: "iii::queue::discard_message", description: "Discard (purge) a single DLQ message by ID", fn: q.fnRedriveMessage(log.KindJobDiscarded)},
		{id: "engine::queue::list_topics", description: "List all queue topics", inline: true, fn: q.fnListTopics},
		{id: "engine::queue::topic_stats", description: "Get stats for a queue topic", inline: true, fn: q.fnTopicStats},
		{id: "engine::queue::dlq_topics", description: "List DLQ topics with counts", inline: true, fn: q.fnDLQTopics},
		{id: "engine::queue::dlq_messages", description: "Browse DLQ messages", inline: true, fn: q.fnDLQMessages},
	} {
		b.module = mod
		e.addBuiltin(b)
	}
	e.builtinTypes[durableSubscriber] = mod
}

// subscribers returns the distinct functions subscribed to a topic, in
// registration order.
func (q *queues) subscribers(topic string) []string {
	var fns []string
	q.e.view.mu.RLock()
	defer q.e.view.mu.RUnlock()
	for _, t := range q.e.view.Registry.TriggersOfType(durableSubscriber) {
		var c subscriberConfig
		if json.Unmarshal(t.Config, &c) == nil && c.Topic == topic && !slices.Contains(fns, t.Function) {
			fns = append(fns, t.Function)
		}
	}
	return fns
}

// fnPublish is iii::durable::publish {topic, data}: one job per subscribed
// function, all recorded in one group commit before the answer.
func (q *queues) fnPublish(c *builtinCall) callOutcome {
	var in struct {
		Topic *string         `json:"topic"`
		Data  json.RawMessage `json:"data"`
	}
	if o := c.decode("iii::durable::publish", &in); o != nil {
		return *o
	}
	switch {
	case in.Topic == nil:
		return failure(codeDeserialization, "Failed to deserialize input for iii::durable::publish: missing field `topic`")
	case in.Data == nil:
		return failure(codeDeserialization, "Failed to deserialize input for iii::durable::publish: missing field `data`")
	case *in.Topic == "":
		return failure("topic_not_set", "Topic is not set")
	}
	fns := q.subscribers(*in.Topic)
	if len(fns) == 0 {
		q.e.logger.Warn("queue: message published to a topic nobody subscribes to; dropped", "topic", *in.Topic)
		return resultOf(json.RawMessage("null"))
	}
	recs := make([]*log.Record, 0, len(fns))
	for _, fn := range fns {
		recs = append(recs, c.mark(&log.Record{Kind: log.KindJobEnqueued, Queue: *in.Topic + "::" + fn, Job: newUUID(), Function: fn, Value: in.Data}))
	}
	if _, err := q.e.log.AppendBatch(recs); err != nil {
		return failure("publish_failed", "the message was not recorded: "+err.Error())
	}
	return resultOf(json.RawMessage("null"))
}

// queueArg is the {queue|topic, message_id} input of the DLQ functions.
type queueArg struct {
	Queue     string `json:"queue"`
	Topic     string `json:"topic"`
	MessageID string `json:"message_id"`
}

func (a *queueArg) name() string {
	if a.Queue != "" {
		return a.Queue
	}
	return a.Topic
}

// resolve maps a name to the queues it covers: a named queue, or every
// subscriber queue of a topic (with jobs, or subscribed now). A named queue
// hides a topic of the same name.
func (q *queues) resolve(name string) []string {
	if _, ok := q.cfg.Queues[name]; ok {
		return []string{name}
	}
	var out []string
	q.e.view.mu.RLock()
	for _, n := range q.e.view.Queues.Names() {
		if strings.HasPrefix(n, name+"::") {
			out = append(out, n)
		}
	}
	q.e.view.mu.RUnlock()
	for _, fn := range q.subscribers(name) {
		if n := name + "::" + fn; !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// dead returns the dead-lettered jobs of the queues, oldest first.
func (q *queues) dead(names []string) []projections.Job {
	var jobs []projections.Job
	q.e.view.mu.RLock()
	for _, n := range names {
		q.e.view.Queues.Jobs(n, func(j *projections.Job) bool {
			if j.Dead {
				jobs = append(jobs, *j)
			}
			return true
		})
	}
	q.e.view.mu.RUnlock()
	slices.SortStableFunc(jobs, func(a, b projections.Job) int { return int(a.FailedAt - b.FailedAt) })
	return jobs
}

func (q *queues) fnRedrive(c *builtinCall) callOutcome {
	var in queueArg
	if o := c.decode("iii::queue::redrive", &in); o != nil {
		return *o
	}
	if in.name() == "" {
		return failure("queue_not_set", "Queue name is required")
	}
	var recs []*log.Record
	for _, j := range q.dead(q.resolve(in.name())) {
		recs = append(recs, &log.Record{Kind: log.KindJobRedriven, Queue: j.Queue, Job: j.ID})
	}
	if len(recs) > 0 {
		if _, err := q.e.log.AppendBatch(recs); err != nil {
			return failure("redrive_failed", "Failed to redrive DLQ for queue '"+in.name()+"': "+err.Error())
		}
	}
	return marshalResult(map[string]any{"queue": in.name(), "redriven": len(recs)})
}

// fnRedriveMessage is iii::queue::redrive_message (kind queue.redriven) or
// iii::queue::discard_message (queue.discarded): one DLQ job by id. Both
// answer {queue, message_id, redriven: 1|0}, as upstream does.
func (q *queues) fnRedriveMessage(kind log.Kind) func(*builtinCall) callOutcome {
	fn, code, what := "iii::queue::redrive_message", "redrive_message_failed", "Failed to redrive DLQ message '"
	if kind == log.KindJobDiscarded {
		fn, code, what = "iii::queue::discard_message", "discard_message_failed", "Failed to discard DLQ message '"
	}
	return func(c *builtinCall) callOutcome {
		var in queueArg
		if o := c.decode(fn, &in); o != nil {
			return *o
		}
		switch {
		case in.name() == "":
			return failure("queue_not_set", "Queue name is required")
		case in.MessageID == "":
			return failure("message_id_not_set", "Message ID is required")
		}
		n := 0
		for _, j := range q.dead(q.resolve(in.name())) {
			if j.ID == in.MessageID {
				if _, err := q.e.log.Append(&log.Record{Kind: kind, Queue: j.Queue, Job: j.ID}); err != nil {
					return failure(code, what+in.MessageID+"': "+err.Error())
				}
				n = 1
				break
			}
		}
		return marshalResult(map[string]any{"queue": in.name(), "message_id": in.MessageID, "redriven": n})
	}
}

// topicArg is the topic the inspection functions take (queue as an alias).
func topicArg(topic, queue string) (string, *callOutcome) {
	if topic == "" {
		topic = queue
	}
	if topic == "" {
		o := failure("topic_required", "topic is required")
		return "", &o
	}
	return topic, nil
}

// topicRow is one element of engine::queue::list_topics.
type topicRow struct {
	Name        string `json:"name"`
	BrokerType  string `json:"broker_type"`
	Subscribers int    `json:"subscriber_count"`
}

func (q *queues) fnListTopics(*builtinCall) callOutcome {
	rows := []topicRow{}
	for _, name := range sortedKeys(q.cfg.Queues) {
		rows = append(rows, topicRow{name, "builtin", q.cfg.Queues[name].Concurrency})
	}
	counts := map[string]int{}
	var topics []string
	q.e.view.mu.RLock()
	for _, t := range q.e.view.Registry.TriggersOfType(durableSubscriber) {
		var c subscriberConfig
		if json.Unmarshal(t.Config, &c) == nil && c.Topic != "" {
			if counts[c.Topic] == 0 {
				topics = append(topics, c.Topic)
			}
			counts[c.Topic]++
		}
	}
	q.e.view.mu.RUnlock()
	for _, t := range topics {
		rows = append(rows, topicRow{t, "builtin", counts[t]})
	}
	return marshalResult(rows)
}

func (q *queues) fnTopicStats(c *builtinCall) callOutcome {
	var in queueArg
	if o := c.decode("engine::queue::topic_stats", &in); o != nil {
		return *o
	}
	name, o := topicArg(in.Topic, in.Queue)
	if o != nil {
		return *o
	}
	depth, dead := 0, 0
	for _, n := range q.resolve(name) {
		q.e.view.mu.RLock()
		p, d := q.e.view.Queues.Counts(n)
		q.e.view.mu.RUnlock()
		depth, dead = depth+p, dead+d
	}
	consumers := len(q.subscribers(name))
	if c, ok := q.cfg.Queues[name]; ok {
		consumers = c.Concurrency
	}
	return marshalResult(map[string]any{"depth": depth, "consumer_count": consumers, "dlq_depth": dead, "config": nil})
}

func (q *queues) fnDLQTopics(*builtinCall) callOutcome {
	type row struct {
		Topic      string `json:"topic"`
		BrokerType string `json:"broker_type"`
		Count      int    `json:"message_count"`
	}
	rows := []row{}
	seen := map[string]bool{}
	names := sortedKeys(q.cfg.Queues)
	q.e.view.mu.RLock()
	for _, n := range q.e.view.Queues.Names() {
		if _, named := q.cfg.Queues[n]; named {
			continue
		}
		// A topic queue is "<topic>::<function>": its jobs name the function.
		q.e.view.Queues.Jobs(n, func(j *projections.Job) bool {
			if topic, ok := strings.CutSuffix(n, "::"+j.Function); ok && !seen[topic] {
				seen[topic] = true
				names = append(names, topic)
			}
			return false
		})
	}
	q.e.view.mu.RUnlock()
	for _, n := range names {
		broker := "builtin"
		if _, named := q.cfg.Queues[n]; named {
			broker = "function_queue"
		}
		rows = append(rows, row{n, broker, len(q.dead(q.resolve(n)))})
	}
	return marshalResult(rows)
}

func (q *queues) fnDLQMessages(c *builtinCall) callOutcome {
	var in struct {
		Topic  string `json:"topic"`
		Queue  string `json:"queue"`
		Offset uint   `json:"offset"`
		Limit  *uint  `json:"limit"`
	}
	if o := c.decode("engine::queue::dlq_messages", &in); o != nil {
		return *o
	}
	name, o := topicArg(in.Topic, in.Queue)
	if o != nil {
		return *o
	}
	limit := uint(50)
	if in.Limit != nil {
		limit = *in.Limit
	}
	type row struct {
		ID       string          `json:"id"`
		Payload  json.RawMessage `json:"payload"`
		Error    string          `json:"error"`
		FailedAt int64           `json:"failed_at"`
		Retries  uint32          `json:"retries"`
		Size     int             `json:"size_bytes"`
	}
	jobs := q.dead(q.resolve(name))
	slices.Reverse(jobs) // newest first
	rows := []row{}
	for i, j := range jobs {
		if uint(i) < in.Offset {
			continue
		}
		if uint(len(rows)) >= limit {
			break
		}
		rows = append(rows, row{ID: j.ID, Payload: rawOrNull(j.Payload), Error: errorText(j.LastError),
			FailedAt: j.FailedAt / 1e9, Retries: j.Attempts, Size: len(j.Payload) + len(j.LastError)})
	}
	return marshalResult(rows)
}

// errorText renders a stored ErrorBody as "code: message".
func errorText(body json.RawMessage) string {
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil || e.Code == "" && e.Message == "" {
		return string(body)
	}
	return e.Code + ": " + e.Message
}
