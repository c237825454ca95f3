/**
 * Docker's option syntaxes, turned into the engine's typed container config: `-v`, `--mount`,
 * `-p`, `--add-host`, `-e K`. The docker CLI and the Engine API (whose `HostConfig.Binds` uses
 * the `-v` syntax) both need them, so they live here, below both, and not in the engine.
 * Hand-written: each is a few fields split on `:`, `,` and `=`, with Docker's error messages,
 * which no library reproduces.
 */
import { readFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { CairnError } from '../errors/index.js'
import type { BindMountSpec, ExtraHost, MountSpec, PortProtocol, PortSpec } from '../container/config.js'

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
