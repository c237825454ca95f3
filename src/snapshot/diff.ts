/**
 * What an active snapshot changed, as a list (`docker diff`) and as a layer tar (`commit`).
 * overlay: read from the upper directory alone, so the cost follows the size of the change.
 * native: the snapshot's full copy is compared with its parent's, so the cost follows the size
 * of the image (a walk of both trees, lstat only; file contents are read only for what changed).
 */
import type { Readable } from 'node:stream'
import { CairnError } from '../errors/index.js'
import { compareTrees, overlayChanges, type Change } from '../layer/changes.js'
import { tarDirectory } from '../layer/diff.js'
import type { TarHeaderInit } from '../layer/tar.js'
import type { Snapshotter } from './types.js'

export async function snapshotChanges(snapshotter: Snapshotter, key: string, opts: { signal?: AbortSignal } = {}): Promise<Change[]> {
  const upper = await snapshotter.changesDir(key)
  if (upper !== undefined) return overlayChanges(upper, await snapshotter.lowerDirs(key), opts)
  const full = await snapshotter.fullDir(key)
  if (full === undefined) throw new CairnError('INVALID_ARGUMENT', `snapshot ${key} is not active`)
  return compareTrees((await snapshotter.lowerDirs(key))[0], full, opts)
}

/** The changes of an active snapshot as an (uncompressed) layer tar with OCI whiteouts. */
export async function snapshotLayer(snapshotter: Snapshotter, key: string, opts: { signal?: AbortSignal; timestamp?: number; onEntry?: (h: TarHeaderInit) => void } = {}): Promise<Readable> {
  const common = { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.timestamp !== undefined ? { timestamp: opts.timestamp } : {}), ...(opts.onEntry ? { onEntry: opts.onEntry } : {}) }
  const upper = await snapshotter.changesDir(key)
  if (upper !== undefined) return tarDirectory(upper, { ...common, whiteouts: 'overlay-upper' })
  const full = await snapshotter.fullDir(key)
  if (full === undefined) throw new CairnError('INVALID_ARGUMENT', `snapshot ${key} is not active`)
  const changes = await snapshotChanges(snapshotter, key, opts)
  return tarDirectory(full, {
    ...common,
    only: new Set(changes.filter((c) => c.kind !== 'D').map((c) => c.path)),
    deletions: changes.filter((c) => c.kind === 'D').map((c) => c.path),
  })
}
