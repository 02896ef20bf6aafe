package config

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
)

// MatchGlob reports whether s matches pattern. Only `*` is special: it
// matches any run of characters, including none. Every other character
// (`?`, `[`, `{` included) is literal and the pattern is anchored at both
// ends, so a pattern without `*` is an equality test. This is deliberately
// not path.Match, which gives `?` and `[` meaning.
func MatchGlob(pattern, s string) bool {
	// Greedy two-pointer match: on a mismatch, let the most recent `*`
	// swallow one more byte and retry from just after it.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// parseMatch extracts the pattern from `match("…")` or `match('…')`
// (surrounding whitespace allowed, the pattern taken verbatim).
func parseMatch(s string) (string, bool) {
	s = strings.TrimSpace(s)
	inner, ok := strings.CutPrefix(s, "match(")
	if !ok {
		return "", false
	}
	inner, ok = strings.CutSuffix(inner, ")")
	if !ok || len(inner) < 2 {
		return "", false
	}
	q := inner[0]
	if (q != '"' && q != '\'') || inner[len(inner)-1] != q {
		return "", false
	}
	return inner[1 : len(inner)-1], true
}

// Matches reports whether the rule exposes a function with this id and
// registered metadata (raw JSON, nil when the function has none).
func (r ExposeRule) Matches(functionID string, metadata []byte) bool {
	if r.Metadata == nil {
		return MatchGlob(r.Glob, functionID)
	}
	return r.matchesMeta(decodeMeta(metadata))
}

// Exposes reports whether any expose_functions rule matches the function
// (rules are OR-ed; an empty list exposes nothing). The metadata is decoded
// at most once, so prefer this over calling Matches per rule.
func (r *RBAC) Exposes(functionID string, metadata []byte) bool {
	var meta map[string]any
	decoded := false
	for _, rule := range r.Expose {
		if rule.Metadata == nil {
			if MatchGlob(rule.Glob, functionID) {
				return true
			}
			continue
		}
		if !decoded {
			meta, decoded = decodeMeta(metadata), true
		}
		if rule.matchesMeta(meta) {
			return true
		}
	}
	return false
}

// matchesMeta ANDs every key of the rule against the function's top-level
// metadata; nil metadata (absent or not an object) never matches.
func (r ExposeRule) matchesMeta(meta map[string]any) bool {
	if meta == nil {
		return false
	}
	for k, m := range r.Metadata {
		v, ok := meta[k]
		if !ok || !m.matches(v) {
			return false
		}
	}
	return true
}

// matches compares one metadata value; v is normalised JSON (see normJSON).
func (m MetaMatch) matches(v any) bool {
	if m.IsGlob {
		s, ok := v.(string)
		return ok && MatchGlob(m.Glob, s)
	}
	return reflect.DeepEqual(m.Value, v)
}

// decodeMeta parses function metadata into normalised JSON; anything that
// is not a JSON object yields nil.
func decodeMeta(raw []byte) map[string]any {
	if len(raw) == 0 {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return nil
	}
	m, _ := normJSON(v).(map[string]any)
	return m
}

// normJSON rewrites numbers so that equal JSON values are DeepEqual, while
// keeping integers and floats apart as upstream does (1 ≠ 1.0): integers
// become int64 (uint64 above its range), everything else float64.
func normJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return i
			}
			if u, err := strconv.ParseUint(s, 10, 64); err == nil {
				return u
			}
		}
		f, _ := strconv.ParseFloat(s, 64)
		return f
	case []any:
		for i := range x {
			x[i] = normJSON(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = normJSON(x[k])
		}
	}
	return v
}
