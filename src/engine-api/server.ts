/**
 * The Engine API server: a unix socket (root-only: mode 0660, group `cairn` when that group
 * exists, as dockerd's) and optionally TCP. TCP is refused on anything but a loopback address
 * unless TLS with client certificates is configured (`tlsverify`), because the API is root on
 * this machine to whoever reaches it.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { connect, isIP } from 'node:net'
import { chmod, chown, lstat, mkdir, readFile, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Duplex } from 'node:stream'
import { CairnError } from '../errors/index.js'
import type { ImageStore } from '../image/store.js'
import { errorResponse } from './errors.js'
import { HttpExchange, UpgradeExchange, type Exchange } from './exchange.js'
import { API_VERSION, Router } from './router.js'
import { ROUTES } from './routes.js'
import { Service } from './service.js'

export interface TlsFiles {
  /** PEM: the CA that signs the clients' certificates. */
  ca: string
  cert: string
  key: string
}

export interface EngineApiOptions {
  /** A unix socket path (`unix://` prefix allowed). */
  socket?: string
  /** `host:port` for TCP. */
  tcp?: string
  /** Client-certificate TLS for the TCP listener (required for a non-loopback address). */
  tls?: TlsFiles
  /** Errors that became 500 answers (the CLI prints them). */
  onError?: (err: unknown) => void
}

export interface EngineApiServer {
  /** Where it listens: `unix:///…`, `tcp://host:port`. */
  readonly addresses: string[]
  readonly service: Service
  close(): Promise<void>
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1'])

function isLoopbackHost(host: string): boolean {
  return LOOPBACK.has(host) || (isIP(host) === 4 && host.startsWith('127.'))
}

/** `host:port`, `[v6]:port`, `tcp://…`. */
function parseTcpAddress(addr: string): { host: string; port: number } {
  const a = addr.replace(/^tcp:\/\//, '')
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(a)
  const port = Number(m?.[3])
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) throw new CairnError('INVALID_ARGUMENT', `invalid TCP address: ${addr} (host:port expected)`)
  return { host: m[1] ?? m[2] ?? '', port }
}

async function groupId(name: string): Promise<number | undefined> {
  const text = await readFile('/etc/group', 'utf8').catch(() => '')
  for (const line of text.split('\n')) {
    const [g, , gid] = line.split(':')
    if (g === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid)
  }
  return undefined
}

/** A stale socket (nobody answers on it) is removed; a live one or another kind of file is an error. */
async function clearSocketPath(path: string): Promise<void> {
  const st = await lstat(path).catch(() => undefined)
  if (!st) return
  if (!st.isSocket()) throw new CairnError('CONFLICT', `${path} exists and is not a socket`)
  const live = await new Promise<boolean>((resolve) => {
    const c = connect(path)
    c.once('connect', () => {
      c.destroy()
      resolve(true)
    })
    c.once('error', () => resolve(false))
  })
  if (live) throw new CairnError('CONFLICT', `${path} is in use by another server`)
  await unlink(path)
}

function listen(server: Server, target: string | { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    const done = (): void => {
      server.off('error', reject)
      resolve()
    }
    if (typeof target === 'string') server.listen(target, done)
    else server.listen(target.port, target.host, done)
  })
}

export async function serveEngineApi(store: ImageStore, opts: EngineApiOptions): Promise<EngineApiServer> {
  if (opts.socket === undefined && opts.tcp === undefined) throw new CairnError('INVALID_ARGUMENT', 'nothing to listen on: give a socket or a TCP address')
  const service = new Service(store)
  const router = new Router(ROUTES)
  const connections = new Set<Duplex>()

  const dispatch = async (x: Exchange): Promise<void> => {
    try {
      const route = router.match(x)
      // each request under a lease of its own: content it leaves half-written goes when it ends,
      // and no other request's cleanup takes what it is writing
      await store.content.withLease(async () => route.handler(x, service))
    } catch (err) {
      const { status, body } = errorResponse(err)
      if (status >= 500 && status !== 501) opts.onError?.(err)
      if (!x.answered) {
        try {
          x.send(status, body)
        } catch {
          x.req.socket.destroy()
        }
      } else x.req.socket.destroy()
    }
  }
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    res.setHeader('Api-Version', API_VERSION)
    res.setHeader('Docker-Experimental', 'false')
    res.setHeader('Ostype', 'linux')
    res.setHeader('Server', 'Cairn (linux)')
    void dispatch(new HttpExchange(req, res))
  }
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    connections.add(socket)
    socket.once('close', () => connections.delete(socket))
    void dispatch(new UpgradeExchange(req, socket, head))
  }
  const setup = (server: Server): Server => {
    server.on('request', onRequest)
    server.on('upgrade', onUpgrade)
    server.on('connection', (c: Duplex) => {
      connections.add(c)
      c.once('close', () => connections.delete(c))
    })
    server.on('clientError', (_err, socket: Duplex) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
      else socket.destroy()
    })
    server.requestTimeout = 0
    server.headersTimeout = 60_000
    return server
  }

  const servers: Server[] = []
  const addresses: string[] = []
  let socketPath: string | undefined
  try {
    if (opts.socket !== undefined) {
      const path = opts.socket.replace(/^unix:\/\//, '')
      if (!path.startsWith('/')) throw new CairnError('INVALID_ARGUMENT', `the socket path must be absolute: ${opts.socket}`)
      await mkdir(dirname(path), { recursive: true, mode: 0o755 })
      await clearSocketPath(path)
      const server = setup(createHttpServer())
      // the socket is created without group/other access, then opened to the group
      const old = process.umask(0o177)
      try {
        await listen(server, path)
      } finally {
        process.umask(old)
      }
      socketPath = path
      servers.push(server)
      const gid = await groupId('cairn')
      if (gid !== undefined) await chown(path, 0, gid)
      await chmod(path, 0o660)
      addresses.push(`unix://${path}`)
    }
    if (opts.tcp !== undefined) {
      const { host, port } = parseTcpAddress(opts.tcp)
      if (!opts.tls && !isLoopbackHost(host)) {
        throw new CairnError('INVALID_ARGUMENT', `refusing to listen on ${opts.tcp} without TLS: anyone reaching it would be root here; use a loopback address or --tlsverify with --tlscacert, --tlscert and --tlskey`)
      }
      let server: Server
      if (opts.tls) {
        const [ca, cert, key] = await Promise.all([readFile(opts.tls.ca), readFile(opts.tls.cert), readFile(opts.tls.key)])
        server = setup(createHttpsServer({ ca, cert, key, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' }))
      } else server = setup(createHttpServer())
      await listen(server, { host, port })
      servers.push(server)
      const a = server.address()
      const bound = typeof a === 'object' && a !== null ? a.port : port
      addresses.push(`tcp://${host.includes(':') ? `[${host}]` : host}:${bound}`)
    }
  } catch (err) {
    for (const s of servers) s.close()
    if (socketPath !== undefined) await unlink(socketPath).catch(() => undefined)
    throw err
  }

  return {
    addresses,
    service,
    async close(): Promise<void> {
      const closed = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
      for (const s of servers) s.closeAllConnections()
      for (const c of connections) c.destroy()
      await closed
      if (socketPath !== undefined) await unlink(socketPath).catch(() => undefined)
    },
  }
}
