// iii-browser-sdk: a browser worker for the iii engine.
//
// One WebSocket to a worker listener carries everything: calls to remote functions, the
// browser's own functions and triggers, and the change events they receive. The protocol is
// described in docs/wire-protocol.md; the API this module implements is listed in
// client/browser/README.md#api. No dependencies, no build step: this file runs as-is in browsers
// and in Node >= 20 with a global WebSocket.

const DEFAULT_INVOCATION_TIMEOUT_MS = 30000

const DEFAULT_RECONNECTION = Object.freeze({
  initialDelayMs: 1000,
  maxDelayMs: 30000,
  backoffMultiplier: 2,
  jitterFactor: 0.3,
  maxRetries: -1,
})

// Channel writers split binary payloads into frames of this size.
const CHANNEL_FRAME_BYTES = 64 * 1024

const SHUTDOWN_MESSAGE = 'iii is shutting down'

// How long shutdown() waits for the engine to answer the close.
const SHUTDOWN_CLOSE_WAIT_MS = 2000

// WebSocket.OPEN; spelled out so a missing global does not break module loading.
const WS_OPEN = 1

/** Builders for the `action` of `trigger()`. */
export const TriggerAction = Object.freeze({
  /** Fire and forget: no reply is awaited and `trigger()` resolves `undefined` at once. */
  Void: () => ({ type: 'void' }),
  /** Hand the call to the engine's queue `queue`; resolves `{ messageReceiptId }`. */
  Enqueue: ({ queue }) => ({ type: 'enqueue', queue }),
})

/** Ids of the engine's built-in functions that this client calls. */
export const EngineFunctions = Object.freeze({
  LIST_FUNCTIONS: 'engine::functions::list',
  LIST_TRIGGERS: 'engine::registered-triggers::list',
  LIST_TRIGGER_TYPES: 'engine::triggers::list',
  LIST_WORKERS: 'engine::workers::list',
  CREATE_CHANNEL: 'engine::channels::create',
})

/** Trigger types the engine provides itself. */
export const EngineTriggers = Object.freeze({
  FUNCTIONS_AVAILABLE: 'engine::functions-available',
  WORKERS_AVAILABLE: 'engine::workers-available',
})

/**
 * Connects to an iii worker listener at once and returns the client.
 * @param {string} url e.g. `ws://localhost:3111` or `ws://host:3111?token=...`; used verbatim.
 * @param {object} [options] `invocationTimeoutMs`, `reconnectionConfig`; others are ignored.
 */
export function registerWorker(url, options = {}) {
  return new Sdk(url, options)
}

function uuid() {
  const c = globalThis.crypto
  if (typeof c?.randomUUID === 'function') return c.randomUUID()
  // randomUUID only exists in secure contexts; a page served over plain http from a LAN
  // address still has getRandomValues.
  const b = c.getRandomValues(new Uint8Array(16))
  b[6] = (b[6] & 0x0f) | 0x40
  b[8] = (b[8] & 0x3f) | 0x80
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

function encode(frame) {
  return JSON.stringify(frame)
}

function isBlank(s) {
  return typeof s !== 'string' || s.trim() === ''
}

// An engine ErrorBody becomes an Error that still carries code/message/stacktrace as own
// properties, so code written for the upstream SDK (which rejects with the raw object) and code
// expecting an Error both work.
function toInvocationError(body, functionId) {
  if (body !== null && typeof body === 'object') {
    const message = typeof body.message === 'string' ? body.message : String(body.code ?? 'error')
    const err = new Error(message)
    err.code = body.code
    err.stacktrace = body.stacktrace
    err.function_id = functionId
    return err
  }
  const err = new Error(String(body))
  err.code = 'UNKNOWN'
  err.stacktrace = undefined
  err.function_id = functionId
  return err
}

function errorBody(code, err) {
  const message = err instanceof Error ? err.message : String(err)
  const body = { code, message }
  const stack = err instanceof Error ? err.stack : undefined
  if (stack) body.stacktrace = stack
  return body
}

function channelBaseUrl(address) {
  const u = new URL(address)
  const path = u.pathname.replace(/\/+$/, '')
  return `${u.protocol}//${u.host}${path}`
}

class Sdk {
  #url
  #timeoutMs
  #reconnect
  #ws = null
  #state = 'disconnected'
  #stateListeners = new Set()
  #attempt = 0
  #reconnectTimer = null
  #shuttingDown = false
  #closedWaiters = []

  #workerId = null
  #reattachToken = null

  // Everything below is replayed on every open, in insertion order (Maps keep it). Frames are
  // stored encoded: a value JSON cannot encode fails the registering call, not a later replay.
  #triggerTypes = new Map() // id -> { text, description, handler }
  #services = new Map() // id -> text
  #functions = new Map() // id -> { text, handler }
  #triggers = new Map() // trigger id -> text

  #providerTriggers = new Map() // trigger id -> { trigger_type, function_id, config, metadata }
  #pending = new Map() // invocation id -> { resolve, reject, timer, functionId }
  #queue = [] // { text, invocationId? } waiting for an open socket

  #availableCallbacks = new Set()
  #availableRefs = null // { fn, trigger } while someone listens

  constructor(url, options) {
    this.#url = url
    this.#timeoutMs = options?.invocationTimeoutMs ?? DEFAULT_INVOCATION_TIMEOUT_MS
    this.#reconnect = { ...DEFAULT_RECONNECTION, ...(options?.reconnectionConfig ?? {}) }
    if (typeof globalThis.WebSocket !== 'function') {
      throw new Error('iii-browser-sdk needs a global WebSocket (Node 20: run with --experimental-websocket)')
    }
    this.#setState('connecting')
    this.#connect(true)
  }

  // ---------------------------------------------------------------- functions

  /**
   * registerFunction('id', handler, options?) or registerFunction({ id, ...options }, handler).
   * @returns {{ id: string, unregister(): void }}
   */
  registerFunction(idOrInput, handler, options) {
    let id
    let fields
    if (typeof idOrInput === 'string') {
      id = idOrInput
      fields = options !== null && typeof options === 'object' ? options : {}
    } else if (idOrInput !== null && typeof idOrInput === 'object') {
      ;({ id, ...fields } = idOrInput)
    } else {
      throw new TypeError('registerFunction: expected an id string or an object with an id')
    }
    if (isBlank(id)) throw new Error('id is required')
    if (typeof handler !== 'function') {
      throw new TypeError(`registerFunction '${id}': handler must be a function`)
    }
    if (this.#functions.has(id)) throw new Error(`function id already registered: ${id}`)

    // Everything the caller gave travels on the wire except what would change the message's
    // meaning: HTTP invocation configs are not supported by a browser worker.
    const { type: _t, handler: _h, invocation: _i, ...wire } = fields
    const entry = { text: encode({ type: 'registerfunction', id, ...wire }), handler }
    this.#functions.set(id, entry)
    this.#send(entry.text)

    return {
      id,
      unregister: () => {
        if (this.#functions.get(id) !== entry) return
        this.#functions.delete(id)
        // Not queued: a closed connection has already lost its functions on the engine.
        this.#send(encode({ type: 'unregisterfunction', id }))
      },
    }
  }

  // ---------------------------------------------------------------- triggers

  /**
   * Binds a function (local or remote) to a trigger type. The client mints the trigger id and
   * reuses it on every replay.
   * @returns {{ unregister(): void }}
   */
  registerTrigger({ type, function_id, config, metadata } = {}) {
    if (isBlank(type)) throw new Error('type is required')
    if (isBlank(function_id)) throw new Error('function_id is required')
    const id = uuid()
    const frame = { type: 'registertrigger', id, trigger_type: type, function_id, config }
    if (metadata !== undefined) frame.metadata = metadata
    const text = encode(frame)
    this.#triggers.set(id, text)
    this.#send(text)
    return {
      unregister: () => {
        if (!this.#triggers.delete(id)) return
        this.#sendOrQueue(encode({ type: 'unregistertrigger', id, trigger_type: type }))
      },
    }
  }

  /**
   * Provides a trigger type. The engine forwards registrations of that type to `handler`.
   * @returns TriggerTypeRef
   */
  registerTriggerType(input, handler) {
    const { id, description, ...rest } = input ?? {}
    if (isBlank(id)) throw new Error('id is required')
    if (typeof handler?.registerTrigger !== 'function') {
      throw new TypeError(`registerTriggerType '${id}': handler.registerTrigger must be a function`)
    }
    if (handler.unregisterTrigger !== undefined && typeof handler.unregisterTrigger !== 'function') {
      throw new TypeError(`registerTriggerType '${id}': handler.unregisterTrigger must be a function`)
    }
    if (this.#triggerTypes.has(id)) throw new Error(`trigger type already registered: ${id}`)
    const entry = {
      text: encode({ type: 'registertriggertype', id, description: description ?? '', ...rest }),
      description: description ?? '',
      handler,
    }
    this.#triggerTypes.set(id, entry)
    this.#send(entry.text)

    return {
      id,
      registerTrigger: (functionId, config, metadata) =>
        this.registerTrigger({ type: id, function_id: functionId, config, metadata }),
      registerFunction: (idOrInput, fnHandler, config) => {
        const ref = this.registerFunction(idOrInput, fnHandler)
        const trigger = this.registerTrigger({ type: id, function_id: ref.id, config })
        return {
          id: ref.id,
          unregister: () => {
            trigger.unregister()
            ref.unregister()
          },
        }
      },
      unregister: () => this.unregisterTriggerType(id),
    }
  }

  /** Stops providing a trigger type. Accepts `{ id, description? }` or the id. */
  unregisterTriggerType(input) {
    const id = typeof input === 'string' ? input : input?.id
    const entry = this.#triggerTypes.get(id)
    if (!entry) return
    this.#triggerTypes.delete(id)
    for (const [tid, t] of this.#providerTriggers) {
      if (t.trigger_type === id) this.#providerTriggers.delete(tid)
    }
    this.#send(encode({ type: 'unregistertriggertype', id, description: entry.description }))
  }

  /** Registers a service (a display grouping of functions); replayed on reconnect. */
  registerService({ id, name, description, parent_service_id } = {}) {
    if (isBlank(id)) throw new Error('id is required')
    const frame = { type: 'registerservice', id, name: isBlank(name) ? id : name }
    if (description !== undefined) frame.description = description
    if (parent_service_id !== undefined) frame.parent_service_id = parent_service_id
    const text = encode(frame)
    this.#services.set(id, text)
    this.#send(text)
  }

  // ---------------------------------------------------------------- calls

  /**
   * Calls a function. Without an action, resolves with its result or rejects with an Error
   * carrying `code`/`message`/`stacktrace`. With `TriggerAction.Void()` resolves `undefined`
   * at once; with `TriggerAction.Enqueue({queue})` resolves `{ messageReceiptId }`.
   */
  trigger({ function_id, payload, action, timeoutMs } = {}) {
    if (this.#shuttingDown) return Promise.reject(new Error(SHUTDOWN_MESSAGE))
    if (isBlank(function_id)) return Promise.reject(new Error('function_id is required'))

    const isVoid = action?.type === 'void'
    const invocationId = isVoid ? undefined : uuid()
    const frame = { type: 'invokefunction' }
    if (invocationId !== undefined) frame.invocation_id = invocationId
    frame.function_id = function_id
    if (payload !== undefined) frame.data = payload
    if (action !== undefined) frame.action = action
    let text
    try {
      text = encode(frame)
    } catch (err) {
      return Promise.reject(err)
    }
    if (isVoid) {
      this.#sendOrQueue(text)
      return Promise.resolve(undefined)
    }

    const ms = timeoutMs ?? this.#timeoutMs
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.#pending.delete(invocationId)) return
        const err = new Error(`Invocation timeout after ${ms}ms: ${function_id}`)
        err.code = 'TIMEOUT'
        reject(err)
      }, ms)
      this.#pending.set(invocationId, { resolve, reject, timer, functionId: function_id })
      this.#sendOrQueue(text, invocationId)
    })
  }

  /** Functions the engine lets this connection see (`engine::functions::list`). */
  async listFunctions() {
    const res = await this.trigger({ function_id: EngineFunctions.LIST_FUNCTIONS, payload: {} })
    return res?.functions ?? []
  }

  /** Registered trigger instances (`engine::registered-triggers::list`). */
  async listTriggers(includeInternal = false) {
    const res = await this.trigger({
      function_id: EngineFunctions.LIST_TRIGGERS,
      payload: { include_internal: includeInternal },
    })
    return res?.registered_triggers ?? []
  }

  /** Trigger types the engine knows (`engine::triggers::list`). */
  async listTriggerTypes(includeInternal = false) {
    const res = await this.trigger({
      function_id: EngineFunctions.LIST_TRIGGER_TYPES,
      payload: { include_internal: includeInternal },
    })
    return res?.triggers ?? []
  }

  /**
   * Calls `callback(functions)` whenever the engine's function list changes. One local function
   * and one `engine::functions-available` trigger serve all callbacks.
   * @returns {() => void} unsubscribe
   */
  onFunctionsAvailable(callback) {
    if (typeof callback !== 'function') throw new TypeError('onFunctionsAvailable: callback must be a function')
    this.#availableCallbacks.add(callback)
    if (!this.#availableRefs) {
      const fn = this.registerFunction(`engine.on_functions_available.${uuid()}`, async (payload) => {
        const functions = payload?.functions ?? []
        for (const cb of [...this.#availableCallbacks]) {
          try {
            cb(functions)
          } catch (err) {
            console.error('[iii] onFunctionsAvailable callback failed', err)
          }
        }
      })
      const trigger = this.registerTrigger({
        type: EngineTriggers.FUNCTIONS_AVAILABLE,
        function_id: fn.id,
        config: {},
      })
      this.#availableRefs = { fn, trigger }
    }
    return () => {
      if (!this.#availableCallbacks.delete(callback)) return
      if (this.#availableCallbacks.size === 0 && this.#availableRefs) {
        this.#availableRefs.trigger.unregister()
        this.#availableRefs.fn.unregister()
        this.#availableRefs = null
      }
    }
  }

  /**
   * Registers a custom store for stream `name`: the engine calls these functions instead of its
   * own store for that stream. `impl` has `get`, `set`, `delete`, `list` and `listGroups`.
   * @returns {{ unregister(): void }}
   */
  createStream(name, impl) {
    if (isBlank(name)) throw new Error('stream name is required')
    const ops = [
      ['get', 'get'],
      ['set', 'set'],
      ['delete', 'delete'],
      ['list', 'list'],
      ['list_groups', 'listGroups'],
    ]
    for (const [, method] of ops) {
      if (typeof impl?.[method] !== 'function') {
        throw new TypeError(`createStream '${name}': impl.${method} must be a function`)
      }
    }
    const refs = ops.map(([op, method]) =>
      this.registerFunction(`stream::${op}(${name})`, (input) => impl[method](input)),
    )
    return { unregister: () => refs.forEach((r) => r.unregister()) }
  }

  /**
   * Creates a data channel (`engine::channels::create`). The sockets open lazily on first use.
   */
  async createChannel(bufferSize) {
    const payload = bufferSize === undefined ? {} : { buffer_size: bufferSize }
    const res = await this.trigger({ function_id: EngineFunctions.CREATE_CHANNEL, payload })
    const base = channelBaseUrl(this.#url)
    return {
      writer: new ChannelWriter(base, res.writer),
      reader: new ChannelReader(base, res.reader),
      writerRef: res.writer,
      readerRef: res.reader,
    }
  }

  // ---------------------------------------------------------------- lifecycle

  /** The current connection state. */
  getConnectionState() {
    return this.#state
  }

  /**
   * `callback(state)` on every change: `connecting`, `connected`, `reconnecting`, `failed`,
   * `disconnected`.
   * @returns {() => void} unsubscribe
   */
  addConnectionStateListener(callback) {
    this.#stateListeners.add(callback)
    return () => this.#stateListeners.delete(callback)
  }

  /**
   * Rejects pending calls with `iii is shutting down`, stops reconnecting and closes the socket
   * (without a status code). Resolves once the socket has closed.
   */
  async shutdown() {
    if (this.#shuttingDown) return
    this.#shuttingDown = true
    clearTimeout(this.#reconnectTimer)
    this.#reconnectTimer = null
    for (const [, p] of this.#pending) {
      clearTimeout(p.timer)
      p.reject(new Error(SHUTDOWN_MESSAGE))
    }
    this.#pending.clear()
    this.#queue = []
    const ws = this.#ws
    if (ws && ws.readyState === WS_OPEN) {
      // No status code: the engine sees 1005, as with the upstream SDKs. Bounded wait, in case
      // the peer never answers the close.
      let timer
      const closed = new Promise((resolve) => this.#closedWaiters.push(resolve))
      ws.close()
      await Promise.race([
        closed,
        new Promise((resolve) => {
          timer = setTimeout(resolve, SHUTDOWN_CLOSE_WAIT_MS)
        }),
      ])
      clearTimeout(timer)
    } else if (ws) {
      this.#ws = null
      ws.close()
    }
    this.#setState('disconnected')
  }

  #setState(state) {
    if (this.#state === state) return
    this.#state = state
    for (const cb of [...this.#stateListeners]) {
      try {
        cb(state)
      } catch (err) {
        console.error('[iii] connection state listener failed', err)
      }
    }
  }

  #connect(first = false) {
    this.#reconnectTimer = null
    if (this.#shuttingDown) return
    let ws
    try {
      ws = new WebSocket(this.#url)
    } catch (err) {
      // A malformed URL throws here: report it to the caller of registerWorker.
      if (first) throw err
      console.error('[iii] could not open WebSocket', err)
      this.#scheduleReconnect()
      return
    }
    ws.binaryType = 'arraybuffer'
    this.#ws = ws
    ws.onopen = () => {
      if (ws === this.#ws) this.#onOpen()
      else ws.close()
    }
    ws.onmessage = (ev) => {
      if (ws === this.#ws) this.#onMessage(ev.data)
    }
    // Browsers follow 'error' with 'close', but Node 20's WebSocket fires only 'error' when a
    // connection attempt fails (and stays CONNECTING), so either event ends the socket.
    ws.onerror = () => this.#lost(ws)
    ws.onclose = () => this.#lost(ws)
  }

  #lost(ws) {
    if (ws !== this.#ws) return
    this.#ws = null
    if (ws.readyState === WS_OPEN) ws.close()
    const waiters = this.#closedWaiters.splice(0)
    waiters.forEach((resolve) => resolve())
    if (!this.#shuttingDown) this.#scheduleReconnect()
  }

  #scheduleReconnect() {
    const { initialDelayMs, maxDelayMs, backoffMultiplier, jitterFactor, maxRetries } = this.#reconnect
    if (maxRetries >= 0 && this.#attempt >= maxRetries) {
      this.#setState('failed')
      return
    }
    const base = Math.min(initialDelayMs * backoffMultiplier ** this.#attempt, maxDelayMs)
    const jitter = base * jitterFactor * (Math.random() * 2 - 1)
    const delay = Math.max(0, Math.round(base + jitter))
    this.#attempt++
    this.#setState('reconnecting')
    this.#reconnectTimer = setTimeout(() => this.#connect(), delay)
  }

  #onOpen() {
    this.#attempt = 0
    this.#setState('connected')
    // The engine applies frames in order, so functions exist before the triggers naming them
    // and before any queued call. workerregistered is not awaited.
    if (this.#workerId !== null) {
      const frame = { type: 'reattach', previous_worker_id: this.#workerId }
      if (this.#reattachToken !== null) frame.reattach_token = this.#reattachToken
      this.#send(encode(frame))
    }
    for (const { text } of this.#triggerTypes.values()) this.#send(text)
    for (const text of this.#services.values()) this.#send(text)
    for (const { text } of this.#functions.values()) this.#send(text)
    for (const text of this.#triggers.values()) this.#send(text)
    const queued = this.#queue
    this.#queue = []
    for (const { text, invocationId } of queued) {
      // A call that timed out (or was answered) while we were away is not sent late.
      if (invocationId !== undefined && !this.#pending.has(invocationId)) continue
      this.#send(text)
    }
  }

  // Sends an encoded frame now if the socket is open; otherwise drops it (registrations are
  // replayed on open).
  #send(text) {
    const ws = this.#ws
    if (!ws || ws.readyState !== WS_OPEN) return false
    ws.send(text)
    return true
  }

  #sendOrQueue(text, invocationId) {
    if (this.#send(text)) return
    if (this.#shuttingDown) return
    this.#queue.push({ text, invocationId })
  }

  #onMessage(data) {
    // The engine only sends text frames on this socket; anything else is not ours to read.
    if (typeof data !== 'string') return
    let msg
    try {
      msg = JSON.parse(data)
    } catch {
      console.error('[iii] ignoring a frame that is not JSON')
      return
    }
    if (msg === null || typeof msg !== 'object') return
    switch (msg.type) {
      case 'workerregistered':
        this.#workerId = typeof msg.worker_id === 'string' ? msg.worker_id : null
        this.#reattachToken = typeof msg.reattach_token === 'string' ? msg.reattach_token : null
        break
      case 'invocationresult':
        this.#onInvocationResult(msg)
        break
      case 'invokefunction':
        void this.#onInvoke(msg)
        break
      case 'registertrigger':
        void this.#onProviderRegister(msg)
        break
      case 'unregistertrigger':
        void this.#onProviderUnregister(msg)
        break
      case 'triggerregistrationresult':
        if (msg.error) {
          console.warn(
            `[iii] trigger registration failed for "${msg.id}" (${msg.trigger_type}): ${msg.error.message ?? msg.error.code}`,
          )
        }
        break
      case 'error':
        console.warn(`[iii] engine error: ${msg.error?.code}: ${msg.error?.message}`)
        break
      default:
        // ping and unknown types: nothing to do.
        break
    }
  }

  #onInvocationResult(msg) {
    const p = this.#pending.get(msg.invocation_id)
    if (!p) return
    this.#pending.delete(msg.invocation_id)
    clearTimeout(p.timer)
    if (msg.error) p.reject(toInvocationError(msg.error, p.functionId))
    else p.resolve(msg.result)
  }

  async #onInvoke(msg) {
    const { invocation_id: invocationId, function_id: functionId } = msg
    const entry = this.#functions.get(functionId)
    const reply = { type: 'invocationresult', invocation_id: invocationId, function_id: functionId }
    if (!entry) {
      reply.error = { code: 'function_not_found', message: 'Function not found' }
    } else {
      try {
        const result = await entry.handler(msg.data)
        if (result !== undefined) reply.result = result
      } catch (err) {
        reply.error = errorBody('invocation_failed', err)
      }
    }
    if (invocationId === undefined || invocationId === null) {
      if (reply.error) console.error(`[iii] ${functionId} failed: ${reply.error.message}`)
      return
    }
    if (typeof msg.traceparent === 'string') reply.traceparent = msg.traceparent
    if (typeof msg.baggage === 'string') reply.baggage = msg.baggage
    this.#reply(reply)
  }

  // A result JSON cannot encode becomes an error reply instead of an exception.
  #reply(frame) {
    if (this.#shuttingDown) return
    let text
    try {
      text = encode(frame)
    } catch (err) {
      delete frame.result
      frame.error = errorBody('invocation_failed', err)
      text = encode(frame)
    }
    this.#sendOrQueue(text)
  }

  async #onProviderRegister(msg) {
    const { id, trigger_type, function_id, config, metadata } = msg
    const reply = { type: 'triggerregistrationresult', id, trigger_type, function_id }
    const entry = this.#triggerTypes.get(trigger_type)
    if (!entry) {
      reply.error = { code: 'trigger_type_not_found', message: 'Trigger type not found' }
    } else {
      const trigger = { id, function_id, config, metadata }
      try {
        await entry.handler.registerTrigger(trigger)
        this.#providerTriggers.set(id, { trigger_type, function_id, config, metadata })
      } catch (err) {
        reply.error = errorBody('trigger_registration_failed', err)
      }
    }
    this.#reply(reply)
  }

  async #onProviderUnregister(msg) {
    const entry = this.#triggerTypes.get(msg.trigger_type)
    if (!entry) return
    const known = this.#providerTriggers.get(msg.id)
    this.#providerTriggers.delete(msg.id)
    if (typeof entry.handler.unregisterTrigger !== 'function') return
    try {
      await entry.handler.unregisterTrigger({
        id: msg.id,
        function_id: known?.function_id ?? '',
        config: known?.config,
        metadata: known?.metadata,
      })
    } catch (err) {
      console.error(`[iii] unregisterTrigger for "${msg.id}" (${msg.trigger_type}) failed`, err)
    }
  }
}

// ------------------------------------------------------------------ channels

function channelUrl(base, ref) {
  return `${base}/ws/channels/${ref.channel_id}?key=${encodeURIComponent(ref.access_key)}&dir=${ref.direction}`
}

/** Write end of a data channel. The socket opens on the first send. */
export class ChannelWriter {
  #url
  #ws = null
  #backlog = []
  #closed = false

  constructor(base, ref) {
    this.#url = channelUrl(base, ref)
  }

  #socket() {
    if (!this.#ws) {
      const ws = new WebSocket(this.#url)
      ws.binaryType = 'arraybuffer'
      ws.onopen = () => {
        for (const data of this.#backlog) ws.send(data)
        this.#backlog = []
        if (this.#closed) ws.close(1000, 'channel_close')
      }
      ws.onerror = () => {}
      this.#ws = ws
    }
    return this.#ws
  }

  #write(data) {
    if (this.#closed) throw new Error('channel writer is closed')
    const ws = this.#socket()
    if (ws.readyState === WS_OPEN) ws.send(data)
    else this.#backlog.push(data)
  }

  /** Sends one text message. */
  sendMessage(text) {
    this.#write(String(text))
  }

  /** Sends bytes, split into frames of at most 64 KiB. */
  sendBinary(bytes) {
    const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)
    if (u8.byteLength === 0) {
      this.#write(u8)
      return
    }
    for (let off = 0; off < u8.byteLength; off += CHANNEL_FRAME_BYTES) {
      this.#write(u8.slice(off, off + CHANNEL_FRAME_BYTES))
    }
  }

  /** Closes the channel (status 1000, reason `channel_close`) once everything queued is sent. */
  close() {
    if (this.#closed) return
    this.#closed = true
    const ws = this.#ws
    if (ws && ws.readyState === WS_OPEN) ws.close(1000, 'channel_close')
  }
}

/** Read end of a data channel. The socket opens on the first subscription or `readAll()`. */
export class ChannelReader {
  #url
  #ws = null
  #onText = new Set()
  #onBytes = new Set()
  #chunks = []
  #done = null // resolves when the writer closes
  #finish = null

  constructor(base, ref) {
    this.#url = channelUrl(base, ref)
    this.#done = new Promise((resolve) => {
      this.#finish = resolve
    })
  }

  #open() {
    if (this.#ws) return
    const ws = new WebSocket(this.#url)
    ws.binaryType = 'arraybuffer'
    ws.onmessage = (ev) => {
      if (typeof ev.data === 'string') {
        for (const cb of this.#onText) cb(ev.data)
        return
      }
      const bytes = new Uint8Array(ev.data)
      this.#chunks.push(bytes)
      for (const cb of this.#onBytes) cb(bytes)
    }
    ws.onerror = () => {}
    ws.onclose = () => this.#finish()
    this.#ws = ws
  }

  /** `callback(text)` for every text message. */
  onMessage(callback) {
    this.#onText.add(callback)
    this.#open()
    return () => this.#onText.delete(callback)
  }

  /** `callback(bytes: Uint8Array)` for every binary frame. */
  onBinary(callback) {
    this.#onBytes.add(callback)
    this.#open()
    return () => this.#onBytes.delete(callback)
  }

  /** Resolves all binary data received until the writer closes, as one Uint8Array. */
  async readAll() {
    this.#open()
    await this.#done
    const total = this.#chunks.reduce((n, c) => n + c.byteLength, 0)
    const out = new Uint8Array(total)
    let off = 0
    for (const c of this.#chunks) {
      out.set(c, off)
      off += c.byteLength
    }
    return out
  }

  /** Closes the reader's socket. */
  close() {
    if (this.#ws && this.#ws.readyState <= WS_OPEN) this.#ws.close(1000, 'channel_close')
    this.#finish()
  }
}
