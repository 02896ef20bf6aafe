package config

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

const maxInt = math.MaxInt

// deref follows YAML aliases (*anchor) to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// isNull reports an explicit null (`key:`, `~`, `null`).
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe renders a node for error messages: a string is quoted, other
// scalars are named with their type.
func describe(n *yaml.Node) string {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!str":
		return strconv.Quote(n.Value)
	case "!!null":
		return "null"
	case "!!int":
		return "integer " + n.Value
	case "!!float":
		return "number " + n.Value
	case "!!bool":
		return "boolean " + n.Value
	}
	return strconv.Quote(n.Value)
}

// mapping returns the key → value pairs of a map (aliases resolved, `<<`
// merge keys applied, duplicate keys refused). A null node is an empty map.
// With allowed keys given the block is strict: any other key is an error.
func (d *decoder) mapping(n *yaml.Node, key string, allowed ...string) (map[string]*yaml.Node, error) {
	n = deref(n)
	if isNull(n) {
		return map[string]*yaml.Node{}, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, d.fail(n, key, "expected a map, got %s", describe(n))
	}
	out := map[string]*yaml.Node{}
	lines := map[string]int{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		if k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return nil, d.fail(k, key, "map keys must be strings, got %s", describe(k))
		}
		sub := joinKey(key, k.Value)
		if first, dup := lines[k.Value]; dup {
			return nil, d.fail(k, sub, "key defined twice (first at line %d)", first)
		}
		if len(allowed) > 0 && !slices.Contains(allowed, k.Value) {
			return nil, d.fail(k, sub, "unknown key (expected one of: %s)", strings.Join(allowed, ", "))
		}
		out[k.Value], lines[k.Value] = v, k.Line
	}
	// Explicit keys win over merged ones, whatever their order.
	for _, mv := range merges {
		srcs := []*yaml.Node{mv}
		if mv.Kind == yaml.SequenceNode {
			srcs = mv.Content
		}
		for _, src := range srcs {
			inner, err := d.mapping(src, key, allowed...)
			if err != nil {
				return nil, err
			}
			for k, v := range inner {
				if _, ok := out[k]; !ok {
					out[k] = v
				}
			}
		}
	}
	return out, nil
}

// joinKey extends a key path; the top level has no prefix.
func joinKey(key, sub string) string {
	if key == "(top level)" {
		return sub
	}
	return key + "." + sub
}

// sortedKeys lists a map's keys in order, for stable messages.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// list returns a sequence's items (aliases resolved); null is empty.
func (d *decoder) list(n *yaml.Node, key string) ([]*yaml.Node, error) {
	n = deref(n)
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, d.fail(n, key, "expected a list, got %s", describe(n))
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, it := range n.Content {
		out[i] = deref(it)
	}
	return out, nil
}

// str decodes a string scalar.
func (d *decoder) str(n *yaml.Node, key string) (string, error) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return "", d.fail(n, key, "expected a string, got %s", describe(n))
	}
	return n.Value, nil
}

// integer decodes an integer scalar within [lo, hi].
func (d *decoder) integer(n *yaml.Node, key string, lo, hi int) (int, error) {
	n = deref(n)
	var v int64
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		return 0, d.fail(n, key, "expected an integer, got %s", describe(n))
	}
	if v < int64(lo) || v > int64(hi) {
		return 0, d.fail(n, key, "must be between %d and %d, got %d", lo, hi, v)
	}
	return int(v), nil
}

// boolean decodes a boolean scalar.
func (d *decoder) boolean(n *yaml.Node, key string) (bool, error) {
	n = deref(n)
	var v bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		return false, d.fail(n, key, "expected true or false, got %s", describe(n))
	}
	return v, nil
}

// jsonValue converts a YAML value to the normalised JSON form MetaMatch
// compares against (see normJSON): int64/uint64 for integers, float64 for
// floats, string-keyed maps.
func (d *decoder) jsonValue(n *yaml.Node, key string) (any, error) {
	n = deref(n)
	switch n.Kind {
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		for i, it := range n.Content {
			v, err := d.jsonValue(it, fmt.Sprintf("%s[%d]", key, i))
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case yaml.MappingNode:
		m, err := d.mapping(n, key)
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, len(m))
		for k, v := range m {
			if out[k], err = d.jsonValue(v, key+"."+k); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		err := n.Decode(&b)
		return b, err
	case "!!int":
		var i int64
		if n.Decode(&i) == nil {
			return i, nil
		}
		var u uint64
		if n.Decode(&u) == nil {
			return u, nil
		}
		return nil, d.fail(n, key, "integer %s is out of range", n.Value)
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, d.fail(n, key, "%s is not a JSON number", n.Value)
		}
		return f, nil
	}
	return n.Value, nil
}
