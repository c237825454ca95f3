/**
 * A running container's resources: `update` (new cgroup limits, live), `stats` (Docker's
 * figures: CPU %, memory usage and limit, network and block I/O, processes) and `top` (the host's
 * `ps`, filtered to the container's processes). They return data; the CLI prints.
 */
import { execFile } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { CairnError } from '../errors/index.js'
import type { ImageStore } from '../image/store.js'
import type { ResourceLimits } from '../container/config.js'
import { ContainerStates, type ContainerRow } from '../container/types.js'
import { cgroupProcesses, networkIo, sampleCgroups, type CgroupSample } from '../runtime/cgroups.js'
import { containerEngine, type BatchResult } from './containers.js'

export type { ResourceLimits }

/** `docker update`: the same limits for each container named (0 leaves a limit as it is). */
export async function updateContainers(store: ImageStore, names: readonly string[], limits: ResourceLimits): Promise<BatchResult> {
  const r: BatchResult = { done: [], errors: [] }
  for (const n of names) {
    try {
      await containerEngine(store).update(n, limits)
      r.done.push(n)
    } catch (err) {
      r.errors.push({ container: n, error: err as Error })
    }
  }
  return r
}

/** One container's figures, as `docker stats` shows them (bytes, and percentages of 100). */
export interface ContainerStats {
  id: string
  name: string
  /** Share of the host's CPU time over the interval, times the number of CPUs (200% = two CPUs busy). */
  cpuPercent: number
  /** Memory in use, page cache that can be dropped aside. */
  memoryUsage: number
  /** Its memory limit, or the host's memory. */
  memoryLimit: number
  memoryPercent: number
  /** Bytes received and sent on its network interfaces (0 with the host's network). */
  netRx: number
  netTx: number
  blockRead: number
  blockWrite: number
  pids: number
  /** The raw reading. */
  sample: CgroupSample
}

export interface StatsOptions {
  /** All containers, not only running ones (stopped ones show zeros). */
  all?: boolean
  /** Milliseconds between the two readings that CPU % is computed from (default 1000, as Docker's). */
  intervalMs?: number
  signal?: AbortSignal
}

interface Target {
  row: ContainerRow
  hostNetwork: boolean
}

async function targets(store: ImageStore, names: readonly string[], all: boolean): Promise<Target[]> {
  const engine = containerEngine(store)
  await engine.reconcile()
  const rows = names.length > 0
    ? names.map((n) => engine.resolve(n))
    : engine.rows.list().filter((r) => all ? r.state !== ContainerStates.creating : r.state === ContainerStates.running || r.state === ContainerStates.paused)
  const out: Target[] = []
  for (const row of rows) {
    const mode = (await engine.readSpec(row.id).catch(() => undefined))?.hostConfig.networkMode ?? ''
    out.push({ row, hostNetwork: mode === 'host' })
  }
  return out
}

function figures(t: Target, pid: number, before: CgroupSample | undefined, now: CgroupSample | undefined): ContainerStats {
  const s = now ?? { read: Date.now(), cpuUsageNs: 0, systemCpuNs: 0, onlineCpus: 0, memoryUsage: 0, memoryLimit: 0, inactiveFile: 0, pids: 0, blockRead: 0, blockWrite: 0, oomKills: 0 }
  let cpuPercent = 0
  if (before && now) {
    const cpuDelta = now.cpuUsageNs - before.cpuUsageNs
    const sysDelta = now.systemCpuNs - before.systemCpuNs
    if (cpuDelta > 0 && sysDelta > 0) cpuPercent = (cpuDelta / sysDelta) * now.onlineCpus * 100
  }
  const used = s.inactiveFile < s.memoryUsage ? s.memoryUsage - s.inactiveFile : s.memoryUsage
  const net = now && !t.hostNetwork && pid > 0 ? networkIo(pid) : { rx: 0, tx: 0 }
  return {
    id: t.row.id,
    name: t.row.name,
    cpuPercent,
    memoryUsage: used,
    memoryLimit: s.memoryLimit,
    memoryPercent: s.memoryLimit > 0 ? (used / s.memoryLimit) * 100 : 0,
    netRx: net.rx,
    netTx: net.tx,
    blockRead: s.blockRead,
    blockWrite: s.blockWrite,
    pids: s.pids,
    sample: s,
  }
}

function livePid(store: ImageStore, id: string): number {
  const row = containerEngine(store).rows.get(id)
  return row && (row.state === ContainerStates.running || row.state === ContainerStates.paused) ? row.pid : 0
}

/** `docker stats --no-stream`: one reading per container (CPU % over `intervalMs`). */
export async function containerStats(store: ImageStore, names: readonly string[] = [], opts: StatsOptions = {}): Promise<ContainerStats[]> {
  const list = await targets(store, names, opts.all ?? false)
  const first = list.map((t) => {
    const pid = livePid(store, t.row.id)
    return pid > 0 ? sampleCgroups(pid) : undefined
  })
  if (list.length > 0) await sleep(opts.intervalMs ?? 1000, undefined, opts.signal ? { signal: opts.signal } : {})
  return list.map((t, i) => {
    const pid = livePid(store, t.row.id)
    return figures(t, pid, first[i], pid > 0 ? sampleCgroups(pid) : undefined)
  })
}

/**
 * `docker stats`: a reading of every container every `intervalMs` until the signal aborts; the
 * containers followed are those named, or those running (newly started ones join).
 */
export async function* streamStats(store: ImageStore, names: readonly string[] = [], opts: StatsOptions = {}): AsyncGenerator<ContainerStats[]> {
  const last = new Map<string, CgroupSample>()
  for (;;) {
    if (opts.signal?.aborted) return
    const list = await targets(store, names, opts.all ?? false)
    const out: ContainerStats[] = []
    for (const t of list) {
      const pid = livePid(store, t.row.id)
      const now = pid > 0 ? sampleCgroups(pid) : undefined
      out.push(figures(t, pid, last.get(t.row.id), now))
      if (now) last.set(t.row.id, now)
      else last.delete(t.row.id)
    }
    yield out
    try {
      await sleep(opts.intervalMs ?? 1000, undefined, opts.signal ? { signal: opts.signal } : {})
    } catch {
      return
    }
  }
}

/** `docker top`: the columns of `ps` and a row per process of the container. */
export interface TopResult {
  titles: string[]
  processes: string[][]
}

/** `docker top CONTAINER [ps OPTIONS]` (default `-ef`): the host's ps, filtered to the container's processes. */
export async function topContainer(store: ImageStore, nameOrId: string, psArgs: readonly string[] = []): Promise<TopResult> {
  const engine = containerEngine(store)
  await engine.reconcile()
  const row = engine.resolve(nameOrId)
  if ((row.state !== ContainerStates.running && row.state !== ContainerStates.paused) || row.pid <= 0) {
    throw new CairnError('CONFLICT', `Container ${row.id} is not running`)
  }
  const args = psArgs.length > 0 ? [...psArgs] : ['-ef']
  for (const m of args.join(' ').matchAll(/\s*([^\s]*)=\s*(PID[^\s]*)/g)) {
    if (m[1] !== 'pid') throw new CairnError('INVALID_ARGUMENT', `specifying "${m[1] ?? ''}=${m[2] ?? ''}" is not allowed`)
  }
  const pids = new Set(cgroupProcesses(row.pid))
  const output = await new Promise<string>((resolve, reject) => {
    execFile('ps', args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new CairnError('INVALID_ARGUMENT', `Error running ps: ${(stderr.split('\n')[0] ?? '').trim() || err.message}`))
      else resolve(stdout)
    })
  })
  return parsePsOutput(output, pids)
}

/** ps's output as Docker reads it: the PID column finds each row's process; the last column keeps its spaces. */
export function parsePsOutput(output: string, pids: ReadonlySet<number>): TopResult {
  const lines = output.split('\n')
  const fields = (l: string): string[] => l.split(/[\t\n\f\r ]+/).filter(Boolean)
  const titles = fields(lines[0] ?? '')
  const pidIndex = titles.indexOf('PID')
  if (pidIndex < 0) throw new CairnError('INVALID_ARGUMENT', "Couldn't find PID field in ps output")
  const processes: string[][] = []
  let previousIn = false
  const add = (f: string[]): void => {
    const head = f.slice(0, titles.length - 1)
    processes.push([...head, f.slice(titles.length - 1).join(' ')])
  }
  for (const line of lines.slice(1)) {
    if (line === '') continue
    const f = fields(line)
    const p = f[pidIndex] ?? ''
    if (p === '-') {
      // a thread line (ps -L): it belongs to the process above
      if (previousIn) add(f)
      continue
    }
    if (!/^\d+$/.test(p)) throw new CairnError('INVALID_ARGUMENT', `Unexpected pid '${p}'`)
    previousIn = pids.has(Number(p))
    if (previousIn) add(f)
  }
  return { titles, processes }
}
