// Types for the engine's `state::*` functions and the `state` trigger type.

import type { UpdateOp, UpdateOpError } from './stream.js'

export type { UpdateOp, UpdateOpError }

/** What a function bound with a `state` trigger receives. */
export interface StateChangeEvent<T = any> {
  type: 'state'
  event_type: 'state:created' | 'state:updated' | 'state:deleted'
  scope: string
  key: string
  old_value: T | null
  new_value: T | null
}

/** Config of a `state` trigger; every field is optional and `{}` matches everything. */
export interface StateTriggerConfig {
  scope?: string
  key?: string
  condition_function_id?: string
}

export interface StateSetInput<T = any> {
  scope: string
  key: string
  value: T
}

export interface StateSetResult<T = any> {
  old_value: T | null
  new_value: T
}

export interface StateGetInput {
  scope: string
  key: string
}

export interface StateDeleteInput {
  scope: string
  key: string
}

export interface StateUpdateInput {
  scope: string
  key: string
  ops: UpdateOp[]
}

export interface StateUpdateResult<T = any> {
  old_value: T | null
  new_value: T
  errors?: UpdateOpError[]
}

export interface StateListInput {
  scope: string
}

export interface StateListGroupsResult {
  groups: string[]
}
