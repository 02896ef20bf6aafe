// Test harness: runs the real bin/iii on free ports with a generated config, plus raw `ws`
// clients and worker factories for both iii-sdk generations.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync, appendFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'

const here = path.dirname(fileURLToPath(import.meta.url))
export const E2E_DIR = path.resolve(here, '..')
export const REPO_DIR = path.resolve(here, '..', '..')
// E2E_III_BIN points the suite at another binary (e.g. a build elsewhere).
export const III_BIN = process.env.E2E_III_BIN ?? path.join(REPO_DIR, 'bin', 'iii')

// The SDKs print a debug line on every connect; it drowns the test output.
if (!process.env.E2E_VERBOSE) console.debug = () => {}

const live = new Set()

// The SDKs log every failed reconnect attempt (and their telemetry socket's comings and goings)
// on the console; the suites stop and restart engines on purpose, so those lines are expected.
// They are dropped; E2E_VERBOSE=1 prints them. Children spawned by spawnChild keep every line:
// their stdout is what the tests read.
const sdkNoise = /^\[(iii|OTel)\] (WebSocket error|Reconnecting|Disconnected|Connected|Connection closed|Successfully reconnected)/
for (const name of ['error', 'log', 'warn']) {
  const original = console[name].bind(console)
  console[name] = (...args) => {
    if (!process.env.E2E_VERBOSE && !process.env.E2E_CHILD && typeof args[0] === 'string' && sdkNoise.test(args[0])) return
    original(...args)
  }
}
process.on('exit', () => {
  for (const p of live) {
    try { p.kill('SIGKILL') } catch {}
  }
})

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Free TCP port on 127.0.0.1 (listen on 0, read it, close). */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/** Minimal YAML emitter: block mappings/sequences, scalars as JSON (valid YAML). */
export function toYaml(value, indent = 0) {
  const pad = ' '.repeat(indent)
  const scalar = (v) => (v === null || v === undefined ? 'null' : JSON.stringify(v))
  const isPlainObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)
  if (Array.isArray(value)) {
    if (value.length === 0) return `${pad}[]\n`
    return value.map((item) => {
      if (isPlainObj(item) && Object.keys(item).length > 0) {
        const body = toYaml(item, indent + 2)
        return `${pad}- ${body.slice(indent + 2)}`
      }
      if (Array.isArray(item) && item.length > 0) return `${pad}-\n${toYaml(item, indent + 2)}`
      return `${pad}- ${isPlainObj(item) ? '{}' : Array.isArray(item) ? '[]' : scalar(item)}\n`
    }).join('')
  }
  if (isPlainObj(value)) {
    const keys = Object.keys(value)
    if (keys.length === 0) return `${pad}{}\n`
    return keys.map((k) => {
      const v = value[k]
      const key = /^[A-Za-z_][A-Za-z0-9_:.-]*$/.test(k) ? k : JSON.stringify(k)
      if (isPlainObj(v) && Object.keys(v).length > 0) return `${pad}${key}:\n${toYaml(v, indent + 2)}`
      if (Array.isArray(v) && v.length > 0) return `${pad}${key}:\n${toYaml(v, indent + 2)}`
      return `${pad}${key}: ${isPlainObj(v) ? '{}' : Array.isArray(v) ? '[]' : scalar(v)}\n`
    }).join('')
  }
  return `${pad}${scalar(value)}\n`
}

/** The default (upstream-style) config used by the tests. */
export function defaultConfig({ workerPort, streamPort, dataDir }, engine = {}) {
  return {
    workers: [
      { name: 'iii-worker-manager', config: { port: workerPort } },
      {
        name: 'iii-stream',
        config: {
          port: streamPort,
          adapter: { name: 'kv', config: { store_method: 'file_based', file_path: path.join(dataDir, 'stream_store') } },
        },
      },
      {
        name: 'iii-state',
        config: { adapter: { name: 'kv', config: { store_method: 'file_based', file_path: path.join(dataDir, 'state_store') } } },
      },
    ],
    engine: { sync: 'always', ...engine },
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

/**
 * Spawn a server process for a test: its output is appended to logFile, kept in memory (the last
 * few MB) for error messages, and echoed to stderr when process.env[echoEnv] is set; it is killed
 * if the test process exits. An exit nobody announced with expectExit() is reported on stderr
 * with the end of the output. Returns {proc, exited, output(), expectExit()}.
 */
export function spawnLogged(bin, args, { cwd, env = process.env, logFile, label, echoEnv }) {
  let out = ''
  let expected = false
  const proc = spawn(bin, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  live.add(proc)
  const onData = (chunk) => {
    const s = chunk.toString()
    out += s
    if (out.length > 4_000_000) out = out.slice(-2_000_000)
    try { appendFileSync(logFile, s) } catch {} // the dir may be gone after cleanup()
    if (process.env[echoEnv]) process.stderr.write(`[${label}] ${s}`)
  }
  proc.stdout.on('data', onData)
  proc.stderr.on('data', onData)
  const exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => {
      live.delete(proc)
      if (!expected) process.stderr.write(`[e2e] ${label} exited unexpectedly code=${code} signal=${signal}; log: ${logFile}\n${out.slice(-3000)}\n`)
      resolve({ code, signal })
    })
  })
  return {
    proc,
    exited,
    output: () => out,
    expectExit() { expected = true },
    /** Send `signal` unless it already exited, wait for the exit (SIGKILL after 10 s). */
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited
      expected = true
      proc.kill(signal)
      const t = setTimeout(() => { try { proc.kill('SIGKILL') } catch {} }, 10000)
      const r = await exited
      clearTimeout(t)
      return r
    },
  }
}

/**
 * Start bin/iii.
 * opts.engine: extra keys merged into the `engine:` section of the default config.
 * opts.config: object (full config, replaces the default) or function(ctx) -> object|string.
 * opts.dataDir: data directory (default: a fresh temp dir). opts.env: extra environment.
 * opts.maxFileBlocks: run it under `ulimit -f` (512-byte blocks): no file grows past that.
 */
export async function startEngine(opts = {}) {
  if (!existsSync(III_BIN)) {
    throw new Error(`${III_BIN} not found: build it first (cd ${REPO_DIR} && go build -o bin/iii ./cmd/iii)`)
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'iii-e2e-'))
  const dataDir = opts.dataDir ?? path.join(dir, 'data')
  const workerPort = opts.workerPort ?? await freePort()
  const streamPort = opts.streamPort ?? await freePort()
  const ctx = { workerPort, streamPort, dataDir, dir, freePort }
  let cfg
  if (typeof opts.config === 'function') cfg = await opts.config(ctx)
  else if (opts.config) cfg = opts.config
  else cfg = defaultConfig(ctx, opts.engine)
  const configText = typeof cfg === 'string' ? cfg : toYaml(cfg)
  const configFile = path.join(dir, 'config.yaml')
  writeFileSync(configFile, configText)
  const logFile = path.join(dir, 'engine.log')

  let child

  async function spawnOnce() {
    appendFileSync(logFile, `--- start ${new Date().toISOString()}\n`)
    let [bin, args] = [III_BIN, ['--config', configFile, '--data-dir', dataDir]]
    // ulimit -f counts 512-byte blocks (dash); "$0" "$@" passes the command unquoted-safe.
    if (opts.maxFileBlocks) [bin, args] = ['sh', ['-c', `ulimit -f ${opts.maxFileBlocks}; exec "$0" "$@"`, bin, ...args]]
    child = spawnLogged(bin, args, { cwd: dir, env: { ...process.env, ...opts.env }, logFile, label: 'engine', echoEnv: 'E2E_ENGINE_LOGS' })
    const { exited, output: out } = child
    const deadline = Date.now() + 20000
    let done = false
    const exitEarly = exited.then((r) => { if (!done) throw new Error(`engine exited before ready (code=${r.code} signal=${r.signal}):\n${out().slice(-4000)}`) })
    exitEarly.catch(() => {})
    const ready = (async () => {
      while (Date.now() < deadline) {
        if (/msg=ready|"msg":"ready"/.test(out())) return
        if (await canConnect(workerPort) && await canConnect(streamPort)) {
          // Ports bound; give the ready line a moment, then go on anyway.
          for (let i = 0; i < 10 && !/msg=ready|"msg":"ready"/.test(out()); i++) await sleep(20)
          return
        }
        await sleep(25)
      }
      throw new Error(`engine not ready after 20 s:\n${out().slice(-4000)}`)
    })()
    try {
      await Promise.race([ready, exitEarly])
    } finally {
      done = true
    }
  }

  await spawnOnce()

  const engine = {
    workerPort,
    streamPort,
    workerUrl: `ws://127.0.0.1:${workerPort}`,
    streamUrl: `ws://127.0.0.1:${streamPort}`,
    dataDir,
    dir,
    configFile,
    logFile,
    get pid() { return child.proc.pid },
    get exited() { return child.exited },
    logs: () => child.output(),
    /** Send `signal`, wait for exit (SIGKILL after 10 s). */
    stop: (signal) => child.stop(signal),
    kill() { return engine.stop('SIGKILL') },
    /** Start again with the same config, ports and data dir. */
    async restart() {
      await engine.stop()
      await spawnOnce()
      return engine
    },
    async cleanup() {
      await engine.stop()
      if (!process.env.E2E_KEEP) rmSync(dir, { recursive: true, force: true })
    },
  }
  return engine
}

/** Send `signal` to a child and wait for `exited`; SIGKILL if it is still there after 10 s. */
/** Poll `fn` until it returns a truthy value (exceptions count as "not yet"). */
export async function waitFor(fn, timeoutMs = 5000, what = 'condition', intervalMs = 50) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
      last = undefined
    } catch (e) {
      last = e
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: last error: ${last.stack ?? last}` : ''}`)
    }
    await sleep(intervalMs)
  }
}

let idSeq = 0
/** A short unique id for names in tests. */
export const uid = (p = 'x') => `${p}-${process.pid}-${Date.now().toString(36)}-${(idSeq++).toString(36)}`

const fmt = (f) => (f.raw.length > 400 ? `${f.raw.slice(0, 400)}…` : f.raw)

/**
 * Raw WebSocket client that records every frame.
 * Frames are {t, binary, raw, msg} where msg is the parsed JSON (or undefined).
 */
export async function rawClient(url, opts = {}) {
  const ws = new WebSocket(url, { autoPong: opts.autoPong ?? true, headers: opts.headers, perMessageDeflate: false })
  const frames = []
  const waiters = new Set()
  let closeInfo
  const pings = []
  let resolveClosed
  const closed = new Promise((r) => { resolveClosed = r })
  ws.on('message', (data, isBinary) => {
    const raw = isBinary ? data : data.toString()
    let msg
    if (!isBinary) {
      try { msg = JSON.parse(raw) } catch {}
    }
    const f = { t: Date.now(), binary: isBinary, raw, msg, taken: false }
    frames.push(f)
    for (const w of waiters) w()
  })
  ws.on("ping", () => { pings.push(Date.now()); for (const w of waiters) w() })
  ws.on('close', (code, reason) => {
    closeInfo = { code, reason: reason.toString() }
    resolveClosed(closeInfo)
    for (const w of waiters) w()
  })
  ws.on('error', () => {})
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected HTTP ${res.statusCode} for ${url}`)))
  })

  const client = {
    ws,
    frames,
    pings,
    closed,
    get closeInfo() { return closeInfo },
    get isOpen() { return ws.readyState === WebSocket.OPEN },
    send(obj) { ws.send(JSON.stringify(obj)) },
    sendRaw(data, binary = false) { ws.send(data, { binary }) },
    /** Next not-yet-taken frame whose parsed message matches `pred` (marks it taken). */
    next(pred = () => true, timeoutMs = 3000, what = 'a matching frame') {
      const find = () => frames.find((f) => !f.taken && f.msg !== undefined && pred(f.msg))
      return new Promise((resolve, reject) => {
        const check = () => {
          const f = find()
          if (f) {
            f.taken = true
            cleanup()
            resolve(f.msg)
          } else if (closeInfo) {
            cleanup()
            reject(new Error(`connection closed (${closeInfo.code} ${closeInfo.reason}) while waiting for ${what}; frames seen: ${frames.map(fmt).join(' | ') || 'none'}`))
          }
        }
        const timer = setTimeout(() => {
          cleanup()
          reject(new Error(`no ${what} within ${timeoutMs} ms; frames seen: ${frames.map(fmt).join(' | ') || 'none'}`))
        }, timeoutMs)
        const cleanup = () => { clearTimeout(timer); waiters.delete(check) }
        waiters.add(check)
        check()
      })
    },
    /** Resolves if no untaken frame matching `pred` arrives within `ms`; rejects otherwise. */
    async none(pred = () => true, ms = 500, what = 'frame') {
      await sleep(ms)
      const f = frames.find((x) => !x.taken && x.msg !== undefined && pred(x.msg))
      if (f) throw new Error(`unexpected ${what}: ${fmt(f)}`)
    },
    /** Wait for and return `workerregistered` (the first frame). */
    async registered(timeoutMs = 3000) {
      const m = await client.next((x) => x.type === 'workerregistered', timeoutMs, 'workerregistered')
      client.workerId = m.worker_id
      client.reattachToken = m.reattach_token
      return m
    },
    /** invokefunction with an invocation id; resolves with the whole invocationresult frame. */
    async call(function_id, data, { invocation_id, timeoutMs = 5000, extra = {} } = {}) {
      const id = invocation_id ?? uid('inv')
      const frame = { type: 'invokefunction', invocation_id: id, function_id, ...extra }
      if (data !== undefined) frame.data = data
      client.send(frame)
      return client.next((m) => m.type === 'invocationresult' && m.invocation_id === id, timeoutMs, `invocationresult for ${function_id} (${id})`)
    },
    /** ping/pong round trip on the protocol level: proves the connection still works. */
    async roundTrip(timeoutMs = 3000) {
      client.send({ type: 'ping' })
      return client.next((m) => m.type === 'pong', timeoutMs, 'pong')
    },
    /** Serve function ids: handler(data, frame) -> result (or throws). Replies with invocationresult. */
    serve(handlers) {
      for (const id of Object.keys(handlers)) client.send({ type: 'registerfunction', id })
      const onMsg = () => {
        for (const f of frames) {
          if (f.taken || !f.msg || f.msg.type !== 'invokefunction' || !(f.msg.function_id in handlers)) continue
          f.taken = true
          const m = f.msg
          client.served.push(m)
          ;(async () => {
            let reply
            try {
              const result = await handlers[m.function_id](m.data, m)
              reply = { type: 'invocationresult', invocation_id: m.invocation_id, function_id: m.function_id }
              if (result !== undefined) reply.result = result
            } catch (e) {
              reply = { type: 'invocationresult', invocation_id: m.invocation_id, function_id: m.function_id, error: { code: 'invocation_failed', message: String(e?.message ?? e) } }
            }
            if (m.invocation_id && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(reply))
          })()
        }
      }
      waiters.add(onMsg)
      onMsg()
    },
    /** invokefunction frames handled by serve(), in arrival order. */
    served: [],
    close(code, reason) { try { ws.close(code, reason) } catch {} return closed },
    terminate() { ws.terminate(); return closed },
  }
  return client
}

/** A raw worker connection that has received its workerregistered frame. */
export async function rawWorker(url, opts) {
  const c = await rawClient(url, opts)
  await c.registered()
  return c
}

// ---------------------------------------------------------------- SDK generations

/** The two client generations under test. */
export const GENERATIONS = [
  { name: '0.22.1', pkg: 'iii-sdk', errorName: 'InvocationError', version: '0.22.1' },
  { name: '0.11.6', pkg: 'iii-sdk-011', errorName: 'IIIInvocationError', version: '0.11.6' },
]

const modCache = new Map()
/** The SDK module of a generation. */
export async function sdkModule(gen) {
  if (!modCache.has(gen.pkg)) modCache.set(gen.pkg, await import(gen.pkg))
  return modCache.get(gen.pkg)
}

const workers = new Set()

/**
 * Start an SDK worker of `gen` against `url` with OTel and metrics off and a fast reconnect
 * schedule (tests restart the engine). Returns the SDK client.
 */
export async function makeWorker(gen, url, options = {}) {
  const { registerWorker } = await sdkModule(gen)
  const w = registerWorker(url, {
    workerName: options.workerName ?? uid(`w${gen.name}`),
    enableMetricsReporting: false,
    otel: { enabled: false },
    invocationTimeoutMs: 10000,
    reconnectionConfig: { initialDelayMs: 100, maxDelayMs: 400, jitterFactor: 0, backoffMultiplier: 2, maxRetries: -1 },
    ...options,
  })
  workers.add(w)
  return w
}

/** Wait until the SDK worker has its worker_id (its socket is open and registered). */
export async function connected(worker, timeoutMs = 5000) {
  await waitFor(() => worker.workerId, timeoutMs, 'workerregistered on the SDK worker')
  return worker.workerId
}

/**
 * Round trip from `worker` through the engine. The engine applies a connection's frames in
 * order (docs/wire-protocol.md#connection-lifecycle), so once this returns every registration
 * the worker sent before it has been applied.
 */
export async function barrier(worker) {
  try {
    await worker.trigger({ function_id: 'e2e::barrier::does-not-exist', payload: {}, timeoutMs: 8000 })
  } catch (e) {
    if (e?.code === 'TIMEOUT') throw new Error('engine did not answer the barrier call within 8 s')
  }
}

export async function shutdownWorkers() {
  const all = [...workers]
  workers.clear()
  await Promise.all(all.map((w) => Promise.race([w.shutdown().catch(() => {}), sleep(3000)])))
}

/** Capture a rejection of `promise`; fails if it resolves. */
export async function rejection(promise, what = 'call') {
  try {
    const v = await promise
    throw Object.assign(new Error(`${what} resolved with ${JSON.stringify(v)} but was expected to reject`), { unexpectedResolve: true })
  } catch (e) {
    if (e?.unexpectedResolve) throw e
    return e
  }
}

// ---------------------------------------------------------------- child processes

/**
 * Run e2e/lib/child.mjs with a JSON spec; lines on stdout are collected.
 * Returns {proc, lines, waitLine(re, ms), exited, stdout(), stderr()}.
 */
export function spawnChild(spec, { env } = {}) {
  const proc = spawn(process.execPath, [path.join(here, 'child.mjs'), JSON.stringify(spec)], {
    cwd: E2E_DIR,
    env: { ...process.env, E2E_CHILD: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  live.add(proc)
  let stdout = ''
  let stderr = ''
  const lines = []
  const waiters = new Set()
  let buf = ''
  proc.stdout.on('data', (c) => {
    stdout += c
    buf += c
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i))
      buf = buf.slice(i + 1)
    }
    for (const w of waiters) w()
  })
  proc.stderr.on('data', (c) => { stderr += c })
  const exited = new Promise((r) => proc.once('exit', (code, signal) => { live.delete(proc); for (const w of waiters) w(); r({ code, signal }) }))
  let exitInfo
  exited.then((x) => { exitInfo = x })
  return {
    proc,
    lines,
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    waitLine(re, ms = 10000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const l = lines.find((x) => re.test(x))
          if (l) { cleanup(); resolve(l) } else if (exitInfo) { cleanup(); reject(new Error(`child exited (${JSON.stringify(exitInfo)}) before printing ${re}\nstdout:\n${stdout.slice(-3000)}\nstderr:\n${stderr.slice(-3000)}`)) }
        }
        const timer = setTimeout(() => { cleanup(); reject(new Error(`child did not print ${re} within ${ms} ms\nstdout:\n${stdout.slice(-3000)}\nstderr:\n${stderr.slice(-3000)}`)) }, ms)
        const cleanup = () => { clearTimeout(timer); waiters.delete(check) }
        waiters.add(check)
        check()
      })
    },
    kill(sig = 'SIGKILL') { try { proc.kill(sig) } catch {} return exited },
  }
}

/** Run `bin/iii <args>` to completion. */
export function runIII(args, { timeoutMs = 20000, env } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(III_BIN, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    live.add(p)
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (c) => { stdout += c })
    p.stderr.on('data', (c) => { stderr += c })
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`iii ${args.join(' ')} did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`)) }, timeoutMs)
    p.once('exit', (code, signal) => { live.delete(p); clearTimeout(t); resolve({ code, signal, stdout, stderr }) })
  })
}
