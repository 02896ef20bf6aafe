package history

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/iii-go/iii/log"
)

// Filter selects records. Every set field must match (AND); empty string
// fields, zero indexes and zero times mean "any". A Filter decodes from the
// JSON object an engine::history::query call carries, with the same names
// as the command-line flags: stream, group, item, kind, worker, function,
// queue, job, from_index, to_index, since, until, limit.
type Filter struct {
	// Stream, Group and Item match the record fields of the same name
	// (stream.* records only carry them).
	Stream, Group, Item string
	// Kinds keeps records of any of these kinds; empty keeps every kind.
	Kinds []log.Kind
	// Worker and Function match the worker id and function id a registry
	// record names.
	Worker, Function string
	// Queue and Job match a queue record's queue and job id (a job's
	// messageReceiptId): --job shows one job's whole life.
	Queue, Job string
	// FromIndex and ToIndex bound the record index, both inclusive.
	FromIndex, ToIndex uint64
	// Since and Until bound the record time, both inclusive.
	Since, Until time.Time
	// Limit stops after this many matching records; 0 means no limit.
	Limit int
}

// FilterSpec is a Filter as a user types it: every field is text, parsed by
// ParseFilter. Kind is a comma-separated list of kind names; Since and Until
// are RFC 3339 times or durations before now (see ParseTime).
type FilterSpec struct {
	Stream, Group, Item, Kind, Worker, Function string
	Queue, Job                                  string
	FromIndex, ToIndex                          string
	Since, Until                                string
	Limit                                       string
}

// ParseFilter checks and converts a FilterSpec. Relative times are taken
// back from now. The error names the offending field in one line.
func ParseFilter(s FilterSpec, now time.Time) (Filter, error) {
	f := Filter{Stream: s.Stream, Group: s.Group, Item: s.Item, Worker: s.Worker, Function: s.Function, Queue: s.Queue, Job: s.Job}
	var err error
	if f.Kinds, err = ParseKinds(s.Kind); err != nil {
		return Filter{}, err
	}
	for _, n := range []struct {
		name string
		text string
		dst  *uint64
	}{{"from_index", s.FromIndex, &f.FromIndex}, {"to_index", s.ToIndex, &f.ToIndex}} {
		if n.text == "" {
			continue
		}
		if *n.dst, err = strconv.ParseUint(n.text, 10, 64); err != nil {
			return Filter{}, fmt.Errorf("%s %q: not a record index (a whole number)", n.name, n.text)
		}
	}
	if s.Limit != "" {
		if f.Limit, err = strconv.Atoi(s.Limit); err != nil {
			return Filter{}, fmt.Errorf("limit %q: not a whole number", s.Limit)
		}
	}
	if f.Since, err = parseTimeField("since", s.Since, now); err != nil {
		return Filter{}, err
	}
	if f.Until, err = parseTimeField("until", s.Until, now); err != nil {
		return Filter{}, err
	}
	return f, f.check()
}

func parseTimeField(name, text string, now time.Time) (time.Time, error) {
	if text == "" {
		return time.Time{}, nil
	}
	t, err := ParseTime(text, now)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

// check rejects contradictory bounds.
func (f *Filter) check() error {
	switch {
	case f.Limit < 0:
		return fmt.Errorf("limit %d: must not be negative", f.Limit)
	case f.ToIndex != 0 && f.FromIndex > f.ToIndex:
		return fmt.Errorf("from_index %d is after to_index %d", f.FromIndex, f.ToIndex)
	case !f.Since.IsZero() && !f.Until.IsZero() && f.Since.After(f.Until):
		return fmt.Errorf("since %s is after until %s", f.Since.Format(time.RFC3339Nano), f.Until.Format(time.RFC3339Nano))
	}
	return nil
}

// ParseKinds parses a comma-separated list of record kind names such as
// "stream.set,stream.delete". The empty string is no kind filter.
func ParseKinds(list string) ([]log.Kind, error) {
	if list == "" {
		return nil, nil
	}
	var kinds []log.Kind
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		// "queue.*" names every kind of one family.
		if family, ok := strings.CutSuffix(name, ".*"); ok {
			n := len(kinds)
			for _, k := range log.Kinds() {
				if strings.HasPrefix(k.String(), family+".") {
					kinds = append(kinds, k)
				}
			}
			if len(kinds) > n {
				continue
			}
		}
		k, err := log.ParseKind(name)
		if err != nil {
			return nil, fmt.Errorf("kind: unknown record kind %q (known: %s, or family.*)", name, kindList())
		}
		kinds = append(kinds, k)
	}
	return kinds, nil
}

func kindList() string {
	names := make([]string, 0, len(log.Kinds()))
	for _, k := range log.Kinds() {
		names = append(names, k.String())
	}
	return strings.Join(names, ", ")
}

// ParseTime reads an RFC 3339 time ("2026-11-29T10:42:00Z", fractional
// seconds allowed) or a duration such as "15m" or "1h30m", meaning that long
// before now.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-11-29T10:42:00Z) nor a duration (15m, 2h)", s)
	}
	if d < 0 {
		return time.Time{}, fmt.Errorf("%q: a duration means that long before now and must not be negative", s)
	}
	return now.Add(-d), nil
}

// filterJSON is the wire form of a Filter.
type filterJSON struct {
	Stream    string `json:"stream"`
	Group     string `json:"group"`
	Item      string `json:"item"`
	Kind      string `json:"kind"`
	Worker    string `json:"worker"`
	Function  string `json:"function"`
	Queue     string `json:"queue"`
	Job       string `json:"job"`
	FromIndex uint64 `json:"from_index"`
	ToIndex   uint64 `json:"to_index"`
	Since     string `json:"since"`
	Until     string `json:"until"`
	Limit     int    `json:"limit"`
}

// UnmarshalJSON decodes a query object (see Filter). Unknown fields are an
// error, so a misspelt filter never silently matches everything. Relative
// times are taken back from the current time.
func (f *Filter) UnmarshalJSON(b []byte) error {
	var j filterJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("history query: %w", err)
	}
	if dec.More() {
		return errors.New("history query: trailing data after the object")
	}
	nf, err := ParseFilter(FilterSpec{
		Stream: j.Stream, Group: j.Group, Item: j.Item, Kind: j.Kind, Worker: j.Worker, Function: j.Function,
		Queue: j.Queue, Job: j.Job, Since: j.Since, Until: j.Until,
	}, time.Now())
	if err != nil {
		return err
	}
	nf.FromIndex, nf.ToIndex, nf.Limit = j.FromIndex, j.ToIndex, j.Limit
	if err := nf.check(); err != nil {
		return err
	}
	*f = nf
	return nil
}

// Matcher is a Filter compiled for a read loop: no allocation, no
// time.Time arithmetic, one table lookup for the kind.
type Matcher struct {
	stream, group, item, worker, function, queue, job string
	anyKind                                           bool
	kinds                                             [256]bool
	from, to                                          uint64
	since, until                                      int64
}

// Compile prepares f for a read loop.
func (f *Filter) Compile() *Matcher {
	m := &Matcher{
		stream: f.Stream, group: f.Group, item: f.Item, worker: f.Worker, function: f.Function, queue: f.Queue, job: f.Job,
		anyKind: len(f.Kinds) == 0,
		from:    max(f.FromIndex, 1), to: f.ToIndex,
		since: math.MinInt64, until: math.MaxInt64,
	}
	for _, k := range f.Kinds {
		m.kinds[k] = true
	}
	if m.to == 0 {
		m.to = math.MaxUint64
	}
	if !f.Since.IsZero() {
		m.since = f.Since.UnixNano()
	}
	if !f.Until.IsZero() {
		m.until = f.Until.UnixNano()
	}
	return m
}

// From is the first index the filter can select.
func (m *Matcher) From() uint64 { return m.from }

// To is the last index the filter can select.
func (m *Matcher) To() uint64 { return m.to }

// Beyond reports whether rec, and so every later record, is past the
// filter's upper index or time bound: the read can stop.
func (m *Matcher) Beyond(rec *log.Record) bool { return rec.Index > m.to || rec.Time > m.until }

// Match reports whether rec passes every field test. Index and time bounds
// are checked by the caller, which stops the read at the upper ones
// (Beyond).
func (m *Matcher) Match(rec *log.Record) bool {
	return (m.anyKind || m.kinds[rec.Kind]) &&
		rec.Time >= m.since &&
		(m.stream == "" || rec.Stream == m.stream) &&
		(m.group == "" || rec.Group == m.group) &&
		(m.item == "" || rec.Item == m.item) &&
		(m.worker == "" || rec.Worker == m.worker) &&
		(m.function == "" || rec.Function == m.function) &&
		(m.queue == "" || rec.Queue == m.queue) &&
		(m.job == "" || rec.Job == m.job)
}
