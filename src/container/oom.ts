/**
 * Whether the kernel's OOM killer struck a container while it ran (Docker's `OOMKilled`), seen by
 * its monitor. The runtime tears the container's cgroup down as soon as its process exits, so
 * the cgroup's counters cannot be read afterwards: the monitor listens while it runs, to runc's
 * `events` stream (notified by the kernel through the cgroup's memory events), or with another
 * runtime reads the cgroup's OOM-kill counter every 200 ms.
 */
import { spawn } from 'node:child_process'
import type { OciRuntime } from '../runtime/runtime.js'
import { sampleCgroups } from '../runtime/cgroups.js'

export interface OomWatch {
  /** Stops listening; whether an OOM kill was seen. */
  stop(): Promise<boolean>
}

export function watchOom(rt: OciRuntime, id: string, pid: number): OomWatch {
  let seen = false
  const args = rt.oomEventsArgs(id)
  if (args !== undefined) {
    const child = spawn(rt.path, args, { stdio: ['ignore', 'pipe', 'ignore'] })
    let buf = ''
    child.stdout.on('data', (b: Buffer) => {
      buf += b.toString('utf8')
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        try {
          if ((JSON.parse(line) as { type?: unknown }).type === 'oom') seen = true
        } catch {
          // not an event
        }
      }
    })
    child.on('error', () => undefined)
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()))
    return {
      stop: async () => {
        // let a notification of the last moments arrive
        await Promise.race([closed, new Promise((r) => setTimeout(r, 50))])
        child.kill('SIGKILL')
        await closed
        return seen
      },
    }
  }
  const poll = (): void => {
    if ((sampleCgroups(pid)?.oomKills ?? 0) > 0) seen = true
  }
  const timer = setInterval(poll, 200)
  return {
    stop: async () => {
      clearInterval(timer)
      return seen
    },
  }
}
