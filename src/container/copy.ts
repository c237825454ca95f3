/**
 * `docker cp` both ways, with Docker's rules for files, directories, `/.` and trailing slashes,
 * and path safety inside the container: container paths are resolved as the container itself
 * would resolve them (symlinks inside its root, bind mounts to their sources), entries are
 * created with O_EXCL after removing what was there (never following a link), and a running
 * container is paused while its files are copied, so that it cannot swap a directory for a
 * symlink under our feet (CVE-2018-15664).
 */
import { copyFileSync, constants, createReadStream, createWriteStream, lchownSync, linkSync, lstatSync, lutimesSync, chmodSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync, type Stats } from 'node:fs'
import { basename, dirname, posix } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CairnError, isErrno } from '../errors/index.js'
import { entryComponents, resolveInRoot } from '../layer/path.js'
import { mkfifo, mknod } from '../layer/sys.js'
import { readTar, writeTar, type TarEntryInput } from '../layer/tar.js'
import { tarDirectory } from '../layer/diff.js'
import { applyLayer } from '../layer/apply.js'
import type { BindMount } from '../runtime/spec.js'
import { randomName } from '../util/fs.js'
import { invalidOutputPath } from '../util/userfiles.js'

export interface CopyOptions {
  /** `-a`: keep the source's owners (default: root in the container, the caller on the host). */
  archive?: boolean
  /** `-L`: follow a symlink at the source path. */
  followLink?: boolean
  signal?: AbortSignal
}

/** Resolves a container path to a host path: through the bind mount that holds it, else in the root. */
function resolveContainerPath(rootfs: string, binds: readonly BindMount[], ctrPath: string, followFinal: boolean): string {
  const comps = entryComponents(ctrPath)
  const sorted = [...binds].sort((a, b) => entryComponents(b.destination).length - entryComponents(a.destination).length)
  for (const b of sorted) {
    const bc = entryComponents(b.destination)
    if (bc.length <= comps.length && bc.every((c, i) => comps[i] === c)) {
      return resolveInRoot(b.source, comps.slice(bc.length), { followFinal })
    }
  }
  return resolveInRoot(rootfs, comps, { followFinal })
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p)
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined
    throw err
  }
}

/** `SRC` ends in `/.`: copy the directory's contents rather than the directory. */
function contentsOnly(p: string): boolean {
  return p === '.' || p.endsWith('/.')
}

type Owner = { uid: number; gid: number } | 'preserve'

/** Where a copy writes: into a container (entries are replaced) or onto the host (devices and FIFOs are written through, as GNU cp does). */
type Side = 'container' | 'host'

interface CopyState {
  owner: Owner
  side: Side
  /** Hard links seen: the source's dev:ino → the first copy made of it. */
  links: Map<string, string>
  signal?: AbortSignal | undefined
}

/**
 * Copies one entry (recursively), never following a link at the destination. A file, link or
 * node is made under a temporary name beside its destination and renamed over it, so that what
 * was there is replaced whole or not at all.
 */
async function copyEntry(src: string, dst: string, state: CopyState): Promise<void> {
  if (state.signal?.aborted) throw new CairnError('ABORTED', 'copy aborted')
  const st = lstatSync(src)
  const existing = lstatOrUndefined(dst)
  if (st.isDirectory()) {
    if (existing && !existing.isDirectory()) {
      if (state.side === 'host' && isSpecial(existing)) throw invalidOutputPath(dst, existing)
      unlinkSync(dst)
    }
    if (!existing || !existing.isDirectory()) mkdirSync(dst, { mode: 0o700 })
    for (const name of readdirSync(src)) await copyEntry(`${src}/${name}`, `${dst}/${name}`, state)
    setMetadata(dst, st, state.owner)
    return
  }
  if (existing?.isDirectory()) throw new CairnError('INVALID_ARGUMENT', `cannot overwrite directory ${JSON.stringify(dst)} with non-directory ${JSON.stringify(src)}`)
  if (existing && state.side === 'host' && isSpecial(existing)) {
    // a device or FIFO on the host is never replaced: a file's bytes are written into it, as cp does
    if (!st.isFile() || existing.isSocket()) throw invalidOutputPath(dst, existing)
    await pipeline(createReadStream(src), createWriteStream(dst, { flags: 'w' }), state.signal ? { signal: state.signal } : {})
    return
  }
  const made = existing ? `${dirname(dst)}/.${randomName('cairn-cp-')}` : dst
  try {
    const key = `${st.dev}:${st.ino}`
    const linked = st.nlink > 1 ? state.links.get(key) : undefined
    if (linked !== undefined) {
      linkSync(linked, made)
    } else {
      if (st.isFile()) copyFileSync(src, made, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE)
      else if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), made)
      else if (st.isFIFO()) await mkfifo(made)
      else if (st.isCharacterDevice() || st.isBlockDevice()) {
        await mknod(made, st.isCharacterDevice() ? 'char' : 'block', Math.floor(st.rdev / 256) & 0xfff, (st.rdev & 0xff) | ((st.rdev >> 12) & ~0xff))
      } else return // sockets are not copied (as tar skips them)
      setMetadata(made, st, state.owner)
    }
    if (made !== dst) renameSync(made, dst)
  } catch (err) {
    if (made !== dst) rmSync(made, { force: true })
    throw err
  }
  if (st.nlink > 1 && !state.links.has(`${st.dev}:${st.ino}`)) state.links.set(`${st.dev}:${st.ino}`, dst)
}

function isSpecial(st: Stats): boolean {
  return st.isCharacterDevice() || st.isBlockDevice() || st.isFIFO() || st.isSocket()
}

function setMetadata(p: string, st: Stats, owner: Owner): void {
  const uid = owner === 'preserve' ? st.uid : owner.uid
  const gid = owner === 'preserve' ? st.gid : owner.gid
  lchownSync(p, uid, gid)
  if (!st.isSymbolicLink()) chmodSync(p, st.mode & 0o7777)
  lutimesSync(p, st.atime, st.mtime)
}

/**
 * Copies `srcHost` to `dstHost` following Docker's rules. `srcName` is the source as the user
 * wrote it (for `/.` and trailing slashes); `dstName` likewise.
 */
async function copyByRules(srcHost: string, srcName: string, dstHost: string, dstName: string, state: CopyState): Promise<void> {
  const src = lstatSync(srcHost)
  const dst = lstatOrUndefined(dstHost)
  if (src.isDirectory()) {
    if (dst && !dst.isDirectory()) throw new CairnError('INVALID_ARGUMENT', `cannot copy a directory to a file: ${dstName}`)
    if (!dst) {
      if (!lstatOrUndefined(dirname(dstHost))?.isDirectory()) throw new CairnError('INVALID_ARGUMENT', `destination directory ${JSON.stringify(dirname(dstName))} must exist`)
      await copyEntry(srcHost, dstHost, state)
      return
    }
    if (contentsOnly(srcName)) {
      for (const name of readdirSync(srcHost)) await copyEntry(`${srcHost}/${name}`, `${dstHost}/${name}`, state)
      return
    }
    await copyEntry(srcHost, `${dstHost}/${basename(srcHost)}`, state)
    return
  }
  if (dst?.isDirectory()) {
    await copyEntry(srcHost, `${dstHost}/${basename(srcHost)}`, state)
    return
  }
  if (!dst && dstName.endsWith('/')) throw new CairnError('INVALID_ARGUMENT', `destination directory ${JSON.stringify(dstName)} must exist`)
  if (!lstatOrUndefined(dirname(dstHost))?.isDirectory()) throw new CairnError('INVALID_ARGUMENT', `destination directory ${JSON.stringify(dirname(dstName))} must exist`)
  await copyEntry(srcHost, dstHost, state)
}

/** The host path and name a user-given source (container side) resolves to. */
function containerSource(rootfs: string, binds: readonly BindMount[], ctrPath: string, container: string, followLink: boolean): string {
  const abs = posix.resolve('/', ctrPath)
  // a trailing `/` or `/.` means the directory itself: follow the final link then
  const follow = followLink || ctrPath.endsWith('/') || contentsOnly(ctrPath)
  const host = resolveContainerPath(rootfs, binds, abs, follow)
  if (!lstatOrUndefined(host)) throw new CairnError('INVALID_ARGUMENT', `Could not find the file ${abs} in container ${container}`, { detail: { kind: 'no-such-path' } })
  return host
}

/** `cp CONTAINER:SRC DEST` (DEST on the host, or a Writable for `-`: a tar stream). */
export async function copyOut(rootfs: string, binds: readonly BindMount[], container: string, ctrPath: string, dest: string | Writable, opts: CopyOptions = {}): Promise<void> {
  const host = containerSource(rootfs, binds, ctrPath, container, opts.followLink ?? false)
  if (typeof dest !== 'string') {
    await pipeline(tarOf(host, contentsOnly(ctrPath) ? '.' : basename(host), opts.signal), dest, opts.signal ? { signal: opts.signal } : {})
    return
  }
  const owner: Owner = opts.archive ? 'preserve' : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }
  // the host side is the caller's own: its symlinks are followed as cp would
  await copyByRules(host, ctrPath, hostTarget(dest), dest, { owner, side: 'host', links: new Map(), signal: opts.signal })
}

/** The host destination with its symlinks followed (as cp follows them); a missing path stays as it is. */
function hostTarget(p: string): string {
  let cur = posix.resolve(p)
  for (let i = 0; i < 40; i++) {
    const st = lstatOrUndefined(cur)
    if (!st?.isSymbolicLink()) return cur
    cur = posix.resolve(dirname(cur), readlinkSync(cur))
  }
  throw new CairnError('INVALID_ARGUMENT', `too many levels of symbolic links: ${p}`)
}

/** `cp SRC CONTAINER:DEST` (SRC on the host, or a Readable tar stream for `-`). */
export async function copyIn(rootfs: string, binds: readonly BindMount[], container: string, src: string | Readable, ctrPath: string, opts: CopyOptions = {}): Promise<void> {
  const abs = posix.resolve('/', ctrPath)
  if (typeof src !== 'string') {
    const dir = resolveContainerPath(rootfs, binds, abs, true)
    if (!lstatOrUndefined(dir)?.isDirectory()) throw new CairnError('INVALID_ARGUMENT', `destination ${JSON.stringify(`${container}:${abs}`)} must be a directory`)
    await applyLayer(src, dir, { ...(opts.signal ? { signal: opts.signal } : {}), sameOwner: opts.archive ?? false })
    return
  }
  const srcHost = posix.resolve(src)
  if (!lstatOrUndefined(srcHost)) throw new CairnError('INVALID_ARGUMENT', `could not find the file ${src} on the host`)
  // the destination's parents (and the destination itself, when it is an existing directory)
  // are resolved inside the container; the final name is never followed when it is a file
  const parentHost = resolveContainerPath(rootfs, binds, posix.dirname(abs), true)
  let dstHost = `${parentHost}/${posix.basename(abs)}`
  if (abs === '/') dstHost = resolveContainerPath(rootfs, binds, '/', true)
  const st = lstatOrUndefined(dstHost)
  if (st?.isSymbolicLink()) {
    const followed = resolveContainerPath(rootfs, binds, abs, true)
    if (lstatOrUndefined(followed)?.isDirectory()) dstHost = followed
  }
  const owner: Owner = opts.archive ? 'preserve' : { uid: 0, gid: 0 }
  await copyByRules(opts.followLink ? resolveHostLink(srcHost) : srcHost, src, dstHost, `${container}:${ctrPath}`, { owner, side: 'container', links: new Map(), signal: opts.signal })
}

function resolveHostLink(p: string): string {
  let cur = p
  for (let i = 0; i < 40; i++) {
    const st = lstatSync(cur)
    if (!st.isSymbolicLink()) return cur
    cur = posix.resolve(dirname(cur), readlinkSync(cur))
  }
  throw new CairnError('INVALID_ARGUMENT', `too many levels of symbolic links: ${p}`)
}

/** A tar of one entry (a file, a link) or a directory tree, named `name` at the top. */
function tarOf(host: string, name: string, signal?: AbortSignal): Readable {
  const st = lstatSync(host)
  if (st.isDirectory()) {
    const inner = tarDirectory(host, signal ? { signal } : {})
    if (name === '.') return inner
    async function* renamed(): AsyncGenerator<TarEntryInput> {
      yield { header: { path: `${name}/`, type: 'directory', mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) } }
      for await (const e of readTar(inner)) {
        const rel = e.header.path.replace(/^\.?\/?/, '')
        if (rel === '') continue
        const header = { ...e.header, path: `${name}/${rel}` }
        if (header.type === 'hardlink') header.linkname = `${name}/${header.linkname.replace(/^\.?\/?/, '')}`
        yield { header, body: e.body }
      }
    }
    return writeTar(renamed())
  }
  const header = {
    path: name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000),
    ...(st.isSymbolicLink() ? { type: 'symlink' as const, linkname: readlinkSync(host), size: 0 } : { type: 'file' as const, size: st.size }),
  }
  return writeTar([{ header, ...(st.isFile() ? { body: createReadStream(host) } : {}) }])
}

