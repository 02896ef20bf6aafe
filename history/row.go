package history

import (
	"encoding/json"
	"time"

	"github.com/iii-go/iii/internal/jsontext"
	"github.com/iii-go/iii/log"
)

// Row is one record as JSON: index, id, time (RFC 3339, UTC, nanoseconds),
// kind, then the fields the record uses. Value and meta are embedded as
// JSON, not as strings. It is a line of `iii replay --format json` and an
// element of an engine::history::query answer.
type Row struct {
	Index       uint64          `json:"index"`
	ID          string          `json:"id"`
	Time        time.Time       `json:"time"`
	Kind        string          `json:"kind"`
	Stream      string          `json:"stream,omitempty"`
	Group       string          `json:"group,omitempty"`
	Item        string          `json:"item,omitempty"`
	Scope       string          `json:"scope,omitempty"`
	Key         string          `json:"key,omitempty"`
	Worker      string          `json:"worker,omitempty"`
	Function    string          `json:"function,omitempty"`
	Trigger     string          `json:"trigger,omitempty"`
	TriggerType string          `json:"trigger_type,omitempty"`
	Queue       string          `json:"queue,omitempty"`
	Job         string          `json:"job,omitempty"`
	Attempt     uint32          `json:"attempt,omitempty"`
	Node        string          `json:"node,omitempty"`
	Value       json.RawMessage `json:"value,omitempty"`
	Meta        json.RawMessage `json:"meta,omitempty"`
}

// NewRow converts a record (it may keep rec's byte slices, which the log
// never reuses).
func NewRow(rec *log.Record) Row {
	return Row{
		Index: rec.Index, ID: rec.ID.String(), Time: time.Unix(0, rec.Time).UTC(), Kind: rec.Kind.String(),
		Stream: rec.Stream, Group: rec.Group, Item: rec.Item, Scope: rec.Scope, Key: rec.Key,
		Worker: rec.Worker, Function: rec.Function, Trigger: rec.Trigger, TriggerType: rec.TriggerType,
		Queue: rec.Queue, Job: rec.Job, Attempt: rec.Attempt, Node: rec.Node,
		Value: JSONValue(rec.Value), Meta: JSONValue(rec.Meta),
	}
}

// JSONValue makes raw value bytes safe to embed in JSON output: valid JSON
// is kept as is, anything else (never written by the engine, but a log is
// read as found) becomes a JSON string.
func JSONValue(v []byte) json.RawMessage {
	if len(v) == 0 {
		return nil
	}
	if json.Valid(v) {
		return v
	}
	return jsontext.AppendString(nil, string(v))
}
