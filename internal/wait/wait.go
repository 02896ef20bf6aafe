// Package wait polls a condition in tests, for the packages whose tests
// wait on goroutines and other processes.
package wait

import (
	"testing"
	"time"
)

// For polls cond every 10 ms until it holds, and fails t, naming what it
// waited for, once d has passed. These machines are shared and slow: give
// d generously.
func For(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
