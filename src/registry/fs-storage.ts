/**
 * Filesystem storage for the registry (see storage.ts for the contract). Layout under the root:
 *
 *   blobs/<alg>/<hex>                                  content, verified, stored once
 *   repositories/<name>/_layers/<alg>/<hex>            link: the repository may read that blob
 *   repositories/<name>/_manifests/revisions/<alg>/<hex>   revision: {"mediaType","size"}
 *   repositories/<name>/_manifests/tags/<tag>          the digest the tag names
 *   repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>  descriptor of a manifest whose subject is <alg>:<hex>
 *   uploads/<id>/info.json, uploads/<id>/data          an upload session and the bytes received
 *   trash/<alg>-<hex>                                  blobs gc is about to delete
 *   tmp/                                               small files being written
 *   <name>.lock                                        inter-process locks (gc)
 *
 * Every small record is written to tmp/, fsynced, renamed into place, and its folder fsynced; a blob is
 * renamed into blobs/ only after its digest has been checked and its bytes fsynced. Repository names
 * follow the distribution grammar (components start with [a-z0-9]), so they never collide with the
 * `_layers`-style folders and never contain `.` or `..` components.
 *
 * Upload resumption across restarts: Node cannot serialise a hash state, so the session persists only
 * its bytes (`data`) and its repository (`info.json`); the offset is the size of `data`. The running
 * sha256 lives in memory; after a restart (or in another process) the first request on the session
 * hashes the bytes already received, then carries on.
 */
import { createHash, randomUUID, type Hash } from 'node:crypto'
import { createReadStream, createWriteStream, type Stats } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, utimes } from 'node:fs/promises'
import { hostname } from 'node:os'
import type { Readable } from 'node:stream'
import { Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CairnError, isErrno, throwIfAborted } from '../errors/index.js'
import { DigestAlgorithms, parseDigest, type Digest, type DigestAlgorithm } from '../oci/digest.js'
import type { Descriptor } from '../oci/types.js'
import { fsyncDir, processAlive, randomName, writeFileAtomic } from '../util/fs.js'
import type {
  BlobStat,
  ByteRange,
  ManifestPut,
  RegistryStorage,
  RepositoryLink,
  StoredManifest,
  UploadState,
  WriteUploadOptions,
} from './storage.js'

const UPLOAD_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const READ_HWM = 1 << 20
/** Larger reads for large blobs: fewer round trips through the event loop when serving them. */
const SERVE_HWM = 4 << 20
const ALGORITHMS = Object.keys(DigestAlgorithms) as DigestAlgorithm[]

interface HashCache {
  hash: Hash
  offset: number
}

/** Serialises async work per key, inside this process. */
class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>()

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve()
    let release!: () => void
    const mine = new Promise<void>((r) => {
      release = r
    })
    const tail = prev.then(() => mine)
    this.tails.set(key, tail)
    await prev
    try {
      return await fn()
    } finally {
      release()
      if (this.tails.get(key) === tail) this.tails.delete(key)
    }
  }
}

export class FilesystemStorage implements RegistryStorage {
  readonly kind = 'filesystem'
  readonly root: string
  private readonly hashes = new Map<string, HashCache>()
  private readonly uploadLocks = new KeyedMutex()

  constructor(root: string) {
    this.root = root.replace(/\/+$/, '') || '/'
  }

  async init(): Promise<void> {
    for (const alg of ALGORITHMS) await mkdir(`${this.root}/blobs/${alg}`, { recursive: true })
    for (const d of ['repositories', 'uploads', 'trash', 'tmp']) await mkdir(`${this.root}/${d}`, { recursive: true })
    await this.cleanTmp()
  }

  // --- paths ---------------------------------------------------------------------------------------

  blobPath(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest)
    return `${this.root}/blobs/${algorithm}/${hex}`
  }

  private trashPath(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest)
    return `${this.root}/trash/${algorithm}-${hex}`
  }

  private repoDir(repository: string): string {
    // names are validated by the server against the distribution grammar; this is the last line of defence
    if (!isSafeName(repository)) throw new CairnError('NAME_INVALID', `invalid repository name: ${JSON.stringify(repository)}`)
    return `${this.root}/repositories/${repository}`
  }

  private layerLinkPath(repository: string, digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest)
    return `${this.repoDir(repository)}/_layers/${algorithm}/${hex}`
  }

  private revisionPath(repository: string, digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest)
    return `${this.repoDir(repository)}/_manifests/revisions/${algorithm}/${hex}`
  }

  private tagPath(repository: string, tag: string): string {
    if (!/^[\w][\w.-]{0,127}$/.test(tag)) throw new CairnError('MANIFEST_INVALID', `invalid tag: ${JSON.stringify(tag)}`)
    return `${this.repoDir(repository)}/_manifests/tags/${tag}`
  }

  private referrersDir(repository: string, subject: Digest): string {
    const { algorithm, hex } = parseDigest(subject)
    return `${this.repoDir(repository)}/_referrers/${algorithm}/${hex}`
  }

  private uploadDir(id: string): string {
    if (!UPLOAD_ID_RE.test(id)) throw new CairnError('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown')
    return `${this.root}/uploads/${id}`
  }

  // --- small files ---------------------------------------------------------------------------------

  /** Writes a small file atomically and durably (temp file in tmp/, fsync, rename, fsync folder). */
  private async writeRecord(path: string, data: string | Buffer): Promise<void> {
    await writeFileAtomic(path, data, 0o644, `${this.root}/tmp`)
  }

  private async removeRecord(path: string): Promise<boolean> {
    try {
      await unlink(path)
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false
      throw err
    }
    await fsyncDir(path.slice(0, path.lastIndexOf('/'))).catch(() => undefined)
    return true
  }

  private async cleanTmp(): Promise<void> {
    const names = await readdir(`${this.root}/tmp`).catch(() => [] as string[])
    for (const name of names) {
      const pid = Number(name.split('-')[0])
      if (!processAlive(pid)) await rm(`${this.root}/tmp/${name}`, { force: true, recursive: true })
    }
  }

  // --- blobs ---------------------------------------------------------------------------------------

  async statBlob(digest: Digest): Promise<BlobStat | undefined> {
    const p = this.blobPath(digest)
    let st = await statOrUndefined(p)
    if (st === undefined) {
      // gc may have moved it to its trash a moment ago: someone wants it, so it comes back
      try {
        await rename(this.trashPath(digest), p)
        await utimes(p, new Date(), new Date())
        st = await statOrUndefined(p)
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err
      }
    }
    return st === undefined ? undefined : { digest, size: st.size, modifiedAt: st.mtimeMs }
  }

  async openBlob(digest: Digest, range?: ByteRange): Promise<Readable> {
    const p = this.blobPath(digest)
    const fh = await open(p, 'r').catch(async (err: unknown) => {
      if (!isErrno(err, 'ENOENT')) throw err
      if ((await this.statBlob(digest)) === undefined) throw new CairnError('BLOB_UNKNOWN', `blob unknown: ${digest}`)
      return open(p, 'r')
    })
    const opts: { highWaterMark: number; start?: number; end?: number } = { highWaterMark: READ_HWM }
    if (range) {
      opts.start = range.start
      opts.end = range.end
      if (range.end - range.start >= SERVE_HWM) opts.highWaterMark = SERVE_HWM
    }
    return fh.createReadStream(opts)
  }

  async readBlob(digest: Digest, maxBytes: number): Promise<Buffer> {
    const st = await this.statBlob(digest)
    if (st === undefined) throw new CairnError('BLOB_UNKNOWN', `blob unknown: ${digest}`)
    if (st.size > maxBytes) throw new CairnError('SIZE_INVALID', `blob ${digest} is ${st.size} bytes, more than ${maxBytes}`)
    try {
      return await readFile(this.blobPath(digest))
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new CairnError('BLOB_UNKNOWN', `blob unknown: ${digest}`)
      throw err
    }
  }

  async *listBlobs(signal?: AbortSignal): AsyncGenerator<BlobStat> {
    for (const alg of ALGORITHMS) {
      const dir = `${this.root}/blobs/${alg}`
      const names = await readdir(dir).catch(() => [] as string[])
      for (const hex of names) {
        throwIfAborted(signal)
        if (hex.length !== DigestAlgorithms[alg] || !/^[a-f0-9]+$/.test(hex)) continue
        const st = await statOrUndefined(`${dir}/${hex}`)
        if (st) yield { digest: `${alg}:${hex}`, size: st.size, modifiedAt: st.mtimeMs }
      }
    }
  }

  /** Puts verified bytes at their final name, or refreshes the copy already there. */
  private async publish(src: string, digest: Digest): Promise<void> {
    const final = this.blobPath(digest)
    const now = new Date()
    // the grace period of gc counts from now, also for bytes that took long to arrive
    await utimes(src, now, now)
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await utimes(final, now, now)
        await unlink(src).catch(() => undefined)
        return
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err
      }
      try {
        await rename(src, final)
        await fsyncDir(final.slice(0, final.lastIndexOf('/')))
        return
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err
        // src vanished? then someone else published it between our two steps: check again
        if ((await statOrUndefined(src)) === undefined) {
          if ((await statOrUndefined(final)) !== undefined) return
          throw err
        }
      }
    }
    throw new Error(`could not publish ${digest}`)
  }

  // --- repositories --------------------------------------------------------------------------------

  async listRepositories(signal?: AbortSignal): Promise<string[]> {
    const out: string[] = []
    const walk = async (dir: string, prefix: string): Promise<void> => {
      throwIfAborted(signal)
      let entries: string[]
      try {
        entries = await readdir(dir)
      } catch {
        return
      }
      if (prefix !== '' && (entries.includes('_manifests') || entries.includes('_layers'))) out.push(prefix)
      for (const e of entries) {
        if (e.startsWith('_') || e.startsWith('.')) continue
        const st = await statOrUndefined(`${dir}/${e}`)
        if (st?.isDirectory()) await walk(`${dir}/${e}`, prefix === '' ? e : `${prefix}/${e}`)
      }
    }
    await walk(`${this.root}/repositories`, '')
    return out.sort(compareStrings)
  }

  async repositoryExists(repository: string): Promise<boolean> {
    const dir = this.repoDir(repository)
    return (await statOrUndefined(`${dir}/_manifests`)) !== undefined || (await statOrUndefined(`${dir}/_layers`)) !== undefined
  }

  async linkBlob(repository: string, digest: Digest): Promise<boolean> {
    const p = this.layerLinkPath(repository, digest)
    const blob = this.blobPath(digest)
    const now = new Date()
    try {
      await utimes(blob, now, now)
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err
      if ((await this.statBlob(digest)) === undefined) return false
    }
    try {
      await utimes(p, now, now)
      return true
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err
    }
    await this.writeRecord(p, '')
    return true
  }

  async unlinkBlob(repository: string, digest: Digest): Promise<boolean> {
    return this.removeRecord(this.layerLinkPath(repository, digest))
  }

  async isBlobLinked(repository: string, digest: Digest): Promise<boolean> {
    return (await statOrUndefined(this.layerLinkPath(repository, digest))) !== undefined
  }

  async *listBlobLinks(repository: string, signal?: AbortSignal): AsyncGenerator<RepositoryLink> {
    for (const alg of ALGORITHMS) {
      const dir = `${this.repoDir(repository)}/_layers/${alg}`
      const names = await readdir(dir).catch(() => [] as string[])
      for (const hex of names) {
        throwIfAborted(signal)
        if (hex.length !== DigestAlgorithms[alg]) continue
        const st = await statOrUndefined(`${dir}/${hex}`)
        if (st) yield { digest: `${alg}:${hex}`, modifiedAt: st.mtimeMs }
      }
    }
  }

  // --- uploads -------------------------------------------------------------------------------------

  async createUpload(repository: string): Promise<UploadState> {
    this.repoDir(repository)
    const id = randomUUID()
    const dir = this.uploadDir(id)
    await mkdir(dir, { recursive: true })
    const startedAt = Date.now()
    await this.writeRecord(`${dir}/info.json`, JSON.stringify({ repository, startedAt }))
    const fh = await open(`${dir}/data`, 'wx', 0o644)
    await fh.close()
    return { id, repository, offset: 0, startedAt, updatedAt: startedAt }
  }

  async getUpload(id: string): Promise<UploadState | undefined> {
    if (!UPLOAD_ID_RE.test(id)) return undefined
    const dir = this.uploadDir(id)
    const [info, st] = await Promise.all([
      readFile(`${dir}/info.json`, 'utf8').then((t) => JSON.parse(t) as unknown).catch(() => undefined),
      statOrUndefined(`${dir}/data`),
    ])
    if (st === undefined || typeof info !== 'object' || info === null) return undefined
    const i = info as { repository?: unknown; startedAt?: unknown }
    if (typeof i.repository !== 'string') return undefined
    return {
      id,
      repository: i.repository,
      offset: st.size,
      startedAt: typeof i.startedAt === 'number' ? i.startedAt : st.birthtimeMs,
      updatedAt: st.mtimeMs,
    }
  }

  async writeUpload(id: string, offset: number, body: AsyncIterable<Uint8Array>, opts: WriteUploadOptions = {}): Promise<UploadState> {
    return this.uploadLocks.run(id, async () => {
      const state = await this.getUpload(id)
      if (state === undefined) throw new CairnError('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown')
      if (offset !== state.offset) {
        throw new CairnError('BLOB_UPLOAD_INVALID', `chunk starts at ${offset}, the upload is at ${state.offset}`, { detail: { offset: state.offset } })
      }
      const data = `${this.uploadDir(id)}/data`
      const cache = await this.hashAt(id, data, state.offset, opts.signal)
      this.hashes.delete(id) // valid again only once the write has succeeded
      let written = 0
      const limit = opts.length
      // hashes and counts the bytes on their way to the file, in order
      const hashTap = new Transform({
        transform(chunk: Buffer, _enc, cb: TransformCallback) {
          if (limit !== undefined && written + chunk.length > limit) {
            cb(new CairnError('SIZE_INVALID', `more than the announced ${limit} bytes`))
            return
          }
          cache.hash.update(chunk)
          written += chunk.length
          cb(null, chunk)
        },
      })
      const sink = createWriteStream(data, { flags: 'r+', start: state.offset, highWaterMark: 1 << 20 })
      try {
        await pipeline(body, hashTap, sink, opts.signal ? { signal: opts.signal } : {})
      } catch (err) {
        // what reached the disk stays (a valid prefix); the in-memory hash is dropped and rebuilt on demand
        if (opts.signal?.aborted) throw new CairnError('ABORTED', 'upload interrupted', { cause: err })
        throw err
      }
      const st = await stat(data)
      if (st.size === state.offset + written) this.hashes.set(id, { hash: cache.hash, offset: st.size })
      return { ...state, offset: st.size, updatedAt: st.mtimeMs }
    })
  }

  /** The running sha256 of the first `offset` bytes of an upload, from memory or by hashing the file. */
  private async hashAt(id: string, data: string, offset: number, signal?: AbortSignal): Promise<HashCache> {
    const cached = this.hashes.get(id)
    if (cached && cached.offset === offset) return cached
    const hash = await hashFile(data, 'sha256', offset, signal)
    return { hash, offset }
  }

  async completeUpload(id: string, expected: Digest, opts: { signal?: AbortSignal } = {}): Promise<BlobStat> {
    const { algorithm } = parseDigest(expected)
    return this.uploadLocks.run(id, async () => {
      const state = await this.getUpload(id)
      if (state === undefined) throw new CairnError('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown')
      const dir = this.uploadDir(id)
      const data = `${dir}/data`
      let actual: string
      const cached = this.hashes.get(id)
      if (algorithm === 'sha256' && cached && cached.offset === state.offset) actual = `sha256:${cached.hash.copy().digest('hex')}`
      else actual = `${algorithm}:${(await hashFile(data, algorithm, state.offset, opts.signal)).digest('hex')}`
      if (actual !== expected) {
        await this.dropUpload(id)
        throw new CairnError('DIGEST_INVALID', `digest mismatch: expected ${expected}, got ${actual}`, { detail: { digest: expected } })
      }
      const fh = await open(data, 'r+')
      try {
        await fh.truncate(state.offset)
        await fh.sync()
      } finally {
        await fh.close()
      }
      await this.publish(data, expected)
      const publishedAt = Date.now()
      // (only a gc with no grace period can remove the blob between these two steps: the link then fails
      // and the manifest that wants the blob is refused, which is that gc's contract)
      await this.linkBlob(state.repository, expected)
      await this.dropUpload(id)
      return { digest: expected, size: state.offset, modifiedAt: publishedAt }
    })
  }

  async cancelUpload(id: string): Promise<boolean> {
    if (!UPLOAD_ID_RE.test(id)) return false
    return this.uploadLocks.run(id, async () => {
      const exists = (await statOrUndefined(this.uploadDir(id))) !== undefined
      await this.dropUpload(id)
      return exists
    })
  }

  private async dropUpload(id: string): Promise<void> {
    this.hashes.delete(id)
    await rm(this.uploadDir(id), { recursive: true, force: true })
  }

  async *listUploads(signal?: AbortSignal): AsyncGenerator<UploadState> {
    const names = await readdir(`${this.root}/uploads`).catch(() => [] as string[])
    for (const name of names) {
      throwIfAborted(signal)
      if (!UPLOAD_ID_RE.test(name)) continue
      const s = await this.getUpload(name)
      if (s) yield s
      else {
        // a session whose files are incomplete (killed while starting or finishing): report it as stale
        const st = await statOrUndefined(`${this.root}/uploads/${name}`)
        if (st) yield { id: name, repository: '', offset: 0, startedAt: st.mtimeMs, updatedAt: st.mtimeMs }
      }
    }
  }

  // --- manifests -----------------------------------------------------------------------------------

  async putManifest(repository: string, m: ManifestPut, tag?: string): Promise<void> {
    const revision = this.revisionPath(repository, m.digest)
    if (tag !== undefined) this.tagPath(repository, tag) // validate before writing anything
    // 1. the manifest's bytes, as a blob
    if ((await this.statBlob(m.digest)) === undefined) {
      const tmp = `${this.root}/tmp/${randomName()}`
      const fh = await open(tmp, 'wx', 0o644)
      try {
        await fh.writeFile(m.bytes)
        await fh.sync()
      } finally {
        await fh.close()
      }
      await this.publish(tmp, m.digest)
    } else {
      const now = new Date()
      await utimes(this.blobPath(m.digest), now, now).catch(() => undefined)
    }
    // 2. the revision (from now on gc sees the manifest and keeps what it references)
    const existed = (await statOrUndefined(revision)) !== undefined
    await this.writeRecord(revision, JSON.stringify({ mediaType: m.mediaType, size: m.bytes.length }))
    // 3. its referrer entry
    const refPath = m.referrer ? `${this.referrersDir(repository, m.referrer.subject)}/${digestFileName(m.digest)}` : undefined
    if (m.referrer && refPath) await this.writeRecord(refPath, JSON.stringify(m.referrer.descriptor))
    // 4. what it references is still there (gc may have trashed it between the caller's check and step 2)
    const missing: Digest[] = []
    for (const d of [m.digest, ...m.references]) if ((await this.statBlob(d)) === undefined) missing.push(d)
    if (missing.length > 0) {
      if (!existed) {
        if (refPath) await this.removeRecord(refPath)
        await this.removeRecord(revision)
      }
      throw new CairnError('MANIFEST_BLOB_UNKNOWN', `manifest references unknown blobs: ${missing.join(', ')}`, { detail: { digest: missing[0] } })
    }
    // 5. the tag, last: a tag never names a revision that is not complete
    if (tag !== undefined) await this.writeRecord(this.tagPath(repository, tag), m.digest)
  }

  async getManifest(repository: string, digest: Digest): Promise<StoredManifest | undefined> {
    const p = this.revisionPath(repository, digest)
    let text: string
    try {
      text = await readFile(p, 'utf8')
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined
      throw err
    }
    const rec = parseRevision(text)
    if (rec === undefined) return undefined
    return { digest, mediaType: rec.mediaType, size: rec.size, modifiedAt: 0 }
  }

  async resolveTag(repository: string, tag: string): Promise<Digest | undefined> {
    let text: string
    try {
      text = await readFile(this.tagPath(repository, tag), 'utf8')
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined
      throw err
    }
    const d = text.trim()
    try {
      parseDigest(d)
    } catch {
      return undefined
    }
    return d as Digest
  }

  async listTags(repository: string): Promise<string[]> {
    const names = await readdir(`${this.repoDir(repository)}/_manifests/tags`).catch(() => [] as string[])
    return names.filter((n) => /^[\w][\w.-]{0,127}$/.test(n)).sort(compareStrings)
  }

  async deleteTag(repository: string, tag: string): Promise<boolean> {
    return this.removeRecord(this.tagPath(repository, tag))
  }

  async deleteManifest(repository: string, digest: Digest): Promise<boolean> {
    const revision = this.revisionPath(repository, digest)
    if ((await statOrUndefined(revision)) === undefined) return false
    // tags first, so that no tag ever names a missing revision
    for (const tag of await this.listTags(repository)) {
      if ((await this.resolveTag(repository, tag)) === digest) await this.removeRecord(this.tagPath(repository, tag))
    }
    const subject = await this.readBlob(digest, 4 << 20)
      .then((b) => subjectOf(b))
      .catch(() => undefined)
    if (subject !== undefined) await this.removeRecord(`${this.referrersDir(repository, subject)}/${digestFileName(digest)}`)
    return this.removeRecord(revision)
  }

  async *listManifests(repository: string, signal?: AbortSignal): AsyncGenerator<StoredManifest> {
    for (const alg of ALGORITHMS) {
      const dir = `${this.repoDir(repository)}/_manifests/revisions/${alg}`
      const names = await readdir(dir).catch(() => [] as string[])
      for (const hex of names) {
        throwIfAborted(signal)
        if (hex.length !== DigestAlgorithms[alg]) continue
        const p = `${dir}/${hex}`
        const [st, text] = await Promise.all([statOrUndefined(p), readFile(p, 'utf8').catch(() => undefined)])
        const rec = text === undefined ? undefined : parseRevision(text)
        if (st && rec) yield { digest: `${alg}:${hex}`, mediaType: rec.mediaType, size: rec.size, modifiedAt: st.mtimeMs }
      }
    }
  }

  async listReferrers(repository: string, subject: Digest): Promise<Descriptor[]> {
    const dir = this.referrersDir(repository, subject)
    const names = await readdir(dir).catch(() => [] as string[])
    const out: Descriptor[] = []
    for (const name of names.sort(compareStrings)) {
      const m = /^(sha256|sha512)-([a-f0-9]+)$/.exec(name)
      if (!m) continue
      const digest = `${m[1]}:${m[2]}` as Digest
      // an entry left by a delete that was interrupted does not count
      if ((await this.getManifest(repository, digest)) === undefined) continue
      const text = await readFile(`${dir}/${name}`, 'utf8').catch(() => undefined)
      if (text === undefined) continue
      try {
        out.push(JSON.parse(text) as Descriptor)
      } catch {
        // a torn record cannot exist (atomic writes); skip anything unreadable all the same
      }
    }
    return out
  }

  // --- garbage collection --------------------------------------------------------------------------

  async trashBlob(digest: Digest, notModifiedSince: number): Promise<boolean> {
    const p = this.blobPath(digest)
    const t = this.trashPath(digest)
    try {
      await rename(p, t)
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false
      throw err
    }
    // touched between the caller's look and the move: it is wanted after all
    const st = await statOrUndefined(t)
    if (st !== undefined && st.mtimeMs >= notModifiedSince) {
      await this.restoreOne(digest)
      return false
    }
    return true
  }

  private async restoreOne(digest: Digest): Promise<void> {
    const p = this.blobPath(digest)
    const t = this.trashPath(digest)
    if ((await statOrUndefined(p)) !== undefined) {
      await unlink(t).catch(() => undefined)
      return
    }
    await rename(t, p).catch((err: unknown) => {
      if (!isErrno(err, 'ENOENT')) throw err
    })
  }

  async restoreTrash(which?: (d: Digest) => boolean): Promise<Digest[]> {
    const out: Digest[] = []
    for (const name of await readdir(`${this.root}/trash`).catch(() => [] as string[])) {
      const m = /^(sha256|sha512)-([a-f0-9]+)$/.exec(name)
      if (!m) continue
      const d = `${m[1]}:${m[2]}` as Digest
      if (which && !which(d)) continue
      await this.restoreOne(d)
      out.push(d)
    }
    return out
  }

  async emptyTrash(): Promise<{ blobs: number; bytes: number }> {
    let blobs = 0
    let bytes = 0
    const dir = `${this.root}/trash`
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const st = await statOrUndefined(`${dir}/${name}`)
      try {
        await unlink(`${dir}/${name}`)
        blobs++
        bytes += st?.size ?? 0
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err
      }
    }
    return { blobs, bytes }
  }

  async lock(name: string): Promise<() => Promise<void>> {
    if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`invalid lock name ${name}`)
    const path = `${this.root}/${name}.lock`
    const me = `${process.pid} ${hostname()}\n`
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(path, 'wx', 0o644)
        await fh.writeFile(me)
        await fh.close()
        return async () => {
          await unlink(path).catch(() => undefined)
        }
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err
        const owner = await readFile(path, 'utf8').catch(() => '')
        const [pid, host] = owner.trim().split(' ')
        if (host === hostname() && !processAlive(Number(pid))) {
          await unlink(path).catch(() => undefined)
          continue
        }
        throw new CairnError('CONFLICT', `${name} is already running (lock ${path} held by ${owner.trim() || 'another process'})`)
      }
    }
    throw new CairnError('CONFLICT', `could not take the lock ${path}`)
  }
}

/** Repository names the distribution grammar allows, at most 255 characters. */
function isSafeName(name: string): boolean {
  if (name.length === 0 || name.length > 255) return false
  return name.split('/').every((c) => /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/.test(c))
}

function digestFileName(d: Digest): string {
  const { algorithm, hex } = parseDigest(d)
  return `${algorithm}-${hex}`
}

function parseRevision(text: string): { mediaType: string; size: number } | undefined {
  try {
    const v = JSON.parse(text) as { mediaType?: unknown; size?: unknown }
    if (typeof v.mediaType !== 'string' || typeof v.size !== 'number') return undefined
    return { mediaType: v.mediaType, size: v.size }
  } catch {
    return undefined
  }
}

function subjectOf(bytes: Buffer): Digest | undefined {
  try {
    const v = JSON.parse(bytes.toString('utf8')) as { subject?: { digest?: unknown } }
    const d = v.subject?.digest
    if (typeof d !== 'string') return undefined
    parseDigest(d)
    return d as Digest
  } catch {
    return undefined
  }
}

async function statOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await stat(p)
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined
    throw err
  }
}

/** Hashes the first `length` bytes of a file. */
async function hashFile(path: string, algorithm: DigestAlgorithm, length: number, signal?: AbortSignal): Promise<Hash> {
  const hash = createHash(algorithm)
  if (length === 0) return hash
  const stream = createReadStream(path, { start: 0, end: length - 1, highWaterMark: READ_HWM })
  await pipeline(stream, async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) hash.update(chunk)
  }, signal ? { signal } : {})
  return hash
}

/** Byte-wise (lexical) order, as the spec's pagination expects. */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

