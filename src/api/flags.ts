/**
 * Docker's option syntaxes, turned into the engine's typed container config: `-v`, `--mount`,
 * `--volumes-from`, `--restart`, `--health-*`, `-p`, `--add-host`, `-e K`, sizes (`--memory 32m`),
 * `--cpus`, `--ulimit`, `--device`, `--tmpfs`, `--sysctl`, `--security-opt`. The docker CLI and
 * the Engine API (whose `HostConfig.Binds` uses the `-v` syntax) both need them, so they live
 * here, below both, and not in the engine. Hand-written: each is a few fields split on `:`, `,`
 * and `=`, with Docker's error messages, which no library reproduces.
 */
import { readFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { posix } from 'node:path'
import { CairnError } from '../errors/index.js'
import type {
  BindMountSpec, DeviceMapping, ExtraHost, HealthcheckOptions, MountSpec, PortProtocol, PortSpec, RestartPolicyOptions, SecurityOptions,
  TmpfsMountSpec, Ulimit, VolumeMountSpec,
} from '../container/config.js'
import { ULIMIT_TYPES } from '../runtime/spec.js'
import { ramInBytes } from '../util/bytes.js'
import { parseDurationMs } from '../util/duration.js'

function invalid(message: string): CairnError {
  return new CairnError('INVALID_ARGUMENT', message)
}

const BIND_MODES = new Set(['ro', 'rw', 'z', 'Z', 'shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate', 'nocopy'])

/**
 * `-v [SOURCE:]TARGET[:OPTS]`: an absolute SOURCE is a host folder (bind-mounted, made if missing,
 * as Docker's `-v` does), any other SOURCE a volume's name (made on first use), and TARGET alone
 * an anonymous volume. OPTS: `ro`/`rw`, `nocopy` (volumes), and the SELinux and propagation
 * words Docker accepts.
 */
export function parseVolumeFlag(spec: string): MountSpec {
  const parts = spec.split(':')
  if (parts.length > 3 || parts.some((p) => p === '') || spec === '') throw invalid(`invalid volume specification: '${spec}'`)
  if (parts.length === 1) {
    const target = parts[0] as string
    if (!target.startsWith('/')) throw invalid(`invalid volume specification: '${spec}': invalid mount config for type "volume": invalid mount path: '${target}' mount path must be absolute`)
    if (normalizePath(target) === '/') throw invalid(`invalid volume specification: '${spec}': invalid mount config for type "volume": invalid specification: destination can't be '/'`)
    return { type: 'volume', target: normalizePath(target), readonly: false }
  }
  // TARGET:MODE is not a volume (a volume's mode needs its source)
  if (parts.length === 2 && (parts[1] as string).split(',').every((m) => BIND_MODES.has(m))) throw invalid(`invalid volume specification: '${spec}'`)
  const [source = '', target = '', mode = ''] = parts
  const kind = source.startsWith('/') ? 'bind' : 'volume'
  if (!target.startsWith('/')) throw invalid(`invalid volume specification: '${spec}': invalid mount config for type "${kind}": invalid mount path: '${target}' mount path must be absolute`)
  if (normalizePath(target) === '/') throw invalid(`invalid volume specification: '${spec}': invalid mount config for type "${kind}": invalid specification: destination can't be '/'`)
  const modes = mode === '' ? [] : mode.split(',')
  for (const m of modes) if (!BIND_MODES.has(m)) throw invalid(`invalid mode: ${m}`)
  if (modes.includes('ro') && modes.includes('rw')) throw invalid(`invalid mode: ${mode}`)
  if (kind === 'volume') {
    const v: VolumeMountSpec = { type: 'volume', source, target: normalizePath(target), readonly: modes.includes('ro') }
    if (modes.includes('nocopy')) v.noCopy = true
    return v
  }
  return { type: 'bind', source: normalizePath(source), target: normalizePath(target), readonly: modes.includes('ro'), createSource: true }
}

/** Splits a `--mount` value as Docker reads it (CSV: a field may be quoted, `""` is a quote). */
function csvFields(s: string): string[] {
  const out: string[] = []
  let i = 0
  while (i <= s.length) {
    let field = ''
    if (s[i] === '"') {
      i++
      for (;;) {
        if (i >= s.length) throw invalid(`invalid argument "${s}" for "--mount" flag: parse error on line 1, column ${s.length + 1}: extraneous or missing " in quoted-field`)
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            field += '"'
            i += 2
            continue
          }
          i++
          break
        }
        field += s[i]
        i++
      }
      if (i < s.length && s[i] !== ',') throw invalid(`invalid argument "${s}" for "--mount" flag: parse error on line 1, column ${i}: extraneous or missing " in quoted-field`)
    } else {
      const end = s.indexOf(',', i)
      field = end < 0 ? s.slice(i) : s.slice(i, end)
      const quote = field.indexOf('"')
      if (quote >= 0) throw invalid(`invalid argument "${s}" for "--mount" flag: parse error on line 1, column ${i + quote + 1}: bare " in non-quoted-field`)
      i = end < 0 ? s.length : end
    }
    out.push(field)
    i++
  }
  return out
}

function parseBool(spec: string, key: string, value: string): boolean {
  if (value === '' || /^(1|t|true)$/i.test(value)) return true
  if (/^(0|f|false)$/i.test(value)) return false
  throw invalid(`invalid argument "${spec}" for "--mount" flag: invalid value for ${key}: ${value}`)
}

/**
 * Go's units.RAMInBytes, which Docker uses for sizes (`64m`, `1g`, `512k`, `100`): binary
 * multiples, an optional `i` and `b`. Undefined when it does not parse.
 */
export function parseRamBytes(s: string): number | undefined {
  const n = ramInBytes(s)
  return 'bytes' in n ? n.bytes : undefined
}

/**
 * `--mount type=bind|volume|tmpfs,…` as Docker's CLI reads it: `source`/`src`, `target`/`dst`/
 * `destination`, `readonly`/`ro`; for volumes `volume-nocopy`, `volume-label=K=V`,
 * `volume-driver`, `volume-opt=K=V`; for tmpfs `tmpfs-size` and `tmpfs-mode`. The type
 * defaults to volume; a bind's missing source is an error (Docker's --mount makes none).
 */
export function parseMountFlag(spec: string): MountSpec {
  let type = 'volume'
  let source: string | undefined
  let target: string | undefined
  let readonly = false
  let noCopy: boolean | undefined
  let tmpfsSize: number | undefined
  let tmpfsMode: number | undefined
  let driver: string | undefined
  const labels: Record<string, string> = {}
  const driverOptions: Record<string, string> = {}
  let volumeFields = false
  let bindFields = false
  let tmpfsFields = false
  for (const f of csvFields(spec)) {
    if (f === '') continue
    const eq = f.indexOf('=')
    const key = (eq < 0 ? f : f.slice(0, eq)).trim().toLowerCase()
    const value = eq < 0 ? '' : f.slice(eq + 1)
    if (eq < 0 && !['readonly', 'ro', 'volume-nocopy', 'bind-nonrecursive'].includes(key)) {
      throw invalid(`invalid argument "${spec}" for "--mount" flag: invalid field '${f}' must be a key=value pair`)
    }
    // K=V, or K alone for an empty value (Docker's strings.Cut)
    const kv = (): [string, string] => {
      const i = value.indexOf('=')
      return i < 0 ? [value, ''] : [value.slice(0, i), value.slice(i + 1)]
    }
    switch (key) {
      case 'type': type = value.toLowerCase(); break
      case 'source': case 'src': source = value; break
      case 'target': case 'dst': case 'destination': target = value; break
      case 'readonly': case 'ro': readonly = parseBool(spec, key, value); break
      case 'consistency': break
      case 'bind-propagation': case 'bind-nonrecursive': bindFields = true; break
      case 'volume-nocopy': noCopy = parseBool(spec, key, value); volumeFields = true; break
      case 'volume-label': { const [k, v] = kv(); labels[k] = v; volumeFields = true; break }
      case 'volume-opt': { const [k, v] = kv(); driverOptions[k] = v; volumeFields = true; break }
      case 'volume-driver': driver = value; volumeFields = true; break
      case 'tmpfs-size': {
        const n = parseRamBytes(value)
        if (n === undefined) throw invalid(`invalid argument "${spec}" for "--mount" flag: invalid value for ${key}: ${value}`)
        tmpfsSize = n
        tmpfsFields = true
        break
      }
      case 'tmpfs-mode': {
        if (!/^[0-7]+$/.test(value)) throw invalid(`invalid argument "${spec}" for "--mount" flag: invalid value for ${key}: ${value}`)
        tmpfsMode = parseInt(value, 8)
        tmpfsFields = true
        break
      }
      default:
        throw invalid(`invalid argument "${spec}" for "--mount" flag: unexpected key '${key}' in '${f}'`)
    }
  }
  const cfg = `invalid mount config for type ${JSON.stringify(type)}`
  if (type !== 'bind' && type !== 'volume' && type !== 'tmpfs') throw invalid(`${cfg}: mount type unknown`)
  if (target === undefined || target === '') throw invalid(`${cfg}: field Target must not be empty`)
  if (!target.startsWith('/')) throw invalid(`${cfg}: invalid mount path: '${target}' mount path must be absolute`)
  if (normalizePath(target) === '/') throw invalid(`${cfg}: invalid specification: destination can't be '/'`)
  if (type !== 'volume' && volumeFields) throw invalid(`${cfg}: field VolumeOptions must not be specified`)
  if (type !== 'bind' && bindFields) throw invalid(`${cfg}: field BindOptions must not be specified`)
  if (type !== 'tmpfs' && tmpfsFields) throw invalid(`${cfg}: field TmpfsOptions must not be specified`)
  if (type === 'tmpfs') {
    if (source !== undefined && source !== '') throw invalid(`${cfg}: field Source must not be specified`)
    const t: TmpfsMountSpec = { type: 'tmpfs', target: normalizePath(target), readonly }
    if (tmpfsSize !== undefined && tmpfsSize > 0) t.size = tmpfsSize
    if (tmpfsMode !== undefined) t.mode = tmpfsMode
    return t
  }
  if (type === 'volume') {
    const v: VolumeMountSpec = { type: 'volume', target: normalizePath(target), readonly }
    if (source !== undefined && source !== '') v.source = source
    if (noCopy) v.noCopy = true
    if (Object.keys(labels).length > 0) v.labels = labels
    if (Object.keys(driverOptions).length > 0) v.driverOptions = driverOptions
    if (driver !== undefined && driver !== '') v.driver = driver
    return v
  }
  if (source === undefined || source === '') throw invalid(`${cfg}: field Source must not be empty`)
  if (!source.startsWith('/')) throw invalid(`${cfg}: invalid mount path: '${source}' mount path must be absolute`)
  const m: BindMountSpec = { type: 'bind', source: normalizePath(source), target: normalizePath(target), readonly }
  return m
}

/** `--volumes-from CONTAINER[:ro|:rw]`, checked (the container is looked up at create). */
export function parseVolumesFrom(spec: string): string {
  const [name = '', mode, extra] = spec.split(':')
  if (name === '' || extra !== undefined || (mode !== undefined && mode !== 'ro' && mode !== 'rw')) {
    throw invalid(name !== '' && mode !== undefined && extra === undefined ? `invalid mode: ${mode}` : `invalid volumes-from specification: ${spec}`)
  }
  return spec
}

/** `--restart no|always|unless-stopped|on-failure[:N]`, with Docker's messages. */
export function parseRestartPolicy(spec: string): RestartPolicyOptions {
  const colon = spec.indexOf(':')
  const name = colon < 0 ? spec : spec.slice(0, colon)
  const max = colon < 0 ? '' : spec.slice(colon + 1)
  if (colon >= 0 && name === '') throw invalid('invalid restart policy format: no policy provided before colon')
  let count = 0
  if (max !== '') {
    if (!/^[+-]?\d+$/.test(max)) throw invalid('invalid restart policy format: maximum retry count must be an integer')
    count = Number(max)
  }
  switch (name) {
    case '': case 'no': case 'always': case 'unless-stopped':
      if (count !== 0) throw invalid(`maximum retry count cannot be used with restart policy '${name}'`)
      return { name: name === '' ? 'no' : name }
    case 'on-failure':
      if (count < 0) throw invalid('maximum retry count cannot be negative')
      return count > 0 ? { name, maximumRetryCount: count } : { name }
    default:
      throw invalid(`invalid restart policy '${name}'`)
  }
}

/** The `--health-*` flags as typed options (durations as Go writes them: `30s`, `1m30s`, `500ms`). */
export interface HealthFlags {
  healthCmd?: string
  healthInterval?: string
  healthTimeout?: string
  healthStartPeriod?: string
  healthStartInterval?: string
  healthRetries?: string
  noHealthcheck?: boolean
}

/** Docker's CLI rules for the health flags; undefined when none is given. */
export function parseHealthFlags(f: HealthFlags): HealthcheckOptions | undefined {
  const duration = (v: string | undefined, flag: string): number | undefined => {
    if (v === undefined) return undefined
    const ms = parseDurationMs(v)
    if (ms === undefined) throw invalid(`invalid argument "${v}" for "--${flag}" flag: time: ${/^[+-]?(\d+\.?\d*|\.\d+)$/.test(v) ? 'missing unit in duration' : 'invalid duration'} ${JSON.stringify(v)}`)
    if (ms < 0) throw invalid(`--${flag} cannot be negative`)
    return ms
  }
  const interval = duration(f.healthInterval, 'health-interval')
  const timeout = duration(f.healthTimeout, 'health-timeout')
  const startPeriod = duration(f.healthStartPeriod, 'health-start-period')
  const startInterval = duration(f.healthStartInterval, 'health-start-interval')
  let retries: number | undefined
  if (f.healthRetries !== undefined) {
    if (!/^[+-]?\d+$/.test(f.healthRetries)) throw invalid(`invalid argument "${f.healthRetries}" for "--health-retries" flag: strconv.ParseInt: parsing ${JSON.stringify(f.healthRetries)}: invalid syntax`)
    retries = Number(f.healthRetries)
    if (retries < 0) throw invalid('--health-retries cannot be negative')
  }
  const some = (f.healthCmd ?? '') !== '' || [interval, timeout, startPeriod, startInterval, retries].some((x) => x !== undefined && x !== 0)
  if (f.noHealthcheck) {
    if (some) throw invalid('--no-healthcheck conflicts with --health-* options')
    return { test: ['NONE'] }
  }
  if (!some) return undefined
  const h: HealthcheckOptions = {}
  if ((f.healthCmd ?? '') !== '') h.test = ['CMD-SHELL', f.healthCmd as string]
  if (interval !== undefined) h.interval = interval
  if (timeout !== undefined) h.timeout = timeout
  if (startPeriod !== undefined) h.startPeriod = startPeriod
  if (startInterval !== undefined) h.startInterval = startInterval
  if (retries !== undefined) h.retries = retries
  return h
}

function normalizePath(p: string): string {
  const s = p.replace(/\/+/g, '/').replace(/\/$/, '')
  return s === '' ? '/' : s
}

function parsePort(s: string, what: 'containerPort' | 'hostPort'): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(s)
  const lo = m ? Number(m[1]) : NaN
  const hi = m?.[2] !== undefined ? Number(m[2]) : lo
  if (!m || lo > 65535 || hi > 65535 || hi < lo || (what === 'containerPort' && lo === 0)) throw invalid(`invalid ${what}: ${s}`)
  return [lo, hi]
}

/**
 * `-p [HOST_IP:][HOST_PORT:]CTR_PORT[/PROTO]`, with ranges of equal length (`8000-8001:80-81`)
 * and IPv6 host addresses in brackets; one entry per port.
 */
export function parsePublish(spec: string): PortSpec[] {
  let rest = spec
  let protocol: PortProtocol = 'tcp'
  const slash = rest.lastIndexOf('/')
  if (slash >= 0) {
    const p = rest.slice(slash + 1).toLowerCase()
    if (p !== 'tcp' && p !== 'udp' && p !== 'sctp') throw invalid(`invalid proto: ${rest.slice(slash + 1)}`)
    protocol = p
    rest = rest.slice(0, slash)
  }
  // the last field is the container's port, the one before it the host's, the rest the address
  // (an IPv6 address in brackets or bare)
  const fields = rest.split(':')
  const ctrPart = fields[fields.length - 1] ?? ''
  const hostPart = fields.length >= 2 ? (fields[fields.length - 2] ?? '') : ''
  const hostIp = fields.slice(0, -2).join(':').replace(/^\[+|\]+$/g, '')
  if (hostIp !== '' && isIP(hostIp) === 0) throw invalid(`invalid IP address: ${hostIp}`)
  if (ctrPart === '') throw invalid(`no port specified: ${spec}<empty>`)
  const [clo, chi] = parsePort(ctrPart, 'containerPort')
  const [hlo, hhi] = hostPart === '' ? [0, 0] : parsePort(hostPart, 'hostPort')
  const count = chi - clo + 1
  if (hostPart !== '' && hhi - hlo + 1 !== count) throw invalid(`invalid ranges specified for container and host Ports: ${ctrPart} and ${hostPart}`)
  const out: PortSpec[] = []
  for (let i = 0; i < count; i++) out.push({ containerPort: clo + i, protocol, hostIp: hostIp === '0.0.0.0' ? '' : hostIp, hostPort: hostPart === '' ? 0 : hlo + i })
  return out
}

/** `--add-host NAME:IP` (or `NAME=IP`); `host-gateway` stands for the host's address on the container's network. */
export function parseAddHost(spec: string): ExtraHost {
  const sep = spec.includes('=') ? spec.indexOf('=') : spec.indexOf(':')
  const name = sep < 0 ? '' : spec.slice(0, sep)
  let ip = sep < 0 ? '' : spec.slice(sep + 1)
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1)
  if (name === '' || !/^[A-Za-z0-9_.-]+$/.test(name)) throw invalid(`invalid argument "${spec}" for "--add-host" flag: bad format for add-host: "${spec}"`)
  if (ip !== 'host-gateway' && isIP(ip) === 0) throw invalid(`invalid argument "${spec}" for "--add-host" flag: invalid IP address in add-host: "${ip}"`)
  return { name, ip }
}

/**
 * `-e K=V` as given; `-e K` takes K's value from `env` (the client's environment), and stays a
 * bare `K` (which removes it from the image's) when the client has no such variable, as Docker does.
 */
export function resolveEnv(entries: readonly string[], env: NodeJS.ProcessEnv): string[] {
  return entries.map((e) => {
    if (e.includes('=')) return e
    const v = env[e]
    return v === undefined ? e : `${e}=${v}`
  })
}

/**
 * `K=V` entries (`--label`, `-o`, `--opt`) as a map: a bare `K` is `K=""`; an empty key is refused
 * as `invalid WHAT 'ENTRY'` followed by `detail`.
 */
export function parseKeyValues(entries: readonly string[], what: string, detail = ''): Record<string, string> {
  const out: Record<string, string> = {}
  for (const e of entries) {
    const eq = e.indexOf('=')
    const k = eq < 0 ? e : e.slice(0, eq)
    if (k === '') throw invalid(`invalid ${what} '${e}'${detail}`)
    out[k] = eq < 0 ? '' : e.slice(eq + 1)
  }
  return out
}

/** `-l K=V` / `--label K` (empty value), as a map; later entries win. */
export function parseLabels(entries: readonly string[]): Record<string, string> {
  return parseKeyValues(entries, 'label', ': empty name')
}

/**
 * `--env-file` and `--label-file`: one entry per line; blank lines and lines starting with `#`
 * are skipped, as Docker reads them.
 */
export async function readLineFiles(files: readonly string[]): Promise<string[]> {
  const out: string[] = []
  for (const f of files) {
    let text: string
    try {
      text = await readFile(f, 'utf8')
    } catch (err) {
      throw new CairnError('INVALID_ARGUMENT', `open ${f}: ${(err as { code?: string }).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`, { cause: err })
    }
    for (const raw of text.split(/\r?\n/)) {
      const line = raw.replace(/^\s+/, '')
      if (line === '' || line.startsWith('#')) continue
      if (/\s/.test(line.split('=')[0] ?? '')) throw invalid(`variable '${line.split('=')[0] ?? ''}' contains whitespaces`)
      out.push(line)
    }
  }
  return out
}

/** Docker's error for a flag's bad value: `invalid argument "x" for "--cpus" flag: …`. */
function flagError(value: string, flag: string, message: string): CairnError {
  return invalid(`invalid argument ${JSON.stringify(value)} for ${JSON.stringify(flag)} flag: ${message}`)
}


/**
 * A size as Docker's RAMInBytes reads it: `32m`, `1.5g`, `64MiB`, `512` (bytes), powers of 1024.
 * `flag` is the flag's name for the error (`-m, --memory`).
 */
export function parseBytes(value: string, flag: string): number {
  const n = ramInBytes(value)
  if ('error' in n) throw flagError(value, flag, n.error)
  return n.bytes
}

/** `--memory-swap`: a size, or -1 for unlimited swap. */
export function parseMemorySwap(value: string): number {
  return value.trim() === '-1' ? -1 : parseBytes(value, '--memory-swap')
}

/** `--cpus 1.5` (or a fraction, `3/2`) as Docker's NanoCPUs. */
export function parseCpus(value: string): number {
  const v = value.trim()
  const dec = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(v)
  const frac = /^([+-]?\d+)\/(\d+)$/.exec(v)
  let nano: number
  if (dec && ((dec[2] ?? '') !== '' || (dec[3] ?? '') !== '')) {
    const decimals = dec[3] ?? ''
    if (decimals.replace(/0+$/, '').length > 9) throw flagError(value, '--cpus', 'value is too precise')
    nano = Number(`${dec[1] ?? ''}${dec[2] || '0'}.${decimals || '0'}`) * 1e9
  } else if (frac && Number(frac[2]) !== 0) {
    nano = (Number(frac[1]) * 1e9) / Number(frac[2])
    if (!Number.isInteger(nano)) throw flagError(value, '--cpus', 'value is too precise')
  } else {
    throw flagError(value, '--cpus', `failed to parse ${v} as a rational number`)
  }
  return Math.round(nano)
}

/** Go's strconv.ParseInt for a flag (`--pids-limit`, `--cpu-shares`). */
export function parseIntFlag(value: string, flag: string): number {
  if (!/^[+-]?\d+$/.test(value.trim())) throw flagError(value, flag, `strconv.ParseInt: parsing ${JSON.stringify(value)}: invalid syntax`)
  return Number(value.trim())
}

/** `--ulimit nofile=1024[:2048]` (soft, then hard; the hard limit defaults to the soft one). */
export function parseUlimit(value: string): Ulimit {
  const eq = value.indexOf('=')
  const fail = (m: string): CairnError => flagError(value, '--ulimit', m)
  if (eq < 0) throw fail(`invalid ulimit argument: ${value}`)
  const name = value.slice(0, eq)
  if (ULIMIT_TYPES[name] === undefined) throw fail(`invalid ulimit type: ${name}`)
  const [softText = '', hardText] = value.slice(eq + 1).split(/:(.*)/s)
  const num = (t: string): number => {
    if (!/^[+-]?\d+$/.test(t)) throw fail(`strconv.ParseInt: parsing ${JSON.stringify(t)}: invalid syntax`)
    return Number(t)
  }
  const soft = num(softText)
  const hard = hardText === undefined ? soft : num(hardText)
  if (hard !== -1 && soft > hard) throw fail(`ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`)
  return { name, soft, hard }
}

function validDeviceMode(mode: string): boolean {
  if (mode === '' || mode.length > 3) return false
  return [...mode].every((c, i) => 'rwm'.includes(c) && mode.indexOf(c) === i)
}

/** `--device HOST[:CONTAINER][:PERMISSIONS]` (permissions some of `rwm`, default all three). */
export function parseDeviceFlag(value: string): DeviceMapping {
  const fail = (m: string): CairnError => flagError(value, '--device', m)
  const parts = value.split(':')
  if (parts.length > 3 || parts[0] === '') throw fail(`bad format for path: ${value}`)
  const [host = '', second, third] = parts
  let container = host
  let perms = 'rwm'
  if (parts.length === 2) {
    if (validDeviceMode(second ?? '')) perms = second ?? 'rwm'
    else container = second ?? ''
  } else if (parts.length === 3) {
    container = second ?? ''
    if (!validDeviceMode(third ?? '')) throw fail(`bad mode specified: ${third ?? ''}`)
    perms = third ?? 'rwm'
  }
  if (!container.startsWith('/')) throw fail(`${container} is not an absolute path`)
  return { pathOnHost: host, pathInContainer: posix.normalize(container), cgroupPermissions: perms }
}

const TMPFS_FLAGS = new Set([
  'defaults', 'rw', 'ro', 'exec', 'noexec', 'suid', 'nosuid', 'dev', 'nodev', 'atime', 'noatime', 'diratime', 'nodiratime',
  'relatime', 'norelatime', 'strictatime', 'nostrictatime', 'sync', 'async', 'dirsync', 'mand', 'nomand', 'private', 'rprivate',
  'shared', 'rshared', 'slave', 'rslave', 'unbindable', 'runbindable', 'lazytime', 'nolazytime', 'iversion', 'noiversion',
])
const TMPFS_DATA = new Set(['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks', 'mpol', 'huge', 'tmpcopyup', 'notmpcopyup'])

/** `--tmpfs PATH[:OPTIONS]`: an absolute path and tmpfs options (`rw,size=64m,mode=1777`). */
export function parseTmpfsFlag(value: string): { path: string; options: string } {
  const i = value.indexOf(':')
  const path = i < 0 ? value : value.slice(0, i)
  const options = i < 0 ? '' : value.slice(i + 1)
  if (!path.startsWith('/')) throw invalid(`invalid mount config for type "tmpfs": invalid mount path: '${path}' mount path must be absolute`)
  for (const o of options.split(',').filter(Boolean)) {
    const key = o.includes('=') ? o.slice(0, o.indexOf('=')) : o
    if (o.includes('=') ? !TMPFS_DATA.has(key) : !TMPFS_FLAGS.has(o) && !TMPFS_DATA.has(o)) throw invalid(`Invalid tmpfs option ${JSON.stringify(o)}`)
  }
  return { path: posix.normalize(path).replace(/(.)\/$/, '$1'), options }
}

/** Docker's namespaced sysctls: these exactly, and any under these prefixes. */
const SYSCTLS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'])
const SYSCTL_PREFIXES = ['net.', 'fs.mqueue.']

/** `--sysctl KEY=VALUE`, only those a container's own namespaces hold (as Docker allows). */
export function parseSysctlFlag(value: string): [string, string] {
  const eq = value.indexOf('=')
  const key = eq < 0 ? '' : value.slice(0, eq)
  if (eq < 0 || !(SYSCTLS.has(key) || SYSCTL_PREFIXES.some((p) => key.startsWith(p)))) {
    throw flagError(value, '--sysctl', `sysctl '${value}' is not whitelisted`)
  }
  return [key, value.slice(eq + 1)]
}

/**
 * `--security-opt`s: `seccomp=unconfined|FILE` (the file is read now, as Docker's client reads
 * it), `no-new-privileges[=BOOL]`, `apparmor=PROFILE`; `label=…` (SELinux) is accepted and has
 * no effect, as on a Docker host without SELinux.
 */
export async function parseSecurityOpts(values: readonly string[]): Promise<Pick<SecurityOptions, 'seccompProfile' | 'noNewPrivileges' | 'apparmorProfile'>> {
  const out: Pick<SecurityOptions, 'seccompProfile' | 'noNewPrivileges' | 'apparmorProfile'> = {}
  for (const opt of values) {
    if (opt === 'no-new-privileges') {
      out.noNewPrivileges = true
      continue
    }
    if (opt === 'disable') continue
    const sep = opt.includes('=') ? '=' : opt.includes(':') ? ':' : ''
    if (sep === '') throw invalid(`invalid --security-opt 1: ${JSON.stringify(opt)}`)
    const key = opt.slice(0, opt.indexOf(sep))
    const val = opt.slice(opt.indexOf(sep) + 1)
    switch (key) {
      case 'seccomp':
        if (val === 'unconfined') out.seccompProfile = 'unconfined'
        else {
          let text: string
          try {
            text = await readFile(val, 'utf8')
          } catch (err) {
            const code = (err as { code?: string }).code
            throw invalid(`opening seccomp profile (${val}) failed: open ${val}: ${code === 'ENOENT' ? 'no such file or directory' : code === 'EISDIR' ? 'is a directory' : (err as Error).message}`)
          }
          try {
            out.seccompProfile = JSON.stringify(JSON.parse(text))
          } catch (err) {
            throw invalid(`compacting json for seccomp profile (${val}) failed: ${(err as Error).message}`)
          }
        }
        break
      case 'no-new-privileges': {
        const b = parseGoBool(val)
        if (b === undefined) throw invalid(`invalid --security-opt 2: ${JSON.stringify(opt)}`)
        out.noNewPrivileges = b
        break
      }
      case 'apparmor':
        out.apparmorProfile = val
        break
      case 'label':
        break
      default:
        throw invalid(`invalid --security-opt 2: ${JSON.stringify(opt)}`)
    }
  }
  return out
}

/** Go's strconv.ParseBool. */
function parseGoBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false
  return undefined
}
