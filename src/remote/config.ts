/**
 * Where a registry lives and how to reach it: Docker Hub's special names, plain HTTP only for
 * loopback and registries listed as insecure, per-registry CA and client certificates in
 * `certs.d` (as Docker's `/etc/docker/certs.d`), and Cairn's config file.
 *
 * The config file is `$CAIRN_CONFIG`, else `/etc/cairn/config.json`:
 *
 *   { "insecure-registries": ["registry.local:5000", "10.0.0.0/8"],
 *     "certs-dir": "/etc/cairn/certs.d",
 *     "upload-chunk-size": 0,
 *     "max-concurrent-uploads": 5,
 *     "max-concurrent-downloads": 3 }
 */
import { readFileSync, readdirSync } from 'node:fs'
import { isIP } from 'node:net'
import { CairnError, isErrno } from '../errors/index.js'
import { DEFAULT_DOMAIN } from '../oci/reference.js'

/** Docker Hub: the name references use, the host that serves its API, and its key in config.json. */
export const DockerHub = {
  domain: DEFAULT_DOMAIN,
  apiHost: 'registry-1.docker.io',
  configKey: 'https://index.docker.io/v1/',
} as const

const DEFAULT_CONFIG_FILE = '/etc/cairn/config.json'
const DEFAULT_CERTS_DIR = '/etc/cairn/certs.d'

export interface RemoteConfig {
  /** Hosts (`host[:port]`) and IPv4 CIDR ranges allowed to use plain HTTP or unverified TLS. */
  insecureRegistries: string[]
  certsDir: string
  /** Bytes per PATCH for chunked uploads; 0 uploads each blob in one request. */
  uploadChunkSize: number
  maxConcurrentUploads: number
  maxConcurrentDownloads: number
}

export function defaultRemoteConfig(): RemoteConfig {
  return { insecureRegistries: [], certsDir: DEFAULT_CERTS_DIR, uploadChunkSize: 0, maxConcurrentUploads: 5, maxConcurrentDownloads: 3 }
}

/** Reads `$CAIRN_CONFIG` (or /etc/cairn/config.json); a missing file means the defaults. */
export function loadRemoteConfig(path: string = process.env['CAIRN_CONFIG'] ?? DEFAULT_CONFIG_FILE): RemoteConfig {
  const cfg = defaultRemoteConfig()
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return cfg
    throw err
  }
  let raw: Record<string, unknown>
  try {
    raw = JSON.parse(text) as Record<string, unknown>
  } catch (err) {
    throw new CairnError('INVALID_ARGUMENT', `${path} is not valid JSON`, { cause: err })
  }
  const list = raw['insecure-registries']
  if (list !== undefined) {
    if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) throw new CairnError('INVALID_ARGUMENT', `${path}: insecure-registries must be a list of strings`)
    cfg.insecureRegistries = list
  }
  const num = (key: string, min: number): number | undefined => {
    const v = raw[key]
    if (v === undefined) return undefined
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new CairnError('INVALID_ARGUMENT', `${path}: ${key} must be an integer ≥ ${min}`)
    return v
  }
  if (typeof raw['certs-dir'] === 'string') cfg.certsDir = raw['certs-dir']
  cfg.uploadChunkSize = num('upload-chunk-size', 0) ?? cfg.uploadChunkSize
  cfg.maxConcurrentUploads = num('max-concurrent-uploads', 1) ?? cfg.maxConcurrentUploads
  cfg.maxConcurrentDownloads = num('max-concurrent-downloads', 1) ?? cfg.maxConcurrentDownloads
  return cfg
}

/** The host that serves a reference domain's API (`docker.io` → `registry-1.docker.io`). */
export function apiHost(domain: string): string {
  return domain === DockerHub.domain || domain === 'index.docker.io' ? DockerHub.apiHost : domain
}

/** The key credentials are stored under in Docker's config.json. */
export function credentialKey(server: string): string {
  const host = normalizeServer(server)
  return host === DockerHub.domain ? DockerHub.configKey : host
}

/**
 * A server argument as users give it (`https://index.docker.io/v1/`, `http://host:5000/`,
 * `registry-1.docker.io`, `docker.io`) → the reference domain it names.
 */
export function normalizeServer(server: string): string {
  let s = server.trim()
  s = s.replace(/^[a-z]+:\/\//i, '')
  s = s.replace(/\/.*$/, '')
  s = s.toLowerCase()
  if (s === 'index.docker.io' || s === 'registry-1.docker.io' || s === 'registry.hub.docker.com') return DockerHub.domain
  if (s === '') throw new CairnError('INVALID_ARGUMENT', `invalid registry address ${JSON.stringify(server)}`)
  return s
}

function splitHostPort(hostport: string): { host: string; port?: string } {
  if (hostport.startsWith('[')) {
    const end = hostport.indexOf(']')
    const host = hostport.slice(1, end)
    const rest = hostport.slice(end + 1)
    return rest.startsWith(':') ? { host, port: rest.slice(1) } : { host }
  }
  const colon = hostport.lastIndexOf(':')
  if (colon > 0 && hostport.indexOf(':') === colon) return { host: hostport.slice(0, colon), port: hostport.slice(colon + 1) }
  return { host: hostport }
}

export function hostOf(hostport: string): string {
  return splitHostPort(hostport).host
}

/** localhost, 127.0.0.0/8, ::1. */
export function isLoopback(hostport: string): boolean {
  const host = hostOf(hostport).toLowerCase()
  if (host === 'localhost' || host.endsWith('.localhost')) return true
  if (isIP(host) === 4) return host.startsWith('127.')
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1'
  return false
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((n, part) => (n << 8) + Number(part), 0) >>> 0
}

function inCidr(ip: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split('/')
  const bits = Number(bitsText)
  if (!base || isIP(base) !== 4 || isIP(ip) !== 4 || !Number.isInteger(bits) || bits < 0 || bits > 32) return false
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0
  return ((ipv4ToInt(ip) & mask) >>> 0) === ((ipv4ToInt(base) & mask) >>> 0)
}

/** Whether a registry may be reached over plain HTTP (and TLS without verification): loopback or listed. */
export function isInsecure(hostport: string, config: RemoteConfig): boolean {
  if (isLoopback(hostport)) return true
  const host = hostOf(hostport)
  for (const entry of config.insecureRegistries) {
    const e = entry.replace(/^[a-z]+:\/\//i, '').replace(/\/$/, '')
    if (e.includes('/')) {
      if (inCidr(host, e)) return true
    } else if (e.toLowerCase() === hostport.toLowerCase()) {
      return true
    }
  }
  return false
}

export interface TlsMaterial {
  /** Extra CAs (PEM), added to the system's. */
  ca: string[]
  cert?: string
  key?: string
}

/**
 * Docker's certs.d convention: `<dir>/<host:port>/` holds `*.crt` CA files and `*.cert`/`*.key`
 * client pairs (a `.cert` without its `.key` is an error, as with Docker).
 */
export function tlsMaterial(hostport: string, config: RemoteConfig): TlsMaterial {
  const dir = `${config.certsDir}/${hostport}`
  const out: TlsMaterial = { ca: [] }
  let names: string[]
  try {
    names = readdirSync(dir).sort()
  } catch {
    return out
  }
  for (const name of names) {
    if (name.endsWith('.crt')) out.ca.push(readFileSync(`${dir}/${name}`, 'utf8'))
    else if (name.endsWith('.cert')) {
      const keyName = `${name.slice(0, -'.cert'.length)}.key`
      if (!names.includes(keyName)) throw new CairnError('INVALID_ARGUMENT', `missing key ${keyName} for client certificate ${dir}/${name}`)
      out.cert = readFileSync(`${dir}/${name}`, 'utf8')
      out.key = readFileSync(`${dir}/${keyName}`, 'utf8')
    } else if (name.endsWith('.key')) {
      const certName = `${name.slice(0, -'.key'.length)}.cert`
      if (!names.includes(certName)) throw new CairnError('INVALID_ARGUMENT', `missing client certificate ${certName} for key ${dir}/${name}`)
    }
  }
  return out
}

/**
 * CAs from the file named by CAIRN_EXTRA_CA_CERTS (PEM), added to the system's as Node.js adds
 * NODE_EXTRA_CA_CERTS (`bin/cairn` moves that variable here, so that commands which open no
 * TLS connection do not pay for parsing it at start-up). An unreadable file is ignored, as
 * Node.js ignores one.
 */
export function extraCertificates(env: NodeJS.ProcessEnv): string[] {
  const file = env['CAIRN_EXTRA_CA_CERTS']
  if (file === undefined || file === '') return []
  try {
    return [readFileSync(file, 'utf8')]
  } catch {
    return []
  }
}
