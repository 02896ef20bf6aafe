package replay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/iii-go/iii/history"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/iii-go/iii/log"
	"github.com/oklog/ulid/v2"

	"github.com/iii-go/iii/internal/jsontext"
)

// Writer prints what `iii replay` finds. Output may be buffered until
// Flush.
type Writer interface {
	// Record prints one record.
	Record(rec *log.Record) error
	// View prints the read model at a point.
	View(v *View) error
	// Diff prints the changes between two points.
	Diff(from, to Point, changes []ItemChange) error
	Flush() error
}

// JSONWriter prints JSON Lines: a Row per record, an ItemChange per diff
// line, and a View as one object. HTML characters are not escaped.
type JSONWriter struct {
	w       *bufio.Writer
	enc     *json.Encoder
	line    []byte
	compact bytes.Buffer
}

// NewJSONWriter returns a JSONWriter on w.
func NewJSONWriter(w io.Writer) *JSONWriter {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &JSONWriter{w: bw, enc: enc}
}

// Record writes rec as a Row: the same bytes as encoding/json (with HTML
// escaping off) writes for history.NewRow(rec), built without reflection because
// dumping a whole log goes through here once per record.
func (j *JSONWriter) Record(rec *log.Record) error {
	j.line = j.appendRecord(j.line[:0], rec)
	_, err := j.w.Write(j.line)
	return err
}

func (j *JSONWriter) appendRecord(b []byte, rec *log.Record) []byte {
	b = append(b, `{"index":`...)
	b = strconv.AppendUint(b, rec.Index, 10)
	var id [ulid.EncodedSize]byte
	_ = rec.ID.MarshalTextTo(id[:]) // fails only for a short buffer
	b = append(b, `,"id":"`...)
	b = append(b, id[:]...)
	b = append(b, `","time":"`...)
	b = time.Unix(0, rec.Time).UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","kind":`...)
	b = jsontext.AppendString(b, rec.Kind.String())
	for _, f := range [...]struct{ name, v string }{
		{`,"stream":`, rec.Stream}, {`,"group":`, rec.Group}, {`,"item":`, rec.Item},
		{`,"scope":`, rec.Scope}, {`,"key":`, rec.Key}, {`,"worker":`, rec.Worker},
		{`,"function":`, rec.Function}, {`,"trigger":`, rec.Trigger}, {`,"trigger_type":`, rec.TriggerType},
		{`,"queue":`, rec.Queue}, {`,"job":`, rec.Job}, {`,"node":`, rec.Node},
	} {
		if f.v != "" {
			b = append(b, f.name...)
			b = jsontext.AppendString(b, f.v)
		}
	}
	if rec.Attempt != 0 {
		b = append(b, `,"attempt":`...)
		b = strconv.AppendUint(b, uint64(rec.Attempt), 10)
	}
	if len(rec.Value) > 0 {
		b = append(b, `,"value":`...)
		b = j.appendRaw(b, rec.Value)
	}
	if len(rec.Meta) > 0 {
		b = append(b, `,"meta":`...)
		b = j.appendRaw(b, rec.Meta)
	}
	return append(b, "}\n"...)
}

// appendRaw embeds a JSON value compacted, as encoding/json does a
// json.RawMessage, or as a string if it is not JSON (see jsonValue).
func (j *JSONWriter) appendRaw(b, v []byte) []byte {
	j.compact.Reset()
	if json.Compact(&j.compact, v) != nil {
		return jsontext.AppendString(b, string(v))
	}
	return append(b, j.compact.Bytes()...)
}

// Diff writes one ItemChange per line.
func (j *JSONWriter) Diff(_, _ Point, changes []ItemChange) error {
	for i := range changes {
		if err := j.enc.Encode(&changes[i]); err != nil {
			return err
		}
	}
	return nil
}

// View writes st as one object: index, time, then items, state, workers,
// functions, triggers and trigger_types as arrays (empty, never null).
func (j *JSONWriter) View(st *View) error {
	return j.enc.Encode(newViewJSON(st))
}

// Flush writes out buffered output.
func (j *JSONWriter) Flush() error { return j.w.Flush() }

type stateJSON struct {
	Index        uint64            `json:"index"`
	Time         *time.Time        `json:"time,omitempty"`
	Items        []itemJSON        `json:"items"`
	State        []entryJSON       `json:"state"`
	Workers      []workerJSON      `json:"workers"`
	Functions    []functionJSON    `json:"functions"`
	Triggers     []triggerJSON     `json:"triggers"`
	TriggerTypes []triggerTypeJSON `json:"trigger_types"`
}

type itemJSON struct {
	Stream string          `json:"stream"`
	Group  string          `json:"group"`
	Item   string          `json:"item"`
	Value  json.RawMessage `json:"value"`
}

type entryJSON struct {
	Scope string          `json:"scope"`
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

type workerJSON struct {
	ID          string     `json:"id"`
	Name        string     `json:"name,omitempty"`
	Listener    string     `json:"listener,omitempty"`
	IP          string     `json:"ip_address,omitempty"`
	ConnectedAt *time.Time `json:"connected_at,omitempty"`
}

type functionJSON struct {
	ID          string `json:"id"`
	Worker      string `json:"worker"`
	Description string `json:"description,omitempty"`
}

type triggerJSON struct {
	ID       string          `json:"id"`
	Type     string          `json:"type"`
	Function string          `json:"function"`
	Worker   string          `json:"worker"`
	Config   json.RawMessage `json:"config,omitempty"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

type triggerTypeJSON struct {
	ID     string `json:"id"`
	Worker string `json:"worker"`
}

func newViewJSON(st *View) *stateJSON {
	items, entries := st.Items(), st.Entries()
	v := &stateJSON{Index: st.Index, Items: []itemJSON{}, State: []entryJSON{}, Workers: []workerJSON{},
		Functions: []functionJSON{}, Triggers: []triggerJSON{}, TriggerTypes: []triggerTypeJSON{}}
	if !st.Time.IsZero() {
		v.Time = &st.Time
	}
	for _, it := range items {
		v.Items = append(v.Items, itemJSON{it.Stream, it.Group, it.Item, history.JSONValue(it.Value)})
	}
	for _, e := range entries {
		v.State = append(v.State, entryJSON{e.Scope, e.Key, history.JSONValue(e.Value)})
	}
	for _, w := range st.Registry.Workers() {
		wj := workerJSON{ID: w.ID, Name: w.Name, Listener: w.Listener, IP: w.IP}
		if w.ConnectedAt != 0 {
			t := time.Unix(0, w.ConnectedAt).UTC()
			wj.ConnectedAt = &t
		}
		v.Workers = append(v.Workers, wj)
	}
	for _, f := range st.Registry.Functions() {
		v.Functions = append(v.Functions, functionJSON{f.ID, f.Worker, f.Description})
	}
	for _, t := range st.Registry.Triggers() {
		v.Triggers = append(v.Triggers, triggerJSON{t.ID, t.Type, t.Function, t.Worker, history.JSONValue(t.Config), history.JSONValue(t.Metadata)})
	}
	for _, t := range st.Registry.TriggerTypes() {
		v.TriggerTypes = append(v.TriggerTypes, triggerTypeJSON{t.ID, t.Worker})
	}
	return v
}

// TableWriter prints aligned columns for a person to read, in colour if
// asked (meant for a terminal). Records are buffered a block at a time to
// size the columns; a column never narrows, so blocks line up unless a
// later one holds a longer value.
type TableWriter struct {
	w      *bufio.Writer
	colour bool
	recs   table
}

// tableBlock is how many records are sized together.
const tableBlock = 256

// NewTableWriter returns a TableWriter on w.
func NewTableWriter(w io.Writer, colour bool) *TableWriter {
	return &TableWriter{w: bufio.NewWriter(w), colour: colour}
}

// Record adds rec to the records table: INDEX TIME KIND SUBJECT DETAIL.
func (t *TableWriter) Record(rec *log.Record) error {
	if t.recs.widths == nil {
		t.recs = table{rightAlign: 1, colourCol: 2} // right-aligned INDEX, coloured KIND
		t.recs.add(styleHeader, "INDEX", "TIME", "KIND", "SUBJECT", "DETAIL")
	}
	t.recs.add(kindStyle(rec.Kind), strconv.FormatUint(rec.Index, 10), formatTime(rec.Time), rec.Kind.String(),
		subject(rec), detail(rec))
	if len(t.recs.rows) >= tableBlock {
		return t.recs.flush(t.w, t.colour)
	}
	return nil
}

// Flush prints buffered records and writes out the output.
func (t *TableWriter) Flush() error {
	if err := t.recs.flush(t.w, t.colour); err != nil {
		return err
	}
	return t.w.Flush()
}

// View prints st section by section: stream items, state values, workers,
// functions (with the worker owning each), triggers and trigger types.
func (t *TableWriter) View(st *View) error {
	items, entries := st.Items(), st.Entries()
	at := "state at index " + strconv.FormatUint(st.Index, 10)
	if !st.Time.IsZero() {
		at += " (" + st.Time.Format(tableTime) + ")"
	}
	fmt.Fprintln(t.w, at)
	var sections []*table
	if len(items) > 0 {
		tb := newTable(-1, "STREAM", "GROUP", "ITEM", "VALUE")
		for _, it := range items {
			tb.add(styleNone, it.Stream, it.Group, it.Item, compactText(it.Value))
		}
		sections = append(sections, tb)
	}
	if len(entries) > 0 {
		tb := newTable(-1, "SCOPE", "KEY", "VALUE")
		for _, e := range entries {
			tb.add(styleNone, e.Scope, e.Key, compactText(e.Value))
		}
		sections = append(sections, tb)
	}
	if ws := st.Registry.Workers(); len(ws) > 0 {
		tb := newTable(-1, "WORKER", "NAME", "CONNECTED", "FUNCTIONS")
		for _, w := range ws {
			tb.add(styleNone, w.ID, w.Name, formatTime(w.ConnectedAt), strconv.Itoa(w.Functions))
		}
		sections = append(sections, tb)
	}
	if fs := st.Registry.Functions(); len(fs) > 0 {
		tb := newTable(-1, "FUNCTION", "WORKER")
		for _, f := range fs {
			tb.add(styleNone, f.ID, f.Worker)
		}
		sections = append(sections, tb)
	}
	if ts := st.Registry.Triggers(); len(ts) > 0 {
		tb := newTable(-1, "TRIGGER", "TYPE", "FUNCTION", "WORKER", "CONFIG")
		for _, tr := range ts {
			tb.add(styleNone, tr.ID, tr.Type, tr.Function, tr.Worker, compactText(tr.Config))
		}
		sections = append(sections, tb)
	}
	if tts := st.Registry.TriggerTypes(); len(tts) > 0 {
		tb := newTable(-1, "TRIGGER TYPE", "WORKER")
		for _, tt := range tts {
			tb.add(styleNone, tt.ID, tt.Worker)
		}
		sections = append(sections, tb)
	}
	if len(sections) == 0 {
		fmt.Fprintln(t.w, "(empty)")
	}
	for _, tb := range sections {
		fmt.Fprintln(t.w)
		if err := tb.flush(t.w, t.colour); err != nil {
			return err
		}
	}
	return nil
}

// Diff prints a summary line, then one row per created or deleted item
// and one per changed field: CHANGE ITEM FIELD OLD NEW.
func (t *TableWriter) Diff(from, to Point, changes []ItemChange) error {
	var n [3]int
	for _, c := range changes {
		switch c.Change {
		case Created:
			n[0]++
		case Changed:
			n[1]++
		case Deleted:
			n[2]++
		}
	}
	if len(changes) == 0 {
		fmt.Fprintf(t.w, "no changes from %s to %s\n", from, to)
		return nil
	}
	fmt.Fprintf(t.w, "changes from %s to %s: %d created, %d changed, %d deleted\n\n", from, to, n[0], n[1], n[2])
	tb := newTable(0, "CHANGE", "ITEM", "FIELD", "OLD", "NEW")
	for _, c := range changes {
		name := c.Stream + "/" + c.Group + "/" + c.Item
		st := changeStyle[c.Change]
		if c.Change != Changed {
			tb.add(st, string(c.Change), name, "", compactText(c.Old), compactText(c.New))
			continue
		}
		for i, f := range c.Fields {
			path := f.Path
			if path == "" {
				path = "(value)"
			}
			if i == 0 {
				tb.add(st, string(c.Change), name, path, compactText(f.Old), compactText(f.New))
			} else {
				tb.add(st, "", "", path, compactText(f.Old), compactText(f.New))
			}
		}
	}
	return tb.flush(t.w, t.colour)
}

// tableTime is how tables show times: UTC, milliseconds, fixed width.
const tableTime = "2006-01-02T15:04:05.000Z"

func formatTime(unixNano int64) string {
	if unixNano == 0 {
		return ""
	}
	return time.Unix(0, unixNano).UTC().Format(tableTime)
}

// subject names what a record is about.
func subject(rec *log.Record) string {
	switch rec.Kind {
	case log.KindStreamSet, log.KindStreamUpdate, log.KindStreamDelete:
		return rec.Stream + "/" + rec.Group + "/" + rec.Item
	case log.KindStreamSend:
		return rec.Stream + "/" + rec.Group
	case log.KindStateSet, log.KindStateUpdate, log.KindStateDelete:
		return rec.Scope + "/" + rec.Key
	case log.KindWorkerConnected, log.KindWorkerUpdated, log.KindWorkerDisconnected:
		return rec.Worker
	case log.KindFunctionRegistered, log.KindFunctionUnregistered:
		return rec.Function
	case log.KindTriggerRegistered, log.KindTriggerUnregistered:
		return rec.Trigger
	case log.KindTriggerTypeRegistered, log.KindTriggerTypeUnregistered:
		return rec.TriggerType
	case log.KindJobEnqueued, log.KindJobFailed, log.KindJobDone, log.KindJobDead, log.KindJobRedriven, log.KindJobDiscarded:
		return rec.Queue + "/" + rec.Job
	case log.KindEngineStarted, log.KindNodeLost:
		return rec.Node // "" on a single engine
	}
	return ""
}

// detail lists the record's other fields (those the subject does not
// show), then its value and meta.
func detail(rec *log.Record) string {
	var parts []string
	sub := subject(rec)
	if rec.Worker != "" && rec.Worker != sub {
		parts = append(parts, "worker="+rec.Worker)
	}
	if rec.Function != "" && rec.Function != sub {
		parts = append(parts, "function="+rec.Function)
	}
	if rec.TriggerType != "" && rec.TriggerType != sub {
		parts = append(parts, "type="+rec.TriggerType)
	}
	if rec.Attempt != 0 {
		parts = append(parts, "attempt="+strconv.FormatUint(uint64(rec.Attempt), 10))
	}
	if rec.Node != "" && rec.Node != sub {
		parts = append(parts, "node="+rec.Node)
	}
	if rec.Group != "" && rec.Queue != "" {
		parts = append(parts, "group="+rec.Group)
	}
	if len(rec.Value) > 0 {
		parts = append(parts, compactText(rec.Value))
	}
	if len(rec.Meta) > 0 {
		parts = append(parts, "meta="+compactText(rec.Meta))
	}
	return strings.Join(parts, " ")
}

// compactText renders a JSON value on one line.
func compactText(v []byte) string {
	v = compactJSON(v)
	if bytes.ContainsAny(v, "\r\n") { // not JSON after all
		return strconv.Quote(string(v))
	}
	return string(v)
}

// style is how a table row is coloured.
type style string

// ANSI SGR sequences for each style.
const (
	styleNone   style = ""
	styleHeader style = "\x1b[1m"
	styleGreen  style = "\x1b[32m"
	styleYellow style = "\x1b[33m"
	styleRed    style = "\x1b[31m"
	styleCyan   style = "\x1b[36m"
	styleReset        = "\x1b[0m"
)

var changeStyle = map[Change]style{Created: styleGreen, Changed: styleYellow, Deleted: styleRed}

// kindStyle colours additions green, modifications yellow, removals red and
// engine starts cyan.
func kindStyle(k log.Kind) style {
	switch k {
	case log.KindEngineStarted:
		return styleCyan
	case log.KindStreamSet, log.KindStateSet, log.KindWorkerConnected, log.KindFunctionRegistered,
		log.KindTriggerRegistered, log.KindTriggerTypeRegistered:
		return styleGreen
	case log.KindStreamDelete, log.KindStateDelete, log.KindWorkerDisconnected, log.KindFunctionUnregistered,
		log.KindTriggerUnregistered, log.KindTriggerTypeUnregistered, log.KindNodeLost:
		return styleRed
	}
	return styleYellow
}

// table lays out rows in columns two spaces apart. Widths only grow, so
// rows flushed in separate blocks stay aligned as far as possible.
type table struct {
	widths     []int
	rightAlign int // the first rightAlign columns are right-aligned
	colourCol  int // the column a row's style colours (a header is bold throughout)
	rows       []tableRow
}

type tableRow struct {
	style style
	cells []string
}

func newTable(colourCol int, header ...string) *table {
	t := &table{colourCol: colourCol}
	t.add(styleHeader, header...)
	return t
}

func (t *table) add(s style, cells ...string) {
	for len(t.widths) < len(cells) {
		t.widths = append(t.widths, 0)
	}
	t.rows = append(t.rows, tableRow{s, cells})
}

// flush writes the pending rows. The last cell is not padded, and trailing
// empty cells leave no trailing spaces.
func (t *table) flush(w io.Writer, colour bool) error {
	for _, r := range t.rows {
		for i, c := range r.cells {
			t.widths[i] = max(t.widths[i], utf8.RuneCountInString(c))
		}
	}
	var line []byte
	for _, r := range t.rows {
		line = line[:0]
		last := len(r.cells) - 1
		for last > 0 && r.cells[last] == "" {
			last--
		}
		for i, c := range r.cells[:last+1] {
			if i > 0 {
				line = append(line, "  "...)
			}
			pad := t.widths[i] - utf8.RuneCountInString(c)
			if i < t.rightAlign {
				line = appendSpaces(line, pad)
				pad = 0
			}
			st := styleNone
			if colour && (r.style == styleHeader || i == t.colourCol) {
				st = r.style
			}
			line = appendStyled(line, c, st)
			if i < last {
				line = appendSpaces(line, pad)
			}
		}
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	t.rows = t.rows[:0]
	return nil
}

func appendStyled(dst []byte, s string, st style) []byte {
	if st == styleNone || s == "" {
		return append(dst, s...)
	}
	dst = append(dst, st...)
	dst = append(dst, s...)
	return append(dst, styleReset...)
}

func appendSpaces(dst []byte, n int) []byte {
	for range n {
		dst = append(dst, ' ')
	}
	return dst
}

// Both writers satisfy Writer.
var (
	_ Writer = (*JSONWriter)(nil)
	_ Writer = (*TableWriter)(nil)
)
