// Functions and calls between two browser clients through the real engine.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { TriggerAction } from '../index.js'
import { Engine } from './helpers/engine.mjs'
import { client, closeAll, connected, rejection, sleep, waitFor } from './helpers/util.mjs'

describe('functions', () => {
  let engine
  let a
  let b
  const clients = []
  const calls = [] // what A's handlers were called with
  const voidCalls = []

  before(async () => {
    engine = await Engine.start()
    a = client(engine.url, clients)
    b = client(engine.url, clients)

    // Registered before the socket is open: they go out in the replay on open.
    const add = a.registerFunction('math::add', async ({ x, y }) => x + y, { description: 'adds two numbers' })
    assert.equal(add.id, 'math::add')
    const mul = a.registerFunction({ id: 'math::mul', description: 'seed form' }, (input) => input.x * input.y)
    assert.equal(mul.id, 'math::mul')
    a.registerFunction('probe::args', function (...args) {
      calls.push(args)
      return { argc: args.length }
    })
    a.registerFunction('probe::throws', () => {
      throw new Error('handler broke')
    })
    a.registerFunction('probe::undefined', () => undefined)
    a.registerFunction('probe::slow', () => new Promise((resolve) => setTimeout(() => resolve('late'), 1500)))
    a.registerFunction('probe::void-sink', (input) => {
      voidCalls.push(input)
    })

    await connected(a)
    await connected(b)
    await settleA()
  })

  // A round trip on A's connection: the engine applies a connection's frames in order, so
  // everything A sent before is registered when this returns.
  async function settleA() {
    await a.trigger({ function_id: 'stream::list', payload: { stream_name: 'none', group_id: 'none' } })
  }

  after(async () => {
    await closeAll(clients)
    await engine?.close()
  })

  test('B calls functions A registered in both forms', async () => {
    assert.equal(await b.trigger({ function_id: 'math::add', payload: { x: 2, y: 3 } }), 5)
    assert.equal(await b.trigger({ function_id: 'math::mul', payload: { x: 4, y: 5 } }), 20)
  })

  test('A calls its own function through the engine', async () => {
    assert.equal(await a.trigger({ function_id: 'math::add', payload: { x: 1, y: 1 }, timeoutMs: 5000 }), 2)
  })

  test('handlers get exactly one argument: the payload', async () => {
    const res = await b.trigger({ function_id: 'probe::args', payload: { hello: 'world' } })
    assert.deepEqual(res, { argc: 1 })
    assert.equal(calls.length, 1)
    assert.equal(calls[0].length, 1)
    assert.equal(calls[0][0].hello, 'world')
  })

  test('a handler returning undefined resolves undefined', async () => {
    assert.equal(await b.trigger({ function_id: 'probe::undefined', payload: {} }), undefined)
  })

  test('unknown function rejects with an Error whose code is function_not_found', async () => {
    const err = await rejection(b.trigger({ function_id: 'no::such-fn', payload: {} }))
    assert.ok(err instanceof Error)
    assert.equal(err.code, 'function_not_found')
    assert.ok(Object.hasOwn(err, 'code'))
    assert.ok(Object.hasOwn(err, 'message'))
    assert.ok(Object.hasOwn(err, 'stacktrace'))
    assert.match(err.message, /no::such-fn/)
  })

  test('a throwing handler rejects the caller with invocation_failed', async () => {
    const err = await rejection(b.trigger({ function_id: 'probe::throws', payload: {} }))
    assert.ok(err instanceof Error)
    assert.equal(err.code, 'invocation_failed')
    assert.equal(err.message, 'handler broke')
    assert.match(err.stacktrace, /handler broke/)
  })

  test('void calls resolve undefined at once and still reach the handler', async () => {
    const res = await b.trigger({
      function_id: 'probe::void-sink',
      payload: { n: 7 },
      action: TriggerAction.Void(),
    })
    assert.equal(res, undefined)
    await waitFor(() => voidCalls.length === 1, { what: 'void call at A' })
    assert.deepEqual(voidCalls[0].n, 7)
  })

  test('TriggerAction builders', () => {
    assert.deepEqual(TriggerAction.Void(), { type: 'void' })
    assert.deepEqual(TriggerAction.Enqueue({ queue: 'jobs' }), { type: 'enqueue', queue: 'jobs' })
  })

  test('per-call timeoutMs rejects with the upstream message; the late result is ignored', async () => {
    const err = await rejection(b.trigger({ function_id: 'probe::slow', payload: {}, timeoutMs: 200 }))
    assert.equal(err.message, 'Invocation timeout after 200ms: probe::slow')
    await sleep(1500) // the late result arrives and must not disturb anything
    assert.equal(await b.trigger({ function_id: 'math::add', payload: { x: 1, y: 2 } }), 3)
  })

  test('local validation: blank id, duplicate id, non-function handler', () => {
    assert.throws(() => a.registerFunction('', () => {}), { message: 'id is required' })
    assert.throws(() => a.registerFunction('   ', () => {}), { message: 'id is required' })
    assert.throws(() => a.registerFunction({ id: '' }, () => {}), { message: 'id is required' })
    assert.throws(() => a.registerFunction('math::add', () => {}), {
      message: 'function id already registered: math::add',
    })
    assert.throws(() => a.registerFunction({ id: 'math::mul' }, () => {}), {
      message: 'function id already registered: math::mul',
    })
    assert.throws(() => a.registerFunction('probe::nohandler', { url: 'http://x' }), TypeError)
    assert.throws(() => a.registerFunction({ id: 'probe::nohandler' }), TypeError)
  })

  test('unregister removes the function from the engine; the id can be registered again', async () => {
    const ref = a.registerFunction('probe::temp', () => 'first')
    await settleA()
    assert.equal(await b.trigger({ function_id: 'probe::temp', payload: {} }), 'first')
    ref.unregister()
    ref.unregister() // idempotent
    await settleA()
    const err = await rejection(b.trigger({ function_id: 'probe::temp', payload: {} }))
    assert.equal(err.code, 'function_not_found')
    const again = a.registerFunction('probe::temp', () => 'second')
    await settleA()
    assert.equal(await b.trigger({ function_id: 'probe::temp', payload: {} }), 'second')
    again.unregister()
  })

  test('listFunctions sees the other client\'s functions', async () => {
    const fns = await b.listFunctions()
    const ids = fns.map((f) => f.function_id)
    assert.ok(ids.includes('math::add'), `math::add missing from ${JSON.stringify(ids)}`)
    const add = fns.find((f) => f.function_id === 'math::add')
    assert.equal(add.description, 'adds two numbers')
  })

  test('registerService is accepted and the connection keeps working', async () => {
    a.registerService({ id: 'math', description: 'maths' })
    await settleA()
    assert.equal(await b.trigger({ function_id: 'math::add', payload: { x: 5, y: 5 } }), 10)
  })

  test('enqueue without a queue provider rejects with enqueue_error', async () => {
    const err = await rejection(
      b.trigger({ function_id: 'math::add', payload: { x: 1, y: 1 }, action: TriggerAction.Enqueue({ queue: 'q' }) }),
    )
    assert.equal(err.code, 'enqueue_error')
  })
})
