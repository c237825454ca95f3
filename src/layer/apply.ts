/**
 * Unpacks a layer tar onto a directory that may already hold the layers below:
 * every entry type, ownership, modes, mtimes, xattrs, and OCI whiteouts (or
 * their overlayfs form). Nothing is ever written outside the target directory:
 * names are cleaned lexically (`..` escapes refused), parents are resolved
 * inside the target as a chroot would (`path.ts`), a final component is never
 * followed (existing entries are removed, files opened `O_EXCL|O_NOFOLLOW`), and
 * hard-link targets are resolved the same way.
 *
 * Metadata syscalls (lstat, mkdir, open, chown, chmod, utimes, writes of one
 * chunk) are synchronous: each takes microseconds, the event loop still turns
 * between chunks of the archive, and routing thousands of them through the
 * libuv thread pool one after another made unpacking ~5× slower (measured).
 */
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeSync,
  type Stats,
} from 'node:fs'
import { copyFile, lstat, opendir, realpath } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { CairnError, isErrno, throwIfAborted } from '../errors/index.js'
import { assertInside, entryComponents, resolveInRoot } from './path.js'
import { mkfifo, mknod, setXattrs } from './sys.js'
import { readTar, type TarHeader } from './tar.js'
import { tarHeader, type TarHeaderInit } from './tar-header.js'
import {
  OVERLAY_OPAQUE_XATTR,
  WHITEOUT_META_PREFIX,
  WHITEOUT_OPAQUE,
  WHITEOUT_PREFIX,
  type WhiteoutMode,
} from './whiteout.js'

export interface ApplyWarning {
  /** DEVICE_SKIPPED: no privilege to create a device node; XATTR_SKIPPED: the kernel or filesystem refused an xattr. */
  code: 'DEVICE_SKIPPED' | 'XATTR_SKIPPED'
  /** The entry name in the layer. */
  path: string
  message: string
}

export interface ApplyOptions {
  signal?: AbortSignal
  /**
   * `oci` (default): whiteout entries delete from the lower content already in
   * the target. `overlay`: they become overlayfs whiteouts (0/0 char devices,
   * `trusted.overlay.opaque=y`), for unpacking each layer into its own lowerdir.
   */
  whiteouts?: WhiteoutMode
  /** Apply the entries' uid/gid (default: when running as root). */
  sameOwner?: boolean
  /** Non-fatal problems: device nodes without CAP_MKNOD, xattrs refused with EPERM/ENOTSUP. */
  onWarning?: (warning: ApplyWarning) => void
}

export interface ApplyResult {
  /** Bytes of regular-file content in the layer (as Docker counts a layer's size). */
  size: number
}

/** Pending xattrs are written in batches of this many files. */
const XATTR_BATCH = 1000

interface DirMeta {
  mode: number
  mtime: number
}

function seconds(h: TarHeader): number {
  return h.mtime + h.mtimeNsec / 1e9
}

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p, { throwIfNoEntry: false }) ?? null
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return null
    throw err
  }
}

function writeAll(fd: number, chunk: Uint8Array): void {
  let off = 0
  while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off)
}

function isUnder(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`)
}

class Applier {
  size = 0
  /** Host paths this layer wrote (entries and the parents it had to create). */
  private readonly written = new Set<string>()
  /** Directories holding something this layer wrote. */
  private readonly holdsWritten = new Set<string>()
  /** Directories this layer has an entry for that already existed below. */
  private readonly mergedDirs = new Set<string>()
  /** Directory modes and mtimes, applied once all children are written. */
  private readonly dirMeta = new Map<string, DirMeta>()
  private readonly pendingXattrs = new Map<string, { entry: string; xattrs: Map<string, Buffer> }>()
  private readonly privileged = process.getuid?.() === 0

  /**
   * @param fresh the root was empty when the layer began: nothing can be at a path this layer has
   * not written, and an entry's target is not looked at first (a `COPY`'s new snapshot, a pulled
   * layer's own folder). Creation still refuses what exists (O_EXCL, EEXIST).
   */
  constructor(private readonly root: string, private readonly opts: ApplyOptions, private readonly fresh = false) {}

  private get sameOwner(): boolean {
    return this.opts.sameOwner ?? this.privileged
  }

  private markWritten(p: string): void {
    this.written.add(p)
    let dir = p
    while (dir !== this.root) {
      dir = dir.slice(0, dir.lastIndexOf('/')) || '/'
      if (this.holdsWritten.has(dir)) break
      this.holdsWritten.add(dir)
      if (dir === '/' || dir.length < this.root.length) break
    }
  }

  private warn(code: ApplyWarning['code'], path: string, message: string): void {
    this.opts.onWarning?.({ code, path, message })
  }

  /**
   * Parents resolved so far (by their components), for the entries that follow in the same
   * folder: the resolution only changes when something is removed or a symlink is made.
   */
  private readonly parents = new Map<string, string>()

  private parentOf(components: readonly string[]): string {
    const key = components.join('/')
    const known = this.parents.get(key)
    if (known !== undefined) return known
    const resolved = resolveInRoot(this.root, components, {
      mkdirs: true,
      onCreate: (p) => {
        chmodSync(p, 0o755)
        this.markWritten(p)
      },
    })
    this.parents.set(key, resolved)
    return resolved
  }

  /** Removes whatever is at `p` (never following it) and forgets what was pending for it. */
  private remove(p: string, wasDir: boolean): void {
    this.parents.clear()
    rmSync(p, { recursive: true, force: true })
    this.dirMeta.delete(p)
    this.pendingXattrs.delete(p)
    if (wasDir) {
      for (const key of this.dirMeta.keys()) if (isUnder(key, p)) this.dirMeta.delete(key)
      for (const key of this.pendingXattrs.keys()) if (isUnder(key, p)) this.pendingXattrs.delete(key)
    }
  }

  private async addXattrs(p: string, entry: string, xattrs: ReadonlyMap<string, Buffer>): Promise<void> {
    if (xattrs.size === 0) return
    const pending = this.pendingXattrs.get(p) ?? { entry, xattrs: new Map<string, Buffer>() }
    for (const [k, v] of xattrs) pending.xattrs.set(k, v)
    this.pendingXattrs.set(p, pending)
    if (this.pendingXattrs.size >= XATTR_BATCH) await this.flushXattrs()
  }

  private async flushXattrs(): Promise<void> {
    if (this.pendingXattrs.size === 0) return
    const pending = [...this.pendingXattrs]
    this.pendingXattrs.clear()
    const failures = await setXattrs(pending.map(([path, p]) => ({ path, xattrs: p.xattrs })))
    const entryOf = new Map(pending.map(([path, p]) => [path, p.entry]))
    for (const f of failures) {
      const entry = entryOf.get(f.path) ?? f.path
      if (f.errno === 'EPERM' || f.errno === 'ENOTSUP') {
        this.warn('XATTR_SKIPPED', entry, `xattr ${f.name} not set: ${f.message}`)
      } else {
        throw new CairnError('INVALID_LAYER', `cannot set xattr ${f.name} on ${JSON.stringify(entry)}: ${f.message}`)
      }
    }
  }

  async entry(h: TarHeader, body: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>, copyFrom?: string): Promise<void> {
    const components = entryComponents(h.path)
    const base = components.at(-1)
    if (components.some((c, i) => c.startsWith(WHITEOUT_META_PREFIX) && !(c === WHITEOUT_OPAQUE && i === components.length - 1))) {
      return // AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not content
    }
    if (base === undefined) return this.rootEntry(h)
    if (base === WHITEOUT_OPAQUE) return this.opaque(components.slice(0, -1))
    if (base.startsWith(WHITEOUT_PREFIX)) return this.whiteout(h, components.slice(0, -1), base.slice(WHITEOUT_PREFIX.length))

    const target = join(this.parentOf(components.slice(0, -1)), base)
    assertInside(this.root, target, `entry ${JSON.stringify(h.path)}`)
    if (target === this.root) throw new CairnError('UNSAFE_PATH', `entry ${JSON.stringify(h.path)} would replace the root`)

    // A hard link's source is found before anything at the target is removed.
    const linkSource = h.type === 'hardlink' ? this.hardlinkSource(h) : undefined
    if (linkSource === target) {
      this.markWritten(target)
      return
    }
    const existing = this.fresh && !this.written.has(target) ? null : lstatOrNull(target)
    if (existing && !(existing.isDirectory() && h.type === 'directory')) this.remove(target, existing.isDirectory())

    switch (h.type) {
      case 'file':
        if (copyFrom !== undefined) await this.copiedFile(h, copyFrom, target)
        else await this.file(h, body, target)
        break
      case 'directory':
        if (existing?.isDirectory()) this.mergedDirs.add(target)
        else mkdirSync(target, { mode: 0o700 })
        if (this.sameOwner) lchownSync(target, h.uid, h.gid)
        this.dirMeta.set(target, { mode: h.mode, mtime: seconds(h) })
        break
      case 'symlink':
        if (h.linkname === '') throw new CairnError('INVALID_LAYER', `symlink ${JSON.stringify(h.path)} has an empty target`)
        this.parents.clear()
        symlinkSync(h.linkname, target)
        if (this.sameOwner) lchownSync(target, h.uid, h.gid)
        lutimesSync(target, seconds(h), seconds(h))
        break
      case 'hardlink':
        // The inode keeps the metadata of its first entry: nothing is chmod-ed or
        // chown-ed through a link (cf. containerd CVE-2021-32760).
        linkSync(linkSource as string, target)
        this.markWritten(target)
        return
      case 'char':
      case 'block':
        if (!(await this.device(h, target))) return
        this.nodeMeta(h, target)
        break
      case 'fifo':
        await mkfifo(target)
        this.nodeMeta(h, target)
        break
    }
    this.markWritten(target)
    await this.addXattrs(target, h.path, h.xattrs)
  }

  private async file(h: TarHeader, body: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>, target: string): Promise<void> {
    const fd = openSync(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
    try {
      for await (const chunk of body) {
        throwIfAborted(this.opts.signal)
        writeAll(fd, chunk)
      }
      if (this.sameOwner) fchownSync(fd, h.uid, h.gid)
      fchmodSync(fd, h.mode) // after chown, which clears setuid/setgid
      futimesSync(fd, seconds(h), seconds(h))
    } finally {
      closeSync(fd)
    }
    this.size += h.size
  }

  /**
   * A file copied by the kernel from another one (copy_file_range(2) through libuv, off this
   * thread), then given the entry's owner, mode and times, as `file` does. The copy refuses a
   * target that exists, a symlink included (O_CREAT|O_EXCL); a source whose size is not the
   * entry's (changed meanwhile) is refused.
   */
  private async copiedFile(h: TarHeader, source: string, target: string): Promise<void> {
    await copyFile(source, target, constants.COPYFILE_EXCL)
    const st = lstatSync(target)
    if (!st.isFile() || st.size !== h.size) {
      throw new CairnError('CONFLICT', `${source} changed while it was being copied (${st.size} bytes, ${h.size} expected)`)
    }
    this.nodeMeta(h, target)
    this.size += h.size
  }

  private async device(h: TarHeader, target: string): Promise<boolean> {
    try {
      await mknod(target, h.type === 'block' ? 'block' : 'char', h.devmajor, h.devminor)
      return true
    } catch (err) {
      if (!isErrno(err, 'EPERM')) throw err
      this.warn('DEVICE_SKIPPED', h.path, `device ${h.devmajor}:${h.devminor} not created: no privilege to create device nodes`)
      return false
    }
  }

  /** Ownership, mode (after chown, which clears setuid/setgid) and mtime of a device, FIFO or copied file just created at `target` (never a symlink). */
  private nodeMeta(h: TarHeader, target: string): void {
    if (this.sameOwner) lchownSync(target, h.uid, h.gid)
    chmodSync(target, h.mode)
    lutimesSync(target, seconds(h), seconds(h))
  }

  private hardlinkSource(h: TarHeader): string {
    const components = entryComponents(h.linkname)
    const last = components.at(-1)
    if (last === undefined) throw new CairnError('INVALID_LAYER', `hard link ${JSON.stringify(h.path)} points to the root`)
    const source = join(resolveInRoot(this.root, components.slice(0, -1)), last)
    assertInside(this.root, source, `hard link target ${JSON.stringify(h.linkname)}`)
    const st = lstatOrNull(source)
    if (!st) throw new CairnError('INVALID_LAYER', `hard link ${JSON.stringify(h.path)}: target ${JSON.stringify(h.linkname)} not found`)
    if (st.isDirectory()) throw new CairnError('INVALID_LAYER', `hard link ${JSON.stringify(h.path)} points to a directory`)
    return source
  }

  private async rootEntry(h: TarHeader): Promise<void> {
    if (h.type !== 'directory') {
      throw new CairnError('UNSAFE_PATH', `entry ${JSON.stringify(h.path)} would replace the root`)
    }
    if (this.sameOwner) lchownSync(this.root, h.uid, h.gid)
    this.dirMeta.set(this.root, { mode: h.mode, mtime: seconds(h) })
    await this.addXattrs(this.root, h.path, h.xattrs)
  }

  private checkWhiteoutName(h: TarHeader, name: string): void {
    if (name === '' || name === '.' || name === '..') {
      throw new CairnError('UNSAFE_PATH', `whiteout ${JSON.stringify(h.path)} does not name an entry`)
    }
  }

  private async whiteout(h: TarHeader, dir: readonly string[], name: string): Promise<void> {
    this.checkWhiteoutName(h, name)
    if (this.opts.whiteouts === 'overlay') {
      const target = join(this.parentOf(dir), name)
      assertInside(this.root, target, `whiteout ${JSON.stringify(h.path)}`)
      const existing = lstatOrNull(target)
      if (existing) this.remove(target, existing.isDirectory())
      try {
        await mknod(target, 'char', 0, 0, 0) // mode 0, as the kernel makes them
      } catch (err) {
        if (isErrno(err, 'EPERM')) {
          throw new CairnError('NOT_SUPPORTED', `overlay whiteout ${JSON.stringify(h.path)} needs the privilege to create device nodes`, { cause: err })
        }
        throw err
      }
      // the whiteout keeps the entry's time, so that an upper dir survives a round trip as it was
      lutimesSync(target, seconds(h), seconds(h))
      this.markWritten(target)
      return
    }
    const target = join(resolveInRoot(this.root, dir), name)
    assertInside(this.root, target, `whiteout ${JSON.stringify(h.path)}`)
    if (target === this.root) throw new CairnError('UNSAFE_PATH', `whiteout ${JSON.stringify(h.path)} would delete the root`)
    this.prune(target)
  }

  private async opaque(dir: readonly string[]): Promise<void> {
    if (this.opts.whiteouts === 'overlay') {
      const target = this.parentOf(dir)
      this.markWritten(target)
      await this.addXattrs(target, dir.join('/') || '/', new Map([[OVERLAY_OPAQUE_XATTR, Buffer.from('y')]]))
      return
    }
    const target = resolveInRoot(this.root, dir)
    const st = lstatOrNull(target)
    if (!st?.isDirectory()) return
    for (const child of readdirSync(target)) this.prune(join(target, child))
  }

  /**
   * Deletes lower-layer content at `p`, keeping what this layer wrote: whiteouts
   * only ever hide the layers below, whatever order the entries come in.
   */
  private prune(p: string): void {
    if (this.written.has(p) && !this.mergedDirs.has(p)) return
    const st = lstatOrNull(p)
    if (!st) return
    if (st.isDirectory() && (this.mergedDirs.has(p) || this.holdsWritten.has(p))) {
      for (const child of readdirSync(p)) this.prune(join(p, child))
      return
    }
    this.remove(p, st.isDirectory())
  }

  async finish(): Promise<void> {
    await this.flushXattrs()
    for (const [p, meta] of this.dirMeta) {
      const st = lstatOrNull(p)
      if (!st?.isDirectory()) continue
      chmodSync(p, meta.mode)
      lutimesSync(p, meta.mtime, meta.mtime)
    }
  }
}

/** Whether `dir` holds nothing (one entry read, not the whole listing). */
async function isEmptyDir(dir: string): Promise<boolean> {
  const d = await opendir(dir)
  try {
    return (await d.read()) === null
  } finally {
    await d.close()
  }
}

/** An applier onto `targetDir` (resolved; it must be a directory), knowing whether it starts empty. */
async function openApplier(targetDir: string, opts: ApplyOptions): Promise<Applier> {
  throwIfAborted(opts.signal)
  const root = await realpath(targetDir)
  const st = await lstat(root)
  if (!st.isDirectory()) throw new CairnError('INVALID_ARGUMENT', `${targetDir} is not a directory`)
  return new Applier(root, opts, await isEmptyDir(root))
}

/** Writes a layer's entries one by one, as `applyLayer` does with those of a tar. */
export interface LayerWriter {
  /**
   * One entry; `body`: a file's content (its header's size in bytes), or the file to copy it
   * from (`copyFrom`: copied by the kernel, for large files).
   */
  entry(header: TarHeader | TarHeaderInit, body?: Uint8Array | AsyncIterable<Buffer | Uint8Array> | { copyFrom: string }): Promise<void>
  /** Directory modes and mtimes, pending xattrs: call once, after the last entry. */
  finish(): Promise<ApplyResult>
}

/**
 * `applyLayer` for entries that are not in a tar yet (a layer being written, unpacked as it is
 * made): the same checks, the same result, without encoding and parsing the archive between.
 */
export async function layerWriter(targetDir: string, opts: ApplyOptions = {}): Promise<LayerWriter> {
  const applier = await openApplier(targetDir, opts)
  return {
    async entry(header, body) {
      throwIfAborted(opts.signal)
      // a body of bytes gives the size a header may leave out (as a tar writer would)
      const h = tarHeader(body instanceof Uint8Array && header.size === undefined ? { ...header, size: body.length } : header)
      if (body !== undefined && 'copyFrom' in body) await applier.entry(h, [], body.copyFrom)
      else await applier.entry(h, body === undefined ? [] : body instanceof Uint8Array ? [body] : body)
    },
    async finish() {
      await applier.finish()
      return { size: applier.size }
    },
  }
}

/**
 * Unpacks an uncompressed layer tar onto `targetDir` (which must exist and may
 * hold lower layers' content). Parents missing from the layer are created
 * (0755); directory modes and mtimes are set after all their children.
 *
 * Absolute entry names are taken relative to the target (as Docker and
 * containerd do); a name or hard-link target that climbs out with `..` is
 * `UNSAFE_PATH`. Symlinks met on the way (from this layer or below) are
 * resolved inside the target, as in a chroot, never on the host.
 *
 * Devices need CAP_MKNOD: without it they are skipped with a DEVICE_SKIPPED
 * warning (in `overlay` mode a whiteout without it is NOT_SUPPORTED). xattrs
 * need the `attr` tools (setfattr); EPERM/ENOTSUP refusals are warnings.
 *
 * Errors: INVALID_LAYER (corrupt tar, impossible entries), UNSAFE_PATH, ABORTED.
 */
export async function applyLayer(
  tar: AsyncIterable<Buffer | Uint8Array> | Readable,
  targetDir: string,
  opts: ApplyOptions = {},
): Promise<ApplyResult> {
  const applier = await openApplier(targetDir, opts)
  for await (const { header, body } of readTar(tar, opts.signal ? { signal: opts.signal } : {})) {
    throwIfAborted(opts.signal)
    await applier.entry(header, body)
  }
  await applier.finish()
  return { size: applier.size }
}
