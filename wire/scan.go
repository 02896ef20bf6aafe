package wire

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is a small validating JSON scanner: just enough to walk the top-level
// object of a protocol message, skip (and validate) values the codec keeps raw, and
// unescape the string fields it reads. It never allocates on success.

// JSON value kinds, as the scanner reports them.
const (
	kindNone   byte = 0
	kindString byte = 's'
	kindNumber byte = 'n'
	kindObject byte = 'o'
	kindArray  byte = 'a'
	kindBool   byte = 'b'
	kindNull   byte = 'z'
)

// kindName is used in "must be a string, got number" messages.
func kindName(k byte) string {
	switch k {
	case kindString:
		return "string"
	case kindNumber:
		return "number"
	case kindObject:
		return "object"
	case kindArray:
		return "array"
	case kindBool:
		return "boolean"
	case kindNull:
		return "null"
	}
	return "nothing"
}

// Nesting limits of the decoders (see DecodeDepth).
const (
	// DefaultMaxDepth is the nesting limit of Decode and DecodeStreamRequest,
	// and of the *Depth variants given a limit <= 0.
	DefaultMaxDepth = 128
	// HardMaxDepth caps any limit a caller passes: the scanner recurses once
	// per level, and this keeps its stack use bounded.
	HardMaxDepth = 10000
)

// clampDepth maps a caller's limit to the one the scanner enforces.
func clampDepth(maxDepth int) int {
	if maxDepth <= 0 {
		return DefaultMaxDepth
	}
	return min(maxDepth, HardMaxDepth)
}

// syntaxError describes where a frame stops being JSON. It is a value type so
// the success path allocates nothing.
type syntaxError struct {
	off int
	msg string
}

// msgTooDeep marks the syntaxError of a value that opens more levels than its
// budget (see skipValue): the one error the decoders recover from.
const msgTooDeep = "nesting too deep"

func (e *syntaxError) deep() bool { return e.msg == msgTooDeep }

// strPlain marks bytes that may appear unescaped inside a JSON string and need
// no attention from the unescaper.
var strPlain = func() (t [256]bool) {
	for i := 0x20; i < 256; i++ {
		t[i] = true
	}
	t['"'] = false
	t['\\'] = false
	return
}()

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

// scanString expects b[i] == '"' and returns the index just past the closing
// quote and whether the string contains escapes.
func scanString(b []byte, i int) (int, bool, *syntaxError) {
	i++ // opening quote
	esc := false
	for {
		// Fast path: 8 plain bytes at a time.
		for i+8 <= len(b) && strPlain[b[i]] && strPlain[b[i+1]] && strPlain[b[i+2]] && strPlain[b[i+3]] &&
			strPlain[b[i+4]] && strPlain[b[i+5]] && strPlain[b[i+6]] && strPlain[b[i+7]] {
			i += 8
		}
		for i < len(b) && strPlain[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, esc, &syntaxError{i, "unterminated string"}
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return i, esc, &syntaxError{i, "unterminated string"}
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex4(b[i+2:i+6]) {
					return i, esc, &syntaxError{i, `invalid \u escape in string`}
				}
				i += 6
			default:
				return i, esc, &syntaxError{i, "invalid escape in string"}
			}
		default:
			return i, esc, &syntaxError{i, "control character in string"}
		}
	}
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c <= '9':
			r |= rune(c - '0')
		case c >= 'a':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// unescapeInPlace decodes the body of a scanned JSON string (without quotes)
// into the same bytes and returns the decoded length. Decoding only ever
// shrinks, so writing behind the read position is safe. Lone surrogates become
// U+FFFD, as in encoding/json.
func unescapeInPlace(s []byte) int {
	w := 0
	for r := 0; r < len(s); {
		c := s[r]
		if c != '\\' {
			s[w] = c
			w++
			r++
			continue
		}
		switch s[r+1] {
		case 'b':
			s[w] = '\b'
		case 'f':
			s[w] = '\f'
		case 'n':
			s[w] = '\n'
		case 'r':
			s[w] = '\r'
		case 't':
			s[w] = '\t'
		case 'u':
			cp := hex4(s[r+2:])
			r += 6
			if utf16.IsSurrogate(cp) {
				cp2 := utf8.RuneError
				if r+6 <= len(s) && s[r] == '\\' && s[r+1] == 'u' {
					if dec := utf16.DecodeRune(cp, hex4(s[r+2:])); dec != utf8.RuneError {
						cp2 = dec
						r += 6
					}
				}
				cp = cp2
			}
			w += utf8.EncodeRune(s[w:], cp)
			continue
		default: // '"', '\\', '/'
			s[w] = s[r+1]
		}
		w++
		r += 2
	}
	return w
}

// scanNumber validates a JSON number starting at b[i].
func scanNumber(b []byte, i int) (int, *syntaxError) {
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return i, &syntaxError{start, "invalid number"}
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return i, &syntaxError{start, "invalid number"}
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return i, &syntaxError{start, "invalid number"}
		}
	}
	return i, nil
}

func scanLiteral(b []byte, i int, lit string) (int, *syntaxError) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, &syntaxError{i, "invalid literal"}
	}
	return i + len(lit), nil
}

// skipValue validates the JSON value starting at b[i] (no leading whitespace)
// and returns the index just past it and its kind. budget is the number of
// nested objects/arrays the value may open (1 for [1], 2 for [[1]]); a value
// that opens more fails with a deep syntaxError at the first bracket over it.
func skipValue(b []byte, i, budget int) (int, byte, *syntaxError) {
	if i >= len(b) {
		return i, kindNone, &syntaxError{i, "unexpected end of input"}
	}
	switch c := b[i]; {
	case c == '"':
		j, _, err := scanString(b, i)
		return j, kindString, err
	case c == '{':
		if budget <= 0 {
			return i, kindObject, &syntaxError{i, msgTooDeep}
		}
		j, err := skipObject(b, i, budget-1)
		return j, kindObject, err
	case c == '[':
		if budget <= 0 {
			return i, kindArray, &syntaxError{i, msgTooDeep}
		}
		j, err := skipArray(b, i, budget-1)
		return j, kindArray, err
	case c == 't':
		j, err := scanLiteral(b, i, "true")
		return j, kindBool, err
	case c == 'f':
		j, err := scanLiteral(b, i, "false")
		return j, kindBool, err
	case c == 'n':
		j, err := scanLiteral(b, i, "null")
		return j, kindNull, err
	case c == '-' || c >= '0' && c <= '9':
		j, err := scanNumber(b, i)
		return j, kindNumber, err
	default:
		return i, kindNone, &syntaxError{i, "invalid character " + strconv.QuoteRune(rune(c))}
	}
}

// skipObject skips the object at b[i] == '{'; budget is what its member values
// may still open.
func skipObject(b []byte, i, budget int) (int, *syntaxError) {
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, &syntaxError{i, "expected object key"}
		}
		var err *syntaxError
		if i, _, err = scanString(b, i); err != nil {
			return i, err
		}
		i = skipWS(b, i)
		if i >= len(b) || b[i] != ':' {
			return i, &syntaxError{i, "expected ':' after object key"}
		}
		if i, _, err = skipValue(b, skipWS(b, i+1), budget); err != nil {
			return i, err
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return i, &syntaxError{i, "unexpected end of input"}
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return i, &syntaxError{i, "expected ',' or '}' in object"}
		}
	}
}

// scanKey skips `"key" :` and the whitespace after it, b[i] being the quote.
// skipObject and objectIter.next keep their own copies: it is not inlined, and
// a call per key shows in the decode benchmarks.
func scanKey(b []byte, i int) (int, *syntaxError) {
	if i >= len(b) || b[i] != '"' {
		return i, &syntaxError{i, "expected object key"}
	}
	i, _, err := scanString(b, i)
	if err != nil {
		return i, err
	}
	i = skipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return i, &syntaxError{i, "expected ':' after object key"}
	}
	return skipWS(b, i+1), nil
}

// skipArray skips the array at b[i] == '['; budget is what its elements may
// still open.
func skipArray(b []byte, i, budget int) (int, *syntaxError) {
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err *syntaxError
		if i, _, err = skipValue(b, i, budget); err != nil {
			return i, err
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return i, &syntaxError{i, "unexpected end of input"}
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			return i + 1, nil
		default:
			return i, &syntaxError{i, "expected ',' or ']' in array"}
		}
	}
}

// skipDeep validates the value at b[i] like skipValue, with the same errors,
// but iteratively and without a depth limit: it keeps one bit per open
// container on the heap instead of one stack frame. The decoders use it to get
// past a value that went over the limit (so that the members after it are
// still read) and for non-object frames; both are error paths.
func skipDeep(b []byte, i int) (int, byte, *syntaxError) {
	if i >= len(b) {
		return i, kindNone, &syntaxError{i, "unexpected end of input"}
	}
	kind := kindObject
	switch b[i] {
	case '[':
		kind = kindArray
	case '{':
	default:
		return skipValue(b, i, 0) // not a container
	}
	var open []uint64 // bit n set: container n (outermost 0) is an object
	depth := 0
	for {
		// b[i] starts a value inside the containers open so far.
		if i >= len(b) {
			return i, kind, &syntaxError{i, "unexpected end of input"}
		}
		var err *syntaxError
		switch c := b[i]; c {
		case '{', '[':
			if depth/64 == len(open) {
				open = append(open, 0)
			}
			if c == '{' {
				open[depth/64] |= 1 << (depth % 64)
			} else {
				open[depth/64] &^= 1 << (depth % 64)
			}
			depth++
			i = skipWS(b, i+1)
			switch {
			case i < len(b) && b[i] == c+2: // '}' and ']' are '{'+2 and '['+2
				depth--
				i++
			case c == '{':
				if i, err = scanKey(b, i); err != nil {
					return i, kind, err
				}
				continue
			default:
				continue
			}
		default:
			if i, _, err = skipValue(b, i, 0); err != nil { // not a container
				return i, kind, err
			}
		}
		// A value just ended: close containers until one expects another value.
		for {
			if depth == 0 {
				return i, kind, nil
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return i, kind, &syntaxError{i, "unexpected end of input"}
			}
			obj := open[(depth-1)/64]&(1<<((depth-1)%64)) != 0
			switch c := b[i]; {
			case c == ',' && obj:
				if i, err = scanKey(b, skipWS(b, i+1)); err != nil {
					return i, kind, err
				}
			case c == ',':
				i = skipWS(b, i+1)
			case c == '}' && obj, c == ']' && !obj:
				depth--
				i++
				continue
			case obj:
				return i, kind, &syntaxError{i, "expected ',' or '}' in object"}
			default:
				return i, kind, &syntaxError{i, "expected ',' or ']' in array"}
			}
			break
		}
	}
}

// objectIter walks the members of one JSON object in place. next returns the
// raw key bytes (unescaped into the buffer when needed) and the value span.
type objectIter struct {
	b      []byte
	i      int
	first  bool
	budget int // nesting each member value may open (see skipValue)
	deep   int // offset of the first bracket over budget, 0 if none
}

// newObjectIter starts at b[i] == '{'.
func newObjectIter(b []byte, i, budget int) objectIter {
	return objectIter{b: b, i: i + 1, first: true, budget: budget}
}

// member is one key/value pair of an object; the value is b[start:end].
type member struct {
	key        []byte
	start, end int
	kind       byte
	esc        bool // string value contains escapes
}

// next returns ok=false at the closing brace. Keys containing escapes are
// unescaped in place (the buffer is the decoder's own copy). A member value
// nested deeper than the budget is not an error here: next records where it
// went over in it.deep, validates the rest of it with skipDeep and goes on, so
// the caller still sees the members after it (type, invocation_id, …).
func (it *objectIter) next() (m member, ok bool, err *syntaxError) {
	b := it.b
	i := skipWS(b, it.i)
	if it.first {
		it.first = false
		if i < len(b) && b[i] == '}' {
			it.i = i + 1
			return m, false, nil
		}
	} else {
		if i >= len(b) {
			return m, false, &syntaxError{i, "unexpected end of input"}
		}
		switch b[i] {
		case '}':
			it.i = i + 1
			return m, false, nil
		case ',':
			i = skipWS(b, i+1)
		default:
			return m, false, &syntaxError{i, "expected ',' or '}' in object"}
		}
	}
	if i >= len(b) || b[i] != '"' {
		return m, false, &syntaxError{i, "expected object key"}
	}
	j, kesc, serr := scanString(b, i)
	if serr != nil {
		return m, false, serr
	}
	m.key = b[i+1 : j-1]
	if kesc {
		m.key = m.key[:unescapeInPlace(m.key)]
	}
	i = skipWS(b, j)
	if i >= len(b) || b[i] != ':' {
		return m, false, &syntaxError{i, "expected ':' after object key"}
	}
	i = skipWS(b, i+1)
	m.start = i
	if i < len(b) && b[i] == '"' {
		m.kind = kindString
		i, m.esc, serr = scanString(b, i)
	} else {
		i, m.kind, serr = skipValue(b, i, it.budget)
		if serr != nil && serr.deep() {
			if it.deep == 0 {
				it.deep = serr.off
			}
			i, m.kind, serr = skipDeep(b, m.start)
		}
	}
	if serr != nil {
		return m, false, serr
	}
	m.end = i
	it.i = i
	return m, true, nil
}
