// The module in a real browser (headless Chromium through playwright-core) against the real
// engine, talking to a Node client. Needs Debian's chromium (`apt-get install chromium`) or
// $CHROMIUM_PATH, and the devDependency playwright-core (`npm ci`).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Engine } from './helpers/engine.mjs'
import { client, closeAll, connected, waitFor } from './helpers/util.mjs'

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const hasPlaywright = existsSync(path.join(pkgDir, 'node_modules', 'playwright-core'))
const skip = !existsSync(chromiumPath)
  ? `no Chromium at ${chromiumPath} (apt-get install chromium, or set CHROMIUM_PATH)`
  : !hasPlaywright
    ? 'playwright-core is not installed (run npm ci in client/browser)'
    : false

const PAGE = `<!doctype html>
<meta charset="utf-8">
<script type="module">
import { registerWorker, TriggerAction } from '/index.js'
const iii = registerWorker(new URLSearchParams(location.search).get('ws'))
window.events = []
// The seed's form.
const funcRef = iii.registerFunction({ id: 'page::on-change' }, async (input) => {
  window.events.push(input)
  return {}
})
iii.registerFunction('page::echo', (x) => ({ fromBrowser: x }))
iii.registerTrigger({ type: 'stream', function_id: funcRef.id, config: { stream_name: 'br', group_id: 'g' } })
window.iii = iii
window.TriggerAction = TriggerAction
// Resolves once the engine has applied the registrations above (it applies a connection's
// frames in order).
window.ready = iii.trigger({ function_id: 'stream::list', payload: { stream_name: 'none', group_id: 'none' } })
</script>`

// Serves the package directory (for /index.js) and the test page.
function servePackage() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x')
    if (url.pathname === '/page.html') {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end(PAGE)
      return
    }
    const file = path.join(pkgDir, path.normalize(url.pathname))
    if (!file.startsWith(pkgDir) || !file.endsWith('.js') || !existsSync(file)) {
      res.writeHead(404)
      res.end()
      return
    }
    res.writeHead(200, { 'content-type': 'text/javascript' })
    res.end(readFileSync(file))
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

describe('in Chromium', { skip }, () => {
  let engine
  let server
  let browser
  let page
  let node
  const clients = []

  before(async () => {
    server = await servePackage()
    // The page connects to the trusted listener, which refuses browser origins it does not list.
    engine = await Engine.start({ allowedOrigins: [`http://127.0.0.1:${server.address().port}`] })
    node = client(engine.url, clients)
    node.registerFunction('node::add', ({ x, y }) => x + y)
    await connected(node)

    const { chromium } = await import('playwright-core')
    browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] })
    page = await browser.newPage()
    const pageErrors = []
    page.on('pageerror', (err) => pageErrors.push(err))
    await page.goto(`http://127.0.0.1:${server.address().port}/page.html?ws=${encodeURIComponent(engine.url)}`)
    assert.deepEqual(await page.evaluate(() => window.ready), [])
    assert.deepEqual(pageErrors, [])
  })

  after(async () => {
    await page?.evaluate(() => window.iii.shutdown()).catch(() => {})
    await browser?.close()
    server?.close()
    await closeAll(clients)
    await engine?.close()
  })

  test('Node calls the browser\'s function', async () => {
    assert.deepEqual(await node.trigger({ function_id: 'page::echo', payload: 42 }), { fromBrowser: 42 })
  })

  test('the browser calls a Node function and gets Error rejections with code', async () => {
    assert.equal(await page.evaluate(() => window.iii.trigger({ function_id: 'node::add', payload: { x: 1, y: 2 } })), 3)
    const err = await page.evaluate(async () => {
      try {
        await window.iii.trigger({ function_id: 'missing::fn', payload: {} })
        return null
      } catch (e) {
        return { isError: e instanceof Error, code: e.code, message: e.message }
      }
    })
    assert.equal(err.isError, true)
    assert.equal(err.code, 'function_not_found')
    assert.equal(
      await page.evaluate(() => window.iii.trigger({ function_id: 'node::add', payload: {}, action: window.TriggerAction.Void() })),
      undefined,
    )
  })

  test('stream events reach the browser', async () => {
    await node.trigger({
      function_id: 'stream::set',
      payload: { stream_name: 'br', group_id: 'g', item_id: 'x', data: { title: 'from node' } },
    })
    await waitFor(() => page.evaluate(() => window.events.length === 1), { what: 'event in the page' })
    const [event] = await page.evaluate(() => window.events)
    assert.equal(event.streamName, 'br')
    assert.equal(event.id, 'x')
    assert.deepEqual(event.event, { type: 'create', data: { title: 'from node' } })
  })
})
