/**
 * The registry server: the OCI distribution API v1.1 over HTTP(S), on top of a RegistryStorage.
 *
 *   GET    /v2/                                          ping (Docker-Distribution-API-Version)
 *   GET    /v2/_catalog?n=&last=                         repositories, paginated
 *   GET    /v2/<name>/tags/list?n=&last=                 tags, lexical order, Link pagination
 *   GET    /v2/<name>/referrers/<digest>?artifactType=   the referrers API
 *   GET|HEAD|PUT|DELETE /v2/<name>/manifests/<ref>       by tag or digest
 *   GET|HEAD|DELETE     /v2/<name>/blobs/<digest>        with Range
 *   POST   /v2/<name>/blobs/uploads/[?digest=|?mount=&from=]
 *   GET|PATCH|PUT|DELETE /v2/<name>/blobs/uploads/<id>   status, chunks, completion, cancel
 *   GET    /token                                        token endpoint (when this server issues tokens)
 *   GET    /healthz, /metrics                            operations
 *
 * The library never prints: the access log goes to the stream or callback given, and internal errors to
 * `onError`.
 */
import { randomBytes } from 'node:crypto'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo, Server as NetServer, Socket } from 'node:net'
import type { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { KeyObject } from 'node:crypto'
import { CairnError, hasCode, isCairnError } from '../errors/index.js'
import { asDigest, type Digest, digestOf, parseDigest } from '../oci/digest.js'
import { MediaTypes } from '../oci/mediatype.js'
import { isNameValid, isTagValid } from '../oci/reference.js'
import { noteReceived } from '../util/reclaim.js'
import { AccessPolicy, type AccessConfig, type Action, type Identity } from './access.js'
import { formatScope, parseBearer, parseBasic, tokenActions, TokenVerifier, type Htpasswd, type ResourceAccess, type TokenSigner } from './auth.js'
import { httpError, HttpStatusOverrides, toWireError } from './errors.js'
import { FilesystemStorage } from './fs-storage.js'
import { baseMediaType, parseManifest, referrerDescriptor } from './manifest.js'
import { RegistryMetrics } from './metrics.js'
import { RateLimiter, type RateLimitOptions } from './ratelimit.js'
import { sendRange } from './send.js'
import type { BlobStat, ByteRange, RandomAccessBlob, RegistryStorage, UploadState } from './storage.js'
import { sendTokenResult, TokenService } from './token.js'
import { collectGarbage, purgeUploads, type GcReport } from './gc.js'

export const DEFAULT_MANIFEST_LIMIT = 4 << 20
const API_VERSION_HEADER = 'Docker-Distribution-API-Version'

/** One line of the access log. */
export interface AccessLogEntry {
  time: string
  requestId: string
  remote: string
  user?: string
  method: string
  path: string
  route: string
  repository?: string
  status: number
  bytesIn: number
  bytesOut: number
  durationMs: number
  userAgent?: string
  error?: string
}

export interface TokenAuthOptions {
  /** The audience of the tokens (`service=` in the challenge). */
  service: string
  /** Who signs the tokens (`iss`). */
  issuer: string
  /** Verifies tokens. */
  publicKey: KeyObject
  /** Where clients get tokens; default: this server's own `/token` (which needs `signer`). */
  realm?: string
  /** When set, this server also issues tokens at `/token`. */
  signer?: TokenSigner
  ttlSeconds?: number
}

export interface RegistryOptions {
  /** Filesystem storage root; ignored when `storage` is given. */
  root?: string
  storage?: RegistryStorage
  /** Default 127.0.0.1. */
  host?: string
  /** Default 5000; 0 picks a free port. */
  port?: number
  /** PEM certificate chain and key: serve HTTPS. */
  tls?: { cert: string | Buffer; key: string | Buffer }
  /** Refuse every write with 405 UNSUPPORTED. */
  readOnly?: boolean
  /** Basic auth against an htpasswd file. */
  htpasswd?: Htpasswd
  /** Token auth (takes precedence over Basic for the registry API; htpasswd then authenticates at /token). */
  token?: TokenAuthOptions
  /** Basic realm name (default "Cairn Registry"). */
  realm?: string
  access?: AccessConfig
  rateLimit?: RateLimitOptions
  /** Access log: a stream that receives JSON lines, or a callback. */
  accessLog?: Writable | ((entry: AccessLogEntry) => void)
  /** Called with errors that are the server's fault (500s, failed background jobs). */
  onError?: (err: unknown, context: string) => void
  /** Serve /metrics (default true). */
  metrics?: boolean
  /** Largest manifest accepted (default 4 MiB); larger ones get 413. */
  manifestLimit?: number
  /**
   * Upload sessions idle this long are removed (default 24 h); checked every `purgeIntervalMs` (default
   * 1 h). A push's holds on blobs (see storage.ts) lapse after the same time.
   */
  uploadPurgeAfterMs?: number
  purgeIntervalMs?: number
  /** Run gc in the background every so often (default: never). */
  gcIntervalMs?: number
  gcGracePeriodMs?: number
  gcDeleteUntagged?: boolean
  /** Use the first X-Forwarded-For address as the client's (behind a trusted proxy). */
  trustProxy?: boolean
  /** How long close() lets in-flight requests run before cutting them (default 30 s). */
  shutdownTimeoutMs?: number
}

export interface RunningRegistry {
  /** `http://127.0.0.1:5000` */
  readonly url: string
  readonly host: string
  readonly port: number
  readonly storage: RegistryStorage
  readonly metrics: RegistryMetrics
  /** Stops accepting, lets in-flight requests finish (up to the shutdown timeout), then resolves. */
  close(): Promise<void>
  /** Runs gc now, in this process. */
  gc(opts?: { dryRun?: boolean; deleteUntagged?: boolean; gracePeriodMs?: number }): Promise<GcReport>
}

interface Ctx {
  req: IncomingMessage
  res: ServerResponse
  id: string
  url: URL
  route: string
  repository?: string
  identity: Identity
  /** Token access claims, in token mode. */
  tokenAccess?: ResourceAccess[]
  remote: string
  bytesIn: number
  bytesOut: number
  errorCode?: string
}

type RouteName = 'ping' | 'catalog' | 'tags' | 'referrers' | 'manifest' | 'blob' | 'uploads' | 'upload'

interface Route {
  name: RouteName
  repository?: string
  /** reference, digest or upload id */
  arg?: string
}

const ROUTE_RE = /^\/v2\/(.+)\/(?:(tags\/list)|manifests\/([^/]+)|(blobs\/uploads\/?)|blobs\/uploads\/([^/]+)|blobs\/([^/]+)|referrers\/([^/]+))$/
const UPLOAD_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const MAX_PAGE = 10_000
const EMPTY_DIGEST: Digest = asDigest('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')

/** Starts `server` listening; resolves with the port it got (port 0: a free one), rejects on EADDRINUSE and the like. */
export async function listenOn(server: NetServer, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return (server.address() as AddressInfo).port
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<RunningRegistry> {
  const storage = opts.storage ?? new FilesystemStorage(opts.root ?? requireRoot(), opts.uploadPurgeAfterMs === undefined ? {} : { holdTtlMs: opts.uploadPurgeAfterMs })
  await storage.init()
  const app = new RegistryApp(storage, opts)
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    app.handle(req, res).catch((err: unknown) => {
      opts.onError?.(err, 'request')
      if (!res.headersSent) res.writeHead(500)
      res.end()
    })
  }
  const server: Server = opts.tls ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : createHttpServer(handler)
  server.keepAliveTimeout = 65_000
  server.headersTimeout = 66_000
  server.requestTimeout = 0 // uploads of large blobs may take long; idle sockets are covered by the timeouts above
  const sockets = new Set<Socket>()
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
    else socket.destroy()
  })
  const host = opts.host ?? '127.0.0.1'
  const port = await listenOn(server, opts.port ?? 5000, host)
  const scheme = opts.tls ? 'https' : 'http'
  const urlHost = host.includes(':') ? `[${host}]` : host
  app.defaultAuthority = `${urlHost}:${port}`
  app.scheme = scheme
  app.startTimers()

  let closing: Promise<void> | undefined
  const close = (): Promise<void> => {
    closing ??= (async () => {
      app.stopTimers()
      app.draining = true
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeIdleConnections()
      const deadline = Date.now() + (opts.shutdownTimeoutMs ?? 30_000)
      // requests in flight finish, unless their clients are all gone (nothing to answer then)
      while (app.inFlight > 0 && sockets.size > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20))
        server.closeIdleConnections()
      }
      for (const s of sockets) s.destroy()
      await closed
      await app.backgroundDone()
      if (opts.storage === undefined) await storage.close()
    })()
    return closing
  }
  return {
    url: `${scheme}://${urlHost}:${port}`,
    host,
    port,
    storage,
    metrics: app.metrics,
    close,
    gc: (o = {}) => collectGarbage(storage, {
      dryRun: o.dryRun ?? false,
      deleteUntagged: o.deleteUntagged ?? false,
      gracePeriodMs: o.gracePeriodMs ?? opts.gcGracePeriodMs ?? 3_600_000,
    }),
  }
}

function requireRoot(): never {
  throw new CairnError('INVALID_ARGUMENT', 'startRegistry: give `root` (a folder) or `storage`')
}

class RegistryApp {
  readonly metrics = new RegistryMetrics()
  inFlight = 0
  draining = false
  defaultAuthority = '127.0.0.1:5000'
  scheme = 'http'
  private readonly policy: AccessPolicy
  private readonly verifier: TokenVerifier | undefined
  private readonly tokenService: TokenService | undefined
  private readonly limiter: RateLimiter | undefined
  private readonly manifestLimit: number
  private readonly manifestCache = new Map<Digest, Buffer>()
  private manifestCacheBytes = 0
  private timers: NodeJS.Timeout[] = []
  private background: Promise<unknown> = Promise.resolve()
  private readonly queued = new Set<string>()

  constructor(readonly storage: RegistryStorage, readonly opts: RegistryOptions) {
    const authEnabled = opts.htpasswd !== undefined || opts.token !== undefined
    this.policy = new AccessPolicy(opts.access ?? {}, authEnabled)
    if (opts.token) {
      this.verifier = new TokenVerifier(opts.token.publicKey, opts.token.issuer, opts.token.service)
      if (opts.token.signer) {
        this.tokenService = new TokenService({
          signer: opts.token.signer,
          service: opts.token.service,
          policy: this.policy,
          ...(opts.token.ttlSeconds === undefined ? {} : { ttlSeconds: opts.token.ttlSeconds }),
          ...(opts.htpasswd === undefined ? {} : { htpasswd: opts.htpasswd }),
        })
      }
    }
    this.limiter = opts.rateLimit ? new RateLimiter(opts.rateLimit) : undefined
    this.manifestLimit = opts.manifestLimit ?? DEFAULT_MANIFEST_LIMIT
  }

  get authEnabled(): boolean {
    return this.opts.htpasswd !== undefined || this.opts.token !== undefined
  }

  startTimers(): void {
    const purgeAfter = this.opts.uploadPurgeAfterMs ?? 24 * 3_600_000
    const every = this.opts.purgeIntervalMs ?? 3_600_000
    this.timers.push(setInterval(() => this.runBackground('purge uploads', async () => {
      const r = await purgeUploads(this.storage, { olderThanMs: purgeAfter })
      this.metrics.uploadsPurged.inc({}, r.purged)
    }), every).unref())
    if (this.opts.gcIntervalMs !== undefined && this.opts.gcIntervalMs > 0) {
      this.timers.push(setInterval(() => this.runBackground('gc', () => collectGarbage(this.storage, {
        dryRun: false,
        deleteUntagged: this.opts.gcDeleteUntagged ?? false,
        gracePeriodMs: this.opts.gcGracePeriodMs ?? 3_600_000,
      }).then((r) => {
        this.metrics.gcRuns.inc()
        this.metrics.gcManifestsDeleted.inc({}, r.manifestsDeleted.length)
        this.metrics.gcBlobsDeleted.inc({}, r.blobsDeleted)
      }, (err: unknown) => {
        if (!hasCode(err, 'CONFLICT')) throw err // another gc is running: skip this round
      })), this.opts.gcIntervalMs).unref())
    }
  }

  stopTimers(): void {
    for (const t of this.timers) clearInterval(t)
    this.timers = []
  }

  backgroundDone(): Promise<unknown> {
    return this.background.catch(() => undefined)
  }

  /** Queues a background job; one of the same kind already waiting or running makes this one redundant. */
  private runBackground(what: string, fn: () => Promise<unknown>): void {
    if (this.queued.has(what)) return
    this.queued.add(what)
    this.background = this.background
      .then(fn)
      .catch((err: unknown) => this.opts.onError?.(err, what))
      .finally(() => this.queued.delete(what))
  }

  // --- request entry -------------------------------------------------------------------------------

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint()
    this.inFlight++
    this.metrics.inFlight.inc()
    const rawUrl = req.url ?? '/'
    let url: URL
    try {
      url = new URL(rawUrl.startsWith('/') ? rawUrl : `/${rawUrl}`, 'http://registry.invalid')
    } catch {
      url = new URL('http://registry.invalid/')
    }
    const ctx: Ctx = {
      req,
      res,
      id: randomBytes(8).toString('hex'),
      url,
      route: 'unknown',
      identity: {},
      remote: this.clientAddress(req),
      bytesIn: 0,
      bytesOut: 0,
    }
    res.setHeader('X-Request-Id', ctx.id)
    if (this.draining) res.setHeader('Connection', 'close')
    try {
      await this.dispatch(ctx, rawUrl)
    } catch (err) {
      this.sendError(ctx, err)
    } finally {
      if (!res.writableEnded) {
        await new Promise<void>((resolve) => {
          res.once('close', resolve)
          res.once('finish', resolve)
        })
      }
      this.inFlight--
      this.metrics.inFlight.dec()
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6
      this.metrics.requests.inc({ method: req.method ?? '', route: ctx.route, status: String(res.statusCode) })
      this.metrics.duration.observe(durationMs / 1000, { method: req.method ?? '', route: ctx.route })
      this.metrics.bytesSent.inc({}, ctx.bytesOut)
      this.log(ctx, durationMs)
    }
  }

  private log(ctx: Ctx, durationMs: number): void {
    const sink = this.opts.accessLog
    if (sink === undefined) return
    const entry: AccessLogEntry = {
      time: new Date().toISOString(),
      requestId: ctx.id,
      remote: ctx.remote,
      method: ctx.req.method ?? '',
      path: ctx.url.pathname,
      route: ctx.route,
      status: ctx.res.statusCode,
      bytesIn: ctx.bytesIn,
      bytesOut: ctx.bytesOut,
      durationMs: Math.round(durationMs * 1000) / 1000,
    }
    if (ctx.identity.user !== undefined) entry.user = ctx.identity.user
    if (ctx.repository !== undefined) entry.repository = ctx.repository
    const ua = ctx.req.headers['user-agent']
    if (ua !== undefined) entry.userAgent = ua
    if (ctx.errorCode !== undefined) entry.error = ctx.errorCode
    if (typeof sink === 'function') sink(entry)
    else sink.write(`${JSON.stringify(entry)}\n`)
  }

  private clientAddress(req: IncomingMessage): string {
    if (this.opts.trustProxy) {
      const fwd = req.headers['x-forwarded-for']
      const first = (Array.isArray(fwd) ? fwd[0] : fwd)?.split(',')[0]?.trim()
      if (first) return first
    }
    return req.socket.remoteAddress ?? 'unknown'
  }

  private async dispatch(ctx: Ctx, rawUrl: string): Promise<void> {
    const { req, res } = ctx
    const method = req.method ?? 'GET'
    const path = rawUrl.split('?')[0] ?? '/'

    if (path === '/healthz' || path === '/health') {
      ctx.route = 'health'
      await this.health(ctx, method)
      return
    }
    if (this.limiter) {
      const wait = this.limiter.take(ctx.remote)
      if (wait > 0) {
        ctx.route = 'ratelimited'
        this.metrics.rateLimited.inc()
        throw httpError('TOOMANYREQUESTS', 'too many requests', { headers: { 'Retry-After': String(wait) } })
      }
    }
    if (path === '/metrics' && this.opts.metrics !== false) {
      ctx.route = 'metrics'
      const body = Buffer.from(this.metrics.render())
      this.send(ctx, 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }, method === 'HEAD' ? undefined : body, body.length)
      return
    }
    if (path === '/token' && this.tokenService) {
      ctx.route = 'token'
      const r = await this.tokenService.handle(req, ctx.url)
      if (r.user !== undefined) ctx.identity.user = r.user
      if (r.status === 401) this.metrics.authFailures.inc()
      ctx.bytesOut = Buffer.byteLength(JSON.stringify(r.body))
      sendTokenResult(res, r, method === 'HEAD')
      return
    }
    res.setHeader(API_VERSION_HEADER, 'registry/2.0')
    const route = this.route(path)
    ctx.route = route.name
    if (route.repository !== undefined) ctx.repository = route.repository
    await this.authorize(ctx, route, method)
    switch (route.name) {
      case 'ping':
        if (method !== 'GET' && method !== 'HEAD') throw notAllowed(method)
        this.sendJson(ctx, 200, {}, method === 'HEAD')
        return
      case 'catalog':
        if (method !== 'GET') throw notAllowed(method)
        await this.catalog(ctx)
        return
      case 'tags':
        if (method !== 'GET') throw notAllowed(method)
        await this.tags(ctx, route.repository as string)
        return
      case 'referrers':
        if (method !== 'GET') throw notAllowed(method)
        await this.referrers(ctx, route.repository as string, route.arg as string)
        return
      case 'manifest':
        return this.manifest(ctx, method, route.repository as string, route.arg as string)
      case 'blob':
        return this.blob(ctx, method, route.repository as string, route.arg as string)
      case 'uploads':
        if (method !== 'POST') throw notAllowed(method)
        return this.startUpload(ctx, route.repository as string)
      case 'upload':
        return this.upload(ctx, method, route.repository as string, route.arg as string)
    }
  }

  /** Matches a raw (undecoded) path. Percent-encodings, `.`/`..` segments and empty segments are refused. */
  private route(path: string): Route {
    if (path === '/v2' || path === '/v2/') return { name: 'ping' }
    if (path === '/v2/_catalog') return { name: 'catalog' }
    if (!path.startsWith('/v2/')) throw new CairnError('NAME_UNKNOWN', `no such endpoint: ${path.slice(0, 200)}`)
    if (/%|\\|\/\/|\/\.{1,2}(?:\/|$)/.test(path) || path.length > 2048) {
      throw new CairnError('NAME_INVALID', 'invalid repository name or path: encoded characters and dot segments are not accepted')
    }
    const m = ROUTE_RE.exec(path)
    if (!m) throw new CairnError('NAME_UNKNOWN', `no such endpoint: ${path.slice(0, 200)}`)
    const repository = m[1] as string
    if (!isNameValid(repository)) throw new CairnError('NAME_INVALID', `invalid repository name: ${repository.slice(0, 300)}`)
    if (m[2] !== undefined) return { name: 'tags', repository }
    if (m[3] !== undefined) return { name: 'manifest', repository, arg: m[3] }
    if (m[4] !== undefined) return { name: 'uploads', repository }
    if (m[5] !== undefined) return { name: 'upload', repository, arg: m[5] }
    if (m[6] !== undefined) return { name: 'blob', repository, arg: m[6] }
    return { name: 'referrers', repository, arg: m[7] as string }
  }

  // --- authentication and authorization ----------------------------------------------------------

  private async authorize(ctx: Ctx, route: Route, method: string): Promise<void> {
    const needed = requiredActions(route, method)
    const repo = route.repository
    if (this.verifier) {
      const token = parseBearer(ctx.req.headers.authorization)
      if (token === undefined) throw this.challenge(ctx, repo, needed, false)
      let claims
      try {
        claims = this.verifier.verify(token)
      } catch (err) {
        throw this.challenge(ctx, repo, needed, false, err)
      }
      if (claims.sub !== '') ctx.identity.user = claims.sub
      ctx.tokenAccess = claims.access
      if (route.name === 'catalog') {
        const ok = claims.access.some((a) => a.type === 'registry' && a.name === 'catalog' && (a.actions.includes('*') || a.actions.includes('pull')))
        if (!ok) throw this.challenge(ctx, undefined, [], true)
        return
      }
      if (repo === undefined) return
      const granted = tokenActions(claims.access, repo)
      if (!needed.every((a) => granted.has(a))) throw this.challenge(ctx, repo, needed, true)
      return
    }
    if (this.opts.htpasswd) {
      const header = ctx.req.headers.authorization
      if (header !== undefined) {
        const creds = parseBasic(header)
        if (creds === undefined || !(await this.opts.htpasswd.verify(creds.user, creds.password))) {
          throw this.challenge(ctx, repo, needed, false, new CairnError('UNAUTHORIZED', 'invalid username or password'))
        }
        ctx.identity.user = creds.user
      }
    }
    if (route.name === 'ping' || route.name === 'catalog') {
      // docker login learns from /v2/ that credentials are needed
      if (this.authEnabled && ctx.identity.user === undefined) throw this.challenge(ctx, undefined, [], false)
      return
    }
    if (repo === undefined) return
    const allowed = this.policy.allowed(ctx.identity, repo)
    if (needed.every((a) => allowed.has(a))) return
    if (ctx.identity.user === undefined && this.authEnabled) throw this.challenge(ctx, repo, needed, false)
    this.metrics.authFailures.inc()
    // the detail matters: Docker retries a DENIED that has neither detail nor a message of its own
    throw new CairnError('DENIED', 'requested access to the resource is denied', { detail: deniedDetail(repo, needed, allowed) })
  }

  private challenge(ctx: Ctx, repo: string | undefined, actions: readonly Action[], insufficient: boolean, cause?: unknown): CairnError {
    this.metrics.authFailures.inc()
    let header: string
    if (this.opts.token) {
      const realm = this.opts.token.realm ?? `${this.scheme}://${this.authority(ctx.req)}/token`
      header = `Bearer realm=${JSON.stringify(realm)},service=${JSON.stringify(this.opts.token.service)}`
      if (repo !== undefined && actions.length > 0) {
        const scopeActions = actions.includes('push') && !actions.includes('pull') ? ['pull', ...actions] : [...actions]
        header += `,scope=${JSON.stringify(formatScope({ type: 'repository', name: repo, actions: scopeActions }))}`
      } else if (ctx.route === 'catalog') header += `,scope="registry:catalog:*"`
      if (insufficient) header += ',error="insufficient_scope"'
    } else {
      header = `Basic realm=${JSON.stringify(this.opts.realm ?? 'Cairn Registry')}`
    }
    if (insufficient) {
      return httpError('DENIED', 'requested access to the resource is denied', {
        status: HttpStatusOverrides.Unauthorized,
        detail: deniedDetail(repo, actions, tokenActions(ctx.tokenAccess ?? [], repo ?? '')),
        headers: { 'WWW-Authenticate': header },
        ...(cause === undefined ? {} : { cause }),
      })
    }
    const message = isCairnError(cause) ? cause.message : 'authentication required'
    return httpError('UNAUTHORIZED', message, { headers: { 'WWW-Authenticate': header }, ...(cause === undefined ? {} : { cause }) })
  }

  /** The Host the client used, when it looks like one; else the address we listen on. */
  private authority(req: IncomingMessage): string {
    const h = req.headers.host
    return h !== undefined && /^[A-Za-z0-9.\-:[\]]{1,255}$/.test(h) ? h : this.defaultAuthority
  }

  /** May the caller pull from `repo` (for a mount's `from`)? */
  private canPull(ctx: Ctx, repo: string): boolean {
    if (this.verifier) return tokenActions(ctx.tokenAccess ?? [], repo).has('pull')
    return this.policy.can(ctx.identity, repo, 'pull')
  }

  // --- responses -----------------------------------------------------------------------------------

  private send(ctx: Ctx, status: number, headers: Record<string, string>, body?: Buffer, length?: number): void {
    const h: Record<string, string> = { ...headers }
    h['Content-Length'] = String(length ?? body?.length ?? 0)
    ctx.res.writeHead(status, h)
    if (body !== undefined) ctx.bytesOut += body.length
    ctx.res.end(body)
  }

  private sendJson(ctx: Ctx, status: number, value: unknown, head = false, headers: Record<string, string> = {}): void {
    const body = Buffer.from(JSON.stringify(value))
    this.send(ctx, status, { 'Content-Type': 'application/json', ...headers }, head ? undefined : body, body.length)
  }

  private sendError(ctx: Ctx, err: unknown): void {
    const wire = toWireError(err)
    const code = wire.body.errors[0]?.code
    if (code !== undefined) ctx.errorCode = code
    if (wire.internal) this.opts.onError?.(err, `${ctx.req.method ?? ''} ${ctx.url.pathname}`)
    if (ctx.res.headersSent) {
      ctx.res.destroy()
      return
    }
    // a request body we did not read: the connection cannot be reused safely
    if (!ctx.req.complete) ctx.res.setHeader('Connection', 'close')
    const head = ctx.req.method === 'HEAD'
    this.sendJson(ctx, wire.status, wire.body, head, wire.headers)
  }

  private location(repo: string, suffix: string): string {
    return `/v2/${repo}/${suffix}`
  }

  // --- operations endpoints ------------------------------------------------------------------------

  private async health(ctx: Ctx, method: string): Promise<void> {
    let ok = true
    let detail = 'ok'
    try {
      await this.storage.statBlob(EMPTY_DIGEST)
    } catch (err) {
      ok = false
      detail = (err as Error).message
    }
    this.sendJson(ctx, ok ? 200 : 503, { status: ok ? 'ok' : 'unavailable', storage: this.storage.kind, detail, readOnly: this.opts.readOnly ?? false }, method === 'HEAD')
  }

  // --- content discovery ---------------------------------------------------------------------------

  private async catalog(ctx: Ctx): Promise<void> {
    const { n, last } = pagination(ctx.url)
    let repos = await this.storage.listRepositories()
    if (!this.verifier) repos = repos.filter((r) => this.policy.can(ctx.identity, r, 'pull'))
    const page = paginate(repos, n, last)
    const headers: Record<string, string> = {}
    if (page.next !== undefined) headers['Link'] = `</v2/_catalog?n=${n}&last=${encodeURIComponent(page.next)}>; rel="next"`
    this.sendJson(ctx, 200, { repositories: page.items }, false, headers)
  }

  private async tags(ctx: Ctx, repo: string): Promise<void> {
    const { n, last } = pagination(ctx.url)
    if (!(await this.storage.repositoryExists(repo))) throw new CairnError('NAME_UNKNOWN', `repository name not known to registry: ${repo}`, { detail: { name: repo } })
    const page = paginate(await this.storage.listTags(repo), n, last)
    const headers: Record<string, string> = {}
    if (page.next !== undefined) headers['Link'] = `</v2/${repo}/tags/list?n=${n}&last=${encodeURIComponent(page.next)}>; rel="next"`
    this.sendJson(ctx, 200, { name: repo, tags: page.items }, false, headers)
  }

  private async referrers(ctx: Ctx, repo: string, ref: string): Promise<void> {
    const digest = digestParam(ref)
    let list = await this.storage.listReferrers(repo, digest)
    const headers: Record<string, string> = { 'Content-Type': MediaTypes.OciIndex }
    const filters = ctx.url.searchParams.getAll('artifactType')
    if (filters.length > 0) {
      list = list.filter((d) => d.artifactType !== undefined && filters.includes(d.artifactType))
      headers['OCI-Filters-Applied'] = 'artifactType'
    }
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: list }))
    this.send(ctx, 200, headers, body)
  }

  // --- manifests -----------------------------------------------------------------------------------

  private async manifest(ctx: Ctx, method: string, repo: string, ref: string): Promise<void> {
    switch (method) {
      case 'GET':
      case 'HEAD':
        return this.getManifest(ctx, repo, ref, method === 'HEAD')
      case 'PUT':
        this.writable()
        return this.putManifest(ctx, repo, ref)
      case 'DELETE':
        this.writable()
        return this.deleteManifest(ctx, repo, ref)
      default:
        throw notAllowed(method)
    }
  }

  /** A tag or a digest; a malformed tag is simply unknown (404), as clients expect from GET/HEAD. */
  private async resolve(repo: string, ref: string): Promise<Digest> {
    if (ref.includes(':')) return digestParam(ref)
    const unknown = (): CairnError => new CairnError('MANIFEST_UNKNOWN', `manifest unknown: ${ref.slice(0, 200)}`, { detail: { tag: ref.slice(0, 200) } })
    if (!isTagValid(ref)) throw unknown()
    const d = await this.storage.resolveTag(repo, ref)
    if (d === undefined) throw unknown()
    return d
  }

  private async getManifest(ctx: Ctx, repo: string, ref: string, head: boolean): Promise<void> {
    const digest = await this.resolve(repo, ref)
    // a HEAD by digest is a client checking an entry of the index it is about to push: it holds the manifest
    const byDigest = ref.includes(':')
    const hold = head && byDigest && this.opts.readOnly !== true
    let rec = hold ? await this.storage.checkManifest(repo, digest) : await this.storage.getManifest(repo, digest)
    // a HEAD answers for the bytes a GET would serve (a GET finds out when it reads them)
    if (rec !== undefined && head && !byDigest && (await this.storage.statBlob(digest)) === undefined) rec = undefined
    if (rec === undefined) throw new CairnError('MANIFEST_UNKNOWN', `manifest unknown: ${digest}`, { detail: { digest } })
    const headers = {
      'Content-Type': rec.mediaType,
      'Docker-Content-Digest': digest,
      ETag: `"${digest}"`,
    }
    const inm = ctx.req.headers['if-none-match']
    if (inm !== undefined && (inm === `"${digest}"` || inm === digest)) {
      ctx.res.writeHead(304, headers)
      ctx.res.end()
      return
    }
    if (head) {
      this.send(ctx, 200, headers, undefined, rec.size)
      return
    }
    const bytes = await this.manifestBytes(digest)
    this.send(ctx, 200, headers, bytes)
  }

  private async manifestBytes(digest: Digest): Promise<Buffer> {
    const cached = this.manifestCache.get(digest)
    if (cached) return cached
    let bytes: Buffer
    try {
      bytes = await this.storage.readBlob(digest, this.manifestLimit)
    } catch (err) {
      if (hasCode(err, 'BLOB_UNKNOWN')) throw new CairnError('MANIFEST_UNKNOWN', `manifest unknown: ${digest}`, { detail: { digest } })
      throw err
    }
    // content-addressed, so never stale: keep up to 64 MiB of the most recent
    if (bytes.length <= 1 << 20) {
      this.manifestCache.set(digest, bytes)
      this.manifestCacheBytes += bytes.length
      for (const [k, v] of this.manifestCache) {
        if (this.manifestCacheBytes <= 64 << 20) break
        this.manifestCache.delete(k)
        this.manifestCacheBytes -= v.length
      }
    }
    return bytes
  }

  private async putManifest(ctx: Ctx, repo: string, ref: string): Promise<void> {
    let tag: string | undefined
    let expected: Digest | undefined
    if (ref.includes(':')) expected = digestParam(ref)
    else if (isTagValid(ref)) tag = ref
    else throw new CairnError('MANIFEST_INVALID', `invalid tag: ${ref.slice(0, 200)}`, { detail: { tag: ref.slice(0, 200) } })

    const bytes = await this.readBody(ctx, this.manifestLimit)
    const digest = digestOf(bytes, expected === undefined ? 'sha256' : parseDigest(expected).algorithm)
    if (expected !== undefined && digest !== expected) {
      throw new CairnError('DIGEST_INVALID', `manifest digest ${digest} does not match ${expected}`, { detail: { digest: expected } })
    }
    const parsed = parseManifest(bytes, baseMediaType(ctx.req.headers['content-type']))
    // the storage checks what it references (in this repository, with the declared sizes) under its lock
    await this.storage.putManifest(repo, {
      digest,
      mediaType: parsed.mediaType,
      bytes,
      blobs: parsed.blobs.map((d) => ({ digest: d.digest, size: d.size })),
      manifests: parsed.manifests.map((d) => ({ digest: d.digest, size: d.size })),
      ...(parsed.subject === undefined ? {} : { referrer: { subject: parsed.subject.digest, descriptor: referrerDescriptor(parsed, digest, bytes.length) } }),
    }, tag)
    this.metrics.manifestsPushed.inc()
    const headers: Record<string, string> = {
      Location: this.location(repo, `manifests/${digest}`),
      'Docker-Content-Digest': digest,
    }
    if (parsed.subject !== undefined) headers['OCI-Subject'] = parsed.subject.digest
    this.send(ctx, 201, headers)
  }

  private async deleteManifest(ctx: Ctx, repo: string, ref: string): Promise<void> {
    if (ref.includes(':')) {
      const digest = digestParam(ref)
      if (!(await this.storage.deleteManifest(repo, digest))) throw new CairnError('MANIFEST_UNKNOWN', `manifest unknown: ${digest}`, { detail: { digest } })
    } else {
      if (!isTagValid(ref) || !(await this.storage.deleteTag(repo, ref))) {
        throw new CairnError('MANIFEST_UNKNOWN', `manifest unknown: ${ref.slice(0, 200)}`, { detail: { tag: ref.slice(0, 200) } })
      }
    }
    this.send(ctx, 202, {})
  }

  // --- blobs ---------------------------------------------------------------------------------------

  private async blob(ctx: Ctx, method: string, repo: string, ref: string): Promise<void> {
    const digest = digestParam(ref)
    if (method === 'DELETE') {
      this.writable()
      if (!(await this.storage.unlinkBlob(repo, digest))) throw new CairnError('BLOB_UNKNOWN', `blob unknown to registry: ${digest}`, { detail: { digest } })
      this.send(ctx, 202, {})
      return
    }
    if (method !== 'GET' && method !== 'HEAD') throw notAllowed(method)
    let st: BlobStat | undefined
    if (method === 'HEAD' && this.opts.readOnly !== true) {
      // a client checking a blob before naming it in a manifest (Docker's "Layer already exists"): held for its push
      st = await this.storage.checkBlob(repo, digest)
    } else {
      const linked = (await this.storage.isBlobLinked(repo, digest)) || (await this.storage.getManifest(repo, digest)) !== undefined
      st = linked ? await this.storage.statBlob(digest) : undefined
    }
    if (st === undefined) throw new CairnError('BLOB_UNKNOWN', `blob unknown to registry: ${digest}`, { detail: { digest } })
    const base: Record<string, string> = {
      'Content-Type': 'application/octet-stream',
      'Docker-Content-Digest': digest,
      ETag: `"${digest}"`,
      'Accept-Ranges': 'bytes',
      'Cache-Control': 'max-age=31536000',
    }
    const inm = ctx.req.headers['if-none-match']
    if (inm !== undefined && (inm === `"${digest}"` || inm === digest)) {
      ctx.res.writeHead(304, base)
      ctx.res.end()
      return
    }
    const rangeHeader = ctx.req.headers.range
    let range: { start: number; end: number } | undefined
    if (rangeHeader !== undefined && method === 'GET') {
      range = parseRange(rangeHeader, st.size)
      if (range === undefined) {
        throw httpError('BLOB_UNKNOWN', 'requested range not satisfiable', {
          status: HttpStatusOverrides.RangeNotSatisfiable,
          headers: { 'Content-Range': `bytes */${st.size}` },
        })
      }
    }
    if (method === 'HEAD') {
      this.send(ctx, 200, base, undefined, st.size)
      return
    }
    if (st.size === 0) {
      this.send(ctx, 200, base, Buffer.alloc(0))
      return
    }
    const bytes = range ?? { start: 0, end: st.size - 1 }
    // a file is sent through reusable buffers (send.ts), another storage's stream piped
    const source = this.storage.openBlobFile ? { file: await this.storage.openBlobFile(digest) } : { stream: await this.storage.openBlob(digest, bytes) }
    const length = bytes.end - bytes.start + 1
    const headers = { ...base, 'Content-Length': String(length) }
    if (range) ctx.res.writeHead(206, { ...headers, 'Content-Range': `bytes ${range.start}-${range.end}/${st.size}` })
    else ctx.res.writeHead(200, headers)
    await this.stream(ctx, source, bytes, length)
  }

  private async stream(ctx: Ctx, source: { file: RandomAccessBlob } | { stream: Readable }, bytes: ByteRange, length: number): Promise<void> {
    try {
      if ('file' in source) {
        try {
          await sendRange(source.file, bytes.start, bytes.end, ctx.res)
        } finally {
          await source.file.close()
        }
      } else {
        await pipeline(source.stream, ctx.res)
      }
      ctx.bytesOut += length
    } catch (err) {
      // the client went away, or the file could not be read after the headers: cut the connection
      ctx.res.destroy()
      if (!isErrnoLike(err, 'ERR_STREAM_PREMATURE_CLOSE') && !isErrnoLike(err, 'ECONNRESET') && !isErrnoLike(err, 'EPIPE')) throw err
    }
  }

  // --- uploads -------------------------------------------------------------------------------------

  private writable(): void {
    if (this.opts.readOnly) throw new CairnError('UNSUPPORTED', 'the registry is in read-only mode')
  }

  private uploadHeaders(repo: string, u: UploadState): Record<string, string> {
    return {
      Location: this.location(repo, `blobs/uploads/${u.id}`),
      Range: `0-${Math.max(0, u.offset - 1)}`,
      'Docker-Upload-UUID': u.id,
      'Blob-Upload-Session-ID': u.id,
    }
  }

  private async startUpload(ctx: Ctx, repo: string): Promise<void> {
    this.writable()
    const q = ctx.url.searchParams
    const mount = q.get('mount')
    const from = q.get('from')
    if (mount !== null && from !== null) {
      const mounted = await this.tryMount(ctx, repo, mount, from)
      if (mounted !== undefined) {
        this.metrics.blobsMounted.inc()
        this.send(ctx, 201, { Location: this.location(repo, `blobs/${mounted}`), 'Docker-Content-Digest': mounted })
        return
      }
    }
    const digestQ = q.get('digest')
    if (digestQ !== null) {
      // monolithic: POST with the whole blob
      const digest = digestParam(digestQ)
      const u = await this.storage.createUpload(repo)
      this.metrics.uploadsStarted.inc()
      try {
        await this.receive(ctx, u, undefined)
        await this.storage.completeUpload(u.id, digest)
      } catch (err) {
        await this.storage.cancelUpload(u.id).catch(() => undefined)
        throw err
      }
      this.metrics.blobsPushed.inc()
      this.send(ctx, 201, { Location: this.location(repo, `blobs/${digest}`), 'Docker-Content-Digest': digest })
      return
    }
    const u = await this.storage.createUpload(repo)
    this.metrics.uploadsStarted.inc()
    this.send(ctx, 202, this.uploadHeaders(repo, u))
  }

  /** The digest mounted, or undefined when the mount is not possible (the caller then starts an upload). */
  private async tryMount(ctx: Ctx, repo: string, mount: string, from: string): Promise<Digest | undefined> {
    let digest: Digest
    try {
      digest = digestParam(mount)
    } catch {
      return undefined
    }
    if (!isNameValid(from) || !this.canPull(ctx, from)) return undefined
    if (!(await this.storage.isBlobLinked(from, digest))) return undefined
    return (await this.storage.linkBlob(repo, digest)) ? digest : undefined
  }

  private async findUpload(repo: string, id: string): Promise<UploadState> {
    const u = UPLOAD_ID_RE.test(id) ? await this.storage.getUpload(id) : undefined
    // a session belongs to the repository it was started in: no writing to another through it
    if (u === undefined || u.repository !== repo) throw new CairnError('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry', { detail: { uuid: id.slice(0, 100) } })
    return u
  }

  private async upload(ctx: Ctx, method: string, repo: string, id: string): Promise<void> {
    switch (method) {
      case 'GET': {
        const u = await this.findUpload(repo, id)
        this.send(ctx, 204, this.uploadHeaders(repo, u))
        return
      }
      case 'PATCH': {
        this.writable()
        const u = await this.findUpload(repo, id)
        const after = await this.receive(ctx, u, ctx.req.headers['content-range'])
        this.send(ctx, 202, this.uploadHeaders(repo, after))
        return
      }
      case 'PUT': {
        this.writable()
        const u = await this.findUpload(repo, id)
        const digestQ = ctx.url.searchParams.get('digest')
        if (digestQ === null) throw new CairnError('DIGEST_INVALID', 'the digest parameter is required to complete an upload')
        const digest = digestParam(digestQ)
        if (hasBody(ctx.req)) await this.receive(ctx, u, ctx.req.headers['content-range'])
        await this.storage.completeUpload(u.id, digest)
        this.metrics.blobsPushed.inc()
        this.send(ctx, 201, { Location: this.location(repo, `blobs/${digest}`), 'Docker-Content-Digest': digest })
        return
      }
      case 'DELETE': {
        this.writable()
        await this.findUpload(repo, id)
        if (!(await this.storage.cancelUpload(id))) throw new CairnError('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry')
        this.send(ctx, 204, {})
        return
      }
      default:
        throw notAllowed(method)
    }
  }

  /** Streams the request body into an upload, checking Content-Range against the session's offset. */
  private async receive(ctx: Ctx, u: UploadState, contentRange: string | undefined): Promise<UploadState> {
    const lengthHeader = ctx.req.headers['content-length']
    const length = lengthHeader === undefined ? undefined : Number(lengthHeader)
    if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) throw new CairnError('SIZE_INVALID', 'invalid Content-Length')
    let announced = length
    if (contentRange !== undefined) {
      const r = parseContentRange(contentRange)
      const rangeError = (why: string): CairnError => httpError('BLOB_UPLOAD_INVALID', why, {
        status: HttpStatusOverrides.RangeNotSatisfiable,
        headers: this.uploadHeaders(ctx.repository as string, u),
      })
      if (r === undefined) throw rangeError(`invalid Content-Range ${JSON.stringify(contentRange.slice(0, 100))}`)
      if (r.start !== u.offset) throw rangeError(`chunk starts at ${r.start}, the upload is at ${u.offset}`)
      const size = r.end - r.start + 1
      if (length !== undefined && length !== size) throw rangeError(`Content-Range covers ${size} bytes, Content-Length says ${length}`)
      announced = size
    }
    const counted = countBytes(ctx.req, (n) => {
      ctx.bytesIn += n
      this.metrics.bytesReceived.inc({}, n)
      noteReceived(n)
    })
    try {
      return await this.storage.writeUpload(u.id, u.offset, counted, announced === undefined ? {} : { length: announced })
    } catch (err) {
      if (!isCairnError(err) && (ctx.req.destroyed || !ctx.req.complete)) {
        // the client went away mid-body: its bytes so far are kept, the next status request tells it where to resume
        throw new CairnError('BLOB_UPLOAD_INVALID', 'upload interrupted: the request body ended early', { cause: err })
      }
      if (hasCode(err, 'BLOB_UPLOAD_INVALID')) {
        // another request moved the offset meanwhile
        const now = (await this.storage.getUpload(u.id)) ?? u
        throw httpError('BLOB_UPLOAD_INVALID', (err as Error).message, { status: HttpStatusOverrides.RangeNotSatisfiable, headers: this.uploadHeaders(ctx.repository as string, now) })
      }
      throw err
    }
  }

  /** Reads a bounded body (manifests): 413 SIZE_INVALID beyond `limit`. */
  private async readBody(ctx: Ctx, limit: number): Promise<Buffer> {
    const tooLarge = (): CairnError => httpError('SIZE_INVALID', `request body larger than ${limit} bytes`, { status: HttpStatusOverrides.PayloadTooLarge })
    const cl = Number(ctx.req.headers['content-length'] ?? '0')
    if (cl > limit) throw tooLarge()
    const chunks: Buffer[] = []
    let total = 0
    try {
      for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
        total += chunk.length
        ctx.bytesIn += chunk.length
        if (total > limit) throw tooLarge()
        chunks.push(chunk)
      }
    } catch (err) {
      if (isCairnError(err)) throw err
      throw new CairnError('MANIFEST_INVALID', 'the request body ended early', { cause: err })
    }
    this.metrics.bytesReceived.inc({}, total)
    return Buffer.concat(chunks, total)
  }
}

// --- helpers -----------------------------------------------------------------------------------

function notAllowed(method: string): CairnError {
  return new CairnError('UNSUPPORTED', `method ${method.slice(0, 20)} not allowed here`)
}

function deniedDetail(repo: string | undefined, needed: readonly Action[], granted: ReadonlySet<Action>): Record<string, unknown> {
  const detail: Record<string, unknown> = { missing: needed.filter((a) => !granted.has(a)) }
  if (repo !== undefined) detail['name'] = repo
  return detail
}

function requiredActions(route: Route, method: string): Action[] {
  switch (route.name) {
    case 'ping':
    case 'catalog':
      return []
    case 'tags':
    case 'referrers':
      return ['pull']
    case 'manifest':
    case 'blob':
      if (method === 'DELETE') return ['delete']
      if (method === 'PUT') return ['pull', 'push']
      return ['pull']
    case 'uploads':
    case 'upload':
      return ['pull', 'push']
  }
}

/** A digest from the URL; malformed or unsupported → DIGEST_INVALID (400), never a 500. */
function digestParam(s: string): Digest {
  try {
    return asDigest(s)
  } catch (err) {
    throw new CairnError('DIGEST_INVALID', `invalid digest: ${s.slice(0, 200)}`, { detail: { digest: s.slice(0, 200) }, cause: err })
  }
}

function pagination(url: URL): { n: number | undefined; last: string | undefined } {
  const nq = url.searchParams.get('n')
  const last = url.searchParams.get('last') ?? undefined
  if (nq === null || nq === '') return { n: undefined, last }
  if (!/^\d{1,9}$/.test(nq)) {
    throw httpError('UNSUPPORTED', `invalid pagination parameter n=${nq.slice(0, 20)}`, { status: HttpStatusOverrides.BadRequest })
  }
  return { n: Math.min(Number(nq), MAX_PAGE), last }
}

/** A page of a sorted list after `last`; `next` is set when more remain. */
function paginate(sorted: readonly string[], n: number | undefined, last: string | undefined): { items: string[]; next?: string } {
  const rest = last === undefined ? sorted : sorted.filter((x) => x > last)
  if (n === undefined) return { items: [...rest] }
  const items = rest.slice(0, n)
  if (rest.length > n && items.length > 0) return { items, next: items[items.length - 1] as string }
  return { items }
}

/** `bytes=a-b`, `bytes=a-`, `bytes=-n` (one range); undefined when unsatisfiable or malformed. */
export function parseRange(header: string, size: number): { start: number; end: number } | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (!m || (m[1] === '' && m[2] === '')) return undefined
  let start: number
  let end: number
  if (m[1] === '') {
    const suffix = Number(m[2])
    if (suffix === 0) return undefined
    start = Math.max(0, size - suffix)
    end = size - 1
  } else {
    start = Number(m[1])
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  }
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start > end || start >= size) return undefined
  return { start, end }
}

/** `start-end` (inclusive), also with a `bytes ` / `bytes=` prefix and a `/total` suffix. */
export function parseContentRange(header: string): { start: number; end: number } | undefined {
  const m = /^(?:bytes[ =])?(\d{1,15})-(\d{1,15})(?:\/(?:\d+|\*))?$/.exec(header.trim())
  if (!m) return undefined
  const start = Number(m[1])
  const end = Number(m[2])
  if (end < start) return undefined
  return { start, end }
}

function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length']
  if (cl !== undefined) return Number(cl) > 0
  return req.headers['transfer-encoding'] !== undefined
}

async function* countBytes(source: AsyncIterable<Buffer>, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    onBytes(chunk.length)
    yield chunk
  }
}

function isErrnoLike(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code
}
