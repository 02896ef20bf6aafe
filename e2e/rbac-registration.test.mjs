// RBAC registration gates, function_registration_prefix, ownership, registration hooks, and two
// prefixed "browser tabs" on one stream (docs/wire-protocol.md#registration-hooks and
// #function-prefixes). Ownership rules: a session on an RBAC listener cannot replace a function
// owned by another connection (FORBIDDEN; on a trusted listener the newest registration wins);
// the engine's own trigger types (stream, state, ...) cannot be replaced by any worker; trigger
// ids belong to the connection that registered them (docs/wire-protocol.md#registerfunction,
// #registertriggertype and #triggers).
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  rawWorker, makeWorker, connected, barrier, shutdownWorkers, GENERATIONS, waitFor, sleep, uid,
} from './lib/engine.mjs'
import {
  startRbacEngine, authByProfile, rbacClient, functionIds, functionRows, triggerRows, triggerTypeIds,
} from './lib/rbac.mjs'

let engine, urls, T
const calls = []
const ownedCalls = [] // data shared::owned received
const changes = [] // data shared::on-change received
const fnHookInputs = []
const trigHookInputs = []

const profiles = {
  default: {},
  noreg: { allow_function_registration: false },
  prefix: (i) => ({ function_registration_prefix: i.query_params.p[0], allowed_trigger_types: ['stream'] }),
  streamonly: { allowed_trigger_types: ['stream'] },
  tt: { allow_trigger_type_registration: true },
  hooks: { context: { session_id: 'ctx-42' } },
  hooksprefix: { context: { session_id: 'ctx-43' }, function_registration_prefix: 'hp' },
}

function fnHook(input) {
  fnHookInputs.push(input)
  const id = input.function_id
  if (id.includes('::rename-')) return { function_id: id.replace('::rename-', '::renamed-') }
  if (id.includes('::deny-throw')) throw new Error('hook says no')
  if (id.includes('::deny-null')) return null
  if (id.includes('::deny-array')) return []
  if (id.includes('::remeta')) return { description: 'from hook', metadata: { public: true } }
  return {}
}

function trigHook(input) {
  trigHookInputs.push(input)
  const id = input.trigger_id
  if (id.startsWith('trg-deny-throw')) throw new Error('trigger hook says no')
  if (id.startsWith('trg-deny-null')) return null
  if (id.startsWith('trg-rename')) return { trigger_id: `${id}-renamed`, function_id: 'hk::other', config: { stream_name: 'hooked', group_id: 'g' } }
  return {}
}

before(async () => {
  ;({ engine, urls } = await startRbacEngine({
    rbac: {
      rbac: {
        auth_function_id: 'test::auth',
        expose_functions: ['match("todos::*")', 'match("shared::*")', 'match("engine::functions::*")'],
      },
    },
    hooks: {
      rbac: {
        auth_function_id: 'test::auth',
        expose_functions: ['match("shared::*")'],
        on_function_registration_function_id: 'hook::fn',
        on_trigger_registration_function_id: 'hook::trig',
      },
    },
  }, { state: true }))
  T = await rawWorker(engine.workerUrl)
  T.serve({
    'test::auth': authByProfile(profiles, calls),
    'shared::owned': async (d) => { ownedCalls.push(d); return 'owner' },
    'shared::on-change': async (d) => { changes.push(d); return {} },
    'hook::fn': fnHook,
    'hook::trig': trigHook,
  })
  await T.roundTrip()
})
after(async () => {
  await shutdownWorkers()
  await engine?.cleanup()
})

const session = (as = 'default', listener = 'rbac', extra = '') => rbacClient(`${urls[listener]}/?as=${as}${extra}`)
const isError = (m) => m.type === 'error'
/** The ERR frame a refused registration must produce: code FORBIDDEN, message naming `id`. */
async function forbiddenError(c, id, what) {
  const e = await c.next(isError, 3000, `FORBIDDEN error frame for ${what}`)
  assert.deepEqual(Object.keys(e).sort(), ['error', 'type'])
  assert.equal(e.error.code, 'FORBIDDEN', JSON.stringify(e))
  assert.ok(e.error.message.includes(id), `message should name ${id}: ${e.error.message}`)
  return e
}
/** Stream set from the trusted worker. */
async function streamSet(stream_name, group_id, item_id, data) {
  const r = await T.call('stream::set', { stream_name, group_id, item_id, data })
  assert.equal(r.error, undefined, JSON.stringify(r))
  return r.result
}

describe('3. function registration gates', () => {
  it('allow_function_registration: false -> error frame FORBIDDEN, function absent, connection stays open', async () => {
    const c = await session('noreg')
    const id = uid('noreg::fn')
    c.send({ type: 'registerfunction', id })
    await forbiddenError(c, id, 'registerfunction')
    await c.roundTrip()
    assert.ok(!(await functionIds(T)).includes(id))
    c.close()
  })

  for (const gen of GENERATIONS) {
    it(`iii-sdk@${gen.name} with allow_function_registration: false registers nothing`, async () => {
      const w = await makeWorker(gen, `${urls.rbac}/?as=noreg`)
      const id = uid(`noreg::sdk-${gen.name}`)
      w.registerFunction(id, async () => 'never')
      await connected(w); await barrier(w)
      assert.ok(!(await functionIds(T)).includes(id))
      await w.shutdown()
    })
  }

  it('a session cannot hijack a function owned by another connection (trusted or RBAC); the owner keeps it', async () => {
    const s = await session()
    s.send({ type: 'registerfunction', id: 'shared::owned' })
    await forbiddenError(s, 'shared::owned', 'hijack of a trusted function')
    const n = ownedCalls.length
    const r = await s.call('shared::owned', { from: 'rbac' })
    assert.equal(r.result, 'owner', JSON.stringify(r))
    assert.equal(ownedCalls.length, n + 1, 'the owner did not receive the call')
    const r2 = await T.call('shared::owned', { from: 'trusted' })
    assert.equal(r2.result, 'owner')
    await s.none((m) => m.type === 'invokefunction', 200, 'invocation at the would-be hijacker')

    // Between two RBAC sessions.
    const id = uid('sess::mine')
    const s1 = await session()
    s1.send({ type: 'registerfunction', id })
    await s1.roundTrip()
    const s2 = await session()
    s2.send({ type: 'registerfunction', id })
    await forbiddenError(s2, id, 'hijack of another session')
    s1.serve({ [id]: async () => 's1' })
    assert.equal((await T.call(id, {})).result, 's1')
    await s2.none((m) => m.type === 'invokefunction', 200, 'invocation at the second session')
    s.close(); s1.close(); s2.close()
  })

  for (const gen of GENERATIONS) {
    it(`iii-sdk@${gen.name} on the RBAC port cannot take over shared::owned`, async () => {
      let mine = 0
      const w = await makeWorker(gen, `${urls.rbac}/?as=default`)
      w.registerFunction('shared::owned', async () => { mine++; return 'hijacker' })
      await connected(w); await barrier(w)
      assert.equal(await w.trigger({ function_id: 'shared::owned', payload: {} }), 'owner')
      assert.equal((await T.call('shared::owned', {})).result, 'owner')
      assert.equal(mine, 0)
      await w.shutdown()
    })
  }
})

describe('3. function_registration_prefix', () => {
  it('functions are listed as P::id, invoked under the local id; triggers get the prefix; unregister resolves it', async () => {
    const P = await session('prefix', 'rbac', '&p=tab-1')
    P.send({ type: 'registerfunction', id: 'ui::handler' })
    P.send({ type: 'registertrigger', id: 'trg-pfx-1', trigger_type: 'stream', function_id: 'ui::handler', config: { stream_name: 'pfx', group_id: 'g' } })
    // A trigger on a function the session did not register gets the prefix too.
    P.send({ type: 'registertrigger', id: 'trg-pfx-2', trigger_type: 'stream', function_id: 'todos::list', config: { stream_name: 'pfx-none', group_id: 'g' } })
    await P.roundTrip()
    const ids = await functionIds(T)
    assert.ok(ids.includes('tab-1::ui::handler'), JSON.stringify(ids))
    assert.ok(!ids.includes('ui::handler'), 'unprefixed id registered')
    const trs = await triggerRows(T)
    assert.equal(trs.find((t) => t.id === 'trg-pfx-1')?.function_id, 'tab-1::ui::handler', JSON.stringify(trs))
    assert.equal(trs.find((t) => t.id === 'trg-pfx-2')?.function_id, 'tab-1::todos::list', JSON.stringify(trs))

    // A direct call from a trusted worker arrives under the local id.
    const pending = T.call('tab-1::ui::handler', { v: 1 })
    const inv = await P.next((m) => m.type === 'invokefunction', 3000, 'invokefunction at the prefixed session')
    assert.deepEqual(Object.keys(inv).sort(), ['data', 'function_id', 'invocation_id', 'type'])
    assert.equal(inv.function_id, 'ui::handler')
    assert.deepEqual(inv.data, { v: 1, _caller_worker_id: T.workerId })
    P.send({ type: 'invocationresult', invocation_id: inv.invocation_id, function_id: 'ui::handler', result: { local: true } })
    const res = await pending
    assert.deepEqual(res.result, { local: true })
    assert.equal(res.function_id, 'tab-1::ui::handler')

    // A stream trigger firing arrives under the local id too.
    await streamSet('pfx', 'g', 'i1', { n: 1 })
    const ev = await P.next((m) => m.type === 'invokefunction', 3000, 'stream event at the prefixed session')
    assert.equal(ev.function_id, 'ui::handler')
    assert.equal(ev.data.streamName, 'pfx')
    assert.equal(ev.data.event.type, 'create')
    P.send({ type: 'invocationresult', invocation_id: ev.invocation_id, function_id: 'ui::handler', result: {} })

    P.send({ type: 'unregisterfunction', id: 'ui::handler' })
    await P.roundTrip()
    assert.ok(!(await functionIds(T)).includes('tab-1::ui::handler'), 'unregisterfunction did not resolve the prefix')
    P.close()
    await P.closed
    await waitFor(async () => !(await triggerRows(T)).some((t) => t.id === 'trg-pfx-1' || t.id === 'trg-pfx-2'), 3000, 'prefixed triggers removed on close')
  })

  for (const gen of GENERATIONS) {
    it(`iii-sdk@${gen.name} with a prefix receives calls to P::id in its local handler`, async () => {
      const p = `tab-${gen.name}`
      const seen = []
      const w = await makeWorker(gen, `${urls.rbac}/?as=prefix&p=${p}`)
      w.registerFunction('ui::sdk-handler', async (d) => { seen.push(d); return { gen: gen.name } })
      await connected(w); await barrier(w)
      assert.ok((await functionIds(T)).includes(`${p}::ui::sdk-handler`))
      const r = await T.call(`${p}::ui::sdk-handler`, { x: 1 })
      assert.deepEqual(r.result, { gen: gen.name }, JSON.stringify(r))
      assert.equal(seen.length, 1)
      await w.shutdown()
    })
  }

  it('a session cannot escape its prefix or reach another session\'s prefixed id', async () => {
    const A = await session('prefix', 'rbac', '&p=tab-a')
    const B = await session('prefix', 'rbac', '&p=tab-b')
    A.send({ type: 'registerfunction', id: 'ui::h' })
    A.send({ type: 'registerfunction', id: '../x' })
    await A.roundTrip()
    B.send({ type: 'registerfunction', id: 'tab-a::ui::h' })
    B.send({ type: 'registertrigger', id: 'trg-b-esc', trigger_type: 'stream', function_id: 'tab-a::ui::h', config: { stream_name: 'esc', group_id: 'g' } })
    B.send({ type: 'unregisterfunction', id: 'ui::h' }) // resolves to tab-b::ui::h: not A's
    await B.roundTrip()
    await B.none(isError, 100, 'error frame (the registration lands under its own prefix)')
    const ids = await functionIds(T)
    for (const id of ['tab-a::ui::h', 'tab-a::../x', 'tab-b::tab-a::ui::h']) assert.ok(ids.includes(id), `${id} missing from ${JSON.stringify(ids)}`)
    for (const id of ['../x', 'x', 'ui::h']) assert.ok(!ids.includes(id), `${id} registered outside a prefix`)
    assert.equal((await triggerRows(T)).find((t) => t.id === 'trg-b-esc')?.function_id, 'tab-b::tab-a::ui::h')

    A.serve({ 'ui::h': async () => 'A' })
    B.serve({ 'tab-a::ui::h': async () => 'B' })
    assert.equal((await T.call('tab-a::ui::h', {})).result, 'A')
    assert.equal((await T.call('tab-b::tab-a::ui::h', {})).result, 'B')
    assert.equal(A.served.length, 1)
    assert.equal(B.served.length, 1)
    assert.equal(B.served[0].function_id, 'tab-a::ui::h', 'B gets its own function under its local id')
    A.close(); B.close()
  })
})

describe('3. trigger and trigger type gates', () => {
  it('allowed_trigger_types: [stream] -> another type gets triggerregistrationresult FORBIDDEN; stream is accepted', async () => {
    const c = await session('streamonly')
    for (const type of ['custom-x', 'state']) {
      const id = uid(`trg-type-${type}`)
      c.send({ type: 'registertrigger', id, trigger_type: type, function_id: 'todos::any', config: { scope: 's' } })
      const r = await c.next((m) => m.type === 'triggerregistrationresult' && m.id === id, 3000, `TRR for ${type}`)
      assert.deepEqual(Object.keys(r).sort(), ['error', 'function_id', 'id', 'trigger_type', 'type'])
      assert.equal(r.trigger_type, type)
      assert.equal(r.function_id, 'todos::any')
      assert.equal(r.error.code, 'FORBIDDEN')
      assert.equal(typeof r.error.message, 'string')
      assert.ok(!(await triggerRows(T)).some((t) => t.id === id), `${type} trigger was stored`)
    }
    const ok = uid('trg-type-stream')
    c.send({ type: 'registertrigger', id: ok, trigger_type: 'stream', function_id: 'todos::any', config: { stream_name: 's', group_id: 'g' } })
    await c.roundTrip()
    await c.none((m) => m.type === 'triggerregistrationresult', 100, 'TRR for an allowed stream trigger')
    assert.ok((await triggerRows(T)).some((t) => t.id === ok), 'the stream trigger was not stored')
    c.close()
  })

  it('allow_trigger_type_registration defaults to false with an auth function -> error frame FORBIDDEN; true allows', async () => {
    const c = await session()
    const id = uid('tt-denied')
    c.send({ type: 'registertriggertype', id, description: 'denied' })
    await forbiddenError(c, id, 'registertriggertype')
    assert.ok(!(await triggerTypeIds(T)).includes(id))
    const ok = await session('tt')
    const id2 = uid('tt-allowed')
    ok.send({ type: 'registertriggertype', id: id2, description: 'allowed' })
    await ok.roundTrip()
    await ok.none(isError, 100, 'error frame for an allowed trigger type')
    assert.ok((await triggerTypeIds(T)).includes(id2))
    c.close(); ok.close()
  })

  it('built-in trigger types (stream, state) cannot be registered by anyone, trusted included', async () => {
    const trusted = await rawWorker(engine.workerUrl)
    const tt = await session('tt')
    for (const c of [trusted, tt]) {
      for (const id of ['stream', 'state']) {
        c.send({ type: 'registertriggertype', id, description: 'takeover' })
        await forbiddenError(c, id, `registertriggertype ${id}`)
      }
    }
    // stream triggers are still served by the engine.
    const fired = changes.length
    const id = uid('trg-after-takeover')
    T.send({ type: 'registertrigger', id, trigger_type: 'stream', function_id: 'shared::on-change', config: { stream_name: 'builtin-check', group_id: 'g' } })
    await T.roundTrip()
    await streamSet('builtin-check', 'g', 'i', { ok: 1 })
    await waitFor(() => changes.length === fired + 1, 3000, 'stream trigger firing')
    assert.equal(changes.at(-1).streamName, 'builtin-check')
    trusted.close(); tt.close()
  })

  it('a session can neither replace nor unregister another connection\'s trigger (trigger ids belong to the connection that registered them)', async () => {
    const id = uid('trg-owned')
    T.send({ type: 'registertrigger', id, trigger_type: 'stream', function_id: 'shared::on-change', config: { stream_name: 'd10', group_id: 'g' } })
    await T.roundTrip()
    const s = await session()
    s.send({ type: 'registertrigger', id, trigger_type: 'stream', function_id: 'todos::mine', config: { stream_name: 'other', group_id: 'g' } })
    const r = await s.next((m) => m.type === 'triggerregistrationresult', 3000, 'TRR for a foreign trigger id')
    assert.equal(r.id, id)
    assert.equal(r.trigger_type, 'stream')
    assert.equal(r.function_id, 'todos::mine')
    assert.equal(r.error?.code, 'FORBIDDEN')
    s.send({ type: 'unregistertrigger', id, trigger_type: 'stream' })
    await s.roundTrip()
    await s.none((m) => m.type !== 'pong', 200, 'reply to unregistertrigger of a foreign id')
    const row = (await triggerRows(T)).find((t) => t.id === id)
    assert.ok(row, 'the owner\'s trigger was removed')
    assert.equal(row.function_id, 'shared::on-change')
    assert.deepEqual(row.config, { stream_name: 'd10', group_id: 'g' })
    const n = changes.length
    await streamSet('d10', 'g', 'item', { v: 1 })
    await waitFor(() => changes.length > n, 3000, 'the owner\'s trigger to fire')
    await sleep(200)
    assert.equal(changes.length, n + 1)
    assert.equal(changes.at(-1).streamName, 'd10')
    s.close()
  })
})

describe('4. two prefixed sessions (browser tabs) on one stream', () => {
  it('each gets every change exactly once, under its local id', async () => {
    const tag = uid('tabs')
    const stream = `todo-${tag}`
    const events = { a: [], b: [] }
    const A = await makeWorker(GENERATIONS[0], `${urls.rbac}/?as=prefix&p=A-${tag}`)
    const B = await makeWorker(GENERATIONS[1], `${urls.rbac}/?as=prefix&p=B-${tag}`)
    for (const [w, k] of [[A, 'a'], [B, 'b']]) {
      w.registerFunction('ui::on-todo-change', async (ev) => { events[k].push(ev); return {} })
      w.registerTrigger({ type: 'stream', function_id: 'ui::on-todo-change', config: { stream_name: stream, group_id: 'todos' } })
    }
    const C = await session('prefix', 'rbac', `&p=C-${tag}`)
    C.send({ type: 'registerfunction', id: 'ui::on-todo-change' })
    C.send({ type: 'registertrigger', id: `trg-c-${tag}`, trigger_type: 'stream', function_id: 'ui::on-todo-change', config: { stream_name: stream, group_id: 'todos' } })
    C.serve({ 'ui::on-todo-change': async () => ({}) })
    await connected(A); await connected(B); await barrier(A); await barrier(B); await C.roundTrip()
    const ids = await functionIds(T)
    for (const p of ['A', 'B', 'C']) assert.ok(ids.includes(`${p}-${tag}::ui::on-todo-change`), JSON.stringify(ids))
    assert.ok(!ids.includes('ui::on-todo-change'))

    const todo = { id: 't1', title: 'buy milk', completed: false }
    await streamSet(stream, 'todos', 't1', todo)
    await waitFor(() => events.a.length >= 1 && events.b.length >= 1 && C.served.length >= 1, 5000, 'the change at every tab')
    await sleep(300)
    assert.equal(events.a.length, 1, `tab A got ${events.a.length} events`)
    assert.equal(events.b.length, 1, `tab B got ${events.b.length} events`)
    assert.equal(C.served.length, 1, `tab C got ${C.served.length} events`)
    assert.equal(C.served[0].function_id, 'ui::on-todo-change')
    for (const ev of [events.a[0], events.b[0], C.served[0].data]) {
      assert.equal(typeof ev.timestamp, 'number')
      const { timestamp, ...rest } = ev
      assert.deepEqual(rest, { type: 'stream', streamName: stream, groupId: 'todos', id: 't1', event: { type: 'create', data: todo } })
    }
    await A.shutdown(); await B.shutdown(); C.close()
  })
})

describe('6. registration hooks', () => {
  it('on_function_registration sees the unprefixed id and the auth context, and can rename', async () => {
    const tag = uid('h')
    const c = await session('hooks', 'hooks')
    c.send({ type: 'registerfunction', id: `hk::rename-${tag}`, description: 'd1', metadata: { a: 1 } })
    await c.roundTrip()
    const input = fnHookInputs.find((i) => i.function_id === `hk::rename-${tag}`)
    assert.deepEqual(input, { function_id: `hk::rename-${tag}`, description: 'd1', metadata: { a: 1 }, context: { session_id: 'ctx-42' } })
    let ids = await functionIds(T)
    assert.ok(ids.includes(`hk::renamed-${tag}`), JSON.stringify(ids))
    assert.ok(!ids.includes(`hk::rename-${tag}`))

    const p = await session('hooksprefix', 'hooks')
    p.send({ type: 'registerfunction', id: `hk::rename-p-${tag}`, description: 'd2', metadata: { b: 2 } })
    await p.roundTrip()
    assert.deepEqual(fnHookInputs.find((i) => i.function_id === `hk::rename-p-${tag}`),
      { function_id: `hk::rename-p-${tag}`, description: 'd2', metadata: { b: 2 }, context: { session_id: 'ctx-43' } })
    ids = await functionIds(T)
    assert.ok(ids.includes(`hp::hk::renamed-p-${tag}`), `prefix applies after the hook: ${JSON.stringify(ids)}`)

    c.send({ type: 'registerfunction', id: `hk::remeta-${tag}` })
    await c.roundTrip()
    const row = (await functionRows(T)).find((f) => f.function_id === `hk::remeta-${tag}`)
    assert.equal(row?.description, 'from hook', JSON.stringify(row))
    assert.deepEqual(row.metadata, { public: true })
    c.close(); p.close()
  })

  it('on_function_registration denies by throwing, returning null or a non-object -> error frame FORBIDDEN', async () => {
    const c = await session('hooks', 'hooks')
    for (const kind of ['deny-throw', 'deny-null', 'deny-array']) {
      const id = uid(`hk::${kind}`)
      c.send({ type: 'registerfunction', id })
      await forbiddenError(c, id, `hook ${kind}`)
      assert.ok(!(await functionIds(T)).includes(id), `${id} registered despite the hook`)
    }
    await c.roundTrip()
    c.close()
  })

  it('on_trigger_registration sees the auth context and can rename or deny (TRR FORBIDDEN)', async () => {
    const tag = uid('th')
    const c = await session('hooks', 'hooks')
    const cfg = { stream_name: 'hk', group_id: 'g' }
    for (const kind of ['trg-deny-throw', 'trg-deny-null']) {
      const id = `${kind}-${tag}`
      c.send({ type: 'registertrigger', id, trigger_type: 'stream', function_id: 'hk::f', config: cfg, metadata: { m: 1 } })
      const r = await c.next((m) => m.type === 'triggerregistrationresult' && m.id === id, 3000, `TRR for ${kind}`)
      assert.equal(r.trigger_type, 'stream')
      assert.equal(r.function_id, 'hk::f')
      assert.equal(r.error?.code, 'FORBIDDEN', JSON.stringify(r))
      assert.ok(!(await triggerRows(T)).some((t) => t.id === id))
    }
    const id = `trg-rename-${tag}`
    c.send({ type: 'registertrigger', id, trigger_type: 'stream', function_id: 'hk::f', config: cfg, metadata: { m: 1 } })
    await c.roundTrip()
    await c.none((m) => m.type === 'triggerregistrationresult' && m.id === id, 100, 'TRR for an allowed trigger')
    assert.deepEqual(trigHookInputs.find((i) => i.trigger_id === id),
      { trigger_id: id, trigger_type: 'stream', function_id: 'hk::f', config: cfg, metadata: { m: 1 }, context: { session_id: 'ctx-42' } })
    const rows = await triggerRows(T)
    assert.ok(!rows.some((t) => t.id === id), 'the original trigger id was stored')
    const row = rows.find((t) => t.id === `${id}-renamed`)
    assert.ok(row, JSON.stringify(rows))
    assert.equal(row.function_id, 'hk::other')
    assert.deepEqual(row.config, { stream_name: 'hooked', group_id: 'g' })

    // With a prefix the hook sees the unprefixed function id; the prefix applies afterwards.
    const p = await session('hooksprefix', 'hooks')
    const pid = `trg-plain-${tag}`
    p.send({ type: 'registertrigger', id: pid, trigger_type: 'stream', function_id: 'ui::x', config: cfg })
    await p.roundTrip()
    const input = trigHookInputs.find((i) => i.trigger_id === pid)
    assert.equal(input.function_id, 'ui::x')
    assert.deepEqual(input.context, { session_id: 'ctx-43' })
    assert.equal((await triggerRows(T)).find((t) => t.id === pid)?.function_id, 'hp::ui::x')
    c.close(); p.close()
  })

  for (const gen of GENERATIONS) {
    it(`iii-sdk@${gen.name} registrations go through the hooks`, async () => {
      const tag = uid(`hs-${gen.name}`)
      const w = await makeWorker(gen, `${urls.hooks}/?as=hooks`)
      w.registerFunction(`hk::rename-${tag}`, async () => ({}))
      w.registerFunction(`hk::deny-throw-${tag}`, async () => ({}))
      await connected(w); await barrier(w)
      const ids = await functionIds(T)
      assert.ok(ids.includes(`hk::renamed-${tag}`), JSON.stringify(ids))
      assert.ok(!ids.includes(`hk::rename-${tag}`))
      assert.ok(!ids.includes(`hk::deny-throw-${tag}`))
      assert.deepEqual(fnHookInputs.find((i) => i.function_id === `hk::rename-${tag}`)?.context, { session_id: 'ctx-42' })
      await w.shutdown()
    })
  }
})
