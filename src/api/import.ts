/** `docker import`: a root filesystem tarball becomes a one-layer image. */
import { basename } from 'node:path'
import type { Readable } from 'node:stream'
import { CairnError } from '../errors/index.js'
import type { DiffId, ImageId } from '../oci/digest.js'
import type { Compression } from '../oci/mediatype.js'
import { hostPlatform, type ContainerConfig, type ImageConfig, type Platform } from '../oci/types.js'
import { familiarString, parseRepositoryTag } from '../oci/reference.js'
import { applyChanges } from '../image/changes.js'
import { stageLayerTar } from '../image/layerblob.js'
import { buildManifest, layerDescriptor, manifestMediaType, serializeConfig, serializeManifest, type ManifestFormat } from '../image/manifest.js'
import type { ImageStore } from '../image/store.js'
import { normalizeLayerStream } from '../image/normalize.js'
import { emit, type OperationOptions } from './events.js'
import { recordImageEvent } from './system-events.js'
import { byteCounter } from '../util/stream.js'
import { pipeline } from 'node:stream/promises'

export interface ImportOptions extends OperationOptions {
  /** `REPOSITORY[:TAG]` to tag the new image with. */
  reference?: string
  /** The history comment (default `Imported from <source>`). */
  message?: string
  /** Dockerfile instructions to apply to the image config (`-c`). */
  changes?: string[]
  /** Where the tarball came from, for the default comment and the progress events' ID: `-` for standard input. */
  sourceName?: string
  /** Bytes of the tarball, when known (a file): the progress events' total. */
  sourceSize?: number
  /**
   * How the layer blob is stored. Default none: like Docker's own store, Cairn keeps local layers
   * uncompressed (importing is then as fast as the disk) and compresses when a layer leaves for a
   * registry; gzip or zstd here store it compressed at once.
   */
  compression?: Compression
  /** Manifest media types: Docker schema2 (default) or OCI. */
  format?: ManifestFormat
  /** Seconds since the epoch: the image's creation time, and file mtimes are clamped to it (SOURCE_DATE_EPOCH). */
  timestamp?: number
  platform?: Platform
}

export interface ImportResult {
  id: ImageId
  /** The familiar tag given, if any. */
  tag?: string
  diffId: DiffId
  size: number
}

export async function importImage(store: ImageStore, source: Readable, opts: ImportOptions = {}): Promise<ImportResult> {
  const ref = opts.reference !== undefined ? parseRepositoryTag(opts.reference) : undefined
  // validate the changes before reading any input
  const containerConfig: ContainerConfig = applyChanges({}, opts.changes ?? [])
  const format = opts.format ?? 'docker'
  const compression = opts.compression ?? 'none'
  const created = opts.timestamp !== undefined ? new Date(opts.timestamp * 1000) : new Date()
  if (Number.isNaN(created.getTime())) throw new CairnError('INVALID_ARGUMENT', `invalid timestamp: ${String(opts.timestamp)}`)

  // progress: the tarball's bytes read, against its size when known
  const id = sourceLabel(opts.sourceName)
  const total = opts.sourceSize
  emit(opts, { id, status: 'Importing', current: 0, ...(total !== undefined ? { total } : {}) })
  let input = source
  if (opts.onProgress) {
    const counter = byteCounter((n) => emit(opts, { id, status: 'Importing', current: n, ...(total !== undefined ? { total } : {}) }))
    void pipeline(source, counter).catch(() => undefined) // an error reaches the counter, which the import reads
    input = counter
  }
  const norm = normalizeLayerStream(input, opts.timestamp !== undefined ? { clampMtime: opts.timestamp, ...(opts.signal ? { signal: opts.signal } : {}) } : (opts.signal ? { signal: opts.signal } : {}))
  const layerOpts: { compression: Compression; signal?: AbortSignal } = { compression }
  if (opts.signal) layerOpts.signal = opts.signal
  let layer
  try {
    layer = await stageLayerTar(store.content, norm.stream, layerOpts)
  } catch (err) {
    norm.stream.destroy()
    throw norm.error() ?? err
  }
  const size = norm.contentSize()

  const comment = opts.message !== undefined && opts.message !== '' ? opts.message : `Imported from ${sourceLabel(opts.sourceName)}`
  const platform = opts.platform ?? hostPlatform()
  const config: ImageConfig = {
    architecture: platform.architecture,
    ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
    os: platform.os,
    comment,
    config: containerConfig,
    created: created.toISOString(),
    history: [{ created: created.toISOString(), comment }],
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
  }
  const configStaged = await store.content.stageBytes(serializeConfig(config))
  const layerDesc = layerDescriptor(format, compression, layer.staged)
  const manifest = buildManifest(format, configStaged, [layerDesc])
  const manifestStaged = await store.content.stageBytes(serializeManifest(manifest))
  const res = store.addImage({
    manifest: manifestStaged,
    manifestMediaType: manifestMediaType(format),
    config: configStaged,
    configJson: config,
    layers: [{ descriptor: layerDesc, diffId: layer.diffId, size, diffSize: layer.diffSize, staged: layer.staged }],
    ...(ref ? { tags: [ref] } : {}),
  })
  emit(opts, { id, status: 'Imported' })
  const result: ImportResult = { id: res.id, diffId: layer.diffId, size }
  if (ref) result.tag = familiarString(ref)
  recordImageEvent(store, 'import', result.id, result.id, result.id)
  return result
}

function sourceLabel(name: string | undefined): string {
  if (name === undefined || name === '-') return '-'
  return /^[a-z]+:\/\//.test(name) ? name : basename(name)
}
