import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { open, rename, mkdir, unlink } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { isErrno } from '../errors/index.js'
import type * as Crypto from 'node:crypto'

/** fsyncs a directory so that a rename or unlink inside it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  return syncFile(dir)
}

/** fsyncs a file (or directory) by path: its data is on disk once this resolves. */
export async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

let crypto: typeof Crypto | undefined

export function randomName(prefix = ''): string {
  // node:crypto on first use: loading it counts in the start-up of commands that never need it
  crypto ??= createRequire(import.meta.url)('node:crypto') as typeof Crypto
  return `${prefix}${process.pid}-${crypto.randomBytes(8).toString('hex')}`
}

/**
 * Writes a small file atomically: temp file (in the same folder, or `tmpDir` on the same
 * filesystem), fsync, rename, fsync folder. Readers see the old content or the new, never a mix.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644, tmpDir?: string): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf('/')) || '/'
  await mkdir(dir, { recursive: true })
  const tmp = tmpDir !== undefined ? `${tmpDir}/${randomName()}` : `${dir}/.tmp-${randomName()}`
  const fh = await open(tmp, 'wx', mode)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await rename(tmp, path)
  } catch (err) {
    await unlink(tmp).catch(() => undefined)
    throw err
  }
  await fsyncDir(dir)
}

/** writeFileAtomic's synchronous twin, for writes made inside a synchronous lock (a database transaction). */
export function writeFileAtomicSync(path: string, data: string | Uint8Array, mode = 0o644): void {
  const dir = path.slice(0, path.lastIndexOf('/')) || '/'
  mkdirSync(dir, { recursive: true })
  const tmp = `${dir}/.tmp-${randomName()}`
  const fd = openSync(tmp, 'wx', mode)
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  try {
    renameSync(tmp, path)
  } catch (err) {
    unlinkSync(tmp)
    throw err
  }
  const dfd = openSync(dir, 'r')
  try {
    fsyncSync(dfd)
  } finally {
    closeSync(dfd)
  }
}

export async function unlinkIfExists(path: string): Promise<boolean> {
  try {
    await unlink(path)
    return true
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false
    throw err
  }
}

/** Whether a process with this PID exists (EPERM: it exists, owned by someone else). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return isErrno(err, 'EPERM')
  }
}
