/**
 * Whether the kernel's OOM killer struck a container while it ran (Docker's `OOMKilled`), seen by
 * its monitor. The runtime tears the container's cgroup down as soon as its process exits, so
 * the cgroup's counters cannot be read afterwards: the monitor listens while it runs, to runc's
 * `events` stream (notified by the kernel through the cgroup's memory events) and, with any
 * runtime, to the cgroup's OOM-kill counter itself: watched (inotify tells of a change of
 * memory.events) and read every few milliseconds from before the process starts (the cgroup's
 * folders are known ahead: they are the spec's cgroupsPath). runc's stream takes a moment to start,
 * and a process that outgrows its limit at once can be killed, and its cgroup gone, between two
 * reads: a process that died of SIGKILL in a cgroup that had reached its limit counts as OOM-killed.
 * And when neither saw it (the monitor's timers late on a busy machine, the whole run shorter than
 * a read's delay), the kernel's log still has it: a SIGKILL is an OOM kill when the kernel logged
 * one in the container's memory cgroup since the run began (kernelLoggedOomKill).
 */
import { spawn } from 'node:child_process'
import { closeSync, constants, openSync, readFileSync, readSync, watch, type FSWatcher } from 'node:fs'
import type { OciRuntime } from '../runtime/runtime.js'
import { cgroupPathsFor, containerCgroupsPath, type CgroupPaths } from '../runtime/cgroups.js'
import { lineReader } from '../util/stream.js'

/**
 * The files of a cgroup that count its OOM kills (v1 memory.oom_control, v2 memory.events) and,
 * on v1, the times it reached its limit (memory.failcnt; v2 counts them in memory.events, as `max`).
 */
function counterFiles(paths: CgroupPaths): { kills: string; failcnt?: string } | undefined {
  const v1 = paths.v1.get('memory')
  if (v1 !== undefined) return { kills: `${v1}/memory.oom_control`, failcnt: `${v1}/memory.failcnt` }
  return paths.v2 !== undefined ? { kills: `${paths.v2}/memory.events` } : undefined
}

/**
 * Reads every 10 ms for the first 3 seconds (the cgroup appears as the runtime starts, and a
 * process that outgrows its limit at once is gone a moment later), then every 50 ms.
 */
const FAST_READ_MS = 10
const FAST_READS = 300
const READ_MS = 50

/**
 * Watches the counters of the cgroup at `paths` from now on, before it exists; `seen(killed)` says
 * whether they counted a kill while the cgroup was there, or, for a process that died of SIGKILL
 * (`killed`), whether its cgroup had reached its limit: the kill then came from the OOM killer,
 * counted a moment before the runtime removed the cgroup, between two reads.
 */
function watchCounter(paths: CgroupPaths): { seen: (killed: boolean) => boolean; stop: () => void } {
  const files = counterFiles(paths)
  let seen = false
  let limitHit = false
  let watcher: FSWatcher | undefined
  let stopped = false
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
      // the cgroup is there: told of changes from now on, besides the reads
      if (watcher === undefined && !stopped) watcher = watch(files.kills, read).on('error', () => undefined)
    } catch {
      // not made yet, or gone (or no inotify on this file: the reads alone)
    }
  }
  read()
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
      stopped = true
      clearInterval(timer)
      watcher?.close()
    },
  }
}

/** A record of the kernel's log (`/dev/kmsg`): `level,seq,usecs,flags;text`. */
function kmsgRecord(line: string): { usecs: number; text: string } | undefined {
  const semi = line.indexOf(';')
  if (semi < 0) return undefined
  const usecs = Number(line.slice(0, semi).split(',')[2])
  return Number.isFinite(usecs) ? { usecs, text: line.slice(semi + 1) } : undefined
}

/**
 * Whether `records` (of /dev/kmsg) tell of an OOM kill in the memory cgroup at `cgroupPath`
 * (`oom-kill:…,oom_memcg=/cairn/ID,…`) at `sinceUs` microseconds after boot or later (the
 * records' clock, CLOCK_MONOTONIC's).
 */
export function oomKillLogged(records: Iterable<string>, cgroupPath: string, sinceUs: number): boolean {
  const needle = `oom_memcg=${cgroupPath},`
  for (const line of records) {
    const r = kmsgRecord(line)
    if (r && r.usecs >= sinceUs && r.text.startsWith('oom-kill:') && r.text.includes(needle)) return true
  }
  return false
}

/** Every record the kernel's log still holds, oldest first (none where it cannot be read). */
function* kmsgRecords(): Generator<string> {
  let fd: number
  try {
    fd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK)
  } catch {
    return
  }
  try {
    const buf = Buffer.alloc(16 << 10)
    for (let i = 0; i < 1_000_000; i++) {
      let n: number
      try {
        n = readSync(fd, buf, 0, buf.length, null)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'EPIPE') continue // records overwritten while read: go on with the next
        return // EAGAIN: the end; anything else: nothing more to learn
      }
      yield buf.toString('utf8', 0, n)
    }
  } finally {
    closeSync(fd)
  }
}

/** Microseconds on the kernel log's clock (CLOCK_MONOTONIC, as process.hrtime). */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n)
}

/** Whether the kernel logged an OOM kill in the memory cgroup at `cgroupPath` since `sinceUs` (monotonicUs). */
export function kernelLoggedOomKill(cgroupPath: string, sinceUs: number): boolean {
  return oomKillLogged(kmsgRecords(), cgroupPath, sinceUs)
}

export interface OomWatch {
  /** The process runs (the runtime knows the container): the runtime's own OOM events are listened to as well. */
  running(): void
  /** Stops listening; whether an OOM kill was seen (`killed`: the process died of SIGKILL). */
  stop(killed: boolean): Promise<boolean>
}

/**
 * Watches the container `id` for OOM kills from now on: call it before the runtime starts the
 * process, so that the cgroup's counters are read from the moment it exists.
 */
export function watchOom(rt: OciRuntime, id: string): OomWatch {
  // a little before now: an earlier run's kill came at least a restart's delay (100 ms) before
  const since = monotonicUs() - 20_000
  const counter = watchCounter(cgroupPathsFor(containerCgroupsPath(id)))
  let seen = false
  let events: { child: ReturnType<typeof spawn>; closed: Promise<void> } | undefined
  return {
    running: () => {
      const args = rt.oomEventsArgs(id)
      if (args === undefined || events !== undefined) return
      const child = spawn(rt.path, args, { stdio: ['ignore', 'pipe', 'ignore'] })
      child.stdout.on('data', lineReader((line) => {
        try {
          if ((JSON.parse(line) as { type?: unknown }).type === 'oom') seen = true
        } catch {
          // not an event
        }
      }))
      child.on('error', () => undefined)
      events = { child, closed: new Promise<void>((resolve) => child.once('close', () => resolve())) }
    },
    stop: async (killed) => {
      if (events) {
        // let a notification of the last moments arrive
        await Promise.race([events.closed, new Promise((r) => setTimeout(r, 50))])
        events.child.kill('SIGKILL')
        await events.closed
      }
      counter.stop()
      return seen || counter.seen(killed) || (killed && kernelLoggedOomKill(containerCgroupsPath(id), since))
    },
  }
}
