// Types for iii-browser-sdk (our own browser client for the iii engine).

/** Reconnect schedule: delay = min(initialDelayMs × backoffMultiplier^attempt, maxDelayMs) ± jitter. */
export interface ReconnectionConfig {
  /** Default 1000. */
  initialDelayMs?: number
  /** Default 30000. */
  maxDelayMs?: number
  /** Default 2. */
  backoffMultiplier?: number
  /** Fraction of the delay added or removed at random. Default 0.3. */
  jitterFactor?: number
  /** Attempts before giving up (state `failed`); -1 = never give up. Default -1. */
  maxRetries?: number
}

export interface InitOptions {
  /** Default timeout of `trigger()` calls, in ms. Default 30000. */
  invocationTimeoutMs?: number
  reconnectionConfig?: ReconnectionConfig
  /** Accepted and ignored: browsers cannot set WebSocket headers. Put tokens in the URL. */
  headers?: Record<string, string>
  /** Accepted and ignored (first upstream browser betas had it). */
  workerName?: string
  /** Unknown options are ignored. */
  [option: string]: unknown
}

export type ConnectionState = 'disconnected' | 'connecting' | 'connected' | 'reconnecting' | 'failed'

/** The engine's error shape; rejections of `trigger()` are Errors carrying these fields. */
export interface ErrorBody {
  code: string
  message: string
  stacktrace?: string
}

/** What `trigger()` rejects with when the engine or the callee answered with an error. */
export interface InvocationError extends Error {
  code: string
  message: string
  stacktrace?: string
  function_id: string
}

export type RemoteFunctionHandler<TInput = any, TOutput = any> = (data: TInput) => Promise<TOutput> | TOutput

export interface RegisterFunctionOptions {
  description?: string
  request_format?: unknown
  response_format?: unknown
  metadata?: Record<string, unknown>
}

export interface RegisterFunctionInput extends RegisterFunctionOptions {
  id: string
}

export interface FunctionRef {
  /** The id exactly as passed to `registerFunction` (never prefixed). */
  id: string
  unregister(): void
}

export interface RegisterTriggerInput<TConfig = any> {
  type: string
  function_id: string
  config: TConfig
  metadata?: Record<string, unknown>
}

export interface Trigger {
  unregister(): void
}

export interface VoidAction {
  type: 'void'
}

export interface EnqueueAction {
  type: 'enqueue'
  queue: string
}

export type TriggerActionValue = VoidAction | EnqueueAction

export declare const TriggerAction: {
  readonly Void: () => VoidAction
  readonly Enqueue: (opts: { queue: string }) => EnqueueAction
}

export interface EnqueueResult {
  messageReceiptId: string
}

export interface TriggerRequest<TInput = unknown> {
  function_id: string
  payload?: TInput
  action?: TriggerActionValue
  /** Per-call timeout; defaults to `invocationTimeoutMs`. Not sent. */
  timeoutMs?: number
}

export interface RegisterTriggerTypeInput {
  id: string
  description: string
  trigger_request_format?: unknown
  call_request_format?: unknown
}

/** What a trigger-type provider receives for each registration of its type. */
export interface TriggerConfig<TConfig = any> {
  id: string
  function_id: string
  config: TConfig
  metadata?: Record<string, unknown>
}

export interface TriggerHandler<TConfig = any> {
  registerTrigger(trigger: TriggerConfig<TConfig>): void | Promise<void>
  unregisterTrigger?(trigger: TriggerConfig<TConfig>): void | Promise<void>
}

export interface TriggerTypeRef<TConfig = any> {
  id: string
  registerTrigger(functionId: string, config: TConfig, metadata?: Record<string, unknown>): Trigger
  /** Registers a function and a trigger of this type bound to it; `unregister()` removes both. */
  registerFunction<TInput = any, TOutput = any>(
    idOrInput: string | RegisterFunctionInput,
    handler: RemoteFunctionHandler<TInput, TOutput>,
    config: TConfig,
  ): FunctionRef
  unregister(): void
}

export interface RegisterServiceInput {
  id: string
  name?: string
  description?: string
  parent_service_id?: string
}

export interface FunctionInfo {
  function_id: string
  worker_name?: string
  description?: string
  metadata?: Record<string, unknown>
  [field: string]: unknown
}

export interface TriggerInfo {
  id: string
  trigger_type: string
  function_id: string
  config: unknown
  [field: string]: unknown
}

export interface TriggerTypeInfo {
  id: string
  description?: string
  [field: string]: unknown
}

export interface ChannelRef {
  channel_id: string
  access_key: string
  direction: 'read' | 'write'
}

export declare class ChannelWriter {
  constructor(baseUrl: string, ref: ChannelRef)
  sendMessage(text: string): void
  /** Split into 64 KiB frames. */
  sendBinary(bytes: Uint8Array | ArrayBuffer): void
  close(): void
}

export declare class ChannelReader {
  constructor(baseUrl: string, ref: ChannelRef)
  onMessage(callback: (text: string) => void): () => void
  onBinary(callback: (bytes: Uint8Array) => void): () => void
  /** All binary data until the writer closes. */
  readAll(): Promise<Uint8Array>
  close(): void
}

export interface Channel {
  writer: ChannelWriter
  reader: ChannelReader
  writerRef: ChannelRef
  readerRef: ChannelRef
}

/** A custom store for one stream; see `iii-browser-sdk/stream` for the input types. */
export interface StreamImplementation {
  get(input: import('./stream.js').StreamGetInput): Promise<unknown> | unknown
  set(input: import('./stream.js').StreamSetInput): Promise<import('./stream.js').StreamSetResult> | import('./stream.js').StreamSetResult
  delete(input: import('./stream.js').StreamDeleteInput): Promise<import('./stream.js').StreamDeleteResult> | import('./stream.js').StreamDeleteResult
  list(input: import('./stream.js').StreamListInput): Promise<unknown[]> | unknown[]
  listGroups(input: import('./stream.js').StreamListGroupsInput): Promise<string[]> | string[]
}

export interface ISdk {
  registerFunction<TInput = any, TOutput = any>(
    id: string,
    handler: RemoteFunctionHandler<TInput, TOutput>,
    options?: RegisterFunctionOptions,
  ): FunctionRef
  registerFunction<TInput = any, TOutput = any>(
    input: RegisterFunctionInput,
    handler: RemoteFunctionHandler<TInput, TOutput>,
  ): FunctionRef

  registerTrigger<TConfig = any>(input: RegisterTriggerInput<TConfig>): Trigger

  trigger<TInput = unknown>(request: TriggerRequest<TInput> & { action: VoidAction }): Promise<void>
  trigger<TInput = unknown>(request: TriggerRequest<TInput> & { action: EnqueueAction }): Promise<EnqueueResult>
  trigger<TInput = unknown, TOutput = any>(request: TriggerRequest<TInput>): Promise<TOutput>

  registerTriggerType<TConfig = any>(
    input: RegisterTriggerTypeInput,
    handler: TriggerHandler<TConfig>,
  ): TriggerTypeRef<TConfig>
  unregisterTriggerType(input: string | { id: string; description?: string }): void
  registerService(input: RegisterServiceInput): void

  createChannel(bufferSize?: number): Promise<Channel>
  createStream(name: string, impl: StreamImplementation): { unregister(): void }

  listFunctions(): Promise<FunctionInfo[]>
  listTriggers(includeInternal?: boolean): Promise<TriggerInfo[]>
  listTriggerTypes(includeInternal?: boolean): Promise<TriggerTypeInfo[]>
  onFunctionsAvailable(callback: (functions: FunctionInfo[]) => void): () => void

  getConnectionState(): ConnectionState
  addConnectionStateListener(callback: (state: ConnectionState) => void): () => void
  shutdown(): Promise<void>
}

/** Connects at once and returns the client. */
export declare function registerWorker(url: string, options?: InitOptions): ISdk

export declare const EngineFunctions: {
  readonly LIST_FUNCTIONS: 'engine::functions::list'
  readonly LIST_TRIGGERS: 'engine::registered-triggers::list'
  readonly LIST_TRIGGER_TYPES: 'engine::triggers::list'
  readonly LIST_WORKERS: 'engine::workers::list'
  readonly CREATE_CHANNEL: 'engine::channels::create'
}

export declare const EngineTriggers: {
  readonly FUNCTIONS_AVAILABLE: 'engine::functions-available'
  readonly WORKERS_AVAILABLE: 'engine::workers-available'
}

/** Input of an RBAC auth function (runs in a Node worker, typed here for parity). */
export interface AuthInput {
  headers: Record<string, string>
  query_params: Record<string, string[]>
  ip_address: string
}

/** Result of an RBAC auth function. */
export interface AuthResult {
  allowed_functions: string[]
  forbidden_functions: string[]
  allowed_trigger_types?: string[]
  allow_trigger_type_registration: boolean
  allow_function_registration?: boolean
  context?: Record<string, unknown>
  function_registration_prefix?: string
}

export type { StreamChangeEvent } from './stream.js'
