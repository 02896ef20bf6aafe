package replay

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Progress draws a progress bar for a long scan on a terminal. It stays
// invisible for the first second, so quick scans print nothing extra, and
// only then asks for the total it measures against.
type Progress struct {
	w     io.Writer
	total func() (uint64, error)
	cur   atomic.Uint64

	mu    sync.Mutex // serialises drawing with writes through HideWriter
	shown bool

	stop chan struct{}
	done chan struct{}
}

// Progress timing: the delay before the bar appears, and its redraw period.
const (
	progressDelay = time.Second
	progressEvery = 200 * time.Millisecond
	progressWidth = 30
)

// StartProgress starts a bar on w (meant to be a terminal's stderr). total
// is called once, after the delay, for the last index the scan will reach.
// Stop it with Stop.
func StartProgress(w io.Writer, total func() (uint64, error)) *Progress {
	p := &Progress{w: w, total: total, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

// set records the index the scan has reached; a nil p ignores it, so the
// scan loop needs no branch of its own.
func (p *Progress) set(index uint64) {
	if p != nil {
		p.cur.Store(index)
	}
}

func (p *Progress) run() {
	defer close(p.done)
	select {
	case <-p.stop:
		return
	case <-time.After(progressDelay):
	}
	total, err := p.total()
	if err != nil || total == 0 {
		return // no bar rather than a wrong one
	}
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		p.draw(total)
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

func (p *Progress) draw(total uint64) {
	cur := min(p.cur.Load(), total)
	filled := int(cur * progressWidth / total)
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r\x1b[Kscanning [%s%s] %3d%%  %d/%d",
		strings.Repeat("#", filled), strings.Repeat(".", progressWidth-filled), cur*100/total, cur, total)
	p.shown = true
}

// hide clears the bar; it comes back at the next redraw. p.mu is held.
func (p *Progress) hide() {
	if p.shown {
		io.WriteString(p.w, "\r\x1b[K")
		p.shown = false
	}
}

// Stop ends the bar and clears it.
func (p *Progress) Stop() {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	p.hide()
	p.mu.Unlock()
}

// HideWriter returns a writer for output sharing the bar's terminal: it
// clears the bar before each write to w, so rows never land on its line.
func (p *Progress) HideWriter(w io.Writer) io.Writer { return hideWriter{p, w} }

type hideWriter struct {
	p *Progress
	w io.Writer
}

func (h hideWriter) Write(b []byte) (int, error) {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	h.p.hide()
	return h.w.Write(b)
}
