// Just enough of React's hook signatures for the seed's useTodos hook to type-check without
// installing React.
type SetStateAction<S> = S | ((prev: S) => S)
export function useState<S>(initial: S): [S, (value: SetStateAction<S>) => void]
export function useEffect(effect: () => void | (() => void), deps?: unknown[]): void
export function useCallback<T extends (...args: any[]) => any>(callback: T, deps: unknown[]): T
export function useMemo<T>(factory: () => T, deps: unknown[]): T
