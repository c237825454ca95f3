/**
 * `docker cp` both ways, with Docker's rules for files, directories, `/.` and trailing slashes,
 * and path safety inside the container: container paths are resolved as the container itself
 * would resolve them (symlinks inside its root, bind mounts to their sources), entries are
 * created with O_EXCL after removing what was there (never following a link), and a running
 * container is paused while its files are copied, so that it cannot swap a directory for a
 * symlink under our feet (CVE-2018-15664).
 */
import { copyFileSync, constants, createReadStream, lchownSync, linkSync, lstatSync, lutimesSync, chmodSync, mkdirSync, readdirSync, readlinkSync, symlinkSync, unlinkSync, type Stats } from 'node:fs'
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

export interface CopyOptions {
  /** `-a`: keep the source's owners (default: root in the container, the caller on the host). */
  archive?: boolean
  /** `-L`: follow a symlink at the source path. */
  followLink?: boolean
  signal?: AbortSignal
}

/** Resolves a container path to a host path: through the bind mount that holds it, else in the root. */
export function resolveContainerPath(rootfs: string, binds: readonly BindMount[], ctrPath: string, followFinal: boolean): string {
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

/** Copies one entry (recursively), never following a link at the destination. */
async function copyEntry(src: string, dst: string, owner: Owner, links: Map<string, string>, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) throw new CairnError('ABORTED', 'copy aborted')
  const st = lstatSync(src)
  const existing = lstatOrUndefined(dst)
  if (st.isDirectory()) {
    if (existing && !existing.isDirectory()) unlinkSync(dst)
    if (!existing || !existing.isDirectory()) mkdirSync(dst, { mode: 0o700 })
    for (const name of readdirSync(src)) await copyEntry(`${src}/${name}`, `${dst}/${name}`, owner, links, signal)
  } else {
    if (existing?.isDirectory()) throw new CairnError('INVALID_ARGUMENT', `cannot overwrite directory ${JSON.stringify(dst)} with non-directory ${JSON.stringify(src)}`)
    if (existing) unlinkSync(dst)
    const key = `${st.dev}:${st.ino}`
    const linked = st.nlink > 1 && !st.isDirectory() ? links.get(key) : undefined
    if (linked !== undefined) {
      linkSync(linked, dst)
      return
    }
    if (st.isFile()) copyFileSync(src, dst, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE)
    else if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), dst)
    else if (st.isFIFO()) await mkfifo(dst)
    else if (st.isCharacterDevice() || st.isBlockDevice()) {
      await mknod(dst, st.isCharacterDevice() ? 'char' : 'block', Math.floor(st.rdev / 256) & 0xfff, (st.rdev & 0xff) | ((st.rdev >> 12) & ~0xff))
    } else return // sockets are not copied (as tar skips them)
    if (st.nlink > 1) links.set(key, dst)
  }
  const uid = owner === 'preserve' ? st.uid : owner.uid
  const gid = owner === 'preserve' ? st.gid : owner.gid
  lchownSync(dst, uid, gid)
  if (!st.isSymbolicLink()) chmodSync(dst, st.mode & 0o7777)
  lutimesSync(dst, st.atime, st.mtime)
}

/**
 * Copies `srcHost` to `dstHost` following Docker's rules. `srcName` is the source as the user
 * wrote it (for `/.` and trailing slashes); `dstName` likewise.
 */
async function copyByRules(srcHost: string, srcName: string, dstHost: string, dstName: string, owner: Owner, signal?: AbortSignal): Promise<void> {
  const src = lstatSync(srcHost)
  const dst = lstatOrUndefined(dstHost)
  const links = new Map<string, string>()
  if (src.isDirectory()) {
    if (dst && !dst.isDirectory()) throw new CairnError('INVALID_ARGUMENT', `cannot copy a directory to a file: ${dstName}`)
    if (!dst) {
      if (!lstatOrUndefined(dirname(dstHost))?.isDirectory()) throw new CairnError('INVALID_ARGUMENT', `destination directory ${JSON.stringify(dirname(dstName))} must exist`)
      await copyEntry(srcHost, dstHost, owner, links, signal)
      return
    }
    if (contentsOnly(srcName)) {
      for (const name of readdirSync(srcHost)) await copyEntry(`${srcHost}/${name}`, `${dstHost}/${name}`, owner, links, signal)
      return
    }
    await copyEntry(srcHost, `${dstHost}/${basename(srcHost)}`, owner, links, signal)
    return
  }
  if (dst?.isDirectory()) {
    await copyEntry(srcHost, `${dstHost}/${basename(srcHost)}`, owner, links, signal)
    return
  }
  if (!dst && dstName.endsWith('/')) throw new CairnError('INVALID_ARGUMENT', `destination directory ${JSON.stringify(dstName)} must exist`)
  if (!lstatOrUndefined(dirname(dstHost))?.isDirectory()) throw new CairnError('INVALID_ARGUMENT', `destination directory ${JSON.stringify(dirname(dstName))} must exist`)
  await copyEntry(srcHost, dstHost, owner, links, signal)
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
  await copyByRules(host, ctrPath, hostTarget(dest), dest, owner, opts.signal)
}

function hostTarget(p: string): string {
  // follow a symlink at the destination on the host (as cp does), keep a missing path as is
  try {
    const st = lstatSync(p)
    if (st.isSymbolicLink()) return posix.resolve(dirname(p), readlinkSync(p))
  } catch {
    // missing
  }
  return posix.resolve(p)
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
  await copyByRules(opts.followLink ? resolveHostLink(srcHost) : srcHost, src, dstHost, `${container}:${ctrPath}`, owner, opts.signal)
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

