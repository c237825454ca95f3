/**
 * Layer compression: detection by magic bytes, streaming (de)compression for
 * gzip and zstd. gzip is made on every core (pgzip.ts: libdeflate through
 * Cairn's addon, else zlib) and read with zlib. zstd uses node:zlib when this
 * Node has it (22.15+), else the `zstd-napi` package; either way the zstd
 * framing is checked by Cairn (zstdframe.ts).
 */
import { createRequire } from 'node:module'
import { availableParallelism } from 'node:os'
import { PassThrough, Readable, type Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import * as zlib from 'node:zlib'
import { CairnError, isCairnError, throwIfAborted } from '../errors/index.js'
import type { Compression } from '../oci/mediatype.js'
import { MAX_COMPRESSION_SLOTS, parallelGzip } from './pgzip.js'
import { CheckedZstdDecompress } from './zstdframe.js'
import type * as ZstdNapiModule from 'zstd-napi'

export type { Compression } from '../oci/mediatype.js'

const GZIP_MAGIC = [0x1f, 0x8b] as const
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd] as const
/** Bytes needed to recognise every supported format. */
export const SNIFF_BYTES = 4

function startsWith(head: Uint8Array, magic: readonly number[]): boolean {
  return head.length >= magic.length && magic.every((b, i) => head[i] === b)
}

/** The compression of a stream whose first bytes are `head` (gzip, zstd, else none). */
export function detectCompression(head: Uint8Array): Compression {
  if (startsWith(head, GZIP_MAGIC)) return 'gzip'
  if (startsWith(head, ZSTD_MAGIC)) return 'zstd'
  return 'none'
}

// ---------------------------------------------------------------------------
// zstd back ends

interface NodeZstd {
  createZstdCompress(opts?: { params?: Record<number, number | boolean> }): Transform
  createZstdDecompress(): Transform
  constants: { ZSTD_c_compressionLevel: number; ZSTD_c_checksumFlag: number }
}

function nodeZstd(): NodeZstd | undefined {
  // what this Node.js has: zstd is in node:zlib from 22.15 and 23.8 on
  const z = zlib as unknown as { createZstdCompress?: unknown; createZstdDecompress?: unknown; constants: { ZSTD_c_compressionLevel?: unknown; ZSTD_c_checksumFlag?: unknown } }
  if (typeof z.createZstdCompress === 'function' && typeof z.createZstdDecompress === 'function' &&
    z.constants.ZSTD_c_compressionLevel !== undefined && z.constants.ZSTD_c_checksumFlag !== undefined) {
    return z as NodeZstd
  }
  return undefined
}

type ZstdNapi = typeof ZstdNapiModule
let zstdNapi: ZstdNapi | undefined

function loadZstdNapi(): ZstdNapi {
  if (zstdNapi) return zstdNapi
  try {
    zstdNapi = createRequire(import.meta.url)('zstd-napi') as ZstdNapi
    return zstdNapi
  } catch (err) {
    throw new CairnError('NOT_SUPPORTED', 'zstd needs Node.js 22.15+ or the zstd-napi package', { cause: err })
  }
}

/** The size of zstd's multithreaded jobs (zstd-napi): bounds its memory, see compressStream. */
const ZSTD_JOB_SIZE = 2 << 20

/** Which zstd implementation this process uses. */
export function zstdBackend(): 'node:zlib' | 'zstd-napi' {
  return nodeZstd() ? 'node:zlib' : 'zstd-napi'
}

// ---------------------------------------------------------------------------

export interface CompressOptions {
  /**
   * gzip 1..9 (default: the ratio of zlib's 6, Docker's and Go's default: see deflate.ts);
   * zstd 1..22 (default 3).
   */
  level?: number
}

/**
 * A Transform that compresses with `compression` ('none' passes through).
 * Output is deterministic: gzip is a series of members (one per MiB of input)
 * with no name and a zero mtime; zstd frames carry a content checksum.
 */
export function compressStream(compression: Compression, opts: CompressOptions = {}): Transform {
  switch (compression) {
    case 'none':
      return new PassThrough()
    case 'gzip':
      return parallelGzip(opts.level === undefined ? {} : { level: opts.level })
    case 'zstd': {
      const level = opts.level ?? 3
      const native = nodeZstd()
      if (native) {
        return native.createZstdCompress({
          params: { [native.constants.ZSTD_c_compressionLevel]: level, [native.constants.ZSTD_c_checksumFlag]: 1 },
        })
      }
      // multithreaded mode on every core: its output is the same for any number of workers >= 1,
      // so a layer compresses to the same bytes on every machine. Jobs of 2 MiB instead of the
      // default (8 MiB at level 3): zstd holds a few jobs' input and output per worker, and hands a
      // finished job's output over at once, so a push of a 1 GB layer peaked at 214 MiB with the
      // default and stays near 130 MiB so (layers 1% larger, compressed faster). At most 8
      // workers, as gzip's slots (pgzip.ts): memory grows with them, not the speed a push needs
      return new (loadZstdNapi().CompressStream)({ compressionLevel: level, checksumFlag: true, nbWorkers: Math.max(1, Math.min(availableParallelism(), MAX_COMPRESSION_SLOTS)), jobSize: ZSTD_JOB_SIZE })
    }
    default:
      throw new CairnError('INVALID_ARGUMENT', `unknown compression ${JSON.stringify(compression)}`)
  }
}

/** A Transform that decompresses `compression` ('none' passes through). */
export function decompressor(compression: Compression): Transform {
  switch (compression) {
    case 'none':
      return new PassThrough()
    case 'gzip':
      return zlib.createGunzip()
    case 'zstd': {
      // Cairn reads the framing: a decompressor may take a truncated stream for a whole one
      const native = nodeZstd()
      return new CheckedZstdDecompress(native ? () => native.createZstdDecompress() : () => new (loadZstdNapi().DecompressStream)())
    }
    default:
      throw new CairnError('INVALID_ARGUMENT', `unknown compression ${JSON.stringify(compression)}`)
  }
}

function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
}

export interface SniffOptions {
  signal?: AbortSignal
}

/**
 * Reads just enough of `source` to recognise its compression and returns it
 * with a stream of the same (still compressed) bytes, nothing lost.
 */
export async function sniffCompression(
  source: AsyncIterable<Uint8Array> | Readable,
  opts: SniffOptions = {},
): Promise<{ compression: Compression; stream: Readable }> {
  // a Readable iterates as any: its chunks are Uint8Arrays (Buffers) here
  const it: AsyncIterator<Uint8Array> = source[Symbol.asyncIterator]()
  const head: Buffer[] = []
  let length = 0
  let ended = false
  while (length < SNIFF_BYTES) {
    throwIfAborted(opts.signal)
    const next = await it.next()
    if (next.done) {
      ended = true
      break
    }
    const chunk = asBuffer(next.value)
    head.push(chunk)
    length += chunk.length
  }
  const first = Buffer.concat(head)
  async function* replay(): AsyncGenerator<Buffer, void, undefined> {
    try {
      if (first.length > 0) yield first
      if (ended) return
      for (;;) {
        const next = await it.next()
        if (next.done) return
        yield asBuffer(next.value)
      }
    } finally {
      if (!ended) await it.return?.()
    }
  }
  return { compression: detectCompression(first), stream: Readable.from(replay(), { objectMode: false }) }
}

function wrapError(compression: Compression, err: unknown, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted) return new CairnError('ABORTED', 'operation aborted', { cause: signal.reason })
  if (isCairnError(err) || compression === 'none') return err
  const message = err instanceof Error ? err.message : String(err)
  return new CairnError('INVALID_LAYER', `corrupt ${compression} stream: ${message}`, { cause: err })
}

/**
 * Sniffs the compression of `source` and returns the uncompressed bytes.
 * Corrupt or truncated compressed data fails the stream with `INVALID_LAYER`.
 */
export function decompressStream(source: AsyncIterable<Uint8Array> | Readable, opts: SniffOptions = {}): Readable {
  const { signal } = opts
  async function* inflate(): AsyncGenerator<Buffer, void, undefined> {
    let compression: Compression = 'none'
    try {
      const sniffed = await sniffCompression(source, opts)
      compression = sniffed.compression
      const stage = decompressor(compression)
      const feeding = pipeline(sniffed.stream, stage, signal ? { signal } : {})
      feeding.catch(() => {}) // its failure also fails `stage`, seen below
      for await (const chunk of stage) yield chunk as Buffer
      await feeding
    } catch (err) {
      throw wrapError(compression, err, signal)
    }
  }
  return Readable.from(inflate(), { objectMode: false })
}
