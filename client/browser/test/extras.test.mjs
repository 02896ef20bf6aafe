// The less common parts of the API: trigger-type providers, custom streams, channels, list
// helpers and onFunctionsAvailable.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Engine } from './helpers/engine.mjs'
import { client, closeAll, connected, rejection, sleep, waitFor } from './helpers/util.mjs'

describe('extras', () => {
  let engine
  let a
  let b
  const clients = []

  before(async () => {
    engine = await Engine.start()
    a = client(engine.url, clients)
    b = client(engine.url, clients)
    await connected(a)
    await connected(b)
  })

  after(async () => {
    await closeAll(clients)
    await engine?.close()
  })

  // A round trip on the client's connection: the engine has applied what it sent before.
  async function settle(c) {
    await c.trigger({ function_id: 'stream::list', payload: { stream_name: 'none', group_id: 'none' } })
  }

  test('a trigger type provided by A serves B\'s triggers', async () => {
    const registered = []
    const unregistered = []
    const ticker = a.registerTriggerType(
      { id: 'test::ticker', description: 'fires on demand' },
      {
        registerTrigger: (t) => {
          registered.push(t)
        },
        unregisterTrigger: (t) => {
          unregistered.push(t)
        },
      },
    )
    assert.equal(ticker.id, 'test::ticker')
    assert.throws(() => a.registerTriggerType({ id: 'test::ticker', description: '' }, { registerTrigger() {} }), {
      message: 'trigger type already registered: test::ticker',
    })
    await settle(a)

    const got = []
    b.registerFunction('b::on-tick', (x) => {
      got.push(x)
      return {}
    })
    const t = b.registerTrigger({
      type: 'test::ticker',
      function_id: 'b::on-tick',
      config: { every: 5 },
      metadata: { owner: 'b' },
    })
    await waitFor(() => registered.length === 1, { what: 'registerTrigger at the provider' })
    assert.equal(registered[0].function_id, 'b::on-tick')
    assert.deepEqual(registered[0].config, { every: 5 })
    assert.deepEqual(registered[0].metadata, { owner: 'b' })
    assert.match(registered[0].id, /^[0-9a-f-]{36}$/)

    // The provider fires by calling the bound function.
    assert.deepEqual(await a.trigger({ function_id: registered[0].function_id, payload: { tick: 1 } }), {})
    assert.equal(got.length, 1)
    assert.equal(got[0].tick, 1)

    t.unregister()
    await waitFor(() => unregistered.length === 1, { what: 'unregisterTrigger at the provider' })
    assert.equal(unregistered[0].id, registered[0].id)
    assert.equal(unregistered[0].function_id, 'b::on-tick')
    assert.deepEqual(unregistered[0].config, { every: 5 })

    // TriggerTypeRef helpers.
    const viaRef = ticker.registerFunction('a::via-ref', () => 'ok', { every: 1 })
    await waitFor(() => registered.length === 2, { what: 'registration through TriggerTypeRef' })
    assert.equal(registered[1].function_id, 'a::via-ref')
    viaRef.unregister()
    await waitFor(() => unregistered.length === 2, { what: 'unregistration through TriggerTypeRef' })
    ticker.unregister()
  })

  test('createStream: the engine routes stream::* for that stream to the client', async () => {
    const store = new Map()
    const key = ({ group_id, item_id }) => `${group_id}/${item_id}`
    a.createStream('custom', {
      get: (i) => store.get(key(i)),
      set: (i) => {
        const old = store.get(key(i)) ?? null
        store.set(key(i), i.data)
        return { old_value: old, new_value: i.data }
      },
      delete: (i) => {
        const old = store.get(key(i)) ?? null
        store.delete(key(i))
        return { old_value: old }
      },
      list: (i) => [...store.entries()].filter(([k]) => k.startsWith(`${i.group_id}/`)).map(([, v]) => v),
      listGroups: () => [...new Set([...store.keys()].map((k) => k.split('/')[0]))],
    })
    assert.throws(() => a.createStream('broken', { get() {} }), TypeError)
    await settle(a)

    const p = { stream_name: 'custom', group_id: 'g', item_id: 'k' }
    assert.deepEqual(await b.trigger({ function_id: 'stream::set', payload: { ...p, data: { v: 1 } } }), {
      old_value: null,
      new_value: { v: 1 },
    })
    assert.deepEqual(store.get('g/k'), { v: 1 })
    assert.deepEqual(await b.trigger({ function_id: 'stream::get', payload: p }), { v: 1 })
    assert.deepEqual(await b.trigger({ function_id: 'stream::list', payload: { stream_name: 'custom', group_id: 'g' } }), [
      { v: 1 },
    ])
    assert.deepEqual(await b.trigger({ function_id: 'stream::list_groups', payload: { stream_name: 'custom' } }), ['g'])
    assert.deepEqual(await b.trigger({ function_id: 'stream::delete', payload: p }), { old_value: { v: 1 } })
    assert.equal(await b.trigger({ function_id: 'stream::get', payload: p }), undefined)
  })

  test('createChannel: text and binary from writer to reader', { timeout: 15000 }, async () => {
    const { writer, reader, writerRef, readerRef } = await a.createChannel()
    assert.equal(writerRef.direction, 'write')
    assert.equal(readerRef.direction, 'read')
    assert.equal(writerRef.channel_id, readerRef.channel_id)

    const texts = []
    reader.onMessage((t) => texts.push(t))
    const all = reader.readAll()
    const big = new Uint8Array(150 * 1024).map((_, i) => i % 251)
    writer.sendMessage('hello')
    writer.sendBinary(new Uint8Array([1, 2, 3]))
    writer.sendBinary(big)
    writer.close()
    const bytes = await all
    assert.deepEqual(texts, ['hello'])
    assert.equal(bytes.byteLength, 3 + big.byteLength)
    assert.deepEqual([...bytes.subarray(0, 3)], [1, 2, 3])
    assert.deepEqual(bytes.subarray(3), big)
    assert.throws(() => writer.sendMessage('late'), { message: 'channel writer is closed' })
  })

  test('listTriggers and listTriggerTypes', async () => {
    b.registerFunction('b::listed', () => ({}))
    b.registerTrigger({ type: 'stream', function_id: 'b::listed', config: { stream_name: 'listed' } })
    await settle(b)

    const triggers = await b.listTriggers()
    const mine = triggers.find((t) => t.function_id === 'b::listed')
    assert.ok(mine, `b::listed missing from ${JSON.stringify(triggers)}`)
    assert.equal(mine.trigger_type, 'stream')
    assert.deepEqual(mine.config, { stream_name: 'listed' })

    const types = await b.listTriggerTypes()
    assert.ok(
      types.some((t) => t.id === 'stream'),
      `stream missing from ${JSON.stringify(types)}`,
    )
  })

  test('onFunctionsAvailable reports newly registered functions', { timeout: 20000 }, async () => {
    const seen = []
    const off = b.onFunctionsAvailable((fns) => seen.push(fns.map((f) => f.function_id)))
    await settle(b)
    await sleep(100)
    a.registerFunction('a::announced', () => 1)
    await waitFor(() => seen.some((ids) => ids.includes('a::announced')), {
      timeoutMs: 15000,
      what: 'functions-available callback naming a::announced',
    })
    off()
  })

  test('trigger() validates function_id', async () => {
    assert.equal((await rejection(b.trigger({ payload: {} }))).message, 'function_id is required')
  })
})
