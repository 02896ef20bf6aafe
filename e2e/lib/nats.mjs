// Real nats-server processes for the cluster tests: bin/nats-server, built from the module in
// go.mod (go build -o bin/nats-server github.com/nats-io/nats-server/v2), on free ports, each
// with its own temp store dir.
import { spawn } from 'node:child_process'
import { appendFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { REPO_DIR, freePort, sleep, stopProcess } from './engine.mjs'

// E2E_NATS_BIN points the suite at another nats-server binary.
export const NATS_BIN = process.env.E2E_NATS_BIN ?? path.join(REPO_DIR, 'bin', 'nats-server')

const live = new Set()
process.on('exit', () => {
  for (const p of live) {
    try { p.kill('SIGKILL') } catch {}
  }
})

/**
 * n distinct free ports from the harness's freePort(). It closes its listener before it returns,
 * so two calls can hand out the same port; a server's ports must differ, and so must a cluster's.
 */
export async function freePorts(n) {
  const ports = new Set()
  while (ports.size < n) ports.add(await freePort())
  return [...ports]
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

/** GET http://127.0.0.1:port/path -> {status, body} (body parsed as JSON when it is). */
async function httpGet(port, p) {
  const res = await fetch(`http://127.0.0.1:${port}${p}`, { signal: AbortSignal.timeout(2000) })
  const text = await res.text()
  let body = text
  try { body = JSON.parse(text) } catch {}
  return { status: res.status, body }
}

/**
 * Start one nats-server.
 * opts.jetstream (default true): -js with a store dir of its own.
 * opts.port / opts.httpPort: client and monitoring ports (default: free ones).
 * opts.cluster: {name, port, routes: [ports]} to join a cluster of servers.
 * opts.serverName: --server_name.
 * Resolves once the client port accepts connections (and, with JetStream, /healthz is ok
 * when opts.waitHealthy is not false).
 * Returns {port, url, httpPort, clusterPort, storeDir, pid, logs(), stop(), kill(), restart(),
 * cleanup(), healthz()}.
 */
export async function startNats(opts = {}) {
  if (!existsSync(NATS_BIN)) {
    throw new Error(`${NATS_BIN} not found: build it first (cd ${REPO_DIR} && go build -o bin/nats-server github.com/nats-io/nats-server/v2)`)
  }
  const jetstream = opts.jetstream ?? true
  const dir = mkdtempSync(path.join(os.tmpdir(), 'iii-e2e-nats-'))
  const storeDir = path.join(dir, 'store')
  const logFile = path.join(dir, 'nats.log')
  const [p1, p2] = await freePorts(2)
  const port = opts.port ?? p1
  const httpPort = opts.httpPort ?? p2
  const args = ['-a', '127.0.0.1', '-p', String(port), '-m', String(httpPort)]
  if (jetstream) args.push('-js', '-sd', storeDir)
  if (opts.serverName) args.push('--server_name', opts.serverName)
  if (opts.cluster) {
    args.push('--cluster_name', opts.cluster.name, '--cluster', `nats://127.0.0.1:${opts.cluster.port}`)
    if (opts.cluster.routes?.length) args.push('--routes', opts.cluster.routes.map((p) => `nats://127.0.0.1:${p}`).join(','))
  }

  let proc
  let out = ''
  let exited
  let stopping = false

  async function spawnOnce({ waitHealthy = opts.waitHealthy ?? true } = {}) {
    out = ''
    stopping = false
    appendFileSync(logFile, `--- start ${new Date().toISOString()} ${NATS_BIN} ${args.join(' ')}\n`)
    proc = spawn(NATS_BIN, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
    live.add(proc)
    const onData = (chunk) => {
      const s = chunk.toString()
      out += s
      if (out.length > 2_000_000) out = out.slice(-1_000_000)
      try { appendFileSync(logFile, s) } catch {} // the dir may be gone after cleanup()
      if (process.env.E2E_NATS_LOGS) process.stderr.write(`[nats ${port}] ${s}`)
    }
    proc.stdout.on('data', onData)
    proc.stderr.on('data', onData)
    const p = proc
    exited = new Promise((resolve) => {
      p.once('exit', (code, signal) => {
        live.delete(p)
        if (!stopping) process.stderr.write(`[e2e] nats-server on ${port} exited unexpectedly code=${code} signal=${signal}; log: ${logFile}\n${out.slice(-2000)}\n`)
        resolve({ code, signal })
      })
    })
    const deadline = Date.now() + 20000
    let gone
    exited.then((r) => { gone = r })
    while (!(await canConnect(port))) {
      if (gone) throw new Error(`nats-server exited before it accepted connections (code=${gone.code} signal=${gone.signal}):\n${out.slice(-3000)}`)
      if (Date.now() > deadline) throw new Error(`nats-server not accepting connections on ${port} after 20 s:\n${out.slice(-3000)}`)
      await sleep(25)
    }
    if (jetstream && waitHealthy) await server.waitHealthy(deadline - Date.now())
  }

  const server = {
    port,
    httpPort,
    clusterPort: opts.cluster?.port,
    serverName: opts.serverName,
    url: `nats://127.0.0.1:${port}`,
    dir,
    storeDir,
    logFile,
    get pid() { return proc.pid },
    get exited() { return exited },
    get running() { return proc.exitCode === null && proc.signalCode === null },
    logs: () => out,
    /** The /healthz answer ({status, body}). */
    healthz: () => httpGet(httpPort, '/healthz'),
    /** The /jsz answer body. */
    jsz: async () => (await httpGet(httpPort, '/jsz')).body,
    /** Wait until /healthz answers 200 (JetStream up; in a cluster, in contact with a meta leader). */
    async waitHealthy(timeoutMs = 20000) {
      const deadline = Date.now() + timeoutMs
      let last
      for (;;) {
        try {
          last = await server.healthz()
          if (last.status === 200) return
        } catch (e) {
          last = e
        }
        if (Date.now() > deadline) throw new Error(`nats-server ${port} not healthy after ${timeoutMs} ms: ${JSON.stringify(last?.body ?? String(last))}`)
        await sleep(100)
      }
    },
    /** Send `signal`, wait for exit (SIGKILL after 10 s). */
    async stop(signal = 'SIGTERM') {
      if (!server.running) return exited
      stopping = true
      return stopProcess(proc, exited, signal)
    },
    kill() { return server.stop('SIGKILL') },
    /** Start again with the same ports and store dir. */
    async restart(o) {
      await server.stop()
      await spawnOnce(o)
      return server
    },
    async cleanup() {
      await server.stop()
      if (!process.env.E2E_KEEP) rmSync(dir, { recursive: true, force: true })
    },
  }
  await spawnOnce()
  return server
}

/**
 * Start a JetStream cluster of `size` servers (default 3) routed to each other. Resolves once
 * every server is healthy (a meta leader is elected). Returns {servers, urls (comma-separated
 * client URLs), stop(), cleanup()}.
 */
export async function startNatsCluster(size = 3, { name = `iii-e2e-${process.pid}` } = {}) {
  // Every port of every server up front, all distinct: client, monitoring and route ports.
  const ports = await freePorts(3 * size)
  const clusterPorts = ports.slice(2 * size)
  // Start them together: a JetStream server waits for its peers before it is healthy.
  const results = await Promise.allSettled(clusterPorts.map((cp, i) => startNats({
    serverName: `${name}-n${i + 1}`,
    port: ports[2 * i],
    httpPort: ports[2 * i + 1],
    cluster: { name, port: cp, routes: clusterPorts.filter((p) => p !== cp) },
    waitHealthy: false,
  })))
  const servers = results.filter((r) => r.status === 'fulfilled').map((r) => r.value)
  const failed = results.find((r) => r.status === 'rejected')
  const cluster = {
    servers,
    get urls() { return servers.map((s) => s.url).join(',') },
    async stop() { await Promise.all(servers.map((s) => s.stop())) },
    async cleanup() { await Promise.all(servers.map((s) => s.cleanup())) },
  }
  if (failed) {
    await cluster.cleanup()
    throw failed.reason
  }
  try {
    await Promise.all(servers.map((s) => s.waitHealthy(30000)))
  } catch (e) {
    await cluster.cleanup()
    throw e
  }
  return cluster
}
