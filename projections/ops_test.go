package projections

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// missing marks a test whose item did not exist before the update.
const missing = "<missing>"

func applyJSON(t *testing.T, old, ops string) (string, []OpError) {
	t.Helper()
	parsed, err := ParseOps([]byte(ops))
	if err != nil {
		t.Fatalf("ParseOps(%s): %v", ops, err)
	}
	var oldB []byte
	existed := old != missing
	if existed {
		oldB = []byte(old)
	}
	nv, errs := ApplyOps(oldB, existed, parsed)
	if !json.Valid(nv) {
		t.Fatalf("ApplyOps produced invalid JSON %q", nv)
	}
	if !isCompact(nv) {
		t.Fatalf("ApplyOps produced non-compact JSON %q", nv)
	}
	return string(nv), errs
}

func codes(errs []OpError) string {
	var cs []string
	for _, e := range errs {
		cs = append(cs, fmt.Sprintf("%d:%s", e.OpIndex, e.Code))
	}
	return strings.Join(cs, ",")
}

func TestApplyOps(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 17) + "1" + strings.Repeat("}", 17)
	deepOK := strings.Repeat(`{"a":`, 16) + "1" + strings.Repeat("}", 16)
	segs33 := `["` + strings.Repeat(`s","`, 32) + `s"]`
	var many strings.Builder
	many.WriteString("{")
	for i := range 1025 {
		if i > 0 {
			many.WriteString(",")
		}
		fmt.Fprintf(&many, `"k%d":%d`, i, i)
	}
	many.WriteString("}")
	long := strings.Repeat("x", 257)

	tests := []struct {
		name, old, ops, want, errs string
	}{
		// Starting value and empty ops.
		{"missing + no ops is {}", missing, `[]`, `{}`, ""},
		{"existing + no ops is compacted", `{ "a" : [1, 2] , "b":"x y" }`, `[]`, `{"a":[1,2],"b":"x y"}`, ""},

		// set
		{"set key overwrites in place", `{"id":"a1","completed":false,"t":1}`, `[{"type":"set","path":"completed","value":true}]`, `{"id":"a1","completed":true,"t":1}`, ""},
		{"set key adds at end", `{"a":1}`, `[{"type":"set","path":"b","value":{"x":[1]}}]`, `{"a":1,"b":{"x":[1]}}`, ""},
		{"set dotted path is one literal key", `{"user":{"name":"a"}}`, `[{"type":"set","path":"user.name","value":"b"}]`, `{"user":{"name":"a"},"user.name":"b"}`, ""},
		{"set root replaces", `{"a":1}`, `[{"type":"set","path":"","value":[1,2]}]`, `[1,2]`, ""},
		{"set root without value is null", `{"a":1}`, `[{"type":"set","path":""}]`, `null`, ""},
		{"set key with null value", `{"a":1}`, `[{"type":"set","path":"a","value":null}]`, `{"a":null}`, ""},
		{"set key on missing", missing, `[{"type":"set","path":"a","value":1}]`, `{"a":1}`, ""},
		{"set key on number fails", `5`, `[{"type":"set","path":"a","value":1}]`, `5`, "0:set.target_not_object"},
		{"set key on array fails", `[1]`, `[{"type":"set","path":"a","value":1}]`, `[1]`, "0:set.target_not_object"},
		{"duplicate keys collapse to last value", `{"a":1,"b":2,"a":3}`, `[{"type":"set","path":"c","value":0}]`, `{"a":3,"b":2,"c":0}`, ""},
		{"escaped key matches", `{"a\u0062":1}`, `[{"type":"set","path":"ab","value":2}]`, `{"a\u0062":2}`, ""},
		{"new key is escaped", `{}`, `[{"type":"set","path":"q\"<\n","value":1}]`, `{"q\"<\n":1}`, ""},
		{"set value compacted", `{}`, `[{"type":"set","path":"a","value":{ "b" : [ 1 , 2 ] }}]`, `{"a":{"b":[1,2]}}`, ""},

		// merge
		{"nested merge example", `{"sessions":{"existing":{"ts":"anchor"}}}`, `[{"type":"merge","path":["sessions","abc"],"value":{"ts":"chunk"}}]`, `{"sessions":{"existing":{"ts":"anchor"},"abc":{"ts":"chunk"}}}`, ""},
		{"two merges accumulate", missing, `[{"type":"merge","path":"session-abc","value":{"author":"alice"}},{"type":"merge","path":"session-abc","value":{"ts":"chunk"}}]`, `{"session-abc":{"author":"alice","ts":"chunk"}}`, ""},
		{"root merge is shallow", `{"a":{"x":1},"b":2}`, `[{"type":"merge","value":{"a":{"y":2},"c":3}}]`, `{"a":{"y":2},"b":2,"c":3}`, ""},
		{"root merge with empty string and [] paths", `{"a":1}`, `[{"type":"merge","path":"","value":{"b":2}},{"type":"merge","path":[],"value":{"c":3}}]`, `{"a":1,"b":2,"c":3}`, ""},
		{"root merge on non-object is a silent no-op", `[1]`, `[{"type":"merge","value":{"a":1}}]`, `[1]`, ""},
		{"root merge on null is a silent no-op", `null`, `[{"type":"merge","path":null,"value":{"a":1}}]`, `null`, ""},
		{"root merge on missing", missing, `[{"type":"merge","value":{"a":1}}]`, `{"a":1}`, ""},
		{"nested merge replaces non-object root", `5`, `[{"type":"merge","path":["a"],"value":{"x":1}}]`, `{"a":{"x":1}}`, ""},
		{"nested merge replaces non-object intermediates", `{"a":1,"k":0}`, `[{"type":"merge","path":["a","b"],"value":{"x":1}}]`, `{"a":{"b":{"x":1}},"k":0}`, ""},
		{"nested merge replaces null target", `{"a":null}`, `[{"type":"merge","path":"a","value":{"x":1}}]`, `{"a":{"x":1}}`, ""},
		{"nested merge replaces array target", `{"a":[1]}`, `[{"type":"merge","path":["a"],"value":{}}]`, `{"a":{}}`, ""},
		{"merge value not an object", `{}`, `[{"type":"merge","value":[1]}]`, `{}`, "0:merge.value.not_an_object"},
		{"merge value null", `{}`, `[{"type":"merge","value":null}]`, `{}`, "0:merge.value.not_an_object"},
		{"merge value with duplicate keys: last wins", `{}`, `[{"type":"merge","value":{"a":1,"a":2}}]`, `{"a":2}`, ""},

		// increment / decrement
		{"increment missing root", missing, `[{"type":"increment","path":"","by":5}]`, `5`, ""},
		{"decrement missing root", missing, `[{"type":"decrement","path":"","by":5}]`, `-5`, ""},
		{"decrement missing root by min int64", missing, `[{"type":"decrement","path":"","by":-9223372036854775808}]`, `9223372036854775808`, ""},
		{"decrement missing key by min int64", `{}`, `[{"type":"decrement","path":"n","by":-9223372036854775808}]`, `{"n":9223372036854775808}`, ""},
		{"increment root number", `5`, `[{"type":"increment","path":"","by":3}]`, `8`, ""},
		{"increment existing {} root fails", `{}`, `[{"type":"increment","path":"","by":3}]`, `{}`, "0:increment.not_number"},
		{"increment root string fails", `"x"`, `[{"type":"increment","path":"","by":1}]`, `"x"`, "0:increment.not_number"},
		{"increment creates key", `{"a":1}`, `[{"type":"increment","path":"count","by":2}]`, `{"a":1,"count":2}`, ""},
		{"decrement creates key negative", `{}`, `[{"type":"decrement","path":"count","by":2}]`, `{"count":-2}`, ""},
		{"increment key", `{"count":0}`, `[{"type":"increment","path":"count","by":5}]`, `{"count":5}`, ""},
		{"decrement key", `{"count":0}`, `[{"type":"decrement","path":"count","by":5}]`, `{"count":-5}`, ""},
		{"increment null key fails", `{"count":null}`, `[{"type":"increment","path":"count","by":1}]`, `{"count":null}`, "0:increment.not_number"},
		{"increment string key fails even by 0", `{"count":"1"}`, `[{"type":"increment","path":"count","by":0}]`, `{"count":"1"}`, "0:increment.not_number"},
		{"increment key on non-object", `[1]`, `[{"type":"increment","path":"count","by":1}]`, `[1]`, "0:increment.target_not_object"},
		{"decrement key on non-object", `"s"`, `[{"type":"decrement","path":"count","by":1}]`, `"s"`, "0:decrement.target_not_object"},
		{"int64 overflow goes uint64", `{"n":9223372036854775807}`, `[{"type":"increment","path":"n","by":1}]`, `{"n":9223372036854775808}`, ""},
		{"uint64 back into int64", `{"n":9223372036854775808}`, `[{"type":"decrement","path":"n","by":1}]`, `{"n":9223372036854775807}`, ""},
		{"uint64 max + 1 fails", `{"n":18446744073709551615}`, `[{"type":"increment","path":"n","by":1}]`, `{"n":18446744073709551615}`, "0:increment.not_number"},
		{"beyond uint64 fails", `{"n":18446744073709551616}`, `[{"type":"increment","path":"n","by":-1}]`, `{"n":18446744073709551616}`, "0:increment.not_number"},
		{"below int64 min fails", `{"n":-9223372036854775808}`, `[{"type":"decrement","path":"n","by":1}]`, `{"n":-9223372036854775808}`, "0:decrement.not_number"},
		{"negative int64 arithmetic", `{"n":-10}`, `[{"type":"increment","path":"n","by":3}]`, `{"n":-7}`, ""},
		{"float stays float", `{"n":1.5}`, `[{"type":"increment","path":"n","by":1}]`, `{"n":2.5}`, ""},
		{"integral float keeps .0", `{"n":1.0}`, `[{"type":"increment","path":"n","by":1}]`, `{"n":2.0}`, ""},
		{"exponent is a float", `{"n":1e3}`, `[{"type":"decrement","path":"n","by":1}]`, `{"n":999.0}`, ""},
		{"float root", `0.25`, `[{"type":"increment","path":"","by":1}]`, `1.25`, ""},
		{"huge float stays finite", `{"n":1.7976931348623157e308}`, `[{"type":"increment","path":"n","by":1}]`, `{"n":1.7976931348623157e308}`, ""},
		{"float infinity literal fails", `{"n":1e999}`, `[{"type":"increment","path":"n","by":1}]`, `{"n":1e999}`, "0:increment.not_number"},

		// append
		{"append root missing string", missing, `[{"type":"append","value":"a"}]`, `"a"`, ""},
		{"append root missing non-string", missing, `[{"type":"append","path":"","value":1}]`, `[1]`, ""},
		{"append root existing {} mismatches", `{}`, `[{"type":"append","value":1}]`, `{}`, "0:append.type_mismatch"},
		{"append root array pushes", `[1]`, `[{"type":"append","path":[],"value":2}]`, `[1,2]`, ""},
		{"append root empty array", `[ ]`, `[{"type":"append","value":{"a":1}}]`, `[{"a":1}]`, ""},
		{"append array nests arrays", `{"l":[]}`, `[{"type":"append","path":"l","value":["a","b"]}]`, `{"l":[["a","b"]]}`, ""},
		{"append absent key string", `{}`, `[{"type":"append","path":"events","value":"x"}]`, `{"events":"x"}`, ""},
		{"append absent key non-string", `{}`, `[{"type":"append","path":["events"],"value":1}]`, `{"events":[1]}`, ""},
		{"append string concatenates", `{"s":"ab"}`, `[{"type":"append","path":"s","value":"c\"d"}]`, `{"s":"abc\"d"}`, ""},
		{"append number to string mismatches", `{"s":"ab"}`, `[{"type":"append","path":"s","value":1}]`, `{"s":"ab"}`, "0:append.type_mismatch"},
		{"append to null key string", `{"s":null}`, `[{"type":"append","path":"s","value":"x"}]`, `{"s":"x"}`, ""},
		{"append to null key object", `{"s":null}`, `[{"type":"append","path":"s","value":{}}]`, `{"s":[{}]}`, ""},
		{"append to number mismatches", `{"s":1}`, `[{"type":"append","path":"s","value":1}]`, `{"s":1}`, "0:append.type_mismatch"},
		{"append to object mismatches", `{"s":{}}`, `[{"type":"append","path":"s","value":1}]`, `{"s":{}}`, "0:append.type_mismatch"},
		{"append to boolean mismatches", `{"s":true}`, `[{"type":"append","path":"s","value":"x"}]`, `{"s":true}`, "0:append.type_mismatch"},
		{"append on non-object target", `[1]`, `[{"type":"append","path":"s","value":1}]`, `[1]`, "0:append.target_not_object"},
		{"append nested on non-object target", `5`, `[{"type":"append","path":["a","b"],"value":1}]`, `5`, "0:append.target_not_object"},
		{"append nested absent is always an array", `{}`, `[{"type":"append","path":["entity","buffer"],"value":"x"}]`, `{"entity":{"buffer":["x"]}}`, ""},
		{"append nested replaces intermediates", `{"entity":3}`, `[{"type":"append","path":["entity","buffer"],"value":1}]`, `{"entity":{"buffer":[1]}}`, ""},
		{"append nested leaf rule", `{"e":{"b":"x"}}`, `[{"type":"append","path":["e","b"],"value":"y"}]`, `{"e":{"b":"xy"}}`, ""},

		// remove
		{"remove root", `{"a":1}`, `[{"type":"remove","path":""}]`, `null`, ""},
		{"remove key keeps order", `{"a":1,"b":2,"c":3}`, `[{"type":"remove","path":"b"}]`, `{"a":1,"c":3}`, ""},
		{"remove absent key", `{"a":1}`, `[{"type":"remove","path":"z"}]`, `{"a":1}`, ""},
		{"remove on non-object", `[1]`, `[{"type":"remove","path":"a"}]`, `[1]`, "0:remove.target_not_object"},

		// Sequencing and the missing default.
		{"ops see earlier results", missing, `[{"type":"set","path":"a","value":1},{"type":"increment","path":"a","by":2},{"type":"remove","path":"b"}]`, `{"a":3}`, ""},
		{"failed op skipped, rest applied", `{"a":"x"}`, `[{"type":"increment","path":"a","by":1},{"type":"set","path":"b","value":2}]`, `{"a":"x","b":2}`, "0:increment.not_number"},
		{"missing default survives failures", missing, `[{"type":"merge","value":5},{"type":"increment","path":"","by":2}]`, `2`, "0:merge.value.not_an_object"},
		{"missing default ends after a success", missing, `[{"type":"set","path":"a","value":1},{"type":"increment","path":"","by":2}]`, `{"a":1}`, "1:increment.not_number"},
		{"append root after set-to-null", missing, `[{"type":"set","path":""},{"type":"append","value":"s"}]`, `"s"`, ""},

		// Validation order (docs/wire-protocol.md#update-op-validation).
		{"path too deep", `{}`, `[{"type":"merge","path":` + segs33 + `,"value":{}}]`, `{}`, "0:merge.path.too_deep"},
		{"empty segment", `{}`, `[{"type":"append","path":["a",""],"value":1}]`, `{}`, "0:append.path.empty_segment"},
		{"segment too long", `{}`, `[{"type":"set","path":"` + long + `","value":1}]`, `{}`, "0:set.path.segment_too_long"},
		{"256-byte segment ok", `{}`, `[{"type":"remove","path":"` + long[:256] + `"}]`, `{}`, ""},
		{"proto path", `{}`, `[{"type":"set","path":"__proto__","value":1}]`, `{}`, "0:set.path.proto_polluted"},
		{"constructor path", `{}`, `[{"type":"increment","path":"constructor","by":1}]`, `{}`, "0:increment.path.proto_polluted"},
		{"prototype segment", `{}`, `[{"type":"merge","path":["a","prototype"],"value":{}}]`, `{}`, "0:merge.path.proto_polluted"},
		{"remove proto path", `{}`, `[{"type":"remove","path":"__proto__"}]`, `{}`, "0:remove.path.proto_polluted"},
		{"empty segment before proto", `{}`, `[{"type":"merge","path":["__proto__",""],"value":{}}]`, `{}`, "0:merge.path.empty_segment"},
		{"too long before proto", `{}`, `[{"type":"merge","path":["__proto__","` + long + `"],"value":{}}]`, `{}`, "0:merge.path.segment_too_long"},
		{"path checks before value checks", `{}`, `[{"type":"merge","path":"__proto__","value":1}]`, `{}`, "0:merge.path.proto_polluted"},
		{"too many keys", `{}`, `[{"type":"merge","value":` + many.String() + `}]`, `{}`, "0:merge.value.too_many_keys"},
		{"proto key in merge value", `{}`, `[{"type":"merge","value":{"a":1,"__proto__":{}}}]`, `{}`, "0:merge.value.proto_polluted"},
		{"nested proto key allowed", `{}`, `[{"type":"merge","value":{"a":{"__proto__":1}}}]`, `{"a":{"__proto__":1}}`, ""},
		{"proto before depth", `{}`, `[{"type":"merge","value":{"constructor":` + deep + `}}]`, `{}`, "0:merge.value.proto_polluted"},
		{"merge value too deep", `{}`, `[{"type":"merge","value":` + deep + `}]`, `{}`, "0:merge.value.too_deep"},
		{"merge value depth 16 ok", `{}`, `[{"type":"merge","value":` + deepOK + `}]`, deepOK, ""},
		{"arrays count toward depth", `{}`, `[{"type":"merge","value":{"a":` + strings.Repeat("[", 16) + strings.Repeat("]", 16) + `}}]`, `{}`, "0:merge.value.too_deep"},
		{"op_index is the original index", `{}`, `[{"type":"set","path":"a","value":1},{"type":"set","path":"prototype","value":1},{"type":"append","path":"a","value":1}]`, `{"a":1}`, "1:set.path.proto_polluted,2:append.type_mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := applyJSON(t, tt.old, tt.ops)
			if got != tt.want {
				t.Errorf("value = %s, want %s", got, tt.want)
			}
			if c := codes(errs); c != tt.errs {
				t.Errorf("errors = %q, want %q (%+v)", c, tt.errs, errs)
			}
		})
	}
}

func TestHugeFloatStaysFinite(t *testing.T) {
	// 1.7976931348623157e308 + 1 rounds back to the same finite value, so it
	// succeeds; only a non-finite result fails.
	_, errs := applyJSON(t, `{"n":1.7976931348623157e308}`, `[{"type":"increment","path":"n","by":9223372036854775807}]`)
	if len(errs) != 0 {
		t.Fatalf("unexpected errors %+v", errs)
	}
	if v, ok := adjustNumber([]byte("1.7976931348623157e308"), math.MaxInt64, false); !ok || string(v) != "1.7976931348623157e308" {
		t.Fatalf("got %s %v", v, ok)
	}
}

func TestOpErrorObject(t *testing.T) {
	tests := []struct {
		ops   string
		old   string
		parts []string
	}{
		{`[{"type":"set","path":"a","value":1}]`, `5`, []string{"a", "number"}},
		{`[{"type":"increment","path":"","by":1}]`, `{}`, []string{"root", "object"}},
		{`[{"type":"append","path":["entityId","buffer"],"value":1}]`, `null`, []string{"[entityId, buffer]", "null"}},
		{`[{"type":"merge","value":[1]}]`, `{}`, []string{"root", "array"}},
		{`[{"type":"merge","path":"` + strings.Repeat("y", 300) + `","value":{}}]`, `{}`, []string{"256", "300"}},
		{`[{"type":"append","path":"s","value":true}]`, `{"s":"x"}`, []string{"s", "boolean", "string"}},
	}
	for _, tt := range tests {
		_, errs := applyJSON(t, tt.old, tt.ops)
		if len(errs) != 1 {
			t.Fatalf("%s: want one error, got %+v", tt.ops, errs)
		}
		e := errs[0]
		if e.DocURL != "https://iii.dev/docs/workers/iii-state#error-codes" || e.OpIndex != 0 {
			t.Errorf("%s: bad error object %+v", tt.ops, e)
		}
		for _, p := range tt.parts {
			if !strings.Contains(e.Message, p) {
				t.Errorf("%s: message %q lacks %q", tt.ops, e.Message, p)
			}
		}
		b, _ := json.Marshal(e)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		for _, k := range []string{"op_index", "code", "message", "doc_url"} {
			if _, ok := m[k]; !ok {
				t.Errorf("JSON %s lacks %s", b, k)
			}
		}
	}
}

func TestParseOps(t *testing.T) {
	tests := []struct {
		name, ops string
		want      []string // substrings of the error; nil = must succeed
	}{
		{"empty list", `[]`, nil},
		{"unknown fields ignored", `[{"type":"set","path":"a","value":1,"extra":true}]`, nil},
		{"set without value", `[{"type":"set","path":"a"}]`, nil},
		{"merge without path", `[{"type":"merge","value":{}}]`, nil},
		{"append null path", `[{"type":"append","path":null,"value":1}]`, nil},
		{"negative by", `[{"type":"decrement","path":"a","by":-3}]`, nil},
		{"max int64 by", `[{"type":"increment","path":"a","by":9223372036854775807}]`, nil},
		{"whitespace everywhere", " [ { \"type\" : \"set\" , \"path\" : \"a\" , \"value\" : [ 1 ] } ] ", nil},
		{"invalid JSON", `[{"type":`, []string{"invalid JSON"}},
		{"not an array", `{"type":"set"}`, []string{"array", "object"}},
		{"null ops", `null`, []string{"array", "null"}},
		{"op not an object", `[1]`, []string{"ops[0]", "object", "number"}},
		{"missing type", `[{"path":"a"}]`, []string{"ops[0]", "type is missing"}},
		{"type not a string", `[{"type":1}]`, []string{"ops[0]", "type must be a string"}},
		{"unknown type names index", `[{"type":"set","path":"a"},{"type":"frobnicate","path":"a"}]`, []string{"ops[1]", "frobnicate"}},
		{"type is case-sensitive", `[{"type":"SET","path":"a"}]`, []string{"ops[0]", "SET"}},
		{"set missing path", `[{"type":"set","value":1}]`, []string{"ops[0]", "set", "path is missing"}},
		{"set path number", `[{"type":"set","path":3,"value":1}]`, []string{"ops[0]", "path must be a string", "number"}},
		{"set path array", `[{"type":"set","path":["a"],"value":1}]`, []string{"path must be a string", "array"}},
		{"remove path null", `[{"type":"remove","path":null}]`, []string{"path must be a string", "null"}},
		{"increment missing path", `[{"type":"increment","by":1}]`, []string{"increment", "path is missing"}},
		{"increment missing by", `[{"type":"increment","path":"a"}]`, []string{"by is missing"}},
		{"by float", `[{"type":"increment","path":"a","by":1.5}]`, []string{"ops[0]", "by", "1.5"}},
		{"by integral float", `[{"type":"decrement","path":"a","by":1.0}]`, []string{"by"}},
		{"by exponent", `[{"type":"increment","path":"a","by":1e2}]`, []string{"by"}},
		{"by string", `[{"type":"increment","path":"a","by":"1"}]`, []string{"by"}},
		{"by null", `[{"type":"increment","path":"a","by":null}]`, []string{"by"}},
		{"by beyond int64", `[{"type":"increment","path":"a","by":9223372036854775808}]`, []string{"by", "int64"}},
		{"merge path object", `[{"type":"merge","path":{},"value":{}}]`, []string{"path must be a string or an array of strings", "object"}},
		{"merge path array of numbers", `[{"type":"merge","path":["a",1],"value":{}}]`, []string{"path must be a string or an array of strings", "number"}},
		{"merge missing value", `[{"type":"merge","path":"a"}]`, []string{"merge", "value is missing"}},
		{"append missing value", `[{"type":"append","path":"a"}]`, []string{"append", "value is missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, err := ParseOps([]byte(tt.ops))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want error, got %+v", ops)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestParseOpsFields(t *testing.T) {
	ops, err := ParseOps([]byte(`[{"type":"set","path":""},{"type":"set","path":"a","value":null},{"type":"merge","path":"x","value":{ "a" : 1 }},{"type":"append","path":["p","q"],"value":"s"},{"type":"decrement","path":"n","by":-9223372036854775808},{"type":"merge","path":"","value":{}}]`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Op{
		{Type: OpSet},
		{Type: OpSet, Path: []string{"a"}},
		{Type: OpMerge, Path: []string{"x"}, Value: []byte(`{"a":1}`)},
		{Type: OpAppend, Path: []string{"p", "q"}, Value: []byte(`"s"`), arrayPath: true},
		{Type: OpDecrement, Path: []string{"n"}, By: math.MinInt64},
		{Type: OpMerge, Value: []byte(`{}`)},
	}
	if len(ops) != len(want) {
		t.Fatalf("got %d ops", len(ops))
	}
	for i := range want {
		g, w := ops[i], want[i]
		if g.Type != w.Type || strings.Join(g.Path, "/") != strings.Join(w.Path, "/") || len(g.Path) != len(w.Path) ||
			string(g.Value) != string(w.Value) || g.By != w.By || g.arrayPath != w.arrayPath {
			t.Errorf("op %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestAppendFloat(t *testing.T) {
	tests := []struct {
		f    float64
		want string
	}{
		{0, "0.0"},
		{math.Copysign(0, -1), "-0.0"},
		{2.5, "2.5"},
		{3, "3.0"},
		{-3, "-3.0"},
		{0.001, "0.001"},
		{0.0001, "0.0001"},
		{1e-5, "0.00001"},
		{1e-6, "1e-6"},
		{1.5e-7, "1.5e-7"},
		{1e15, "1000000000000000.0"},
		{1e16, "1e16"},
		{1.5e16, "1.5e16"},
		{1234567890123456, "1234567890123456.0"},
		{1e17, "1e17"},
		{1.2345678901234568e20, "1.2345678901234568e20"},
		{123456.789, "123456.789"},
		{1.7976931348623157e308, "1.7976931348623157e308"},
		{5e-324, "5e-324"},
	}
	for _, tt := range tests {
		if got := string(appendFloat(nil, tt.f)); got != tt.want {
			t.Errorf("appendFloat(%v) = %s, want %s", tt.f, got, tt.want)
		}
	}
}

func TestAppendFloatRoundTrips(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		f := math.Float64frombits(rng.Uint64())
		if math.IsInf(f, 0) || math.IsNaN(f) {
			continue
		}
		s := appendFloat(nil, f)
		back, err := strconv.ParseFloat(string(s), 64)
		if err != nil || back != f || !isFloatLiteral(s) || !json.Valid(s) {
			t.Fatalf("appendFloat(%v) = %s (back %v, %v)", f, s, back, err)
		}
	}
}

func TestApplyOpsDoesNotModifyInputs(t *testing.T) {
	old := []byte(`{"a":[1],"s":"x","n":1}`)
	raw := []byte(`[{"type":"append","path":"a","value":2},{"type":"append","path":"s","value":"y"},{"type":"increment","path":"n","by":1},{"type":"set","path":"b","value":{"c":1}}]`)
	oldCopy, rawCopy := string(old), string(raw)
	ops, err := ParseOps(raw)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		nv, errs := ApplyOps(old, true, ops)
		if string(nv) != `{"a":[1,2],"s":"xy","n":2,"b":{"c":1}}` || errs != nil {
			t.Fatalf("got %s %+v", nv, errs)
		}
	}
	if string(old) != oldCopy || string(raw) != rawCopy {
		t.Fatal("inputs modified")
	}
}

// FuzzApplyOps checks that any accepted ops on any valid value give valid,
// compact JSON, deterministically, without touching the inputs.
func FuzzApplyOps(f *testing.F) {
	f.Add(`{"a":1}`, `[{"type":"set","path":"b","value":2}]`)
	f.Add(`{"s":{"e":{"ts":"x"}}}`, `[{"type":"merge","path":["s","n"],"value":{"ts":"y"}}]`)
	f.Add(`[1, 2]`, `[{"type":"append","value":[3]}]`)
	f.Add(`{"n":9223372036854775807,"n":1.5}`, `[{"type":"increment","path":"n","by":-9223372036854775808}]`)
	f.Add(`"x"`, `[{"type":"append","value":"y"},{"type":"remove","path":""}]`)
	f.Add(`{"a\u00e9":{"b":null}}`, `[{"type":"append","path":["a\u00e9","b"],"value":"v"}]`)
	f.Fuzz(func(t *testing.T, old, raw string) {
		if !json.Valid([]byte(old)) {
			return
		}
		ops, err := ParseOps([]byte(raw))
		if err != nil {
			return
		}
		oldB := []byte(old)
		for _, existed := range []bool{true, false} {
			a, errsA := ApplyOps(oldB, existed, ops)
			b, errsB := ApplyOps(oldB, existed, ops)
			if string(a) != string(b) || len(errsA) != len(errsB) {
				t.Fatalf("non-deterministic: %s vs %s", a, b)
			}
			if !json.Valid(a) || !isCompact(a) {
				t.Fatalf("bad output %q for %s on %s", a, raw, old)
			}
		}
		if string(oldB) != old {
			t.Fatal("old modified")
		}
	})
}
