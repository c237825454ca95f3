/**
 * `docker push`: an image's layers, config and manifest to a registry, with Docker's statuses
 * (`Preparing`, `Waiting`, `Pushing`, `Pushed`, `Layer already exists`, `Mounted from …`) and its
 * closing line (`TAG: digest: sha256:… size: N`).
 *
 * Layers kept uncompressed in the store are compressed for the trip (gzip by default, or zstd),
 * deterministically, and the compressed blob is kept as another blob of the same layer, so a
 * second push sends the same bytes and the manifest digest does not change. Layers stored
 * compressed are pushed as they are. The pushed manifest has the image's own format (Docker
 * schema2 or OCI) and its digest is recorded as a repository digest of the image.
 */
import { pipeline } from 'node:stream/promises'
import { PassThrough, Readable, Transform } from 'node:stream'
import { byteCounter } from '../util/stream.js'
import { CairnError, hasCode } from '../errors/index.js'
import { type AnyDigest, type DiffId, type Digest, digestHex, digestOf } from '../oci/digest.js'
import { MediaTypes, layerCompression, layerMediaType, type Compression } from '../oci/mediatype.js'
import type { Descriptor, ImageConfig, ImageManifest } from '../oci/types.js'
import { formatReference, parseReference, repositoryName, type Reference } from '../oci/reference.js'
import { compressStream } from '../layer/compression.js'
import { serializeManifest } from '../image/manifest.js'
import type { ImageRecord, ImageStore, StoredLayer } from '../image/store.js'
import type { Ingest } from '../content/store.js'
import { loadRemoteConfig, type RemoteConfig } from '../remote/config.js'
import { Registry, type Repository, type UploadSession } from '../remote/client.js'
import type { Credentials } from '../remote/credentials.js'
import { limiter } from '../remote/limit.js'
import { RemoteKnowledge } from '../remote/sources.js'
import { uploadBlob } from '../remote/upload.js'
import { noteStreamed } from '../util/reclaim.js'
import { emit, type OperationOptions } from './events.js'
import { recordImageEvent } from './system-events.js'

/** What push, pull and login share: how to reach registries and as whom. */
export interface RemoteOptions extends OperationOptions {
  /** Cairn's registry settings (default: read from $CAIRN_CONFIG or /etc/cairn/config.json). */
  config?: RemoteConfig
  /** Credentials (default: Docker's config.json and credential helpers). */
  credentials?: Credentials
  /** Environment for proxies, DOCKER_CONFIG and helpers (default: process.env). */
  env?: NodeJS.ProcessEnv
}

export interface PushOptions extends RemoteOptions {
  /** Push every tag of the repository (`--all-tags`). */
  allTags?: boolean
  /** How uncompressed layers are compressed for the registry (default gzip). */
  compression?: Exclude<Compression, 'none'>
  /** Parallel layer uploads (default 5, or the config's max-concurrent-uploads). */
  concurrency?: number
  /** Bytes per upload chunk; 0 uploads each blob in one request (default: the config's upload-chunk-size). */
  chunkSize?: number
}

export interface PushedLayer {
  /** Short diffID, as Docker prints it. */
  id: string
  diffId: DiffId
  digest: Digest
  status: 'Pushed' | 'Layer already exists' | `Mounted from ${string}`
  /** Bytes sent for it by this push, and where a resumed upload started. */
  bytesSent: number
  resumedFrom: number
}

export interface PushedTag {
  tag: string
  digest: Digest
  /** Manifest bytes. */
  size: number
  layers: PushedLayer[]
}

export interface PushResult {
  /** `host/path` as Docker shows it in `The push refers to repository […]`. */
  repository: string
  tags: PushedTag[]
}

export async function pushImage(store: ImageStore, name: string, opts: PushOptions = {}): Promise<PushResult> {
  const ref = parseReference(name)
  if (ref.digest !== undefined) throw new CairnError('INVALID_REFERENCE', `cannot push a digest reference: ${name}`)
  if (opts.allTags && ref.tag !== undefined) throw new CairnError('INVALID_ARGUMENT', 'tag can\'t be used with --all-tags/-a')
  const repoName = repositoryName(ref)
  let tags: { tag: string; image: ImageRecord }[]
  if (opts.allTags) {
    tags = []
    for (const img of store.list()) {
      for (const t of img.tags) {
        if (t.startsWith(`${repoName}:`)) tags.push({ tag: t.slice(repoName.length + 1), image: img })
      }
    }
    tags.sort((a, b) => a.tag.localeCompare(b.tag))
    if (tags.length === 0) throw new CairnError('IMAGE_UNKNOWN', `An image does not exist locally with the tag: ${familiarRepo(ref)}`)
  } else {
    if (ref.tag === undefined) emit(opts, { id: '', status: 'Using default tag: latest' })
    const tag = ref.tag ?? 'latest'
    const id = store.lookupRef({ ...ref, tag })
    const image = id ? store.get(id) : undefined
    if (!image) throw new CairnError('IMAGE_UNKNOWN', `An image does not exist locally with the tag: ${familiarRepo(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ''}`)
    tags = [{ tag, image }]
  }
  const config = opts.config ?? loadRemoteConfig()
  const registry = new Registry(ref.domain, { config, ...(opts.credentials ? { credentials: opts.credentials } : {}), ...(opts.env ? { env: opts.env } : {}) })
  const pusher = new Pusher(store, registry.repository(ref.path), opts, config)
  try {
    emit(opts, { id: '', status: `The push refers to repository [${repoName}]` })
    const result: PushResult = { repository: repoName, tags: [] }
    for (const { tag, image } of tags) {
      const pushed = await pusher.pushTag(image, tag)
      store.setRepoDigest({ domain: ref.domain, path: ref.path, digest: pushed.digest }, image.id)
      emit(opts, { id: '', status: `${tag}: digest: ${pushed.digest} size: ${pushed.size}` })
      recordImageEvent(store, 'push', `${repoName}:${tag}`, repoName, image.id)
      result.tags.push(pushed)
    }
    return result
  } finally {
    registry.close()
  }
}

function familiarRepo(ref: Reference): string {
  return formatReference({ domain: ref.domain, path: ref.path }).replace(/^docker\.io\/(library\/)?/, '')
}

function short(d: AnyDigest): string {
  return digestHex(d).slice(0, 12)
}

interface BlobToPush {
  descriptor: Descriptor
  /** Present when the blob is in the local store (else the registry is known to have it). */
  local: boolean
  /** Another repository of the registry known to hold it (when not local). */
  knownIn?: string
}

/** An uncompressed layer that has no blob in the wanted compression yet. */
interface LayerToCompress {
  compress: { plain: StoredLayer; want: Exclude<Compression, 'none'>; mediaType: string }
}

class Pusher {
  private readonly knowledge: RemoteKnowledge
  private readonly registryName: string
  private readonly limit: ReturnType<typeof limiter>
  private readonly chunkSize: number
  /** Layers pushed earlier in this run (another tag of the same repository). */
  private readonly done = new Map<Digest, PushedLayer>()
  /** Compressed copies of pushed layers still being synced and recorded in the store. */
  private readonly keeping: Promise<void>[] = []

  constructor(private readonly store: ImageStore, private readonly repo: Repository, private readonly opts: PushOptions, config: RemoteConfig) {
    this.knowledge = new RemoteKnowledge(store.db)
    this.registryName = repo.registry.domain
    this.limit = limiter(opts.concurrency ?? config.maxConcurrentUploads)
    this.chunkSize = opts.chunkSize ?? config.uploadChunkSize
  }

  async pushTag(image: ImageRecord, tag: string): Promise<PushedTag> {
    const manifest = await this.store.manifest(image)
    const configBytes = await this.store.content.readBytes(image.configDigest)
    const cfg = JSON.parse(configBytes.toString('utf8')) as ImageConfig
    const diffIds = cfg.rootfs.diff_ids
    if (diffIds.length !== manifest.layers.length) throw new CairnError('STORE_CORRUPT', `image ${short(image.id)}: its config and manifest disagree on the layers`)
    const format = isOci(image, manifest) ? 'oci' : 'docker'
    const pairs = manifest.layers.map((desc, i) => {
      const diffId = diffIds[i]
      if (diffId === undefined) throw new CairnError('STORE_CORRUPT', `image ${short(image.id)}: its config and manifest disagree on the layers`)
      return { desc, diffId }
    })
    // Docker lists layers top first
    const order = [...pairs].reverse()
    const seen = new Set<DiffId>()
    for (const { diffId: d } of order) {
      if (seen.has(d)) continue
      seen.add(d)
      emit(this.opts, { id: short(d), status: 'Preparing' })
    }
    const pushing = new Map<DiffId, Promise<{ layer: PushedLayer; descriptor: Descriptor }>>()
    for (const { desc, diffId } of order) {
      if (pushing.has(diffId)) continue
      const task = this.limit(() => this.pushLayer(image, desc, diffId, format), () => emit(this.opts, { id: short(diffId), status: 'Waiting' }))
      task.catch(() => undefined)
      pushing.set(diffId, task)
    }
    // the compressed copies kept in the store are synced and recorded before the push ends
    const kept = async (): Promise<void> => {
      const keeping = this.keeping.splice(0)
      await Promise.allSettled(keeping)
      for (const k of keeping) await k
    }
    let pushed: PushedTag
    try {
      pushed = await this.sendTag(image, tag, manifest, configBytes, pairs, pushing)
    } catch (err) {
      await kept().catch(() => undefined)
      throw err
    }
    await kept()
    return pushed
  }

  private async sendTag(image: ImageRecord, tag: string, manifest: ImageManifest, configBytes: Buffer, pairs: { desc: Descriptor; diffId: DiffId }[], pushing: Map<DiffId, Promise<{ layer: PushedLayer; descriptor: Descriptor }>>): Promise<PushedTag> {
    const signal = this.opts.signal
    const results = new Map<DiffId, { layer: PushedLayer; descriptor: Descriptor }>()
    for (const [d, p] of pushing) results.set(d, await p)
    // the config, then the manifest that names them all
    await this.pushSmallBlob({ mediaType: manifest.config.mediaType, digest: image.configDigest, size: configBytes.length }, configBytes)
    const descriptors = pairs.map((p) => results.get(p.diffId)?.descriptor ?? p.desc)
    const unchanged = descriptors.every((d, i) => d.digest === manifest.layers[i]?.digest && d.mediaType === manifest.layers[i].mediaType)
    let bytes: Buffer
    if (unchanged) {
      bytes = await this.store.content.readBytes(image.manifestDigest)
    } else {
      const out: ImageManifest = { ...manifest, layers: descriptors }
      bytes = Buffer.from(serializeManifest(out))
    }
    const mediaType = manifest.mediaType ?? image.manifestMediaType
    const digest = digestOf(bytes)
    const reported = await this.repo.putManifest(tag, bytes, mediaType, signal)
    if (reported !== digest) throw new CairnError('DIGEST_INVALID', `the registry stored the manifest as ${reported}, its bytes hash to ${digest}`)
    return { tag, digest, size: bytes.length, layers: [...results.values()].map((r) => r.layer) }
  }

  private async pushLayer(image: ImageRecord, desc: Descriptor, diffId: DiffId, format: 'oci' | 'docker', localOnly = false): Promise<{ layer: PushedLayer; descriptor: Descriptor }> {
    const id = short(diffId)
    const signal = this.opts.signal
    const wanted = await this.blobFor(image, desc, diffId, format, localOnly)
    let blob: BlobToPush
    /** Bytes sent while compressing, when that upload completed. */
    let streamed: number | undefined
    if ('compress' in wanted) {
      const { plain, want, mediaType } = wanted.compress
      // as Docker does: the compressed bytes go to the registry as they are made (one streamed
      // PATCH), unless uploads are to be chunked; either way they are kept in the store
      const made: { digest: Digest; size: number; sent?: number; kept?: Promise<void> } = this.chunkSize <= 0 ? await this.compressAndUpload(image, plain, want, mediaType) : await this.compress(image, plain, want, mediaType)
      blob = { descriptor: { mediaType, digest: made.digest, size: made.size }, local: true }
      streamed = made.sent
      if (made.kept) this.keeping.push(made.kept)
    } else {
      blob = wanted
    }
    const d = blob.descriptor
    const earlier = this.done.get(d.digest)
    const record = (): void => this.knowledge.record(this.registryName, { repository: this.repo.name, digest: d.digest, mediaType: d.mediaType, size: d.size, diffId })
    const finish = (status: PushedLayer['status'], bytesSent = 0, resumedFrom = 0): { layer: PushedLayer; descriptor: Descriptor } => {
      record()
      emit(this.opts, { id, status })
      const layer: PushedLayer = { id, diffId, digest: d.digest, status, bytesSent, resumedFrom }
      this.done.set(d.digest, layer)
      return { layer, descriptor: d }
    }
    if (streamed !== undefined) return finish('Pushed', streamed)
    if (earlier) return finish('Layer already exists')
    // 1. is it there already?
    if ((await this.repo.blobSize(d.digest, { push: true, ...(signal ? { signal } : {}) })) !== undefined) return finish('Layer already exists')
    this.knowledge.forget(this.registryName, this.repo.name, d.digest)
    // 2. a cross-repository mount from a repository known to hold it
    let session: UploadSession | undefined
    const sources = this.knowledge.repositoriesWith(this.registryName, d.digest, this.repo.name)
    if (blob.knownIn && !sources.includes(blob.knownIn)) sources.unshift(blob.knownIn)
    for (const from of sources) {
      const r = await this.repo.startUpload({ mount: { digest: d.digest, from }, ...(signal ? { signal } : {}) })
      if (r.mounted) return finish(`Mounted from ${from}`)
      if (!session) session = { location: r.location, offset: r.offset }
      else await this.repo.cancelUpload({ location: r.location, offset: r.offset }, signal).catch(() => undefined)
    }
    if (!blob.local) {
      // the registry no longer has the blob this layer was known by: make one here and send it
      if (session) await this.repo.cancelUpload(session, signal).catch(() => undefined)
      this.knowledge.forget(this.registryName, blob.knownIn ?? this.repo.name, d.digest)
      return this.pushLayer(image, desc, diffId, format, true)
    }
    // 3. upload
    emit(this.opts, { id, status: 'Pushing', current: 0, total: d.size })
    const up = await uploadBlob(this.repo, this.knowledge, { digest: d.digest, size: d.size, path: this.store.content.path(d.digest) }, {
      chunkSize: this.chunkSize,
      ...(signal ? { signal } : {}),
      ...(session ? { session } : {}),
      onProgress: (current, total) => emit(this.opts, { id, status: 'Pushing', current, total }),
    })
    return finish('Pushed', up.bytesSent, up.resumedFrom)
  }

  /** The blob that carries the layer to the registry: as stored if compressed, else a compressed copy (to be made). */
  private async blobFor(image: ImageRecord, desc: Descriptor, diffId: DiffId, format: 'oci' | 'docker', localOnly: boolean): Promise<BlobToPush | LayerToCompress> {
    if (layerCompression(desc.mediaType) !== 'none' || desc.mediaType.includes('nondistributable') || desc.mediaType.includes('foreign')) {
      return { descriptor: desc, local: true }
    }
    const want = this.opts.compression ?? 'gzip'
    const mediaType = layerMediaType(want, format)
    const stored = this.store.layerBlobs(diffId).find((b) => layerCompression(b.mediaType) === want && this.store.content.ensureSync(b.digest))
    if (stored) return { descriptor: { mediaType, digest: stored.digest, size: stored.compressedSize }, local: true }
    // the registry may hold this layer already in that compression (pulled from or pushed to it)
    for (const rb of localOnly ? [] : this.knowledge.blobsForDiffId(this.registryName, diffId)) {
      if (layerCompression(rb.mediaType) !== want) continue
      return { descriptor: { mediaType, digest: rb.digest, size: rb.size }, local: false, knownIn: rb.repository }
    }
    const plain = this.store.layerByDigest(desc.digest)
    if (!plain) throw new CairnError('STORE_CORRUPT', `layer ${desc.digest} of image ${short(image.id)} has no record in the store`)
    return { compress: { plain, want, mediaType } }
  }

  /**
   * Compresses a layer into the store and, at the same time, into an upload (one PATCH with a
   * streamed body), then completes the upload with the digest the store computed. Compression
   * and transfer overlap instead of following each other. If the upload fails (a registry that
   * refuses streamed bodies, a broken connection) the compression still completes, and `sent`
   * is undefined: the caller then pushes the stored blob the usual way (which can resume).
   */
  private async compressAndUpload(image: ImageRecord, plain: StoredLayer, want: Exclude<Compression, 'none'>, mediaType: string): Promise<{ digest: Digest; size: number; sent?: number; kept?: Promise<void> }> {
    const signal = this.opts.signal
    const sig = signal ? { signal } : {}
    // the store's side first: once the upload has started, nothing may fail before it is fed;
    // the copy kept is read again only by a later push elsewhere: past the page cache
    const ingest = await this.store.content.ingest('sha256', { direct: true })
    const toRegistry = new PassThrough({ highWaterMark: 1 << 20 })
    let alive = true
    let waiting: (() => void) | undefined
    const release = (): void => {
      const w = waiting
      waiting = undefined
      w?.()
    }
    const stopUpload = (): void => {
      alive = false
      toRegistry.destroy()
      release()
    }
    // every compressed chunk goes to the store and, while the upload lives, to the registry
    const tee = new Transform({
      transform(chunk: Buffer, _enc, cb): void {
        if (!alive) return cb(null, chunk)
        if (toRegistry.write(chunk)) return cb(null, chunk)
        waiting = () => cb(null, chunk)
        toRegistry.once('drain', release)
      },
      flush(cb): void {
        if (alive) toRegistry.end()
        cb()
      },
    })
    // compression starts at once, while the upload is being opened (the registry's first answers,
    // and a token's, take round trips): the bytes it makes meanwhile wait in toRegistry, and past
    // its 1 MiB and the compressor's blocks in flight, the compressor waits for the upload
    const compressing = this.compress(image, plain, want, mediaType, { ingest, tee })
    compressing.catch(() => undefined)
    let session: UploadSession | undefined
    try {
      const r = await this.repo.startUpload(sig)
      if (!r.mounted) session = { location: r.location, offset: r.offset }
    } catch (err) {
      if (signal?.aborted || hasCode(err, 'ABORTED')) {
        stopUpload()
        await compressing.catch(() => undefined)
        throw err
      }
      // no upload now: compress, then push the usual way (which reports the error if it persists)
    }
    if (!session) {
      stopUpload()
      return compressing
    }
    let opened = false
    let sent = 0
    const uploaded: Promise<UploadSession | undefined> = this.repo.uploadChunk(session, {
      open: () => {
        // a stream cannot be sent twice (a redirected PATCH): that upload fails, the push goes on
        if (opened) throw new CairnError('UNKNOWN', 'a streamed upload cannot be repeated')
        opened = true
        return toRegistry
      },
    }, { ...sig, onBodyBytes: (n) => (sent = n) }).catch(() => {
      stopUpload()
      return undefined
    })
    const opening = session
    const failed = async (err: unknown): Promise<never> => {
      stopUpload()
      await this.repo.cancelUpload(opening, signal).catch(() => undefined)
      throw err
    }
    // the upload is finished with the digest as soon as the last byte is hashed, while the kept
    // copy is still being synced to disk and recorded (that sync took 40-80 ms for a 90 MB layer)
    let hashed: { digest: Digest; size: number }
    try {
      hashed = await Promise.race([ingest.hashed, compressing])
    } catch {
      // the compression's own error says more than the ingest's
      return compressing.then(() => failed(new CairnError('UNKNOWN', 'the compressed layer was not hashed')), failed)
    }
    const last = await uploaded
    if (signal?.aborted) {
      await this.repo.cancelUpload(last ?? session).catch(() => undefined)
      await compressing.catch(() => undefined)
      throw new CairnError('ABORTED', 'operation aborted')
    }
    let finished = false
    // alive is cleared by the upload's callbacks, which TypeScript's narrowing does not follow
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    if (last && alive) {
      try {
        await this.repo.finishUpload(last, hashed.digest, sig)
        finished = true
      } catch (err) {
        if (signal?.aborted || hasCode(err, 'ABORTED')) {
          await compressing.catch(() => undefined)
          throw err
        }
      }
    }
    if (!finished) {
      await this.repo.cancelUpload(last ?? session, signal).catch(() => undefined)
      return compressing
    }
    // the kept copy's digest is the one sent (both are the ingest's hash); its sync and record go
    // on while the config and the manifest are sent, and are waited for before the push ends
    const kept = compressing.then(() => undefined)
    kept.catch(() => undefined)
    return { digest: hashed.digest, size: hashed.size, sent, kept }
  }

  /**
   * Compresses a stored uncompressed layer into the store (into `ingest`, or a new one) and
   * records the compressed blob as another blob of that layer. With `tee` (a streamed upload),
   * the compressed bytes pass through it on their way and progress reads `Pushing`.
   */
  private async compress(image: ImageRecord, plain: StoredLayer, want: Exclude<Compression, 'none'>, mediaType: string, opts: { ingest?: Ingest; tee?: Transform } = {}): Promise<{ digest: Digest; size: number }> {
    const id = short(plain.diffId)
    const signal = this.opts.signal
    const ingest = opts.ingest ?? (await this.store.content.ingest())
    const status = opts.tee ? 'Pushing' : 'Preparing'
    let counted = 0
    const tap = byteCounter((n) => {
      // the layer's buffers (read, compressed) die at once: see util/reclaim.ts
      noteStreamed(n - counted)
      counted = n
      emit(this.opts, { id, status, current: n, total: plain.diffSize })
    })
    try {
      // gzip in blocks on every core (layer/pgzip.ts), zstd as the layer codec makes it
      const compressor = compressStream(want)
      const steps = opts.tee ? [tap, compressor, opts.tee] : [tap, compressor]
      await pipeline([await this.store.content.read(plain.digest), ...steps, ingest.stream], signal ? { signal } : {})
      const staged = await ingest.stage()
      this.store.addLayerBlob(image.id, { staged, diffId: plain.diffId, mediaType, size: plain.size, diffSize: plain.diffSize })
      return { digest: staged.digest, size: staged.size }
    } catch (err) {
      await ingest.abort()
      if (signal?.aborted) throw new CairnError('ABORTED', 'operation aborted', { cause: err })
      throw err
    }
  }

  /** A config (or other small blob): HEAD, else one POST and one PUT (both again on a temporary failure). */
  private async pushSmallBlob(d: Descriptor, bytes: Buffer): Promise<void> {
    const signal = this.opts.signal
    const sig = signal ? { signal } : {}
    if ((await this.repo.blobSize(d.digest, { push: true, ...sig })) === undefined) {
      await this.repo.registry.withRetry(`upload ${d.digest}`, signal, async () => {
        const r = await this.repo.startUpload({ ...sig, retry: false })
        if (!r.mounted) await this.repo.finishUpload(r, d.digest, { body: { length: bytes.length, open: () => Readable.from([bytes]) }, ...sig })
      })
    }
    this.knowledge.record(this.registryName, { repository: this.repo.name, digest: d.digest, mediaType: d.mediaType, size: d.size })
  }
}

function isOci(image: ImageRecord, manifest: ImageManifest): boolean {
  return (manifest.mediaType ?? image.manifestMediaType) === MediaTypes.OciManifest
}
