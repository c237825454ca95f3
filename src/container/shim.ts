/**
 * Entry point of a container's monitor process (see monitor.ts). Started by ContainerEngine.start
 * as `node shim.js '<ShimArgs as JSON>'`, in a session of its own, so that it outlives its starter;
 * or ahead of need as `node shim.js --standby` (standby.ts), which reads the ShimArgs from fd 3.
 */
import { appendFileSync } from 'node:fs'
import { Socket } from 'node:net'
import { ImageStore } from '../image/store.js'
import { ContainerEngine, type ShimArgs } from './engine.js'
import { runMonitor } from './monitor.js'
import { containerPaths } from './types.js'
import { STANDBY_ARG } from './standby.js'

/** The first line on fd 3 (undefined when the pipe closes first: the standby was not needed). */
function ordersFromFd3(): Promise<string | undefined> {
  return new Promise((resolve) => {
    const pipe = new Socket({ fd: 3, readable: true, writable: false })
    let buf = ''
    const done = (line: string | undefined): void => {
      pipe.removeAllListeners('data')
      pipe.pause()
      resolve(line)
    }
    pipe.on('data', (b: Buffer) => {
      buf += b.toString('utf8')
      const nl = buf.indexOf('\n')
      if (nl >= 0) done(buf.slice(0, nl))
    })
    pipe.on('end', () => done(undefined))
    pipe.on('error', () => done(undefined))
  })
}

// the terminal's signals are not ours: the container (through the runtime) handles its own
for (const s of ['SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU'] as const) process.on(s, () => undefined)

async function monitorMain(): Promise<void> {
  const orders = process.argv[2] === STANDBY_ARG ? await ordersFromFd3() : process.argv[2]
  if (orders === undefined) process.exit(0)
  const args = JSON.parse(orders) as ShimArgs
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
}

void monitorMain()
