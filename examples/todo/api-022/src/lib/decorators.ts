import { iii } from '../iii.ts'

type FunctionOptions = Parameters<typeof iii.registerFunction>[2]

/**
 * Registers `handler` as the iii function `id` (`description` etc. in `options`)
 * and returns its ref. The engine routes calls to it, from other workers and
 * from browsers whose RBAC session may call it.
 */
export function fn<TInput, TOutput>(
  id: string,
  handler: (input: TInput) => Promise<TOutput>,
  options?: FunctionOptions,
) {
  return iii.registerFunction(id, handler, options)
}
