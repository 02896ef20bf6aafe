// The API worker on iii-sdk 0.22.1: the same functions as ../src, started with
// `pnpm dev:022` from examples/todo (or `pnpm dev` in this directory).
import './lib/rbac.ts'
import './routes/todos.create.ts'
import './routes/todos.list.ts'
import './routes/todos.get.ts'
import './routes/todos.toggle.ts'
import './routes/todos.delete.ts'
