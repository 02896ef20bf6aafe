// Package log is the engine's write-ahead log: every fact the engine accepts is
// a Record appended here before anyone is told it happened. The engine's state
// is a Projection of the log, rebuilt on Open from the newest snapshot and the
// records after it.
//
// This comment is the on-disk format in one place; docs/log-format.md explains
// it at length, with the engine's snapshot payload.
//
// # Directory layout
//
// A log directory (created owner-only, mode 0700) holds:
//
//	LOCK                                 flock(2)-held by the one Log that has the directory open; holds its pid
//	wal/<first index, 20 digits>         segment files
//	wal/next.spare                       the next segment, prepared ahead: zeros, fsynced
//	wal/<first index, 20 digits>.START   left by tidwall/wal (older logs): stands for the plain name
//	snapshots/<index, 20 digits>.snap    snapshots; <index>.snap.tmp is an interrupted write
//	corrupt-<index>-<unixnano>.bin       the bytes cut from a damaged tail, never read
//
// Indexes start at 1 and are consecutive. A record's index is its position in
// the log and is not stored in it.
//
// # Records
//
// A Record is encoded as a msgpack map with short string keys, in field order,
// leaving empty optional fields out: v (record version), id (ULID, 16 bytes),
// t (Unix nanoseconds), k (Kind), s, g, i (stream, group, item), sc, ky (state
// scope and key), w (worker), f (function), tr (trigger), tt (trigger type),
// val (JSON value), m (trigger metadata), cz and dp (Cause and Depth). Kind
// numbers never change; new kinds are appended. Readers skip unknown keys and
// refuse a record whose version is newer than RecordVersion.
//
// # Framing and checksum
//
// A frame is one encoded record behind its checksum:
//
//	crc32c(payload) uint32 little-endian | payload = msgpack(Record)
//
// The checksum is CRC-32C (Castagnoli). A segment holds entries back to
// back, each uvarint(len(frame)) followed by the frame (the binary format of
// github.com/tidwall/wal v1.2.1, which stored them before this package did),
// and is named by the index of its first entry. No frame is empty: a zero
// where a length belongs ends a segment. A batch is written into one
// segment; the next batch starts a new one once the tail holds
// Options.SegmentSize (20 MiB by default). New segments are spares prepared
// in the background (zero-filled to the segment size and fsynced), so that
// writing into them changes no metadata and fdatasync flushes data alone.
// A finished segment is truncated to its last entry and fsynced before the
// next is created, so only the tail ends in zeros.
//
// # Durability
//
// One sequencer goroutine assigns indexes and group-commits: requests that
// queue during a write form the next batch, written with one write. Under
// SyncAlways a syncer goroutine fdatasyncs the tail segment while the
// sequencer writes the next batches; one sync covers every batch written
// before it started. A record is applied to the
// Projection, and its Append returns, only after its batch is durable under
// the sync policy: fsynced for SyncAlways; written to the OS for SyncInterval
// (fsynced every SyncInterval) and SyncNever. A failed write or fsync fails
// the log for good (ErrFailed); reopening repairs what reached the disk.
//
// # Snapshots
//
// A snapshot file holds the Projection's Snapshot output after applying every
// record up to its index:
//
//	magic "iiisnap\x00" | version u32 | index u64 | length u64 | crc32c(data) u32 | data
//
// (integers little-endian, a 32-byte header). It is written to a temp file,
// fsynced, renamed into place and the directory fsynced, so a crash leaves the
// whole file or none. Snapshots are taken every Options.SnapshotEvery records
// or Options.SnapshotBytes bytes and on request (Snapshot); a snapshot is never
// ahead of the durable log. The two newest are kept. Open restores the newest
// intact one whose index lies in [FirstIndex-1, LastIndex] and replays the
// records after it; damaged snapshots are skipped with a warning.
//
// # Repair
//
// Only the tail can be torn: a segment is fsynced before the next is
// started. On Open the last segment is read frame by frame to its end or to
// a zero where a length belongs. Zeros alone after the last intact frame are
// a spare's unused space and stay. Anything else — a frame truncated or
// failing its checksum, or nonzero bytes after zeros (pages of an
// unacknowledged batch that must not line up behind the next frames) — is
// copied, up to the last nonzero byte, to corrupt-<index>-<unixnano>.bin and
// fsynced, and only then is the segment truncated to its last intact frame.
// A torn or corrupt tail is cut and the bytes kept aside, never read as data
// and never dropped silently. Damage anywhere before the tail is not a torn
// write: Open fails with ErrCorrupt instead of guessing.
//
// # Retention
//
// With Options.RetainBytes or Options.RetainAge set, the oldest segments are
// removed after each snapshot, front first, while a segment is beyond a limit,
// is not the tail, and lies entirely at or before the oldest kept snapshot's
// index. Retention never removes what the oldest kept snapshot does not
// cover, so a damaged newest snapshot still leaves a complete way to rebuild.
//
// # In memory
//
// With Options.InMemory frames are encoded the same way but kept in memory:
// no files, no snapshots, no fsync, nothing survives Close; the retention
// limits drop the oldest records.
//
// # Invariants
//
//   - At most one Log has a directory open (the LOCK file); Scan and
//     LatestSnapshotBefore take no lock and never write.
//   - Records are applied, in index order, and acknowledged only after they
//     are durable under the sync policy.
//   - A frame or snapshot whose checksum fails is never read as data.
//   - A snapshot is never ahead of the durable log.
//   - Retention never removes what the oldest kept snapshot does not cover,
//     nor the tail segment.
package log
