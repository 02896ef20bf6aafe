// Real nats-server processes for the cluster tests: bin/nats-server, built from the module in
// go.mod (go build -o bin/nats-server github.com/nats-io/nats-server/v2), on free ports, each
// with its own temp store dir.
import { appendFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { REPO_DIR, canConnect, freePort, sleep, spawnLogged, waitFor } from './engine.mjs'

// E2E_NATS_BIN points the suite at another nats-server binary.
export const NATS_BIN = process.env.E2E_NATS_BIN ?? path.join(REPO_DIR, 'bin', 'nats-server')

/**
 * n distinct free ports from the harness's freePort(). It closes its listener before it returns,
 * so two calls can hand out the same port; a server's ports must differ, and so must a cluster's.
 */
export async function freePorts(n) {
  const ports = new Set()
  while (ports.size < n) ports.add(await freePort())
  return [...ports]
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
 * Returns {port, url, httpPort, clusterPort, storeDir, pid, logs(), stop(), kill(), cleanup(),
 * healthz(), monitor(path)}.
 */
export async function startNats(opts = {}) {
  if (!existsSync(NATS_BIN)) {
    throw new Error(`${NATS_BIN} not found: build it first (cd ${REPO_DIR} && go build -o bin/nats-server github.com/nats-io/nats-server/v2)`)
  }
  const jetstream = opts.jetstream ?? true
  const dir = mkdtempSync(path.join(os.tmpdir(), 'iii-e2e-nats-'))
  const storeDir = path.join(dir, 'store')
  const logFile = path.join(dir, 'nats.log')
  const free = opts.port && opts.httpPort ? [] : await freePorts(2)
  const port = opts.port ?? free[0]
  const httpPort = opts.httpPort ?? free[1]
  const args = ['-a', '127.0.0.1', '-p', String(port), '-m', String(httpPort)]
  if (jetstream) args.push('-js', '-sd', storeDir)
  if (opts.serverName) args.push('--server_name', opts.serverName)
  if (opts.cluster) {
    args.push('--cluster_name', opts.cluster.name, '--cluster', `nats://127.0.0.1:${opts.cluster.port}`)
    if (opts.cluster.routes?.length) args.push('--routes', opts.cluster.routes.map((p) => `nats://127.0.0.1:${p}`).join(','))
  }

  let child

  async function launch() {
    appendFileSync(logFile, `--- start ${new Date().toISOString()} ${NATS_BIN} ${args.join(' ')}\n`)
    child = spawnLogged(NATS_BIN, args, { cwd: dir, logFile, label: `nats-server on ${port}`, echoEnv: 'E2E_NATS_LOGS' })
    const { exited, output: out } = child
    const deadline = Date.now() + 20000
    let gone
    exited.then((r) => { gone = r })
    while (!(await canConnect(port))) {
      if (gone) throw new Error(`nats-server exited before it accepted connections (code=${gone.code} signal=${gone.signal}):\n${out().slice(-3000)}`)
      if (Date.now() > deadline) throw new Error(`nats-server not accepting connections on ${port} after 20 s:\n${out().slice(-3000)}`)
      await sleep(25)
    }
    if (jetstream && (opts.waitHealthy ?? true)) await server.waitHealthy(deadline - Date.now())
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
    get pid() { return child.proc.pid },
    get exited() { return child.exited },
    get running() { return child.proc.exitCode === null && child.proc.signalCode === null },
    logs: () => child.output(),
    /** The /healthz answer ({status, body}). */
    healthz: () => httpGet(httpPort, '/healthz'),
    /** The body of a monitoring endpoint's answer, e.g. monitor('/connz?limit=1000'). */
    monitor: async (p) => (await httpGet(httpPort, p)).body,
    /** Wait until /healthz answers 200 (JetStream up; in a cluster, in contact with a meta leader). */
    waitHealthy: (timeoutMs = 20000) =>
      waitFor(async () => (await server.healthz()).status === 200, timeoutMs, `nats-server ${port} healthy`, 100),
    /** Send `signal`, wait for exit (SIGKILL after 10 s). */
    stop: (signal) => child.stop(signal),
    kill() { return server.stop('SIGKILL') },
    async cleanup() {
      await server.stop()
      if (!process.env.E2E_KEEP) rmSync(dir, { recursive: true, force: true })
    },
  }
  await launch()
  return server
}

/**
 * Start a JetStream cluster of `size` servers (default 3) routed to each other. Resolves once
 * every server is healthy (a meta leader is elected). Returns {servers, urls (comma-separated
 * client URLs), cleanup()}.
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
