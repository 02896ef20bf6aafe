// Reconnect: the engine is killed and restarted on the same port; the clients replay their
// registrations (reattach first), flush what they queued, and everything works again.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Engine } from './helpers/engine.mjs'
import { Proxy } from './helpers/proxy.mjs'
import { client, closeAll, connected, rejection, sleep, waitFor } from './helpers/util.mjs'

describe('reconnect after an engine restart', () => {
  let engine
  let proxy
  let a // behind the recording proxy
  let b
  const clients = []
  const states = []
  const events = []

  before(async () => {
    engine = await Engine.start()
    proxy = await Proxy.start(engine.workerPort)
    a = client(proxy.url, clients)
    b = client(engine.url, clients)
    a.addConnectionStateListener((s) => states.push(s))

    a.registerFunction('a::echo', (x) => ({ echoed: x }))
    a.registerFunction({ id: 'ui::on-change' }, (e) => {
      events.push(e)
      return {}
    })
    a.registerTrigger({ type: 'stream', function_id: 'ui::on-change', config: { stream_name: 'rc', group_id: 'g' } })
    a.registerFunction('a::other', () => 'other')
    await connected(a)
    await connected(b)
    await settleA()
  })

  // A round trip on A's connection: the engine has applied what A sent before.
  async function settleA() {
    await a.trigger({ function_id: 'stream::list', payload: { stream_name: 'none', group_id: 'none' } })
  }

  const item = (id, data) => ({ stream_name: 'rc', group_id: 'g', item_id: id, data })

  after(async () => {
    await closeAll(clients)
    await proxy?.close()
    await engine?.close()
  })

  test('everything works before the restart', async () => {
    assert.deepEqual(await b.trigger({ function_id: 'a::echo', payload: 1 }), { echoed: 1 })
    await b.trigger({ function_id: 'stream::set', payload: item('i1', 1) })
    await waitFor(() => events.length === 1, { what: 'event before restart' })
  })

  test('first connection: replay in order and no reattach', () => {
    const first = proxy.connections[0].sent()
    const regs = first.filter((f) => f.type !== 'invokefunction' && f.type !== 'invocationresult')
    assert.deepEqual(
      regs.map((f) => [f.type, f.id ?? f.function_id]),
      [
        ['registerfunction', 'a::echo'],
        ['registerfunction', 'ui::on-change'],
        ['registerfunction', 'a::other'],
        ['registertrigger', regs[3].id],
      ],
    )
    assert.deepEqual(regs[3], {
      type: 'registertrigger',
      id: regs[3].id,
      trigger_type: 'stream',
      function_id: 'ui::on-change',
      config: { stream_name: 'rc', group_id: 'g' },
    })
    assert.match(regs[3].id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })

  test('after kill and restart: reattach first, same registrations, queued calls flushed', async () => {
    const firstConn = proxy.connections[0]
    const registered = firstConn.received().find((f) => f.type === 'workerregistered')
    assert.ok(registered, 'engine sent no workerregistered')
    const triggerId = firstConn.sent().find((f) => f.type === 'registertrigger').id

    await engine.kill()
    await waitFor(() => a.getConnectionState() === 'reconnecting', { what: 'A reconnecting' })
    await waitFor(() => b.getConnectionState() === 'reconnecting', { what: 'B reconnecting' })

    // Made while down: queued. One call times out before the engine is back and must not be
    // sent late; the other survives the reconnect with its timer.
    const expired = rejection(a.trigger({ function_id: 'stream::set', payload: item('expired', 0), timeoutMs: 100 }))
    const survivor = a.trigger({ function_id: 'stream::set', payload: item('queued', 'q'), timeoutMs: 10000 })
    a.registerFunction('a::late', () => 'registered while down')
    const expiredErr = await expired
    assert.equal(expiredErr.message, 'Invocation timeout after 100ms: stream::set')

    await sleep(300) // a few failed reconnect attempts
    await engine.restart()
    await connected(a, 10000)
    await connected(b, 10000)

    assert.deepEqual(await survivor, { old_value: null, new_value: 'q' })
    // The restarted engine's store is empty: only the surviving call wrote.
    const written = await b.trigger({ function_id: 'stream::list', payload: { stream_name: 'rc', group_id: 'g' } })
    assert.deepEqual(written, ['q'])

    // The new connection that reached the engine (failed attempts are connections too).
    const conn = proxy.connections.findLast((c) => c.sent().length > 0)
    assert.notEqual(conn, firstConn)
    const sent = conn.sent()
    assert.deepEqual(sent[0], {
      type: 'reattach',
      previous_worker_id: registered.worker_id,
      reattach_token: registered.reattach_token,
    })
    assert.deepEqual(
      sent.slice(1, 6).map((f) => [f.type, f.id ?? f.function_id]),
      [
        ['registerfunction', 'a::echo'],
        ['registerfunction', 'ui::on-change'],
        ['registerfunction', 'a::other'],
        ['registerfunction', 'a::late'],
        ['registertrigger', triggerId],
      ],
    )
    assert.deepEqual(sent[6], {
      type: 'invokefunction',
      invocation_id: sent[6].invocation_id,
      function_id: 'stream::set',
      data: item('queued', 'q'),
    })
    assert.ok(!sent.some((f) => f.data?.item_id === 'expired'), 'a timed-out queued call was sent late')
    assert.ok(states.includes('reconnecting'))
    assert.equal(states.at(-1), 'connected')
  })

  test('functions and triggers work again after the restart', async () => {
    assert.deepEqual(await b.trigger({ function_id: 'a::echo', payload: 2 }), { echoed: 2 })
    assert.equal(await b.trigger({ function_id: 'a::late', payload: {} }), 'registered while down')
    await waitFor(() => events.some((e) => e.id === 'queued'), { what: 'event of the queued write' })
    const before = events.length
    await b.trigger({ function_id: 'stream::set', payload: item('i2', 2) })
    await waitFor(() => events.length === before + 1, { what: 'event after restart' })
    assert.equal(events.at(-1).id, 'i2')
    assert.equal(events.at(-1).event.type, 'create')
  })

  test('binary frames from the engine side are ignored silently', async () => {
    const conn = proxy.open().at(-1)
    const errors = []
    const origError = console.error
    console.error = (...args) => errors.push(args)
    try {
      conn.injectToClient(0x2, Buffer.from('{"type":"ping"}'))
      assert.deepEqual(await b.trigger({ function_id: 'a::echo', payload: 3 }), { echoed: 3 })
    } finally {
      console.error = origError
    }
    assert.deepEqual(errors, [])
    assert.equal(a.getConnectionState(), 'connected')
  })
})
