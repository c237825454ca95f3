/**
 * `docker save`: images to a tar archive, in Docker's format (manifest.json, `<id>.json`,
 * `<layer>/layer.tar`) or as an OCI image layout (oci-layout, index.json, blobs/), which also
 * carries a manifest.json so that `docker load` reads it as well.
 */
import type { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CairnError } from '../errors/index.js'
import { type Digest, digestHex, digestOf, type ImageId } from '../oci/digest.js'
import { MediaTypes, layerCompression } from '../oci/mediatype.js'
import type { DockerArchiveManifestEntry, ImageManifest } from '../oci/types.js'
import { familiarName, familiarString, formatReference, parseReference, type Reference } from '../oci/reference.js'
import { writeTar, type TarEntryInput } from '../layer/tar.js'
import { compressStream, decompressor, type Compression } from '../layer/compression.js'
import { serializeManifest, toOciManifest } from '../image/manifest.js'
import type { ImageRecord, ImageStore } from '../image/store.js'
import { emit, type OperationOptions } from './events.js'
import { recordImageEvent } from './system-events.js'

export const ArchiveFormats = { docker: 'docker', oci: 'oci' } as const
export type ArchiveFormat = (typeof ArchiveFormats)[keyof typeof ArchiveFormats]

export interface SaveOptions extends OperationOptions {
  format?: ArchiveFormat
  /**
   * The whole archive compressed (default none): gzip on every core (layer/pgzip.ts) or zstd, as
   * `docker save | gzip` would make it; `docker load` and `cairn load` read either.
   */
  compression?: Compression
}

interface Selected {
  image: ImageRecord
  /** Normalised tag references to record for it. */
  tags: Reference[]
}

/** Resolves `docker save` arguments: a repository without a tag means all its tags. */
function selectImages(store: ImageStore, names: readonly string[]): Selected[] {
  if (names.length === 0) throw new CairnError('INVALID_ARGUMENT', 'save needs at least one image')
  const out = new Map<ImageId, Selected>()
  const add = (image: ImageRecord, tag?: Reference): void => {
    const sel = out.get(image.id) ?? { image, tags: [] }
    if (tag && !sel.tags.some((t) => formatReference(t) === formatReference(tag))) sel.tags.push(tag)
    out.set(image.id, sel)
  }
  for (const name of names) {
    const wholeRepo = repositoryTags(store, name)
    if (wholeRepo.length > 0) {
      for (const t of wholeRepo) add(t.image, t.tag)
      continue
    }
    const image = store.resolve(name)
    let ref: Reference | undefined
    try {
      ref = parseReference(name)
    } catch {
      ref = undefined
    }
    // named by a tag (not by ID, digest or a manifest digest): that tag goes into the archive
    if (ref === undefined || store.lookupRef(ref) !== image.id) {
      add(image)
      continue
    }
    if (ref.digest === undefined) {
      add(image, ref)
    } else {
      add(image)
    }
  }
  return [...out.values()]
}

/** For a bare repository name (no tag, no digest): every tag of it, as Docker saves them. */
function repositoryTags(store: ImageStore, name: string): { image: ImageRecord; tag: Reference }[] {
  let ref: Reference
  try {
    ref = parseReference(name)
  } catch {
    return []
  }
  if (ref.tag !== undefined || ref.digest !== undefined) return []
  const repo = `${ref.domain}/${ref.path}:`
  const out: { image: ImageRecord; tag: Reference }[] = []
  for (const img of store.list()) {
    for (const t of img.tags) if (t.startsWith(repo)) out.push({ image: img, tag: parseReference(t) })
  }
  return out
}

export async function saveImages(store: ImageStore, names: readonly string[], out: Writable, opts: SaveOptions = {}): Promise<void> {
  const selected = selectImages(store, names)
  const entries = (opts.format ?? 'docker') === 'oci' ? ociEntries(store, selected, opts) : dockerEntries(store, selected, opts)
  const tar = writeTar(entries, opts.signal ? { signal: opts.signal } : {})
  const sig = opts.signal ? { signal: opts.signal } : {}
  const compression = opts.compression ?? 'none'
  if (compression === 'none') await pipeline(tar, out, sig)
  else await pipeline(tar, compressStream(compression), out, sig)
  for (const s of selected) recordImageEvent(store, 'save', s.image.id, s.image.id, s.image.id)
}

const enc = (o: unknown, indent?: number): Buffer => Buffer.from(JSON.stringify(o, null, indent))

function file(path: string, body: Buffer, mtime: number): TarEntryInput {
  return { header: { path, type: 'file', mode: 0o644, size: body.length, mtime }, body }
}

function dir(path: string, mtime: number): TarEntryInput {
  return { header: { path, type: 'directory', mode: 0o755, mtime } }
}

async function* dockerEntries(store: ImageStore, selected: Selected[], opts: SaveOptions): AsyncGenerator<TarEntryInput> {
  const manifest: DockerArchiveManifestEntry[] = []
  const repositories: Record<string, Record<string, string>> = {}
  const written = new Set<string>()
  const mtime = Math.floor(Math.max(...selected.map((s) => s.image.created.getTime())) / 1000)
  for (const { image, tags } of selected) {
    const m = await store.manifest(image)
    const cfgBytes = await store.content.readBytes(image.configDigest)
    const cfgName = `${digestHex(image.id)}.json`
    if (!written.has(cfgName)) {
      written.add(cfgName)
      yield file(cfgName, cfgBytes, mtime)
    }
    const layers: string[] = []
    let parentId = ''
    const diffIds = (JSON.parse(cfgBytes.toString('utf8')) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids
    for (const [i, desc] of m.layers.entries()) {
      // the legacy v1 layer ID: a hash of the chain, stable for a given stack
      const v1 = digestHex(digestOf(`${parentId} ${diffIds[i] ?? desc.digest}`))
      const path = `${v1}/layer.tar`
      layers.push(path)
      if (!written.has(path)) {
        written.add(path)
        const info = store.layerByDigest(desc.digest)
        if (!info) throw new CairnError('STORE_CORRUPT', `layer ${desc.digest} of ${familiarOrId(image)} has no record in the store`)
        yield dir(`${v1}/`, mtime)
        yield file(`${v1}/VERSION`, Buffer.from('1.0'), mtime)
        yield file(`${v1}/json`, enc(parentId ? { id: v1, parent: parentId } : { id: v1 }), mtime)
        const short = digestHex(info.diffId).slice(0, 12)
        emit(opts, { id: short, status: 'Saving layer', current: 0, total: info.diffSize })
        const body = counted(await plainLayer(store, desc.digest, desc.mediaType), (done) =>
          emit(opts, { id: short, status: 'Saving layer', current: done, total: info.diffSize }))
        yield { header: { path, type: 'file', mode: 0o644, size: info.diffSize, mtime }, body }
        emit(opts, { id: short, status: 'Saved layer' })
      }
      parentId = v1
    }
    const repoTags = tags.map((t) => familiarString(t))
    manifest.push({ Config: cfgName, RepoTags: repoTags.length ? repoTags : null, Layers: layers })
    for (const t of tags) {
      const repo = familiarName(t)
      repositories[repo] = { ...(repositories[repo] ?? {}), [t.tag ?? 'latest']: parentId }
    }
  }
  yield file('manifest.json', enc(manifest), mtime)
  if (Object.keys(repositories).length > 0) yield file('repositories', enc(repositories), mtime)
}

async function* ociEntries(store: ImageStore, selected: Selected[], opts: SaveOptions): AsyncGenerator<TarEntryInput> {
  const mtime = Math.floor(Math.max(...selected.map((s) => s.image.created.getTime())) / 1000)
  const written = new Set<string>()
  const index: { schemaVersion: 2; mediaType: string; manifests: unknown[] } = { schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: [] }
  const dockerManifest: DockerArchiveManifestEntry[] = []
  yield file('oci-layout', enc({ imageLayoutVersion: '1.0.0' }), mtime)
  yield dir('blobs/', mtime)
  yield dir('blobs/sha256/', mtime)
  const blob = (d: Digest): string => `blobs/sha256/${digestHex(d)}`
  for (const { image, tags } of selected) {
    const stored = await store.manifest(image)
    let manifestBytes: Buffer
    let manifest: ImageManifest
    if (stored.mediaType === MediaTypes.DockerManifest || image.manifestMediaType === MediaTypes.DockerManifest) {
      manifest = toOciManifest(stored)
      manifestBytes = Buffer.from(serializeManifest(manifest))
    } else {
      manifest = stored
      manifestBytes = await store.content.readBytes(image.manifestDigest)
    }
    const manifestDigest = digestOf(manifestBytes)
    for (const desc of [manifest.config, ...manifest.layers]) {
      const p = blob(desc.digest)
      if (written.has(p)) continue
      written.add(p)
      const short = digestHex(desc.digest).slice(0, 12)
      const isLayer = desc !== manifest.config
      if (isLayer) emit(opts, { id: short, status: 'Saving layer', current: 0, total: desc.size })
      yield { header: { path: p, type: 'file', mode: 0o644, size: desc.size, mtime }, body: await store.content.read(desc.digest) }
      if (isLayer) emit(opts, { id: short, status: 'Saved layer' })
    }
    const mp = blob(manifestDigest)
    if (!written.has(mp)) {
      written.add(mp)
      yield file(mp, manifestBytes, mtime)
    }
    const descriptor = { mediaType: MediaTypes.OciManifest, digest: manifestDigest, size: manifestBytes.length }
    if (tags.length === 0) index.manifests.push(descriptor)
    for (const t of tags) {
      index.manifests.push({ ...descriptor, annotations: { 'io.containerd.image.name': formatReference(t), 'org.opencontainers.image.ref.name': t.tag ?? 'latest' } })
    }
    const repoTags = tags.map((t) => familiarString(t))
    dockerManifest.push({ Config: blob(manifest.config.digest), RepoTags: repoTags.length ? repoTags : null, Layers: manifest.layers.map((l) => blob(l.digest)) })
  }
  yield file('index.json', enc(index), mtime)
  yield file('manifest.json', enc(dockerManifest), mtime)
}

/** Passes chunks through, reporting the running byte count. */
async function* counted(src: AsyncIterable<Buffer>, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  let n = 0
  for await (const chunk of src) {
    n += chunk.length
    onBytes(n)
    yield chunk
  }
}

/** A stored layer as an uncompressed tar stream. */
async function plainLayer(store: ImageStore, digest: Digest, mediaType: string): Promise<Readable> {
  const raw = await store.content.read(digest)
  const c = layerCompression(mediaType)
  if (c === 'none') return raw
  const plain = decompressor(c)
  // errors on either side end the stream the caller reads
  pipeline(raw, plain).catch((err: unknown) => plain.destroy(err instanceof Error ? err : new Error(String(err))))
  return plain
}

function familiarOrId(img: ImageRecord): string {
  const t = img.tags[0]
  return t ? familiarString(parseReference(t)) : digestHex(img.id).slice(0, 12)
}
