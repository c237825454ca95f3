/**
 * The registry's configuration: a YAML file (see yaml.ts for the subset read) plus command-line flags,
 * flags winning. Everything has a default, so that no configuration at all serves an open registry on
 * 127.0.0.1:5000 from the default root. Paths in the file are relative to the file's folder.
 */
import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, isAbsolute, resolve } from 'node:path'
import { CairnError } from '../errors/index.js'
import { fromHumanSize, ramInBytes } from '../util/bytes.js'
import { parseDurationNs } from '../util/duration.js'
import { parseAccessConfig, type AccessConfig } from './access.js'
import { parseYaml, type YamlValue } from './yaml.js'

export interface RegistryConfig {
  /** `host:port` */
  listen: string
  root: string
  readOnly: boolean
  tls?: { cert: string; key: string }
  auth: {
    htpasswd?: string
    realm?: string
    token?: {
      service: string
      issuer: string
      /** Private key (PEM): this server signs tokens at /token. */
      key?: string
      /** Public key or certificate (PEM) to verify tokens signed elsewhere. */
      publicKey?: string
      realm?: string
      expirationSeconds: number
    }
  }
  access: AccessConfig
  rateLimit?: { rate: number; burst?: number }
  uploads: { purgeAfterMs: number; purgeIntervalMs: number }
  gc: { intervalMs: number; gracePeriodMs: number; deleteUntagged: boolean }
  /** Access log destination: `stdout`, `stderr`, `none` or a file path (appended to). */
  accessLog: string
  manifestLimit: number
  metrics: boolean
  trustProxy: boolean
  shutdownTimeoutMs: number
  /** Where `cairn registry token-server` listens. */
  tokenServerListen: string
}

const DEFAULT_LISTEN = '127.0.0.1:5000'
const DEFAULT_TOKEN_SERVER_LISTEN = '127.0.0.1:5001'

/** Default storage root: /var/lib/cairn-registry as root, else $XDG_DATA_HOME/cairn-registry. */
export function defaultRegistryRoot(): string {
  if (process.getuid?.() === 0) return '/var/lib/cairn-registry'
  const xdg = process.env['XDG_DATA_HOME']
  return `${xdg && xdg.startsWith('/') ? xdg : `${homedir()}/.local/share`}/cairn-registry`
}

export function defaultConfig(): RegistryConfig {
  return {
    listen: DEFAULT_LISTEN,
    root: defaultRegistryRoot(),
    readOnly: false,
    auth: {},
    access: {},
    uploads: { purgeAfterMs: 24 * 3_600_000, purgeIntervalMs: 3_600_000 },
    gc: { intervalMs: 0, gracePeriodMs: 3_600_000, deleteUntagged: false },
    accessLog: 'stdout',
    manifestLimit: 4 << 20,
    metrics: true,
    trustProxy: false,
    shutdownTimeoutMs: 30_000,
    tokenServerListen: DEFAULT_TOKEN_SERVER_LISTEN,
  }
}

function bad(where: string, what: string): CairnError {
  return new CairnError('INVALID_ARGUMENT', `configuration: ${where} ${what}`)
}

/** The registry configuration's units: no `ns`/`us`, and days. */
const CONFIG_UNITS = { ms: 1e6, s: 1e9, m: 60e9, h: 3600e9, d: 86_400e9 } as const

/** `90`, `90s`, `500ms`, `5m`, `1h`, `7d` → milliseconds (a bare number is seconds). */
export function parseDuration(v: unknown, where: string): number {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v * 1000
  if (typeof v === 'string') {
    const ns = parseDurationNs(v.trim(), { sign: false, looseFraction: false, compound: false, bareUnit: 's', units: CONFIG_UNITS })
    if (ns !== undefined) return Math.round(ns / 1e6)
  }
  throw bad(where, `must be a duration such as 30s, 5m, 1h (got ${JSON.stringify(v)})`)
}

/** `4194304`, `4MiB`, `512KiB`, `1GiB`, `10MB` → bytes. */
export function parseSize(v: unknown, where: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) return v
  if (typeof v === 'string') {
    // go-units' syntax narrowed to whole unit names, where KiB is 1024 and KB 1000
    const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB)?$/i.exec(v.trim())
    if (m) {
      const unit = m[2] ?? ''
      const n = (/i/i.test(unit) ? ramInBytes : fromHumanSize)(`${m[1]}${unit}`)
      if ('bytes' in n) return n.bytes
    }
  }
  throw bad(where, `must be a size such as 4MiB (got ${JSON.stringify(v)})`)
}

export function parseListen(v: string, where = 'listen'): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(v.trim())
  const port = m ? Number(m[3]) : NaN
  if (!m || port > 65535) throw bad(where, `must be HOST:PORT, e.g. 127.0.0.1:5000 or [::1]:5000 or :5000 (got ${JSON.stringify(v)})`)
  const named = m[1] ?? m[2] ?? ''
  const host = named === '' ? '0.0.0.0' : named
  return { host, port }
}

type Obj = Record<string, YamlValue>

function obj(v: YamlValue | undefined, where: string, keys: readonly string[]): Obj {
  if (v === undefined || v === null) return {}
  if (typeof v !== 'object' || Array.isArray(v)) throw bad(where, 'must be a mapping')
  for (const k of Object.keys(v)) if (!keys.includes(k)) throw bad(`${where}.${k}`, `unknown key (known: ${keys.join(', ')})`)
  return v
}

function str(v: YamlValue | undefined, where: string): string | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v === 'number') return String(v)
  if (typeof v !== 'string') throw bad(where, 'must be a string')
  return v
}

function bool(v: YamlValue | undefined, where: string): boolean | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'boolean') throw bad(where, 'must be true or false')
  return v
}

/** Reads and validates a configuration file over the defaults. */
export async function loadRegistryConfig(path: string, base: RegistryConfig = defaultConfig()): Promise<RegistryConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new CairnError('INVALID_ARGUMENT', `cannot read configuration ${path}: ${(err as Error).message}`, { cause: err })
  }
  return applyConfig(parseYaml(text), base, dirname(resolve(path)))
}

/** Applies a parsed configuration document to `base`; relative paths are resolved against `dir`. */
export function applyConfig(doc: YamlValue, base: RegistryConfig, dir: string): RegistryConfig {
  const topKeys = ['version', 'listen', 'root', 'readOnly', 'tls', 'auth', 'access', 'rateLimit', 'uploads', 'gc', 'log', 'limits', 'metrics', 'trustProxy', 'shutdownTimeout', 'tokenServer']
  const top = obj(doc, 'the document', topKeys)
  const path = (v: YamlValue | undefined, where: string): string | undefined => {
    const s = str(v, where)
    return s === undefined ? undefined : isAbsolute(s) ? s : resolve(dir, s)
  }
  const cfg: RegistryConfig = structuredClone(base)
  const listen = str(top['listen'], 'listen')
  if (listen !== undefined) {
    parseListen(listen)
    cfg.listen = listen
  }
  const root = path(top['root'], 'root')
  if (root !== undefined) cfg.root = root
  const ro = bool(top['readOnly'], 'readOnly')
  if (ro !== undefined) cfg.readOnly = ro
  if (top['tls'] !== undefined && top['tls'] !== null) {
    const t = obj(top['tls'], 'tls', ['cert', 'key'])
    const cert = path(t['cert'], 'tls.cert')
    const key = path(t['key'], 'tls.key')
    if (cert === undefined || key === undefined) throw bad('tls', 'needs both cert and key')
    cfg.tls = { cert, key }
  }
  const auth = obj(top['auth'], 'auth', ['htpasswd', 'realm', 'token'])
  const htpasswd = path(auth['htpasswd'], 'auth.htpasswd')
  if (htpasswd !== undefined) cfg.auth.htpasswd = htpasswd
  const realm = str(auth['realm'], 'auth.realm')
  if (realm !== undefined) cfg.auth.realm = realm
  if (auth['token'] !== undefined && auth['token'] !== null) {
    const t = obj(auth['token'], 'auth.token', ['service', 'issuer', 'key', 'publicKey', 'realm', 'expiration'])
    const token: NonNullable<RegistryConfig['auth']['token']> = {
      service: str(t['service'], 'auth.token.service') ?? 'cairn-registry',
      issuer: str(t['issuer'], 'auth.token.issuer') ?? 'cairn-token-server',
      expirationSeconds: t['expiration'] === undefined ? 300 : Math.max(1, Math.round(parseDuration(t['expiration'], 'auth.token.expiration') / 1000)),
    }
    const key = path(t['key'], 'auth.token.key')
    if (key !== undefined) token.key = key
    const pub = path(t['publicKey'], 'auth.token.publicKey')
    if (pub !== undefined) token.publicKey = pub
    const r = str(t['realm'], 'auth.token.realm')
    if (r !== undefined) token.realm = r
    cfg.auth.token = token
  }
  if (top['access'] !== undefined) cfg.access = parseAccessConfig(top['access'], 'access')
  if (top['rateLimit'] !== undefined && top['rateLimit'] !== null) {
    const r = obj(top['rateLimit'], 'rateLimit', ['rate', 'burst'])
    const rate = r['rate']
    if (typeof rate !== 'number' || !(rate > 0)) throw bad('rateLimit.rate', 'must be a number of requests per second > 0')
    const burst = r['burst']
    if (burst !== undefined && (typeof burst !== 'number' || !(burst >= 1))) throw bad('rateLimit.burst', 'must be a number >= 1')
    cfg.rateLimit = burst === undefined ? { rate } : { rate, burst }
  }
  const up = obj(top['uploads'], 'uploads', ['purgeAfter', 'purgeInterval'])
  if (up['purgeAfter'] !== undefined) cfg.uploads.purgeAfterMs = parseDuration(up['purgeAfter'], 'uploads.purgeAfter')
  if (up['purgeInterval'] !== undefined) cfg.uploads.purgeIntervalMs = Math.max(1000, parseDuration(up['purgeInterval'], 'uploads.purgeInterval'))
  const gc = obj(top['gc'], 'gc', ['interval', 'gracePeriod', 'deleteUntagged'])
  if (gc['interval'] !== undefined) cfg.gc.intervalMs = parseDuration(gc['interval'], 'gc.interval')
  if (gc['gracePeriod'] !== undefined) cfg.gc.gracePeriodMs = parseDuration(gc['gracePeriod'], 'gc.gracePeriod')
  const du = bool(gc['deleteUntagged'], 'gc.deleteUntagged')
  if (du !== undefined) cfg.gc.deleteUntagged = du
  const log = obj(top['log'], 'log', ['access'])
  const al = str(log['access'], 'log.access')
  if (al !== undefined) cfg.accessLog = ['stdout', 'stderr', 'none', '-'].includes(al) ? al : (path(al, 'log.access') as string)
  const limits = obj(top['limits'], 'limits', ['manifestSize'])
  if (limits['manifestSize'] !== undefined) cfg.manifestLimit = parseSize(limits['manifestSize'], 'limits.manifestSize')
  const metrics = bool(top['metrics'], 'metrics')
  if (metrics !== undefined) cfg.metrics = metrics
  const tp = bool(top['trustProxy'], 'trustProxy')
  if (tp !== undefined) cfg.trustProxy = tp
  if (top['shutdownTimeout'] !== undefined) cfg.shutdownTimeoutMs = parseDuration(top['shutdownTimeout'], 'shutdownTimeout')
  const ts = obj(top['tokenServer'], 'tokenServer', ['listen'])
  const tsl = str(ts['listen'], 'tokenServer.listen')
  if (tsl !== undefined) {
    parseListen(tsl, 'tokenServer.listen')
    cfg.tokenServerListen = tsl
  }
  return cfg
}
