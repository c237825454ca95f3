/**
 * One request and its answer, whether the request came as plain HTTP or as an upgrade (Docker's
 * clients ask `Connection: Upgrade` / `Upgrade: tcp` for attach and exec, and then use the
 * connection both ways: a "hijacked" connection). Handlers answer through this one type:
 * JSON, a status, a stream of JSON lines, a byte stream, or the hijacked connection itself.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { PassThrough, Readable, type Duplex, type Writable } from 'node:stream'
import { HttpError } from './errors.js'

/** Bodies larger than this are refused (413) where a handler reads JSON. */
const MAX_JSON_BODY = 4 << 20

export interface Hijacked {
  /** What the client sends after the request (stdin). */
  input: Readable
  /** Towards the client. */
  output: Writable
  /** Ends the exchange (closes the connection of an upgraded one). */
  close(): void
  /** Resolves when the client goes away. */
  readonly gone: Promise<void>
}

const REASONS: Record<number, string> = {
  101: 'UPGRADED', 200: 'OK', 201: 'Created', 204: 'No Content', 304: 'Not Modified', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden',
  404: 'Not Found', 409: 'Conflict', 413: 'Payload Too Large', 429: 'Too Many Requests', 500: 'Internal Server Error', 501: 'Not Implemented', 503: 'Service Unavailable',
}

export abstract class Exchange {
  /** The path without the `/vX.Y` prefix. */
  path = '/'
  /** The API version the client asked for (or the server's). */
  version = ''
  params: Record<string, string> = {}
  readonly query: URLSearchParams
  private sent = false

  constructor(readonly req: IncomingMessage) {
    this.query = new URL(req.url ?? '/', 'http://engine').searchParams
  }

  get method(): string {
    return (this.req.method ?? 'GET').toUpperCase()
  }

  get answered(): boolean {
    return this.sent
  }

  protected markSent(): void {
    if (this.sent) throw new Error('the request was answered already')
    this.sent = true
  }

  /** Writes the status line and headers; returns the stream for the body. */
  protected abstract head(status: number, headers: Record<string, string>): Writable
  /** The request body as a stream. */
  abstract body(): Readable
  abstract hijack(contentType: string): Hijacked

  /** A query flag as Docker reads it: `1`, `true`, `True` are true. */
  flag(name: string, fallback = false): boolean {
    const v = this.query.get(name)
    if (v === null || v === '') return fallback
    return v === '1' || v.toLowerCase() === 'true'
  }

  int(name: string): number | undefined {
    const v = this.query.get(name)
    if (v === null || v === '') return undefined
    const n = Number(v)
    if (!Number.isInteger(n)) throw new HttpError(400, `invalid value for ${name}: ${JSON.stringify(v)}`)
    return n
  }

  /** The body as JSON (empty: `fallback`); malformed JSON 400, too large 413. */
  async json<T>(fallback?: T): Promise<T> {
    const chunks: Buffer[] = []
    let size = 0
    for await (const c of this.body()) {
      const b = Buffer.isBuffer(c) ? c : Buffer.from(c as string)
      size += b.length
      if (size > MAX_JSON_BODY) throw new HttpError(413, `request body larger than ${MAX_JSON_BODY} bytes`)
      chunks.push(b)
    }
    const text = Buffer.concat(chunks).toString('utf8').trim()
    if (text === '') {
      if (fallback !== undefined) return fallback
      throw new HttpError(400, 'request body is empty; JSON expected')
    }
    try {
      return JSON.parse(text) as T
    } catch (err) {
      throw new HttpError(400, `invalid JSON: ${(err as Error).message}`)
    }
  }

  send(status: number, body?: unknown, headers: Record<string, string> = {}): void {
    if (body === undefined) {
      this.head(status, headers).end()
      return
    }
    const text = `${JSON.stringify(body)}\n`
    this.head(status, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)), ...headers }).end(text)
  }

  text(status: number, text: string, headers: Record<string, string> = {}): void {
    this.head(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)), ...headers }).end(text)
  }

  /** A streamed answer (sent at once, chunked). */
  stream(status: number, contentType: string, headers: Record<string, string> = {}): Writable {
    return this.head(status, { 'Content-Type': contentType, ...headers })
  }

  /** A stream of JSON messages (pull, push, build, events), one per line. */
  jsonStream(status = 200): { write(o: unknown): void; end(): void; readonly closed: boolean } {
    const out = this.stream(status, 'application/json')
    let closed = false
    out.on('close', () => (closed = true))
    out.on('error', () => (closed = true))
    return {
      write: (o) => {
        if (!closed && !out.writableEnded) out.write(`${JSON.stringify(o)}\n`)
      },
      end: () => {
        if (!out.writableEnded) out.end()
      },
      get closed() {
        return closed
      },
    }
  }

  /** Resolves when the client goes away before the answer ended. */
  abstract readonly gone: Promise<void>
}

/** A plain HTTP request. */
export class HttpExchange extends Exchange {
  readonly gone: Promise<void>

  constructor(req: IncomingMessage, private readonly res: ServerResponse) {
    super(req)
    this.gone = new Promise((resolve) => {
      res.once('close', () => resolve())
    })
  }

  protected head(status: number, headers: Record<string, string>): Writable {
    this.markSent()
    this.res.writeHead(status, headers)
    this.res.flushHeaders()
    return this.res
  }

  body(): Readable {
    return this.req
  }

  hijack(contentType: string): Hijacked {
    const output = this.head(200, { 'Content-Type': contentType })
    return {
      input: this.req,
      output,
      close: () => {
        if (!this.res.writableEnded) this.res.end()
      },
      gone: this.gone,
    }
  }
}

/**
 * An upgrade request: Node.js hands over the socket as is, so the body (exec's start options) is
 * read here by its Content-Length, and the answer written by hand.
 */
export class UpgradeExchange extends Exchange {
  readonly gone: Promise<void>
  private rest: Buffer

  constructor(req: IncomingMessage, private readonly socket: Duplex, head: Buffer) {
    super(req)
    this.rest = head
    socket.on('error', () => undefined)
    this.gone = new Promise((resolve) => {
      socket.once('close', () => resolve())
    })
  }

  protected head(status: number, headers: Record<string, string>): Writable {
    this.markSent()
    const lines = [`HTTP/1.1 ${status} ${REASONS[status] ?? 'Status'}`]
    const h: Record<string, string> = { ...headers }
    // an answer that is not the upgrade ends the connection after its body
    if (status !== 101 && h['Content-Length'] === undefined) h['Connection'] = 'close'
    for (const [k, v] of Object.entries(h)) lines.push(`${k}: ${v}`)
    this.socket.write(`${lines.join('\r\n')}\r\n\r\n`)
    const socket = this.socket
    if (status === 101) return socket
    const out = new PassThrough()
    out.on('data', (b: Buffer) => socket.write(b))
    out.on('end', () => socket.end())
    return out
  }

  body(): Readable {
    const length = Number(this.req.headers['content-length'] ?? 0)
    const rest = this.rest
    this.rest = Buffer.alloc(0)
    if (!(length > 0)) {
      if (rest.length > 0) this.socket.unshift(rest)
      return Readable.from([])
    }
    const socket = this.socket
    const first = rest.subarray(0, length)
    const after = rest.subarray(length)
    if (after.length > 0) socket.unshift(after)
    let need = length - first.length
    const out = new PassThrough()
    if (first.length > 0) out.write(first)
    if (need === 0) {
      out.end()
      return out
    }
    const onData = (b: Buffer): void => {
      const take = b.subarray(0, need)
      need -= take.length
      out.write(take)
      if (need === 0) {
        socket.off('data', onData)
        socket.pause()
        if (b.length > take.length) socket.unshift(b.subarray(take.length))
        out.end()
      }
    }
    socket.on('data', onData)
    socket.resume()
    return out
  }

  hijack(contentType: string): Hijacked {
    const socket = this.head(101, { 'Content-Type': contentType, Connection: 'Upgrade', Upgrade: 'tcp' }) as Duplex
    if (this.rest.length > 0) {
      socket.unshift(this.rest)
      this.rest = Buffer.alloc(0)
    }
    return {
      input: socket,
      output: socket,
      close: () => {
        if (!socket.writableEnded) socket.end()
        setTimeout(() => socket.destroy(), 1000).unref()
      },
      gone: this.gone,
    }
  }
}
