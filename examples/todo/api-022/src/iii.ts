// iii-sdk 0.22 moved Logger out of 'iii-sdk' into '@iii-dev/helpers/observability';
// everything else here is the seed's src/iii.ts.
import { Logger } from '@iii-dev/helpers/observability'
import { registerWorker } from 'iii-sdk'

export const iii = registerWorker(process.env.III_URL ?? 'ws://localhost:49134', {
  workerName: 'api-worker',
})

export const logger = new Logger()
