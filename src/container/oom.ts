/**
 * Whether the kernel's OOM killer struck a container while it ran (Docker's `OOMKilled`), seen by
 * its monitor. The runtime tears the container's cgroup down as soon as its process exits, so
 * the cgroup's counters cannot be read afterwards: the monitor listens while it runs, to runc's
 * `events` stream (notified by the kernel through the cgroup's memory events) and, with any
 * runtime, to the cgroup's OOM-kill counter itself: watched (inotify tells of a change of
 * memory.events) and read every 50 ms. runc's stream takes a moment to start, and a process that
 * outgrows its limit at once can be killed, and its cgroup gone, before it listens.
 */
import { spawn } from 'node:child_process'
import { readFileSync, watch, type FSWatcher } from 'node:fs'
import type { OciRuntime } from '../runtime/runtime.js'
import { cgroupPathsOf } from '../runtime/cgroups.js'
import { lineReader } from '../util/stream.js'

/** The file of a process's cgroup that counts its OOM kills (v1 memory.oom_control, v2 memory.events). */
function oomCounterFile(pid: number): string | undefined {
  const paths = cgroupPathsOf(pid)
  const v1 = paths?.v1.get('memory')
  if (v1 !== undefined) return `${v1}/memory.oom_control`
  return paths?.v2 !== undefined ? `${paths.v2}/memory.events` : undefined
}

/** Watches the counter from now on; `seen()` says whether it counted a kill (while the cgroup was there). */
function watchCounter(pid: number): { seen: () => boolean; stop: () => void } {
  const file = oomCounterFile(pid)
  let seen = false
  const read = (): void => {
    if (seen || file === undefined) return
    try {
      const m = /^oom_kill (\d+)$/m.exec(readFileSync(file, 'utf8'))
      if (m && Number(m[1]) > 0) seen = true
    } catch {
      // the cgroup is gone
    }
  }
  read()
  let watcher: FSWatcher | undefined
  try {
    if (file !== undefined) watcher = watch(file, read).on('error', () => undefined)
  } catch {
    // no inotify on this file: the polling alone
  }
  const timer = setInterval(read, 50)
  return {
    seen: () => seen,
    stop: () => {
      read()
      clearInterval(timer)
      watcher?.close()
    },
  }
}

export interface OomWatch {
  /** Stops listening; whether an OOM kill was seen. */
  stop(): Promise<boolean>
}

export function watchOom(rt: OciRuntime, id: string, pid: number): OomWatch {
  const counter = watchCounter(pid)
  let seen = false
  const args = rt.oomEventsArgs(id)
  if (args !== undefined) {
    const child = spawn(rt.path, args, { stdio: ['ignore', 'pipe', 'ignore'] })
    child.stdout.on('data', lineReader((line) => {
      try {
        if ((JSON.parse(line) as { type?: unknown }).type === 'oom') seen = true
      } catch {
        // not an event
      }
    }))
    child.on('error', () => undefined)
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()))
    return {
      stop: async () => {
        // let a notification of the last moments arrive
        await Promise.race([closed, new Promise((r) => setTimeout(r, 50))])
        child.kill('SIGKILL')
        await closed
        counter.stop()
        return seen || counter.seen()
      },
    }
  }
  return {
    stop: async () => {
      counter.stop()
      return counter.seen()
    },
  }
}
