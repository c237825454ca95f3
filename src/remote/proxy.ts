/**
 * Proxies from the environment, read as Go's net/http does (what Docker uses): HTTPS_PROXY for
 * https URLs, HTTP_PROXY for http ones (lower-case names too), NO_PROXY exceptions (`*`, host,
 * `.domain` suffix, `host:port`, IP, CIDR); loopback is never proxied.
 *
 * HTTPS through a proxy goes through a CONNECT tunnel made by `TunnelAgent`: an https.Agent
 * whose sockets are TLS sessions opened inside the tunnel. node:https plus this small agent
 * (rather than undici's ProxyAgent) keeps every request on one HTTP stack whose TLS options
 * (certs.d CAs, client certificates, per-registry verification) are plain `https.Agent` options,
 * and adds no dependency.
 */
import * as http from 'node:http'
import * as https from 'node:https'
import { isIP, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import * as tls from 'node:tls'
import { CairnError } from '../errors/index.js'
import { hostOf, isLoopback } from './config.js'

function envVar(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name] ?? env[name.toLowerCase()]
  return v === undefined || v === '' ? undefined : v
}

/** The proxy to use for `url`, or undefined to connect directly. */
export function proxyFor(url: URL, env: NodeJS.ProcessEnv = process.env): URL | undefined {
  const raw = url.protocol === 'https:' ? envVar(env, 'HTTPS_PROXY') : envVar(env, 'HTTP_PROXY')
  if (raw === undefined) return undefined
  const hostport = url.port ? `${url.hostname}:${url.port}` : url.hostname
  if (isLoopback(hostport.replace(/^\[(.*)\](:\d+)?$/, '$1$2'))) return undefined
  if (noProxyMatches(url, envVar(env, 'NO_PROXY') ?? '')) return undefined
  try {
    return new URL(/^[a-z]+:\/\//i.test(raw) ? raw : `http://${raw}`)
  } catch {
    throw new CairnError('INVALID_ARGUMENT', `invalid proxy address ${JSON.stringify(raw)} in the environment`)
  }
}

function noProxyMatches(url: URL, noProxy: string): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase()
  const port = url.port || (url.protocol === 'https:' ? '443' : '80')
  for (let entry of noProxy.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)) {
    if (entry === '*') return true
    if (entry.includes('/') && isIP(host) === 4) {
      if (cidrContains(entry, host)) return true
      continue
    }
    let entryPort: string | undefined
    const m = /^(.*):(\d+)$/.exec(entry)
    if (m && !entry.includes('::')) {
      entry = m[1] ?? entry
      entryPort = m[2]
    }
    if (entryPort !== undefined && entryPort !== port) continue
    if (entry.startsWith('*.')) entry = entry.slice(1)
    if (entry.startsWith('.')) {
      if (host.endsWith(entry) || host === entry.slice(1)) return true
    } else if (host === entry || host.endsWith(`.${entry}`)) {
      return true
    }
  }
  return false
}

function cidrContains(cidr: string, ip: string): boolean {
  const [base, bits] = cidr.split('/')
  const n = Number(bits)
  if (!base || isIP(base) !== 4 || !Number.isInteger(n) || n < 0 || n > 32) return false
  const toInt = (s: string): number => s.split('.').reduce((a, p) => (a << 8) + Number(p), 0) >>> 0
  const mask = n === 0 ? 0 : (~0 << (32 - n)) >>> 0
  return ((toInt(base) & mask) >>> 0) === ((toInt(ip) & mask) >>> 0)
}

function proxyAuthorization(proxy: URL): Record<string, string> {
  if (proxy.username === '') return {}
  const creds = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`
  return { 'Proxy-Authorization': `Basic ${Buffer.from(creds).toString('base64')}` }
}

/** The headers a request through an HTTP (not tunnelled) proxy carries. */
export function proxyHeaders(proxy: URL): Record<string, string> {
  return proxyAuthorization(proxy)
}

/** An https.Agent that reaches its targets through an HTTP proxy's CONNECT tunnel. */
export class TunnelAgent extends https.Agent {
  constructor(private readonly proxy: URL, options: https.AgentOptions) {
    super(options)
  }

  override createConnection(options: https.RequestOptions, cb?: (err: Error | null, stream: Duplex) => void): undefined {
    const callback = (err: Error | null, socket?: Duplex): void => cb?.(err, socket as Duplex)
    const target = `${options.host ?? 'localhost'}:${options.port ?? 443}`
    const isHttps = this.proxy.protocol === 'https:'
    const connectOpts: http.RequestOptions = {
      host: this.proxy.hostname.replace(/^\[|\]$/g, ''),
      port: this.proxy.port || (isHttps ? 443 : 80),
      method: 'CONNECT',
      path: target,
      headers: { Host: target, ...proxyAuthorization(this.proxy) },
    }
    const req = (isHttps ? https : http).request(connectOpts)
    req.once('connect', (res: http.IncomingMessage, socket: Socket) => {
      if (res.statusCode !== 200) {
        socket.destroy()
        callback(new CairnError('UNAVAILABLE', `proxy ${this.proxy.host} refused to connect to ${target} (HTTP ${res.statusCode ?? '?'})`, { temporary: (res.statusCode ?? 0) >= 500 }))
        return
      }
      const servername = options.servername ?? (isIP(hostOf(target)) ? undefined : hostOf(target))
      const secure = tls.connect({ ...(options as tls.ConnectionOptions), socket, ...(servername ? { servername } : {}) })
      callback(null, secure)
    })
    req.once('error', (err) => callback(err))
    req.end()
    return undefined
  }
}
