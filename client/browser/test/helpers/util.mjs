// Small helpers shared by the tests.
import { registerWorker } from '../../index.js'

/** Polls `predicate` until it returns a truthy value, or fails after `timeoutMs`. */
export async function waitFor(predicate, { timeoutMs = 5000, intervalMs = 10, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await predicate()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(intervalMs)
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Resolves once the client's state is `connected`. */
export function connected(sdk, timeoutMs = 5000) {
  return waitFor(() => sdk.getConnectionState() === 'connected', { timeoutMs, what: 'connected state' })
}

/** A client with a fast reconnect schedule, tracked for `closeAll()`. */
export function client(url, clients, options = {}) {
  const sdk = registerWorker(url, {
    reconnectionConfig: { initialDelayMs: 100, maxDelayMs: 400 },
    ...options,
  })
  clients.push(sdk)
  return sdk
}

/** Shuts every tracked client down. */
export async function closeAll(clients) {
  await Promise.all(clients.splice(0).map((c) => c.shutdown()))
}

/** Resolves with what `promise` rejects with; fails if it resolves. */
export async function rejection(promise) {
  let value
  try {
    value = await promise
  } catch (err) {
    return err
  }
  throw new Error(`expected a rejection, got ${JSON.stringify(value)}`)
}
