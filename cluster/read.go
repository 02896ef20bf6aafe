package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iii-go/iii/log"
)

// ReadStream calls fn for each record of the stream with index in [from,
// upto], in order, with its index set. The *log.Record is reused between
// calls.
func ReadStream(ctx context.Context, js jetstream.JetStream, stream string, from, upto uint64, fn func(*log.Record) error) error {
	from = max(from, 1)
	if from > upto {
		return nil
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{Subject(stream)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from,
		// The server drops the consumer this soon after the read ends, not
		// after the default five minutes: `iii replay --nats --follow` reads
		// every 200 ms.
		InactiveThreshold: 5 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("cluster: read stream %s: %w", stream, err)
	}
	var rec log.Record
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return fmt.Errorf("cluster: read stream %s: %w", stream, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				return fmt.Errorf("cluster: read stream %s: %w", stream, err)
			}
			seq := md.Sequence.Stream
			if seq > upto {
				return nil
			}
			if err := log.DecodeRecord(msg.Data(), &rec); err != nil {
				return fmt.Errorf("cluster: read stream %s: index %d: %w", stream, seq, err)
			}
			rec.Index = seq
			if err := fn(&rec); err != nil {
				return err
			}
			if seq == upto {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("cluster: read stream %s: %w", stream, err)
		}
		if n == 0 {
			return nil // nothing more within the wait: the stream ends before upto
		}
	}
}

// Reader reads a cluster's log from outside an engine (`iii replay --nats`).
type Reader struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	name   string
}

// OpenReader connects to NATS and finds the stream (DefaultStream when
// stream is empty); it fails with what to fix when either is missing.
func OpenReader(url, creds, stream string) (*Reader, error) {
	if stream == "" {
		stream = DefaultStream
	}
	nc, err := Connect(url, creds, "iii replay", slog.Default())
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		nc.Close()
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("cluster: %s has no stream %q (engine.cluster.stream)", url, stream)
		}
		return nil, fmt.Errorf("cluster: stream %s at %s: %w", stream, url, err)
	}
	return &Reader{nc: nc, js: js, stream: s, name: stream}, nil
}

// Read calls fn for each record with index >= from, up to the stream's end
// as of the call.
func (r *Reader) Read(from uint64, fn func(*log.Record) error) error {
	last, err := r.Last()
	if err != nil {
		return err
	}
	return ReadStream(context.Background(), r.js, r.name, from, last, fn)
}

// Last is the stream's last sequence: the index of its last record.
func (r *Reader) Last() (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	info, err := r.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("cluster: stream %s: %w", r.name, err)
	}
	return info.State.LastSeq, nil
}

// Close drops the connection.
func (r *Reader) Close() { r.nc.Close() }
