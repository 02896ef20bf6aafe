// RBAC listener, the auth step (docs/wire-protocol.md#connection-lifecycle, #auth-input and
// #auth-result). Two rules tested here: /otel is served on the RBAC listener too and never runs
// the auth function (docs/wire-protocol.md#telemetry), and query parameters reach the auth
// function percent-decoded (upstream passes them raw).
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  rawClient, rawWorker, makeWorker, connected, barrier, shutdownWorkers, GENERATIONS, waitFor, sleep, uid,
} from './lib/engine.mjs'
import {
  startRbacEngine, authByProfile, latch, rbacClient, refusedClient, functionIds, triggerRows, UUID,
} from './lib/rbac.mjs'

let engine, urls, T
const calls = [] // every AuthInput the auth function received
const latches = new Map() // tag -> latch, for the `hold*` profiles
let sideEffects = 0

const holdFor = async (input) => {
  const l = latches.get(input.query_params.tag?.[0])
  if (!l) throw new Error('e2e: hold profile without a known tag')
  await l.wait
}

const profiles = {
  default: {},
  throws: () => { throw new Error('bad token e2e') },
  null: () => null,
  undefined: () => undefined,
  string: () => 'just a string',
  array: () => [1, 2],
  number: () => 42,
  listfield: () => ({ allowed_functions: 'pub::sidefx' }),
  hold: async (input) => { await holdFor(input); return {} },
  holdthrow: async (input) => { await holdFor(input); throw new Error('refused after hold') },
}

before(async () => {
  ;({ engine, urls } = await startRbacEngine({
    rbac: { rbac: { auth_function_id: 'test::auth', expose_functions: ['match("pub::*")'] } },
    missing: { rbac: { auth_function_id: 'test::never-registered', expose_functions: ['match("pub::*")'] } },
  }))
  T = await makeWorker(GENERATIONS[0], engine.workerUrl, { workerName: 'trusted-auth' })
  T.registerFunction('test::auth', authByProfile(profiles, calls))
  T.registerFunction('pub::sidefx', async () => { sideEffects++; return { ok: true } })
  await connected(T)
  await barrier(T)
})
after(async () => {
  await shutdownWorkers()
  await engine?.cleanup()
})

const callsTagged = (tag) => calls.filter((c) => c.query_params?.tag?.[0] === tag)

describe('1. auth input', () => {
  it('the auth function gets {headers, query_params, ip_address}: lower-cased headers (last wins), decoded query', async () => {
    const tag = uid('q')
    const query = `as=default&tag=${tag}&token=abc&t=a%20b&p=a+b&rep=1&rep=2&flag&=nokey&&u=%E2%9C%93&k%20x=1&bad=%zz&eq=a=b`
    const c = await rbacClient(`${urls.rbac}/?${query}`, {
      headers: { 'X-Custom-Token': 'Secret-Value', 'X-Rep': ['first', 'second'] },
    })
    const [input] = callsTagged(tag)
    assert.ok(input, 'auth function was not called for the connection')
    assert.equal(callsTagged(tag).length, 1, 'exactly one auth call per connection')
    assert.deepEqual(Object.keys(input).sort(), ['headers', 'ip_address', 'query_params'])
    assert.equal(input.ip_address, '127.0.0.1')
    assert.deepEqual(input.query_params, {
      as: ['default'],
      tag: [tag],
      token: ['abc'],
      t: ['a b'], // percent-decoded (upstream passes the query raw; we decode it)
      p: ['a+b'], // '+' kept
      rep: ['1', '2'], // repeated keys accumulate, in order
      flag: [''], // no '=' -> ""
      u: ['\u2713'], // UTF-8 escapes decoded
      'k x': ['1'], // keys are decoded too
      bad: ['%zz'], // malformed escape kept raw
      eq: ['a=b'], // split at the first '='
    })
    const h = input.headers
    for (const [k, v] of Object.entries(h)) {
      assert.equal(k, k.toLowerCase(), `header name not lower-cased: ${k}`)
      assert.equal(typeof v, 'string', `header ${k} must be one string, got ${JSON.stringify(v)}`)
    }
    assert.equal(h['x-custom-token'], 'Secret-Value')
    assert.equal(h['x-rep'], 'second', 'a repeated header: the last value wins')
    assert.equal(h.upgrade.toLowerCase(), 'websocket')
    assert.equal(h['sec-websocket-version'], '13')
    // Every request header, Host included (the example under docs/wire-protocol.md#auth-input;
    // Go keeps it out of http.Header).
    assert.equal(h.host, `127.0.0.1:${new URL(urls.rbac).port}`, `no host header in ${JSON.stringify(h)}`)
    c.close()
  })

  it('header values that are not visible ASCII are dropped', async () => {
    const tag = uid('h')
    const c = await rbacClient(`${urls.rbac}/?tag=${tag}`, { headers: { 'X-Latin': 'caf\u00e9', 'X-Plain': 'fine' } })
    const [input] = callsTagged(tag)
    assert.equal(input.headers['x-plain'], 'fine')
    assert.ok(!('x-latin' in input.headers), `non-ASCII header value must be dropped, got ${JSON.stringify(input.headers['x-latin'])}`)
    c.close()
  })

  for (const gen of GENERATIONS) {
    it(`iii-sdk@${gen.name} on the RBAC port is authenticated once and gets its session`, async () => {
      const tag = uid(`sdk-${gen.name}`)
      const w = await makeWorker(gen, `${urls.rbac}/?as=default&tag=${tag}`)
      const id = await connected(w)
      assert.match(id, UUID)
      const r = await w.trigger({ function_id: 'pub::sidefx', payload: {} })
      assert.deepEqual(r, { ok: true })
      assert.equal(callsTagged(tag).length, 1, 'one auth call for one SDK client with OTel off')
      await w.shutdown()
    })
  }
})

describe('1. auth refusals: AUTH_ERROR error frame, then a close without status', () => {
  const cases = [
    ['the auth function throws', 'throws', 'bad token e2e'],
    ['the auth function returns null', 'null', 'auth function returned no result'],
    ['the auth function returns nothing', 'undefined', 'auth function returned no result'],
    ['the auth function returns a string', 'string', null],
    ['the auth function returns an array', 'array', null],
    ['the auth function returns a number', 'number', null],
    ['a list field holds a non-list', 'listfield', null],
  ]
  for (const [what, as, message] of cases) {
    it(what, async () => {
      const tag = uid(as)
      const { closeInfo, msgs } = await refusedClient(`${urls.rbac}/?as=${as}&tag=${tag}`)
      assert.equal(callsTagged(tag).length, 1, 'the auth function was called once')
      assert.ok(closeInfo, `the engine did not close the refused connection; frames: ${JSON.stringify(msgs)}`)
      assert.equal(closeInfo.code, 1005, `close must carry no status code, got ${closeInfo.code} ${closeInfo.reason}`)
      assert.equal(msgs.length, 1, `exactly one frame before the close, got ${JSON.stringify(msgs)}`)
      const [f] = msgs
      assert.deepEqual(Object.keys(f).sort(), ['error', 'type'])
      assert.equal(f.type, 'error')
      assert.deepEqual(Object.keys(f.error).sort(), ['code', 'message'])
      assert.equal(f.error.code, 'AUTH_ERROR')
      if (message !== null) {
        assert.equal(f.error.message, message)
      } else {
        // The decoder's message: some text, but not the "no result" one.
        assert.equal(typeof f.error.message, 'string')
        assert.ok(f.error.message.length > 0)
        assert.notEqual(f.error.message, 'auth function returned no result')
      }
    })
  }

  it('the auth function is not registered: "Function <id> not found"', async () => {
    const { closeInfo, msgs } = await refusedClient(`${urls.missing}/`)
    assert.ok(closeInfo, 'the engine did not close the refused connection')
    assert.equal(closeInfo.code, 1005)
    assert.deepEqual(msgs, [{ type: 'error', error: { code: 'AUTH_ERROR', message: 'Function test::never-registered not found' } }])
  })
})

describe('1. frames sent while auth runs', () => {
  it('wait until the session exists and are then applied in order', async () => {
    const tag = uid('hold')
    const gate = latch()
    latches.set(tag, gate)
    const fn = `pub::early-${tag}`
    const c = await rawClient(`${urls.rbac}/?as=hold&tag=${tag}`)
    c.send({ type: 'ping' })
    c.send({ type: 'registerfunction', id: fn })
    c.send({ type: 'invokefunction', invocation_id: 'early-1', function_id: fn, data: { n: 1 } })
    c.send({ type: 'ping' })
    await waitFor(() => callsTagged(tag).length === 1, 5000, 'auth call')
    await sleep(300)
    assert.deepEqual(c.frames.map((f) => f.raw), [], 'nothing may be answered while the auth function runs')
    gate.open()
    const first = await c.next(() => true, 5000, 'first frame after auth')
    assert.equal(first.type, 'workerregistered')
    const second = await c.next(() => true, 3000, 'second frame')
    assert.deepEqual(second, { type: 'pong' }, 'the first ping is answered first')
    // The registration was applied before the call: the call comes back to this connection.
    const inv = await c.next((m) => m.type === 'invokefunction', 3000, 'invokefunction of the early function')
    assert.equal(inv.function_id, fn)
    assert.equal(inv.data.n, 1)
    c.send({ type: 'invocationresult', invocation_id: inv.invocation_id, function_id: fn, result: { early: true } })
    const res = await c.next((m) => m.type === 'invocationresult', 3000, 'result of the early call')
    assert.deepEqual(res, { type: 'invocationresult', invocation_id: 'early-1', function_id: fn, result: { early: true } })
    await c.next((m) => m.type === 'pong', 3000, 'second pong')
    c.close()
  })

  it('of a refused session are never applied', async () => {
    const tag = uid('holdthrow')
    const gate = latch()
    latches.set(tag, gate)
    const before = sideEffects
    const fn = `refused::fn-${tag}`
    const trig = `trg-refused-${tag}`
    const { closeInfo, msgs } = await refusedClient(`${urls.rbac}/?as=holdthrow&tag=${tag}`, {
      onOpen: (c) => {
        c.send({ type: 'registerfunction', id: fn })
        c.send({ type: 'registertrigger', id: trig, trigger_type: 'stream', function_id: fn, config: { stream_name: 'refused', group_id: 'g' } })
        c.send({ type: 'invokefunction', invocation_id: 'refused-1', function_id: 'pub::sidefx', data: {} })
        c.send({ type: 'invokefunction', function_id: 'pub::sidefx', data: {}, action: { type: 'void' } })
        waitFor(() => callsTagged(tag).length === 1, 5000, 'auth call').then(() => sleep(200)).then(gate.open, gate.open)
      },
    })
    assert.ok(closeInfo, 'refused connection was not closed')
    assert.deepEqual(msgs, [{ type: 'error', error: { code: 'AUTH_ERROR', message: 'refused after hold' } }])
    const t = await rawWorker(engine.workerUrl)
    assert.ok(!(await functionIds(t)).includes(fn), 'a refused session registered a function')
    assert.ok(!(await triggerRows(t)).some((r) => r.id === trig), 'a refused session registered a trigger')
    await sleep(200)
    assert.equal(sideEffects, before, 'a refused session invoked a function')
    t.close()
  })
})

describe('1. /otel on the RBAC port', () => {
  it('opens without an auth call, gets no frame and stays open', async () => {
    const n = calls.length
    for (const url of [`${urls.rbac}/otel?as=throws`, `${urls.missing}/otel`]) {
      const o = await rawClient(url)
      o.sendRaw(Buffer.concat([Buffer.from('LOGS'), Buffer.from('{"resourceLogs":[]}')]), true)
      o.sendRaw('{"type":"registerfunction","id":"otel::sneaky"}')
      await o.none(() => true, 400, 'frame on /otel')
      assert.equal(o.frames.length, 0)
      assert.ok(o.isOpen, `/otel must stay open (${url})`)
      o.close()
    }
    assert.equal(calls.length, n, '/otel must not run the auth function')
    const t = await rawWorker(engine.workerUrl)
    assert.ok(!(await functionIds(t)).includes('otel::sneaky'), 'text on /otel must not register anything')
    t.close()
  })
})
