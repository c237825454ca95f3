/**
 * The container engine: create, start (through a monitor process per container), stop, kill,
 * pause, exec, remove, and the bookkeeping that keeps the database telling the truth when a
 * process dies half-way (a later command finishes or undoes what it left).
 *
 * Storage: a container is two snapshots on the image's unpacked layers, as Docker's are: an init
 * layer holding the mount points of /etc/hosts, /etc/hostname, /etc/resolv.conf, /proc, … (so
 * the runtime never creates them in the writable layer, and `diff` and `commit` never see them),
 * and the container's writable snapshot above it. Its folder `containers/<id>/` holds the
 * configuration, the runtime bundle, the mount point of its root filesystem, and its log.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { hostname as osHostname } from 'node:os'
import { appendFile, mkdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises'
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { CairnError, hasCode, type ErrorCode } from '../errors/index.js'
import type { ChainId } from '../oci/digest.js'
import type { ContainerConfig, HealthConfig } from '../oci/types.js'
import { writeFileAtomic } from '../util/fs.js'
import { emit } from '../util/progress.js'
import { lineReader } from '../util/stream.js'
import type { ImageStore } from '../image/store.js'
import { FsSnapshotter } from '../snapshot/snapshotter.js'
import type { Snapshotter, StorageDriver } from '../snapshot/types.js'
import { isMounted, mountAll, overlaySupported, unmount } from '../mount/index.js'
import { containerNofile, detectRuntime, recordedRuntime, type OciRuntime } from '../runtime/runtime.js'
import { envValue, generateSpec, linuxResources, processEnv, processSpec, replaceOrAppendEnv, specJson, type RuntimeProcess } from '../runtime/spec.js'
import { hostnameFile, hostsFile, resolvConfFile } from '../runtime/etc.js'
import { containerCgroupsPath, removeCgroupFolders } from '../runtime/cgroups.js'
import { resolveUser } from '../runtime/user.js'
import { randomContainerName } from './names.js'
import { ensureDir, hostPathIn, lookPath, populateInitLayer, readFileIn } from './rootfs.js'
import { ContainerRows, isAlive, selfIdentity, validateName, type ProcessIdentity } from './rows.js'
import { monitorEnv, SHIM, type MonitorStandby } from './standby.js'
import { attachSocket, resizeSocket, type Attached } from './attach.js'
import { connectChild, spawnProcess, type AttachOutcome, type Stdio, type TerminalSize } from './stdio.js'
import {
  containerPaths, ContainerStates, type ContainerMount, type ContainerPaths, type ContainerRow, type ContainerSpec, type ExitRecord, type RestartPolicy,
} from './types.js'
import type { CreateOptions, HealthcheckOptions, ResourceLimits } from './config.js'
import { checkConfinement, checkResources, confinementInput, resourcesOf, securityOptStrings } from './confine.js'
import { planMounts, splitVolumesFrom } from './mounts.js'
import { copyInto, VolumeStore } from '../volume/store.js'
import { recordEvent, type EventType } from '../events/journal.js'
import type { AttachResult, Attachment, AttachRequest, EndpointRequest, NetworkManager, NetworkMode, PortSpec } from '../network/index.js'

export type { CreateOptions }

/** The monitor's messages to whoever started it (one JSON object per line on fd 3). */
export type ShimEvent =
  | { event: 'ready' }
  | { event: 'started'; pid: number }
  | { event: 'failed'; code: ErrorCode; message: string; exitCode: number }
  | { event: 'exited'; exitCode: number }

/** How a monitor tells its starter how the start went (monitor.ts). */
export interface MonitorChannel {
  report: (e: ShimEvent) => void
  /** Whether the process is the monitor's own (a SIGTERM to it goes to the runtime): false where the process does other work. */
  ownsProcess: boolean
}

/** A monitor's work: monitor.ts's runMonitor (see StartOptions.monitorHere). */
export type MonitorRun = (engine: ContainerEngine, args: ShimArgs, channel: MonitorChannel) => Promise<number>

/** What a monitor is asked to do (its one argument, as JSON). */
export interface ShimArgs {
  root: string
  id: string
  /**
   * How many callers attach before the process runs (they get its output from the first byte):
   * the monitor waits for them (10 s at most) once its attach socket listens.
   */
  attachFirst: number
}

export interface StartOptions {
  /**
   * Callers attached from the process's first byte (the CLI's `run` and `start -a`, the Engine
   * API's attach before start): each gets the output, and feeds stdin when the container keeps
   * it open. Without any, the container runs detached (its output in its log).
   */
  attach?: Stdio[]
  /** A monitor already started (see standby.ts), used when it can still take orders. */
  monitor?: MonitorStandby
  /** Started again by its restart policy (not by its user): its restart count and manual stop stay. */
  policyRestart?: boolean
  /**
   * Monitors the container in this process instead of one of its own (monitor.ts's runMonitor,
   * passed in: the engine does not load its monitor), for a container that lives no longer than
   * this process, a build step's: no Node.js process to start for it. Should this process die
   * first, the next command repairs the container as one whose monitor died (it is stopped).
   */
  monitorHere?: MonitorRun
}

export interface StartedContainer {
  id: string
  /** The container's first process on the host. 0 if it was already running. */
  pid: number
  alreadyRunning: boolean
  /** The attached callers' sessions, in the order given. */
  attached: Attached[]
  /**
   * Resolves with the exit code once the container's process has ended (and, with --rm, the
   * container is gone); with callers attached, once they all left (undefined: they detached).
   */
  wait(): Promise<number | undefined>
  /** Lets this process exit while the container runs on. */
  detach(): void
}

export interface ExecOptions {
  interactive?: boolean
  tty?: boolean
  env?: string[]
  workdir?: string
  user?: string
  detach?: boolean
  /** The caller's streams (none: the command runs with its output discarded). */
  stdio?: Stdio
}

/** An exec'd process while it runs (the Engine API resizes it and reads its end). */
export interface ExecProcess {
  pid: number
  resize(size: TerminalSize): void
  /** The exit code. */
  readonly exited: Promise<number>
  /** The caller's session: ends with the exit code, or when it detached. */
  readonly attached: Promise<AttachOutcome>
}

const SNAPSHOT_PREFIX = 'ctr-'
/** Exit code recorded when a container's monitor vanished without recording one (as Docker's 255). */
const LOST_EXIT_CODE = 255

/** The container's writable snapshot. */
export function snapshotKeys(id: string): { key: string } {
  return { key: `${SNAPSHOT_PREFIX}${id}` }
}

/**
 * The committed init layer of an image (Docker's mount points for /etc/hosts, /proc, … on its
 * layers), shared by all its containers; `chain` is the image's top chain ID.
 */
function initLayerName(chain: ChainId | undefined): string {
  return `${SNAPSHOT_PREFIX}init-${chain === undefined ? 'empty' : chain.slice(chain.indexOf(':') + 1)}`
}

/** Writes a file under a temporary name and renames it: readers see all of it or none (no fsync: it is rewritten when lost). */
async function writeFileRenamed(path: string, data: string, mode = 0o600): Promise<void> {
  const tmp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}`
  await writeFile(tmp, data, { mode })
  try {
    await rename(tmp, path)
  } catch (err) {
    await unlink(tmp).catch(() => undefined)
    throw err
  }
}

/** Docker's `Binds` entry of a bind mount or named volume. */
function bindString(b: ContainerMount): string {
  return `${b.volume ? b.volume.name : b.source}:${b.destination}${b.readonly ? ':ro' : ''}`
}

/** Docker's restart policy as the row keeps it (`on-failure:3`). */
export function restartPolicyString(p: RestartPolicy | undefined): string {
  if (!p || p.Name === '' || p.Name === 'no') return 'no'
  return p.Name === 'on-failure' && p.MaximumRetryCount > 0 ? `on-failure:${p.MaximumRetryCount}` : p.Name
}

/** The row's restart policy back as Docker's RestartPolicy. */
export function parseRestartPolicyString(s: string): RestartPolicy {
  const [name = '', count = '0'] = s.split(':')
  if (name === 'always' || name === 'unless-stopped' || name === 'on-failure') return { Name: name, MaximumRetryCount: Number(count) || 0 }
  return { Name: 'no', MaximumRetryCount: 0 }
}

/**
 * Docker's restart manager's decision after an exit: restart, and after how long. `backoff` is
 * the previous wait (0 before the first restart): 100 ms, doubled at each restart up to a
 * minute, back to 100 ms when the container had run for 10 seconds.
 */
export function restartDecision(policy: RestartPolicy, state: { exitCode: number; manualStop: boolean; restartCount: number; ranMs: number; backoff: number }): { restart: boolean; delay: number } {
  let delay = state.ranMs >= 10_000 || state.backoff === 0 ? 100 : Math.min(state.backoff * 2, 60_000)
  if (delay > 60_000) delay = 60_000
  if (state.manualStop) return { restart: false, delay }
  switch (policy.Name) {
    case 'always':
    case 'unless-stopped':
      return { restart: true, delay }
    case 'on-failure':
      return { restart: state.exitCode !== 0 && (policy.MaximumRetryCount === 0 || state.restartCount < policy.MaximumRetryCount), delay }
    default:
      return { restart: false, delay }
  }
}

/** The image's health check with the user's fields over it (Docker's merge), checked as Docker checks it. */
function mergeHealthcheck(image: HealthConfig | undefined, user: HealthcheckOptions | undefined): HealthConfig | undefined {
  if (!user) return image
  const ns = (ms: number | undefined): number | undefined => (ms === undefined ? undefined : Math.round(ms * 1e6))
  const out: HealthConfig = { ...(image ?? {}) }
  if (user.test !== undefined && user.test.length > 0) out.Test = [...user.test]
  const fields: [keyof HealthcheckOptions, 'Interval' | 'Timeout' | 'StartPeriod' | 'StartInterval', string][] = [
    ['interval', 'Interval', 'Interval'], ['timeout', 'Timeout', 'Timeout'], ['startPeriod', 'StartPeriod', 'StartPeriod'], ['startInterval', 'StartInterval', 'StartInterval'],
  ]
  for (const [k, key, name] of fields) {
    const v = ns(user[k] as number | undefined)
    if (v === undefined || v === 0) continue
    if (v < 1e6) throw new CairnError('INVALID_ARGUMENT', `${name} in Healthcheck cannot be less than 1ms`)
    out[key] = v
  }
  if (user.retries !== undefined && user.retries !== 0) {
    if (user.retries < 0) throw new CairnError('INVALID_ARGUMENT', 'Retries in Healthcheck cannot be negative')
    out.Retries = user.retries
  }
  return out
}

/** A container's events' attributes, as Docker gives them: its labels, its image (as named) and its name. */
export function containerAttributes(spec: Pick<ContainerSpec, 'name' | 'config'>, extra: Record<string, string> = {}): Record<string, string> {
  return { ...spec.config.Labels, image: spec.config.Image, name: spec.name, ...extra }
}

/** Docker's `ps` COMMAND: the path, then each argument, quoted with '' when it holds a space. */
export function commandString(path: string, args: readonly string[]): string {
  if (args.length === 0) return path
  return `${path} ${args.map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ')}`
}

export class ContainerEngine {
  readonly rows: ContainerRows
  readonly volumes: VolumeStore
  private readonly snapshotters = new Map<string, Snapshotter>()

  constructor(readonly store: ImageStore) {
    this.rows = new ContainerRows(store.db)
    this.volumes = new VolumeStore(store.db, store.root)
  }

  get root(): string {
    return this.store.root
  }

  paths(id: string): ContainerPaths {
    return containerPaths(this.root, id)
  }

  /** The snapshotter of `driver`, or the store's (recorded on first use: overlay where the kernel allows, else native). */
  async snapshotter(driver?: StorageDriver): Promise<Snapshotter> {
    const key = driver ?? ''
    let s = this.snapshotters.get(key)
    if (!s) {
      if (driver !== undefined && driver === this.store.setting('storage-driver')) {
        // the store's recorded driver (or a container's own): no need to check the machine again
        const fs = new FsSnapshotter(this.store.db, this.root, driver)
        await fs.init()
        s = fs
      } else {
        const { openSnapshotter } = await import('../snapshot/index.js')
        s = await openSnapshotter(this.store, driver, { overlaySupported })
      }
      this.snapshotters.set(key, s)
      this.snapshotters.set(s.driver, s)
    }
    return s
  }

  /** The snapshotter of a container's recorded driver (no machine checks: it was made with it). */
  async snapshotterOf(driver: string): Promise<Snapshotter> {
    const known = this.snapshotters.get(driver)
    if (known) return known
    const fs = new FsSnapshotter(this.store.db, this.root, driver as StorageDriver)
    await fs.init()
    this.snapshotters.set(driver, fs)
    return fs
  }

  async readSpec(id: string): Promise<ContainerSpec> {
    try {
      // synchronously: a small file, read for every container a list shows (four trips
      // through the thread pool each, asynchronously)
      return JSON.parse(readFileSync(this.paths(id).spec, 'utf8')) as ContainerSpec
    } catch (err) {
      throw new CairnError('STORE_CORRUPT', `container ${id}: cannot read its configuration: ${(err as Error).message}`, { cause: err })
    }
  }

  runtimeOf(row: Pick<ContainerRow, 'runtime' | 'runtime_path'>): OciRuntime {
    return recordedRuntime(this.root, row.runtime, row.runtime_path)
  }

  /** A container by ID, ID prefix or name (NAME_UNKNOWN: `No such container: x`). */
  resolve(nameOrId: string): ContainerRow {
    return this.rows.resolve(nameOrId)
  }

  private networks: NetworkManager | undefined

  /** The host's networks (loaded when a container first needs one). */
  async network(): Promise<NetworkManager> {
    if (!this.networks) {
      const { NetworkManager } = await import('../network/index.js')
      this.networks = new NetworkManager()
    }
    return this.networks
  }

  /**
   * Docker's network options checked and resolved at create: the mode to record (`default` and
   * `bridge` mean the default network; `container:` names the other by ID) and, for bridge
   * modes, the network with the container's aliases and fixed address.
   */
  private async networkRequest(opts: CreateOptions): Promise<{ mode: string; networks?: EndpointRequest[] }> {
    const given = opts.network ?? 'default'
    const aliases = opts.networkAliases ?? []
    const ports = (opts.ports ?? []).length > 0 || (opts.publishAllPorts ?? false)
    const conflict = (what: string): CairnError => new CairnError('INVALID_ARGUMENT', `conflicting options: ${what} and the network mode`)
    if (given === 'none' || given === 'host' || given.startsWith('container:')) {
      if (aliases.length > 0) throw new CairnError('INVALID_ARGUMENT', 'network-scoped alias is supported only for containers in user defined networks')
      if (opts.ipv4Address !== undefined) throw new CairnError('INVALID_ARGUMENT', 'user specified IP address is supported on user defined networks only')
    }
    if (given === 'none') {
      if (ports) throw new CairnError('INVALID_ARGUMENT', 'conflicting options: port publishing and the container type network mode')
      return { mode: 'none' }
    }
    if (given === 'host') return { mode: 'host' }
    if (given.startsWith('container:')) {
      const other = this.resolve(given.slice('container:'.length))
      if (opts.hostname !== undefined && opts.hostname !== '') throw conflict('hostname')
      if ((opts.dns ?? []).length > 0) throw conflict('dns')
      if ((opts.extraHosts ?? []).length > 0) throw new CairnError('INVALID_ARGUMENT', 'conflicting options: custom host-to-IP mapping and the network mode')
      if (ports) throw new CairnError('INVALID_ARGUMENT', 'conflicting options: port publishing and the container type network mode')
      return { mode: `container:${other.id}` }
    }
    const endpoint = (network: string): EndpointRequest => ({ network, aliases: [...aliases], ...(opts.ipv4Address !== undefined ? { ipv4Address: opts.ipv4Address } : {}) })
    if (given === 'default' || given === 'bridge') {
      if (aliases.length > 0) throw new CairnError('INVALID_ARGUMENT', 'network-scoped alias is supported only for containers in user defined networks')
      if (opts.ipv4Address !== undefined) throw new CairnError('INVALID_ARGUMENT', 'user specified IP address is supported on user defined networks only')
      return { mode: given, networks: [endpoint('bridge')] }
    }
    // a user network: it must exist (by name or ID); the container records its name
    const def = (await this.network()).get(given)
    if (def.name === 'bridge') return { mode: 'bridge', networks: [endpoint('bridge')] }
    return { mode: def.name, networks: [endpoint(def.name)] }
  }

  // ---------------------------------------------------------------- create

  /**
   * `docker create`: the container's snapshots (unpacking the image first if needed), its
   * configuration and its files. On any error nothing is left: no row, no snapshot, no mount.
   */
  async create(opts: CreateOptions): Promise<ContainerSpec> {
    await this.reconcile()
    const name = opts.name !== undefined && opts.name !== '' ? validateName(opts.name) : undefined
    const image = this.store.resolve(opts.image)
    if (opts.workdir !== undefined && opts.workdir !== '' && !opts.workdir.startsWith('/')) {
      throw new CairnError('INVALID_ARGUMENT', `the working directory '${opts.workdir}' is invalid, it needs to be an absolute path`)
    }
    const net = await this.networkRequest(opts)
    checkConfinement(opts, net.mode)
    const resources = checkResources(resourcesOf(opts))
    const restart = opts.restart ?? { name: 'no' }
    if (restart.name !== 'no' && opts.autoRemove) throw new CairnError('INVALID_ARGUMENT', 'Conflicting options: --restart and --rm')
    if (restart.name !== 'on-failure' && (restart.maximumRetryCount ?? 0) !== 0) {
      throw new CairnError('INVALID_ARGUMENT', `maximum retry count cannot be used with restart policy '${restart.name}'`)
    }
    if ((restart.maximumRetryCount ?? 0) < 0) throw new CairnError('INVALID_ARGUMENT', 'maximum retry count cannot be negative')
    const restartPolicy: RestartPolicy = { Name: restart.name, MaximumRetryCount: restart.maximumRetryCount ?? 0 }
    // --volumes-from: the other containers' binds and volumes, with the mode asked for
    const from: ContainerMount[] = []
    for (const v of opts.volumesFrom ?? []) {
      const { container, readonly } = splitVolumesFrom(v)
      const other = await this.readSpec(this.resolve(container).id)
      for (const m of other.hostConfig.mounts) from.push({ ...m, readonly: readonly ?? m.readonly })
    }
    const imageConfig = (await this.store.config(image)).config ?? {}
    const plan = planMounts(opts.mounts ?? [], from, Object.keys(imageConfig.Volumes ?? {}), Object.keys(opts.tmpfs ?? {}))
    const config = mergeConfig(imageConfig, opts)
    const health = mergeHealthcheck(imageConfig.Healthcheck, opts.healthcheck)
    if (health) config.Healthcheck = health
    if (plan.anonymousTargets.length > 0) config.Volumes = { ...(config.Volumes ?? {}), ...Object.fromEntries(plan.anonymousTargets.map((t) => [t, {}])) }
    const argv = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])]
    if (argv.length === 0) throw new CairnError('INVALID_ARGUMENT', 'No command specified')
    const runtime = await detectRuntime({ storeRoot: this.root, ...(opts.runtime !== undefined ? { prefer: opts.runtime } : {}) })
    const snap = await this.snapshotter(opts.storageDriver)

    const id = randomBytes(32).toString('hex')
    config.Hostname = opts.hostname !== undefined && opts.hostname !== '' ? opts.hostname : net.mode === 'host' ? osHostname() : id.slice(0, 12)
    if (opts.domainname !== undefined) config.Domainname = opts.domainname
    const keys = snapshotKeys(id)
    const created = new Date()
    const owner = selfIdentity()
    const rowBase = {
      id, image_id: image.id, created: created.getTime(), image_ref: opts.image, command: JSON.stringify(argv), driver: snap.driver,
      runtime: runtime.name, runtime_path: runtime.path, auto_remove: opts.autoRemove ? 1 : 0,
    }
    let finalName = name
    if (finalName !== undefined) this.rows.insertCreating({ ...rowBase, name: finalName }, owner)
    else {
      for (let i = 0; ; i++) {
        finalName = randomContainerName(i < 3 ? 0 : i)
        try {
          this.rows.insertCreating({ ...rowBase, name: finalName }, owner)
          break
        } catch (err) {
          if (!hasCode(err, 'CONFLICT') || i > 50) throw err
        }
      }
    }
    const p = this.paths(id)
    try {
      // the volumes: made where missing and marked as this container's, in one transaction
      const wanted = plan.mounts.flatMap((m) => (m.kind === 'volume' ? [m.request] : []))
      const attached = this.volumes.attach(id, wanted)
      let vi = 0
      const copyUps: { name: string; destination: string }[] = []
      const mounts: ContainerMount[] = plan.mounts.map((m) => {
        if (m.kind === 'bind') return m.mount
        const volName = attached.names[vi++] as string
        if (m.copyUp) copyUps.push({ name: volName, destination: m.destination })
        return { source: this.volumes.dataDir(volName), destination: m.destination, readonly: m.readonly, volume: { name: volName, anonymous: m.request.anonymous, driver: 'local' } }
      })
      for (const v of attached.created) this.event('volume', 'create', v, { driver: 'local' })
      const spec: ContainerSpec = {
        id, name: finalName, created: created.toISOString(), image: image.id, imageRef: opts.image,
        path: argv[0] as string, args: argv.slice(1), config,
        hostConfig: {
          binds: mounts.filter((m) => !m.volume?.anonymous).map(bindString), mounts, networkMode: net.mode, autoRemove: opts.autoRemove ?? false, runtime: opts.runtime ?? '',
          portBindings: [...(opts.ports ?? [])], publishAllPorts: opts.publishAllPorts ?? false,
          dns: [...(opts.dns ?? [])], dnsSearch: [...(opts.dnsSearch ?? [])], dnsOptions: [...(opts.dnsOptions ?? [])], extraHosts: [...(opts.extraHosts ?? [])],
          restartPolicy,
          ...(plan.tmpfs.length > 0 ? { tmpfsMounts: plan.tmpfs } : {}),
          ...((opts.volumesFrom ?? []).length > 0 ? { volumesFrom: [...(opts.volumesFrom ?? [])] } : {}),
          privileged: opts.privileged ?? false, capAdd: [...(opts.capAdd ?? [])], capDrop: [...(opts.capDrop ?? [])],
          securityOpt: securityOptStrings(opts), readonlyRootfs: opts.readonlyRootfs ?? false, tmpfs: { ...(opts.tmpfs ?? {}) },
          devices: [...(opts.devices ?? [])], ulimits: [...(opts.ulimits ?? [])], groupAdd: [...(opts.groupAdd ?? [])], sysctls: { ...(opts.sysctls ?? {}) },
          init: opts.init ?? false, resources,
          ...(opts.shmSize !== undefined && opts.shmSize > 0 ? { shmSize: opts.shmSize } : {}),
        },
        ...(net.networks ? { networks: net.networks } : {}),
        driver: snap.driver, snapshotKey: keys.key, initKey: '',
        runtime: { name: runtime.name, path: runtime.path },
      }
      await mkdir(p.dir, { recursive: true, mode: 0o710 })
      await mkdir(p.bundle, { recursive: true })
      const { unpackImage } = await import('../snapshot/index.js')
      const top = await unpackImage(this.store, snap, image, opts)
      if (top !== undefined) spec.imageChain = top
      // the shared init layer may be pruned between our look and our prepare: then make it again
      for (let attempt = 0; ; attempt++) {
        spec.initKey = await this.initLayer(snap, id, top)
        try {
          await snap.prepare(keys.key, spec.initKey, { labels: { 'cairn.container': id }, volatile: opts.volatileRootfs === true })
          break
        } catch (err) {
          if (attempt > 2 || (await snap.tryStat(spec.initKey))?.kind === 'committed') throw err
        }
      }
      await this.copyUp(id, snap, copyUps)
      await this.writeEtcFiles(spec)
      await writeFileAtomic(p.spec, `${JSON.stringify(spec, null, 2)}\n`, 0o600)
      if (!this.rows.transition(id, [ContainerStates.creating], ContainerStates.created, null, undefined, { restart_policy: restartPolicyString(restartPolicy) })) {
        throw new CairnError('CONFLICT', `container ${id} was removed while it was being created`)
      }
      this.event('container', 'create', id, containerAttributes(spec))
      emit(opts, { id: '', status: 'Created' })
      return spec
    } catch (err) {
      await this.destroy(id, snap.driver, { removeVolumes: true }).catch(() => undefined)
      throw err
    }
  }

  /**
   * Docker's copy-up: each empty volume gets what the image has at its path (owners and modes
   * kept), from the container's root filesystem mounted for the occasion.
   */
  private async copyUp(id: string, snap: Snapshotter, wanted: readonly { name: string; destination: string }[]): Promise<void> {
    const todo = wanted.filter((w) => this.volumes.isEmpty(w.name))
    if (todo.length === 0) return
    const rootfs = this.paths(id).rootfs
    await mountAll(await snap.mounts(snapshotKeys(id).key), rootfs)
    try {
      for (const w of todo) {
        let src: string
        try {
          src = hostPathIn(rootfs, w.destination, { followFinal: true })
        } catch {
          continue
        }
        const st = await stat(src).catch(() => undefined)
        if (!st?.isDirectory()) continue
        await copyInto(src, this.volumes.dataDir(w.name))
      }
    } finally {
      await unmount(rootfs).catch(() => unmount(rootfs, { lazy: true }))
    }
  }

  /** Records an event in the store's journal. */
  event(type: EventType, action: string, id: string, attributes: Record<string, string> = {}): void {
    recordEvent(this.root, type, action, id, attributes)
  }

  /**
   * The image's init layer, made on first use (mounted on the container's rootfs folder to fill
   * it), then shared: a later container costs no copy (native) and no mount for it.
   */
  private async initLayer(snap: Snapshotter, id: string, parent: ChainId | undefined): Promise<string> {
    const name = initLayerName(parent)
    if ((await snap.tryStat(name))?.kind === 'committed') return name
    const tmp = `${name}-tmp-${id}`
    const target = this.paths(id).rootfs
    try {
      // a few empty files and folders (mount points, which the runtime makes itself when they
      // are missing): unmounting must not wait for the host's whole file system to be flushed,
      // as a plain overlay's unmount does
      const mounts = await snap.prepare(tmp, parent, { labels: { 'cairn.container': id }, volatile: true })
      await mountAll(mounts, target)
      try {
        populateInitLayer(target)
      } finally {
        await unmount(target)
      }
      await snap.commit(name, tmp, { labels: { 'cairn.init': parent ?? '' } })
      return name
    } catch (err) {
      if (await snap.tryStat(tmp)) await snap.remove(tmp).catch(() => undefined)
      // another container of the image made it meanwhile: theirs is the same
      if (hasCode(err, 'CONFLICT') && (await snap.tryStat(name))?.kind === 'committed') return name
      throw err
    }
  }

  /** The container's /etc/hostname, and first /etc/hosts and /etc/resolv.conf (written again when it starts, with its network). */
  private async writeEtcFiles(spec: ContainerSpec): Promise<void> {
    const p = this.paths(spec.id)
    const net = spec.hostConfig.networkMode === 'host' ? 'host' : 'private'
    const hostHosts = await readFile('/etc/hosts', 'utf8').catch(() => undefined)
    const hostResolv = await readFile('/etc/resolv.conf', 'utf8').catch(() => undefined)
    await writeFile(p.hostname, hostnameFile(spec.config.Hostname), { mode: 0o644 })
    await writeFile(p.hosts, hostsFile({ hostname: spec.config.Hostname, network: net, ...(hostHosts !== undefined ? { hostHosts } : {}) }), { mode: 0o644 })
    await writeFile(p.resolvConf, resolvConfFile(hostResolv, net), { mode: 0o644 })
  }

  /** How a container is networked, from its configuration. */
  private modeOf(spec: ContainerSpec): NetworkMode {
    const m = spec.hostConfig.networkMode
    if (m === 'host') return { kind: 'host' }
    if (m === 'none') return { kind: 'none' }
    if (m.startsWith('container:')) return { kind: 'container', container: m.slice('container:'.length) }
    // containers made before Cairn had networks: loopback only
    if (spec.networks === undefined || spec.networks.length === 0) return { kind: 'none' }
    return { kind: 'bridge', networks: spec.networks }
  }

  /** The ports a starting container publishes: those asked for, and with -P every exposed one not asked for. */
  private portsOf(spec: ContainerSpec): PortSpec[] {
    const asked = spec.hostConfig.portBindings ?? []
    if (!spec.hostConfig.publishAllPorts) return [...asked]
    const out = [...asked]
    for (const key of Object.keys(spec.config.ExposedPorts ?? {})) {
      const [port = '', proto = 'tcp'] = key.split('/')
      const containerPort = Number(port)
      const protocol = proto === 'udp' || proto === 'sctp' ? proto : 'tcp'
      if (!Number.isInteger(containerPort) || containerPort <= 0) continue
      if (!out.some((p) => p.containerPort === containerPort && p.protocol === protocol)) out.push({ containerPort, protocol, hostIp: '', hostPort: 0 })
    }
    return out
  }

  /** Brings up a starting container's network (in its monitor, which holds the published ports). */
  private async attachNetwork(spec: ContainerSpec): Promise<AttachResult> {
    const mode = this.modeOf(spec)
    const hc = spec.hostConfig
    const req: AttachRequest = {
      containerId: spec.id, containerName: spec.name, hostname: spec.config.Hostname, domainname: spec.config.Domainname,
      mode, ports: mode.kind === 'bridge' ? this.portsOf(spec) : [],
      dns: hc.dns ?? [], dnsSearch: hc.dnsSearch ?? [], dnsOptions: hc.dnsOptions ?? [], extraHosts: hc.extraHosts ?? [],
    }
    if (mode.kind === 'container') {
      const other = this.rows.get(mode.container)
      if (!other || (other.state !== ContainerStates.running && other.state !== ContainerStates.paused) || other.pid <= 0) {
        throw new CairnError('CONFLICT', `cannot join network of a non running container: ${mode.container}`)
      }
      const op = this.paths(other.id)
      req.joined = {
        netnsPath: `/proc/${other.pid}/ns/net`,
        hosts: await readFile(op.hosts, 'utf8'),
        resolvConf: await readFile(op.resolvConf, 'utf8'),
      }
    }
    const p = this.paths(spec.id)
    const r = await (await this.network()).attach(req, selfIdentity(), (a) => writeFileRenamed(p.network, JSON.stringify(a)))
    for (const e of r.attachment.endpoints) this.event('network', 'connect', e.networkId, { container: spec.id, name: e.network, type: 'bridge' })
    return r
  }

  /** Takes back what a container's network holds (from its record: also after a crash); nothing to do without one. */
  async detachNetwork(id: string): Promise<void> {
    const p = this.paths(id)
    let attachment: Attachment
    try {
      attachment = JSON.parse(await readFile(p.network, 'utf8')) as Attachment
    } catch {
      return
    }
    await (await this.network()).detach(id, attachment)
    await rm(p.network, { force: true })
    for (const e of attachment.endpoints) this.event('network', 'disconnect', e.networkId, { container: id, name: e.network, type: 'bridge' })
  }

  /**
   * `network connect`: a running container gets the network now (its monitor stays the lease's
   * holder); a stopped one at its next start. Refused for `none`, `host` and `container:` modes.
   */
  async connectNetwork(nameOrId: string, network: string, opts: { aliases?: string[]; ipv4Address?: string } = {}): Promise<void> {
    await this.reconcile()
    const row = this.resolve(nameOrId)
    const spec = await this.readSpec(row.id)
    const net = await this.network()
    const def = net.get(network)
    if (spec.networks === undefined) {
      throw new CairnError('CONFLICT', 'container sharing network namespace with another container or host cannot be connected to any other network')
    }
    if (spec.networks.some((n) => n.network === def.name)) throw new CairnError('CONFLICT', `endpoint with name ${row.name} already exists in network ${def.name}`)
    if (def.name === 'bridge' && ((opts.aliases ?? []).length > 0 || opts.ipv4Address !== undefined)) {
      throw new CairnError('INVALID_ARGUMENT', 'network-scoped alias is supported only for containers in user defined networks')
    }
    const wanted: EndpointRequest = { network: def.name, aliases: [...(opts.aliases ?? [])], ...(opts.ipv4Address !== undefined ? { ipv4Address: opts.ipv4Address } : {}) }
    if ((row.state === ContainerStates.running || row.state === ContainerStates.paused) && row.shim_pid !== null) {
      const attachment = await this.attachmentOf(row.id)
      if (!attachment) throw new CairnError('CONFLICT', `container ${row.id.slice(0, 12)} has no network to connect`)
      const next = await net.connect(row.id, row.name, attachment, wanted, { pid: row.shim_pid, start: row.shim_start ?? '' })
      await writeFileRenamed(this.paths(row.id).network, JSON.stringify(next))
      const e = next.endpoints.find((x) => x.network === def.name)
      this.event('network', 'connect', e?.networkId ?? def.id, { container: row.id, name: def.name, type: 'bridge' })
    }
    spec.networks.push(wanted)
    await writeFileAtomic(this.paths(row.id).spec, `${JSON.stringify(spec, null, 2)}\n`, 0o600)
  }

  /** `network disconnect`: off the network now if it runs, and for its next starts. */
  async disconnectNetwork(nameOrId: string, network: string): Promise<void> {
    await this.reconcile()
    const row = this.resolve(nameOrId)
    const spec = await this.readSpec(row.id)
    const net = await this.network()
    const def = net.get(network)
    if (!spec.networks?.some((n) => n.network === def.name)) throw new CairnError('CONFLICT', `container ${row.id} is not connected to network ${def.name}`)
    if (row.state === ContainerStates.running || row.state === ContainerStates.paused) {
      const attachment = await this.attachmentOf(row.id)
      if (attachment) {
        await writeFileRenamed(this.paths(row.id).network, JSON.stringify(await net.disconnect(row.id, attachment, def.name)))
        this.event('network', 'disconnect', def.id, { container: row.id, name: def.name, type: 'bridge' })
      }
    }
    spec.networks = spec.networks.filter((n) => n.network !== def.name)
    await writeFileAtomic(this.paths(row.id).spec, `${JSON.stringify(spec, null, 2)}\n`, 0o600)
  }

  /**
   * What the monitor recorded when the container last exited (undefined while it runs, or if it
   * never ran); between two runs of its restart policy, the last run's.
   */
  async exitRecord(id: string): Promise<ExitRecord | undefined> {
    const row = this.rows.get(id)
    if (!row || (row.state !== ContainerStates.exited && row.state !== ContainerStates.restarting) || row.finished_at === null) return undefined
    try {
      const rec = JSON.parse(await readFile(this.paths(id).exit, 'utf8')) as ExitRecord
      return rec.finishedAt >= (row.started_at ?? 0) ? rec : undefined
    } catch {
      return undefined
    }
  }

  /** The network attachment of a running container, if it has one (for inspect, ps, port). */
  async attachmentOf(id: string): Promise<Attachment | undefined> {
    try {
      return JSON.parse(await readFile(this.paths(id).network, 'utf8')) as Attachment
    } catch {
      return undefined
    }
  }

  /**
   * Removes everything of a container: mount, runtime state, snapshots, folder, row; with
   * `removeVolumes` also its anonymous volumes that no other container uses (Docker's `rm -v`).
   */
  private async destroy(id: string, driver: string, opts: { runtimeDelete?: boolean; removeVolumes?: boolean } = {}): Promise<void> {
    const p = this.paths(id)
    await unmount(p.rootfs).catch(() => unmount(p.rootfs, { lazy: true }))
    const row = this.rows.get(id)
    // a container that exited under its monitor is already gone from the runtime (`run` deletes it)
    if (row?.runtime_path && (opts.runtimeDelete ?? true)) {
      try {
        await this.runtimeOf(row).delete(id, { force: true })
      } catch {
        // the runtime is gone or never knew it
      }
    }
    // what the runtime's delete could not remove, or never ran to remove
    await removeCgroupFolders(containerCgroupsPath(id))
    await this.detachNetwork(id).catch(() => undefined)
    if (driver !== '') {
      const snap = await this.snapshotterOf(driver)
      const keys = [snapshotKeys(id).key]
      // an init layer this container was making when its creator died
      if (row) keys.push(`${initLayerName(this.store.imageChains(row.image_id).at(-1))}-tmp-${id}`)
      for (const k of keys) {
        if (await snap.tryStat(k)) await snap.remove(k)
      }
    }
    // what the container was (for its destroy event), if it was ever created
    const spec = await this.readSpec(id).catch(() => undefined)
    const anonymous = opts.removeVolumes ? this.volumes.volumesOf(id).filter((v) => this.volumes.get(v)?.anonymous === true) : []
    await rm(p.dir, { recursive: true, force: true })
    // its references to volumes go with its row
    this.rows.delete(id)
    if (spec) this.event('container', 'destroy', id, containerAttributes(spec))
    for (const v of anonymous) {
      try {
        await this.volumes.remove(v)
        this.event('volume', 'destroy', v, { driver: 'local' })
      } catch (err) {
        // used by another container too (--volumes-from): it stays, as with Docker
        if (!hasCode(err, 'CONFLICT') && !hasCode(err, 'NAME_UNKNOWN')) throw err
      }
    }
  }

  // ---------------------------------------------------------------- start

  /**
   * Starts a container through its monitor (`shim.js`), a detached process that runs the
   * runtime in the foreground, writes the log and records the exit code; it outlives this one.
   * Errors before the process runs (command not found: exit code 127 in `detail`) leave the
   * container as it was.
   */
  async start(nameOrId: string, opts: StartOptions = {}): Promise<StartedContainer> {
    await this.reconcile()
    const row = this.resolve(nameOrId)
    const id = row.id
    const callers = opts.attach ?? []
    const running = async (pid: number): Promise<StartedContainer> => {
      opts.monitor?.dismiss()
      const attached = await Promise.all(callers.map((c) => this.attach(id, c)))
      return { id, pid, alreadyRunning: true, attached, wait: () => this.waitAttached(id, attached), detach: () => undefined }
    }
    // between two runs of its restart policy: nothing to attach to until it runs again
    const restarting = (pid: number): StartedContainer => {
      opts.monitor?.dismiss()
      return { id, pid, alreadyRunning: true, attached: [], wait: () => this.waitExit(id), detach: () => undefined }
    }
    if (row.state === ContainerStates.running || row.state === ContainerStates.paused) return running(row.pid)
    if (row.state === ContainerStates.restarting) return restarting(row.pid)
    // a start by its user: the restart policy counts from zero again (Docker resets its restart manager)
    const reset = opts.policyRestart ? {} : { manual_stop: 0, restart_count: 0 }
    if (!this.rows.transition(id, [ContainerStates.created, ContainerStates.exited], ContainerStates.starting, selfIdentity(), undefined, { error: '', ...reset })) {
      const now = this.rows.get(id)
      if (now?.state === ContainerStates.running || now?.state === ContainerStates.starting) return running(now.pid)
      if (now?.state === ContainerStates.restarting) return restarting(now.pid)
      throw new CairnError('CONFLICT', `container ${nameOrId} is ${now?.state ?? 'gone'}: cannot start it now`)
    }
    const spec = await this.readSpec(id)
    const args: ShimArgs = { root: this.root, id, attachFirst: callers.length }
    let child: ChildProcess | undefined
    let events: ShimEvents
    if (opts.monitorHere) {
      opts.monitor?.dismiss()
      events = this.monitorInProcess(opts.monitorHere, args)
    } else {
      const standby = opts.monitor
      const fits = standby?.usable === true
      if (!fits) standby?.dismiss()
      // a monitor's own stderr (a crash, say) goes to its log
      const shimErr = openSync(this.paths(id).shimLog, 'a', 0o600)
      try {
        child = fits ? standby.take(args) : spawn(process.execPath, [...SHIM, JSON.stringify(args)], {
          detached: true,
          stdio: ['ignore', 'ignore', shimErr, 'pipe'],
          cwd: '/',
          env: monitorEnv(process.env),
        })
      } catch (err) {
        this.rows.transition(id, [ContainerStates.starting], row.started_at === null ? ContainerStates.created : ContainerStates.exited, null)
        throw err
      } finally {
        closeSync(shimErr)
      }
      events = shimEvents(child)
    }
    let first = await events.next()
    const attached: Attached[] = []
    if (first.event === 'ready') {
      try {
        for (const c of callers) attached.push(await attachSocket(this.paths(id).attach, c, { tty: spec.config.Tty }))
      } catch {
        // the monitor went away: its next event says why
      }
      first = await events.next()
    }
    if (first.event === 'failed') {
      for (const a of attached) a.detach()
      await events.closed
      throw new CairnError(first.code, first.message)
    }
    if (first.event !== 'started') {
      for (const a of attached) a.detach()
      await events.closed
      const shimLog = await readFile(this.paths(id).shimLog, 'utf8').catch(() => '')
      await this.reconcile()
      const how = child === undefined ? 'in this process' : child.exitCode !== null ? `exit code ${child.exitCode}` : `signal ${String(child.signalCode)}`
      throw new CairnError('CONFLICT', `the monitor of container ${id.slice(0, 12)} ended (${how}) before the container started${shimLog ? `: ${shimLog.trim().split('\n').slice(-3).join(' | ')}` : ''}`)
    }
    let detached = false
    const detach = (): void => {
      if (detached) return
      detached = true
      events.detach()
      child?.unref()
    }
    return {
      id,
      pid: first.pid,
      alreadyRunning: false,
      attached,
      wait: async () => {
        if (attached.length > 0) {
          const code = await this.waitAttached(id, attached)
          detach()
          return code
        }
        const last = await events.next()
        await events.closed
        if (last.event === 'exited') return last.exitCode
        return this.waitExit(id)
      },
      detach,
    }
  }

  /**
   * A monitor run in this process (StartOptions.monitorHere), its events through a queue. Should
   * it fail in a way of its own (a monitor process would have died), the failure goes to its log,
   * and what it left is stopped and recorded as a lost monitor's container is.
   */
  private monitorInProcess(run: MonitorRun, args: ShimArgs): ShimEvents {
    const events = eventQueue()
    const closed = run(this, args, { report: events.push, ownsProcess: false }).then(
      () => undefined,
      async (err: unknown) => {
        await appendFile(this.paths(args.id).shimLog, `${new Date().toISOString()} monitor failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`).catch(() => undefined)
        await this.endAbandoned(args.id).catch(() => undefined)
      },
    ).then(events.end)
    return { next: events.next, closed, detach: () => undefined }
  }

  /** Stops and records a container its (in-process) monitor gave up on, as a lost monitor's. */
  private async endAbandoned(id: string): Promise<void> {
    const row = this.rows.get(id)
    if (!row) return
    const rt = this.runtimeOf(row)
    await rt.kill(id, 'KILL', { all: true }).catch(() => undefined)
    await rt.delete(id, { force: true }).catch(() => undefined)
    await this.detachNetwork(id).catch(() => undefined)
    await unmount(this.paths(id).rootfs).catch(() => undefined)
    this.rows.transition(id, [ContainerStates.starting, ContainerStates.running, ContainerStates.paused, ContainerStates.restarting], row.started_at === null && row.state === ContainerStates.starting ? ContainerStates.created : ContainerStates.exited, null, undefined, {
      exit_code: LOST_EXIT_CODE, finished_at: Date.now(), pid: 0, shim_pid: null, shim_start: null,
    })
  }

  /** The exit code once attached sessions end (a dropped connection: read from the row), undefined when one detached. */
  private async waitAttached(id: string, attached: Attached[]): Promise<number | undefined> {
    if (attached.length === 0) return this.waitExit(id)
    const outcomes = await Promise.all(attached.map((a) => a.done))
    const ended = outcomes.find((o) => o.exitCode !== undefined)
    if (ended?.exitCode !== undefined) return ended.exitCode
    if (outcomes.some((o) => o.detached && o.exitCode === undefined)) {
      // a dropped connection and a detach look the same from here: ask the row
      const row = this.rows.get(id)
      if (row && (row.state === ContainerStates.running || row.state === ContainerStates.paused || row.state === ContainerStates.starting)) return undefined
    }
    return this.waitExit(id)
  }

  /**
   * Attaches a caller to a running container, through its monitor's attach socket; the session
   * ends with the process (its exit code) or when the caller detaches.
   */
  async attach(nameOrId: string, stdio: Stdio): Promise<Attached> {
    const row = this.resolve(nameOrId)
    if (row.state === ContainerStates.paused) throw new CairnError('CONFLICT', 'You cannot attach to a paused container, unpause it first')
    if (row.state !== ContainerStates.running) throw new CairnError('CONFLICT', 'You cannot attach to a stopped container, start it first')
    const spec = await this.readSpec(row.id)
    const s: Stdio = { ...stdio }
    if (!spec.config.OpenStdin) delete s.stdin
    return attachSocket(this.paths(row.id).attach, s, { tty: spec.config.Tty })
  }

  /** Resizes a running container's terminal (nothing to do without one). */
  async resize(nameOrId: string, size: TerminalSize): Promise<void> {
    const row = this.resolve(nameOrId)
    if (row.state !== ContainerStates.running && row.state !== ContainerStates.paused) throw new CairnError('CONFLICT', `Container ${row.id} is not running`)
    const spec = await this.readSpec(row.id)
    if (!spec.config.Tty) return
    await resizeSocket(this.paths(row.id).attach, size)
  }

  /** Waits until a container is no longer running; its exit code. */
  async waitExit(id: string, timeoutMs = Infinity, signal?: AbortSignal): Promise<number> {
    const deadline = Date.now() + timeoutMs
    for (let i = 0; ; i++) {
      const row = this.rows.get(id)
      if (!row) return this.lastExit.get(id) ?? 0
      if (row.state === ContainerStates.exited || row.state === ContainerStates.created) return row.exit_code
      if (row.state === ContainerStates.removing) {
        this.lastExit.set(id, row.exit_code)
      }
      if (Date.now() > deadline) throw new CairnError('ABORTED', `container ${id.slice(0, 12)} did not stop within ${timeoutMs} ms`)
      if (signal?.aborted) throw new CairnError('ABORTED', 'interrupted')
      if (i % 10 === 9) await this.reconcile([id])
      await sleep(i < 100 ? 10 : 50)
    }
  }

  private readonly lastExit = new Map<string, number>()

  /** The exit code of a container this engine saw being removed. */
  lastExitCode(id: string): number | undefined {
    return this.lastExit.get(id)
  }

  /**
   * The monitor's work before the runtime runs (in the monitor process): mount the root
   * filesystem, resolve the user, check the command, write the bundle.
   */
  async prepareStart(id: string): Promise<{ spec: ContainerSpec; bundle: string; releasePorts: () => Promise<void> }> {
    const spec = await this.readSpec(id)
    const p = this.paths(id)
    const snap = await this.snapshotterOf(spec.driver)
    if (!(await isMounted(p.rootfs))) await mountAll(await snap.mounts(spec.snapshotKey), p.rootfs)
    const cfg = spec.config
    const user = resolveUser(cfg.User, readFileIn(p.rootfs, '/etc/passwd'), readFileIn(p.rootfs, '/etc/group'))
    let env = processEnv(cfg.Env, cfg.Hostname, cfg.Tty)
    if (envValue(env, 'HOME') === undefined) env = replaceOrAppendEnv(env, [`HOME=${user.home}`])
    const cwd = cfg.WorkingDir !== '' ? cfg.WorkingDir : '/'
    ensureDir(p.rootfs, cwd)
    const binds = spec.hostConfig.mounts
    for (const b of binds) {
      if (b.volume) {
        // a volume's folder (and the file system its options name, mounted on it)
        await mkdir(b.source, { recursive: true, mode: 0o755 })
        await this.volumes.mountData(b.volume.name)
        continue
      }
      if (!existsSync(b.source)) throw new CairnError('INVALID_ARGUMENT', `invalid mount config for type "bind": bind source path does not exist: ${b.source}`)
    }
    lookPath(p.rootfs, spec.path, { path: envValue(env, 'PATH'), cwd, skipUnder: binds.map((b) => b.destination) })
    // the network last: it is what takes longest to undo
    const net = await this.attachNetwork(spec)
    try {
      await writeFileRenamed(p.hosts, net.hosts, 0o644)
      await writeFileRenamed(p.resolvConf, net.resolvConf, 0o644)
      const netns = net.attachment.netnsPath
      const { additionalGids, ...confined } = await confinementInput(spec, readFileIn(p.rootfs, '/etc/group'))
      const gids = [...new Set([...user.additionalGids, ...additionalGids])]
      const runtimeSpec = generateSpec({
        process: {
          args: [spec.path, ...spec.args], env, cwd, user: { uid: user.uid, gid: user.gid, additionalGids: gids }, terminal: cfg.Tty,
          nofile: containerNofile(), ulimits: spec.hostConfig.ulimits ?? [],
        },
        rootfs: p.rootfs,
        hostname: cfg.Hostname,
        network: netns !== undefined ? { path: netns } : spec.hostConfig.networkMode === 'host' ? 'host' : 'private',
        binds,
        tmpfsMounts: spec.hostConfig.tmpfsMounts ?? [],
        etc: { hosts: p.hosts, hostname: p.hostname, resolvConf: p.resolvConf },
        cgroupsPath: containerCgroupsPath(id),
        ...confined,
      })
      await writeFileRenamed(`${p.bundle}/config.json`, specJson(runtimeSpec, 2))
    } catch (err) {
      await net.releasePorts()
      await this.detachNetwork(id).catch(() => undefined)
      throw err
    }
    for (const b of binds) {
      if (b.volume) {
        this.event('volume', 'mount', b.volume.name, { container: id, destination: b.destination, driver: b.volume.driver, propagation: '', 'read/write': String(!b.readonly) })
      }
    }
    return { spec, bundle: p.bundle, releasePorts: net.releasePorts }
  }

  /** The monitor gives up before the process ran: back to created/exited, with the error. */
  async abortStart(id: string, err: unknown, exitCode: number): Promise<void> {
    const p = this.paths(id)
    await this.detachNetwork(id).catch(() => undefined)
    await unmount(p.rootfs).catch(() => unmount(p.rootfs, { lazy: true }).catch(() => undefined))
    const row = this.rows.get(id)
    if (!row) return
    const back = row.started_at === null ? ContainerStates.created : ContainerStates.exited
    this.rows.transition(id, [ContainerStates.starting, ContainerStates.restarting], back, null, undefined, {
      error: err instanceof Error ? err.message : String(err), exit_code: exitCode, shim_pid: null, shim_start: null,
    })
  }

  /** The monitor saw the runtime start the process. */
  markRunning(id: string, pid: number, shim: ProcessIdentity): void {
    this.rows.transition(id, [ContainerStates.starting, ContainerStates.restarting], ContainerStates.running, null, undefined, {
      pid, shim_pid: shim.pid, shim_start: shim.start, started_at: Date.now(), finished_at: null, exit_code: 0,
    })
  }

  /**
   * The monitor saw the process end: exit.json (atomic, with whether the kernel's OOM killer
   * ended it), then the mount, the network and the volumes taken back, then the row: exited, or
   * (`restarting`) waiting for its restart policy's next run, the monitor still its owner.
   */
  async markExited(id: string, exitCode: number, opts: { restarting?: boolean; oomKilled?: boolean } = {}): Promise<void> {
    const p = this.paths(id)
    const rec: ExitRecord = { exitCode, finishedAt: Date.now(), ...(opts.oomKilled ? { oomKilled: true } : {}) }
    await writeFileRenamed(p.exit, `${JSON.stringify(rec)}\n`).catch(() => undefined)
    // unmounted and disconnected before it shows as exited: an exited container holds neither
    await Promise.all([
      unmount(p.rootfs).catch(() => unmount(p.rootfs, { lazy: true }).catch(() => undefined)),
      this.detachNetwork(id).catch(() => undefined),
    ])
    await this.releaseVolumes(id)
    if (opts.restarting) {
      this.rows.transition(id, [ContainerStates.running, ContainerStates.paused, ContainerStates.starting], ContainerStates.restarting, null, undefined, {
        exit_code: exitCode, finished_at: rec.finishedAt, pid: 0,
      })
      return
    }
    this.rows.transition(id, [ContainerStates.running, ContainerStates.paused, ContainerStates.starting, ContainerStates.restarting], ContainerStates.exited, null, undefined, {
      exit_code: exitCode, finished_at: rec.finishedAt, pid: 0, shim_pid: null, shim_start: null,
    })
  }

  /** A stopped container's volumes: unmount events; a volume's own file system comes off when no other running container uses it. */
  private async releaseVolumes(id: string): Promise<void> {
    let spec: ContainerSpec
    try {
      spec = await this.readSpec(id)
    } catch {
      return
    }
    const live = new Set(this.rows.inStates([ContainerStates.running, ContainerStates.paused, ContainerStates.starting]).map((r) => r.id).filter((c) => c !== id))
    for (const m of spec.hostConfig.mounts) {
      if (!m.volume) continue
      this.event('volume', 'unmount', m.volume.name, { container: id, driver: m.volume.driver })
      const v = this.volumes.get(m.volume.name)
      if ((v?.options['device'] ?? '') !== '' && !this.volumes.users(m.volume.name).some((c) => live.has(c))) {
        await this.volumes.unmountData(m.volume.name).catch(() => undefined)
      }
    }
  }

  // ---------------------------------------------------------------- signals

  /**
   * Marks a container as stopped by its user: its restart policy does not restart it (nor
   * does a restart pending now happen). True when it was waiting to restart.
   */
  private manualStop(id: string): boolean {
    this.rows.update(id, { manual_stop: 1 })
    return this.rows.get(id)?.state === ContainerStates.restarting
  }

  /** `docker kill`: sends a signal (default KILL) to a running container's process. */
  async kill(nameOrId: string, signal = 'KILL'): Promise<ContainerRow> {
    await this.reconcile()
    const row = this.resolve(nameOrId)
    if (row.state !== ContainerStates.running && row.state !== ContainerStates.paused && row.state !== ContainerStates.restarting) {
      throw new CairnError('CONFLICT', `Cannot kill container: ${nameOrId}: Container ${row.id} is not running`)
    }
    const sig = normalizeSignal(signal)
    const spec = await this.readSpec(row.id)
    // KILL or the container's stop signal ends it for good (Docker's ExitOnNext): no restart
    const stopSignal = normalizeSignal(spec.config.StopSignal ?? 'TERM')
    if (sig === 'KILL' || sig === stopSignal) {
      // waiting to restart: the monitor sees the mark and stops waiting, nothing to signal
      if (this.manualStop(row.id)) {
        await this.waitExit(row.id, 30_000).catch(() => undefined)
        return row
      }
    } else if (row.state === ContainerStates.restarting) {
      return row
    }
    const rt = this.runtimeOf(row)
    await rt.kill(row.id, sig).catch(async (err: unknown) => {
      // it may have exited meanwhile: that is not an error for the caller
      if ((await rt.state(row.id))?.status === 'running' || (await rt.state(row.id))?.status === 'paused') throw err
    })
    this.event('container', 'kill', row.id, containerAttributes(spec, { signal: String(signalNumber(sig) || sig) }))
    // a frozen process cannot act on its signal: let it (as Docker does for a paused container)
    if (row.state === ContainerStates.paused) await this.resume(row.id).catch(() => undefined)
    if (sig === 'KILL') await this.waitExit(row.id, 30_000).catch(() => undefined)
    return row
  }

  /** `docker stop`: the stop signal (image's StopSignal, else TERM), then KILL after `timeoutSeconds`. No restart follows. */
  async stop(nameOrId: string, timeoutSeconds = 10): Promise<ContainerRow> {
    await this.reconcile()
    const row = this.resolve(nameOrId)
    if (row.state !== ContainerStates.running && row.state !== ContainerStates.paused && row.state !== ContainerStates.restarting) return row
    const spec = await this.readSpec(row.id)
    const attrs = containerAttributes(spec)
    if (this.manualStop(row.id)) {
      // between two runs: the monitor stops waiting and records the exit
      await this.waitExit(row.id, 30_000)
      this.event('container', 'stop', row.id, attrs)
      return row
    }
    const rt = this.runtimeOf(row)
    const stopSignal = normalizeSignal(spec.config.StopSignal ?? 'TERM')
    try {
      await rt.kill(row.id, stopSignal)
      this.event('container', 'kill', row.id, { ...attrs, signal: String(signalNumber(stopSignal) || stopSignal) })
      if (row.state === ContainerStates.paused) await this.resume(row.id).catch(() => undefined)
      await this.waitExit(row.id, Math.max(0, timeoutSeconds) * 1000)
      this.event('container', 'stop', row.id, attrs)
      return row
    } catch {
      // did not stop in time (or could not be signalled): kill it
    }
    await rt.kill(row.id, 'KILL').catch(() => undefined)
    this.event('container', 'kill', row.id, { ...attrs, signal: '9' })
    if (this.rows.get(row.id)?.state === ContainerStates.paused) await this.resume(row.id).catch(() => undefined)
    await this.waitExit(row.id, 30_000)
    this.event('container', 'stop', row.id, attrs)
    return row
  }

  private restartingError(row: ContainerRow): CairnError {
    return new CairnError('CONFLICT', `Container ${row.id} is restarting, wait until the container is running`)
  }

  /** `docker pause`: freezes every process of the container (cgroup freezer, through the runtime). */
  async pause(nameOrId: string): Promise<ContainerRow> {
    await this.reconcile()
    const row = this.resolve(nameOrId)
    if (row.state === ContainerStates.paused) throw new CairnError('CONFLICT', `Container ${row.id} is already paused`)
    if (row.state === ContainerStates.restarting) throw this.restartingError(row)
    if (row.state !== ContainerStates.running) throw new CairnError('CONFLICT', `Container ${row.id} is not running`)
    await this.runtimeOf(row).pause(row.id)
    this.rows.transition(row.id, [ContainerStates.running], ContainerStates.paused, null)
    this.event('container', 'pause', row.id, containerAttributes(await this.readSpec(row.id)))
    return row
  }

  /** `docker unpause`. */
  async resume(nameOrId: string): Promise<ContainerRow> {
    const row = this.resolve(nameOrId)
    if (row.state !== ContainerStates.paused) throw new CairnError('CONFLICT', `Container ${row.id} is not paused`)
    await this.runtimeOf(row).resume(row.id)
    this.rows.transition(row.id, [ContainerStates.paused], ContainerStates.running, null)
    this.event('container', 'unpause', row.id, containerAttributes(await this.readSpec(row.id)))
    return row
  }

  // ---------------------------------------------------------------- remove, rename

  /**
   * `docker rm [-f] [-v]`: a running container is refused unless `force` (then killed first);
   * `volumes`: its anonymous volumes go too (unless another container uses them).
   */
  async remove(nameOrId: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<ContainerRow> {
    await this.reconcile()
    const row = this.resolve(nameOrId)
    if (row.state === ContainerStates.running || row.state === ContainerStates.paused || row.state === ContainerStates.starting || row.state === ContainerStates.restarting) {
      if (!opts.force) {
        const what = row.state === ContainerStates.paused
          ? `You cannot remove a paused container ${row.id}. Unpause and then stop the container before attempting removal or force remove`
          : row.state === ContainerStates.restarting
            ? `You cannot remove a restarting container ${row.id}. Stop the container before attempting removal or force remove`
            : `You cannot remove a running container ${row.id}. Stop the container before attempting removal or force remove`
        throw new CairnError('CONFLICT', what)
      }
      this.manualStop(row.id)
      if (row.state !== ContainerStates.starting) await this.kill(row.id, 'KILL').catch(() => undefined)
      await this.waitExit(row.id, 30_000)
    }
    await this.removeStopped(row.id, { removeVolumes: opts.volumes ?? false })
    return row
  }

  /** Removes a stopped container, unless another process already is. */
  async removeStopped(id: string, opts: { removeVolumes?: boolean } = {}): Promise<void> {
    const row = this.rows.get(id)
    if (!row) return
    if (!this.rows.transition(id, [ContainerStates.created, ContainerStates.exited], ContainerStates.removing, selfIdentity())) {
      const now = this.rows.get(id)
      if (!now || now.state === ContainerStates.removing) return
      throw new CairnError('CONFLICT', `container ${id.slice(0, 12)} is ${now.state}: cannot remove it now`)
    }
    await this.destroy(id, row.driver, { runtimeDelete: row.state !== ContainerStates.exited && row.state !== ContainerStates.created, removeVolumes: opts.removeVolumes ?? false })
  }

  async rename(nameOrId: string, newName: string): Promise<ContainerRow> {
    const row = this.resolve(nameOrId)
    const name = validateName(newName)
    if (name === row.name) throw new CairnError('INVALID_ARGUMENT', `Renaming a container with the same name as its current name`)
    this.rows.rename(row.id, name)
    const spec = await this.readSpec(row.id)
    spec.name = name
    await writeFileAtomic(this.paths(row.id).spec, `${JSON.stringify(spec, null, 2)}\n`, 0o600)
    this.event('container', 'rename', row.id, containerAttributes(spec, { oldName: `/${row.name}` }))
    return row
  }

  // ---------------------------------------------------------------- exec

  /** `docker exec`: a new process in a running container; resolves with its exit code. */
  async exec(nameOrId: string, command: string[], opts: ExecOptions = {}): Promise<number> {
    const proc = await this.startExec(nameOrId, command, opts)
    return proc.exited
  }

  /**
   * Starts a process in a running container (the runtime's `exec` in the foreground, with pipes
   * or a pseudo-terminal: stdio.ts), its I/O joined to `opts.stdio`. It is this process's child:
   * it ends when its command does (or with the container).
   */
  async startExec(nameOrId: string, command: string[], opts: ExecOptions = {}): Promise<ExecProcess> {
    await this.reconcile()
    const row = this.resolve(nameOrId)
    if (row.state === ContainerStates.paused) throw new CairnError('CONFLICT', `Container ${row.id} is paused, unpause the container before exec`)
    if (row.state === ContainerStates.restarting) throw this.restartingError(row)
    if (row.state !== ContainerStates.running) throw new CairnError('CONFLICT', `Container ${row.id} is not running`)
    if (command.length === 0) throw new CairnError('INVALID_ARGUMENT', 'No exec command specified')
    const spec = await this.readSpec(row.id)
    const p = this.paths(row.id)
    const cfg = spec.config
    // a detached exec outlives this process: no terminal of ours to hold for it
    const detach = opts.detach ?? false
    const tty = (opts.tty ?? false) && !detach
    const user = resolveUser(opts.user ?? cfg.User, readFileIn(p.rootfs, '/etc/passwd'), readFileIn(p.rootfs, '/etc/group'))
    let env = processEnv(cfg.Env, cfg.Hostname, tty, opts.env ?? [])
    if (envValue(env, 'HOME') === undefined) env = replaceOrAppendEnv(env, [`HOME=${user.home}`])
    const cwd = opts.workdir !== undefined && opts.workdir !== '' ? opts.workdir : cfg.WorkingDir !== '' ? cfg.WorkingDir : '/'
    lookPath(p.rootfs, command[0] as string, { path: envValue(env, 'PATH'), cwd, skipUnder: spec.hostConfig.mounts.map((b) => b.destination) })
    const proc = processSpec({ args: command, env, cwd, user, terminal: tty, nofile: containerNofile() })
    // the same confinement as the container's own process: capabilities, limits, profiles
    const own = await this.bundleProcess(row.id)
    if (own) {
      proc.capabilities = own.capabilities
      proc.rlimits = own.rlimits
      proc.noNewPrivileges = own.noNewPrivileges
      if (own.apparmorProfile !== undefined) proc.apparmorProfile = own.apparmorProfile
    }
    const execId = randomBytes(32).toString('hex')
    const procFile = `${p.dir}/exec-${execId.slice(0, 16)}.json`
    await writeFile(procFile, specJson(proc), { mode: 0o600 }) // it holds the environment
    const rt = this.runtimeOf(row)
    const attrs = containerAttributes(spec, { execID: execId })
    const what = command.join(' ')
    this.event('container', `exec_create: ${what}`, row.id, attrs)
    const stdio = opts.stdio ?? {}
    const wantsInput = (opts.interactive ?? false) && stdio.stdin !== undefined && !detach
    let child: ReturnType<typeof spawnProcess>
    try {
      child = spawnProcess(rt.path, rt.execArgs(row.id, procFile, { tty, detach }), {
        tty, stdin: wantsInput, ...(stdio.size ? { size: stdio.size } : {}), env: { ...process.env, SHELL: '/bin/sh' },
      })
    } catch (err) {
      await unlink(procFile).catch(() => undefined)
      throw err
    }
    this.event('container', `exec_start: ${what}`, row.id, attrs)
    const exited = child.exited.finally(() => unlink(procFile).catch(() => undefined))
    if (!detach) {
      void exited.then((code) => this.event('container', 'exec_die', row.id, { ...attrs, exitCode: String(code) }), () => undefined)
    }
    const joined: Stdio = { ...stdio }
    if (!wantsInput) delete joined.stdin
    const attached = connectChild(child, joined)
    return { pid: child.pid, resize: (s) => child.resize(s), exited, attached }
  }

  /** The process of a started container's runtime spec (what `exec` shares with it). */
  private async bundleProcess(id: string): Promise<RuntimeProcess | undefined> {
    try {
      return (JSON.parse(await readFile(`${this.paths(id).bundle}/config.json`, 'utf8')) as { process?: RuntimeProcess }).process
    } catch {
      return undefined
    }
  }

  // ---------------------------------------------------------------- limits

  /**
   * `docker update`: new cgroup limits, checked as at create (0 leaves a limit as it is), applied
   * at once to a running container through the runtime, and kept for its next starts.
   */
  async update(nameOrId: string, limits: ResourceLimits): Promise<ContainerRow> {
    await this.reconcile()
    const row = this.resolve(nameOrId)
    const spec = await this.readSpec(row.id)
    const current = spec.hostConfig.resources ?? {}
    const next = checkResources(resourcesOf(limits), { update: true, current })
    if (row.state === ContainerStates.running || row.state === ContainerStates.paused) {
      const changed = resourcesOf(limits)
      for (const k of Object.keys(changed) as (keyof ResourceLimits)[]) if (changed[k] === 0 && k !== 'pidsLimit') delete changed[k]
      // the swap limit moves with the memory limit when both are set (the runtime orders the writes)
      if (changed.memory !== undefined && next.memorySwap !== undefined) changed.memorySwap = next.memorySwap
      try {
        await this.runtimeOf(row).update(row.id, linuxResources(changed))
      } catch (err) {
        throw new CairnError('CONFLICT', `Cannot update container ${row.id}: ${(err as Error).message}`, { cause: err })
      }
    }
    spec.hostConfig.resources = next
    await writeFileAtomic(this.paths(row.id).spec, `${JSON.stringify(spec, null, 2)}\n`, 0o600)
    return row
  }

  // ---------------------------------------------------------------- file system access

  /**
   * Runs `fn` with the container's root filesystem mounted on the host (as it is while the
   * container runs; mounted for the occasion, and unmounted after, when it is stopped).
   */
  async withRootfs<T>(nameOrId: string, fn: (rootfs: string, row: ContainerRow) => Promise<T>): Promise<T> {
    await this.reconcile()
    const row = this.resolve(nameOrId)
    const p = this.paths(row.id)
    const live = row.state === ContainerStates.running || row.state === ContainerStates.paused
    if (live || (await isMounted(p.rootfs))) return fn(p.rootfs, row)
    const snap = await this.snapshotterOf(row.driver)
    await mountAll(await snap.mounts(snapshotKeys(row.id).key), p.rootfs)
    try {
      return await fn(p.rootfs, row)
    } finally {
      // a start meanwhile uses this mount (and unmounts it when the container stops)
      const now = this.rows.get(row.id)
      if (!now || (now.state !== ContainerStates.running && now.state !== ContainerStates.starting && now.state !== ContainerStates.paused)) {
        await unmount(p.rootfs).catch(() => unmount(p.rootfs, { lazy: true }).catch(() => undefined))
      }
    }
  }

  // ---------------------------------------------------------------- truth after crashes

  /**
   * Makes the rows tell the truth about processes that died: a container whose monitor is gone
   * is marked exited (with the code the monitor recorded, else 255); a create, start or remove
   * whose process died is undone or finished. Each repair is claimed first (a conditional
   * update), so two commands never repair the same container.
   */
  async reconcile(ids?: readonly string[]): Promise<void> {
    // the first command after a reboot starts the containers their policies bring back
    const booted = this.claimBoot()
    const rows = this.rows.inStates([ContainerStates.creating, ContainerStates.starting, ContainerStates.running, ContainerStates.paused, ContainerStates.removing, ContainerStates.restarting])
    for (const row of rows) {
      if (ids && !ids.includes(row.id)) continue
      try {
        await this.repair(row, booted)
      } catch {
        // best effort: the next command tries again
      }
    }
    if (booted) await this.restartAfterBoot()
  }

  private bootChecked = false

  /**
   * Whether this process is the first to run in this store since the machine booted (the
   * kernel's boot ID differs from the one the store recorded); claimed with a conditional
   * update, so that exactly one process does the after-boot work. Asked once per process.
   */
  private claimBoot(): boolean {
    if (this.bootChecked) return false
    this.bootChecked = true
    let boot: string
    try {
      boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    } catch {
      return false
    }
    const db = this.store.db
    const seen = this.store.setting('boot-id')
    if (seen === boot) return false
    if (seen === undefined) {
      // a store's first boot ID: nothing ran before it
      db.prepare("INSERT OR IGNORE INTO settings (key, value) VALUES ('boot-id', ?)").run(boot)
      return false
    }
    return db.prepare("UPDATE settings SET value = ? WHERE key = 'boot-id' AND value = ?").run(boot, seen).changes === 1
  }

  /**
   * After a reboot, as Docker's daemon does when it starts: containers that ran before and
   * whose policy says so are started again (`always` even when stopped by their user,
   * `unless-stopped` unless stopped by their user, `on-failure` after a failure).
   */
  private async restartAfterBoot(): Promise<void> {
    for (const row of this.rows.inStates([ContainerStates.exited])) {
      if (row.started_at === null) continue
      const policy = parseRestartPolicyString(row.restart_policy)
      const again = policy.Name === 'always' ||
        (policy.Name === 'unless-stopped' && row.manual_stop === 0) ||
        (policy.Name === 'on-failure' && row.exit_code !== 0 && (policy.MaximumRetryCount === 0 || row.restart_count < policy.MaximumRetryCount))
      if (!again) continue
      try {
        (await this.start(row.id)).detach()
      } catch {
        // its error is on its row; the others still start
      }
    }
  }

  private async repair(row: ContainerRow, booted = false): Promise<void> {
    const me = selfIdentity()
    const seenOwner = { pid: row.owner_pid, start: row.owner_start }
    switch (row.state) {
      case ContainerStates.creating:
      case ContainerStates.removing:
        if (isAlive(row.owner_pid, row.owner_start)) return
        if (!this.rows.transition(row.id, [row.state], ContainerStates.removing, me, seenOwner)) return
        await this.destroy(row.id, row.driver, { removeVolumes: row.state === ContainerStates.creating || row.auto_remove === 1 })
        return
      case ContainerStates.starting: {
        if (isAlive(row.owner_pid, row.owner_start)) return
        if (!this.rows.transition(row.id, [ContainerStates.starting], ContainerStates.starting, me, seenOwner)) return
        await this.runtimeOf(row).delete(row.id, { force: true }).catch(() => undefined)
        await this.detachNetwork(row.id).catch(() => undefined)
        await unmount(this.paths(row.id).rootfs).catch(() => undefined)
        this.rows.transition(row.id, [ContainerStates.starting], row.started_at === null ? ContainerStates.created : ContainerStates.exited, null)
        return
      }
      case ContainerStates.running:
      case ContainerStates.paused:
      case ContainerStates.restarting: {
        if (isAlive(row.shim_pid, row.shim_start)) return
        const claimedElsewhere = (row.owner_pid !== null && isAlive(row.owner_pid, row.owner_start)) || !this.rows.transition(row.id, [row.state], row.state, me, seenOwner)
        if (claimedElsewhere) {
          // another command is recording the lost monitor's container (it had claimed it before
          // this look, or between this look and this claim): let it finish (briefly), so that
          // what this command shows next is the end it records
          for (let i = 0; i < 100; i++) {
            const now = this.rows.get(row.id)
            if (!now || now.state !== row.state || now.owner_pid === null || !isAlive(now.owner_pid, now.owner_start)) break
            await sleep(50)
          }
          return
        }
        const p = this.paths(row.id)
        let rec: ExitRecord | undefined
        try {
          rec = JSON.parse(await readFile(p.exit, 'utf8')) as ExitRecord
          if (rec.finishedAt < (row.started_at ?? 0)) rec = undefined
        } catch {
          rec = undefined
        }
        if (row.state === ContainerStates.restarting) rec = { exitCode: row.exit_code, finishedAt: row.finished_at ?? Date.now() }
        if (!rec) {
          // the monitor died without recording the end: stop what may still run, as lost
          const rt = this.runtimeOf(row)
          await rt.kill(row.id, 'KILL', { all: true }).catch(() => undefined)
          if ((await rt.state(row.id))?.status === 'paused') await rt.resume(row.id).catch(() => undefined)
          await rt.delete(row.id, { force: true }).catch(() => undefined)
          rec = { exitCode: LOST_EXIT_CODE, finishedAt: Date.now() }
        }
        await this.detachNetwork(row.id).catch(() => undefined)
        await unmount(p.rootfs).catch(() => unmount(p.rootfs, { lazy: true }).catch(() => undefined))
        if (row.state !== ContainerStates.restarting) await this.releaseVolumes(row.id)
        this.rows.transition(row.id, [row.state], ContainerStates.exited, null, undefined, {
          exit_code: rec.exitCode, finished_at: rec.finishedAt, pid: 0, shim_pid: null, shim_start: null,
        })
        const spec = await this.readSpec(row.id).catch(() => undefined)
        if (row.state !== ContainerStates.restarting && spec) {
          this.event('container', 'die', row.id, containerAttributes(spec, { exitCode: String(rec.exitCode), execDuration: String(Math.max(0, Math.trunc((rec.finishedAt - (row.started_at ?? rec.finishedAt)) / 1000))) }))
        }
        if (row.auto_remove) {
          await this.removeStopped(row.id, { removeVolumes: true }).catch(() => undefined)
          return
        }
        // its policy brings it back, as it would have had its monitor lived (after a reboot: see restartAfterBoot)
        if (booted) return
        const decision = restartDecision(parseRestartPolicyString(row.restart_policy), {
          exitCode: rec.exitCode, manualStop: row.manual_stop === 1, restartCount: row.restart_count, ranMs: rec.finishedAt - (row.started_at ?? rec.finishedAt), backoff: 0,
        })
        if (decision.restart) {
          this.rows.update(row.id, { restart_count: row.restart_count + 1 })
          await this.start(row.id, { policyRestart: true }).then((s) => s.detach(), () => undefined)
        }
        return
      }
      default:
    }
  }
}

/** Merges the image's config with the command line, as Docker's `create` does. */
function mergeConfig(image: ContainerConfig, opts: CreateOptions): ContainerSpec['config'] {
  const userCmd = opts.command ?? []
  let entrypoint: string[] | null
  let cmd: string[] | null
  if (opts.entrypoint === undefined) {
    entrypoint = image.Entrypoint ?? null
    cmd = userCmd.length > 0 ? [...userCmd] : image.Cmd ?? null
  } else if (opts.entrypoint.length === 0 || (opts.entrypoint.length === 1 && opts.entrypoint[0] === '')) {
    // cleared: the command alone runs (the image's CMD unless one is given)
    entrypoint = null
    cmd = userCmd.length > 0 ? [...userCmd] : image.Cmd ?? null
  } else {
    // a new entrypoint drops the image's CMD, as Docker does
    entrypoint = [...opts.entrypoint]
    cmd = userCmd.length > 0 ? [...userCmd] : null
  }
  const env = replaceOrAppendEnv(image.Env ?? [], opts.env ?? [])
  const cfg: ContainerSpec['config'] = {
    Hostname: '',
    Domainname: '',
    User: opts.user ?? image.User ?? '',
    AttachStdin: opts.interactive ?? false,
    AttachStdout: true,
    AttachStderr: true,
    Tty: opts.tty ?? false,
    OpenStdin: opts.interactive ?? false,
    StdinOnce: (opts.interactive ?? false) && (opts.stdinOnce ?? false),
    Env: env,
    Cmd: cmd,
    Image: opts.image,
    WorkingDir: opts.workdir !== undefined && opts.workdir !== '' ? opts.workdir : image.WorkingDir ?? '',
    Entrypoint: entrypoint,
    Labels: { ...(image.Labels ?? {}), ...(opts.labels ?? {}) },
  }
  if (image.Volumes) cfg.Volumes = image.Volumes
  if (image.OnBuild) cfg.OnBuild = image.OnBuild
  if (image.StopSignal) cfg.StopSignal = image.StopSignal
  if (image.ExposedPorts) cfg.ExposedPorts = image.ExposedPorts
  return cfg
}

const SIGNALS: Record<string, number> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11, USR2: 12, PIPE: 13,
  ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22, URG: 23, XCPU: 24,
  XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, PWR: 30, SYS: 31,
}

/** `SIGTERM`, `TERM`, `15` → `TERM` (the runtime takes names); INVALID_ARGUMENT for others. */
export function normalizeSignal(s: string): string {
  const up = s.toUpperCase().replace(/^SIG/, '')
  if (up in SIGNALS) return up
  if (/^\d+$/.test(s)) {
    const n = Number(s)
    const name = Object.keys(SIGNALS).find((k) => SIGNALS[k] === n)
    if (name) return name
    if (n >= 34 && n <= 64) return String(n)
  }
  if (/^RTMIN(\+\d+)?$|^RTMAX(-\d+)?$/.test(up)) return up
  throw new CairnError('INVALID_ARGUMENT', `Invalid signal: ${s}`)
}

function signalNumber(s: string): number {
  return SIGNALS[s.replace(/^SIG/, '')] ?? 0
}

/** A monitor's events, in order; `closed` once it is done. */
interface ShimEvents {
  next: () => Promise<ShimEvent | { event: 'closed' }>
  closed: Promise<void>
  detach: () => void
}

/** A monitor's events as they come, each handed to the next caller of `next`; once ended, `closed`. */
function eventQueue(): { push: (e: ShimEvent) => void; end: () => void; next: ShimEvents['next'] } {
  const queue: ShimEvent[] = []
  const waiters: ((e: ShimEvent | { event: 'closed' }) => void)[] = []
  let ended = false
  const flush = (): void => {
    while (waiters.length > 0 && (queue.length > 0 || ended)) {
      const w = waiters.shift() as (e: ShimEvent | { event: 'closed' }) => void
      w(queue.shift() ?? { event: 'closed' })
    }
  }
  return {
    push: (e) => {
      queue.push(e)
      flush()
    },
    end: () => {
      ended = true
      flush()
    },
    next: () => new Promise((resolve) => {
      waiters.push(resolve)
      flush()
    }),
  }
}

/** Reads the monitor's events from fd 3. */
function shimEvents(child: ChildProcess): ShimEvents {
  const pipe = child.stdio[3] as Readable | null | undefined
  const events = eventQueue()
  pipe?.on('data', lineReader((line) => {
    let e: ShimEvent
    try {
      e = JSON.parse(line) as ShimEvent
    } catch {
      return // not ours
    }
    events.push(e)
  }))
  pipe?.on('error', () => undefined)
  const closed = new Promise<void>((resolve) => {
    child.once('close', () => {
      events.end()
      resolve()
    })
  })
  child.once('error', events.end)
  return {
    next: events.next,
    closed,
    detach: () => {
      pipe?.removeAllListeners('data')
      pipe?.destroy()
      child.stdout?.destroy()
      child.stderr?.destroy()
      child.stdin?.destroy()
    },
  }
}

