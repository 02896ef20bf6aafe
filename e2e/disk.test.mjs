// Disk trouble: the disk fills up under the engine (a file size limit stands in for a full disk).
// The engine must refuse the writes it cannot persist with a clear error, keep serving reads, never
// acknowledge what is not on disk, and come back with every acknowledged write after a restart.
import { it, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { rawWorker, startEngine } from './lib/engine.mjs'

const dir = mkdtempSync(path.join(os.tmpdir(), 'iii-disk-'))
after(() => rmSync(dir, { recursive: true, force: true }))

it('a full disk: writes are refused with the reason, reads go on, nothing acknowledged is lost', async () => {
  const dataDir = path.join(dir, 'data')
  const config = (ctx) => ({
    workers: [
      { name: 'iii-worker-manager', config: { host: '127.0.0.1', port: ctx.workerPort } },
      { name: 'iii-stream', config: { host: '127.0.0.1', port: ctx.streamPort, adapter: { name: 'kv', config: { store_method: 'file_based', file_path: path.join(dataDir, 'log') } } } },
    ],
    engine: { sync: 'always' },
  })
  // Files may not grow past 2 MiB (4096 blocks of 512 bytes).
  const full = await startEngine({ dataDir, config, maxFileBlocks: 4096 })
  const acked = []
  try {
    const w = await rawWorker(full.workerUrl)
    const value = { pad: 'x'.repeat(8000) }
    let refusal
    for (let i = 0; i < 1000 && !refusal; i++) {
      const r = await w.call('stream::set', { stream_name: 's', group_id: 'g', item_id: `i${i}`, data: { ...value, i } })
      if (r.error) refusal = r.error
      else acked.push(i)
    }
    assert.ok(refusal, 'the disk never filled')
    assert.ok(acked.length > 10, `only ${acked.length} writes before the disk filled`)
    assert.equal(refusal.code, 'STREAM_SET_ERROR')
    assert.match(refusal.message, /failed to write to the log: .*(file too large|no space)/i)
    // Every later write is refused with the same kind of error, reads still work.
    const again = await w.call('stream::set', { stream_name: 's', group_id: 'g', item_id: 'later', data: 1 })
    assert.equal(again.error?.code, 'STREAM_SET_ERROR')
    const read = await w.call('stream::get', { stream_name: 's', group_id: 'g', item_id: `i${acked.at(-1)}` })
    assert.equal(read.error, undefined, JSON.stringify(read.error))
    assert.equal(read.result.i, acked.at(-1))
    w.close()
  } finally {
    await full.kill()
    await full.cleanup()
  }
  // Restart without the limit: every acknowledged write is there, the refused ones are not.
  const engine = await startEngine({ dataDir, config })
  try {
    const w = await rawWorker(engine.workerUrl)
    const list = await w.call('stream::list', { stream_name: 's', group_id: 'g' })
    const have = new Set(list.result.map((v) => v.i))
    assert.ok(!have.has(undefined))
    for (const i of acked) assert.ok(have.has(i), `acknowledged write ${i} lost`)
    assert.equal(have.size, acked.length, 'a write that was refused appeared after the restart')
    const late = await w.call('stream::get', { stream_name: 's', group_id: 'g', item_id: 'later' })
    assert.equal(late.result, undefined, 'a refused write appeared after the restart')
    w.close()
  } finally {
    await engine.cleanup()
  }
})
