/**
 * Streaming tar reader and writer (POSIX ustar + PAX; the reader also takes GNU
 * and v7 archives). Binary-safe PAX values, bounded memory, deterministic output.
 */
import { Readable } from 'node:stream'
import { CairnError, throwIfAborted } from '../errors/index.js'
import {
  BLOCK_SIZE,
  MAX_META_SIZE,
  buildHeader,
  decodeHeaderBlock,
  encodeHeader,
  isZeroBlock,
  padding,
  parsePaxRecords,
  tarHeader,
  type TarHeader,
  type TarHeaderInit,
} from './tar-header.js'

export {
  BLOCK_SIZE,
  MAX_META_SIZE,
  TarEntryTypes,
  encodeHeader,
  formatPaxTime,
  parsePaxTime,
  tarHeader,
  type TarEntryType,
  type TarHeader,
  type TarHeaderInit,
} from './tar-header.js'

/** One entry of an archive being read. `body` must be consumed before the next entry is requested, or it is discarded. */
export interface TarEntry {
  header: TarHeader
  body: Readable
}

export interface ReadTarOptions {
  signal?: AbortSignal
}

const EMPTY = Buffer.alloc(0)
const READ_CHUNK = 64 * 1024

function truncated(): CairnError {
  return new CairnError('INVALID_LAYER', 'truncated tar archive: unexpected end of data')
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  throw new TypeError('tar source must yield Buffers or Uint8Arrays')
}

/** Pull-based byte reader over an async iterable of chunks; keeps at most one chunk buffered. */
class ByteSource {
  private readonly it: AsyncIterator<unknown>
  private buf: Buffer = EMPTY
  private done = false
  private inflight = false

  constructor(private readonly source: AsyncIterable<unknown>, private readonly signal: AbortSignal | undefined) {
    this.it = source[Symbol.asyncIterator]()
  }

  /**
   * The next chunk, or a rejection as soon as the signal fires. The abort listener lives only as
   * long as this one read: racing every read against a single long-lived promise would pile up a
   * reaction per chunk on it (hundreds of megabytes over a large layer).
   */
  private next(): Promise<IteratorResult<unknown>> {
    const signal = this.signal
    if (!signal) return this.it.next()
    let onAbort: (() => void) | undefined
    const aborted = new Promise<never>((_, reject) => {
      onAbort = (): void => reject(new CairnError('ABORTED', 'operation aborted', { cause: signal.reason }))
      signal.addEventListener('abort', onAbort, { once: true })
    })
    return Promise.race([this.it.next(), aborted]).finally(() => {
      if (onAbort) signal.removeEventListener('abort', onAbort)
    })
  }

  private async fill(): Promise<boolean> {
    while (this.buf.length === 0) {
      if (this.done) return false
      throwIfAborted(this.signal)
      this.inflight = true
      const next = await this.next()
      this.inflight = false
      if (next.done) {
        this.done = true
        return false
      }
      this.buf = toBuffer(next.value)
    }
    return true
  }

  /** Up to `max` bytes (at least one), or null at end of input. */
  async read(max: number): Promise<Buffer | null> {
    if (!(await this.fill())) return null
    const n = Math.min(max, this.buf.length)
    const out = this.buf.subarray(0, n)
    this.buf = this.buf.subarray(n)
    return out
  }

  /** Exactly `n` bytes; null when the input ends before the first byte; throws when it ends part-way. */
  async readExact(n: number): Promise<Buffer | null> {
    const first = await this.read(n)
    if (first === null) return null
    if (first.length === n) return first
    const parts = [first]
    let got = first.length
    while (got < n) {
      const more = await this.read(n - got)
      if (more === null) throw truncated()
      parts.push(more)
      got += more.length
    }
    return Buffer.concat(parts, n)
  }

  async skip(n: number): Promise<void> {
    let left = n
    while (left > 0) {
      const chunk = await this.read(Math.min(left, READ_CHUNK))
      if (chunk === null) throw truncated()
      left -= chunk.length
    }
  }

  /** Reads and discards everything left (so that a hash over the input sees all of it). */
  async drain(): Promise<void> {
    while ((await this.read(Number.MAX_SAFE_INTEGER)) !== null) {
      // discard
    }
  }

  async close(): Promise<void> {
    if (this.done) return
    this.done = true
    if (this.inflight) {
      // An async iterator cannot return while its next() is pending: end the stream under it instead.
      if (this.source instanceof Readable) this.source.destroy()
      Promise.resolve(this.it.return?.()).catch(() => {})
      return
    }
    await this.it.return?.()
  }
}

/** The readable body of one entry, pulling from the shared source on demand. */
class EntryBody extends Readable {
  private remaining: number
  private pending: Promise<void> | undefined

  constructor(private readonly source: ByteSource, size: number) {
    super({ highWaterMark: READ_CHUNK })
    this.remaining = size
  }

  override _read(): void {
    if (this.remaining === 0) {
      this.push(null)
      return
    }
    this.pending = this.source.read(Math.min(this.remaining, READ_CHUNK)).then(
      (chunk) => {
        this.pending = undefined
        if (chunk === null) {
          this.destroy(truncated())
          return
        }
        this.remaining -= chunk.length
        this.push(chunk)
        if (this.remaining === 0) this.push(null)
      },
      (err: unknown) => {
        this.pending = undefined
        this.destroy(err instanceof Error ? err : new Error(String(err)))
      },
    )
  }

  /** Skips what the consumer did not read, then the block padding. */
  async finish(size: number): Promise<void> {
    while (this.pending) await this.pending
    const unread = this.remaining
    this.remaining = 0
    if (unread > 0 && !this.destroyed) this.destroy()
    await this.source.skip(unread + padding(size))
  }
}

async function readMeta(source: ByteSource, size: number, what: string): Promise<Buffer> {
  if (size > MAX_META_SIZE) {
    throw new CairnError('INVALID_LAYER', `tar ${what} of ${size} bytes exceeds the ${MAX_META_SIZE}-byte limit`)
  }
  const data = (await source.readExact(size)) ?? (size === 0 ? EMPTY : null)
  if (data === null) throw truncated()
  await source.skip(padding(size))
  return data
}

function cStringOf(data: Buffer): string {
  const nul = data.indexOf(0)
  return (nul === -1 ? data : data.subarray(0, nul)).toString('utf8')
}

/** Reads headers (and their PAX / GNU meta entries) up to the next real entry; null at end of archive. */
async function nextHeader(source: ByteSource, globals: Map<string, Buffer>): Promise<TarHeader | null> {
  let local: Map<string, Buffer> | undefined
  let longName: string | undefined
  let longLink: string | undefined
  for (;;) {
    const block = await source.readExact(BLOCK_SIZE)
    const pendingMeta = local !== undefined || longName !== undefined || longLink !== undefined
    if (block === null) {
      if (pendingMeta) throw truncated()
      return null // EOF without end-of-archive blocks: tolerated
    }
    if (isZeroBlock(block)) {
      if (pendingMeta) throw new CairnError('INVALID_LAYER', 'tar archive ends after an extended header')
      const second = await source.readExact(BLOCK_SIZE)
      if (second !== null && !isZeroBlock(second)) {
        throw new CairnError('INVALID_LAYER', 'invalid tar archive: a zero block followed by data')
      }
      return null
    }
    const raw = decodeHeaderBlock(block)
    switch (raw.typeflag) {
      case 'x': {
        const records = parsePaxRecords(await readMeta(source, raw.size, 'PAX header'))
        local = new Map([...(local ?? []), ...records])
        continue
      }
      case 'g': {
        for (const [key, value] of parsePaxRecords(await readMeta(source, raw.size, 'PAX global header'))) {
          if (key === 'path' || key === 'linkpath' || key === 'size') continue
          if (value.length === 0) globals.delete(key)
          else globals.set(key, value)
        }
        continue
      }
      case 'L':
        longName = cStringOf(await readMeta(source, raw.size, 'GNU long name'))
        continue
      case 'K':
        longLink = cStringOf(await readMeta(source, raw.size, 'GNU long link name'))
        continue
      case 'V': // GNU volume label: no content of its own
        await source.skip(raw.size + padding(raw.size))
        continue
      default: {
        const pax = new Map([...globals, ...(local ?? [])])
        return buildHeader(raw, pax, longName, longLink)
      }
    }
  }
}

/**
 * Reads a tar archive as a stream of entries. Memory is bounded by the largest
 * header (PAX and GNU long names are capped at `MAX_META_SIZE`). An entry's body
 * not consumed when the iteration advances is discarded. After the end-of-archive
 * marker the rest of the input is read and dropped, so a digest computed over the
 * input covers all of it.
 *
 * Errors: `INVALID_LAYER` for bad checksums, garbage and truncation; `ABORTED`.
 */
export async function* readTar(
  source: AsyncIterable<Buffer | Uint8Array> | Readable,
  opts: ReadTarOptions = {},
): AsyncGenerator<TarEntry, void, undefined> {
  const input = new ByteSource(source, opts.signal)
  const globals = new Map<string, Buffer>()
  let body: EntryBody | undefined
  try {
    for (;;) {
      throwIfAborted(opts.signal)
      const header = await nextHeader(input, globals)
      if (header === null) break
      body = new EntryBody(input, header.size)
      yield { header, body }
      await body.finish(header.size)
      body = undefined
    }
    await input.drain()
  } catch (err) {
    body?.destroy(err instanceof Error ? err : undefined)
    throw err
  } finally {
    if (body && !body.destroyed && !body.readableEnded) body.destroy()
    await input.close()
  }
}

// ---------------------------------------------------------------------------
// Writing.

/** Content of a `file` entry: a Buffer or a stream of exactly `header.size` bytes. */
export type TarBody = Uint8Array | AsyncIterable<Uint8Array> | Readable

export interface TarEntryInput {
  header: TarHeader | TarHeaderInit
  body?: TarBody
}

export interface WriteTarOptions {
  signal?: AbortSignal
}

const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK_SIZE)

function sizeMismatch(path: string, expected: number, got: number): CairnError {
  return new CairnError('INVALID_ARGUMENT', `tar entry ${JSON.stringify(path)}: header size is ${expected} but the body has ${got} bytes`)
}

async function* encodeEntries(
  entries: AsyncIterable<TarEntryInput> | Iterable<TarEntryInput>,
  signal: AbortSignal | undefined,
): AsyncGenerator<Buffer, void, undefined> {
  for await (const entry of entries) {
    throwIfAborted(signal)
    const header = tarHeader(entry.header)
    const body = entry.body
    try {
      yield encodeHeader(header)
      const expected = header.type === 'file' ? header.size : 0
      let written = 0
      if (body instanceof Uint8Array) {
        written = body.length
        if (written !== expected) throw sizeMismatch(header.path, expected, written)
        if (written > 0) yield toBuffer(body)
      } else if (body !== undefined) {
        for await (const chunk of body) {
          throwIfAborted(signal)
          const buf = toBuffer(chunk)
          written += buf.length
          if (written > expected) throw sizeMismatch(header.path, expected, written)
          if (buf.length > 0) yield buf
        }
        if (written !== expected) throw sizeMismatch(header.path, expected, written)
      } else if (expected !== 0) {
        throw sizeMismatch(header.path, expected, 0)
      }
      const pad = padding(written)
      if (pad > 0) yield Buffer.alloc(pad)
    } finally {
      if (body instanceof Readable && !body.destroyed && !body.readableEnded) body.destroy()
    }
  }
  yield END_OF_ARCHIVE
}

/** Chunks smaller than this are gathered into one of at least this size before they go on. */
const GATHER = 256 * 1024

/**
 * A tar of many small files is thousands of headers, bodies and paddings of a few hundred
 * bytes each: gathered into chunks of GATHER bytes, each stream and hash downstream is called
 * for a chunk per GATHER bytes instead of three per entry (one copy of the small ones).
 */
async function* gather(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer, void, undefined> {
  let parts: Buffer[] = []
  let size = 0
  for await (const b of chunks) {
    if (b.length >= GATHER) {
      if (size > 0) yield Buffer.concat(parts, size)
      parts = []
      size = 0
      yield b
      continue
    }
    parts.push(b)
    size += b.length
    if (size >= GATHER) {
      yield Buffer.concat(parts, size)
      parts = []
      size = 0
    }
  }
  if (size > 0) yield Buffer.concat(parts, size)
}

/**
 * Writes entries as a tar archive (ustar, with PAX headers only where a value
 * does not fit). Pull-driven: an entry's body is read only as fast as the
 * returned stream is consumed. Identical input gives identical bytes.
 */
export function writeTar(
  entries: AsyncIterable<TarEntryInput> | Iterable<TarEntryInput>,
  opts: WriteTarOptions = {},
): Readable {
  const { signal } = opts
  const out = Readable.from(gather(encodeEntries(entries, signal)), { objectMode: false, highWaterMark: READ_CHUNK })
  if (signal) {
    const onAbort = (): void => {
      out.destroy(new CairnError('ABORTED', 'operation aborted', { cause: signal.reason }))
    }
    if (signal.aborted) onAbort()
    else {
      signal.addEventListener('abort', onAbort, { once: true })
      out.once('close', () => signal.removeEventListener('abort', onAbort))
    }
  }
  return out
}
