/**
 * The build cache: a step's result (an image in the store, usually an untagged intermediate)
 * by the key of everything the step reads — the image it runs on, the instruction as it will
 * run (args and env expanded, the build args a RUN sees), and for COPY/ADD the checksums of the
 * files it copies (their content, never their mtimes). Rows live in the store's database
 * (`build_cache`) and go with their image when it is deleted.
 */
import { createHash } from 'node:crypto'
import type { ChainId, ImageId } from '../oci/digest.js'
import type { DeleteRecord, ImageStore } from '../image/store.js'

/** The cache key of a step: sha256 over its canonical inputs. */
export function cacheKey(parent: ImageId | undefined, parts: unknown): string {
  return createHash('sha256').update(`${parent ?? 'scratch'}\n`).update(JSON.stringify(parts)).digest('hex')
}

export class BuildCache {
  constructor(private readonly store: ImageStore) {}

  /** The image a step with this key made, if it is still in the store (a read: no write per step). */
  lookup(key: string): ImageId | undefined {
    const row = this.store.db.prepare('SELECT image_id FROM build_cache WHERE key = ?').get(key) as { image_id: ImageId } | undefined
    return row?.image_id
  }

  record(key: string, imageId: ImageId, parent: ImageId | undefined, description: string): void {
    const now = Date.now()
    this.store.db.prepare(`INSERT INTO build_cache (key, image_id, parent, description, created, last_used) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT(key) DO UPDATE SET image_id = excluded.image_id, last_used = excluded.last_used`)
      .run(key, imageId, parent ?? null, description, now, now)
  }
}

/**
 * The checksums of a context's files (and of whole source trees, see copy.ts) known from earlier
 * builds, by path and stat; what this build adds is written back by `save`. A build that finds its
 * trees unchanged asks for a few keys only: those are looked up one by one, and the folder's rows
 * are loaded together once a build asks for more (it is reading files one by one then).
 */
/** Keys looked up one by one before the folder's rows are loaded at once. */
const POINT_LOOKUPS = 64
const DAY = 24 * 3600 * 1000

export class FileHashes {
  private known: Map<string, string> | undefined
  private readonly added = new Map<string, string>()
  private lookups = 0
  private readonly prefix: string

  constructor(private readonly store: ImageStore, dir: string) {
    this.prefix = `${dir.replace(/\/$/, '')}/`
  }

  get(key: string): string | undefined {
    const added = this.added.get(key)
    if (added !== undefined) return added
    if (this.known === undefined && ++this.lookups > POINT_LOOKUPS) {
      const rows = this.store.db.prepare('SELECT key, digest FROM build_file_hashes WHERE key >= ? AND key < ?').all(this.prefix, `${this.prefix}\uffff`) as { key: string; digest: string }[]
      this.known = new Map(rows.map((r) => [r.key, r.digest]))
    }
    if (this.known !== undefined) return this.known.get(key)
    const row = this.store.db.prepare('SELECT digest, used FROM build_file_hashes WHERE key = ?').get(key) as { digest: string; used: number } | undefined
    // a row found this way is kept alive (a tree's row stands for all its files' rows)
    if (row !== undefined && row.used < Date.now() - DAY) this.added.set(key, row.digest)
    return row?.digest
  }

  set(key: string, digest: string): void {
    this.added.set(key, digest)
  }

  /** Records the new checksums; forgets those recorded more than a week ago (read again once then). */
  save(): void {
    if (this.added.size === 0) return
    const now = Date.now()
    const put = this.store.db.prepare('INSERT INTO build_file_hashes (key, digest, used) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET digest = excluded.digest, used = excluded.used')
    this.store.db.transaction(() => {
      for (const [k, d] of this.added) put.run(k, d, now)
      this.store.db.prepare('DELETE FROM build_file_hashes WHERE used < ?').run(now - 7 * DAY)
    }).immediate()
  }
}

export interface BuildCacheUsage {
  /** Cache entries (one per step result). */
  count: number
  /** Bytes of the layers the cached steps made (each layer stack counted once), as Docker counts sizes. */
  size: number
  /** Of those, bytes no tagged image and no container uses: what `builder prune` can free. */
  reclaimable: number
}

/** How much the build cache holds (for `system df`). */
export function buildCacheUsage(store: ImageStore): BuildCacheUsage {
  const rows = store.db.prepare('SELECT DISTINCT image_id FROM build_cache').all() as { image_id: ImageId }[]
  const count = (store.db.prepare('SELECT COUNT(*) AS n FROM build_cache').get() as { n: number }).n
  const sizes = new Map(store.layers().map((l) => [l.chainId, l.size]))
  const cached = new Set<ChainId>()
  for (const r of rows) for (const c of store.imageChains(r.image_id)) cached.add(c)
  const kept = new Set<ChainId>()
  for (const img of store.list()) {
    if (img.tags.length === 0 && img.repoDigests.length === 0 && store.containerUsers(img.id).length === 0) continue
    for (const c of store.imageChains(img.id)) kept.add(c)
  }
  let size = 0
  let reclaimable = 0
  for (const c of cached) {
    const n = sizes.get(c) ?? 0
    size += n
    if (!kept.has(c)) reclaimable += n
  }
  return { count, size, reclaimable }
}

export interface BuilderPruneResult {
  /** Cache entries dropped. */
  entries: number
  /** Images deleted with them (and what they freed). */
  records: DeleteRecord[]
  /** Unpacked bytes of the layers removed. */
  reclaimed: number
}

/**
 * `builder prune`: drops the cache entries whose images no tagged image builds on (`all`:
 * every entry), then deletes those images and their layers where nothing else uses them.
 */
export async function pruneBuildCache(store: ImageStore, opts: { all?: boolean } = {}): Promise<BuilderPruneResult> {
  const rows = store.db.prepare('SELECT key, image_id FROM build_cache').all() as { key: string; image_id: ImageId }[]
  // images a tagged image (or a container) stands on
  const needed = new Set<ImageId>()
  for (const img of store.list()) {
    if (img.tags.length === 0 && img.repoDigests.length === 0 && store.containerUsers(img.id).length === 0) continue
    for (let cur: ImageId | undefined = img.id; cur && !needed.has(cur); cur = store.get(cur)?.parent) needed.add(cur)
  }
  const drop = rows.filter((r) => opts.all || !needed.has(r.image_id))
  const del = store.db.prepare('DELETE FROM build_cache WHERE key = ?')
  store.db.transaction(() => {
    for (const r of drop) del.run(r.key)
  }).immediate()
  const sizes = new Map<string, number>(store.layers().map((l) => [l.chainId, l.size]))
  const result: BuilderPruneResult = { entries: drop.length, records: [], reclaimed: 0 }
  // delete the dropped images nothing needs, children first (a parent goes once its last child has)
  const former = new Set(drop.map((r) => r.image_id))
  const candidates = new Set([...former].filter((id) => !needed.has(id)))
  for (let round = 0; round < 1000 && candidates.size > 0; round++) {
    let progress = false
    for (const id of [...candidates]) {
      const img = store.get(id)
      if (!img) {
        candidates.delete(id)
        continue
      }
      if (img.tags.length > 0 || img.repoDigests.length > 0 || store.children(id).length > 0 || store.containerUsers(id).length > 0) continue
      if (store.db.prepare('SELECT 1 FROM build_cache WHERE image_id = ?').get(id) !== undefined) {
        candidates.delete(id)
        continue
      }
      const recs = await store.remove(id, { force: true, noPrune: true }).catch(() => [] as DeleteRecord[])
      for (const r of recs) {
        if ('deleted' in r && sizes.has(r.deleted)) result.reclaimed += sizes.get(r.deleted) ?? 0
        result.records.push(r)
      }
      if (img.parent && former.has(img.parent) && !needed.has(img.parent)) candidates.add(img.parent)
      candidates.delete(id)
      progress = true
    }
    if (!progress) break
  }
  return result
}
