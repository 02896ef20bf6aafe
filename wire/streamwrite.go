package wire

import "unicode/utf8"

// StreamWrite is the payload of a stream::set call as the SDKs send it:
// {"stream_name":…,"group_id":…,"item_id":…,"data":…}.
type StreamWrite struct {
	Stream, Group, Item string
	Data                []byte // a sub-slice of the decoded payload
}

// DecodeStreamWrite is the allocation-light path for stream::set payloads,
// the engine's hottest write. It accepts only the common shape: an object
// holding each of the three names once as a string and data once as a
// non-null value, no other keys and no backslash anywhere (the scanner
// unescapes keys in place, and b must stay intact). For anything else it
// returns false and leaves the payload to the general decoder, whose error
// messages stay the ones callers see. b must be valid JSON (the codec has
// already checked the frame).
func DecodeStreamWrite(b []byte, w *StreamWrite) bool {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	for _, c := range b {
		if c == '\\' {
			return false
		}
	}
	var seen [4]bool
	it := newObjectIter(b, i, clampDepth(0))
	for {
		m, ok, err := it.next()
		if err != nil || it.deep != 0 {
			return false
		}
		if !ok {
			break
		}
		field := -1
		switch string(m.key) {
		case "stream_name":
			field = 0
		case "group_id":
			field = 1
		case "item_id":
			field = 2
		case "data":
			field = 3
		}
		if field < 0 || seen[field] {
			return false
		}
		seen[field] = true
		if field == 3 {
			if m.kind == kindNull {
				return false
			}
			w.Data = b[m.start:m.end]
			continue
		}
		if m.kind != kindString {
			return false
		}
		raw := b[m.start+1 : m.end-1]
		if !utf8.Valid(raw) { // encoding/json would replace the bad bytes
			return false
		}
		s := string(raw)
		switch field {
		case 0:
			w.Stream = s
		case 1:
			w.Group = s
		case 2:
			w.Item = s
		}
	}
	return seen == [4]bool{true, true, true, true} && skipWS(b, it.i) == len(b)
}
