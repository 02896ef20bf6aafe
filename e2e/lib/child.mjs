// Child-process worker used by tests that must kill a worker, read its console output, or
// write while the engine is killed. argv[2] is a JSON spec: {mode, gen, url, ...}.
import WebSocket from 'ws'
import { GENERATIONS, sdkModule, barrier, sleep } from './engine.mjs'

const spec = JSON.parse(process.argv[2])
const gen = GENERATIONS.find((g) => g.name === spec.gen)

async function hang() {
  // Registers spec.fn whose handler never returns; prints CALLED when it runs.
  const { registerWorker } = await sdkModule(gen)
  const w = registerWorker(spec.url, { workerName: 'e2e-hang', enableMetricsReporting: false, otel: { enabled: false } })
  w.registerFunction(spec.fn, async () => {
    console.log('CALLED')
    await new Promise(() => {})
  })
  await barrier(w)
  console.log('READY')
}

async function logger() {
  // Real OTel set-up of the generation, then Logger calls; prints OK after a round trip.
  const mod = await sdkModule(gen)
  const Logger = gen.name === '0.11.6' ? mod.Logger : (await import('@iii-dev/helpers/observability')).Logger
  const w = mod.registerWorker(spec.url, { workerName: 'e2e-logger' })
  w.registerFunction(spec.fn, async (data) => ({ echoed: data.v }))
  const log = new Logger()
  log.info('e2e info line', { orderId: 'o-1', amount: 3 })
  log.warn('e2e warn line', { n: 1 })
  log.error('e2e error line', { code: 'E1' })
  log.debug('e2e debug line')
  const r = await w.trigger({ function_id: spec.fn, payload: { v: 7 }, timeoutMs: 5000 })
  if (r?.echoed !== 7) throw new Error(`round trip returned ${JSON.stringify(r)}`)
  for (let i = 0; i < 5; i++) {
    log.info(`e2e after call ${i}`, { i })
    await sleep(100)
  }
  await sleep(800)
  console.log('OK')
  await Promise.race([w.shutdown(), sleep(5000)])
  console.log('SHUTDOWN')
  process.exit(0)
}

async function writer() {
  // Raw concurrent stream::set; prints "ACK <item_id> <value json>" per acknowledged write.
  const ws = new WebSocket(spec.url, { perMessageDeflate: false })
  await new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej) })
  const pending = new Map()
  let seq = 0
  let stopped = false
  ws.on('close', () => { stopped = true; console.log('CLOSED'); process.exit(0) })
  ws.on('error', () => {})
  ws.on('message', (raw) => {
    let m
    try { m = JSON.parse(raw.toString()) } catch { return }
    if (m.type !== 'invocationresult') return
    const p = pending.get(m.invocation_id)
    if (!p) return
    pending.delete(m.invocation_id)
    if (m.error) console.log(`ERR ${p.item} ${JSON.stringify(m.error)}`)
    else console.log(`ACK ${p.item} ${JSON.stringify(p.value)} ${JSON.stringify(m.result)}`)
    next()
  })
  function next() {
    if (stopped) return
    const n = seq++
    const item = `${spec.prefix}-${n}`
    const value = { n, prefix: spec.prefix, pad: 'x'.repeat(n % 200) }
    const id = `w-${spec.prefix}-${n}`
    pending.set(id, { item, value })
    ws.send(JSON.stringify({
      type: 'invokefunction',
      invocation_id: id,
      function_id: 'stream::set',
      data: { stream_name: spec.stream, group_id: spec.group, item_id: item, data: value },
    }))
  }
  console.log('STARTED')
  for (let i = 0; i < (spec.concurrency ?? 16); i++) next()
}

const modes = { hang, logger, writer }
modes[spec.mode]().catch((e) => {
  console.log(`FAILED ${e?.stack ?? e}`)
  process.exit(1)
})
