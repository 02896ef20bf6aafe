import { fileURLToPath } from 'node:url'
import react from '@vitejs/plugin-react'
import { defineConfig, type Plugin, searchForWorkspaceRoot } from 'vite'

// The seed's src/lib/iii.ts connects to this address.
const SEED_URL = 'ws://localhost:3111'

// TODO_III_WS_URL, read at build/serve time, points the app at an engine on
// another address while src/lib/iii.ts stays exactly as in the seed. The e2e
// test uses it when the seed's ports are taken on the machine.
function engineUrl(url: string | undefined): Plugin {
  return {
    name: 'todo-engine-url',
    enforce: 'pre', // sees the file as written, before TypeScript is stripped
    transform(code, id) {
      if (!url || !id.endsWith('/src/lib/iii.ts')) return null
      if (!code.includes(`'${SEED_URL}'`)) throw new Error(`TODO_III_WS_URL: ${SEED_URL} not found in ${id}`)
      return code.replace(`'${SEED_URL}'`, JSON.stringify(url))
    },
  }
}

export default defineConfig({
  plugins: [react(), engineUrl(process.env.TODO_III_WS_URL)],
  server: {
    // iii-browser-sdk is linked from the repository's client/browser, outside
    // this workspace; the dev server must be allowed to serve it.
    fs: {
      allow: [
        searchForWorkspaceRoot(process.cwd()),
        fileURLToPath(new URL('../../../client/browser', import.meta.url)),
      ],
    },
  },
})
