/** A concurrency limit: at most `n` tasks run at once; the others wait their turn in order. */
export function limiter(n: number): <T>(task: () => Promise<T>, onQueued?: () => void) => Promise<T> {
  let running = 0
  const queue: (() => void)[] = []
  const next = (): void => {
    running--
    queue.shift()?.()
  }
  return async <T>(task: () => Promise<T>, onQueued?: () => void): Promise<T> => {
    if (running >= n) {
      onQueued?.()
      await new Promise<void>((resolve) => queue.push(resolve))
    }
    running++
    try {
      return await task()
    } finally {
      next()
    }
  }
}
