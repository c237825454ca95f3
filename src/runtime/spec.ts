/**
 * OCI runtime bundles: the `config.json` of the runtime specification, generated as a pure
 * function of what a container asks for, with Docker's defaults (namespaces, mounts, masked and
 * read-only paths, capabilities, seccomp, device rules, rlimits) and its options (privileged,
 * capabilities added and dropped, seccomp and AppArmor profiles, no-new-privileges, read-only
 * root, tmpfs mounts, devices, ulimits, /dev/shm's size, sysctls, an init process, cgroup limits).
 * What it needs to know of the host (its capabilities, architecture, kernel, devices) is input too.
 */
import { CairnError } from '../errors/index.js'
import { DEFAULT_CAPABILITIES, tweakCapabilities } from './capabilities.js'
import { seccompForSpec, type LinuxSeccomp, type SeccompProfile } from './seccomp.js'

export { DEFAULT_CAPABILITIES }

/** The parts of the OCI runtime spec (v1.0.2) that Cairn writes. */
export interface RuntimeSpec {
  ociVersion: string
  process: RuntimeProcess
  root: { path: string; readonly: boolean }
  hostname: string
  mounts: RuntimeMount[]
  linux: {
    namespaces: { type: NamespaceType; path?: string }[]
    maskedPaths: string[]
    readonlyPaths: string[]
    cgroupsPath?: string
    resources: LinuxResources
    devices: RuntimeDevice[]
    rootfsPropagation?: string
    seccomp?: LinuxSeccomp
    sysctl?: Record<string, string>
  }
  annotations?: Record<string, string>
}

export interface RuntimeProcess {
  terminal: boolean
  user: { uid: number; gid: number; additionalGids?: number[] }
  args: string[]
  env: string[]
  cwd: string
  capabilities: { bounding: string[]; effective: string[]; permitted: string[] }
  /** -1: unlimited. */
  rlimits: { type: string; hard: number; soft: number }[]
  noNewPrivileges: boolean
  apparmorProfile?: string
  oomScoreAdj?: number
}

/** The cgroup limits of the OCI spec (`linux.resources`). */
export interface LinuxResources {
  devices: DeviceRule[]
  memory?: { limit?: number; reservation?: number; swap?: number; disableOOMKiller?: boolean }
  cpu?: { shares?: number; quota?: number; period?: number; cpus?: string }
  pids?: { limit: number }
}

export interface RuntimeMount {
  destination: string
  type: string
  source: string
  options: string[]
}

/** A device node the runtime creates in the container's /dev. */
export interface RuntimeDevice {
  path: string
  type: 'c' | 'b'
  major: number
  minor: number
  fileMode: number
  uid: number
  gid: number
}

export type NamespaceType = 'pid' | 'network' | 'mount' | 'ipc' | 'uts' | 'user' | 'cgroup'

export interface DeviceRule {
  allow: boolean
  type?: 'c' | 'b' | 'a'
  major?: number
  minor?: number
  access: string
}

/** Docker's masked paths: bind-mounted over with /dev/null (files) or an empty read-only tmpfs (dirs). */
export const MASKED_PATHS: readonly string[] = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
]

/** Docker's read-only paths. */
export const READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']

/** Docker's default device cgroup rules: deny all, then the usual character devices. */
const DEFAULT_DEVICE_RULES: readonly DeviceRule[] = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }, // /dev/zero
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, // /dev/null
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' }, // /dev/urandom
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' }, // /dev/random
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' }, // /dev/tty
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' }, // /dev/console
  { allow: false, type: 'c', major: 10, minor: 229, access: 'rwm' }, // /dev/fuse
  { allow: true, type: 'c', major: 136, access: 'rwm' }, // /dev/pts/*
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }, // /dev/ptmx
  { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' }, // /dev/net/tun
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' }, // /dev/full
  { allow: true, type: 'c', access: 'm' }, // mknod of any character device
  { allow: true, type: 'b', access: 'm' }, // mknod of any block device
]

/** The device nodes every container gets (as runc and crun create them by default). */
const DEFAULT_DEVICES: readonly RuntimeDevice[] = [
  { path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/zero', type: 'c', major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/full', type: 'c', major: 1, minor: 7, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/random', type: 'c', major: 1, minor: 8, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/urandom', type: 'c', major: 1, minor: 9, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/tty', type: 'c', major: 5, minor: 0, fileMode: 0o666, uid: 0, gid: 0 },
]

/** The PATH Docker gives a container whose image sets none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** Open files a container may have (Docker's containers inherit containerd's 1048576). */
export const DEFAULT_NOFILE = 1_048_576

export interface BindMount {
  /** Host path (must exist). */
  source: string
  /** Absolute path in the container. */
  destination: string
  readonly: boolean
}

export interface ProcessInput {
  args: string[]
  env: string[]
  cwd: string
  user: { uid: number; gid: number; additionalGids?: number[] }
  terminal: boolean
  /** RLIMIT_NOFILE soft and hard (default DEFAULT_NOFILE), unless `ulimits` names nofile. */
  nofile?: number
  /** The capabilities (default: Docker's default set). */
  capabilities?: readonly string[]
  noNewPrivileges?: boolean
  apparmorProfile?: string
  /** `--ulimit`s: `nofile`, `nproc`, … (Docker's names), soft and hard. */
  ulimits?: readonly Ulimit[]
}

/** A resource limit (`--ulimit nofile=1024:2048`): Docker's name (`nofile`) and its values. */
export interface Ulimit {
  name: string
  soft: number
  hard: number
}

/** A host device given to the container (`--device`), at its path in the container. */
export interface DeviceInput extends RuntimeDevice {
  /** The cgroup permissions: some of `rwm`. */
  access: string
}

/** What a container asks for in confinement. */
export interface SecurityInput {
  /** All the host's capabilities and devices, no seccomp (unless a profile is given), no masked paths. */
  privileged?: boolean
  capAdd?: readonly string[]
  capDrop?: readonly string[]
  /**
   * `default`: Docker's profile (`host.seccompDefault`); `unconfined`: none; or a profile in
   * Docker's format. Privileged containers get none unless one is given.
   */
  seccomp?: 'default' | 'unconfined' | SeccompProfile
  noNewPrivileges?: boolean
  /** An AppArmor profile by name (only where the host has AppArmor: the caller decides). */
  apparmorProfile?: string
}

/** What the spec needs to know of the host (read by the caller, so that generateSpec stays pure). */
export interface HostFacts {
  /** The host's bounding set: what privileged and `--cap-add ALL` grant. */
  capabilities: readonly string[]
  /** libseccomp's name of this architecture (`amd64`). */
  arch: string
  /** The kernel release (`uname -r`). */
  kernel: string
  /** Docker's default seccomp profile. */
  seccompDefault?: SeccompProfile
  /** Secondary ABIs the kernel cannot run (left out of seccomp filters): `SCMP_ARCH_X32`. */
  missingArchitectures?: readonly string[]
  /** The host's device nodes, which a privileged container gets. */
  devices?: readonly RuntimeDevice[]
}

/** Cgroup limits, Docker's HostConfig fields (`create`, `update`). Sizes in bytes. */
export interface ResourcesInput {
  /** `--memory`: bytes; 0 unlimited. */
  memory?: number
  /** `--memory-swap`: memory plus swap in bytes; -1 unlimited swap; default twice the memory. */
  memorySwap?: number
  /** `--memory-reservation`: the soft limit. */
  memoryReservation?: number
  /** `--oom-kill-disable` (cgroup v1 only: the kernel pauses the container at its limit instead). */
  oomKillDisable?: boolean
  /** `--cpus` × 10⁹ (`--cpus 0.5` is 500000000). */
  nanoCpus?: number
  /** `--cpu-shares`: relative weight (default 1024). */
  cpuShares?: number
  /** `--cpuset-cpus`: the CPUs it may run on (`0-1`, `0,2`). */
  cpusetCpus?: string
  /** `--pids-limit`: most processes at once; 0 or -1 (≤ 0) unlimited. */
  pidsLimit?: number
}

export interface SpecInput {
  process: ProcessInput
  /** Absolute path of the container's root filesystem (mounted). */
  rootfs: string
  readonlyRootfs?: boolean
  hostname: string
  /**
   * `private`: a network namespace of its own (only loopback); `host`: the host's network;
   * `{ path }`: a namespace made beforehand (with its interfaces), joined by the runtime.
   */
  network: 'private' | 'host' | { path: string }
  binds?: readonly BindMount[]
  /** tmpfs file systems mounted in the container (their mount(8) options as given). */
  tmpfsMounts?: readonly { destination: string; options: readonly string[] }[]
  /** Host files bind-mounted over /etc/hosts, /etc/hostname and /etc/resolv.conf, as Docker does. */
  etc?: { hosts: string; hostname: string; resolvConf: string }
  /** cgroupfs path, e.g. `/cairn/<id>`. */
  cgroupsPath?: string
  annotations?: Record<string, string>
  /** Confinement; without it, Docker's capabilities and paths but no seccomp filter. */
  security?: SecurityInput
  host?: HostFacts
  resources?: ResourcesInput
  /** `--tmpfs`: path → options (`size=64m,mode=1777`), over Docker's `noexec,nosuid,nodev`. */
  tmpfs?: Readonly<Record<string, string>>
  devices?: readonly DeviceInput[]
  /** Bytes of /dev/shm (default 64 MiB). */
  shmSize?: number
  sysctls?: Readonly<Record<string, string>>
  /** `--init`: this host binary (tini) is mounted at /sbin/docker-init and runs the command as PID 1. */
  init?: { path: string }
}

/** Where `--init`'s binary is mounted in the container, as Docker mounts its docker-init. */
export const INIT_PATH = '/sbin/docker-init'

/** /dev/shm's size unless `--shm-size` says otherwise (Docker's 64 MiB). */
export const DEFAULT_SHM_SIZE = 67_108_864

/** Docker's ulimit names and their rlimits. */
export const ULIMIT_TYPES: Readonly<Record<string, string>> = {
  core: 'RLIMIT_CORE', cpu: 'RLIMIT_CPU', data: 'RLIMIT_DATA', fsize: 'RLIMIT_FSIZE', locks: 'RLIMIT_LOCKS',
  memlock: 'RLIMIT_MEMLOCK', msgqueue: 'RLIMIT_MSGQUEUE', nice: 'RLIMIT_NICE', nofile: 'RLIMIT_NOFILE',
  nproc: 'RLIMIT_NPROC', rss: 'RLIMIT_RSS', rtprio: 'RLIMIT_RTPRIO', rttime: 'RLIMIT_RTTIME',
  sigpending: 'RLIMIT_SIGPENDING', stack: 'RLIMIT_STACK',
}

/** An rlimit value: -1 is unlimited (written as RLIM_INFINITY by specJson). */
function rlimitValue(n: number): number {
  return n < 0 ? -1 : n
}

/**
 * A spec (or a process of one) as the runtime reads it: JSON, with an unlimited rlimit (-1)
 * written as RLIM_INFINITY, 2⁶⁴−1, which a JavaScript number cannot hold exactly.
 */
export function specJson(value: RuntimeSpec | RuntimeProcess, indent?: number): string {
  const mark = '\u0000RLIM_INFINITY\u0000'
  // -1, or RLIM_INFINITY as read back from a spec (a float just above 2⁶⁴−1)
  const text = JSON.stringify(value, (k, v: unknown) => ((k === 'hard' || k === 'soft') && typeof v === 'number' && (v < 0 || v >= 2 ** 64 - 1) ? mark : v), indent)
  return text.replaceAll(JSON.stringify(mark), '18446744073709551615')
}

/** The `process` of a bundle or of an `exec`: same capabilities and limits as the container. */
export function processSpec(p: ProcessInput): RuntimeProcess {
  const user: RuntimeProcess['user'] = { uid: p.user.uid, gid: p.user.gid }
  if (p.user.additionalGids && p.user.additionalGids.length > 0) user.additionalGids = [...p.user.additionalGids]
  const nofile = p.nofile ?? DEFAULT_NOFILE
  const caps = p.capabilities ?? DEFAULT_CAPABILITIES
  const rlimits: RuntimeProcess['rlimits'] = [{ type: 'RLIMIT_NOFILE', hard: nofile, soft: nofile }]
  for (const u of p.ulimits ?? []) {
    const type = ULIMIT_TYPES[u.name]
    if (type === undefined) throw new TypeError(`processSpec: unknown ulimit ${u.name}`)
    const limit = { type, hard: rlimitValue(u.hard), soft: rlimitValue(u.soft) }
    const i = rlimits.findIndex((r) => r.type === type)
    if (i >= 0) rlimits[i] = limit
    else rlimits.push(limit)
  }
  const out: RuntimeProcess = {
    terminal: p.terminal,
    user,
    args: [...p.args],
    env: [...p.env],
    cwd: p.cwd,
    capabilities: { bounding: [...caps], effective: [...caps], permitted: [...caps] },
    rlimits,
    noNewPrivileges: p.noNewPrivileges ?? false,
  }
  if (p.apparmorProfile !== undefined && p.apparmorProfile !== '') out.apparmorProfile = p.apparmorProfile
  return out
}

/** Docker's default mounts (moby `oci/defaults.go`), before the container's own. */
function defaultMounts(shmSize: number): RuntimeMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${shmSize}`] },
  ]
}

function depth(p: string): number {
  return p.split('/').filter(Boolean).length
}

/** Flags of tmpfs options that cancel each other (the later one wins), as Docker merges them. */
const TMPFS_FLAG_PAIRS: readonly (readonly [string, string])[] = [
  ['exec', 'noexec'], ['suid', 'nosuid'], ['dev', 'nodev'], ['rw', 'ro'], ['atime', 'noatime'], ['diratime', 'nodiratime'],
  ['relatime', 'norelatime'], ['strictatime', 'nostrictatime'], ['sync', 'async'], ['dirsync', 'async'],
]

/** Docker's MergeTmpfsOptions: later options replace earlier ones of the same kind. */
export function mergeTmpfsOptions(options: readonly string[]): string[] {
  const out: string[] = []
  for (const o of options) {
    if (o === '') continue
    const key = o.includes('=') ? o.slice(0, o.indexOf('=') + 1) : o
    const opposite = TMPFS_FLAG_PAIRS.flatMap(([a, b]) => (a === o ? [b] : b === o ? [a] : []))
    for (let i = out.length - 1; i >= 0; i--) {
      const e = out[i] as string
      if ((key.endsWith('=') && e.startsWith(key)) || e === o || opposite.includes(e)) out.splice(i, 1)
    }
    out.push(o)
  }
  return out
}

/** Docker's NanoCPUs as CFS quota and period (period 100 ms). */
function cpuQuota(nanoCpus: number): { quota: number; period: number } {
  const period = 100_000
  return { quota: Math.round((nanoCpus * period) / 1e9), period }
}

/** The OCI `linux.resources` of Docker's limits (device rules apart). */
export function linuxResources(r: ResourcesInput): Omit<LinuxResources, 'devices'> {
  const out: Omit<LinuxResources, 'devices'> = {}
  const memory: NonNullable<LinuxResources['memory']> = {}
  if ((r.memory ?? 0) > 0) memory.limit = r.memory as number
  if ((r.memoryReservation ?? 0) > 0) memory.reservation = r.memoryReservation as number
  if (r.memorySwap !== undefined && r.memorySwap !== 0) memory.swap = r.memorySwap
  if (r.oomKillDisable !== undefined) memory.disableOOMKiller = r.oomKillDisable
  if (Object.keys(memory).length > 0) out.memory = memory
  const cpu: NonNullable<LinuxResources['cpu']> = {}
  if ((r.cpuShares ?? 0) > 0) cpu.shares = r.cpuShares as number
  if ((r.nanoCpus ?? 0) > 0) Object.assign(cpu, cpuQuota(r.nanoCpus as number))
  if (r.cpusetCpus !== undefined && r.cpusetCpus !== '') cpu.cpus = r.cpusetCpus
  if (Object.keys(cpu).length > 0) out.cpu = cpu
  if (r.pidsLimit !== undefined) out.pids = { limit: r.pidsLimit > 0 ? r.pidsLimit : -1 }
  return out
}

/** Mounts that stay writable in a read-only container (Docker's list). */
const WRITABLE_WITH_READONLY_ROOT = new Set(['/proc', '/dev/pts', '/dev/shm', '/dev/mqueue', '/dev'])

/**
 * The bundle's `config.json`. Pure: the same input gives the same document, so it can be
 * tested without root and compared with what Docker generates.
 */
export function generateSpec(input: SpecInput): RuntimeSpec {
  if (!input.rootfs.startsWith('/')) throw new TypeError(`generateSpec: rootfs must be absolute, got ${input.rootfs}`)
  const sec = input.security ?? {}
  const privileged = sec.privileged ?? false
  const own: RuntimeMount[] = []
  for (const b of input.binds ?? []) {
    if (!b.destination.startsWith('/')) throw new TypeError(`generateSpec: bind destination must be absolute, got ${b.destination}`)
    own.push({ destination: b.destination, type: 'bind', source: b.source, options: ['rbind', 'rprivate', ...(b.readonly ? ['ro'] : [])] })
  }
  // one list of tmpfs mounts: `--tmpfs` (over Docker's defaults) and `--mount type=tmpfs` (options as given)
  const tmpfs = [
    ...Object.entries(input.tmpfs ?? {}).map(([destination, opts]) => ({
      destination, options: mergeTmpfsOptions(['noexec', 'nosuid', 'nodev', 'rprivate', ...opts.split(',')]),
    })),
    ...(input.tmpfsMounts ?? []),
  ]
  const tmpfsDest = new Set<string>()
  for (const t of tmpfs) {
    if (!t.destination.startsWith('/')) throw new TypeError(`generateSpec: tmpfs destination must be absolute, got ${t.destination}`)
    const dest = t.destination.replace(/\/+$/, '') || '/'
    if (tmpfsDest.has(dest)) throw new CairnError('INVALID_ARGUMENT', `Duplicate mount point: ${dest}`)
    tmpfsDest.add(dest)
    own.push({ destination: t.destination, type: 'tmpfs', source: 'tmpfs', options: [...t.options] })
  }
  const userDest = new Set(own.map((m) => m.destination.replace(/\/+$/, '') || '/'))
  if (input.etc) {
    own.push({ destination: '/etc/resolv.conf', type: 'bind', source: input.etc.resolvConf, options: ['rbind', 'rprivate'] })
    own.push({ destination: '/etc/hostname', type: 'bind', source: input.etc.hostname, options: ['rbind', 'rprivate'] })
    own.push({ destination: '/etc/hosts', type: 'bind', source: input.etc.hosts, options: ['rbind', 'rprivate'] })
  }
  const process = { ...input.process }
  if (input.init) {
    own.push({ destination: INIT_PATH, type: 'bind', source: input.init.path, options: ['bind', 'ro'] })
    process.args = [INIT_PATH, '--', ...process.args]
  }
  // A container's own mount at a default destination replaces the default (as Docker does), and
  // its own /dev everything under /dev; then parents before children, so that a mount is never
  // hidden by one on its parent.
  const ownDest = new Set(own.map((m) => m.destination.replace(/\/+$/, '') || '/'))
  const mounts = [...defaultMounts(input.shmSize !== undefined && input.shmSize > 0 ? input.shmSize : DEFAULT_SHM_SIZE)
    .filter((m) => !ownDest.has(m.destination) && !(ownDest.has('/dev') && m.destination.startsWith('/dev/'))), ...own]
    .map((m, i) => ({ m, i }))
    .sort((a, b) => depth(a.m.destination) - depth(b.m.destination) || a.i - b.i)
    .map((x) => ({ ...x.m, options: [...x.m.options] }))
  if (input.readonlyRootfs) {
    // everything but the kernel's own file systems and the user's mounts is read-only too
    for (const m of mounts) {
      if (WRITABLE_WITH_READONLY_ROOT.has(m.destination) || userDest.has(m.destination)) continue
      if (!m.options.includes('ro')) m.options.push('ro')
    }
  }
  if (privileged) {
    const sys = mounts.find((m) => m.destination === '/sys')
    if (sys) sys.options = sys.options.filter((o) => o !== 'ro')
    for (const m of mounts) if (m.type === 'cgroup') m.options = m.options.filter((o) => o !== 'ro')
  }

  const namespaces: RuntimeSpec['linux']['namespaces'] = [{ type: 'mount' }]
  if (input.network === 'private') namespaces.push({ type: 'network' })
  else if (typeof input.network === 'object') namespaces.push({ type: 'network', path: input.network.path })
  namespaces.push({ type: 'uts' }, { type: 'pid' }, { type: 'ipc' })

  const host = input.host
  const caps = input.security === undefined
    ? [...DEFAULT_CAPABILITIES]
    : tweakCapabilities({ ...(sec.capAdd ? { adds: sec.capAdd } : {}), ...(sec.capDrop ? { drops: sec.capDrop } : {}), privileged, host: host?.capabilities ?? DEFAULT_CAPABILITIES })
  const proc: ProcessInput = { ...process, capabilities: caps }
  if (sec.noNewPrivileges) proc.noNewPrivileges = true
  if (sec.apparmorProfile !== undefined) proc.apparmorProfile = sec.apparmorProfile

  const deviceRules = privileged ? [{ allow: true, access: 'rwm' }] : DEFAULT_DEVICE_RULES.map((d) => ({ ...d }))
  const devices = DEFAULT_DEVICES.map((d) => ({ ...d }))
  const byPath = (list: RuntimeDevice[], d: RuntimeDevice): void => {
    const i = list.findIndex((x) => x.path === d.path)
    if (i >= 0) list[i] = d
    else list.push(d)
  }
  if (privileged) for (const d of host?.devices ?? []) byPath(devices, { ...d })
  for (const d of input.devices ?? []) {
    const { access, ...node } = d
    byPath(devices, { ...node })
    if (!privileged) deviceRules.push({ allow: true, type: node.type, major: node.major, minor: node.minor, access })
  }

  const spec: RuntimeSpec = {
    ociVersion: '1.0.2-dev',
    process: processSpec(proc),
    root: { path: input.rootfs, readonly: input.readonlyRootfs ?? false },
    hostname: input.hostname,
    mounts,
    linux: {
      namespaces,
      maskedPaths: privileged ? [] : [...MASKED_PATHS],
      readonlyPaths: privileged ? [] : [...READONLY_PATHS],
      resources: { devices: deviceRules, ...linuxResources(input.resources ?? {}) },
      devices,
    },
  }
  // seccomp: Docker's default unless unconfined; a privileged container only with a profile of its own
  const wanted = sec.seccomp ?? (input.security === undefined ? 'unconfined' : 'default')
  if (wanted !== 'unconfined' && !(privileged && wanted === 'default')) {
    const profile = wanted === 'default' ? host?.seccompDefault : wanted
    if (profile === undefined || host === undefined) throw new TypeError('generateSpec: the default seccomp profile needs host.seccompDefault, host.arch and host.kernel')
    const filter = seccompForSpec(profile, { capabilities: caps, arch: host.arch, kernel: host.kernel, ...(host.missingArchitectures ? { missingArchitectures: host.missingArchitectures } : {}) })
    if (filter) spec.linux.seccomp = filter
  }
  if (input.sysctls && Object.keys(input.sysctls).length > 0) spec.linux.sysctl = { ...input.sysctls }
  if (input.cgroupsPath !== undefined) spec.linux.cgroupsPath = input.cgroupsPath
  if (input.annotations && Object.keys(input.annotations).length > 0) spec.annotations = { ...input.annotations }
  return spec
}

/**
 * The environment of a container's process, as Docker builds it (`CreateDaemonEnvironment`):
 * PATH and HOSTNAME first (TERM=xterm with a terminal), then the container's own variables
 * replacing or adding to them.
 */
export function processEnv(containerEnv: readonly string[], hostname: string, tty: boolean, extra: readonly string[] = []): string[] {
  const base = [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${hostname}`]
  if (tty) base.push('TERM=xterm')
  return replaceOrAppendEnv(replaceOrAppendEnv(base, containerEnv), extra)
}

/** Docker's `ReplaceOrAppendEnvValues`: `K=V` replaces an existing K; a bare `K` removes it. */
export function replaceOrAppendEnv(defaults: readonly string[], overrides: readonly string[]): string[] {
  const out = [...defaults]
  const index = new Map<string, number>()
  out.forEach((e, i) => index.set(envKey(e), i))
  const removed = new Set<number>()
  for (const e of overrides) {
    const k = envKey(e)
    const i = index.get(k)
    if (!e.includes('=')) {
      // a bare name in the overrides unsets the variable
      if (i !== undefined) removed.add(i)
      continue
    }
    if (i !== undefined) {
      out[i] = e
      removed.delete(i)
    } else {
      index.set(k, out.length)
      out.push(e)
    }
  }
  return out.filter((_e, i) => !removed.has(i))
}

function envKey(e: string): string {
  const eq = e.indexOf('=')
  return eq < 0 ? e : e.slice(0, eq)
}

/** The value of `name` in a `K=V` list (last one wins), or undefined. */
export function envValue(env: readonly string[], name: string): string | undefined {
  let v: string | undefined
  for (const e of env) if (envKey(e) === name) v = e.includes('=') ? e.slice(name.length + 1) : undefined
  return v
}
