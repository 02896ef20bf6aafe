// Package natstest runs a JetStream-enabled nats-server inside a test
// process, for the tests of the cluster log and of engines sharing it, and
// for the benchmarks that compare against NATS.
package natstest

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Start runs a nats-server with JetStream on a free loopback port, its
// store in a temporary directory, until the test ends; it returns the
// server.
func Start(t testing.TB) *server.Server {
	t.Helper()
	return StartWith(t, &server.Options{JetStream: true, StoreDir: t.TempDir()})
}

// StartWith runs a nats-server with o (its address, logging and signals
// set by Run) until the test ends.
func StartWith(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	s, err := Run(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// Run starts an in-process nats-server with o on a free loopback port,
// quiet and without signal handlers, and waits until it accepts
// connections. The caller shuts it down.
func Run(o *server.Options) (*server.Server, error) {
	o.Host, o.Port, o.NoLog, o.NoSigs = "127.0.0.1", server.RANDOM_PORT, true, true
	s, err := server.NewServer(o)
	if err != nil {
		return nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, errors.New("nats-server did not start")
	}
	return s, nil
}
