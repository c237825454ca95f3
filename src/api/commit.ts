/**
 * `docker commit`, the part that does not depend on how containers are run: an active snapshot's
 * changes become one new layer on top of the container's image, in one streaming pass (tar →
 * diffID hash → optional compression → digest hash → content store), then a new config and
 * manifest, recorded with the image as parent.
 */
import type { Readable } from 'node:stream'
import { CairnError } from '../errors/index.js'
import type { DiffId, ImageId } from '../oci/digest.js'
import type { Compression } from '../oci/mediatype.js'
import { MediaTypes } from '../oci/mediatype.js'
import { hostPlatform, type ContainerConfig, type Descriptor, type ImageConfig } from '../oci/types.js'
import { familiarString, parseRepositoryTag, type Reference } from '../oci/reference.js'
import { tarDirectory } from '../layer/diff.js'
import type { TarHeaderInit } from '../layer/tar.js'
import { snapshotLayer, type Snapshotter } from '../snapshot/index.js'
import { stageLayerTar, type StagedLayer } from '../image/layerblob.js'
import { buildManifest, layerDescriptor, manifestMediaType, serializeConfig, serializeManifest, type ManifestFormat } from '../image/manifest.js'
import { commitConfig, EMPTY_TAR_DIFF_ID } from '../image/commitconfig.js'
import type { ImageRecord, ImageStore, LayerInput } from '../image/store.js'
import { emit, type OperationOptions } from '../util/progress.js'
import { containerCommitSource, withContainerPaused } from './containers.js'
import { recordEvent } from '../events/journal.js'
import { containerAttributes } from '../container/engine.js'

export interface CommitOptions extends OperationOptions {
  /** `REPOSITORY[:TAG]`; without it the image is dangling (`<none>`). */
  reference?: string
  /** `-m`: the history comment. */
  message?: string
  /** `-a`: the author. */
  author?: string
  /** `-c`: Dockerfile instructions applied to the new config. */
  changes?: string[]
  /**
   * A config to commit instead of the container's (the Engine API's commit body): `changes`
   * apply to it, then the container's settings fill what it leaves unset, as Docker merges them.
   */
  config?: ContainerConfig
  /** `--squash`: one layer holding the whole merged tree. */
  squash?: boolean
  /** How the new layer is stored (default none: compressed at push). */
  compression?: Compression
  /** Seconds since the epoch: creation time, and mtimes clamped to it (SOURCE_DATE_EPOCH). */
  timestamp?: number
  /** Manifest family; default: the parent image's. */
  format?: ManifestFormat
}

/** What a container contributes to a commit. */
export interface CommitSource {
  image: ImageRecord
  snapshotter: Snapshotter
  /** The container's active snapshot. */
  key: string
  /** The container's effective config (image defaults with its run options). */
  container: ContainerConfig
  /** The container's command line, recorded as `created_by`. */
  createdBy: string
  /** For `squash`: the container's merged tree, mounted. */
  mergedDir?: string
}

export interface CommitResult {
  id: ImageId
  /** The new layer's diffID; undefined when the change was empty. */
  diffId?: DiffId
  /** Bytes the new layer adds, as Docker counts them. */
  size: number
  tag?: string
}

export async function commitSnapshot(store: ImageStore, src: CommitSource, opts: CommitOptions = {}): Promise<CommitResult> {
  const ref = opts.reference !== undefined ? parseRepositoryTag(opts.reference) : undefined
  const created = opts.timestamp !== undefined ? new Date(opts.timestamp * 1000) : new Date()
  if (Number.isNaN(created.getTime())) throw new CairnError('INVALID_ARGUMENT', `invalid timestamp: ${String(opts.timestamp)}`)
  if (opts.squash && src.mergedDir === undefined) throw new CairnError('INVALID_ARGUMENT', 'squash needs the container\'s merged filesystem')
  const common = { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.timestamp !== undefined ? { timestamp: opts.timestamp } : {}) }

  emit(opts, { id: '', status: 'Committing' })
  return commitImage(store, {
    parent: src.image,
    layer: (onEntry) => opts.squash
      ? Promise.resolve(tarDirectory(src.mergedDir as string, { ...common, onEntry }))
      : snapshotLayer(src.snapshotter, src.key, { ...common, onEntry }),
    squash: opts.squash ?? false,
    config: (parent, diffId) => commitConfig({
      parent,
      container: src.container,
      ...(opts.config ? { config: opts.config } : {}),
      createdBy: src.createdBy,
      ...(opts.message !== undefined ? { message: opts.message } : {}),
      ...(opts.author !== undefined ? { author: opts.author } : {}),
      changes: opts.changes ?? [],
      created,
      ...(diffId !== undefined ? { diffId } : {}),
      squash: opts.squash ?? false,
    }),
    ...(opts.compression !== undefined ? { compression: opts.compression } : {}),
    ...(opts.format !== undefined ? { format: opts.format } : {}),
    ...(ref ? { reference: ref } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.onProgress ? { onBytes: (n: number) => emit(opts, { id: '', status: 'Committing', current: n }) } : {}),
  })
}

/** What `commitImage` makes a new image of. */
export interface CommitImageInput {
  /** The image below the new one; undefined for an image from scratch. */
  parent?: ImageRecord
  /**
   * The new layer's uncompressed tar (`onEntry` must see each entry as it is written, so that
   * its size is known); undefined for a change of the config alone (an `empty_layer` step).
   */
  layer?: (onEntry: (h: TarHeaderInit) => void) => Promise<Readable>
  /**
   * An empty layer (nothing changed) stays a layer (as BuildKit keeps a step's empty layer);
   * by default it is dropped and the config's step says `empty_layer`.
   */
  keepEmptyLayer?: boolean
  /** One layer holding everything: the parent's layers are not kept. */
  squash?: boolean
  /** The new config, from the parent's (undefined from scratch) and the new layer's diffID (undefined: no layer). */
  config: (parent: ImageConfig, diffId: DiffId | undefined) => ImageConfig
  /** How the new layer is stored (default none: compressed at push). */
  compression?: Compression
  /** The layer's blob will not be read back soon: written past the page cache (see ContentStore.ingest). */
  direct?: boolean
  /** Manifest family; default: the parent image's (docker from scratch). */
  format?: ManifestFormat
  reference?: Reference
  /** Called in the transaction that records the image (a build's cache row, written with it). */
  alsoRecord?: (id: ImageId) => void
  signal?: AbortSignal
  onBytes?: (n: number) => void
}

/** The config an image from scratch starts from. */
export function scratchConfig(): ImageConfig {
  const p = hostPlatform()
  return { architecture: p.architecture, ...(p.variant !== undefined ? { variant: p.variant } : {}), os: p.os, rootfs: { type: 'layers', diff_ids: [] } }
}

/**
 * The one way a new image is made on top of another: its layer streamed into the content
 * store (tar → diffID hash → optional compression → digest hash), then its config and manifest,
 * recorded in one transaction with the parent image as its parent. Used by `commit` and `build`.
 */
export async function commitImage(store: ImageStore, input: CommitImageInput): Promise<CommitResult> {
  const parentConfig = input.parent ? await store.config(input.parent) : scratchConfig()
  const parentManifest = input.parent ? await store.manifest(input.parent) : undefined
  const format: ManifestFormat = input.format ?? (input.parent?.manifestMediaType === MediaTypes.OciManifest ? 'oci' : 'docker')
  const compression = input.compression ?? 'none'

  // the layer's size as Docker counts it, added up from the entries as they are written
  let size = 0
  const onEntry = (h: TarHeaderInit): void => {
    if (h.type === 'file') size += h.size ?? 0
    else if (h.type === 'symlink') size += Buffer.byteLength(h.linkname ?? '')
  }
  let layer: StagedLayer | undefined
  if (input.layer) {
    layer = await stageLayerTar(store.content, await input.layer(onEntry), {
      compression,
      direct: input.direct === true,
      ...(input.signal ? { signal: input.signal } : {}),
      ...(input.onBytes ? { onBytes: input.onBytes } : {}),
    })
    if (layer.diffId === EMPTY_TAR_DIFF_ID && !input.squash && !input.keepEmptyLayer) {
      await store.content.discard(layer.staged)
      layer = undefined
    }
  }
  try {
    const config = input.config(parentConfig, layer?.diffId)
    const layers: LayerInput[] = []
    if (!input.squash && input.parent && parentManifest) {
      for (const [i, d] of parentManifest.layers.entries()) {
        const diffId = parentConfig.rootfs.diff_ids[i]
        const stored = diffId ? store.layerByDigest(d.digest) : undefined
        if (!diffId || !stored) throw new CairnError('STORE_CORRUPT', `layer ${d.digest} of ${input.parent.id} has no record in the store`)
        layers.push({ descriptor: sameFamily(d, format), diffId, size: stored.size, diffSize: stored.diffSize })
      }
    }
    if (layer) {
      layers.push({ descriptor: layerDescriptor(format, compression, layer.staged), diffId: layer.diffId, size, diffSize: layer.diffSize, staged: layer.staged })
    }
    const configStaged = await store.content.stageBytes(serializeConfig(config))
    const manifestStaged = await store.content.stageBytes(serializeManifest(buildManifest(format, configStaged, layers.map((l) => l.descriptor))))
    const res = store.addImage({
      manifest: manifestStaged,
      manifestMediaType: manifestMediaType(format),
      config: configStaged,
      configJson: config,
      layers,
      ...(input.parent ? { parent: input.parent.id } : {}),
      ...(input.reference ? { tags: [input.reference] } : {}),
      ...(input.alsoRecord ? { alsoRecord: input.alsoRecord } : {}),
    })
    const out: CommitResult = { id: res.id, size: layer ? size : 0 }
    if (layer) out.diffId = layer.diffId
    if (input.reference) out.tag = familiarString(input.reference)
    return out
  } catch (err) {
    if (layer) await store.content.discard(layer.staged).catch(() => undefined)
    throw err
  }
}

/** A parent layer's descriptor in the new manifest's media-type family (same blob). */
function sameFamily(d: Descriptor, format: ManifestFormat): Descriptor {
  const toDocker: Record<string, string> = { [MediaTypes.OciLayer]: MediaTypes.DockerLayer, [MediaTypes.OciLayerGzip]: MediaTypes.DockerLayerGzip }
  const toOci: Record<string, string> = { [MediaTypes.DockerLayer]: MediaTypes.OciLayer, [MediaTypes.DockerLayerGzip]: MediaTypes.OciLayerGzip }
  const map = format === 'docker' ? toDocker : toOci
  return { mediaType: map[d.mediaType] ?? d.mediaType, size: d.size, digest: d.digest }
}

export interface CommitContainerOptions extends CommitOptions {
  /** Freeze the container while its layer is read (default true), as `docker commit -p`. */
  pause?: boolean
}

/**
 * `docker commit CONTAINER [REPOSITORY[:TAG]]`: the container's changes become a new image on
 * top of its image. A running container is frozen (cgroup freezer, through the runtime) while
 * its layer is read unless `pause` is false; a stopped container commits as it is.
 */
export async function commitContainer(store: ImageStore, nameOrId: string, opts: CommitContainerOptions = {}): Promise<CommitResult> {
  // validate what can be validated before touching the container
  if (opts.reference !== undefined) parseRepositoryTag(opts.reference)
  const src = await containerCommitSource(store, nameOrId)
  const commit = async (): Promise<CommitResult> => {
    if (!opts.squash) return commitSnapshot(store, src, opts)
    return src.withMergedDir((dir) => commitSnapshot(store, { ...src, mergedDir: dir }, opts))
  }
  const result = await ((opts.pause ?? true) ? withContainerPaused(store, src.row.id, commit) : commit())
  recordEvent(store.root, 'container', 'commit', src.row.id, containerAttributes(src.spec, { comment: opts.message ?? '', imageID: result.id, imageRef: opts.reference ?? '' }))
  return result
}
