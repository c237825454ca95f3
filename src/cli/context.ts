import type { Command } from 'commander'
import { ImageStore } from '../image/store.js'
import { defaultRoot } from '../api/root.js'

/** The store named by the global `--root` option (or CAIRN_ROOT, or the default). */
function rootOf(cmd: Command): string {
  const opts = cmd.optsWithGlobals<{ root?: string }>()
  return opts.root ?? defaultRoot()
}

/** Opens the store, runs `fn`, closes the store whatever happens. */
export async function withStore<T>(cmd: Command, fn: (store: ImageStore) => Promise<T> | T): Promise<T> {
  const store = await ImageStore.open(rootOf(cmd))
  try {
    return await fn(store)
  } finally {
    store.close()
  }
}

/** Collects a repeatable option (`-c A -c B`). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

/** Aborts on SIGINT/SIGTERM so that long operations clean up after themselves. */
export function interruptSignal(): AbortSignal {
  const ac = new AbortController()
  const onSignal = (): void => ac.abort(new Error('interrupted'))
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  return ac.signal
}
