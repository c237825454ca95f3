/**
 * `docker load`: reads a Docker archive (manifest.json) or an OCI image layout archive
 * (index.json), compressed or not, verifies every blob against its digest and every layer
 * against the config's diffIDs, and records the images. Nothing is recorded unless all of
 * an image checks out.
 */
import { createReadStream } from 'node:fs'
import { lstat, mkdir, open, readFile, rm } from 'node:fs/promises'
import { posix } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CairnError, isErrno } from '../errors/index.js'
import { type DiffId, type Digest, digestHex, digestOf, type ImageId, isDigest, parseDigest } from '../oci/digest.js'
import { checkDiffIds, checkImageIndex, checkImageManifest } from '../oci/validate.js'
import { MediaTypes, isIndexMediaType, layerCompression, layerMediaType, type Compression } from '../oci/mediatype.js'
import { hostPlatform, type Descriptor, type DockerArchiveManifestEntry, type ImageConfig } from '../oci/types.js'
import { familiarString, parseReference, type Reference } from '../oci/reference.js'
import { readTar } from '../layer/tar.js'
import { decompressStream } from '../layer/compression.js'
import { entryComponents } from '../layer/path.js'
import { assertDiffId, examineLayer, type LayerFacts } from '../image/layercheck.js'
import { buildManifest, serializeManifest } from '../image/manifest.js'
import type { ImageStore, LayerInput } from '../image/store.js'
import type { StagedBlob } from '../content/store.js'
import { randomName } from '../util/fs.js'
import { emit, type OperationOptions } from './events.js'
import { recordImageEvent } from './system-events.js'

export interface LoadedImage {
  id: ImageId
  /** Familiar tags set by the load. */
  tags: string[]
  /** Tags that pointed at another image before (Docker: "renaming the old one … to empty string"). */
  retagged: { tag: string; previous: ImageId }[]
}

export interface LoadResult {
  images: LoadedImage[]
}

const MAX_JSON = 8 << 20

export async function loadImages(store: ImageStore, input: Readable, opts: OperationOptions = {}): Promise<LoadResult> {
  const work = `${store.root}/tmp/load-${randomName()}`
  await mkdir(work, { recursive: true, mode: 0o700 })
  try {
    const links = await extractArchive(input, work, opts)
    const archive = new ArchiveDir(work, links)
    if (await archive.exists('index.json') && await archive.exists('oci-layout')) {
      return await loadOci(store, archive, opts)
    }
    if (await archive.exists('manifest.json')) return await loadDocker(store, archive, opts)
    throw new CairnError('INVALID_ARCHIVE', 'invalid archive: it holds neither a manifest.json (docker save) nor an index.json with oci-layout (OCI image layout)')
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/** The extracted archive; symlinks (Docker writes them for repeated layers) are resolved inside it. */
class ArchiveDir {
  constructor(readonly root: string, private readonly links: Map<string, string>) {}

  resolve(name: string): string {
    let parts = entryComponents(name)
    for (let hops = 0; hops < 32; hops++) {
      const path = parts.join('/')
      const target = this.links.get(path)
      if (target === undefined) return `${this.root}/${path}`
      parts = entryComponents(target.startsWith('/') ? target : posix.join(posix.dirname(path), target))
    }
    throw new CairnError('INVALID_ARCHIVE', `invalid archive: too many symbolic links at ${name}`)
  }

  async exists(name: string): Promise<boolean> {
    return lstat(this.resolve(name)).then((s) => s.isFile(), () => false)
  }

  async json<T>(name: string): Promise<{ value: T; bytes: Buffer }> {
    const p = this.resolve(name)
    const st = await lstat(p).catch((err: unknown) => {
      if (isErrno(err, 'ENOENT')) throw new CairnError('INVALID_ARCHIVE', `invalid archive: ${name} is missing`)
      throw err
    })
    if (!st.isFile() || st.size > MAX_JSON) throw new CairnError('INVALID_ARCHIVE', `invalid archive: ${name} is not a JSON file of reasonable size`)
    const bytes = await readFile(p)
    try {
      return { value: JSON.parse(bytes.toString('utf8')) as T, bytes }
    } catch {
      throw new CairnError('INVALID_ARCHIVE', `invalid archive: ${name} is not valid JSON`)
    }
  }
}

/** Unpacks the archive's files; only regular files, directories and (recorded) symlinks are accepted. */
async function extractArchive(input: Readable, dir: string, opts: OperationOptions): Promise<Map<string, string>> {
  const links = new Map<string, string>()
  const sig = opts.signal ? { signal: opts.signal } : {}
  const made = new Set<string>([''])
  const mkdirp = async (rel: string): Promise<void> => {
    if (made.has(rel)) return
    await mkdir(`${dir}/${rel}`, { recursive: true })
    made.add(rel)
  }
  for await (const { header, body } of readTar(decompressStream(input, sig), sig)) {
    let parts: string[]
    try {
      parts = entryComponents(header.path)
    } catch (err) {
      throw new CairnError('INVALID_ARCHIVE', `invalid archive: ${(err as Error).message}`)
    }
    const rel = parts.join('/')
    if (header.type === 'directory') {
      if (rel !== '') await mkdirp(rel)
      continue
    }
    if (rel === '') continue
    if (header.type === 'symlink') {
      links.set(rel, header.linkname)
      continue
    }
    if (header.type !== 'file') {
      body.resume()
      continue
    }
    if (parts.some((_, i) => links.has(parts.slice(0, i + 1).join('/')))) {
      throw new CairnError('INVALID_ARCHIVE', `invalid archive: ${header.path} lies below a symbolic link`)
    }
    await mkdirp(parts.slice(0, -1).join('/'))
    const fh = await open(`${dir}/${rel}`, 'wx', 0o600).catch((err: unknown) => {
      if (isErrno(err, 'EEXIST')) throw new CairnError('INVALID_ARCHIVE', `invalid archive: ${header.path} appears twice`)
      throw err
    })
    // the write stream closes the handle when it finishes or fails
    await pipeline(body, fh.createWriteStream({ highWaterMark: 1 << 20 }), sig)
  }
  return links
}

interface LayerCache {
  facts: Map<string, LayerFacts>
  staged: Set<string>
}

/** Examines an archive file holding a layer and stages it (the file is moved, not copied). */
async function layerFromFile(store: ImageStore, path: string, cache: LayerCache, label: string, opts: OperationOptions): Promise<{ facts: LayerFacts; staged?: StagedBlob }> {
  let facts = cache.facts.get(path)
  if (!facts) {
    const st = await lstat(path).catch(() => undefined)
    if (!st?.isFile()) throw new CairnError('INVALID_ARCHIVE', `invalid archive: ${label} is missing`)
    const short = label
    emit(opts, { id: short, status: 'Loading layer', current: 0, total: st.size })
    const ex: { signal?: AbortSignal; onBytes?: (n: number) => void; label: string } = { label }
    if (opts.signal) ex.signal = opts.signal
    if (opts.onProgress) ex.onBytes = (n) => emit(opts, { id: short, status: 'Loading layer', current: n, total: st.size })
    facts = await examineLayer(createReadStream(path, { highWaterMark: 1 << 20 }), ex)
    cache.facts.set(path, facts)
  }
  if (cache.staged.has(path) || store.layerByDigest(facts.digest)) return { facts }
  cache.staged.add(path)
  // the file already lies inside the store's filesystem: make it durable and hand it over
  const fh = await open(path, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
  return { facts, staged: { digest: facts.digest, size: facts.compressedSize, tmpPath: path } }
}

async function loadDocker(store: ImageStore, archive: ArchiveDir, opts: OperationOptions): Promise<LoadResult> {
  const { value: entries } = await archive.json<(Unchecked<DockerArchiveManifestEntry> | null)[]>('manifest.json')
  if (!Array.isArray(entries)) throw new CairnError('INVALID_ARCHIVE', 'invalid archive: manifest.json is not a list')
  const cache: LayerCache = { facts: new Map(), staged: new Set() }
  const result: LoadResult = { images: [] }
  for (const entry of entries) {
    if (typeof entry?.Config !== 'string' || !isStringList(entry.Layers)) throw new CairnError('INVALID_ARCHIVE', 'invalid archive: a manifest.json entry lacks Config or Layers')
    const repoTags = entry.RepoTags ?? []
    if (!isStringList(repoTags)) throw new CairnError('INVALID_ARCHIVE', 'invalid archive: a manifest.json entry has RepoTags that are not a list of names')
    const { value: config, bytes: configBytes } = await archive.json<ImageConfig>(entry.Config)
    const diffIds = validateConfig(config, entry.Config)
    if (diffIds.length !== entry.Layers.length) {
      throw new CairnError('INVALID_ARCHIVE', `invalid archive: ${entry.Config} lists ${diffIds.length} layers, manifest.json ${entry.Layers.length}`)
    }
    const layers: LayerInput[] = []
    for (const [i, layerPath] of entry.Layers.entries()) {
      const { facts, staged } = await layerFromFile(store, archive.resolve(layerPath), cache, layerPath.split('/')[0]?.slice(0, 12) ?? layerPath, opts)
      assertDiffId(facts, diffIds[i], `layer ${layerPath}`)
      emit(opts, { id: layerPath.split('/')[0]?.slice(0, 12) ?? layerPath, status: 'Loading layer', current: facts.compressedSize, total: facts.compressedSize })
      // a layer already stored (under any compression) is reused: one copy per diffID
      const existing = store.layerBlob(facts.diffId)
      if (existing) {
        const descriptor: Descriptor = { mediaType: dockerLayerType(existing.mediaType), size: existing.compressedSize, digest: existing.digest }
        layers.push({ descriptor, diffId: facts.diffId, size: existing.size, diffSize: existing.diffSize })
        continue
      }
      const descriptor: Descriptor = { mediaType: layerMediaType(facts.compression, 'docker'), size: facts.compressedSize, digest: facts.digest }
      const input: LayerInput = { descriptor, diffId: facts.diffId, size: facts.size, diffSize: facts.diffSize }
      if (staged) input.staged = staged
      layers.push(input)
    }
    const configStaged = await store.content.stageBytes(configBytes)
    const manifest = buildManifest('docker', configStaged, layers.map((l) => l.descriptor))
    const manifestStaged = await store.content.stageBytes(serializeManifest(manifest))
    const tags = repoTags.map((t) => parseTag(t))
    const res = store.addImage({ manifest: manifestStaged, manifestMediaType: MediaTypes.DockerManifest, config: configStaged, configJson: config, layers, tags })
    result.images.push(loaded(res, tags))
    recordImageEvent(store, 'load', res.id, res.id, res.id)
  }
  return result
}

async function loadOci(store: ImageStore, archive: ArchiveDir, opts: OperationOptions): Promise<LoadResult> {
  const { value: layout } = await archive.json<Unchecked<{ imageLayoutVersion: string }> | null>('oci-layout')
  if (typeof layout?.imageLayoutVersion !== 'string') throw new CairnError('INVALID_ARCHIVE', 'invalid archive: oci-layout lacks imageLayoutVersion')
  const index = checkImageIndex((await archive.json<unknown>('index.json')).value)
  if (!index.ok) throw new CairnError('INVALID_ARCHIVE', 'invalid archive: index.json has no manifests')
  const cache: LayerCache = { facts: new Map(), staged: new Set() }
  const result: LoadResult = { images: [] }
  const blobPath = (d: Digest): string => {
    const { algorithm, hex } = parseDigest(d)
    return `blobs/${algorithm}/${hex}`
  }
  const readBlobJson = async <T>(desc: Descriptor): Promise<{ value: T; bytes: Buffer }> => {
    if (!isDigest(desc.digest)) throw new CairnError('INVALID_ARCHIVE', `invalid archive: bad digest ${String(desc.digest)}`)
    const got = await archive.json<T>(blobPath(desc.digest))
    const actual = digestOf(got.bytes, parseDigest(desc.digest).algorithm)
    if (actual !== desc.digest) throw new CairnError('DIGEST_INVALID', `invalid archive: blob ${desc.digest} has digest ${actual}`)
    if (typeof desc.size === 'number' && desc.size !== got.bytes.length) throw new CairnError('SIZE_INVALID', `invalid archive: blob ${desc.digest} has ${got.bytes.length} bytes, expected ${desc.size}`)
    return got
  }
  // walk the index, following nested indexes to the manifest for this platform
  const pick = async (desc: Descriptor, depth: number): Promise<Descriptor | undefined> => {
    if (!isIndexMediaType(desc.mediaType)) return desc
    if (depth > 4) throw new CairnError('INVALID_ARCHIVE', 'invalid archive: indexes nested too deeply')
    const sub = checkImageIndex((await readBlobJson<unknown>(desc)).value)
    if (!sub.ok) throw new CairnError('INVALID_ARCHIVE', `invalid archive: index ${desc.digest} has no manifests`)
    const host = hostPlatform()
    const candidates = sub.value.manifests.filter((m) => !m.platform || (m.platform.os === host.os && m.platform.architecture === host.architecture))
    for (const c of candidates) {
      const found = await pick(c, depth + 1)
      if (found) return found
    }
    return undefined
  }
  for (const top of index.value.manifests) {
    const desc = await pick(top, 0)
    if (!desc) throw new CairnError('INVALID_ARCHIVE', `invalid archive: no manifest for ${hostPlatform().os}/${hostPlatform().architecture} in ${top.digest}`)
    const { value: unchecked, bytes: manifestBytes } = await readBlobJson<unknown>(desc)
    const checked = checkImageManifest(unchecked)
    if (!checked.ok) throw new CairnError('INVALID_ARCHIVE', `invalid archive: ${desc.digest} is not an image manifest`)
    const manifest = checked.value
    const { value: config, bytes: configBytes } = await readBlobJson<ImageConfig>(manifest.config)
    const diffIds = validateConfig(config, manifest.config.digest)
    if (diffIds.length !== manifest.layers.length) throw new CairnError('INVALID_ARCHIVE', `invalid archive: the config lists ${diffIds.length} layers, the manifest ${manifest.layers.length}`)
    const layers: LayerInput[] = []
    for (const [i, l] of manifest.layers.entries()) {
      if (!isDigest(l.digest)) throw new CairnError('INVALID_ARCHIVE', `invalid archive: ${desc.digest} lists a layer with a bad digest`)
      const short = digestHex(l.digest).slice(0, 12)
      const { facts, staged } = await layerFromFile(store, archive.resolve(blobPath(l.digest)), cache, short, opts)
      if (facts.digest !== l.digest) throw new CairnError('DIGEST_INVALID', `invalid archive: layer ${l.digest} has digest ${facts.digest}`)
      if (facts.compressedSize !== l.size) throw new CairnError('SIZE_INVALID', `invalid archive: layer ${l.digest} has ${facts.compressedSize} bytes, the manifest says ${l.size}`)
      assertDiffId(facts, diffIds[i], `layer ${short}`)
      const input: LayerInput = { descriptor: l, diffId: facts.diffId, size: facts.size, diffSize: facts.diffSize }
      if (staged) input.staged = staged
      layers.push(input)
    }
    const configStaged = await store.content.stageBytes(configBytes)
    const manifestStaged = await store.content.stageBytes(manifestBytes)
    const tags = ociTags(top)
    // desc is from the archive's index, whose descriptors are checked for their shape only: its
    // mediaType may be missing whatever its type says
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    const mediaType = manifest.mediaType ?? desc.mediaType ?? MediaTypes.OciManifest
    const res = store.addImage({ manifest: manifestStaged, manifestMediaType: mediaType, config: configStaged, configJson: config, layers, tags })
    result.images.push(loaded(res, tags))
  }
  return result
}

/** The Docker schema2 media type for a stored layer's media type. */
function dockerLayerType(mediaType: string): string {
  return layerMediaType(layerCompression(mediaType), 'docker')
}

/** Image names in an OCI index: containerd's full name, else a ref.name that is a whole reference. */
function ociTags(desc: Descriptor): Reference[] {
  const a = desc.annotations ?? {}
  const full = a['io.containerd.image.name']
  if (typeof full === 'string' && full !== '') return [parseTag(full)]
  const refName = a['org.opencontainers.image.ref.name']
  if (typeof refName === 'string' && /[/:]/.test(refName)) {
    try {
      return [parseTag(refName)]
    } catch {
      return []
    }
  }
  return []
}

function parseTag(name: string): Reference {
  const ref = parseReference(name)
  if (ref.digest !== undefined && ref.tag === undefined) throw new CairnError('INVALID_ARCHIVE', `invalid archive: ${name} is not a tag`)
  const out: Reference = { domain: ref.domain, path: ref.path, tag: ref.tag ?? 'latest' }
  return out
}

// JSON from an archive is untrusted: shapes are checked before use
/** A JSON object meant to have T's fields, as it may be: any of them missing or of another type. */
type Unchecked<T> = { [K in keyof T]?: unknown }

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string')
}

function validateConfig(config: unknown, name: string): DiffId[] {
  const ids = checkDiffIds(config)
  if (!ids.ok) throw new CairnError('INVALID_ARCHIVE', `invalid archive: ${name} is not an image config (rootfs.diff_ids missing or invalid)`)
  return ids.value
}

function loaded(res: { id: ImageId; retagged: { name: string; previous: ImageId }[] }, tags: Reference[]): LoadedImage {
  return {
    id: res.id,
    tags: tags.map((t) => familiarString(t)),
    retagged: res.retagged.map((r) => ({ tag: familiarString(parseReference(r.name)), previous: r.previous })),
  }
}

export type { Compression }
