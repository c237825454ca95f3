/**
 * The registry client: one `Registry` per registry host, one `Repository` per repository in it.
 * Every operation of the distribution API Cairn needs: ping, blob HEAD/GET (with Range), blob
 * uploads (start, cross-repository mount, status, chunk, finish), manifest GET/HEAD/PUT, tags.
 *
 * Requests are retried with exponential backoff on 408/429/5xx and broken connections (a
 * request whose body is a one-shot stream is left to its caller, which knows where to resume);
 * a 401 is answered once by following the registry's challenge.
 */
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { CairnError, isCairnError } from '../errors/index.js'
import { digestOf, isDigest, parseDigest, type Digest } from '../oci/digest.js'
import { apiHost, defaultRemoteConfig, isInsecure, type RemoteConfig } from './config.js'
import { Authorizer, repositoryScope } from './auth.js'
import { DockerCredentials, dockerConfigDir, type Credentials } from './credentials.js'
import { isTemporary, networkError, registryError, type Subject } from './errors.js'
import { Transport, type HttpResponse, type RequestBody } from './http.js'

export interface RetryPolicy {
  /** Attempts in all (default 5). */
  attempts: number
  /** First delay; doubled each time, with jitter, capped at 8 s (default 250 ms). */
  baseDelayMs: number
}

export interface RegistryOptions {
  config?: RemoteConfig
  /** Credentials to use; default: Docker's config (and helpers) for this registry. */
  credentials?: Credentials | (() => Promise<Credentials | undefined>)
  transport?: Transport
  retry?: Partial<RetryPolicy>
  env?: NodeJS.ProcessEnv
}

export interface RequestSpec {
  method: string
  /** A path below the registry's base (`/v2/…`) or an absolute URL (upload locations). */
  path?: string
  url?: URL
  headers?: Record<string, string>
  body?: RequestBody
  scopes: readonly string[]
  subject: Subject
  /** Statuses that count as success (others throw). */
  expect: readonly number[]
  /** Repeat on temporary failures (default true unless the body is a one-shot stream). */
  retry?: boolean
  signal?: AbortSignal
  onBodyBytes?: (n: number) => void
  redirects?: boolean
}

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
] as const

const MAX_MANIFEST = 4 << 20

export class Registry {
  /** The reference domain (`docker.io`, `localhost:5000`). */
  readonly domain: string
  /** The host serving the API (`registry-1.docker.io` for docker.io). */
  readonly host: string
  readonly transport: Transport
  readonly auth: Authorizer
  private readonly retry: RetryPolicy
  private readonly ownTransport: boolean
  private ready: Promise<URL> | undefined
  private readonly config: RemoteConfig

  constructor(domain: string, opts: RegistryOptions = {}) {
    this.domain = domain
    this.host = apiHost(domain)
    this.config = opts.config ?? defaultRemoteConfig()
    this.ownTransport = opts.transport === undefined
    this.transport = opts.transport ?? new Transport(this.config, opts.env)
    this.retry = { attempts: opts.retry?.attempts ?? 5, baseDelayMs: opts.retry?.baseDelayMs ?? 250 }
    const given = opts.credentials
    let memo: Promise<Credentials | undefined> | undefined
    const source = typeof given === 'function'
      ? given
      : given !== undefined
        ? async () => given
        : async () => new DockerCredentials(dockerConfigDir(opts.env), opts.env).get(domain)
    this.auth = new Authorizer(this.transport, () => (memo ??= source()))
  }

  close(): void {
    if (this.ownTransport) this.transport.close()
  }

  repository(name: string): Repository {
    return new Repository(this, name)
  }

  /**
   * The base URL, decided once: HTTPS; for loopback and insecure registries, plain HTTP when the
   * HTTPS attempt fails at the connection level (as Docker falls back). Also learns the challenge.
   */
  base(signal?: AbortSignal): Promise<URL> {
    this.ready ??= this.discover(signal)
    this.ready.catch(() => {
      this.ready = undefined
    })
    return this.ready
  }

  private async discover(signal?: AbortSignal): Promise<URL> {
    const sig = signal ? { signal } : {}
    const ping = async (base: URL): Promise<HttpResponse> => {
      const what = `GET ${base.href}v2/`
      let res: HttpResponse
      try {
        res = await this.transport.request({ method: 'GET', url: new URL('/v2/', base), ...sig })
      } catch (err) {
        throw networkError(err, what)
      }
      const body = await readText(res, what)
      if (res.status >= 500 || res.status === 429 || res.status === 408) throw registryError(res.status, body, what, 'registry')
      return res
    }
    let res: HttpResponse
    let base = new URL(`https://${this.host}/`)
    if (isInsecure(this.host, this.config)) {
      try {
        res = await this.transport.request({ method: 'GET', url: new URL('/v2/', base), ...sig })
        res.discard()
      } catch (err) {
        if (isCairnError(err) && err.code === 'ABORTED') throw err
        base = new URL(`http://${this.host}/`)
        res = await ping(base)
      }
    } else {
      res = await ping(base)
    }
    if (res.status === 401) this.auth.learn(res.header('www-authenticate'))
    return base
  }

  /** GET /v2/ with the credentials: resolves when the registry accepts them (or needs none). */
  async ping(signal?: AbortSignal): Promise<void> {
    const res = await this.request({ method: 'GET', path: '/v2/', scopes: [], subject: 'registry', expect: [200], ...(signal ? { signal } : {}) })
    res.discard()
  }

  /** One logical request: base URL, auth (one challenge round), retries on temporary failures. */
  async request(spec: RequestSpec): Promise<HttpResponse> {
    const what = `${spec.method} ${spec.url?.href ?? spec.path ?? '/'}`
    const replayable = spec.body === undefined || Buffer.isBuffer(spec.body)
    const attempt = async (): Promise<HttpResponse> => {
      const base = await this.base(spec.signal)
      const url = spec.url ?? new URL(spec.path ?? '/', base)
      let authRounds = 0
      for (;;) {
        const headers: Record<string, string> = { ...(spec.headers ?? {}) }
        const authz = await this.auth.header(spec.scopes, spec.signal)
        if (authz) headers['Authorization'] = authz
        const res = await this.transport.request({
          method: spec.method, url, headers,
          ...(spec.body !== undefined ? { body: spec.body } : {}),
          ...(spec.signal ? { signal: spec.signal } : {}),
          ...(spec.onBodyBytes ? { onBodyBytes: spec.onBodyBytes } : {}),
          ...(spec.redirects !== undefined ? { redirects: spec.redirects } : {}),
        })
        if (res.status === 401 && authRounds === 0) {
          // follow the challenge once: learn it (or a new one), drop a refused token, ask again
          const challenge = res.header('www-authenticate')
          res.discard()
          authRounds++
          this.auth.learn(challenge)
          if (authz?.startsWith('Bearer ')) this.auth.invalidate(spec.scopes)
          continue
        }
        if (spec.expect.includes(res.status)) return res
        const body = await readText(res, what)
        const err = registryError(res.status, body, what, spec.subject)
        const retryAfter = Number(res.header('retry-after'))
        if (Number.isFinite(retryAfter) && retryAfter > 0) (err.detail as { retryAfter?: number }).retryAfter = retryAfter
        throw err
      }
    }
    if (spec.retry === false || (!replayable && spec.retry !== true)) return attempt()
    return this.withRetry(what, spec.signal, attempt)
  }

  /** Runs `fn` again after temporary failures, with exponential backoff and jitter. */
  async withRetry<T>(what: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    for (let i = 1; ; i++) {
      try {
        return await fn()
      } catch (e) {
        const err = networkError(e, what)
        if (!isTemporary(err) || i >= this.retry.attempts || signal?.aborted) throw err
        const retryAfter = retryAfterMs(err)
        const delay = retryAfter ?? Math.min(8000, this.retry.baseDelayMs * 2 ** (i - 1)) * (0.75 + Math.random() / 2)
        await sleep(delay, undefined, signal ? { signal } : {}).catch(() => {
          throw new CairnError('ABORTED', 'operation aborted')
        })
      }
    }
  }
}

function retryAfterMs(err: unknown): number | undefined {
  const d = (err as { detail?: { retryAfter?: number } }).detail
  return typeof d?.retryAfter === 'number' ? Math.min(d.retryAfter * 1000, 10_000) : undefined
}

/** The body's bytes, at most `max` (reading stops there). */
async function readBytes(res: HttpResponse, what: string, max: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let n = 0
  try {
    for await (const c of res.body) {
      const b = c as Buffer
      chunks.push(b)
      n += b.length
      if (n >= max) {
        res.body.destroy()
        break
      }
    }
  } catch (err) {
    throw networkError(err, what)
  }
  return Buffer.concat(chunks)
}

async function readText(res: HttpResponse, what: string, max?: number): Promise<string> {
  try {
    return await res.text(max)
  } catch (err) {
    throw networkError(err, what)
  }
}

export interface Manifest {
  bytes: Buffer
  mediaType: string
  digest: Digest
}

export interface UploadSession {
  location: URL
  /** Bytes the registry holds for this upload. */
  offset: number
}

export type StartUpload = { mounted: true } | ({ mounted: false } & UploadSession)

export class Repository {
  constructor(readonly registry: Registry, readonly name: string) {}

  private scopes(push: boolean, extra: readonly string[] = []): string[] {
    return [repositoryScope(this.name, push ? ['pull', 'push'] : ['pull']), ...extra]
  }

  /** HEAD on a blob: its size when the repository has it, else undefined. */
  async blobSize(digest: Digest, opts: { push?: boolean; signal?: AbortSignal } = {}): Promise<number | undefined> {
    try {
      const res = await this.registry.request({
        method: 'HEAD', path: `/v2/${this.name}/blobs/${digest}`, scopes: this.scopes(opts.push ?? false),
        subject: 'blob', expect: [200], ...(opts.signal ? { signal: opts.signal } : {}),
      })
      res.discard()
      const len = Number(res.header('content-length'))
      return Number.isFinite(len) ? len : 0
    } catch (err) {
      if (isCairnError(err) && (err.code === 'BLOB_UNKNOWN' || (err.detail as { status?: number } | undefined)?.status === 404)) return undefined
      throw err
    }
  }

  /** GET a blob, from `offset` on (Range). `partial` tells whether the answer starts at `offset`. */
  async blob(digest: Digest, opts: { offset?: number; signal?: AbortSignal } = {}): Promise<{ res: HttpResponse; partial: boolean }> {
    const offset = opts.offset ?? 0
    const headers: Record<string, string> = {}
    if (offset > 0) headers['Range'] = `bytes=${offset}-`
    const res = await this.registry.request({
      method: 'GET', path: `/v2/${this.name}/blobs/${digest}`, headers, scopes: this.scopes(false),
      subject: 'blob', expect: [200, 206], retry: false, ...(opts.signal ? { signal: opts.signal } : {}),
    })
    if (res.status === 206) {
      const m = /^bytes (\d+)-/.exec(res.header('content-range') ?? '')
      if (!m || Number(m[1]) !== offset) {
        res.discard()
        throw new CairnError('UNAVAILABLE', `GET ${digest}: the registry answered a range that does not start at ${offset}`, { temporary: true })
      }
      return { res, partial: true }
    }
    return { res, partial: false }
  }

  /** GET a small blob (a config) whole, verified against its digest. */
  async blobBytes(digest: Digest, maxSize: number, signal?: AbortSignal): Promise<Buffer> {
    return this.registry.withRetry(`GET blob ${digest}`, signal, async () => {
      const { res } = await this.blob(digest, signal ? { signal } : {})
      const chunks: Buffer[] = []
      let n = 0
      try {
        for await (const c of res.body) {
          n += (c as Buffer).length
          if (n > maxSize) {
            res.body.destroy()
            throw new CairnError('SIZE_INVALID', `blob ${digest} is larger than ${maxSize} bytes`)
          }
          chunks.push(c as Buffer)
        }
      } catch (err) {
        throw networkError(err, `GET blob ${digest}`)
      }
      const bytes = Buffer.concat(chunks)
      const actual = digestOf(bytes, parseDigest(digest).algorithm)
      if (actual !== digest) throw new CairnError('DIGEST_INVALID', `blob ${digest} from ${this.registry.domain}/${this.name} has digest ${actual}`)
      return bytes
    })
  }

  /** GET a manifest (or index) by tag or digest, verified when a digest is known. */
  async manifest(ref: string, signal?: AbortSignal): Promise<Manifest> {
    return this.registry.withRetry(`GET manifest ${this.name}:${ref}`, signal, async () => {
      const res = await this.registry.request({
        method: 'GET', path: `/v2/${this.name}/manifests/${ref}`, headers: { Accept: MANIFEST_ACCEPT.join(', ') },
        scopes: this.scopes(false), subject: 'manifest', expect: [200], retry: false, ...(signal ? { signal } : {}),
      })
      const declared = Number(res.header('content-length'))
      if (Number.isFinite(declared) && declared > MAX_MANIFEST) {
        res.body.destroy()
        throw new CairnError('MANIFEST_INVALID', `manifest ${this.name}:${ref} is ${declared} bytes, more than ${MAX_MANIFEST}`)
      }
      const raw = await readBytes(res, `GET manifest ${ref}`, MAX_MANIFEST + 1)
      if (raw.length > MAX_MANIFEST) throw new CairnError('MANIFEST_INVALID', `manifest ${this.name}:${ref} is larger than ${MAX_MANIFEST} bytes`)
      const alg = isDigest(ref) ? parseDigest(ref).algorithm : 'sha256'
      const digest = digestOf(raw, alg)
      if (isDigest(ref) && digest !== ref) {
        throw new CairnError('DIGEST_INVALID', `manifest ${this.name}@${ref} from ${this.registry.domain} has digest ${digest}`)
      }
      const header = res.header('docker-content-digest')
      if (!isDigest(ref) && header !== undefined && isDigest(header) && header.startsWith('sha256:') && header !== digest) {
        throw new CairnError('DIGEST_INVALID', `manifest ${this.name}:${ref}: the registry says ${header}, its bytes hash to ${digest}`)
      }
      let mediaType = (res.header('content-type') ?? '').split(';')[0]?.trim() ?? ''
      try {
        const parsed = JSON.parse(raw.toString('utf8')) as { mediaType?: string; manifests?: unknown; layers?: unknown }
        if (typeof parsed.mediaType === 'string') mediaType = parsed.mediaType
        else if (!MANIFEST_ACCEPT.includes(mediaType as (typeof MANIFEST_ACCEPT)[number])) {
          mediaType = Array.isArray(parsed.manifests) ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json'
        }
      } catch {
        throw new CairnError('MANIFEST_INVALID', `manifest ${this.name}:${ref} is not valid JSON`)
      }
      return { bytes: raw, mediaType, digest }
    })
  }

  /** PUT a manifest under a tag (or its digest); returns the digest the registry reports. */
  async putManifest(ref: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<Digest> {
    const res = await this.registry.request({
      method: 'PUT', path: `/v2/${this.name}/manifests/${ref}`, headers: { 'Content-Type': mediaType }, body: bytes,
      scopes: this.scopes(true), subject: 'manifest', expect: [200, 201, 202], ...(signal ? { signal } : {}),
    })
    res.discard()
    const d = res.header('docker-content-digest')
    return d !== undefined && isDigest(d) ? d : digestOf(bytes)
  }

  /** POST a new upload, or a cross-repository mount (201: mounted; 202: an upload to use instead). */
  async startUpload(opts: { mount?: { digest: Digest; from: string }; signal?: AbortSignal; retry?: boolean } = {}): Promise<StartUpload> {
    const q = opts.mount ? `?mount=${encodeURIComponent(opts.mount.digest)}&from=${encodeURIComponent(opts.mount.from)}` : ''
    const extra = opts.mount ? [repositoryScope(opts.mount.from, ['pull'])] : []
    const res = await this.registry.request({
      method: 'POST', path: `/v2/${this.name}/blobs/uploads/${q}`, scopes: this.scopes(true, extra),
      subject: 'upload', expect: [201, 202], ...(opts.retry !== undefined ? { retry: opts.retry } : {}), ...(opts.signal ? { signal: opts.signal } : {}),
    })
    res.discard()
    if (res.status === 201) return { mounted: true }
    return { mounted: false, ...this.session(res, res.url) }
  }

  private session(res: HttpResponse, base: URL): UploadSession {
    const loc = res.header('location')
    if (!loc) throw new CairnError('BLOB_UPLOAD_INVALID', `the registry started an upload to ${this.name} without a Location`)
    return { location: new URL(loc, base), offset: parseRange(res.header('range')) }
  }

  /** GET the status of an upload: how many bytes the registry holds, and the URL to continue with. */
  async uploadStatus(location: URL, signal?: AbortSignal): Promise<UploadSession> {
    const res = await this.registry.request({
      method: 'GET', url: location, scopes: this.scopes(true), subject: 'upload', expect: [204, 200], ...(signal ? { signal } : {}),
    })
    res.discard()
    return this.session(res, location)
  }

  /** PATCH bytes `start…start+length-1` of a blob into an upload (`length` undefined: stream to the end). */
  async uploadChunk(session: UploadSession, body: { open: () => Readable; length?: number }, opts: { signal?: AbortSignal; onBodyBytes?: (n: number) => void } = {}): Promise<UploadSession> {
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' }
    if (body.length !== undefined) headers['Content-Range'] = `${session.offset}-${session.offset + body.length - 1}`
    const res = await this.registry.request({
      method: 'PATCH', url: session.location, headers, body, scopes: this.scopes(true), subject: 'upload', expect: [202, 204],
      retry: false, ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.onBodyBytes ? { onBodyBytes: opts.onBodyBytes } : {}),
    })
    res.discard()
    const next = this.session(res, session.location)
    return next
  }

  /** PUT that completes an upload (with the last bytes as its body, or none). */
  async finishUpload(session: UploadSession, digest: Digest, opts: { body?: { open: () => Readable; length: number }; signal?: AbortSignal; onBodyBytes?: (n: number) => void } = {}): Promise<void> {
    const url = new URL(session.location)
    url.searchParams.set('digest', digest)
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' }
    const res = await this.registry.request({
      method: 'PUT', url, headers, scopes: this.scopes(true), subject: 'upload', expect: [201, 204],
      retry: opts.body === undefined, ...(opts.body ? { body: opts.body } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.onBodyBytes ? { onBodyBytes: opts.onBodyBytes } : {}),
    })
    res.discard()
  }

  async cancelUpload(session: UploadSession, signal?: AbortSignal): Promise<void> {
    const res = await this.registry.request({
      method: 'DELETE', url: session.location, scopes: this.scopes(true), subject: 'upload', expect: [204, 200, 404], ...(signal ? { signal } : {}),
    })
    res.discard()
  }

  /** Every tag of the repository (following `Link` pagination). */
  async tags(signal?: AbortSignal): Promise<string[]> {
    const out: string[] = []
    let path: string | undefined = `/v2/${this.name}/tags/list?n=1000`
    for (let page = 0; path !== undefined && page < 1000; page++) {
      const res = await this.registry.request({ method: 'GET', path, scopes: this.scopes(false), subject: 'repository', expect: [200], ...(signal ? { signal } : {}) })
      const text = await readText(res, `GET tags of ${this.name}`)
      const body = JSON.parse(text) as { tags?: string[] | null }
      out.push(...(body.tags ?? []))
      const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(res.header('link') ?? '')
      path = link?.[1]
    }
    return out
  }
}

/** `Range: 0-N` → N+1 bytes held (distribution sends `0-0` for an empty upload, and for 1 byte). */
export function parseRange(range: string | undefined): number {
  if (!range) return 0
  const m = /^(?:bytes=)?(\d+)-(-?\d+)$/.exec(range.trim())
  if (!m) return 0
  const end = Number(m[2])
  if (end <= 0) return 0
  return end + 1
}
