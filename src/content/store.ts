/**
 * The content-addressable blob store: `blobs/<alg>/<hex>`.
 *
 * A blob becomes visible only when it is complete and verified: bytes are streamed into
 * `ingest/<random>` while hashed, the file is fsynced, size and digest are checked, and only
 * then is it renamed to its final name (and the folder fsynced). Two writers of the same blob
 * both succeed and leave one copy (rename replaces identical content atomically).
 *
 * Deletion is two-phase so that it can be made part of a metadata transaction: `trash()`
 * renames the blob into `trash/` (cheap, atomic); `emptyTrash()` unlinks it once the
 * transaction has committed; `recoverTrash()` moves back anything a crashed process
 * trashed but still referenced.
 *
 * Whether an ingest file is abandoned is decided by the lease it was written under (lease.ts),
 * not by its writer's PID: one service process runs many operations, and one of them failing
 * must not take the others' content, nor must a live one keep what a failed one left.
 */
import { existsSync, readdirSync, renameSync, unlinkSync, openSync, fsyncSync, closeSync, type ReadStream } from 'node:fs'
import { mkdir, open, readdir, stat, readFile, rm } from 'node:fs/promises'
import { Readable, type Transform, Writable } from 'node:stream'
import type { FileHandle } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { CairnError, isErrno, throwIfAborted } from '../errors/index.js'
import { type Digest, type DigestAlgorithm, HashingStream, isDigest, parseDigest } from '../oci/digest.js'
import { sysAddonWith } from '../util/addon.js'
import { processAlive, randomName, unlinkIfExists } from '../util/fs.js'
import { byteCounter, pipeAll } from '../util/stream.js'
import { Leases } from './lease.js'

export interface BlobInfo {
  digest: Digest
  size: number
}

export interface WriteOptions {
  /** When given, the content must hash to this digest (else DIGEST_INVALID, nothing stored). */
  expected?: Digest
  /** When given, the content must have exactly this many bytes (else SIZE_INVALID). */
  size?: number
  algorithm?: DigestAlgorithm
  signal?: AbortSignal
  /** Called as bytes arrive, with the running total. */
  onBytes?: (written: number) => void
}

const WRITE_HWM = 1 << 20

export class ContentStore {
  readonly root: string
  private readonly ingestDir: string
  private readonly trashDir: string
  readonly leases: Leases

  constructor(root: string) {
    this.root = root
    this.ingestDir = `${root}/ingest`
    this.trashDir = `${root}/trash`
    this.leases = new Leases(root)
  }

  /**
   * Runs an operation under a lease of its own: what it writes is safe from every cleanup while
   * it runs, and what it wrote but did not publish is removed when it ends.
   */
  withLease<T>(fn: () => Promise<T>, opts: { ttlMs?: number } = {}): Promise<T> {
    return this.leases.withLease(fn, (lease) => this.removeIngestOf(lease.id), opts)
  }

  /** Removes the ingest files written under a lease. */
  private async removeIngestOf(leaseId: string): Promise<void> {
    const names = await readdir(this.ingestDir).catch(() => [] as string[])
    for (const name of names) if (name.startsWith(`${leaseId}~`)) await rm(`${this.ingestDir}/${name}`, { force: true })
  }

  async init(): Promise<void> {
    for (const alg of ['sha256', 'sha512']) await mkdir(`${this.root}/blobs/${alg}`, { recursive: true })
    await mkdir(this.ingestDir, { recursive: true })
    await mkdir(this.trashDir, { recursive: true })
  }

  path(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest)
    return `${this.root}/blobs/${algorithm}/${hex}`
  }

  async info(digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const st = await stat(this.path(digest))
      return { digest, size: st.size }
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined
      throw err
    }
  }

  async has(digest: Digest): Promise<boolean> {
    return (await this.info(digest)) !== undefined
  }

  /** A fresh stream of the blob's bytes; BLOB_UNKNOWN when absent. */
  async read(digest: Digest, range?: { start: number; end?: number }): Promise<ReadStream> {
    const p = this.path(digest)
    const fh = await open(p, 'r').catch((err: unknown) => {
      if (isErrno(err, 'ENOENT')) throw new CairnError('BLOB_UNKNOWN', `blob unknown: ${digest}`)
      throw err
    })
    const opts: { highWaterMark: number; start?: number; end?: number } = { highWaterMark: WRITE_HWM }
    if (range) {
      opts.start = range.start
      if (range.end !== undefined) opts.end = range.end
    }
    return fh.createReadStream(opts)
  }

  /** Reads a small blob (a manifest or config) whole, refusing anything larger than `maxSize`. */
  async readBytes(digest: Digest, maxSize = 4 << 20): Promise<Buffer> {
    const info = await this.info(digest)
    if (!info) throw new CairnError('BLOB_UNKNOWN', `blob unknown: ${digest}`)
    if (info.size > maxSize) throw new CairnError('SIZE_INVALID', `blob ${digest} is ${info.size} bytes, more than ${maxSize}`)
    return readFile(this.path(digest))
  }

  async readJson<T>(digest: Digest, maxSize = 4 << 20): Promise<T> {
    const buf = await this.readBytes(digest, maxSize)
    try {
      return JSON.parse(buf.toString('utf8')) as T
    } catch (err) {
      throw new CairnError('STORE_CORRUPT', `blob ${digest} is not valid JSON`, { cause: err })
    }
  }

  /** Stores bytes already in memory (manifests, configs). */
  async writeBytes(data: Uint8Array | string, opts: Omit<WriteOptions, 'onBytes'> = {}): Promise<BlobInfo> {
    const buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    return this.write(Readable.from([buf]), opts)
  }

  /** Streams `source` into the store; see the class comment for the guarantees. */
  async write(source: NodeJS.ReadableStream | AsyncIterable<Uint8Array>, opts: WriteOptions = {}): Promise<BlobInfo> {
    const staged = await this.stageStream(source, opts)
    this.publishSync(staged)
    return { digest: staged.digest, size: staged.size }
  }

  /**
   * Opens an ingest: a writable that hashes as it writes. Call `stage()` after the stream has
   * finished to verify it (then `publishSync` inside the transaction that records it), or
   * `abort()` to throw the bytes away.
   */
  async ingest(algorithm: DigestAlgorithm = 'sha256', opts: IngestOptions = {}): Promise<Ingest> {
    await mkdir(this.ingestDir, { recursive: true })
    const lease = this.leases.current()
    await lease.ensure()
    const tmp = `${this.ingestDir}/${lease.id}~${randomName()}`
    const fh = await open(tmp, 'wx', 0o644)
    const hasher = new HashingStream(algorithm)
    const file = new FileSink(fh, opts.direct === true)
    // hasher → file; callers write into `stream`
    const done = pipeline(hasher, file)
    done.catch(() => undefined)
    // the digest is final once the hasher has passed its last byte on ('end'), before the file is synced
    const hashed = new Promise<BlobInfo>((resolve, reject) => {
      hasher.once('end', () => resolve({ digest: hasher.digest, size: hasher.size }))
      hasher.once('close', () => reject(new CairnError('ABORTED', 'the ingest was closed before its end')))
    })
    hashed.catch(() => undefined)
    let closed = false
    const close = async (): Promise<void> => {
      if (closed) return
      closed = true
      await fh.close()
    }
    const stage = async (o: { expected?: Digest; size?: number } = {}): Promise<StagedBlob> => {
      try {
        await done // FileSink has fsynced the file by now
        await close()
        const digest = hasher.digest
        const size = hasher.size
        if (o.size !== undefined && o.size !== size) {
          throw new CairnError('SIZE_INVALID', `size mismatch: expected ${o.size} bytes, got ${size}`)
        }
        if (o.expected !== undefined && o.expected !== digest) {
          throw new CairnError('DIGEST_INVALID', `digest mismatch: expected ${o.expected}, got ${digest}`)
        }
        return { digest, size, tmpPath: tmp }
      } catch (err) {
        await close().catch(() => undefined)
        await unlinkIfExists(tmp)
        throw err
      }
    }
    return {
      stream: hasher,
      hashed,
      stage,
      abort: async () => {
        hasher.destroy()
        await done.catch(() => undefined)
        await close().catch(() => undefined)
        await unlinkIfExists(tmp)
      },
    }
  }

  /** Like `write`, but leaves the verified blob staged (see `Ingest.stage`). */
  async stageStream(source: NodeJS.ReadableStream | AsyncIterable<Uint8Array>, opts: WriteOptions = {}): Promise<StagedBlob> {
    const ingest = await this.ingest(opts.algorithm ?? (opts.expected ? parseDigest(opts.expected).algorithm : 'sha256'))
    try {
      const steps: unknown[] = [source]
      if (opts.onBytes) steps.push(byteCounter(opts.onBytes))
      steps.push(ingest.stream)
      await pipeAll(steps, opts.signal)
      const o: { expected?: Digest; size?: number } = {}
      if (opts.expected !== undefined) o.expected = opts.expected
      if (opts.size !== undefined) o.size = opts.size
      return await ingest.stage(o)
    } catch (err) {
      await ingest.abort()
      if (opts.signal?.aborted) throw new CairnError('ABORTED', 'operation aborted', { cause: err })
      throw err
    }
  }

  async stageBytes(data: Uint8Array | string, opts: Omit<WriteOptions, 'onBytes'> = {}): Promise<StagedBlob> {
    const buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    return this.stageStream(Readable.from([buf]), opts)
  }

  /**
   * Makes a staged blob visible; synchronous so that it can run inside a metadata transaction.
   * If the blob already exists the staged copy is dropped. Returns true if it was newly published.
   */
  publishSync(staged: StagedBlob): boolean {
    const final = this.path(staged.digest)
    if (existsSync(final)) {
      try { unlinkSync(staged.tmpPath) } catch { /* already gone */ }
      return false
    }
    renameSync(staged.tmpPath, final)
    const dir = final.slice(0, final.lastIndexOf('/'))
    const fd = openSync(dir, 'r')
    try { fsyncSync(fd) } finally { closeSync(fd) }
    return true
  }

  /** Drops a staged blob that will not be published. */
  async discard(staged: StagedBlob): Promise<void> {
    await unlinkIfExists(staged.tmpPath)
  }

  /**
   * Ensures a blob is present, bringing it back from the trash if a concurrent delete moved it
   * there. Synchronous: for use inside a metadata transaction.
   */
  ensureSync(digest: Digest): boolean {
    if (existsSync(this.path(digest))) return true
    const { algorithm, hex } = parseDigest(digest)
    const prefix = `${algorithm}-${hex}-`
    for (const name of safeReaddirSync(this.trashDir)) {
      if (!name.startsWith(prefix)) continue
      try {
        renameSync(`${this.trashDir}/${name}`, this.path(digest))
        return true
      } catch { /* raced with another restore */ }
    }
    return existsSync(this.path(digest))
  }

  /** Phase one of a delete, synchronous (inside a transaction). Returns the trash path. */
  trashSync(digest: Digest): string | undefined {
    const { algorithm, hex } = parseDigest(digest)
    const dest = `${this.trashDir}/${algorithm}-${hex}-${randomName()}`
    try {
      renameSync(this.path(digest), dest)
      return dest
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined
      throw err
    }
  }

  hasTrashSync(): boolean {
    return safeReaddirSync(this.trashDir).length > 0
  }

  /** Synchronous `recoverTrash`, for use inside the metadata write transaction. */
  recoverTrashSync(isReferenced: (d: Digest) => boolean): void {
    for (const name of safeReaddirSync(this.trashDir)) {
      const p = `${this.trashDir}/${name}`
      const m = /^(sha256|sha512)-([a-f0-9]+)-/.exec(name)
      const candidate = m ? `${m[1]}:${m[2]}` : ''
      const digest = isDigest(candidate) ? candidate : undefined
      try {
        if (digest && isReferenced(digest) && !existsSync(this.path(digest))) renameSync(p, this.path(digest))
        else unlinkSync(p)
      } catch { /* another process got there first */ }
    }
  }

  /** Phase two: removes trashed files for good. */
  async emptyTrash(paths?: readonly string[]): Promise<void> {
    const list = paths ?? (await readdir(this.trashDir).catch(() => [] as string[])).map((n) => `${this.trashDir}/${n}`)
    for (const p of list) await unlinkIfExists(p)
  }

  /**
   * Removes ingest files whose lease is no longer live (their writer released it, died, or
   * stopped refreshing it), then those leases. Files of the older naming (`<pid>-<hex>`) go when
   * their PID is gone or after `maxAgeMs`.
   */
  async cleanIngest(maxAgeMs = 24 * 3600 * 1000): Promise<void> {
    const expired = await this.leases.expired()
    const names = await readdir(this.ingestDir).catch(() => [] as string[])
    const verdicts = new Map<string, boolean>()
    const now = Date.now()
    for (const name of names) {
      const p = `${this.ingestDir}/${name}`
      const tilde = name.indexOf('~')
      if (tilde > 0) {
        const id = name.slice(0, tilde)
        let live = verdicts.get(id)
        if (live === undefined) verdicts.set(id, (live = this.leases.live(id)))
        if (!live) await rm(p, { force: true })
        continue
      }
      const pid = Number(name.split('-')[0])
      const st = await stat(p).catch(() => undefined)
      if (!st) continue
      if (!processAlive(pid) || now - st.mtimeMs > maxAgeMs) await rm(p, { force: true })
    }
    for (const id of expired) await this.leases.drop(id)
  }

  /** Every blob digest present. */
  async *list(signal?: AbortSignal): AsyncGenerator<BlobInfo> {
    for (const alg of ['sha256', 'sha512'] as const) {
      const dir = `${this.root}/blobs/${alg}`
      const names = await readdir(dir).catch(() => [] as string[])
      for (const hex of names) {
        throwIfAborted(signal)
        const st = await stat(`${dir}/${hex}`).catch(() => undefined)
        const digest = `${alg}:${hex}`
        if (st && isDigest(digest)) yield { digest, size: st.size }
      }
    }
  }
}

export interface Ingest {
  /** Write the content here. */
  stream: Transform
  /**
   * The digest and size of what was written, as soon as the last byte is hashed: before the file
   * is synced and verified (`stage`), so that a caller may use the digest meanwhile (a push sends
   * it to the registry while the kept copy reaches the disk). Rejects if the stream fails first.
   */
  hashed: Promise<BlobInfo>
  /**
   * Verifies and fsyncs the blob but keeps it out of sight: publish it with
   * `ContentStore.publishSync` inside the metadata transaction that references it.
   */
  stage(opts?: { expected?: Digest; size?: number }): Promise<StagedBlob>
  abort(): Promise<void>
}

export interface IngestOptions {
  /**
   * A blob that will not be read back soon (a pushed layer's compressed copy, a build's layer
   * that is not the result's): written past the page cache where the file system lets it, which
   * is cheaper than filling the cache (see FileSink). Not for a blob read back next (a committed
   * layer that is pushed next would be read from the device).
   */
  direct?: boolean
}

/** A verified blob not yet visible in the store. */
export interface StagedBlob extends BlobInfo {
  tmpPath: string
}

/** Bytes written to a blob between two requests to start their write-out (see FileSink). */
const WRITEBACK_EVERY = 8 << 20
/** Bytes of a blob written at once past the page cache (the addon's largest O_DIRECT write). */
const DIRECT_CHUNK = 1 << 20

interface WritebackAddon {
  syncFileRange(fd: number, offset: number, length: number): Promise<void>
}

interface DirectWriteAddon {
  writeAt(fd: number, position: number, buffers: Uint8Array[], direct: boolean): Promise<boolean>
}

/**
 * Writes to an open file and fsyncs it before reporting 'finish'; the caller closes the handle
 * once the stream has closed.
 *
 * `direct` (a blob not read back soon), with Cairn's system-call addon: the blob goes to the
 * device past the page cache (O_DIRECT), 1 MiB at a time, one write in flight while the next MiB
 * arrives, its last partial MiB through the page cache. Filling the page cache costs more than the
 * write: on the virtual machines Cairn is measured on, each new page of it is a fault in the host
 * (see `writeAt` in native/sys/sys.c). Otherwise (and where the file system refuses O_DIRECT, or
 * without the addon) the bytes go through the page cache, and every 8 MiB written their write-out is started
 * (sync_file_range(2)), so that the final fsync waits for the last few MiB only: otherwise the
 * kernel holds the whole blob until that fsync, which then writes it all while the cores wait
 * (a 90 MB blob: some 100 ms at the end of a push, a pull or an import).
 */
class FileSink extends Writable {
  /** Where the next bytes go in the file. */
  private position = 0
  private started = 0
  private starting: Promise<void> | undefined
  /** The addon's O_DIRECT writes, when this blob is to be written past the page cache. */
  private readonly directWrites: DirectWriteAddon | undefined
  /** Whether to write past the page cache (until the file system refuses). */
  private direct: boolean
  /** Bytes not written yet (direct: less than a chunk), and the write in flight. */
  private held: Buffer[] = []
  private heldBytes = 0
  private writing: Promise<void> | undefined
  private failed: Error | undefined

  constructor(private readonly fh: FileHandle, direct: boolean) {
    super({ highWaterMark: WRITE_HWM })
    this.directWrites = direct ? sysAddonWith<DirectWriteAddon>('writeAt') : undefined
    this.direct = this.directWrites !== undefined
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.accept([chunk]).then(() => cb(), cb)
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.accept(chunks.map((c) => c.chunk)).then(() => cb(), cb)
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.drain()
      .then(async () => {
        // the last partial chunk, through the page cache (the addon switches the file back)
        if (this.heldBytes > 0) await this.directWrites?.writeAt(this.fh.fd, this.position, this.take(this.heldBytes), false)
        await this.fh.sync()
      })
      .then(() => cb(), cb)
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // the caller closes the file once this has closed: nothing may still be writing to its descriptor
    void this.drain().catch(() => undefined).then(() => cb(err))
  }

  /** Waits for the write and the write-out request in flight; the first failure is thrown. */
  private async drain(): Promise<void> {
    await this.starting
    await this.settled()
  }

  /** Waits for the write in flight; the first failure is thrown. */
  private async settled(): Promise<void> {
    await this.writing
    if (this.failed) throw this.failed
  }

  /** Whether bytes still go past the page cache (a write in flight may find that they cannot). */
  private goingDirect(): boolean {
    return this.direct
  }

  private async accept(buffers: Buffer[]): Promise<void> {
    for (const b of buffers) {
      this.held.push(b)
      this.heldBytes += b.length
    }
    for (;;) {
      await this.settled()
      // through the page cache: all that is held (also what was held when a write in flight
      // found that the file system refuses O_DIRECT)
      if (!this.goingDirect()) return this.writeAll(this.take(this.heldBytes))
      if (this.heldBytes < DIRECT_CHUNK) return
      const at = this.position
      this.position += DIRECT_CHUNK
      this.writing = (this.directWrites as DirectWriteAddon).writeAt(this.fh.fd, at, this.take(DIRECT_CHUNK), true).then(
        (wentDirect) => {
          if (!wentDirect) this.direct = false
        },
        (err: unknown) => {
          this.failed ??= err instanceof Error ? err : new Error(String(err))
        },
      )
      // not awaited: the next MiB gathers meanwhile
      if (this.heldBytes < DIRECT_CHUNK) return
    }
  }

  /** The first `n` bytes held, as they are (buffers split where needed). */
  private take(n: number): Buffer[] {
    const out: Buffer[] = []
    let left = n
    while (left > 0) {
      const b = this.held[0] as Buffer
      if (b.length <= left) {
        out.push(b)
        this.held.shift()
        left -= b.length
      } else {
        out.push(b.subarray(0, left))
        this.held[0] = b.subarray(left)
        left = 0
      }
    }
    this.heldBytes -= n
    return out
  }

  private async writeAll(buffers: Buffer[]): Promise<void> {
    let pending = buffers
    while (pending.length > 0) {
      const { bytesWritten } = await this.fh.writev(pending, this.position)
      this.position += bytesWritten
      if (this.position - this.started >= WRITEBACK_EVERY) this.startWriteback()
      let skip = bytesWritten
      const rest: Buffer[] = []
      for (const b of pending) {
        if (skip >= b.length) {
          skip -= b.length
          continue
        }
        rest.push(skip > 0 ? b.subarray(skip) : b)
        skip = 0
      }
      pending = rest
    }
  }

  private startWriteback(): void {
    const addon = sysAddonWith<WritebackAddon>('syncFileRange')
    if (!addon || this.starting) return
    const from = this.started
    this.started = this.position
    // only a hint: the final fsync writes (and reports) whatever this did not
    this.starting = addon.syncFileRange(this.fh.fd, from, this.position - from).catch(() => undefined).finally(() => (this.starting = undefined))
  }
}

function safeReaddirSync(dir: string): string[] {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}


