package projections

import (
	"bytes"
	"encoding/json"
	"math"
	"math/bits"
	"strconv"
)

// Small JSON helpers that work on raw bytes. Values reaching them were
// validated when they entered the engine (or by ParseOps), so the scanners
// only need to be bounds-safe, not validating: malformed input yields a
// wrong-but-deterministic answer, never a panic.

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

// trimJSON strips surrounding whitespace from one JSON value.
func trimJSON(b []byte) []byte {
	i := skipWS(b, 0)
	j := len(b)
	for j > i && isWS(b[j-1]) {
		j--
	}
	return b[i:j]
}

// skipString returns the index just past the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index just past the value starting at b[i] (no
// leading whitespace).
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	default: // number or literal
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// eachMember calls fn with the raw quoted key and raw value of every member of
// the object obj (which must start with '{'), in source order. It stops early
// when fn returns false.
func eachMember(obj []byte, fn func(key, val []byte) bool) {
	i := skipWS(obj, 1)
	for i < len(obj) && obj[i] == '"' {
		ke := skipString(obj, i)
		key := obj[i:ke]
		i = skipWS(obj, ke)
		if i >= len(obj) || obj[i] != ':' {
			return
		}
		vs := skipWS(obj, i+1)
		ve := skipValue(obj, vs)
		if !fn(key, obj[vs:ve]) {
			return
		}
		i = skipWS(obj, ve)
		if i < len(obj) && obj[i] == ',' {
			i = skipWS(obj, i+1)
		}
	}
}

// countMembers returns how many members the object obj has.
func countMembers(obj []byte) int {
	n := 0
	eachMember(obj, func(_, _ []byte) bool { n++; return true })
	return n
}

// eachElement calls fn with every raw element of the array arr (which must
// start with '['), in order. It stops early when fn returns false.
func eachElement(arr []byte, fn func(val []byte) bool) {
	i := skipWS(arr, 1)
	for i < len(arr) && arr[i] != ']' {
		e := skipValue(arr, i)
		if e == i || !fn(arr[i:e]) {
			return
		}
		i = skipWS(arr, e)
		if i < len(arr) && arr[i] == ',' {
			i = skipWS(arr, i+1)
		}
	}
}

// jsonType names the JSON type of a trimmed raw value, as used in messages.
func jsonType(raw []byte) string {
	if len(raw) == 0 {
		return "null"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// keyEqual reports whether the raw quoted JSON string q decodes to s,
// without allocating in the common (escape-free) case.
func keyEqual(q []byte, s string) bool {
	if len(q) < 2 {
		return false
	}
	inner := q[1 : len(q)-1]
	for _, c := range inner {
		if c == '\\' {
			return decodeString(q) == s
		}
	}
	return string(inner) == s
}

// rawKeysEqual compares two raw quoted JSON strings by decoded content,
// decoding only when an escape makes the bytes ambiguous.
func rawKeysEqual(a, b []byte) bool {
	if string(a) == string(b) {
		return true
	}
	if bytes.IndexByte(a, '\\') < 0 && bytes.IndexByte(b, '\\') < 0 {
		return false
	}
	return decodeString(a) == decodeString(b)
}

// decodeString decodes a raw quoted JSON string.
func decodeString(q []byte) string {
	if len(q) >= 2 {
		inner := q[1 : len(q)-1]
		plain := true
		for _, c := range inner {
			if c == '\\' {
				plain = false
				break
			}
		}
		if plain {
			return string(inner)
		}
	}
	var s string
	if json.Unmarshal(q, &s) != nil {
		return ""
	}
	return s
}

// appendCompact appends raw with insignificant whitespace removed.
func appendCompact(dst, raw []byte) []byte {
	start := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '"' {
			i = skipString(raw, i) - 1
			continue
		}
		if isWS(c) {
			dst = append(dst, raw[start:i]...)
			start = i + 1
		}
	}
	return append(dst, raw[start:]...)
}

// isCompact reports whether raw has no insignificant whitespace.
func isCompact(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '"' {
			i = skipString(raw, i) - 1
			continue
		}
		if isWS(c) {
			return false
		}
	}
	return true
}

// compact returns raw itself when it is already compact, else a compact copy.
func compact(raw []byte) []byte {
	if isCompact(raw) {
		return raw
	}
	return appendCompact(make([]byte, 0, len(raw)), raw)
}

// nestingDepth counts the deepest object/array nesting of raw ({} is 1).
func nestingDepth(raw []byte) int {
	depth, maxDepth := 0, 0
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '"':
			i = skipString(raw, i) - 1
		case '{', '[':
			depth++
			if depth > maxDepth {
				maxDepth = depth
			}
		case '}', ']':
			depth--
		}
	}
	return maxDepth
}

// isFloatLiteral reports whether a JSON number literal has a fraction or exponent.
func isFloatLiteral(raw []byte) bool {
	for _, c := range raw {
		if c == '.' || c == 'e' || c == 'E' {
			return true
		}
	}
	return false
}

// parseIntLiteral reads a JSON integer literal (-?digits) as sign and
// magnitude, without allocating. ok is false for anything else, or when the
// magnitude exceeds uint64.
func parseIntLiteral(raw []byte) (neg bool, mag uint64, ok bool) {
	i := 0
	if len(raw) > 0 && raw[0] == '-' {
		neg = true
		i++
	}
	if i == len(raw) {
		return false, 0, false
	}
	for ; i < len(raw); i++ {
		c := raw[i]
		if c < '0' || c > '9' {
			return false, 0, false
		}
		if mag > (math.MaxUint64-9)/10 {
			// Slow check only near the limit.
			hi, lo := bits.Mul64(mag, 10)
			lo, carry := bits.Add64(lo, uint64(c-'0'), 0)
			if hi != 0 || carry != 0 {
				return false, 0, false
			}
			mag = lo
			continue
		}
		mag = mag*10 + uint64(c-'0')
	}
	return neg, mag, true
}

// parseInt64Literal reads a JSON integer literal that fits in int64.
func parseInt64Literal(raw []byte) (int64, bool) {
	neg, mag, ok := parseIntLiteral(raw)
	switch {
	case !ok:
		return 0, false
	case neg && mag <= 1<<63:
		return int64(-mag), true // -(1<<63) wraps to MinInt64, as intended
	case !neg && mag <= math.MaxInt64:
		return int64(mag), true
	}
	return 0, false
}

// appendFloat formats f the way serde_json (ryu) does, so a float always
// reads back as a float: 3.0 stays "3.0", 1e30 is "1e30", 0.001 is "0.001".
func appendFloat(dst []byte, f float64) []byte {
	var buf [32]byte
	s := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // [-]d[.ddd]e±xx
	if s[0] == '-' {
		dst = append(dst, '-')
		s = s[1:]
	}
	ePos := 0
	for ePos < len(s) && s[ePos] != 'e' {
		ePos++
	}
	var digits [24]byte
	n := 0
	for _, c := range s[:ePos] {
		if c != '.' {
			digits[n] = c
			n++
		}
	}
	exp, _ := strconv.Atoi(string(s[ePos+1:]))
	d := digits[:n]
	kk := exp + 1 // the decimal point sits after kk digits
	k := kk - n   // exponent of the last digit
	switch {
	case k >= 0 && kk <= 16:
		dst = append(dst, d...)
		for ; k > 0; k-- {
			dst = append(dst, '0')
		}
		return append(dst, '.', '0')
	case kk > 0 && kk <= 16:
		dst = append(dst, d[:kk]...)
		dst = append(dst, '.')
		return append(dst, d[kk:]...)
	case kk > -5 && kk <= 0:
		dst = append(dst, '0', '.')
		for ; kk < 0; kk++ {
			dst = append(dst, '0')
		}
		return append(dst, d...)
	default:
		dst = append(dst, d[0])
		if n > 1 {
			dst = append(dst, '.')
			dst = append(dst, d[1:]...)
		}
		dst = append(dst, 'e')
		return strconv.AppendInt(dst, int64(kk-1), 10)
	}
}
