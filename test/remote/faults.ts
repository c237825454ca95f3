/**
 * A small HTTP proxy for the registry client's tests, put in front of a real registry: it forwards
 * every request unchanged (so the registry builds its Location URLs with the proxy's address) and
 * can, on request, answer with errors, corrupt a blob, cut a connection after some bytes, or hold
 * a request without forwarding it. It counts what it forwards.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export interface Seen {
  method: string
  url: string
  headers: IncomingMessage['headers']
  status?: number
}

export interface Faults {
  /** Answer the next `n` requests matching with `status` (no forwarding). */
  failNext?: { n: number; status: number; match?: (method: string, url: string) => boolean }
  /** Flip a byte in the body of GETs of this blob. */
  corruptBlob?: string
  /** Cut the connection of the next GET of this blob after `bytes` bytes of body (`stall`: keep it open instead). */
  cutBlob?: { digest: string; bytes: number; stall?: boolean; times?: number }
  /** After `afterPatches` PATCH requests went through, hold the next upload request without forwarding it. */
  stallUpload?: { afterPatches: number }
}

export class FaultProxy {
  readonly seen: Seen[] = []
  faults: Faults = {}
  /** Bytes of upload bodies (PATCH, PUT to uploads) forwarded to the registry. */
  uploadBytes = 0
  /** Bytes of blob bodies sent back to clients. */
  blobBytes = 0
  private patches = 0
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()
  private stalledResolve: (() => void) | undefined
  /** Resolves when a request is being held (stallUpload, cutBlob with stall). */
  stalled: Promise<void>
  port = 0

  constructor(private readonly upstream: { host: string; port: number }) {
    this.stalled = new Promise((resolve) => {
      this.stalledResolve = resolve
    })
  }

  get host(): string {
    return `127.0.0.1:${this.port}`
  }

  /** Clears faults and counters (and re-arms `stalled`). */
  reset(faults: Faults = {}): void {
    this.faults = faults
    this.uploadBytes = 0
    this.blobBytes = 0
    this.patches = 0
    this.seen.length = 0
    this.stalled = new Promise((resolve) => {
      this.stalledResolve = resolve
    })
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res))
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s)
      s.on('close', () => this.sockets.delete(s))
    })
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve))
    this.port = (this.server.address() as AddressInfo).port
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()))
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const method = req.method ?? 'GET'
    const url = req.url ?? '/'
    const entry: Seen = { method, url, headers: req.headers }
    this.seen.push(entry)
    const f = this.faults
    if (f.failNext && f.failNext.n > 0 && (f.failNext.match?.(method, url) ?? true)) {
      f.failNext.n--
      entry.status = f.failNext.status
      req.resume()
      res.writeHead(f.failNext.status, { 'Content-Type': 'application/json' })
      res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'injected failure' }] }))
      return
    }
    const isUpload = url.includes('/blobs/uploads/') && (method === 'PATCH' || method === 'PUT')
    if (isUpload && f.stallUpload && this.patches >= f.stallUpload.afterPatches) {
      // hold it: nothing reaches the registry
      entry.status = 0
      req.resume()
      this.stalledResolve?.()
      return
    }
    if (method === 'PATCH') this.patches++
    const up = request({ host: this.upstream.host, port: this.upstream.port, method, path: url, headers: req.headers }, (ures) => {
      entry.status = ures.statusCode ?? 0
      const isBlobGet = method === 'GET' && /\/blobs\/sha256:[a-f0-9]{64}$/.test(url)
      const digest = isBlobGet ? url.slice(url.lastIndexOf('/') + 1) : ''
      res.writeHead(ures.statusCode ?? 502, ures.headers)
      let sent = 0
      let flipped = false
      const cut = f.cutBlob && f.cutBlob.digest === digest && (f.cutBlob.times ?? 1) > 0 ? f.cutBlob : undefined
      if (cut) cut.times = (cut.times ?? 1) - 1
      ures.on('data', (chunk: Buffer) => {
        let out = chunk
        if (isBlobGet && f.corruptBlob === digest && !flipped && out.length > 0) {
          out = Buffer.from(out)
          const i = Math.min(out.length - 1, 20)
          out[i] = (out[i] ?? 0) ^ 0xff
          flipped = true
        }
        if (cut && sent + out.length >= cut.bytes) {
          const part = out.subarray(0, Math.max(0, cut.bytes - sent))
          if (isBlobGet) this.blobBytes += part.length
          sent += part.length
          res.write(part)
          ures.destroy()
          if (cut.stall) {
            this.stalledResolve?.()
            return
          }
          // flush what was written, then break the connection
          setTimeout(() => res.socket?.destroy(), 50)
          return
        }
        if (isBlobGet) this.blobBytes += out.length
        sent += out.length
        res.write(out)
      })
      ures.on('end', () => res.end())
      ures.on('error', () => res.destroy())
    })
    up.on('error', () => res.destroy())
    if (isUpload) {
      req.on('data', (c: Buffer) => {
        this.uploadBytes += c.length
      })
    }
    req.pipe(up)
  }
}
