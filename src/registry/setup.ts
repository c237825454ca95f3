/**
 * From a RegistryConfig (file + flags) to running servers: reads the htpasswd file, the token keys and
 * the TLS files, and starts the registry or the stand-alone token server. No printing here.
 */
import { readFile } from 'node:fs/promises'
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { Socket } from 'node:net'
import type { Writable } from 'node:stream'
import { CairnError } from '../errors/index.js'
import { AccessPolicy, type AccessConfig } from './access.js'
import { generateSigningKeyPem, Htpasswd, privateKeyFromPem, publicKeyFromPem, TokenSigner } from './auth.js'
import { parseListen, type RegistryConfig } from './config.js'
import { listenOn, startRegistry, type AccessLogEntry, type RegistryOptions, type RunningRegistry, type TokenAuthOptions } from './server.js'
import { sendTokenResult, TokenService } from './token.js'

async function readPem(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path)
  } catch (err) {
    throw new CairnError('INVALID_ARGUMENT', `cannot read ${what} ${path}: ${(err as Error).message}`, { cause: err })
  }
}

/** Token auth settings from the configuration: a signer when a private key is given (or none at all). */
export async function tokenAuthFromConfig(cfg: RegistryConfig): Promise<TokenAuthOptions | undefined> {
  const t = cfg.auth.token
  if (t === undefined) return undefined
  const out: Partial<TokenAuthOptions> & { service: string; issuer: string } = { service: t.service, issuer: t.issuer, ttlSeconds: t.expirationSeconds }
  if (t.realm !== undefined) out.realm = t.realm
  if (t.key !== undefined) {
    const signer = new TokenSigner(privateKeyFromPem(await readPem(t.key, 'token key')), t.issuer)
    out.signer = signer
    out.publicKey = signer.publicKey
  } else if (t.publicKey !== undefined) {
    out.publicKey = publicKeyFromPem(await readPem(t.publicKey, 'token public key'))
    if (t.realm === undefined) throw new CairnError('INVALID_ARGUMENT', 'configuration: auth.token.realm is needed when tokens are issued elsewhere (no auth.token.key)')
  } else {
    // no key configured: a fresh one for this process (tokens do not survive a restart; clients fetch new ones)
    const signer = new TokenSigner(privateKeyFromPem(generateSigningKeyPem('ec')), t.issuer)
    out.signer = signer
    out.publicKey = signer.publicKey
  }
  return out as TokenAuthOptions
}

export interface ServeExtras {
  accessLog?: Writable | ((entry: AccessLogEntry) => void)
  onError?: (err: unknown, context: string) => void
}

/** The options `startRegistry` takes, from a configuration. */
export async function registryOptionsFromConfig(cfg: RegistryConfig, extras: ServeExtras = {}): Promise<RegistryOptions> {
  const { host, port } = parseListen(cfg.listen)
  const opts: RegistryOptions = {
    root: cfg.root,
    host,
    port,
    readOnly: cfg.readOnly,
    access: cfg.access,
    metrics: cfg.metrics,
    manifestLimit: cfg.manifestLimit,
    uploadPurgeAfterMs: cfg.uploads.purgeAfterMs,
    purgeIntervalMs: cfg.uploads.purgeIntervalMs,
    gcIntervalMs: cfg.gc.intervalMs,
    gcGracePeriodMs: cfg.gc.gracePeriodMs,
    gcDeleteUntagged: cfg.gc.deleteUntagged,
    trustProxy: cfg.trustProxy,
    shutdownTimeoutMs: cfg.shutdownTimeoutMs,
  }
  if (cfg.auth.realm !== undefined) opts.realm = cfg.auth.realm
  if (cfg.tls) opts.tls = { cert: await readPem(cfg.tls.cert, 'TLS certificate'), key: await readPem(cfg.tls.key, 'TLS key') }
  if (cfg.auth.htpasswd !== undefined) opts.htpasswd = await Htpasswd.load(cfg.auth.htpasswd)
  const token = await tokenAuthFromConfig(cfg)
  if (token) opts.token = token
  if (cfg.rateLimit) opts.rateLimit = cfg.rateLimit
  if (extras.accessLog) opts.accessLog = extras.accessLog
  if (extras.onError) opts.onError = extras.onError
  return opts
}

export async function serveFromConfig(cfg: RegistryConfig, extras: ServeExtras = {}): Promise<RunningRegistry> {
  return startRegistry(await registryOptionsFromConfig(cfg, extras))
}

export interface TokenServerOptions {
  host?: string
  /** Default 5001; 0 picks a free port. */
  port?: number
  tls?: { cert: string | Buffer; key: string | Buffer }
  signer: TokenSigner
  service: string
  ttlSeconds?: number
  htpasswd?: Htpasswd
  access?: AccessConfig
  accessLog?: Writable | ((entry: AccessLogEntry) => void)
}

export interface RunningTokenServer {
  /** The realm to give the registry: `http://host:port/token`. */
  readonly realm: string
  readonly url: string
  readonly port: number
  close(): Promise<void>
}

/** A stand-alone token server (`cairn registry token-server`): `/token` and `/healthz` only. */
export async function startTokenServer(opts: TokenServerOptions): Promise<RunningTokenServer> {
  const policy = new AccessPolicy(opts.access ?? {}, true)
  const service = new TokenService({
    signer: opts.signer,
    service: opts.service,
    policy,
    ...(opts.ttlSeconds === undefined ? {} : { ttlSeconds: opts.ttlSeconds }),
    ...(opts.htpasswd === undefined ? {} : { htpasswd: opts.htpasswd }),
  })
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const started = Date.now()
    const url = new URL(req.url ?? '/', 'http://token.invalid')
    const done = (status: number, user?: string): void => {
      const sink = opts.accessLog
      if (sink === undefined) return
      const entry: AccessLogEntry = {
        time: new Date().toISOString(), requestId: '', remote: req.socket.remoteAddress ?? 'unknown', method: req.method ?? '',
        path: url.pathname, route: 'token', status, bytesIn: 0, bytesOut: 0, durationMs: Date.now() - started,
      }
      if (user !== undefined) entry.user = user
      if (typeof sink === 'function') sink(entry)
      else sink.write(`${JSON.stringify(entry)}\n`)
    }
    if (url.pathname === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'application/json' })
      res.end('{"status":"ok"}')
      done(200)
      return
    }
    if (url.pathname !== '/token') {
      res.writeHead(404, { 'Content-Type': 'application/json' })
      res.end('{"errors":[{"code":"UNSUPPORTED","message":"not found"}]}')
      done(404)
      return
    }
    service.handle(req, url).then(
      (r) => {
        sendTokenResult(res, r, req.method === 'HEAD')
        done(r.status, r.user)
      },
      () => {
        res.writeHead(500)
        res.end()
        done(500)
      },
    )
  }
  const server = opts.tls ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : createHttpServer(handler)
  const sockets = new Set<Socket>()
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  const host = opts.host ?? '127.0.0.1'
  const port = await listenOn(server, opts.port ?? 5001, host)
  const urlHost = host.includes(':') ? `[${host}]` : host
  const url = `${opts.tls ? 'https' : 'http'}://${urlHost}:${port}`
  return {
    realm: `${url}/token`,
    url,
    port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeIdleConnections()
      setTimeout(() => {
        for (const s of sockets) s.destroy()
      }, 2000).unref()
    }),
  }
}
