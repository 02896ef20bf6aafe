// Package exec is the engine's exec module (iii-exec): it runs the
// configured shell command lines as a pipeline, forwards their output line
// by line with a prefix naming the command, supervises the pipeline (restart
// with backoff after an unexpected exit, restart when a watched file
// changes), and takes the processes down on shutdown.
//
// Every line runs as `sh -c "<line>"` in its own process group, so a
// signal reaches everything the line started. Lines run in order; each but
// the last must exit 0 before the next starts. The last is left running.
//
// Restart rules:
//   - The last line exiting 0 is a clean stop: it is logged and not
//     restarted (a watched change or an engine restart runs the pipeline
//     again).
//   - The last line exiting non-zero or killed by a signal the module did
//     not send, an earlier line exiting non-zero, or a line that cannot be
//     started is an unexpected exit: a warning names the command, its exit
//     status or signal and the delay, and after that delay the whole
//     pipeline runs again from its first line. Whatever the failed line
//     left running in its process group is stopped first.
//   - The delay starts at Config.RestartDelay (1 s), doubles after each
//     unexpected exit up to Config.MaxRestartDelay (30 s), and is back to
//     its start value for a run that stayed up Config.StableUptime (10 s)
//     or that a watched change started.
//   - Shutdown (Stop) never restarts anything, also while a restart is
//     pending; processes stopped by the module itself (shutdown, watched
//     change) do not count as unexpected exits.
//
// Watch patterns are polled (no OS notification dependency). A pattern's
// root is its directory part before the first `*` ("." when empty), watched
// recursively when the pattern contains `**`; a file under the root matches
// when its extension is the pattern's final one or in its `{a,b}` group (a
// pattern ending in `*` takes every file). Creating, writing, renaming or
// removing a matching file restarts the whole pipeline after a short quiet
// period; node_modules and .git are not scanned unless a root lies inside.
package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultGrace        = 3 * time.Second
	DefaultPollInterval = 300 * time.Millisecond
	DefaultDebounce     = 200 * time.Millisecond

	DefaultRestartDelay    = time.Second
	DefaultMaxRestartDelay = 30 * time.Second
	DefaultStableUptime    = 10 * time.Second
)

// Config configures a Runner.
type Config struct {
	// Commands are the shell command lines, run in order.
	Commands []string
	// Watch are glob patterns; a created, written, renamed or removed
	// matching file restarts the pipeline (rules in the package doc).
	Watch []string
	// Dir is the working directory of the commands and the base of relative
	// watch patterns; "" is the engine's working directory.
	Dir string
	// URL is given to the commands as III_URL when the engine's environment
	// does not set it (e.g. ws://127.0.0.1:49134); "" adds nothing.
	URL string
	// Grace is how long a process group gets between SIGTERM and SIGKILL
	// (default 3 s).
	Grace time.Duration
	// PollInterval is how often watched directories are scanned (default
	// 300 ms).
	PollInterval time.Duration
	// Debounce is the quiet time after the last change before restarting
	// (default 200 ms), so a burst of writes restarts once.
	Debounce time.Duration
	// RestartDelay is the wait before the first restart after an unexpected
	// exit (default 1 s); it doubles after each further unexpected exit.
	RestartDelay time.Duration
	// MaxRestartDelay caps the doubled restart delay (default 30 s, never
	// below RestartDelay).
	MaxRestartDelay time.Duration
	// StableUptime is how long a run must stay up for the restart delay to
	// start over at RestartDelay (default 10 s).
	StableUptime time.Duration
}

// Runner runs one exec module's pipeline.
type Runner struct {
	cfg    Config
	env    []string
	stdout sink
	stderr sink
	log    *slog.Logger

	cancel   context.CancelFunc
	done     chan struct{} // closed when the supervisor has stopped every process
	watching sync.WaitGroup
	out      outputs
}

// Start starts the pipeline in the background and returns at once; a
// command that cannot start or fails is logged and retried (rules in the
// package doc), not returned. Output goes to stdout and stderr (os.Stdout /
// os.Stderr when nil), each line prefixed with `[<command>] `; logger nil
// means slog.Default().
func Start(cfg Config, stdout, stderr io.Writer, logger *slog.Logger) *Runner {
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.RestartDelay <= 0 {
		cfg.RestartDelay = DefaultRestartDelay
	}
	if cfg.MaxRestartDelay <= 0 {
		cfg.MaxRestartDelay = DefaultMaxRestartDelay
	}
	cfg.MaxRestartDelay = max(cfg.MaxRestartDelay, cfg.RestartDelay)
	if cfg.StableUptime <= 0 {
		cfg.StableUptime = DefaultStableUptime
	}
	if stdout == nil {
		stdout = os.Stdout
	}
	if stderr == nil {
		stderr = os.Stderr
	}
	if logger == nil {
		logger = slog.Default()
	}
	// One lock for both streams: they are often the same terminal.
	mu := &sync.Mutex{}
	r := &Runner{
		cfg:    cfg,
		env:    os.Environ(),
		stdout: sink{mu: mu, w: stdout},
		stderr: sink{mu: mu, w: stderr},
		log:    logger.With("module", "iii-exec"),
		done:   make(chan struct{}),
	}
	if _, set := os.LookupEnv("III_URL"); !set && cfg.URL != "" {
		r.env = append(r.env, "III_URL="+cfg.URL)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	var changes <-chan string
	if len(cfg.Watch) > 0 {
		changes = r.watch(ctx)
	}
	go r.supervise(ctx, changes)
	return r
}

// Stop cancels any pending restart, terminates the running process group
// (SIGTERM, then SIGKILL after the grace period), reaps it and waits for
// its output to drain; nothing is started afterwards. It returns early with
// ctx's error if ctx ends first; the processes are still taken down in the
// background. Stop may be called more than once.
func (r *Runner) Stop(ctx context.Context) error {
	r.cancel()
	select {
	case <-r.done:
	case <-ctx.Done():
		return fmt.Errorf("exec: stop: %w", ctx.Err())
	}
	r.watching.Wait()
	r.out.drain(ctx)
	return nil
}

// supervise runs the pipeline, reruns it after an unexpected exit (with
// backoff) or a watched change, and stops it when ctx ends.
func (r *Runner) supervise(ctx context.Context, changes <-chan string) {
	defer close(r.done)
	if len(r.cfg.Commands) == 0 {
		<-ctx.Done()
		return
	}
	delay := r.cfg.RestartDelay
	for {
		p := &pipeline{r: r, done: make(chan struct{})}
		began := time.Now()
		go p.run()
		select {
		case <-ctx.Done():
			p.terminate(r.cfg.Grace)
			return
		case path := <-changes:
			r.restartOnChange(p, path, changes)
			delay = r.cfg.RestartDelay
			if ctx.Err() != nil {
				return
			}
			continue
		case <-p.done:
		}

		// The run ended on its own (terminate was not called). After a clean
		// stop retry stays nil: only a change or shutdown ends the wait.
		var retry <-chan time.Time
		if p.end.err == nil {
			r.log.Info("exec: command exited cleanly, not restarting", "command", p.end.line)
		} else {
			if time.Since(began) >= r.cfg.StableUptime {
				delay = r.cfg.RestartDelay
			}
			r.logFailure(p.end, delay)
			// An abandoned timer is collected once unreferenced (Go ≥ 1.23).
			retry = time.After(delay)
			delay = r.nextDelay(delay)
		}
		select {
		case <-ctx.Done():
			// Nothing new starts; leftovers of the ended run still go down.
			p.terminate(r.cfg.Grace)
			return
		case path := <-changes:
			r.restartOnChange(p, path, changes)
			delay = r.cfg.RestartDelay
		case <-retry:
			// The failed line's group may still hold children (a server it
			// forked): they would clash with the new run.
			p.terminate(r.cfg.Grace)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// restartOnChange takes the pipeline down for a watched change.
func (r *Runner) restartOnChange(p *pipeline, path string, changes <-chan string) {
	r.log.Info("exec: watched file changed, restarting", "path", path)
	p.terminate(r.cfg.Grace)
	// Changes seen while stopping are already visible to the new run.
	select {
	case <-changes:
	default:
	}
}

// logFailure reports an unexpected end of a run and when it runs again.
func (r *Runner) logFailure(e end, delay time.Duration) {
	args := []any{"command", e.line}
	if e.notStarted {
		r.log.Warn("exec: command could not start; restarting",
			append(args, "err", e.err, "restart_in", delay)...)
		return
	}
	if e.skipped > 0 {
		args = append(args, "skipped", e.skipped)
	}
	// ExitError reads "exit status 3" or "signal: killed".
	r.log.Warn("exec: command exited unexpectedly; restarting",
		append(args, "exit", e.err.Error(), "restart_in", delay)...)
}

// nextDelay doubles the restart delay up to the configured cap.
func (r *Runner) nextDelay(d time.Duration) time.Duration {
	if d > r.cfg.MaxRestartDelay/2 {
		return r.cfg.MaxRestartDelay
	}
	return 2 * d
}

// end is how a run that was not stopped by the Runner ended.
type end struct {
	line       string // the line that ended the run
	err        error  // nil: the last line exited 0
	notStarted bool   // err is from starting the line, not from its exit
	skipped    int    // lines after it that did not run
}

// pipeline is one run of the command lines.
type pipeline struct {
	r    *Runner
	done chan struct{} // closed when run returns
	end  end           // set before done closes unless the run was stopped

	mu       sync.Mutex
	stopping bool // no further line may start
	pgid     int  // process group of the line started last (0: none yet)
	reaped   bool // that line's shell has been waited for
}

// run executes the lines in order; it returns when the last line exits,
// a line fails, or the pipeline is being stopped.
func (p *pipeline) run() {
	defer close(p.done)
	r := p.r
	for i, line := range r.cfg.Commands {
		skipped := len(r.cfg.Commands) - 1 - i
		p.mu.Lock()
		if p.stopping {
			p.mu.Unlock()
			return
		}
		// Started under the lock so terminate always sees the newest group.
		cmd, err := r.spawn(line)
		if err != nil {
			p.mu.Unlock()
			p.end = end{line: line, err: err, notStarted: true, skipped: skipped}
			return
		}
		p.pgid, p.reaped = cmd.Process.Pid, false
		p.mu.Unlock()
		r.log.Info("exec: command started", "command", line, "pid", cmd.Process.Pid)

		err = cmd.Wait()
		cmd.flushed()
		p.mu.Lock()
		p.reaped = true
		stopping := p.stopping
		p.mu.Unlock()
		if stopping {
			// The Runner's own signal ended it: not an exit to report.
			return
		}
		if err != nil || skipped == 0 {
			p.end = end{line: line, err: err, skipped: skipped}
			return
		}
	}
}

// terminate stops the pipeline: no further line starts, the current group
// gets SIGTERM and, if anything in it outlives the grace period, SIGKILL.
// It returns once the shell is reaped and the group is gone (or killed).
func (p *pipeline) terminate(grace time.Duration) {
	p.mu.Lock()
	p.stopping = true
	pgid, reaped := p.pgid, p.reaped
	p.mu.Unlock()
	// A group whose shell was reaped and whose members are gone may have had
	// its id reused; never signal it.
	if pgid == 0 || (reaped && !groupAlive(pgid)) {
		<-p.done
		return
	}
	p.r.signalGroup(pgid, syscall.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	done := p.done
	for {
		select {
		case <-done:
			done = nil
			if !groupAlive(pgid) {
				return
			}
		case <-tick.C:
			if done == nil && !groupAlive(pgid) {
				return
			}
		case <-timer.C:
			p.r.log.Warn("exec: process group outlived the grace period, killing it", "pgid", pgid, "grace", grace)
			p.r.signalGroup(pgid, syscall.SIGKILL)
			<-p.done
			return
		}
	}
}

// spawn starts one line as `sh -c <line>` in a new process group, its
// output piped through prefixing pumps.
func (r *Runner) spawn(line string) (*started, error) {
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir = r.cfg.Dir
	cmd.Env = r.env
	// Stdin stays /dev/null: a process group that is not in the terminal's
	// foreground would be stopped (SIGTTIN) if it read the terminal.
	// Pdeathsig takes the shell down if the engine dies without Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	// The children hold the write ends now; ours must close so the pumps see
	// EOF when the last of them exits.
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("start sh: %w", err)
	}
	prefix := label(line)
	outDone, errDone := r.out.pump(outR, prefix, r.stdout), r.out.pump(errR, prefix, r.stderr)
	return &started{Cmd: cmd, outDone: outDone, errDone: errDone}, nil
}

// started is a spawned line and the end of its output.
type started struct {
	*exec.Cmd
	outDone, errDone <-chan struct{}
}

// flushed waits until the line's output has been forwarded, so the next
// line's output comes after it; a background process that keeps the pipes
// open holds that up for at most a moment.
func (s *started) flushed() {
	timeout := time.After(200 * time.Millisecond)
	for _, ch := range []<-chan struct{}{s.outDone, s.errDone} {
		select {
		case <-ch:
		case <-timeout:
			return
		}
	}
}

// signalGroup sends sig to every process in the group.
func (r *Runner) signalGroup(pgid int, sig syscall.Signal) {
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		r.log.Warn("exec: cannot signal process group", "pgid", pgid, "signal", sig.String(), "err", err)
	}
}

// groupAlive reports whether any process (zombies included) is in the group.
func groupAlive(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
