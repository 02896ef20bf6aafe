// Helpers for the RBAC end-to-end tests (rbac-*.test.mjs): an engine with one trusted listener and
// named RBAC listeners, an auth function whose answer is picked per connection, and raw-socket
// shortcuts for sessions that must be accepted or refused.
import path from 'node:path'
import { startEngine, freePort, rawClient, sleep } from './engine.mjs'

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * Start bin/iii with the trusted listener on engine.workerPort plus one listener per entry of
 * `listeners` ({name: {rbac, middleware_function_id?, ...}}, in order), the stream module and,
 * with opts.state, the state module. opts.storeMethod picks the stream store (file_based keeps the
 * log on disk, which engine::history::query needs). Returns {engine, ports, urls}.
 */
export async function startRbacEngine(listeners, opts = {}) {
  const ports = {}
  for (const name of Object.keys(listeners)) ports[name] = await freePort()
  const engine = await startEngine({
    config: (ctx) => {
      const streamAdapter = opts.storeMethod === 'file_based'
        ? { store_method: 'file_based', file_path: path.join(ctx.dataDir, 'stream_store') }
        : { store_method: 'in_memory' }
      return {
        workers: [
          { name: 'iii-worker-manager', config: { port: ctx.workerPort } },
          ...Object.entries(listeners).map(([name, l]) => ({ name: 'iii-worker-manager', config: { port: ports[name], ...l } })),
          { name: 'iii-stream', config: { port: ctx.streamPort, adapter: { name: 'kv', config: streamAdapter } } },
          ...(opts.state ? [{ name: 'iii-state', config: { adapter: { name: 'kv', config: { store_method: 'in_memory' } } } }] : []),
        ],
        engine: { sync: 'never', ...opts.engine },
      }
    },
  })
  const urls = Object.fromEntries(Object.entries(ports).map(([n, p]) => [n, `ws://127.0.0.1:${p}`]))
  return { engine, ports, urls }
}

/**
 * An auth function handler whose answer is chosen by the connection's `as` query parameter
 * (`profiles[name]`: an AuthResult value, or a function of the AuthInput that returns or throws).
 * Every AuthInput is pushed to `calls`.
 */
export function authByProfile(profiles, calls) {
  return async (input) => {
    calls.push(input)
    const name = input?.query_params?.as?.[0] ?? 'default'
    if (!(name in profiles)) throw new Error(`e2e: no auth profile '${name}'`)
    const p = profiles[name]
    return typeof p === 'function' ? p(input) : p
  }
}

/** A promise plus the function that resolves it: holds an auth function until a test says so. */
export function latch() {
  let open
  const wait = new Promise((r) => { open = r })
  return { wait, open: () => open() }
}

/** Raw connection to an RBAC listener whose session was accepted (workerregistered received). */
export async function rbacClient(url, opts) {
  const c = await rawClient(url, opts)
  await c.registered(5000)
  return c
}

/**
 * Raw connection whose auth is expected to fail. Waits (at most timeoutMs) for the engine to close
 * it and returns {client, closeInfo, msgs}: closeInfo is undefined if it never closed, msgs are
 * the parsed frames received.
 */
export async function refusedClient(url, { timeoutMs = 5000, onOpen, ...opts } = {}) {
  const client = await rawClient(url, opts)
  if (onOpen) onOpen(client)
  const closeInfo = await Promise.race([client.closed, sleep(timeoutMs).then(() => undefined)])
  return { client, closeInfo, msgs: client.frames.map((f) => f.msg ?? f.raw) }
}

/** The `engine::functions::list` rows as seen by `client` (throws on an error answer). */
export async function functionRows(client, data = {}) {
  const r = await client.call('engine::functions::list', data)
  if (r.error) throw new Error(`engine::functions::list failed: ${JSON.stringify(r.error)}`)
  return r.result.functions
}

/** The ids of `engine::functions::list` as seen by `client`. */
export async function functionIds(client, data = {}) {
  return (await functionRows(client, data)).map((f) => f.function_id)
}

/** The `engine::registered-triggers::list` rows as seen by a trusted `client`. */
export async function triggerRows(client, data = {}) {
  const r = await client.call('engine::registered-triggers::list', data)
  if (r.error) throw new Error(`engine::registered-triggers::list failed: ${JSON.stringify(r.error)}`)
  return r.result.registered_triggers
}

/** The ids of `engine::triggers::list` (trigger types) as seen by a trusted `client`. */
export async function triggerTypeIds(client) {
  const r = await client.call('engine::triggers::list', { include_internal: true })
  if (r.error) throw new Error(`engine::triggers::list failed: ${JSON.stringify(r.error)}`)
  return r.result.triggers.map((t) => t.id)
}

/** The `invocationresult` an RBAC denial must produce (docs/wire-protocol.md#invocation-gating). */
export function forbiddenResult(invocationId, functionId, hint = 'add to rbac.expose_functions') {
  return {
    type: 'invocationresult',
    invocation_id: invocationId,
    function_id: functionId,
    error: { code: 'FORBIDDEN', message: `function '${functionId}' not allowed (${hint})` },
  }
}
