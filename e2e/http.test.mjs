// The HTTP module (iii-http) and the pubsub module (iii-pubsub) through the real SDKs and plain
// `fetch`: http triggers as routes (the handler's input, its {status_code, headers, body}
// answer, metadata), the engine's error answers (404, 405, 500, 422, 504), body rules (raw
// text, JSON strings, repeated Set-Cookie, urlencoded and multipart forms), global and
// per-route middleware and their order, streaming through @iii-dev/helpers/http (SSE out, a
// large upload in) and through the raw channel protocol, CORS, routes that follow their
// triggers, and publish / subscribe.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import WebSocket from 'ws'
import { http as httpHandler } from '@iii-dev/helpers/http'
import {
  startEngine, defaultConfig, makeWorker, connected, barrier, rawWorker, shutdownWorkers, rejection,
  freePort, waitFor, sleep, uid, GENERATIONS,
} from './lib/engine.mjs'

const GEN = GENERATIONS[0] // iii-sdk@0.22.1
const DEFAULT_TIMEOUT = 3000
const ORIGIN = 'http://app.example'

/** The default config plus iii-http on `port` (with `http` merged into its config) and iii-pubsub. */
function httpConfig(ctx, port, http = {}) {
  const cfg = defaultConfig(ctx)
  cfg.workers.push(
    { name: 'iii-http', config: { host: '127.0.0.1', port, default_timeout: DEFAULT_TIMEOUT, ...http } },
    { name: 'iii-pubsub' },
  )
  return cfg
}

/** Starts an engine with iii-http; returns it with `base` (the HTTP server's URL). */
async function startHttpEngine(http) {
  const port = await freePort()
  const engine = await startEngine({ config: (ctx) => httpConfig(ctx, port, http) })
  // The engine is ready once its worker ports answer; wait for the HTTP listener too.
  const base = `http://127.0.0.1:${port}`
  await waitFor(async () => (await fetch(`${base}/e2e-probe`)).status === 404, 5000, 'the HTTP listener')
  return { engine, base }
}

/** fetch with the body read as text (and parsed as JSON when it is JSON). */
async function request(base, path, init = {}) {
  const res = await fetch(base + path, init)
  const text = await res.text()
  let json
  try { json = JSON.parse(text) } catch {}
  return { status: res.status, headers: res.headers, text, json }
}

/** Rejects with a readable error when `p` takes longer than ms. */
function within(p, ms, what) {
  let t
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms) }),
  ])
}

/** A promise with its resolve function. */
function gate() {
  let open
  const p = new Promise((r) => { open = r })
  return { p, open }
}

/** A path segment unique to this run. */
const seg = (p) => uid(p).replace(/[^A-Za-z0-9-]/g, '')

let engine, base
let w // the shared 0.22.1 worker

before(async () => {
  ;({ engine, base } = await startHttpEngine({ cors: { allowed_origins: [ORIGIN] } }))
  w = await makeWorker(GEN, engine.workerUrl, { workerName: 'http-e2e' })
  await connected(w)
})

after(async () => {
  await shutdownWorkers()
  await engine?.cleanup()
})

/** Registers fn and an http trigger for it on `worker`; waits until the engine has both. */
async function route(worker, fn, handler, api_path, http_method, extra = {}, metadata) {
  if (handler) worker.registerFunction(fn, handler)
  const trigger = { type: 'http', function_id: fn, config: { api_path, http_method, ...extra } }
  if (metadata !== undefined) trigger.metadata = metadata
  const t = worker.registerTrigger(trigger)
  await barrier(worker)
  return t
}

describe('http triggers: a route and its handler', () => {
  for (const gen of GENERATIONS) {
    it(`1. [${gen.name}] POST /items/:id: the handler's input, and its {status_code, headers, body} answer`, async () => {
      const g = await makeWorker(gen, engine.workerUrl)
      await connected(g)
      const prefix = seg('g')
      const fn = `api::item::${prefix}`
      const calls = []
      g.registerFunction(fn, async (input, metadata) => {
        calls.push({ input, metadata })
        return {
          status_code: 201,
          headers: { 'X-Item-Id': input.path_params.id, 'Content-Type': 'application/json' },
          body: { ok: true, id: input.path_params.id, echo: input.body },
        }
      })
      const metadata = { route: 'items', gen: gen.name, n: [1, 2] }
      await route(g, fn, null, `/${prefix}/items/:id`, 'POST', {}, metadata)

      const payload = { name: 'x', nested: { list: [1, 'two', null] }, s: 'é✓' }
      const r = await request(base, `/${prefix}/items/42?q=a&q=b&other=1`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Custom-Header': 'Mixed Case' },
        body: JSON.stringify(payload),
      })
      assert.equal(r.status, 201, r.text)
      assert.equal(r.headers.get('x-item-id'), '42')
      assert.match(r.headers.get('content-type'), /^application\/json/)
      assert.deepEqual(r.json, { ok: true, id: '42', echo: payload })

      assert.equal(calls.length, 1)
      const { input } = calls[0]
      assert.deepEqual(input.path_params, { id: '42' })
      assert.deepEqual(input.query_params, { q: 'b', other: '1' }, 'a repeated query key: the last value wins')
      assert.equal(input.path, `/${prefix}/items/:id`, 'path is the registered api_path')
      assert.equal(input.method, 'POST')
      assert.deepEqual(input.body, payload)
      assert.deepEqual(input.trigger, { type: 'http', path: `/${prefix}/items/:id`, method: 'POST' })
      assert.equal(input.headers['x-custom-header'], 'Mixed Case')
      assert.equal(input.headers['content-type'], 'application/json')
      for (const k of Object.keys(input.headers)) assert.equal(k, k.toLowerCase(), `header name ${k} is lower-cased`)
      // The SDK turns the channel refs into its reader and writer objects.
      assert.equal(typeof input.request_body?.readAll, 'function', 'request_body is a channel reader')
      assert.equal(typeof input.response?.sendMessage, 'function', 'response is a channel writer')
      if (gen.name === '0.22.1') {
        assert.deepEqual(calls[0].metadata, metadata, "the trigger's metadata is the handler's second argument")
      }
    })
  }
})

describe('http triggers: the engine\'s answers', () => {
  it('2a. no route: 404 with the JSON envelope; wrong method: 405 with Allow and an empty body', async () => {
    const r = await request(base, `/no/such/${seg('r')}`)
    assert.equal(r.status, 404)
    assert.equal(r.text, '{"error":{"code":"NOT_FOUND","message":"Not Found"}}')
    assert.match(r.headers.get('content-type'), /^application\/json/)

    const p = `/methods/${seg('m')}/:id`
    await route(w, `api::methods::get::${seg()}`, async () => ({ body: 'get' }), p, 'GET')
    await route(w, `api::methods::post::${seg()}`, async () => ({ body: 'post' }), p, 'POST')
    const concrete = p.replace(':id', '1')
    assert.equal((await request(base, concrete)).text, '"get"')
    assert.equal((await request(base, concrete, { method: 'POST' })).text, '"post"')
    const d = await request(base, concrete, { method: 'DELETE' })
    assert.equal(d.status, 405)
    assert.equal(d.headers.get('allow'), 'GET,HEAD,POST')
    assert.equal(d.text, '')
    const only = `/post-only/${seg('p')}`
    await route(w, `api::postonly::${seg()}`, async () => ({ body: 1 }), only, 'POST')
    const g = await request(base, only)
    assert.equal(g.status, 405)
    assert.equal(g.headers.get('allow'), 'POST')
  })

  it('2b. a handler that throws: 500 {"error":{code: invocation_failed, message, error_id}}', async () => {
    const path = `/fail/${seg('f')}`
    const msg = `db down ${uid()}`
    await route(w, `api::fail::${seg()}`, async () => { throw new Error(msg) }, path, 'GET')
    const r = await request(base, path)
    assert.equal(r.status, 500, r.text)
    assert.match(r.headers.get('content-type'), /^application\/json/)
    assert.deepEqual(Object.keys(r.json), ['error'], r.text)
    assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'error_id', 'message'], r.text)
    assert.equal(r.json.error.code, 'invocation_failed')
    assert.equal(r.json.error.message, msg)
    assert.match(r.json.error.error_id, /^[0-9a-f]+$/)
  })

  it('2c. condition_function_id: false answers 422 and skips the handler; true runs it (the condition sees no channels)', async () => {
    const handled = []
    const condInputs = []
    const handler = async (input) => { handled.push(input.path_params.v); return { body: 'ran' } }
    const cond = `api::cond::${seg()}`
    w.registerFunction(cond, async (input) => { condInputs.push(input); return input.path_params.v === 'yes' })
    const path = `/guarded/${seg('c')}/:v`
    await route(w, `api::guarded::${seg()}`, handler, path, 'GET', { condition_function_id: cond })
    const no = await request(base, path.replace(':v', 'no'))
    assert.equal(no.status, 422)
    assert.equal(no.text, '{"error":{"code":"CONDITION_NOT_MET","message":"Request condition not met"},"skipped":true}')
    assert.deepEqual(handled, [], 'the handler ran although the condition answered false')
    const yes = await request(base, path.replace(':v', 'yes') + '?k=1')
    assert.equal(yes.status, 200, yes.text)
    assert.equal(yes.text, '"ran"')
    assert.deepEqual(handled, ['yes'])
    assert.equal(condInputs.length, 2)
    const c = condInputs[1]
    assert.deepEqual(c.path_params, { v: 'yes' })
    assert.deepEqual(c.query_params, { k: '1' })
    assert.equal(c.method, 'GET')
    assert.equal(c.path, path)
    assert.ok(!('request_body' in c) && !('response' in c), `the condition got channels: ${Object.keys(c)}`)
  })

  it(`2d. a handler slower than default_timeout (${DEFAULT_TIMEOUT} ms): 504`, async () => {
    const slow = gate()
    const path = `/slow/${seg('s')}`
    let started = 0
    await route(w, `api::slow::${seg()}`, async () => { started++; await slow.p; return { body: 'late' } }, path, 'GET')
    const t0 = performance.now()
    try {
      const r = await request(base, path)
      const took = performance.now() - t0
      assert.equal(r.status, 504, r.text)
      assert.equal(started, 1)
      assert.ok(took >= DEFAULT_TIMEOUT - 100, `answered after ${took.toFixed(0)} ms, before default_timeout`)
      assert.ok(took < DEFAULT_TIMEOUT + 2000, `answered after ${took.toFixed(0)} ms`)
    } finally {
      slow.open()
    }
  })
})

describe('http triggers: bodies', () => {
  it('3a. a string body: raw with Content-Type text/plain, a JSON string without a content type', async () => {
    const text = `/text/${seg('t')}`
    const json = `/json-string/${seg('j')}`
    await route(w, `api::text::${seg()}`, async () => ({ status_code: 200, headers: { 'Content-Type': 'text/plain' }, body: 'hello "world"' }), text, 'GET')
    await route(w, `api::jsonstr::${seg()}`, async () => ({ body: 'hello' }), json, 'GET')
    const a = await request(base, text)
    assert.equal(a.status, 200)
    assert.equal(a.headers.get('content-type'), 'text/plain')
    assert.equal(a.text, 'hello "world"')
    const b = await request(base, json)
    assert.equal(b.status, 200)
    assert.match(b.headers.get('content-type'), /^application\/json/)
    assert.equal(b.text, '"hello"')
  })

  it('3b. headers as an array of "Name: value" strings repeat Set-Cookie', async () => {
    const path = `/cookies/${seg('k')}`
    await route(w, `api::cookies::${seg()}`, async () => ({
      status_code: 202,
      headers: ['Content-Type: text/plain', 'Set-Cookie: a=1; Path=/', 'Set-Cookie: b=2', 'X-Colon: a:b'],
      body: 'ok',
    }), path, 'GET')
    const r = await request(base, path)
    assert.equal(r.status, 202)
    assert.deepEqual(r.headers.getSetCookie(), ['a=1; Path=/', 'b=2'])
    assert.equal(r.headers.get('x-colon'), 'a:b', 'only the first colon splits name and value')
    assert.equal(r.text, 'ok')
  })

  it('3c. urlencoded and multipart form bodies arrive parsed (files as {filename, content_type, size})', async () => {
    const path = `/form/${seg('f')}`
    const got = []
    await route(w, `api::form::${seg()}`, async (input) => { got.push(input.body); return { body: input.body } }, path, 'POST')
    const u = await request(base, path, { method: 'POST', body: new URLSearchParams([['a', '1'], ['b', 'x y&z'], ['a', '2']]) })
    assert.equal(u.status, 200, u.text)
    assert.deepEqual(got[0], { a: '2', b: 'x y&z' }, 'a repeated field: the last value wins')
    assert.deepEqual(u.json, got[0])

    const fd = new FormData()
    fd.append('title', 'report')
    const file = new Uint8Array(1234).fill(7)
    fd.append('upload', new Blob([file], { type: 'application/pdf' }), 'r.pdf')
    const m = await request(base, path, { method: 'POST', body: fd })
    assert.equal(m.status, 200, m.text)
    assert.deepEqual(got[1], { title: 'report', upload: { filename: 'r.pdf', content_type: 'application/pdf', size: 1234 } })
  })
})

describe('http triggers: middleware', () => {
  let mw // its own engine: global middleware runs on every route
  let mww
  const order = []
  const mwInputs = []
  before(async () => {
    mw = await startHttpEngine({
      // Listed out of order: priority decides (ascending).
      middleware: [{ function_id: 'mw::late', priority: 20 }, { function_id: 'mw::auth', priority: 10 }],
    })
    mww = await makeWorker(GEN, mw.engine.workerUrl, { workerName: 'http-mw-e2e' })
    await connected(mww)
    mww.registerFunction('mw::auth', async (input) => {
      order.push('auth')
      mwInputs.push(input)
      if (!input.request.headers.authorization) {
        return { action: 'respond', response: { status_code: 401, headers: { 'WWW-Authenticate': 'Bearer' }, body: { error: 'no token' } } }
      }
      return { action: 'continue' }
    })
    mww.registerFunction('mw::late', async () => { order.push('late'); return { action: 'continue' } })
    await barrier(mww)
  })
  after(async () => {
    await Promise.race([mww?.shutdown().catch(() => {}), sleep(3000)])
    await mw?.engine.cleanup()
  })

  it('4. global middleware by priority can answer 401 or continue; route middleware runs after the condition, in order, before the handler', async () => {
    const path = `/mw/${seg('m')}/:id`
    mww.registerFunction('mw::cond', async () => { order.push('condition'); return true })
    mww.registerFunction('mw::route-a', async (input) => {
      order.push('route-a')
      if (input.request.headers['x-deny']) return { action: 'respond', response: { status_code: 403, body: { denied: true } } }
      return { action: 'continue' }
    })
    mww.registerFunction('mw::route-b', async () => { order.push('route-b'); return { action: 'continue' } })
    await route(mww, `api::mw::${seg()}`, async () => { order.push('handler'); return { body: { ok: true } } }, path, 'GET',
      { condition_function_id: 'mw::cond', middleware_function_ids: ['mw::route-a', 'mw::route-b'] })
    const url = path.replace(':id', '7') + '?x=1'

    const denied = await request(mw.base, url)
    assert.equal(denied.status, 401, denied.text)
    assert.deepEqual(denied.json, { error: 'no token' })
    assert.equal(denied.headers.get('www-authenticate'), 'Bearer')
    assert.deepEqual(order, ['auth'], 'the first middleware answered: nothing else ran')
    assert.deepEqual(mwInputs[0].phase, 'preHandler')
    assert.deepEqual(mwInputs[0].context, {})
    assert.deepEqual(mwInputs[0].request.path_params, { id: '7' })
    assert.deepEqual(mwInputs[0].request.query_params, { x: '1' })
    assert.equal(mwInputs[0].request.method, 'GET')

    order.length = 0
    const ok = await request(mw.base, url, { headers: { Authorization: 'Bearer t' } })
    assert.equal(ok.status, 200, ok.text)
    assert.deepEqual(ok.json, { ok: true })
    assert.deepEqual(order, ['auth', 'late', 'condition', 'route-a', 'route-b', 'handler'])

    order.length = 0
    const forbidden = await request(mw.base, url, { headers: { Authorization: 'Bearer t', 'X-Deny': '1' } })
    assert.equal(forbidden.status, 403, forbidden.text)
    assert.deepEqual(forbidden.json, { denied: true })
    assert.deepEqual(order, ['auth', 'late', 'condition', 'route-a'], 'a route middleware answered: the rest did not run')
  })
})

describe('http triggers: streaming', () => {
  it('5a. @iii-dev/helpers/http: an SSE response streams chunk by chunk, in order', async () => {
    const path = `/events/${seg('e')}`
    const firstSeen = gate()
    await route(w, `api::sse::${seg()}`, httpHandler(async (req, res) => {
      res.status(200)
      res.headers({ 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-stream': req.query_params.id })
      res.stream.write('data: 1\n\n')
      // Only once the client has read the first event: proves the engine does not buffer.
      await firstSeen.p
      for (let i = 2; i <= 5; i++) res.stream.write(`data: ${i}\n\n`)
      res.stream.end()
    }), path, 'GET')
    try {
      const res = await within(fetch(`${base}${path}?id=s1`), 5000, 'the response head before the handler went on')
      assert.equal(res.status, 200)
      assert.equal(res.headers.get('content-type'), 'text/event-stream')
      assert.equal(res.headers.get('cache-control'), 'no-cache')
      assert.equal(res.headers.get('x-stream'), 's1')
      assert.equal(res.headers.get('transfer-encoding'), 'chunked')
      assert.equal(res.headers.get('content-length'), null)
      const reader = res.body.getReader()
      const dec = new TextDecoder()
      let text = ''
      while (!text.includes('\n\n')) {
        const { value, done } = await within(reader.read(), 5000, 'the first event before the handler went on')
        if (done) break
        text += dec.decode(value, { stream: true })
      }
      assert.equal(text, 'data: 1\n\n')
      firstSeen.open()
      for (;;) {
        const { value, done } = await within(reader.read(), 5000, 'the rest of the stream')
        if (done) break
        text += dec.decode(value, { stream: true })
      }
      assert.equal(text, 'data: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\ndata: 5\n\n')
    } finally {
      firstSeen.open()
    }
  })

  it('5b. @iii-dev/helpers/http: a 300 KiB octet-stream upload is read whole through req.request_body', async () => {
    const path = `/upload/${seg('u')}`
    await route(w, `api::upload::${seg()}`, httpHandler(async (req) => {
      const buf = await req.request_body.readAll()
      return { status_code: 200, body: { bytes: buf.length, sha256: createHash('sha256').update(buf).digest('hex'), body: req.body } }
    }), path, 'POST')
    const data = randomBytes(300 * 1024)
    const r = await request(base, path, { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: data })
    assert.equal(r.status, 200, r.text.slice(0, 500))
    assert.deepEqual(r.json, { bytes: data.length, sha256: createHash('sha256').update(data).digest('hex'), body: null })
  })

  it('5c. @iii-dev/helpers/http: res.status + res.headers + one write (not SSE)', async () => {
    const path = `/accepted/${seg('a')}`
    await route(w, `api::accepted::${seg()}`, httpHandler(async (_req, res) => {
      res.status(202)
      res.headers({ 'content-type': 'application/json', 'x-job': 'j1' })
      res.stream.end(JSON.stringify({ queued: true }))
    }), path, 'POST')
    const r = await request(base, path, { method: 'POST' })
    assert.equal(r.status, 202, r.text)
    assert.equal(r.headers.get('x-job'), 'j1')
    assert.deepEqual(r.json, { queued: true })
  })

  /** A raw worker serving a fresh function behind an http trigger on path; handler(input) answers. */
  async function rawRoute(path, method, handler) {
    const rw = await rawWorker(engine.workerUrl)
    const fn = `raw::http::${seg()}`
    rw.serve({ [fn]: (data) => handler(data) })
    const id = uid('trg')
    rw.send({ type: 'registertrigger', id, trigger_type: 'http', function_id: fn, config: { api_path: path, http_method: method } })
    await rw.roundTrip()
    return rw
  }

  /**
   * Opens a channel end from a handler's input ref, as the SDKs do; binary frames are collected
   * from the start (they may arrive in the same read as the upgrade answer).
   */
  async function channelEnd(ref) {
    const ws = new WebSocket(`${engine.workerUrl}/ws/channels/${ref.channel_id}?key=${encodeURIComponent(ref.access_key)}&dir=${ref.direction}`)
    const chunks = []
    ws.on('message', (d, binary) => { if (binary) chunks.push(d) })
    const closed = new Promise((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })))
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    return { ws, chunks, closed }
  }

  it('5d. raw protocol: request_body (read) and response (write) refs; set_status, set_headers, binary frames, close', async () => {
    const path = `/raw/${seg('r')}`
    const inputs = []
    const rw = await rawRoute(path, 'PUT', async (input) => {
      inputs.push(input)
      const body = await channelEnd(input.request_body)
      const end = await body.closed
      assert.equal(end.code, 1000, `request_body closed with ${end.code} ${end.reason}`)
      const got = Buffer.concat(body.chunks).toString()
      const out = await channelEnd(input.response)
      out.ws.send(JSON.stringify({ type: 'set_status', status_code: 202 }))
      out.ws.send(JSON.stringify({ type: 'set_headers', headers: { 'content-type': 'text/plain', 'x-raw': 'yes' } }))
      for (const part of ['got:', got.length.toString(), ':', got.toUpperCase()]) out.ws.send(Buffer.from(part), { binary: true })
      out.ws.close(1000, 'channel_close')
      await out.closed
      return null
    })
    try {
      const r = await request(base, path, { method: 'PUT', headers: { 'Content-Type': 'text/plain' }, body: 'abc'.repeat(1000) })
      assert.equal(r.status, 202, r.text.slice(0, 300))
      assert.equal(r.headers.get('content-type'), 'text/plain')
      assert.equal(r.headers.get('x-raw'), 'yes')
      assert.equal(r.text, `got:3000:${'ABC'.repeat(1000)}`)
      const i = inputs[0]
      assert.equal(i.body, null, 'a text/plain body streams: body is null')
      assert.equal(i.request_body.direction, 'read')
      assert.equal(i.response.direction, 'write')
      for (const ref of [i.request_body, i.response]) {
        assert.deepEqual(Object.keys(ref).sort(), ['access_key', 'channel_id', 'direction'])
      }
    } finally {
      rw.close()
    }
  })

  it('5e. raw protocol: status and headers only, the channel closed before the handler answers null', async () => {
    // Upstream v0.22.1 ends its wait for the response channel when the channel closes, whatever
    // the order of the close and the handler's answer. With @iii-dev/helpers/http the same order
    // comes from `res.status(204); res.stream.end(); await finished(res.stream)`: the close frame
    // often reaches the engine before the invocation result.
    const path = `/no-content/${seg('n')}`
    const rw = await rawRoute(path, 'DELETE', async (input) => {
      const out = await channelEnd(input.response)
      out.ws.send(JSON.stringify({ type: 'set_status', status_code: 204 }))
      out.ws.send(JSON.stringify({ type: 'set_headers', headers: { 'x-deleted': '1' } }))
      out.ws.close(1000, 'channel_close')
      await out.closed
      await sleep(100) // the engine has seen the close before the answer below
      return null
    })
    try {
      const t0 = performance.now()
      const r = await request(base, path, { method: 'DELETE' })
      const took = performance.now() - t0
      assert.equal(r.status, 204, `status ${r.status} after ${took.toFixed(0)} ms: ${r.text}`)
      assert.equal(r.headers.get('x-deleted'), '1')
      assert.equal(r.text, '')
      assert.ok(took < DEFAULT_TIMEOUT, `answered after ${took.toFixed(0)} ms`)
    } finally {
      rw.close()
    }
  })
})

describe('http triggers: CORS', () => {
  it(`6. allowed_origins [${ORIGIN}]: preflight 200 with Access-Control-Allow-Origin; the allowed origin gets it, another none`, async () => {
    const path = `/cors/${seg('c')}`
    await route(w, `api::cors::${seg()}`, async () => ({ body: 'cors' }), path, 'POST')
    const pre = await request(base, path, {
      method: 'OPTIONS',
      headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,x-token' },
    })
    assert.equal(pre.status, 200, pre.text)
    assert.equal(pre.headers.get('access-control-allow-origin'), ORIGIN)
    assert.ok(pre.headers.get('access-control-allow-methods'), 'Access-Control-Allow-Methods')
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /x-token/i)

    const ok = await request(base, path, { method: 'POST', headers: { Origin: ORIGIN } })
    assert.equal(ok.status, 200)
    assert.equal(ok.text, '"cors"')
    assert.equal(ok.headers.get('access-control-allow-origin'), ORIGIN)

    const other = await request(base, path, { method: 'POST', headers: { Origin: 'http://evil.example' } })
    assert.equal(other.status, 200, 'CORS is for browsers: the request itself is served')
    assert.equal(other.headers.get('access-control-allow-origin'), null)
    const otherPre = await request(base, path, { method: 'OPTIONS', headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST' } })
    assert.equal(otherPre.headers.get('access-control-allow-origin'), null)

    const none = await request(base, path, { method: 'POST' })
    assert.equal(none.headers.get('access-control-allow-origin'), null, 'no Origin, no CORS headers')
  })
})

describe('http triggers: routes follow the triggers', () => {
  it('7. unregistering the trigger, or the worker disconnecting, makes the route 404', async () => {
    const g = await makeWorker(GEN, engine.workerUrl)
    await connected(g)
    const fn = `api::gone::${seg()}`
    const a = `/gone-a/${seg('a')}`
    const b = `/gone-b/${seg('b')}`
    const ta = await route(g, fn, async () => ({ body: 'here' }), a, 'GET')
    await route(g, fn, null, b, 'GET')
    assert.equal((await request(base, a)).text, '"here"')
    assert.equal((await request(base, b)).text, '"here"')

    ta.unregister()
    await barrier(g)
    const ra = await request(base, a)
    assert.equal(ra.status, 404, ra.text)
    assert.equal(ra.text, '{"error":{"code":"NOT_FOUND","message":"Not Found"}}')
    assert.equal((await request(base, b)).status, 200, 'the other trigger of the function still routes')

    await g.shutdown()
    await waitFor(async () => (await request(base, b)).status === 404, 5000, 'the route of a disconnected worker to go')
  })
})

describe('iii-pubsub', () => {
  it('8. publish reaches every subscriber of the topic once, with exactly `data`; an empty topic is refused', async () => {
    const w011 = await makeWorker(GENERATIONS[1], engine.workerUrl)
    await connected(w011)
    const topic = `news-${seg()}`
    const a = []
    const b = []
    const other = []
    const fa = `sub::a::${seg()}`
    const fb = `sub::b::${seg()}`
    const fo = `sub::other::${seg()}`
    w.registerFunction(fa, async (d) => { a.push(d) })
    w.registerFunction(fo, async (d) => { other.push(d) })
    w011.registerFunction(fb, async (d) => { b.push(d) })
    w.registerTrigger({ type: 'subscribe', function_id: fa, config: { topic } })
    w.registerTrigger({ type: 'subscribe', function_id: fo, config: { topic: `${topic}-other` } })
    w011.registerTrigger({ type: 'subscribe', function_id: fb, config: { topic } })
    await barrier(w)
    await barrier(w011)

    const data = { headline: 'hi', n: 1, list: [1, 'two', null] }
    const r = await w.trigger({ function_id: 'publish', payload: { topic, data } })
    assert.equal(r ?? null, null, `publish answered ${JSON.stringify(r)}`)
    await waitFor(() => a.length >= 1 && b.length >= 1, 5000, 'both subscribers')
    await sleep(300)
    assert.deepEqual(a, [data])
    assert.deepEqual(b, [data])
    assert.deepEqual(other, [], 'a subscriber of another topic got the message')

    const e = await rejection(w.trigger({ function_id: 'publish', payload: { topic: '', data: 1 } }), 'publish with an empty topic')
    assert.equal(e.code, 'topic_not_set', `${e.code}: ${e.message}`)
  })
})
