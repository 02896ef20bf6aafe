// ISSUE "engine core", items 5-6: a worker dying mid-call, reconnect, re-registration, reattach.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  startEngine, rawWorker, makeWorker, connected, barrier, shutdownWorkers, spawnChild,
  GENERATIONS, rejection, waitFor, sleep, uid,
} from './lib/engine.mjs'

let engine
before(async () => { engine = await startEngine() })
after(async () => {
  await shutdownWorkers()
  await engine?.cleanup()
})

describe('5. worker dies mid-call', () => {
  for (const gen of GENERATIONS) {
    it(`iii-sdk@${gen.name}: killing the worker process fails the pending caller at once with invocation_stopped`, async () => {
      const fn = `e2e::hang::${gen.name}`
      const child = spawnChild({ mode: 'hang', gen: gen.name, url: engine.workerUrl, fn })
      try {
        await child.waitLine(/^READY$/, 15000)
        const caller = await makeWorker(gen, engine.workerUrl, { invocationTimeoutMs: 30000 })
        await connected(caller)
        const p = rejection(caller.trigger({ function_id: fn, payload: { x: 1 } }))
        await child.waitLine(/^CALLED$/, 5000)
        const killedAt = Date.now()
        await child.kill('SIGKILL')
        const e = await p
        const took = Date.now() - killedAt
        assert.equal(e.code, 'invocation_stopped', `expected invocation_stopped, got ${e.code}: ${e.message}`)
        assert.equal(e.name, gen.errorName)
        assert.ok(took < 5000, `caller learned about the dead worker only after ${took} ms`)
        // The dead worker's function is gone.
        const e2 = await rejection(caller.trigger({ function_id: fn, payload: {} }))
        assert.equal(e2.code, 'function_not_found')
      } finally {
        await child.kill()
      }
    })
  }

  it('raw: terminating the worker socket fails the caller with IR invocation_stopped', async () => {
    const w = await rawWorker(engine.workerUrl)
    w.send({ type: 'registerfunction', id: 'raw::hang' })
    await w.roundTrip()
    const caller = await rawWorker(engine.workerUrl)
    caller.send({ type: 'invokefunction', invocation_id: 'stop-1', function_id: 'raw::hang', data: {} })
    await w.next((m) => m.type === 'invokefunction' && m.function_id === 'raw::hang')
    const t0 = Date.now()
    w.terminate()
    const r = await caller.next((m) => m.invocation_id === 'stop-1', 5000, 'invocation_stopped result')
    assert.ok(Date.now() - t0 < 5000)
    assert.equal(r.type, 'invocationresult')
    assert.equal(r.function_id, 'raw::hang')
    assert.equal(r.error?.code, 'invocation_stopped')
    assert.equal(typeof r.error.message, 'string')
    caller.close()
  })

  it('raw: a worker closing cleanly also stops its in-flight calls', async () => {
    const w = await rawWorker(engine.workerUrl)
    w.send({ type: 'registerfunction', id: 'raw::hang2' })
    await w.roundTrip()
    const caller = await rawWorker(engine.workerUrl)
    caller.send({ type: 'invokefunction', invocation_id: 'stop-2', function_id: 'raw::hang2', data: {} })
    await w.next((m) => m.type === 'invokefunction' && m.function_id === 'raw::hang2')
    w.close(1000, 'bye')
    const r = await caller.next((m) => m.invocation_id === 'stop-2', 5000, 'invocation_stopped result')
    assert.equal(r.error?.code, 'invocation_stopped')
    caller.close()
  })

  it('raw: a late result from a reconnected worker for a stopped call is ignored', async () => {
    const w = await rawWorker(engine.workerUrl)
    w.send({ type: 'registerfunction', id: 'raw::hang3' })
    await w.roundTrip()
    const caller = await rawWorker(engine.workerUrl)
    caller.send({ type: 'invokefunction', invocation_id: 'stop-3', function_id: 'raw::hang3', data: {} })
    const call = await w.next((m) => m.type === 'invokefunction' && m.function_id === 'raw::hang3')
    w.terminate()
    await caller.next((m) => m.invocation_id === 'stop-3')
    const w2 = await rawWorker(engine.workerUrl)
    w2.send({ type: 'invocationresult', invocation_id: call.invocation_id, function_id: 'raw::hang3', result: 'late' })
    await w2.roundTrip()
    await caller.none((m) => m.invocation_id === 'stop-3', 300, 'second result for a stopped call')
    w2.close(); caller.close()
  })
})

describe('6. reconnect and re-registration', () => {
  it('after SIGKILL + restart on the same ports, SDK workers of both generations reconnect and serve again', async () => {
    const ws = []
    for (const gen of GENERATIONS) {
      const w = await makeWorker(gen, engine.workerUrl, { workerName: `survivor-${gen.name}` })
      w.registerFunction(`e2e::survivor::${gen.name}`, async (d) => ({ gen: gen.name, d }))
      await connected(w)
      await barrier(w)
      ws.push({ gen, w, firstId: w.workerId })
    }
    await engine.kill()
    await sleep(300)
    await engine.restart()
    const probe = await rawWorker(engine.workerUrl)
    for (const { gen, w, firstId } of ws) {
      const fn = `e2e::survivor::${gen.name}`
      const r = await waitFor(async () => {
        const res = await probe.call(fn, { after: 'restart' }, { timeoutMs: 2000 })
        return res.error ? undefined : res
      }, 15000, `${fn} to be callable after the engine restart`, 200)
      assert.deepEqual(r.result, { gen: gen.name, d: { after: 'restart', _caller_worker_id: probe.workerId } })
      await waitFor(() => w.workerId && w.workerId !== firstId, 5000, 'a new worker_id after reconnect')
      // The SDK's own calls work again too.
      const own = await w.trigger({ function_id: fn, payload: { own: true } })
      assert.deepEqual(own, { gen: gen.name, d: { own: true, _caller_worker_id: w.workerId } })
    }
    probe.close()
  })

  it('0.22.1 worker keeps its functions across its own reconnect (reattach retires the old connection)', async () => {
    const gen = GENERATIONS[0]
    const w = await makeWorker(gen, engine.workerUrl)
    const fn = uid('e2e::reattach')
    let calls = 0
    w.registerFunction(fn, async () => ++calls)
    await connected(w)
    await barrier(w)
    const firstId = w.workerId
    // Break the socket from the client side; the SDK reconnects and sends reattach + replay.
    w.ws.terminate()
    await waitFor(() => w.workerId !== firstId, 10000, 'SDK to reconnect')
    await barrier(w)
    const probe = await rawWorker(engine.workerUrl)
    const r = await probe.call(fn, {})
    assert.equal(r.error, undefined, JSON.stringify(r))
    assert.equal(typeof r.result, 'number')
    probe.close()
  })

  it('raw reattach: a matching token retires the old connection; its unreplayed functions disappear', async () => {
    const old = await rawWorker(engine.workerUrl)
    old.serve({ 'ra::kept': () => 'old', 'ra::dropped': () => 'old' })
    await old.roundTrip()
    const probe = await rawWorker(engine.workerUrl)
    assert.equal((await probe.call('ra::dropped', {})).result, 'old')

    const fresh = await rawWorker(engine.workerUrl)
    fresh.send({ type: 'reattach', previous_worker_id: old.workerId, reattach_token: old.reattachToken })
    fresh.serve({ 'ra::kept': () => 'new' })
    await fresh.roundTrip()
    const kept = await probe.call('ra::kept', {})
    assert.equal(kept.result, 'new')
    const dropped = await probe.call('ra::dropped', {})
    assert.equal(dropped.error?.code, 'function_not_found', `old connection should be retired, got ${JSON.stringify(dropped)}`)
    old.close(); fresh.close(); probe.close()
  })

  it('raw reattach with a wrong token changes nothing', async () => {
    const owner = await rawWorker(engine.workerUrl)
    owner.serve({ 'rb::fn': () => 'owner' })
    await owner.roundTrip()
    const intruder = await rawWorker(engine.workerUrl)
    intruder.send({ type: 'reattach', previous_worker_id: owner.workerId, reattach_token: 'not-the-token' })
    await intruder.roundTrip()
    await intruder.none((m) => m.type !== 'pong', 200, 'reply to a non-matching reattach')
    const probe = await rawWorker(engine.workerUrl)
    assert.equal((await probe.call('rb::fn', {})).result, 'owner')
    assert.ok(owner.isOpen, 'owner connection must stay open')
    owner.close(); intruder.close(); probe.close()
  })

  it('0.11-style: re-registering the same id from a new connection takes it over while the old one is open', async () => {
    const old = await rawWorker(engine.workerUrl)
    old.serve({ 'rc::fn': () => 'old' })
    await old.roundTrip()
    const probe = await rawWorker(engine.workerUrl)
    assert.equal((await probe.call('rc::fn', {})).result, 'old')
    const neu = await rawWorker(engine.workerUrl)
    neu.serve({ 'rc::fn': () => 'new' })
    await neu.roundTrip()
    assert.equal((await probe.call('rc::fn', {})).result, 'new')
    // The old owner disconnecting must not remove the function it no longer owns.
    await old.close()
    await sleep(200)
    assert.equal((await probe.call('rc::fn', {})).result, 'new')
    neu.close(); probe.close()
  })

  it('0.11.6 SDK: a second worker registering the same id takes it over (no reattach needed)', async () => {
    const gen = GENERATIONS[1]
    const fn = uid('e2e::takeover')
    const a = await makeWorker(gen, engine.workerUrl)
    a.registerFunction(fn, async () => 'a')
    await connected(a); await barrier(a)
    const b = await makeWorker(gen, engine.workerUrl)
    b.registerFunction(fn, async () => 'b')
    await connected(b); await barrier(b)
    const probe = await rawWorker(engine.workerUrl)
    assert.equal((await probe.call(fn, {})).result, 'b')
    probe.close()
  })

  it('unregisterfunction removes only a function the sender owns', async () => {
    const owner = await rawWorker(engine.workerUrl)
    owner.serve({ 'rd::fn': () => 'owner' })
    await owner.roundTrip()
    const other = await rawWorker(engine.workerUrl)
    other.send({ type: 'unregisterfunction', id: 'rd::fn' })
    await other.roundTrip()
    const probe = await rawWorker(engine.workerUrl)
    assert.equal((await probe.call('rd::fn', {})).result, 'owner')
    owner.send({ type: 'unregisterfunction', id: 'rd::fn' })
    await owner.roundTrip()
    assert.equal((await probe.call('rd::fn', {})).error?.code, 'function_not_found')
    owner.close(); other.close(); probe.close()
  })
})
