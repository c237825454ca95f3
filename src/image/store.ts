/**
 * The local image store: images (by config digest), their tags and repository digests,
 * their layers (by diffID and chain ID), over a content store and a metadata database.
 *
 * Every change is one metadata transaction. Blobs a change adds are staged (verified, fsynced,
 * invisible) beforehand and published inside the transaction; blobs a change frees are moved
 * to the trash inside it and unlinked after it. A crash at any point therefore leaves either
 * the old state or the new one, and never an image that points at a missing blob.
 */
import { mkdirSync } from 'node:fs'
import { CairnError, isErrno, userMessage } from '../errors/index.js'
import { ContentStore, type StagedBlob } from '../content/store.js'
import { openDatabase, type DB } from '../metadata/db.js'
import { asChainId, asDiffId, asDigest, asImageId, type ChainId, chainIds, type DiffId, type Digest, type ImageId, isDigest } from '../oci/digest.js'
import type { Descriptor, ImageConfig, ImageManifest } from '../oci/types.js'
import { formatReference, parseReference, looksLikeIdPrefix, type Reference } from '../oci/reference.js'
import { shortId } from '../util/format.js'

export interface ImageRecord {
  id: ImageId
  manifestDigest: Digest
  manifestMediaType: string
  configDigest: Digest
  /** From the image config's `created`. */
  created: Date
  /** When the image arrived in this store. */
  added: Date
  /** Unpacked size of all layers, as Docker counts it. */
  size: number
  parent?: ImageId
  /** Normalised tag references, e.g. `docker.io/library/ubuntu:latest`, sorted. */
  tags: string[]
  /** Normalised digest references, e.g. `docker.io/huzd/test@sha256:…`, sorted. */
  repoDigests: string[]
}

export interface LayerInput {
  /** The layer as the manifest lists it. */
  descriptor: Descriptor
  diffId: DiffId
  /** Unpacked content size (sum of regular file sizes). */
  size: number
  /** Bytes of the uncompressed layer tar. */
  diffSize: number
  /** A freshly written blob, or undefined if the blob is already in the store. */
  staged?: StagedBlob
}

export interface AddImageInput {
  manifest: StagedBlob
  manifestMediaType: string
  config: StagedBlob
  configJson: ImageConfig
  layers: LayerInput[]
  parent?: ImageId
  /** Tags to point at the image (normalised references). */
  tags?: Reference[]
  /** Repository digests to record (`repo@digest`). */
  repoDigests?: Reference[]
  /** Called in the same transaction once the image is recorded (a build's cache row). */
  alsoRecord?: (id: ImageId) => void
}

export interface AddImageResult {
  id: ImageId
  /** Tags that pointed to another image before, with that image's ID. */
  retagged: { name: string; previous: ImageId }[]
  /** Whether the image was new to the store. */
  created: boolean
}

/** One line of `rmi`'s report, in Docker's words. */
export type DeleteRecord = { untagged: string } | { deleted: ImageId | ChainId }

export interface StoredLayer {
  diffId: DiffId
  digest: Digest
  mediaType: string
  compressedSize: number
  /** Unpacked content size. */
  size: number
  /** Bytes of the uncompressed tar. */
  diffSize: number
}

export interface LayerRecord {
  chainId: ChainId
  diffId: DiffId
  parent?: ChainId
  size: number
}

interface ImageRow {
  id: string
  manifest_digest: string
  manifest_media_type: string
  config_digest: string
  created: number
  added: number
  size: number
  parent: string | null
}

export class ImageStore {
  readonly root: string
  readonly content: ContentStore
  readonly db: DB
  /** Asked before an image is deleted: which containers use it (issue-3 engine fills it in). */
  containerUsers: (imageId: ImageId) => { id: string; running: boolean }[]

  private constructor(root: string, content: ContentStore, db: DB) {
    this.root = root
    this.content = content
    this.db = db
    this.containerUsers = (imageId) =>
      (this.db.prepare('SELECT id, state FROM containers WHERE image_id = ?').all(imageId) as { id: string; state: string }[])
        .map((r) => ({ id: r.id, running: r.state === 'running' || r.state === 'paused' || r.state === 'restarting' }))
  }

  static async open(root: string): Promise<ImageStore> {
    try {
      mkdirSync(root, { recursive: true, mode: 0o711 })
    } catch (err) {
      if (isErrno(err, 'EEXIST') || isErrno(err, 'ENOTDIR')) throw new CairnError('INVALID_ARGUMENT', `invalid store root ${JSON.stringify(root)}: not a directory`)
      throw new CairnError('INVALID_ARGUMENT', `invalid store root ${JSON.stringify(root)}: ${userMessage(err)}`, { cause: err })
    }
    const content = new ContentStore(root)
    await content.init()
    const db = openDatabase(`${root}/cairn.db`)
    const store = new ImageStore(root, content, db)
    store.recover()
    await content.cleanIngest()
    return store
  }

  close(): void {
    if (this.db.open) this.db.close()
  }

  /** Puts back what a crashed delete had trashed but not yet dereferenced. */
  private recover(): void {
    if (!this.content.hasTrashSync()) return
    const referenced = this.db.prepare('SELECT 1 FROM image_blobs WHERE digest = ? LIMIT 1')
    this.db.transaction(() => {
      this.content.recoverTrashSync((d) => referenced.get(d) !== undefined)
    }).immediate()
  }

  // ---------------------------------------------------------------- reading

  list(): ImageRecord[] {
    const rows = this.db.prepare('SELECT * FROM images ORDER BY created DESC, id').all() as ImageRow[]
    const tags = this.groupRefs('SELECT name, image_id FROM tags ORDER BY name')
    const digests = this.groupRefs('SELECT name, image_id FROM repo_digests ORDER BY name')
    return rows.map((r) => toRecord(r, tags.get(r.id) ?? [], digests.get(r.id) ?? []))
  }

  get(id: ImageId): ImageRecord | undefined {
    const row = this.db.prepare('SELECT * FROM images WHERE id = ?').get(id) as ImageRow | undefined
    if (!row) return undefined
    return toRecord(row, this.refsOf('tags', id), this.refsOf('repo_digests', id))
  }

  /** Images whose parent is `id`. */
  children(id: ImageId): ImageId[] {
    return (this.db.prepare('SELECT id FROM images WHERE parent = ?').all(id) as { id: string }[]).map((r) => asImageId(r.id))
  }

  /**
   * Finds an image the way Docker does: a name (tag or digest reference) first, then a full
   * image ID (`sha256:…` or 64 hex), then a unique ID prefix. IMAGE_UNKNOWN otherwise.
   */
  resolve(refOrId: string): ImageRecord {
    const found = this.tryResolve(refOrId)
    if (found) return found
    throw new CairnError('IMAGE_UNKNOWN', `No such image: ${refOrId}`)
  }

  tryResolve(refOrId: string): ImageRecord | undefined {
    if (refOrId === '') throw new CairnError('INVALID_REFERENCE', 'invalid reference format: empty reference')
    const asId = idFromString(refOrId)
    if (asId) {
      const img = this.get(asId)
      if (img) return img
    }
    let ref: Reference | undefined
    try {
      ref = parseReference(refOrId)
    } catch (err) {
      if (!looksLikeIdPrefix(refOrId)) throw err
    }
    if (ref) {
      const id = this.lookupRef(ref)
      if (id) return this.get(id)
    }
    const prefix = refOrId.startsWith('sha256:') ? refOrId.slice(7) : refOrId
    if (looksLikeIdPrefix(prefix)) {
      const rows = this.db.prepare("SELECT id FROM images WHERE id >= ? AND id < ? LIMIT 2")
        .all(`sha256:${prefix}`, `sha256:${prefix}g`) as { id: string }[]
      if (rows.length > 1) {
        throw new CairnError('AMBIGUOUS_REFERENCE', `No such image: ${refOrId} (the ID prefix matches more than one image; give more characters)`)
      }
      if (rows[0]) return this.get(asImageId(rows[0].id))
    }
    if (ref === undefined) {
      // not a valid name and no ID matched: report the reference error
      parseReference(refOrId)
    }
    return undefined
  }

  /** The image a normalised tag or digest reference points to. */
  lookupRef(ref: Reference): ImageId | undefined {
    if (ref.digest !== undefined) {
      const byDigest = this.db.prepare('SELECT image_id FROM repo_digests WHERE name = ?')
        .get(`${ref.domain}/${ref.path}@${ref.digest}`) as { image_id: string } | undefined
      if (byDigest) return asImageId(byDigest.image_id)
      // a digest reference may also name the image's own manifest
      const byManifest = this.db.prepare('SELECT images.id FROM images JOIN tags ON tags.image_id = images.id WHERE images.manifest_digest = ? LIMIT 1')
        .get(ref.digest) as { id: string } | undefined
      return byManifest && asImageId(byManifest.id)
    }
    const row = this.db.prepare('SELECT image_id FROM tags WHERE name = ?').get(formatReference({ ...ref, tag: ref.tag ?? 'latest' })) as
      | { image_id: string }
      | undefined
    return row && asImageId(row.image_id)
  }

  async manifest(img: ImageRecord): Promise<ImageManifest> {
    return this.content.readJson<ImageManifest>(img.manifestDigest)
  }

  async config(img: ImageRecord): Promise<ImageConfig> {
    return this.content.readJson<ImageConfig>(img.configDigest)
  }

  /** The unpacked size of a layer, by diffID (undefined if unknown). */
  layerSize(diffId: DiffId): number | undefined {
    const row = this.db.prepare('SELECT size FROM layer_blobs WHERE diff_id = ? LIMIT 1').get(diffId) as { size: number } | undefined
    return row?.size
  }

  /** A blob already stored that holds the layer `diffId` (any compression). */
  layerBlob(diffId: DiffId): StoredLayer | undefined {
    const row = this.db.prepare('SELECT digest, media_type, compressed_size, size, diff_size FROM layer_blobs WHERE diff_id = ? LIMIT 1').get(diffId) as
      | { digest: string; media_type: string; compressed_size: number; size: number; diff_size: number }
      | undefined
    if (!row) return undefined
    return { diffId, digest: asDigest(row.digest), mediaType: row.media_type, compressedSize: row.compressed_size, size: row.size, diffSize: row.diff_size }
  }

  /** The stored layer blob with this digest. */
  layerByDigest(digest: Digest): StoredLayer | undefined {
    const row = this.db.prepare('SELECT diff_id, media_type, compressed_size, size, diff_size FROM layer_blobs WHERE digest = ? LIMIT 1').get(digest) as
      | { diff_id: string; media_type: string; compressed_size: number; size: number; diff_size: number }
      | undefined
    if (!row) return undefined
    return { diffId: asDiffId(row.diff_id), digest, mediaType: row.media_type, compressedSize: row.compressed_size, size: row.size, diffSize: row.diff_size }
  }

  layers(): (LayerRecord & { images: number })[] {
    const rows = this.db.prepare(`SELECT c.chain_id, c.parent, c.diff_id, c.size,
        (SELECT COUNT(DISTINCT image_id) FROM image_chains ic WHERE ic.chain_id = c.chain_id) AS images
      FROM chains c ORDER BY c.chain_id`).all() as { chain_id: string; parent: string | null; diff_id: string; size: number; images: number }[]
    return rows.map((r) => {
      const l: LayerRecord & { images: number } = { chainId: asChainId(r.chain_id), diffId: asDiffId(r.diff_id), size: r.size, images: r.images }
      if (r.parent) l.parent = asChainId(r.parent)
      return l
    })
  }

  imageChains(id: ImageId): ChainId[] {
    return (this.db.prepare('SELECT chain_id FROM image_chains WHERE image_id = ? ORDER BY idx').all(id) as { chain_id: string }[]).map((r) => asChainId(r.chain_id))
  }

  setting(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined)?.value
  }

  setSetting(key: string, value: string): void {
    this.db.prepare('INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value)
  }

  // ---------------------------------------------------------------- writing

  /**
   * Records an image whose blobs have been staged: publishes the blobs and writes all metadata
   * in one transaction. Staged blobs that turn out to exist already are dropped.
   */
  addImage(input: AddImageInput): AddImageResult {
    const id = asImageId(input.config.digest)
    const diffIds = input.layers.map((l) => l.diffId)
    const configIds = input.configJson.rootfs.diff_ids
    if (configIds.length !== diffIds.length || configIds.some((d, i) => d !== diffIds[i])) {
      throw new CairnError('MANIFEST_INVALID', `the config's rootfs.diff_ids do not match the image's ${diffIds.length} layers`)
    }
    const chains = chainIds(diffIds)
    const created = Date.parse(input.configJson.created ?? '') || Date.now()
    const size = input.layers.reduce((n, l) => n + l.size, 0)
    const now = Date.now()
    return this.db.transaction((): AddImageResult => {
      // blobs first: everything the image references must be present before it is recorded
      this.content.publishSync(input.manifest)
      this.content.publishSync(input.config)
      for (const l of input.layers) {
        if (l.staged) this.content.publishSync(l.staged)
        else if (!this.content.ensureSync(l.descriptor.digest)) {
          throw new CairnError('BLOB_UNKNOWN', `layer ${l.descriptor.digest} is not in the store (removed by a concurrent command?); retry`, { temporary: true })
        }
      }
      const exists = this.db.prepare('SELECT 1 FROM images WHERE id = ?').get(id) !== undefined
      if (!exists) {
        this.db.prepare(`INSERT INTO images (id, manifest_digest, manifest_media_type, config_digest, created, added, size, parent)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).run(id, input.manifest.digest, input.manifestMediaType, id, created, now, size, input.parent ?? null)
        const addBlob = this.db.prepare('INSERT OR IGNORE INTO image_blobs (image_id, digest) VALUES (?, ?)')
        addBlob.run(id, input.manifest.digest)
        addBlob.run(id, id)
        const addLayer = this.db.prepare(`INSERT OR IGNORE INTO layer_blobs (diff_id, digest, media_type, compressed_size, size, diff_size) VALUES (?, ?, ?, ?, ?, ?)`)
        const addChain = this.db.prepare('INSERT OR IGNORE INTO chains (chain_id, parent, diff_id, size) VALUES (?, ?, ?, ?)')
        const addImageChain = this.db.prepare('INSERT INTO image_chains (image_id, idx, chain_id) VALUES (?, ?, ?)')
        input.layers.forEach((l, i) => {
          addBlob.run(id, l.descriptor.digest)
          addLayer.run(l.diffId, l.descriptor.digest, l.descriptor.mediaType, l.descriptor.size, l.size, l.diffSize)
          addChain.run(chains[i], i > 0 ? chains[i - 1] : null, l.diffId, l.size)
          addImageChain.run(id, i, chains[i])
        })
      } else {
        // same config already here: a staged manifest of another format is simply an extra blob
        this.db.prepare('INSERT OR IGNORE INTO image_blobs (image_id, digest) VALUES (?, ?)').run(id, input.manifest.digest)
      }
      const retagged: { name: string; previous: ImageId }[] = []
      for (const t of input.tags ?? []) {
        const prev = this.setTag(t, id)
        if (prev && prev !== id) retagged.push({ name: formatReference(t), previous: prev })
      }
      for (const r of input.repoDigests ?? []) {
        this.db.prepare('INSERT INTO repo_digests (name, image_id) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id')
          .run(`${r.domain}/${r.path}@${r.digest ?? ''}`, id)
      }
      input.alsoRecord?.(id)
      return { id, retagged, created: !exists }
    }).immediate()
  }

  /** Points a tag at an image. Returns the image the tag pointed to before, if any. */
  tag(ref: Reference, imageId: ImageId): ImageId | undefined {
    if (ref.digest !== undefined) throw new CairnError('INVALID_REFERENCE', 'refusing to create a tag with a digest reference')
    return this.db.transaction(() => {
      if (!this.db.prepare('SELECT 1 FROM images WHERE id = ?').get(imageId)) {
        throw new CairnError('IMAGE_UNKNOWN', `No such image: ${imageId}`)
      }
      return this.setTag(ref, imageId)
    }).immediate()
  }

  private setTag(ref: Reference, imageId: ImageId): ImageId | undefined {
    const name = formatReference({ domain: ref.domain, path: ref.path, tag: ref.tag ?? 'latest' })
    const prev = this.db.prepare('SELECT image_id FROM tags WHERE name = ?').get(name) as { image_id: string } | undefined
    // a name kept where it was is not written again (a rebuild that changed nothing writes nothing)
    if (prev?.image_id === imageId) return asImageId(prev.image_id)
    this.db.prepare('INSERT INTO tags (name, image_id, updated) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, updated = excluded.updated')
      .run(name, imageId, Date.now())
    return prev && asImageId(prev.image_id)
  }

  /**
   * Docker's `rmi`: removes a name, or an image with all its names, then the image itself when
   * nothing refers to it any more, then its parents that became dangling (unless `noPrune`).
   * All of it in one transaction; freed blobs go to the trash and are unlinked afterwards.
   */
  async remove(refOrId: string, opts: { force?: boolean; noPrune?: boolean } = {}): Promise<DeleteRecord[]> {
    const trashed: string[] = []
    const records = this.db.transaction(() => this.removeTx(refOrId, opts.force ?? false, !(opts.noPrune ?? false), trashed)).immediate()
    await this.content.emptyTrash(trashed)
    return records
  }

  private removeTx(refOrId: string, force: boolean, prune: boolean, trashed: string[]): DeleteRecord[] {
    const img = this.resolve(refOrId)
    const records: DeleteRecord[] = []
    const refs = [...img.tags, ...img.repoDigests].sort()
    const byName = !isIdLike(refOrId, img.id)
    let quiet = false
    if (byName) {
      const ref = parseReference(refOrId)
      const name = ref.digest !== undefined ? `${ref.domain}/${ref.path}@${ref.digest}` : formatReference({ domain: ref.domain, path: ref.path, tag: ref.tag ?? 'latest' })
      if (!force && isSingleReference(refs)) {
        const user = this.containerUsers(img.id)[0]
        if (user) {
          throw new CairnError('CONFLICT', `conflict: unable to remove repository reference "${refOrId}" (must force) - container ${user.id.slice(0, 12)} is using its referenced image ${shortId(img.id)}`)
        }
      }
      if (refs.includes(name)) {
        this.removeRef(name)
        records.push({ untagged: name })
      } else {
        // found through the manifest digest: nothing to untag by that name
      }
      let remaining = refs.filter((r) => r !== name)
      if (ref.digest === undefined) {
        const repo = `${ref.domain}/${ref.path}`
        const tagInRepo = remaining.some((r) => !r.includes('@') && repoOf(r) === repo)
        if (!tagInRepo) {
          for (const r of remaining.filter((r) => r.includes('@') && repoOf(r) === repo)) {
            this.removeRef(r)
            records.push({ untagged: r })
          }
          remaining = remaining.filter((r) => !(r.includes('@') && repoOf(r) === repo))
        }
      }
      if (remaining.length > 0) return records
      quiet = true
    } else if (isSingleReference(refs)) {
      const conflict = this.conflict(img.id, { hard: true, soft: !force, activeRef: false })
      if (conflict) throw conflict
      for (const r of refs) {
        this.removeRef(r)
        records.push({ untagged: r })
      }
    }
    this.deleteHelper(img.id, records, force, prune, quiet, trashed)
    return records
  }

  private deleteHelper(id: ImageId, records: DeleteRecord[], force: boolean, prune: boolean, quiet: boolean, trashed: string[]): void {
    const conflict = this.conflict(id, { hard: true, soft: !force, activeRef: !force })
    if (conflict) {
      if (quiet && (!this.isDangling(id) || conflict.detail === 'used')) return
      throw conflict
    }
    const img = this.get(id)
    if (!img) return
    for (const r of [...img.tags, ...img.repoDigests].sort()) {
      this.removeRef(r)
      records.push({ untagged: r })
    }
    const removedChains = this.deleteImageRows(id, trashed)
    records.push({ deleted: id })
    for (const c of removedChains) records.push({ deleted: c })
    if (prune && img.parent && this.get(img.parent)) this.deleteHelper(img.parent, records, false, true, true, trashed)
  }

  private isDangling(id: ImageId): boolean {
    const img = this.get(id)
    return !!img && img.tags.length === 0 && img.repoDigests.length === 0 && this.children(id).length === 0
  }

  /** Docker's delete conflicts: hard (children, running containers) and soft (names, stopped containers). */
  private conflict(id: ImageId, mask: { hard: boolean; soft: boolean; activeRef: boolean }): CairnError | undefined {
    const short = shortId(id)
    if (mask.hard && this.children(id).length > 0) {
      return new CairnError('CONFLICT', `conflict: unable to delete ${short} (cannot be forced) - image has dependent child images`)
    }
    const users = this.containerUsers(id)
    const running = users.find((u) => u.running)
    if (mask.hard && running) {
      return new CairnError('CONFLICT', `conflict: unable to delete ${short} (cannot be forced) - image is being used by running container ${running.id.slice(0, 12)}`, { detail: 'used' })
    }
    if (mask.activeRef) {
      const img = this.get(id)
      if (img && img.tags.length + img.repoDigests.length > 0) {
        return new CairnError('CONFLICT', `conflict: unable to delete ${short} (must be forced) - image is referenced in multiple repositories`)
      }
    }
    const stopped = users.find((u) => !u.running)
    if (mask.soft && stopped) {
      return new CairnError('CONFLICT', `conflict: unable to delete ${short} (must be forced) - image is being used by stopped container ${stopped.id.slice(0, 12)}`, { detail: 'used' })
    }
    return undefined
  }

  private removeRef(name: string): void {
    if (name.includes('@')) this.db.prepare('DELETE FROM repo_digests WHERE name = ?').run(name)
    else this.db.prepare('DELETE FROM tags WHERE name = ?').run(name)
  }

  /** Deletes an image's rows, then its chains and blobs nothing else uses. Returns removed chain IDs, top first. */
  private deleteImageRows(id: ImageId, trashed: string[]): ChainId[] {
    const chains = this.imageChains(id)
    const blobs = (this.db.prepare('SELECT digest FROM image_blobs WHERE image_id = ?').all(id) as { digest: string }[]).map((r) => asDigest(r.digest))
    this.db.prepare('DELETE FROM image_chains WHERE image_id = ?').run(id)
    this.db.prepare('DELETE FROM image_blobs WHERE image_id = ?').run(id)
    this.db.prepare('UPDATE images SET parent = NULL WHERE parent = ?').run(id)
    this.db.prepare('DELETE FROM images WHERE id = ?').run(id)
    const removed: ChainId[] = []
    const chainUsed = this.db.prepare('SELECT 1 FROM image_chains WHERE chain_id = ? LIMIT 1')
    for (const c of [...chains].reverse()) {
      if (chainUsed.get(c) === undefined) {
        this.db.prepare('DELETE FROM chains WHERE chain_id = ?').run(c)
        if (!removed.includes(c)) removed.push(c)
      }
    }
    const blobUsed = this.db.prepare('SELECT 1 FROM image_blobs WHERE digest = ? LIMIT 1')
    for (const d of blobs) {
      if (blobUsed.get(d) !== undefined) continue
      this.db.prepare('DELETE FROM layer_blobs WHERE digest = ?').run(d)
      const p = this.content.trashSync(d)
      if (p) trashed.push(p)
    }
    return removed
  }

  // ---------------------------------------------------------------- registry client (issue 6)

  /** Every stored blob holding the layer `diffId` (a layer may be stored under several compressions). */
  layerBlobs(diffId: DiffId): StoredLayer[] {
    const rows = this.db.prepare('SELECT digest, media_type, compressed_size, size, diff_size FROM layer_blobs WHERE diff_id = ? ORDER BY digest').all(diffId) as
      { digest: string; media_type: string; compressed_size: number; size: number; diff_size: number }[]
    return rows.map((r) => ({ diffId, digest: asDigest(r.digest), mediaType: r.media_type, compressedSize: r.compressed_size, size: r.size, diffSize: r.diff_size }))
  }

  /** Whether the layer stack `chainId` is in the store. */
  hasChain(chainId: ChainId): boolean {
    return this.db.prepare('SELECT 1 FROM chains WHERE chain_id = ?').get(chainId) !== undefined
  }

  /**
   * Adds another blob for a layer an image already has (e.g. its compressed form, made for a
   * push): publishes the staged blob and records it for `imageId` in one transaction, so that it
   * is freed with the image. IMAGE_UNKNOWN if the image went away meanwhile.
   */
  addLayerBlob(imageId: ImageId, layer: { staged: StagedBlob; diffId: DiffId; mediaType: string; size: number; diffSize: number }): void {
    this.db.transaction(() => {
      if (!this.db.prepare('SELECT 1 FROM images WHERE id = ?').get(imageId)) {
        throw new CairnError('IMAGE_UNKNOWN', `No such image: ${imageId}`)
      }
      this.content.publishSync(layer.staged)
      this.db.prepare('INSERT OR IGNORE INTO layer_blobs (diff_id, digest, media_type, compressed_size, size, diff_size) VALUES (?, ?, ?, ?, ?, ?)')
        .run(layer.diffId, layer.staged.digest, layer.mediaType, layer.staged.size, layer.size, layer.diffSize)
      this.db.prepare('INSERT OR IGNORE INTO image_blobs (image_id, digest) VALUES (?, ?)').run(imageId, layer.staged.digest)
    }).immediate()
  }

  /** Records `repo@digest` as a name of an image (what a push or a pull by tag leaves behind). */
  setRepoDigest(ref: Reference, imageId: ImageId): void {
    if (ref.digest === undefined) throw new CairnError('INVALID_REFERENCE', 'a repository digest needs a digest')
    this.db.transaction(() => {
      if (!this.db.prepare('SELECT 1 FROM images WHERE id = ?').get(imageId)) {
        throw new CairnError('IMAGE_UNKNOWN', `No such image: ${imageId}`)
      }
      this.db.prepare('INSERT INTO repo_digests (name, image_id) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id')
        .run(`${ref.domain}/${ref.path}@${ref.digest ?? ''}`, imageId)
    }).immediate()
  }

  // ---------------------------------------------------------------- helpers

  private groupRefs(sql: string): Map<string, string[]> {
    const m = new Map<string, string[]>()
    for (const r of this.db.prepare(sql).all() as { name: string; image_id: string }[]) {
      const list = m.get(r.image_id)
      if (list) list.push(r.name)
      else m.set(r.image_id, [r.name])
    }
    return m
  }

  private refsOf(table: 'tags' | 'repo_digests', id: ImageId): string[] {
    return (this.db.prepare(`SELECT name FROM ${table} WHERE image_id = ? ORDER BY name`).all(id) as { name: string }[]).map((r) => r.name)
  }
}

function toRecord(r: ImageRow, tags: string[], repoDigests: string[]): ImageRecord {
  const rec: ImageRecord = {
    id: asImageId(r.id),
    manifestDigest: asDigest(r.manifest_digest),
    manifestMediaType: r.manifest_media_type,
    configDigest: asDigest(r.config_digest),
    created: new Date(r.created),
    added: new Date(r.added),
    size: r.size,
    tags,
    repoDigests,
  }
  if (r.parent) rec.parent = asImageId(r.parent)
  return rec
}

/** `sha256:<64 hex>` or bare 64 hex → the image ID it names. */
function idFromString(s: string): ImageId | undefined {
  if (/^[a-f0-9]{64}$/.test(s)) return asImageId(`sha256:${s}`)
  if (s.startsWith('sha256:') && isDigest(s)) return asImageId(s)
  return undefined
}

/** True when the user named the image by (a prefix of) its ID rather than by a name. */
function isIdLike(refOrId: string, id: ImageId): boolean {
  const hex = id.slice(7)
  const s = refOrId.startsWith('sha256:') ? refOrId.slice(7) : refOrId
  return s.length > 0 && hex.startsWith(s)
}

/** Docker: at most one tag, and all names in one repository. */
function isSingleReference(refs: string[]): boolean {
  const tags = refs.filter((r) => !r.includes('@'))
  if (tags.length > 1) return false
  const repos = new Set(refs.map(repoOf))
  return repos.size <= 1
}

/** The repository part of a normalised tag or digest name (`docker.io/library/x`). */
export function repoOf(name: string): string {
  const at = name.indexOf('@')
  if (at >= 0) return name.slice(0, at)
  const colon = name.lastIndexOf(':')
  return colon > name.lastIndexOf('/') ? name.slice(0, colon) : name
}

