/**
 * Reads a layer tarball a user hands us (any compression), checks every entry, and writes it
 * back as a clean layer tar: names relative and normalised, nothing that climbs out of the
 * root, hard links only to entries inside the layer, mtimes optionally clamped. A corrupt or
 * malicious tarball fails here, before anything is stored.
 */
import type { Readable } from 'node:stream'
import { CairnError } from '../errors/index.js'
import { readTar, writeTar, type TarEntryInput } from '../layer/tar.js'
import { decompressStream } from '../layer/compression.js'
import { entryComponents } from '../layer/path.js'
import { dockerSize } from './layercheck.js'

export interface NormalizedLayer {
  /** The clean, uncompressed layer tar. */
  stream: Readable
  /** Sum of regular file sizes seen so far (final once `stream` has ended). */
  contentSize(): number
  /** The error that stopped the rewrite, if any. */
  error(): Error | undefined
}

export function normalizeLayerStream(source: Readable, opts: { clampMtime?: number; signal?: AbortSignal } = {}): NormalizedLayer {
  let size = 0
  let failure: Error | undefined
  async function* entries(): AsyncGenerator<TarEntryInput> {
    const seen = new Set<string>()
    try {
      const input = decompressStream(source, opts.signal ? { signal: opts.signal } : {})
      for await (const entry of readTar(input, opts.signal ? { signal: opts.signal } : {})) {
        const h = entry.header
        const path = cleanEntryPath(h.path)
        if (path === '') {
          entry.body.resume()
          continue
        }
        const header = { ...h, path }
        if (h.type === 'hardlink') {
          const target = cleanEntryPath(h.linkname)
          if (target === '' || !seen.has(target)) {
            throw new CairnError('UNSAFE_PATH', `invalid layer: hard link ${JSON.stringify(h.path)} points to ${JSON.stringify(h.linkname)}, which is not an earlier entry of the layer`)
          }
          header.linkname = target
        }
        if (opts.clampMtime !== undefined && header.mtime > opts.clampMtime) {
          header.mtime = opts.clampMtime
          header.mtimeNsec = 0
        }
        size += dockerSize(h)
        seen.add(path)
        yield { header, body: entry.body }
      }
    } catch (err) {
      failure = toLayerError(err)
      throw failure
    }
  }
  const stream = writeTar(entries(), opts.signal ? { signal: opts.signal } : {})
  return { stream, contentSize: () => size, error: () => failure }
}

function toLayerError(err: unknown): Error {
  if (typeof err === 'object' && err !== null && (err as { name?: string }).name === 'CairnError') return err as Error
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string' && code.startsWith('Z_')) {
    // zlib's codes: the compressed stream is damaged or cut short
    return new CairnError('INVALID_LAYER', `invalid compressed tar archive: ${(err as Error).message}`, { cause: err })
  }
  return err instanceof Error ? err : new Error(String(err))
}

/** An entry name relative to the layer root (`''` for the root itself); UNSAFE_PATH if it climbs out. */
function cleanEntryPath(name: string): string {
  return entryComponents(name).join('/')
}
