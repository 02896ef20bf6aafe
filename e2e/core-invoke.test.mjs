// ISSUE "engine core", items 1-4: workerregistered, routing, void calls, errors.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  startEngine, rawClient, rawWorker, makeWorker, connected, barrier, shutdownWorkers,
  GENERATIONS, sdkModule, rejection, waitFor, sleep, uid,
} from './lib/engine.mjs'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

let engine
before(async () => { engine = await startEngine() })
after(async () => {
  await shutdownWorkers()
  await engine?.cleanup()
})

describe('1. workerregistered', () => {
  it('is the first frame, with worker_id and reattach_token; ids differ per connection', async () => {
    const a = await rawClient(engine.workerUrl)
    const b = await rawClient(engine.workerUrl)
    const first = await a.next(() => true, 3000, 'first frame')
    assert.equal(first.type, 'workerregistered', `first frame must be workerregistered, got ${JSON.stringify(first)}`)
    assert.match(first.worker_id, UUID)
    assert.equal(typeof first.reattach_token, 'string')
    assert.ok(first.reattach_token.length >= 16, 'reattach_token should be a secret, got ' + first.reattach_token)
    assert.notEqual(first.reattach_token, first.worker_id)
    const second = await b.next(() => true, 3000, 'first frame')
    assert.equal(second.type, 'workerregistered')
    assert.notEqual(second.worker_id, first.worker_id)
    // Exactly one workerregistered per connection.
    await a.none((m) => m.type === 'workerregistered', 300)
    a.close(); b.close()
  })

  it('arrives on the worker socket even with a query string', async () => {
    const c = await rawClient(`${engine.workerUrl}/?token=abc&x=1`)
    const m = await c.registered()
    assert.match(m.worker_id, UUID)
    c.close()
  })

  for (const gen of GENERATIONS) {
    it(`iii-sdk@${gen.name} stores the worker_id it was sent`, async () => {
      const w = await makeWorker(gen, engine.workerUrl)
      const id = await connected(w)
      assert.match(id, UUID)
    })
  }
})

for (const gen of GENERATIONS) {
  describe(`2-4. calls through the engine with iii-sdk@${gen.name}`, () => {
    let A, B, mod
    const seen = []
    const voids = []
    const fid = (n) => `e2e::${gen.name}::${n}`

    before(async () => {
      mod = await sdkModule(gen)
      A = await makeWorker(gen, engine.workerUrl, { workerName: `provider-${gen.name}` })
      B = await makeWorker(gen, engine.workerUrl, { workerName: `caller-${gen.name}` })
      A.registerFunction(fid('echo'), async (data) => {
        seen.push(data)
        return { input: data === undefined ? '<absent>' : data }
      })
      A.registerFunction(fid('void-target'), async (data) => { voids.push(data); return { ignored: true } })
      A.registerFunction(fid('throws'), async () => { throw new Error(`kaboom ${gen.name}`) })
      A.registerFunction(fid('returns-null'), async () => null)
      A.registerFunction(fid('returns-undefined'), async () => undefined)
      A.registerFunction(fid('returns-zero'), async () => 0)
      A.registerFunction(fid('returns-false'), async () => false)
      A.registerFunction(fid('returns-empty-string'), async () => '')
      A.registerFunction(fid('returns-array'), async () => [1, 'two', null, { three: 3 }])
      await connected(A)
      await connected(B)
      await barrier(A)
    })

    it('routes an object payload with nested values, unicode and big numbers as strings, and adds _caller_worker_id', async () => {
      const payload = {
        nested: { a: { b: [1, 2, { c: null, d: [true, false] }] } },
        unicode: 'héllo ✓ 日本語 😀 \u0000 "quoted" \\ back',
        big: '123456789012345678901234567890',
        maxSafe: Number.MAX_SAFE_INTEGER,
        negative: -42.5,
        exp: 1.5e-7,
        emptyArr: [],
        emptyObj: {},
        nul: null,
      }
      const r = await B.trigger({ function_id: fid('echo'), payload })
      assert.deepEqual(r, { input: { ...payload, _caller_worker_id: B.workerId } })
    })

    it('routes array, string, number, boolean and null payloads unchanged (no _caller_worker_id)', async () => {
      for (const payload of [[1, 'two', null, { x: 1 }], 'hello', 42, 0, true, false, null, '']) {
        const r = await B.trigger({ function_id: fid('echo'), payload })
        assert.deepEqual(r, { input: payload }, `payload ${JSON.stringify(payload)}`)
      }
    })

    it('routes a call without payload (handler sees no value)', async () => {
      const r = await B.trigger({ function_id: fid('echo') })
      assert.ok(r.input === '<absent>' || r.input === null, `handler saw ${JSON.stringify(r.input)} for a call without data`)
    })

    it('handles 50 concurrent calls, each answered with its own result', async () => {
      const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => B.trigger({ function_id: fid('echo'), payload: { i } })))
      rs.forEach((r, i) => assert.equal(r.input.i, i))
    })

    it('3. void call runs the handler and produces no reply', async () => {
      const marker = uid('void')
      const r = await B.trigger({ function_id: fid('void-target'), payload: { marker }, action: mod.TriggerAction.Void() })
      assert.equal(r, undefined)
      await waitFor(() => voids.some((v) => v?.marker === marker), 3000, 'void handler to run')
      const got = voids.find((v) => v?.marker === marker)
      assert.equal(got._caller_worker_id, B.workerId)
    })

    it('4. handler throws -> invocation_failed with message and stacktrace', async () => {
      const e = await rejection(B.trigger({ function_id: fid('throws'), payload: {} }))
      assert.equal(e.name, gen.errorName)
      assert.equal(e.code, 'invocation_failed')
      assert.equal(e.message, `invocation_failed: kaboom ${gen.name}`)
      assert.equal(e.function_id, fid('throws'))
      assert.equal(typeof e.stacktrace, 'string', 'stacktrace must be relayed')
      assert.match(e.stacktrace, new RegExp(`kaboom ${gen.name.replace(/\./g, '\\.')}`))
    })

    it('4. unknown function -> function_not_found naming the function', async () => {
      const missing = fid('no-such-function')
      const e = await rejection(B.trigger({ function_id: missing, payload: {} }))
      assert.equal(e.name, gen.errorName)
      assert.equal(e.code, 'function_not_found')
      assert.ok(e.message.startsWith('function_not_found: '), e.message)
      assert.ok(e.message.includes(missing), `message should name the function: ${e.message}`)
    })

    it('4. a worker returning null or undefined reaches the caller as undefined', async () => {
      assert.equal(await B.trigger({ function_id: fid('returns-null'), payload: {} }), undefined)
      assert.equal(await B.trigger({ function_id: fid('returns-undefined'), payload: {} }), undefined)
    })

    it('falsy and array results are relayed exactly', async () => {
      assert.equal(await B.trigger({ function_id: fid('returns-zero'), payload: {} }), 0)
      assert.equal(await B.trigger({ function_id: fid('returns-false'), payload: {} }), false)
      assert.equal(await B.trigger({ function_id: fid('returns-empty-string'), payload: {} }), '')
      assert.deepEqual(await B.trigger({ function_id: fid('returns-array'), payload: {} }), [1, 'two', null, { three: 3 }])
    })

    it('a worker can call its own function through the engine', async () => {
      const r = await A.trigger({ function_id: fid('echo'), payload: { self: true } })
      assert.deepEqual(r, { input: { self: true, _caller_worker_id: A.workerId } })
    })
  })
}

describe('cross-generation calls', () => {
  it('0.11.6 calls 0.22.1 and back', async () => {
    const [g22, g11] = GENERATIONS
    const w22 = await makeWorker(g22, engine.workerUrl)
    const w11 = await makeWorker(g11, engine.workerUrl)
    w22.registerFunction('e2e::x::from22', async (d) => ({ gen: '0.22.1', d }))
    w11.registerFunction('e2e::x::from11', async (d) => ({ gen: '0.11.6', d }))
    await connected(w22); await connected(w11)
    await barrier(w22); await barrier(w11)
    assert.deepEqual(await w11.trigger({ function_id: 'e2e::x::from22', payload: { q: 1 } }), { gen: '0.22.1', d: { q: 1, _caller_worker_id: w11.workerId } })
    assert.deepEqual(await w22.trigger({ function_id: 'e2e::x::from11', payload: { q: 2 } }), { gen: '0.11.6', d: { q: 2, _caller_worker_id: w22.workerId } })
  })
})

describe('raw frames', () => {
  let worker
  let caller
  before(async () => {
    worker = await rawWorker(engine.workerUrl)
    worker.serve({
      'raw::echo': (data) => ({ got: data }),
      'raw::slow-echo': async (data) => { await sleep(300); return { got: data } },
      'raw::null': () => null,
      'raw::void': () => ({ never: 'sent' }),
    })
    await worker.roundTrip()
    caller = await rawWorker(engine.workerUrl)
  })
  after(() => { worker.close(); caller.close() })

  it('2. echoes a non-UUID invocation id byte-for-byte and adds _caller_worker_id', async () => {
    const r = await caller.call('raw::echo', { a: 1 }, { invocation_id: 'abc-1' })
    assert.deepEqual(r, { type: 'invocationresult', invocation_id: 'abc-1', function_id: 'raw::echo', result: { got: { a: 1, _caller_worker_id: caller.workerId } } })
    const leg = worker.served.find((m) => m.data?.a === 1)
    assert.ok(leg, 'the worker received the call')
    assert.equal(typeof leg.invocation_id, 'string', 'engine -> worker invokefunction must carry an invocation_id')
    assert.equal(leg.function_id, 'raw::echo')
    assert.equal(leg.action, undefined, 'action is never forwarded')
  })

  it('2. odd invocation ids (unicode, long, spaces) come back unchanged', async () => {
    for (const id of ['ÿ-ü-日本-😀', ' spaced id ', 'x'.repeat(300), '0', 'ABC-DEF']) {
      const r = await caller.call('raw::echo', { id }, { invocation_id: id })
      assert.equal(r.invocation_id, id)
      assert.deepEqual(r.result, { got: { id, _caller_worker_id: caller.workerId } })
    }
  })

  it('2. two callers using the same invocation id do not cross wires', async () => {
    const other = await rawWorker(engine.workerUrl)
    const [r1, r2] = await Promise.all([
      caller.call('raw::slow-echo', { who: 'caller' }, { invocation_id: 'same-id' }),
      other.call('raw::slow-echo', { who: 'other' }, { invocation_id: 'same-id' }),
    ])
    assert.equal(r1.error, undefined, JSON.stringify(r1))
    assert.equal(r2.error, undefined, JSON.stringify(r2))
    assert.equal(r1.result?.got?.who, 'caller', JSON.stringify(r1))
    assert.equal(r2.result?.got?.who, 'other', JSON.stringify(r2))
    await caller.none((m) => m.invocation_id === 'same-id', 300)
    await other.none((m) => m.invocation_id === 'same-id', 10)
    other.close()
  })

  it('2. integers up to 64 bits pass through unchanged, both legs', async () => {
    // A raw worker that never JSON.parses: it checks the raw frame text and answers with raw text.
    const numw = await rawWorker(engine.workerUrl)
    numw.send({ type: 'registerfunction', id: 'raw::bignum' })
    await numw.roundTrip()
    const lits = ['18446744073709551615', '-9223372036854775808', '9007199254740993']
    caller.sendRaw(`{"type":"invokefunction","invocation_id":"bignum-1","function_id":"raw::bignum","data":{"u":${lits[0]},"i":${lits[1]},"s":${lits[2]},"f":0.1}}`)
    const leg = await numw.next((m) => m.type === 'invokefunction' && m.function_id === 'raw::bignum')
    const legRaw = numw.frames.find((f) => f.msg === leg).raw
    for (const lit of lits) assert.ok(legRaw.includes(lit), `engine -> worker leg changed ${lit}: ${legRaw}`)
    numw.sendRaw(`{"type":"invocationresult","invocation_id":${JSON.stringify(leg.invocation_id)},"function_id":"raw::bignum","result":{"u":${lits[0]},"i":${lits[1]},"s":${lits[2]}}}`)
    const res = await caller.next((m) => m.invocation_id === 'bignum-1')
    const resRaw = caller.frames.find((f) => f.msg === res).raw
    for (const lit of lits) assert.ok(resRaw.includes(lit), `worker -> caller leg changed ${lit}: ${resRaw}`)
    numw.close()
  })

  it('4. a worker result of null is relayed without a result key', async () => {
    const r = await caller.call('raw::null', {})
    assert.equal(r.error, undefined)
    assert.ok(!('result' in r), `expected no result key, got ${JSON.stringify(r)}`)
  })

  it('4. unknown function -> IR function_not_found echoing id and function_id', async () => {
    const r = await caller.call('raw::missing', { x: 1 }, { invocation_id: 'nf-1' })
    assert.equal(r.invocation_id, 'nf-1')
    assert.equal(r.function_id, 'raw::missing')
    assert.equal(r.error?.code, 'function_not_found')
    assert.ok(r.error.message.includes('raw::missing'), r.error.message)
    assert.ok(!('result' in r))
  })

  it('4. empty function_id stays function_not_found', async () => {
    const r = await caller.call('', {}, { invocation_id: 'nf-empty' })
    assert.equal(r.error?.code, 'function_not_found')
  })

  it('3. void call (no invocation id) runs the handler and gets no reply', async () => {
    const before = worker.served.length
    caller.send({ type: 'invokefunction', function_id: 'raw::void', data: { v: 'void-1' }, action: { type: 'void' } })
    await waitFor(() => worker.served.slice(before).some((m) => m.data?.v === 'void-1'), 3000, 'void call to reach the worker')
    await caller.none((m) => m.type === 'invocationresult' && m.function_id === 'raw::void', 500, 'reply to a void call')
  })

  it('3. void call carrying an invocation id still gets no reply', async () => {
    caller.send({ type: 'invokefunction', invocation_id: 'void-with-id', function_id: 'raw::void', data: { v: 'void-2' }, action: { type: 'void' } })
    await waitFor(() => worker.served.some((m) => m.data?.v === 'void-2'), 3000, 'void call to reach the worker')
    await caller.none((m) => m.invocation_id === 'void-with-id', 500, 'reply to a void call')
  })

  it('3. invocation_id null means fire-and-forget', async () => {
    caller.send({ type: 'invokefunction', invocation_id: null, function_id: 'raw::echo', data: { v: 'null-id' } })
    await waitFor(() => worker.served.some((m) => m.data?.v === 'null-id'), 3000, 'call to reach the worker')
    await caller.none((m) => m.type === 'invocationresult' && m.result?.got?.v === 'null-id', 500, 'reply to a call without id')
  })

  it('4. void call to an unknown function -> function_not_found under a minted id', async () => {
    caller.send({ type: 'invokefunction', function_id: 'raw::void-missing', data: {}, action: { type: 'void' } })
    const r = await caller.next((m) => m.type === 'invocationresult' && m.function_id === 'raw::void-missing')
    assert.equal(r.error?.code, 'function_not_found')
    assert.equal(typeof r.invocation_id, 'string')
    assert.ok(r.invocation_id.length > 0)
  })

  it('a result for an unknown invocation id is ignored and the connection keeps working', async () => {
    caller.send({ type: 'invocationresult', invocation_id: 'never-issued', function_id: 'x', result: 1 })
    await caller.roundTrip()
    const r = await caller.call('raw::echo', { after: true })
    assert.deepEqual(r.result, { got: { after: true, _caller_worker_id: caller.workerId } })
  })

  it('stray fields (message_type, unknown keys) are ignored', async () => {
    const r = await caller.call('raw::echo', { s: 1 }, { extra: { message_type: 'invokefunction', zzz: [1] } })
    assert.deepEqual(r.result, { got: { s: 1, _caller_worker_id: caller.workerId } })
  })

  it('registerservice is accepted silently', async () => {
    caller.send({ type: 'registerservice', id: 'svc', name: 'Svc', description: 'd' })
    await caller.none((m) => m.type === 'error', 300, 'error frame for registerservice')
    await caller.roundTrip()
  })

  it('binary frames on / carrying JSON are decoded as messages', async () => {
    caller.sendRaw(Buffer.from(JSON.stringify({ type: 'invokefunction', invocation_id: 'bin-1', function_id: 'raw::echo', data: { b: 1 } })), true)
    const r = await caller.next((m) => m.invocation_id === 'bin-1')
    assert.deepEqual(r.result, { got: { b: 1, _caller_worker_id: caller.workerId } })
    assert.equal(caller.frames.find((f) => f.msg === r).binary, false, 'engine must answer with text frames')
  })
})
