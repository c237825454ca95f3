/** Shared helpers of the layer tests: temp dirs, byte collection, tar building, tree snapshots. */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { lstat, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { TestContext } from 'node:test'
import { hasCode } from '../../src/errors/index.js'
import { readXattrTree } from '../../src/layer/sys.js'
import { readTar, writeTar, type TarEntryInput } from '../../src/layer/tar.js'

/** A fresh directory under the system temp dir, removed when the test ends. */
export async function tempDir(t: TestContext, prefix = 'cairn-layer-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export async function collect(stream: AsyncIterable<Uint8Array> | Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array))
  return Buffer.concat(chunks)
}

/** The bytes of a tar holding `entries` (bodies given as strings or Buffers). */
export async function tarOf(entries: ReadonlyArray<Omit<TarEntryInput, 'body'> & { body?: string | Buffer }>): Promise<Buffer> {
  return collect(writeTar(entries.map((e) => {
    const body = typeof e.body === 'string' ? Buffer.from(e.body) : e.body
    const size = body?.length ?? 0
    return body === undefined ? { header: e.header } : { header: { size, ...e.header }, body }
  })))
}

/** The regular files of a tar archive, by path. */
export async function filesOf(archive: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>()
  for await (const { header, body } of readTar(Readable.from([archive]))) {
    const data = await collect(body)
    if (header.type === 'file') files.set(header.path, data)
  }
  return files
}

/** A source that yields `data` in chunks of `size` bytes (exercises every block boundary). */
export function chunked(data: Buffer, size: number): Readable {
  const parts: Buffer[] = []
  for (let i = 0; i < data.length; i += size) parts.push(data.subarray(i, i + size))
  return Readable.from(parts)
}

/** Asserts that `promise` rejects with a CairnError of `code`. */
export async function rejectsWithCode(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(hasCode(err, code as never), `expected ${code}, got ${String((err as Error)?.stack ?? err)}`)
    if (message) assert.match((err as Error).message, message)
    return true
  })
}

export interface NodeInfo {
  type: string
  mode: number
  uid: number
  gid: number
  mtime: number
  size?: number
  sha256?: string
  linkname?: string
  rdev?: number
  /** The first path (in sorted order) sharing this inode, when there are several. */
  inode?: string
  xattrs: Record<string, string>
}

/**
 * A comparable description of every node under `dir` (relative paths), with
 * content hashes, whole-second mtimes (directories included), xattrs as hex
 * and hard-link groups.
 */
export async function snapshot(dir: string, opts: { mtimes?: boolean; skipXattrs?: (name: string) => boolean } = {}): Promise<Record<string, NodeInfo>> {
  const xattrs = await readXattrTree(dir)
  const out: Record<string, NodeInfo> = {}
  const inodes = new Map<string, string>()
  const visit = async (host: string, rel: string): Promise<void> => {
    const names = (await readdir(host)).sort()
    for (const name of names) {
      const p = join(host, name)
      const r = rel === '' ? name : `${rel}/${name}`
      const st = await lstat(p)
      const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink'
        : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : st.isFIFO() ? 'fifo' : 'other'
      const info: NodeInfo = {
        type,
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        mtime: opts.mtimes === false ? 0 : Math.floor(st.mtimeMs / 1000),
        xattrs: {},
      }
      for (const [k, v] of xattrs.get(p) ?? []) if (!opts.skipXattrs?.(k)) info.xattrs[k] = v.toString('hex')
      if (type === 'symlink') {
        info.linkname = await readlink(p)
        info.mode = 0 // symlink modes are meaningless on Linux
      }
      if (type === 'file') {
        info.size = st.size
        info.sha256 = createHash('sha256').update(await readFile(p)).digest('hex')
      }
      if (type === 'char' || type === 'block') info.rdev = st.rdev
      if (type !== 'dir' && st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`
        info.inode = inodes.get(key) ?? r
        inodes.set(key, info.inode)
      }
      out[r] = info
      if (type === 'dir') await visit(p, r)
    }
  }
  await visit(dir, '')
  return out
}

/** Every path under `dir` (relative), for "nothing was created here" checks. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = []
  const visit = async (host: string, rel: string): Promise<void> => {
    for (const name of (await readdir(host)).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`
      out.push(r)
      if ((await lstat(join(host, name))).isDirectory()) await visit(join(host, name), r)
    }
  }
  await visit(dir, '')
  return out
}

export function isRoot(): boolean {
  return process.getuid?.() === 0
}
