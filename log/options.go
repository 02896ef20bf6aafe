package log

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// SyncPolicy says when an append is acknowledged relative to fsync.
type SyncPolicy int

const (
	// SyncAlways acknowledges an append only after the batch holding it has
	// been fsynced. Appends that arrive while an fsync is in flight share the
	// next one (group commit). An acknowledged record survives kill -9 and
	// power loss.
	SyncAlways SyncPolicy = iota
	// SyncInterval acknowledges after the write reaches the OS and fsyncs
	// every Options.SyncInterval. A power loss can drop up to one interval of
	// acknowledged records; kill -9 cannot.
	SyncInterval
	// SyncNever acknowledges after the write and fsyncs only on Snapshot and
	// Close. Meant for tests and benchmarks.
	SyncNever
)

var syncPolicyNames = [...]string{
	SyncAlways:   "always",
	SyncInterval: "interval",
	SyncNever:    "never",
}

// String returns the policy's config spelling ("always", "interval", "never").
func (p SyncPolicy) String() string {
	if p >= 0 && int(p) < len(syncPolicyNames) {
		return syncPolicyNames[p]
	}
	return fmt.Sprintf("syncpolicy(%d)", int(p))
}

// ParseSyncPolicy maps a config value to a SyncPolicy. The empty string
// means the default, SyncAlways. Case is ignored.
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	if s == "" {
		return SyncAlways, nil
	}
	for p, name := range syncPolicyNames {
		if strings.EqualFold(s, name) {
			return SyncPolicy(p), nil
		}
	}
	return SyncAlways, fmt.Errorf("log: unknown sync policy %q (want always, interval or never)", s)
}

// Defaults applied by Open to zero Options fields.
const (
	DefaultSyncInterval  = 100 * time.Millisecond
	DefaultSegmentSize   = 20 << 20
	DefaultSnapshotEvery = 100_000
	DefaultSnapshotBytes = 64 << 20
)

// Options configure a Log. The zero value is usable: SyncAlways, 20 MiB
// segments, a snapshot every 100 000 records or 64 MiB, and no retention
// limit (history is kept forever).
type Options struct {
	// Sync is the durability policy; see SyncPolicy.
	Sync SyncPolicy
	// disk, set by this package's tests only, replaces the segment files
	// with a store that models a disk (what survives a power cut).
	disk store
	// SyncInterval is the fsync period under SyncInterval (default 100ms).
	SyncInterval time.Duration
	// InMemory keeps records in memory only: no files, no snapshots, nothing
	// survives Close (store_method: in_memory).
	InMemory bool
	// SegmentSize is the target size in bytes of one segment file (default
	// 20 MiB).
	SegmentSize int
	// SnapshotEvery takes a snapshot after this many records (default 100 000).
	SnapshotEvery uint64
	// SnapshotBytes takes a snapshot after this many bytes of records
	// (default 64 MiB), whichever of the two limits comes first.
	SnapshotBytes int64
	// RetainBytes and RetainAge bound the history kept for `iii replay`. A
	// segment is removed once it is beyond either limit (its successors
	// already hold RetainBytes, or its last write is older than RetainAge),
	// and only when a retained snapshot covers all of it. Zero means no limit
	// on that dimension; both zero keeps everything. In InMemory mode the
	// oldest records are dropped by the same rules, without the snapshot
	// condition.
	RetainBytes int64
	RetainAge   time.Duration
	// Logger receives warnings (repaired tails, skipped snapshots, failed
	// background snapshot writes). Default slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.SyncInterval <= 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.SegmentSize <= 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.SnapshotEvery == 0 {
		o.SnapshotEvery = DefaultSnapshotEvery
	}
	if o.SnapshotBytes <= 0 {
		o.SnapshotBytes = DefaultSnapshotBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}
