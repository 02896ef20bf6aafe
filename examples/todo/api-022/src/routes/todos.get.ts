import { fn } from '../lib/decorators.ts'
import { type Todo, todosStream } from './todos.stream.ts'

export const getTodo = fn(
  'todos::get',
  async (req: { id: string }): Promise<Todo | null> => {
    return todosStream.get({ group_id: 'todos', item_id: req.id })
  },
  { description: 'Get one todo by id' },
)
