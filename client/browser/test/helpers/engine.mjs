// Starts the real engine binary (bin/iii) for the tests, on free loopback ports.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..')

/** Path of the engine binary: $III_BIN or <repo>/bin/iii. */
export const engineBinary = process.env.III_BIN ?? path.join(repoRoot, 'bin', 'iii')

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/**
 * An engine process with a trusted worker listener and the stream module, plus an RBAC listener
 * when `rbac` is given. `restart()` starts a fresh process on the same ports (in-memory store:
 * data does not survive).
 */
export class Engine {
  workerPort = 0
  streamPort = 0
  rbacPort = 0
  #dir
  #config
  #proc = null
  #log = []

  /**
   * @param {object} [opts]
   * @param {{ authFunctionId: string, expose: string[] }} [opts.rbac] adds an RBAC listener
   * @param {string[]} [opts.allowedOrigins] browser origins the trusted listener accepts (it
   *   refuses every Origin otherwise)
   */
  static async start({ rbac, allowedOrigins } = {}) {
    if (!existsSync(engineBinary)) {
      throw new Error(`engine binary not found at ${engineBinary}: run 'go build -o bin/iii ./cmd/iii' in the repository root`)
    }
    const e = new Engine()
    e.workerPort = await freePort()
    e.streamPort = await freePort()
    e.#dir = mkdtempSync(path.join(os.tmpdir(), 'iii-browser-sdk-test-'))
    e.#config = path.join(e.#dir, 'config.yaml')
    const lines = [
      'workers:',
      '  - name: iii-worker-manager',
      `    config: { host: 127.0.0.1, port: ${e.workerPort}${allowedOrigins ? `, allowed_origins: ${JSON.stringify(allowedOrigins)}` : ''} }`,
      '  - name: iii-stream',
      `    config: { host: 127.0.0.1, port: ${e.streamPort}, adapter: { name: kv, config: { store_method: in_memory } } }`,
    ]
    if (rbac) {
      e.rbacPort = await freePort()
      lines.push(
        '  - name: iii-worker-manager',
        '    config:',
        '      host: 127.0.0.1',
        `      port: ${e.rbacPort}`,
        '      rbac:',
        `        auth_function_id: ${JSON.stringify(rbac.authFunctionId)}`,
        '        expose_functions:',
        ...rbac.expose.map((m) => `          - ${JSON.stringify(m)}`),
      )
    }
    lines.push('engine: { sync: never }', '')
    writeFileSync(e.#config, lines.join('\n'))
    await e.#spawn()
    return e
  }

  /** ws:// URL of the trusted worker listener. */
  get url() {
    return `ws://127.0.0.1:${this.workerPort}`
  }

  /** ws:// URL of the RBAC listener. */
  get rbacUrl() {
    return `ws://127.0.0.1:${this.rbacPort}`
  }

  /** Everything the engine printed so far (for failure messages). */
  logs() {
    return this.#log.join('')
  }

  #spawn() {
    return new Promise((resolve, reject) => {
      const proc = spawn(engineBinary, ['-c', this.#config, '--data-dir', path.join(this.#dir, 'data')], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      this.#proc = proc
      let seen = ''
      let settled = false
      const timer = setTimeout(() => {
        if (settled) return
        settled = true
        proc.kill('SIGKILL')
        reject(new Error(`engine did not log msg=ready within 20 s:\n${this.logs().slice(-4000)}`))
      }, 20000)
      const onData = (chunk) => {
        const text = chunk.toString()
        this.#log.push(text)
        seen += text
        if (!settled && /msg=ready|"msg":"ready"/.test(seen)) {
          settled = true
          clearTimeout(timer)
          resolve()
        }
      }
      proc.stdout.on('data', onData)
      proc.stderr.on('data', onData)
      proc.once('exit', (code, signal) => {
        this.#log.push(`[engine exited: code=${code} signal=${signal}]\n`)
        if (settled) return
        settled = true
        clearTimeout(timer)
        reject(new Error(`engine exited before ready (code=${code} signal=${signal}):\n${this.logs().slice(-4000)}`))
      })
    })
  }

  async #stop(signal) {
    const proc = this.#proc
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise((resolve) => proc.once('exit', resolve))
    proc.kill(signal)
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }

  /** Kills the process at once (SIGKILL), as a crash would. */
  kill() {
    return this.#stop('SIGKILL')
  }

  /** Starts the engine again on the same ports. */
  restart() {
    return this.#spawn()
  }

  /** Stops the engine and removes its directory. */
  async close() {
    await this.#stop('SIGTERM')
    rmSync(this.#dir, { recursive: true, force: true })
  }
}
