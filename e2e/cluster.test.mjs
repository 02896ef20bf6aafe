// Cluster mode (engine.cluster): several engines sharing one log on a NATS JetStream stream,
// against real nats-server processes (bin/nats-server, e2e/lib/nats.mjs). Calls to functions of
// workers on another engine, cross-engine reads and stream events, concurrent writes to one item
// through two engines, SIGKILL of an engine (fast failures, node.lost, catch-up from an empty
// data dir), a three-server JetStream cluster losing a server, and start-up errors.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {
  startEngine, makeWorker, connected, barrier, shutdownWorkers, rawClient, rawWorker, spawnChild,
  runIII, toYaml, freePort, GENERATIONS, sdkModule, rejection, waitFor, sleep, uid,
} from './lib/engine.mjs'
import { startNats, startNatsCluster } from './lib/nats.mjs'

const gen = GENERATIONS.find((g) => g.name === '0.22.1')

/** The engine config of one cluster node (ports from the harness). */
const clusterConfig = (natsUrl, node, cluster = {}, engine = {}) => ({ workerPort, streamPort }) => ({
  workers: [
    { name: 'iii-worker-manager', config: { port: workerPort } },
    { name: 'iii-stream', config: { port: streamPort } },
  ],
  engine: { cluster: { nats_url: natsUrl, node, ...cluster }, ...engine },
})

/**
 * Everything a describe started, cleaned up in its after hook: SDK workers first, then the
 * engines (all at once: a stuck shutdown costs its 10 s only once), then the NATS servers.
 */
function resources() {
  const engines = []
  const others = []
  const settle = (ps) => Promise.all(ps.map((p) => p.catch((e) => process.stderr.write(`[e2e] cleanup: ${e?.stack ?? e}\n`))))
  return {
    engine(e) { engines.push(e); return e },
    add(r) { others.push(r); return r },
    async cleanup() {
      await shutdownWorkers()
      await settle(engines.splice(0).map((e) => e.cleanup()))
      await settle(others.splice(0).reverse().map((r) => Promise.resolve().then(() => r.cleanup())))
    },
  }
}

const call = (w, function_id, payload = {}, timeoutMs = 10000) => w.trigger({ function_id, payload, timeoutMs })

/** The function ids engine::functions::list answers through worker w. */
const functionIds = async (w) => (await call(w, 'engine::functions::list')).functions.map((f) => f.function_id)

/** Wait until every id in `ids` is listed (present=true) or none is (present=false) through w. */
const waitFunctions = (w, ids, present = true, timeoutMs = 5000) =>
  waitFor(async () => {
    const have = await functionIds(w)
    return ids.every((id) => have.includes(id) === present)
  }, timeoutMs, `${ids.join(', ')} ${present ? 'listed' : 'gone from engine::functions::list'}`)

/** A short excerpt of an engine's output for assertion messages. */
const tail = (engine, n = 2500) => `\n--- engine log (${engine.logFile}) ---\n${engine.logs().slice(-n)}`

// ------------------------------------------------------------------------------------------------

describe('two engines sharing one NATS JetStream log', () => {
  const res = resources()
  let nats, A, B
  let wa, wb // SDK workers on A and on B
  const seen = { a: [], b: [] }
  const voids = { a: [], b: [] }

  before(async () => {
    nats = res.add(await startNats())
    A = res.engine(await startEngine({ config: clusterConfig(nats.url, 'a') }))
    B = res.engine(await startEngine({ config: clusterConfig(nats.url, 'b') }))
    wa = await makeWorker(gen, A.workerUrl, { workerName: 'on-a' })
    wb = await makeWorker(gen, B.workerUrl, { workerName: 'on-b' })
    for (const [w, n] of [[wa, 'a'], [wb, 'b']]) {
      w.registerFunction(`x::${n}::echo`, async (data) => { seen[n].push(data); return { node: n, input: data } })
      w.registerFunction(`x::${n}::void`, async (data) => { voids[n].push(data); return { ignored: true } })
      w.registerFunction(`x::${n}::throws`, async () => { throw new Error(`kaboom on ${n}`) })
    }
    await connected(wa)
    await connected(wb)
    await barrier(wa)
    await barrier(wb)
    // Registrations travel through the log: each engine learns the other's functions.
    await waitFunctions(wb, ['x::a::echo', 'x::a::void', 'x::a::throws'])
    await waitFunctions(wa, ['x::b::echo', 'x::b::void', 'x::b::throws'])
  })
  after(() => res.cleanup())

  it('1. calls across engines both ways: result, _caller_worker_id, void calls, remote errors', async () => {
    const mod = await sdkModule(gen)
    // B's worker calls A's function, and A's worker calls B's.
    for (const [caller, callee, other] of [[wb, 'a', 'b'], [wa, 'b', 'a']]) {
      const marker = uid(`from-${other}`)
      const r = await call(caller, `x::${callee}::echo`, { marker, nested: { list: [1, 'two', null] } })
      assert.deepEqual(r, { node: callee, input: { marker, nested: { list: [1, 'two', null] }, _caller_worker_id: caller.workerId } },
        `x::${callee}::echo called from engine ${other}`)
      assert.deepEqual(seen[callee].filter((d) => d?.marker === marker), [{ marker, nested: { list: [1, 'two', null] }, _caller_worker_id: caller.workerId }],
        `the handler on engine ${callee} ran exactly once`)
      // Non-object payloads are carried unchanged.
      assert.deepEqual(await call(caller, `x::${callee}::echo`, [1, 2, 3]), { node: callee, input: [1, 2, 3] })
      assert.deepEqual(await call(caller, `x::${callee}::echo`, 'plain'), { node: callee, input: 'plain' })

      // Void call: no answer, but the handler on the other engine runs.
      const vmark = uid('void')
      const v = await caller.trigger({ function_id: `x::${callee}::void`, payload: { vmark }, action: mod.TriggerAction.Void() })
      assert.equal(v, undefined, 'a void call resolves without a result')
      await waitFor(() => voids[callee].some((d) => d?.vmark === vmark), 5000, `void call to x::${callee}::void to reach engine ${callee}'s worker`)
      assert.deepEqual(voids[callee].find((d) => d?.vmark === vmark), { vmark, _caller_worker_id: caller.workerId })

      // An error thrown by the remote handler comes back to the caller.
      const e = await rejection(call(caller, `x::${callee}::throws`, { q: 1 }), `x::${callee}::throws`)
      assert.equal(e.name, gen.errorName, `${e.name}: ${e.message}`)
      assert.equal(e.code, 'invocation_failed', `${e.code}: ${e.message}`)
      assert.equal(e.message, `invocation_failed: kaboom on ${callee}`)
      assert.equal(e.function_id, `x::${callee}::throws`)
      assert.equal(typeof e.stacktrace, 'string', 'the remote stacktrace is relayed')
      assert.match(e.stacktrace, new RegExp(`kaboom on ${callee}`))
    }

    // A function nobody registered is not found through either engine.
    for (const w of [wa, wb]) {
      const e = await rejection(call(w, 'x::nobody::echo', {}))
      assert.equal(e.code, 'function_not_found', `${e.code}: ${e.message}`)
    }
    // Both engines list both nodes' workers.
    for (const w of [wa, wb]) {
      const names = (await call(w, 'engine::workers::list')).workers.map((x) => x.name)
      assert.ok(names.includes('on-a') && names.includes('on-b'), `engine::workers::list: ${names.join(', ')}`)
    }
  })

  it('2a. 300 stream::set through B: each readable on A at once, listed on A, and a stream trigger on A hears all 300 in order', async () => {
    const S = uid('xs')
    const N = 300
    const heard = []
    const tw = await makeWorker(gen, A.workerUrl, { workerName: 'trigger-on-a' })
    tw.registerFunction('x::a::on-change', async (ev) => { heard.push(ev); return {} })
    tw.registerTrigger({ type: 'stream', function_id: 'x::a::on-change', config: { stream_name: S } })
    await connected(tw)
    await barrier(tw)

    const value = (i) => ({ i, label: `value-${i}`, even: i % 2 === 0 })
    const item = (i) => `item-${String(i).padStart(3, '0')}`
    for (let i = 0; i < N; i++) {
      const r = await call(wb, 'stream::set', { stream_name: S, group_id: 'g', item_id: item(i), data: value(i) })
      assert.deepEqual(r, { old_value: null, new_value: value(i) }, `stream::set ${item(i)} through B`)
      // A read on A right after B answered sees the write.
      const got = await call(wa, 'stream::get', { stream_name: S, group_id: 'g', item_id: item(i) })
      assert.deepEqual(got, value(i), `stream::get ${item(i)} on A right after B acknowledged it`)
    }
    const list = await call(wa, 'stream::list', { stream_name: S, group_id: 'g' })
    assert.equal(list.length, N, `stream::list on A has ${list.length} items`)
    assert.deepEqual(list, Array.from({ length: N }, (_, i) => value(i)))
    assert.deepEqual(await call(wa, 'stream::list_groups', { stream_name: S }), ['g'])

    await waitFor(() => heard.length >= N, 15000, `${N} stream events on A's worker (heard ${heard.length})`)
    assert.equal(heard.length, N, 'exactly one event per write')
    assert.deepEqual(heard.map((e) => [e.type, e.streamName, e.groupId, e.id, e.event?.type, e.event?.data]),
      Array.from({ length: N }, (_, i) => ['stream', S, 'g', item(i), 'create', value(i)]),
      'the events arrive in write order')

    // iii replay reads the cluster's log: the writes, in order, each naming node b.
    const r = await runIII(['replay', '--nats', nats.url, '--stream', S, '--kind', 'stream.set', '--format', 'json'])
    assert.equal(r.code, 0, `iii replay --nats: ${r.stderr}`)
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l))
    assert.deepEqual(rows.map((x) => [x.item, x.node]), Array.from({ length: N }, (_, i) => [item(i), 'b']))
    const at = await runIII(['replay', '--nats', nats.url, '--at', String(rows[9].index), '--format', 'json'])
    assert.equal(at.code, 0, `iii replay --nats --at: ${at.stderr}`)
    const items = JSON.parse(at.stdout).items.filter((x) => x.stream === S)
    assert.deepEqual(items.map((x) => x.item), Array.from({ length: 10 }, (_, i) => item(i)), 'the state after the tenth write')
  })

  it('2b. a stream-port subscriber on A receives the events of writes made through B', async () => {
    const S = uid('xport')
    const c = await rawClient(A.streamUrl)
    try {
      c.send({ type: 'join', data: { subscriptionId: 'sub-1', streamName: S, groupId: 'g' } })
      const sync = await c.next((m) => m.type === 'stream' && m.streamName === S && m.event?.type === 'sync', 5000, 'sync frame')
      assert.deepEqual(sync.event.data, [])
      await call(wb, 'stream::set', { stream_name: S, group_id: 'g', item_id: 'a', data: { n: 1 } })
      await call(wb, 'stream::set', { stream_name: S, group_id: 'g', item_id: 'b', data: { n: 2 } })
      await call(wb, 'stream::update', { stream_name: S, group_id: 'g', item_id: 'a', ops: [{ type: 'increment', path: 'n', by: 9 }] })
      await call(wb, 'stream::delete', { stream_name: S, group_id: 'g', item_id: 'b' })
      await call(wb, 'stream::send', { stream_name: S, group_id: 'g', type: 'note', data: 'hi' })
      await call(wb, 'stream::set', { stream_name: S, group_id: 'other', item_id: 'x', data: 1 })
      const got = []
      for (let i = 0; i < 5; i++) {
        got.push(await c.next((m) => m.type === 'stream' && m.streamName === S && m.event?.type !== 'sync', 5000, `event ${i} on A's stream port`))
      }
      assert.deepEqual(got.map((e) => [e.groupId, e.event.type, e.id, e.event.data ?? e.event.event]), [
        ['g', 'create', 'a', { n: 1 }],
        ['g', 'create', 'b', { n: 2 }],
        ['g', 'update', 'a', { n: 10 }],
        ['g', 'delete', 'b', { n: 2 }],
        ['g', 'event', null, { type: 'note', data: 'hi' }],
      ])
      await c.none((m) => m.type === 'stream' && m.streamName === S && m.groupId === 'other', 300, 'event of a group not joined')
    } finally {
      c.close()
    }
  })

  it('3a. 200 concurrent increments of one item through both engines form one chain and agree', async () => {
    const S = uid('xinc')
    const key = { stream_name: S, group_id: 'g', item_id: 'counter' }
    const M = 100
    // Through A: by 1..100; through B: by 101..200. Each answer is tagged with its `by`.
    const ops = []
    for (let i = 0; i < M; i++) {
      ops.push({ via: 'a', by: i + 1 })
      ops.push({ via: 'b', by: M + i + 1 })
    }
    const answers = await Promise.all(ops.map(async (op) => ({
      ...op,
      r: await call(op.via === 'a' ? wa : wb, 'stream::update', { ...key, ops: [{ type: 'increment', path: 'n', by: op.by }] }),
    })))
    const total = (2 * M * (2 * M + 1)) / 2
    for (const { via, by, r } of answers) {
      assert.deepEqual(Object.keys(r).sort(), ['new_value', 'old_value'], `answer through ${via}: ${JSON.stringify(r)}`)
      assert.equal(r.new_value.n - (r.old_value?.n ?? 0), by, `increment by ${by} through ${via}: ${JSON.stringify(r)}`)
    }
    // One chain: exactly one starts from nothing, each other starts where another ended.
    const starts = answers.filter((a) => a.r.old_value === null)
    assert.equal(starts.length, 1, `answers with old_value null: ${JSON.stringify(starts)}`)
    const chain = [...answers].sort((x, y) => x.r.new_value.n - y.r.new_value.n)
    for (let i = 1; i < chain.length; i++) {
      assert.deepEqual(chain[i].r.old_value, chain[i - 1].r.new_value,
        `answer ${i} (by ${chain[i].by} through ${chain[i].via}) does not start where answer ${i - 1} ended`)
    }
    assert.deepEqual(chain.at(-1).r.new_value, { n: total })
    // Both engines read the final value.
    assert.deepEqual(await call(wa, 'stream::get', key), { n: total }, 'final value on A')
    assert.deepEqual(await call(wb, 'stream::get', key), { n: total }, 'final value on B')
  })

  it('3b. 200 concurrent stream::set of one item through both engines: old_value/new_value form one chain', async () => {
    const S = uid('xset')
    const key = { stream_name: S, group_id: 'g', item_id: 'one' }
    const writes = []
    for (let i = 0; i < 100; i++) writes.push({ via: 'a', v: { via: 'a', i } }, { via: 'b', v: { via: 'b', i } })
    const answers = await Promise.all(writes.map(async (x) => ({ ...x, r: await call(x.via === 'a' ? wa : wb, 'stream::set', { ...key, data: x.v }) })))
    for (const { v, r } of answers) assert.deepEqual(r.new_value, v)
    const k = (v) => JSON.stringify(v)
    const olds = answers.map((a) => a.r.old_value)
    assert.equal(olds.filter((o) => o === null).length, 1, 'exactly one write found the item missing')
    const news = new Set(answers.map((a) => k(a.r.new_value)))
    for (const o of olds) if (o !== null) assert.ok(news.has(k(o)), `old_value ${k(o)} is no write's new_value`)
    assert.equal(new Set(olds.map(k)).size, olds.length, 'no two writes replaced the same value')
    // The last write is the one whose value nobody replaced; both engines read it.
    const replaced = new Set(olds.filter((o) => o !== null).map(k))
    const last = answers.filter((a) => !replaced.has(k(a.r.new_value)))
    assert.equal(last.length, 1, `writes whose value was never replaced: ${JSON.stringify(last.map((a) => a.v))}`)
    assert.deepEqual(await call(wa, 'stream::get', key), last[0].v, 'final value on A')
    assert.deepEqual(await call(wb, 'stream::get', key), last[0].v, 'final value on B')
  })
})

// ------------------------------------------------------------------------------------------------

describe('4. SIGKILL of an engine with writes in flight', () => {
  const res = resources()
  let nats, A, B
  const NODE_TIMEOUT = 2000

  before(async () => {
    nats = res.add(await startNats())
  })
  after(() => res.cleanup())

  it('acknowledged writes survive, calls fail fast, the node is dropped, and an empty restart catches up', async (t) => {
    // A small snapshot_every: the restarted node starts from a published snapshot.
    const cfgA = clusterConfig(nats.url, 'a', { node_timeout_ms: NODE_TIMEOUT }, { snapshot_every: 100 })
    A = res.engine(await startEngine({ config: cfgA }))
    B = res.engine(await startEngine({ config: clusterConfig(nats.url, 'b', { node_timeout_ms: NODE_TIMEOUT }, { snapshot_every: 100 }) }))
    const wa = await makeWorker(gen, A.workerUrl, { workerName: 'provider-on-a' })
    wa.registerFunction('k::a::echo', async (d) => ({ on: 'a', d }))
    const wb = await makeWorker(gen, B.workerUrl, { workerName: 'caller-on-b' })
    await connected(wa)
    await connected(wb)
    await barrier(wa)
    await waitFunctions(wb, ['k::a::echo'])
    assert.deepEqual(await call(wb, 'k::a::echo', { n: 1 }), { on: 'a', d: { n: 1, _caller_worker_id: wb.workerId } })
    const oldWorkerId = wa.workerId

    // A raw writer on A keeps 16 stream::set in flight; kill A mid-stream.
    const S = uid('kill')
    const child = spawnChild({ mode: 'writer', url: A.workerUrl, stream: S, group: 'g', prefix: 'a', concurrency: 16 })
    await child.waitLine(/^STARTED$/)
    await waitFor(() => child.lines.filter((l) => l.startsWith('ACK ')).length >= 250, 20000, '250 acknowledged writes through A')
    const killedAt = Date.now() // before the kill: waiting for the exit must not eat the margin below
    await A.kill()
    await Promise.race([child.exited, sleep(5000)])
    await child.kill()
    const errs = child.lines.filter((l) => l.startsWith('ERR '))
    assert.deepEqual(errs, [], 'writes failed while A was up')
    const acked = new Map()
    for (const l of child.lines.filter((x) => x.startsWith('ACK '))) {
      const [, item, valueJson] = l.match(/^ACK (\S+) (\{.*?\}) (\{.*\})$/)
      acked.set(item, JSON.parse(valueJson))
    }
    t.diagnostic(`${acked.size} writes acknowledged by A before SIGKILL`)

    // Calls from B to A's worker fail fast with a clear error (NATS has no responder for A).
    const t0 = Date.now()
    const e = await rejection(call(wb, 'k::a::echo', { n: 2 }, 30000), 'k::a::echo with A killed')
    const took = Date.now() - t0
    assert.ok(took < 3000, `the call failed after ${took} ms; it must fail fast (${e.code}: ${e.message})`)
    assert.equal(e.code, 'node_unavailable', `${e.code}: ${e.message}${tail(B)}`)
    assert.ok(e.message.includes('k::a::echo'), `the message should name the function: ${e.message}`)

    // Every write A acknowledged is readable on B, with its value.
    const onB = await call(wb, 'stream::list', { stream_name: S, group_id: 'g' })
    const byItem = new Map(onB.map((v) => [`${v.prefix}-${v.n}`, v]))
    const lost = [...acked.keys()].filter((i) => !byItem.has(i))
    assert.deepEqual(lost, [], `${lost.length} of ${acked.size} writes acknowledged by A are missing on B`)
    for (const [item, v] of acked) assert.deepEqual(byItem.get(item), v, `${item} on B`)

    // Writes through B while A is down.
    const down = Array.from({ length: 20 }, (_, i) => ({ item: `down-${i}`, v: { down: i } }))
    for (const { item, v } of down) {
      assert.deepEqual(await call(wb, 'stream::set', { stream_name: S, group_id: 'g2', item_id: item, data: v }), { old_value: null, new_value: v })
    }

    // After node_timeout, B records node.lost and drops A's functions and workers.
    await waitFunctions(wb, ['k::a::echo'], false, NODE_TIMEOUT + 6000)
    const droppedAfter = Date.now() - killedAt
    t.diagnostic(`A's functions dropped from B ${droppedAfter} ms after SIGKILL`)
    // A's last heartbeat went out at most 1 s before the kill.
    assert.ok(droppedAfter >= NODE_TIMEOUT - 1100, `A's functions dropped after only ${droppedAfter} ms (node_timeout ${NODE_TIMEOUT})`)
    const nf = await rejection(call(wb, 'k::a::echo', {}), 'k::a::echo after node.lost')
    assert.equal(nf.code, 'function_not_found', `${nf.code}: ${nf.message}`)
    const workers = (await call(wb, 'engine::workers::list')).workers
    assert.ok(!workers.some((w) => w.id === oldWorkerId), `A's worker still listed on B: ${JSON.stringify(workers.map((w) => [w.id, w.name]))}`)
    const lostRecs = (await call(wb, 'engine::history::query', { kind: 'node.lost' })).records
    assert.ok(lostRecs.some((r) => r.node === 'a' && r.value?.by === 'b'), `node.lost for a by b in the history: ${JSON.stringify(lostRecs)}`)

    // Restart A with an EMPTY data dir, same node name and ports.
    A = res.engine(await startEngine({ config: cfgA, workerPort: A.workerPort, streamPort: A.streamPort }))
    const opened = A.logs().split('\n').find((l) => l.includes('msg="cluster log opened"'))
    assert.ok(opened, `no "cluster log opened" line${tail(A)}`)
    assert.match(opened, /snapshot_from="object store"/, `the empty node should start from the published snapshot: ${opened}`)
    assert.match(opened, /\bnode=a\b/)
    const ra = await rawWorker(A.workerUrl)
    try {
      for (const { item, v } of down) {
        const r = await ra.call('stream::get', { stream_name: S, group_id: 'g2', item_id: item })
        assert.equal(r.error, undefined, JSON.stringify(r))
        assert.deepEqual(r.result, v, `${item} (written through B while A was down) on the restarted A`)
      }
      const l = await ra.call('stream::list', { stream_name: S, group_id: 'g' })
      assert.equal(l.error, undefined, JSON.stringify(l))
      assert.deepEqual(l.result, onB, 'the restarted A lists what B lists')
    } finally {
      ra.close()
    }

    // The SDK worker reconnects to the restarted A, registers again, and is callable from B.
    await waitFor(() => wa.workerId && wa.workerId !== oldWorkerId, 15000, 'the worker to reconnect to the restarted A')
    await waitFunctions(wb, ['k::a::echo'], true, 10000)
    assert.deepEqual(await call(wb, 'k::a::echo', { n: 3 }), { on: 'a', d: { n: 3, _caller_worker_id: wb.workerId } })

    // B, which declared A lost, is still a live member: it keeps beating, so the restarted A
    // does not declare it lost in turn (that would drop B's workers), and calls from A's side
    // reach B's worker. Checked once a full node_timeout (plus a beat) has passed.
    const wbId = wb.workerId
    wb.registerFunction('k::b::echo', async (d) => ({ on: 'b', d }))
    await barrier(wb)
    await waitFunctions(wa, ['k::b::echo'])
    await sleep(NODE_TIMEOUT + 1500)
    const lostLater = (await call(wa, 'engine::history::query', { kind: 'node.lost' })).records
    assert.deepEqual(lostLater.filter((r) => r.node === 'b'), [],
      `the restarted A declared B lost: B stopped heartbeating after it declared A lost${tail(B)}`)
    assert.equal(wb.workerId, wbId, 'B\'s worker was disconnected (B rejoined the cluster)')
    assert.deepEqual(await call(wa, 'k::b::echo', { n: 4 }), { on: 'b', d: { n: 4, _caller_worker_id: wa.workerId } })

    // Both engines stop promptly on SIGTERM (B appends its own node.lost "stopped" on the way out).
    for (const [name, engine] of [['A', A], ['B', B]]) {
      const t1 = Date.now()
      const r = await engine.stop()
      const stopTook = Date.now() - t1
      assert.deepEqual(r, { code: 0, signal: null }, `${name} exit after SIGTERM${tail(engine)}`)
      assert.ok(stopTook < 5000, `${name} took ${stopTook} ms to stop after SIGTERM${tail(engine)}`)
    }
  })
})

// ------------------------------------------------------------------------------------------------

describe('5. a three-server JetStream cluster (replicas: 3) losing a server', () => {
  const res = resources()
  let cluster, E1, E2

  before(async () => {
    cluster = res.add(await startNatsCluster(3))
  })
  after(() => res.cleanup())

  /** The /jsz detail of the JetStream stream `name` with a leader, as any running server sees it. */
  async function streamDetail(name) {
    for (const s of cluster.servers.filter((x) => x.running)) {
      try {
        const j = await s.monitor('/jsz?accounts=true&streams=true&config=true')
        for (const a of j.account_details ?? []) {
          for (const st of a.stream_detail ?? []) if (st.name === name && st.cluster?.leader) return st
        }
      } catch {}
    }
    return undefined
  }
  const streamLeader = async (name) => (await streamDetail(name))?.cluster.leader

  /** The running server a client named `name` is connected to (from each server's /connz). */
  async function serverOf(name) {
    for (const s of cluster.servers.filter((x) => x.running)) {
      try {
        const c = await s.monitor('/connz?limit=1000')
        if ((c.connections ?? []).some((x) => x.name === name)) return s
      } catch {}
    }
    return undefined
  }

  it('every acknowledged write through either engine is readable on both after a NATS server dies', async (t) => {
    const urls = cluster.urls
    E1 = res.engine(await startEngine({ config: clusterConfig(urls, 'e1', { replicas: 3 }) }))
    E2 = res.engine(await startEngine({ config: clusterConfig(urls, 'e2', { replicas: 3 }) }))
    const w1 = await makeWorker(gen, E1.workerUrl, { workerName: 'writer-e1' })
    const w2 = await makeWorker(gen, E2.workerUrl, { workerName: 'writer-e2' })
    await connected(w1)
    await connected(w2)
    const S = uid('r3')
    const acked = new Map() // item -> value
    let retries = 0

    // A write is retried (same item, same value) until an engine acknowledges it.
    let killed = 'none yet'
    const write = async (w, item, v) => {
      let attempt = 0
      let r
      try {
        r = await waitFor(async () => {
          if (attempt++ > 0) retries++
          return await call(w, 'stream::set', { stream_name: S, group_id: 'g', item_id: item, data: v }, 8000)
        }, 25000, `stream::set ${item} acknowledged`, 200)
      } catch (e) {
        const E = w === w1 ? E1 : E2
        e.message += `\n(NATS server killed: ${killed}; ${attempt} attempts through ${w === w1 ? 'e1' : 'e2'})${tail(E)}`
        throw e
      }
      assert.deepEqual(r.new_value, v)
      acked.set(item, v)
    }
    const writeBatch = (from, to) => Promise.all([
      (async () => { for (let i = from; i < to; i++) await write(w1, `e1-${i}`, { via: 'e1', i }) })(),
      (async () => { for (let i = from; i < to; i++) await write(w2, `e2-${i}`, { via: 'e2', i }) })(),
    ])
    const readableOnBoth = async (what) => {
      for (const [name, w] of [['e1', w1], ['e2', w2]]) {
        const list = await waitFor(async () => {
          const l = await call(w, 'stream::list', { stream_name: S, group_id: 'g' }, 8000)
          return l.length >= acked.size ? l : undefined
        }, 20000, `${acked.size} items listed on ${name} ${what}`, 200)
        const byItem = new Map(list.map((v) => [`${v.via}-${v.i}`, v]))
        const missing = [...acked.keys()].filter((i) => !byItem.has(i))
        assert.deepEqual(missing, [], `acknowledged writes missing on ${name} ${what}`)
        for (const [item, v] of acked) assert.deepEqual(byItem.get(item), v, `${item} on ${name}`)
        assert.equal(list.length, acked.size, `${name} lists only acknowledged items`)
      }
    }

    await writeBatch(0, 20)
    await readableOnBoth('before the kill')
    // The engine that created the stream made it with engine.cluster.replicas.
    const detail = await waitFor(() => streamDetail('iii'), 10000, 'the stream iii in /jsz')
    assert.equal(detail.config?.num_replicas, 3, `stream iii: ${JSON.stringify(detail.config)}`)

    // Kill the server E1 is connected to: E1 must reconnect to another one.
    const leader = await waitFor(() => streamLeader('iii'), 10000, 'the stream leader')
    const victim = await waitFor(() => serverOf('iii engine e1'), 5000, 'the server E1 is connected to')
    killed = `${victim.serverName} (E1's server; the stream leader was ${leader})`
    t.diagnostic(`killing nats-server ${killed}`)
    // Writes in flight while the server dies.
    const during = writeBatch(20, 40)
    await victim.kill()
    await during
    await writeBatch(40, 60)
    t.diagnostic(`${acked.size} writes acknowledged, ${retries} retries during the election`)
    if (victim.serverName === leader) assert.notEqual(await streamLeader('iii'), leader, 'a new stream leader was elected')
    const e1Now = await serverOf('iii engine e1')
    assert.ok(e1Now && e1Now !== victim, 'E1 reconnected to a live server')
    await readableOnBoth('after the kill')
    // A single-item read through each engine too.
    assert.deepEqual(await call(w1, 'stream::get', { stream_name: S, group_id: 'g', item_id: 'e2-59' }), { via: 'e2', i: 59 })
    assert.deepEqual(await call(w2, 'stream::get', { stream_name: S, group_id: 'g', item_id: 'e1-59' }), { via: 'e1', i: 59 })

  })
})

// ------------------------------------------------------------------------------------------------

describe('6. start-up errors', () => {
  const res = resources()
  let dir
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'iii-e2e-cluster-'))
    res.add({ cleanup: () => rmSync(dir, { recursive: true, force: true }) })
  })
  after(() => res.cleanup())

  const runWith = async (natsUrl, name) => {
    const cfg = clusterConfig(natsUrl, 'lonely')({ workerPort: await freePort(), streamPort: await freePort() })
    const file = path.join(dir, `${name}.yaml`)
    writeFileSync(file, toYaml(cfg))
    const t0 = Date.now()
    const r = await runIII(['--config', file, '--data-dir', path.join(dir, name)], { timeoutMs: 20000 })
    return { ...r, took: Date.now() - t0, out: r.stdout + r.stderr }
  }

  it('nats_url pointing to a closed port: exits non-zero at once, naming the URL', async () => {
    const url = 'nats://127.0.0.1:1' // nothing listens there; a "free" port could be taken meanwhile
    const r = await runWith(url, 'closed')
    assert.notEqual(r.code, 0, `exit code ${r.code}:\n${r.out}`)
    assert.equal(r.signal, null)
    assert.ok(r.took < 5000, `took ${r.took} ms to fail`)
    assert.ok(r.out.includes(url), `the message should name ${url}:\n${r.out}`)
    assert.doesNotMatch(r.out, /msg=ready/, 'must not report ready')
  })

  it('a NATS server without JetStream: exits non-zero with a message about JetStream', async () => {
    const plain = res.add(await startNats({ jetstream: false }))
    const r = await runWith(plain.url, 'nojs')
    assert.notEqual(r.code, 0, `exit code ${r.code}:\n${r.out}`)
    assert.equal(r.signal, null)
    assert.ok(r.took < 10000, `took ${r.took} ms to fail`)
    assert.match(r.out, /JetStream/, r.out)
    assert.doesNotMatch(r.out, /msg=ready/, 'must not report ready')
  })
})
