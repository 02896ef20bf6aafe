package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iii-go/iii/log"
)

// Snapshot takes a snapshot of the projection at the last applied index,
// saves it in the local directory and puts it in the cluster's object
// store. It is a no-op when nothing was applied since the last one.
// Snapshots are taken one at a time, so a slow older one can never be
// published over a newer one.
func (l *Log) Snapshot() error {
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	var buf bytes.Buffer
	l.applyMu.Lock()
	index := l.applied.Load()
	if index == l.snapIndex {
		l.applyMu.Unlock()
		return nil
	}
	err := l.st.Snapshot(&buf)
	l.sinceSnap = 0 // count from now even when it failed, or every record would retry it
	if err == nil {
		l.snapIndex = index
	}
	l.applyMu.Unlock()
	if err != nil {
		return fmt.Errorf("cluster: snapshot: %w", err)
	}
	if err := log.SaveSnapshot(l.opts.Dir, index, buf.Bytes()); err != nil {
		return err
	}
	// Publishing is best effort (the local copy is what this node needs),
	// and must not hold up a shutdown while NATS is unreachable.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := putSnapshot(ctx, l.js, l.opts.Stream, l.opts.Replicas, index, buf.Bytes()); err != nil {
		l.logger.Warn("cluster: snapshot kept locally but not published", "index", index, "err", err)
	}
	return nil
}

// putSnapshot stores data as the cluster's newest snapshot unless the one
// there already covers more.
func putSnapshot(ctx context.Context, js jetstream.JetStream, stream string, replicas int, index uint64, data []byte) error {
	obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: snapshotBucket(stream), Description: "iii engine snapshots", Replicas: replicas,
	})
	if err != nil {
		return err
	}
	if info, err := obs.GetInfo(ctx, snapshotObject); err == nil {
		if have, _ := strconv.ParseUint(info.Metadata[snapshotIndex], 10, 64); have >= index {
			return nil
		}
	}
	// Data and index in one put: a reader never sees one without the other.
	_, err = obs.Put(ctx, jetstream.ObjectMeta{
		Name: snapshotObject, Metadata: map[string]string{snapshotIndex: strconv.FormatUint(index, 10)},
	}, bytes.NewReader(data))
	return err
}

// newestSnapshot returns the newer of the local snapshot and the cluster's
// published one, and where it came from.
func (l *Log) newestSnapshot(ctx context.Context) (index uint64, data []byte, from string, err error) {
	index, data, err = log.NewestSnapshot(l.opts.Dir)
	if err != nil {
		return 0, nil, "", err
	}
	from = "local"
	if data == nil {
		from = "none"
	}
	obs, err := l.js.ObjectStore(ctx, snapshotBucket(l.opts.Stream))
	if err != nil {
		return index, data, from, nil // none published yet
	}
	info, err := obs.GetInfo(ctx, snapshotObject)
	if err != nil {
		return index, data, from, nil
	}
	if remote, _ := strconv.ParseUint(info.Metadata[snapshotIndex], 10, 64); remote <= index {
		return index, data, from, nil
	}
	// Read the index from the version whose bytes are read: another node
	// may have published a newer one since GetInfo.
	remote, b, err := getSnapshot(ctx, obs)
	if err != nil {
		l.logger.Warn("cluster: published snapshot unreadable; replaying instead", "err", err)
		return index, data, from, nil
	}
	return remote, b, "object store", nil
}

// getSnapshot reads the published snapshot and the index it was taken at.
func getSnapshot(ctx context.Context, obs jetstream.ObjectStore) (uint64, []byte, error) {
	r, err := obs.Get(ctx, snapshotObject)
	if err != nil {
		return 0, nil, err
	}
	defer r.Close()
	info, err := r.Info()
	if err != nil {
		return 0, nil, err
	}
	index, err := strconv.ParseUint(info.Metadata[snapshotIndex], 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("snapshot index %q: %w", info.Metadata[snapshotIndex], err)
	}
	b, err := io.ReadAll(r)
	return index, b, err
}
