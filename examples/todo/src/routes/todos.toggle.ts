import { logger } from '../iii.ts'
import { fn } from '../lib/decorators.ts'
import { type Todo, todosStream } from './todos.stream.ts'

export const toggleTodo = fn(
  'todos::toggle',
  async (req: { id: string }): Promise<Todo | null> => {
    const todo = await todosStream.get({ group_id: 'todos', item_id: req.id })
    if (!todo) {
      logger.warn('Todo not found', { id: req.id })
      return null
    }

    // An update op touches only `completed`; the engine emits an `update`
    // event carrying the whole new item to every stream trigger.
    const result = await todosStream.update({
      group_id: 'todos',
      item_id: req.id,
      ops: [{ type: 'set', path: 'completed', value: !todo.completed }],
    })

    return result?.new_value ?? null
  },
  { description: 'Flip the completed flag of a todo' },
)
