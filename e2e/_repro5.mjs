import { startEngine, makeWorker, connected, shutdownWorkers, GENERATIONS, sleep } from './lib/engine.mjs'
import { startNatsCluster } from './lib/nats.mjs'
const gen = GENERATIONS[0]
const cl = await startNatsCluster(3)
const cfg = (node) => ({ workerPort, streamPort }) => ({
  workers: [{ name: 'iii-worker-manager', config: { port: workerPort } }, { name: 'iii-stream', config: { port: streamPort } }],
  engine: { cluster: { nats_url: cl.urls, node, replicas: 3 } },
})
const E1 = await startEngine({ config: cfg('e1') })
const E2 = await startEngine({ config: cfg('e2') })
const w1 = await makeWorker(gen, E1.workerUrl); await connected(w1)
const w2 = await makeWorker(gen, E2.workerUrl); await connected(w2)
for (let i = 0; i < 20; i++) await w1.trigger({ function_id: 'stream::set', payload: { stream_name: 's', group_id: 'g', item_id: `p${i}`, data: i } })
const jget = async (s, p) => (await fetch(`http://127.0.0.1:${s.httpPort}${p}`)).json()
async function serverOf(name) { for (const s of cl.servers.filter(x => x.running)) { const c = await jget(s, '/connz'); if (c.connections.some(x => x.name === name)) return s } }
const j = await jget(cl.servers[0], '/jsz?accounts=true&streams=true&consumers=true')
const st = j.account_details[0].stream_detail[0]
console.log('leader', st.cluster.leader, 'consumers', JSON.stringify(st.consumer_detail?.map(c => [c.name, c.cluster?.leader])))
const s1 = await serverOf('iii engine e1'), s2 = await serverOf('iii engine e2')
console.log('e1 on', s1.serverName, 'e2 on', s2.serverName)
const mode = process.argv[2] ?? 'e1'
const victim = mode === 'leader' ? cl.servers.find(s => s.serverName === st.cluster.leader) : mode === 'other' ? cl.servers.find(s => s !== s1 && s !== s2 && s.serverName !== st.cluster.leader) ?? s1 : s1
console.log('killing', victim.serverName)
const t0 = Date.now()
await victim.kill()
let polling = true
const seen = new Set()
;(async () => { while (polling) { for (const s of cl.servers.filter(x => x.running)) { try { const jj = await jget(s, '/jsz?accounts=true&streams=true&consumers=true'); for (const a of jj.account_details ?? []) for (const x of a.stream_detail ?? []) for (const c of x.consumer_detail ?? []) { const k = `${c.name}@${c.cluster?.leader}`; if (!seen.has(k)) { seen.add(k); console.log(Date.now() - t0, 'ms consumer', k, 'seen from', s.serverName) } } } catch {} } await sleep(300) } })()
for (const [n, w] of [['e1', w1], ['e2', w2]]) {
  let ok = false, k = 0
  while (!ok && Date.now() - t0 < 40000) {
    try { await w.trigger({ function_id: 'stream::set', payload: { stream_name: 's', group_id: 'g', item_id: `${n}-${k++}`, data: 1 }, timeoutMs: 3000 }); ok = true } catch (e) { }
  }
  console.log(n, 'first ack after', Date.now() - t0, 'ms', ok, 'attempts', k)
}
polling = false
const j2 = await jget(cl.servers.find(s => s.running), '/jsz?accounts=true&streams=true&consumers=true')
const st2 = j2.account_details[0].stream_detail[0]
console.log('leader', st2.cluster.leader, 'consumers', JSON.stringify(st2.consumer_detail?.map(c => [c.name, c.cluster?.leader])))
await shutdownWorkers()
const grep = (e) => e.logs().split('\n').filter(l => /cluster|consumer/.test(l) && !/log opened/.test(l)).join('\n')
console.log('E1:\n' + grep(E1)); console.log('E2:\n' + grep(E2))
E1.kill(); E2.kill()
await E1.cleanup(); await E2.cleanup(); await cl.cleanup()
