package wire

import "unicode/utf8"

// DecodeFlatObject is an allocation-light reader for hot payloads of one
// fixed shape: a JSON object whose members are exactly strKeys (each a
// string, copied into strs[i]) and rawKey (any value but null, returned as
// a sub-slice of b), each once, in any order. For anything else (another
// or a repeated key, a missing one, a non-string where a string is wanted,
// a backslash anywhere, invalid UTF-8 in a string) ok is false and the
// caller decodes the payload the general way, whose error messages are the
// ones callers see. b is never modified (a backslash is refused because the
// scanner unescapes keys in place) and must be valid JSON, as every payload
// the codec hands over is. At most 63 string keys.
func DecodeFlatObject(b []byte, strKeys []string, strs []string, rawKey string) (raw []byte, ok bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' || len(strKeys) > 63 {
		return nil, false
	}
	for _, c := range b {
		if c == '\\' {
			return nil, false
		}
	}
	var seen, want uint64 = 0, 1<<(len(strKeys)+1) - 1
	it := newObjectIter(b, i, clampDepth(0))
	for {
		m, more, err := it.next()
		if err != nil || it.deep != 0 {
			return nil, false
		}
		if !more {
			break
		}
		field := len(strKeys) // rawKey's bit
		if string(m.key) != rawKey {
			field = -1
			for k, name := range strKeys {
				if string(m.key) == name {
					field = k
					break
				}
			}
		}
		if field < 0 || seen&(1<<field) != 0 {
			return nil, false
		}
		seen |= 1 << field
		if field == len(strKeys) {
			if m.kind == kindNull {
				return nil, false
			}
			raw = b[m.start:m.end]
			continue
		}
		if m.kind != kindString {
			return nil, false
		}
		s := b[m.start+1 : m.end-1]
		if !utf8.Valid(s) { // encoding/json would replace the bad bytes
			return nil, false
		}
		strs[field] = string(s)
	}
	if seen != want || skipWS(b, it.i) != len(b) {
		return nil, false
	}
	return raw, true
}
