/**
 * `docker pull`: a manifest (an index resolved to one platform), its config and its layers from
 * a registry into the store, with Docker's statuses (`Pulling fs layer`, `Waiting`,
 * `Downloading`, `Verifying Checksum`, `Download complete`, `Extracting`, `Pull complete`,
 * `Already exists`) and closing lines (`Digest: …`, `Status: …`).
 *
 * Layers whose chain (or diffID) is already stored are not fetched. The others are downloaded in
 * parallel, kept as fetched (compressed), and verified byte for byte while they arrive: digest
 * and size of the blob, and the diffID the config promises (decompressed and parsed as a tar in
 * the same pass). Interrupted downloads resume with Range. The image is recorded in one
 * transaction once everything checks out; nothing is recorded otherwise.
 */
import { CairnError } from '../errors/index.js'
import { chainIds, type DiffId, type Digest, digestHex, type ImageId } from '../oci/digest.js'
import { checkDiffIds, checkImageIndex, checkImageManifest } from '../oci/validate.js'
import { MediaTypes, isIndexMediaType, isManifestMediaType, layerCompression, layerMediaType } from '../oci/mediatype.js'
import type { Descriptor, ImageConfig, Platform } from '../oci/types.js'
import { familiarString, formatReference, parseReference, type Reference } from '../oci/reference.js'
import { serializeManifest } from '../image/manifest.js'
import type { ImageStore, LayerInput } from '../image/store.js'
import { loadRemoteConfig } from '../remote/config.js'
import { Registry, type Repository } from '../remote/client.js'
import { downloadLayer, sweepDownloads, type Downloaded } from '../remote/download.js'
import { limiter } from '../remote/limit.js'
import { defaultPlatform, formatPlatform, parsePlatform, selectManifest } from '../remote/platform.js'
import { RemoteKnowledge } from '../remote/sources.js'
import { emit } from './events.js'
import type { RemoteOptions } from './push.js'
import { recordImageEvent } from './system-events.js'

export interface PullOptions extends RemoteOptions {
  /** `os/arch[/variant]` (or a Platform) to pick from an index; default this machine's. */
  platform?: string | Platform
  /** Every tag of the repository (`-a`). */
  allTags?: boolean
  /** Parallel layer downloads (default 3, or the config's max-concurrent-downloads). */
  concurrency?: number
}

export interface PulledLayer {
  /** Short digest of the blob, as Docker prints it. */
  id: string
  digest: Digest
  diffId: DiffId
  status: 'Already exists' | 'Pull complete'
  /** Bytes fetched over the network, and where a resumed download started. */
  fetched: number
  resumedFrom: number
}

export interface PullResult {
  /** The full reference pulled: `docker.io/library/busybox:latest`, `host:5000/a/b@sha256:…`. */
  reference: string
  /** As Docker shows it in `Status:` lines: `busybox:latest`. */
  familiar: string
  /** The digest the reference resolved to (the index's, for a multi-platform image). */
  digest: Digest
  /** The image ID (config digest). */
  id: ImageId
  status: 'downloaded' | 'up-to-date'
  layers: PulledLayer[]
}

/** Pulls one reference, or with `allTags` every tag of a repository (one result per tag). */
export async function pullImage(store: ImageStore, name: string, opts: PullOptions = {}): Promise<PullResult[]> {
  const ref = parseReference(name)
  if (opts.allTags && (ref.tag !== undefined || ref.digest !== undefined)) {
    throw new CairnError('INVALID_ARGUMENT', 'tag can\'t be used with --all-tags/-a')
  }
  const config = opts.config ?? loadRemoteConfig()
  const registry = new Registry(ref.domain, { config, ...(opts.credentials ? { credentials: opts.credentials } : {}), ...(opts.env ? { env: opts.env } : {}) })
  const platform = typeof opts.platform === 'string' ? parsePlatform(opts.platform) : opts.platform ?? defaultPlatform()
  const limit = limiter(opts.concurrency ?? config.maxConcurrentDownloads)
  // what abandoned pulls left behind (partials kept for a week, to be resumed)
  await sweepDownloads(store.root).catch(() => undefined)
  try {
    const repo = registry.repository(ref.path)
    if (opts.allTags) {
      const tags = (await repo.tags(opts.signal)).sort()
      if (tags.length === 0) throw new CairnError('MANIFEST_UNKNOWN', `${familiarString(ref)}: the repository has no tags`)
      const out: PullResult[] = []
      for (const tag of tags) out.push(pulled(store, await pullOne(store, repo, { ...ref, tag }, platform, limit, opts)))
      return out
    }
    let target = ref
    if (ref.tag === undefined && ref.digest === undefined) {
      emit(opts, { id: '', status: 'Using default tag: latest' })
      target = { ...ref, tag: 'latest' }
    }
    return [pulled(store, await pullOne(store, repo, target, platform, limit, opts))]
  } finally {
    registry.close()
  }
}

/** Records a pull's event (Docker's: the reference as the actor, its repository as `name`). */
function pulled(store: ImageStore, r: PullResult): PullResult {
  const at = r.familiar.indexOf('@')
  const colon = r.familiar.lastIndexOf(':')
  const name = at >= 0 ? r.familiar.slice(0, at) : colon > r.familiar.lastIndexOf('/') ? r.familiar.slice(0, colon) : r.familiar
  recordImageEvent(store, 'pull', r.familiar, name, r.id)
  return r
}

async function pullOne(store: ImageStore, repo: Repository, ref: Reference, platform: Platform, limit: ReturnType<typeof limiter>, opts: PullOptions): Promise<PullResult> {
  const signal = opts.signal
  const knowledge = new RemoteKnowledge(store.db)
  const domain = repo.registry.domain
  const byDigest = ref.digest !== undefined
  const wanted = ref.digest ?? ref.tag ?? 'latest'
  // the manifest (through an index if need be); as Docker, "Pulling from" once the registry answered
  const top = await repo.manifest(wanted, signal)
  emit(opts, { id: wanted, status: `Pulling from ${ref.path}` })
  let manifestBytes = top.bytes
  let manifestMediaType = top.mediaType
  if (isIndexMediaType(top.mediaType)) {
    const index = checkImageIndex(parseJson(top.bytes, `index ${top.digest}`))
    if (!index.ok) {
      const { at, message } = index.problem
      throw new CairnError('MANIFEST_INVALID', at === 'manifests' || at === '' ? `index ${top.digest} has no manifests`
        : at.endsWith('.digest') ? `index ${top.digest} names an invalid digest` : `index ${top.digest} is invalid: ${message}`)
    }
    const chosen = selectManifest(index.value, platform)
    if (!chosen) throw new CairnError('MANIFEST_UNKNOWN', `no matching manifest for ${formatPlatform(platform)} in the manifest list entries`)
    const m = await repo.manifest(chosen.digest, signal)
    if (isIndexMediaType(m.mediaType)) throw new CairnError('NOT_SUPPORTED', `nested index ${chosen.digest} is not supported`)
    manifestBytes = m.bytes
    manifestMediaType = m.mediaType
  }
  if (!isManifestMediaType(manifestMediaType)) {
    throw new CairnError('NOT_SUPPORTED', `${formatReference(ref)}: unsupported manifest media type ${manifestMediaType || '(none)'}`)
  }
  const checked = checkImageManifest(parseJson(manifestBytes, `manifest of ${formatReference(ref)}`))
  if (!checked.ok) {
    throw new CairnError('MANIFEST_INVALID', checked.problem.at.startsWith('layers[')
      ? `the manifest of ${formatReference(ref)} lists an invalid layer`
      : `the manifest of ${formatReference(ref)} is not a schema 2 image manifest`)
  }
  const manifest = checked.value

  // the config: small, fetched whole and verified
  const configBytes = await repo.blobBytes(manifest.config.digest, 8 << 20, signal)
  const cfg = parseJson(configBytes, `config ${manifest.config.digest}`)
  const checkedIds = checkDiffIds(cfg)
  if (!checkedIds.ok) throw new CairnError('MANIFEST_INVALID', `config ${manifest.config.digest} has no valid rootfs.diff_ids`)
  const diffIds = checkedIds.value
  if (diffIds.length !== manifest.layers.length) {
    throw new CairnError('MANIFEST_INVALID', `the config lists ${diffIds.length} layers, the manifest ${manifest.layers.length}`)
  }
  const chains = chainIds(diffIds)
  const format = manifestMediaType === MediaTypes.OciManifest ? 'oci' : 'docker'

  // which layers are here already; the others are fetched, in parallel
  const plans = manifest.layers.map((desc, i) => {
    const diffId = diffIds[i]
    const chain = chains[i]
    if (diffId === undefined || chain === undefined) throw new CairnError('MANIFEST_INVALID', `layer ${i} has no diffID`)
    const id = digestHex(desc.digest).slice(0, 12)
    const exact = store.layerByDigest(desc.digest)
    const local = exact && exact.diffId === diffId && store.content.ensureSync(exact.digest)
      ? exact
      : store.hasChain(chain) || store.layerBlob(diffId) ? store.layerBlob(diffId) : undefined
    return { desc, diffId, id, local }
  })
  const controller = new AbortController()
  const onAbort = (): void => controller.abort(signal?.reason)
  signal?.addEventListener('abort', onAbort, { once: true })
  const downloads = new Map<Digest, Promise<Downloaded>>()
  for (const p of plans) {
    if (p.local) emit(opts, { id: p.id, status: 'Already exists' })
    else if (!downloads.has(p.desc.digest)) emit(opts, { id: p.id, status: 'Pulling fs layer' })
  }
  for (const p of plans) {
    if (p.local || downloads.has(p.desc.digest)) continue
    const task = limit(async () => {
      emit(opts, { id: p.id, status: 'Downloading', current: 0, total: p.desc.size })
      const d = await downloadLayer(repo, store.root, p.desc, p.diffId, {
        signal: controller.signal,
        label: `layer ${p.id}`,
        onProgress: (current, total) => emit(opts, { id: p.id, status: 'Downloading', current, total }),
        onVerifying: () => emit(opts, { id: p.id, status: 'Verifying Checksum' }),
      })
      emit(opts, { id: p.id, status: 'Download complete' })
      return d
    }, () => emit(opts, { id: p.id, status: 'Waiting' }))
    task.catch(() => controller.abort())
    downloads.set(p.desc.digest, task)
  }

  // registration in layer order, as each download (and every layer below it) is done
  const layers: LayerInput[] = []
  const pulled: PulledLayer[] = []
  const announced = new Set<Digest>()
  try {
    for (const p of plans) {
      if (p.local) {
        const l = p.local
        const descriptor: Descriptor = l.digest === p.desc.digest
          ? p.desc
          : { mediaType: layerMediaType(layerCompression(l.mediaType), format), size: l.compressedSize, digest: l.digest }
        layers.push({ descriptor, diffId: p.diffId, size: l.size, diffSize: l.diffSize })
        pulled.push({ id: p.id, digest: p.desc.digest, diffId: p.diffId, status: 'Already exists', fetched: 0, resumedFrom: 0 })
        continue
      }
      const d = await (downloads.get(p.desc.digest) as Promise<Downloaded>)
      const first = !announced.has(p.desc.digest)
      announced.add(p.desc.digest)
      if (first) emit(opts, { id: p.id, status: 'Extracting', current: d.facts.diffSize, total: d.facts.diffSize })
      const input: LayerInput = { descriptor: p.desc, diffId: p.diffId, size: d.facts.size, diffSize: d.facts.diffSize }
      if (first) input.staged = d.staged
      layers.push(input)
      pulled.push({ id: p.id, digest: p.desc.digest, diffId: p.diffId, status: 'Pull complete', fetched: first ? d.fetched : 0, resumedFrom: first ? d.resumedFrom : 0 })
      if (first) emit(opts, { id: p.id, status: 'Pull complete' })
    }
  } catch (err) {
    controller.abort()
    await Promise.allSettled(downloads.values())
    if (signal?.aborted) throw new CairnError('ABORTED', 'operation aborted', { cause: err })
    throw err
  } finally {
    signal?.removeEventListener('abort', onAbort)
  }

  // the manifest kept locally names the blobs the store holds (the registry's, unless a layer
  // was already here in another form); the registry's digest is kept as a repository digest
  const localBytes = layers.every((l, i) => l.descriptor.digest === manifest.layers[i]?.digest)
    ? manifestBytes
    : Buffer.from(serializeManifest({ ...manifest, layers: layers.map((l) => l.descriptor) }))
  const tagRef: Reference | undefined = byDigest ? undefined : { domain: ref.domain, path: ref.path, tag: ref.tag ?? 'latest' }
  const digestRef: Reference = { domain: ref.domain, path: ref.path, digest: top.digest }
  const before = tagRef ? store.lookupRef(tagRef) : store.lookupRef(digestRef)
  const configStaged = await store.content.stageBytes(configBytes, { expected: manifest.config.digest })
  const manifestStaged = await store.content.stageBytes(localBytes)
  const res = store.addImage({
    manifest: manifestStaged,
    manifestMediaType: manifestMediaType,
    config: configStaged,
    configJson: cfg as ImageConfig, // its rootfs.diff_ids checked above
    layers,
    ...(tagRef ? { tags: [tagRef] } : {}),
    repoDigests: [digestRef],
  })
  for (const p of plans) {
    knowledge.record(domain, { repository: repo.name, digest: p.desc.digest, mediaType: p.desc.mediaType, size: p.desc.size, diffId: p.diffId })
  }
  knowledge.record(domain, { repository: repo.name, digest: manifest.config.digest, mediaType: manifest.config.mediaType, size: configBytes.length })

  const shown = familiarString(tagRef ?? digestRef)
  const upToDate = before === res.id && downloads.size === 0
  emit(opts, { id: '', status: `Digest: ${top.digest}` })
  emit(opts, { id: '', status: upToDate ? `Status: Image is up to date for ${shown}` : `Status: Downloaded newer image for ${shown}` })
  return {
    reference: formatReference(tagRef ?? digestRef),
    familiar: shown,
    digest: top.digest,
    id: res.id,
    status: upToDate ? 'up-to-date' : 'downloaded',
    layers: pulled,
  }
}

// A registry's JSON is untrusted: parsed as unknown, it is checked (src/oci/validate.ts) before
// it is used as the type it claims to be.
function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown
  } catch {
    throw new CairnError('MANIFEST_INVALID', `${what} is not valid JSON`)
  }
}
