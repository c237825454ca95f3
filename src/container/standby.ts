/**
 * A container monitor started ahead of need. Node.js takes tens of milliseconds to start and
 * to load the monitor (`shim.js`); a command about to start a container can start a monitor
 * first thing, so that this happens while the command itself loads and creates the container.
 * The standby monitor loads, then waits for its orders (its `ShimArgs` as one JSON line) on
 * fd 3; one that is never used ends when that pipe closes (or when it is dismissed).
 *
 * This module is small on purpose: the command imports it before anything else.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'

const BUNDLED = import.meta.url.endsWith('.cjs')

/**
 * The monitor's entry point, as arguments to node: `shim.js` next to this module in the
 * library's build; beside the bundled command, `shim.cjs` through the code-cache launcher.
 */
export const SHIM: readonly string[] = BUNDLED
  ? [fileURLToPath(new URL('./launch.cjs', import.meta.url)), fileURLToPath(new URL('./shim.cjs', import.meta.url))]
  : [fileURLToPath(new URL('./shim.js', import.meta.url))]

/** The argument that makes a monitor wait for its orders on fd 3. */
export const STANDBY_ARG = '--standby'

/**
 * The monitor's environment: ours, less NODE_EXTRA_CA_CERTS (the monitor opens no TLS
 * connection, and Node.js would parse that file at every container start).
 */
export function monitorEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { NODE_EXTRA_CA_CERTS: _unused, ...rest } = env
  return rest
}

/**
 * A monitor waiting for its orders: its stdout and stderr are pipes to us (for an attached
 * container, without a terminal and without stdin), fd 3 carries the orders in and the events out.
 */
export class MonitorStandby {
  private taken = false

  private constructor(readonly child: ChildProcess) {}

  static start(): MonitorStandby {
    const child = spawn(process.execPath, [...SHIM, STANDBY_ARG], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      cwd: '/',
      env: monitorEnv(process.env),
    })
    child.on('error', () => undefined)
    // a monitor that died early shows as a closed pipe when it is used, not as a crash here
    for (const s of child.stdio) (s as Readable | null)?.on('error', () => undefined)
    // until it is used, it must not keep this process alive
    child.unref()
    for (const s of child.stdio) (s as (Readable & { unref?: () => void }) | null)?.unref?.()
    return new MonitorStandby(child)
  }

  /** Whether it can still take orders. */
  get usable(): boolean {
    return !this.taken && this.child.exitCode === null && this.child.signalCode === null && (this.child.stdio[3] as unknown as { writable?: boolean } | null)?.writable === true
  }

  /** Gives the monitor its orders; the child process is then the caller's (referenced again). */
  take(orders: unknown): ChildProcess {
    if (!this.usable) throw new Error('the standby monitor is gone')
    this.taken = true
    this.child.ref()
    for (const s of this.child.stdio) (s as (Readable & { ref?: () => void }) | null)?.ref?.()
    const pipe = this.child.stdio[3] as unknown as { write: (s: string) => boolean }
    pipe.write(`${JSON.stringify(orders)}\n`)
    return this.child
  }

  /** Ends an unused standby monitor (closing its pipe is its signal to go). */
  dismiss(): void {
    if (this.taken) return
    this.taken = true
    for (const s of this.child.stdio) (s as Readable | null)?.destroy()
  }
}
