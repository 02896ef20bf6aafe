import { fn } from '../lib/decorators.ts'
import { type Todo, todosStream } from './todos.stream.ts'

export const listTodos = fn(
  'todos::list',
  async (): Promise<{ items: Todo[] }> => {
    const items = await todosStream.list({ group_id: 'todos' })

    return { items }
  },
  { description: 'List all todos' },
)
