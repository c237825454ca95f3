/**
 * A container's confinement and limits: Docker's checks of the options at `create` and `update`
 * (with its messages), what is kept in the container's HostConfig, and, when it starts, the
 * parts of the runtime spec's input that come from them and from the host (its capabilities,
 * architecture, kernel, devices, AppArmor, tini).
 */
import { existsSync, lstatSync, readdirSync, statSync, type Stats } from 'node:fs'
import { cpus, release } from 'node:os'
import { CairnError } from '../errors/index.js'
import { hostCapabilities, normalizeCapabilities } from '../runtime/capabilities.js'
import { defaultSeccompProfile, missingKernelArchitectures, nativeArch, parseSeccompProfile } from '../runtime/seccomp.js'
import { appArmorEnabled, DEFAULT_APPARMOR_PROFILE, ensureDefaultAppArmorProfile } from '../runtime/apparmor.js'
import { onlineCpus, swapLimitSupported } from '../runtime/cgroups.js'
import { findRuntimeBinary, RUN_DIR } from '../runtime/runtime.js'
import type { DeviceInput, HostFacts, ResourcesInput, RuntimeDevice, SecurityInput, SpecInput } from '../runtime/spec.js'
import { resolveGroups } from '../runtime/user.js'
import type { CreateOptions, DeviceMapping, ResourceLimits } from './config.js'
import type { ContainerSpec } from './types.js'

/** Docker's smallest memory limit (6 MiB), for the limit and the reservation. */
const MIN_MEMORY = 6_291_456

function invalid(message: string): CairnError {
  return new CairnError('INVALID_ARGUMENT', message)
}

/** `0-1,3` → [0, 1, 3]; undefined when it is not such a list. */
export function parseCpuList(list: string): number[] | undefined {
  const out: number[] = []
  for (const part of list.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim())
    if (!m) return undefined
    const lo = Number(m[1])
    const hi = m[2] === undefined ? lo : Number(m[2])
    if (hi < lo) return undefined
    for (let i = lo; i <= hi; i++) out.push(i)
  }
  return out
}

/**
 * Docker's checks of cgroup limits (verifyPlatformContainerResources). `current` are the limits
 * a container has (for `update`: the new values are merged over them first). Returns the limits
 * to keep: the swap limit defaults to twice the memory (unlimited where swap cannot be limited).
 */
export function checkResources(asked: ResourceLimits, opts: { update?: boolean; current?: ResourceLimits } = {}): ResourceLimits {
  const update = opts.update ?? false
  const r: ResourceLimits = { ...(opts.current ?? {}) }
  for (const [k, v] of Object.entries(asked) as [keyof ResourceLimits, unknown][]) {
    if (v === undefined) continue
    // in an update, 0 means "unchanged" (Docker's API), except where 0 is a real value
    if (update && v === 0 && k !== 'pidsLimit') continue
    ;(r as Record<string, unknown>)[k] = v
  }
  const memory = r.memory ?? 0
  let swap = r.memorySwap ?? 0
  const reservation = r.memoryReservation ?? 0
  if (memory !== 0 && memory < MIN_MEMORY) throw invalid('Minimum memory limit allowed is 6MB')
  if (update && (asked.memory ?? 0) > 0 && (asked.memorySwap ?? 0) === 0 && (opts.current?.memorySwap ?? 0) > 0 && memory > (opts.current?.memorySwap ?? 0)) {
    throw invalid('Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time')
  }
  if (memory > 0 && swap > 0 && swap < memory) throw invalid('Minimum memoryswap limit should be larger than memory limit, see usage')
  if (memory === 0 && swap > 0 && !update) throw invalid('You should always set the Memory limit when using Memoryswap limit, see usage')
  if (reservation > 0 && reservation < MIN_MEMORY) throw invalid('Minimum memory reservation allowed is 6MB')
  if (memory > 0 && reservation > 0 && memory < reservation) throw invalid('Minimum memory limit can not be less than memory reservation limit, see usage')
  if (memory > 0 && swap === 0 && !update) swap = swapLimitSupported() ? memory * 2 : -1
  if (swap !== 0) r.memorySwap = swap
  const n = cpus().length
  if (r.nanoCpus !== undefined && r.nanoCpus !== 0 && (r.nanoCpus < 0 || r.nanoCpus > n * 1e9)) {
    throw invalid(`Range of CPUs is from 0.01 to ${n}.00, as there are only ${n} CPUs available`)
  }
  if (r.cpuShares !== undefined && r.cpuShares < 0) throw invalid(`invalid CPU shares: ${r.cpuShares}`)
  if (r.cpusetCpus !== undefined && r.cpusetCpus !== '') {
    const wanted = parseCpuList(r.cpusetCpus)
    if (wanted === undefined) throw invalid(`Invalid value ${r.cpusetCpus} for cpuset cpus: invalid format: ${r.cpusetCpus}`)
    const online = onlineCpus()
    const have = parseCpuList(online) ?? []
    if (!wanted.every((c) => have.includes(c))) throw invalid(`Requested CPUs are not available - requested ${r.cpusetCpus}, available: ${online}`)
  }
  return r
}

/** The character or block device at a host path (a folder: every device below it), as the container gets it. */
function devicesFromPath(m: DeviceMapping): DeviceInput[] {
  const fail = (why: string): CairnError => invalid(`error gathering device information while adding custom device ${JSON.stringify(m.pathOnHost)}: ${why}`)
  let st: Stats
  try {
    st = statSync(m.pathOnHost)
  } catch (err) {
    throw fail((err as { code?: string }).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message)
  }
  const node = deviceNode(m.pathOnHost, st)
  if (node) return [{ ...node, path: m.pathInContainer, access: m.cgroupPermissions }]
  if (!st.isDirectory()) throw fail('not a device node')
  const out: DeviceInput[] = []
  for (const d of walkDevices(m.pathOnHost)) {
    out.push({ ...d, path: `${m.pathInContainer}${d.path.slice(m.pathOnHost.replace(/\/+$/, '').length)}`, access: m.cgroupPermissions })
  }
  return out
}

function deviceNode(path: string, st: Stats): RuntimeDevice | undefined {
  const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined
  if (type === undefined) return undefined
  // Linux's dev_t: the major in bits 8-19 and 44-63, the minor in bits 0-7 and 20-43
  const lo = st.rdev >>> 0
  const hi = Math.floor(st.rdev / 2 ** 32)
  const major = ((lo >>> 8) & 0xfff) | ((hi & 0xfffff000) >>> 0)
  const minor = (lo & 0xff) | ((lo >>> 12) & 0xfff00) | ((hi & 0xfff) << 20)
  return { path, type, major, minor, fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid }
}

/** Every device node below a folder (not following links; skipping what runtimes mount themselves). */
function walkDevices(dir: string): RuntimeDevice[] {
  const out: RuntimeDevice[] = []
  const skip = new Set(['/dev/pts', '/dev/shm', '/dev/mqueue', '/dev/.lxc', '/dev/.udev', '/dev/fd'])
  const walk = (d: string): void => {
    let names: string[]
    try {
      names = readdirSync(d)
    } catch {
      return
    }
    for (const n of names) {
      const p = `${d === '/' ? '' : d}/${n}`
      if (skip.has(p)) continue
      let st: Stats
      try {
        st = lstatSync(p)
      } catch {
        continue
      }
      if (st.isDirectory()) walk(p)
      else {
        const node = deviceNode(p, st)
        // /dev/console is the container's own terminal
        if (node && p !== '/dev/console') out.push(node)
      }
    }
  }
  walk(dir.replace(/\/+$/, '') || '/')
  return out
}

/** The host's device nodes (what a privileged container gets). */
function hostDevices(): RuntimeDevice[] {
  return walkDevices('/dev')
}

/** Docker's SecurityOpt entries of what was asked, as `inspect` shows them. */
export function securityOptStrings(o: Pick<CreateOptions, 'seccompProfile' | 'noNewPrivileges' | 'apparmorProfile'>): string[] {
  const out: string[] = []
  if (o.seccompProfile !== undefined && o.seccompProfile !== '') out.push(`seccomp=${o.seccompProfile}`)
  if (o.apparmorProfile !== undefined && o.apparmorProfile !== '') out.push(`apparmor=${o.apparmorProfile}`)
  if (o.noNewPrivileges) out.push('no-new-privileges')
  return out
}

/** The options of a container's SecurityOpt entries. */
export function securityOptionsOf(opts: readonly string[]): { seccompProfile?: string; noNewPrivileges: boolean; apparmorProfile?: string } {
  const out: { seccompProfile?: string; noNewPrivileges: boolean; apparmorProfile?: string } = { noNewPrivileges: false }
  for (const o of opts) {
    if (o === 'no-new-privileges' || o === 'no-new-privileges=true') out.noNewPrivileges = true
    else if (o.startsWith('seccomp=')) out.seccompProfile = o.slice('seccomp='.length)
    else if (o.startsWith('apparmor=')) out.apparmorProfile = o.slice('apparmor='.length)
  }
  return out
}

/**
 * Docker's checks of the confinement options at create: capabilities the host has, a seccomp
 * profile that reads, devices that exist, namespaced sysctls that the network mode allows.
 */
export function checkConfinement(opts: CreateOptions, networkMode: string): void {
  const host = hostCapabilities()
  normalizeCapabilities(opts.capAdd ?? [], host)
  normalizeCapabilities(opts.capDrop ?? [], host)
  if (opts.seccompProfile !== undefined && opts.seccompProfile !== 'unconfined' && opts.seccompProfile !== '') parseSeccompProfile(opts.seccompProfile)
  for (const d of opts.devices ?? []) devicesFromPath(d)
  for (const dest of Object.keys(opts.tmpfs ?? {})) {
    if (!dest.startsWith('/')) throw invalid(`invalid mount config for type "tmpfs": invalid mount path: '${dest}' mount path must be absolute`)
  }
  if (opts.shmSize !== undefined && opts.shmSize < 0) throw invalid('SHM size can not be less than 0')
  for (const key of Object.keys(opts.sysctls ?? {})) {
    if (key.startsWith('net.') && networkMode === 'host') throw invalid(`sysctl ${JSON.stringify(key)} not allowed in host network namespace`)
  }
  if (opts.init) initBinary()
}

/** The static tini that `--init` mounts into containers (Debian's tini package). */
function initBinary(): string {
  for (const c of ['/usr/bin/tini-static', '/usr/bin/docker-init', '/usr/local/bin/tini-static']) if (existsSync(c)) return c
  const tini = findRuntimeBinary('tini-static') ?? findRuntimeBinary('docker-init')
  if (tini !== undefined) return tini
  throw new CairnError('NOT_SUPPORTED', '--init needs a static tini: apt-get install tini')
}

let facts: HostFacts | undefined

/** What the spec needs of the host (read once per process; its devices only when asked). */
async function hostFacts(withDevices: boolean): Promise<HostFacts> {
  facts ??= {
    capabilities: hostCapabilities(), arch: nativeArch(), kernel: release(), seccompDefault: defaultSeccompProfile(),
    missingArchitectures: await missingKernelArchitectures(`${RUN_DIR}/kernel-abis.json`),
  }
  return withDevices ? { ...facts, devices: hostDevices() } : facts
}

/** Whether a network mode gives the container a network namespace of its own (Docker's IsPrivate). */
function ownNetwork(mode: string): boolean {
  return mode !== 'host' && !mode.startsWith('container:')
}

/** Docker's sysctls for a container with its own network: ping without CAP_NET_RAW, any port without CAP_NET_BIND_SERVICE. */
function defaultSysctls(mode: string): Record<string, string> {
  if (!ownNetwork(mode)) return {}
  const out: Record<string, string> = {}
  if (existsSync('/proc/sys/net/ipv4/ping_group_range')) out['net.ipv4.ping_group_range'] = '0 2147483647'
  if (existsSync('/proc/sys/net/ipv4/ip_unprivileged_port_start')) out['net.ipv4.ip_unprivileged_port_start'] = '0'
  return out
}

/**
 * The spec input's confinement and limits for a starting container (in its monitor): its
 * options, Docker's defaults, and the host's facts. `group` is the container's /etc/group.
 */
export async function confinementInput(spec: ContainerSpec, group: string | undefined): Promise<Pick<SpecInput, 'security' | 'host' | 'resources' | 'tmpfs' | 'devices' | 'shmSize' | 'sysctls' | 'init' | 'readonlyRootfs'> & { additionalGids: number[] }> {
  const hc = spec.hostConfig
  const privileged = hc.privileged ?? false
  const sec = securityOptionsOf(hc.securityOpt ?? [])
  const security: SecurityInput = { privileged }
  if (hc.capAdd && hc.capAdd.length > 0) security.capAdd = hc.capAdd
  if (hc.capDrop && hc.capDrop.length > 0) security.capDrop = hc.capDrop
  if (sec.seccompProfile === 'unconfined') security.seccomp = 'unconfined'
  else if (sec.seccompProfile !== undefined && sec.seccompProfile !== '') security.seccomp = parseSeccompProfile(sec.seccompProfile)
  else security.seccomp = 'default'
  if (sec.noNewPrivileges) security.noNewPrivileges = true
  const apparmor = appArmorProfileFor(hc.privileged ?? false, sec.apparmorProfile)
  if (apparmor !== undefined) {
    if (apparmor === DEFAULT_APPARMOR_PROFILE) await ensureDefaultAppArmorProfile()
    security.apparmorProfile = apparmor
  }
  const resources: ResourcesInput = { ...(hc.resources ?? {}) }
  const out: Awaited<ReturnType<typeof confinementInput>> = {
    security,
    host: await hostFacts(privileged),
    resources,
    additionalGids: resolveGroups(hc.groupAdd ?? [], group),
  }
  if (hc.readonlyRootfs) out.readonlyRootfs = true
  if (hc.tmpfs && Object.keys(hc.tmpfs).length > 0) out.tmpfs = { ...hc.tmpfs }
  const devices = (hc.devices ?? []).flatMap(devicesFromPath)
  if (devices.length > 0) out.devices = devices
  if (hc.shmSize !== undefined && hc.shmSize > 0) out.shmSize = hc.shmSize
  const sysctls = { ...defaultSysctls(hc.networkMode), ...(hc.sysctls ?? {}) }
  if (Object.keys(sysctls).length > 0) out.sysctls = sysctls
  if (hc.init) out.init = { path: initBinary() }
  return out
}

/** The AppArmor profile a container runs under (undefined where the host has no AppArmor). */
export function appArmorProfileFor(privileged: boolean, asked: string | undefined): string | undefined {
  if (!appArmorEnabled()) return undefined
  if (asked !== undefined && asked !== '') return asked
  return privileged ? 'unconfined' : DEFAULT_APPARMOR_PROFILE
}

/** The cgroup limits among a container's options. */
export function resourcesOf(o: ResourceLimits): ResourceLimits {
  const out: ResourceLimits = {}
  const keys = ['memory', 'memorySwap', 'memoryReservation', 'oomKillDisable', 'nanoCpus', 'cpuShares', 'cpusetCpus', 'pidsLimit'] as const
  for (const k of keys) if (o[k] !== undefined) (out as Record<string, unknown>)[k] = o[k]
  return out
}
