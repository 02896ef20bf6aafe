// Package natstest runs a JetStream-enabled nats-server inside a test
// process, for the tests of the cluster log and of engines sharing it.
package natstest

import (
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
// set here) until the test ends.
func StartWith(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	o.Host, o.Port, o.NoLog, o.NoSigs = "127.0.0.1", server.RANDOM_PORT, true, true
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(s.Shutdown)
	return s
}
