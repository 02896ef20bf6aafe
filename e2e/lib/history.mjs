// Helpers for the durability and history tests: reading the log's files the way the Go code
// documents them (log/segment.go, log/frame.go, log/snapshot.go), running `iii replay`, and
// taking apart its JSON and table output.
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import WebSocket from 'ws'
import { III_BIN, runIII } from './engine.mjs'

/**
 * A config whose log lives at `<data-dir>/log` (file_based stores without a file_path), so that
 * `iii replay --data-dir <data-dir>` finds it. `store` may be 'in_memory'.
 */
export function dataDirConfig({ workerPort, streamPort }, engine = {}, store = 'file_based') {
  return {
    workers: [
      { name: 'iii-worker-manager', config: { port: workerPort } },
      { name: 'iii-stream', config: { port: streamPort, adapter: { name: 'kv', config: { store_method: store } } } },
      { name: 'iii-state', config: { adapter: { name: 'kv', config: { store_method: store } } } },
    ],
    engine: { sync: 'always', ...engine },
  }
}

// ---------------------------------------------------------------- files of the log

/** Segment files of `<logDir>/wal`, oldest first: [{first, file}]. */
export function segments(logDir) {
  const walDir = path.join(logDir, 'wal')
  return readdirSync(walDir)
    .filter((n) => /^\d{20}$/.test(n))
    .sort()
    .map((n) => ({ first: Number(n), file: path.join(walDir, n) }))
}

/**
 * Entries of one segment file: uvarint(length) + frame, back to back, up to the end of the file or
 * a zero where a length belongs (no frame is empty: the zeros are the unused rest of a segment the
 * engine prepared ahead). Each entry is {start, payload, end}: the entry's first byte, its frame's
 * first byte (the CRC-32C), and the byte after it. Throws if an entry is cut short or anything but
 * zeros follows the entries.
 */
export function entries(buf) {
  const out = []
  let off = 0
  while (off < buf.length && buf[off] !== 0) {
    let len = 0
    let shift = 0
    let p = off
    for (;;) {
      if (p >= buf.length) throw new Error(`segment ends inside a length prefix at ${off}`)
      const c = buf[p++]
      len += (c & 0x7f) * 2 ** shift
      shift += 7
      if (c < 0x80) break
    }
    if (p + len > buf.length) throw new Error(`segment ends inside the entry at ${off} (${len} bytes)`)
    out.push({ start: off, payload: p, end: p + len })
    off = p + len
  }
  const rest = buf.subarray(off)
  if (rest.some((b) => b !== 0)) throw new Error(`nonzero bytes after the entries end at ${off}`)
  return out
}

/** buf without its trailing zero bytes: what the engine keeps aside from a damaged tail. */
export function trimZeros(buf) {
  let end = buf.length
  while (end > 0 && buf[end - 1] === 0) end--
  return buf.subarray(0, end)
}

/** The log's records as the segments hold them: {count, last} (last index, 0 if empty). */
export function logExtent(logDir) {
  const segs = segments(logDir)
  let count = 0
  for (const s of segs) count += entries(readFileSync(s.file)).length
  const first = segs.length ? segs[0].first : 1
  return { count, last: count ? first + count - 1 : 0 }
}

const CRC32C = (() => {
  const t = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
    t[n] = c >>> 0
  }
  return t
})()

/** CRC-32C (Castagnoli), the checksum of frames and snapshots. */
export function crc32c(buf) {
  let c = 0xffffffff
  for (let i = 0; i < buf.length; i++) c = CRC32C[(c ^ buf[i]) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

/** Snapshot files of `<logDir>/snapshots`: [{index, file, name}], ascending. */
export function snapshots(logDir) {
  const dir = path.join(logDir, 'snapshots')
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((n) => /^\d{20}\.snap$/.test(n))
    .sort()
    .map((n) => ({ index: Number(n.slice(0, 20)), file: path.join(dir, n), name: n }))
}

/**
 * Parses a snapshot file: magic "iiisnap\0" | version u32 | index u64 | length u64 | crc32c u32 |
 * data. Returns {version, index, length, crc, data, crcOk}.
 */
export function readSnapshotFile(file) {
  const b = readFileSync(file)
  if (b.subarray(0, 8).toString('latin1') !== 'iiisnap\0') throw new Error(`${file}: bad snapshot magic`)
  const data = b.subarray(32)
  const crc = b.readUInt32LE(28)
  return {
    version: b.readUInt32LE(8),
    index: Number(b.readBigUInt64LE(12)),
    length: Number(b.readBigUInt64LE(20)),
    crc,
    data,
    crcOk: crc32c(data) === crc,
  }
}

/** Count of non-overlapping occurrences of `needle` in `buf`. */
export function occurrences(buf, needle) {
  const n = Buffer.from(needle)
  let count = 0
  for (let i = buf.indexOf(n); i >= 0; i = buf.indexOf(n, i + n.length)) count++
  return count
}

/**
 * Rewrites a snapshot so it holds other data while staying intact: each [from, to] pair of
 * equal-length strings is replaced (it must occur exactly once) and the checksum is fixed.
 */
export function tamperSnapshot(file, pairs) {
  const b = Buffer.from(readFileSync(file))
  const data = b.subarray(32)
  for (const [from, to] of pairs) {
    if (from.length !== to.length) throw new Error('tamperSnapshot: replacement must keep the length')
    const n = occurrences(data, from)
    if (n !== 1) throw new Error(`tamperSnapshot: ${JSON.stringify(from)} occurs ${n} times in ${file}`)
    Buffer.from(to).copy(data, data.indexOf(Buffer.from(from)))
  }
  b.writeUInt32LE(crc32c(data), 28)
  writeFileSync(file, b)
}

/** Every file (not directory) under `dir`, relative paths; [] if `dir` does not exist. */
export function filesUnder(dir) {
  if (!existsSync(dir)) return []
  const out = []
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isDirectory()) out.push(path.relative(dir, path.join(e.parentPath ?? e.path, e.name)))
  }
  return out.sort()
}

// ---------------------------------------------------------------- iii replay

/** `iii replay <args>` to completion: {code, signal, stdout, stderr}. */
export const replay = (args, opts) => runIII(['replay', ...args], opts)

/** Runs `iii replay`, requires exit 0 and an empty stderr, returns stdout. */
export async function replayOk(args) {
  const r = await replay(args)
  if (r.code !== 0 || r.stderr !== '') {
    throw new Error(`iii replay ${args.join(' ')} -> exit ${r.code} signal ${r.signal}\nstderr: ${r.stderr}\nstdout: ${r.stdout.slice(0, 2000)}`)
  }
  return r.stdout
}

/** Runs `iii replay --format json`, returns the parsed lines. */
export async function replayJson(args) {
  return jsonLines(await replayOk([...args, '--format', 'json']))
}

/** Parses JSON Lines; every line must be JSON and the text must end with a newline. */
export function jsonLines(text) {
  if (text === '') return []
  if (!text.endsWith('\n')) throw new Error(`output does not end with a newline: ${JSON.stringify(text.slice(-200))}`)
  return text.slice(0, -1).split('\n').map((l) => JSON.parse(l))
}

/**
 * `iii replay <args>` left running (for --follow): collects stdout lines.
 * Returns {proc, lines, stderr(), waitLines(n, ms), stop(signal) -> {code, signal}}.
 */
export function spawnReplay(args) {
  const proc = spawn(III_BIN, ['replay', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines = []
  let buf = ''
  let stderr = ''
  const waiters = new Set()
  proc.stdout.on('data', (c) => {
    buf += c
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i))
      buf = buf.slice(i + 1)
    }
    for (const w of waiters) w()
  })
  proc.stderr.on('data', (c) => { stderr += c })
  let exitInfo
  const exited = new Promise((r) => proc.once('exit', (code, signal) => { exitInfo = { code, signal }; for (const w of waiters) w(); r(exitInfo) }))
  process.on('exit', () => { try { proc.kill('SIGKILL') } catch {} })
  return {
    proc,
    lines,
    exited,
    stderr: () => stderr,
    /** Resolves once at least `n` lines were printed. */
    waitLines(n, ms = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (lines.length >= n) { done(); resolve(lines.slice()) } else if (exitInfo) { done(); reject(new Error(`iii replay ${args.join(' ')} exited (${JSON.stringify(exitInfo)}) after ${lines.length} of ${n} lines; stderr: ${stderr}`)) }
        }
        const timer = setTimeout(() => { done(); reject(new Error(`iii replay ${args.join(' ')} printed ${lines.length} of ${n} lines within ${ms} ms:\n${lines.join('\n')}\nstderr: ${stderr}`)) }, ms)
        const done = () => { clearTimeout(timer); waiters.delete(check) }
        waiters.add(check)
        check()
      })
    },
    async stop(signal = 'SIGTERM') {
      if (!exitInfo) proc.kill(signal)
      const t = setTimeout(() => { try { proc.kill('SIGKILL') } catch {} }, 5000)
      const r = await exited
      clearTimeout(t)
      return r
    },
  }
}

// ---------------------------------------------------------------- times and tables

/** RFC 3339 text with up to nanoseconds -> BigInt Unix nanoseconds. */
export function toNs(text) {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(text)
  if (!m) throw new Error(`not an RFC 3339 time: ${text}`)
  const ms = Date.parse(`${m[1]}${m[3]}`)
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'))
}

/** BigInt Unix nanoseconds -> RFC 3339 in UTC with all nine fraction digits. */
export function fromNs(ns) {
  const ms = Number(ns / 1_000_000n)
  const base = new Date(ms).toISOString().slice(0, 19)
  return `${base}.${String(ns % 1_000_000_000n).padStart(9, '0')}Z`
}

/** The same instant written with a +HH:MM offset (a different but equal RFC 3339 text). */
export function withOffset(ns, hours) {
  const shifted = ns + BigInt(hours) * 3_600_000_000_000n
  const t = fromNs(shifted)
  return `${t.slice(0, -1)}+${String(hours).padStart(2, '0')}:00`
}

/** How the table shows a record time: UTC, milliseconds (truncated), fixed width. */
export function tableTime(rfc3339) {
  const ns = toNs(rfc3339)
  const t = fromNs(ns)
  return `${t.slice(0, 23)}Z`
}

/**
 * Column starts of a table from its header line: the offset of each header word. Headers may
 * contain one space (e.g. "TRIGGER TYPE"); columns are two spaces apart.
 */
export function columnStarts(header, names) {
  const starts = []
  let from = 0
  for (const n of names) {
    const i = header.indexOf(n, from)
    if (i < 0) throw new Error(`header ${JSON.stringify(header)} has no column ${n}`)
    starts.push(i)
    from = i + n.length
  }
  return starts
}

/**
 * Cuts a table line into cells at the given column starts. Every cell but the last is padded to
 * its column; columns are separated by (at least) two spaces, so the two characters before each
 * column start must be spaces whenever the line reaches that column.
 */
export function cutLine(line, starts) {
  const cells = []
  for (let i = 0; i < starts.length; i++) {
    if (i > 0 && line.length > starts[i] && line.slice(starts[i] - 2, starts[i]) !== '  ') {
      throw new Error(`line is not aligned at column ${i} (offset ${starts[i]}): ${JSON.stringify(line)}`)
    }
    const end = i + 1 < starts.length ? starts[i + 1] : line.length
    cells.push(line.slice(starts[i], end).trim())
  }
  return cells
}

// ---------------------------------------------------------------- load

/**
 * Sends every invokefunction frame at once on one raw worker connection and waits for all the
 * invocationresult frames. Returns the results keyed by invocation_id.
 */
export async function pipeline(url, calls, timeoutMs = 30000) {
  const ws = new WebSocket(url, { perMessageDeflate: false })
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  const results = new Map()
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${results.size} of ${calls.length} results within ${timeoutMs} ms`)), timeoutMs)
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString())
      if (m.type !== 'invocationresult') return
      results.set(m.invocation_id, m)
      if (results.size === calls.length) { clearTimeout(timer); resolve() }
    })
    ws.once('close', () => { clearTimeout(timer); reject(new Error(`connection closed after ${results.size} of ${calls.length} results`)) })
  })
  done.catch(() => {})
  for (const c of calls) ws.send(JSON.stringify({ type: 'invokefunction', ...c }))
  await done
  ws.close()
  return results
}
