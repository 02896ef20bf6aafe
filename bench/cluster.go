package bench

import (
	"errors"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/iii-go/iii/internal/natstest"
)

// The cluster scenario: engines sharing one log on NATS JetStream, started
// by the bench on an in-process nats-server (and a three-server JetStream
// cluster for R3), each figure next to the single engine on its local WAL
// measured in the same run.

// startJetStream runs n clustered JetStream servers (one plain server for
// n = 1) on free loopback ports and returns their client URLs. They fsync
// every write before acknowledging it (sync_interval: always), like the
// local WAL they are compared with.
func startJetStream(dir string, n int) (urls []string, stop func(), err error) {
	var servers []*server.Server
	stop = func() {
		for _, s := range servers {
			s.Shutdown()
		}
	}
	routes := make([]int, n)
	for i := range routes {
		if routes[i], err = FreeLoopbackPort(); err != nil {
			return nil, stop, err
		}
	}
	for i := range n {
		o := &server.Options{JetStream: true, SyncAlways: true,
			StoreDir: filepath.Join(dir, "js"+strconv.Itoa(i)), ServerName: "n" + strconv.Itoa(i)}
		if n > 1 {
			o.Cluster = server.ClusterOpts{Name: "bench", Host: "127.0.0.1", Port: routes[i]}
			for _, p := range routes {
				o.Routes = append(o.Routes, server.RoutesFromStr("nats://127.0.0.1:"+strconv.Itoa(p))...)
			}
		}
		s, err := natstest.Run(o)
		if err != nil {
			return nil, stop, err
		}
		servers = append(servers, s)
		urls = append(urls, s.ClientURL())
	}
	if n > 1 {
		// JetStream needs its meta leader before a stream can be created.
		deadline := time.Now().Add(20 * time.Second)
		for !slices.ContainsFunc(servers, (*server.Server).JetStreamIsLeader) {
			if time.Now().After(deadline) {
				return nil, stop, errors.New("JetStream cluster elected no meta leader within 20 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return urls, stop, nil
}

// FreeLoopbackPort asks the OS for a loopback port that is free right now.
func FreeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// cluster measures durable stream::set through a cluster engine (R1, and
// R3 on three servers) against the single engine on its local WAL, and a
// call from one node to a worker on another against a call to a worker on
// the same engine.
func (r *runner) cluster() error {
	if r.t.StartClusterEngine == nil {
		return errors.New("no cluster engine to start")
	}
	local, note := r.engineSide(true, setBody)
	if local == nil {
		return errors.New(note)
	}
	defer local.close()

	urls, stopNATS, err := startJetStream(filepath.Join(r.o.TempDir, "nats1"), 1)
	defer stopNATS()
	if err != nil {
		return err
	}
	aURL, stopA, err := r.t.StartClusterEngine(urls[0], "a", filepath.Join(r.o.TempDir, "cluster-a"), 1)
	if err != nil {
		return fmt.Errorf("node a: %w", err)
	}
	defer stopA()
	bURL, stopB, err := r.t.StartClusterEngine(urls[0], "b", filepath.Join(r.o.TempDir, "cluster-b"), 1)
	if err != nil {
		return fmt.Errorf("node b: %w", err)
	}
	defer stopB()

	label := fmt.Sprintf("%d in flight, %d conns", inFlight, manyConns)
	row, err := r.clusterSet(aURL, "R1", local, label)
	if err != nil {
		return fmt.Errorf("node a: %w", err)
	}
	r.rep.Summary.ClusterSetRatio = row.Ratio()

	// A call from b to the echo worker on a, against the same call to a
	// worker on the one engine (local side).
	w, err := dialWorker(aURL, nil, `{"type":"registerfunction","id":"`+echoFn+`"}`)
	if err != nil {
		return fmt.Errorf("node a worker: %w", err)
	}
	defer w.close()
	cross, err := dialSide(bURL, false, manyConns, invokeBody)
	if err != nil {
		return fmt.Errorf("node b: %w", err)
	}
	defer cross.close()
	localCalls, err := dialSide(r.t.EngineURL, false, manyConns, invokeBody)
	if err != nil {
		return err
	}
	defer localCalls.close()
	r.progress("cluster: invoke across nodes c=1")
	o, b, err := r.measurePair(cross.callers[:1], localCalls.callers[:1], 1, true)
	if err != nil {
		return err
	}
	p50 := func(l loadResult) float64 { return float64(percentile(l.lat, 0.5)) / float64(time.Microsecond) }
	r.add(Row{Scenario: "cluster invoke across nodes c=1 p50", Unit: "µs", Ours: p50(o), Baseline: p50(b), Against: "same engine", Note: errNote(o, b)})
	r.progress("cluster: invoke across nodes %s", label)
	if o, b, err = r.measurePair(cross.callers, localCalls.callers, inFlight/manyConns, false); err != nil {
		return err
	}
	row = Row{Scenario: "cluster invoke across nodes, " + label, Unit: "calls/s", Ours: o.rate(), Baseline: b.rate(), Against: "same engine", Note: errNote(o, b)}
	r.add(row)
	r.rep.Summary.CrossInvokeRatio = row.Ratio()

	return r.clusterR3(local, label)
}

// clusterR3 is the set measurement on a three-server JetStream cluster
// with three replicas: every write is stored on two servers before it is
// answered.
func (r *runner) clusterR3(local *side, label string) error {
	urls, stopNATS, err := startJetStream(filepath.Join(r.o.TempDir, "nats3"), 3)
	defer stopNATS()
	if err != nil {
		r.add(Row{Scenario: "cluster stream::set R3, " + label, Unit: "sets/s", Ours: math.NaN(), Baseline: math.NaN(), Note: "not measured: " + err.Error()})
		return nil
	}
	url, stop, err := r.t.StartClusterEngine(strings.Join(urls, ","), "r3", filepath.Join(r.o.TempDir, "cluster-r3"), 3)
	if err != nil {
		return fmt.Errorf("R3 node: %w", err)
	}
	defer stop()
	if _, err := r.clusterSet(url, "R3", local, label); err != nil {
		return fmt.Errorf("R3 node: %w", err)
	}
	return nil
}

// clusterSet measures durable stream::set through the cluster engine at
// url against the single engine on its local WAL, and adds the row.
func (r *runner) clusterSet(url, replicas string, local *side, label string) (Row, error) {
	sets, err := dialSide(url, false, manyConns, setBody)
	if err != nil {
		return Row{}, err
	}
	defer sets.close()
	r.progress("cluster: stream::set %s %s", replicas, label)
	o, b, err := r.measurePair(sets.callers, local.callers, inFlight/manyConns, false)
	if err != nil {
		return Row{}, err
	}
	row := Row{Scenario: "cluster stream::set " + replicas + ", " + label, Unit: "sets/s", Ours: o.rate(), Baseline: b.rate(), Against: "local WAL",
		Note: joinNotes("JetStream sync_interval: always", errNote(o, b))}
	r.add(row)
	return row, nil
}
