/**
 * One HTTP exchange with a registry (or its blob storage), on node:http/https: per-registry TLS
 * (certs.d CAs and client certificates; verification off only for insecure registries), proxies
 * from the environment, keep-alive, an idle timeout, AbortSignal, and redirects followed without
 * sending the Authorization header to another host. No retries here: callers decide from the
 * status or the error code.
 */
import * as http from 'node:http'
import * as https from 'node:https'
import { rootCertificates } from 'node:tls'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CairnError } from '../errors/index.js'
import { extraCertificates, isInsecure, tlsMaterial, type RemoteConfig } from './config.js'
import { networkError } from './errors.js'
import { proxyFor, proxyHeaders, TunnelAgent } from './proxy.js'

/** A request body: bytes in memory, or a stream opened afresh for each attempt (redirects). */
export type RequestBody = Buffer | { length?: number; open: () => Readable | Promise<Readable> }

export interface HttpRequest {
  method: string
  url: URL
  headers?: Record<string, string>
  body?: RequestBody
  signal?: AbortSignal
  /** Follow redirects (default true). */
  redirects?: boolean
  /** Called with the running count of body bytes handed to the socket. */
  onBodyBytes?: (n: number) => void
}

export interface HttpResponse {
  status: number
  headers: http.IncomingHttpHeaders
  /** The URL that answered (after redirects). */
  url: URL
  body: http.IncomingMessage
  header(name: string): string | undefined
  /** Reads the body as text, at most `max` bytes (the rest is discarded). */
  text(max?: number): Promise<string>
  /** Throws the body away, keeping the connection reusable. */
  discard(): void
}

const IDLE_TIMEOUT_MS = 60_000
const MAX_REDIRECTS = 10

export class Transport {
  private readonly agents = new Map<string, http.Agent>()

  constructor(readonly config: RemoteConfig, private readonly env: NodeJS.ProcessEnv = process.env, readonly userAgent = 'cairn/0.1 (node)') {}

  close(): void {
    for (const a of this.agents.values()) a.destroy()
    this.agents.clear()
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    let url = req.url
    let method = req.method
    let headers = { ...(req.headers ?? {}) }
    let body = req.body
    const origin = url.origin
    for (let hop = 0; ; hop++) {
      const res = await this.once(method, url, headers, body, req)
      const location = res.header('location')
      if (req.redirects === false || location === undefined || ![301, 302, 303, 307, 308].includes(res.status)) return res
      res.discard()
      if (hop >= MAX_REDIRECTS) throw new CairnError('UNKNOWN', `${req.method} ${req.url.href}: too many redirects`)
      const next = new URL(location, url)
      if (next.protocol !== 'https:' && next.protocol !== 'http:') throw new CairnError('UNKNOWN', `redirect to an unsupported URL ${next.href}`)
      if (next.origin !== origin) {
        // blob storage on another host gets no registry credentials
        headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'))
      }
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
        method = method === 'HEAD' ? 'HEAD' : 'GET'
        body = undefined
        headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !['content-length', 'content-type', 'content-range'].includes(k.toLowerCase())))
      } else if (Buffer.isBuffer(body) === false && body !== undefined && !('open' in body)) {
        throw new CairnError('UNKNOWN', 'cannot repeat the request body for a redirect')
      }
      url = next
    }
  }

  private agentFor(url: URL): { agent: http.Agent; path: string; extraHeaders: Record<string, string> } {
    const hostport = url.port ? `${url.hostname}:${url.port}` : url.hostname
    const proxy = proxyFor(url, this.env)
    const key = `${url.protocol}//${hostport}|${proxy?.href ?? ''}`
    let agent: http.Agent | undefined = this.agents.get(key)
    const isHttps = url.protocol === 'https:'
    if (!agent) {
      const base = { keepAlive: true, maxSockets: 16, timeout: IDLE_TIMEOUT_MS }
      if (isHttps) {
        const material = tlsMaterial(hostport.replace(/^\[(.*)\]/, '$1'), this.config)
        const verify = !isInsecure(hostport, this.config)
        const opts: https.AgentOptions = { ...base, rejectUnauthorized: verify }
        // CAs serve only to verify: an insecure registry (loopback, or configured) is spared the
        // parsing of a whole CA bundle (some 50 ms with NODE_EXTRA_CA_CERTS set to the system's)
        const extra = verify ? extraCertificates(this.env) : []
        if (verify && (material.ca.length > 0 || extra.length > 0)) opts.ca = [...rootCertificates, ...extra, ...material.ca]
        // nor Node.js's own roots, which it loads into every TLS context given no `ca` (15 ms of the
        // first HTTPS attempt at a loopback registry); the configured CAs still serve a client
        // certificate's chain
        if (!verify) opts.ca = material.ca
        if (material.cert !== undefined && material.key !== undefined) {
          opts.cert = material.cert
          opts.key = material.key
        }
        agent = proxy ? new TunnelAgent(proxy, opts) : new https.Agent(opts)
      } else {
        agent = new http.Agent(base)
      }
      this.agents.set(key, agent)
    }
    // plain HTTP through a proxy: the request line carries the whole URL
    if (proxy && !isHttps) return { agent, path: url.href, extraHeaders: proxyHeaders(proxy) }
    return { agent, path: `${url.pathname}${url.search}`, extraHeaders: {} }
  }

  private async once(method: string, url: URL, headers: Record<string, string>, body: RequestBody | undefined, req: HttpRequest): Promise<HttpResponse> {
    if (req.signal?.aborted) throw new CairnError('ABORTED', 'operation aborted', { cause: req.signal.reason })
    // Go's url.Error form, as Docker prints it: Get "https://host/v2/": dial tcp …
    const what = `${method.charAt(0)}${method.slice(1).toLowerCase()} ${JSON.stringify(url.href)}`
    const proxied = proxyFor(url, this.env)
    const { agent, path, extraHeaders } = this.agentFor(url)
    const isHttps = url.protocol === 'https:'
    const h: Record<string, string> = { 'User-Agent': this.userAgent, ...extraHeaders, ...headers }
    let stream: Readable | undefined
    if (Buffer.isBuffer(body)) h['Content-Length'] = String(body.length)
    else if (body !== undefined) {
      if (body.length !== undefined) h['Content-Length'] = String(body.length)
      stream = await body.open()
    } else if (method === 'PUT' || method === 'POST' || method === 'PATCH') {
      h['Content-Length'] = '0'
    }
    const options: http.RequestOptions = {
      method,
      agent,
      headers: h,
      path,
      timeout: IDLE_TIMEOUT_MS,
      ...(proxied && !isHttps
        ? { host: proxied.hostname.replace(/^\[|\]$/g, ''), port: proxied.port || 80 }
        : { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || (isHttps ? 443 : 80) }),
    }
    const mod = isHttps ? https : http
    return new Promise<HttpResponse>((resolve, reject) => {
      let settled = false
      const fail = (err: unknown): void => {
        stream?.destroy()
        if (settled) return
        settled = true
        if (req.signal?.aborted) reject(new CairnError('ABORTED', 'operation aborted', { cause: req.signal.reason }))
        // networkError passes on what it does not wrap: the Error the socket gave
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
        else reject(networkError(err, what))
      }
      const r = mod.request(options, (res) => {
        if (settled) {
          res.resume()
          return
        }
        settled = true
        res.on('error', () => undefined) // readers see the error through their own pipeline
        resolve(wrapResponse(res, url))
      })
      r.on('timeout', () => r.destroy(Object.assign(new Error(`${what}: no data for ${IDLE_TIMEOUT_MS / 1000} s`), { code: 'ETIMEDOUT' })))
      r.on('error', fail)
      const onAbort = (): void => {
        r.destroy(new CairnError('ABORTED', 'operation aborted'))
      }
      req.signal?.addEventListener('abort', onAbort, { once: true })
      r.on('close', () => req.signal?.removeEventListener('abort', onAbort))
      if (Buffer.isBuffer(body)) {
        r.end(body)
        req.onBodyBytes?.(body.length)
      } else if (stream) {
        let n = 0
        if (req.onBodyBytes) {
          const cb = req.onBodyBytes
          stream.on('data', (c: Buffer) => {
            n += c.length
            cb(n)
          })
        }
        pipeline(stream, r).catch((err: unknown) => {
          r.destroy(err instanceof Error ? err : new Error(String(err)))
          fail(err)
        })
      } else {
        r.end()
      }
    })
  }
}

function wrapResponse(res: http.IncomingMessage, url: URL): HttpResponse {
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    url,
    body: res,
    header(name: string): string | undefined {
      const v = res.headers[name.toLowerCase()]
      return Array.isArray(v) ? v.join(', ') : v
    },
    async text(max = 1 << 20): Promise<string> {
      const chunks: Buffer[] = []
      let n = 0
      for await (const c of res) {
        const b = c as Buffer
        if (n < max) chunks.push(b.subarray(0, max - n))
        n += b.length
      }
      return Buffer.concat(chunks).toString('utf8')
    },
    discard(): void {
      res.resume()
    },
  }
}
