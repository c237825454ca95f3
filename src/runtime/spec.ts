/**
 * OCI runtime bundles: the `config.json` of the runtime specification, generated as a pure
 * function of what a container asks for, with Docker's defaults (namespaces, mounts, masked and
 * read-only paths, capabilities, device rules, rlimits).
 */

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
    resources: { devices: DeviceRule[] }
    devices: RuntimeDevice[]
    rootfsPropagation?: string
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
  rlimits: { type: string; hard: number; soft: number }[]
  noNewPrivileges: boolean
  oomScoreAdj?: number
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

/** Docker's default capability set (moby `oci/caps/defaults.go`). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
]

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
  /** RLIMIT_NOFILE soft and hard (default DEFAULT_NOFILE). */
  nofile?: number
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
  /** Host files bind-mounted over /etc/hosts, /etc/hostname and /etc/resolv.conf, as Docker does. */
  etc?: { hosts: string; hostname: string; resolvConf: string }
  /** cgroupfs path, e.g. `/cairn/<id>`. */
  cgroupsPath?: string
  annotations?: Record<string, string>
}

/** The `process` of a bundle or of an `exec`: same capabilities and limits as the container. */
export function processSpec(p: ProcessInput): RuntimeProcess {
  const user: RuntimeProcess['user'] = { uid: p.user.uid, gid: p.user.gid }
  if (p.user.additionalGids && p.user.additionalGids.length > 0) user.additionalGids = [...p.user.additionalGids]
  const nofile = p.nofile ?? DEFAULT_NOFILE
  return {
    terminal: p.terminal,
    user,
    args: [...p.args],
    env: [...p.env],
    cwd: p.cwd,
    capabilities: { bounding: [...DEFAULT_CAPABILITIES], effective: [...DEFAULT_CAPABILITIES], permitted: [...DEFAULT_CAPABILITIES] },
    rlimits: [{ type: 'RLIMIT_NOFILE', hard: nofile, soft: nofile }],
    noNewPrivileges: false,
  }
}

/** Docker's default mounts (moby `oci/defaults.go`), before the container's own. */
function defaultMounts(): RuntimeMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=67108864'] },
  ]
}

function depth(p: string): number {
  return p.split('/').filter(Boolean).length
}

/**
 * The bundle's `config.json`. Pure: the same input gives the same document, so it can be
 * tested without root and compared with what Docker generates.
 */
export function generateSpec(input: SpecInput): RuntimeSpec {
  if (!input.rootfs.startsWith('/')) throw new TypeError(`generateSpec: rootfs must be absolute, got ${input.rootfs}`)
  const own: RuntimeMount[] = []
  for (const b of input.binds ?? []) {
    if (!b.destination.startsWith('/')) throw new TypeError(`generateSpec: bind destination must be absolute, got ${b.destination}`)
    own.push({ destination: b.destination, type: 'bind', source: b.source, options: ['rbind', 'rprivate', ...(b.readonly ? ['ro'] : [])] })
  }
  if (input.etc) {
    own.push({ destination: '/etc/resolv.conf', type: 'bind', source: input.etc.resolvConf, options: ['rbind', 'rprivate'] })
    own.push({ destination: '/etc/hostname', type: 'bind', source: input.etc.hostname, options: ['rbind', 'rprivate'] })
    own.push({ destination: '/etc/hosts', type: 'bind', source: input.etc.hosts, options: ['rbind', 'rprivate'] })
  }
  // A container's own mount at a default destination replaces the default (as Docker does);
  // then parents before children, so that a mount is never hidden by one on its parent.
  const ownDest = new Set(own.map((m) => m.destination.replace(/\/+$/, '') || '/'))
  const mounts = [...defaultMounts().filter((m) => !ownDest.has(m.destination)), ...own]
    .map((m, i) => ({ m, i }))
    .sort((a, b) => depth(a.m.destination) - depth(b.m.destination) || a.i - b.i)
    .map((x) => x.m)

  const namespaces: RuntimeSpec['linux']['namespaces'] = [{ type: 'mount' }]
  if (input.network === 'private') namespaces.push({ type: 'network' })
  else if (typeof input.network === 'object') namespaces.push({ type: 'network', path: input.network.path })
  namespaces.push({ type: 'uts' }, { type: 'pid' }, { type: 'ipc' })

  const spec: RuntimeSpec = {
    ociVersion: '1.0.2-dev',
    process: processSpec(input.process),
    root: { path: input.rootfs, readonly: input.readonlyRootfs ?? false },
    hostname: input.hostname,
    mounts,
    linux: {
      namespaces,
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
      resources: { devices: DEFAULT_DEVICE_RULES.map((d) => ({ ...d })) },
      devices: DEFAULT_DEVICES.map((d) => ({ ...d })),
    },
  }
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
