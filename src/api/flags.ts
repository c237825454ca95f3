/**
 * Docker's option syntaxes, turned into the engine's typed container config: `-v`, `--mount`,
 * `-p`, `--add-host`, `-e K`, sizes (`--memory 32m`), `--cpus`, `--ulimit`, `--device`,
 * `--tmpfs`, `--sysctl`, `--security-opt`. The docker CLI and the Engine API (whose
 * `HostConfig.Binds` uses the `-v` syntax) both need them, so they live here, below both, and
 * not in the engine. Hand-written: each is a few fields split on `:`, `,` and `=`, with Docker's
 * error messages, which no library reproduces.
 */
import { readFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { posix } from 'node:path'
import { CairnError } from '../errors/index.js'
import type { BindMountSpec, DeviceMapping, ExtraHost, MountSpec, PortProtocol, PortSpec, SecurityOptions, Ulimit } from '../container/config.js'
import { ULIMIT_TYPES } from '../runtime/spec.js'

function invalid(message: string): CairnError {
  return new CairnError('INVALID_ARGUMENT', message)
}

const BIND_MODES = new Set(['ro', 'rw', 'z', 'Z', 'shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate', 'nocopy'])

/**
 * `-v HOST:CTR[:OPTS]`: a bind mount whose missing host folder is created, as Docker's `-v` does.
 * Named and anonymous volumes (`NAME:CTR`, `CTR`) are refused until Cairn has volumes.
 */
export function parseVolumeFlag(spec: string): MountSpec {
  const parts = spec.split(':')
  if (parts.length < 2 || parts.length > 3 || parts.some((p, i) => p === '' && i < 2)) {
    if (parts.length === 1 && spec.startsWith('/')) throw new CairnError('NOT_SUPPORTED', `invalid volume specification: '${spec}': anonymous volumes are not supported yet, give HOST:CONTAINER`)
    throw invalid(`invalid volume specification: '${spec}'`)
  }
  const [source = '', target = '', mode = ''] = parts
  if (!source.startsWith('/')) {
    throw new CairnError('NOT_SUPPORTED', `invalid volume specification: '${spec}': named volumes are not supported yet, give an absolute host path`)
  }
  if (!target.startsWith('/')) throw invalid(`invalid volume specification: '${spec}': invalid mount config: the container path must be absolute`)
  if (target.replace(/\/+$/, '') === '') throw invalid(`invalid volume specification: '${spec}': invalid mount config for type "bind": invalid specification: destination can't be '/'`)
  const modes = mode === '' ? [] : mode.split(',')
  for (const m of modes) if (!BIND_MODES.has(m)) throw invalid(`invalid mode: ${m}`)
  if (modes.includes('ro') && modes.includes('rw')) throw invalid(`invalid mode: ${mode}`)
  return { type: 'bind', source: normalizePath(source), target: normalizePath(target), readonly: modes.includes('ro'), createSource: true }
}

/** `--mount type=bind,source=/x,target=/y[,readonly]` (the missing source is an error, as Docker's). */
export function parseMountFlag(spec: string): MountSpec {
  const fields = new Map<string, string>()
  for (const f of spec.split(',')) {
    if (f === '') continue
    const eq = f.indexOf('=')
    const key = (eq < 0 ? f : f.slice(0, eq)).trim().toLowerCase()
    const value = eq < 0 ? '' : f.slice(eq + 1)
    if (eq < 0 && key !== 'readonly' && key !== 'ro') throw invalid(`invalid argument "${spec}" for "--mount" flag: invalid field '${f}' must be a key=value pair`)
    fields.set(key, value)
  }
  const type = fields.get('type') ?? 'volume'
  if (type !== 'bind') throw new CairnError('NOT_SUPPORTED', `invalid argument "${spec}" for "--mount" flag: type ${JSON.stringify(type)} is not supported yet (bind)`)
  const source = fields.get('source') ?? fields.get('src')
  const target = fields.get('target') ?? fields.get('destination') ?? fields.get('dst')
  if (target === undefined || target === '') throw invalid('invalid mount config for type "bind": field Target must not be empty')
  if (source === undefined || source === '') throw invalid('invalid mount config for type "bind": field Source must not be empty')
  if (!source.startsWith('/')) throw invalid(`invalid mount config for type "bind": invalid mount path: '${source}' mount path must be absolute`)
  if (!target.startsWith('/')) throw invalid(`invalid mount config for type "bind": invalid mount path: '${target}' mount path must be absolute`)
  const ro = fields.get('readonly') ?? fields.get('ro')
  const readonly = ro !== undefined && ro !== 'false' && ro !== '0'
  const known = new Set(['type', 'source', 'src', 'target', 'destination', 'dst', 'readonly', 'ro', 'bind-propagation', 'consistency'])
  for (const k of fields.keys()) if (!known.has(k)) throw invalid(`invalid argument "${spec}" for "--mount" flag: unexpected key '${k}' in '${k}=${fields.get(k) ?? ''}'`)
  const m: BindMountSpec = { type: 'bind', source: normalizePath(source), target: normalizePath(target), readonly }
  return m
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
  let hostIp = ''
  const v6 = /^\[([^\]]*)\]:(.*)$/.exec(rest)
  let fields: string[]
  if (v6) {
    hostIp = v6[1] ?? ''
    fields = [hostIp, ...(v6[2] ?? '').split(':')]
  } else {
    fields = rest.split(':')
  }
  let hostPart = ''
  let ctrPart: string
  if (fields.length === 1) ctrPart = fields[0] ?? ''
  else if (fields.length === 2) [hostPart = '', ctrPart = ''] = fields
  else if (fields.length === 3) [hostIp = '', hostPart = '', ctrPart = ''] = fields
  else throw invalid(`invalid port format: ${spec}`)
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

/** `-l K=V` / `--label K` (empty value), as a map; later entries win. */
export function parseLabels(entries: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const e of entries) {
    const eq = e.indexOf('=')
    const k = eq < 0 ? e : e.slice(0, eq)
    if (k === '') throw invalid(`invalid label '${e}': empty name`)
    out[k] = eq < 0 ? '' : e.slice(eq + 1)
  }
  return out
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

const SIZE_UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 }

/**
 * A size as Docker's RAMInBytes reads it: `32m`, `1.5g`, `64MiB`, `512` (bytes), powers of 1024.
 * `flag` is the flag's name for the error (`-m, --memory`).
 */
export function parseBytes(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(value.trim())
  if (!m || (m[1] ?? '').split('.').length > 2) throw flagError(value, flag, `invalid size: '${value}'`)
  return Math.trunc(Number(m[1]) * (SIZE_UNITS[(m[2] ?? '').toLowerCase()] ?? 1))
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
