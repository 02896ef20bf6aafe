// The command line as a new user meets it: overriding addresses without a config file, what a
// taken port says, where a YAML mistake is reported, and --help on every sub-command.
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { III_BIN, freePort, rawWorker, runIII, waitFor } from './lib/engine.mjs'

const dir = mkdtempSync(path.join(os.tmpdir(), 'iii-cli-'))
after(() => rmSync(dir, { recursive: true, force: true }))

/** Starts bin/iii with args/env in dir; resolves once it logged "ready". */
async function startIII(args, env = {}) {
  const p = spawn(III_BIN, args, { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  p.stdout.on('data', (c) => { out += c })
  p.stderr.on('data', (c) => { out += c })
  const exited = new Promise((r) => p.once('exit', (code) => r(code)))
  await waitFor(() => /msg=ready/.test(out), 10000, `ready from iii ${args.join(' ')}:\n${out}`)
  return { out: () => out, signal: (sig) => p.kill(sig), stop: async (sig = 'SIGTERM') => { p.kill(sig); return exited } }
}

/** Holds a TCP port, as another program would. */
async function holdPort() {
  const srv = net.createServer()
  await new Promise((r) => srv.listen(0, '0.0.0.0', r))
  return { port: srv.address().port, close: () => new Promise((r) => srv.close(r)) }
}

describe('addresses without a config file', () => {
  it('--port, --stream-port and --host move the embedded default\'s listeners', async () => {
    const port = await freePort()
    const streamPort = await freePort()
    const e = await startIII(['--port', String(port), '--stream-port', String(streamPort), '--host', '127.0.0.1', '--data-dir', path.join(dir, 'a')])
    try {
      assert.match(e.out(), new RegExp(`worker listener bound" addr=127\\.0\\.0\\.1:${port}`))
      assert.match(e.out(), new RegExp(`stream listener bound" addr=127\\.0\\.0\\.1:${streamPort}`))
      const w = await rawWorker(`ws://127.0.0.1:${port}`)
      w.close()
    } finally {
      assert.equal(await e.stop(), 0)
    }
  })

  it('III_PORT and III_STREAM_PORT do the same; a flag wins over its variable', async () => {
    const [envPort, flagPort, streamPort] = [await freePort(), await freePort(), await freePort()]
    const e = await startIII(['--port', String(flagPort), '--data-dir', path.join(dir, 'b')], { III_PORT: String(envPort), III_STREAM_PORT: String(streamPort) })
    try {
      assert.match(e.out(), new RegExp(`worker listener bound" addr=0\\.0\\.0\\.0:${flagPort}`))
      assert.match(e.out(), new RegExp(`stream listener bound" addr=0\\.0\\.0\\.0:${streamPort}`))
    } finally {
      await e.stop()
    }
  })

  it('a taken port names the address and the flag that moves it', async () => {
    const held = await holdPort()
    try {
      const r = await runIII(['--port', String(held.port), '--stream-port', String(await freePort()), '--data-dir', path.join(dir, 'c')])
      assert.equal(r.code, 1)
      assert.match(r.stderr, new RegExp(`cannot listen on 0\\.0\\.0\\.0:${held.port} \\(worker listener\\): .*address already in use \\(choose another with --port or III_PORT\\)`))
      const s = await runIII(['--port', String(await freePort()), '--stream-port', String(held.port), '--data-dir', path.join(dir, 'c')])
      assert.equal(s.code, 1)
      assert.match(s.stderr, /\(stream port\).*choose another with --stream-port or III_STREAM_PORT/)
    } finally {
      await held.close()
    }
  })

  it('a bad port value is a usage error', async () => {
    const r = await runIII(['--port', '70000'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /--port \(or III_PORT\) must be a port number from 0 to 65535, got "70000"/)
  })
})

describe('one engine per data directory', () => {
  it('a second engine on the same data directory is refused, naming the directory and the holder\'s pid', async () => {
    const data = path.join(dir, 'shared')
    const a = await startIII(['--port', String(await freePort()), '--stream-port', String(await freePort()), '--data-dir', data])
    try {
      const pid = /pid=(\d+)/.exec(a.out())?.[1]
      const r = await runIII(['--port', String(await freePort()), '--stream-port', String(await freePort()), '--data-dir', data])
      assert.equal(r.code, 1)
      assert.match(r.stderr, /log directory is in use by another engine \(pid \d+\); run one engine per data directory/)
      assert.ok(r.stderr.includes(path.join(data, 'log')), r.stderr)
      if (pid) assert.ok(r.stderr.includes(`pid ${pid}`))
      // iii replay reads next to the running engine.
      const rep = await runIII(['replay', '--data-dir', data, '--format', 'json', '--limit', '1'])
      assert.equal(rep.code, 0, rep.stderr)
      assert.match(rep.stdout, /"kind":"engine.started"/)
    } finally {
      assert.equal(await a.stop(), 0)
    }
  })
})

describe('graceful shutdown', () => {
  it('SIGTERM stops accepting, lets a call in flight finish, then exits 0; a second signal exits at once', async () => {
    const port = await freePort()
    const e = await startIII(['--port', String(port), '--stream-port', String(await freePort()), '--data-dir', path.join(dir, 'g')])
    const w = await rawWorker(`ws://127.0.0.1:${port}`)
    w.serve({ 'slow::op': async () => { await new Promise((r) => setTimeout(r, 600)); return { done: true } } })
    await w.roundTrip()
    const c = await rawWorker(`ws://127.0.0.1:${port}`)
    const pending = c.call('slow::op', {}, { timeoutMs: 5000 })
    await waitFor(() => w.served.length === 1, 3000, 'the call to reach its worker')
    const t0 = Date.now()
    const exited = e.stop()
    // The signal is handled within moments, well before the 600 ms call ends.
    const refused = async () => {
      try { (await rawWorker(`ws://127.0.0.1:${port}`)).close(); return false } catch { return true }
    }
    await waitFor(refused, 400, 'new connections refused while the call runs', 20)
    await assert.rejects(rawWorker(`ws://127.0.0.1:${port}`), 'a new connection was accepted while shutting down')
    const r = await pending
    assert.deepEqual(r.result, { done: true }, JSON.stringify(r))
    assert.equal(await exited, 0)
    assert.ok(Date.now() - t0 >= 400, 'the engine did not wait for the call')

    const port2 = await freePort()
    const e2 = await startIII(['--port', String(port2), '--stream-port', String(await freePort()), '--data-dir', path.join(dir, 'g2')])
    const hang = await rawWorker(`ws://127.0.0.1:${port2}`)
    hang.serve({ 'hang::op': () => new Promise(() => {}) })
    await hang.roundTrip()
    const c2 = await rawWorker(`ws://127.0.0.1:${port2}`)
    c2.send({ type: 'invokefunction', invocation_id: 'h1', function_id: 'hang::op', data: {} })
    await waitFor(() => hang.served.length === 1, 3000, 'the call to reach its worker')
    e2.signal('SIGTERM')
    await new Promise((r) => setTimeout(r, 200))
    const t1 = Date.now()
    const code = await e2.stop('SIGINT')
    assert.equal(code, 1)
    assert.ok(Date.now() - t1 < 2000, 'a second signal did not exit at once')
    assert.match(e2.out(), /second signal: exiting at once/)
  })
})

describe('YAML mistakes', () => {
  const cases = [
    ['a tab in the indentation', 'workers:\n  - name: iii-worker-manager\n\t  config: {}\n', 'bad1.yaml:3:1: found a tab character that violates indentation'],
    ['a mis-indented key', 'workers:\n  - name: iii-worker-manager\n    config:\n      port: 1\n     host: x\n', 'bad2.yaml:5:6: did not find expected key'],
    ['an unclosed list', 'workers:\n  - name: iii-worker-manager\n    config:\n      port: 1\n      host: [a\n  - name: iii-stream\n', 'bad3.yaml:5:7: did not find expected \',\' or \']\''],
  ]
  cases.forEach(([what, text, want], i) => {
    it(`${what} is reported at its own line and column`, async () => {
      const file = path.join(dir, `bad${i + 1}.yaml`)
      writeFileSync(file, text)
      const r = await runIII(['--config', file])
      assert.equal(r.code, 1)
      assert.equal(r.stderr.trim(), `iii: ${path.join(dir, want)}`)
    })
  })
})

describe('--help', () => {
  for (const [args, first] of [
    [['--help'], 'usage: iii [flags]'],
    [['trigger', '--help'], 'usage:\n  iii trigger <function_id>'],
    [['replay', '--help'], 'usage:\n  iii replay'],
    [['bench', '--help'], 'usage:\n  iii bench'],
  ]) {
    it(`iii ${args.join(' ')} prints its usage and exits 0`, async () => {
      const r = await runIII(args)
      assert.equal(r.code, 0, r.stderr)
      assert.ok(r.stdout.startsWith(first), r.stdout)
    })
  }
})
