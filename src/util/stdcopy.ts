/**
 * Docker's stream multiplexing ("stdcopy"): each frame is an 8-byte header (the stream type in
 * byte 0, three zero bytes, the payload length as a big-endian uint32) and then the payload.
 * The Engine API uses it for attach, logs and exec of a container without a terminal; Cairn's
 * container monitors speak it on their attach sockets too, with a few more frame types for what
 * flows towards the process (stdin, a window size) and back (the exit code), so that one
 * encoder and one decoder serve every stream.
 *
 * Hand-written: it is a dozen lines of framing, which no maintained package offers for Node.js
 * without a whole Docker client around it.
 */

/** Frame types: Docker's (0 stdin, 1 stdout, 2 stderr, 3 system error) and Cairn's own from 16 on. */
export const FrameTypes = {
  stdin: 0,
  stdout: 1,
  stderr: 2,
  systemError: 3,
  /** Towards the process: a terminal's new size, `cols` and `rows` as two big-endian uint16. */
  resize: 16,
  /** Towards the process: standard input ends. */
  stdinEnd: 17,
  /** From the process: it ended; the exit code as a big-endian int32. */
  exit: 18,
} as const

/** The largest payload one frame carries when a decoder reads untrusted input. */
const MAX_FRAME = 16 << 20

export function encodeFrame(type: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload
  const head = Buffer.alloc(8)
  head[0] = type
  head.writeUInt32BE(body.length, 4)
  return Buffer.concat([head, body])
}

export function resizeFrame(cols: number, rows: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt16BE(Math.max(1, Math.min(65535, Math.trunc(cols))), 0)
  b.writeUInt16BE(Math.max(1, Math.min(65535, Math.trunc(rows))), 2)
  return encodeFrame(FrameTypes.resize, b)
}

export function exitFrame(code: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeInt32BE(code, 0)
  return encodeFrame(FrameTypes.exit, b)
}

export interface Frame {
  type: number
  payload: Buffer
}

/** Splits a byte stream into frames (works for any chunking). A length over `max` is an error. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0)

  constructor(private readonly max = MAX_FRAME) {}

  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    const out: Frame[] = []
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt32BE(4)
      if (len > this.max) throw new Error(`stream frame of ${len} bytes is larger than ${this.max}`)
      if (this.buf.length < 8 + len) break
      out.push({ type: this.buf[0] as number, payload: this.buf.subarray(8, 8 + len) })
      this.buf = this.buf.subarray(8 + len)
    }
    return out
  }

  /** Bytes of an unfinished frame. */
  get pending(): number {
    return this.buf.length
  }
}
