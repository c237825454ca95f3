/**
 * Whether the kernel's OOM killer struck a container while it ran (Docker's `OOMKilled`), seen by
 * its monitor. The runtime tears the container's cgroup down as soon as its process exits, so
 * the cgroup's counters cannot be read afterwards: the monitor listens while it runs, to runc's
 * `events` stream (notified by the kernel through the cgroup's memory events) and, with any
 * runtime, to the cgroup's OOM-kill counter itself: watched (inotify tells of a change of
 * memory.events) and read every few milliseconds. runc's stream takes a moment to start, and a
 * process that outgrows its limit at once can be killed, and its cgroup gone, between two reads:
 * a process that died of SIGKILL in a cgroup that had reached its limit counts as OOM-killed.
 */
import { spawn } from 'node:child_process'
import { readFileSync, watch, type FSWatcher } from 'node:fs'
import type { OciRuntime } from '../runtime/runtime.js'
import { cgroupPathsOf } from '../runtime/cgroups.js'
import { lineReader } from '../util/stream.js'

/**
 * The files of a process's cgroup that count its OOM kills (v1 memory.oom_control, v2
 * memory.events) and, on v1, the times it reached its limit (memory.failcnt; v2 counts them in
 * memory.events, as `max`).
 */
function counterFiles(pid: number): { kills: string; failcnt?: string } | undefined {
  const paths = cgroupPathsOf(pid)
  const v1 = paths?.v1.get('memory')
  if (v1 !== undefined) return { kills: `${v1}/memory.oom_control`, failcnt: `${v1}/memory.failcnt` }
  return paths?.v2 !== undefined ? { kills: `${paths.v2}/memory.events` } : undefined
}

/** Reads every 10 ms for the first second (a process that outgrows its limit at once), then every 50 ms. */
const FAST_READ_MS = 10
const FAST_READS = 100
const READ_MS = 50

/**
 * Watches the counters from now on; `seen(killed)` says whether they counted a kill while the
 * cgroup was there, or, for a process that died of SIGKILL (`killed`), whether its cgroup had
 * reached its limit: the kill then came from the OOM killer, counted a moment before the runtime
 * removed the cgroup, between two reads.
 */
function watchCounter(pid: number): { seen: (killed: boolean) => boolean; stop: () => void } {
  const files = counterFiles(pid)
  let seen = false
  let limitHit = false
  const read = (): void => {
    if (seen || files === undefined) return
    try {
      const kills = readFileSync(files.kills, 'utf8')
      const m = /^oom_kill (\d+)$/m.exec(kills)
      if (m && Number(m[1]) > 0) seen = true
      if (!limitHit) {
        const hits = files.failcnt === undefined ? /^max (\d+)$/m.exec(kills)?.[1] : readFileSync(files.failcnt, 'utf8').trim()
        if (Number(hits ?? 0) > 0) limitHit = true
      }
    } catch {
      // the cgroup is gone
    }
  }
  read()
  let watcher: FSWatcher | undefined
  try {
    if (files !== undefined) watcher = watch(files.kills, read).on('error', () => undefined)
  } catch {
    // no inotify on this file: the polling alone
  }
  let reads = 0
  let timer = setInterval(() => {
    read()
    if (++reads === FAST_READS) {
      clearInterval(timer)
      timer = setInterval(read, READ_MS)
    }
  }, FAST_READ_MS)
  return {
    seen: (killed) => seen || (killed && limitHit),
    stop: () => {
      read()
      clearInterval(timer)
      watcher?.close()
    },
  }
}

export interface OomWatch {
  /** Stops listening; whether an OOM kill was seen (`killed`: the process died of SIGKILL). */
  stop(killed: boolean): Promise<boolean>
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
      stop: async (killed) => {
        // let a notification of the last moments arrive
        await Promise.race([closed, new Promise((r) => setTimeout(r, 50))])
        child.kill('SIGKILL')
        await closed
        counter.stop()
        return seen || counter.seen(killed)
      },
    }
  }
  return {
    stop: async (killed) => {
      counter.stop()
      return counter.seen(killed)
    },
  }
}
