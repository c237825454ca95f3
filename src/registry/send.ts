/**
 * Sending a blob's bytes from a file to a response with a few reusable buffers.
 *
 * A file stream allocates a new buffer for every read: serving a 1 GiB blob in 4 MiB reads is 256
 * fresh allocations, each a mapping of new pages the kernel zeroes and the collector frees later,
 * so the process grows by tens of MiB of garbage while it serves. Here each response reads into at
 * most two buffers of 1 MiB taken from a pool the whole server shares, and reads into a buffer again
 * only once the socket has taken all its bytes (the write's callback): no allocation per chunk,
 * nothing for the collector, and backpressure by construction (a slow client holds two buffers, and
 * the file is read no faster than the client takes it). A response that fails keeps its buffers out
 * of the pool (the socket may still refer to them); the collector frees them with the response.
 */
import type { ServerResponse } from 'node:http'
import type { RandomAccessBlob } from './storage.js'

export const SEND_CHUNK = 1 << 20
/** Buffers in flight per response: one being read while the other is written. */
const DEPTH = 2
/** Bodies up to this size are read in one go into a buffer of their own size. */
const SMALL = 64 << 10
/** Idle buffers the pool keeps (the rest are left to the collector). */
const POOL_KEEP = 8

const pool: Buffer[] = []

function takeBuffer(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(SEND_CHUNK)
}

function giveBuffer(b: Buffer): void {
  if (pool.length < POOL_KEEP) pool.push(b)
}

/** Idle buffers held by the pool now (for tests). */
export function pooledSendBuffers(): number {
  return pool.length
}

function prematureClose(): Error {
  return Object.assign(new Error('the client closed the connection'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })
}

function shortRead(position: number): Error {
  return Object.assign(new Error(`the blob ended at ${position}, before the length it was served with`), { code: 'ERR_SHORT_READ' })
}

/**
 * Writes bytes `start`..`end` (inclusive) of `blob` to `res` and ends it; the headers (with the
 * Content-Length) must be set already. Resolves once the last byte is handed to the socket; rejects
 * when the client goes away (code ERR_STREAM_PREMATURE_CLOSE) or the file cannot be read.
 */
export async function sendRange(blob: RandomAccessBlob, start: number, end: number, res: ServerResponse): Promise<void> {
  const length = end - start + 1
  if (length <= SMALL) {
    const buf = Buffer.allocUnsafe(length)
    let got = 0
    while (got < length) {
      const n = await blob.read(buf.subarray(got), length - got, start + got)
      if (n === 0) throw shortRead(start + got)
      got += n
    }
    await new Promise<void>((resolve, reject) => {
      const onClose = (): void => reject(prematureClose())
      res.once('close', onClose)
      res.end(buf, () => {
        res.off('close', onClose)
        resolve()
      })
    })
    return
  }
  let position = start
  // the first failure, set by the socket's callbacks while the loop awaits
  const state: { failed: Error | undefined } = { failed: undefined }
  /** The failure so far (a call, so that no check made before an await is trusted after it). */
  const failure = (): Error | undefined => state.failed
  let inFlight = 0
  let wake: (() => void) | undefined
  const wakeUp = (): void => {
    const w = wake
    wake = undefined
    w?.()
  }
  const onClose = (): void => {
    if (inFlight > 0 || position <= end) state.failed ??= prematureClose()
    wakeUp()
  }
  res.on('close', onClose)
  try {
    while (position <= end) {
      while (inFlight >= DEPTH && state.failed === undefined) await new Promise<void>((r) => (wake = r))
      if (state.failed) throw state.failed
      const want = Math.min(SEND_CHUNK, end - position + 1)
      const buf = takeBuffer()
      let got = 0
      try {
        while (got < want) {
          const n = await blob.read(got === 0 ? buf : buf.subarray(got), want - got, position + got)
          if (n === 0) throw shortRead(position + got)
          got += n
        }
      } catch (err) {
        giveBuffer(buf)
        throw err
      }
      const failed = failure()
      if (failed) {
        giveBuffer(buf)
        throw failed
      }
      position += want
      inFlight++
      const written = (err?: Error | null): void => {
        inFlight--
        // only a buffer the socket is done with goes back to the pool
        if (err) state.failed ??= err
        else giveBuffer(buf)
        wakeUp()
      }
      const chunk = want === buf.length ? buf : buf.subarray(0, want)
      if (position > end) res.end(chunk, written)
      else res.write(chunk, written)
    }
    while (inFlight > 0 && state.failed === undefined) await new Promise<void>((r) => (wake = r))
    if (state.failed) throw state.failed
  } finally {
    res.off('close', onClose)
  }
}
