// The API worker: registers the RBAC auth function and the todos::* functions.
// The engine's exec module starts it with `pnpm dev`.
import './lib/rbac.ts'
import './routes/todos.create.ts'
import './routes/todos.list.ts'
import './routes/todos.get.ts'
import './routes/todos.toggle.ts'
import './routes/todos.delete.ts'
