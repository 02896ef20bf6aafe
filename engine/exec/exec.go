// Package exec is the engine's exec module (iii-exec): it runs the
// configured shell command lines as a pipeline, forwards their output line
// by line with a prefix naming the command, restarts the pipeline when a
// watched file changes, and takes the processes down on shutdown.
//
// Every line runs as `sh -c "<line>"` in its own process group, so a
// signal reaches everything the line started. Lines run in order; each but
// the last must exit 0 or the pipeline stops. The last is left running and
// is not restarted when it exits (only a watched change or an engine
// restart runs the pipeline again).
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
// command that cannot start or fails is logged, not returned. Output goes
// to stdout and stderr (os.Stdout / os.Stderr when nil), each line prefixed
// with `[<command>] `; logger nil means slog.Default().
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

// Stop terminates the running process group (SIGTERM, then SIGKILL after
// the grace period), reaps it and waits for its output to drain. It returns
// early with ctx's error if ctx ends first; the processes are still taken
// down in the background. Stop may be called more than once.
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

// supervise runs the pipeline, reruns it on watched changes, and stops it
// when ctx ends.
func (r *Runner) supervise(ctx context.Context, changes <-chan string) {
	defer close(r.done)
	for {
		p := &pipeline{r: r, done: make(chan struct{})}
		go p.run()
		select {
		case <-ctx.Done():
			p.terminate(r.cfg.Grace)
			return
		case path := <-changes:
			r.log.Info("exec: watched file changed, restarting", "path", path)
			p.terminate(r.cfg.Grace)
			// Changes seen while stopping are already visible to the new run.
			select {
			case <-changes:
			default:
			}
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// pipeline is one run of the command lines.
type pipeline struct {
	r    *Runner
	done chan struct{} // closed when run returns

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
		p.mu.Lock()
		if p.stopping {
			p.mu.Unlock()
			return
		}
		// Started under the lock so terminate always sees the newest group.
		cmd, err := r.spawn(line)
		if err != nil {
			p.mu.Unlock()
			r.log.Error("exec: cannot start command, pipeline stopped", "command", line, "err", err)
			return
		}
		p.pgid, p.reaped = cmd.Process.Pid, false
		p.mu.Unlock()
		r.log.Info("exec: command started", "command", line, "pid", cmd.Process.Pid)

		err = cmd.Wait()
		p.mu.Lock()
		p.reaped = true
		stopping := p.stopping
		p.mu.Unlock()
		if stopping {
			return
		}
		last := i == len(r.cfg.Commands)-1
		switch {
		case err != nil && !last:
			r.log.Error("exec: command failed, pipeline stopped", "command", line, "err", err,
				"skipped", len(r.cfg.Commands)-1-i)
			return
		case err != nil:
			r.log.Warn("exec: command exited", "command", line, "err", err)
		case last:
			r.log.Info("exec: command exited", "command", line)
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
func (r *Runner) spawn(line string) (*exec.Cmd, error) {
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir = r.cfg.Dir
	cmd.Env = r.env
	// Stdin stays /dev/null: a process group that is not in the terminal's
	// foreground would be stopped (SIGTTIN) if it read the terminal.
	// Pdeathsig takes the shell down if the engine dies without Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
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
		return nil, err
	}
	prefix := label(line)
	r.out.pump(outR, prefix, r.stdout)
	r.out.pump(errR, prefix, r.stderr)
	return cmd, nil
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
