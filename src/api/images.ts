/** `images`, `tag`, `rmi`, `inspect`, `history`, `system df`, `image prune`: the store's read and name verbs. */
import { CairnError } from '../errors/index.js'
import type { DiffId, Digest, ImageId } from '../oci/digest.js'
import type { ContainerConfig, HistoryEntry, ImageConfig } from '../oci/types.js'
import { familiarString, parseReference, withDefaultTag } from '../oci/reference.js'
import { repoOf, type DeleteRecord, type ImageRecord, type ImageStore } from '../image/store.js'
import { readFileSync } from 'node:fs'
import {
  danglingFilter, ImageFilterKeys, ImagePruneFilterKeys, matchLabels, parseUntil, pathMatch, validateFilterKeys, values, type FilterArgs,
} from './filters.js'
import { recordImageEvent } from './system-events.js'

export interface ImageSummary {
  id: ImageId
  /** Familiar names: `ubuntu:latest`, `registry.example.com/huzd/test:1.0.0`. */
  repoTags: string[]
  repoDigests: string[]
  created: Date
  size: number
  parent?: ImageId
  /** Intermediate images (untagged, with children) are listed only with `all`. */
  intermediate: boolean
  containers: number
}

export interface ListImagesOptions {
  /** Show intermediate images too (`-a`). */
  all?: boolean
  /** `REPOSITORY[:TAG]` filter, as `docker images ubuntu` takes it. */
  reference?: string
  /** Docker's `--filter`: `dangling`, `label`, `before`, `since`, `reference`. */
  filters?: FilterArgs
}

/** The labels of an image's config (read at once: a config is a few kilobytes). */
export function imageLabels(store: ImageStore, img: ImageRecord): Record<string, string> {
  try {
    const cfg = JSON.parse(readFileSync(store.content.path(img.configDigest), 'utf8')) as ImageConfig
    return cfg.config?.Labels ?? {}
  } catch {
    return {}
  }
}

/** Docker's FamiliarMatch: the pattern against `name:tag`, then against the name alone. */
function familiarMatch(pattern: string, familiar: string): boolean {
  if (pathMatch(pattern, familiar)) return true
  const at = familiar.indexOf('@')
  const colon = familiar.lastIndexOf(':')
  const name = at >= 0 ? familiar.slice(0, at) : colon > familiar.lastIndexOf('/') ? familiar.slice(0, colon) : familiar
  return pathMatch(pattern, name)
}

export function listImages(store: ImageStore, opts: ListImagesOptions = {}): ImageSummary[] {
  let filter: { repo: string; tag?: string } | undefined
  if (opts.reference !== undefined) {
    const ref = parseReference(opts.reference)
    filter = { repo: `${ref.domain}/${ref.path}` }
    if (ref.tag !== undefined) filter.tag = ref.tag
  }
  const filters = opts.filters ?? {}
  validateFilterKeys(filters, ImageFilterKeys)
  const dangling = danglingFilter(filters)
  const createdOf = (key: string): number[] => values(filters, key).map((r) => store.resolve(r).created.getTime())
  const before = createdOf('before')
  const since = createdOf('since')
  const patterns = values(filters, 'reference')
  const out: ImageSummary[] = []
  const all = store.list()
  const hasChildren = new Set(all.flatMap((i) => (i.parent ? [i.parent] : [])))
  for (const img of all) {
    const intermediate = img.tags.length === 0 && img.repoDigests.length === 0 && hasChildren.has(img.id)
    if (intermediate && !opts.all) continue
    const isDangling = img.tags.length === 0
    if (dangling !== undefined && dangling !== isDangling) continue
    if (before.some((t) => img.created.getTime() >= t) || since.some((t) => img.created.getTime() <= t)) continue
    if (values(filters, 'label').length > 0 && !matchLabels(filters, 'label', imageLabels(store, img))) continue
    let tags = img.tags
    let digests = img.repoDigests
    if (filter) {
      const f = filter
      tags = tags.filter((t) => repoOf(t) === f.repo && (f.tag === undefined || t.endsWith(`:${f.tag}`)))
      digests = digests.filter((d) => repoOf(d) === f.repo)
      if (tags.length === 0 && (f.tag !== undefined || digests.length === 0)) continue
    }
    let repoTags = tags.map((t) => familiarString(parseReference(t)))
    let repoDigests = digests.map((d) => familiarString(parseReference(d)))
    if (patterns.length > 0) {
      repoTags = repoTags.filter((t) => patterns.some((p) => familiarMatch(p, t)))
      repoDigests = repoDigests.filter((d) => patterns.some((p) => familiarMatch(p, d)))
      if (repoTags.length === 0 && repoDigests.length === 0) continue
    }
    const s: ImageSummary = {
      id: img.id,
      repoTags,
      repoDigests,
      created: img.created,
      size: img.size,
      intermediate,
      containers: store.containerUsers(img.id).length,
    }
    if (img.parent) s.parent = img.parent
    out.push(s)
  }
  return out
}

/** `docker tag SOURCE TARGET`. */
export function tagImage(store: ImageStore, source: string, target: string): { id: ImageId; target: string } {
  const img = store.resolve(source)
  const ref = withDefaultTag(parseReference(target))
  if (ref.digest !== undefined) throw new CairnError('INVALID_REFERENCE', `refusing to create a tag with a digest reference: ${target}`)
  store.tag(ref, img.id)
  recordImageEvent(store, 'tag', img.id, familiarString(ref), img.id)
  return { id: img.id, target: familiarString(ref) }
}

export interface RemoveOptions {
  force?: boolean
  /** Do not delete untagged parents (`--no-prune`). */
  noPrune?: boolean
}

export interface RemoveResult {
  /** Docker's `Untagged:`/`Deleted:` records, names in familiar form. */
  records: DeleteRecord[]
  /** Per argument that failed, its error (the others still proceed, as with Docker). */
  errors: { image: string; error: Error }[]
}

/** `docker rmi`: each argument independently; a failure on one does not stop the others. */
export async function removeImages(store: ImageStore, images: readonly string[], opts: RemoveOptions = {}): Promise<RemoveResult> {
  const result: RemoveResult = { records: [], errors: [] }
  for (const image of images) {
    try {
      const target = store.tryResolve(image)?.id
      const recs = await store.remove(image, opts)
      for (const r of recs) {
        result.records.push('untagged' in r ? { untagged: familiarString(parseReference(r.untagged)) } : r)
        if ('untagged' in r && target !== undefined) recordImageEvent(store, 'untag', target, target, target)
        if ('deleted' in r) recordImageEvent(store, 'delete', r.deleted, r.deleted)
      }
    } catch (err) {
      result.errors.push({ image, error: err as Error })
    }
  }
  return result
}

/** `docker image inspect`, in Docker's JSON shape. */
export interface ImageInspect {
  Id: ImageId
  RepoTags: string[]
  RepoDigests: string[]
  Parent: string
  Comment: string
  Created: string
  Container: string
  ContainerConfig: ContainerConfig
  DockerVersion: string
  Author: string
  Config: ContainerConfig | null
  Architecture: string
  Variant?: string
  Os: string
  Size: number
  VirtualSize: number
  GraphDriver: { Name: string; Data: Record<string, string> | null }
  RootFS: { Type: string; Layers: DiffId[] }
  Metadata: { LastTagTime: string }
  Descriptor: { mediaType: string; digest: Digest }
}

export async function inspectImage(store: ImageStore, refOrId: string): Promise<ImageInspect> {
  const img = store.resolve(refOrId)
  const cfg = await store.config(img)
  const out: ImageInspect = {
    Id: img.id,
    RepoTags: img.tags.map((t) => familiarString(parseReference(t))),
    RepoDigests: img.repoDigests.map((t) => familiarString(parseReference(t))),
    Parent: img.parent ?? '',
    Comment: cfg.comment ?? lastComment(cfg.history) ?? '',
    Created: cfg.created ?? img.created.toISOString(),
    Container: cfg.container ?? '',
    ContainerConfig: cfg.container_config ?? {},
    DockerVersion: cfg.docker_version ?? '',
    Author: cfg.author ?? '',
    Config: cfg.config ?? null,
    Architecture: cfg.architecture,
    Os: cfg.os,
    Size: img.size,
    VirtualSize: img.size,
    GraphDriver: { Name: store.setting('storage-driver') ?? 'overlay', Data: null },
    RootFS: { Type: 'layers', Layers: cfg.rootfs.diff_ids },
    Metadata: { LastTagTime: '0001-01-01T00:00:00Z' },
    Descriptor: { mediaType: img.manifestMediaType, digest: img.manifestDigest },
  }
  if (cfg.variant !== undefined) out.Variant = cfg.variant
  return out
}

function lastComment(history: HistoryEntry[] | undefined): string | undefined {
  return history?.at(-1)?.comment
}

export interface HistoryRow {
  /** The image ID for rows that are whole local images, else undefined (`<missing>`). */
  id?: ImageId
  created?: Date
  createdBy: string
  size: number
  comment: string
  author: string
  emptyLayer: boolean
}

/** `docker history`: newest first, with the layer size of each step. */
export async function imageHistory(store: ImageStore, refOrId: string): Promise<HistoryRow[]> {
  const img = store.resolve(refOrId)
  const cfg = await store.config(img)
  const history = cfg.history ?? []
  const diffIds = cfg.rootfs.diff_ids
  // the local ancestors, if known (committed images record their parent)
  const ancestors: ImageRecord[] = []
  for (let cur: ImageRecord | undefined = img; cur; cur = cur.parent ? store.get(cur.parent) : undefined) ancestors.push(cur)
  const rows: HistoryRow[] = []
  let layer = 0
  for (const h of history) {
    const empty = h.empty_layer === true
    const diffId = empty ? undefined : diffIds[layer++]
    const row: HistoryRow = {
      createdBy: h.created_by ?? '',
      size: diffId ? store.layerSize(diffId) ?? 0 : 0,
      comment: h.comment ?? '',
      author: h.author ?? '',
      emptyLayer: empty,
    }
    if (h.created) row.created = new Date(h.created)
    rows.push(row)
  }
  if (history.length === 0) {
    // an image without history: one row per layer
    for (const d of diffIds) rows.push({ createdBy: '', size: store.layerSize(d) ?? 0, comment: '', author: '', emptyLayer: false })
  }
  rows.reverse()
  // rows that end a local image's own history carry that image's ID (the top row is the image
  // itself; a committed image's parent owns the row where the parent's history ends)
  if (rows[0]) rows[0].id = img.id
  for (const a of ancestors.slice(1)) {
    const offset = history.length - ((await store.config(a)).history ?? []).length
    const row = rows[offset]
    if (row && offset > 0) row.id = a.id
  }
  return rows
}

export interface DiskUsage {
  images: { total: number; active: number; size: number; reclaimable: number }
  layers: { total: number; shared: number; size: number; sharedSize: number }
  /** Bytes the blobs take on disk (layers as stored, compressed or not, plus configs and manifests). */
  blobs: { count: number; size: number }
  perImage: { id: ImageId; repoTags: string[]; created: Date; size: number; sharedSize: number; uniqueSize: number; containers: number }[]
}

/** `docker system df`: images, layers, and what is shared between images or unique to one. */
export async function diskUsage(store: ImageStore): Promise<DiskUsage> {
  const layers = store.layers()
  const byChain = new Map(layers.map((l) => [l.chainId, l]))
  const images = store.list()
  const perImage: DiskUsage['perImage'] = []
  let active = 0
  for (const img of images) {
    const chains = store.imageChains(img.id)
    let shared = 0
    let unique = 0
    for (const c of new Set(chains)) {
      const l = byChain.get(c)
      if (!l) continue
      if (l.images > 1) shared += l.size
      else unique += l.size
    }
    const containers = store.containerUsers(img.id).length
    if (containers > 0) active++
    perImage.push({ id: img.id, repoTags: img.tags.map((t) => familiarString(parseReference(t))), created: img.created, size: img.size, sharedSize: shared, uniqueSize: unique, containers })
  }
  const totalLayerSize = layers.reduce((n, l) => n + l.size, 0)
  const sharedLayers = layers.filter((l) => l.images > 1)
  const activeImages = new Set(perImage.filter((p) => p.containers > 0).map((p) => p.id))
  const activeChains = new Set([...activeImages].flatMap((id) => store.imageChains(id)))
  const reclaimable = layers.filter((l) => !activeChains.has(l.chainId)).reduce((n, l) => n + l.size, 0)
  let blobCount = 0
  let blobSize = 0
  for await (const b of store.content.list()) {
    blobCount++
    blobSize += b.size
  }
  return {
    images: { total: images.length, active, size: totalLayerSize, reclaimable },
    layers: { total: layers.length, shared: sharedLayers.length, size: totalLayerSize, sharedSize: sharedLayers.reduce((n, l) => n + l.size, 0) },
    blobs: { count: blobCount, size: blobSize },
    perImage,
  }
}

export interface PruneResult {
  records: DeleteRecord[]
  /** Unpacked bytes of the layers removed. */
  reclaimed: number
}

export interface PruneImagesOptions {
  /** Every image no container uses, not only dangling ones (`-a`). */
  all?: boolean
  /** Docker's prune filters: `until` (a duration or a time), `label`, `label!`, `dangling`. */
  filters?: FilterArgs
}

/** `docker image prune [-a] [--filter …]`: dangling images, or with `all` every image no container uses. */
export async function pruneImages(store: ImageStore, opts: PruneImagesOptions = {}): Promise<PruneResult> {
  const filters = opts.filters ?? {}
  validateFilterKeys(filters, ImagePruneFilterKeys)
  const now = Date.now()
  const until = values(filters, 'until').map((u) => parseUntil(u, now))
  const danglingOnly = danglingFilter(filters) ?? !opts.all
  const wanted = (img: ImageRecord): boolean => {
    if (until.some((t) => img.created.getTime() >= t)) return false
    if (values(filters, 'label').length === 0 && values(filters, 'label!').length === 0) return true
    const labels = imageLabels(store, img)
    if (!matchLabels(filters, 'label', labels)) return false
    // label!=k[=v]: none of them may hold
    return !values(filters, 'label!').some((v) => matchLabels({ l: [v] }, 'l', labels))
  }
  const result: PruneResult = { records: [], reclaimed: 0 }
  const sizes = new Map<string, number>(store.layers().map((l) => [l.chainId, l.size]))
  // repeat: removing a child can leave its parent dangling
  for (let round = 0; round < 1000; round++) {
    const candidates = store.list().filter((img) => {
      if (store.containerUsers(img.id).length > 0) return false
      if (store.children(img.id).length > 0) return false
      if (!wanted(img)) return false
      return danglingOnly ? img.tags.length === 0 && img.repoDigests.length === 0 : true
    })
    if (candidates.length === 0) break
    for (const img of candidates) {
      if (!store.get(img.id)) continue
      const recs = await store.remove(img.id, { force: true, noPrune: false }).catch(() => [] as DeleteRecord[])
      for (const r of recs) {
        if ('deleted' in r && sizes.has(r.deleted)) result.reclaimed += sizes.get(r.deleted) ?? 0
        result.records.push('untagged' in r ? { untagged: familiarString(parseReference(r.untagged)) } : r)
      }
    }
  }
  return result
}


