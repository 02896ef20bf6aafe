package exec

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuf is a goroutine-safe buffer standing in for the engine's output.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	r                *Runner
	out, errOut, log *syncBuf
}

// start runs a Runner with fast timings; it is stopped at test end.
func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.Grace == 0 {
		cfg.Grace = 2 * time.Second
	}
	h := &harness{out: &syncBuf{}, errOut: &syncBuf{}, log: &syncBuf{}}
	h.r = Start(cfg, h.out, h.errOut, slog.New(slog.NewTextHandler(h.log, nil)))
	t.Cleanup(func() { h.stop(t) })
	return h
}

func (h *harness) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.r.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

// waitFor polls cond; the machine is shared and slow, so the limit is generous.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gone reports whether pid has exited (a zombie counts: it can no longer run).
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || strings.HasPrefix(s[i+1:], " Z")
}

func pids(t *testing.T, s, name string) []int {
	t.Helper()
	var out []int
	for _, m := range regexp.MustCompile(name+`=(\d+)`).FindAllStringSubmatch(s, -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, n)
	}
	return out
}

func TestLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"pnpm dev", "[pnpm dev] "},
		{"  cd web &&\tpnpm   install ", "[cd web && pnpm install] "},
		{"node ./scripts/a-very-long-script-name.js --flag", "[node ./scripts/a-very-long-scri…] "},
	}
	for _, tt := range tests {
		if got := label(tt.in); got != tt.want {
			t.Errorf("label(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestOutputPrefixedLineByLine(t *testing.T) {
	first := "echo one; echo oops >&2; printf 'two\\r\\nthree'"
	h := start(t, Config{Commands: []string{first, "echo last"}})
	waitFor(t, "the last command to exit", func() bool {
		return strings.Contains(h.log.String(), `msg="exec: command exited" module=iii-exec command="echo last"`)
	})
	h.stop(t)
	p := label(first)
	wantOut := p + "one\n" + p + "two\n" + p + "three\n" + "[echo last] last\n"
	if got := h.out.String(); got != wantOut {
		t.Errorf("stdout:\n got %q\nwant %q", got, wantOut)
	}
	if got, want := h.errOut.String(), p+"oops\n"; got != want {
		t.Errorf("stderr:\n got %q\nwant %q", got, want)
	}
}

func TestLongLinesAreSplit(t *testing.T) {
	h := start(t, Config{Commands: []string{"head -c 70000 /dev/zero | tr '\\0' x; echo; echo after"}})
	waitFor(t, "output", func() bool { return strings.Contains(h.out.String(), "after\n") })
	lines := strings.Split(strings.TrimSuffix(h.out.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[2], "] after") {
		t.Fatalf("want 2 chunks and 'after', got %d lines", len(lines))
	}
	if n := strings.Count(lines[0]+lines[1], "x"); n != 70000 {
		t.Fatalf("lost bytes: %d x", n)
	}
}

func TestPipelineStopsOnFailingLine(t *testing.T) {
	h := start(t, Config{Commands: []string{"echo first", "echo failing; exit 3", "echo never"}})
	waitFor(t, "the failure to be logged", func() bool {
		return strings.Contains(h.log.String(), "pipeline stopped")
	})
	h.stop(t)
	if got, want := h.out.String(), "[echo first] first\n[echo failing; exit 3] failing\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if l := h.log.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "exit status 3") || !strings.Contains(l, "skipped=1") {
		t.Errorf("log %q", l)
	}
}

func TestEnvironmentAndDir(t *testing.T) {
	dir := t.TempDir()
	cmd := "echo url=$III_URL; pwd"
	t.Run("III_URL added when unset", func(t *testing.T) {
		t.Setenv("III_URL", "")
		os.Unsetenv("III_URL")
		h := start(t, Config{Commands: []string{cmd}, Dir: dir, URL: "ws://127.0.0.1:4242"})
		waitFor(t, "output", func() bool { return strings.Count(h.out.String(), "\n") == 2 })
		real, _ := filepath.EvalSymlinks(dir)
		if got, want := h.out.String(), "[echo url=$III_URL; pwd] url=ws://127.0.0.1:4242\n[echo url=$III_URL; pwd] "+real+"\n"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("III_URL kept when set", func(t *testing.T) {
		t.Setenv("III_URL", "ws://elsewhere:1")
		h := start(t, Config{Commands: []string{cmd}, Dir: dir, URL: "ws://127.0.0.1:4242"})
		waitFor(t, "output", func() bool { return strings.Contains(h.out.String(), "url=") })
		if !strings.Contains(h.out.String(), "url=ws://elsewhere:1\n") {
			t.Errorf("got %q", h.out.String())
		}
	})
}

func TestStopTerminatesGracefully(t *testing.T) {
	h := start(t, Config{Commands: []string{"echo leader=$$; sleep 100"}, Grace: 10 * time.Second})
	waitFor(t, "start", func() bool { return strings.Contains(h.out.String(), "leader=") })
	leader := pids(t, h.out.String(), "leader")[0]
	h.stop(t)
	if !gone(leader) {
		t.Errorf("leader %d still running", leader)
	}
	if strings.Contains(h.log.String(), "outlived the grace period") {
		t.Errorf("SIGTERM should have been enough: %s", h.log.String())
	}
}

func TestStopKillsGroupIgnoringSIGTERM(t *testing.T) {
	h := start(t, Config{
		Commands: []string{"trap '' TERM; sleep 100 & echo leader=$$ child=$!; wait"},
		Grace:    200 * time.Millisecond,
	})
	waitFor(t, "start", func() bool { return strings.Contains(h.out.String(), "child=") })
	out := h.out.String()
	leader, child := pids(t, out, "leader")[0], pids(t, out, "child")[0]
	h.stop(t)
	for _, pid := range []int{leader, child} {
		if !gone(pid) {
			t.Errorf("pid %d survived Stop", pid)
		}
	}
	if !strings.Contains(h.log.String(), "outlived the grace period") {
		t.Errorf("expected SIGKILL escalation in log: %s", h.log.String())
	}
}

func TestWatchRestart(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := start(t, Config{
		Commands:     []string{"echo setup", "echo leader=$$; exec sleep 100"},
		Watch:        []string{"src/**/*.{ts,tsx}"},
		Dir:          dir,
		PollInterval: 20 * time.Millisecond,
		Debounce:     300 * time.Millisecond,
	})
	runs := func() int { return len(pids(t, h.out.String(), "leader")) }
	waitFor(t, "first run", func() bool { return runs() == 1 })
	// Long enough for several polls plus the debounce.
	settle := func() { time.Sleep(800 * time.Millisecond) }

	write("a.js", "x")
	write("README", "x")
	write("deep/x.ts.bak", "x")
	settle()
	if n := runs(); n != 1 {
		t.Fatalf("non-matching files restarted the pipeline (%d runs)", n)
	}

	// A burst of writes restarts once.
	for i := range 5 {
		write("deep/x.ts", strings.Repeat("y", i+1))
	}
	waitFor(t, "restart after writes", func() bool { return runs() == 2 })
	settle()
	if n := runs(); n != 2 {
		t.Fatalf("burst of writes gave %d runs, want 2", n)
	}
	if n := strings.Count(h.out.String(), "[echo setup] setup\n"); n != 2 {
		t.Errorf("the whole pipeline must rerun: setup ran %d times", n)
	}
	first := pids(t, h.out.String(), "leader")[0]
	waitFor(t, "old process gone", func() bool { return gone(first) })

	if err := os.Rename(filepath.Join(src, "deep/x.ts"), filepath.Join(src, "deep/y.tsx")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "restart after rename", func() bool { return runs() == 3 })
	if err := os.Remove(filepath.Join(src, "deep/y.tsx")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "restart after remove", func() bool { return runs() == 4 })
	if !strings.Contains(h.log.String(), "watched file changed") {
		t.Errorf("restart not logged: %s", h.log.String())
	}
}

func TestParseWatchAndMatch(t *testing.T) {
	tests := []struct {
		pattern string
		spec    watchSpec
		yes     []string
		no      []string
	}{
		{"src/**/*.{ts,tsx}", watchSpec{root: "src", recursive: true, exts: []string{"ts", "tsx"}},
			[]string{"src/a.ts", "src/x/y/z.tsx"}, []string{"src/a.js", "src/a", "srcx/a.ts", "a.ts", "src/x/a.ts.bak"}},
		{"src/**/*.test.ts", watchSpec{root: "src", recursive: true, exts: []string{"ts"}},
			[]string{"src/a.ts", "src/a/b.test.ts"}, []string{"src/a.tsx"}},
		{"src/*.go", watchSpec{root: "src", exts: []string{"go"}},
			[]string{"src/a.go"}, []string{"src/x/a.go", "a.go"}},
		{"src/app*.go", watchSpec{root: "src", exts: []string{"go"}},
			[]string{"src/main.go"}, []string{"src/x/app.go"}},
		{"**/*.go", watchSpec{root: ".", recursive: true, exts: []string{"go"}},
			[]string{"a.go", "x/y/a.go"}, []string{"../a.go", "/abs/a.go", "a.mod"}},
		{"*.go", watchSpec{root: ".", exts: []string{"go"}},
			[]string{"a.go"}, []string{"x/a.go"}},
		{"src/**", watchSpec{root: "src", recursive: true},
			[]string{"src/Makefile", "src/a/b.c"}, []string{"lib/a.c"}},
		{"config.json", watchSpec{root: "config.json", exts: []string{"json"}},
			[]string{"config.json"}, []string{"other.json"}},
		{"/abs/dir/**/*.ts", watchSpec{root: "/abs/dir", recursive: true, exts: []string{"ts"}},
			[]string{"/abs/dir/a/b.ts"}, []string{"/abs/a.ts"}},
		{"**/*", watchSpec{root: ".", recursive: true},
			[]string{".env", "Makefile"}, nil},
		{"**/*.env", watchSpec{root: ".", recursive: true, exts: []string{"env"}},
			[]string{"a.env"}, []string{".env"}},
	}
	for _, tt := range tests {
		got := parseWatch(tt.pattern)
		if got.root != tt.spec.root || got.recursive != tt.spec.recursive || strings.Join(got.exts, ",") != strings.Join(tt.spec.exts, ",") {
			t.Errorf("parseWatch(%q) = %+v, want %+v", tt.pattern, got, tt.spec)
		}
		for _, p := range tt.yes {
			if !got.matches(p) {
				t.Errorf("%q should match %q", tt.pattern, p)
			}
		}
		for _, p := range tt.no {
			if got.matches(p) {
				t.Errorf("%q should not match %q", tt.pattern, p)
			}
		}
	}
}

func TestScanSkipsDependencyTrees(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.ts", "src/b.ts", "node_modules/pkg/c.ts", ".git/d.ts", "src/e.js"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := &Runner{cfg: Config{Dir: dir}}
	got := r.scan([]watchSpec{parseWatch("**/*.ts"), parseWatch("node_modules/pkg/*.ts")})
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := "a.ts node_modules/pkg/c.ts src/b.ts"; strings.Join(keys, " ") != want {
		t.Fatalf("scanned %q, want %q", keys, want)
	}
}
