package projections

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/iii-go/iii/internal/jsontext"
)

// OpType names an update operation (docs/wire-protocol.md#update-operations).
type OpType uint8

// The update operation types.
const (
	OpSet OpType = iota + 1
	OpMerge
	OpIncrement
	OpDecrement
	OpAppend
	OpRemove
)

var opNames = [...]string{"", "set", "merge", "increment", "decrement", "append", "remove"}

// String returns the op's wire name ("set", "merge", …).
func (t OpType) String() string {
	if int(t) < len(opNames) && t != 0 {
		return opNames[t]
	}
	return "op(" + strconv.Itoa(int(t)) + ")"
}

// Op is one decoded update operation.
type Op struct {
	Type OpType
	// Path holds literal key segments; empty addresses the root value.
	Path []string
	// Value is the op's compact raw JSON; nil means JSON null (set only).
	Value []byte
	// By is the increment/decrement amount.
	By int64

	// arrayPath records that Path came as a JSON array, which changes how
	// error messages label it.
	arrayPath bool
}

// DocURL is the doc_url upstream puts into every update-op error.
const DocURL = "https://iii.dev/docs/workers/iii-state#error-codes"

// OpError reports one failed op of an update; the op was skipped.
type OpError struct {
	OpIndex int    `json:"op_index"`
	Code    string `json:"code"`
	Message string `json:"message"`
	DocURL  string `json:"doc_url"`
}

// Validation limits (docs/wire-protocol.md#update-op-validation).
const (
	maxPathSegments = 32
	maxSegmentBytes = 256
	maxMergeKeys    = 1024
	maxMergeDepth   = 16
)

// protoKeys are refused as path segments and merge keys (prototype pollution
// in JavaScript readers).
var protoKeys = [...]string{"__proto__", "constructor", "prototype"}

func isProtoKey(s string) bool {
	return s == protoKeys[0] || s == protoKeys[1] || s == protoKeys[2]
}

var (
	nullLit = []byte("null")
	zeroLit = []byte("0")
)

// ParseOps strictly decodes an ops array. Any decoding problem (not an
// array, an op that is not an object, unknown type, missing or mistyped
// field, non-integer by) fails the whole list with a message naming the op
// index and the field; the engine reports it as deserialization_error.
// Returned ops may alias raw.
func ParseOps(raw []byte) ([]Op, error) {
	if !json.Valid(raw) {
		return nil, errors.New("ops: invalid JSON")
	}
	raw = compact(trimJSON(raw))
	if raw[0] != '[' {
		return nil, fmt.Errorf("ops must be an array, got %s", jsonType(raw))
	}
	n := 0
	eachElement(raw, func([]byte) bool { n++; return true })
	// One allocation for the ops and one for all single-segment paths.
	ops := make([]Op, 0, n)
	segs := make([]string, 0, n)
	var err error
	eachElement(raw, func(el []byte) bool {
		var op Op
		op, err = parseOp(len(ops), el, &segs)
		ops = append(ops, op)
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	return ops, nil
}

// oneSegment returns a one-element path backed by the shared segs array.
func oneSegment(segs *[]string, s string) []string {
	i := len(*segs)
	*segs = append(*segs, s)
	return (*segs)[i : i+1 : i+1]
}

func parseOp(i int, el []byte, segs *[]string) (Op, error) {
	var op Op
	if el[0] != '{' {
		return op, fmt.Errorf("ops[%d] must be an object, got %s", i, jsonType(el))
	}
	var typ, path, value, by []byte
	eachMember(el, func(k, v []byte) bool {
		switch {
		case keyEqual(k, "type"):
			typ = v
		case keyEqual(k, "path"):
			path = v
		case keyEqual(k, "value"):
			value = v
		case keyEqual(k, "by"):
			by = v
		}
		return true
	})
	if typ == nil {
		return op, fmt.Errorf("ops[%d]: type is missing", i)
	}
	if typ[0] != '"' {
		return op, fmt.Errorf("ops[%d]: type must be a string, got %s", i, jsonType(typ))
	}
	name := decodeString(typ)
	for t := OpSet; t <= OpRemove; t++ {
		if opNames[t] == name {
			op.Type = t
		}
	}
	if op.Type == 0 {
		return op, fmt.Errorf("ops[%d]: unknown op type %q (expected set, merge, increment, decrement, append or remove)", i, name)
	}
	fail := func(format string, args ...any) (Op, error) {
		return op, fmt.Errorf("ops[%d] (%s): %s", i, op.Type, fmt.Sprintf(format, args...))
	}

	switch op.Type {
	case OpSet, OpIncrement, OpDecrement, OpRemove:
		if path == nil {
			return fail("path is missing")
		}
		if path[0] != '"' {
			return fail("path must be a string, got %s", jsonType(path))
		}
		if s := decodeString(path); s != "" {
			op.Path = oneSegment(segs, s)
		}
	case OpMerge, OpAppend:
		if path != nil {
			if err := op.parseSegments(path, segs); err != "" {
				return fail("%s", err)
			}
		}
		if value == nil {
			return fail("value is missing")
		}
	}

	switch op.Type {
	case OpSet:
		if value != nil && value[0] != 'n' {
			op.Value = value
		}
	case OpMerge, OpAppend:
		op.Value = value
	case OpIncrement, OpDecrement:
		if by == nil {
			return fail("by is missing")
		}
		n, ok := parseInt64Literal(by)
		if !ok {
			return fail("by must be an integer that fits in int64, got %s", by)
		}
		op.By = n
	}
	return op, nil
}

// parseSegments decodes the optional merge/append path: null, a string (one
// segment, "" = root) or an array of strings.
func (op *Op) parseSegments(path []byte, segs *[]string) string {
	switch path[0] {
	case 'n':
		return ""
	case '"':
		if s := decodeString(path); s != "" {
			op.Path = oneSegment(segs, s)
		}
		return ""
	case '[':
		op.arrayPath = true
		bad := ""
		eachElement(path, func(el []byte) bool {
			if el[0] != '"' {
				bad = fmt.Sprintf("path must be a string or an array of strings, got an array holding %s", jsonType(el))
				return false
			}
			op.Path = append(op.Path, decodeString(el))
			return true
		})
		return bad
	default:
		return fmt.Sprintf("path must be a string or an array of strings, got %s", jsonType(path))
	}
}

// pathLabel is how error messages name the op's target.
func (op *Op) pathLabel() string {
	switch {
	case len(op.Path) == 0:
		return "root"
	case !op.arrayPath:
		return op.Path[0]
	default:
		return "[" + strings.Join(op.Path, ", ") + "]"
	}
}

// opFail is a failed op before its index is known.
type opFail struct{ code, msg string }

func (op *Op) fail(reason, format string, args ...any) *opFail {
	return &opFail{
		code: op.Type.String() + "." + reason,
		msg:  op.Type.String() + " at " + op.pathLabel() + ": " + fmt.Sprintf(format, args...),
	}
}

// validate runs the checks of docs/wire-protocol.md#update-op-validation in
// table order: each check over every segment before the next check.
func (op *Op) validate() *opFail {
	if len(op.Path) > maxPathSegments {
		return op.fail("path.too_deep", "path has %d segments, more than the limit of %d", len(op.Path), maxPathSegments)
	}
	for i, s := range op.Path {
		if s == "" {
			return op.fail("path.empty_segment", "path segment %d is empty", i)
		}
	}
	for i, s := range op.Path {
		if len(s) > maxSegmentBytes {
			return op.fail("path.segment_too_long", "path segment %d is %d bytes, more than the limit of %d", i, len(s), maxSegmentBytes)
		}
	}
	for _, s := range op.Path {
		if isProtoKey(s) {
			return op.fail("path.proto_polluted", "path segment %q is not allowed", s)
		}
	}
	if op.Type != OpMerge {
		return nil
	}
	v := trimJSON(op.Value)
	if t := jsonType(v); t != "object" {
		return op.fail("value.not_an_object", "value is %s, not an object", t)
	}
	keys := 0
	var proto string
	eachMember(v, func(k, _ []byte) bool {
		keys++
		for _, p := range protoKeys {
			if proto == "" && keyEqual(k, p) {
				proto = p
			}
		}
		return true
	})
	if keys > maxMergeKeys {
		if n := distinctKeys(v); n > maxMergeKeys {
			return op.fail("value.too_many_keys", "value has %d top-level keys, more than the limit of %d", n, maxMergeKeys)
		}
	}
	if proto != "" {
		return op.fail("value.proto_polluted", "value has the forbidden top-level key %q", proto)
	}
	if d := nestingDepth(v); d > maxMergeDepth {
		return op.fail("value.too_deep", "value nests %d levels deep, more than the limit of %d", d, maxMergeDepth)
	}
	return nil
}

// distinctKeys counts an object's keys the way a JSON map would hold them
// (duplicates once).
func distinctKeys(obj []byte) int {
	seen := map[string]struct{}{}
	eachMember(obj, func(k, _ []byte) bool {
		seen[decodeString(k)] = struct{}{}
		return true
	})
	return len(seen)
}

// node is the working value of an update: either raw JSON, or an object
// expanded into members whose values stay raw until an op reaches into them.
// Untouched parts are copied through without being decoded.
type node struct {
	raw  []byte
	obj  bool
	mems []member
}

type member struct {
	key  []byte // raw quoted key from the source JSON; nil when added by name
	name string
	val  node
}

func (n *node) typeName() string {
	if n.obj {
		return "object"
	}
	return jsonType(n.raw)
}

// expand turns a raw object into members. It reports false, leaving n
// alone, when n is not an object.
func (n *node) expand() bool {
	if n.obj {
		return true
	}
	if len(n.raw) == 0 || n.raw[0] != '{' {
		return false
	}
	raw := n.raw
	*n = node{obj: true, mems: make([]member, 0, countMembers(raw))}
	eachMember(raw, func(k, v []byte) bool {
		n.mems = append(n.mems, member{key: k, val: node{raw: v}})
		return true
	})
	n.dedup()
	return true
}

// dedup keeps the first position and last value of repeated keys, as a JSON
// object map would, so a later set of that key is not shadowed.
func (n *node) dedup() {
	ms := n.mems
	if len(ms) < 2 {
		return
	}
	if len(ms) <= 16 {
		dup := false
		for i := 1; i < len(ms) && !dup; i++ {
			for j := range i {
				if rawKeysEqual(ms[i].key, ms[j].key) {
					dup = true
					break
				}
			}
		}
		if !dup {
			return
		}
	}
	seen := make(map[string]int, len(ms))
	out := ms[:0]
	for _, m := range ms {
		k := decodeString(m.key)
		if j, ok := seen[k]; ok {
			out[j].val = m.val
			continue
		}
		seen[k] = len(out)
		out = append(out, m)
	}
	clear(ms[len(out):])
	n.mems = out
}

func (m *member) is(name string) bool {
	if m.key == nil {
		return m.name == name
	}
	return keyEqual(m.key, name)
}

func (m *member) isRaw(key []byte) bool {
	if m.key == nil {
		return keyEqual(key, m.name)
	}
	return rawKeysEqual(m.key, key)
}

// find returns the index of the member named name, or -1. n must be expanded.
func (n *node) find(name string) int {
	for i := range n.mems {
		if n.mems[i].is(name) {
			return i
		}
	}
	return -1
}

// child returns the member named name, adding it with value v when absent.
func (n *node) child(name string, v node) (c *node, existed bool) {
	if i := n.find(name); i >= 0 {
		return &n.mems[i].val, true
	}
	n.mems = append(n.mems, member{name: name, val: v})
	return &n.mems[len(n.mems)-1].val, false
}

// walk descends from n through segs, turning n and every non-object on the
// way into {} and creating missing keys; it returns the final object.
func (n *node) walk(segs []string) *node {
	if !n.expand() {
		*n = node{obj: true}
	}
	for _, s := range segs {
		c, _ := n.child(s, node{obj: true})
		if !c.expand() {
			*c = node{obj: true}
		}
		n = c
	}
	return n
}

// mergeInto shallow-merges the members of the raw object value into n.
func (n *node) mergeInto(value []byte) {
	eachMember(value, func(k, v []byte) bool {
		for i := range n.mems {
			if n.mems[i].isRaw(k) {
				n.mems[i].val = node{raw: v}
				return true
			}
		}
		n.mems = append(n.mems, member{key: k, val: node{raw: v}})
		return true
	})
}

func appendNode(dst []byte, n *node) []byte {
	if !n.obj {
		return appendCompact(dst, n.raw)
	}
	dst = append(dst, '{')
	for i := range n.mems {
		m := &n.mems[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		if m.key != nil {
			dst = append(dst, m.key...)
		} else {
			dst = jsontext.AppendString(dst, m.name)
		}
		dst = append(dst, ':')
		dst = appendNode(dst, &m.val)
	}
	return append(dst, '}')
}

// ApplyOps applies ops left to right to the previous value (old, when
// existed) or to the "missing default" {} otherwise. A failing op is skipped
// and reported; the rest still apply. newValue is compact JSON in a fresh
// buffer. old must be valid JSON; it is never modified.
func ApplyOps(old []byte, existed bool, ops []Op) (newValue []byte, errs []OpError) {
	var root node
	size := 2
	if existed {
		root.raw = trimJSON(old)
		if len(root.raw) == 0 {
			root.raw = nullLit
		}
		size = len(root.raw)
	} else {
		root.obj = true
	}
	missing := !existed
	for i := range ops {
		op := &ops[i]
		size += len(op.Value) + 8
		f := op.validate()
		if f == nil {
			f = op.apply(&root, missing)
		}
		if f != nil {
			errs = append(errs, OpError{OpIndex: i, Code: f.code, Message: f.msg, DocURL: DocURL})
			continue
		}
		missing = false
	}
	return appendNode(make([]byte, 0, size), &root), errs
}

// apply performs one validated op on the working value.
func (op *Op) apply(root *node, missing bool) *opFail {
	switch op.Type {
	case OpSet:
		v := node{raw: op.Value}
		if v.raw == nil {
			v.raw = nullLit
		}
		if len(op.Path) == 0 {
			*root = v
			return nil
		}
		if !root.expand() {
			return op.fail("target_not_object", "target is %s, not an object", root.typeName())
		}
		c, _ := root.child(op.Path[0], v)
		*c = v
		return nil

	case OpMerge:
		if len(op.Path) == 0 {
			if root.expand() { // a non-object root is a silent no-op (upstream quirk)
				root.mergeInto(trimJSON(op.Value))
			}
			return nil
		}
		root.walk(op.Path).mergeInto(trimJSON(op.Value))
		return nil

	case OpIncrement, OpDecrement:
		neg := op.Type == OpDecrement
		if len(op.Path) == 0 {
			if missing {
				v, _ := adjustNumber(zeroLit, op.By, neg)
				*root = node{raw: v}
				return nil
			}
			return op.adjust(root)
		}
		if !root.expand() {
			return op.fail("target_not_object", "target is %s, not an object", root.typeName())
		}
		c, existed := root.child(op.Path[0], node{})
		if !existed {
			c.raw, _ = adjustNumber(zeroLit, op.By, neg)
			return nil
		}
		return op.adjust(c)

	case OpAppend:
		if len(op.Path) == 0 {
			if missing {
				*root = node{raw: nullLit}
			}
			return op.appendLeaf(root)
		}
		if !root.expand() {
			return op.fail("target_not_object", "target is %s, not an object", root.typeName())
		}
		parent := root
		if len(op.Path) > 1 {
			parent = root.walk(op.Path[:len(op.Path)-1])
		}
		c, existed := parent.child(op.Path[len(op.Path)-1], node{})
		if existed {
			return op.appendLeaf(c)
		}
		if len(op.Path) == 1 && jsonType(op.Value) == "string" {
			c.raw = op.Value
		} else {
			c.raw = wrapArray(op.Value)
		}
		return nil

	case OpRemove:
		if len(op.Path) == 0 {
			*root = node{raw: nullLit}
			return nil
		}
		if !root.expand() {
			return op.fail("target_not_object", "target is %s, not an object", root.typeName())
		}
		if i := root.find(op.Path[0]); i >= 0 {
			root.mems = append(root.mems[:i], root.mems[i+1:]...)
		}
		return nil
	}
	return op.fail("unknown", "unknown op type")
}

// adjust increments or decrements the number held by n.
func (op *Op) adjust(n *node) *opFail {
	if t := n.typeName(); t != "number" {
		return op.fail("not_number", "value is %s, not a number", t)
	}
	v, ok := adjustNumber(n.raw, op.By, op.Type == OpDecrement)
	if !ok {
		return op.fail("not_number", "%s by %d does not fit in a 64-bit number", n.raw, op.By)
	}
	n.raw = v
	return nil
}

// appendLeaf applies the append leaf rule to n.
func (op *Op) appendLeaf(n *node) *opFail {
	vt := jsonType(op.Value)
	switch t := n.typeName(); t {
	case "array":
		n.raw = pushArray(n.raw, op.Value)
	case "string":
		if vt != "string" {
			return op.fail("type_mismatch", "cannot append %s to a string", vt)
		}
		s := make([]byte, 0, len(n.raw)+len(op.Value))
		s = append(s, n.raw[:len(n.raw)-1]...)
		n.raw = append(s, op.Value[1:]...)
	case "null":
		if vt == "string" {
			n.raw = op.Value
		} else {
			n.raw = wrapArray(op.Value)
		}
	default:
		return op.fail("type_mismatch", "target is %s; append needs an array, a string or null", t)
	}
	return nil
}

func wrapArray(v []byte) []byte {
	a := make([]byte, 0, len(v)+2)
	a = append(a, '[')
	a = append(a, v...)
	return append(a, ']')
}

// pushArray appends v as one element to the raw array arr.
func pushArray(arr, v []byte) []byte {
	arr = compact(arr)
	out := make([]byte, 0, len(arr)+len(v)+1)
	out = append(out, arr[:len(arr)-1]...)
	if len(arr) > 2 {
		out = append(out, ',')
	}
	out = append(out, v...)
	return append(out, ']')
}

// adjustNumber computes raw ± by with the number rules
// (docs/wire-protocol.md#number-rules): floats stay floats, integers are
// exact in int64 and fall back to uint64; no representation (or a non-finite
// float) fails.
func adjustNumber(raw []byte, by int64, neg bool) ([]byte, bool) {
	if isFloatLiteral(raw) {
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return nil, false
		}
		if neg {
			f -= float64(by)
		} else {
			f += float64(by)
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, false
		}
		return appendFloat(nil, f), true
	}
	sign, mag, ok := parseIntLiteral(raw)
	if !ok || (sign && mag > 1<<63) {
		return nil, false // beyond int64/uint64: no exact representation
	}
	if x, ok := parseInt64Literal(raw); ok {
		r := x + by
		ovf := (by > 0 && r < x) || (by < 0 && r > x)
		if neg {
			r = x - by
			ovf = (by > 0 && r > x) || (by < 0 && r < x)
		}
		if !ovf {
			return strconv.AppendInt(make([]byte, 0, 20), r, 10), true
		}
	}
	b, _ := new(big.Int).SetString(string(raw), 10)
	if neg {
		b.Sub(b, big.NewInt(by))
	} else {
		b.Add(b, big.NewInt(by))
	}
	switch {
	case b.IsInt64():
		return strconv.AppendInt(nil, b.Int64(), 10), true
	case b.Sign() > 0 && b.IsUint64():
		return strconv.AppendUint(nil, b.Uint64(), 10), true
	}
	return nil, false
}
