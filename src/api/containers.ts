/**
 * The container verbs (`create`, `run`, `start`, `stop`, `kill`, `exec`, `logs`, `ps`, `rm`,
 * `inspect`, `rename`, `cp`, `diff`, `export`, `pause`, `unpause`): they return data; the CLI prints.
 */
import { createHash } from 'node:crypto'
import type { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CairnError, hasCode } from '../errors/index.js'
import type { ImageId } from '../oci/digest.js'
import type { ContainerConfig } from '../oci/types.js'
import type { ImageRecord, ImageStore } from '../image/store.js'
import { snapshotChanges } from '../snapshot/index.js'
import type { Snapshotter } from '../snapshot/types.js'
import { tarDirectory } from '../layer/diff.js'
import type { Change } from '../layer/changes.js'
import type { MonitorStandby } from '../container/standby.js'
import { humanDuration } from '../util/format.js'
import {
  commandString, ContainerEngine, snapshotKeys,
  type CreateOptions, type ExecOptions, type ExecProcess, type StartedContainer, type StartOptions,
} from '../container/engine.js'
import type { Stdio, TerminalSize } from '../container/stdio.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { ContainerStates, type ContainerRow, type ContainerSpec } from '../container/types.js'
import { readLogs, type LogEntry, type ReadLogsOptions } from '../container/logs.js'
import { healthOf, healthWord, probeCommand, readHealth } from '../container/health.js'
import type { HealthState } from '../container/types.js'
import { appArmorProfileFor, securityOptionsOf } from '../container/confine.js'
import { DEFAULT_SHM_SIZE, MASKED_PATHS, READONLY_PATHS } from '../runtime/spec.js'
import { copyIn, copyOut, resolveContainerPath, type CopyOptions } from '../container/copy.js'
import { posix } from 'node:path'
import type { Attachment, PublishedPort } from '../network/types.js'
import { lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import {
  ContainerFilterKeys, ContainerStatusValues, invalidFilter, matchLabels, matchRegexp, parseUntil, validateFilterKeys, values, type FilterArgs,
} from './filters.js'

export type { CreateOptions, ExecOptions, ExecProcess, ContainerSpec, LogEntry, CopyOptions, Change, Stdio, TerminalSize }

const engines = new WeakMap<ImageStore, ContainerEngine>()

/** The engine of a store (one per store object). */
export function containerEngine(store: ImageStore): ContainerEngine {
  let e = engines.get(store)
  if (!e) {
    e = new ContainerEngine(store)
    engines.set(store, e)
  }
  return e
}

// ---------------------------------------------------------------- create, run, start

export interface CreateResult {
  id: string
  name: string
}

/** `docker create`. */
export async function createContainer(store: ImageStore, opts: CreateOptions): Promise<CreateResult> {
  const spec = await containerEngine(store).create(opts)
  return { id: spec.id, name: spec.name }
}

export interface RunOptions extends CreateOptions {
  /** `-d`: return once the process runs. */
  detach?: boolean
  /** Attached (not `detach`): the caller's streams (none: the output is only in the log). */
  stdio?: Stdio
  /** Called once the container's process runs (e.g. to forward signals to it). */
  onStarted?: (id: string) => void
  /** A monitor started ahead of need (`MonitorStandby.start()`): used if it fits, else dismissed. */
  monitor?: MonitorStandby
}

export interface RunResult {
  id: string
  name: string
  /** The exit code of the container's process (undefined with `detach`, or when the caller detached). */
  exitCode?: number
}

/**
 * `docker run`: create, then start. An error before the process runs (command not found:
 * COMMAND_NOT_FOUND) removes the container again: nothing is left.
 */
export async function runContainer(store: ImageStore, opts: RunOptions): Promise<RunResult> {
  const engine = containerEngine(store)
  const spec = await engine.create(opts)
  let started: StartedContainer
  try {
    const s: StartOptions = {}
    if (!opts.detach) s.attach = [opts.stdio ?? {}]
    if (opts.monitor) s.monitor = opts.monitor
    started = await engine.start(spec.id, s)
  } catch (err) {
    await engine.remove(spec.id, { force: true }).catch(() => undefined)
    throw err
  }
  opts.onStarted?.(spec.id)
  if (opts.detach) {
    started.detach()
    return { id: spec.id, name: spec.name }
  }
  const exitCode = await started.wait()
  return exitCode === undefined ? { id: spec.id, name: spec.name } : { id: spec.id, name: spec.name, exitCode }
}

export interface StartContainerOptions {
  /** `-a`: attach these streams and resolve with the exit code (or when the caller detaches). */
  stdio?: Stdio
  onStarted?: (id: string) => void
}

/** `docker start` of one container: with `stdio`, resolves once it exits, with its exit code. */
export async function startContainer(store: ImageStore, nameOrId: string, opts: StartContainerOptions = {}): Promise<{ id: string; exitCode?: number }> {
  const engine = containerEngine(store)
  const started = await engine.start(nameOrId, opts.stdio ? { attach: [opts.stdio] } : {})
  opts.onStarted?.(started.id)
  if (!opts.stdio) {
    started.detach()
    return { id: started.id }
  }
  const exitCode = await started.wait()
  return exitCode === undefined ? { id: started.id } : { id: started.id, exitCode }
}

/**
 * `docker attach`: the caller's streams joined to a running container's process until it exits
 * (its exit code) or the caller detaches (undefined).
 */
export async function attachContainer(store: ImageStore, nameOrId: string, stdio: Stdio): Promise<{ id: string; exitCode?: number }> {
  const engine = containerEngine(store)
  await engine.reconcile()
  const row = engine.resolve(nameOrId)
  const attached = await engine.attach(row.id, stdio)
  const outcome = await attached.done
  if (outcome.exitCode !== undefined) return { id: row.id, exitCode: outcome.exitCode }
  const now = engine.rows.get(row.id)
  if (!outcome.detached || !now || now.state === ContainerStates.exited) return { id: row.id, exitCode: await engine.waitExit(row.id) }
  return { id: row.id }
}

/** Resizes a running container's terminal (`docker attach`/the Engine API's `/resize`). */
export async function resizeContainer(store: ImageStore, nameOrId: string, size: TerminalSize): Promise<void> {
  await containerEngine(store).resize(nameOrId, size)
}

/**
 * The exit code of a container once it stops: from its monitor (which tells attached callers
 * after the exit is recorded, and with --rm after the removal) while it runs, else its row.
 */
async function exitOf(engine: ContainerEngine, id: string, signal?: AbortSignal): Promise<number> {
  const row = engine.rows.get(id)
  if (row && (row.state === ContainerStates.running || row.state === ContainerStates.paused)) {
    try {
      const attached = await engine.attach(id, {})
      const onAbort = (): void => attached.detach()
      signal?.addEventListener('abort', onAbort, { once: true })
      const outcome = await attached.done.finally(() => signal?.removeEventListener('abort', onAbort))
      if (outcome.exitCode !== undefined) return outcome.exitCode
    } catch {
      // stopped meanwhile
    }
  }
  return engine.waitExit(id, Infinity, signal)
}

/** Docker's `wait` conditions: `not-running` (default), `next-exit`, `removed`. */
export type WaitCondition = 'not-running' | 'next-exit' | 'removed'

/**
 * `docker wait`: the exit code once the container is not running (`not-running`), once it
 * exits after now (`next-exit`), or once it is removed (`removed`).
 */
export async function waitContainer(store: ImageStore, nameOrId: string, opts: { condition?: WaitCondition; signal?: AbortSignal } = {}): Promise<number> {
  const engine = containerEngine(store)
  await engine.reconcile()
  const row = engine.resolve(nameOrId)
  const condition = opts.condition ?? 'not-running'
  if (condition === 'next-exit') {
    // wait for a start if it has not started yet, then for its end
    const startedAfter = row.started_at ?? 0
    for (let i = 0; ; i++) {
      const now = engine.rows.get(row.id)
      if (!now) return engine.lastExitCode(row.id) ?? row.exit_code
      const live = now.state === ContainerStates.running || now.state === ContainerStates.paused || now.state === ContainerStates.starting
      if (live || (now.started_at ?? 0) > startedAfter) break
      if (opts.signal?.aborted) throw new CairnError('ABORTED', 'interrupted')
      await sleep(i < 100 ? 10 : 50)
    }
  }
  const code = await exitOf(engine, row.id, opts.signal)
  if (condition === 'removed') {
    for (let i = 0; engine.rows.get(row.id); i++) {
      if (opts.signal?.aborted) throw new CairnError('ABORTED', 'interrupted')
      await sleep(i < 100 ? 10 : 50)
    }
  }
  return code
}

// ---------------------------------------------------------------- many at once

export interface BatchResult {
  /** The arguments that succeeded, as given (Docker prints them). */
  done: string[]
  errors: { container: string; error: Error }[]
}

async function each(names: readonly string[], fn: (n: string) => Promise<unknown>): Promise<BatchResult> {
  const r: BatchResult = { done: [], errors: [] }
  for (const n of names) {
    try {
      await fn(n)
      r.done.push(n)
    } catch (err) {
      r.errors.push({ container: n, error: err as Error })
    }
  }
  return r
}

/** `docker stop [-t N]`. */
export function stopContainers(store: ImageStore, names: readonly string[], opts: { timeout?: number } = {}): Promise<BatchResult> {
  return each(names, (n) => containerEngine(store).stop(n, opts.timeout ?? 10))
}

/** `docker kill [-s SIGNAL]`. */
export function killContainers(store: ImageStore, names: readonly string[], opts: { signal?: string } = {}): Promise<BatchResult> {
  return each(names, (n) => containerEngine(store).kill(n, opts.signal ?? 'KILL'))
}

/** `docker rm [-f] [-v]` (`volumes`: the containers' anonymous volumes too, unless another container uses them). */
export function removeContainers(store: ImageStore, names: readonly string[], opts: { force?: boolean; volumes?: boolean } = {}): Promise<BatchResult> {
  return each(names, (n) => containerEngine(store).remove(n, opts))
}

export interface ContainerPruneResult {
  /** IDs of the containers removed. */
  deleted: string[]
  /** Bytes of their writable layers. */
  reclaimed: number
}

/**
 * `docker container prune`: removes every stopped (created or exited) container; filters
 * `until` (created before) and `label`/`label!`.
 */
export async function pruneContainers(store: ImageStore, opts: { filters?: FilterArgs } = {}): Promise<ContainerPruneResult> {
  const filters = opts.filters ?? {}
  validateFilterKeys(filters, ['until', 'label', 'label!'])
  const now = Date.now()
  const until = values(filters, 'until').map((u) => parseUntil(u, now))
  const engine = containerEngine(store)
  await engine.reconcile()
  const result: ContainerPruneResult = { deleted: [], reclaimed: 0 }
  for (const row of engine.rows.list()) {
    if (row.state !== ContainerStates.exited && row.state !== ContainerStates.created) continue
    if (until.some((t) => row.created >= t)) continue
    if (values(filters, 'label').length > 0 || values(filters, 'label!').length > 0) {
      const labels = (await engine.readSpec(row.id).catch(() => undefined))?.config.Labels ?? {}
      if (!matchLabels(filters, 'label', labels)) continue
      if (values(filters, 'label!').some((v) => matchLabels({ l: [v] }, 'l', labels))) continue
    }
    const spec = await engine.readSpec(row.id).catch(() => undefined)
    const size = spec ? await writableLayerSize(engine, spec, row.id).catch(() => 0) : 0
    try {
      await engine.removeStopped(row.id)
      if (engine.rows.get(row.id)) continue
      result.deleted.push(row.id)
      result.reclaimed += size
    } catch {
      // started (or removed) meanwhile
    }
  }
  return result
}

/** `docker pause`. */
export function pauseContainers(store: ImageStore, names: readonly string[]): Promise<BatchResult> {
  return each(names, (n) => containerEngine(store).pause(n))
}

/** `docker unpause`. */
export function unpauseContainers(store: ImageStore, names: readonly string[]): Promise<BatchResult> {
  return each(names, (n) => containerEngine(store).resume(n))
}

/** Freezes a running container (cgroup freezer through the runtime), e.g. for a consistent commit. */
export async function pauseContainer(store: ImageStore, nameOrId: string): Promise<void> {
  await containerEngine(store).pause(nameOrId)
}

/** Thaws a paused container. */
export async function resumeContainer(store: ImageStore, nameOrId: string): Promise<void> {
  await containerEngine(store).resume(nameOrId)
}

export async function renameContainer(store: ImageStore, nameOrId: string, newName: string): Promise<void> {
  await containerEngine(store).rename(nameOrId, newName)
}

// ---------------------------------------------------------------- ps, inspect

export type ContainerStatusWord = 'created' | 'running' | 'paused' | 'restarting' | 'exited' | 'removing'

export interface ContainerSummary {
  id: string
  name: string
  /** The image as `ps` shows it: the name used, or the short image ID when that name now means another image. */
  image: string
  imageId: ImageId
  /** Docker's COMMAND (not quoted, not truncated). */
  command: string
  created: Date
  state: ContainerStatusWord
  /** Docker's STATUS: `Up 3 seconds`, `Up 3 seconds (healthy)`, `Up 3 seconds (Paused)`, `Restarting (1) 2 seconds ago`, `Exited (0) 5 seconds ago`, `Created`. */
  status: string
  /** Its health check's status (`starting`, `healthy`, `unhealthy`), when it has one. */
  health?: 'starting' | 'healthy' | 'unhealthy'
  /** Restarts by its restart policy since its user last started it. */
  restartCount?: number
  exitCode: number
  startedAt?: Date
  finishedAt?: Date
  labels: Record<string, string>
  /** What `ps` shows of its mounts: a volume's name, a bind's host path (Docker's `Mounts` column). */
  mounts: string[]
  /** How many of them are volumes (Docker's `LocalVolumes`). */
  localVolumes?: number
  /** Where they are mounted in the container (the `volume` filter matches either). */
  mountDestinations: string[]
  networkMode: string
  /** The networks it is attached to, by name (`bridge`, a user network's, `none` or `host`). */
  networks: string[]
  /** While it runs: its published ports (host address and port as bound). */
  ports: PublishedPort[]
  /** Ports its image exposes (`80/tcp`), shown in PORTS while it runs even when not published. */
  exposedPorts: string[]
  /** With `size`: bytes of its writable layer (Docker's SizeRw). */
  sizeRw?: number
  /** With `size`: the image's size plus the writable layer (Docker's SizeRootFs). */
  sizeRootFs?: number
}

export interface ListContainersOptions {
  /** Stopped and created containers too (`-a`). */
  all?: boolean
  /** Docker's `--filter`: `status`, `name`, `id`, `label`, `ancestor`, `exited`, `before`, `since`, `volume`, `network`, … */
  filters?: FilterArgs
  /** The `last` most recently created containers, whatever their state (`-n`; `-l` is 1). */
  last?: number
  /** Compute the writable layer's size (`-s`: a walk of the container's changes). */
  size?: boolean
}

function stateWord(s: ContainerRow['state']): ContainerStatusWord {
  switch (s) {
    case ContainerStates.running: return 'running'
    case ContainerStates.paused: return 'paused'
    case ContainerStates.restarting: return 'restarting'
    case ContainerStates.exited: return 'exited'
    case ContainerStates.removing: return 'removing'
    default: return 'created'
  }
}

/** Docker's status text of a container at `now` (with its health check's status while it runs, when it has one). */
export function statusText(row: Pick<ContainerRow, 'state' | 'started_at' | 'finished_at' | 'exit_code'>, now = Date.now(), health?: HealthState): string {
  switch (row.state) {
    case ContainerStates.running:
      return `Up ${humanDuration(now - (row.started_at ?? now))}${health ? ` (${healthWord(health)})` : ''}`
    case ContainerStates.restarting:
      return `Restarting (${row.exit_code}) ${humanDuration(now - (row.finished_at ?? now))} ago`
    case ContainerStates.paused:
      return `Up ${humanDuration(now - (row.started_at ?? now))} (Paused)`
    case ContainerStates.removing:
      return 'Removal In Progress'
    case ContainerStates.exited:
      if (row.finished_at === null) return 'Created'
      return `Exited (${row.exit_code}) ${humanDuration(now - row.finished_at)} ago`
    default:
      return 'Created'
  }
}

function displayImage(store: ImageStore, row: ContainerRow, resolved?: Map<string, string | undefined>): string {
  let id: string | undefined
  if (resolved?.has(row.image_ref)) id = resolved.get(row.image_ref)
  else {
    try {
      id = store.tryResolve(row.image_ref)?.id
    } catch {
      id = undefined // not a valid reference any more
    }
    resolved?.set(row.image_ref, id)
  }
  return id === row.image_id ? row.image_ref : row.image_id.slice(7, 19)
}

/** The network a container's mode puts it on, as Docker names it. */
/** The networks a container is on, by name, as `ps` shows them. */
function networkNames(spec: ContainerSpec | undefined): string[] {
  if (!spec) return []
  const mode = spec.hostConfig.networkMode
  if (spec.networks !== undefined) return spec.networks.map((n) => n.network)
  if (mode.startsWith('container:')) return []
  return [mode === 'host' ? 'host' : 'none']
}

/** Docker's `publish`/`expose` filter value (`8080`, `8080/tcp`, `8000-8010`) against ports. */
function matchPort(filter: string, ports: readonly { port: number; protocol: string }[]): boolean {
  const [range = '', proto] = filter.split('/')
  const [lo, hi] = range.includes('-') ? range.split('-').map(Number) : [Number(range), Number(range)]
  return ports.some((p) => p.port >= (lo ?? NaN) && p.port <= (hi ?? NaN) && (proto === undefined || proto === p.protocol))
}

/** Docker's `State` word of a row (the `status` filter matches it). */
function stateOf(row: ContainerRow): ContainerStatusWord {
  return stateWord(row.state)
}

/**
 * `docker ps [-a] [-n N] [--filter …] [-s]`: running (and paused) containers, or all; newest
 * first; filtered as Docker's daemon filters (`status` implies all).
 */
export async function listContainers(store: ImageStore, opts: ListContainersOptions = {}): Promise<ContainerSummary[]> {
  const filters = opts.filters ?? {}
  validateFilterKeys(filters, ContainerFilterKeys)
  for (const v of values(filters, 'status')) if (!(ContainerStatusValues as readonly string[]).includes(v)) throw invalidFilter('status', v)
  for (const v of values(filters, 'health')) {
    if (!['starting', 'healthy', 'unhealthy', 'none'].includes(v)) throw new CairnError('INVALID_ARGUMENT', `Unrecognised filter value for health: ${v}`)
  }
  const exited = values(filters, 'exited').map((v) => {
    if (!/^[+-]?\d+$/.test(v)) throw new CairnError('INVALID_ARGUMENT', `strconv.Atoi: parsing ${JSON.stringify(v)}: invalid syntax`)
    return Number(v)
  })
  const engine = containerEngine(store)
  await engine.reconcile()
  const refContainer = (v: string): ContainerRow => {
    const r = engine.rows.tryResolve(v)
    if (!r) throw new CairnError('NAME_UNKNOWN', `no such container ${v}`)
    return r
  }
  let before = values(filters, 'before').map(refContainer)[0]
  const since = values(filters, 'since').map(refContainer)[0]
  // ancestor: the images named and every image built on them
  let ancestors: Set<string> | undefined
  if (values(filters, 'ancestor').length > 0) {
    ancestors = new Set()
    const all = store.list()
    for (const a of values(filters, 'ancestor')) {
      let img: ImageRecord | undefined
      try {
        img = store.tryResolve(a)
      } catch {
        img = undefined
      }
      if (!img) continue
      const queue = [img.id]
      while (queue.length > 0) {
        const id = queue.pop()
        if (id === undefined || ancestors.has(id)) continue
        ancestors.add(id)
        for (const c of all) if (c.parent === id) queue.push(c.id)
      }
    }
  }
  const all = (opts.all ?? false) || values(filters, 'status').length > 0
  const limit = opts.last ?? -1
  const now = Date.now()
  const out: ContainerSummary[] = []
  // what each image name the containers were made from points at now: asked once per name
  const resolved = new Map<string, string | undefined>()
  for (const row of engine.rows.list()) {
    if (row.state === ContainerStates.creating) continue
    if (before) {
      if (row.id === before.id) before = undefined
      continue
    }
    if (since && row.id === since.id) break
    const live = row.state === ContainerStates.running || row.state === ContainerStates.paused || row.state === ContainerStates.restarting
    if (!live && !all && limit <= 0) continue
    if (!matchRegexp(filters, 'name', `/${row.name}`, row.name)) continue
    if (!matchRegexp(filters, 'id', row.id)) continue
    let spec: ContainerSpec | undefined
    try {
      spec = await engine.readSpec(row.id)
    } catch {
      spec = undefined
    }
    const labels = spec?.config.Labels ?? {}
    if (!matchLabels(filters, 'label', labels)) continue
    if (limit > 0 && out.length === limit) break
    if (exited.length > 0 && !(row.state === ContainerStates.exited && row.finished_at !== null && exited.includes(row.exit_code))) continue
    if (!matchRegexp(filters, 'status', stateOf(row))) continue
    // a container with a health check has its state (kept after it stops); the others are `none`
    const health = spec && probeCommand(spec.config.Healthcheck, spec.config.Shell) ? readHealth(engine.paths(row.id).health) ?? { Status: 'starting' as const, FailingStreak: 0, Log: [] } : undefined
    if (values(filters, 'health').length > 0 && !values(filters, 'health').includes(health?.Status ?? 'none')) continue
    if (values(filters, 'is-task').length > 0 && !values(filters, 'is-task').includes('false')) continue
    const mounts = spec?.hostConfig.mounts ?? []
    if (values(filters, 'volume').length > 0 && !values(filters, 'volume').some((v) => mounts.some((m) => m.source === v || m.destination === v || m.volume?.name === v))) continue
    if (ancestors && !ancestors.has(row.image_id)) continue
    const networks = networkNames(spec)
    const attachment = live ? await engine.attachmentOf(row.id) : undefined
    const ports = attachment?.ports ?? []
    const exposedPorts = live ? Object.keys(spec?.config.ExposedPorts ?? {}) : []
    if (values(filters, 'publish').length > 0 && !values(filters, 'publish').some((v) => matchPort(v, ports.map((p) => ({ port: p.hostPort, protocol: p.protocol }))))) continue
    if (values(filters, 'expose').length > 0 && !values(filters, 'expose').some((v) => matchPort(v, [
      ...Object.keys(spec?.config.ExposedPorts ?? {}).map((k) => ({ port: Number(k.split('/')[0]), protocol: k.split('/')[1] ?? 'tcp' })),
      ...(spec?.hostConfig.portBindings ?? []).map((p) => ({ port: p.containerPort, protocol: p.protocol })),
    ]))) continue
    if (values(filters, 'network').length > 0 && !values(filters, 'network').some((v) => networks.includes(v))) continue
    const argv = JSON.parse(row.command) as string[]
    const s: ContainerSummary = {
      id: row.id,
      name: row.name,
      image: displayImage(store, row, resolved),
      imageId: row.image_id,
      command: commandString(argv[0] ?? '', argv.slice(1)),
      created: new Date(row.created),
      state: stateOf(row),
      status: statusText(row, now, health),
      exitCode: row.exit_code,
      restartCount: row.restart_count,
      labels,
      mounts: mounts.map((m) => m.volume?.name ?? m.source),
      localVolumes: mounts.filter((m) => m.volume).length,
      mountDestinations: mounts.map((m) => m.destination),
      networkMode: spec?.hostConfig.networkMode ?? 'default',
      networks,
      ports,
      exposedPorts,
    }
    if (health) s.health = health.Status
    if (row.started_at !== null) s.startedAt = new Date(row.started_at)
    if (row.finished_at !== null) s.finishedAt = new Date(row.finished_at)
    if (opts.size) {
      s.sizeRw = spec ? await writableLayerSize(engine, spec, row.id) : 0
      s.sizeRootFs = (store.get(row.image_id)?.size ?? 0) + s.sizeRw
    }
    out.push(s)
  }
  return out
}

/**
 * Bytes in a container's writable layer, counted as Docker counts a directory's size: regular
 * files and symlinks by their length, each inode once, folders and empty files not at all.
 */
export async function writableLayerSize(engine: ContainerEngine, spec: ContainerSpec, id: string): Promise<number> {
  const snap = await engine.snapshotterOf(spec.driver)
  const key = snapshotKeys(id).key
  const seen = new Set<number>()
  let size = 0
  const count = async (p: string): Promise<void> => {
    const st = await lstat(p).catch(() => undefined)
    if (!st || st.isDirectory() || st.size === 0 || seen.has(st.ino)) return
    seen.add(st.ino)
    size += st.size
  }
  const upper = await snap.changesDir(key).catch(() => undefined)
  if (upper !== undefined) {
    const walk = async (dir: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => [])
      for (const e of entries) {
        const p = join(dir, e.name)
        if (e.isDirectory()) await walk(p)
        else await count(p)
      }
    }
    await walk(upper)
    return size
  }
  const full = await snap.fullDir(key).catch(() => undefined)
  if (full === undefined) return 0
  for (const c of await snapshotChanges(snap, key).catch(() => [] as Change[])) {
    if (c.kind !== 'D') await count(join(full, c.path))
  }
  return size
}

const ZERO_TIME = '0001-01-01T00:00:00Z'

/** `docker inspect CONTAINER`, in Docker's JSON shape. */
export interface ContainerInspect {
  Id: string
  Created: string
  Path: string
  Args: string[]
  State: {
    Status: ContainerStatusWord
    Running: boolean
    Paused: boolean
    Restarting: boolean
    OOMKilled: boolean
    Dead: boolean
    Pid: number
    ExitCode: number
    Error: string
    StartedAt: string
    FinishedAt: string
    /** With a health check. */
    Health?: HealthState
  }
  Image: ImageId
  ResolvConfPath: string
  HostnamePath: string
  HostsPath: string
  LogPath: string
  Name: string
  RestartCount: number
  Driver: string
  Platform: string
  MountLabel: string
  ProcessLabel: string
  AppArmorProfile: string
  ExecIDs: null
  HostConfig: {
    Binds: string[] | null
    NetworkMode: string
    PortBindings: Record<string, { HostIp: string; HostPort: string }[]>
    PublishAllPorts: boolean
    Dns: string[]
    DnsOptions: string[]
    DnsSearch: string[]
    ExtraHosts: string[] | null
    AutoRemove: boolean
    Runtime: string
    LogConfig: { Type: string; Config: Record<string, string> }
    RestartPolicy: { Name: string; MaximumRetryCount: number }
    VolumesFrom: string[] | null
  } & ConfinementHostConfig
  GraphDriver: { Name: string; Data: Record<string, string> | null }
  Mounts: MountPointInspect[]
  Config: ContainerSpec['config']
  NetworkSettings: NetworkSettings
}

/** One of Docker's `Mounts` of a container's inspect: a bind, a volume (with its name and driver) or a tmpfs. */
export interface MountPointInspect {
  Type: 'bind' | 'volume' | 'tmpfs'
  Name?: string
  Source: string
  Destination: string
  Driver?: string
  Mode: string
  RW: boolean
  Propagation: string
}

/** Docker's HostConfig fields of confinement and limits (names, order and empty values as Docker 20.10 shows them). */
export interface ConfinementHostConfig {
  CapAdd: string[] | null
  CapDrop: string[] | null
  GroupAdd: string[] | null
  IpcMode: string
  OomScoreAdj: number
  PidMode: string
  Privileged: boolean
  ReadonlyRootfs: boolean
  SecurityOpt: string[] | null
  Tmpfs?: Record<string, string>
  ShmSize: number
  Sysctls?: Record<string, string>
  CpuShares: number
  Memory: number
  NanoCpus: number
  CgroupParent: string
  BlkioWeight: number
  CpuPeriod: number
  CpuQuota: number
  CpusetCpus: string
  CpusetMems: string
  Devices: { PathOnHost: string; PathInContainer: string; CgroupPermissions: string }[]
  MemoryReservation: number
  MemorySwap: number
  MemorySwappiness: null
  OomKillDisable: boolean
  PidsLimit: number | null
  Ulimits: { Name: string; Hard: number; Soft: number }[] | null
  MaskedPaths: string[] | null
  ReadonlyPaths: string[] | null
  Init?: boolean
}

/** A container's confinement and limits as Docker's inspect shows them. */
function confinementHostConfig(spec: ContainerSpec): ConfinementHostConfig {
  const hc = spec.hostConfig
  const r = hc.resources ?? {}
  const privileged = hc.privileged ?? false
  const nonEmpty = <T>(a: T[] | undefined): T[] | null => (a !== undefined && a.length > 0 ? [...a] : null)
  const out: ConfinementHostConfig = {
    CapAdd: nonEmpty(hc.capAdd),
    CapDrop: nonEmpty(hc.capDrop),
    GroupAdd: nonEmpty(hc.groupAdd),
    IpcMode: 'private',
    OomScoreAdj: 0,
    PidMode: '',
    Privileged: privileged,
    ReadonlyRootfs: hc.readonlyRootfs ?? false,
    SecurityOpt: nonEmpty(hc.securityOpt),
    ShmSize: hc.shmSize ?? DEFAULT_SHM_SIZE,
    CpuShares: r.cpuShares ?? 0,
    Memory: r.memory ?? 0,
    NanoCpus: r.nanoCpus ?? 0,
    CgroupParent: '',
    BlkioWeight: 0,
    CpuPeriod: 0,
    CpuQuota: 0,
    CpusetCpus: r.cpusetCpus ?? '',
    CpusetMems: '',
    Devices: (hc.devices ?? []).map((d) => ({ PathOnHost: d.pathOnHost, PathInContainer: d.pathInContainer, CgroupPermissions: d.cgroupPermissions })),
    MemoryReservation: r.memoryReservation ?? 0,
    MemorySwap: r.memorySwap ?? 0,
    MemorySwappiness: null,
    OomKillDisable: r.oomKillDisable ?? false,
    PidsLimit: r.pidsLimit ?? null,
    Ulimits: nonEmpty((hc.ulimits ?? []).map((u) => ({ Name: u.name, Hard: u.hard, Soft: u.soft }))),
    MaskedPaths: privileged ? null : [...MASKED_PATHS],
    ReadonlyPaths: privileged ? null : [...READONLY_PATHS],
  }
  if (hc.tmpfs && Object.keys(hc.tmpfs).length > 0) out.Tmpfs = { ...hc.tmpfs }
  if (hc.sysctls && Object.keys(hc.sysctls).length > 0) out.Sysctls = { ...hc.sysctls }
  if (hc.init) out.Init = true
  return out
}

/** Docker's NetworkSettings of a container's inspect. */
export interface NetworkSettings {
  Bridge: string
  SandboxID: string
  HairpinMode: boolean
  LinkLocalIPv6Address: string
  LinkLocalIPv6PrefixLen: number
  Ports: Record<string, { HostIp: string; HostPort: string }[] | null>
  SandboxKey: string
  SecondaryIPAddresses: null
  SecondaryIPv6Addresses: null
  EndpointID: string
  Gateway: string
  GlobalIPv6Address: string
  GlobalIPv6PrefixLen: number
  IPAddress: string
  IPPrefixLen: number
  IPv6Gateway: string
  MacAddress: string
  Networks: Record<string, EndpointSettings>
}

export interface EndpointSettings {
  IPAMConfig: { IPv4Address: string } | null
  Links: null
  Aliases: string[] | null
  NetworkID: string
  EndpointID: string
  Gateway: string
  IPAddress: string
  IPPrefixLen: number
  IPv6Gateway: string
  GlobalIPv6Address: string
  GlobalIPv6PrefixLen: number
  MacAddress: string
  DriverOpts: null
}

function endpointId(containerId: string, network: string): string {
  return createHash('sha256').update(`${containerId} ${network}`).digest('hex')
}

/** A container's NetworkSettings: its endpoints while it runs (from its attachment), the networks it is on otherwise. */
function networkSettings(spec: ContainerSpec, attachment: Attachment | undefined, running: boolean): NetworkSettings {
  const ports: NetworkSettings['Ports'] = {}
  if (running) {
    for (const k of Object.keys(spec.config.ExposedPorts ?? {})) ports[k] = null
    for (const p of attachment?.ports ?? []) {
      const key = `${p.containerPort}/${p.protocol}`
      ;(ports[key] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.hostPort) })
    }
  }
  const networks: Record<string, EndpointSettings> = {}
  const empty = (name: string, aliases: string[] | null, fixed?: string): EndpointSettings => ({
    IPAMConfig: fixed !== undefined ? { IPv4Address: fixed } : null, Links: null, Aliases: aliases, NetworkID: '', EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0,
    IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, MacAddress: '', DriverOpts: null,
  })
  for (const name of networkNames(spec)) networks[name] = empty(name, null)
  for (const req of spec.networks ?? []) networks[req.network] = empty(req.network, req.aliases.length > 0 ? [...req.aliases] : null, req.ipv4Address)
  for (const e of running ? attachment?.endpoints ?? [] : []) {
    networks[e.network] = {
      ...(networks[e.network] ?? empty(e.network, null)),
      Aliases: e.aliases.length > 0 ? [...e.aliases] : null,
      NetworkID: e.networkId,
      EndpointID: endpointId(spec.id, e.network),
      Gateway: e.gateway,
      IPAddress: e.ipAddress,
      IPPrefixLen: e.prefixLength,
      MacAddress: e.macAddress,
    }
  }
  // the default bridge's endpoint is also shown at the top, as Docker does
  const bridge = running ? attachment?.endpoints.find((e) => e.network === 'bridge') : undefined
  return {
    Bridge: '',
    SandboxID: attachment?.netnsPath !== undefined && running ? createHash('sha256').update(attachment.netnsPath).digest('hex') : '',
    HairpinMode: false,
    LinkLocalIPv6Address: '',
    LinkLocalIPv6PrefixLen: 0,
    Ports: ports,
    SandboxKey: running ? attachment?.netnsPath ?? '' : '',
    SecondaryIPAddresses: null,
    SecondaryIPv6Addresses: null,
    EndpointID: bridge ? endpointId(spec.id, 'bridge') : '',
    Gateway: bridge?.gateway ?? '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    IPAddress: bridge?.ipAddress ?? '',
    IPPrefixLen: bridge?.prefixLength ?? 0,
    IPv6Gateway: '',
    MacAddress: bridge?.macAddress ?? '',
    Networks: networks,
  }
}

/** Docker's HostConfig.PortBindings: `80/tcp` → [{ HostIp, HostPort }] as asked ('' for any). */
function portBindings(spec: ContainerSpec): Record<string, { HostIp: string; HostPort: string }[]> {
  const out: Record<string, { HostIp: string; HostPort: string }[]> = {}
  for (const p of spec.hostConfig.portBindings ?? []) {
    ;(out[`${p.containerPort}/${p.protocol}`] ??= []).push({ HostIp: p.hostIp, HostPort: p.hostPort === 0 ? '' : String(p.hostPort) })
  }
  return out
}

export async function inspectContainer(store: ImageStore, nameOrId: string): Promise<ContainerInspect> {
  const engine = containerEngine(store)
  await engine.reconcile()
  const row = engine.resolve(nameOrId)
  const spec = await engine.readSpec(row.id)
  const p = engine.paths(row.id)
  let data: Record<string, string> | null = null
  try {
    const snap = await engine.snapshotterOf(spec.driver)
    const upper = await snap.changesDir(spec.snapshotKey)
    if (upper !== undefined) {
      data = { LowerDir: (await snap.lowerDirs(spec.snapshotKey)).join(':'), MergedDir: p.rootfs, UpperDir: upper, WorkDir: upper.replace(/\/fs$/, '/work') }
    } else {
      const full = await snap.fullDir(spec.snapshotKey)
      if (full !== undefined) data = { Dir: full }
    }
  } catch {
    data = null
  }
  const running = row.state === ContainerStates.running || row.state === ContainerStates.paused
  const health = await healthOf(engine, spec)
  const mounts: MountPointInspect[] = spec.hostConfig.mounts.map((m) => (m.volume
    ? { Type: 'volume' as const, Name: m.volume.name, Source: m.source, Destination: m.destination, Driver: m.volume.driver, Mode: '', RW: !m.readonly, Propagation: '' }
    : { Type: 'bind' as const, Source: m.source, Destination: m.destination, Mode: m.readonly ? 'ro' : '', RW: !m.readonly, Propagation: 'rprivate' }))
  for (const t of spec.hostConfig.tmpfsMounts ?? []) mounts.push({ Type: 'tmpfs', Source: '', Destination: t.destination, Mode: '', RW: !t.readonly, Propagation: '' })
  const restart = spec.hostConfig.restartPolicy ?? { Name: 'no', MaximumRetryCount: 0 }
  const exit = await engine.exitRecord(row.id)
  return {
    Id: row.id,
    Created: spec.created,
    Path: spec.path,
    Args: spec.args,
    State: {
      Status: stateWord(row.state),
      // as Docker's, a container between two runs of its restart policy counts as running
      Running: running || row.state === ContainerStates.restarting,
      Paused: row.state === ContainerStates.paused,
      Restarting: row.state === ContainerStates.restarting,
      OOMKilled: exit?.oomKilled ?? false,
      Dead: false,
      Pid: running ? row.pid : 0,
      ExitCode: row.exit_code,
      Error: row.error,
      StartedAt: row.started_at !== null ? new Date(row.started_at).toISOString() : ZERO_TIME,
      FinishedAt: row.finished_at !== null ? new Date(row.finished_at).toISOString() : ZERO_TIME,
      ...(health ? { Health: health } : {}),
    },
    Image: row.image_id,
    ResolvConfPath: p.resolvConf,
    HostnamePath: p.hostname,
    HostsPath: p.hosts,
    LogPath: p.log,
    Name: `/${row.name}`,
    RestartCount: row.restart_count,
    Driver: spec.driver,
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: appArmorProfileFor(spec.hostConfig.privileged ?? false, securityOptionsOf(spec.hostConfig.securityOpt ?? []).apparmorProfile) ?? '',
    ExecIDs: null,
    HostConfig: {
      Binds: spec.hostConfig.binds.length > 0 ? spec.hostConfig.binds : null,
      NetworkMode: spec.hostConfig.networkMode,
      PortBindings: portBindings(spec),
      PublishAllPorts: spec.hostConfig.publishAllPorts ?? false,
      Dns: spec.hostConfig.dns ?? [],
      DnsOptions: spec.hostConfig.dnsOptions ?? [],
      DnsSearch: spec.hostConfig.dnsSearch ?? [],
      ExtraHosts: (spec.hostConfig.extraHosts ?? []).length > 0 ? (spec.hostConfig.extraHosts ?? []).map((h) => `${h.name}:${h.ip}`) : null,
      AutoRemove: spec.hostConfig.autoRemove,
      Runtime: row.runtime,
      LogConfig: { Type: 'json-file', Config: {} },
      RestartPolicy: { Name: restart.Name === '' ? 'no' : restart.Name, MaximumRetryCount: restart.MaximumRetryCount },
      VolumesFrom: (spec.hostConfig.volumesFrom ?? []).length > 0 ? [...(spec.hostConfig.volumesFrom ?? [])] : null,
      ...confinementHostConfig(spec),
    },
    GraphDriver: { Name: spec.driver, Data: data },
    Mounts: mounts,
    Config: spec.config,
    NetworkSettings: networkSettings(spec, running ? await engine.attachmentOf(row.id) : undefined, running),
  }
}

/** `docker port`: the ports a running container publishes, as bound (none when it is not running). */
export async function containerPorts(store: ImageStore, nameOrId: string): Promise<PublishedPort[]> {
  const engine = containerEngine(store)
  await engine.reconcile()
  const row = engine.resolve(nameOrId)
  if (row.state !== ContainerStates.running && row.state !== ContainerStates.paused) return []
  return (await engine.attachmentOf(row.id))?.ports ?? []
}

/** The container named so, or undefined (for `inspect`, which also takes images). */
export async function tryInspectContainer(store: ImageStore, nameOrId: string): Promise<ContainerInspect | undefined> {
  try {
    return await inspectContainer(store, nameOrId)
  } catch (err) {
    if (hasCode(err, 'NAME_UNKNOWN')) return undefined
    throw err
  }
}

// ---------------------------------------------------------------- logs, exec

/** `docker logs [-f] [--tail N] [--since T]`: the entries, stdout and stderr told apart. */
export async function* containerLogs(store: ImageStore, nameOrId: string, opts: Omit<ReadLogsOptions, 'isRunning'> = {}): AsyncGenerator<LogEntry> {
  const engine = containerEngine(store)
  await engine.reconcile()
  const row = engine.resolve(nameOrId)
  let lastCheck = 0
  let running = true
  const isRunning = (): boolean => {
    // a cheap look at the row, with a reconcile now and then (a monitor that died)
    const now = Date.now()
    const r = engine.rows.get(row.id)
    running = !!r && (r.state === ContainerStates.running || r.state === ContainerStates.paused || r.state === ContainerStates.starting)
    if (running && now - lastCheck > 2000) {
      lastCheck = now
      void engine.reconcile([row.id])
    }
    return running
  }
  yield* readLogs(engine.paths(row.id).log, { ...opts, isRunning })
}

/** `docker exec`: resolves with the exit code of the command. */
export async function execInContainer(store: ImageStore, nameOrId: string, command: string[], opts: ExecOptions = {}): Promise<number> {
  return containerEngine(store).exec(nameOrId, command, opts)
}

/** `docker exec` that returns at once: the process, to resize and to wait for. */
export async function startExecInContainer(store: ImageStore, nameOrId: string, command: string[], opts: ExecOptions = {}): Promise<ExecProcess> {
  return containerEngine(store).startExec(nameOrId, command, opts)
}

// ---------------------------------------------------------------- file system

/** `docker diff`: the writable layer's changes (overlay: read from it alone; native: compared with the image). */
/** `docker diff`: the container's changes, paths absolute (`/etc/hosts`) as Docker gives them. */
export async function containerDiff(store: ImageStore, nameOrId: string, opts: { signal?: AbortSignal } = {}): Promise<Change[]> {
  const { snapshotter, key } = await containerSnapshot(store, nameOrId)
  return (await snapshotChanges(snapshotter, key, opts)).map((c) => ({ ...c, path: `/${c.path}` }))
}

/** The snapshot holding a container's changes (what `commit` makes a layer of). */
export async function containerSnapshot(store: ImageStore, nameOrId: string): Promise<{ row: ContainerRow; spec: ContainerSpec; snapshotter: Snapshotter; key: string }> {
  const engine = containerEngine(store)
  await engine.reconcile()
  const row = engine.resolve(nameOrId)
  const spec = await engine.readSpec(row.id)
  const snapshotter = await engine.snapshotterOf(spec.driver)
  return { row, spec, snapshotter, key: snapshotKeys(row.id).key }
}

/** What `commit` needs of a container: its image, its snapshot, its config and command. */
export interface ContainerCommitSource {
  row: ContainerRow
  spec: ContainerSpec
  image: ImageRecord
  snapshotter: Snapshotter
  /** The container's active snapshot (its changes alone: the init layer is below it). */
  key: string
  /** Docker's container Config (image defaults merged with the run options). */
  container: ContainerConfig
  containerId: string
  /** Docker's `created_by` for a commit: the container's Cmd, joined. */
  createdBy: string
  /** Runs `fn` with the container's merged tree mounted (for `--squash`). */
  withMergedDir<T>(fn: (dir: string) => Promise<T>): Promise<T>
}

export async function containerCommitSource(store: ImageStore, nameOrId: string): Promise<ContainerCommitSource> {
  const { row, spec, snapshotter, key } = await containerSnapshot(store, nameOrId)
  const image = store.get(spec.image)
  if (!image) throw new CairnError('IMAGE_UNKNOWN', `No such image: ${spec.image} (the image of container ${row.name} was removed)`)
  return {
    row, spec, image, snapshotter, key,
    container: spec.config,
    containerId: row.id,
    createdBy: (spec.config.Cmd ?? []).join(' '),
    withMergedDir: (fn) => containerEngine(store).withRootfs(row.id, (dir) => fn(dir)),
  }
}

/**
 * Runs `fn` with the container frozen (cgroup freezer through the runtime) when it is running,
 * and thaws it afterwards; a container paused by its user, or stopped, is left as it is.
 */
export async function withContainerPaused<T>(store: ImageStore, nameOrId: string, fn: () => Promise<T>): Promise<T> {
  const engine = containerEngine(store)
  await engine.reconcile()
  const row = engine.resolve(nameOrId)
  if (row.state !== ContainerStates.running) return fn()
  await engine.pause(row.id)
  try {
    return await fn()
  } finally {
    await engine.resume(row.id).catch(() => undefined)
  }
}

/** `docker export`: the container's whole merged file system as a tar. */
export async function exportContainer(store: ImageStore, nameOrId: string, out: Writable, opts: { signal?: AbortSignal } = {}): Promise<void> {
  await containerEngine(store).withRootfs(nameOrId, async (rootfs) => {
    await pipeline(tarDirectory(rootfs, opts.signal ? { signal: opts.signal } : {}), out, opts.signal ? { signal: opts.signal } : {})
  })
}

/** Pauses a running container for `fn` (so that its files hold still), unless it is paused already. */
async function frozen<T>(engine: ContainerEngine, row: ContainerRow, fn: () => Promise<T>): Promise<T> {
  if (row.state !== ContainerStates.running) return fn()
  const rt = engine.runtimeOf(row)
  let paused = false
  try {
    await rt.pause(row.id)
    paused = true
  } catch {
    // it may have just stopped: copy anyway
  }
  try {
    return await fn()
  } finally {
    if (paused) await rt.resume(row.id).catch(() => undefined)
  }
}

/** `docker cp CONTAINER:SRC DEST` (`dest` a host path, or a Writable for a tar stream). */
export async function copyFromContainer(store: ImageStore, nameOrId: string, srcPath: string, dest: string | Writable, opts: CopyOptions = {}): Promise<void> {
  const engine = containerEngine(store)
  await engine.withRootfs(nameOrId, async (rootfs, row) => {
    const spec = await engine.readSpec(row.id)
    await frozen(engine, row, () => copyOut(rootfs, spec.hostConfig.mounts, nameOrId, srcPath, dest, opts))
  })
}

/** `docker cp SRC CONTAINER:DEST` (`src` a host path, or a Readable tar stream). */
export async function copyToContainer(store: ImageStore, src: string | Readable, nameOrId: string, destPath: string, opts: CopyOptions = {}): Promise<void> {
  const engine = containerEngine(store)
  await engine.withRootfs(nameOrId, async (rootfs, row) => {
    const spec = await engine.readSpec(row.id)
    await frozen(engine, row, () => copyIn(rootfs, spec.hostConfig.mounts, nameOrId, src, destPath, opts))
  })
}

/** What `docker cp` and the archive endpoints tell of a path in a container (Docker's container.PathStat). */
export interface PathStat {
  name: string
  size: number
  /** Go's os.FileMode bits: permissions, with 1<<31 for a directory and 1<<27 for a symlink. */
  mode: number
  mtime: string
  linkTarget: string
}

/** Go's os.FileMode of a stat: the permission bits and Go's type and special bits. */
export function goFileMode(mode: number): number {
  let m = mode & 0o777
  const type = mode & 0o170000
  if (type === 0o040000) m |= 2 ** 31
  else if (type === 0o120000) m |= 2 ** 27
  else if (type === 0o010000) m |= 2 ** 25
  else if (type === 0o140000) m |= 2 ** 24
  else if (type === 0o020000) m |= 2 ** 26 + 2 ** 21
  else if (type === 0o060000) m |= 2 ** 26
  if (mode & 0o4000) m |= 2 ** 23
  if (mode & 0o2000) m |= 2 ** 22
  if (mode & 0o1000) m |= 2 ** 20
  return m >>> 0
}

/** Stats a path in a container (symlinks resolved inside it; the last one not followed). NAME_UNKNOWN when missing. */
export async function statContainerPath(store: ImageStore, nameOrId: string, ctrPath: string): Promise<PathStat> {
  const engine = containerEngine(store)
  return engine.withRootfs(nameOrId, async (rootfs, row) => {
    const spec = await engine.readSpec(row.id)
    const abs = posix.resolve('/', ctrPath)
    const host = resolveContainerPath(rootfs, spec.hostConfig.mounts, abs, false)
    const st = await lstat(host).catch(() => undefined)
    if (!st) throw new CairnError('NAME_UNKNOWN', `Could not find the file ${ctrPath} in container ${nameOrId}`)
    let linkTarget = ''
    if (st.isSymbolicLink()) {
      const followed = resolveContainerPath(rootfs, spec.hostConfig.mounts, abs, true)
      linkTarget = `/${posix.relative(rootfs, followed)}`
    }
    return { name: posix.basename(abs) || '/', size: st.size, mode: goFileMode(st.mode), mtime: st.mtime.toISOString(), linkTarget }
  })
}

/** Parses `CONTAINER:PATH` (a local path has no colon before its first slash). */
export function splitContainerPath(arg: string): { container?: string; path: string } {
  if (arg.startsWith('/') || arg.startsWith('.') || arg === '-') return { path: arg }
  const i = arg.indexOf(':')
  if (i <= 0) return { path: arg }
  return { container: arg.slice(0, i), path: arg.slice(i + 1) }
}


