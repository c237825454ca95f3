/**
 * gzip on every core: the input is cut into fixed-size blocks, each compressed as a gzip member of
 * its own off the main thread (libdeflate through Cairn's addon, else zlib: see deflate.ts), and the
 * members are written in order. A concatenation of gzip members is a valid gzip stream (RFC 1952
 * §2.2), which every layer reader accepts (Go's gzip reader, containerd and Docker read multistream
 * by default; so do zlib, GNU gzip and Node). The output depends only on the input, the block size,
 * the level and the implementation: deterministic.
 *
 * Every parallel gzip of the process shares one budget of blocks being compressed (one per core and
 * one more, at most eight, so that a core is never idle while the main thread hashes and sends,
 * and always two of libuv's pool threads left for file I/O), so that layers compressed at the
 * same time share the cores instead of queueing file reads and writes behind compression. Each
 * stream keeps twice as many blocks in flight and two more (at most eight more), so that a
 * compression slot never waits for the main thread to hand it a block: on two cores, 3 slots and
 * 8 blocks push a 200 MiB layer in about 0.9× the time of 2 and 3 (bench/README.md, "push/pull").
 * The CLI sizes libuv's pool to the cores (src/cli/launch.cts); a program using the library may
 * set UV_THREADPOOL_SIZE itself.
 */
import { Transform, type TransformCallback } from 'node:stream'
import { availableParallelism } from 'node:os'
import { gzipBackend, type GzipBackend } from './deflate.js'

const PGZIP_BLOCK = 1 << 20

/**
 * At most this many blocks compress at once, whatever the cores: each block in flight is a block
 * in and a member out, so memory grows with the slots, and eight cores of libdeflate (about
 * 1 GB/s) outrun the networks a push goes over. Two cores' figures are in bench/README.md
 * ("memory"); a larger machine holds at most 8 more blocks per stream than they do.
 */
export const MAX_COMPRESSION_SLOTS = 8

/** A stream's blocks in flight for `slots` compressing at once. */
function windowFor(slots: number): number {
  return Math.min(2 * slots + 2, slots + 8)
}

/** Blocks compressing at once in a process (cores + 1, two of libuv's threads left for I/O), and each stream's blocks in flight. */
export function compressionBudget(cores: number, pool: number): { slots: number; window: number } {
  const slots = Math.max(1, Math.min(cores + 1, pool - 2, MAX_COMPRESSION_SLOTS))
  return { slots, window: windowFor(slots) }
}

function compressionSlots(): number {
  return compressionBudget(availableParallelism(), Number(process.env['UV_THREADPOOL_SIZE']) || 4).slots
}

/** A FIFO counting semaphore. */
class Slots {
  private free: number
  private readonly waiting: (() => void)[] = []
  constructor(readonly size: number) {
    this.free = size
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--
    else await new Promise<void>((resolve) => this.waiting.push(resolve))
    try {
      return await fn()
    } finally {
      const next = this.waiting.shift()
      if (next) next()
      else this.free++
    }
  }
}

let slots: Slots | undefined

export interface ParallelGzipOptions {
  /** Compression level (default: the implementation's match for zlib's 6, see deflate.ts). */
  level?: number
  blockSize?: number
  /** Blocks of this stream in flight at once (default: twice the compression slots and two, at most the slots and eight). */
  parallelism?: number
  /** The implementation (default: gzipBackend()). */
  backend?: GzipBackend
}

export function parallelGzip(opts: ParallelGzipOptions = {}): Transform {
  const backend = opts.backend ?? gzipBackend()
  const level = opts.level
  const blockSize = opts.blockSize ?? PGZIP_BLOCK
  slots ??= new Slots(compressionSlots())
  const shared = slots
  const window = Math.max(1, opts.parallelism ?? windowFor(shared.size))
  let pending: Buffer[] = []
  let pendingLength = 0
  const inFlight: Promise<Buffer>[] = []
  const startBlock = (block: Buffer): void => {
    const p = shared.run(() => backend.gzip(block, level))
    p.catch(() => undefined)
    inFlight.push(p)
  }
  /** The next whole block: a chunk as it came when it is one, else the pieces joined. */
  const takeBlock = (): Buffer => {
    const first = pending[0] as Buffer
    if (first.length === blockSize) {
      pending.shift()
      pendingLength -= blockSize
      return first
    }
    const all = pending.length === 1 ? first : Buffer.concat(pending, pendingLength)
    const block = all.subarray(0, Math.min(blockSize, all.length))
    const rest = all.subarray(block.length)
    pending = rest.length > 0 ? [rest] : []
    pendingLength = rest.length
    return block
  }
  return new Transform({
    highWaterMark: blockSize,
    transform(this: Transform, chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      pending.push(chunk)
      pendingLength += chunk.length
      if (pendingLength < blockSize) {
        cb()
        return
      }
      void (async () => {
        while (pendingLength >= blockSize) {
          startBlock(takeBlock())
          // keep at most `window` blocks of this stream in flight; emit the oldest in order
          while (inFlight.length >= window) this.push(await (inFlight.shift() as Promise<Buffer>))
        }
      })().then(() => cb(), cb)
    },
    flush(this: Transform, cb: TransformCallback) {
      void (async () => {
        if (pendingLength > 0 || inFlight.length === 0) {
          // an empty input still makes one (empty) member, as gzip does
          startBlock(pendingLength > 0 ? takeBlock() : Buffer.alloc(0))
        }
        while (inFlight.length > 0) this.push(await (inFlight.shift() as Promise<Buffer>))
      })().then(() => cb(), cb)
    },
  })
}
