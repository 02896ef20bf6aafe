// RBAC invocation gating, discovery filtering and middleware (docs/wire-protocol.md#routing,
// #invocation-gating, #expose-rules and #middleware).
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  rawWorker, makeWorker, connected, barrier, shutdownWorkers, GENERATIONS, rejection, sleep, uid,
} from './lib/engine.mjs'
import {
  startRbacEngine, authByProfile, rbacClient, functionIds, functionRows, forbiddenResult, UUID,
} from './lib/rbac.mjs'

let engine, urls, T22, T11, MW
const calls = []
const echoed = [] // payloads todos::echo received
let secretCalls = 0
const mwInputs = [] // invokefunction frames the middleware received

const profiles = {
  default: {},
  forbid: {
    allowed_functions: ['priv::secret', 'todos::echo'],
    forbidden_functions: ['todos::echo', 'engine::log::info', 'priv::nope'],
  },
  allowglob: { allowed_functions: ['priv::*'] },
  history: { allowed_functions: ['engine::history::query'] },
  mw: { context: { session_id: 'sess-mw', role: 'tester' } },
}

before(async () => {
  ;({ engine, urls } = await startRbacEngine({
    gated: {
      rbac: {
        auth_function_id: 'test::auth',
        expose_functions: ['match("todos::*")', { metadata: { public: true } }, 'match("engine::functions::*")'],
      },
    },
    mw: {
      middleware_function_id: 'mw::gate',
      rbac: { auth_function_id: 'test::auth', expose_functions: ['match("todos::*")', 'match("engine::functions::*")'] },
    },
    mwOpen: { middleware_function_id: 'mw::gate' },
  }, { storeMethod: 'file_based' }))
  T22 = await makeWorker(GENERATIONS[0], engine.workerUrl, { workerName: 'trusted-22' })
  T22.registerFunction('test::auth', authByProfile(profiles, calls))
  T22.registerFunction('todos::echo', async (d) => { echoed.push(d); return { echo: d } })
  T22.registerFunction('priv::secret', async () => { secretCalls++; return 'secret' })
  T22.registerFunction('meta::public-bool', async () => 'bool', { metadata: { public: true } })
  T22.registerFunction('meta::public-string', async () => 'string', { metadata: { public: 'true' } })
  T22.registerFunction('meta::none', async () => 'none')
  T11 = await makeWorker(GENERATIONS[1], engine.workerUrl, { workerName: 'trusted-11' })
  T11.registerFunction('todos::old', async (d) => ({ gen: '0.11.6', d }))
  T11.registerFunction('meta::old-public', async () => 'old', { metadata: { public: true, team: 'x' } })
  MW = await rawWorker(engine.workerUrl)
  MW.serve({
    'mw::gate': async (data, frame) => {
      mwInputs.push(frame)
      if (data?.payload?.reject) throw new Error('mw rejected')
      return { via: 'mw', function_id: data.function_id }
    },
  })
  await connected(T22); await connected(T11)
  await barrier(T22); await barrier(T11); await MW.roundTrip()
})
after(async () => {
  await shutdownWorkers()
  await engine?.cleanup()
})

const session = (as = 'default', listener = 'gated') => rbacClient(`${urls[listener]}/?as=${as}`)

describe('2. invocation gating', () => {
  it('an unexposed function is refused with FORBIDDEN naming it and the expose hint; the target is not called', async () => {
    const c = await session()
    const before = secretCalls
    const r = await c.call('priv::secret', { x: 1 }, { invocation_id: 'deny-1' })
    assert.deepEqual(r, forbiddenResult('deny-1', 'priv::secret'))
    // Trace context of the request is echoed on the denial.
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
    const r2 = await c.call('priv::secret', {}, { invocation_id: 'deny-2', extra: { traceparent: tp, baggage: 'k=v' } })
    assert.deepEqual(r2, { ...forbiddenResult('deny-2', 'priv::secret'), traceparent: tp, baggage: 'k=v' })
    await sleep(100)
    assert.equal(secretCalls, before, 'a denied call reached its target')
    c.close()
  })

  it('a denied id that does not exist is FORBIDDEN; an exposed id that does not exist is function_not_found', async () => {
    const c = await session()
    assert.deepEqual(await c.call('nope::missing', {}, { invocation_id: 'm-1' }), forbiddenResult('m-1', 'nope::missing'))
    const r = await c.call('todos::missing', {}, { invocation_id: 'm-2' })
    assert.deepEqual(r, {
      type: 'invocationresult', invocation_id: 'm-2', function_id: 'todos::missing',
      error: { code: 'function_not_found', message: 'Function todos::missing not found' },
    })
    c.close()
  })

  it('glob expose: todos::* reaches the trusted workers of both generations (with _caller_worker_id)', async () => {
    const c = await session()
    const tag = uid('glob')
    const r = await c.call('todos::echo', { tag })
    assert.equal(r.error, undefined, JSON.stringify(r))
    assert.deepEqual(r.result, { echo: { tag, _caller_worker_id: c.workerId } })
    const r11 = await c.call('todos::old', { tag })
    assert.deepEqual(r11.result, { gen: '0.11.6', d: { tag, _caller_worker_id: c.workerId } })
    c.close()
  })

  it('forbidden_functions beats allowed_functions, expose and the infrastructure list; allowed_functions adds exact ids', async () => {
    const c = await session('forbid')
    const hint = 'remove from rbac.forbidden_functions'
    assert.deepEqual(await c.call('todos::echo', {}, { invocation_id: 'f-1' }), forbiddenResult('f-1', 'todos::echo', hint))
    assert.deepEqual(await c.call('engine::log::info', { message: 'x' }, { invocation_id: 'f-2' }), forbiddenResult('f-2', 'engine::log::info', hint))
    // Forbidden and missing: still the forbidden hint.
    assert.deepEqual(await c.call('priv::nope', {}, { invocation_id: 'f-3' }), forbiddenResult('f-3', 'priv::nope', hint))
    const before = secretCalls
    const ok = await c.call('priv::secret', {})
    assert.equal(ok.error, undefined, JSON.stringify(ok))
    assert.equal(ok.result, 'secret')
    assert.equal(secretCalls, before + 1)
    // Other exposed functions are unaffected.
    assert.equal((await c.call('todos::old', {})).result.gen, '0.11.6')
    c.close()
  })

  it('allowed_functions holds exact ids: "priv::*" is not a wildcard', async () => {
    const c = await session('allowglob')
    assert.deepEqual(await c.call('priv::secret', {}, { invocation_id: 'g-1' }), forbiddenResult('g-1', 'priv::secret'))
    c.close()
  })

  it('the infrastructure ids are allowed without being exposed; other engine ids are not', async () => {
    const c = await session()
    for (const [id, data] of [
      ['engine::log::info', { message: 'rbac e2e info' }],
      ['engine::log::warn', { message: 'rbac e2e warn' }],
      ['engine::log::error', { message: 'rbac e2e error' }],
      ['engine::log::debug', { message: 'rbac e2e debug' }],
      ['engine::log::trace', { message: 'rbac e2e trace' }],
      ['engine::baggage::get', { key: 'k' }],
      ['engine::baggage::set', { key: 'k', value: 'v' }],
      ['engine::baggage::get_all', {}],
      ['engine::workers::register', { runtime: 'node', name: 'rbac-e2e', pid: 1 }],
      ['engine::channels::create', {}],
    ]) {
      const r = await c.call(id, data)
      assert.notEqual(r.error?.code, 'FORBIDDEN', `${id} must be allowed: ${JSON.stringify(r)}`)
      // Allowed ids that the engine may not implement end as function_not_found, never anything else.
      if (r.error) assert.equal(r.error.code, 'function_not_found', `${id}: ${JSON.stringify(r)}`)
    }
    for (const id of ['engine::triggers::list', 'engine::workers::list', 'engine::registered-triggers::list', 'engine::register_trigger', 'stream::set', 'engine::history::query']) {
      assert.deepEqual(await c.call(id, {}, { invocation_id: `e-${id}` }), forbiddenResult(`e-${id}`, id))
    }
    c.close()
  })

  it('metadata expose: {public: true} allows functions registered with public: true (both generations), not "true" or none', async () => {
    const c = await session()
    assert.equal((await c.call('meta::public-bool', {})).result, 'bool')
    assert.equal((await c.call('meta::old-public', {})).result, 'old')
    assert.deepEqual(await c.call('meta::public-string', {}, { invocation_id: 'p-1' }), forbiddenResult('p-1', 'meta::public-string'))
    assert.deepEqual(await c.call('meta::none', {}, { invocation_id: 'p-2' }), forbiddenResult('p-2', 'meta::none'))
    c.close()
  })

  it('a denied void call still gets an invocationresult FORBIDDEN under a fresh id; an allowed void call gets none', async () => {
    const c = await session()
    const before = secretCalls
    c.send({ type: 'invokefunction', function_id: 'priv::secret', data: { v: 1 }, action: { type: 'void' } })
    const r = await c.next((m) => m.type === 'invocationresult', 3000, 'FORBIDDEN for a void call')
    assert.match(r.invocation_id, UUID)
    assert.deepEqual(r, forbiddenResult(r.invocation_id, 'priv::secret'))
    // Without action and without invocation_id (fire-and-forget): the same.
    c.send({ type: 'invokefunction', function_id: 'priv::secret', data: { v: 2 } })
    const r2 = await c.next((m) => m.type === 'invocationresult', 3000, 'FORBIDDEN for a call without id')
    assert.match(r2.invocation_id, UUID)
    assert.notEqual(r2.invocation_id, r.invocation_id)
    assert.deepEqual(r2, forbiddenResult(r2.invocation_id, 'priv::secret'))
    const tag = uid('void')
    c.send({ type: 'invokefunction', function_id: 'todos::echo', data: { tag }, action: { type: 'void' } })
    await c.none((m) => m.type === 'invocationresult', 400, 'reply to an allowed void call')
    assert.ok(echoed.some((d) => d.tag === tag), 'the allowed void call did not run')
    assert.equal(secretCalls, before)
    c.close()
  })

  it('engine::history::query is denied unless exposed (here: via allowed_functions)', async () => {
    const denied = await session()
    assert.deepEqual(await denied.call('engine::history::query', {}, { invocation_id: 'h-1' }), forbiddenResult('h-1', 'engine::history::query'))
    denied.close()
    const c = await session('history')
    const r = await c.call('engine::history::query', {})
    assert.equal(r.error, undefined, JSON.stringify(r))
    assert.ok(Array.isArray(r.result.records), JSON.stringify(r.result))
    assert.ok(r.result.records.length > 0, 'the history of this engine is not empty')
    c.close()
  })

  for (const gen of GENERATIONS) {
    it(`iii-sdk@${gen.name} on the RBAC port: a denied call rejects with code FORBIDDEN, an exposed one resolves`, async () => {
      const w = await makeWorker(gen, `${urls.gated}/?as=default`)
      await connected(w)
      const e = await rejection(w.trigger({ function_id: 'priv::secret', payload: {} }))
      assert.equal(e.name, gen.errorName)
      assert.equal(e.code, 'FORBIDDEN')
      assert.ok(e.message.includes('FORBIDDEN') && e.message.includes('priv::secret'), e.message)
      const r = await w.trigger({ function_id: 'todos::echo', payload: { from: gen.name } })
      assert.deepEqual(r, { echo: { from: gen.name, _caller_worker_id: w.workerId } })
      await w.shutdown()
    })
  }
})

describe('2. discovery', () => {
  const infrastructure = new Set(['engine::channels::create', 'engine::workers::register', 'engine::log::info', 'engine::log::warn',
    'engine::log::error', 'engine::log::debug', 'engine::log::trace', 'engine::baggage::get', 'engine::baggage::set', 'engine::baggage::get_all'])
  const exposedTo = (row) => row.function_id.startsWith('todos::') || row.function_id.startsWith('engine::functions::') ||
    row.metadata?.public === true || infrastructure.has(row.function_id)

  it('engine::functions::list on the RBAC port shows only what the session may call', async () => {
    const t = await rawWorker(engine.workerUrl)
    const all = await functionIds(t)
    for (const id of ['priv::secret', 'meta::public-string', 'meta::none', 'test::auth', 'mw::gate', 'todos::echo']) {
      assert.ok(all.includes(id), `trusted listing lacks ${id}`)
    }
    const c = await session()
    for (const args of [{}, { include_internal: true }]) {
      const rows = await functionRows(c, args)
      const ids = rows.map((r) => r.function_id)
      for (const r of rows) assert.ok(exposedTo(r), `listed but not callable: ${JSON.stringify(r)} (args ${JSON.stringify(args)})`)
      for (const id of ['todos::echo', 'todos::old', 'meta::public-bool', 'meta::old-public']) {
        assert.ok(ids.includes(id), `callable ${id} missing from ${JSON.stringify(ids)}`)
      }
      if (args.include_internal) {
        for (const id of ['engine::functions::list', 'engine::log::info']) assert.ok(ids.includes(id), `${id} missing from ${JSON.stringify(ids)}`)
        for (const id of ['engine::triggers::list', 'engine::history::query', 'stream::set']) assert.ok(!ids.includes(id), `${id} listed`)
      }
    }
    // forbidden_functions hide too; allowed_functions show.
    const f = await session('forbid')
    const fids = await functionIds(f)
    assert.ok(!fids.includes('todos::echo'), 'a forbidden function is listed')
    assert.ok(fids.includes('priv::secret'), 'an allowed function is not listed')
    t.close(); c.close(); f.close()
  })

  it('engine::functions::info on a hidden id is FORBIDDEN; on a callable id it answers', async () => {
    const c = await session()
    const r = await c.call('engine::functions::info', { function_id: 'priv::secret' })
    assert.equal(r.error?.code, 'FORBIDDEN', JSON.stringify(r))
    assert.ok(r.error.message.includes('priv::secret'), r.error.message)
    const r2 = await c.call('engine::functions::info', { function_ids: ['todos::echo', 'meta::none'] })
    assert.equal(r2.error?.code, 'FORBIDDEN', JSON.stringify(r2))
    const ok = await c.call('engine::functions::info', { function_id: 'todos::echo' })
    assert.equal(ok.error, undefined, JSON.stringify(ok))
    assert.equal(ok.result.function_id, 'todos::echo')
    c.close()
  })
})

describe('5. middleware', () => {
  it('an allowed call goes to the middleware with {function_id, payload, action, context}; the caller gets its result', async () => {
    const c = await session('mw', 'mw')
    const n = echoed.length
    const tag = uid('mw')
    const r = await c.call('todos::echo', { title: 'x', tag }, { invocation_id: 'mw-1', extra: { metadata: { tenant: 'acme' } } })
    assert.deepEqual(r, { type: 'invocationresult', invocation_id: 'mw-1', function_id: 'todos::echo', result: { via: 'mw', function_id: 'todos::echo' } })
    const f = mwInputs.at(-1)
    assert.equal(f.function_id, 'mw::gate')
    assert.deepEqual(f.data, {
      function_id: 'todos::echo',
      payload: { title: 'x', tag }, // untouched: no _caller_worker_id
      action: null,
      context: { session_id: 'sess-mw', role: 'tester' },
    })
    assert.deepEqual(f.metadata, { tenant: 'acme' }, 'the frame metadata is passed along to the middleware')
    await sleep(100)
    assert.equal(echoed.length, n, 'the engine must not call the target itself')
    c.close()
  })

  it('the middleware error is the caller error', async () => {
    const c = await session('mw', 'mw')
    const r = await c.call('todos::echo', { reject: true }, { invocation_id: 'mw-2' })
    assert.equal(r.invocation_id, 'mw-2')
    assert.equal(r.function_id, 'todos::echo')
    assert.equal(r.result, undefined)
    assert.deepEqual(r.error, { code: 'invocation_failed', message: 'mw rejected' })
    c.close()
  })

  it('void and enqueue actions are handed to the middleware, and the void call is answered', async () => {
    const c = await session('mw', 'mw')
    c.send({ type: 'invokefunction', function_id: 'todos::old', data: { v: 1 }, action: { type: 'void' } })
    const r = await c.next((m) => m.type === 'invocationresult', 3000, 'middleware reply to a void call')
    assert.match(r.invocation_id, UUID)
    assert.deepEqual(r, { type: 'invocationresult', invocation_id: r.invocation_id, function_id: 'todos::old', result: { via: 'mw', function_id: 'todos::old' } })
    assert.deepEqual(mwInputs.at(-1).data.action, { type: 'void' })
    const q = await c.call('todos::old', { v: 2 }, { extra: { action: { type: 'enqueue', queue: 'q1' } } })
    assert.deepEqual(q.result, { via: 'mw', function_id: 'todos::old' })
    assert.deepEqual(mwInputs.at(-1).data, { function_id: 'todos::old', payload: { v: 2 }, action: { type: 'enqueue', queue: 'q1' }, context: { session_id: 'sess-mw', role: 'tester' } })
    c.close()
  })

  it('engine::* calls bypass it; denied calls never reach it', async () => {
    const c = await session('mw', 'mw')
    const n = mwInputs.length
    const ids = await functionIds(c)
    assert.ok(ids.includes('todos::echo'), JSON.stringify(ids))
    const log = await c.call('engine::log::info', { message: 'bypass' })
    assert.equal(log.error, undefined, JSON.stringify(log))
    assert.deepEqual(await c.call('priv::secret', {}, { invocation_id: 'mw-d' }), forbiddenResult('mw-d', 'priv::secret'))
    await sleep(100)
    assert.equal(mwInputs.length, n, `middleware was called: ${JSON.stringify(mwInputs.slice(n).map((f) => f.data))}`)
    c.close()
  })

  it('a listener with middleware and no rbac block: everything goes through it with context {}', async () => {
    const c = await rbacClient(`${urls.mwOpen}/`)
    const r = await c.call('priv::secret', { y: 1 })
    assert.deepEqual(r.result, { via: 'mw', function_id: 'priv::secret' })
    assert.deepEqual(mwInputs.at(-1).data, { function_id: 'priv::secret', payload: { y: 1 }, action: null, context: {} })
    c.close()
  })

  for (const gen of GENERATIONS) {
    it(`iii-sdk@${gen.name} caller on the middleware listener gets the middleware result`, async () => {
      const w = await makeWorker(gen, `${urls.mw}/?as=mw`)
      await connected(w)
      const r = await w.trigger({ function_id: 'todos::echo', payload: { gen: gen.name } })
      assert.deepEqual(r, { via: 'mw', function_id: 'todos::echo' })
      assert.deepEqual(mwInputs.at(-1).data.payload, { gen: gen.name })
      const e = await rejection(w.trigger({ function_id: 'todos::echo', payload: { reject: true } }))
      assert.equal(e.code, 'invocation_failed')
      assert.ok(e.message.includes('mw rejected'), e.message)
      await w.shutdown()
    })
  }
})
