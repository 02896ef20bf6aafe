package wire

import (
	"fmt"
	"strings"
	"testing"
)

// nestArr is n arrays around inner: nestArr(2, "1") = [[1]].
func nestArr(n int, inner string) string {
	return strings.Repeat("[", n) + inner + strings.Repeat("]", n)
}

// nestObj is n objects around inner: nestObj(2, "1") = {"a":{"a":1}}.
func nestObj(n int, inner string) string {
	return strings.Repeat(`{"a":`, n) + inner + strings.Repeat("}", n)
}

func TestDecodeDepth(t *testing.T) {
	const d = DefaultMaxDepth
	deepData := nestArr(d+1, "1")
	tests := []struct {
		name  string
		frame string
		limit int // passed to DecodeDepth
		want  *DecodeError
		check func(t *testing.T, m *Message)
	}{
		{name: "data arrays at the limit", limit: 0,
			frame: `{"type":"invokefunction","invocation_id":"i1","function_id":"f","data":` + nestArr(d, "1") + `}`,
			check: func(t *testing.T, m *Message) {
				if string(m.Data) != nestArr(d, "1") {
					t.Errorf("Data = %.40s…", m.Data)
				}
			}},
		{name: "data objects at the limit", limit: 0,
			frame: `{"type":"invokefunction","function_id":"f","data":` + nestObj(d, `"x"`) + `}`},
		{name: "data arrays over the limit",
			frame: `{"type":"invokefunction","invocation_id":"i1","function_id":"f","data":` + deepData + `}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypeInvokeFunction, InvocationID: "i1", HasInvocationID: true}},
		{name: "data objects over the limit",
			frame: `{"type":"invokefunction","invocation_id":"i1","function_id":"f","data":` + nestObj(d+1, "1") + `}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypeInvokeFunction, InvocationID: "i1", HasInvocationID: true}},
		{name: "mixed nesting over the limit",
			frame: `{"type":"invokefunction","invocation_id":"i1","function_id":"f","data":{"list":[1,{"x":` + nestObj(d-4, nestArr(2, "null")) + `}]}}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypeInvokeFunction, InvocationID: "i1", HasInvocationID: true}},
		{name: "mixed nesting at the limit",
			frame: `{"type":"invokefunction","invocation_id":"i1","function_id":"f","data":{"list":[1,{"x":` + nestObj(d-5, nestArr(2, "null")) + `}]}}`},
		{name: "deep element among shallow siblings",
			frame: `{"type":"invokefunction","invocation_id":"i1","function_id":"f","data":[1,{"k":"v"},` + deepData + `,"x",[]]}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypeInvokeFunction, InvocationID: "i1", HasInvocationID: true}},
		{name: "type and invocation_id after the deep data",
			frame: `{"data":` + deepData + `,"function_id":"f","invocation_id":"after","type":"invokefunction"}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypeInvokeFunction, InvocationID: "after", HasInvocationID: true}},
		{name: "result over the limit, invocation_id after",
			frame: `{"type":"invocationresult","function_id":"f","result":` + nestObj(d, "{}") + `,"invocation_id":"r1"}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypeInvocationResult, InvocationID: "r1", HasInvocationID: true}},
		{name: "error over the limit",
			frame: `{"type":"invocationresult","invocation_id":"r1","function_id":"f","error":{"code":"x","details":` + nestArr(d, "0") + `}}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypeInvocationResult, InvocationID: "r1", HasInvocationID: true}},
		{name: "metadata over the limit, id after",
			frame: `{"type":"registerfunction","metadata":{"m":` + nestArr(d, "1") + `},"id":"fn"}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypeRegisterFunction, ID: "fn", HasID: true}},
		{name: "config over the limit",
			frame: `{"type":"registertrigger","id":"t1","trigger_type":"stream","function_id":"f","config":` + deepData + `}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypeRegisterTrigger, ID: "t1", HasID: true}},
		{name: "unknown member over the limit",
			frame: `{"type":"ping","x":` + deepData + `}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypePing}},
		{name: "unknown type: no prefix",
			frame: `{"type":"nosuch","data":` + deepData + `,"id":"x"}`,
			want:  &DecodeError{Code: CodeTooDeep, ID: "x", HasID: true}},
		{name: "too deep wins over field errors",
			frame: `{"type":"invokefunction","invocation_id":"i1","data":` + deepData + `}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypeInvokeFunction, InvocationID: "i1", HasInvocationID: true}},
		{name: "first deep value is reported",
			frame: `{"type":"ping","a":` + nestObj(d+5, "1") + `,"b":` + deepData + `}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypePing}},
		{name: "100000 levels",
			frame: `{"type":"invokefunction","function_id":"f","data":` + nestArr(100000, "1") + `,"invocation_id":"big"}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypeInvokeFunction, InvocationID: "big", HasInvocationID: true}},
		{name: "100000 object levels",
			frame: `{"type":"invocationresult","function_id":"f","result":` + nestObj(100000, "1") + `,"invocation_id":"big"}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypeInvocationResult, InvocationID: "big", HasInvocationID: true}},

		// Custom limits.
		{name: "limit 2 accepts [[1]]", limit: 2,
			frame: `{"type":"invokefunction","invocation_id":"x","function_id":"f","data":[[1]]}`},
		{name: "limit 2 refuses [[[1]]]", limit: 2,
			frame: `{"type":"invokefunction","invocation_id":"x","function_id":"f","data":[[[1]]]}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypeInvokeFunction, InvocationID: "x", HasInvocationID: true}},
		{name: "limit 2 accepts {a:[1]}", limit: 2,
			frame: `{"type":"invokefunction","function_id":"f","data":{"a":[1]},"metadata":{"k":{}}}`},
		{name: "limit 2 refuses in metadata", limit: 2,
			frame: `{"type":"invokefunction","function_id":"f","data":{"a":[1]},"metadata":{"k":{"j":[]}}}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypeInvokeFunction}},
		{name: "limit 1 accepts flat objects and action", limit: 1,
			frame: `{"type":"invokefunction","function_id":"f","data":{"a":1,"b":"[[["},"action":{"type":"void"}}`},
		{name: "limit 1 refuses {a:[]}", limit: 1,
			frame: `{"type":"invokefunction","function_id":"f","data":{"a":[]}}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypeInvokeFunction}},
		{name: "limit 1 refuses a nested action", limit: 1,
			frame: `{"type":"invokefunction","function_id":"f","action":{"type":"void","x":[]}}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypeInvokeFunction}},
		{name: "negative limit is the default", limit: -1,
			frame: `{"type":"ping","x":` + deepData + `}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypePing}},
		{name: "limit 1000 accepts 1000", limit: 1000,
			frame: `{"type":"ping","x":` + nestArr(1000, "") + `}`},
		{name: "limit 1000 refuses 1001", limit: 1000,
			frame: `{"type":"ping","x":` + nestArr(1001, "") + `}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypePing}},
		{name: "huge limit is capped", limit: 1 << 30,
			frame: `{"type":"ping","x":` + nestArr(HardMaxDepth+1, "") + `}`,
			want:  &DecodeError{Code: CodeTooDeep, Type: TypePing}},
		{name: "hard cap itself is accepted", limit: HardMaxDepth,
			frame: `{"type":"ping","x":` + nestArr(HardMaxDepth, "") + `}`},

		// Invalid JSON takes precedence, wherever it is.
		{name: "unterminated deep input",
			frame: `{"type":"invokefunction","invocation_id":"i1","function_id":"f","data":` + strings.Repeat("[", 100000),
			want:  &DecodeError{Code: CodeInvalidMessage, Type: TypeInvokeFunction, InvocationID: "i1", HasInvocationID: true}},
		{name: "unterminated string past the limit",
			frame: `{"type":"ping","data":` + strings.Repeat("[", d+1) + `"abc`,
			want:  &DecodeError{Code: CodeInvalidMessage, Type: TypePing}},
		{name: "unterminated object past the limit",
			frame: `{"type":"ping","data":` + strings.Repeat(`{"a":`, d+10) + "1" + strings.Repeat("}", d+9) + "}",
			want:  &DecodeError{Code: CodeInvalidMessage, Type: TypePing}},
		{name: "mismatched bracket past the limit",
			frame: `{"type":"ping","data":` + strings.Repeat("[", d+1) + "1}" + strings.Repeat("]", d) + `}`,
			want:  &DecodeError{Code: CodeInvalidMessage, Type: TypePing}},
		{name: "trailing comma past the limit",
			frame: `{"type":"ping","data":` + nestArr(d+1, "1,") + `}`,
			want:  &DecodeError{Code: CodeInvalidMessage, Type: TypePing}},
		{name: "bad literal past the limit",
			frame: `{"type":"ping","data":` + nestArr(d+1, "nul") + `}`,
			want:  &DecodeError{Code: CodeInvalidMessage, Type: TypePing}},
		{name: "syntax error after the deep value",
			frame: `{"type":"ping","data":` + deepData + `,"x":01}`,
			want:  &DecodeError{Code: CodeInvalidMessage, Type: TypePing}},
		{name: "trailing data after a deep frame",
			frame: `{"type":"ping","data":` + deepData + `} x`,
			want:  &DecodeError{Code: CodeInvalidMessage, Type: TypePing}},
		{name: "deep top-level array",
			frame: nestArr(100000, ""),
			want:  &DecodeError{Code: CodeInvalidMessage}},
		{name: "deep unterminated top-level array",
			frame: strings.Repeat("[", 100000),
			want:  &DecodeError{Code: CodeInvalidMessage}},
	}
	var m Message
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := DecodeDepth([]byte(tt.frame), &m, tt.limit)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("DecodeDepth(limit %d) = %v, want success", tt.limit, err)
				}
				if tt.check != nil {
					tt.check(t, &m)
				}
				return
			}
			de, ok := err.(*DecodeError)
			if !ok {
				t.Fatalf("DecodeDepth(limit %d) = %v, want *DecodeError", tt.limit, err)
			}
			got := *de
			got.Message = ""
			if got != *tt.want {
				t.Errorf("DecodeError = %+v (%s), want %+v", got, de.Message, *tt.want)
			}
			switch de.Code {
			case CodeTooDeep:
				limit := clampDepth(tt.limit)
				if !strings.Contains(de.Message, fmt.Sprintf("message nests deeper than %d levels at offset ", limit)) {
					t.Errorf("Message = %q", de.Message)
				}
				if tname := tt.want.Type.String(); tname != "" && !strings.HasPrefix(de.Message, tname+": ") {
					t.Errorf("Message = %q, want it to start with %q", de.Message, tname+": ")
				}
			case CodeInvalidMessage:
				if !strings.Contains(de.Message, "JSON") {
					t.Errorf("Message = %q, want a JSON syntax message", de.Message)
				}
			}
		})
	}
}

// TestDecodeDepthOffset pins the message: type, limit and the offset of the
// first bracket over the limit, in the first member that goes over it.
func TestDecodeDepthOffset(t *testing.T) {
	tests := []struct {
		frame string
		limit int
		at    string // the first bracket over the limit starts the first occurrence of at
	}{
		{`{"type":"invokefunction","invocation_id":"x","function_id":"f","data":{"a":[1,[[2]]]}}`, 2, "[[2"},
		{`{"type":"invokefunction","function_id":"f","data":[{"b":[[0]]}],"metadata":[[[[1]]]]}`, 3, "[0"},
		{`{"metadata":[[[[1]]]],"type":"invokefunction","function_id":"f","data":[{"b":[[0]]}]}`, 3, "[1"},
	}
	for _, tt := range tests {
		var m Message
		err := DecodeDepth([]byte(tt.frame), &m, tt.limit)
		want := fmt.Sprintf("nesting_too_deep: invokefunction: message nests deeper than %d levels at offset %d", tt.limit, strings.Index(tt.frame, tt.at))
		if err == nil || err.Error() != want {
			t.Errorf("DecodeDepth(%s, %d) = %v, want %s", tt.frame, tt.limit, err, want)
		}
	}
}

func TestDecodeDepthZeroAllocs(t *testing.T) {
	frame := []byte(`{"type":"invokefunction","invocation_id":"x","function_id":"f","data":` + nestArr(DefaultMaxDepth, "1") + `}`)
	var m Message
	for _, limit := range []int{0, DefaultMaxDepth, 1000} {
		if err := DecodeDepth(frame, &m, limit); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { _ = DecodeDepth(frame, &m, limit) }); n != 0 {
			t.Errorf("DecodeDepth(limit %d) allocates %v times per call, want 0", limit, n)
		}
	}
}

func TestDecodeStreamRequestDepth(t *testing.T) {
	const d = DefaultMaxDepth
	data := func(extra string) string {
		return `{"subscriptionId":"s1","streamName":"todo","groupId":"todos","extra":` + extra + `}`
	}
	tests := []struct {
		name     string
		frame    string
		limit    int
		wantCode string // "" = success
		wantMsg  string
	}{
		{"at the default limit", `{"type":"join","data":` + data(nestArr(d-1, "1")) + `}`, 0, "", ""},
		{"over the default limit", `{"type":"join","data":` + data(nestArr(d, "1")) + `}`, 0, CodeTooDeep, "join: message nests deeper than 128 levels at offset "},
		{"type after the deep data", `{"data":` + data(nestObj(d, "1")) + `,"type":"leave"}`, 0, CodeTooDeep, "leave: message nests deeper than 128 levels"},
		{"deep unknown member, unknown type", `{"type":"subscribe","x":` + nestArr(d+1, "") + `}`, 0, CodeTooDeep, "message nests deeper than 128 levels"},
		{"100000 levels", `{"type":"join","data":` + data(nestArr(100000, "1")) + `}`, 0, CodeTooDeep, "join: message nests deeper"},
		{"limit 2 accepts", `{"type":"join","data":` + data("[1]") + `}`, 2, "", ""},
		{"limit 2 refuses", `{"type":"join","data":` + data("[[1]]") + `}`, 2, CodeTooDeep, "join: message nests deeper than 2 levels"},
		{"limit 1 accepts a flat data", `{"type":"join","data":` + data("1") + `}`, 1, "", ""},
		{"limit 1 refuses", `{"type":"join","data":` + data("{}") + `}`, 1, CodeTooDeep, "join: message nests deeper than 1 levels"},
		{"unterminated deep input", `{"type":"join","data":` + strings.Repeat("[", 100000), 0, CodeInvalidMessage, "unexpected end of input"},
		{"deep top-level array", nestArr(100000, ""), 0, CodeInvalidMessage, "message must be a JSON object, got array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r StreamRequest
			err := DecodeStreamRequestDepth([]byte(tt.frame), &r, tt.limit)
			if tt.wantCode == "" {
				if err != nil || r.Type == "" || r.SubscriptionID != "s1" || r.StreamName != "todo" || r.GroupID != "todos" {
					t.Fatalf("DecodeStreamRequestDepth = %+v, %v; want success", r, err)
				}
				return
			}
			de, ok := err.(*DecodeError)
			if !ok || de.Code != tt.wantCode || !strings.Contains(de.Message, tt.wantMsg) {
				t.Fatalf("DecodeStreamRequestDepth = %v, want %s containing %q", err, tt.wantCode, tt.wantMsg)
			}
		})
	}
	// The default-limit entry point uses DefaultMaxDepth.
	var r StreamRequest
	err := DecodeStreamRequest([]byte(`{"type":"join","data":`+data(nestArr(d, "1"))+`}`), &r)
	if de, ok := err.(*DecodeError); !ok || de.Code != CodeTooDeep {
		t.Fatalf("DecodeStreamRequest = %v, want %s", err, CodeTooDeep)
	}
}

// TestSkipDeepMatchesSkipValue checks the iterative skipper against the
// recursive one: same end, kind and error on every seed.
func TestSkipDeepMatchesSkipValue(t *testing.T) {
	for _, s := range skipSeeds() {
		compareSkips(t, []byte(s))
	}
}

func skipSeeds() []string {
	return []string{
		`1`, `-0.5e+3`, `01`, `"a\"b"`, `"unterminated`, `true`, `nul`, `x`, ``,
		`[]`, `{}`, `[ ]`, `{ }`, `[1,2 , 3]`, `[1,]`, `[,1]`, `[1 2]`, `[`, `[1`, `[1,`,
		`{"a":1}`, `{"a" : [1,{"b":null}] , "c":"d"}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{a:1}`, `{"a":1 "b":2}`,
		`{"a":1]`, `[1}`, `[[[]]]`, `[[[]]`, `[{"a":[{"b":{}}]},[]]`, `{"a":{"b":{"c":[1,2,{"d":"e"}]}}}`,
		`[{"a":1},{"a":2}] trailing`, `{"x":"\u00e9\ud83d\ude00"}`, `["\x"]`, "[\"\x01\"]",
		nestArr(100, `{"k":[1,2]}`), nestObj(100, "[]"), nestArr(70, ""), nestObj(65, "{}"),
	}
}

func compareSkips(t *testing.T, b []byte) {
	t.Helper()
	j1, k1, e1 := skipValue(b, 0, HardMaxDepth)
	if e1 != nil && e1.deep() {
		return // beyond what the recursive skipper can compare
	}
	j2, k2, e2 := skipDeep(b, 0)
	if (e1 == nil) != (e2 == nil) || e1 != nil && *e1 != *e2 || e1 == nil && (j1 != j2 || k1 != k2) {
		t.Fatalf("%.60q: skipValue = %d %c %v, skipDeep = %d %c %v", b, j1, k1, e1, j2, k2, e2)
	}
}

func FuzzSkipDeep(f *testing.F) {
	for _, s := range skipSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { compareSkips(t, b) })
}
