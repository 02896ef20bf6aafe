package exec

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// maxLine is the longest line forwarded in one piece; longer ones are split.
const maxLine = 64 << 10

// drainWait is how long Stop lets output of processes that left the
// killed group keep the pipes open before cutting them.
const drainWait = time.Second

// sink is one of the engine's output streams; the mutex is shared by both
// streams so whole lines never interleave.
type sink struct {
	mu *sync.Mutex
	w  io.Writer
}

// writeLine writes prefix+line+"\n" in one Write.
func (s sink) writeLine(prefix string, line []byte) {
	buf := make([]byte, 0, len(prefix)+len(line)+1)
	buf = append(append(append(buf, prefix...), line...), '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	s.w.Write(buf) // nowhere to report a failing engine stdout
}

// label is the prefix naming a command: `[pnpm dev] `, long lines shortened.
func label(line string) string {
	const max = 32
	line = strings.Join(strings.Fields(line), " ")
	if utf8.RuneCountInString(line) > max {
		line = string([]rune(line)[:max-1]) + "…"
	}
	return "[" + line + "] "
}

// outputs tracks the pumps of every process started, so Stop can wait for
// their output and cut pipes held open by escaped processes.
type outputs struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	open map[*os.File]struct{}
}

// pump forwards r to s line by line in the background until EOF, which
// the returned channel reports.
func (o *outputs) pump(r *os.File, prefix string, s sink) <-chan struct{} {
	done := make(chan struct{})
	o.mu.Lock()
	if o.open == nil {
		o.open = map[*os.File]struct{}{}
	}
	o.open[r] = struct{}{}
	o.mu.Unlock()
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		defer close(done)
		defer func() {
			o.mu.Lock()
			delete(o.open, r)
			o.mu.Unlock()
			r.Close()
		}()
		br := bufio.NewReaderSize(r, maxLine)
		for {
			line, err := br.ReadSlice('\n')
			switch {
			case err == nil:
				line = line[:len(line)-1]
				if n := len(line); n > 0 && line[n-1] == '\r' {
					line = line[:n-1]
				}
				s.writeLine(prefix, line)
			case errors.Is(err, bufio.ErrBufferFull):
				s.writeLine(prefix, line)
			default:
				// EOF, or the read end was closed by drain: flush a final
				// line that had no newline.
				if len(line) > 0 {
					s.writeLine(prefix, line)
				}
				return
			}
		}
	}()
	return done
}

// drain waits for every pump to reach EOF, for at most drainWait (or until
// ctx ends), then closes the pipes that are still open and waits again.
func (o *outputs) drain(ctx context.Context) {
	finished := make(chan struct{})
	go func() {
		o.wg.Wait()
		close(finished)
	}()
	t := time.NewTimer(drainWait)
	defer t.Stop()
	select {
	case <-finished:
		return
	case <-t.C:
	case <-ctx.Done():
	}
	o.mu.Lock()
	for f := range o.open {
		f.Close() // unblocks the pump's Read
	}
	o.mu.Unlock()
	<-finished
}
