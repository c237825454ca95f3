/**
 * Files the user names. Reading one (`import FILE`, `load -i FILE`) opens it first, so that a
 * missing file or a folder is a clear error before anything starts. Writing to one (`save -o`, `export -o`, `cp` to the host, …) without ever
 * harming what is there: a symlink is followed (its target is written, the link stays), a regular
 * file is replaced atomically (temp file beside it, fsync, rename, fsync the folder), and a device,
 * FIFO or socket is refused with Docker's message instead of being replaced by a file.
 */
import { createReadStream, createWriteStream, type Stats } from 'node:fs'
import { chmod, lstat, readlink, rename, rm, stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { CairnError, isErrno, userMessage } from '../errors/index.js'
import { fsyncDir, randomName, syncFile } from './fs.js'

const MAX_LINKS = 40

async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await lstat(p)
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined
    throw err
  }
}

/** What kind of thing a non-regular, non-directory entry is, in Go's words (as Docker reports it). */
function irregularKind(st: Stats): string | undefined {
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'got a device'
  if (st.isFIFO()) return 'got a named pipe'
  if (st.isSocket()) return 'got a socket'
  return undefined
}

/** Docker's refusal of an output path that is neither a directory nor a regular file. */
export function invalidOutputPath(path: string, st: Stats): CairnError {
  const kind = irregularKind(st)
  return new CairnError('INVALID_ARGUMENT', `invalid output path: ${JSON.stringify(path)} must be a directory or a regular file${kind ? `: ${kind}` : ''}`)
}

/**
 * Follows symlinks at `path` (each one relative to the folder holding it) to the entry a write
 * would reach; the result may not exist yet (a dangling link names the file to create).
 */
export async function followLinks(path: string): Promise<{ path: string; stat: Stats | undefined }> {
  let cur = resolve(path)
  for (let i = 0; i < MAX_LINKS; i++) {
    const st = await lstatOrUndefined(cur)
    if (!st?.isSymbolicLink()) return { path: cur, stat: st }
    cur = resolve(dirname(cur), await readlink(cur))
  }
  throw new CairnError('INVALID_ARGUMENT', `open ${path}: too many levels of symbolic links`)
}

/**
 * Checks an output path as Docker's `ValidateOutputPath` does (its folder must exist; an existing
 * entry must be a directory or a regular file) and returns where the data goes, links followed.
 */
export async function checkOutputPath(path: string): Promise<{ path: string; stat: Stats | undefined }> {
  if (path === '') throw new CairnError('INVALID_ARGUMENT', 'invalid output path: empty')
  const target = await followLinks(path)
  if (target.stat === undefined) {
    const dir = dirname(target.path)
    let dirStat: Stats | undefined
    try {
      dirStat = await stat(dir)
    } catch (err) {
      if (!isErrno(err, 'ENOENT') && !isErrno(err, 'ENOTDIR')) throw err
    }
    if (!dirStat) throw new CairnError('INVALID_ARGUMENT', `invalid output path: directory ${JSON.stringify(dirname(path))} does not exist`)
    if (!dirStat.isDirectory()) throw new CairnError('INVALID_ARGUMENT', `invalid output path: ${JSON.stringify(dirname(path))} is not a directory`)
    return target
  }
  if (!target.stat.isFile() && !target.stat.isDirectory()) throw invalidOutputPath(path, target.stat)
  return target
}

/**
 * Writes a file the user named, atomically: `write` gets a stream to a temporary file beside the
 * target, which replaces the target only once everything was written and synced. A failure (or
 * an abort) leaves the target as it was. The target may be a symlink (its target is written) or
 * missing; a directory, device, FIFO or socket is refused before anything is written.
 */
export async function writeOutputFile(path: string, write: (out: Writable) => Promise<void>): Promise<void> {
  const target = await checkOutputPath(path)
  if (target.stat?.isDirectory()) throw new CairnError('INVALID_ARGUMENT', `invalid output path: ${JSON.stringify(path)} is a directory`)
  const dir = dirname(target.path)
  const tmp = `${dir}/.${randomName('cairn-tmp-')}`
  // a replaced file keeps its permission bits (as with `>` in a shell); a new one gets 0666 & ~umask
  const mode = target.stat ? target.stat.mode & 0o7777 : 0o666
  try {
    const out = createWriteStream(tmp, { flags: 'wx', mode, highWaterMark: 1 << 20 })
    try {
      await write(out)
    } finally {
      if (!out.writableFinished) out.end()
      await finished(out).catch(() => undefined)
    }
    if (out.errored) throw out.errored
    if (target.stat) await chmod(tmp, mode) // not narrowed by the umask: the replaced file's own bits
    await syncFile(tmp)
    await rename(tmp, target.path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  await fsyncDir(dir)
}

/** Opens a file the user named for reading: errors (missing, a folder, no permission) in Go's words before any byte is read. */
export async function openInputFile(path: string): Promise<Readable & { size?: number }> {
  let st: Stats
  try {
    st = await stat(path)
  } catch (err) {
    throw new CairnError('INVALID_ARGUMENT', userMessage(Object.assign(err as object, { syscall: 'open', path })), { cause: err })
  }
  if (st.isDirectory()) throw new CairnError('INVALID_ARGUMENT', `read ${path}: is a directory`)
  const stream = createReadStream(path, { highWaterMark: 1 << 20 })
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve())
    stream.once('error', (err) => reject(new CairnError('INVALID_ARGUMENT', userMessage(err), { cause: err })))
  })
  // its size, for progress (a regular file's; a pipe or device has none)
  return Object.assign(stream, st.isFile() ? { size: st.size } : {})
}
