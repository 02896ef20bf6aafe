// Types for the engine's `stream::*` functions and the `stream` trigger type.

/** A create/update/delete of one item. */
export interface StreamItemChange<T = any> {
  type: 'create' | 'update' | 'delete'
  /** The new value (create/update) or the removed value (delete). */
  data: T
}

/** A custom event sent with `stream::send`. */
export interface StreamCustomEvent<T = any> {
  type: 'event'
  event: { type: string; data: T }
  /** Never set; declared so that `input.event.data` type-checks on the union. */
  data?: undefined
}

/** What a function bound with a `stream` trigger receives. */
export interface StreamChangeEvent<T = any> {
  type: 'stream'
  /** Unix epoch milliseconds. */
  timestamp: number
  streamName: string
  groupId: string
  /** Item id; `null` for a `stream::send` without id. */
  id?: string | null
  event: StreamItemChange<T> | StreamCustomEvent<T>
}

/** Config of a `stream` trigger. */
export interface StreamTriggerConfig {
  stream_name: string
  /** Absent or empty: any group. */
  group_id?: string
  /** Absent or empty: any item. */
  item_id?: string
  /** Skips the handler when this function returns exactly `false`. */
  condition_function_id?: string
}

export interface StreamGetInput {
  stream_name: string
  group_id: string
  item_id: string
}

export interface StreamSetInput<T = any> {
  stream_name: string
  group_id: string
  item_id: string
  data: T
}

export interface StreamSetResult<T = any> {
  old_value: T | null
  new_value: T
}

export interface StreamDeleteInput {
  stream_name: string
  group_id: string
  item_id: string
}

export interface StreamDeleteResult<T = any> {
  old_value: T | null
}

export interface StreamListInput {
  stream_name: string
  group_id: string
}

export interface StreamListGroupsInput {
  stream_name: string
}

export type UpdateOpPath = string | string[]

export type UpdateOp =
  | { type: 'set'; path: string; value?: unknown }
  | { type: 'merge'; path?: UpdateOpPath; value: Record<string, unknown> }
  | { type: 'increment'; path: string; by: number }
  | { type: 'decrement'; path: string; by: number }
  | { type: 'append'; path?: UpdateOpPath; value: unknown }
  | { type: 'remove'; path: string }

export interface UpdateOpError {
  op_index: number
  code: string
  message: string
  doc_url?: string
}

export interface StreamUpdateInput {
  stream_name: string
  group_id: string
  item_id: string
  ops: UpdateOp[]
}

export interface StreamUpdateResult<T = any> {
  old_value: T | null
  new_value: T
  /** Absent when every op applied. */
  errors?: UpdateOpError[]
}

export interface StreamSendInput<T = any> {
  stream_name: string
  group_id: string
  /** Custom event name. */
  type: string
  data: T
  id?: string
}

export interface StreamListAllResult {
  stream: { id: string; groups: string[] }[]
  count: number
}
