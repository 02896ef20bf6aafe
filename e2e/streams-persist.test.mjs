// ISSUE "event-sourced streams": persistence across restart (docs/log-format.md#recovery) and a
// crash test: every acknowledged write survives SIGKILL under `sync: always`
// (docs/log-format.md#sync-policies).
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { startEngine, rawWorker, spawnChild, sleep, uid } from './lib/engine.mjs'

const engines = []
after(async () => {
  for (const e of engines) await e.cleanup()
})

async function ok(c, fn, data) {
  const r = await c.call(fn, data, { timeoutMs: 10000 })
  assert.equal(r.error, undefined, `${fn} ${JSON.stringify(data)} -> ${JSON.stringify(r.error)}`)
  return r
}

describe('persistence', () => {
  it('items, their order, state values and scopes survive SIGTERM + restart; triggers do not', async () => {
    const engine = await startEngine()
    engines.push(engine)
    let c = await rawWorker(engine.workerUrl)
    const S = uid('persist')
    for (const id of ['c', 'a', 'b', 'd']) await ok(c, 'stream::set', { stream_name: S, group_id: 'g1', item_id: id, data: { id } })
    await ok(c, 'stream::set', { stream_name: S, group_id: 'g1', item_id: 'a', data: { id: 'a', v: 2 } })
    await ok(c, 'stream::delete', { stream_name: S, group_id: 'g1', item_id: 'd' })
    await ok(c, 'stream::update', { stream_name: S, group_id: 'g1', item_id: 'b', ops: [{ type: 'increment', path: 'n', by: 7 }] })
    await ok(c, 'stream::set', { stream_name: S, group_id: 'g2', item_id: 'x', data: null })
    await ok(c, 'state::set', { scope: S, key: 'k2', value: 'two' })
    await ok(c, 'state::set', { scope: S, key: 'k1', value: { one: 1 } })
    await ok(c, 'state::update', { scope: S, key: 'k3', ops: [{ type: 'append', path: 'l', value: 'x' }] })
    await ok(c, 'state::set', { scope: S, key: 'gone', value: 1 })
    await ok(c, 'state::delete', { scope: S, key: 'gone' })
    c.send({ type: 'registerfunction', id: 'persist::h' })
    c.send({ type: 'registertrigger', id: 'persist-t', trigger_type: 'stream', function_id: 'persist::h', config: { stream_name: S } })
    await c.roundTrip()
    c.close()

    const stopped = await engine.stop('SIGTERM')
    assert.equal(stopped.code, 0, `engine should exit 0 on SIGTERM, got ${JSON.stringify(stopped)}\n${engine.logs().slice(-2000)}`)
    await engine.restart()
    c = await rawWorker(engine.workerUrl)
    assert.deepEqual((await ok(c, 'stream::list', { stream_name: S, group_id: 'g1' })).result, [{ id: 'c' }, { id: 'a', v: 2 }, { id: 'b', n: 7 }])
    assert.deepEqual((await ok(c, 'stream::get', { stream_name: S, group_id: 'g1', item_id: 'a' })).result, { id: 'a', v: 2 })
    const missing = await ok(c, 'stream::get', { stream_name: S, group_id: 'g1', item_id: 'd' })
    assert.ok(!('result' in missing))
    const nul = await ok(c, 'stream::get', { stream_name: S, group_id: 'g2', item_id: 'x' })
    assert.ok('result' in nul && nul.result === null, 'a stored null survives as null')
    assert.deepEqual([...(await ok(c, 'stream::list_groups', { stream_name: S })).result].sort(), ['g1', 'g2'])
    assert.deepEqual((await ok(c, 'state::list', { scope: S })).result, ['two', { one: 1 }, { l: 'x' }])
    assert.deepEqual((await ok(c, 'state::get', { scope: S, key: 'k1' })).result, { one: 1 })
    assert.ok((await ok(c, 'state::list_groups', {})).result.groups.includes(S))
    // Updates after restart continue from the restored value (old_value is the persisted one).
    const u = await ok(c, 'stream::update', { stream_name: S, group_id: 'g1', item_id: 'b', ops: [{ type: 'increment', path: 'n', by: 1 }] })
    assert.deepEqual(u.result, { old_value: { id: 'b', n: 7 }, new_value: { id: 'b', n: 8 } })
    const rt = await ok(c, 'engine::registered-triggers::list', {})
    assert.ok(!rt.result.registered_triggers.some((t) => t.id === 'persist-t'), 'triggers are not persisted')
    c.close()
  })

  it('crash test: every acknowledged stream::set survives SIGKILL at random moments (5 cycles)', async (t) => {
    const engine = await startEngine()
    engines.push(engine)
    const S = uid('crash')
    const acked = new Map() // item -> value
    const cycles = 5
    for (let k = 0; k < cycles; k++) {
      // A write acknowledged just before the kill, from the test process itself.
      const c = await rawWorker(engine.workerUrl)
      const marker = { marker: k }
      await ok(c, 'stream::set', { stream_name: S, group_id: 'g', item_id: `marker-${k}`, data: marker })
      acked.set(`marker-${k}`, marker)

      const child = spawnChild({ mode: 'writer', url: engine.workerUrl, stream: S, group: 'g', prefix: `c${k}`, concurrency: 16 })
      await child.waitLine(/^STARTED$/)
      await child.waitLine(/^ACK /, 10000)
      await sleep(100 + Math.floor(Math.random() * 700))
      await engine.kill()
      const res = await Promise.race([child.exited, sleep(5000).then(() => 'timeout')])
      if (res === 'timeout') await child.kill()
      c.terminate()
      const acks = child.lines.filter((l) => l.startsWith('ACK '))
      const errs = child.lines.filter((l) => l.startsWith('ERR '))
      assert.deepEqual(errs, [], 'writes failed while the engine was up')
      assert.ok(acks.length > 0, 'the writer got no acknowledgements before the kill')
      for (const l of acks) {
        const [, item, valueJson, resultJson] = l.match(/^ACK (\S+) (\{.*?\}) (\{.*\})$/)
        const value = JSON.parse(valueJson)
        assert.deepEqual(JSON.parse(resultJson), { old_value: null, new_value: value })
        acked.set(item, value)
      }

      t.diagnostic(`cycle ${k}: ${acks.length} writes acknowledged before SIGKILL`)
      await engine.restart()
      const v = await rawWorker(engine.workerUrl)
      const list = (await ok(v, 'stream::list', { stream_name: S, group_id: 'g' })).result
      const byKey = new Map(list.map((x) => [x.marker !== undefined ? `marker-${x.marker}` : `${x.prefix}-${x.n}`, x]))
      const lost = [...acked.keys()].filter((item) => !byKey.has(item))
      assert.deepEqual(lost, [], `cycle ${k}: ${lost.length} acknowledged writes lost after SIGKILL (of ${acked.size})`)
      for (const [item, value] of acked) assert.deepEqual(byKey.get(item), value, `cycle ${k}: ${item} has the wrong value`)
      // Spot-check with stream::get too.
      const some = [...acked.keys()].slice(-5)
      for (const item of some) assert.deepEqual((await ok(v, 'stream::get', { stream_name: S, group_id: 'g', item_id: item })).result, acked.get(item))
      v.close()
    }
    assert.ok(acked.size > cycles * 10, `only ${acked.size} acknowledged writes in ${cycles} cycles`)
  })
})
