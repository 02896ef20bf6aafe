// ISSUE "engine core", item 8: built-in engine::* functions.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  startEngine, rawWorker, makeWorker, connected, barrier, shutdownWorkers,
  GENERATIONS, sdkModule, rejection, waitFor, uid,
} from './lib/engine.mjs'

let engine
before(async () => { engine = await startEngine() })
after(async () => {
  await shutdownWorkers()
  await engine?.cleanup()
})

const isSorted = (ids) => ids.every((x, i) => i === 0 || ids[i - 1] <= x)

for (const gen of GENERATIONS) {
  describe(`8. built-ins seen from iii-sdk@${gen.name}`, () => {
    const name = `builtins-${gen.name}`
    const fn = `e2e::listed::${gen.name}`
    const fnMeta = `e2e::listed-meta::${gen.name}`
    const fnInternal = `e2e::listed-internal::${gen.name}`
    const ttype = `e2e-listed-tt-${gen.name}`
    let w
    let mod

    before(async () => {
      mod = await sdkModule(gen)
      w = await makeWorker(gen, engine.workerUrl, { workerName: name })
      w.registerFunction(fn, async () => ({}), {
        description: 'Listed fn',
        request_format: { type: 'object', properties: { a: { type: 'string' } } },
        response_format: { type: 'object' },
      })
      w.registerFunction(fnMeta, async () => ({}), { description: 'With metadata', metadata: { public: true, team: 'e2e' } })
      w.registerFunction(fnInternal, async () => ({}), { metadata: { internal: true } })
      w.registerTriggerType({ id: ttype, description: 'Listed trigger type' }, { async registerTrigger() {}, async unregisterTrigger() {} })
      w.registerTrigger({ type: 'stream', function_id: fn, config: { stream_name: `listed-${gen.name}`, group_id: 'g' } })
      await connected(w)
      await barrier(w)
    })

    const call = (function_id, payload = {}) => w.trigger({ function_id, payload })

    it('engine::functions::list shows worker and engine functions in the spec shape, sorted, with worker_name', async () => {
      const res = await waitFor(async () => {
        const r = await call('engine::functions::list')
        const mine = r.functions.find((f) => f.function_id === fn)
        return mine?.worker_name === name ? r : undefined
      }, 5000, `${fn} listed with worker_name ${name} (after the void engine::workers::register)`)
      assert.deepEqual(Object.keys(res), ['functions'])
      const mine = res.functions.find((f) => f.function_id === fn)
      assert.deepEqual(mine, { function_id: fn, worker_name: name, description: 'Listed fn' })
      const meta = res.functions.find((f) => f.function_id === fnMeta)
      assert.deepEqual(meta, { function_id: fnMeta, worker_name: name, description: 'With metadata', metadata: { public: true, team: 'e2e' } })
      const ids = res.functions.map((f) => f.function_id)
      assert.ok(isSorted(ids), `functions must be sorted by id: ${ids.join(', ')}`)
      for (const builtin of ['stream::set', 'stream::get', 'stream::list', 'stream::update', 'stream::delete', 'stream::list_groups', 'state::set', 'state::get']) {
        const f = res.functions.find((x) => x.function_id === builtin)
        assert.ok(f, `${builtin} missing from engine::functions::list`)
        assert.equal(typeof f.worker_name, 'string')
      }
      assert.ok(!ids.some((id) => id.startsWith('engine::')), `engine::* must be hidden without include_internal: ${ids.filter((i) => i.startsWith('engine::'))}`)
      assert.ok(!ids.includes(fnInternal), 'metadata.internal functions are hidden without include_internal')
      for (const f of res.functions) {
        assert.equal(typeof f.function_id, 'string')
        for (const k of Object.keys(f)) assert.ok(['function_id', 'worker_name', 'description', 'metadata'].includes(k), `unexpected key ${k} in ${JSON.stringify(f)}`)
      }
    })

    it('engine::functions::list include_internal and prefix filters', async () => {
      const all = await call('engine::functions::list', { include_internal: true })
      const ids = all.functions.map((f) => f.function_id)
      assert.ok(ids.includes('engine::functions::list'), 'include_internal lists engine::* ids')
      assert.ok(ids.includes(fnInternal), 'include_internal lists metadata.internal functions')
      const pre = await call('engine::functions::list', { prefix: `e2e::listed::` })
      assert.ok(pre.functions.length >= 1)
      assert.ok(pre.functions.every((f) => f.function_id.startsWith('e2e::listed::')), JSON.stringify(pre.functions.map((f) => f.function_id)))
      assert.ok(pre.functions.some((f) => f.function_id === fn))
    })

    it('engine::functions::info single, batch and errors', async () => {
      const info = await call('engine::functions::info', { function_id: fn })
      assert.equal(info.function_id, fn)
      assert.equal(info.worker_name, name)
      assert.equal(info.description, 'Listed fn')
      assert.deepEqual(info.request_schema, { type: 'object', properties: { a: { type: 'string' } } })
      assert.deepEqual(info.response_schema, { type: 'object' })
      assert.ok(Array.isArray(info.registered_triggers))
      const t = info.registered_triggers.find((x) => x.trigger_type === 'stream')
      assert.ok(t, `registered_triggers should list the stream trigger: ${JSON.stringify(info.registered_triggers)}`)
      assert.deepEqual(t.config, { stream_name: `listed-${gen.name}`, group_id: 'g' })
      assert.equal(typeof t.id, 'string')

      const batch = await call('engine::functions::info', { function_ids: [fn, fnMeta] })
      assert.deepEqual(batch.functions.map((f) => f.function_id).sort(), [fn, fnMeta].sort())

      const nf = await rejection(call('engine::functions::info', { function_id: 'e2e::nope' }))
      assert.equal(nf.code, 'NOT_FOUND')
      assert.ok(nf.message.includes('e2e::nope'), nf.message)
      const neither = await rejection(call('engine::functions::info', {}))
      assert.equal(neither.code, 'INVALID_ARGUMENTS')
      const both = await rejection(call('engine::functions::info', { function_id: fn, function_ids: [fn] }))
      assert.equal(both.code, 'INVALID_ARGUMENTS')
    })

    it('engine::workers::list shows the Node worker with its name after engine::workers::register', async () => {
      const entry = await waitFor(async () => {
        const r = await call('engine::workers::list')
        return r.workers.find((x) => x.id === w.workerId && x.name === name)
      }, 5000, `worker ${name} in engine::workers::list`)
      assert.equal(entry.runtime, 'node')
      assert.equal(entry.version, gen.version)
      assert.equal(typeof entry.os, 'string')
      assert.equal(typeof entry.status, 'string')
      assert.ok(entry.function_count >= 3, `function_count ${entry.function_count}`)
      assert.equal(typeof entry.connected_at_ms, 'number')
      assert.ok(Math.abs(entry.connected_at_ms - Date.now()) < 600000, `connected_at_ms ${entry.connected_at_ms} is not a ms timestamp`)
      assert.equal(typeof entry.active_invocations, 'number')
      for (const k of ['name', 'description', 'version', 'id', 'runtime', 'os', 'status', 'function_count', 'connected_at_ms', 'active_invocations', 'isolation', 'ip_address']) {
        assert.ok(k in entry, `workers::list entry lacks ${k}: ${JSON.stringify(entry)}`)
      }
    })

    it('engine::workers::info by name, NOT_FOUND otherwise', async () => {
      const info = await call('engine::workers::info', { name })
      for (const k of ['worker', 'functions', 'trigger_types', 'registered_triggers']) assert.ok(k in info, `workers::info lacks ${k}`)
      assert.equal(info.worker.name, name)
      assert.ok(JSON.stringify(info.functions).includes(fn), `workers::info functions should include ${fn}: ${JSON.stringify(info.functions)}`)
      assert.ok(JSON.stringify(info.trigger_types).includes(ttype), `workers::info trigger_types should include ${ttype}`)
      const e = await rejection(call('engine::workers::info', { name: 'e2e-no-such-worker' }))
      assert.equal(e.code, 'NOT_FOUND')
    })

    it('engine::triggers::list lists trigger types (built-in and worker-provided)', async () => {
      const r = await call('engine::triggers::list')
      assert.ok(Array.isArray(r.triggers))
      const mine = r.triggers.find((t) => t.id === ttype)
      assert.ok(mine, `worker trigger type ${ttype} missing: ${JSON.stringify(r.triggers.map((t) => t.id))}`)
      assert.equal(mine.description, 'Listed trigger type')
      assert.equal(mine.worker_name, name)
      for (const id of ['stream', 'state']) assert.ok(r.triggers.some((t) => t.id === id), `built-in trigger type ${id} missing`)
    })

    it('engine::registered-triggers::list lists trigger instances', async () => {
      const r = await call('engine::registered-triggers::list')
      assert.ok(Array.isArray(r.registered_triggers))
      const mine = r.registered_triggers.find((t) => t.function_id === fn && t.trigger_type === 'stream')
      assert.ok(mine, `stream trigger for ${fn} missing: ${JSON.stringify(r.registered_triggers)}`)
      assert.deepEqual(mine.config, { stream_name: `listed-${gen.name}`, group_id: 'g' })
      assert.equal(typeof mine.id, 'string')
      assert.equal(mine.worker_name, name)
      assert.ok('config_summary' in mine)
      const filtered = await call('engine::registered-triggers::list', { function_id: fn })
      assert.ok(filtered.registered_triggers.every((t) => t.function_id === fn))
    })

    it('engine::health::check answers with an object', async () => {
      const r = await call('engine::health::check')
      assert.equal(typeof r, 'object')
      assert.notEqual(r, null)
    })

    it('engine::log::info (void) records a log line in the engine output', async () => {
      const marker = uid('log-marker')
      const r = await w.trigger({ function_id: 'engine::log::info', payload: { message: `e2e says ${marker}`, data: { k: 1 } }, action: mod.TriggerAction.Void() })
      assert.equal(r, undefined)
      await waitFor(() => engine.logs().includes(marker), 3000, 'engine::log::info line in the engine log')
    })
  })
}

describe('8. built-ins from a raw client', () => {
  it('engine::log::info with a reply has no result key', async () => {
    const c = await rawWorker(engine.workerUrl)
    const r = await c.call('engine::log::info', { message: 'raw log line' })
    assert.equal(r.error, undefined, JSON.stringify(r))
    assert.ok(!('result' in r) || r.result === null, `log functions return nothing: ${JSON.stringify(r)}`)
    c.close()
  })

  it('raw connections without pid are not in engine::workers::list; in-process modules are, with runtime engine', async () => {
    const c = await rawWorker(engine.workerUrl)
    const r = await c.call('engine::workers::list', {})
    assert.equal(r.error, undefined, JSON.stringify(r))
    assert.ok(!r.result.workers.some((x) => x.id === c.workerId), 'raw client must not be listed')
    assert.ok(r.result.workers.some((x) => x.runtime === 'engine'), `in-process modules should be listed with runtime "engine": ${JSON.stringify(r.result.workers)}`)
    c.close()
  })

  it('engine::functions::list from a raw client includes raw-registered functions', async () => {
    const c = await rawWorker(engine.workerUrl)
    c.send({ type: 'registerfunction', id: 'raw::listed', description: 'raw d', metadata: { x: 1 } })
    const r = await c.call('engine::functions::list', {})
    assert.equal(r.error, undefined, JSON.stringify(r))
    const f = r.result.functions.find((x) => x.function_id === 'raw::listed')
    assert.ok(f)
    assert.equal(f.description, 'raw d')
    assert.deepEqual(f.metadata, { x: 1 })
    c.close()
  })

  it('a built-in with an undecodable payload -> deserialization_error', async () => {
    const c = await rawWorker(engine.workerUrl)
    const r = await c.call('engine::functions::info', { function_id: 5 })
    assert.ok(r.error, JSON.stringify(r))
    assert.equal(r.error.code, 'deserialization_error')
    assert.ok(r.error.message.includes('function_id'), r.error.message)
    c.close()
  })
})
