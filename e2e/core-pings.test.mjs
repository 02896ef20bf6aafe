// ISSUE "engine core", item 12: engine-side keepalive pings and idle close.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  startEngine, rawClient, rawWorker, makeWorker, connected, barrier, shutdownWorkers,
  GENERATIONS, sleep,
} from './lib/engine.mjs'

let engine
before(async () => { engine = await startEngine({ engine: { ping_after_ms: 500, idle_timeout_ms: 1500 } }) })
after(async () => {
  await shutdownWorkers()
  await engine?.cleanup()
})

describe('12. engine pings', () => {
  it('an idle iii-sdk@0.11.6 worker (never pings) stays connected past the idle timeout', async () => {
    const gen = GENERATIONS[1]
    const w = await makeWorker(gen, engine.workerUrl)
    w.registerFunction('e2e::idle011', async () => 'still here')
    const id = await connected(w)
    await barrier(w)
    await sleep(4500)
    assert.equal(w.workerId, id, 'the worker reconnected (got a new worker_id), so the engine dropped it')
    const probe = await rawWorker(engine.workerUrl)
    const r = await probe.call('e2e::idle011', {})
    assert.equal(r.result, 'still here')
    probe.close()
  })

  it('an idle iii-sdk@0.22.1 worker stays connected too', async () => {
    const w = await makeWorker(GENERATIONS[0], engine.workerUrl)
    const id = await connected(w)
    await sleep(3500)
    assert.equal(w.workerId, id)
  })

  it('a silent raw client that answers pings receives engine pings and stays open', async () => {
    const c = await rawClient(engine.workerUrl)
    await sleep(4000)
    assert.ok(c.isOpen, `closed: ${JSON.stringify(c.closeInfo)}`)
    assert.ok(c.pings.length >= 2, `expected engine pings while idle, got ${c.pings.length}`)
    await c.roundTrip()
    c.close()
  })

  it('a raw client that never answers pings is closed with 1001 "idle timeout"', async () => {
    const c = await rawClient(engine.workerUrl, { autoPong: false })
    const t0 = Date.now()
    const info = await Promise.race([c.closed, sleep(8000).then(() => null)])
    assert.ok(info, 'the engine never closed a dead connection')
    const took = Date.now() - t0
    assert.equal(info.code, 1001)
    assert.match(info.reason, /idle timeout/)
    assert.ok(took >= 1000, `closed after ${took} ms, before the idle timeout`)
    assert.ok(c.pings.length >= 1, 'it should have been pinged first')
  })

  it('the stream port applies the same keepalive', async () => {
    const c = await rawClient(engine.streamUrl, { autoPong: false })
    const info = await Promise.race([c.closed, sleep(8000).then(() => null)])
    assert.ok(info, 'stream port never closed a dead connection')
    assert.equal(info.code, 1001)
    const ok = await rawClient(engine.streamUrl)
    await sleep(3000)
    assert.ok(ok.isOpen, 'a live stream client must stay open')
    ok.close()
  })
})
