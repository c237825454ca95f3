/** Volume endpoints: the same verbs as `cairn volume` (api/volumes.ts), in Docker's JSON. */
import { createVolume, inspectVolume, listVolumes, pruneVolumes, removeVolumes, type VolumeSummary } from '../api/volumes.js'
import { HttpError } from './errors.js'
import type { Exchange } from './exchange.js'
import type { Service } from './service.js'
import { filtersOf } from './system.js'

const CREATE_FIELDS = new Set(['Name', 'Driver', 'DriverOpts', 'Labels', 'ClusterVolumeSpec'])

function strMap(v: unknown, what: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'object' || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string')) throw new HttpError(400, `${what}: an object of strings expected`)
  return v as Record<string, string>
}

/** Docker's `Volume` without the summary's own fields. */
function volumeJson(v: VolumeSummary): Record<string, unknown> {
  const { links: _links, anonymous: _anonymous, ...docker } = v
  return docker
}

export function list(x: Exchange, s: Service): void {
  x.send(200, { Volumes: listVolumes(s.store, { filters: filtersOf(x) }).map(volumeJson), Warnings: [] })
}

export function inspect(x: Exchange, s: Service): void {
  x.send(200, inspectVolume(s.store, x.params['name'] ?? ''))
}

export async function create(x: Exchange, s: Service): Promise<void> {
  const b = await x.json<unknown>()
  if (typeof b !== 'object' || b === null || Array.isArray(b)) throw new HttpError(400, 'volume configuration: an object expected')
  const body = b as Record<string, unknown>
  for (const k of Object.keys(body)) if (!CREATE_FIELDS.has(k)) throw new HttpError(400, `json: unknown field ${JSON.stringify(k)} in volume configuration`)
  if (body['ClusterVolumeSpec'] !== undefined && body['ClusterVolumeSpec'] !== null) throw new HttpError(501, 'cluster volumes need a swarm: Cairn has none')
  const name = body['Name']
  const driver = body['Driver']
  if (name !== undefined && typeof name !== 'string') throw new HttpError(400, 'Name: a string expected')
  if (driver !== undefined && typeof driver !== 'string') throw new HttpError(400, 'Driver: a string expected')
  const labels = strMap(body['Labels'], 'Labels')
  const options = strMap(body['DriverOpts'], 'DriverOpts')
  x.send(201, createVolume(s.store, {
    ...(name !== undefined && name !== '' ? { name } : {}),
    ...(driver !== undefined && driver !== '' ? { driver } : {}),
    ...(labels ? { labels } : {}),
    ...(options ? { options } : {}),
  }))
}

export async function remove(x: Exchange, s: Service): Promise<void> {
  const res = await removeVolumes(s.store, [x.params['name'] ?? ''], { force: x.flag('force') })
  if (res.errors[0]) throw res.errors[0].error
  x.send(204)
}

export async function prune(x: Exchange, s: Service): Promise<void> {
  const r = await pruneVolumes(s.store, { filters: filtersOf(x) })
  x.send(200, { VolumesDeleted: r.removed, SpaceReclaimed: r.reclaimed })
}
