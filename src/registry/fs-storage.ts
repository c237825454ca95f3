/**
 * Filesystem storage for the registry (see storage.ts for the contract). Layout under the root:
 *
 *   blobs/<alg>/<hex>                                  content, verified, stored once
 *   repositories/<name>/_layers/<alg>/<hex>            link: the repository may read that blob
 *   repositories/<name>/_manifests/revisions/<alg>/<hex>   revision: {"mediaType","size"}
 *   repositories/<name>/_manifests/tags/<tag>          the digest the tag names
 *   repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>  descriptor of a manifest whose subject is <alg>:<hex>
 *   repositories/<name>/_holds/<alg>/<hex>             {"count"}: pushes holding the blob; mtime: last touch
 *   uploads/<id>/info.json, uploads/<id>/data          an upload session and the bytes received
 *   uploads/<id>/busy                                  "pid host" of the process working on it right now
 *   trash/<alg>-<hex>                                  blobs an older gc was deleting (brought back)
 *   tmp/                                               files being written, sessions being created or dropped
 *   locks/registry.{lock,intent}, locks/gc.{lock,intent}   inter-process locks (see lock.ts)
 *
 * Every small record is written to tmp/, fsynced, renamed into place, and its folder fsynced; a blob is
 * renamed into blobs/ only after its digest has been checked and its bytes fsynced. Holds are renamed into
 * place too, without fsync: they matter while the processes that wrote them run. An upload session
 * appears and disappears whole (a folder renamed from or to tmp/). Repository names follow the
 * distribution grammar (components start with [a-z0-9]), so they never collide with the `_layers`-style
 * folders and never contain `.` or `..` components.
 *
 * Upload resumption across restarts: Node cannot serialise a hash state, so the session persists only
 * its bytes (`data`) and its repository (`info.json`); the offset is the size of `data`. The running
 * sha256 lives in memory; after a restart (or in another process) the first request on the session
 * hashes the bytes already received, then carries on.
 */
import { createHash, randomUUID, type Hash } from 'node:crypto'
import { createReadStream, createWriteStream, type Stats } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import type { Readable } from 'node:stream'
import { Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CairnError, isErrno, throwIfAborted } from '../errors/index.js'
import { asDigest, type Digest, type DigestAlgorithm, DigestAlgorithms, isDigest, parseDigest } from '../oci/digest.js'
import type { Descriptor } from '../oci/types.js'
import { fsyncDir, processAlive, randomName, writeFileAtomic } from '../util/fs.js'
import { FileLock } from './lock.js'
import { subjectOf } from './manifest.js'
import type {
  BlobStat,
  ByteRange,
  Hold,
  ManifestPut,
  RandomAccessBlob,
  ReferrerEntry,
  RegistryStorage,
  RepositoryLink,
  StorageTx,
  StoredManifest,
  UploadState,
  WriteUploadOptions,
} from './storage.js'

const UPLOAD_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const TAG_RE = /^[\w][\w.-]{0,127}$/
const READ_HWM = 1 << 20
/** Larger reads for large blobs: fewer round trips through the event loop when serving them. */
const SERVE_HWM = 4 << 20
const ALGORITHMS = Object.keys(DigestAlgorithms) as DigestAlgorithm[]
const DAY = 24 * 3_600_000

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

export interface FilesystemStorageOptions {
  /** How long a push's hold on a blob lives untouched (default 24 h, as upload sessions). */
  holdTtlMs?: number
  /** Only read (and take the lock shared): `registry check` without --repair. */
  readOnly?: boolean
}

export class FilesystemStorage implements RegistryStorage {
  readonly kind = 'filesystem'
  readonly root: string
  readonly holdTtlMs: number
  private readonly hashes = new Map<string, HashCache>()
  private readonly uploadLocks = new KeyedMutex()
  private readonly holdLocks = new KeyedMutex()
  /** Holds waiting for the next write of their hold file, by its path (see addHold). */
  private readonly holdBatches = new Map<string, { count: number; written: Promise<void> }>()
  private readonly lockFile: FileLock
  private readonly tx: StorageTx
  private readonly readOnly: boolean

  constructor(root: string, opts: FilesystemStorageOptions = {}) {
    this.root = root.replace(/\/+$/, '') || '/'
    this.holdTtlMs = opts.holdTtlMs ?? DAY
    this.readOnly = opts.readOnly ?? false
    this.lockFile = new FileLock(`${this.root}/locks/registry`, opts.readOnly ? { readOnly: true } : {})
    this.tx = {
      statBlob: (d) => this.statBlob(d),
      deleteBlob: (d) => this.deleteBlobNow(d),
      restoreTrashed: (d) => this.restoreOne(d),
      isBlobLinked: (r, d) => this.isBlobLinked(r, d),
      linkBlob: (r, d) => this.linkNow(r, d),
      unlinkBlob: (r, d) => this.removeRecord(this.layerLinkPath(r, d)),
      getManifest: (r, d) => this.getManifest(r, d),
      putRevision: (r, d, mediaType, size) => this.writeRecord(this.revisionPath(r, d), JSON.stringify({ mediaType, size })),
      resolveTag: (r, t) => this.resolveTag(r, t),
      listTags: (r) => this.listTags(r),
      deleteTag: (r, t) => this.removeRecord(this.tagPath(r, t)),
      deleteManifest: (r, d) => this.deleteManifestNow(r, d),
      removeReferrerEntry: (r, e) => this.removeRecord(`${this.referrersDir(r, e.subject)}/${digestFileName(e.digest)}`),
      getHold: (r, d) => this.readHold(r, d),
      removeHold: (r, d) => this.removeRecord(this.holdPath(r, d)),
      getUpload: (id) => this.getUpload(id),
      uploadBusy: (id) => this.uploadBusy(id),
      dropUpload: (id) => this.dropUpload(id),
    }
  }

  async init(): Promise<void> {
    for (const alg of ALGORITHMS) await mkdir(`${this.root}/blobs/${alg}`, { recursive: true })
    for (const d of ['repositories', 'uploads', 'trash', 'tmp', 'locks']) await mkdir(`${this.root}/${d}`, { recursive: true })
    await this.cleanTmp()
  }

  async close(): Promise<void> {
    this.lockFile.close()
  }

  // --- locks ---------------------------------------------------------------------------------------

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.lockFile.shared()
    try {
      return await fn()
    } finally {
      release()
    }
  }

  async exclusive<T>(fn: (tx: StorageTx) => Promise<T>): Promise<T> {
    const release = await this.lockFile.exclusive()
    try {
      return await fn(this.tx)
    } finally {
      release?.()
    }
  }

  async lock(name: string): Promise<() => Promise<void>> {
    if (!/^[a-z][a-z0-9-]*$/.test(name) || name === 'registry') throw new Error(`invalid lock name ${name}`)
    const lock = new FileLock(`${this.root}/locks/${name}`)
    let release: (() => void) | undefined
    try {
      release = await lock.exclusive({ wait: false })
    } catch (err) {
      lock.close()
      throw err
    }
    if (release === undefined) {
      lock.close()
      throw new CairnError('CONFLICT', `${name} is already running (${this.root}/locks/${name}.lock is held by another process)`)
    }
    const r = release
    return async () => {
      r()
      lock.close()
    }
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

  private holdPath(repository: string, digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest)
    return `${this.repoDir(repository)}/_holds/${algorithm}/${hex}`
  }

  private tagPath(repository: string, tag: string): string {
    if (!TAG_RE.test(tag)) throw new CairnError('MANIFEST_INVALID', `invalid tag: ${JSON.stringify(tag)}`)
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

  /** Writes a small file atomically (temp file in tmp/, rename), without waiting for the disk. */
  private async writeLight(path: string, data: string): Promise<void> {
    const tmp = `${this.root}/tmp/${randomName()}`
    await writeFile(tmp, data, { flag: 'wx', mode: 0o644 })
    try {
      await rename(tmp, path)
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) {
        await unlink(tmp).catch(() => undefined)
        throw err
      }
      await mkdir(path.slice(0, path.lastIndexOf('/')), { recursive: true })
      await rename(tmp, path)
    }
  }

  private async removeRecord(path: string): Promise<boolean> {
    try {
      await unlink(path)
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return false
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
    if (st === undefined && !this.readOnly) {
      // an older gc, killed while it ran, may have left it in its trash: it comes back
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

  async openBlobFile(digest: Digest): Promise<RandomAccessBlob> {
    const p = this.blobPath(digest)
    const fh = await open(p, 'r').catch(async (err: unknown) => {
      if (!isErrno(err, 'ENOENT')) throw err
      if ((await this.statBlob(digest)) === undefined) throw new CairnError('BLOB_UNKNOWN', `blob unknown: ${digest}`)
      return open(p, 'r')
    })
    return {
      read: async (buf, length, position) => (await fh.read(buf, 0, length, position)).bytesRead,
      close: () => fh.close(),
    }
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
        if (st) yield { digest: asDigest(`${alg}:${hex}`), size: st.size, modifiedAt: st.mtimeMs }
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

  /** Deletes a blob (exclusive sections only); its size, or undefined when it was not there. */
  private async deleteBlobNow(digest: Digest): Promise<number | undefined> {
    const p = this.blobPath(digest)
    const st = await statOrUndefined(p)
    if (st === undefined) return undefined
    if (!(await this.removeRecord(p))) return undefined
    return st.size
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

  async listTrash(): Promise<Digest[]> {
    const out: Digest[] = []
    for (const name of await readdir(`${this.root}/trash`).catch(() => [] as string[])) {
      const m = /^(sha256|sha512)-([a-f0-9]+)$/.exec(name)
      const d = m ? `${m[1]}:${m[2]}` : ''
      if (isDigest(d)) out.push(d)
    }
    return out
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
    this.repoDir(repository)
    return this.shared(async () => {
      if (!(await this.linkNow(repository, digest))) return false
      await this.addHold(repository, digest)
      return true
    })
  }

  /** Links an existing blob and refreshes its time (no lock of its own); false when the blob is absent. */
  private async linkNow(repository: string, digest: Digest): Promise<boolean> {
    const p = this.layerLinkPath(repository, digest)
    const now = new Date()
    if (!(await touch(this.blobPath(digest), now)) && (await this.statBlob(digest)) === undefined) return false
    if (await touch(p, now)) return true
    await this.writeRecord(p, '')
    return true
  }

  async unlinkBlob(repository: string, digest: Digest): Promise<boolean> {
    const p = this.layerLinkPath(repository, digest)
    return this.exclusive(() => this.removeRecord(p))
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
        const digest = `${alg}:${hex}`
        if (hex.length !== DigestAlgorithms[alg] || !isDigest(digest)) continue
        const st = await statOrUndefined(`${dir}/${hex}`)
        if (st) yield { digest, modifiedAt: st.mtimeMs }
      }
    }
  }

  // --- holds ---------------------------------------------------------------------------------------

  async checkBlob(repository: string, digest: Digest): Promise<BlobStat | undefined> {
    this.repoDir(repository)
    return this.shared(async () => {
      const linked = (await this.isBlobLinked(repository, digest)) || (await this.getManifest(repository, digest)) !== undefined
      const st = linked ? await this.statBlob(digest) : undefined
      if (st === undefined) return undefined
      await this.addHold(repository, digest)
      return st
    })
  }

  async checkManifest(repository: string, digest: Digest): Promise<StoredManifest | undefined> {
    this.repoDir(repository)
    return this.shared(async () => {
      const rec = await this.getManifest(repository, digest)
      if (rec === undefined || (await this.statBlob(digest)) === undefined) return undefined
      await this.addHold(repository, digest)
      return rec
    })
  }

  private async readHold(repository: string, digest: Digest): Promise<Hold | undefined> {
    const p = this.holdPath(repository, digest)
    const [st, text] = await Promise.all([statOrUndefined(p), readFile(p, 'utf8').catch(() => undefined)])
    if (st === undefined || text === undefined) return undefined
    let count = 0
    try {
      const v = (JSON.parse(text) as { count?: unknown }).count
      if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) count = v
    } catch {
      // unreadable: holds nothing
    }
    return { digest, count, modifiedAt: st.mtimeMs, expired: st.mtimeMs < Date.now() - this.holdTtlMs }
  }

  /**
   * One more push holds `digest` in `repository`; the blob (and revision) count as touched now.
   * Shared sections only. Holds asked for while the hold file is being written are added together
   * by the next write (a group commit): many clients checking the same blob at once (a common base
   * layer) wait for one write each, not for each other's in turn.
   */
  private addHold(repository: string, digest: Digest): Promise<void> {
    const p = this.holdPath(repository, digest)
    const queued = this.holdBatches.get(p)
    if (queued !== undefined) {
      queued.count++
      return queued.written
    }
    const batch = { count: 1, written: Promise.resolve() }
    this.holdBatches.set(p, batch)
    batch.written = this.holdLocks.run(p, async () => {
      // from here on, a new hold waits for the next write
      this.holdBatches.delete(p)
      const h = await this.readHold(repository, digest)
      const count = (h === undefined || h.expired ? 0 : h.count) + batch.count
      await this.writeLight(p, JSON.stringify({ count }))
      const now = new Date()
      await touch(p, now)
      await touch(this.blobPath(digest), now)
      await touch(this.revisionPath(repository, digest), now)
    })
    return batch.written
  }

  /** A manifest naming `digest` was stored: one hold fewer (its time is kept). Shared sections only. */
  private async releaseHold(repository: string, digest: Digest): Promise<void> {
    const p = this.holdPath(repository, digest)
    await this.holdLocks.run(p, async () => {
      const h = await this.readHold(repository, digest)
      if (h === undefined) return
      if (h.count <= 1 || h.expired) {
        await unlink(p).catch(() => undefined)
        return
      }
      await this.writeLight(p, JSON.stringify({ count: h.count - 1 }))
      await touch(p, new Date(h.modifiedAt))
    })
  }

  async *listHolds(repository: string, signal?: AbortSignal): AsyncGenerator<Hold> {
    for (const alg of ALGORITHMS) {
      const dir = `${this.repoDir(repository)}/_holds/${alg}`
      const names = await readdir(dir).catch(() => [] as string[])
      for (const hex of names) {
        throwIfAborted(signal)
        if (hex.length !== DigestAlgorithms[alg] || !/^[a-f0-9]+$/.test(hex)) continue
        const h = await this.readHold(repository, asDigest(`${alg}:${hex}`))
        if (h) yield h
      }
    }
  }

  // --- uploads -------------------------------------------------------------------------------------

  async createUpload(repository: string): Promise<UploadState> {
    this.repoDir(repository)
    const id = randomUUID()
    // made in tmp/ and renamed into uploads/: a session exists whole or not at all
    const staging = `${this.root}/tmp/${randomName()}`
    await mkdir(staging)
    const startedAt = Date.now()
    try {
      await writeFileAtomic(`${staging}/info.json`, JSON.stringify({ repository, startedAt }), 0o644, `${this.root}/tmp`)
      const fh = await open(`${staging}/data`, 'wx', 0o644)
      await fh.close()
      await rename(staging, this.uploadDir(id))
    } catch (err) {
      await rm(staging, { recursive: true, force: true })
      throw err
    }
    await fsyncDir(`${this.root}/uploads`)
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

  /**
   * Runs a request's work on a session: the session is looked up and marked busy (so that no purge,
   * here or in another process, removes it meanwhile), then `fn` runs, then the mark goes.
   */
  private async onSession<T>(id: string, fn: (state: UploadState) => Promise<T>): Promise<T> {
    const dir = this.uploadDir(id)
    const state = await this.shared(async () => {
      const s = await this.getUpload(id)
      if (s === undefined) throw new CairnError('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown')
      await writeFile(`${dir}/busy`, `${process.pid} ${hostname()}\n`)
      return s
    })
    try {
      return await fn(state)
    } finally {
      await unlink(`${dir}/busy`).catch(() => undefined)
    }
  }

  private async uploadBusy(id: string): Promise<boolean> {
    const p = `${this.uploadDir(id)}/busy`
    const [st, text] = await Promise.all([statOrUndefined(p), readFile(p, 'utf8').catch(() => undefined)])
    if (st === undefined || text === undefined) return false
    // a mark older than a push may last is stale whoever wrote it (a PID used again, another machine)
    if (st.mtimeMs < Date.now() - this.holdTtlMs) return false
    const [pid, host] = text.trim().split(' ')
    return host !== hostname() || processAlive(Number(pid))
  }

  async writeUpload(id: string, offset: number, body: AsyncIterable<Uint8Array>, opts: WriteUploadOptions = {}): Promise<UploadState> {
    return this.uploadLocks.run(id, () => this.onSession(id, async (state) => {
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
    }))
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
    return this.uploadLocks.run(id, () => this.onSession(id, async (state) => {
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
      // the session goes whole (renamed into tmp/) before its bytes become the blob: killed in between,
      // there is no session left half-done, and the client starts the upload again
      this.hashes.delete(id)
      const publishedAt = await this.shared(async () => {
        const claimed = `${this.root}/tmp/${randomName()}`
        await rename(dir, claimed)
        try {
          await this.publish(`${claimed}/data`, expected)
          const at = Date.now()
          if (!(await this.linkNow(state.repository, expected))) throw new CairnError('BLOB_UNKNOWN', `blob ${expected} vanished while it was published`)
          await this.addHold(state.repository, expected)
          return at
        } finally {
          await rm(claimed, { recursive: true, force: true })
        }
      })
      return { digest: expected, size: state.offset, modifiedAt: publishedAt }
    }))
  }

  async cancelUpload(id: string): Promise<boolean> {
    if (!UPLOAD_ID_RE.test(id)) return false
    return this.uploadLocks.run(id, () => this.dropUpload(id))
  }

  /** Removes a session whole: renamed into tmp/ first, then deleted. */
  private async dropUpload(id: string): Promise<boolean> {
    this.hashes.delete(id)
    const gone = `${this.root}/tmp/${randomName()}`
    try {
      await rename(this.uploadDir(id), gone)
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false
      throw err
    }
    await rm(gone, { recursive: true, force: true })
    return true
  }

  async *listUploads(signal?: AbortSignal): AsyncGenerator<UploadState> {
    const names = await readdir(`${this.root}/uploads`).catch(() => [] as string[])
    for (const name of names) {
      throwIfAborted(signal)
      if (!UPLOAD_ID_RE.test(name)) continue
      const s = await this.getUpload(name)
      if (s) yield s
      else {
        // a session whose files are incomplete (an older version killed while starting or finishing it)
        const st = await statOrUndefined(`${this.root}/uploads/${name}`)
        if (st) yield { id: name, repository: '', offset: 0, startedAt: st.mtimeMs, updatedAt: st.mtimeMs }
      }
    }
  }

  // --- manifests -----------------------------------------------------------------------------------

  async putManifest(repository: string, m: ManifestPut, tag?: string): Promise<void> {
    const revision = this.revisionPath(repository, m.digest)
    if (tag !== undefined) this.tagPath(repository, tag) // validate before writing anything
    await this.shared(async () => {
      // 1. what it references is here, with the declared sizes; no deletion can start before we are done
      for (const d of m.blobs) {
        const linked = (await this.isBlobLinked(repository, d.digest)) || (await this.getManifest(repository, d.digest)) !== undefined
        const st = linked ? await this.statBlob(d.digest) : undefined
        if (st === undefined) throw new CairnError('MANIFEST_BLOB_UNKNOWN', `blob unknown to registry: ${d.digest}`, { detail: { digest: d.digest } })
        if (st.size !== d.size) throw new CairnError('MANIFEST_INVALID', `manifest invalid: blob ${d.digest} has ${st.size} bytes, the manifest says ${d.size}`, { detail: { digest: d.digest } })
      }
      for (const d of m.manifests) {
        const rec = await this.getManifest(repository, d.digest)
        const present = (rec !== undefined || (await this.isBlobLinked(repository, d.digest))) && (await this.statBlob(d.digest)) !== undefined
        if (!present) throw new CairnError('MANIFEST_BLOB_UNKNOWN', `manifest unknown to registry: ${d.digest}`, { detail: { digest: d.digest } })
        if (rec !== undefined && rec.size !== d.size) {
          throw new CairnError('MANIFEST_INVALID', `manifest invalid: ${d.digest} has ${rec.size} bytes, the index says ${d.size}`, { detail: { digest: d.digest } })
        }
      }
      // 2. they count as touched now: a gc that began earlier leaves them alone
      const now = new Date()
      for (const d of [...m.blobs, ...m.manifests]) {
        await touch(this.blobPath(d.digest), now)
        await touch(this.revisionPath(repository, d.digest), now)
      }
      // 3. the manifest's bytes, as a blob
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
        await touch(this.blobPath(m.digest), now)
      }
      // 4. the revision, its referrer entry, then the tag: a tag never names a revision that is not complete
      await this.writeRecord(revision, JSON.stringify({ mediaType: m.mediaType, size: m.bytes.length }))
      if (m.referrer) await this.writeRecord(`${this.referrersDir(repository, m.referrer.subject)}/${digestFileName(m.digest)}`, JSON.stringify(m.referrer.descriptor))
      if (tag !== undefined) await this.writeRecord(this.tagPath(repository, tag), m.digest)
      // 5. the pushes that held what it names are done with it; pushed by digest, it waits for its index
      for (const d of [...m.blobs, ...m.manifests]) await this.releaseHold(repository, d.digest)
      if (tag === undefined) await this.addHold(repository, m.digest)
    })
  }

  async getManifest(repository: string, digest: Digest): Promise<StoredManifest | undefined> {
    const p = this.revisionPath(repository, digest)
    let text: string
    let mtime: number
    try {
      const fh = await open(p, 'r')
      try {
        mtime = (await fh.stat()).mtimeMs
        text = await fh.readFile('utf8')
      } finally {
        await fh.close()
      }
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined
      throw err
    }
    const rec = parseRevision(text)
    if (rec === undefined) return undefined
    return { digest, mediaType: rec.mediaType, size: rec.size, modifiedAt: mtime }
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
    return isDigest(d) ? d : undefined
  }

  async listTags(repository: string): Promise<string[]> {
    const names = await readdir(`${this.repoDir(repository)}/_manifests/tags`).catch(() => [] as string[])
    return names.filter((n) => TAG_RE.test(n)).sort(compareStrings)
  }

  async deleteTag(repository: string, tag: string): Promise<boolean> {
    const p = this.tagPath(repository, tag)
    return this.shared(() => this.removeRecord(p))
  }

  async deleteManifest(repository: string, digest: Digest): Promise<boolean> {
    this.revisionPath(repository, digest)
    return this.exclusive(() => this.deleteManifestNow(repository, digest))
  }

  /** Tags naming it, its referrer entry, then the revision (no lock of its own). */
  private async deleteManifestNow(repository: string, digest: Digest): Promise<boolean> {
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
        const digest = `${alg}:${hex}`
        if (hex.length !== DigestAlgorithms[alg] || !isDigest(digest)) continue
        const p = `${dir}/${hex}`
        const [st, text] = await Promise.all([statOrUndefined(p), readFile(p, 'utf8').catch(() => undefined)])
        const rec = text === undefined ? undefined : parseRevision(text)
        if (st && rec) yield { digest, mediaType: rec.mediaType, size: rec.size, modifiedAt: st.mtimeMs }
      }
    }
  }

  async listReferrers(repository: string, subject: Digest): Promise<Descriptor[]> {
    const dir = this.referrersDir(repository, subject)
    const names = await readdir(dir).catch(() => [] as string[])
    const out: Descriptor[] = []
    for (const name of names.sort(compareStrings)) {
      const m = /^(sha256|sha512)-([a-f0-9]+)$/.exec(name)
      const digest = m ? `${m[1]}:${m[2]}` : ''
      if (!isDigest(digest)) continue
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

  async *listReferrerEntries(repository: string, signal?: AbortSignal): AsyncGenerator<ReferrerEntry> {
    const base = `${this.repoDir(repository)}/_referrers`
    for (const alg of ALGORITHMS) {
      for (const hex of await readdir(`${base}/${alg}`).catch(() => [] as string[])) {
        if (hex.length !== DigestAlgorithms[alg] || !/^[a-f0-9]+$/.test(hex)) continue
        for (const name of await readdir(`${base}/${alg}/${hex}`).catch(() => [] as string[])) {
          throwIfAborted(signal)
          const m = /^(sha256|sha512)-([a-f0-9]+)$/.exec(name)
          const digest = m ? `${m[1]}:${m[2]}` : ''
          if (isDigest(digest)) yield { subject: asDigest(`${alg}:${hex}`), digest }
        }
      }
    }
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

/** Sets a file's times; false when it does not exist. */
async function touch(path: string, when: Date): Promise<boolean> {
  try {
    await utimes(path, when, when)
    return true
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return false
    throw err
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

