// ISSUE "engine core", item 9: bad input on a raw socket gets a clear answer; the connection
// and the engine keep working.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startEngine, rawWorker, sleep } from './lib/engine.mjs'

const LIMIT = 65536

let engine
before(async () => { engine = await startEngine({ engine: { max_message_bytes: LIMIT } }) })
after(async () => { await engine?.cleanup() })

describe('9. bad input', () => {
  let c
  let bystander
  before(async () => {
    c = await rawWorker(engine.workerUrl)
    bystander = await rawWorker(engine.workerUrl)
    bystander.serve({ 'bad::echo': (d) => ({ got: d }) })
    await bystander.roundTrip()
  })
  after(() => { c.close(); bystander.close() })

  // Every case: send, check the reply, then prove the same connection still works.
  const errFrame = (m) => m.type === 'error'
  const cases = [
    {
      name: 'non-JSON text',
      send: (c) => c.sendRaw('this is not json'),
      reply: errFrame,
      check: (m) => assert.equal(m.error.code, 'invalid_message'),
    },
    {
      name: 'a JSON array',
      send: (c) => c.sendRaw('[1,2,3]'),
      reply: errFrame,
      check: (m) => assert.equal(m.error.code, 'invalid_message'),
    },
    {
      name: 'a JSON string',
      send: (c) => c.sendRaw('"invokefunction"'),
      reply: errFrame,
      check: (m) => assert.equal(m.error.code, 'invalid_message'),
    },
    {
      name: 'an object without type',
      send: (c) => c.send({ id: 'x' }),
      reply: errFrame,
      check: (m) => { assert.equal(m.error.code, 'invalid_message'); assert.match(m.error.message, /type/) },
    },
    {
      name: 'an unknown type',
      send: (c) => c.send({ type: 'frobnicate', x: 1 }),
      reply: errFrame,
      check: (m) => { assert.equal(m.error.code, 'invalid_message'); assert.match(m.error.message, /frobnicate|type/) },
    },
    {
      name: 'invokefunction without function_id (readable invocation_id -> IR)',
      send: (c) => c.send({ type: 'invokefunction', invocation_id: 'bad-1', data: {} }),
      reply: (m) => m.type === 'invocationresult' && m.invocation_id === 'bad-1',
      check: (m) => { assert.equal(m.error?.code, 'invalid_message'); assert.match(m.error.message, /function_id/) },
    },
    {
      name: 'invokefunction with function_id of the wrong type',
      send: (c) => c.send({ type: 'invokefunction', invocation_id: 'bad-2', function_id: 42, data: {} }),
      reply: (m) => m.type === 'invocationresult' && m.invocation_id === 'bad-2',
      check: (m) => { assert.equal(m.error?.code, 'invalid_message'); assert.match(m.error.message, /function_id/) },
    },
    {
      name: 'invokefunction with a numeric invocation_id (not readable -> ERR)',
      send: (c) => c.send({ type: 'invokefunction', invocation_id: 5, function_id: 'bad::echo', data: {} }),
      reply: (m) => m.type === 'error' || (m.type === 'invocationresult' && m.function_id === 'bad::echo'),
      check: (m) => { assert.equal(m.type, 'error', `expected an ERR frame, got ${JSON.stringify(m)}`); assert.equal(m.error.code, 'invalid_message'); assert.match(m.error.message, /invocation_id/) },
    },
    {
      name: 'registerfunction with an empty id',
      send: (c) => c.send({ type: 'registerfunction', id: '' }),
      reply: errFrame,
      check: (m) => { assert.equal(m.error.code, 'invalid_argument'); assert.match(m.error.message, /\bid\b/) },
    },
    {
      name: 'registerfunction without id',
      send: (c) => c.send({ type: 'registerfunction', description: 'no id' }),
      reply: errFrame,
      check: (m) => { assert.equal(m.error.code, 'invalid_message'); assert.match(m.error.message, /\bid\b/) },
    },
    {
      name: 'registertrigger without trigger_type (readable id -> TRR)',
      send: (c) => c.send({ type: 'registertrigger', id: 'trg-bad-1', function_id: 'bad::echo', config: {} }),
      reply: (m) => m.type === 'triggerregistrationresult' && m.id === 'trg-bad-1',
      check: (m) => { assert.equal(m.error?.code, 'invalid_message'); assert.match(m.error.message, /trigger_type/) },
    },
    {
      name: 'registertrigger with an empty function_id',
      send: (c) => c.send({ type: 'registertrigger', id: 'trg-bad-2', trigger_type: 'stream', function_id: '', config: { stream_name: 's' } }),
      reply: (m) => m.type === 'triggerregistrationresult' && m.id === 'trg-bad-2',
      check: (m) => { assert.equal(m.error?.code, 'invalid_argument'); assert.match(m.error.message, /function_id/) },
    },
    {
      name: 'registertriggertype with an empty id',
      send: (c) => c.send({ type: 'registertriggertype', id: '', description: 'x' }),
      reply: errFrame,
      check: (m) => { assert.equal(m.error.code, 'invalid_argument'); assert.match(m.error.message, /\bid\b/) },
    },
  ]

  for (const tc of cases) {
    it(`${tc.name}: answered, connection stays usable`, async () => {
      tc.send(c)
      const m = await c.next(tc.reply, 3000, `reply to ${tc.name}`)
      tc.check(m)
      assert.equal(typeof (m.error?.message), 'string')
      assert.ok(m.error.message.length > 0)
      await c.roundTrip()
      const r = await c.call('bad::echo', { after: tc.name })
      assert.deepEqual(r.result, { got: { after: tc.name, _caller_worker_id: c.workerId } })
    })
  }

  it('lenient: missing data is null, missing config/description accepted, empty frames ignored', async () => {
    c.sendRaw('')
    c.sendRaw('   ')
    await c.none(() => true, 300, 'reply to an empty frame')
    const r = await c.call('bad::echo', undefined)
    assert.equal(r.error, undefined, JSON.stringify(r))
    // The worker sees the missing data as null or absent (serve() returns {got: data}).
    const leg = bystander.served.at(-1)
    assert.equal(leg.function_id, 'bad::echo')
    assert.ok(leg.data === null || !('data' in leg), `forwarded data: ${JSON.stringify(leg.data)}`)
    c.send({ type: 'registertriggertype', id: 'bad-tt-nodesc' })
    c.send({ type: 'registertrigger', id: 'trg-noconfig', trigger_type: 'bad-tt-nodesc', function_id: 'bad::echo' })
    const f = await c.next((m) => m.type === 'registertrigger' && m.id === 'trg-noconfig', 3000, 'registertrigger to provider (self)')
    assert.equal(f.function_id, 'bad::echo')
    c.send({ type: 'triggerregistrationresult', id: 'trg-noconfig', trigger_type: 'bad-tt-nodesc', function_id: 'bad::echo' })
    await c.none((m) => m.type === 'error', 300, 'error for missing config/description')
  })

  it('protocol ping with extra fields -> pong', async () => {
    c.send({ type: 'ping', extra: 1 })
    const p = await c.next((m) => m.type === 'pong')
    assert.deepEqual(p, { type: 'pong' })
  })

  it('a frame just under the size limit is accepted', async () => {
    const pad = 'p'.repeat(LIMIT - 200)
    const r = await c.call('bad::echo', { pad })
    assert.equal(r.error, undefined)
    assert.equal(r.result.got.pad.length, pad.length)
  })

  it('an oversized frame closes that connection with 1009 naming the limit; others keep working', async () => {
    const big = await rawWorker(engine.workerUrl)
    big.sendRaw(JSON.stringify({ type: 'invokefunction', invocation_id: 'big-1', function_id: 'bad::echo', data: { pad: 'x'.repeat(LIMIT + 10) } }))
    const closeInfo = await Promise.race([big.closed, sleep(5000).then(() => null)])
    assert.ok(closeInfo, 'connection was not closed after an oversized frame')
    assert.equal(closeInfo.code, 1009)
    assert.ok(closeInfo.reason.includes(String(LIMIT)), `close reason should name the limit ${LIMIT}: "${closeInfo.reason}"`)
    const r = await c.call('bad::echo', { still: 'alive' })
    assert.deepEqual(r.result, { got: { still: 'alive', _caller_worker_id: c.workerId } })
    const fresh = await rawWorker(engine.workerUrl)
    await fresh.roundTrip()
    fresh.close()
  })

  it('the bystander connection was never disturbed', async () => {
    const r = await bystander.call('bad::echo', { bystander: true })
    assert.deepEqual(r.result, { got: { bystander: true, _caller_worker_id: bystander.workerId } })
  })
})
