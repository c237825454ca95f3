/**
 * Docker's JSON shapes, to and from Cairn's own types: container and image summaries, and the
 * body of `POST /containers/create` turned into the engine's typed `CreateOptions` (Docker's
 * string syntaxes, `HostConfig.Binds` and `ExtraHosts`, parsed by the same functions as the CLI's
 * flags: api/flags.ts), and the resource limits of a create's HostConfig or an update's body.
 *
 * Unknown fields: a field Docker's API does not define is refused (400), so that a typo is not
 * silently ignored; a field Docker defines that Cairn does not act on yet is accepted when it
 * holds its zero value, and refused (501, naming it) when it asks for something, so that a
 * client never believes it got what it did not.
 */
import { CairnError } from '../errors/index.js'
import type { ContainerSummary } from '../api/containers.js'
import type { ImageSummary } from '../api/images.js'
import type { CreateOptions, MountSpec, PortSpec, ResourceLimits, RestartPolicyOptions } from '../container/config.js'
import { parseAddHost, parseVolumeFlag } from '../api/flags.js'
import { HttpError } from './errors.js'

const secs = (d: Date): number => Math.floor(d.getTime() / 1000)

export function containerSummaryJson(c: ContainerSummary): Record<string, unknown> {
  const ports = c.ports.map((p) => ({ IP: p.hostIp === '' ? '0.0.0.0' : p.hostIp, PrivatePort: p.containerPort, PublicPort: p.hostPort, Type: p.protocol }))
  for (const e of c.state === 'running' ? c.exposedPorts : []) {
    const [port = '', proto = 'tcp'] = e.split('/')
    if (!ports.some((p) => p.PrivatePort === Number(port) && p.Type === proto)) ports.push({ IP: '', PrivatePort: Number(port), PublicPort: 0, Type: proto as PortSpec['protocol'] })
  }
  const out: Record<string, unknown> = {
    Id: c.id,
    Names: [`/${c.name}`],
    Image: c.image,
    ImageID: c.imageId,
    Command: c.command,
    Created: secs(c.created),
    Ports: ports.map((p) => (p.PublicPort === 0 ? { PrivatePort: p.PrivatePort, Type: p.Type } : p)),
    Labels: c.labels,
    State: c.state,
    Status: c.status,
    HostConfig: { NetworkMode: c.networkMode === 'default' ? 'bridge' : c.networkMode },
    NetworkSettings: { Networks: Object.fromEntries(c.networks.map((n) => [n, {}])) },
    Mounts: c.mounts.map((m, i) => ({ Type: 'bind', Source: m, Destination: c.mountDestinations[i] ?? '', Mode: '', RW: true, Propagation: 'rprivate' })),
  }
  if (c.sizeRw !== undefined) out['SizeRw'] = c.sizeRw
  if (c.sizeRootFs !== undefined) out['SizeRootFs'] = c.sizeRootFs
  return out
}

export function imageSummaryJson(i: ImageSummary, labels: Record<string, string> = {}): Record<string, unknown> {
  return {
    Id: i.id,
    ParentId: i.parent ?? '',
    RepoTags: i.repoTags,
    RepoDigests: i.repoDigests,
    Created: secs(i.created),
    Size: i.size,
    SharedSize: -1,
    VirtualSize: i.size,
    Labels: labels,
    Containers: i.containers,
  }
}

// ---------------------------------------------------------------- create

type Json = Record<string, unknown>

/** Config fields (Docker's container.Config). */
const CONFIG_FIELDS = new Set([
  'Hostname', 'Domainname', 'User', 'AttachStdin', 'AttachStdout', 'AttachStderr', 'ExposedPorts', 'Tty', 'OpenStdin', 'StdinOnce', 'Env', 'Cmd',
  'Healthcheck', 'ArgsEscaped', 'Image', 'Volumes', 'WorkingDir', 'Entrypoint', 'NetworkDisabled', 'MacAddress', 'OnBuild', 'Labels', 'StopSignal',
  'StopTimeout', 'Shell',
])

/** HostConfig fields (Docker's container.HostConfig, with Resources inlined). */
const HOST_CONFIG_FIELDS = new Set([
  'Binds', 'ContainerIDFile', 'LogConfig', 'NetworkMode', 'PortBindings', 'RestartPolicy', 'AutoRemove', 'VolumeDriver', 'VolumesFrom', 'ConsoleSize',
  'Annotations', 'CapAdd', 'CapDrop', 'CgroupnsMode', 'Dns', 'DnsOptions', 'DnsSearch', 'ExtraHosts', 'GroupAdd', 'IpcMode', 'Cgroup', 'Links',
  'OomScoreAdj', 'PidMode', 'Privileged', 'PublishAllPorts', 'ReadonlyRootfs', 'SecurityOpt', 'StorageOpt', 'Tmpfs', 'UTSMode', 'UsernsMode',
  'ShmSize', 'Sysctls', 'Runtime', 'Isolation', 'CpuShares', 'Memory', 'NanoCpus', 'CgroupParent', 'BlkioWeight', 'BlkioWeightDevice',
  'BlkioDeviceReadBps', 'BlkioDeviceWriteBps', 'BlkioDeviceReadIOps', 'BlkioDeviceWriteIOps', 'CpuPeriod', 'CpuQuota', 'CpuRealtimePeriod',
  'CpuRealtimeRuntime', 'CpusetCpus', 'CpusetMems', 'Devices', 'DeviceCgroupRules', 'DeviceRequests', 'KernelMemory', 'KernelMemoryTCP',
  'MemoryReservation', 'MemorySwap', 'MemorySwappiness', 'OomKillDisable', 'PidsLimit', 'Ulimits', 'CpuCount', 'CpuPercent',
  'IOMaximumIOps', 'IOMaximumBandwidth', 'Mounts', 'MaskedPaths', 'ReadonlyPaths', 'Init',
])

/** Fields Cairn acts on; the others must hold a zero value. */
const CONFIG_USED = new Set(['Hostname', 'Domainname', 'User', 'AttachStdin', 'AttachStdout', 'AttachStderr', 'Tty', 'OpenStdin', 'StdinOnce', 'Env', 'Cmd', 'Image', 'WorkingDir', 'Entrypoint', 'Labels', 'ExposedPorts', 'ArgsEscaped', 'Volumes', 'StopSignal', 'StopTimeout', 'Healthcheck', 'NetworkDisabled', 'MacAddress', 'OnBuild', 'Shell'])
/** Resource fields Cairn acts on (create and update): Docker's names, with the engine's. */
const LIMIT_FIELDS = {
  Memory: 'memory', MemorySwap: 'memorySwap', MemoryReservation: 'memoryReservation', NanoCpus: 'nanoCpus', CpuShares: 'cpuShares', PidsLimit: 'pidsLimit',
} as const
const HOST_USED = new Set(['Binds', 'NetworkMode', 'PortBindings', 'AutoRemove', 'Dns', 'DnsOptions', 'DnsSearch', 'ExtraHosts', 'PublishAllPorts', 'Runtime', 'Mounts', 'LogConfig', 'RestartPolicy', 'ConsoleSize', 'Init', 'CpusetCpus', 'OomKillDisable', ...Object.keys(LIMIT_FIELDS)])
/** The fields of `POST /containers/{id}/update` (Docker's container.UpdateConfig: Resources and RestartPolicy). */
const UPDATE_FIELDS = new Set([
  'CpuShares', 'Memory', 'NanoCpus', 'CgroupParent', 'BlkioWeight', 'BlkioWeightDevice', 'BlkioDeviceReadBps', 'BlkioDeviceWriteBps', 'BlkioDeviceReadIOps',
  'BlkioDeviceWriteIOps', 'CpuPeriod', 'CpuQuota', 'CpuRealtimePeriod', 'CpuRealtimeRuntime', 'CpusetCpus', 'CpusetMems', 'Devices', 'DeviceCgroupRules',
  'DeviceRequests', 'KernelMemory', 'KernelMemoryTCP', 'MemoryReservation', 'MemorySwap', 'MemorySwappiness', 'OomKillDisable', 'PidsLimit', 'Ulimits',
  'CpuCount', 'CpuPercent', 'IOMaximumIOps', 'IOMaximumBandwidth', 'RestartPolicy',
])
const UPDATE_USED = new Set(['CpusetCpus', 'OomKillDisable', ...Object.keys(LIMIT_FIELDS)])

/** Values clients send for "the daemon's default" (Docker's CLI: MemorySwappiness -1). */
const DEFAULTS: Record<string, unknown[]> = {
  MemorySwappiness: [-1], Isolation: ['default'], CgroupnsMode: ['private'], IpcMode: ['private', 'shareable'], ShmSize: [64 << 20], UsernsMode: ['host'],
}

function isZero(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return true
  if (Array.isArray(v)) return v.length === 0
  if (typeof v === 'object') return Object.values(v as Json).every(isZero)
  return false
}

function checkFields(obj: Json, known: Set<string>, used: Set<string>, where: string): void {
  for (const [k, v] of Object.entries(obj)) {
    if (!known.has(k)) throw new HttpError(400, `json: unknown field ${JSON.stringify(k)} in ${where}`)
    if (!used.has(k) && !isZero(v) && !(DEFAULTS[k]?.includes(v) ?? false)) throw new CairnError('NOT_SUPPORTED', `${where}.${k} is not supported by Cairn yet`)
  }
}

function strings(v: unknown, what: string): string[] | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v === 'string') return [v]
  if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v
  throw new HttpError(400, `${what}: a list of strings expected`)
}

function str(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw new HttpError(400, `${what}: a string expected`)
  return v
}

function obj(v: unknown, what: string): Json | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'object' || Array.isArray(v)) throw new HttpError(400, `${what}: an object expected`)
  return v as Json
}

function portBindings(v: unknown): PortSpec[] {
  const o = obj(v, 'HostConfig.PortBindings') ?? {}
  const out: PortSpec[] = []
  for (const [key, list] of Object.entries(o)) {
    const m = /^(\d+)(?:\/(tcp|udp|sctp))?$/.exec(key)
    if (!m) throw new HttpError(400, `invalid port specification: "${key}"`)
    const containerPort = Number(m[1])
    const protocol = (m[2] ?? 'tcp') as PortSpec['protocol']
    const bindings = list === null ? [] : Array.isArray(list) ? list : undefined
    if (!bindings) throw new HttpError(400, `HostConfig.PortBindings[${key}]: a list expected`)
    if (bindings.length === 0) out.push({ containerPort, protocol, hostIp: '', hostPort: 0 })
    for (const entry of bindings) {
      const b = obj(entry, `HostConfig.PortBindings[${key}][]`) ?? {}
      const hostIp = str(b['HostIp'], 'HostIp') ?? ''
      const hp = str(b['HostPort'], 'HostPort') ?? ''
      if (hp !== '' && !/^\d+$/.test(hp)) throw new HttpError(400, `invalid host port: ${hp}`)
      out.push({ containerPort, protocol, hostIp: hostIp === '0.0.0.0' ? '' : hostIp, hostPort: hp === '' ? 0 : Number(hp) })
    }
  }
  return out
}

function mounts(v: unknown): MountSpec[] {
  if (v === undefined || v === null) return []
  if (!Array.isArray(v)) throw new HttpError(400, 'HostConfig.Mounts: a list expected')
  return v.map((m: Json): MountSpec => {
    const type = str(m['Type'], 'Mount.Type') ?? ''
    const source = str(m['Source'], 'Mount.Source') ?? ''
    const target = str(m['Target'], 'Mount.Target') ?? ''
    const readonly = m['ReadOnly'] === true
    if (target === '') throw new CairnError('INVALID_ARGUMENT', `invalid mount config for type "${type}": field Target must not be empty`)
    if (type === 'bind') {
      if (source === '') throw new CairnError('INVALID_ARGUMENT', 'invalid mount config for type "bind": field Source must not be empty')
      return { type: 'bind', source, target, readonly }
    }
    if (type === 'volume') {
      const vo = obj(m['VolumeOptions'], 'Mount.VolumeOptions')
      const labels = obj(vo?.['Labels'], 'Mount.VolumeOptions.Labels')
      const spec: MountSpec = { type: 'volume', target, readonly, ...(source !== '' ? { source } : {}), ...(vo?.['NoCopy'] === true ? { noCopy: true } : {}) }
      if (labels) {
        for (const l of Object.values(labels)) if (typeof l !== 'string') throw new HttpError(400, 'Mount.VolumeOptions.Labels: string values expected')
        spec.labels = labels as Record<string, string>
      }
      return spec
    }
    if (type === 'tmpfs') {
      if (source !== '') throw new CairnError('INVALID_ARGUMENT', 'invalid mount config for type "tmpfs": field Source must be empty')
      const to = obj(m['TmpfsOptions'], 'Mount.TmpfsOptions')
      const size = to?.['SizeBytes']
      const mode = to?.['Mode']
      return {
        type: 'tmpfs', target, readonly,
        ...(typeof size === 'number' && size > 0 ? { size } : {}), ...(typeof mode === 'number' && mode > 0 ? { mode } : {}),
      }
    }
    throw new CairnError('NOT_SUPPORTED', `mounts of type ${JSON.stringify(type)} are not supported by Cairn (bind, volume, tmpfs)`)
  })
}

const RESTART_NAMES = ['no', 'always', 'unless-stopped', 'on-failure'] as const

/** HostConfig.RestartPolicy (and an update's): undefined when absent or empty. */
function restartPolicyOf(v: unknown, where: string): RestartPolicyOptions | undefined {
  const rp = obj(v, where)
  if (!rp) return undefined
  const name = str(rp['Name'], `${where}.Name`) ?? ''
  if (name === '') return undefined
  const known = RESTART_NAMES.find((n) => n === name)
  if (known === undefined) throw new HttpError(400, `invalid restart policy: unknown policy '${name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'`)
  const count = rp['MaximumRetryCount']
  if (count !== undefined && count !== null && (typeof count !== 'number' || !Number.isInteger(count) || count < 0)) throw new HttpError(400, 'invalid restart policy: maximum retry count must be a non-negative integer')
  if (known !== 'on-failure' && typeof count === 'number' && count > 0) throw new HttpError(400, `invalid restart policy: maximum retry count can only be used with 'on-failure'`)
  return { name: known, ...(typeof count === 'number' && count > 0 ? { maximumRetryCount: count } : {}) }
}

/**
 * The resource limits of a create's HostConfig or an update's body. A zero (or absent) number
 * leaves a limit as it is; in an update PidsLimit null leaves it, 0 or -1 lifts it (Docker's reading).
 */
export function limitsOf(o: Json, where: 'HostConfig' | 'update'): ResourceLimits {
  if (where === 'update') {
    checkFields(o, UPDATE_FIELDS, UPDATE_USED, 'UpdateConfig')
    const rp = obj(o['RestartPolicy'], 'RestartPolicy')
    if (rp && rp['Name'] !== undefined && rp['Name'] !== '' && rp['Name'] !== 'no') throw new CairnError('NOT_SUPPORTED', 'RestartPolicy is not supported by Cairn yet')
  }
  const l: ResourceLimits = {}
  for (const [field, key] of Object.entries(LIMIT_FIELDS) as [keyof typeof LIMIT_FIELDS, (typeof LIMIT_FIELDS)[keyof typeof LIMIT_FIELDS]][]) {
    const v = o[field]
    if (v === undefined || v === null) continue
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new HttpError(400, `${where}.${field}: an integer expected`)
    // at create a PidsLimit of 0 or -1 is the default (none)
    if (key === 'pidsLimit' ? where === 'update' || v > 0 : v !== 0) l[key] = v
  }
  const cpuset = str(o['CpusetCpus'], `${where}.CpusetCpus`)
  if (cpuset) l.cpusetCpus = cpuset
  if (o['OomKillDisable'] === true) l.oomKillDisable = true
  return l
}

/** The body of `POST /containers/create` (and `?name=`) as the engine's options. */
export function createOptionsOf(body: unknown, name: string | null): CreateOptions {
  const b = obj(body, 'body')
  if (!b) throw new HttpError(400, 'config cannot be empty in order to create a container')
  const { HostConfig, NetworkingConfig, Platform: _platform, ...config } = b
  checkFields(config, CONFIG_FIELDS, CONFIG_USED, 'Config')
  const image = str(config['Image'], 'Image')
  if (image === undefined || image === '') throw new HttpError(400, 'No image was specified')
  const o: CreateOptions = { image, network: 'default' }
  if (name !== null && name !== '') o.name = name
  const cmd = strings(config['Cmd'], 'Cmd')
  if (cmd) o.command = cmd
  const entrypoint = strings(config['Entrypoint'], 'Entrypoint')
  if (entrypoint) o.entrypoint = entrypoint
  const env = strings(config['Env'], 'Env')
  if (env) o.env = env
  const workdir = str(config['WorkingDir'], 'WorkingDir')
  if (workdir) o.workdir = workdir
  const user = str(config['User'], 'User')
  if (user) o.user = user
  const hostname = str(config['Hostname'], 'Hostname')
  if (hostname) o.hostname = hostname
  const domainname = str(config['Domainname'], 'Domainname')
  if (domainname) o.domainname = domainname
  const labels = obj(config['Labels'], 'Labels')
  if (labels) {
    for (const v of Object.values(labels)) if (typeof v !== 'string') throw new HttpError(400, 'Labels: string values expected')
    o.labels = labels as Record<string, string>
  }
  if (config['Tty'] === true) o.tty = true
  if (config['OpenStdin'] === true) o.interactive = true
  if (config['StdinOnce'] === true) o.stdinOnce = true
  const hc = obj(HostConfig, 'HostConfig') ?? {}
  checkFields(hc, HOST_CONFIG_FIELDS, HOST_USED, 'HostConfig')
  const restart = restartPolicyOf(hc['RestartPolicy'], 'HostConfig.RestartPolicy')
  if (restart) o.restart = restart
  const lc = obj(hc['LogConfig'], 'LogConfig')
  const logDriver = str(lc?.['Type'], 'LogConfig.Type') ?? ''
  if (logDriver !== '' && logDriver !== 'json-file') throw new CairnError('NOT_SUPPORTED', `log driver ${logDriver} is not supported by Cairn (json-file)`)
  if (hc['Init'] === true) o.init = true
  Object.assign(o, limitsOf(hc, 'HostConfig'))
  // Config.Volumes: anonymous volumes at those paths (unless a bind or volume is mounted there)
  const anonymous: MountSpec[] = Object.keys(obj(config['Volumes'], 'Volumes') ?? {}).map((target) => ({ type: 'volume', target, readonly: false }))
  const given: MountSpec[] = [...(strings(hc['Binds'], 'Binds') ?? []).map(parseVolumeFlag), ...mounts(hc['Mounts'])]
  const ms = [...given, ...anonymous.filter((a) => !given.some((g) => g.target === a.target))]
  if (ms.length > 0) o.mounts = ms
  const ports = portBindings(hc['PortBindings'])
  if (ports.length > 0) o.ports = ports
  if (hc['PublishAllPorts'] === true) o.publishAllPorts = true
  const mode = str(hc['NetworkMode'], 'NetworkMode')
  if (mode !== undefined && mode !== '') o.network = mode
  if (hc['AutoRemove'] === true) o.autoRemove = true
  const dns = strings(hc['Dns'], 'Dns')
  if (dns && dns.length > 0) o.dns = dns
  const dnsSearch = strings(hc['DnsSearch'], 'DnsSearch')
  if (dnsSearch && dnsSearch.length > 0) o.dnsSearch = dnsSearch
  const dnsOptions = strings(hc['DnsOptions'], 'DnsOptions')
  if (dnsOptions && dnsOptions.length > 0) o.dnsOptions = dnsOptions
  const hosts = strings(hc['ExtraHosts'], 'ExtraHosts')
  if (hosts && hosts.length > 0) o.extraHosts = hosts.map(parseAddHost)
  const runtime = str(hc['Runtime'], 'Runtime')
  if (runtime && runtime !== 'runc' && runtime !== 'crun') o.runtime = runtime
  else if (runtime) o.runtime = runtime
  // the container's network: aliases and a fixed address on the network its mode names
  const nc = obj(NetworkingConfig, 'NetworkingConfig')
  const eps = obj(nc?.['EndpointsConfig'], 'EndpointsConfig') ?? {}
  const names = Object.keys(eps)
  if (names.length > 1) throw new CairnError('NOT_SUPPORTED', 'Cairn connects a container to one network at create; connect the others with /networks/{id}/connect')
  const only = names[0]
  if (only !== undefined) {
    const ep = obj(eps[only], `EndpointsConfig.${only}`) ?? {}
    if (o.network === 'default') o.network = only
    const net = o.network ?? 'default'
    const aliases = (strings(ep['Aliases'], 'Aliases') ?? []).filter((a) => a !== '')
    const custom = net !== 'default' && net !== 'bridge' && net !== 'host' && net !== 'none' && !net.startsWith('container:')
    if (aliases.length > 0 && custom) o.networkAliases = aliases
    const ipam = obj(ep['IPAMConfig'], 'IPAMConfig')
    const ip = str(ipam?.['IPv4Address'], 'IPv4Address')
    if (ip) o.ipv4Address = ip
  }
  return o
}
