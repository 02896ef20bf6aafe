// shutdown(): pending calls are rejected, the socket closes without a status code, and the
// client stays down.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { registerWorker } from '../index.js'
import { Engine, freePort } from './helpers/engine.mjs'
import { Proxy } from './helpers/proxy.mjs'
import { client, closeAll, connected, rejection, sleep, waitFor } from './helpers/util.mjs'

describe('shutdown', () => {
  let engine
  let proxy
  const clients = []

  before(async () => {
    engine = await Engine.start()
    proxy = await Proxy.start(engine.workerPort)
  })

  after(async () => {
    await closeAll(clients)
    await proxy?.close()
    await engine?.close()
  })

  test('rejects pending calls with "iii is shutting down" and closes without a status code', async () => {
    const a = client(engine.url, clients)
    const b = client(proxy.url, clients)
    let started = 0
    a.registerFunction('never::answers', () => {
      started++
      return new Promise(() => {})
    })
    await connected(a)
    await connected(b)
    // The engine applies A's frames in order: never::answers exists once this returns.
    await a.trigger({ function_id: 'stream::list', payload: { stream_name: 'none', group_id: 'none' } })

    const states = []
    b.addConnectionStateListener((s) => states.push(s))
    const pending = b.trigger({ function_id: 'never::answers', payload: {} })
    const pending2 = b.trigger({ function_id: 'never::answers', payload: {}, timeoutMs: 60000 })
    await waitFor(() => started === 2, { what: 'both calls at A' })

    const done = b.shutdown()
    const [e1, e2] = await Promise.all([rejection(pending), rejection(pending2)])
    assert.equal(e1.message, 'iii is shutting down')
    assert.equal(e2.message, 'iii is shutting down')
    await done
    assert.equal(b.getConnectionState(), 'disconnected')
    assert.deepEqual(states, ['disconnected'])

    const close = proxy.connections[0].c2e.find((f) => f.kind === 'close')
    assert.ok(close, 'client sent no close frame')
    assert.equal(close.data.code, null, 'close frame carried a status code')

    // Calls after shutdown fail; the client does not come back.
    assert.equal((await rejection(b.trigger({ function_id: 'x', payload: {} }))).message, 'iii is shutting down')
    await sleep(500)
    assert.equal(proxy.connections.length, 1, 'the client reconnected after shutdown')
    await b.shutdown() // twice is fine
  })

  test('shutdown while the engine is unreachable rejects queued calls and stops retrying', async () => {
    const port = await freePort() // nothing listens here
    const c = registerWorker(`ws://127.0.0.1:${port}`, { reconnectionConfig: { initialDelayMs: 50, maxDelayMs: 100 } })
    const pending = c.trigger({ function_id: 'x', payload: {} })
    await waitFor(() => c.getConnectionState() === 'reconnecting', { what: 'reconnecting' })
    await c.shutdown()
    assert.equal((await rejection(pending)).message, 'iii is shutting down')
    assert.equal(c.getConnectionState(), 'disconnected')
  })

  test('maxRetries gives up with state failed', async () => {
    const port = await freePort()
    const c = registerWorker(`ws://127.0.0.1:${port}`, {
      reconnectionConfig: { initialDelayMs: 20, maxDelayMs: 40, maxRetries: 2 },
    })
    const states = []
    c.addConnectionStateListener((s) => states.push(s))
    await waitFor(() => c.getConnectionState() === 'failed', { what: 'failed state' })
    assert.deepEqual(states, ['reconnecting', 'failed'])
    await c.shutdown()
  })
})
