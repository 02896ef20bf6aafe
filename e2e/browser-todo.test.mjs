// The seed todo app (examples/todo) end to end: the engine runs the seed's iii-config.yaml,
// whose exec module starts the API worker with `pnpm dev`; the built React app runs in two tabs
// of headless Chromium on our iii-browser-sdk. Needs Debian's chromium (or $CHROMIUM_PATH);
// installs pnpm and the example's packages itself (examples/todo/setup.sh).
import { after, afterEach, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { E2E_DIR, III_BIN, REPO_DIR, freePort, rawWorker, waitFor } from './lib/engine.mjs'
import { launchBrowser, serveStatic } from './lib/browser.mjs'

const TODO_DIR = path.join(REPO_DIR, 'examples', 'todo')
const SEED_CONFIG = readFileSync(path.join(TODO_DIR, 'iii-config.yaml'), 'utf8')
// The seed's ports: trusted worker listener, RBAC listener (the browser's), stream port.
const SEED_PORTS = { worker: 49134, rbac: 3111, stream: 3112 }
const SCREENSHOT = path.join(E2E_DIR, 'artifacts', 'todo.png')

const tmp = mkdtempSync(path.join(os.tmpdir(), 'iii-todo-e2e-'))
let env // the engine's environment: PATH reaches pnpm, III_URL left to the exec module
let ports
let heldPorts // the seed's ports, held from the check until the first engine start
let site
let browser
const engines = new Set()

process.on('exit', () => {
  // Last resort only: SIGTERM lets the engine stop the `pnpm dev` process group it started.
  for (const e of engines) try { e.proc.kill('SIGTERM') } catch {}
})

/** Run a command to completion; rejects with its output when it fails. */
function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
    let out = ''
    p.stdout.on('data', (c) => { out += c })
    p.stderr.on('data', (c) => { out += c })
    p.once('error', reject)
    p.once('exit', (code) => {
      if (code === 0) resolve(out)
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}:\n${out.slice(-6000)}`))
    })
  })
}

/**
 * Listen on every port in `list` (all addresses, as the engine binds) and keep them, so that no
 * test running alongside takes one before our engine starts. Null when one is in use.
 */
async function holdPorts(list) {
  const servers = []
  const release = () => Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  for (const port of list) {
    const srv = net.createServer()
    const ok = await new Promise((resolve) => {
      srv.once('error', () => resolve(false))
      srv.listen(port, () => resolve(true))
    })
    if (!ok) {
      await release()
      return null
    }
    servers.push(srv)
  }
  return { release }
}

/** The seed's config, unchanged but for ports, the store path and the exec line. */
function todoConfig(storePath, exec = 'pnpm dev') {
  const byPort = { 49134: ports.worker, 3111: ports.rbac, 3112: ports.stream }
  const text = SEED_CONFIG
    .replace(/port: (49134|3111|3112)\b/g, (_, p) => `port: ${byPort[p]}`)
    .replace('file_path: ./data/stream_store', `file_path: ${JSON.stringify(storePath)}`)
    .replace('- pnpm dev', `- ${exec}`)
  assert.ok(text.includes(JSON.stringify(storePath)) && text.includes(`- ${exec}`), `config rewrite failed:\n${text}`)
  return text
}

/**
 * Start bin/iii with `configFile` in examples/todo (where the exec module's `pnpm dev` must
 * run), wait for its ready line and for the API worker's functions.
 */
async function startEngine(configFile) {
  await heldPorts?.release()
  heldPorts = undefined
  const logFile = configFile.replace(/\.yaml$/, '.log')
  const proc = spawn(III_BIN, ['--config', configFile], { cwd: TODO_DIR, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const onData = (c) => {
    out += c
    appendFileSync(logFile, c)
    if (process.env.E2E_ENGINE_LOGS) process.stderr.write(`[iii] ${c}`)
  }
  proc.stdout.on('data', onData)
  proc.stderr.on('data', onData)
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
  const engine = {
    proc,
    logs: () => out,
    /** SIGTERM and wait; the engine stops the API worker's process group first. */
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
      const t = setTimeout(() => proc.kill('SIGKILL'), 15000)
      const r = await exited
      clearTimeout(t)
      engines.delete(engine)
      return r
    },
  }
  engines.add(engine)
  // Fail at once, with the log, if the engine dies while we wait for it.
  const died = exited.then((r) => { throw new Error(`engine exited (${JSON.stringify(r)}); log ${logFile}:\n${out.slice(-4000)}`) })
  died.catch(() => {})
  const orDied = (p) => Promise.race([p, died])
  await orDied(waitFor(() => /msg=ready/.test(out), 20000, 'the engine to log msg=ready'))
  const probe = await rawWorker(`ws://127.0.0.1:${ports.worker}`)
  try {
    await orDied(waitFor(async () => (await probe.call('todos::list', {})).result?.items !== undefined,
      30000, 'the API worker (`pnpm dev`) to register todos::list', 200))
  } catch (e) {
    e.message += `\nengine log ${logFile}:\n${out.slice(-3000)}`
    throw e
  } finally {
    probe.close()
  }
  return engine
}

/** Call `fn` on the trusted listener, as the API worker's neighbours would. */
async function callTrusted(fn, data) {
  const c = await rawWorker(`ws://127.0.0.1:${ports.worker}`)
  try {
    return await c.call(fn, data)
  } finally {
    c.close()
  }
}

/** Wait until `n` browser sessions have their stream trigger on todo/todos registered. */
async function waitForTabs(n) {
  await waitFor(async () => {
    const r = await callTrusted('engine::registered-triggers::list', { trigger_type: 'stream' })
    const mine = (r.result?.registered_triggers ?? []).filter((t) => t.function_id.endsWith('::ui::on-todo-change'))
    return mine.length === n
  }, 15000, `${n} ui::on-todo-change stream triggers`)
}

// ------------------------------------------------------------------- the page, as a person sees it

/** What a tab shows: items in order and the two counters. */
function view(page) {
  return page.evaluate(() => ({
    items: [...document.querySelectorAll('[data-testid="todo-item"]')].map((li) => [
      li.querySelector('[data-testid="title"]').textContent,
      li.querySelector('[data-testid="toggle"]').checked,
    ]),
    remaining: Number(document.querySelector('[data-testid="remaining"]')?.textContent),
    completed: Number(document.querySelector('[data-testid="completed-count"]')?.textContent),
    error: document.querySelector('[data-testid="error"]')?.textContent ?? null,
  }))
}

/** Wait until every tab shows exactly `items` ([title, completed] pairs) with matching counters. */
async function expectTabs(pages, items, what) {
  const want = {
    items,
    remaining: items.filter(([, done]) => !done).length,
    completed: items.filter(([, done]) => done).length,
    error: null,
  }
  for (const [i, page] of pages.entries()) {
    let last
    try {
      await waitFor(async () => {
        last = await view(page)
        return JSON.stringify(last) === JSON.stringify(want)
      }, 10000, what)
    } catch (e) {
      e.message += `\ntab ${i + 1} shows ${JSON.stringify(last)}\nwanted ${JSON.stringify(want)}` +
        `\nbrowser problems: ${browser.problems.join(' | ') || 'none'}`
      throw e
    }
  }
}

const exactly = (text) => new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`)
const item = (page, title) => page.getByTestId('todo-item').filter({ has: page.getByTestId('title').filter({ hasText: exactly(title) }) })

// A person switches to a tab before using it; a background tab gets no animation frames,
// which Playwright's actionability checks wait for.
async function add(page, title) {
  await page.bringToFront()
  await page.getByTestId('new-todo').fill(title)
  await page.getByTestId('add').click()
}
async function toggle(page, title) {
  await page.bringToFront()
  await item(page, title).getByTestId('toggle').click()
}
async function remove(page, title) {
  await page.bringToFront()
  await item(page, title).getByTestId('delete').click()
}
async function clearCompleted(page) {
  await page.bringToFront()
  await page.getByTestId('clear-completed').click()
}

async function openTabs(n) {
  const pages = []
  for (let i = 0; i < n; i++) {
    const page = await browser.newPage()
    await page.goto(site.url)
    pages.push(page)
  }
  for (const page of pages) {
    await waitFor(async () => (await page.getByTestId('connection').textContent()) === 'connected', 15000, 'the tab to connect')
  }
  return pages
}

// ------------------------------------------------------------------------------------ set-up

before(async () => {
  // The global npm bin, where setup.sh puts pnpm when it has to install it.
  const npmPrefix = (await run('npm', ['prefix', '-g'])).trim()
  env = { ...process.env, PATH: `${process.env.PATH}${path.delimiter}${path.join(npmPrefix, 'bin')}` }
  delete env.III_URL
  await run('bash', [path.join(TODO_DIR, 'setup.sh')], { env })

  // The seed's own ports when they are free (the built app then connects to
  // ws://localhost:3111 exactly as the seed's src/lib/iii.ts says); otherwise free ports, and
  // the build points the app at them (TODO_III_WS_URL, see web/vite.config.ts).
  heldPorts = await holdPorts(Object.values(SEED_PORTS))
  const buildEnv = { ...env }
  if (heldPorts) {
    ports = SEED_PORTS
  } else {
    ports = { worker: await freePort(), rbac: await freePort(), stream: await freePort() }
    buildEnv.TODO_III_WS_URL = `ws://localhost:${ports.rbac}`
    process.stderr.write(`[browser-todo] seed ports ${Object.values(SEED_PORTS).join('/')} are taken here; ` +
      `using ${ports.worker}/${ports.rbac}/${ports.stream}\n`)
  }
  const dist = path.join(tmp, 'dist')
  await run('pnpm', ['--dir', path.join(TODO_DIR, 'web'), 'run', 'build', '--outDir', dist, '--emptyOutDir'], { env: buildEnv })
  site = await serveStatic(dist)
  browser = await launchBrowser()
}, { timeout: 300_000 })

// Each test starts from no tabs and no engine, even after a failure: the tests share ports,
// and a leftover tab would reconnect to the next test's engine.
afterEach(async () => {
  for (const page of browser?.context.pages() ?? []) await page.close()
  for (const e of [...engines]) await e.stop()
})

after(async () => {
  await heldPorts?.release()
  await browser?.close()
  await site?.close()
  if (!process.env.E2E_KEEP) rmSync(tmp, { recursive: true, force: true })
})

// ------------------------------------------------------------------------------------ tests

test('seed todo app: two tabs stay in sync, todos survive an engine restart', { timeout: 120_000 }, async () => {
  const configFile = path.join(tmp, 'iii-config.yaml')
  writeFileSync(configFile, todoConfig(path.join(tmp, 'data', 'stream_store')))
  let engine = await startEngine(configFile)

  // The API worker's answers the UI relies on, for ids that do not exist.
  assert.deepEqual((await callTrusted('todos::delete', { id: 'no-such-id' })).result, { id: 'no-such-id', deleted: false })
  assert.equal((await callTrusted('todos::toggle', { id: 'no-such-id' })).result ?? null, null)

  const [tab1, tab2] = await openTabs(2)
  await waitForTabs(2)
  await expectTabs([tab1, tab2], [], 'empty list')

  await add(tab1, 'buy milk')
  await add(tab1, 'walk the dog')
  await expectTabs([tab1, tab2], [['buy milk', false], ['walk the dog', false]], 'two new todos in both tabs')

  await toggle(tab2, 'buy milk')
  await expectTabs([tab1, tab2], [['buy milk', true], ['walk the dog', false]], 'toggle from tab 2')

  await remove(tab1, 'walk the dog')
  await expectTabs([tab1, tab2], [['buy milk', true]], 'delete from tab 1')

  // Adds from two tabs: wait for the first, so the order the test expects is the order sent.
  await add(tab1, 'write report')
  await expectTabs([tab1, tab2], [['buy milk', true], ['write report', false]], 'one more')
  await add(tab2, 'pay rent')
  await add(tab2, 'call mom')
  await expectTabs([tab1, tab2], [['buy milk', true], ['write report', false], ['pay rent', false], ['call mom', false]], 'three more')
  await toggle(tab1, 'pay rent')
  await expectTabs([tab1, tab2], [['buy milk', true], ['write report', false], ['pay rent', true], ['call mom', false]], 'second completed')

  await clearCompleted(tab1)
  await expectTabs([tab1, tab2], [['write report', false], ['call mom', false]], 'clear completed')
  await toggle(tab2, 'call mom')
  await expectTabs([tab1, tab2], [['write report', false], ['call mom', true]], 'completed before the restart')

  // Same config, same data directory: the stream comes back from the engine's log.
  const stopped = await engine.stop()
  assert.deepEqual(stopped, { code: 0, signal: null }, `engine exit after SIGTERM:\n${engine.logs().slice(-3000)}`)
  engine = await startEngine(configFile)
  const listed = (await callTrusted('todos::list', {})).result.items
  assert.deepEqual(listed.map((t) => [t.title, t.completed]), [['write report', false], ['call mom', true]])

  // The open tabs reconnect on their own (new RBAC session, new prefix) and register their
  // function and trigger again: changes reach them without a reload.
  await waitForTabs(2)
  await callTrusted('todos::create', { title: 'while the tabs stayed open' })
  await expectTabs([tab1, tab2], [['write report', false], ['call mom', true], ['while the tabs stayed open', false]], 'live after reconnecting')

  // A reload shows the stored list; it arrives after the tab's trigger is registered (same
  // connection, in order), so live updates must work at once.
  await tab1.reload()
  await tab2.reload()
  await expectTabs([tab1, tab2], [['write report', false], ['call mom', true], ['while the tabs stayed open', false]], 'todos after the restart')
  await add(tab2, 'after restart')
  await expectTabs([tab1, tab2], [['write report', false], ['call mom', true], ['while the tabs stayed open', false], ['after restart', false]], 'live after the restart')

  mkdirSync(path.dirname(SCREENSHOT), { recursive: true })
  writeFileSync(path.join(path.dirname(SCREENSHOT), '.gitignore'), '*\n')
  await tab1.bringToFront()
  await tab1.screenshot({ path: SCREENSHOT })
  process.stderr.write(`[browser-todo] screenshot: ${SCREENSHOT}\n`)

  await tab1.close()
  await tab2.close()
  assert.deepEqual(await engine.stop(), { code: 0, signal: null })
  assert.deepEqual(browser.problems.filter((p) => !/WebSocket/.test(p)), [], 'console errors in the tabs')
})

test('the same app on the iii-sdk 0.22.1 API worker (pnpm dev:022)', { timeout: 60_000 }, async () => {
  const configFile = path.join(tmp, 'iii-config-022.yaml')
  writeFileSync(configFile, todoConfig(path.join(tmp, 'data-022', 'stream_store'), 'pnpm dev:022'))
  const engine = await startEngine(configFile)
  assert.deepEqual((await callTrusted('todos::delete', { id: 'no-such-id' })).result, { id: 'no-such-id', deleted: false })

  const [tab1, tab2] = await openTabs(2)
  await waitForTabs(2)
  await add(tab1, 'from 0.22')
  await expectTabs([tab1, tab2], [['from 0.22', false]], 'add on 0.22.1')
  await add(tab2, 'second')
  await expectTabs([tab1, tab2], [['from 0.22', false], ['second', false]], 'adds on 0.22.1')
  await toggle(tab2, 'from 0.22')
  await expectTabs([tab1, tab2], [['from 0.22', true], ['second', false]], 'toggle on 0.22.1')
  await clearCompleted(tab1)
  await remove(tab2, 'second')
  await expectTabs([tab1, tab2], [], 'deletes on 0.22.1')

  await tab1.close()
  await tab2.close()
  assert.deepEqual(await engine.stop(), { code: 0, signal: null })
})
