package config

import "testing"

func TestMatchGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"api::*", "api::users::list", true},
		{"api::*", "api::", true},
		{"api::*", "api:", false},
		{"*::public", "x::y::public", true},
		{"*::public", "x::y::private", false},
		{"ab*ba", "aba", false},
		{"ab*ba", "abba", true},
		{"ab*ba", "abxyzba", true},
		{"*", "", true},
		{"*", "anything::at::all", true},
		{"", "", true},
		{"", "a", false},
		{"todos::create", "todos::create", true},
		{"todos::create", "todos::create2", false},
		{"todos::create", "xtodos::create", false},
		{"a?c", "abc", false},
		{"a?c", "a?c", true},
		{"[ab]", "a", false},
		{"[ab]", "[ab]", true},
		{"{a,b}", "{a,b}", true},
		{"*a*b*c*", "xxaxxbxxcxx", true},
		{"*a*b*c*", "xxaxxcxxbxx", false},
		{"a**b", "ab", true},
		{"*x", "xxxy", false},
		{"api::*::read", "api::users::read", true},
		{"api::*::read", "api::read", false},
	}
	for _, tt := range tests {
		if got := MatchGlob(tt.pattern, tt.s); got != tt.want {
			t.Errorf("MatchGlob(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestParseMatch(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{`match("todos::create")`, "todos::create", true},
		{`match('api::*::read')`, "api::*::read", true},
		{`  match("a")  `, "a", true},
		{`match("")`, "", true},
		{`match("a\"b")`, `a\"b`, true},
		{`match("a')`, "", false},
		{`match(a)`, "", false},
		{`match("a"`, "", false},
		{`Match("a")`, "", false},
		{`todos::*`, "", false},
	}
	for _, tt := range tests {
		got, ok := parseMatch(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseMatch(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// Rules come from YAML so the YAML → JSON typing is exercised too.
func TestMetadataMatching(t *testing.T) {
	cfg := mustParse(t, `workers:
  - name: iii-worker-manager
    config:
      rbac:
        expose_functions:
          - metadata: {public: true}
          - metadata: {n: 1}
          - metadata: {f: 1.0}
          - metadata: {tier: match("*free*")}
          - metadata: {a: true, b: "x"}
          - metadata: {nested: {list: [1, "x", null]}}
          - metadata: {none: null}
          - metadata: {s: "match"}
`)
	rules := cfg.Listeners[0].RBAC.Expose
	tests := []struct {
		rule int
		meta string
		want bool
	}{
		{0, `{"public":true}`, true},
		{0, `{"public":"true"}`, false},
		{0, `{"public":1}`, false},
		{0, `{"other":true}`, false},
		{0, ``, false},
		{0, `null`, false},
		{0, `[{"public":true}]`, false},
		{0, `{"public":true`, false},
		{1, `{"n":1}`, true},
		{1, `{"n":1.0}`, false},
		{1, `{"n":"1"}`, false},
		{2, `{"f":1.0}`, true},
		{2, `{"f":1e0}`, true},
		{2, `{"f":1}`, false},
		{3, `{"tier":"the-free-one"}`, true},
		{3, `{"tier":"free"}`, true},
		{3, `{"tier":"paid"}`, false},
		{3, `{"tier":5}`, false},
		{3, `{"tier":["free"]}`, false},
		{4, `{"a":true,"b":"x","c":0}`, true},
		{4, `{"a":true}`, false},
		{4, `{"a":true,"b":"y"}`, false},
		{5, `{"nested":{"list":[1,"x",null]}}`, true},
		{5, `{"nested":{"list":[1.0,"x",null]}}`, false},
		{5, `{"nested":{"list":[1,"x"]}}`, false},
		{6, `{"none":null}`, true},
		{6, `{}`, false},
		{7, `{"s":"match"}`, true},
	}
	for _, tt := range tests {
		var meta []byte
		if tt.meta != "" {
			meta = []byte(tt.meta)
		}
		if got := rules[tt.rule].Matches("any::id", meta); got != tt.want {
			t.Errorf("rule %d (%+v) vs %s = %v, want %v", tt.rule, rules[tt.rule].Metadata, tt.meta, got, tt.want)
		}
	}
}

func TestExposes(t *testing.T) {
	r := &RBAC{Expose: []ExposeRule{
		{Glob: "todos::*"},
		{Metadata: map[string]MetaMatch{"public": {Value: true}}},
	}}
	tests := []struct {
		id, meta string
		want     bool
	}{
		{"todos::list", ``, true},
		{"admin::wipe", ``, false},
		{"admin::wipe", `{"public":false}`, false},
		{"admin::stats", `{"public":true}`, true},
	}
	for _, tt := range tests {
		if got := r.Exposes(tt.id, []byte(tt.meta)); got != tt.want {
			t.Errorf("Exposes(%q, %s) = %v, want %v", tt.id, tt.meta, got, tt.want)
		}
	}
	if (&RBAC{}).Exposes("x", nil) {
		t.Error("an empty expose list must expose nothing")
	}
}
