/**
 * Entry point of a container's monitor process (see monitor.ts). Started by ContainerEngine.start
 * as `node shim.js '<ShimArgs as JSON>'`, in a session of its own, so that it outlives its starter.
 */
import { appendFileSync } from 'node:fs'
import { ImageStore } from '../image/store.js'
import { ContainerEngine, type ShimArgs } from './engine.js'
import { runMonitor } from './monitor.js'
import { containerPaths } from './types.js'

// the terminal's signals are not ours: the container (through the runtime) handles its own
for (const s of ['SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU'] as const) process.on(s, () => undefined)

const args = JSON.parse(process.argv[2] ?? '{}') as ShimArgs
let store: ImageStore | undefined
try {
  store = await ImageStore.open(args.root)
  const code = await runMonitor(new ContainerEngine(store), args)
  process.exitCode = code
} catch (err) {
  try {
    appendFileSync(containerPaths(args.root, args.id).shimLog, `${new Date().toISOString()} monitor failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  } catch {
    // nowhere to write
  }
  process.exitCode = 125
} finally {
  store?.close()
}
// a pipe held open for the container's stdin would keep this process alive: we are done
process.exit()
