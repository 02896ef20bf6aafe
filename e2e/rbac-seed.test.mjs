// The todo seed's flow on its RBAC port (docs/wire-protocol.md#rbac and #stream-triggers): the
// seed's config text (modules:/class: style, docs/config.md#two-styles), a 0.11.6 API worker with
// the seed's auth function and todos::* on the trusted port, browsers on the RBAC port (raw
// frames, our iii-browser-sdk, and iii-sdk@0.22.1 as another tab).
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import WebSocket from 'ws'
import {
  startEngine, freePort, rawClient, rawWorker, makeWorker, connected, barrier, shutdownWorkers, GENERATIONS,
  rejection, waitFor, sleep, uid, REPO_DIR,
} from './lib/engine.mjs'
import { functionIds, triggerRows, forbiddenResult, UUID } from './lib/rbac.mjs'

let engine, rbacUrl, api
let early // outcome of a browser that connected before the API worker was up
const sessions = [] // {input, sessionId} per auth call

/** The seed's iii-config.yaml with the ports of this run (and a temp data dir). */
const seedConfig = ({ workerPort, streamPort, dataDir }, rbacPort) => `
modules:
  - class: modules::worker::WorkerModule
    config:
      port: ${workerPort}

  - class: modules::worker::WorkerModule
    config:
      host: 0.0.0.0
      port: ${rbacPort}
      rbac:
        auth_function_id: todo-project::auth-function
        expose_functions:
          - match("todos::create")
          - match("todos::list")
          - match("todos::get")
          - match("todos::delete")
          - match("todos::toggle")

  - class: modules::stream::StreamModule
    config:
      port: ${streamPort}
      host: 0.0.0.0
      adapter:
        class: modules::stream::adapters::KvStore
        config:
          store_method: file_based
          file_path: ${JSON.stringify(path.join(dataDir, 'stream_store'))}

engine:
  sync: never
`

/** The seed's API worker (src/iii.ts, src/lib/rbac.ts, src/routes/*) on iii-sdk@0.11.6. */
async function startApiWorker(url) {
  const iii = await makeWorker(GENERATIONS[1], url, { workerName: 'api-worker' })
  const fn = (id, handler, options) => iii.registerFunction(id, handler, options)
  fn('todo-project::auth-function', async (input) => {
    const sessionId = crypto.randomUUID()
    sessions.push({ input, sessionId })
    return {
      allowed_functions: [],
      forbidden_functions: [],
      allow_trigger_type_registration: false,
      allow_function_registration: true,
      allowed_trigger_types: ['stream'],
      context: { session_id: sessionId },
      function_registration_prefix: sessionId,
    }
  })
  const mutateArgs = (args) => ({ ...args, stream_name: 'todo' })
  const todosStream = {
    get: (args) => iii.trigger({ function_id: 'stream::get', payload: mutateArgs(args) }),
    set: (args) => iii.trigger({ function_id: 'stream::set', payload: mutateArgs(args) }),
    list: (args) => iii.trigger({ function_id: 'stream::list', payload: mutateArgs(args) }),
    update: (args) => iii.trigger({ function_id: 'stream::update', payload: mutateArgs(args) }),
    delete: (args) => iii.trigger({ function_id: 'stream::delete', payload: mutateArgs(args) }),
  }
  fn('todos::create', async (req) => {
    const id = crypto.randomUUID()
    const result = await todosStream.set({ group_id: 'todos', item_id: id, data: { id, title: req.title, completed: false } })
    return result.new_value
  }, { description: 'Create a new todo' })
  fn('todos::list', async () => ({ items: await todosStream.list({ group_id: 'todos' }) }), { description: 'List todos' })
  fn('todos::get', async (req) => todosStream.get({ group_id: 'todos', item_id: req.id }), { description: 'Get a todo' })
  fn('todos::toggle', async (req) => {
    const todo = await todosStream.get({ group_id: 'todos', item_id: req.id })
    if (!todo) throw new Error(`todo ${req.id} not found`)
    const r = await todosStream.update({ group_id: 'todos', item_id: req.id, ops: [{ type: 'set', path: 'completed', value: !todo.completed }] })
    return r.new_value
  }, { description: 'Toggle a todo' })
  fn('todos::delete', async (req) => {
    const r = await todosStream.delete({ group_id: 'todos', item_id: req.id })
    return { deleted: r.old_value !== null }
  }, { description: 'Delete a todo' })
  await connected(iii)
  await barrier(iii)
  return iii
}

before(async () => {
  const rbacPort = await freePort()
  engine = await startEngine({ config: (ctx) => seedConfig(ctx, rbacPort) })
  rbacUrl = `ws://127.0.0.1:${rbacPort}`
  // A browser faster than the API worker: AUTH_ERROR, then close (the SDKs just retry).
  const c = await rawClient(rbacUrl)
  early = { closeInfo: await Promise.race([c.closed, sleep(5000).then(() => undefined)]), msgs: c.frames.map((f) => f.msg ?? f.raw) }
  api = await startApiWorker(engine.workerUrl)
})
after(async () => {
  await shutdownWorkers()
  await engine?.cleanup()
})

const changeOf = (m) => m.type === 'invokefunction' && m.function_id === 'ui::on-todo-change'

describe('7. the seed on its RBAC port', () => {
  it('a browser that connects before the API worker registered the auth function gets AUTH_ERROR and a close', () => {
    assert.ok(early.closeInfo, `not closed; frames: ${JSON.stringify(early.msgs)}`)
    assert.equal(early.closeInfo.code, 1005)
    assert.deepEqual(early.msgs, [{ type: 'error', error: { code: 'AUTH_ERROR', message: 'Function todo-project::auth-function not found' } }])
  })

  it('raw browser: list, register ui::on-todo-change + stream trigger, create/toggle/delete and their events', async () => {
    const tag = uid('tab')
    const B = await rawClient(`${rbacUrl}/?tab=${tag}`, { headers: { Origin: 'http://localhost:5173' } })
    // What the browser SDK sends on open, without waiting for workerregistered.
    B.send({ type: 'registerfunction', id: 'ui::on-todo-change' })
    B.send({ type: 'registertrigger', id: `trg-${tag}`, trigger_type: 'stream', function_id: 'ui::on-todo-change', config: { stream_name: 'todo', group_id: 'todos' } })
    const list = await B.call('todos::list', {})
    await B.registered()
    assert.equal(list.error, undefined, JSON.stringify(list))
    assert.ok(Array.isArray(list.result.items), JSON.stringify(list.result))

    const s = sessions.find((x) => x.input.query_params.tab?.[0] === tag)
    assert.ok(s, 'the seed auth function was not called for the browser')
    assert.equal(s.input.ip_address, '127.0.0.1')
    assert.equal(s.input.headers.origin, 'http://localhost:5173')
    assert.match(s.sessionId, UUID)

    const t = await rawWorker(engine.workerUrl)
    const fid = `${s.sessionId}::ui::on-todo-change`
    assert.ok((await functionIds(t)).includes(fid), `${fid} not registered`)
    assert.equal((await triggerRows(t)).find((r) => r.id === `trg-${tag}`)?.function_id, fid)

    const answer = (m) => B.send({ type: 'invocationresult', invocation_id: m.invocation_id, function_id: m.function_id, result: {} })
    const created = await B.call('todos::create', { title: 'buy milk' })
    assert.equal(created.error, undefined, JSON.stringify(created))
    const todo = created.result
    assert.deepEqual(todo, { id: todo.id, title: 'buy milk', completed: false })
    assert.match(todo.id, UUID)
    const ev1 = await B.next(changeOf, 5000, 'create event')
    answer(ev1)
    assert.deepEqual(Object.keys(ev1).sort(), ['data', 'function_id', 'invocation_id', 'traceparent', 'type'])
    // The firing's mark (loop protection): a W3C traceparent minted by the engine.
    assert.match(ev1.traceparent, /^00-69696901[0-9a-f]{24}-[0-9a-f]{16}-01$/)
    assert.equal(typeof ev1.data.timestamp, 'number')
    assert.deepEqual({ ...ev1.data, timestamp: 0 }, { type: 'stream', timestamp: 0, streamName: 'todo', groupId: 'todos', id: todo.id, event: { type: 'create', data: todo } })

    const got = await B.call('todos::get', { id: todo.id })
    assert.deepEqual(got.result, todo)

    const toggled = await B.call('todos::toggle', { id: todo.id })
    assert.deepEqual(toggled.result, { ...todo, completed: true })
    const ev2 = await B.next(changeOf, 5000, 'update event')
    answer(ev2)
    assert.equal(ev2.data.id, todo.id)
    assert.deepEqual(ev2.data.event, { type: 'update', data: { ...todo, completed: true } })

    const del = await B.call('todos::delete', { id: todo.id })
    assert.deepEqual(del.result, { deleted: true })
    const ev3 = await B.next(changeOf, 5000, 'delete event')
    answer(ev3)
    assert.equal(ev3.data.id, todo.id)
    assert.equal(ev3.data.event.type, 'delete')
    assert.deepEqual(ev3.data.event.data, { ...todo, completed: true })
    await B.none(changeOf, 300, 'a duplicate change event')

    // Only the five todos::* are callable from the browser.
    for (const id of ['stream::set', 'todo-project::auth-function', 'engine::functions::list']) {
      assert.deepEqual(await B.call(id, {}, { invocation_id: `x-${id}` }), forbiddenResult(`x-${id}`, id))
    }
    // The browser may not register trigger types (seed: allow_trigger_type_registration false).
    B.send({ type: 'registertriggertype', id: `tt-${tag}`, description: 'no' })
    const err = await B.next((m) => m.type === 'error', 3000, 'FORBIDDEN for registertriggertype')
    assert.equal(err.error.code, 'FORBIDDEN')

    // Tab closes: its prefixed function and trigger go away.
    B.close()
    await waitFor(async () => !(await functionIds(t)).includes(fid) && !(await triggerRows(t)).some((r) => r.id === `trg-${tag}`),
      3000, 'cleanup of the closed tab')
    t.close()
  })

  it('the seed\'s browser code on our iii-browser-sdk, with an iii-sdk@0.22.1 tab adding todos', async () => {
    if (typeof globalThis.WebSocket !== 'function') globalThis.WebSocket = WebSocket
    const { registerWorker } = await import(path.join(REPO_DIR, 'client', 'browser', 'index.js'))
    const iii = registerWorker(rbacUrl)
    try {
      const events = []
      const { items } = await iii.trigger({ function_id: 'todos::list', payload: {} })
      assert.ok(Array.isArray(items))
      const funcRef = iii.registerFunction({ id: 'ui::on-todo-change' }, async (input) => { events.push(input); return {} })
      iii.registerTrigger({ type: 'stream', function_id: funcRef.id, config: { stream_name: 'todo', group_id: 'todos' } })
      // The other tab: a 0.22.1 Node client on the same RBAC port.
      const tab = await makeWorker(GENERATIONS[0], rbacUrl)
      await connected(tab)
      await waitFor(async () => {
        const t = await rawWorker(engine.workerUrl)
        try {
          return (await triggerRows(t)).filter((r) => r.function_id.endsWith('::ui::on-todo-change')).length >= 1
        } finally { t.close() }
      }, 5000, 'the browser trigger to be registered')
      const todo = await tab.trigger({ function_id: 'todos::create', payload: { title: 'from the other tab' } })
      assert.deepEqual(todo, { id: todo.id, title: 'from the other tab', completed: false })
      await waitFor(() => events.length >= 1, 5000, 'the change event at the browser')
      await sleep(200)
      assert.equal(events.length, 1)
      assert.equal(events[0].id, todo.id)
      assert.deepEqual(events[0].event, { type: 'create', data: todo })
      const e = await rejection(tab.trigger({ function_id: 'stream::list', payload: { stream_name: 'todo', group_id: 'todos' } }))
      assert.equal(e.code, 'FORBIDDEN')
      await tab.shutdown()
    } finally {
      await iii.shutdown()
    }
  })
})
