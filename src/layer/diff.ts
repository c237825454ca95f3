/**
 * Directory → layer tar: walks a tree (optionally an overlayfs upperdir) and
 * streams it as a deterministic tar.
 */
import { closeSync, constants, lstatSync, openSync, readdirSync, readlinkSync, readSync, type Stats } from 'node:fs'
import { lstat, open, realpath } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { CairnError, isErrno, throwIfAborted } from '../errors/index.js'
import { sortByUtf8 } from '../util/sort.js'
import { readXattrTree } from './sys.js'
import { writeTar, type TarEntryInput, type TarEntryType, type TarHeaderInit } from './tar.js'
import { OVERLAY_XATTR_PREFIXES, WHITEOUT_OPAQUE, WHITEOUT_PREFIX } from './whiteout.js'

export interface TarDirectoryOptions {
  /**
   * Entries in byte order of their names (default true): each directory's
   * children sorted by name bytes, depth first — parents before children. With
   * `false`, the order readdir gives.
   */
  sorted?: boolean
  /**
   * Seconds since the epoch: every mtime later than this is clamped to it
   * (SOURCE_DATE_EPOCH semantics), so trees made at different times give the
   * same bytes.
   */
  timestamp?: number
  signal?: AbortSignal
  /**
   * `overlay-upper`: `dir` is an overlayfs upperdir — 0/0 character devices become
   * `.wh.<name>` entries and directories marked `trusted.overlay.opaque=y` get a
   * `.wh..wh..opq` entry. `none` (default): the tree is taken as it is.
   */
  whiteouts?: 'overlay-upper' | 'none'
  /** Read extended attributes (default true; needs `getfattr` from the `attr` package). */
  xattrs?: boolean
  /**
   * Only these paths (relative, no leading or trailing slash), and the directories above them,
   * go into the tar: a layer of just the changes of a full tree (the native driver's commit).
   */
  only?: ReadonlySet<string>
  /** Paths (relative) to write as OCI whiteouts (`.wh.<name>`), for deletions. */
  deletions?: readonly string[]
  /** Called with each entry's header as it is written (e.g. to add up sizes on the way). */
  onEntry?: (header: TarHeaderInit) => void
}

interface WalkContext {
  root: string
  opts: TarDirectoryOptions
  /** With `only`: every path listed there or in `deletions`, and every directory above one. */
  wanted?: Set<string>
  /** Deleted names by their parent directory ('' for the root). */
  deleted: Map<string, string[]>
  xattrs: Map<string, Map<string, Buffer>>
  /** `dev:ino` of multiply-linked files → the entry name that carried the content. */
  links: Map<string, string>
}

interface Child {
  /** A deletion to write as a whiteout: no file behind it. */
  deletion?: boolean
  name: string
  /** The name in the tar (a whiteout device becomes `.wh.<name>`). */
  outName: string
  hostPath: string
  st: Stats
  whiteout: boolean
}

function mtimeOf(st: Stats, timestamp: number | undefined): number {
  // Whole seconds (floor), as Docker writes layer tars; sub-second parts would only add noise.
  const mtime = Math.floor(st.mtimeMs / 1000)
  return timestamp !== undefined && mtime > timestamp ? timestamp : mtime
}

function major(rdev: number): number {
  const r = BigInt(rdev)
  return Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn))
}

function minor(rdev: number): number {
  const r = BigInt(rdev)
  return Number((r & 0xffn) | ((r >> 12n) & ~0xffn))
}

/** `dev:ino` of an inode, exact (inode numbers can exceed 2^53, so read as bigint). */
function inodeKey(hostPath: string): string {
  const st = lstatSync(hostPath, { bigint: true })
  return `${st.dev}:${st.ino}`
}

function typeOf(st: Stats): TarEntryType | undefined {
  if (st.isFile()) return 'file'
  if (st.isDirectory()) return 'directory'
  if (st.isSymbolicLink()) return 'symlink'
  if (st.isCharacterDevice()) return 'char'
  if (st.isBlockDevice()) return 'block'
  if (st.isFIFO()) return 'fifo'
  return undefined // sockets cannot be stored in a tar
}

function isOverlayWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0
}

/** The xattrs to store for a path: overlayfs' private ones are dropped; metacopy/redirect upper dirs are refused. */
function storedXattrs(ctx: WalkContext, hostPath: string, rel: string): Map<string, Buffer> {
  const all = ctx.xattrs.get(hostPath)
  const out = new Map<string, Buffer>()
  if (!all) return out
  const overlayUpper = ctx.opts.whiteouts === 'overlay-upper'
  for (const [name, value] of all) {
    const overlayPrivate = overlayUpper
      ? OVERLAY_XATTR_PREFIXES.some((p) => name.startsWith(p))
      : name.startsWith('trusted.overlay.')
    if (overlayPrivate) {
      const key = name.slice(name.indexOf('.overlay.') + '.overlay.'.length)
      if (overlayUpper && (key === 'metacopy' || key === 'redirect')) {
        throw new CairnError('NOT_SUPPORTED', `${JSON.stringify(rel)} uses overlayfs ${key}, which cannot be stored in a layer`)
      }
      continue
    }
    out.set(name, value)
  }
  return out
}

function isOpaque(ctx: WalkContext, hostPath: string): boolean {
  const all = ctx.xattrs.get(hostPath)
  if (!all) return false
  return OVERLAY_XATTR_PREFIXES.some((p) => all.get(`${p}opaque`)?.toString('latin1') === 'y')
}

/**
 * Files up to this size are read in one go, synchronously: most files of a layer are small, and
 * a read through the thread pool and a stream per file cost more than the read itself (a
 * ~115 MB change of 4,900 files committed in 0.6 s instead of 0.9 s). Larger files stream.
 */
const SMALL_FILE = 1 << 20

/**
 * One directory's children with their lstat. Synchronous, like the other
 * metadata calls here: microsecond syscalls that were several times slower
 * through the thread pool (measured); file contents above SMALL_FILE stream.
 */
function listChildren(ctx: WalkContext, hostDir: string, relDir: string): Child[] {
  const children = readdirSync(hostDir).map((name): Child => {
    const hostPath = join(hostDir, name)
    const st = lstatSync(hostPath)
    const whiteout = ctx.opts.whiteouts === 'overlay-upper' && isOverlayWhiteout(st)
    return { name, outName: whiteout ? WHITEOUT_PREFIX + name : name, hostPath, st, whiteout }
  })
  const parent = relDir.replace(/\/$/, '')
  for (const name of ctx.deleted.get(parent) ?? []) {
    children.push({ name, outName: WHITEOUT_PREFIX + name, hostPath: join(hostDir, name), st: lstatSync(hostDir), whiteout: true, deletion: true })
  }
  if (ctx.opts.sorted ?? true) sortByUtf8(children, (c) => c.outName)
  return children
}

async function* walk(ctx: WalkContext, hostDir: string, relDir: string): AsyncGenerator<TarEntryInput, void, undefined> {
  const { opts } = ctx
  for (const child of listChildren(ctx, hostDir, relDir)) {
    throwIfAborted(opts.signal)
    const { st } = child
    const rel = relDir + child.outName
    if (ctx.wanted && !child.deletion && !ctx.wanted.has(relDir + child.name)) continue
    const base = {
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      mtime: mtimeOf(st, opts.timestamp),
    }
    if (child.whiteout) {
      yield { header: { ...base, path: rel, type: 'file', mode: 0o600, size: 0, ...(child.deletion ? { uid: 0, gid: 0 } : {}) } }
      continue
    }
    const type = typeOf(st)
    if (type === undefined) continue
    const xattrs = storedXattrs(ctx, child.hostPath, rel)
    if (type === 'directory') {
      yield { header: { ...base, path: `${rel}/`, type, xattrs } }
      if (opts.whiteouts === 'overlay-upper' && isOpaque(ctx, child.hostPath)) {
        yield { header: { ...base, path: `${rel}/${WHITEOUT_OPAQUE}`, type: 'file', mode: base.mode & 0o777, size: 0 } }
      }
      yield* walk(ctx, child.hostPath, `${rel}/`)
      continue
    }
    if (st.nlink > 1) {
      const key = inodeKey(child.hostPath)
      const first = ctx.links.get(key)
      if (first !== undefined) {
        yield { header: { ...base, path: rel, type: 'hardlink', linkname: first } }
        continue
      }
      ctx.links.set(key, rel)
    }
    const header: TarHeaderInit = { ...base, path: rel, type, xattrs }
    switch (type) {
      case 'file': {
        const size = st.size
        header.size = size
        if (size === 0) yield { header }
        else if (size <= SMALL_FILE) yield { header, body: readSmallFile(child.hostPath, size, rel) }
        else {
          const fh = await open(child.hostPath, constants.O_RDONLY | constants.O_NOFOLLOW)
          yield { header, body: fh.createReadStream({ start: 0, end: size - 1, highWaterMark: 1 << 20 }) }
        }
        break
      }
      case 'symlink':
        header.linkname = readlinkSync(child.hostPath)
        yield { header }
        break
      case 'char':
      case 'block':
        header.devmajor = major(st.rdev)
        header.devminor = minor(st.rdev)
        yield { header }
        break
      default:
        yield { header }
    }
  }
}

function readSmallFile(hostPath: string, size: number, rel: string): Buffer {
  const buf = Buffer.allocUnsafe(size)
  const fd = openSync(hostPath, constants.O_RDONLY | constants.O_NOFOLLOW)
  try {
    let got = 0
    while (got < size) {
      const n = readSync(fd, buf, got, size - got, got)
      if (n === 0) throw new CairnError('CONFLICT', `${JSON.stringify(rel)} shrank while it was being read`)
      got += n
    }
  } finally {
    closeSync(fd)
  }
  return buf
}

async function* entries(dir: string, opts: TarDirectoryOptions): AsyncGenerator<TarEntryInput, void, undefined> {
  const root = await realpath(resolve(dir)).catch((err: unknown) => {
    throw isErrno(err, 'ENOENT') ? new CairnError('INVALID_ARGUMENT', `${dir} does not exist`, { cause: err }) : err
  })
  const st = await lstat(root)
  if (!st.isDirectory()) throw new CairnError('INVALID_ARGUMENT', `${dir} is not a directory`)
  const xattrs = opts.xattrs === false ? new Map<string, Map<string, Buffer>>() : await readXattrTree(root)
  const deleted = new Map<string, string[]>()
  for (const d of opts.deletions ?? []) {
    const slash = d.lastIndexOf('/')
    const parent = slash < 0 ? '' : d.slice(0, slash)
    deleted.set(parent, [...(deleted.get(parent) ?? []), d.slice(slash + 1)])
  }
  let wanted: Set<string> | undefined
  if (opts.only) {
    wanted = new Set()
    for (const p of [...opts.only, ...(opts.deletions ?? [])]) {
      const parts = p.split('/')
      for (let i = 1; i <= parts.length; i++) wanted.add(parts.slice(0, i).join('/'))
    }
  }
  const ctx: WalkContext = { root, opts, xattrs, links: new Map(), deleted }
  if (wanted) ctx.wanted = wanted
  yield* walk(ctx, root, '')
}

/**
 * Streams the tree under `dir` as a tar layer: names relative to `dir`
 * (directories with a trailing `/`, the root itself omitted), modes, uid/gid,
 * whole-second mtimes, xattrs (except overlayfs' own), devices, FIFOs, and
 * hard links as `hardlink` entries pointing at the first name of the inode.
 * Sockets are skipped. File contents are streamed. The same tree gives the same
 * bytes; with `timestamp`, so do trees made at different times.
 */
export function tarDirectory(dir: string, opts: TarDirectoryOptions = {}): Readable {
  const source = opts.onEntry ? observed(entries(dir, opts), opts.onEntry) : entries(dir, opts)
  return writeTar(source, opts.signal ? { signal: opts.signal } : {})
}

async function* observed(gen: AsyncGenerator<TarEntryInput, void, undefined>, onEntry: (h: TarHeaderInit) => void): AsyncGenerator<TarEntryInput, void, undefined> {
  for await (const entry of gen) {
    onEntry(entry.header)
    yield entry
  }
}
