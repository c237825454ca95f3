/**
 * `docker system prune`: stopped containers, then unused networks, then dangling (or, with
 * `all`, unused) images, in that order (each frees what the next may remove); the build cache
 * (src/build, below this folder) is pruned after this by the caller. Volumes: Cairn has none
 * yet, so `volumes` prunes nothing (the volume verbs plug in here).
 */
import type { ImageStore } from '../image/store.js'
import type { DeleteRecord } from '../image/store.js'
import { pruneContainers } from './containers.js'
import { pruneImages } from './images.js'
import { pruneNetworks } from './networks.js'
import type { FilterArgs } from './filters.js'

export interface SystemPruneOptions {
  /** Every image no container uses, not only dangling ones. */
  all?: boolean
  /** Also anonymous volumes no container uses (none exist yet). */
  volumes?: boolean
  /** `until` and `label` filters, for every kind. */
  filters?: FilterArgs
}

export interface SystemPruneResult {
  containers: string[]
  networks: string[]
  volumes: string[]
  images: DeleteRecord[]
  reclaimed: number
}

export async function pruneSystem(store: ImageStore, opts: SystemPruneOptions = {}): Promise<SystemPruneResult> {
  const filters = opts.filters ?? {}
  const containers = await pruneContainers(store, { filters })
  const networks = await pruneNetworks({ filters })
  const images = await pruneImages(store, { all: opts.all ?? false, filters })
  return {
    containers: containers.deleted, networks, volumes: [], images: images.records,
    reclaimed: containers.reclaimed + images.reclaimed,
  }
}
