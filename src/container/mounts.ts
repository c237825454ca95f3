/**
 * What a container mounts, decided at create as Docker decides it: the mounts of
 * `--volumes-from` containers first, the user's own (`-v`, `--mount`, `--tmpfs`) over them at the
 * same path, then an anonymous volume for each of the image's VOLUMEs that nothing else covers.
 * Two of the user's own at one path (a `--tmpfs` among them) are Docker's "Duplicate mount point".
 */
import { existsSync, mkdirSync } from 'node:fs'
import { CairnError } from '../errors/index.js'
import type { VolumeRequest } from '../volume/store.js'
import type { BindMountSpec, MountSpec, TmpfsMountSpec } from './config.js'
import type { ContainerMount, TmpfsMount } from './types.js'

/** A mount as planned: a bind ready for the runtime, or a volume still to be attached (named). */
export type PlannedMount =
  | { kind: 'bind'; mount: ContainerMount }
  | { kind: 'volume'; request: VolumeRequest; destination: string; readonly: boolean; copyUp: boolean }

export interface MountPlan {
  /** Binds and volumes, in the order given (the runtime sorts parents before children). */
  mounts: PlannedMount[]
  tmpfs: TmpfsMount[]
  /** Paths of the image's VOLUMEs and `-v /path` mounts (Docker's Config.Volumes). */
  anonymousTargets: string[]
}

function clean(p: string): string {
  const s = p.replace(/\/+/g, '/').replace(/\/$/, '')
  return s === '' ? '/' : s
}

/** A bind mount as the runtime takes it; a `-v` source that is missing is made (as Docker's `-v` does), a `--mount` one is an error. */
function bindOf(m: BindMountSpec): ContainerMount {
  if (!m.source.startsWith('/')) throw new CairnError('INVALID_ARGUMENT', `invalid mount config for type "bind": invalid mount path: '${m.source}' mount path must be absolute`)
  if (!m.target.startsWith('/') || m.target.replace(/\/+$/, '') === '') {
    throw new CairnError('INVALID_ARGUMENT', `invalid mount config for type "bind": invalid mount path: '${m.target}' mount path must be absolute and not /`)
  }
  if (!existsSync(m.source)) {
    if (!m.createSource) throw new CairnError('INVALID_ARGUMENT', `invalid mount config for type "bind": bind source path does not exist: ${m.source}`)
    mkdirSync(m.source, { recursive: true, mode: 0o755 })
  }
  return { source: m.source, destination: clean(m.target), readonly: m.readonly }
}

/** Docker's options of a tmpfs mount: noexec,nosuid,nodev,rprivate, then size (in the largest unit that divides it), mode, ro. */
export function tmpfsOf(m: TmpfsMountSpec): TmpfsMount {
  const options = ['noexec', 'nosuid', 'nodev', 'rprivate']
  if (m.size !== undefined && m.size > 0) {
    let size = m.size
    let suffix = ''
    for (const [s, d] of [['g', 2 ** 30], ['m', 2 ** 20], ['k', 2 ** 10]] as const) {
      if (size % d === 0) {
        size /= d
        suffix = s
        break
      }
    }
    options.push(`size=${size}${suffix}`)
  }
  if (m.mode !== undefined) options.push(`mode=${m.mode.toString(8)}`)
  if (m.readonly) options.push('ro')
  return { destination: clean(m.target), options, readonly: m.readonly }
}

/**
 * Plans a container's mounts. `from` are the mounts of the `--volumes-from` containers (their
 * modes already applied); `imageVolumes` the image's VOLUME paths; `tmpfsPaths` the paths of
 * `--tmpfs` (mounted from the container's HostConfig.Tmpfs, not planned here, but they take
 * their paths).
 */
export function planMounts(
  user: readonly MountSpec[], from: readonly ContainerMount[], imageVolumes: readonly string[], tmpfsPaths: readonly string[] = [],
): MountPlan {
  const seen = new Set<string>()
  for (const t of tmpfsPaths) {
    const dst = clean(t)
    if (seen.has(dst)) throw new CairnError('INVALID_ARGUMENT', `Duplicate mount point: ${dst}`)
    seen.add(dst)
  }
  const own: PlannedMount[] = []
  const tmpfs: TmpfsMount[] = []
  const anonymousTargets: string[] = []
  for (const m of user) {
    const dst = clean(m.target)
    if (seen.has(dst)) throw new CairnError('INVALID_ARGUMENT', `Duplicate mount point: ${dst}`)
    seen.add(dst)
    if (m.type === 'bind') own.push({ kind: 'bind', mount: bindOf(m) })
    else if (m.type === 'tmpfs') tmpfs.push(tmpfsOf(m))
    else {
      const anonymous = m.source === undefined || m.source === ''
      const request: VolumeRequest = { anonymous }
      if (!anonymous) request.name = m.source as string
      if (m.labels) request.labels = m.labels
      if (m.driverOptions) request.options = m.driverOptions
      if (m.driver !== undefined) request.driver = m.driver
      if (anonymous) anonymousTargets.push(dst)
      own.push({ kind: 'volume', request, destination: dst, readonly: m.readonly, copyUp: !(m.noCopy ?? false) })
    }
  }
  const mounts: PlannedMount[] = []
  for (const f of from) {
    if (seen.has(f.destination)) continue
    seen.add(f.destination)
    if (f.volume) {
      mounts.push({ kind: 'volume', request: { name: f.volume.name, anonymous: f.volume.anonymous }, destination: f.destination, readonly: f.readonly, copyUp: false })
    } else {
      mounts.push({ kind: 'bind', mount: { source: f.source, destination: f.destination, readonly: f.readonly } })
    }
  }
  mounts.push(...own)
  for (const v of imageVolumes) {
    const dst = clean(v.startsWith('/') ? v : `/${v}`)
    if (dst === '/' || seen.has(dst)) continue
    seen.add(dst)
    anonymousTargets.push(dst)
    mounts.push({ kind: 'volume', request: { anonymous: true }, destination: dst, readonly: false, copyUp: true })
  }
  return { mounts, tmpfs, anonymousTargets }
}

/** `NAME[:ro|:rw]` of `--volumes-from`: the container and the mode to force (undefined: each mount keeps its own). */
export function splitVolumesFrom(spec: string): { container: string; readonly?: boolean } {
  const [container = '', mode] = spec.split(':')
  if (container === '') throw new CairnError('INVALID_ARGUMENT', `invalid volumes-from specification: ${spec}`)
  if (mode === undefined) return { container }
  if (mode !== 'ro' && mode !== 'rw') throw new CairnError('INVALID_ARGUMENT', `invalid mode: ${mode}`)
  return { container, readonly: mode === 'ro' }
}
