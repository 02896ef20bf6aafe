// ISSUE "event-sourced streams": change events to `stream` and `state` triggers
// (docs/wire-protocol.md#stream-triggers, #state-triggers and #delivery-order), ordering under
// concurrency, trigger registration failures, custom stream implementations
// (docs/wire-protocol.md#custom-stream-implementations).
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  startEngine, rawWorker, makeWorker, connected, barrier, shutdownWorkers, GENERATIONS,
  rejection, waitFor, sleep, uid,
} from './lib/engine.mjs'

let engine
before(async () => { engine = await startEngine() })
after(async () => {
  await shutdownWorkers()
  await engine?.cleanup()
})

const ENVELOPE_KEYS = ['event', 'groupId', 'id', 'streamName', 'timestamp', 'type']

function checkEnvelope(e, streamName) {
  assert.deepEqual(Object.keys(e).sort(), ENVELOPE_KEYS, `envelope keys: ${JSON.stringify(e)}`)
  assert.equal(e.type, 'stream')
  assert.equal(e.streamName, streamName)
  assert.ok(Number.isInteger(e.timestamp), `timestamp must be integer ms: ${e.timestamp}`)
  assert.ok(Math.abs(e.timestamp - Date.now()) < 60000, `timestamp ${e.timestamp} is not epoch ms near now`)
}

const summary = (e) => [e.event.type, e.groupId, e.id, e.event.type === 'event' ? e.event.event : e.event.data]

for (const gen of GENERATIONS) {
  describe(`stream triggers with iii-sdk@${gen.name}`, () => {
    const S = uid(`ev-${gen.name}`)
    const got = {}
    const condCalls = []
    const metas = []
    let W
    let writer
    let trigAll

    before(async () => {
      W = await makeWorker(gen, engine.workerUrl)
      const handler = (name) => async (data, meta) => {
        (got[name] ??= []).push(data)
        if (name === 'meta') metas.push(meta)
        return {}
      }
      for (const h of ['all', 'group', 'groupEmpty', 'item', 'condFalse', 'condNull', 'condZero', 'condThrows', 'meta', 'dup']) {
        W.registerFunction(`e2e::h::${gen.name}::${h}`, handler(h))
      }
      W.registerFunction(`e2e::c::${gen.name}::false`, async (p) => { condCalls.push(p); return false })
      W.registerFunction(`e2e::c::${gen.name}::null`, async () => null)
      W.registerFunction(`e2e::c::${gen.name}::zero`, async () => 0)
      W.registerFunction(`e2e::c::${gen.name}::throws`, async () => { throw new Error('condition boom') })
      const fn = (h) => `e2e::h::${gen.name}::${h}`
      trigAll = W.registerTrigger({ type: 'stream', function_id: fn('all'), config: { stream_name: S } })
      W.registerTrigger({ type: 'stream', function_id: fn('group'), config: { stream_name: S, group_id: 'g1' } })
      W.registerTrigger({ type: 'stream', function_id: fn('groupEmpty'), config: { stream_name: S, group_id: '', item_id: '' } })
      W.registerTrigger({ type: 'stream', function_id: fn('item'), config: { stream_name: S, group_id: 'g1', item_id: 'i1' } })
      W.registerTrigger({ type: 'stream', function_id: fn('condFalse'), config: { stream_name: S, condition_function_id: `e2e::c::${gen.name}::false` } })
      W.registerTrigger({ type: 'stream', function_id: fn('condNull'), config: { stream_name: S, condition_function_id: `e2e::c::${gen.name}::null` } })
      W.registerTrigger({ type: 'stream', function_id: fn('condZero'), config: { stream_name: S, condition_function_id: `e2e::c::${gen.name}::zero` } })
      W.registerTrigger({ type: 'stream', function_id: fn('condThrows'), config: { stream_name: S, condition_function_id: `e2e::c::${gen.name}::throws` } })
      W.registerTrigger({ type: 'stream', function_id: fn('meta'), config: { stream_name: S, group_id: 'g2' }, metadata: { tag: 'm' } })
      await connected(W)
      await barrier(W)
      writer = await makeWorker(gen, engine.workerUrl)
      await connected(writer)
    })

    it('delivers create/update/delete/send events matching the filters, in write order', async () => {
      const set = (g, i, data) => writer.trigger({ function_id: 'stream::set', payload: { stream_name: S, group_id: g, item_id: i, data } })
      await set('g1', 'i1', { v: 1 })
      await set('g1', 'i1', { v: 2 })
      await writer.trigger({ function_id: 'stream::update', payload: { stream_name: S, group_id: 'g1', item_id: 'i1', ops: [{ type: 'set', path: 'w', value: true }] } })
      await set('g2', 'i2', { v: 3 })
      await writer.trigger({ function_id: 'stream::delete', payload: { stream_name: S, group_id: 'g1', item_id: 'i1' } })
      await writer.trigger({ function_id: 'stream::delete', payload: { stream_name: S, group_id: 'g1', item_id: 'missing' } })
      await writer.trigger({ function_id: 'stream::send', payload: { stream_name: S, group_id: 'g1', type: 'custom', data: { hello: 1 } } })
      await writer.trigger({ function_id: 'stream::send', payload: { stream_name: S, group_id: 'g1', type: 'custom2', data: 5, id: 'i1' } })
      await writer.trigger({ function_id: 'stream::set', payload: { stream_name: `${S}-other`, group_id: 'g1', item_id: 'i1', data: { ignored: true } } })
      await rejection(writer.trigger({ function_id: 'stream::set', payload: { stream_name: S, group_id: 'g1' } }))
      // All ops fail: still an update event with the unchanged value.
      const u = await writer.trigger({ function_id: 'stream::update', payload: { stream_name: S, group_id: 'g2', item_id: 'i2', ops: [{ type: 'append', path: 'v', value: 'x' }] } })
      assert.equal(u.errors?.[0]?.code, 'append.type_mismatch')
      await set('g2', 'i3', null)

      const ALL = [
        ['create', 'g1', 'i1', { v: 1 }],
        ['update', 'g1', 'i1', { v: 2 }],
        ['update', 'g1', 'i1', { v: 2, w: true }],
        ['create', 'g2', 'i2', { v: 3 }],
        ['delete', 'g1', 'i1', { v: 2, w: true }],
        ['event', 'g1', null, { type: 'custom', data: { hello: 1 } }],
        ['event', 'g1', 'i1', { type: 'custom2', data: 5 }],
        ['update', 'g2', 'i2', { v: 3 }],
        ['create', 'g2', 'i3', null],
      ]
      const expect = {
        all: ALL,
        groupEmpty: ALL,
        condNull: ALL,
        condZero: ALL,
        group: ALL.filter((e) => e[1] === 'g1'),
        item: ALL.filter((e) => e[1] === 'g1' && e[2] === 'i1'),
        meta: ALL.filter((e) => e[1] === 'g2'),
        condFalse: [],
        condThrows: [],
      }
      await waitFor(() => Object.entries(expect).every(([k, v]) => (got[k]?.length ?? 0) >= v.length), 8000,
        `all events (have ${JSON.stringify(Object.fromEntries(Object.entries(got).map(([k, v]) => [k, v.length])))})`)
      await sleep(400)
      for (const [k, v] of Object.entries(expect)) {
        const evs = got[k] ?? []
        evs.forEach((e) => checkEnvelope(e, S))
        assert.deepEqual(evs.map(summary), v, `handler ${k}`)
      }
      // The condition function saw the same payloads and vetoed every one.
      assert.equal(condCalls.length, ALL.length)
      assert.deepEqual(condCalls.map(summary), ALL)
      const ev = got.all.find((e) => e.event.type === 'event')
      assert.deepEqual(ev.event, { type: 'event', event: { type: 'custom', data: { hello: 1 } } })
      assert.ok('id' in ev && ev.id === null, 'send without id carries id: null')
      if (gen.name === '0.22.1') {
        // Trigger metadata is delivered as invokefunction.metadata (0.22.1 handlers see it).
        assert.deepEqual(metas[0], { tag: 'm' })
      }
    })

    it('unregistering a trigger stops its events', async () => {
      trigAll.unregister()
      await barrier(W)
      const before = (got.all ?? []).length
      const beforeGroup = (got.groupEmpty ?? []).length
      await writer.trigger({ function_id: 'stream::set', payload: { stream_name: S, group_id: 'g9', item_id: 'z', data: 1 } })
      await waitFor(() => (got.groupEmpty ?? []).length === beforeGroup + 1, 5000, 'event to the remaining trigger')
      await sleep(300)
      assert.equal((got.all ?? []).length, before)
    })
  })
}

for (const gen of GENERATIONS) {
  describe(`state triggers with iii-sdk@${gen.name}`, () => {
    it('state:created / state:updated / state:deleted with scope/key filters and conditions', async () => {
      const SC = uid(`sc-${gen.name}`)
      const got = { scope: [], key: [], all: [], cond: [] }
      const W = await makeWorker(gen, engine.workerUrl)
      for (const k of Object.keys(got)) W.registerFunction(`e2e::s::${gen.name}::${k}`, async (d) => { got[k].push(d); return {} })
      W.registerFunction(`e2e::s::${gen.name}::no`, async () => false)
      W.registerTrigger({ type: 'state', function_id: `e2e::s::${gen.name}::scope`, config: { scope: SC } })
      W.registerTrigger({ type: 'state', function_id: `e2e::s::${gen.name}::key`, config: { scope: SC, key: 'k1' } })
      W.registerTrigger({ type: 'state', function_id: `e2e::s::${gen.name}::all`, config: {} })
      W.registerTrigger({ type: 'state', function_id: `e2e::s::${gen.name}::cond`, config: { scope: SC, condition_function_id: `e2e::s::${gen.name}::no` } })
      await connected(W); await barrier(W)
      const t = (function_id, payload) => W.trigger({ function_id, payload })
      await t('state::set', { scope: SC, key: 'k1', value: 1 })
      await t('state::set', { scope: SC, key: 'k1', value: 2 })
      await t('state::update', { scope: SC, key: 'k2', ops: [{ type: 'increment', path: 'n', by: 1 }] })
      await t('state::delete', { scope: SC, key: 'k1' })
      await t('state::delete', { scope: SC, key: 'never' })
      await t('state::set', { scope: `${SC}-other`, key: 'k1', value: 'o' })
      await t('state::get', { scope: SC, key: 'k2' })
      const ev = (event_type, scope, key, old_value, new_value) => ({ type: 'state', event_type, scope, key, old_value, new_value })
      const mine = [
        ev('state:created', SC, 'k1', null, 1),
        ev('state:updated', SC, 'k1', 1, 2),
        ev('state:created', SC, 'k2', null, { n: 1 }),
        ev('state:deleted', SC, 'k1', 2, null),
        ev('state:deleted', SC, 'never', null, null),
      ]
      const other = ev('state:created', `${SC}-other`, 'k1', null, 'o')
      const relevant = (e) => e.scope === SC || e.scope === `${SC}-other`
      await waitFor(() => got.scope.length >= 5 && got.all.filter(relevant).length >= 6 && got.key.length >= 3, 8000, 'state events')
      await sleep(300)
      assert.deepEqual(got.scope, mine)
      assert.deepEqual(got.key, mine.filter((e) => e.key === 'k1'))
      assert.deepEqual(got.all.filter(relevant), [...mine, other])
      assert.deepEqual(got.cond, [])
    })
  })
}

for (const [writerGen, subGen] of [[GENERATIONS[0], GENERATIONS[1]], [GENERATIONS[1], GENERATIONS[0]]]) {
  describe(`ordering: writer iii-sdk@${writerGen.name}, subscriber iii-sdk@${subGen.name}`, () => {
    it('200 concurrent sets: every subscriber (the writer too) gets each item\'s events in write order, none lost or doubled', async () => {
      const S = uid('ord')
      const writer = await makeWorker(writerGen, engine.workerUrl)
      const sub = await makeWorker(subGen, engine.workerUrl)
      const mineW = []
      const mineS = []
      writer.registerFunction(`e2e::ord::w::${S}`, async (e) => { mineW.push(e); return {} })
      sub.registerFunction(`e2e::ord::s::${S}`, async (e) => { mineS.push(e); return {} })
      writer.registerTrigger({ type: 'stream', function_id: `e2e::ord::w::${S}`, config: { stream_name: S } })
      sub.registerTrigger({ type: 'stream', function_id: `e2e::ord::s::${S}`, config: { stream_name: S } })
      await connected(writer); await connected(sub)
      await barrier(writer); await barrier(sub)

      const ITEMS = 20
      const PER = 10
      const jobs = []
      for (let j = 0; j < PER; j++) {
        for (let i = 0; i < ITEMS; i++) {
          const data = { item: `i${i}`, n: j }
          jobs.push(writer.trigger({ function_id: 'stream::set', payload: { stream_name: S, group_id: 'g', item_id: `i${i}`, data } }).then((r) => ({ item: `i${i}`, r })))
        }
      }
      const results = await Promise.all(jobs)
      // Reconstruct each item's write order from the old_value chain of the results.
      const chains = {}
      for (let i = 0; i < ITEMS; i++) {
        const rs = results.filter((x) => x.item === `i${i}`).map((x) => x.r)
        const chain = []
        let prev = null
        for (let k = 0; k < PER; k++) {
          const nxt = rs.find((r) => JSON.stringify(r.old_value) === JSON.stringify(prev))
          assert.ok(nxt, `item i${i}: results do not form a chain (linearizability): ${JSON.stringify(rs)}`)
          chain.push(nxt.new_value)
          prev = nxt.new_value
        }
        chains[`i${i}`] = chain
      }
      const total = ITEMS * PER
      await waitFor(() => mineW.length >= total && mineS.length >= total, 20000, `all ${total} events (writer has ${mineW.length}, subscriber has ${mineS.length})`)
      await sleep(500)
      for (const [who, evs] of [['writer', mineW], ['subscriber', mineS]]) {
        assert.equal(evs.length, total, `${who} got ${evs.length} events, expected ${total}`)
        for (let i = 0; i < ITEMS; i++) {
          const mine = evs.filter((e) => e.id === `i${i}`)
          assert.deepEqual(mine.map((e) => e.event.type), ['create', ...Array(PER - 1).fill('update')], `${who} i${i} event types`)
          assert.deepEqual(mine.map((e) => e.event.data), chains[`i${i}`], `${who} i${i} values not in write order`)
        }
      }
    })
  })
}

describe('trigger registration failures and duplicates (raw)', () => {
  it('stream trigger config errors -> TRR trigger_registration_failed naming the field', async () => {
    const c = await rawWorker(engine.workerUrl)
    c.send({ type: 'registerfunction', id: 'rf::h' })
    const cases = [
      ['t-nostream', 'stream', { group_id: 'g' }, 'stream_name'],
      ['t-numstream', 'stream', { stream_name: 5 }, 'stream_name'],
      ['t-strconfig', 'stream', 'not-an-object', null],
      ['t-nullconfig', 'stream', null, null],
      ['t-badgroup', 'stream', { stream_name: 's', group_id: 7 }, 'group_id'],
      ['t-state-str', 'state', 'not-an-object', null],
      ['t-state-badscope', 'state', { scope: 1 }, 'scope'],
    ]
    for (const [id, trigger_type, config, field] of cases) {
      c.send({ type: 'registertrigger', id, trigger_type, function_id: 'rf::h', config, message_type: 'registertrigger' })
      const r = await c.next((m) => m.type === 'triggerregistrationresult' && m.id === id, 3000, `TRR for ${id}`)
      assert.equal(r.trigger_type, trigger_type)
      assert.equal(r.function_id, 'rf::h')
      assert.equal(r.error?.code, 'trigger_registration_failed', JSON.stringify(r))
      if (field) assert.ok(r.error.message.includes(field), `message should name ${field}: ${r.error.message}`)
    }
    // A valid one is silent.
    c.send({ type: 'registertrigger', id: 't-ok', trigger_type: 'stream', function_id: 'rf::h', config: { stream_name: 'ok' } })
    await c.none((m) => m.type === 'triggerregistrationresult' && m.id === 't-ok', 400, 'TRR for a valid trigger')
    c.close()
  })

  it('iii-sdk@0.22.1 logs the failure it receives', async () => {
    const lines = []
    const orig = console.error
    console.error = (...a) => { lines.push(a.join(' ')) }
    try {
      const w = await makeWorker(GENERATIONS[0], engine.workerUrl)
      w.registerFunction('e2e::rf::sdk', async () => ({}))
      w.registerTrigger({ type: 'stream', function_id: 'e2e::rf::sdk', config: { group_id: 'no-stream-name' } })
      await connected(w); await barrier(w)
      await waitFor(() => lines.some((l) => l.includes('[iii] Trigger registration failed for')), 3000, 'SDK console.error about the TRR')
      assert.match(lines.find((l) => l.includes('Trigger registration failed')), /\(stream\): .*stream_name/)
    } finally {
      console.error = orig
    }
  })

  it('registering the same trigger id twice does not make it fire twice', async () => {
    const S = uid('dup')
    const c = await rawWorker(engine.workerUrl)
    c.serve({ 'dup::h': () => ({}) })
    c.send({ type: 'registertrigger', id: 'dup-1', trigger_type: 'stream', function_id: 'dup::h', config: { stream_name: S } })
    c.send({ type: 'registertrigger', id: 'dup-1', trigger_type: 'stream', function_id: 'dup::h', config: { stream_name: S } })
    await c.roundTrip()
    const r = await c.call('stream::set', { stream_name: S, group_id: 'g', item_id: 'i', data: 1 })
    assert.deepEqual(r.result, { old_value: null, new_value: 1 })
    await waitFor(() => c.served.some((m) => m.data?.streamName === S), 3000, 'one firing')
    await sleep(400)
    const firings = c.served.filter((m) => m.data?.streamName === S)
    assert.equal(firings.length, 1, `fired ${firings.length} times`)
    // Firing frame: engine-originated, fresh invocation id, no _caller_worker_id.
    assert.equal(typeof firings[0].invocation_id, 'string')
    assert.ok(!('_caller_worker_id' in firings[0].data))
    c.close()
  })

  it('a connection\'s triggers are removed when it disconnects', async () => {
    const c = await rawWorker(engine.workerUrl)
    c.send({ type: 'registerfunction', id: 'gone::h' })
    c.send({ type: 'registertrigger', id: 'gone-t', trigger_type: 'stream', function_id: 'gone::h', config: { stream_name: 'gone' } })
    await c.roundTrip()
    const probe = await rawWorker(engine.workerUrl)
    const before = await probe.call('engine::registered-triggers::list', {})
    assert.ok(before.result.registered_triggers.some((t) => t.id === 'gone-t'), JSON.stringify(before))
    await c.close()
    await waitFor(async () => {
      const r = await probe.call('engine::registered-triggers::list', {})
      return !r.result.registered_triggers.some((t) => t.id === 'gone-t')
    }, 3000, 'trigger of a closed connection to be removed')
    probe.close()
  })

  it('a slow handler does not delay the writer (fire-and-forget dispatch)', async () => {
    const S = uid('slow')
    const c = await rawWorker(engine.workerUrl)
    c.send({ type: 'registerfunction', id: 'slow::h' })
    c.send({ type: 'registertrigger', id: 'slow-t', trigger_type: 'stream', function_id: 'slow::h', config: { stream_name: S } })
    await c.roundTrip()
    const writer = await rawWorker(engine.workerUrl)
    const t0 = Date.now()
    for (let i = 0; i < 3; i++) {
      const r = await writer.call('stream::set', { stream_name: S, group_id: 'g', item_id: `i${i}`, data: i })
      assert.equal(r.error, undefined)
    }
    assert.ok(Date.now() - t0 < 3000, 'writes waited for an unanswered handler')
    // The never-answering subscriber still receives events in order, one at a time or all at once.
    const first = await c.next((m) => m.type === 'invokefunction' && m.function_id === 'slow::h', 3000)
    assert.equal(first.data.id, 'i0')
    c.close(); writer.close()
  })
})

for (const gen of GENERATIONS) {
  describe(`custom stream implementation (docs/wire-protocol.md#custom-stream-implementations) registered by iii-sdk@${gen.name}`, () => {
    const NAME = uid(`custom-${gen.name}`)
    const BAD = uid(`custombad-${gen.name}`)
    const calls = []
    const store = new Map()
    let c
    let events

    before(async () => {
      const w = await makeWorker(gen, engine.workerUrl)
      const key = (i) => `${i.group_id}/${i.item_id}`
      const impl = {
        async get(i) { calls.push(['get', i]); return store.has(key(i)) ? store.get(key(i)) : null },
        async set(i) { calls.push(['set', i]); const old = store.get(key(i)) ?? null; store.set(key(i), i.data); return { old_value: old, new_value: i.data } },
        async delete(i) { calls.push(['delete', i]); const old = store.get(key(i)) ?? null; store.delete(key(i)); return { old_value: old } },
        async list(i) { calls.push(['list', i]); return [...store.entries()].filter(([k]) => k.startsWith(`${i.group_id}/`)).map(([, v]) => v) },
        async listGroups(i) { calls.push(['listGroups', i]); return [...new Set([...store.keys()].map((k) => k.split('/')[0]))] },
        async update() { throw new Error('not registered by createStream') },
      }
      const bad = {
        async get(i) { if (i.item_id === 'throws') throw new Error('get boom'); return null },
        async set(i) { if (i.item_id === 'wrong-shape') return 'oops'; return undefined },
        async delete() { throw new Error('delete boom') },
        async list() { return [] },
        async listGroups() { return [] },
        async update() { return null },
      }
      if (gen.name === '0.22.1') {
        const { createStream } = await import('iii-sdk/helpers')
        createStream(w, NAME, impl)
        createStream(w, BAD, bad)
      } else {
        w.createStream(NAME, impl)
        w.createStream(BAD, bad)
      }
      events = []
      w.registerFunction(`e2e::cs::${gen.name}`, async (e) => { events.push(e); return {} })
      w.registerTrigger({ type: 'stream', function_id: `e2e::cs::${gen.name}`, config: { stream_name: NAME } })
      await connected(w); await barrier(w)
      c = await rawWorker(engine.workerUrl)
    })
    after(() => c?.close())

    it('set/get/list/list_groups/delete go to the worker; results keep the canonical shapes', async () => {
      const addr = { stream_name: NAME, group_id: 'g', item_id: 'a' }
      const s = await c.call('stream::set', { ...addr, data: { v: 1 } })
      assert.deepEqual(s.result, { old_value: null, new_value: { v: 1 } })
      const setCall = calls.find((x) => x[0] === 'set')
      assert.ok(setCall, `stream::set(${NAME}) was not called; the engine used its own store (calls: ${JSON.stringify(calls)})`)
      assert.deepEqual(setCall[1], { ...addr, data: { v: 1 } }, 'the implementation gets only the known fields')
      assert.deepEqual((await c.call('stream::get', addr)).result, { v: 1 })
      assert.deepEqual((await c.call('stream::list', { stream_name: NAME, group_id: 'g' })).result, [{ v: 1 }])
      assert.deepEqual((await c.call('stream::list_groups', { stream_name: NAME })).result, ['g'])
      const d = await c.call('stream::delete', addr)
      assert.deepEqual(d.result, { old_value: { v: 1 } })
      const g = await c.call('stream::get', addr)
      assert.equal(g.error, undefined)
      assert.ok(!('result' in g), `a null from the implementation counts as absent: ${JSON.stringify(g)}`)
      assert.deepEqual(calls.map((x) => x[0]), ['set', 'get', 'list', 'listGroups', 'delete', 'get'])
    })

    it('overridden writes still produce events; they are not stored in the engine store', async () => {
      await waitFor(() => events.length >= 2, 5000, 'create + delete events for the custom stream')
      assert.deepEqual(events.map((e) => [e.event.type, e.id, e.event.data]), [['create', 'a', { v: 1 }], ['delete', 'a', { v: 1 }]])
      const all = await c.call('stream::list_all', {})
      assert.ok(!all.result.stream.some((s) => s.id === NAME), 'custom stream data must not be in the engine store')
    })

    it('stream::update without an override falls through to the built-in store', async () => {
      const r = await c.call('stream::update', { stream_name: NAME, group_id: 'u', item_id: 'x', ops: [{ type: 'set', path: 'k', value: 1 }] })
      assert.deepEqual(r.result, { old_value: null, new_value: { k: 1 } })
    })

    it('implementation failures map to STREAM_*_ERROR / JSON_ERROR; get errors pass through', async () => {
      const s = await c.call('stream::set', { stream_name: BAD, group_id: 'g', item_id: 'x', data: 1 })
      assert.equal(s.error?.code, 'STREAM_SET_ERROR', JSON.stringify(s))
      const w = await c.call('stream::set', { stream_name: BAD, group_id: 'g', item_id: 'wrong-shape', data: 1 })
      assert.equal(w.error?.code, 'JSON_ERROR', JSON.stringify(w))
      const d = await c.call('stream::delete', { stream_name: BAD, group_id: 'g', item_id: 'x' })
      assert.equal(d.error?.code, 'STREAM_DELETE_ERROR', JSON.stringify(d))
      const g = await c.call('stream::get', { stream_name: BAD, group_id: 'g', item_id: 'throws' })
      assert.deepEqual({ code: g.error?.code, message: g.error?.message }, { code: 'invocation_failed', message: 'get boom' })
    })
  })
}
