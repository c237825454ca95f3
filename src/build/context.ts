/**
 * The build context: a folder read in place, or a tar (a file, or standard input) unpacked once
 * into a private folder of the store; or none at all when the Dockerfile itself came on
 * standard input. `.dockerignore` (or `<Dockerfile>.dockerignore` beside the Dockerfile) decides
 * what COPY and ADD may see, matched as Docker matches it (`@balena/dockerignore`).
 */
import { createRequire } from 'node:module'
import { createReadStream, existsSync } from 'node:fs'
import { mkdir, readFile, realpath, rm, stat } from 'node:fs/promises'
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path'
import { PassThrough, type Readable } from 'node:stream'
import type { Ignore } from '@balena/dockerignore'
import { CairnError, isErrno } from '../errors/index.js'
import { applyLayer } from '../layer/apply.js'
import { decompressStream } from '../layer/compression.js'
import { randomName } from '../util/fs.js'

type IgnoreFactory = (opts?: { ignorecase?: boolean }) => Ignore
const requireCjs = createRequire(import.meta.url)
function ignoreFactory(): IgnoreFactory {
  const m = requireCjs('@balena/dockerignore') as IgnoreFactory | { default: IgnoreFactory }
  return typeof m === 'function' ? m : m.default
}

export interface BuildContext {
  /** The context's folder; undefined when there is no context (a Dockerfile on stdin). */
  dir?: string
  /** The Dockerfile's text. */
  dockerfile: string
  /** The Dockerfile's name as Docker prints it in errors. */
  dockerfileName: string
  /** True when a path (relative to the context, `/`-separated) is excluded by .dockerignore. */
  ignored(rel: string): boolean
  /** Whether the ignore file has `!` exceptions (then excluded folders must still be walked). */
  hasExceptions: boolean
  /** Removes what was unpacked for the build. */
  cleanup(): Promise<void>
}

export interface ContextSource {
  /** A folder, a tarball (plain, gzip or zstd), or a stream holding a tar or a Dockerfile. */
  context: string | Readable
  /** A Dockerfile path (relative paths: to the current folder, as `docker build -f`), or its text. Default: `Dockerfile` in the context. */
  dockerfile?: string | { text: string }
  /** Where a tar context is unpacked. */
  scratchDir: string
  signal?: AbortSignal
}

/** First bytes of a stream, and a stream that still yields all of it. */
async function peek(src: Readable, n: number): Promise<{ head: Buffer; stream: Readable }> {
  const chunks: Buffer[] = []
  let got = 0
  const it = src[Symbol.asyncIterator]()
  while (got < n) {
    const r = (await it.next()) as IteratorResult<Buffer>
    if (r.done) break
    chunks.push(r.value)
    got += r.value.length
  }
  const head = Buffer.concat(chunks)
  const out = new PassThrough({ highWaterMark: 1 << 20 })
  void (async () => {
    try {
      out.write(head)
      for (;;) {
        const r = (await it.next()) as IteratorResult<Buffer>
        if (r.done) break
        if (!out.write(r.value)) await new Promise((ok) => out.once('drain', ok))
      }
      out.end()
    } catch (err) {
      out.destroy(err as Error)
    }
  })()
  return { head, stream: out }
}

/** True for the first bytes of a tar (ustar magic) or a compressed stream. */
function looksLikeArchive(head: Buffer): boolean {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return true
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return true
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return true
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return true
  return head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar'
}

async function unpack(stream: Readable, dir: string, signal?: AbortSignal): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await applyLayer(decompressStream(stream, signal ? { signal } : {}), dir, signal ? { signal } : {})
}

export async function openContext(src: ContextSource): Promise<BuildContext> {
  let dir: string | undefined
  let scratch: string | undefined
  let dockerfileText: string | undefined
  const cleanup = async (): Promise<void> => {
    if (scratch) await rm(scratch, { recursive: true, force: true })
  }
  try {
    if (typeof src.context === 'string') {
      const st = await stat(src.context).catch((err: unknown) => {
        if (isErrno(err, 'ENOENT')) throw new CairnError('INVALID_ARGUMENT', `unable to prepare context: path "${src.context as string}" not found`)
        throw err
      })
      if (st.isDirectory()) dir = resolve(src.context)
      else {
        scratch = join(src.scratchDir, randomName('build-context-'))
        await unpack(createReadStream(src.context, { highWaterMark: 1 << 20 }), scratch, src.signal)
        dir = scratch
      }
    } else {
      const { head, stream } = await peek(src.context, 512)
      if (looksLikeArchive(head)) {
        scratch = join(src.scratchDir, randomName('build-context-'))
        await unpack(stream, scratch, src.signal)
        dir = scratch
      } else {
        // a Dockerfile on stdin: no context at all
        const chunks: Buffer[] = []
        for await (const c of stream) chunks.push(c as Buffer)
        dockerfileText = Buffer.concat(chunks).toString('utf8')
      }
    }
    let name = 'Dockerfile'
    let ignoreFile: string | undefined
    if (dockerfileText === undefined) {
      const df = src.dockerfile
      if (df !== undefined && typeof df !== 'string') {
        dockerfileText = df.text
      } else {
        // a tar context names its Dockerfile inside the tar; a folder's may be anywhere
        const path = df === undefined ? join(dir as string, 'Dockerfile') : scratch !== undefined || !isAbsolute(df) && dir === undefined ? join(dir as string, df) : resolve(df)
        name = df ?? 'Dockerfile'
        // a tar's Dockerfile is read from inside the tar only: no `..`, no symlink out of it
        if (scratch !== undefined) await insideContext(scratch, path, name)
        try {
          dockerfileText = await readFile(path, 'utf8')
        } catch (err) {
          if (isErrno(err, 'ENOENT') || isErrno(err, 'EISDIR')) throw new CairnError('INVALID_ARGUMENT', `unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${path}: no such file or directory`)
          throw err
        }
        const beside = join(dirname(path), `${basename(path)}.dockerignore`)
        if (existsSync(beside)) ignoreFile = beside
      }
    }
    if (ignoreFile === undefined && dir !== undefined && existsSync(join(dir, '.dockerignore'))) ignoreFile = join(dir, '.dockerignore')
    const patterns = ignoreFile ? parseIgnoreFile(await readFile(ignoreFile, 'utf8')) : []
    const ig = ignoreFactory()().add(patterns)
    const ctx: BuildContext = {
      dockerfile: dockerfileText,
      dockerfileName: name,
      ignored: patterns.length === 0 ? () => false : (rel) => rel !== '' && ig.ignores(rel),
      hasExceptions: patterns.some((p) => p.startsWith('!')),
      cleanup,
    }
    if (dir !== undefined) ctx.dir = dir
    return ctx
  } catch (err) {
    await cleanup()
    throw err
  }
}

/** Refuses a Dockerfile path that leads out of an unpacked context (`../x`, or a symlink out of it). */
async function insideContext(dir: string, path: string, name: string): Promise<void> {
  const outside = (base: string, p: string): boolean => {
    const rel = relative(base, p)
    return rel === '..' || rel.startsWith('../') || isAbsolute(rel)
  }
  const real = await realpath(path).catch(() => undefined)
  if (outside(resolve(dir), resolve(path)) || (real !== undefined && outside(await realpath(dir), real))) throw new CairnError('INVALID_ARGUMENT', `unable to prepare context: the Dockerfile (${name}) must be within the build context`)
}

/** The patterns of a .dockerignore: one a line, `#` comments, blank lines skipped. */
function parseIgnoreFile(text: string): string[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
}
