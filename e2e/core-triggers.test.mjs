// ISSUE "engine core", item 7: worker-provided trigger types.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  startEngine, rawWorker, makeWorker, connected, barrier, shutdownWorkers,
  GENERATIONS, waitFor, sleep, uid,
} from './lib/engine.mjs'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

let engine
before(async () => { engine = await startEngine() })
after(async () => {
  await shutdownWorkers()
  await engine?.cleanup()
})

for (const gen of GENERATIONS) {
  describe(`7. trigger types with iii-sdk@${gen.name}`, () => {
    it('registertrigger reaches the provider handler with id, function_id, config, metadata; the provider fires it; unregister reaches it', async () => {
      const type = uid(`tt-${gen.name}`)
      const target = uid('e2e::tt-target')
      const events = []
      const fired = []
      const P = await makeWorker(gen, engine.workerUrl, { workerName: `provider-${gen.name}` })
      P.registerTriggerType({ id: type, description: 'e2e trigger type' }, {
        async registerTrigger(cfg) {
          events.push(['register', cfg])
          await P.trigger({ function_id: cfg.function_id, payload: { fired_by: cfg.id, every: cfg.config.every } })
        },
        async unregisterTrigger(cfg) { events.push(['unregister', cfg]) },
      })
      await connected(P); await barrier(P)

      const W = await makeWorker(gen, engine.workerUrl, { workerName: `registrant-${gen.name}` })
      W.registerFunction(target, async (d) => { fired.push(d); return {} })
      const trig = W.registerTrigger({ type, function_id: target, config: { every: 5, nested: { a: [1] } }, metadata: { m: 1 } })
      await connected(W); await barrier(W)

      await waitFor(() => events.some((e) => e[0] === 'register'), 5000, 'provider registerTrigger handler')
      const reg = events.find((e) => e[0] === 'register')[1]
      assert.match(reg.id, UUID)
      assert.equal(reg.function_id, target)
      assert.deepEqual(reg.config, { every: 5, nested: { a: [1] } })
      assert.deepEqual(reg.metadata, { m: 1 })
      assert.deepEqual(Object.keys(reg).sort(), ['config', 'function_id', 'id', 'metadata'])

      await waitFor(() => fired.length === 1, 5000, 'provider-fired call to reach the target')
      assert.equal(fired[0].fired_by, reg.id)
      assert.equal(fired[0].every, 5)

      trig.unregister()
      if (gen.name === '0.22.1') {
        await waitFor(() => events.some((e) => e[0] === 'unregister'), 5000, 'provider unregisterTrigger handler')
        const un = events.find((e) => e[0] === 'unregister')[1]
        assert.equal(un.id, reg.id)
        // The SDK passes function_id "" when the frame has none (only id and trigger_type are sent).
        assert.equal(un.function_id, '')
      } else {
        // 0.11.6 ignores the engine's unregistertrigger frame to a provider
        // (docs/wire-protocol.md#unregistertrigger) and never calls unregisterTrigger; nothing to
        // observe on the SDK.
        await barrier(W)
      }
    })

    it('a trigger registered before its type exists is pending and is sent when the provider registers', async () => {
      const type = uid(`late-${gen.name}`)
      const target = uid('e2e::late-target')
      const W = await makeWorker(gen, engine.workerUrl)
      W.registerFunction(target, async () => ({}))
      W.registerTrigger({ type, function_id: target, config: { late: true } })
      await connected(W); await barrier(W)
      await sleep(200)

      const seen = []
      const P = await makeWorker(gen, engine.workerUrl)
      P.registerTriggerType({ id: type, description: 'late provider' }, {
        async registerTrigger(cfg) { seen.push(cfg) },
        async unregisterTrigger() {},
      })
      await connected(P)
      await waitFor(() => seen.length >= 1, 5000, 'pending trigger to be sent to the late provider')
      assert.equal(seen.length, 1, `pending trigger delivered ${seen.length} times`)
      assert.equal(seen[0].function_id, target)
      assert.deepEqual(seen[0].config, { late: true })
    })

    it('when the provider goes away and comes back, its triggers are sent again', async () => {
      const type = uid(`back-${gen.name}`)
      const target = uid('e2e::back-target')
      const W = await makeWorker(gen, engine.workerUrl)
      W.registerFunction(target, async () => ({}))
      W.registerTrigger({ type, function_id: target, config: { n: 1 } })
      await connected(W); await barrier(W)
      const seen1 = []
      const P1 = await makeWorker(gen, engine.workerUrl)
      P1.registerTriggerType({ id: type, description: 'd' }, { async registerTrigger(c) { seen1.push(c) }, async unregisterTrigger() {} })
      await waitFor(() => seen1.length === 1, 5000, 'first provider to get the trigger')
      await P1.shutdown()
      await sleep(200)
      const seen2 = []
      const P2 = await makeWorker(gen, engine.workerUrl)
      P2.registerTriggerType({ id: type, description: 'd' }, { async registerTrigger(c) { seen2.push(c) }, async unregisterTrigger() {} })
      await waitFor(() => seen2.length === 1, 5000, 'second provider to get the trigger')
      assert.equal(seen2[0].id, seen1[0].id)
      assert.deepEqual(seen2[0].config, { n: 1 })
    })
  })
}

describe('7. raw provider and registrant', () => {
  it('engine -> provider registertrigger/unregistertrigger frames have the spec shape', async () => {
    const provider = await rawWorker(engine.workerUrl)
    provider.send({ type: 'registertriggertype', id: 'raw-tt', description: 'raw type' })
    await provider.roundTrip()
    const reg = await rawWorker(engine.workerUrl)
    reg.send({ type: 'registerfunction', id: 'raw::tt-target' })
    reg.send({ type: 'registertrigger', id: 'trg-raw-1', trigger_type: 'raw-tt', function_id: 'raw::tt-target', config: { every: 5 }, metadata: { m: 1 }, message_type: 'registertrigger' })
    const f = await provider.next((m) => m.type === 'registertrigger', 3000, 'registertrigger to provider')
    assert.deepEqual(f, { type: 'registertrigger', id: 'trg-raw-1', trigger_type: 'raw-tt', function_id: 'raw::tt-target', config: { every: 5 }, metadata: { m: 1 } })
    provider.send({ type: 'triggerregistrationresult', id: 'trg-raw-1', trigger_type: 'raw-tt', function_id: 'raw::tt-target', message_type: 'triggerregistrationresult' })
    // Success is silent towards the registrant.
    await reg.none((m) => m.type === 'triggerregistrationresult', 400, 'TRR on success')

    // Without metadata, no metadata key.
    reg.send({ type: 'registertrigger', id: 'trg-raw-2', trigger_type: 'raw-tt', function_id: 'raw::tt-target', config: null })
    const f2 = await provider.next((m) => m.type === 'registertrigger' && m.id === 'trg-raw-2')
    assert.ok(!('metadata' in f2), JSON.stringify(f2))

    reg.send({ type: 'unregistertrigger', id: 'trg-raw-1', trigger_type: 'raw-tt', message_type: 'unregistertrigger' })
    const u = await provider.next((m) => m.type === 'unregistertrigger', 3000, 'unregistertrigger to provider')
    assert.deepEqual(u, { type: 'unregistertrigger', id: 'trg-raw-1', trigger_type: 'raw-tt' })

    // The registrant disconnecting removes its remaining trigger at the provider.
    reg.close()
    const u2 = await provider.next((m) => m.type === 'unregistertrigger' && m.id === 'trg-raw-2', 3000, 'unregistertrigger after registrant left')
    assert.equal(u2.trigger_type, 'raw-tt')
    provider.close()
  })

  for (const gen of GENERATIONS) {
    it(`provider failure (iii-sdk@${gen.name} handler throws) is forwarded to the registrant as TRR`, async () => {
      const type = uid(`failing-${gen.name}`)
      const P = await makeWorker(gen, engine.workerUrl)
      P.registerTriggerType({ id: type, description: 'always rejects' }, {
        async registerTrigger() { throw new Error('bad config e2e') },
        async unregisterTrigger() {},
      })
      await connected(P); await barrier(P)
      const reg = await rawWorker(engine.workerUrl)
      reg.send({ type: 'registertrigger', id: 'trg-fail-1', trigger_type: type, function_id: 'x::y', config: { bad: true } })
      const r = await reg.next((m) => m.type === 'triggerregistrationresult', 5000, 'forwarded TRR')
      assert.deepEqual(r, {
        type: 'triggerregistrationresult',
        id: 'trg-fail-1',
        trigger_type: type,
        function_id: 'x::y',
        error: { code: 'trigger_registration_failed', message: 'bad config e2e' },
      })
      reg.close()
    })
  }

  it('unregistertrigger for an unknown id is silent and the connection keeps working', async () => {
    const c = await rawWorker(engine.workerUrl)
    c.send({ type: 'unregistertrigger', id: 'never-registered-xyz', trigger_type: 'stream', message_type: 'unregistertrigger' })
    c.send({ type: 'unregistertrigger', id: 'never-registered-abc' })
    await c.none(() => true, 500, 'reply to unregistertrigger of an unknown id')
    await c.roundTrip()
    c.close()
  })

  it('triggerregistrationresult from a non-provider is ignored', async () => {
    const c = await rawWorker(engine.workerUrl)
    c.send({ type: 'triggerregistrationresult', id: 'whatever', trigger_type: 'stream', function_id: 'f', error: { code: 'x', message: 'y' } })
    await c.none(() => true, 300, 'reply to a stray TRR')
    await c.roundTrip()
    c.close()
  })

  it('a worker cannot replace the built-in stream trigger type (FORBIDDEN error frame)', async () => {
    const c = await rawWorker(engine.workerUrl)
    c.send({ type: 'registertriggertype', id: 'stream', description: 'hijack' })
    const e = await c.next((m) => m.type === 'error', 3000, 'FORBIDDEN error frame')
    assert.equal(e.error?.code, 'FORBIDDEN')
    assert.ok(e.error.message.includes('stream'), e.error.message)
    c.close()
  })

  it('unregistertriggertype removes the type; its triggers go pending and come back with a new provider', async () => {
    const p1 = await rawWorker(engine.workerUrl)
    p1.send({ type: 'registertriggertype', id: 'utt', description: 'd' })
    await p1.roundTrip()
    const reg = await rawWorker(engine.workerUrl)
    reg.send({ type: 'registertrigger', id: 'trg-utt', trigger_type: 'utt', function_id: 'f::utt', config: {} })
    await p1.next((m) => m.type === 'registertrigger' && m.id === 'trg-utt')
    p1.send({ type: 'unregistertriggertype', id: 'utt', description: 'd' })
    await p1.roundTrip()
    const p2 = await rawWorker(engine.workerUrl)
    p2.send({ type: 'registertriggertype', id: 'utt', description: 'd' })
    const f = await p2.next((m) => m.type === 'registertrigger' && m.id === 'trg-utt', 3000, 'pending trigger sent to new provider')
    assert.equal(f.function_id, 'f::utt')
    p1.close(); p2.close(); reg.close()
  })
})
