/**
 * Reads the frame structure of a zstd stream (RFC 8878 §3.1) as its bytes pass, without
 * decompressing, so that each frame goes to a decompressor of its own, every frame must end
 * (its last block, then its checksum when the header announces one) before the stream does,
 * and a frame must decompress to the content size its header declares. Written here rather
 * than taken from a library because none reads the framing alone, and the decompressors cannot
 * be trusted with it: Node.js 22's built-in zstd decompresses a stream cut short to nothing (or,
 * cut inside the checksum, to everything) without an error, and stops after the first of
 * several frames. Only headers are parsed; block contents are skipped by their sizes.
 */
import { once } from 'node:events'
import { Transform, type TransformCallback } from 'node:stream'
import { CairnError } from '../errors/index.js'

const ZSTD_MAGIC = 0xfd2fb528
const SKIPPABLE_MASK = 0xfffffff0
const SKIPPABLE_MAGIC = 0x184d2a50
/** RFC 8878: a block is at most 128 KiB. */
const MAX_BLOCK = 128 * 1024

type State =
  | 'magic' // 4 bytes: which kind of frame
  | 'skippable-size' // 4 bytes
  | 'descriptor' // 1 byte: Frame_Header_Descriptor
  | 'header-rest' // window descriptor, dictionary ID, frame content size
  | 'block-header' // 3 bytes
  | 'skip' // block content, skippable frame content or the checksum

function corrupt(message: string): CairnError {
  return new CairnError('INVALID_LAYER', `corrupt zstd stream: ${message}`)
}

/** A piece of one frame's bytes, as `ZstdFrameScanner.push` cuts a chunk. */
export interface FrameSegment {
  bytes: Buffer
  /** undefined while the frame's magic number is incomplete */
  kind: 'zstd' | 'skippable' | undefined
  /** the frame's declared content size (known by the time it ends), if it declares one */
  contentSize: bigint | undefined
  /** true when the frame ends with this piece */
  ends: boolean
}

/** The frame grammar of a zstd stream, fed in pieces of any size. */
class ZstdFrameScanner {
  private state: State = 'magic'
  /** bytes gathered for the field being read */
  private readonly field = Buffer.alloc(14)
  private fieldLength = 0
  private need = 4
  private skipLeft = 0
  private afterSkip: State = 'block-header'
  private checksum = false
  private descriptor = 0
  private kind: FrameSegment['kind']
  private contentSize: bigint | undefined
  private frameEnded = false
  /** frames seen (zstd and skippable) */
  frames = 0
  /** stream offset, for messages */
  private offset = 0

  /** Cuts `chunk` at frame ends; throws INVALID_LAYER where the bytes break the grammar. */
  push(chunk: Buffer): FrameSegment[] {
    const segments: FrameSegment[] = []
    let start = 0
    let i = 0
    while (i < chunk.length) {
      if (this.state === 'skip') {
        const n = Math.min(this.skipLeft, chunk.length - i)
        this.skipLeft -= n
        i += n
        this.offset += n
        if (this.skipLeft === 0) this.after(this.afterSkip)
      } else {
        const n = Math.min(this.need - this.fieldLength, chunk.length - i)
        chunk.copy(this.field, this.fieldLength, i, i + n)
        this.fieldLength += n
        i += n
        this.offset += n
        if (this.fieldLength === this.need) this.fieldDone()
      }
      if (this.frameEnded) {
        segments.push({ bytes: chunk.subarray(start, i), kind: this.kind, contentSize: this.contentSize, ends: true })
        start = i
        this.frameEnded = false
        this.kind = undefined
        this.contentSize = undefined
      }
    }
    if (start < chunk.length) segments.push({ bytes: chunk.subarray(start), kind: this.kind, contentSize: this.contentSize, ends: false })
    return segments
  }

  /** True when the bytes so far end at a frame boundary. */
  get atBoundary(): boolean {
    return this.state === 'magic' && this.fieldLength === 0
  }

  /** Throws INVALID_LAYER unless the stream held at least one frame and ended between frames. */
  end(): void {
    if (!this.atBoundary) throw corrupt(`unexpected end of stream at byte ${this.offset} (truncated frame)`)
    if (this.frames === 0) throw corrupt('no zstd frame')
  }

  private read(state: State, need: number): void {
    this.state = state
    this.need = need
    this.fieldLength = 0
  }

  /** Moves on to `state` after a field or a skipped run: a frame ends where the next magic begins. */
  private after(state: State): void {
    if (state === 'magic') this.frameEnded = true
    this.read(state, state === 'magic' ? 4 : 3)
  }

  private skip(n: number, then: State): void {
    if (n === 0) return this.after(then)
    this.fieldLength = 0
    this.state = 'skip'
    this.skipLeft = n
    this.afterSkip = then
  }

  private fieldDone(): void {
    const f = this.field
    switch (this.state) {
      case 'magic': {
        const magic = f.readUInt32LE(0)
        if (magic === ZSTD_MAGIC) {
          this.kind = 'zstd'
          this.frames++
          return this.read('descriptor', 1)
        }
        if (((magic & SKIPPABLE_MASK) >>> 0) === SKIPPABLE_MAGIC) {
          this.kind = 'skippable'
          this.frames++
          return this.read('skippable-size', 4)
        }
        throw corrupt(`unknown frame magic 0x${magic.toString(16).padStart(8, '0')} at byte ${this.offset - 4}`)
      }
      case 'skippable-size':
        return this.skip(f.readUInt32LE(0), 'magic')
      case 'descriptor': {
        const d = f[0] ?? 0
        if (d & 0x08) throw corrupt(`reserved bit set in a frame header at byte ${this.offset - 1}`)
        this.descriptor = d
        this.checksum = (d & 0x04) !== 0
        const rest = (singleSegment(d) ? 0 : 1) + dictionaryIdBytes(d) + contentSizeBytes(d)
        if (rest === 0) return this.read('block-header', 3)
        return this.read('header-rest', rest)
      }
      case 'header-rest': {
        const d = this.descriptor
        const bytes = contentSizeBytes(d)
        const at = this.need - bytes
        if (bytes === 1) this.contentSize = BigInt(f.readUInt8(at))
        else if (bytes === 2) this.contentSize = BigInt(f.readUInt16LE(at)) + 256n
        else if (bytes === 4) this.contentSize = BigInt(f.readUInt32LE(at))
        else if (bytes === 8) this.contentSize = f.readBigUInt64LE(at)
        return this.read('block-header', 3)
      }
      case 'block-header': {
        const h = f.readUIntLE(0, 3)
        const last = (h & 1) === 1
        const type = (h >> 1) & 0x03
        const size = h >>> 3
        if (type === 3) throw corrupt(`reserved block type at byte ${this.offset - 3}`)
        if (size > MAX_BLOCK) throw corrupt(`block of ${size} bytes (at most ${MAX_BLOCK}) at byte ${this.offset - 3}`)
        const content = type === 1 ? 1 : size // RLE: one byte, repeated
        // after the last block comes the checksum, if any (skipped too: the decompressor checks
        // it), then the next frame
        if (last) return this.skip(this.checksum ? content + 4 : content, 'magic')
        return this.skip(content, 'block-header')
      }
      case 'skip':
        return
    }
  }
}

function singleSegment(descriptor: number): boolean {
  return (descriptor & 0x20) !== 0
}

function dictionaryIdBytes(descriptor: number): number {
  return [0, 1, 2, 4][descriptor & 0x03] ?? 0
}

function contentSizeBytes(descriptor: number): number {
  const flag = descriptor >> 6
  return flag === 0 ? (singleSegment(descriptor) ? 1 : 0) : 1 << flag
}

/**
 * A zstd decompressor that reads the framing itself (ZstdFrameScanner) and gives each frame to
 * a decompressor of its own, made by `makeDecompressor`: a stream cut short, or a frame that
 * decompresses to other than its declared content size, fails with INVALID_LAYER whatever the
 * decompressor says; skippable frames are skipped.
 */
export class CheckedZstdDecompress extends Transform {
  private readonly scanner = new ZstdFrameScanner()
  private readonly makeDecompressor: () => Transform
  /** the current frame's decompressor, and what it produced */
  private inner: Transform | undefined
  private produced = 0n
  /** the first bytes of a frame whose magic number is not complete yet */
  private held: Buffer[] = []

  constructor(makeDecompressor: () => Transform) {
    super()
    this.makeDecompressor = makeDecompressor
  }

  override _read(size: number): void {
    this.inner?.resume()
    super._read(size)
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.feed(chunk).then(() => cb(), (err: unknown) => cb(err as Error))
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.scanner.end()
      cb()
    } catch (err) {
      cb(err as Error)
    }
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.inner?.destroy()
    cb(err)
  }

  private async feed(chunk: Buffer): Promise<void> {
    for (const seg of this.scanner.push(chunk)) {
      if (seg.kind === undefined) {
        this.held.push(seg.bytes)
        continue
      }
      const bytes = this.held.length > 0 ? Buffer.concat([...this.held, seg.bytes]) : seg.bytes
      this.held = []
      if (seg.kind === 'skippable') continue
      const inner = this.inner ?? this.start()
      if (!inner.write(bytes)) await once(inner, 'drain')
      if (seg.ends) {
        const ended = once(inner, 'end')
        inner.end()
        await ended
        this.inner = undefined
        if (seg.contentSize !== undefined && seg.contentSize !== this.produced) {
          throw corrupt(`a frame declares ${seg.contentSize} bytes of content but decompresses to ${this.produced}`)
        }
      }
    }
  }

  private start(): Transform {
    const inner = this.makeDecompressor()
    this.inner = inner
    this.produced = 0n
    inner.on('data', (out: Buffer) => {
      this.produced += BigInt(out.length)
      if (!this.push(out)) inner.pause()
    })
    // also seen by the once() being awaited, if any; else it ends this stream
    inner.on('error', (err: Error) => this.destroy(err))
    return inner
  }
}
