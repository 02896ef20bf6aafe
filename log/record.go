package log

import (
	"fmt"

	"github.com/oklog/ulid/v2"
)

// RecordVersion is the encoding version written into every record. Readers
// refuse records with a newer version instead of guessing at their meaning.
const RecordVersion = 1

// Kind names what a record says happened. The numeric values are part of the
// on-disk format: append new kinds at the end, never renumber.
type Kind uint8

// The record kinds. Field use per kind is documented on Record.
const (
	KindInvalid Kind = iota
	KindEngineStarted
	KindWorkerConnected
	KindWorkerUpdated
	KindWorkerDisconnected
	KindFunctionRegistered
	KindFunctionUnregistered
	KindTriggerRegistered
	KindTriggerUnregistered
	KindTriggerTypeRegistered
	KindTriggerTypeUnregistered
	KindStreamSet
	KindStreamUpdate
	KindStreamDelete
	KindStreamSend
	KindStateSet
	KindStateUpdate
	KindStateDelete
	KindJobEnqueued
	KindJobFailed
	KindJobDone
	KindJobDead
	KindJobRedriven
	KindJobDiscarded
	KindNodeLost
	kindEnd
)

var kindNames = [...]string{
	KindInvalid:                 "invalid",
	KindEngineStarted:           "engine.started",
	KindWorkerConnected:         "worker.connected",
	KindWorkerUpdated:           "worker.updated",
	KindWorkerDisconnected:      "worker.disconnected",
	KindFunctionRegistered:      "function.registered",
	KindFunctionUnregistered:    "function.unregistered",
	KindTriggerRegistered:       "trigger.registered",
	KindTriggerUnregistered:     "trigger.unregistered",
	KindTriggerTypeRegistered:   "triggertype.registered",
	KindTriggerTypeUnregistered: "triggertype.unregistered",
	KindStreamSet:               "stream.set",
	KindStreamUpdate:            "stream.update",
	KindStreamDelete:            "stream.delete",
	KindStreamSend:              "stream.send",
	KindStateSet:                "state.set",
	KindStateUpdate:             "state.update",
	KindStateDelete:             "state.delete",
	KindJobEnqueued:             "queue.enqueued",
	KindJobFailed:               "queue.failed",
	KindJobDone:                 "queue.done",
	KindJobDead:                 "queue.dead",
	KindJobRedriven:             "queue.redriven",
	KindJobDiscarded:            "queue.discarded",
	KindNodeLost:                "node.lost",
}

// String returns the dotted name used by `iii replay --kind`.
func (k Kind) String() string {
	if k < kindEnd {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Kinds lists every valid kind in numeric order.
func Kinds() []Kind {
	ks := make([]Kind, 0, kindEnd-1)
	for k := KindInvalid + 1; k < kindEnd; k++ {
		ks = append(ks, k)
	}
	return ks
}

// ParseKind maps a dotted name such as "stream.set" back to its Kind.
func ParseKind(name string) (Kind, error) {
	for k := KindInvalid + 1; k < kindEnd; k++ {
		if kindNames[k] == name {
			return k, nil
		}
	}
	return KindInvalid, fmt.Errorf("unknown record kind %q", name)
}

// Record is one fact in the log. It is deliberately flat: each kind uses a
// subset of the fields and the rest stay empty (and cost nothing on disk,
// thanks to omitempty). JSON-valued fields hold raw JSON text exactly as the
// engine accepted it, so a replay reproduces values byte for byte.
//
// Field use by kind:
//
//	engine.started            Value: {"version": "..."}; in a cluster Node: the node that started
//	worker.connected          Worker; Value: {"listener","ip_address","rbac":bool, ...}
//	worker.updated            Worker; Value: the engine::workers::register payload (name, runtime, pid, ...)
//	worker.disconnected       Worker
//	function.registered       Worker, Function; Value: {"description","metadata","request_format","response_format","invocation"}
//	function.unregistered     Worker, Function
//	trigger.registered        Worker, Trigger, TriggerType, Function; Value: config; Meta: trigger metadata
//	trigger.unregistered      Worker, Trigger, TriggerType
//	triggertype.registered    Worker, TriggerType; Value: {"description", ...}
//	triggertype.unregistered  Worker, TriggerType
//	stream.set                Stream, Group, Item; Value: the new item value
//	stream.update             Stream, Group, Item; Value: the ops array
//	stream.delete             Stream, Group, Item
//	stream.send               Stream, Group; Value: {"type": <event name>, "data": <any>, "id": <string|null>}
//	state.set                 Scope, Key; Value: the new value
//	state.update              Scope, Key; Value: the ops array
//	state.delete              Scope, Key
//	queue.enqueued            Queue, Job, Function, Group (FIFO message group); Value: payload; Meta: call metadata
//	queue.failed              Queue, Job, Attempt; Value: {"error": <ErrorBody>, "retry_at": <Unix ns>}
//	queue.done                Queue, Job, Attempt
//	queue.dead                Queue, Job, Attempt; Value: {"error": <ErrorBody>} (moved to the dead-letter queue)
//	queue.redriven            Queue, Job (back from the dead-letter queue, attempts reset)
//	queue.discarded           Queue, Job (removed from the dead-letter queue)
//	node.lost                 Node (the cluster node declared gone); Value: {"incarnation": <ID of its engine.started>, "by": <declaring node>, "reason": ...}
//
// Worker is the connection's worker id (a UUID), or "engine" for functions and
// trigger types the engine provides itself.
//
// Cause and Depth are set on stream and state writes made while a trigger's
// condition or handler ran for an earlier change: Cause is the 64-bit FNV-1a
// hash of that trigger's id and Depth the length of the chain of firings
// that led here (1 for a write made by a trigger fired by a plain write).
// They let the engine refuse to re-fire a trigger for its own writes and cut
// chains that grow too long; both are zero for every other record.
type Record struct {
	// Index is the record's position in the log, assigned by the sequencer.
	// It is not encoded: a record's position is its index.
	Index uint64 `msgpack:"-"`

	V    uint8     `msgpack:"v"`
	ID   ulid.ULID `msgpack:"id"`
	Time int64     `msgpack:"t"` // Unix nanoseconds, read from the clock when the record was made
	Kind Kind      `msgpack:"k"`

	Stream string `msgpack:"s,omitempty"`
	Group  string `msgpack:"g,omitempty"`
	Item   string `msgpack:"i,omitempty"`
	Scope  string `msgpack:"sc,omitempty"`
	Key    string `msgpack:"ky,omitempty"`

	Worker      string `msgpack:"w,omitempty"`
	Function    string `msgpack:"f,omitempty"`
	Trigger     string `msgpack:"tr,omitempty"`
	TriggerType string `msgpack:"tt,omitempty"`
	Queue       string `msgpack:"q,omitempty"`
	Job         string `msgpack:"j,omitempty"`
	// Node is the cluster node that wrote the record (engine.cluster.node),
	// or for node.lost the node declared gone; empty on a single engine.
	Node string `msgpack:"nd,omitempty"`

	Value []byte `msgpack:"val,omitempty"`
	Meta  []byte `msgpack:"m,omitempty"`

	Cause uint64 `msgpack:"cz,omitempty"`
	Depth uint8  `msgpack:"dp,omitempty"`

	// Attempt numbers a queue job's delivery attempts from 1.
	Attempt uint32 `msgpack:"n,omitempty"`
}

// EngineWorker is the Worker value of records about things the engine itself
// provides (built-in functions and trigger types).
const EngineWorker = "engine"
