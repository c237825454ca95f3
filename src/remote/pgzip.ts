/**
 * gzip on every core: the input is cut into fixed-size blocks, each compressed as a gzip member
 * of its own on libuv's thread pool (zlib's async API), and the members are written in order. A
 * concatenation of gzip members is a valid gzip stream (RFC 1952 §2.2), which every layer reader
 * accepts (Go's gzip reader, containerd and Docker read multistream by default; so do zlib and
 * Node). The output depends only on the input, the block size and the level: deterministic.
 */
import { Transform, type TransformCallback } from 'node:stream'
import { availableParallelism } from 'node:os'
import { promisify } from 'node:util'
import { gzip as gzipCb } from 'node:zlib'

const gzip = promisify(gzipCb) as (buf: Buffer, opts: { level: number }) => Promise<Buffer>

const PGZIP_BLOCK = 1 << 20

export function parallelGzip(opts: { level?: number; blockSize?: number; parallelism?: number } = {}): Transform {
  const level = opts.level ?? 6
  const blockSize = opts.blockSize ?? PGZIP_BLOCK
  const parallel = Math.max(1, opts.parallelism ?? Math.min(4, availableParallelism()))
  let pending: Buffer[] = []
  let pendingLength = 0
  const inFlight: Promise<Buffer>[] = []
  const startBlock = (block: Buffer): void => {
    const p = gzip(block, { level })
    p.catch(() => undefined)
    inFlight.push(p)
  }
  const takeBlock = (): Buffer => {
    const all = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, pendingLength)
    const block = all.subarray(0, blockSize)
    const rest = all.subarray(blockSize)
    pending = rest.length > 0 ? [rest] : []
    pendingLength = rest.length
    return block
  }
  return new Transform({
    highWaterMark: blockSize,
    transform(this: Transform, chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      pending.push(chunk)
      pendingLength += chunk.length
      void (async () => {
        while (pendingLength >= blockSize) {
          startBlock(takeBlock())
          // keep at most `parallel` blocks in the thread pool; emit the oldest in order
          while (inFlight.length >= parallel) this.push(await (inFlight.shift() as Promise<Buffer>))
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
