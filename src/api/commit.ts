/**
 * `docker commit`, the part that does not depend on how containers are run: an active snapshot's
 * changes become one new layer on top of the container's image, in one streaming pass (tar →
 * diffID hash → optional compression → digest hash → content store), then a new config and
 * manifest, recorded with the image as parent.
 */
import type { Readable } from 'node:stream'
import { CairnError } from '../errors/index.js'
import type { Digest } from '../oci/digest.js'
import type { Compression } from '../oci/mediatype.js'
import { MediaTypes } from '../oci/mediatype.js'
import type { ContainerConfig, Descriptor } from '../oci/types.js'
import { familiarString, parseRepositoryTag } from '../oci/reference.js'
import { tarDirectory } from '../layer/diff.js'
import type { TarHeaderInit } from '../layer/tar.js'
import { snapshotLayer, type Snapshotter } from '../snapshot/index.js'
import { stageLayerTar } from '../image/layerblob.js'
import { buildManifest, layerDescriptor, manifestMediaType, serializeConfig, serializeManifest, type ManifestFormat } from '../image/manifest.js'
import { commitConfig, EMPTY_TAR_DIFF_ID } from '../image/commitconfig.js'
import type { ImageRecord, ImageStore, LayerInput } from '../image/store.js'
import { emit, type OperationOptions } from '../util/progress.js'
import { containerCommitSource, withContainerPaused } from './containers.js'

export interface CommitOptions extends OperationOptions {
  /** `REPOSITORY[:TAG]`; without it the image is dangling (`<none>`). */
  reference?: string
  /** `-m`: the history comment. */
  message?: string
  /** `-a`: the author. */
  author?: string
  /** `-c`: Dockerfile instructions applied to the new config. */
  changes?: string[]
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
  id: Digest
  /** The new layer's diffID; undefined when the change was empty. */
  diffId?: Digest
  /** Bytes the new layer adds, as Docker counts them. */
  size: number
  tag?: string
}

export async function commitSnapshot(store: ImageStore, src: CommitSource, opts: CommitOptions = {}): Promise<CommitResult> {
  const ref = opts.reference !== undefined ? parseRepositoryTag(opts.reference) : undefined
  const created = opts.timestamp !== undefined ? new Date(opts.timestamp * 1000) : new Date()
  if (Number.isNaN(created.getTime())) throw new CairnError('INVALID_ARGUMENT', `invalid timestamp: ${String(opts.timestamp)}`)
  if (opts.squash && src.mergedDir === undefined) throw new CairnError('INVALID_ARGUMENT', 'squash needs the container\'s merged filesystem')
  const parentConfig = await store.config(src.image)
  const parentManifest = await store.manifest(src.image)
  const format: ManifestFormat = opts.format ?? (src.image.manifestMediaType === MediaTypes.OciManifest ? 'oci' : 'docker')
  const compression = opts.compression ?? 'none'
  const common = { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.timestamp !== undefined ? { timestamp: opts.timestamp } : {}) }

  emit(opts, { id: '', status: 'Committing' })
  // the layer's size as Docker counts it, added up from the entries as they are written
  let size = 0
  const onEntry = (h: TarHeaderInit): void => {
    if (h.type === 'file') size += h.size ?? 0
    else if (h.type === 'symlink') size += Buffer.byteLength(h.linkname ?? '')
  }
  const tar: Readable = opts.squash
    ? tarDirectory(src.mergedDir as string, { ...common, onEntry })
    : await snapshotLayer(src.snapshotter, src.key, { ...common, onEntry })
  const layer = await stageLayerTar(store.content, tar, {
    compression,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.onProgress ? { onBytes: (n: number) => emit(opts, { id: '', status: 'Committing', current: n }) } : {}),
  })
  const empty = layer.diffId === EMPTY_TAR_DIFF_ID && !opts.squash
  if (empty) await store.content.discard(layer.staged)

  const config = commitConfig({
    parent: parentConfig,
    container: src.container,
    createdBy: src.createdBy,
    ...(opts.message !== undefined ? { message: opts.message } : {}),
    ...(opts.author !== undefined ? { author: opts.author } : {}),
    changes: opts.changes ?? [],
    created,
    ...(empty ? {} : { diffId: layer.diffId }),
    squash: opts.squash ?? false,
  })

  const layers: LayerInput[] = []
  if (!opts.squash) {
    for (const [i, d] of parentManifest.layers.entries()) {
      const diffId = parentConfig.rootfs.diff_ids[i]
      const stored = diffId ? store.layerByDigest(d.digest) : undefined
      if (!diffId || !stored) throw new CairnError('STORE_CORRUPT', `layer ${d.digest} of ${src.image.id} has no record in the store`)
      layers.push({ descriptor: sameFamily(d, format), diffId, size: stored.size, diffSize: stored.diffSize })
    }
  }
  if (!empty) {
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
    parent: src.image.id,
    ...(ref ? { tags: [ref] } : {}),
  })
  const out: CommitResult = { id: res.id, size: empty ? 0 : size }
  if (!empty) out.diffId = layer.diffId
  if (ref) out.tag = familiarString(ref)
  return out
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
  return (opts.pause ?? true) ? withContainerPaused(store, src.row.id, commit) : commit()
}
