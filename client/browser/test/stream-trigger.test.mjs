// `stream` triggers: the seed's live-update path, against the real engine's stream module.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Engine } from './helpers/engine.mjs'
import { client, closeAll, connected, sleep, waitFor } from './helpers/util.mjs'

describe('stream triggers', () => {
  let engine
  let a // subscriber, like the seed's browser
  let b // writer, like the seed's API worker
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

  // A barrier on A's connection: the engine has applied every frame A sent before it.
  async function settleA() {
    await a.trigger({ function_id: 'stream::list', payload: { stream_name: 'nothing', group_id: 'none' } })
  }

  test('create, update and delete events reach the seed-style subscriber', async () => {
    const events = []
    // Exactly the seed's calls (useTodos).
    const funcRef = a.registerFunction({ id: 'ui::on-todo-change' }, async (input) => {
      events.push(input)
      return {}
    })
    const trigger = a.registerTrigger({
      type: 'stream',
      function_id: funcRef.id,
      config: { stream_name: 'todo', group_id: 'todos' },
    })
    await settleA()

    const todo = { id: 't1', title: 'milk', completed: false }
    const set = await b.trigger({
      function_id: 'stream::set',
      payload: { stream_name: 'todo', group_id: 'todos', item_id: 't1', data: todo },
    })
    assert.deepEqual(set, { old_value: null, new_value: todo })
    await waitFor(() => events.length === 1, { what: 'create event' })
    const created = events[0]
    assert.equal(created.type, 'stream')
    assert.equal(typeof created.timestamp, 'number')
    assert.equal(created.streamName, 'todo')
    assert.equal(created.groupId, 'todos')
    assert.equal(created.id, 't1')
    assert.deepEqual(created.event, { type: 'create', data: todo })

    await b.trigger({
      function_id: 'stream::update',
      payload: {
        stream_name: 'todo',
        group_id: 'todos',
        item_id: 't1',
        ops: [{ type: 'set', path: 'completed', value: true }],
      },
    })
    await waitFor(() => events.length === 2, { what: 'update event' })
    assert.equal(events[1].id, 't1')
    assert.deepEqual(events[1].event, { type: 'update', data: { ...todo, completed: true } })

    await b.trigger({
      function_id: 'stream::set',
      payload: { stream_name: 'todo', group_id: 'todos', item_id: 't1', data: { ...todo, title: 'oat milk' } },
    })
    await waitFor(() => events.length === 3, { what: 'second update event' })
    assert.equal(events[2].event.type, 'update')
    assert.equal(events[2].event.data.title, 'oat milk')

    const del = await b.trigger({
      function_id: 'stream::delete',
      payload: { stream_name: 'todo', group_id: 'todos', item_id: 't1' },
    })
    assert.deepEqual(del, { old_value: { ...todo, title: 'oat milk' } })
    await waitFor(() => events.length === 4, { what: 'delete event' })
    assert.equal(events[3].id, 't1')
    assert.deepEqual(events[3].event, { type: 'delete', data: { ...todo, title: 'oat milk' } })

    // Other groups do not match the trigger's group_id.
    await b.trigger({
      function_id: 'stream::set',
      payload: { stream_name: 'todo', group_id: 'other', item_id: 'x', data: 1 },
    })

    // The seed's cleanup.
    trigger.unregister()
    funcRef.unregister()
    await settleA()
    await sleep(200)
    assert.equal(events.length, 4, `unexpected events: ${JSON.stringify(events.slice(4))}`)
  })

  test('trigger.unregister() stops delivery while other triggers keep firing', async () => {
    const first = []
    const second = []
    a.registerFunction('ui::first', (e) => {
      first.push(e)
      return {}
    })
    a.registerFunction('ui::second', (e) => {
      second.push(e)
      return {}
    })
    const t1 = a.registerTrigger({ type: 'stream', function_id: 'ui::first', config: { stream_name: 'un' } })
    a.registerTrigger({ type: 'stream', function_id: 'ui::second', config: { stream_name: 'un' } })
    await settleA()

    const write = (id) =>
      b.trigger({ function_id: 'stream::set', payload: { stream_name: 'un', group_id: 'g', item_id: id, data: { id } } })
    await write('one')
    await waitFor(() => first.length === 1 && second.length === 1, { what: 'events on both triggers' })

    t1.unregister()
    t1.unregister() // idempotent
    await settleA()
    await write('two')
    await waitFor(() => second.length === 2, { what: 'event on the remaining trigger' })
    await sleep(200)
    assert.equal(first.length, 1, 'the unregistered trigger fired again')
    assert.equal(second[1].id, 'two')
  })

  test('events from stream::send arrive as custom events', async () => {
    const got = []
    a.registerFunction('ui::custom', (e) => {
      got.push(e)
      return {}
    })
    a.registerTrigger({ type: 'stream', function_id: 'ui::custom', config: { stream_name: 'chat', group_id: 'room' } })
    await settleA()
    await b.trigger({
      function_id: 'stream::send',
      payload: { stream_name: 'chat', group_id: 'room', type: 'typing', data: { who: 'bob' } },
    })
    await waitFor(() => got.length === 1, { what: 'custom event' })
    assert.equal(got[0].streamName, 'chat')
    assert.deepEqual(got[0].event, { type: 'event', event: { type: 'typing', data: { who: 'bob' } } })
  })

  test('registerTrigger validates its input', () => {
    assert.throws(() => a.registerTrigger({ function_id: 'x', config: {} }), { message: 'type is required' })
    assert.throws(() => a.registerTrigger({ type: 'stream', config: {} }), { message: 'function_id is required' })
  })
})
