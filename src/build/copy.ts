/**
 * COPY and ADD without a container: the sources are found (globs, .dockerignore, symlinks kept
 * inside their root), checksummed by content for the cache key, and written straight into the
 * new layer's tar under the destination (resolved in the image below, whose symlinks are
 * followed inside its root, as a process there would). ADD also unpacks a local tar archive
 * and downloads a URL.
 */
import { createHash } from 'node:crypto'
import { closeSync, constants, createReadStream, lstatSync, openSync, readdirSync, readlinkSync, readSync, realpathSync, statSync, type Stats } from 'node:fs'
import { posix, relative } from 'node:path'
import type { Readable } from 'node:stream'
import { CairnError, isErrno } from '../errors/index.js'
import { writeTar, readTar, type TarEntryInput, type TarHeaderInit } from '../layer/tar.js'
import { decompressStream } from '../layer/compression.js'
import { resolveInRoot } from '../layer/path.js'
import { sortByUtf8 } from '../util/sort.js'
import { sysAddonWith } from '../util/addon.js'
import { parseGroup, parsePasswd } from '../runtime/user.js'

/** Where COPY reads from: the context (with its ignore rules) or another image's tree. */
export interface SourceRoot {
  dir: string
  kind: 'context' | 'image'
  ignored?: (rel: string) => boolean
  hasExceptions?: boolean
}

/** One file or folder a COPY names, and everything under it. */
export interface Source {
  /** The pattern as given (for messages). */
  pattern: string
  /** Path relative to the root (`''` for the root itself). */
  rel: string
  host: string
  st: Stats
  /** A file downloaded for ADD (mode 0600, named from the URL). */
  download?: boolean
  /** A local archive ADD unpacks. */
  archive?: boolean
}

export interface TreeEntry {
  /** Path relative to the source (`''` for the source itself). */
  rel: string
  host: string
  st: EntryStats
}

/** What a tree's walk keeps of an entry's lstat (fs.Stats has it all). */
export type EntryStats = Pick<Stats, 'mode' | 'uid' | 'gid' | 'rdev' | 'dev' | 'ino' | 'size' | 'mtimeMs' | 'ctimeMs' | 'isDirectory' | 'isFile' | 'isSymbolicLink' | 'isSocket' | 'isFIFO'>

/** An lstat from the addon's `lstatDir`: its numbers, the file type from the mode as fs.Stats reads it. */
class DirEntryStats implements EntryStats {
  constructor(
    readonly mode: number, readonly uid: number, readonly gid: number, readonly rdev: number, readonly dev: number,
    readonly ino: number, readonly size: number, readonly mtimeMs: number, readonly ctimeMs: number,
  ) {}

  private is(type: number): boolean {
    return (this.mode & constants.S_IFMT) === type
  }

  isDirectory(): boolean {
    return this.is(constants.S_IFDIR)
  }

  isFile(): boolean {
    return this.is(constants.S_IFREG)
  }

  isSymbolicLink(): boolean {
    return this.is(constants.S_IFLNK)
  }

  isSocket(): boolean {
    return this.is(constants.S_IFSOCK)
  }

  isFIFO(): boolean {
    return this.is(constants.S_IFIFO)
  }
}

/** native/sys/sys.c's `lstatDir`: a folder's names and their lstat numbers (STAT_FIELDS each), in one call. */
interface StatDirAddon {
  lstatDir(dir: string): { names: string[]; stats: Float64Array }
}

const STAT_FIELDS = 9

interface ReadAheadAddon {
  willNeed(paths: string[]): Promise<void>
}

/** Small files asked to be read ahead at a time (see readAhead). */
const READ_AHEAD = 64

interface ReadAhead {
  /** Called with each entry's index before its file is read. */
  at(i: number): void
  /** A small file's synchronous read, timed: once one waited for the disk, read-ahead starts. */
  read<T>(size: number, read: () => T): T
}

/**
 * Asks the kernel to start reading the tree's next small files into the page cache (the addon's
 * `willNeed`, on libuv's pool) before they are read, one after another, with synchronous reads.
 * It starts once a read has taken longer than the page cache takes (0.1 ms and 1 ms per MB): a
 * context not read for a while, or paged out (this machine pages out what was not touched for a
 * minute: bench/README.md). Then the disk reads the next files at once instead of one by one
 * while the event loop waits (a `--no-cache` build of the benchmark's context with the page cache
 * dropped: bench/README.md, "build"). A cached tree is not asked for (it would cost a few
 * microseconds per file on the pool). Without the addon it does nothing.
 */
function readAhead(tree: readonly TreeEntry[]): ReadAhead {
  const sys = sysAddonWith<ReadAheadAddon>('willNeed')
  let cold = false
  let asked = 0
  return {
    at(i) {
      if (!sys || !cold || i + READ_AHEAD / 2 < asked || asked >= tree.length) return
      const batch: string[] = []
      let j = Math.max(asked, i)
      for (; j < tree.length && batch.length < READ_AHEAD; j++) {
        const e = tree[j] as TreeEntry
        if (e.st.isFile() && e.st.size > 0 && e.st.size <= SMALL_FILE) batch.push(e.host)
      }
      asked = j
      if (batch.length > 0) sys.willNeed(batch).catch(() => undefined)
    },
    read(size, read) {
      if (cold || !sys) return read()
      const t0 = performance.now()
      const out = read()
      if (performance.now() - t0 > 0.1 + size / 1e6) cold = true
      return out
    },
  }
}

/**
 * A folder's entries with their lstat: one call to the addon where it has `lstatDir` (a build's
 * checksum of its context reads every file's metadata, some 5 µs a file through
 * fs.readdirSync and fs.lstatSync), else Node's fs (`CAIRN_STATDIR=fs` chooses it anyway). An
 * entry gone between the listing and its lstat is left out by the addon.
 */
function dirEntries(dir: string): { name: string; st: EntryStats }[] {
  const sys = process.env['CAIRN_STATDIR'] === 'fs' ? undefined : sysAddonWith<StatDirAddon>('lstatDir')
  if (sys) {
    const { names, stats: f } = sys.lstatDir(dir)
    return names.map((name, i) => {
      const o = i * STAT_FIELDS
      return { name, st: new DirEntryStats(f[o] as number, f[o + 1] as number, f[o + 2] as number, f[o + 3] as number, f[o + 4] as number, f[o + 5] as number, f[o + 6] as number, f[o + 7] as number, f[o + 8] as number) }
    })
  }
  return readdirSync(dir).map((name) => ({ name, st: lstatSync(`${dir}/${name}`) }))
}

const GLOB = /[*?[]/

function notFound(pattern: string): CairnError {
  return new CairnError('INVALID_ARGUMENT', `file not found in build context or excluded by .dockerignore: stat ${pattern}: file does not exist`)
}

function forbidden(pattern: string, why = ''): CairnError {
  return new CairnError('UNSAFE_PATH', `forbidden path outside the build context: ${pattern}${why ? ` (${why})` : ''}`)
}

/** Go's filepath.Match for one path segment. */
export function matchSegment(pattern: string, name: string): boolean {
  let re = '^'
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string
    if (c === '*') re += '[^/]*'
    else if (c === '?') re += '[^/]'
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2)
      if (end < 0) throw new CairnError('INVALID_ARGUMENT', `syntax error in pattern ${pattern}`)
      let body = pattern.slice(i + 1, end)
      if (body.startsWith('^') || body.startsWith('!')) body = `^${body.slice(1)}`
      re += `[${body.replace(/\\(?!\])/g, '\\\\')}]`
      i = end
    } else if (c === '\\' && i + 1 < pattern.length) re += (pattern[++i] as string).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
    else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
  }
  return new RegExp(`${re}$`).test(name)
}

/** A source path made relative to its root; `..` that would leave it is refused. */
export function cleanSource(pattern: string): string {
  const n = posix.normalize(pattern.replace(/^\/+/, '') || '.')
  if (n === '..' || n.startsWith('../')) throw forbidden(pattern)
  return n === '.' ? '' : n.replace(/\/$/, '')
}

/** The host path of `rel` under the root: a context path must stay inside it; an image's is resolved as inside it. */
function hostOf(root: SourceRoot, rel: string, pattern: string): string {
  if (root.kind === 'image') return resolveInRoot(root.dir, rel.split('/'))
  const host = rel === '' ? root.dir : `${root.dir}/${rel}`
  let real: string
  try {
    real = realpathSync(host)
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) {
      // a dangling symlink on the way: refuse one that points out, else it is just missing
      try {
        const l = lstatSync(host)
        if (l.isSymbolicLink()) {
          const target = readlinkSync(host)
          const abs = posix.resolve(posix.dirname(host), target)
          if (!isInsideDir(realpathSync(root.dir), abs)) throw forbidden(pattern, `${rel} -> ${target}`)
        }
      } catch (e) {
        if (e instanceof CairnError) throw e
      }
      throw notFound(pattern)
    }
    throw err
  }
  const top = realpathSync(root.dir)
  if (!isInsideDir(top, real)) throw forbidden(pattern, `${rel} -> ${real}`)
  return real
}

function isInsideDir(root: string, p: string): boolean {
  const r = relative(root, p)
  return r === '' || (!r.startsWith('..') && !posix.isAbsolute(r))
}

/** Every path under the root matching a (possibly globbed) cleaned pattern. */
function expandGlob(root: SourceRoot, rel: string): string[] {
  const parts = rel === '' ? [] : rel.split('/')
  let current = ['']
  for (const part of parts) {
    const next: string[] = []
    for (const base of current) {
      if (!GLOB.test(part)) {
        next.push(base === '' ? part : `${base}/${part}`)
        continue
      }
      let names: string[]
      try {
        names = readdirSync(base === '' ? root.dir : `${root.dir}/${base}`)
      } catch {
        continue
      }
      for (const n of sortByUtf8(names, (x) => x)) if (matchSegment(part, n)) next.push(base === '' ? n : `${base}/${n}`)
    }
    current = next
  }
  return current
}

/** The sources a COPY/ADD names, in order; errors for missing, excluded or escaping ones. */
export function resolveSources(root: SourceRoot, patterns: readonly string[]): Source[] {
  const out: Source[] = []
  for (const pattern of patterns) {
    const rel = cleanSource(pattern)
    const globbed = GLOB.test(rel)
    const matches = globbed ? expandGlob(root, rel) : [rel]
    let found = 0
    for (const m of matches) {
      if (root.ignored?.(m)) continue
      let host: string
      try {
        host = hostOf(root, m, pattern)
      } catch (err) {
        if (globbed && err instanceof CairnError && err.code === 'INVALID_ARGUMENT') continue
        throw err
      }
      let st: Stats
      try {
        st = statSync(host)
      } catch {
        if (globbed) continue
        throw notFound(pattern)
      }
      out.push({ pattern, rel: m, host, st })
      found++
    }
    if (found === 0) {
      if (globbed) throw new CairnError('INVALID_ARGUMENT', `no source files were specified: ${pattern} matches no file in the build context`)
      throw notFound(pattern)
    }
  }
  return out
}

/** A source's entries (a folder's own entry first, then its tree, sorted), without what .dockerignore excludes. */
function sourceTree(root: SourceRoot, src: Source): TreeEntry[] {
  if (!src.st.isDirectory()) return [{ rel: '', host: src.host, st: src.st }]
  const out: TreeEntry[] = [{ rel: '', host: src.host, st: src.st }]
  const walk = (hostDir: string, relDir: string): void => {
    for (const { name, st } of sortByUtf8(dirEntries(hostDir), (x) => x.name)) {
      const host = `${hostDir}/${name}`
      const rel = relDir === '' ? name : `${relDir}/${name}`
      const ctxRel = src.rel === '' ? rel : `${src.rel}/${rel}`
      const excluded = root.ignored?.(ctxRel) ?? false
      if (st.isDirectory()) {
        if (excluded && !root.hasExceptions) continue
        const at = out.length
        out.push({ rel, host, st })
        walk(host, rel)
        // an excluded folder stays only for what an exception brought back inside it
        if (excluded && out.length === at + 1) out.pop()
        continue
      }
      if (excluded) continue
      if (st.isSocket()) continue
      out.push({ rel, host, st })
    }
  }
  walk(src.host, '')
  return out
}

/**
 * Content hashes of files already read, by path and stat (a file is read once per build, and
 * not again by a later build while its inode, size, mtime and ctime stay the same).
 */
export interface HashMemo {
  get(key: string): string | undefined
  set(key: string, digest: string): void
}

function fileHash(host: string, st: EntryStats, memo: HashMemo, ahead: ReadAhead): string {
  const k = `${host}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`
  const known = memo.get(k)
  if (known) return known
  const h = createHash('sha256')
  const hashWhole = (): void => {
    const fd = openSync(host, constants.O_RDONLY | constants.O_NOFOLLOW)
    try {
      const buf = Buffer.allocUnsafe(Math.min(Math.max(st.size, 1), 1 << 20))
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, null)
        if (n === 0) break
        h.update(buf.subarray(0, n))
      }
    } finally {
      closeSync(fd)
    }
  }
  if (st.size <= SMALL_FILE) ahead.read(st.size, hashWhole)
  else hashWhole()
  const d = h.digest('hex')
  memo.set(k, d)
  return d
}

/**
 * The checksum of what a COPY reads: names, types, modes and contents (never mtimes), so that
 * the same files give the same key whenever they were written. Each source's part is memoized
 * by its tree as the file system shows it (names, modes, inodes, sizes, times): a build that
 * finds a tree as an earlier build left it takes that part without a file's checksum looked up.
 */
export function checksumSources(root: SourceRoot, sources: readonly Source[], memo: HashMemo, trees?: Map<string, TreeEntry[]>): string {
  const h = createHash('sha256')
  for (const src of sources) {
    h.update(`source ${src.rel}\n`)
    const tree = sourceTree(root, src)
    trees?.set(src.host, tree)
    const seen = createHash('sha256')
    for (const { rel, st } of tree) seen.update(`${rel}\0${st.mode}:${st.uid}:${st.gid}:${st.rdev}:${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}\n`)
    const treeKey = `${src.host}\0tree:${seen.digest('hex')}`
    let part = memo.get(treeKey)
    if (part === undefined) {
      const t = createHash('sha256')
      const ahead = readAhead(tree)
      for (const [i, e] of tree.entries()) {
        ahead.at(i)
        const st = e.st
        const mode = (st.mode & 0o7777).toString(8)
        const owner = root.kind === 'image' ? ` ${st.uid}:${st.gid}` : ''
        if (st.isDirectory()) t.update(`d ${e.rel} ${mode}${owner}\n`)
        else if (st.isSymbolicLink()) t.update(`l ${e.rel} ${mode}${owner} ${readlinkSync(e.host)}\n`)
        else if (st.isFile()) t.update(`f ${e.rel} ${mode}${owner} ${st.size} ${fileHash(e.host, st, memo, ahead)}\n`)
        else t.update(`o ${e.rel} ${mode}${owner} ${st.rdev}\n`)
      }
      part = t.digest('hex')
      memo.set(treeKey, part)
    }
    h.update(`${part}\n`)
  }
  return h.digest('hex')
}

// ---------------------------------------------------------------- the layer

const SMALL_FILE = 1 << 20

function readWhole(host: string, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size)
  const fd = openSync(host, constants.O_RDONLY | constants.O_NOFOLLOW)
  try {
    let got = 0
    while (got < size) {
      const n = readSync(fd, buf, got, size - got, got)
      if (n === 0) throw new CairnError('CONFLICT', `${host} shrank while it was being copied`)
      got += n
    }
  } finally {
    closeSync(fd)
  }
  return buf
}

export interface Owner {
  uid: number
  gid: number
}

/** `--chown=user[:group]` against the image's own /etc/passwd and /etc/group. */
export function resolveChown(spec: string, rootfs: string | undefined): Owner {
  const [u = '', g] = spec.split(':')
  const read = (p: string): string => {
    if (rootfs === undefined) return ''
    try {
      const host = resolveInRoot(rootfs, p.split('/'))
      return readFileText(host)
    } catch {
      return ''
    }
  }
  let uid: number
  let primary: number | undefined
  if (/^\d+$/.test(u)) uid = Number(u)
  else {
    const e = parsePasswd(read('etc/passwd')).find((p) => p.name === u)
    if (!e) throw new CairnError('INVALID_ARGUMENT', `unable to convert uid/gid chown string to host mapping: can't find uid for user ${u}: no such user: ${u}`)
    uid = e.uid
    primary = e.gid
  }
  let gid: number
  if (g === undefined || g === '') gid = primary ?? uid
  else if (/^\d+$/.test(g)) gid = Number(g)
  else {
    const e = parseGroup(read('etc/group')).find((x) => x.name === g)
    if (!e) throw new CairnError('INVALID_ARGUMENT', `unable to convert uid/gid chown string to host mapping: can't find gid for group ${g}: no such group: ${g}`)
    gid = e.gid
  }
  return { uid, gid }
}

function readFileText(host: string): string {
  const fd = openSync(host, constants.O_RDONLY)
  try {
    const st = statSync(host)
    const buf = Buffer.alloc(st.size)
    readSync(fd, buf, 0, st.size, 0)
    return buf.toString('utf8')
  } finally {
    closeSync(fd)
  }
}

export interface CopyLayerOptions {
  /** The destination, absolute (WORKDIR already applied), as written (a trailing `/` matters). */
  dest: string
  /** The image below, mounted read-only (undefined: from scratch, nothing exists). */
  rootfs?: string
  /** Context sources are owned by 0:0; an image's keep their owners. */
  rootKind: 'context' | 'image'
  chown?: Owner
  chmod?: number
  /** Seconds: later mtimes are clamped to it (SOURCE_DATE_EPOCH); also the mtime of folders made. */
  timestamp?: number
  root: SourceRoot
  signal?: AbortSignal
  /** Sees each entry's header as it is written (sizes are added up from them). */
  onEntry?: (h: TarHeaderInit) => void
  /** The sources' trees as `checksumSources` read them, by host path: not read again. */
  trees?: ReadonlyMap<string, TreeEntry[]>
  /**
   * Also gets every entry, with a body of its own (a file's content, or, for a file too large to
   * hold, its source to copy from: the kernel copies it while the tar reads it): the layer
   * unpacked as it is made. Not with archives (ADD of a local tar), whose entries can be read once only.
   */
  apply?: (header: TarHeaderInit, body?: Uint8Array | Readable | { copyFrom: string }) => Promise<void>
}

/** A layer entry, and the file its body comes from (for `apply`'s own read of a large one). */
interface CopyEntry extends TarEntryInput {
  header: TarHeaderInit
  host?: string
}

function ancestors(rel: string): string[] {
  const parts = rel.split('/').filter(Boolean)
  return parts.map((_, i) => parts.slice(0, i + 1).join('/'))
}

function lstatIn(rootfs: string | undefined, rel: string): Stats | undefined {
  if (rootfs === undefined || rel === '') return undefined
  try {
    return lstatSync(`${rootfs}/${rel}`)
  } catch {
    return undefined
  }
}

/** The destination resolved in the image: its real path (symlinks followed inside the root), relative. */
function realDest(rootfs: string | undefined, dest: string): string {
  const comps = posix.normalize(dest).split('/').filter(Boolean)
  if (rootfs === undefined) return comps.join('/')
  const host = resolveInRoot(rootfs, comps)
  return relative(rootfs, host).split('\\').join('/')
}

/**
 * The layer of a COPY/ADD as a tar stream: the destination's folders (those that exist keep
 * their metadata, new ones are made 0755), then each source's tree under the destination.
 */
export function copyLayer(sources: readonly Source[], opts: CopyLayerOptions): Readable {
  const now = opts.timestamp ?? Math.floor(Date.now() / 1000)
  const clamp = (t: number): number => (opts.timestamp !== undefined && t > opts.timestamp ? opts.timestamp : t)
  const endsWithSlash = opts.dest.endsWith('/') || /\/\.$/.test(opts.dest)
  const destAbs = posix.normalize(`/${opts.dest}`)
  const single = sources.length === 1 ? sources[0] : undefined
  const destIsDirExisting = opts.rootfs !== undefined && destAbs !== '/' && (() => {
    try {
      return statSync(resolveInRoot(opts.rootfs, destAbs.split('/').filter(Boolean))).isDirectory()
    } catch {
      return false
    }
  })()
  const intoDir = endsWithSlash || destAbs === '/' || sources.length > 1 || (single !== undefined && (single.st.isDirectory() || single.archive === true)) || destIsDirExisting
  if (sources.length > 1 && !endsWithSlash && !destIsDirExisting) {
    throw new CairnError('INVALID_ARGUMENT', 'When using COPY with more than one source file, the destination must be a directory and end with a /')
  }
  // the folder the sources land in, resolved through the image's symlinks
  const dirRel = intoDir ? realDest(opts.rootfs, destAbs) : realDest(opts.rootfs, posix.dirname(destAbs))
  const fileName = intoDir ? undefined : posix.basename(destAbs)
  const owner = (st: EntryStats): Owner => opts.chown ?? (opts.rootKind === 'image' ? { uid: st.uid, gid: st.gid } : { uid: 0, gid: 0 })
  const mode = (st: EntryStats): number => (opts.chmod !== undefined ? opts.chmod : st.mode & 0o7777)

  async function* entries(): AsyncGenerator<CopyEntry, void, undefined> {
    const written = new Set<string>()
    // the destination folder and every folder above it
    for (const a of ancestors(dirRel)) {
      const st = lstatIn(opts.rootfs, a)
      const isLast = a === dirRel
      if (st?.isDirectory()) {
        yield { header: { path: `${a}/`, type: 'directory', mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: clamp(Math.floor(st.mtimeMs / 1000)) } }
      } else {
        const srcDir = isLast && single?.st.isDirectory() ? single.st : undefined
        const o = opts.chown ?? { uid: 0, gid: 0 }
        yield { header: { path: `${a}/`, type: 'directory', mode: srcDir ? mode(srcDir) : 0o755, uid: o.uid, gid: o.gid, mtime: srcDir ? clamp(Math.floor(srcDir.mtimeMs / 1000)) : now } }
      }
      written.add(a)
    }
    for (const src of sources) {
      if (opts.signal?.aborted) throw new CairnError('ABORTED', 'operation aborted')
      if (src.archive) {
        yield* archiveEntries(src, dirRel, opts, clamp)
        continue
      }
      const base = src.st.isDirectory() ? dirRel : fileName !== undefined ? (dirRel === '' ? fileName : `${dirRel}/${fileName}`) : (dirRel === '' ? posix.basename(src.rel || src.host) : `${dirRel}/${posix.basename(src.rel || src.host)}`)
      const tree = opts.trees?.get(src.host) ?? sourceTree(opts.root, src)
      const ahead = readAhead(tree)
      for (const [i, e] of tree.entries()) {
        ahead.at(i)
        const path = e.rel === '' ? base : base === '' ? e.rel : `${base}/${e.rel}`
        if (path === '' || (e.rel === '' && src.st.isDirectory())) continue // the destination folder itself: written above
        const st = e.st
        const o = owner(st)
        const h: TarHeaderInit = { path, type: 'file', mode: mode(st), uid: o.uid, gid: o.gid, mtime: clamp(Math.floor(st.mtimeMs / 1000)) }
        if (src.download) h.mode = opts.chmod ?? 0o600
        if (st.isDirectory()) yield { header: { ...h, path: `${path}/`, type: 'directory' } }
        else if (st.isSymbolicLink()) yield { header: { ...h, type: 'symlink', mode: 0o777, linkname: readlinkSync(e.host) } }
        else if (st.isFile()) {
          h.size = st.size
          // small files (most of them) in one synchronous read: a stream per file costs more than the read
          if (st.size === 0) yield { header: h }
          else if (st.size <= SMALL_FILE) yield { header: h, body: ahead.read(st.size, () => readWhole(e.host, st.size)) }
          else yield { header: h, body: createReadStream(e.host, { highWaterMark: 1 << 20 }), host: e.host }
        } else if (st.isFIFO()) yield { header: { ...h, type: 'fifo' } }
        // devices and sockets are not copied
      }
    }
  }
  async function* observed(): AsyncGenerator<TarEntryInput, void, undefined> {
    for await (const e of entries()) {
      opts.onEntry?.(e.header)
      // a large file is copied into the tree by the kernel while the tar reads it: both are
      // done before the next entry
      let copying: Promise<unknown> | undefined
      if (opts.apply) {
        if (e.body === undefined || e.body instanceof Uint8Array) await opts.apply(e.header, e.body)
        else if (e.host !== undefined) {
          copying = opts.apply(e.header, { copyFrom: e.host }).then(() => undefined, (err: unknown) => ({ err }))
        } else throw new CairnError('NOT_SUPPORTED', `${e.header.path}: an archive's entry cannot be unpacked as it is written`)
      }
      let failed: { err: unknown } | undefined
      try {
        yield { header: e.header, ...(e.body !== undefined ? { body: e.body } : {}) }
      } finally {
        // also when the tar stops early: no copy goes on into a tree being removed
        failed = (await copying) as { err: unknown } | undefined
      }
      if (failed) throw failed.err
    }
  }
  return writeTar(observed(), opts.signal ? { signal: opts.signal } : {})
}

/** ADD of a local archive: its entries, under the destination folder (names that would leave it are refused). */
async function* archiveEntries(src: Source, dirRel: string, opts: CopyLayerOptions, clamp: (t: number) => number): AsyncGenerator<TarEntryInput, void, undefined> {
  const under = (name: string): string | undefined => {
    const n = posix.normalize(name.replace(/^\/+/, ''))
    if (n === '.' || n === '') return undefined
    if (n === '..' || n.startsWith('../')) throw new CairnError('UNSAFE_PATH', `${src.pattern}: the archive entry ${JSON.stringify(name)} leaves the destination`)
    return dirRel === '' ? n.replace(/\/$/, '') : `${dirRel}/${n.replace(/\/$/, '')}`
  }
  const input = decompressStream(createReadStream(src.host, { highWaterMark: 1 << 20 }), opts.signal ? { signal: opts.signal } : {})
  for await (const { header, body } of readTar(input, opts.signal ? { signal: opts.signal } : {})) {
    const path = under(header.path)
    if (path === undefined) {
      body.resume()
      continue
    }
    const h: TarHeaderInit = {
      ...header,
      path: header.type === 'directory' ? `${path}/` : path,
      mtime: clamp(header.mtime),
      ...(opts.chown ? { uid: opts.chown.uid, gid: opts.chown.gid } : {}),
      ...(opts.chmod !== undefined ? { mode: opts.chmod } : {}),
    }
    if (header.type === 'hardlink') {
      const target = under(header.linkname)
      if (target === undefined) throw new CairnError('UNSAFE_PATH', `${src.pattern}: a hard link to the archive's root`)
      h.linkname = target
    }
    if (header.type === 'file') yield { header: h, body }
    else {
      body.resume()
      yield { header: h }
    }
  }
}

/** Whether a local file is an archive ADD unpacks (tar, possibly gzip/zstd-compressed). */
export function isLocalArchive(host: string, st: Stats): boolean {
  if (!st.isFile() || st.size < 4) return false
  const fd = openSync(host, constants.O_RDONLY)
  try {
    const head = Buffer.alloc(Math.min(st.size, 512))
    readSync(fd, head, 0, head.length, 0)
    if (head[0] === 0x1f && head[1] === 0x8b) return true
    if (head.readUInt32LE(0) === 0xfd2fb528) return true
    return head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar'
  } finally {
    closeSync(fd)
  }
}
