package cluster

import (
	"context"
	"fmt"
)

// catchUp is one stream-info request shared by the readers that arrived
// before it was sent.
type catchUp struct {
	done chan struct{}
	last uint64
	err  error
}

// CatchUp waits until this node has applied every record the stream held
// when CatchUp was called, so a read served after it sees every write any
// node acknowledged before the read arrived. It costs one request to the
// stream's leader, shared by the readers waiting at the same time.
func (l *Log) CatchUp(ctx context.Context) error {
	if !l.nc.IsConnected() {
		// Nobody to ask: the read is served from what this node has.
		return fmt.Errorf("cluster: catch up: NATS connection is %s", l.nc.Status())
	}
	l.catchMu.Lock()
	c := l.nextCatch
	if c == nil {
		c = &catchUp{done: make(chan struct{})}
		l.nextCatch = c
	}
	if !l.catching {
		l.catching = true
		go l.runCatchUps()
	}
	l.catchMu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if c.err != nil {
		return c.err
	}
	if l.applied.Load() >= c.last {
		return nil
	}
	l.watchers.Add(1)
	defer l.watchers.Add(-1)
	stop := context.AfterFunc(ctx, func() {
		l.appliedMu.Lock()
		l.appliedCv.Broadcast()
		l.appliedMu.Unlock()
	})
	defer stop()
	l.appliedMu.Lock()
	defer l.appliedMu.Unlock()
	for l.applied.Load() < c.last {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := l.failed(); err != nil {
			return err
		}
		l.appliedCv.Wait()
	}
	return nil
}

// runCatchUps sends one stream-info request per batch of waiting readers.
func (l *Log) runCatchUps() {
	for {
		l.catchMu.Lock()
		c := l.nextCatch
		l.nextCatch = nil
		if c == nil {
			l.catching = false
			l.catchMu.Unlock()
			return
		}
		l.catchMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
		info, err := l.stream.Info(ctx)
		cancel()
		if err != nil {
			c.err = fmt.Errorf("cluster: catch up: %w", err)
		} else {
			c.last = info.State.LastSeq
		}
		close(c.done)
	}
}
