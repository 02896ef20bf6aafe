// Durability of the write-ahead log with the real binary: torn and corrupt tails, the snapshot
// path on a large log, the snapshot taken at SIGTERM, store_method in_memory, sync policies.
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import {
  startEngine, makeWorker, connected, shutdownWorkers, rawWorker, waitFor, sleep, uid, GENERATIONS,
} from './lib/engine.mjs'
import {
  dataDirConfig, segments, entries, trimZeros, logExtent, snapshots, readSnapshotFile, tamperSnapshot,
  occurrences, filesUnder, pipeline, replayJson,
} from './lib/history.mjs'

const engines = []
after(async () => {
  await shutdownWorkers()
  for (const e of engines) await e.cleanup()
})

async function start(opts) {
  const e = await startEngine(opts)
  engines.push(e)
  return e
}

/** The default harness config keeps the log at the stream module's file_path. */
const storeDir = (engine) => path.join(engine.dataDir, 'stream_store')

/** The fields of the engine's `log opened` line (the last one in the current run's output). */
function logOpened(engine) {
  const lines = engine.logs().split('\n').filter((l) => l.includes('msg="log opened"'))
  assert.equal(lines.length, 1, `expected one "log opened" line in this run:\n${engine.logs().slice(0, 3000)}`)
  const f = {}
  for (const m of lines[0].matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g)) f[m[1]] = m[2]
  return f
}

async function ok(c, fn, data) {
  const r = await c.call(fn, data, { timeoutMs: 15000 })
  assert.equal(r.error, undefined, `${fn} ${JSON.stringify(data).slice(0, 200)} -> ${JSON.stringify(r.error)}`)
  return r
}

/** stream::list through an SDK worker, retried while it reconnects to a restarted engine. */
const sdkList = (w, stream_name, group_id) =>
  waitFor(() => w.trigger({ function_id: 'stream::list', payload: { stream_name, group_id }, timeoutMs: 3000 }), 15000, `stream::list ${stream_name}/${group_id}`)

describe('torn or corrupt tail after SIGKILL', () => {
  const cases = [
    { name: 'last record truncated in the middle', gen: GENERATIONS[0], damage: 'truncate', cause: /cause="?torn frame/ },
    { name: 'one byte flipped inside the last record', gen: GENERATIONS[1], damage: 'flip', cause: /cause="frame checksum mismatch/ },
  ]
  for (const tc of cases) {
    it(`${tc.name} (iii-sdk@${tc.gen.name}): repaired, kept aside, everything else intact, writable`, async () => {
      const engine = await start()
      const logDir = storeDir(engine)
      const w = await makeWorker(tc.gen, engine.workerUrl, { workerName: uid('torn') })
      const wid = await connected(w)
      // Wait until the worker's own registration records are in, so the last record is ours.
      await waitFor(async () => (await w.trigger({ function_id: 'engine::history::query', payload: { kind: 'worker.updated', worker: wid } })).records.length === 1,
        5000, 'worker.updated in the history')
      const S = uid('torn')
      const N = 20
      const value = (i) => ({ i, v: `value-${i}`, nested: { even: i % 2 === 0 } })
      for (let i = 0; i < N; i++) {
        const r = await w.trigger({ function_id: 'stream::set', payload: { stream_name: S, group_id: 'g', item_id: `item-${i}`, data: value(i) } })
        assert.deepEqual(r, { old_value: null, new_value: value(i) })
      }
      await engine.kill()

      const segs = segments(logDir)
      assert.ok(segs.length >= 1, 'no WAL segment')
      const seg = segs.at(-1)
      const before = readFileSync(seg.file)
      const ents = entries(before) // the log is clean before we damage it
      const last = ents.at(-1)
      const damagedIndex = seg.first + ents.length - 1
      // A killed engine leaves its tail as it was prepared: the entries, then zeros.
      assert.ok(before.subarray(last.end).every((b) => b === 0))
      assert.ok(before.subarray(last.payload, last.end).includes(Buffer.from(`item-${N - 1}`)),
        'the last record in the WAL should be the last stream::set')
      assert.ok(before.subarray(ents.at(-2).payload, ents.at(-2).end).includes(Buffer.from(`item-${N - 2}`)))

      let kept // the bytes the engine must remove and keep aside
      if (tc.damage === 'truncate') {
        const cut = last.payload + Math.floor((last.end - last.payload) / 2)
        truncateSync(seg.file, cut)
        kept = trimZeros(before.subarray(last.start, cut))
      } else {
        const damaged = Buffer.from(before)
        const at = last.payload + 4 + Math.floor((last.end - last.payload - 4) / 2)
        damaged[at] ^= 0x5a
        writeFileSync(seg.file, damaged)
        kept = trimZeros(damaged.subarray(last.start))
      }

      await engine.restart()
      const logs = engine.logs()
      const warn = logs.split('\n').filter((l) => l.includes('level=WARN') && l.includes('torn or corrupt tail'))
      assert.equal(warn.length, 1, `expected one warning about the damaged tail:\n${logs.slice(0, 3000)}`)
      assert.match(warn[0], new RegExp(`\\bindex=${damagedIndex}\\b`), `the warning must name index ${damagedIndex}: ${warn[0]}`)
      assert.match(warn[0], new RegExp(`\\bbytes=${kept.length}\\b`), warn[0])
      assert.match(warn[0], new RegExp(`\\boffset=${last.start}\\b`), warn[0])
      assert.match(warn[0], tc.cause, warn[0])
      assert.equal(logOpened(engine).last_index, String(damagedIndex - 1), 'the log reopens at the record before the damaged one')

      const corrupt = readdirSync(logDir).filter((n) => n.startsWith('corrupt-'))
      assert.equal(corrupt.length, 1, `one kept-aside file in ${logDir}: ${corrupt}`)
      const m = /^corrupt-(\d+)-(\d+)\.bin$/.exec(corrupt[0])
      assert.ok(m, corrupt[0])
      assert.equal(Number(m[1]), damagedIndex)
      assert.ok(warn[0].includes(`kept=${path.join(logDir, corrupt[0])}`), `the warning names the kept file: ${warn[0]}`)
      assert.ok(readFileSync(path.join(logDir, corrupt[0])).equals(kept), 'the kept-aside file holds exactly the removed bytes')
      // The segment keeps every intact byte; what follows them now are this run's records.
      const after1 = readFileSync(seg.file)
      assert.ok(after1.subarray(0, last.start).equals(before.subarray(0, last.start)))
      const ents1 = entries(after1) // parses cleanly to the end
      assert.equal(ents1[ents.length - 1].start, last.start, 'the next record starts where the intact ones end')
      assert.ok(after1.subarray(ents1[ents.length - 1].payload, ents1[ents.length - 1].end).includes(Buffer.from('"version"')),
        'the record after the intact ones is this run\'s engine.started')

      // Every write but the damaged last one is intact (read through the reconnected SDK worker).
      const list = await sdkList(w, S, 'g')
      assert.deepEqual(list, Array.from({ length: N - 1 }, (_, i) => value(i)))
      assert.equal(await w.trigger({ function_id: 'stream::get', payload: { stream_name: S, group_id: 'g', item_id: `item-${N - 1}` } }) ?? null, null)

      // New writes work and survive another SIGKILL.
      const again = await w.trigger({ function_id: 'stream::set', payload: { stream_name: S, group_id: 'g', item_id: `item-${N - 1}`, data: { again: true } } })
      assert.deepEqual(again, { old_value: null, new_value: { again: true } })
      await w.trigger({ function_id: 'stream::set', payload: { stream_name: S, group_id: 'g', item_id: 'new', data: { n: 1 } } })
      const upd = await w.trigger({ function_id: 'stream::update', payload: { stream_name: S, group_id: 'g', item_id: 'item-3', ops: [{ type: 'increment', path: 'i', by: 100 }] } })
      assert.deepEqual(upd.new_value, { ...value(3), i: 103 })
      await engine.kill()
      await engine.restart()
      assert.equal(engine.logs().includes('torn or corrupt tail'), false, `no repair on a clean restart:\n${engine.logs().slice(0, 2000)}`)
      assert.deepEqual(readdirSync(logDir).filter((n) => n.startsWith('corrupt-')), corrupt)
      const list2 = await sdkList(w, S, 'g')
      const want = Array.from({ length: N - 1 }, (_, i) => value(i))
      want[3] = { ...value(3), i: 103 }
      assert.deepEqual(list2, [...want, { again: true }, { n: 1 }])
      await w.shutdown()
    })
  }
})

describe('snapshots', () => {
  const recovered = {} // "log opened" fields per case, for the log-line check below

  it('a large log restarts from its newest snapshot and replays only the tail (snapshot_every 5000)', async () => {
    const engineCfg = { sync: 'never', snapshot_every: 5000 }
    const engine = await start({ engine: engineCfg })
    const logDir = storeDir(engine)
    const N = 12000
    const pad = (i) => String(i).padStart(6, '0')
    const value = (i) => ({ i, tag: `t${pad(i)}` })
    const calls = Array.from({ length: N }, (_, i) => ({
      invocation_id: `c${i}`, function_id: 'stream::set',
      data: { stream_name: 'big', group_id: 'g', item_id: `i-${pad(i)}`, data: value(i) },
    }))
    const results = await pipeline(engine.workerUrl, calls)
    for (const [id, r] of results) assert.equal(r.error, undefined, `${id}: ${JSON.stringify(r.error)}`)

    // Snapshots are taken after a group commit once 5000 records have passed, and written in the
    // background, so where they land depends on batching. Wait until they settle (a snapshot at
    // or past 5000, no temp file, the newest unchanged over three polls): not a timing
    // assertion, just quiet before the tail writes.
    let seen = ''
    let stable = 0
    await waitFor(() => {
      const names = readdirSync(path.join(logDir, 'snapshots')).sort().join(',')
      stable = names === seen && !names.includes('.tmp') && snapshots(logDir).some((x) => x.index >= 5000) ? stable + 1 : 0
      seen = names
      return stable >= 3
    }, 15000, 'the periodic snapshots to settle', 100)
    // The tail: single writes after the bulk; the last one overwrites an item the snapshot holds.
    const c = await rawWorker(engine.workerUrl)
    for (let k = 0; k < 10; k++) await ok(c, 'stream::set', { stream_name: 'big', group_id: 'tail', item_id: `tail-${k}`, data: { k } })
    await ok(c, 'stream::set', { stream_name: 'big', group_id: 'g', item_id: `i-${pad(100)}`, data: { i: 100, tag: 'final' } })
    c.close()
    await sleep(100)
    await engine.kill() // SIGKILL: no shutdown snapshot; sync never still leaves the writes in the OS

    const snapList = snapshots(logDir)
    assert.ok(snapList.length >= 1 && snapList.length <= 2, `one or two snapshots are kept (snapKeep 2): ${snapList.map((s) => s.name)}`)
    const { last } = logExtent(logDir)
    for (const s of snapList) {
      const f = readSnapshotFile(s.file)
      assert.equal(f.version, 1)
      assert.equal(f.index, s.index, `${s.name}: header index`)
      assert.equal(f.length, f.data.length, `${s.name}: header length`)
      assert.ok(f.crcOk, `${s.name}: checksum`)
      assert.ok(s.index >= 5000 && s.index < last, `${s.name} within [5000, ${last})`)
    }
    if (snapList.length === 2) assert.ok(snapList[1].index - snapList[0].index >= 5000, snapList.map((s) => s.name).join(' '))
    const newest = snapList.at(-1)
    // The records after the newest snapshot: the restart must replay exactly these. Their stream
    // writes end with the overwrite of i-000100 (besides them: worker records of the test's own
    // connections, and bulk writes if the newest snapshot landed inside the bulk).
    const tailRecs = await replayJson(['--log-dir', logDir, '--from-index', String(newest.index + 1)])
    assert.equal(tailRecs.at(-1).index, last)
    assert.deepEqual(tailRecs.map((r) => r.index), Array.from({ length: last - newest.index }, (_, k) => newest.index + 1 + k))
    const tailSets = tailRecs.filter((r) => r.kind === 'stream.set')
    assert.deepEqual(tailSets.at(-1), { ...tailSets.at(-1), group: 'g', item: `i-${pad(100)}`, value: { i: 100, tag: 'final' } },
      'the overwrite of i-000100 comes after the newest snapshot')
    for (const r of tailRecs) assert.ok(['stream.set', 'worker.connected', 'worker.disconnected'].includes(r.kind), JSON.stringify(r))
    const logSets = await replayJson(['--log-dir', logDir, '--stream', 'big', '--kind', 'stream.set'])
    assert.equal(logSets.length, N + 11)
    const rec200 = await replayJson(['--log-dir', logDir, '--item', `i-${pad(200)}`])
    assert.equal(rec200.length, 1)
    assert.ok(rec200[0].index <= newest.index)

    // Copy the data dir and give the copy's newest snapshot a different (intact) value for two
    // items. Starting the copy shows which path the engine took: a value from the snapshot means
    // the snapshot was restored and the records before it were not replayed; a tail record applied
    // over it means the tail was replayed.
    const copyDir = path.join(engine.dir, 'copy')
    cpSync(engine.dataDir, copyDir, { recursive: true })
    const copySnap = path.join(copyDir, 'stream_store', 'snapshots', newest.name)
    tamperSnapshot(copySnap, [[`"tag":"t${pad(200)}"`, `"tag":"X${pad(200)}"`], [`"tag":"t${pad(100)}"`, `"tag":"X${pad(100)}"`]])
    assert.ok(readSnapshotFile(copySnap).crcOk)

    await engine.restart()
    recovered.large = { fields: logOpened(engine), snapshot: newest.index, last }
    assert.equal(recovered.large.fields.last_index, String(last))
    assert.equal(recovered.large.fields.first_index, '1')
    assert.ok(!/level=WARN/.test(engine.logs()), `no warnings on restart:\n${engine.logs()}`)
    const v = await rawWorker(engine.workerUrl)
    const list = (await ok(v, 'stream::list', { stream_name: 'big', group_id: 'g' })).result
    assert.equal(list.length, N)
    // Pipelined calls are dispatched concurrently, so the items' order is the order the log
    // first wrote them in, not the send order.
    const order = [...new Set(logSets.filter((r) => r.group === 'g').map((r) => Number(r.item.slice(2))))]
    assert.equal(order.length, N)
    const want = order.map((i) => (i === 100 ? { i: 100, tag: 'final' } : value(i)))
    assert.deepEqual(list, want, 'every value is correct after the restart, in insertion order')
    assert.deepEqual((await ok(v, 'stream::list', { stream_name: 'big', group_id: 'tail' })).result, Array.from({ length: 10 }, (_, k) => ({ k })))
    assert.deepEqual((await ok(v, 'stream::get', { stream_name: 'big', group_id: 'g', item_id: `i-${pad(11999)}` })).result, value(11999))
    v.close()

    const copy = await start({ dataDir: copyDir, engine: engineCfg })
    assert.ok(!/level=WARN/.test(copy.logs()), `the tampered snapshot must be accepted as intact:\n${copy.logs()}`)
    assert.equal(logOpened(copy).last_index, String(last))
    const cv = await rawWorker(copy.workerUrl)
    assert.deepEqual((await ok(cv, 'stream::get', { stream_name: 'big', group_id: 'g', item_id: `i-${pad(200)}` })).result, { i: 200, tag: `X${pad(200)}` },
      'i-000200 must come from the snapshot: the engine restored it and did not replay the records it covers')
    assert.deepEqual((await ok(cv, 'stream::get', { stream_name: 'big', group_id: 'g', item_id: `i-${pad(100)}` })).result, { i: 100, tag: 'final' },
      'the tail record for i-000100 must be replayed over the snapshot')
    assert.deepEqual((await ok(cv, 'stream::get', { stream_name: 'big', group_id: 'g', item_id: `i-${pad(201)}` })).result, value(201))
    assert.deepEqual((await ok(cv, 'stream::list', { stream_name: 'big', group_id: 'tail' })).result, Array.from({ length: 10 }, (_, k) => ({ k })))
    cv.close()
    await copy.stop()
  })

  it('SIGTERM takes a snapshot at the last record, and the restart replays nothing after it', async () => {
    const engine = await start()
    const logDir = storeDir(engine)
    const gen = GENERATIONS[1]
    const w = await makeWorker(gen, engine.workerUrl, { workerName: uid('term') })
    await connected(w)
    const S = uid('term')
    for (let i = 0; i < 10; i++) await w.trigger({ function_id: 'stream::set', payload: { stream_name: S, group_id: 'g', item_id: `k${i}`, data: { i, mark: `m${i}-${S}` } } })
    await w.trigger({ function_id: 'stream::delete', payload: { stream_name: S, group_id: 'g', item_id: 'k0' } })
    await w.trigger({ function_id: 'state::set', payload: { scope: S, key: 'cfg', value: { on: true } } })
    assert.deepEqual(snapshots(logDir), [], 'no snapshot before the shutdown (default snapshot_every is far away)')

    // The worker stays connected: its disconnect at shutdown must be in the snapshot too.
    const stopped = await engine.stop('SIGTERM')
    assert.deepEqual(stopped, { code: 0, signal: null }, engine.logs().slice(-2000))
    const { last } = logExtent(logDir)
    const snaps = snapshots(logDir)
    assert.deepEqual(snaps.map((s) => s.index), [last], `one snapshot, at the last record ${last}`)
    const f = readSnapshotFile(snaps[0].file)
    assert.ok(f.crcOk && f.index === last && f.length === f.data.length)
    assert.equal(occurrences(f.data, `m9-${S}`), 1, 'the snapshot holds the last write')

    const copyDir = path.join(engine.dir, 'copy')
    cpSync(engine.dataDir, copyDir, { recursive: true })
    tamperSnapshot(path.join(copyDir, 'stream_store', 'snapshots', snaps[0].name), [[`m9-${S}`, `M9-${S}`]])

    await engine.restart()
    recovered.sigterm = { fields: logOpened(engine), snapshot: last, last }
    assert.equal(recovered.sigterm.fields.last_index, String(last))
    const list = await sdkList(w, S, 'g')
    assert.deepEqual(list, Array.from({ length: 9 }, (_, j) => ({ i: j + 1, mark: `m${j + 1}-${S}` })))
    assert.deepEqual(await w.trigger({ function_id: 'state::get', payload: { scope: S, key: 'cfg' } }), { on: true })
    await w.shutdown()

    // Restored purely from the snapshot: the tampered value of the very last write shows, so no
    // record at or before the snapshot was applied again.
    const copy = await start({ dataDir: copyDir })
    assert.equal(logOpened(copy).last_index, String(last))
    const cv = await rawWorker(copy.workerUrl)
    assert.deepEqual((await ok(cv, 'stream::get', { stream_name: S, group_id: 'g', item_id: 'k9' })).result, { i: 9, mark: `M9-${S}` })
    cv.close()
    await copy.stop()
  })

  // The engine's "log opened" line says whether it restored a snapshot and how many records it
  // replayed after it (snapshot_index=<index restored, 0 if none> replayed=<records applied after it>).
  it('the "log opened" line names the snapshot restored and the records replayed', () => {
    assert.deepEqual(Object.keys(recovered).sort(), ['large', 'sigterm'])
    for (const [name, r] of Object.entries(recovered)) {
      assert.equal(r.fields.snapshot_index, String(r.snapshot), `${name}: snapshot_index`)
      assert.equal(r.fields.replayed, String(r.last - r.snapshot), `${name}: replayed`)
    }
  })
})

describe('store_method in_memory', () => {
  it('nothing survives a restart and no file is written', async () => {
    const engine = await start({ config: (ctx) => dataDirConfig(ctx, {}, 'in_memory') })
    assert.match(engine.logs(), /msg="log kept in memory"/)
    const gen = GENERATIONS[0]
    const w = await makeWorker(gen, engine.workerUrl, { workerName: uid('mem') })
    await connected(w)
    const S = uid('mem')
    for (let i = 0; i < 5; i++) await w.trigger({ function_id: 'stream::set', payload: { stream_name: S, group_id: 'g', item_id: `m${i}`, data: { i } } })
    await w.trigger({ function_id: 'state::set', payload: { scope: S, key: 'k', value: 'v' } })
    assert.deepEqual(await w.trigger({ function_id: 'stream::list', payload: { stream_name: S, group_id: 'g' } }), [0, 1, 2, 3, 4].map((i) => ({ i })))
    assert.equal(await w.trigger({ function_id: 'state::get', payload: { scope: S, key: 'k' } }), 'v')
    // History is read from the live log, in memory too.
    const h = await w.trigger({ function_id: 'engine::history::query', payload: { stream: S } })
    assert.deepEqual(h.records.map((r) => [r.kind, r.item]), [0, 1, 2, 3, 4].map((i) => ['stream.set', `m${i}`]))
    assert.deepEqual(filesUnder(engine.dataDir), [], 'no file under the data dir while running')

    const stopped = await engine.stop('SIGTERM')
    assert.deepEqual(stopped, { code: 0, signal: null })
    assert.deepEqual(filesUnder(engine.dataDir), [], 'no file under the data dir after shutdown')
    assert.deepEqual(filesUnder(engine.dir), ['config.yaml', 'engine.log'], 'nothing written next to the config either (the engine runs there)')

    await engine.restart()
    const list = await sdkList(w, S, 'g')
    assert.deepEqual(list, [], 'stream items do not survive')
    assert.equal(await w.trigger({ function_id: 'state::get', payload: { scope: S, key: 'k' } }) ?? null, null, 'state does not survive')
    assert.equal(await w.trigger({ function_id: 'stream::get', payload: { stream_name: S, group_id: 'g', item_id: 'm0' } }) ?? null, null)
    await w.shutdown()
    await engine.stop('SIGTERM')
    assert.deepEqual(filesUnder(engine.dataDir), [])
    assert.deepEqual(filesUnder(engine.dir), ['config.yaml', 'engine.log'])
  })
})

describe('sync policies', () => {
  for (const policy of ['interval', 'never']) {
    it(`sync: ${policy} — writes work and survive a SIGTERM restart`, async () => {
      const engine = await start({ engine: { sync: policy } })
      assert.equal(logOpened(engine).sync, policy)
      const c = await rawWorker(engine.workerUrl)
      const S = uid(`sync-${policy}`)
      const want = []
      for (let i = 0; i < 30; i++) {
        const r = await ok(c, 'stream::set', { stream_name: S, group_id: 'g', item_id: `s${i}`, data: { i } })
        assert.deepEqual(r.result, { old_value: null, new_value: { i } })
        want.push({ i })
      }
      for (let i = 0; i < 5; i++) {
        const r = await ok(c, 'stream::update', { stream_name: S, group_id: 'g', item_id: `s${i}`, ops: [{ type: 'set', path: 'p', value: policy }] })
        assert.deepEqual(r.result.new_value, { i, p: policy })
        want[i] = { i, p: policy }
      }
      for (let i = 25; i < 30; i++) await ok(c, 'stream::delete', { stream_name: S, group_id: 'g', item_id: `s${i}` })
      want.splice(25)
      await ok(c, 'state::set', { scope: S, key: 'policy', value: policy })
      c.close()

      const stopped = await engine.stop('SIGTERM')
      assert.deepEqual(stopped, { code: 0, signal: null }, engine.logs().slice(-2000))
      await engine.restart()
      assert.equal(logOpened(engine).sync, policy)
      const v = await rawWorker(engine.workerUrl)
      assert.deepEqual((await ok(v, 'stream::list', { stream_name: S, group_id: 'g' })).result, want)
      assert.deepEqual((await ok(v, 'state::get', { scope: S, key: 'policy' })).result, policy)
      // Still writable after the restart.
      const r = await ok(v, 'stream::set', { stream_name: S, group_id: 'g', item_id: 's0', data: { after: true } })
      assert.deepEqual(r.result, { old_value: { i: 0, p: policy }, new_value: { after: true } })
      v.close()
    })
  }
})
