// ISSUE "engine core", items 10 (/otel) and 11 (`iii trigger`).
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  startEngine, rawClient, rawWorker, makeWorker, connected, barrier, shutdownWorkers, spawnChild,
  runIII, GENERATIONS,
} from './lib/engine.mjs'

let engine
before(async () => { engine = await startEngine() })
after(async () => {
  await shutdownWorkers()
  await engine?.cleanup()
})

describe('10. /otel', () => {
  for (const gen of GENERATIONS) {
    it(`iii-sdk@${gen.name} Logger (OTel on) logs without client-side errors`, async () => {
      const child = spawnChild({ mode: 'logger', gen: gen.name, url: engine.workerUrl, fn: `e2e::otel::${gen.name}` })
      try {
        await child.waitLine(/^SHUTDOWN$/, 20000)
        const { code } = await child.exited
        const all = child.stdout() + child.stderr()
        assert.equal(code, 0, all)
        assert.ok(child.lines.includes('OK'), all)
        assert.ok(/\[OTel\] Connected to engine at ws:\/\/127\.0\.0\.1:\d+\/otel/.test(child.stdout()), `the /otel socket never connected:\n${all}`)
        const bad = all.split('\n').filter((l) => /\[OTel\] WebSocket error|Failed|Unexpected server response|\[OTel\] Disconnected|Error exporting|\[iii\] /.test(l) && !/Worker registered with ID/.test(l))
        assert.deepEqual(bad, [], `client-side error output:\n${bad.join('\n')}`)
      } finally {
        await child.kill()
      }
    })
  }

  it('raw /otel: upgrade accepted, no workerregistered, binary telemetry and text frames swallowed', async () => {
    const o = await rawClient(`${engine.workerUrl}/otel`)
    const logs = JSON.stringify({ resourceLogs: [{ resource: { attributes: [] }, scopeLogs: [{ logRecords: [{ timeUnixNano: '1', severityNumber: 9, body: { stringValue: 'raw otel log' } }] }] }] })
    o.sendRaw(Buffer.concat([Buffer.from('LOGS'), Buffer.from(logs)]), true)
    o.sendRaw(Buffer.concat([Buffer.from('OTLP'), Buffer.from('{"resourceSpans":[]}')]), true)
    o.sendRaw(Buffer.concat([Buffer.from('MTRC'), Buffer.from('{"resourceMetrics":[]}')]), true)
    o.sendRaw(Buffer.from('XXXXgarbage'), true)
    o.sendRaw('text on otel is ignored')
    await o.none(() => true, 500, 'any frame on /otel')
    assert.equal(o.frames.length, 0, 'the engine never writes to /otel')
    assert.ok(o.isOpen, '/otel socket must stay open')
    // /otel with a query string works too.
    const q = await rawClient(`${engine.workerUrl}/otel?token=abc`)
    await q.none(() => true, 200)
    q.close(); o.close()
  })

  it('raw: telemetry binaries on / are consumed without a reply', async () => {
    const c = await rawWorker(engine.workerUrl)
    c.sendRaw(Buffer.concat([Buffer.from('LOGS'), Buffer.from('{"resourceLogs":[]}')]), true)
    c.sendRaw(Buffer.concat([Buffer.from('MTRC'), Buffer.from('{"resourceMetrics":[]}')]), true)
    await c.none(() => true, 300, 'reply to telemetry on /')
    await c.roundTrip()
    c.close()
  })

  it('unknown HTTP paths get 404, no upgrade', async () => {
    await assert.rejects(rawClient(`${engine.workerUrl}/nope`), /404/)
  })
})

describe('11. iii trigger', () => {
  before(async () => {
    const w = await makeWorker(GENERATIONS[0], engine.workerUrl, { workerName: 'cli-target' })
    w.registerFunction('e2e::cli::echo', async (d) => {
      const { _caller_worker_id, ...rest } = d ?? {}
      return { got: rest, had_caller: typeof _caller_worker_id === 'string' }
    })
    w.registerFunction('e2e::cli::throws', async () => { throw new Error('cli boom') })
    await connected(w)
    await barrier(w)
  })

  const addr = () => ['--address', '127.0.0.1', '--port', String(engine.workerPort)]

  it('--json prints the JSON result and exits 0', async () => {
    const r = await runIII(['trigger', 'e2e::cli::echo', '--json', '{"a":1,"nested":{"b":[true,null]},"s":"é"}', ...addr()])
    assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
    let out
    assert.doesNotThrow(() => { out = JSON.parse(r.stdout) }, `stdout is not JSON: ${r.stdout}`)
    assert.deepEqual(out, { got: { a: 1, nested: { b: [true, null] }, s: 'é' }, had_caller: true })
  })

  it('k=v arguments build the payload', async () => {
    const r = await runIII(['trigger', 'e2e::cli::echo', 'name=bob', 'n=1', ...addr()])
    assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
    const out = JSON.parse(r.stdout)
    assert.equal(out.got.name, 'bob')
    assert.ok(out.got.n === 1 || out.got.n === '1', `n=${JSON.stringify(out.got.n)}`)
    assert.deepEqual(Object.keys(out.got).sort(), ['n', 'name'])
  })

  it('unknown function: code and message on stderr, non-zero exit', async () => {
    const r = await runIII(['trigger', 'e2e::cli::missing', '--json', '{}', ...addr()])
    assert.notEqual(r.code, 0, `should fail\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
    assert.match(r.stderr, /function_not_found/)
    assert.match(r.stderr, /e2e::cli::missing/)
  })

  it('handler error: invocation_failed and its message on stderr, non-zero exit', async () => {
    const r = await runIII(['trigger', 'e2e::cli::throws', '--json', '{}', ...addr()])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /invocation_failed/)
    assert.match(r.stderr, /cli boom/)
  })

  it('built-ins work from the CLI', async () => {
    const r = await runIII(['trigger', 'stream::get', '--json', '{"stream_name":"cli","group_id":"g","item_id":"none"}', ...addr()])
    assert.equal(r.code, 0, r.stderr)
    const s = await runIII(['trigger', 'stream::set', '--json', '{"stream_name":"cli","group_id":"g","item_id":"i","data":{"v":1}}', ...addr()])
    assert.equal(s.code, 0, s.stderr)
    assert.deepEqual(JSON.parse(s.stdout), { old_value: null, new_value: { v: 1 } })
  })

  it('no engine listening: non-zero exit with a message', async () => {
    const r = await runIII(['trigger', 'x::y', '--address', '127.0.0.1', '--port', '1', '--timeout-ms', '2000'])
    assert.notEqual(r.code, 0)
    assert.ok(r.stderr.trim().length > 0)
  })

  it('--timeout-ms bounds the wait', async () => {
    const w = await makeWorker(GENERATIONS[0], engine.workerUrl)
    w.registerFunction('e2e::cli::slow', () => new Promise(() => {}))
    await connected(w); await barrier(w)
    const t0 = Date.now()
    const r = await runIII(['trigger', 'e2e::cli::slow', '--json', '{}', '--timeout-ms', '1000', ...addr()])
    assert.notEqual(r.code, 0)
    assert.ok(Date.now() - t0 < 8000, 'timeout not honoured')
  })
})
