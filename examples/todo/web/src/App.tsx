import { type FormEvent, useState, useSyncExternalStore } from 'react'
import { useTodos } from './hooks/use-todos'
import { iii } from './lib/iii'

const subscribeConnection = (onChange: () => void) => iii.addConnectionStateListener(onChange)
const connectionState = () => iii.getConnectionState()

export function App() {
  const { todos, addTodo, toggleTodo, deleteTodo, clearCompleted, remaining, completedCount } = useTodos()
  const connection = useSyncExternalStore(subscribeConnection, connectionState)
  const [title, setTitle] = useState('')
  const [error, setError] = useState<string | null>(null)

  // Every change arrives back through the stream trigger, so the handlers only
  // call the API and report failures; they never touch the list themselves.
  const run = (action: Promise<unknown>) => {
    setError(null)
    action.catch((err: unknown) => setError(err instanceof Error ? err.message : String(err)))
  }

  const onSubmit = (e: FormEvent) => {
    e.preventDefault()
    const trimmed = title.trim()
    if (!trimmed) return
    setTitle('')
    run(addTodo(trimmed))
  }

  return (
    <main className="app">
      <header>
        <h1>todos</h1>
        <span className={`connection ${connection}`} data-testid="connection">
          {connection}
        </span>
      </header>

      <form className="add" onSubmit={onSubmit}>
        <input
          data-testid="new-todo"
          placeholder="What needs to be done?"
          value={title}
          onChange={(e) => setTitle(e.target.value)}
          autoFocus
        />
        <button type="submit" data-testid="add" disabled={!title.trim()}>
          Add
        </button>
      </form>

      {error && (
        <p className="error" data-testid="error">
          {error}
        </p>
      )}

      <ul className="todos" data-testid="todo-list">
        {todos.map((todo) => (
          <li
            key={todo.id}
            className={todo.completed ? 'done' : undefined}
            data-testid="todo-item"
            data-id={todo.id}
            data-completed={String(todo.completed)}
          >
            <label>
              <input
                type="checkbox"
                data-testid="toggle"
                checked={todo.completed}
                onChange={() => run(toggleTodo(todo.id))}
              />
              <span data-testid="title">{todo.title}</span>
            </label>
            <button
              type="button"
              className="delete"
              data-testid="delete"
              aria-label={`Delete ${todo.title}`}
              onClick={() => run(deleteTodo(todo.id))}
            >
              ×
            </button>
          </li>
        ))}
      </ul>
      {todos.length === 0 && <p className="empty">Nothing to do.</p>}

      <footer>
        <span>
          <strong data-testid="remaining">{remaining}</strong> left
        </span>
        <span>
          <strong data-testid="completed-count">{completedCount}</strong> completed
        </span>
        <button
          type="button"
          data-testid="clear-completed"
          disabled={completedCount === 0}
          onClick={() => run(clearCompleted())}
        >
          Clear completed
        </button>
      </footer>
    </main>
  )
}
