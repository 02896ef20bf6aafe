// The durable queue module (iii-queue) through iii-sdk@0.22.1 and raw frames: enqueue receipts,
// refusals, retries with growing backoff, the dead-letter queue and its functions, FIFO groups,
// concurrency, jobs waiting for a worker, topics (durable:subscriber + iii::durable::publish),
// a SIGKILL crash test (a job recorded as done is never delivered again; every other
// acknowledged job is), and a job's life in `iii replay`.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import {
  startEngine, makeWorker, connected, barrier, rawWorker, shutdownWorkers, rejection,
  sdkModule, spawnChild, waitFor, sleep, uid, GENERATIONS,
} from './lib/engine.mjs'
import { replayJson, snapshots, toNs } from './lib/history.mjs'

const GEN = GENERATIONS[0] // iii-sdk@0.22.1: TriggerAction.Enqueue
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** An engine config with the queue module; the log lives at <dataDir>/stream_store. */
function queueConfig({ workerPort, streamPort, dataDir }, queues) {
  const store = { store_method: 'file_based', file_path: path.join(dataDir, 'stream_store') }
  return {
    workers: [
      { name: 'iii-worker-manager', config: { port: workerPort } },
      { name: 'iii-stream', config: { port: streamPort, adapter: { name: 'kv', config: store } } },
      { name: 'iii-queue', config: { queue_configs: queues, adapter: { name: 'builtin', config: store } } },
    ],
    engine: { sync: 'always' },
  }
}

const QUEUES = {
  fast: { max_retries: 3, concurrency: 2, backoff_ms: 50, poll_interval_ms: 20 },
  fifo: { type: 'fifo', message_group_field: 'account', max_retries: 3, backoff_ms: 50 },
  one: { max_retries: 1, concurrency: 1, backoff_ms: 20 },
}

/** Every `queue.*` record of the engine's log (read while the engine runs, or after). */
const queueRecords = (dataDir, kind = 'queue.*') => replayJson(['--data-dir', dataDir, '--kind', kind])

/** Calls of one handler, with the payload and a high-resolution time. */
function recorder() {
  const calls = []
  return {
    calls,
    add(data) { calls.push({ data, t: performance.now() }) },
    get n() { return calls.length },
  }
}

let engine
let w // the SDK worker (handlers and calls)
let TriggerAction

before(async () => {
  ;({ TriggerAction } = await sdkModule(GEN))
  engine = await startEngine({ config: (ctx) => queueConfig(ctx, QUEUES) })
  w = await makeWorker(GEN, engine.workerUrl, { workerName: 'queues-e2e' })
  await connected(w)
})

after(async () => {
  await shutdownWorkers()
  await engine?.cleanup()
})

const call = (function_id, payload = {}) => w.trigger({ function_id, payload })
const enqueue = (queue, function_id, payload) => w.trigger({ function_id, payload, action: TriggerAction.Enqueue({ queue }) })
const stats = (topic) => call('engine::queue::topic_stats', { topic })
const dlq = (topic) => call('engine::queue::dlq_messages', { topic })

/** Registers fn on the shared worker and waits until the engine has applied it. */
async function serve(fn, handler) {
  w.registerFunction(fn, handler)
  await barrier(w)
}

describe('iii-queue', () => {
  it('1. enqueue answers a durable receipt; the function gets exactly the payload, once', async () => {
    const fn = `q::ok::${uid()}`
    const got = recorder()
    await serve(fn, async (data) => { got.add(data); return { fine: true } })
    const payload = { n: 1, nested: { list: [1, 'two', null], big: 9007199254740991 }, s: 'é✓' }
    const r = await enqueue('fast', fn, payload)
    assert.deepEqual(Object.keys(r), ['messageReceiptId'], `enqueue result ${JSON.stringify(r)}`)
    assert.match(r.messageReceiptId, UUID)
    // Durable when answered: the record is already in the log.
    const enq = (await queueRecords(engine.dataDir, 'queue.enqueued')).filter((x) => x.job === r.messageReceiptId)
    assert.equal(enq.length, 1, 'queue.enqueued is in the log when the receipt arrives')
    assert.equal(enq[0].queue, 'fast')
    assert.equal(enq[0].function, fn)
    assert.deepEqual(enq[0].value, payload)

    await waitFor(() => got.n >= 1, 5000, 'the delivery')
    await sleep(400)
    assert.equal(got.n, 1, 'a job that succeeds is delivered once')
    assert.deepEqual(got.calls[0].data, payload, 'the handler receives exactly the payload')
    const done = (await queueRecords(engine.dataDir, 'queue.done')).filter((x) => x.job === r.messageReceiptId)
    assert.deepEqual(done.map((x) => [x.queue, x.attempt]), [['fast', 1]])
    assert.deepEqual(await stats('fast'), { depth: 0, consumer_count: 2, dlq_depth: 0, config: null })
  })

  it('1b. raw frames: receipts in send order, a void enqueue is recorded silently, a delivery carries data and metadata only', async () => {
    const fn = `q::raw::${uid()}`
    const worker = await rawWorker(engine.workerUrl)
    const producer = await rawWorker(engine.workerUrl)
    try {
      worker.serve({ [fn]: async () => 'ok' })
      await worker.roundTrip()
      const enq = (id, data, extra = {}) => producer.send({ type: 'invokefunction', function_id: fn, data, action: { type: 'enqueue', queue: 'fast' }, ...(id ? { invocation_id: id } : {}), ...extra })
      const ids = Array.from({ length: 20 }, (_, i) => `raw-enq-${i}-${uid()}`)
      for (let i = 0; i < ids.length; i++) enq(ids[i], { i }, { metadata: { tag: `m${i}` } })
      enq(undefined, { i: 'void' }) // no invocation_id: recorded, no answer
      enq(undefined, { i: 'void-refused' }, { action: { type: 'enqueue', queue: 'nope' } }) // no answer either
      const results = []
      for (let i = 0; i < ids.length; i++) results.push(await producer.next((m) => m.type === 'invocationresult', 5000, `receipt ${i}`))
      assert.deepEqual(results.map((r) => r.invocation_id), ids, 'receipts come in send order')
      for (const r of results) {
        assert.equal(r.function_id, fn)
        assert.equal(r.error, undefined, JSON.stringify(r))
        assert.deepEqual(Object.keys(r.result), ['messageReceiptId'])
        assert.match(r.result.messageReceiptId, UUID)
      }
      await producer.none((m) => m.type === 'invocationresult', 300, 'answer to an enqueue without invocation_id')
      const receipts = results.map((r) => r.result.messageReceiptId)
      await waitFor(() => worker.served.length >= 21, 5000, 'all 21 jobs delivered')
      await sleep(300)
      assert.equal(worker.served.length, 21, 'the refused void enqueue is not delivered')
      const byI = new Map(worker.served.map((m) => [m.data.i, m]))
      assert.ok(byI.has('void'), 'the void enqueue was recorded and delivered')
      for (let i = 0; i < ids.length; i++) {
        const m = byI.get(i)
        assert.ok(m, `job ${i} delivered`)
        assert.deepEqual(m.data, { i })
        assert.deepEqual(m.metadata, { tag: `m${i}` }, 'the enqueue\'s metadata goes with the delivery')
        assert.equal(m.traceparent, undefined)
        assert.equal(typeof m.invocation_id, 'string')
        assert.ok(!ids.includes(m.invocation_id), 'a delivery has a fresh invocation_id')
        assert.equal(m.action, undefined)
      }
      // The log holds the jobs in the order they were sent.
      const recs = (await queueRecords(engine.dataDir, 'queue.enqueued')).filter((x) => x.function === fn)
      assert.deepEqual(recs.map((x) => x.value.i), [...ids.map((_, i) => i), 'void'])
      assert.deepEqual(recs.slice(0, 20).map((x) => x.job), receipts)
      assert.deepEqual(recs[0].meta, { tag: 'm0' })
    } finally {
      worker.close()
      producer.close()
    }
  })

  it('2. refusals: unknown queue, FIFO group field missing or null', async () => {
    const fn = `q::refused::${uid()}`
    const cases = [
      ['nope', { a: 1 }, "Queue 'nope' not found"],
      ['fifo', { x: 1 }, "FIFO queue 'fifo' requires field 'account' in data, but it was not found"],
      ['fifo', { account: null, x: 1 }, "FIFO queue 'fifo': field 'account' must not be null"],
    ]
    for (const [queue, payload, message] of cases) {
      const e = await rejection(enqueue(queue, fn, payload), `enqueue to ${queue} ${JSON.stringify(payload)}`)
      assert.equal(e.code, 'enqueue_error', `${queue} ${JSON.stringify(payload)}: ${e.stack ?? e}`)
      assert.equal(e.message, `enqueue_error: ${message}`)
    }
    const enq = (await queueRecords(engine.dataDir, 'queue.enqueued')).filter((x) => x.function === fn)
    assert.deepEqual(enq, [], 'a refused job is not recorded')
  })

  let flakyFn // shared by 3, 4 and 10
  let flakyJob
  let flakyFail = true
  const flaky = recorder()

  it('3. a failing job is tried max_retries times with growing gaps, then dead-lettered', async () => {
    flakyFn = `q::flaky::${uid()}`
    await serve(flakyFn, async (data) => {
      flaky.add(data)
      if (flakyFail) throw new Error(`boom ${flaky.n}`)
      return null
    })
    const payload = { order: 42 }
    flakyJob = (await enqueue('fast', flakyFn, payload)).messageReceiptId
    await waitFor(() => flaky.n >= 3, 5000, 'three attempts')
    await waitFor(async () => (await stats('fast')).dlq_depth === 1, 5000, 'the job in the DLQ')
    await sleep(400) // 3× the last backoff: no fourth attempt
    assert.equal(flaky.n, 3, 'max_retries 3 means 3 attempts in all')
    for (const c of flaky.calls) assert.deepEqual(c.data, payload)
    const [t1, t2, t3] = flaky.calls.map((c) => c.t)
    const gap1 = t2 - t1
    const gap2 = t3 - t2
    assert.ok(gap1 >= 45, `first retry after the 50 ms backoff, got ${gap1.toFixed(1)} ms`)
    assert.ok(gap2 > gap1, `the backoff grows: gaps ${gap1.toFixed(1)} ms then ${gap2.toFixed(1)} ms`)

    const rows = await dlq('fast')
    assert.equal(rows.length, 1, `dlq_messages ${JSON.stringify(rows)}`)
    const m = rows[0]
    assert.deepEqual(Object.keys(m).sort(), ['error', 'failed_at', 'id', 'payload', 'retries', 'size_bytes'])
    assert.equal(m.id, flakyJob)
    assert.deepEqual(m.payload, payload)
    assert.equal(typeof m.error, 'string')
    assert.ok(m.error.includes('boom 3'), `the DLQ row carries the last error: ${m.error}`)
    assert.equal(m.retries, 3)
    assert.ok(Number.isInteger(m.failed_at) && Math.abs(m.failed_at - Date.now() / 1000) < 60, `failed_at is Unix seconds: ${m.failed_at}`)
    assert.ok(Number.isInteger(m.size_bytes) && m.size_bytes > 0)

    assert.deepEqual(await stats('fast'), { depth: 0, consumer_count: 2, dlq_depth: 1, config: null })
    const topics = await call('engine::queue::dlq_topics')
    assert.deepEqual(topics.find((x) => x.topic === 'fast'), { topic: 'fast', broker_type: 'function_queue', message_count: 1 })
    assert.deepEqual(topics.find((x) => x.topic === 'one'), { topic: 'one', broker_type: 'function_queue', message_count: 0 })
  })

  it('4. iii::queue::redrive puts the DLQ back: delivered again, DLQ empty', async () => {
    assert.ok(flakyJob, 'test 3 ran')
    flakyFail = false
    assert.deepEqual(await call('iii::queue::redrive', { queue: 'fast' }), { queue: 'fast', redriven: 1 })
    await waitFor(() => flaky.n >= 4, 5000, 'the redriven delivery')
    await sleep(300)
    assert.equal(flaky.n, 4, 'one delivery after the redrive (it succeeds)')
    assert.deepEqual(await dlq('fast'), [])
    assert.deepEqual(await stats('fast'), { depth: 0, consumer_count: 2, dlq_depth: 0, config: null })
    assert.deepEqual(await call('iii::queue::redrive', { queue: 'fast' }), { queue: 'fast', redriven: 0 }, 'nothing left to redrive')
  })

  let discarded
  let redriven
  it('4b. redrive_message and discard_message act on one DLQ job; unknown ids give 0', async () => {
    const fn = `q::single::${uid()}`
    const got = recorder()
    let fail = true
    await serve(fn, async (data) => { got.add(data); if (fail) throw new Error('nope'); return null })
    discarded = (await enqueue('one', fn, { k: 'discard-me' })).messageReceiptId
    redriven = (await enqueue('one', fn, { k: 'redrive-me' })).messageReceiptId
    await waitFor(async () => (await stats('one')).dlq_depth === 2, 5000, 'both jobs in the DLQ of one')
    assert.equal(got.n, 2, 'max_retries 1: one attempt each')
    const rows = await dlq('one')
    assert.deepEqual(new Set(rows.map((r) => r.id)), new Set([discarded, redriven]))
    assert.ok(rows.every((r) => r.retries === 1))
    fail = false

    const unknown = '00000000-0000-4000-8000-000000000000'
    assert.deepEqual(await call('iii::queue::redrive_message', { queue: 'one', message_id: unknown }), { queue: 'one', message_id: unknown, redriven: 0 })
    assert.deepEqual(await call('iii::queue::discard_message', { queue: 'one', message_id: unknown }), { queue: 'one', message_id: unknown, redriven: 0 })

    assert.deepEqual(await call('iii::queue::discard_message', { queue: 'one', message_id: discarded }), { queue: 'one', message_id: discarded, redriven: 1 })
    assert.deepEqual((await dlq('one')).map((r) => r.id), [redriven])
    assert.deepEqual(await call('iii::queue::redrive_message', { queue: 'one', message_id: redriven }), { queue: 'one', message_id: redriven, redriven: 1 })
    await waitFor(() => got.n >= 3, 5000, 'the redriven job delivered')
    await sleep(300)
    assert.deepEqual(got.calls.map((c) => c.data.k), ['discard-me', 'redrive-me', 'redrive-me'], 'the discarded job is never delivered again')
    assert.deepEqual(await dlq('one'), [])
    assert.deepEqual(await stats('one'), { depth: 0, consumer_count: 1, dlq_depth: 0, config: null })
    // Already gone: a second discard / redrive of the same ids finds nothing.
    assert.equal((await call('iii::queue::discard_message', { queue: 'one', message_id: discarded })).redriven, 0)
    assert.equal((await call('iii::queue::redrive_message', { queue: 'one', message_id: redriven })).redriven, 0)
  })

  it('5. FIFO: one job at a time per group, in order; a failing job blocks its group, not the others', async () => {
    const fn = `q::fifo::${uid()}`
    const order = [] // handled (or failed, with '!') in arrival order
    const inFlight = { A: 0, B: 0 }
    let maxInFlight = 0
    let a1Tries = 0
    let gateTimedOut = null
    await serve(fn, async ({ account, n }) => {
      inFlight[account]++
      maxInFlight = Math.max(maxInFlight, inFlight[account])
      try {
        await sleep(25)
        if (n === 'a1') {
          a1Tries++
          if (a1Tries === 1) { order.push('a1!'); throw new Error('first try fails') }
          // Second try: hold group A until group B is done (B must not wait for A).
          try {
            await waitFor(() => order.includes('b2'), 5000, 'group B done while a1 is held')
            gateTimedOut = false
          } catch { gateTimedOut = true }
        }
        order.push(n)
        return null
      } finally {
        inFlight[account]--
      }
    })
    for (const n of ['a1', 'a2', 'a3']) await enqueue('fifo', fn, { account: 'A', n })
    for (const n of ['b1', 'b2']) await enqueue('fifo', fn, { account: 'B', n })
    await waitFor(() => order.length >= 6, 10000, `all six handled (so far ${order.join(',')})`)
    await sleep(300)
    assert.equal(gateTimedOut, false, `group B was blocked while a1 of group A was retried: ${order.join(',')}`)
    assert.deepEqual(order.filter((x) => x.startsWith('a')), ['a1!', 'a1', 'a2', 'a3'])
    assert.deepEqual(order.filter((x) => x.startsWith('b')), ['b1', 'b2'])
    assert.ok(order.indexOf('b2') < order.indexOf('a1'), `B finished while A was blocked: ${order.join(',')}`)
    assert.equal(maxInFlight, 1, 'one delivery at a time per group')
    assert.deepEqual(await stats('fifo'), { depth: 0, consumer_count: 10, dlq_depth: 0, config: null })
  })

  it('6. concurrency 2: never more than two deliveries of the queue in flight', async () => {
    const fn = `q::slow::${uid()}`
    let inFlight = 0
    let max = 0
    const done = []
    await serve(fn, async ({ i }) => {
      inFlight++
      max = Math.max(max, inFlight)
      await sleep(120)
      inFlight--
      done.push(i)
      return null
    })
    await Promise.all(Array.from({ length: 8 }, (_, i) => enqueue('fast', fn, { i })))
    await waitFor(() => done.length >= 8, 10000, 'all eight handled')
    await sleep(200)
    assert.equal(done.length, 8)
    assert.deepEqual([...done].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7])
    assert.equal(max, 2, `at most (and, with 8 slow jobs, exactly) 2 in flight; saw ${max}`)
  })

  it('6b. a worker dying mid-delivery costs one attempt; the job is retried on the next worker', async () => {
    const fn = `q::dies::${uid()}`
    const child = spawnChild({ mode: 'hang', gen: GEN.name, url: engine.workerUrl, fn })
    await child.waitLine(/^READY$/)
    const job = (await enqueue('fast', fn, { survive: 1 })).messageReceiptId
    await child.waitLine(/^CALLED$/)
    await child.kill()
    await waitFor(async () => (await queueRecords(engine.dataDir, 'queue.failed')).some((x) => x.job === job), 5000, 'the failed attempt recorded')
    const got = recorder()
    await serve(fn, async (data) => { got.add(data); return null })
    await waitFor(() => got.n >= 1, 5000, 'the retry on the new worker')
    await sleep(300)
    assert.equal(got.n, 1)
    assert.deepEqual(got.calls[0].data, { survive: 1 })
    const life = (await queueRecords(engine.dataDir)).filter((x) => x.job === job)
    assert.deepEqual(life.map((x) => [x.kind, x.attempt]), [['queue.enqueued', undefined], ['queue.failed', 1], ['queue.done', 2]])
    assert.equal(life[1].value.error.code, 'invocation_stopped')
  })

  it('7. a job for a function nobody serves waits without burning attempts, then is delivered', async () => {
    const fn = `q::later::${uid()}`
    const job = (await enqueue('one', fn, { late: true })).messageReceiptId
    await sleep(600) // 'one' has max_retries 1 and backoff 20 ms: any attempt would dead-letter it
    assert.deepEqual(await stats('one'), { depth: 1, consumer_count: 1, dlq_depth: 0, config: null })
    const tried = (await queueRecords(engine.dataDir)).filter((x) => x.job === job && x.kind !== 'queue.enqueued')
    assert.deepEqual(tried, [], 'no attempt recorded while nobody serves the function')
    const got = recorder()
    const other = await makeWorker(GEN, engine.workerUrl, { workerName: 'queues-late' })
    other.registerFunction(fn, async (data) => { got.add(data); return null })
    await connected(other)
    await waitFor(() => got.n >= 1, 5000, 'delivery once a worker serves the function')
    await sleep(300)
    assert.equal(got.n, 1)
    assert.deepEqual(got.calls[0].data, { late: true })
    await waitFor(async () => (await stats('one')).depth === 0, 3000, 'one empty')
    const life = (await queueRecords(engine.dataDir)).filter((x) => x.job === job).map((x) => [x.kind, x.attempt])
    assert.deepEqual(life, [['queue.enqueued', undefined], ['queue.done', 1]])
  })

  it('8. topics: durable:subscriber + iii::durable::publish deliver to every subscriber once', async () => {
    const got1 = recorder()
    const got2 = recorder()
    const f1 = `q::sub1::${uid()}`
    const f2 = `q::sub2::${uid()}`
    w.registerFunction(f1, async (data) => { got1.add(data); return null })
    w.registerFunction(f2, async (data) => { got2.add(data); return null })
    w.registerTrigger({ type: 'durable:subscriber', function_id: f1, config: { topic: 'orders' } })
    w.registerTrigger({ type: 'durable:subscriber', function_id: f2, config: { topic: 'orders' } })
    await barrier(w)
    const data = { id: 7, items: ['a', 'b'] }
    const r = await call('iii::durable::publish', { topic: 'orders', data })
    assert.ok(r === null || r === undefined, `publish resolves with nothing, got ${JSON.stringify(r)}`)
    await waitFor(() => got1.n >= 1 && got2.n >= 1, 5000, 'both subscribers')
    await sleep(300)
    assert.equal(got1.n, 1)
    assert.equal(got2.n, 1)
    assert.deepEqual(got1.calls[0].data, data)
    assert.deepEqual(got2.calls[0].data, data)

    const topics = await call('engine::queue::list_topics')
    assert.deepEqual(topics.find((x) => x.name === 'orders'), { name: 'orders', broker_type: 'builtin', subscriber_count: 2 })
    for (const q of ['default', 'fast', 'fifo', 'one']) {
      const row = topics.find((x) => x.name === q)
      assert.ok(row, `list_topics names the queue ${q}: ${JSON.stringify(topics)}`)
      assert.equal(row.broker_type, 'builtin')
    }
    assert.deepEqual(await stats('orders'), { depth: 0, consumer_count: 2, dlq_depth: 0, config: null })
    // Nobody subscribes: the publish still resolves (the message is dropped).
    const none = await call('iii::durable::publish', { topic: `nobody-${uid()}`, data: { x: 1 } })
    assert.ok(none === null || none === undefined)
  })

  it('8b. a failing subscriber: queue_config maxRetries 1 means 2 attempts, then the topic\'s DLQ; redrive by topic', async () => {
    const topic = 'payments'
    const fn = `q::pay::${uid()}`
    const got = recorder()
    let fail = true
    w.registerFunction(fn, async (data) => { got.add(data); if (fail) throw new Error('card declined'); return null })
    w.registerTrigger({ type: 'durable:subscriber', function_id: fn, config: { topic, queue_config: { maxRetries: 1, backoffDelayMs: 20 } } })
    await barrier(w)
    await call('iii::durable::publish', { topic, data: { amount: 5 } })
    await waitFor(async () => (await stats(topic)).dlq_depth === 1, 5000, `the ${topic} DLQ`)
    await sleep(300)
    assert.equal(got.n, 2, 'maxRetries 1: the first attempt and one retry')
    assert.deepEqual(await stats(topic), { depth: 0, consumer_count: 1, dlq_depth: 1, config: null })
    const rows = await dlq(topic)
    assert.equal(rows.length, 1)
    assert.deepEqual(rows[0].payload, { amount: 5 })
    assert.equal(rows[0].retries, 2)
    assert.ok(rows[0].error.includes('card declined'), rows[0].error)
    const dlqTopics = await call('engine::queue::dlq_topics')
    assert.deepEqual(dlqTopics.find((x) => x.topic === topic), { topic, broker_type: 'builtin', message_count: 1 })
    fail = false
    assert.deepEqual(await call('iii::queue::redrive', { queue: topic }), { queue: topic, redriven: 1 })
    await waitFor(() => got.n >= 3, 5000, 'the redriven delivery')
    await sleep(200)
    assert.equal(got.n, 3)
    assert.deepEqual(await stats(topic), { depth: 0, consumer_count: 1, dlq_depth: 0, config: null })
  })

  // docs/wire-protocol.md#topics documents this as a limitation ("a topic whose name contains
  // `::` is never delivered"): publish accepts and records the message, which then waits forever.
  it('8c. a topic whose name contains "::" is delivered like any other', async () => {
    const topic = 'shop::orders'
    const fn = `q::shop::${uid()}`
    const got = recorder()
    w.registerFunction(fn, async (data) => { got.add(data); return null })
    w.registerTrigger({ type: 'durable:subscriber', function_id: fn, config: { topic } })
    await barrier(w)
    const r = await call('iii::durable::publish', { topic, data: { sku: 'x1' } })
    assert.ok(r === null || r === undefined)
    try {
      await waitFor(() => got.n >= 1, 3000, `delivery of the message published to ${topic}`)
    } catch (e) {
      const s = await stats(topic)
      const d = await call('engine::queue::dlq_topics')
      throw new Error(`${e.message}; topic_stats ${JSON.stringify(s)}; dlq_topics ${JSON.stringify(d)}`)
    }
    assert.deepEqual(got.calls[0].data, { sku: 'x1' })
    await waitFor(async () => (await stats(topic)).depth === 0, 3000, `${topic} drained`)
    const d = await call('engine::queue::dlq_topics')
    assert.ok(!d.some((x) => x.topic === 'shop'), `dlq_topics names a topic "shop" that does not exist: ${JSON.stringify(d)}`)
  })

  it('10. iii replay shows a job\'s life in order: enqueued, failed 1, failed 2, dead 3, redriven, done', async () => {
    assert.ok(flakyJob, 'test 3 ran')
    const all = await queueRecords(engine.dataDir)
    const rows = all.filter((x) => x.job === flakyJob)
    assert.deepEqual(rows.map((x) => [x.kind, x.attempt]), [
      ['queue.enqueued', undefined], ['queue.failed', 1], ['queue.failed', 2], ['queue.dead', 3],
      ['queue.redriven', undefined], ['queue.done', 1],
    ], JSON.stringify(rows, null, 1))
    for (const x of rows) {
      assert.equal(x.queue, 'fast')
      assert.match(x.id, /^[0-9A-HJKMNP-TV-Z]{26}$/)
      assert.ok(!Number.isNaN(Date.parse(x.time)))
    }
    assert.ok(rows.every((x, i) => i === 0 || x.index > rows[i - 1].index))
    const [enq, f1, f2, dead] = rows
    assert.deepEqual(Object.keys(enq).sort(), ['function', 'id', 'index', 'job', 'kind', 'queue', 'time', 'value'])
    assert.equal(enq.function, flakyFn)
    assert.deepEqual(enq.value, { order: 42 })
    for (const [f, n] of [[f1, 1], [f2, 2]]) {
      assert.equal(f.value.error.code, 'invocation_failed')
      assert.ok(f.value.error.message.includes(`boom ${n}`), JSON.stringify(f.value))
      // retry_at (Unix ns) is the record time plus the attempt's backoff: 50 ms, then 100 ms.
      // (The record time is taken when the record is sequenced, just after retry_at is computed.)
      const delayMs = (f.value.retry_at - Number(toNs(f.time))) / 1e6
      const want = 50 * 2 ** (n - 1)
      assert.ok(delayMs > want - 25 && delayMs <= want + 0.01, `attempt ${n}: retry_at − time = ${delayMs} ms, want ≈ ${want}`)
    }
    assert.ok(dead.value.error.message.includes('boom 3'))
    assert.equal(dead.value.retry_at, undefined)
    // The discarded and the redriven single jobs of 4b.
    const life = (job) => all.filter((x) => x.job === job).map((x) => [x.kind, x.attempt])
    assert.deepEqual(life(discarded), [['queue.enqueued', undefined], ['queue.dead', 1], ['queue.discarded', undefined]])
    assert.deepEqual(life(redriven), [['queue.enqueued', undefined], ['queue.dead', 1], ['queue.redriven', undefined], ['queue.done', 1]])
  })
})

describe('iii-queue crash', () => {
  it('9. SIGKILL while jobs run: every acknowledged job is handled; none done before the kill is redelivered', async (t) => {
    const crash = await startEngine({
      config: (ctx) => {
        const c = queueConfig(ctx, { crash: { max_retries: 3, concurrency: 4, backoff_ms: 50, poll_interval_ms: 20 } })
        c.engine.snapshot_every = 100 // the restart restores the jobs from a snapshot plus the log's tail
        return c
      },
    })
    try {
      const N = 200
      const fn = `q::crash::${uid()}`
      // A call belongs to the engine whose connection delivered it: the SDK's socket at call time
      // (a frame of the killed engine may still be read after its process has exited).
      let oldSocket
      const handled = { before: new Map(), after: new Map() } // job key -> calls
      const cw = await makeWorker(GEN, crash.workerUrl, { workerName: 'queues-crash' })
      cw.registerFunction(fn, async ({ key }) => {
        const m = !oldSocket || cw.ws === oldSocket ? handled.before : handled.after
        m.set(key, (m.get(key) ?? 0) + 1)
        await sleep(15)
        return null
      })
      await connected(cw)
      await barrier(cw)
      oldSocket = cw.ws
      assert.ok(oldSocket, 'the SDK worker keeps its socket in .ws')

      const receipts = new Map() // job id -> key
      await Promise.all(Array.from({ length: N }, async (_, i) => {
        const key = `k${i}`
        const r = await cw.trigger({ function_id: fn, payload: { key }, action: TriggerAction.Enqueue({ queue: 'crash' }) })
        receipts.set(r.messageReceiptId, key)
      }))
      assert.equal(receipts.size, N, 'every enqueue acknowledged with a distinct receipt')
      const logDir = path.join(crash.dataDir, 'stream_store')
      await waitFor(() => handled.before.size >= 60 && snapshots(logDir).length > 0, 15000, '60 jobs handled and a snapshot written')
      await crash.kill()
      const handledBefore = handled.before.size
      assert.ok(handledBefore < N, `the kill came too late: all ${N} jobs were handled`)

      // While the engine is down: the jobs the log records as done.
      const doneRecs = await queueRecords(crash.dataDir, 'queue.done')
      const doneBefore = new Set(doneRecs.map((x) => x.job))
      assert.equal(doneBefore.size, doneRecs.length, 'one queue.done per job')
      for (const job of doneBefore) {
        assert.ok(receipts.has(job), `queue.done for an unknown job ${job}`)
        assert.ok(handled.before.has(receipts.get(job)), `job ${job} is done but was never handled`)
      }
      const inFlight = [...handled.before.keys()].filter((k) => ![...doneBefore].some((j) => receipts.get(j) === k))
      t.diagnostic(`${handledBefore} jobs handled before SIGKILL, ${doneBefore.size} recorded done, ${inFlight.length} handled but not recorded done; snapshots at ${snapshots(logDir).map((x) => x.index).join(', ')}`)

      await crash.restart()
      await waitFor(() => cw.ws && cw.ws !== oldSocket && cw.ws.readyState === 1, 10000, 'the SDK worker reconnected')
      const raw = await rawWorker(crash.workerUrl)
      try {
        await waitFor(async () => {
          const r = await raw.call('engine::queue::topic_stats', { topic: 'crash' })
          return r.result?.depth === 0
        }, 20000, 'the crash queue drained after the restart', 100)
        await sleep(300)
        const s = (await raw.call('engine::queue::topic_stats', { topic: 'crash' })).result
        assert.deepEqual(s, { depth: 0, consumer_count: 4, dlq_depth: 0, config: null })
      } finally {
        raw.close()
      }

      const keyOfDone = new Set([...doneBefore].map((j) => receipts.get(j)))
      const redelivered = [...keyOfDone].filter((k) => handled.after.has(k))
      assert.deepEqual(redelivered, [], 'jobs recorded done before the kill are not delivered again')
      for (const [job, key] of receipts) {
        if (keyOfDone.has(key)) continue
        assert.equal(handled.after.get(key), 1, `job ${job} (${key}) was not done before the kill: handled once after the restart`)
      }
      const handledAll = new Set([...handled.before.keys(), ...handled.after.keys()])
      assert.equal(handledAll.size, N, 'every acknowledged job handled at least once')
      for (const n of handled.before.values()) assert.equal(n, 1)

      // The log: every job done exactly once in all.
      const allDone = await queueRecords(crash.dataDir, 'queue.done')
      const count = new Map()
      for (const x of allDone) count.set(x.job, (count.get(x.job) ?? 0) + 1)
      assert.equal(count.size, N)
      assert.ok([...count.values()].every((n) => n === 1), 'one queue.done per job')
      const failed = await queueRecords(crash.dataDir, 'queue.failed,queue.dead')
      assert.deepEqual(failed, [], 'no attempt failed')
    } finally {
      await shutdownWorkers()
      await crash.cleanup()
    }
  })
})
