package bench

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

var summaryLine = regexp.MustCompile(`^bench: invoke_ratio=(\S+) set_ratio=(\S+) store_ratio=(\S+) fanout_ratio=(\S+) replay_rate=(\S+) vs_nats_invoke=(\S+) vs_nats_fanout=(\S+) queue_ratio=(\S+) cluster_set_ratio=(\S+) cross_invoke_ratio=(\S+) vs_nats_push=(\S+) vs_redis_set=(\S+)$`)

var number = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// TestRunSmoke runs every scenario briefly without an engine: the baselines
// must measure something and the last line must keep its format. Speed is
// never asserted.
func TestRunSmoke(t *testing.T) {
	tests := []struct {
		scenario string
		numeric  int // summary field (1-based regexp group) that must be a number; 0 = none
	}{
		{"invoke", 0},
		{"set", 0},
		{"store", 3},
		{"queue", 0},
		{"fanout", 0},
		{"replay", 5},
		{"memory", 0},
		{"nats", 0},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			var out, progress bytes.Buffer
			rep, err := Run(context.Background(), Targets{}, Options{
				Duration:    200 * time.Millisecond,
				Scenario:    tt.scenario,
				Records:     20_000,
				Subscribers: []int{5, 20},
				TempDir:     t.TempDir(),
				Out:         &out,
				Progress:    &progress,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s\n%s", progress.String(), out.String())
			if len(rep.Rows) == 0 {
				t.Fatal("no rows")
			}
			for _, row := range rep.Rows {
				if strings.Contains(row.Note, "not measured") {
					t.Errorf("row %q: %s", row.Scenario, row.Note)
				}
				if row.Against != "" && !(row.Baseline > 0) {
					t.Errorf("row %q: baseline %v, want a measurement", row.Scenario, row.Baseline)
				}
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			last := lines[len(lines)-1]
			m := summaryLine.FindStringSubmatch(last)
			if m == nil {
				t.Fatalf("last line %q does not match %v", last, summaryLine)
			}
			for i, v := range m[1:] {
				if v != "n/a" && !number.MatchString(v) {
					t.Errorf("field %d = %q, want a number or n/a", i+1, v)
				}
			}
			if tt.numeric > 0 && !number.MatchString(m[tt.numeric]) {
				t.Errorf("field %d = %q, want a number in %q", tt.numeric, m[tt.numeric], last)
			}
			if !strings.HasPrefix(out.String(), "scenario") {
				t.Errorf("output does not start with the table header:\n%s", out.String())
			}
		})
	}
}

func TestRunUnknownScenario(t *testing.T) {
	if _, err := Run(context.Background(), Targets{}, Options{Scenario: "nope", Out: &bytes.Buffer{}}); err == nil {
		t.Fatal("want an error for an unknown scenario")
	}
}

func TestField(t *testing.T) {
	tests := []struct {
		frame, key, want string
	}{
		{`{"type":"invocationresult","invocation_id":"abc","function_id":"f"}`, "invocation_id", "abc"},
		{`{"type":"invocationresult","invocation_id":"abc","function_id":"f"}`, "function_id", "f"},
		{`{"function_id" : "f::g", "invocation_id":"x"}`, "function_id", "f::g"},
		{`{"invocation_id":null}`, "invocation_id", ""},
		{`{"type":"invokefunction"}`, "invocation_id", ""},
		{`{"invocation_id":"unterminated`, "invocation_id", ""},
	}
	for _, tt := range tests {
		if got := string(field([]byte(tt.frame), tt.key)); got != tt.want {
			t.Errorf("field(%s, %q) = %q, want %q", tt.frame, tt.key, got, tt.want)
		}
	}
}

func TestIsError(t *testing.T) {
	tests := []struct {
		frame string
		want  bool
	}{
		{`{"type":"invocationresult","invocation_id":"a","result":{}}`, false},
		{`{"type":"invocationresult","invocation_id":"a","result":42,"error":null}`, false},
		{`{"type":"invocationresult","invocation_id":"a","error":{"code":"function_not_found","message":"x"}}`, true},
	}
	for _, tt := range tests {
		if got := isError([]byte(tt.frame)); got != tt.want {
			t.Errorf("isError(%s) = %v, want %v", tt.frame, got, tt.want)
		}
	}
}

func TestIDRoundTrip(t *testing.T) {
	tests := []struct {
		seq  uint64
		sent int64
	}{{0, 0}, {1, 123456789}, {1<<64 - 1, 1<<63 - 1}}
	for _, tt := range tests {
		id := appendID(nil, tt.seq, tt.sent)
		if len(id) != idLen || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
			t.Fatalf("id %q is not UUID-shaped", id)
		}
		seq, sent, ok := parseID(id)
		if !ok || seq != tt.seq || sent != tt.sent {
			t.Errorf("parseID(%s) = %d, %d, %v; want %d, %d", id, seq, sent, ok, tt.seq, tt.sent)
		}
	}
	if _, _, ok := parseID([]byte("not-an-id")); ok {
		t.Error("parseID accepted a short id")
	}
}

func TestNumberAfter(t *testing.T) {
	tests := []struct {
		frame string
		want  uint64
		ok    bool
	}{
		{`{"data":{"seq":42}}`, 42, true},
		{`{"event":{"data":{"seq": 7}}}`, 7, true},
		{`{"data":{}}`, 0, false},
	}
	for _, tt := range tests {
		got, ok := numberAfter([]byte(tt.frame), tagSeq)
		if got != tt.want || ok != tt.ok {
			t.Errorf("numberAfter(%s) = %d, %v; want %d, %v", tt.frame, got, ok, tt.want, tt.ok)
		}
	}
}

// relayPair is an echo worker and one caller on a fresh relay.
func relayPair(b *testing.B) (*caller, func()) {
	srv, err := startServer(newRelay())
	if err != nil {
		b.Fatal(err)
	}
	s, err := dialSide(srv.url(), true, 1, invokeBody)
	if err != nil {
		srv.close()
		b.Fatal(err)
	}
	return s.callers[0], func() { s.close(); srv.close() }
}

// benchRelay measures round trips through the bare relay with inFlight
// calls outstanding; ns/op is per call.
func benchRelay(b *testing.B, inFlight int) {
	c, done := relayPair(b)
	defer done()
	b.ResetTimer()
	ok0 := c.ok.Load()
	if err := c.start(inFlight); err != nil {
		b.Fatal(err)
	}
	for c.ok.Load()-ok0 < uint64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	if lost := c.stop(10 * time.Second); lost > 0 {
		b.Fatalf("%d calls never answered", lost)
	}
}

// BenchmarkRelayRoundTrip is one call at a time through the bare relay:
// the latency floor of a gws hop to a worker and back.
func BenchmarkRelayRoundTrip(b *testing.B) { benchRelay(b, 1) }

// BenchmarkRelayInFlight64 keeps 64 calls in flight through the bare relay.
func BenchmarkRelayInFlight64(b *testing.B) { benchRelay(b, inFlight) }
