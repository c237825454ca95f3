/**
 * The snapshotter interface: how a stack of read-only layers and one writable layer on top
 * become a directory tree. Vocabulary as containerd's: a `key` names an active (writable) or
 * view snapshot; a `name` names a committed one, which may be the `parent` of others.
 * Committed layer snapshots are named by the chain ID of the layer stack they hold.
 *
 * `prepare` and `view` return a *description* of mounts; performing them is the job of
 * src/mount (a pure description can be tested without root).
 */

/** One mount, as an OCI runtime spec or `mount(8)` takes it. */
export interface Mount {
  /** `overlay`, or `bind` for a plain directory. */
  type: string
  source: string
  options: string[]
  /**
   * Folder to run `mount` from. Overlay's lowerdir list uses short paths relative to it so
   * that deep images stay under the kernel's page-size limit for mount options.
   */
  cwd?: string
}

export const SnapshotKinds = { active: 'active', view: 'view', committed: 'committed' } as const
export type SnapshotKind = (typeof SnapshotKinds)[keyof typeof SnapshotKinds]

export interface SnapshotInfo {
  /** The key (active, view) or name (committed). */
  name: string
  parent?: string
  kind: SnapshotKind
  created: Date
  labels: Record<string, string>
}

export interface Usage {
  /** Bytes this snapshot adds over its parent (for native: its whole copy). */
  size: number
  inodes: number
}

export const StorageDrivers = { overlay: 'overlay', native: 'native' } as const
export type StorageDriver = (typeof StorageDrivers)[keyof typeof StorageDrivers]

export interface Snapshotter {
  readonly driver: StorageDriver
  /**
   * A writable snapshot on top of the committed `parent` (or empty). `volatile` (overlay): it is
   * always mounted without syncs (overlay's `volatile`, Linux 5.10 and later; ignored before), so
   * that unmounting it does not flush the whole file system under it. For a tree whose writes
   * need not survive a crash: what is kept of it is written elsewhere, or it is made again.
   */
  prepare(key: string, parent?: string, opts?: { labels?: Record<string, string>; volatile?: boolean }): Promise<Mount[]>
  /** A read-only snapshot of the committed `parent`. */
  view(key: string, parent?: string, opts?: { labels?: Record<string, string> }): Promise<Mount[]>
  /** The mounts of an existing active or view snapshot. */
  mounts(key: string): Promise<Mount[]>
  /**
   * Turns the active snapshot `key` into the committed snapshot `name`; `key` is gone afterwards.
   * `parent` (overlay only) re-parents it onto an ancestor of its parent, leaving out the layers
   * between (a container's init layer: what it changed is kept, on the image alone); its labels
   * are then only the given ones.
   */
  commit(name: string, key: string, opts?: { labels?: Record<string, string>; parent?: string | null }): Promise<void>
  /** Removes a snapshot; a committed one that is the parent of another is refused. */
  remove(key: string): Promise<void>
  stat(key: string): Promise<SnapshotInfo>
  /** undefined when there is no such snapshot. */
  tryStat(key: string): Promise<SnapshotInfo | undefined>
  /** Every snapshot, oldest first; with `prefix`, those whose key starts with it. */
  list(opts?: { prefix?: string }): Promise<SnapshotInfo[]>
  usage(key: string): Promise<Usage>
  /**
   * The folder that holds only what an active snapshot changed (overlay: its upperdir, with
   * overlay-style whiteouts), or undefined when the driver keeps no such folder (native).
   */
  changesDir(key: string): Promise<string | undefined>
  /**
   * The folders below a snapshot, top first: for overlay its parents' own layers; for native
   * the parent's full copy (one folder). What `diff` compares a container against.
   */
  lowerDirs(key: string): Promise<string[]>
  /** The folder holding an active snapshot's whole tree when the driver keeps one (native), else undefined. */
  fullDir(key: string): Promise<string | undefined>
  /**
   * The folder into which a layer is unpacked for a snapshot being prepared to become a
   * committed layer (overlay: the upperdir, unpacked with overlay whiteouts, no mount needed;
   * native: the full copy, unpacked with OCI whiteouts applied).
   */
  applyDir(key: string): Promise<{ dir: string; whiteouts: 'oci' | 'overlay' }>
}
