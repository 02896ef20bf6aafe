package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iii-go/iii/engine/config"
)

// Churn: many connections connect, register, call and drop, again and
// again. Afterwards the engine holds what it held before: no sessions, no
// registrations, no goroutines or file descriptors left behind. Bounded in
// time (SOAK_SECONDS, default 5) and on loopback only.
func TestSoakConnectionChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("soak")
	}
	seconds := 5
	if v := os.Getenv("SOAK_SECONDS"); v != "" {
		fmt.Sscan(v, &seconds)
	}
	// History is bounded (the in-memory log keeps 4 MiB), so what is left
	// after the churn is what the engine itself holds.
	e := startEngine(t, nil, func(c *config.Config) { c.Engine.RetainBytes = 4 << 20 })
	echo := dial(t, e.url(0))
	echo.serve("soak::echo", func(d json.RawMessage, _ frame) (any, error) { return json.RawMessage(d), nil })
	echo.sync()
	time.Sleep(100 * time.Millisecond)
	baseG, baseFD, baseHeap := runtime.NumGoroutine(), openFDs(), heapInUse()

	deadline := time.Now().Add(time.Duration(seconds) * time.Second)
	logged := make(chan struct{})
	stopLog := make(chan struct{})
	// A line a minute, for long runs; stopped before the test returns,
	// since t.Logf after that panics.
	defer func() { close(stopLog); <-logged }()
	go func() {
		defer close(logged)
		tick := time.NewTicker(time.Minute)
		defer tick.Stop()
		for t0 := time.Now(); ; {
			select {
			case <-stopLog:
				return
			case <-tick.C:
				t.Logf("after %s: RSS %d MiB", time.Since(t0).Round(time.Second), rss()>>20)
			}
		}
	}()
	t.Logf("at start: RSS %d MiB", rss()>>20)
	var wg sync.WaitGroup
	var rounds, calls int64
	var mu sync.Mutex
	for w := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				c := connect(t, e.url(0))
				id := fmt.Sprintf("soak::w%d-%d", w, i)
				c.serve(id, func(json.RawMessage, frame) (any, error) { return nil, nil })
				c.send(map[string]any{"type": "registertrigger", "id": id, "trigger_type": "stream", "function_id": id,
					"config": map[string]any{"stream_name": "soak", "group_id": "g"}})
				for range 5 {
					if r := c.call("soak::echo", map[string]any{"i": i}); r["error"] != nil {
						t.Errorf("call: %v", r["error"])
						return
					}
				}
				c.conn.Close(1000, "")
				<-c.closed
				mu.Lock()
				rounds++
				calls += 5
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	eventually(t, "the engine to forget every churned connection", func() bool {
		e.mu.RLock()
		n := len(e.sessions)
		e.mu.RUnlock()
		return n == 1 // the echo worker
	})
	// A session is dropped before its worker.disconnected record is applied.
	builtins := len(e.builtins)
	var fns, trs int
	registry := func() bool {
		e.view.mu.RLock()
		defer e.view.mu.RUnlock()
		fns, trs = len(e.view.Registry.Functions()), len(e.view.Registry.Triggers())
		return fns == builtins+1 && trs == 0
	}
	if !waitFor(5*time.Second, registry) {
		t.Fatalf("ghosts in the registry: %d functions (want %d), %d triggers", fns, builtins+1, trs)
	}
	eventually(t, "goroutines and file descriptors back to their baseline", func() bool {
		return runtime.NumGoroutine() <= baseG+5 && openFDs() <= baseFD+5
	})
	heap := heapInUse()
	t.Logf("%d connections, %d calls in %ds; goroutines %d → %d, fds %d → %d, heap in use %d KiB → %d KiB",
		rounds, calls, seconds, baseG, runtime.NumGoroutine(), baseFD, openFDs(), baseHeap>>10, heap>>10)
	if heap > baseHeap+32<<20 {
		t.Fatalf("the heap grew by %d MiB over the churn", (heap-baseHeap)>>20)
	}
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// waitFor polls cond until it holds or d has passed.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// rss is the process's resident set size in bytes (0 when unknown).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	var kb uint64
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
		}
	}
	return kb << 10
}

func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}
