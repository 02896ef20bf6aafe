// Type-level checks of the public API beyond what the seed uses.
import {
  registerWorker,
  TriggerAction,
  EngineFunctions,
  type ISdk,
  type FunctionRef,
  type Trigger,
  type InvocationError,
  type ConnectionState,
} from 'iii-browser-sdk'
import type { StreamChangeEvent, StreamSetResult } from 'iii-browser-sdk/stream'
import type { StateChangeEvent } from 'iii-browser-sdk/state'

const iii: ISdk = registerWorker('ws://localhost:49134?token=t', {
  invocationTimeoutMs: 5000,
  reconnectionConfig: { initialDelayMs: 100, maxRetries: -1 },
  workerName: 'ignored',
  headers: { ignored: 'yes' },
})

const a: FunctionRef = iii.registerFunction('math::add', async (x: { a: number; b: number }) => x.a + x.b, {
  description: 'adds',
  metadata: { public: true },
})
const b: FunctionRef = iii.registerFunction({ id: 'math::sync', description: 'sync' }, (n: number) => n * 2)
const idString: string = a.id + b.id

const t: Trigger = iii.registerTrigger({
  type: 'stream',
  function_id: a.id,
  config: { stream_name: 'todo', group_id: 'todos' },
  metadata: { m: 1 },
})
t.unregister()

async function calls() {
  const sum: number = await iii.trigger<{ a: number; b: number }, number>({
    function_id: 'math::add',
    payload: { a: 1, b: 2 },
    timeoutMs: 100,
  })
  const nothing: void = await iii.trigger({ function_id: 'x', payload: 1, action: TriggerAction.Void() })
  const receipt: string = (await iii.trigger({ function_id: 'x', action: TriggerAction.Enqueue({ queue: 'q' }) }))
    .messageReceiptId
  const set = await iii.trigger<unknown, StreamSetResult<{ id: string }>>({ function_id: 'stream::set' })
  const oldId: string | undefined = set.old_value?.id
  try {
    await iii.trigger({ function_id: EngineFunctions.LIST_FUNCTIONS })
  } catch (e) {
    const err = e as InvocationError
    const code: string = err.code
    const st: string | undefined = err.stacktrace
    void code, st
  }
  const fns = await iii.listFunctions()
  const fid: string = fns[0].function_id
  const ch = await iii.createChannel(8)
  ch.writer.sendBinary(new Uint8Array([1]))
  const all: Uint8Array = await ch.reader.readAll()
  void sum, nothing, receipt, oldId, fid, all
}

const onEvent = iii.registerFunction('ui::ev', async (e: StreamChangeEvent) => {
  if (e.event.type === 'event') return e.event.event.type
  return e.event.data
})
const onState = iii.registerFunction('ui::st', (e: StateChangeEvent) => e.event_type)

const tt = iii.registerTriggerType<{ every: number }>(
  { id: 'ticker', description: 'ticks' },
  {
    registerTrigger: ({ id, function_id, config }) => void [id, function_id, config.every],
    unregisterTrigger: async () => {},
  },
)
tt.registerTrigger('math::add', { every: 5 })
tt.registerFunction({ id: 'ticker::fn' }, () => 1, { every: 1 }).unregister()
tt.unregister()
iii.registerService({ id: 'svc' })
const off = iii.onFunctionsAvailable((functions) => functions.map((f) => f.function_id))
off()
const stop = iii.addConnectionStateListener((s: ConnectionState) => void s)
stop()
iii.createStream('custom', {
  get: () => null,
  set: (i) => ({ old_value: null, new_value: i.data }),
  delete: () => ({ old_value: null }),
  list: () => [],
  listGroups: () => [],
})
void calls, idString, onEvent, onState, iii.shutdown()

// @ts-expect-error the handler must be a function
iii.registerFunction('bad', 42)
