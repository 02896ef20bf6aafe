package replay

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"github.com/iii-go/iii/history"
	"maps"
	"slices"

	"github.com/iii-go/iii/log"
)

// Change says what happened to an item between two points.
type Change string

// The changes Diff reports.
const (
	Created Change = "created"
	Changed Change = "changed"
	Deleted Change = "deleted"
)

// ItemChange is one stream item that differs between two points. Old is
// absent for a created item, New for a deleted one.
type ItemChange struct {
	Change Change          `json:"change"`
	Stream string          `json:"stream"`
	Group  string          `json:"group"`
	Item   string          `json:"item"`
	Old    json.RawMessage `json:"old,omitempty"`
	New    json.RawMessage `json:"new,omitempty"`
	// Fields lists a changed item's differences field by field.
	Fields []FieldChange `json:"fields,omitempty"`
}

// FieldChange is one difference inside a changed value. Path names the
// field with dots through nested objects ("" is the whole value, when it is
// not an object). Old is absent for an added field, New for a removed one.
// Arrays are compared whole.
type FieldChange struct {
	Path string          `json:"path"`
	Old  json.RawMessage `json:"old,omitempty"`
	New  json.RawMessage `json:"new,omitempty"`
}

type itemKey struct{ stream, group, item string }

// prior is an item's value at the diff's starting point.
type prior struct {
	value   []byte
	existed bool
}

// DiffSource lists the stream items created, changed and deleted in src
// between points from and to, sorted by stream, group and item. An item
// created and deleted again in between is not listed, nor one written back
// to its starting value. It builds the state at from, then reads on to to,
// remembering the starting value of every item a record touches.
func DiffSource(src Source, from, to Point) ([]ItemChange, error) {
	st, err := startView(src, from)
	if err != nil {
		return nil, err
	}
	if err := st.advance(src, from, nil); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if (!to.IsTime() && to.Index < st.Index) || (to.IsTime() && st.Index > 0 && st.Time.After(to.Time)) {
		return nil, fmt.Errorf("to %s is before from %s", to, from)
	}
	touched := map[itemKey]prior{}
	err = st.advance(src, to, func(rec *log.Record) {
		switch rec.Kind {
		case log.KindStreamSet, log.KindStreamUpdate, log.KindStreamDelete:
		default:
			return
		}
		k := itemKey{rec.Stream, rec.Group, rec.Item}
		if _, seen := touched[k]; !seen {
			v, ok := st.Streams.Get(k.stream, k.group, k.item)
			touched[k] = prior{bytes.Clone(v), ok}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	keys := slices.SortedFunc(maps.Keys(touched), func(a, b itemKey) int {
		return cmp.Or(cmp.Compare(a.stream, b.stream), cmp.Compare(a.group, b.group), cmp.Compare(a.item, b.item))
	})
	changes := []ItemChange{}
	for _, k := range keys {
		old := touched[k]
		cur, ok := st.Streams.Get(k.stream, k.group, k.item)
		c := ItemChange{Stream: k.stream, Group: k.group, Item: k.item}
		switch {
		case !old.existed && ok:
			c.Change, c.New = Created, history.JSONValue(cur)
		case old.existed && !ok:
			c.Change, c.Old = Deleted, history.JSONValue(old.value)
		case old.existed && ok:
			if c.Fields = fieldDiff(old.value, cur); len(c.Fields) == 0 {
				continue
			}
			c.Change, c.Old, c.New = Changed, history.JSONValue(old.value), history.JSONValue(cur)
		default:
			continue
		}
		changes = append(changes, c)
	}
	return changes, nil
}

// fieldDiff compares two JSON values member by member through nested
// objects; anything else (arrays, scalars, a type change) is compared whole
// by its compact text.
func fieldDiff(a, b []byte) []FieldChange {
	var out []FieldChange
	diffValue("", a, b, &out)
	return out
}

func diffValue(path string, a, b []byte, out *[]FieldChange) {
	ma, okA := members(a)
	mb, okB := members(b)
	if !okA || !okB {
		if !bytes.Equal(compactJSON(a), compactJSON(b)) {
			*out = append(*out, FieldChange{Path: path, Old: history.JSONValue(a), New: history.JSONValue(b)})
		}
		return
	}
	names := slices.Sorted(maps.Keys(ma))
	for name := range mb {
		if _, ok := ma[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		p := name
		if path != "" {
			p = path + "." + name
		}
		va, inA := ma[name]
		vb, inB := mb[name]
		switch {
		case !inB:
			*out = append(*out, FieldChange{Path: p, Old: va})
		case !inA:
			*out = append(*out, FieldChange{Path: p, New: vb})
		default:
			diffValue(p, va, vb, out)
		}
	}
}

// members decodes a JSON object's members; ok is false for anything else.
func members(v []byte) (map[string]json.RawMessage, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || v[0] != '{' {
		return nil, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(v, &m) != nil {
		return nil, false
	}
	return m, true
}

// compactJSON returns v without insignificant whitespace (v itself if it
// is not valid JSON).
func compactJSON(v []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, v) != nil {
		return v
	}
	return buf.Bytes()
}
