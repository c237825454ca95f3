/**
 * Opening the store's snapshotter, and unpacking images into it: each layer once per chain ID,
 * shared by every image and container above it.
 */
import { PassThrough } from 'node:stream'
import { byteCounter, pipeAll } from '../util/stream.js'
import { CairnError, hasCode } from '../errors/index.js'
import { type ChainId, chainIds, HashingStream } from '../oci/digest.js'
import { layerCompression } from '../oci/mediatype.js'
import { decompressor } from '../layer/compression.js'
import { applyLayer } from '../layer/apply.js'
import { randomName } from '../util/fs.js'
import type { ImageRecord, ImageStore } from '../image/store.js'
import { emit, type OperationOptions } from '../util/progress.js'
import { FsSnapshotter } from './snapshotter.js'
import { StorageDrivers, type Snapshotter, type StorageDriver } from './types.js'

export * from './types.js'
export { FsSnapshotter } from './snapshotter.js'

const SETTING = 'storage-driver'

function isStorageDriver(s: string): s is StorageDriver {
  return Object.hasOwn(StorageDrivers, s)
}

/**
 * The snapshotter for `driver`, or the one recorded in the store, or the best this machine
 * allows (overlay as root with overlayfs, else native). The choice is recorded on first use.
 */
export async function openSnapshotter(store: ImageStore, driver?: StorageDriver, opts: { overlaySupported: () => Promise<boolean> } = { overlaySupported: async () => false }): Promise<FsSnapshotter> {
  let chosen = driver ?? (store.setting(SETTING) as StorageDriver | undefined)
  if (chosen !== undefined && !isStorageDriver(chosen)) throw new CairnError('INVALID_ARGUMENT', `unknown storage driver ${JSON.stringify(chosen)} (overlay or native)`)
  if (chosen === undefined) chosen = (await opts.overlaySupported()) ? 'overlay' : 'native'
  if (chosen === 'overlay' && !(await opts.overlaySupported())) {
    throw new CairnError('NOT_SUPPORTED', 'the overlay storage driver needs root and a kernel with overlayfs; use --storage-driver native')
  }
  if (store.setting(SETTING) === undefined) store.setSetting(SETTING, chosen)
  const s = new FsSnapshotter(store.db, store.root, chosen)
  await s.init()
  return s
}

/**
 * Makes sure every layer of `image` is unpacked as a committed snapshot named by its chain ID,
 * verifying each layer's diffID as it is unpacked. Returns the top chain ID (the `parent` for a
 * container's writable snapshot), or undefined for an image without layers.
 */
export async function unpackImage(store: ImageStore, snapshotter: Snapshotter, image: ImageRecord, opts: OperationOptions = {}): Promise<ChainId | undefined> {
  const config = await store.config(image)
  const diffIds = config.rootfs.diff_ids
  const chains = chainIds(diffIds)
  for (const [i, chain] of chains.entries()) {
    const existing = await snapshotter.tryStat(chain)
    if (existing?.kind === 'committed') continue
    const diffId = diffIds[i]
    if (diffId === undefined) break
    const blob = store.layerBlob(diffId)
    if (!blob) throw new CairnError('BLOB_UNKNOWN', `layer ${diffId} of image ${image.id} is not in the store`)
    const key = `extract-${randomName()} ${chain}`
    const short = diffId.slice(7, 19)
    emit(opts, { id: short, status: 'Extracting', current: 0, total: blob.diffSize })
    await snapshotter.prepare(key, i > 0 ? chains[i - 1] : undefined, { labels: { 'cairn.unpack.pid': String(process.pid) } })
    try {
      const { dir, whiteouts } = await snapshotter.applyDir(key)
      const hash = new HashingStream()
      const compression = layerCompression(blob.mediaType)
      const count = byteCounter((done) => emit(opts, { id: short, status: 'Extracting', current: done, total: blob.diffSize }))
      const raw = await store.content.read(blob.digest)
      const tail = new PassThrough({ highWaterMark: 1 << 20 })
      const steps: unknown[] = compression === 'none' ? [raw, hash, count, tail] : [raw, decompressor(compression), hash, count, tail]
      const flowing = pipeAll(steps, opts.signal)
      const applying = applyLayer(tail, dir, { whiteouts, ...(opts.signal ? { signal: opts.signal } : {}) }).catch((err: unknown) => {
        tail.destroy()
        throw err
      })
      await Promise.all([flowing, applying])
      if (hash.diffId !== diffId) throw new CairnError('DIGEST_INVALID', `layer ${diffId} unpacked to content with diffID ${hash.digest}`)
      await snapshotter.commit(chain, key)
    } catch (err) {
      await snapshotter.remove(key).catch(() => undefined)
      // another process unpacked the same layer meanwhile: theirs is as good as ours
      if (hasCode(err, 'CONFLICT') && (await snapshotter.tryStat(chain))?.kind === 'committed') continue
      throw err
    }
    emit(opts, { id: short, status: 'Pull complete' })
  }
  return chains.at(-1)
}

/** Removes unpacked layers that no image needs any more (and no container sits on). */
export async function pruneSnapshots(store: ImageStore, snapshotter: Snapshotter): Promise<string[]> {
  const needed = new Set(store.layers().map((l) => l.chainId as string))
  const removed: string[] = []
  for (let round = 0; round < 200; round++) {
    let progress = false
    for (const s of await snapshotter.list()) {
      if (s.kind !== 'committed' || needed.has(s.name)) continue
      try {
        await snapshotter.remove(s.name)
        removed.push(s.name)
        progress = true
      } catch (err) {
        if (!hasCode(err, 'CONFLICT')) throw err
      }
    }
    if (!progress) break
  }
  return removed
}
export { snapshotChanges, snapshotLayer } from './diff.js'
