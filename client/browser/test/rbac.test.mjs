// The seed's browser flow on an RBAC listener: an auth function gives every connection its own
// function prefix; two "tabs" run the useTodos logic and see each other's changes.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Engine } from './helpers/engine.mjs'
import { client, closeAll, connected, rejection, sleep, waitFor } from './helpers/util.mjs'

const AUTH = 'todo-project::auth-function'

describe('seed flow on an RBAC listener', () => {
  let engine
  let api
  const clients = []
  const authInputs = []
  let sessions = 0

  before(async () => {
    engine = await Engine.start({
      rbac: { authFunctionId: AUTH, expose: ['match("todos::create")', 'match("todos::list")'] },
    })
    api = client(engine.url, clients)
    api.registerFunction(AUTH, (input) => {
      authInputs.push(input)
      const sessionId = `session-${++sessions}`
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
    api.registerFunction('todos::list', async () => {
      const items = await api.trigger({ function_id: 'stream::list', payload: { stream_name: 'todo', group_id: 'todos' } })
      return { items }
    })
    api.registerFunction('todos::create', async ({ title }) => {
      const id = crypto.randomUUID()
      const todo = { id, title, completed: false }
      await api.trigger({
        function_id: 'stream::set',
        payload: { stream_name: 'todo', group_id: 'todos', item_id: id, data: todo },
      })
      return todo
    })
    await connected(api)
    await api.trigger({ function_id: 'stream::list', payload: { stream_name: 'none', group_id: 'none' } })
  })

  after(async () => {
    await closeAll(clients)
    await engine?.close()
  })

  // The seed's useTodos effect, without React.
  function mountUseTodos(iii) {
    const state = { todos: [], events: [] }
    const listed = iii
      .trigger({ function_id: 'todos::list', payload: {} })
      .then(({ items }) => {
        state.todos = items
      })
    const funcRef = iii.registerFunction({ id: 'ui::on-todo-change' }, async (input) => {
      state.events.push(input)
      const todo = input.event.data
      switch (input.event.type) {
        case 'create':
          state.todos = [...state.todos, todo]
          break
        case 'update':
          state.todos = state.todos.map((t) => (t.id === input.id ? todo : t))
          break
        case 'delete':
          state.todos = state.todos.filter((t) => t.id !== input.id)
          break
      }
      return {}
    })
    const trigger = iii.registerTrigger({
      type: 'stream',
      function_id: funcRef.id,
      config: { stream_name: 'todo', group_id: 'todos' },
    })
    const unmount = () => {
      trigger.unregister()
      funcRef.unregister()
    }
    return { state, funcRef, listed, unmount }
  }

  test('two tabs see each other\'s todos; ids stay unprefixed; unmount stops delivery', async () => {
    const tab1 = client(`${engine.rbacUrl}?token=dev-token`, clients)
    const tab2 = client(engine.rbacUrl, clients)
    const ui1 = mountUseTodos(tab1)
    const ui2 = mountUseTodos(tab2)
    assert.equal(ui1.funcRef.id, 'ui::on-todo-change')
    assert.equal(ui2.funcRef.id, 'ui::on-todo-change')
    await ui1.listed
    await ui2.listed
    assert.deepEqual(ui1.state.todos, [])

    const withToken = authInputs.find((i) => i.query_params?.token)
    assert.ok(withToken, `no auth input carried the token: ${JSON.stringify(authInputs)}`)
    assert.deepEqual(withToken.query_params.token, ['dev-token'])

    const milk = await tab1.trigger({ function_id: 'todos::create', payload: { title: 'milk' } })
    assert.equal(milk.title, 'milk')
    await waitFor(() => ui1.state.todos.length === 1 && ui2.state.todos.length === 1, { what: 'create in both tabs' })
    assert.deepEqual(ui2.state.todos, [milk])
    assert.equal(ui2.state.events[0].event.type, 'create')

    // Only exposed functions are callable from the RBAC port.
    const denied = await rejection(
      tab2.trigger({ function_id: 'stream::set', payload: { stream_name: 'todo', group_id: 'todos', item_id: 'x', data: 1 } }),
    )
    assert.equal(denied.code, 'FORBIDDEN')

    ui1.unmount()
    await tab1.trigger({ function_id: 'todos::list', payload: {} }) // tab1's frames are applied
    await tab2.trigger({ function_id: 'todos::create', payload: { title: 'bread' } })
    await waitFor(() => ui2.state.todos.length === 2, { what: 'second create in tab2' })
    await sleep(200)
    assert.equal(ui1.state.todos.length, 1, 'an unmounted tab still received events')

    // Re-mounting (React StrictMode runs the effect twice) registers the same id again.
    const again = mountUseTodos(tab1)
    await again.listed
    assert.equal(again.state.todos.length, 2)
    await tab2.trigger({ function_id: 'todos::create', payload: { title: 'eggs' } })
    await waitFor(() => again.state.todos.length === 3, { what: 'create after re-mount' })
  })
})
