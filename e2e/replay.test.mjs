// `iii replay` and engine::history::query over a history written through the real SDKs:
// every filter, --at (index and time), diff, both output formats, bad input, --follow against a
// live engine, and the wire query returning the same rows as the command.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {
  startEngine, makeWorker, connected, barrier, shutdownWorkers, rejection, waitFor, uid, GENERATIONS,
} from './lib/engine.mjs'
import {
  dataDirConfig, replay, replayOk, replayJson, spawnReplay, toNs, fromNs, withOffset, tableTime,
  columnStarts, cutLine,
} from './lib/history.mjs'

let engine
let dir // --data-dir argument
let A // worker ids
let B
let rows // every record, from `--format json` without a filter
let base // index of the first record after the engine's start batch
const I = {} // index of each named record below

// The history written after the engine's start batch, in log order: [name, kind].
const HISTORY = [
  ['wcA', 'worker.connected'], ['frAlphaA', 'function.registered'], ['frBetaA', 'function.registered'], ['wuA', 'worker.updated'],
  ['o1', 'stream.set'], ['o2', 'stream.set'], ['o3', 'stream.set'], ['u1', 'stream.set'], ['limits', 'state.set'],
  ['upd', 'stream.update'], ['u1b', 'stream.set'], ['del', 'stream.delete'], ['o4', 'stream.set'],
  ['tmp', 'stream.set'], ['tmpdel', 'stream.delete'], ['o3b', 'stream.set'], ['o3c', 'stream.set'], ['late', 'stream.set'],
  ['wdA', 'worker.disconnected'],
  ['wcB', 'worker.connected'], ['frAlphaB', 'function.registered'], ['wuB', 'worker.updated'],
  ['udel', 'stream.delete'], ['flags', 'state.set'],
  ['wdB', 'worker.disconnected'],
]
const UPDATE_OPS = [{ type: 'set', path: 'status', value: 'paid' }, { type: 'increment', path: 'total', by: 5 }]

const idx = (...names) => names.map((n) => I[n])
const range = (a, b) => Array.from({ length: b - a + 1 }, (_, k) => a + k)
const byName = (name) => rows[I[name] - 1]
const at = (args) => replayJson([...args, '--data-dir', dir])

/** Wait until `iii replay` on the live log shows a record (the log is read while it grows). */
const inLog = (args, what) => waitFor(async () => (await replayJson(['--data-dir', dir, ...args])).length > 0, 5000, what, 50)

after(async () => {
  await shutdownWorkers()
  await engine?.cleanup()
})

before(async () => {
  engine = await startEngine({ config: (ctx) => dataDirConfig(ctx) })
  dir = engine.dataDir
  const wa = await makeWorker(GENERATIONS[0], engine.workerUrl, { workerName: 'hist-owner' })
  wa.registerFunction('hist::alpha', async () => ({}), { description: 'Alpha v1' })
  wa.registerFunction('hist::beta', async () => ({}), { description: 'Beta' })
  A = await connected(wa)
  await barrier(wa)
  await inLog(['--kind', 'worker.updated', '--worker', A], 'worker.updated of hist-owner')
  const call = (w, function_id, payload) => w.trigger({ function_id, payload })
  const set = (w, s, g, i, data) => call(w, 'stream::set', { stream_name: s, group_id: g, item_id: i, data })
  const del = (w, s, g, i) => call(w, 'stream::delete', { stream_name: s, group_id: g, item_id: i })
  await set(wa, 'orders', 'eu', 'o1', { total: 10, status: 'new' })
  await set(wa, 'orders', 'eu', 'o2', { total: 20, status: 'new' })
  await set(wa, 'orders', 'us', 'o3', { total: 30 })
  await set(wa, 'users', 'eu', 'o1', { name: 'Ann', addr: { city: 'Oslo', zip: '0150' } })
  await call(wa, 'state::set', { scope: 'cfg', key: 'limits', value: { max: 5 } })
  const u = await call(wa, 'stream::update', { stream_name: 'orders', group_id: 'eu', item_id: 'o1', ops: UPDATE_OPS })
  assert.deepEqual(u.new_value, { total: 15, status: 'paid' })
  await set(wa, 'users', 'eu', 'o1', { name: 'Anna', addr: { city: 'Bergen' } })
  await del(wa, 'orders', 'eu', 'o2')
  await set(wa, 'orders', 'us', 'o4', { total: 40 })
  await set(wa, 'orders', 'us', 'tmp', { x: 1 })
  await del(wa, 'orders', 'us', 'tmp')
  await set(wa, 'orders', 'us', 'o3', { total: 31 })
  await set(wa, 'orders', 'us', 'o3', { total: 30 })
  await set(wa, 'orders', 'eu', 'o1', { total: 99, status: 'late' })
  await wa.shutdown()
  await inLog(['--kind', 'worker.disconnected', '--worker', A], 'worker.disconnected of hist-owner')

  const wb = await makeWorker(GENERATIONS[1], engine.workerUrl, { workerName: 'hist-taker' })
  wb.registerFunction('hist::alpha', async () => ({}), { description: 'Alpha v2' })
  B = await connected(wb)
  await barrier(wb)
  await inLog(['--kind', 'worker.updated', '--worker', B], 'worker.updated of hist-taker')
  await del(wb, 'users', 'eu', 'o1')
  await call(wb, 'state::set', { scope: 'cfg', key: 'flags', value: 'on' })
  await wb.shutdown()
  await inLog(['--kind', 'worker.disconnected', '--worker', B], 'worker.disconnected of hist-taker')
  const stopped = await engine.stop('SIGTERM')
  assert.deepEqual(stopped, { code: 0, signal: null })

  rows = await replayJson(['--data-dir', dir])
  base = rows.findIndex((r) => r.kind === 'worker.connected') + 1
  assert.ok(base > 1, 'no worker.connected in the log')
  HISTORY.forEach(([name], k) => { I[name] = base + k })
})

// ---------------------------------------------------------------- table expectations

/** SUBJECT column of a record (what it is about). */
function subject(r) {
  switch (r.kind.split('.')[0]) {
    case 'stream': return r.kind === 'stream.send' ? `${r.stream}/${r.group}` : `${r.stream}/${r.group}/${r.item}`
    case 'state': return `${r.scope}/${r.key}`
    case 'worker': return r.worker
    case 'function': return r.function
    case 'trigger': return r.trigger
    case 'triggertype': return r.trigger_type
  }
  return ''
}

/** DETAIL column: the fields the subject does not show, then value and meta, compact. */
function detail(r) {
  const s = subject(r)
  const parts = []
  if (r.worker && r.worker !== s) parts.push(`worker=${r.worker}`)
  if (r.function && r.function !== s) parts.push(`function=${r.function}`)
  if (r.trigger_type && r.trigger_type !== s) parts.push(`type=${r.trigger_type}`)
  if (r.value !== undefined) parts.push(JSON.stringify(r.value))
  if (r.meta !== undefined) parts.push(`meta=${JSON.stringify(r.meta)}`)
  return parts.join(' ')
}

/**
 * Splits a table into lines and checks its layout: a header with `names`, every column as wide
 * as its widest cell (header included), columns two spaces apart on every line, no trailing
 * spaces. `rightAligned` columns are padded on the left. Returns the cell rows (header excluded).
 */
function table(lines, names, rightAligned = 0) {
  const starts = columnStarts(lines[0], names)
  assert.equal(starts[0], 0, lines[0])
  const cells = lines.map((l) => {
    assert.equal(l, l.trimEnd(), `trailing spaces: ${JSON.stringify(l)}`)
    return cutLine(l, starts)
  })
  for (let c = 0; c + 1 < names.length; c++) {
    const width = starts[c + 1] - 2 - starts[c]
    assert.equal(width, Math.max(...cells.map((row) => row[c].length)), `column ${names[c]} is as wide as its widest cell`)
    for (let k = 0; k < lines.length; k++) {
      const raw = lines[k].slice(starts[c], starts[c] + width)
      if (c < rightAligned) assert.equal(raw, cells[k][c].padStart(width), `column ${names[c]} is right-aligned: ${JSON.stringify(lines[k])}`)
      else if (lines[k].length > starts[c + 1]) assert.equal(raw, cells[k][c].padEnd(width), `column ${names[c]}: ${JSON.stringify(lines[k])}`)
    }
  }
  return cells.slice(1)
}

/** Lines of a text that must end with a newline. */
function linesOf(text) {
  assert.ok(text.endsWith('\n'), `output ends with a newline: ${JSON.stringify(text.slice(-100))}`)
  return text.slice(0, -1).split('\n')
}

/** Checks a records table against the JSON rows of the same query. */
function checkRecordTable(text, want) {
  const lines = linesOf(text)
  assert.equal(lines.length, want.length + 1, 'a header and one line per record')
  const cells = table(lines, ['INDEX', 'TIME', 'KIND', 'SUBJECT', 'DETAIL'], 1)
  cells.forEach((c, k) => {
    const r = want[k]
    assert.deepEqual(c, [String(r.index), tableTime(r.time), r.kind, subject(r), detail(r)], `table line for record ${r.index}`)
  })
}

// ---------------------------------------------------------------- offline: the stopped engine's log

describe('iii replay on a stopped engine', () => {
  it('no filter: every record in order with index, id, time, kind and the fields of its kind', () => {
    assert.deepEqual(rows.map((r) => r.index), range(1, rows.length), 'indexes 1..N without gaps')
    assert.equal(rows.length, base + HISTORY.length - 1, 'nothing after the last worker.disconnected (SIGTERM adds no record)')
    const ids = rows.map((r) => r.id)
    for (const id of ids) assert.match(id, /^[0-9A-HJKMNP-TV-Z]{26}$/, 'a ULID')
    assert.deepEqual([...ids].sort(), ids, 'ULIDs increase with the index')
    assert.equal(new Set(ids).size, ids.length)
    for (const r of rows) assert.match(r.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/)
    for (let k = 1; k < rows.length; k++) assert.ok(toNs(rows[k].time) >= toNs(rows[k - 1].time), `time of ${k + 1} is not before ${k}`)

    // The engine's start batch: engine.started, its functions, its trigger types (sorted ids).
    const boot = rows.slice(0, base - 1)
    assert.deepEqual(Object.keys(boot[0]), ['index', 'id', 'time', 'kind', 'value'])
    assert.equal(boot[0].kind, 'engine.started')
    assert.match(boot[0].value.version, /\S/)
    const fns = boot.filter((r) => r.kind === 'function.registered')
    const tts = boot.filter((r) => r.kind === 'triggertype.registered')
    assert.deepEqual(boot.slice(1).map((r) => r.kind), [...fns.map(() => 'function.registered'), ...tts.map(() => 'triggertype.registered')])
    for (const r of fns) assert.deepEqual(Object.keys(r), ['index', 'id', 'time', 'kind', 'worker', 'function', 'value'])
    for (const r of [...fns, ...tts]) assert.equal(r.worker, 'engine')
    assert.deepEqual(fns.map((r) => r.function), fns.map((r) => r.function).sort())
    for (const f of ['stream::set', 'stream::update', 'stream::delete', 'state::set', 'engine::history::query']) assert.ok(fns.some((r) => r.function === f), f)
    assert.deepEqual(tts.map((r) => r.trigger_type).sort(), ['engine::functions-available', 'engine::workers-available', 'state', 'stream', 'stream:join', 'stream:leave'])

    // Our history, record by record: exactly these keys and values.
    assert.deepEqual(rows.slice(base - 1).map((r) => r.kind), HISTORY.map(([, k]) => k))
    const exact = (name, fields) => {
      const r = byName(name)
      assert.deepEqual(r, { index: I[name], id: r.id, time: r.time, kind: HISTORY.find(([n]) => n === name)[1], ...fields }, name)
    }
    const wc = { ip_address: '127.0.0.1', listener: String(engine.workerPort), rbac: false }
    exact('wcA', { worker: A, value: wc })
    exact('frAlphaA', { worker: A, function: 'hist::alpha', value: { description: 'Alpha v1' } })
    exact('frBetaA', { worker: A, function: 'hist::beta', value: { description: 'Beta' } })
    for (const [name, w, gen, wname] of [['wuA', A, GENERATIONS[0], 'hist-owner'], ['wuB', B, GENERATIONS[1], 'hist-taker']]) {
      const r = byName(name)
      assert.deepEqual(Object.keys(r), ['index', 'id', 'time', 'kind', 'worker', 'value'])
      assert.equal(r.worker, w)
      assert.deepEqual([r.value.name, r.value.runtime, r.value.version, r.value.pid], [wname, 'node', gen.version, process.pid])
    }
    exact('o1', { stream: 'orders', group: 'eu', item: 'o1', value: { total: 10, status: 'new' } })
    exact('o2', { stream: 'orders', group: 'eu', item: 'o2', value: { total: 20, status: 'new' } })
    exact('o3', { stream: 'orders', group: 'us', item: 'o3', value: { total: 30 } })
    exact('u1', { stream: 'users', group: 'eu', item: 'o1', value: { name: 'Ann', addr: { city: 'Oslo', zip: '0150' } } })
    exact('limits', { scope: 'cfg', key: 'limits', value: { max: 5 } })
    exact('upd', { stream: 'orders', group: 'eu', item: 'o1', value: UPDATE_OPS })
    exact('u1b', { stream: 'users', group: 'eu', item: 'o1', value: { name: 'Anna', addr: { city: 'Bergen' } } })
    exact('del', { stream: 'orders', group: 'eu', item: 'o2' })
    exact('o4', { stream: 'orders', group: 'us', item: 'o4', value: { total: 40 } })
    exact('tmp', { stream: 'orders', group: 'us', item: 'tmp', value: { x: 1 } })
    exact('tmpdel', { stream: 'orders', group: 'us', item: 'tmp' })
    exact('o3b', { stream: 'orders', group: 'us', item: 'o3', value: { total: 31 } })
    exact('o3c', { stream: 'orders', group: 'us', item: 'o3', value: { total: 30 } })
    exact('late', { stream: 'orders', group: 'eu', item: 'o1', value: { total: 99, status: 'late' } })
    exact('wdA', { worker: A })
    exact('wcB', { worker: B, value: wc })
    exact('frAlphaB', { worker: B, function: 'hist::alpha', value: { description: 'Alpha v2' } })
    exact('udel', { stream: 'users', group: 'eu', item: 'o1' })
    exact('flags', { scope: 'cfg', key: 'flags', value: 'on' })
    exact('wdB', { worker: B })
  })

  it('no filter, table: one aligned line per record with the same content', async () => {
    const text = await replayOk(['--data-dir', dir])
    checkRecordTable(text, rows)
    const lines = linesOf(text)
    assert.match(lines[0], /^INDEX {2}TIME {22}KIND {2,}SUBJECT {2,}DETAIL$/)
    // A few lines spelt out.
    const line = (name) => lines[I[name]]
    assert.ok(line('upd').endsWith(`  ${JSON.stringify(UPDATE_OPS)}`), line('upd'))
    assert.ok(line('del').endsWith('  orders/eu/o2'), `a delete has no detail: ${JSON.stringify(line('del'))}`)
    assert.ok(line('frAlphaB').endsWith(`  hist::alpha${' '.repeat(lines[0].indexOf('DETAIL') - lines[0].indexOf('SUBJECT') - 'hist::alpha'.length)}worker=${B} {"description":"Alpha v2"}`), line('frAlphaB'))
    assert.ok(line('wdA').endsWith(`  ${A}`), line('wdA'))
    assert.equal(line('o1').slice(0, 5), String(I.o1).padStart(5))
  })

  it('--log-dir (the log itself) reads the same log as --data-dir', async () => {
    assert.deepEqual(await replayJson(['--log-dir', path.join(dir, 'log')]), rows)
    assert.deepEqual(await replayJson(['--data-dir', path.join(dir, 'log')]), rows)
  })

  const filters = () => [
    [['--stream', 'orders'], idx('o1', 'o2', 'o3', 'upd', 'del', 'o4', 'tmp', 'tmpdel', 'o3b', 'o3c', 'late')],
    [['--stream', 'orders', '--group', 'us'], idx('o3', 'o4', 'tmp', 'tmpdel', 'o3b', 'o3c')],
    [['--group', 'eu'], idx('o1', 'o2', 'u1', 'upd', 'u1b', 'del', 'late', 'udel')],
    [['--item', 'o1'], idx('o1', 'u1', 'upd', 'u1b', 'late', 'udel')],
    [['--stream', 'users', '--item', 'o1'], idx('u1', 'u1b', 'udel')],
    [['--kind', 'stream.delete'], idx('del', 'tmpdel', 'udel')],
    [['--kind', 'stream.update,state.set'], idx('limits', 'upd', 'flags')],
    [['--kind', 'worker.connected, worker.disconnected'], idx('wcA', 'wdA', 'wcB', 'wdB')],
    [['--worker', A], idx('wcA', 'frAlphaA', 'frBetaA', 'wuA', 'wdA')],
    [['--worker', B, '--kind', 'function.registered'], idx('frAlphaB')],
    [['--function', 'hist::alpha'], idx('frAlphaA', 'frAlphaB')],
    [['--function', 'stream::set'], rows.filter((r) => r.function === 'stream::set').map((r) => r.index)],
    [['--from-index', String(I.o2), '--to-index', String(I.del)], range(I.o2, I.del)],
    [['--from-index', String(I.wdB)], [I.wdB]],
    [['--to-index', '3'], [1, 2, 3]],
    [['--kind', 'stream.set', '--limit', '2'], idx('o1', 'o2')],
    [['--from-index', String(I.late), '--limit', '3'], range(I.late, I.late + 2)],
    [['--since', byName('o4').time], range(I.o4, I.wdB)],
    [['--until', byName('o2').time], range(1, I.o2)],
    [['--since', byName('upd').time, '--until', byName('o4').time, '--stream', 'orders'], idx('upd', 'del', 'o4')],
    [['--since', withOffset(toNs(byName('u1b').time), 2), '--kind', 'stream.set'], idx('u1b', 'o4', 'tmp', 'o3b', 'o3c', 'late')],
    [['--since', '24h', '--kind', 'stream.delete'], idx('del', 'tmpdel', 'udel')],
    [['--stream', 'nothing-here'], []],
  ]

  it('each filter selects exactly its records (--format json)', async () => {
    assert.ok(rows.filter((r) => r.function === 'stream::set').length === 1)
    for (const [args, want] of filters()) {
      const got = await replayJson(['--data-dir', dir, ...args])
      assert.deepEqual(got.map((r) => r.index), want, `iii replay ${args.join(' ')}`)
      assert.deepEqual(got, want.map((i) => rows[i - 1]), `iii replay ${args.join(' ')}: the same rows as without a filter`)
    }
    // Time bounds agree with the record times they were taken from.
    const since = toNs(byName('o4').time)
    assert.deepEqual(rows.filter((r) => toNs(r.time) >= since).map((r) => r.index), range(I.o4, I.wdB))
  })

  it('each filter, table: the same records, aligned', async () => {
    for (const [args, want] of filters()) {
      const text = await replayOk(['--data-dir', dir, ...args])
      if (want.length === 0) {
        assert.equal(text, '', `iii replay ${args.join(' ')} prints nothing when nothing matches`)
        continue
      }
      checkRecordTable(text, want.map((i) => rows[i - 1]))
    }
  })

  it('--at an index before a delete: the item is still there, functions belong to their owner then', async () => {
    const point = I.del - 1
    const [st] = await at(['--at', String(point), '--format', 'json'])
    const fnA = (id, description) => ({ id, worker: A, description })
    assert.deepEqual(Object.keys(st), ['index', 'time', 'items', 'state', 'workers', 'functions', 'triggers', 'trigger_types'])
    assert.equal(st.index, point)
    assert.equal(st.time, rows[point - 1].time)
    assert.deepEqual(st.items, [
      { stream: 'orders', group: 'eu', item: 'o1', value: { total: 15, status: 'paid' } },
      { stream: 'orders', group: 'eu', item: 'o2', value: { total: 20, status: 'new' } },
      { stream: 'orders', group: 'us', item: 'o3', value: { total: 30 } },
      { stream: 'users', group: 'eu', item: 'o1', value: { name: 'Anna', addr: { city: 'Bergen' } } },
    ])
    assert.deepEqual(st.state, [{ scope: 'cfg', key: 'limits', value: { max: 5 } }])
    assert.deepEqual(st.workers, [{ id: A, name: 'hist-owner', listener: String(engine.workerPort), ip_address: '127.0.0.1', connected_at: byName('wcA').time }])
    assert.deepEqual(st.functions.filter((f) => f.worker !== 'engine'), [fnA('hist::alpha', 'Alpha v1'), fnA('hist::beta', 'Beta')])
    const builtin = rows.slice(1, base - 1).filter((r) => r.kind === 'function.registered')
    assert.deepEqual(st.functions.filter((f) => f.worker === 'engine'), builtin.map((r) => ({ id: r.function, worker: 'engine', description: r.value.description })))
    assert.deepEqual(st.functions.map((f) => f.id), st.functions.map((f) => f.id).sort(), 'functions sorted by id')
    assert.deepEqual(st.triggers, [])
    assert.deepEqual(st.trigger_types.map((t) => t.id).sort(), ['engine::functions-available', 'engine::workers-available', 'state', 'stream', 'stream:join', 'stream:leave'])
    assert.ok(st.trigger_types.every((t) => t.worker === 'engine' && Object.keys(t).join() === 'id,worker'))

    // One record later the item is gone.
    const [next] = await at(['--at', String(I.del), '--format', 'json'])
    assert.deepEqual(next.items.map((x) => `${x.stream}/${x.group}/${x.item}`), ['orders/eu/o1', 'orders/us/o3', 'users/eu/o1'])

    // After hist-owner left and hist-taker registered hist::alpha: the new owner, beta gone.
    const [later] = await at(['--at', String(I.frAlphaB), '--format', 'json'])
    assert.deepEqual(later.functions.filter((f) => f.worker !== 'engine'), [{ id: 'hist::alpha', worker: B, description: 'Alpha v2' }])
    // (hist-taker's name arrives with worker.updated, the record after this one.)
    assert.deepEqual(later.workers, [{ id: B, listener: String(engine.workerPort), ip_address: '127.0.0.1', connected_at: byName('wcB').time }])
    assert.deepEqual(later.items.map((x) => `${x.stream}/${x.group}/${x.item}`), ['orders/eu/o1', 'orders/us/o3', 'orders/us/o4', 'users/eu/o1'])
    // And the item deleted by hist-taker: there before its delete, not after.
    assert.ok((await at(['--at', String(I.udel - 1), '--format', 'json']))[0].items.some((x) => x.stream === 'users'))
    assert.ok(!(await at(['--at', String(I.udel), '--format', 'json']))[0].items.some((x) => x.stream === 'users'))
  })

  it('--at the last record (restored from the shutdown snapshot) and --at 0', async () => {
    const last = rows.length
    const [st] = await at(['--at', String(last), '--format', 'json'])
    assert.equal(st.index, last)
    assert.equal(st.time, rows[last - 1].time)
    assert.deepEqual(st.items, [
      { stream: 'orders', group: 'eu', item: 'o1', value: { total: 99, status: 'late' } },
      { stream: 'orders', group: 'us', item: 'o3', value: { total: 30 } },
      { stream: 'orders', group: 'us', item: 'o4', value: { total: 40 } },
    ])
    assert.deepEqual(st.state, [{ scope: 'cfg', key: 'limits', value: { max: 5 } }, { scope: 'cfg', key: 'flags', value: 'on' }])
    assert.deepEqual(st.workers, [])
    assert.deepEqual(st.functions.filter((f) => f.worker !== 'engine'), [])
    assert.deepEqual(await at(['--at', '0', '--format', 'json']), [{ index: 0, items: [], state: [], workers: [], functions: [], triggers: [], trigger_types: [] }])
    assert.equal(await replayOk(['--at', '0', '--data-dir', dir]), 'state at index 0\n(empty)\n')
  })

  it('the worker listener recorded in worker.connected shows in --at', async () => {
    // worker.connected records {"listener": "<port>", ...}; --at shows it from the registry.
    const [st] = await at(['--at', String(I.wcA), '--format', 'json'])
    assert.equal(st.workers.length, 1)
    assert.ok(String(st.workers[0].listener ?? '').includes(String(engine.workerPort)),
      `worker ${JSON.stringify(st.workers[0])} should carry the listener ${engine.workerPort} from ${JSON.stringify(byName('wcA').value)}`)
  })

  it('--at a time equals --at the index of the record written then (Z and +02:00 forms)', async () => {
    const point = I.del - 1
    const byIndex = await at(['--at', String(point), '--format', 'json'])
    const t = rows[point - 1].time
    assert.deepEqual(await at(['--at', t, '--format', 'json']), byIndex)
    assert.deepEqual(await at(['--at', withOffset(toNs(t), 2), '--format', 'json']), byIndex)
    // One nanosecond before that record: the state of the record before it.
    const [prev] = await at(['--at', fromNs(toNs(t) - 1n), '--format', 'json'])
    assert.equal(prev.index, point - 1)
  })

  it('--at, table: a heading, then aligned sections', async () => {
    const point = I.del - 1
    const text = await replayOk(['--at', String(point), '--data-dir', dir])
    const lines = linesOf(text)
    assert.equal(lines[0], `state at index ${point} (${tableTime(rows[point - 1].time)})`)
    assert.equal(lines[1], '')
    // Sections are separated by one empty line.
    const sections = []
    let cur = []
    for (const l of lines.slice(2)) {
      if (l === '') { sections.push(cur); cur = [] } else cur.push(l)
    }
    sections.push(cur)
    assert.deepEqual(sections.map((s) => s[0].split(/ {2,}/)[0]), ['STREAM', 'SCOPE', 'WORKER', 'FUNCTION', 'TRIGGER TYPE'])
    assert.deepEqual(table(sections[0], ['STREAM', 'GROUP', 'ITEM', 'VALUE']), [
      ['orders', 'eu', 'o1', '{"total":15,"status":"paid"}'],
      ['orders', 'eu', 'o2', '{"total":20,"status":"new"}'],
      ['orders', 'us', 'o3', '{"total":30}'],
      ['users', 'eu', 'o1', '{"name":"Anna","addr":{"city":"Bergen"}}'],
    ])
    assert.deepEqual(table(sections[1], ['SCOPE', 'KEY', 'VALUE']), [['cfg', 'limits', '{"max":5}']])
    assert.deepEqual(table(sections[2], ['WORKER', 'NAME', 'CONNECTED', 'FUNCTIONS']), [[A, 'hist-owner', tableTime(byName('wcA').time), '2']])
    const fns = table(sections[3], ['FUNCTION', 'WORKER'])
    assert.deepEqual(fns.filter((f) => f[1] !== 'engine'), [['hist::alpha', A], ['hist::beta', A]])
    assert.equal(fns.length, rows.slice(1, base - 1).filter((r) => r.kind === 'function.registered').length + 2)
    assert.deepEqual(table(sections[4], ['TRIGGER TYPE', 'WORKER']).map((r) => r.join(' ')),
      ['engine::functions-available engine', 'engine::workers-available engine', 'state engine', 'stream engine', 'stream:join engine', 'stream:leave engine'])
  })

  const DIFF = () => [
    { change: 'changed', stream: 'orders', group: 'eu', item: 'o1', old: { total: 10, status: 'new' }, new: { total: 15, status: 'paid' },
      fields: [{ path: 'status', old: 'new', new: 'paid' }, { path: 'total', old: 10, new: 15 }] },
    { change: 'deleted', stream: 'orders', group: 'eu', item: 'o2', old: { total: 20, status: 'new' } },
    { change: 'created', stream: 'orders', group: 'us', item: 'o4', new: { total: 40 } },
    { change: 'changed', stream: 'users', group: 'eu', item: 'o1',
      old: { name: 'Ann', addr: { city: 'Oslo', zip: '0150' } }, new: { name: 'Anna', addr: { city: 'Bergen' } },
      fields: [{ path: 'addr.city', old: 'Oslo', new: 'Bergen' }, { path: 'addr.zip', old: '0150' }, { path: 'name', old: 'Ann', new: 'Anna' }] },
  ]

  it('diff --from A --to B: created, changed field by field, deleted (json)', async () => {
    // Between "limits" and "o3c": o1 updated, users/eu/o1 rewritten, o2 deleted, o4 created;
    // tmp created and deleted again and o3 written back to its value are not changes; "late"
    // comes after B.
    const A_ = String(I.limits)
    const B_ = String(I.o3c)
    assert.deepEqual(await replayJson(['diff', '--from', A_, '--to', B_, '--data-dir', dir]), DIFF())
    // The same points given as times.
    assert.deepEqual(await replayJson(['diff', '--from', byName('limits').time, '--to', byName('o3c').time, '--data-dir', dir]), DIFF())
    // Without --to: up to the end (o1 now "late", users/eu/o1 deleted too).
    const toEnd = await replayJson(['diff', '--from', A_, '--data-dir', dir])
    assert.deepEqual(toEnd.map((c) => `${c.change} ${c.stream}/${c.group}/${c.item}`),
      ['changed orders/eu/o1', 'deleted orders/eu/o2', 'created orders/us/o4', 'deleted users/eu/o1'])
    assert.deepEqual(toEnd[0].fields, [{ path: 'status', old: 'new', new: 'late' }, { path: 'total', old: 10, new: 99 }])
    assert.deepEqual(await replayJson(['diff', '--from', String(rows.length), '--data-dir', dir]), [])
  })

  it('diff, table: a summary line, then CHANGE ITEM FIELD OLD NEW aligned', async () => {
    const A_ = I.limits
    const B_ = I.o3c
    const lines = linesOf(await replayOk(['diff', '--from', String(A_), '--to', String(B_), '--data-dir', dir]))
    assert.equal(lines[0], `changes from ${A_} to ${B_}: 1 created, 2 changed, 1 deleted`)
    assert.equal(lines[1], '')
    assert.deepEqual(table(lines.slice(2), ['CHANGE', 'ITEM', 'FIELD', 'OLD', 'NEW']), [
      ['changed', 'orders/eu/o1', 'status', '"new"', '"paid"'],
      ['', '', 'total', '10', '15'],
      ['deleted', 'orders/eu/o2', '', '{"total":20,"status":"new"}', ''],
      ['created', 'orders/us/o4', '', '', '{"total":40}'],
      ['changed', 'users/eu/o1', 'addr.city', '"Oslo"', '"Bergen"'],
      ['', '', 'addr.zip', '"0150"', ''],
      ['', '', 'name', '"Ann"', '"Anna"'],
    ])
    const last = rows.length
    assert.equal(await replayOk(['diff', '--from', String(last), '--data-dir', dir]), `no changes from ${last} to ${last}\n`)
  })

  it('bad input: one line on stderr, non-zero exit, no stack trace', async () => {
    const notALog = mkdtempSync(path.join(os.tmpdir(), 'iii-notalog-'))
    const aFile = path.join(notALog, 'file.txt')
    writeFileSync(aFile, 'not a log\n')
    const last = rows.length
    const cases = [
      [['--kind', 'stream.nope'], 2, /unknown record kind "stream\.nope"/],
      [['--kind', 'stream.set,bogus'], 2, /unknown record kind "bogus"/],
      [['--since', 'yesterday'], 2, /since.*"yesterday"/],
      [['--until', '2026-13-45T99:00:00Z'], 2, /until.*2026-13-45T99:00:00Z/],
      [['--at', 'soon'], 2, /--at.*"soon"/],
      [['--from-index', 'ten'], 2, /from_index "ten"/],
      [['--from-index', String(last + 1)], 1, new RegExp(`from_index ${last + 1} is past the end of the log \\(last index ${last}\\)`)],
      [['--to-index', String(last + 100)], 1, new RegExp(`to_index ${last + 100} is past the end of the log \\(last index ${last}\\)`)],
      [['--at', String(last + 1)], 1, new RegExp(`index ${last + 1} is past the end of the log \\(last index ${last}\\)`)],
      [['diff', '--from', String(I.o3c), '--to', String(I.limits)], null, new RegExp(`to ${I.limits} is before from ${I.o3c}`)],
      [['diff', '--from', String(last + 5)], 1, /past the end/],
      [['--format', 'yaml'], 2, /--format must be table or json, got "yaml"/],
      [['--limit', '-1'], 2, /limit -1: must not be negative/],
      [['--from-index', '5', '--to-index', '3'], 2, /from_index 5 is after to_index 3/],
      [['--at', '5', '--stream', 'orders'], 2, /--at/],
    ]
    // Every case is checked; the failures are reported together.
    const problems = []
    const check = (what, cond, msg) => { if (!cond) problems.push(`${what}: ${msg}`) }
    for (const [args, code, re] of cases) {
      const r = await replay([...args, '--data-dir', dir])
      const what = `iii replay ${args.join(' ')}`
      if (code === null) check(what, r.code > 0, `non-zero exit, got ${r.code}`)
      else check(what, r.code === code, `exit ${code}, got ${r.code}`)
      check(what, r.stdout === '', `nothing on stdout (a point past the end must be reported before any record is printed), got ${r.stdout.split('\n').length - 1} lines`)
      check(what, /^iii replay: [^\n]+\n$/.test(r.stderr), `one line on stderr, got ${JSON.stringify(r.stderr)}`)
      check(what, re.test(r.stderr), `stderr matches ${re}: ${JSON.stringify(r.stderr)}`)
      check(what, !/goroutine|panic/.test(r.stderr), 'no stack trace')
    }
    for (const args of [['--data-dir', notALog], ['--data-dir', aFile], ['--log-dir', dir], ['--data-dir', path.join(notALog, 'missing')]]) {
      const r = await replay(args)
      const what = `iii replay ${args.join(' ')}`
      check(what, r.code === 1, `exit 1, got ${r.code}`)
      check(what, r.stdout === '', 'nothing on stdout')
      check(what, /^iii replay: [^\n]*not a log directory[^\n]*\n$/.test(r.stderr), `one line naming the problem, got ${JSON.stringify(r.stderr)}`)
      check(what, !/goroutine|panic/.test(r.stderr), 'no stack trace')
    }
    rmSync(notALog, { recursive: true, force: true })
    assert.deepEqual(problems, [])
  })
})

// ---------------------------------------------------------------- live: the same log, engine running again

describe('live engine', () => {
  before(async () => {
    await engine.restart()
  })

  it('--follow prints new records as they are written (json and table)', async () => {
    const gen = GENERATIONS[0]
    const w = await makeWorker(gen, engine.workerUrl, { workerName: uid('follow') })
    await connected(w)
    const S = uid('live')
    const set = (item, data) => w.trigger({ function_id: 'stream::set', payload: { stream_name: S, group_id: 'g', item_id: item, data } })
    await set('warm', { n: 0 }) // already there when the followers start
    const json = spawnReplay(['--data-dir', dir, '--follow', '--format', 'json', '--stream', S])
    const tbl = spawnReplay(['--data-dir', dir, '--follow', '--stream', S])
    try {
      await json.waitLines(1)
      await tbl.waitLines(2)
      for (let n = 1; n <= 3; n++) await set(`i${n}`, { n })
      const got = (await json.waitLines(4, 5000)).map((l) => JSON.parse(l))
      await tbl.waitLines(5, 5000)
      // Exactly what a plain query of the log returns now.
      const want = await replayJson(['--data-dir', dir, '--stream', S])
      assert.deepEqual(want.map((r) => [r.item, r.value]), [['warm', { n: 0 }], ['i1', { n: 1 }], ['i2', { n: 2 }], ['i3', { n: 3 }]])
      assert.deepEqual(got, want)
      assert.equal(tbl.lines.filter((l) => l.startsWith('INDEX')).length, 1, 'one header')
      checkRecordTable(`${tbl.lines.join('\n')}\n`, want)
    } finally {
      const rj = await json.stop('SIGTERM')
      const rt = await tbl.stop('SIGTERM')
      assert.deepEqual(rj, { code: 0, signal: null }, `follower exits cleanly on SIGTERM; stderr: ${json.stderr()}`)
      assert.deepEqual(rt, { code: 0, signal: null }, `follower exits cleanly on SIGTERM; stderr: ${tbl.stderr()}`)
      assert.equal(json.stderr() + tbl.stderr(), '')
      await w.shutdown()
    }
    assert.equal(json.lines.length, 4, 'nothing else printed')
  })

  for (const gen of GENERATIONS) {
    it(`engine::history::query from iii-sdk@${gen.name} returns the rows of iii replay --format json`, async () => {
      const w = await makeWorker(gen, engine.workerUrl, { workerName: uid('query') })
      await connected(w)
      const q = (payload) => w.trigger({ function_id: 'engine::history::query', payload })
      const cases = [
        [{ stream: 'orders' }, ['--stream', 'orders']],
        [{ stream: 'orders', group: 'us' }, ['--stream', 'orders', '--group', 'us']],
        [{ item: 'o1', limit: 2 }, ['--item', 'o1', '--limit', '2']],
        [{ kind: 'stream.set,stream.delete' }, ['--kind', 'stream.set,stream.delete']],
        [{ worker: A }, ['--worker', A]],
        [{ function: 'hist::alpha' }, ['--function', 'hist::alpha']],
        [{ from_index: I.o2, to_index: I.del }, ['--from-index', String(I.o2), '--to-index', String(I.del)]],
        [{ since: byName('upd').time, until: byName('o4').time }, ['--since', byName('upd').time, '--until', byName('o4').time]],
        [{ kind: 'state.set' }, ['--kind', 'state.set']],
      ]
      for (const [filter, args] of cases) {
        const res = await q(filter)
        assert.deepEqual(Object.keys(res), ['records'])
        const want = await replayJson(['--data-dir', dir, ...args])
        assert.ok(want.length > 0, `${args.join(' ')} selects something`)
        assert.deepEqual(res.records, want, `engine::history::query ${JSON.stringify(filter)}`)
      }
      // The exact rows, not just the same as the command.
      assert.deepEqual((await q({ function: 'hist::alpha' })).records, [byName('frAlphaA'), byName('frAlphaB')])

      const bad = [
        [{ kind: 'stream.nope' }, 'deserialization_error', /stream\.nope/],
        [{ bogus: 1 }, 'deserialization_error', /bogus/],
        [{ since: 'yesterday' }, 'deserialization_error', /yesterday/],
        [{ from_index: 'ten' }, 'deserialization_error', /from_index/],
        [{ from_index: 10_000_000 }, 'INVALID_ARGUMENTS', /from_index 10000000 is past the end of the log/],
      ]
      for (const [filter, code, re] of bad) {
        const e = await rejection(q(filter), `engine::history::query ${JSON.stringify(filter)}`)
        assert.equal(e.code, code, `${JSON.stringify(filter)} -> ${e.code}: ${e.message}`)
        assert.match(e.message, re)
      }
      await w.shutdown()
    })
  }
})
