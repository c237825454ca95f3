/**
 * The volume verbs (`volume create|ls|inspect|rm|prune`): Docker's shapes (the Engine API's
 * `Volume`), Docker's filters and messages; events recorded in the store's journal. The CLI prints.
 */
import type { ImageStore } from '../image/store.js'
import { hasCode } from '../errors/index.js'
import { recordEvent } from '../events/journal.js'
import { ANONYMOUS_LABEL, type VolumeStore, type CreateVolumeOptions, type VolumeRecord } from '../volume/store.js'
import { containerEngine } from './containers.js'
import { invalidFilter, matchLabels, matchRegexp, parseUntil, validateFilterKeys, values, type FilterArgs } from './filters.js'

export type { CreateVolumeOptions, VolumeRecord }

/** Docker's `Volume` (`volume inspect`, the Engine API's `/volumes`). */
export interface VolumeInspect {
  CreatedAt: string
  Driver: string
  Labels: Record<string, string> | null
  Mountpoint: string
  Name: string
  Options: Record<string, string> | null
  Scope: 'local'
}

/** A volume in `volume ls`: Docker's fields, and how many containers use it. */
export interface VolumeSummary extends VolumeInspect {
  /** Containers (running or not) that use it. */
  links: number
  anonymous: boolean
}

/** Go's time.RFC3339 in this machine's time zone, as Docker writes a volume's CreatedAt. */
export function rfc3339(d: Date): string {
  const off = -d.getTimezoneOffset()
  const local = new Date(d.getTime() + off * 60_000).toISOString().slice(0, 19)
  if (off === 0) return `${local}Z`
  const sign = off > 0 ? '+' : '-'
  const a = Math.abs(off)
  return `${local}${sign}${String(Math.trunc(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`
}

function volumes(store: ImageStore): VolumeStore {
  return containerEngine(store).volumes
}

function inspectOf(v: VolumeRecord): VolumeInspect {
  return {
    CreatedAt: rfc3339(v.created),
    Driver: v.driver,
    Labels: Object.keys(v.labels).length > 0 ? { ...v.labels } : v.anonymous ? null : {},
    Mountpoint: v.mountpoint,
    Name: v.name,
    Options: Object.keys(v.options).length > 0 ? { ...v.options } : v.anonymous ? null : {},
    Scope: 'local',
  }
}

/** `docker volume create [--label K=V] [-d local] [-o type=…,device=…,o=…] [NAME]`: the volume (an existing one of that name is returned as it is). */
export function createVolume(store: ImageStore, opts: CreateVolumeOptions = {}): VolumeInspect {
  const { volume, created } = volumes(store).create(opts)
  if (created) recordEvent(store.root, 'volume', 'create', volume.name, { driver: volume.driver })
  return inspectOf(volume)
}

/** `docker volume inspect NAME` (NAME_UNKNOWN: `get NAME: no such volume`). */
export function inspectVolume(store: ImageStore, name: string): VolumeInspect {
  return inspectOf(volumes(store).mustGet(name))
}

/** Docker's filter keys of `volume ls`. */
export const VolumeFilterKeys = ['dangling', 'driver', 'label', 'name'] as const

function boolFilter(filters: FilterArgs, key: string): boolean | undefined {
  const vs = values(filters, key)
  if (vs.length === 0) return undefined
  const v = (vs[0] as string).toLowerCase()
  if (v === 'true' || v === '1') return true
  if (v === 'false' || v === '0') return false
  throw invalidFilter(key, vs[0])
}

/** `docker volume ls [--filter dangling=…|driver=…|label=…|name=…]`, sorted by name. */
export function listVolumes(store: ImageStore, opts: { filters?: FilterArgs } = {}): VolumeSummary[] {
  const filters = opts.filters ?? {}
  validateFilterKeys(filters, VolumeFilterKeys)
  const dangling = boolFilter(filters, 'dangling')
  const vs = volumes(store)
  const links = vs.userCounts()
  return vs.list()
    .map((v) => ({ ...inspectOf(v), links: links.get(v.name) ?? 0, anonymous: v.anonymous }))
    .filter((v) => dangling === undefined || (v.links === 0) === dangling)
    .filter((v) => values(filters, 'driver').length === 0 || values(filters, 'driver').includes(v.Driver))
    .filter((v) => matchRegexp(filters, 'name', v.Name))
    .filter((v) => matchLabels(filters, 'label', v.Labels))
}

export interface RemoveVolumesResult {
  /** The names removed, as given. */
  done: string[]
  errors: { volume: string; error: Error }[]
}

/**
 * `docker volume rm [-f] NAME…`: each independently; a volume a container uses (running or
 * stopped) is refused with Docker's `remove NAME: volume is in use - [ID]`. `force` only
 * quiets missing ones, as Docker's.
 */
export async function removeVolumes(store: ImageStore, names: readonly string[], opts: { force?: boolean } = {}): Promise<RemoveVolumesResult> {
  const vs = volumes(store)
  const out: RemoveVolumesResult = { done: [], errors: [] }
  for (const n of names) {
    try {
      const v = await vs.remove(n)
      recordEvent(store.root, 'volume', 'destroy', v.name, { driver: v.driver })
      out.done.push(n)
    } catch (err) {
      if (opts.force && hasCode(err, 'NAME_UNKNOWN')) {
        out.done.push(n)
        continue
      }
      out.errors.push({ volume: n, error: err as Error })
    }
  }
  return out
}

export interface PruneVolumesOptions {
  /** All unused volumes, not only anonymous ones (`-a`). */
  all?: boolean
  /** `label=K[=V]`, `label!=K[=V]`, `all=true|false`, `until=…`. */
  filters?: FilterArgs
}

/**
 * `docker volume prune [-a]`: the volumes no container uses, anonymous ones only unless `all`
 * (Docker 23's rule); their names and the bytes freed.
 */
export async function pruneVolumes(store: ImageStore, opts: PruneVolumesOptions = {}): Promise<{ removed: string[]; reclaimed: number }> {
  const filters = opts.filters ?? {}
  validateFilterKeys(filters, ['label', 'label!', 'all', 'until'])
  const all = (opts.all ?? false) || boolFilter(filters, 'all') === true
  const until = values(filters, 'until')[0]
  const cutoff = until !== undefined ? parseUntil(until) : undefined
  const vs = volumes(store)
  await vs.emptyTrash()
  const links = vs.userCounts()
  const removed: string[] = []
  let reclaimed = 0
  for (const v of vs.list()) {
    if ((links.get(v.name) ?? 0) > 0) continue
    if (!all && !v.anonymous && !(ANONYMOUS_LABEL in v.labels)) continue
    if (!matchLabels(filters, 'label', v.labels)) continue
    if (values(filters, 'label!').length > 0 && matchLabels({ label: values(filters, 'label!') }, 'label', v.labels)) continue
    if (cutoff !== undefined && v.created.getTime() >= cutoff) continue
    const size = await vs.size(v.name)
    try {
      await vs.remove(v.name)
    } catch (err) {
      if (hasCode(err, 'CONFLICT') || hasCode(err, 'NAME_UNKNOWN')) continue // used (or removed) meanwhile
      throw err
    }
    recordEvent(store.root, 'volume', 'destroy', v.name, { driver: v.driver })
    removed.push(v.name)
    reclaimed += size
  }
  return { removed, reclaimed }
}
