/**
 * Examines a layer blob in one pass: its digest (of the bytes as stored), its compression,
 * its diffID (of the uncompressed tar) and sizes, while checking that the tar is well formed
 * and that no entry climbs out of the root. Nothing is written.
 */
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream'
import { byteCounter, pipeAll } from '../util/stream.js'
import { noteStreamed } from '../util/reclaim.js'
import { CairnError } from '../errors/index.js'
import { type DiffId, type Digest, HashingStream } from '../oci/digest.js'
import type { Compression } from '../oci/mediatype.js'
import { decompressor, sniffCompression } from '../layer/compression.js'
import { readTar, type TarHeader } from '../layer/tar.js'
import { entryComponents } from '../layer/path.js'

export interface LayerFacts {
  digest: Digest
  /** Bytes as stored. */
  compressedSize: number
  compression: Compression
  diffId: DiffId
  /** Bytes of the uncompressed tar. */
  diffSize: number
  /** Sum of regular file sizes: the layer's size as Docker reports it. */
  size: number
}

export async function examineLayer(source: Readable, opts: { signal?: AbortSignal; onBytes?: (n: number) => void; label?: string } = {}): Promise<LayerFacts> {
  const label = opts.label ?? 'layer'
  const stored = new HashingStream()
  const tee = new PassThrough({ highWaterMark: 1 << 20 })
  const storedDone = pipeAll(opts.onBytes ? [source, stored, byteCounter(opts.onBytes), tee] : [source, stored, tee], opts.signal)
  let compression: Compression = 'none'
  const diff = new HashingStream()
  let size = 0
  const parse = async (): Promise<void> => {
    const sniffed = await sniffCompression(tee, opts.signal ? { signal: opts.signal } : {})
    compression = sniffed.compression
    // the uncompressed bytes, counted for the process's collections (util/reclaim.ts)
    const tap = new Transform({
      transform(chunk: Buffer, _enc, cb: TransformCallback) {
        noteStreamed(chunk.length)
        cb(null, chunk)
      },
    })
    const plainDone = pipeAll(compression === 'none' ? [sniffed.stream, diff, tap] : [sniffed.stream, decompressor(compression), diff, tap], opts.signal)
    plainDone.catch(() => undefined)
    for await (const entry of readTar(tap, opts.signal ? { signal: opts.signal } : {})) {
      const h = entry.header
      entryComponents(h.path)
      if (h.type === 'hardlink') entryComponents(h.linkname)
      size += dockerSize(h)
      entry.body.resume()
    }
    // readTar reads on past the end-of-archive marker, so the diffID covers every byte
    await plainDone
  }
  try {
    await Promise.all([storedDone, parse()])
  } catch (err) {
    source.destroy()
    tee.destroy()
    if (typeof err === 'object' && err !== null && (err as { name?: string }).name === 'CairnError') {
      const e = err as CairnError
      throw new CairnError(e.code, `${label}: ${e.message}`, { cause: err })
    }
    const code = (err as { code?: unknown } | null)?.code
    if (typeof code === 'string' && code.startsWith('Z_')) {
      throw new CairnError('INVALID_LAYER', `${label}: damaged compressed data (${(err as Error).message})`, { cause: err })
    }
    throw err
  }
  return { digest: stored.digest, compressedSize: stored.size, compression, diffId: diff.diffId, diffSize: diff.size, size }
}

/**
 * What an entry adds to a layer's size as Docker reports it: Docker sums the lstat sizes of
 * everything but directories once unpacked, so a regular file counts its bytes, a symlink
 * the length of its target, and a hard link nothing (its inode is counted once).
 */
export function dockerSize(h: TarHeader): number {
  if (h.type === 'file') return h.size
  if (h.type === 'symlink') return Buffer.byteLength(h.linkname)
  return 0
}

export function assertDiffId(facts: LayerFacts, expected: DiffId | undefined, label: string): void {
  if (expected === undefined) throw new CairnError('MANIFEST_INVALID', `${label}: the image config lists fewer layers than the manifest`)
  if (facts.diffId !== expected) {
    throw new CairnError('DIGEST_INVALID', `${label}: its content does not match the image config (diffID ${facts.diffId}, expected ${expected})`)
  }
}
