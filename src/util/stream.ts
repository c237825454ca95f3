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

/**
 * A `data` listener that hands `onLine` each whole line (without its newline) of a text stream,
 * keeping a partial line until the rest arrives; `afterChunk` runs once a chunk's lines are done.
 */
export function lineReader(onLine: (line: string) => void, afterChunk?: () => void): (chunk: Buffer) => void {
  let buf = ''
  return (chunk) => {
    buf += chunk.toString('utf8')
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      onLine(line)
    }
    afterChunk?.()
  }
}
