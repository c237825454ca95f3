/**
 * Where gzip members are made: libdeflate through Cairn's own Node-API addon (native/deflate.c,
 * built by node-gyp at `npm ci` where libdeflate's headers are installed), else zlib (node:zlib).
 *
 * libdeflate compresses a whole buffer at once, which is what a block of the parallel gzip is
 * (pgzip.ts); at its level 4 for binaries, 5 for text mixed with binary and 7 for text, and stored
 * as it is where the block is incompressible (chosen per block: native/deflate.c) it makes layers
 * within 1% of what zlib's level 6 makes (0.6% smaller on a Debian root, 0.3% larger on JavaScript)
 * with half its CPU (bench/README.md, "gzip"). Both run on libuv's thread pool, so the event loop
 * (hashing, writing, sending) goes on while blocks compress.
 *
 * The bytes depend on the implementation: a layer compressed where the addon could not be built
 * differs from the same layer compressed with it (both are valid gzip, and either is kept once made,
 * so a second push of it sends the same bytes). `CAIRN_GZIP=zlib` in the environment chooses zlib.
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { gzip as zlibGzipCb } from 'node:zlib'
import { findUpwards } from '../util/addon.js'

const zlibGzip = promisify(zlibGzipCb) as (buf: Buffer, opts: { level: number }) => Promise<Buffer>

/** What the addon exports. */
interface DeflateAddon {
  gzip(input: Buffer, level: number): Promise<Buffer>
  libdeflateVersion: string
}

export interface GzipBackend {
  name: 'libdeflate' | 'zlib'
  /** The library's version (libdeflate's, or zlib's as Node reports it). */
  version: string
  /**
   * Compresses one whole block into one gzip member (no name, mtime 0), off the main thread.
   * `level` undefined: the level that matches zlib's default ratio (6) with this implementation.
   */
  gzip(block: Buffer, level?: number): Promise<Buffer>
}

/**
 * The addon's choice per block of the level that matches zlib's 6 (see native/deflate.c): libdeflate's
 * 4 for binaries, 5 for text mixed with binary, 7 for text (where its 6 makes up to 1.4% more bytes
 * than zlib's 6).
 */
const LIBDEFLATE_AUTO_LEVEL = -1
const ZLIB_DEFAULT_LEVEL = 6

const ADDON_PATH = join('native', 'build', 'Release', 'cairn_deflate.node')

/**
 * The addon's file: `native/build/Release/` of the package, found upwards from this module (the
 * library runs from build/src/layer/, the bundled command from build/cli/).
 */
export function addonPath(from = dirname(fileURLToPath(import.meta.url))): string | undefined {
  return findUpwards(ADDON_PATH, from)
}

/** Loads the addon at `path`; undefined (and the reason) when it is missing or does not load here. */
export function loadAddon(path: string | undefined): { addon?: DeflateAddon; error?: string } {
  if (path === undefined) return { error: `${ADDON_PATH} was not built (libdeflate-dev missing at npm ci?)` }
  try {
    const mod = createRequire(import.meta.url)(path) as Partial<DeflateAddon>
    if (typeof mod.gzip !== 'function' || typeof mod.libdeflateVersion !== 'string') return { error: `${path} is not Cairn's deflate addon` }
    return { addon: mod as DeflateAddon }
  } catch (err) {
    return { error: err instanceof Error ? err.message.split('\n')[0] ?? String(err) : String(err) }
  }
}

export function libdeflateBackend(addon: DeflateAddon): GzipBackend {
  return {
    name: 'libdeflate',
    version: addon.libdeflateVersion,
    gzip: (block, level) => addon.gzip(block, level ?? LIBDEFLATE_AUTO_LEVEL),
  }
}

export const zlibBackend: GzipBackend = {
  name: 'zlib',
  version: process.versions.zlib,
  gzip: (block, level) => zlibGzip(block, { level: level ?? ZLIB_DEFAULT_LEVEL }),
}

let chosen: { backend: GzipBackend; fallbackReason?: string } | undefined

/** The backend this process uses: libdeflate when the addon loads (and CAIRN_GZIP is not `zlib`), else zlib. */
export function gzipBackend(): GzipBackend {
  return chooseBackend().backend
}

/** Why this process compresses with zlib, when it does (undefined with libdeflate). */
export function gzipFallbackReason(): string | undefined {
  return chooseBackend().fallbackReason
}

function chooseBackend(): { backend: GzipBackend; fallbackReason?: string } {
  if (chosen) return chosen
  if (process.env['CAIRN_GZIP'] === 'zlib') {
    chosen = { backend: zlibBackend, fallbackReason: 'CAIRN_GZIP=zlib' }
    return chosen
  }
  const { addon, error } = loadAddon(addonPath())
  chosen = addon ? { backend: libdeflateBackend(addon) } : { backend: zlibBackend, fallbackReason: error ?? 'unknown' }
  return chosen
}
