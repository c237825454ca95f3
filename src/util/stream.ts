/** Stream pieces used across the store: a byte counter, and a pipeline over a list built at run time. */
import { Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'

/** A pass-through that reports the running byte count after every chunk. */
export function byteCounter(onBytes: (total: number) => void): Transform {
  let total = 0
  return new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      total += chunk.length
      onBytes(total)
      cb(null, chunk)
    },
  })
}

/**
 * `pipeline()` over streams chosen at run time (an optional decompressor, an optional counter):
 * node's typings only take a fixed list, so the list is typed here once.
 */
export function pipeAll(streams: readonly unknown[], signal?: AbortSignal): Promise<void> {
  return (pipeline as (s: readonly unknown[], o: object) => Promise<void>)(streams, signal ? { signal } : {})
}
