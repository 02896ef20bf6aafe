// The declaration files type-check against an API fixture (test/types/api.ts). The seed's useTodos
// hook is checked against them where it lives: examples/todo/web's build (tsc) in
// e2e/browser-todo. Needs the devDependency typescript (`npm ci` in client/browser).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const tsc = path.join(pkgDir, 'node_modules', 'typescript', 'bin', 'tsc')

test('index.d.ts, stream.d.ts and state.d.ts type-check the API fixture', {
  skip: existsSync(tsc) ? false : 'typescript is not installed (run npm ci in client/browser)',
  timeout: 120000,
}, async () => {
  const { code, out } = await new Promise((resolve) => {
    execFile(process.execPath, [tsc, '-p', 'test/types/tsconfig.json'], { cwd: pkgDir }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, out: stdout + stderr })
    })
  })
  assert.equal(code, 0, out)
})
