package bench

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The redis scenario: durable stream::set against Redis with
// `appendfsync always` (every write fsynced to its append-only file before
// the reply), when redis-server is installed. Both sides keep 64 writes in
// flight on 8 connections; Redis's are pipelined XADDs to one stream.

// startRedis runs redis-server on a free loopback port with its data in dir.
func startRedis(bin, dir string) (addr string, stop func(), err error) {
	port, err := FreeLoopbackPort()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no", "--protected-mode", "no")
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	addr = "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_, err = c.Write([]byte("PING\r\n"))
			if err == nil {
				var line string
				line, err = bufio.NewReader(c).ReadString('\n')
				if err == nil && line != "+PONG\r\n" {
					err = fmt.Errorf("PING answered %q", line)
				}
			}
			c.Close()
			if err == nil {
				return addr, stop, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("redis-server did not answer on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisLoad keeps perConn XADDs in flight on each of conns connections for
// d and returns the acknowledged writes per second.
func redisLoad(addr string, conns, perConn int, d time.Duration) (float64, error) {
	// XADD bench MAXLEN ~ 1024 * n 1: the stream stays small however long the run.
	cmd := []byte("*8\r\n$4\r\nXADD\r\n$5\r\nbench\r\n$6\r\nMAXLEN\r\n$1\r\n~\r\n$4\r\n1024\r\n$1\r\n*\r\n$1\r\nn\r\n$1\r\n1\r\n")
	var ok atomic.Uint64
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	start := time.Now()
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := bufio.NewWriter(c)
			r := bufio.NewReader(c)
			for range perConn {
				w.Write(cmd)
			}
			if err := w.Flush(); err != nil {
				errs <- err
				return
			}
			for inFlight := perConn; inFlight > 0; inFlight-- {
				line, err := r.ReadSlice('\n')
				if err != nil {
					errs <- err
					return
				}
				if line[0] == '-' {
					errs <- fmt.Errorf("redis: %s", line)
					return
				}
				if line[0] == '$' { // a bulk string: the entry id on the next line
					if _, err := r.ReadSlice('\n'); err != nil {
						errs <- err
						return
					}
				}
				ok.Add(1)
				if !stop.Load() {
					w.Write(cmd)
					inFlight++
				}
				// Flush once the replies read together are handled, stopping
				// or not: a command left in w would never be answered.
				if r.Buffered() == 0 && w.Buffered() > 0 {
					if err := w.Flush(); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	time.Sleep(d)
	n, elapsed := ok.Load(), time.Since(start)
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	return float64(n) / elapsed.Seconds(), nil
}

// redis measures durable stream::set through the engine against Redis
// appendfsync always in the same run; without redis-server it says so.
func (r *runner) redis() error {
	label := fmt.Sprintf("stream::set vs Redis appendfsync always, %d in flight, %d conns", inFlight, manyConns)
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		r.add(Row{Scenario: label, Unit: "sets/s", Ours: math.NaN(), Baseline: math.NaN(), Note: "skipped: redis-server is not installed"})
		return nil
	}
	ours, note := r.engineSide(false, setBody)
	defer ours.close()
	dir, err := os.MkdirTemp(r.o.TempDir, "redis-*")
	if err != nil {
		return err
	}
	addr, stop, err := startRedis(bin, dir)
	if err != nil {
		return err
	}
	defer stop()
	r.progress("redis: %s", label)
	half := r.o.Duration / 2
	var o loadResult
	var base, runs float64
	for range 2 {
		if ours != nil {
			res, err := runLoad(ours.callers, inFlight/manyConns, half, false)
			if err != nil {
				return fmt.Errorf("engine: %w", err)
			}
			o.add(res)
		}
		rate, err := redisLoad(addr, manyConns, inFlight/manyConns, half)
		if err != nil {
			return err
		}
		base += rate
		runs++
	}
	if base == 0 {
		return errors.New("redis acknowledged no write")
	}
	row := Row{Scenario: label, Unit: "sets/s", Ours: nanIf(ours == nil, o.rate()), Baseline: base / runs, Against: "Redis XADD", Note: joinNotes(note, errNote(o, loadResult{}))}
	r.add(row)
	r.rep.Summary.VsRedisSet = row.Ratio()
	return nil
}
