/**
 * Giving back the memory of bytes that passed through, soon after they passed.
 *
 * Node copies every piece of a request or response body it receives into a Buffer of its own (up to
 * 64 KiB each). Those die as soon as they are hashed and written, but V8 frees them only at its next
 * young-generation collection, which it schedules by the JavaScript objects allocated, not by the
 * bytes those buffers hold. Measured here, a process receiving a few hundred MB/s carried 30 to 45
 * MiB of dead buffers between collections. `noteReceived(n)` counts such bytes and, after every
 * RECLAIM_EVERY of them, asks V8 for a young-generation collection (well under a millisecond with
 * Cairn's small heaps: a few per second at full speed), which keeps that at a few MiB.
 *
 * V8's `gc` function is reached through `--expose-gc`, set at run time for new contexts only (the
 * process's own global object is left alone); where that is refused, this does nothing.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

export const RECLAIM_EVERY = 8 << 20

type GcFunction = (opts?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void

let gcFn: GcFunction | null | undefined
let sinceLast = 0

function collector(): GcFunction | null {
  if (gcFn !== undefined) return gcFn
  try {
    setFlagsFromString('--expose-gc')
    const fn = runInNewContext('gc') as unknown
    gcFn = typeof fn === 'function' ? (fn as GcFunction) : null
  } catch {
    gcFn = null
  }
  return gcFn
}

/** Counts `n` bytes received into short-lived buffers; now and then collects the young generation. */
export function noteReceived(n: number): void {
  sinceLast += n
  if (sinceLast < RECLAIM_EVERY) return
  sinceLast = 0
  collector()?.({ type: 'minor' })
}

/** Bytes streamed between two full collections, once `collectWhileStreaming` is on. */
export const COLLECT_EVERY = 32 << 20

let streaming = false
let streamedSince = 0

/**
 * For a command that reads layers (pull, load, and the verbs that pull). The buffers a layer's bytes
 * pass through (a download's pieces, gunzip's output, the tar reader's) die at once, but V8 frees
 * them only when it collects, and it lets up to 64 MB of such memory outside its heap add up
 * first (its external-memory soft limit): a pull of the Debian root peaked at ~148 MiB, 60 to 70
 * MiB of it dead buffers, which young-generation collections do not reach (by then they are in
 * the old generation). With this on, `noteStreamed` asks for a full collection every
 * COLLECT_EVERY bytes, run outside the current stack (asked for synchronously, from inside a
 * stream's callback, it freed almost nothing here): those buffers stay under ~32 MiB. That pull
 * peaks at 125–127 MiB instead of 145–147, and takes about 4% longer (one full collection, a few
 * milliseconds with Cairn's small heaps, per 32 MiB). Off by default: the library leaves the
 * collections of a program of its own to V8.
 */
export function collectWhileStreaming(on = true): void {
  streaming = on
}

/** Counts `n` bytes of a layer streamed (see `collectWhileStreaming`). */
export function noteStreamed(n: number): void {
  if (!streaming) return
  streamedSince += n
  if (streamedSince < COLLECT_EVERY) return
  streamedSince = 0
  collector()?.({ type: 'major', execution: 'async' })
}

/**
 * For a long-running server: V8's young generation stays at its initial size (2 MiB here) instead of
 * growing to 32 MiB (Node.js 20) or 64 MiB (Node.js 22 and later) under a burst of requests, memory
 * the process then keeps. More frequent, smaller collections instead. Applies to the whole process.
 */
export function keepYoungGenerationSmall(): void {
  try {
    setFlagsFromString('--semi-space-growth-factor=1')
  } catch {
    // a Node.js that refuses flags at run time keeps its default
  }
}
