package exec

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iii-go/iii/internal/syncbuf"
	"github.com/iii-go/iii/internal/wait"
)

type harness struct {
	r                *Runner
	out, errOut, log *syncbuf.Buffer
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
	h := &harness{out: &syncbuf.Buffer{}, errOut: &syncbuf.Buffer{}, log: &syncbuf.Buffer{}}
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
	wait.For(t, 15*time.Second, what, cond)
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
		return strings.Contains(h.log.String(), `msg="exec: command exited cleanly, not restarting" module=iii-exec command="echo last"`)
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
	if strings.Contains(h.log.String(), "restarting") {
		t.Errorf("a stop by the Runner is not an unexpected exit: %s", h.log.String())
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
	// SIGKILL is delivered asynchronously: a killed child may take a moment
	// to die after its shell was reaped.
	for _, pid := range []int{leader, child} {
		waitFor(t, "pid "+strconv.Itoa(pid)+" to die after Stop", func() bool { return gone(pid) })
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
	if strings.Contains(h.log.String(), "unexpectedly") {
		t.Errorf("a watched restart is not an unexpected exit: %s", h.log.String())
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

// counter is a shell snippet that bumps the number in file n and leaves it
// in $n, so each run of a command knows which run it is.
const counter = `n=$(($(cat n 2>/dev/null || echo 0)+1)); echo $n > n; `

// stamps returns the nanosecond start times each run appended to dir/runs.
func stamps(t *testing.T, dir string) []time.Time {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "runs"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []time.Time
	for _, f := range strings.Fields(string(b)) {
		ns, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatalf("bad stamp %q: %v", f, err)
		}
		out = append(out, time.Unix(0, ns))
	}
	return out
}

// delays returns the restart_in values logged so far, in order.
func delays(t *testing.T, log string) []time.Duration {
	t.Helper()
	var out []time.Duration
	for _, m := range regexp.MustCompile(`restart_in=(\S+)`).FindAllStringSubmatch(log, -1) {
		d, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatalf("bad restart_in %q: %v", m[1], err)
		}
		out = append(out, d)
	}
	return out
}

func TestUnexpectedExitRestarts(t *testing.T) {
	const stamp = "date +%s%N >> runs; "
	tests := []struct {
		name    string
		command string
		exit    string // logged exit; "" means a clean stop, not restarted
	}{
		{"non-zero status", stamp + "exit 1", "exit status 1"},
		{"killed by a foreign signal", stamp + "kill -KILL $$", "signal: killed"},
		{"clean exit", stamp + "exit 0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			h := start(t, Config{
				Commands:        []string{tt.command},
				Dir:             dir,
				RestartDelay:    20 * time.Millisecond,
				MaxRestartDelay: 80 * time.Millisecond,
				StableUptime:    time.Minute,
			})
			if tt.exit == "" {
				waitFor(t, "clean exit log", func() bool {
					return strings.Contains(h.log.String(), `level=INFO msg="exec: command exited cleanly, not restarting"`)
				})
				time.Sleep(300 * time.Millisecond) // several restart delays
				if n := len(stamps(t, dir)); n != 1 {
					t.Errorf("clean exit ran %d times, want 1", n)
				}
				if l := h.log.String(); strings.Contains(l, "level=WARN") {
					t.Errorf("clean exit logged a warning: %s", l)
				}
				return
			}

			waitFor(t, "5 runs", func() bool { return len(stamps(t, dir)) >= 5 })
			h.stop(t)
			log := h.log.String()
			want := `level=WARN msg="exec: command exited unexpectedly; restarting" module=iii-exec command="` +
				tt.command + `" exit="` + tt.exit + `" restart_in=20ms`
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %s\n%s", want, log)
			}
			// Doubling from 20 ms, capped at 80 ms.
			wantDelays := []time.Duration{20, 40, 80, 80}
			got := delays(t, log)
			if len(got) < len(wantDelays) {
				t.Fatalf("restart delays %v, want at least %d", got, len(wantDelays))
			}
			runs := stamps(t, dir)
			for i, w := range wantDelays {
				w *= time.Millisecond
				if got[i] != w {
					t.Errorf("restart %d logged delay %v, want %v", i+1, got[i], w)
				}
				// Run i+1 starts no sooner than the delay after run i ended.
				if gap := runs[i+1].Sub(runs[i]); gap < w {
					t.Errorf("run %d started %v after run %d, want ≥ %v", i+2, gap, i+1, w)
				}
			}
		})
	}
}

func TestStopDuringBackoff(t *testing.T) {
	dir := t.TempDir()
	h := start(t, Config{
		Commands:     []string{"date +%s%N >> runs; exit 2"},
		Dir:          dir,
		RestartDelay: time.Second,
	})
	waitFor(t, "the restart to be scheduled", func() bool {
		return strings.Contains(h.log.String(), "restart_in=1s")
	})
	began := time.Now()
	h.stop(t)
	if took := time.Since(began); took > 300*time.Millisecond {
		t.Errorf("Stop took %v during a 1 s backoff", took)
	}
	time.Sleep(1200 * time.Millisecond) // past the abandoned restart
	if n := len(stamps(t, dir)); n != 1 {
		t.Errorf("%d runs, want 1: nothing may start after Stop", n)
	}
}

func TestBackoffResetsAfterStableRun(t *testing.T) {
	dir := t.TempDir()
	// Runs 1-3 and 5 fail at once, run 4 fails after outliving
	// StableUptime, run 6 stops cleanly.
	cmd := counter + `case $n in 4) sleep 0.8; exit 1;; 6) exit 0;; *) exit 1;; esac`
	h := start(t, Config{
		Commands:        []string{cmd},
		Dir:             dir,
		RestartDelay:    30 * time.Millisecond,
		MaxRestartDelay: time.Second,
		StableUptime:    500 * time.Millisecond,
	})
	waitFor(t, "the clean stop", func() bool {
		return strings.Contains(h.log.String(), "exited cleanly")
	})
	ms := time.Millisecond
	want := []time.Duration{30 * ms, 60 * ms, 120 * ms, 30 * ms, 60 * ms}
	if got := delays(t, h.log.String()); !slices.Equal(got, want) {
		t.Errorf("restart delays %v, want %v", got, want)
	}
	time.Sleep(200 * time.Millisecond)
	if b, _ := os.ReadFile(filepath.Join(dir, "n")); strings.TrimSpace(string(b)) != "6" {
		t.Errorf("ran %s times, want 6", b)
	}
}

func TestFailingLineRetriesPipeline(t *testing.T) {
	dir := t.TempDir()
	// The middle line fails on the first two runs of the pipeline.
	check := counter + `echo try=$n; [ $n -ge 3 ]`
	h := start(t, Config{
		Commands:     []string{"echo first", check, "echo last; exec sleep 100"},
		Dir:          dir,
		RestartDelay: 20 * time.Millisecond,
	})
	waitFor(t, "the last line", func() bool { return strings.Contains(h.out.String(), "] last\n") })
	h.stop(t)
	out, log := h.out.String(), h.log.String()
	for what, want := range map[string]int{"] first\n": 3, "] try=": 3, "] last\n": 1} {
		if n := strings.Count(out, what); n != want {
			t.Errorf("%q printed %d times, want %d:\n%s", what, n, want, out)
		}
	}
	warn := `level=WARN msg="exec: command exited unexpectedly; restarting" module=iii-exec command="` +
		check + `" skipped=1 exit="exit status 1"`
	if n := strings.Count(log, warn); n != 2 {
		t.Errorf("%d failure warnings, want 2:\n%s", n, log)
	}
	if got, want := delays(t, log), []time.Duration{20 * time.Millisecond, 40 * time.Millisecond}; !slices.Equal(got, want) {
		t.Errorf("restart delays %v, want %v", got, want)
	}
}

func TestWatchRestartResetsBackoff(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := start(t, Config{
		Commands:        []string{"exit 1"},
		Watch:           []string{"src/*.ts"},
		Dir:             dir,
		PollInterval:    20 * time.Millisecond,
		Debounce:        50 * time.Millisecond,
		RestartDelay:    20 * time.Millisecond,
		MaxRestartDelay: time.Minute,
		StableUptime:    time.Minute,
	})
	waitFor(t, "backoff to grow", func() bool { return strings.Contains(h.log.String(), "restart_in=640ms") })
	if err := os.WriteFile(filepath.Join(dir, "src", "a.ts"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	const changed = "watched file changed"
	waitFor(t, "a failure after the watched restart", func() bool {
		l := h.log.String()
		i := strings.Index(l, changed)
		return i >= 0 && strings.Contains(l[i:], "restart_in=")
	})
	l := h.log.String()
	after := delays(t, l[strings.Index(l, changed):])
	if after[0] != 20*time.Millisecond {
		t.Errorf("first delay after the watched restart %v, want 20ms (log:\n%s)", after[0], l)
	}
}
