/**
 * `system df`, `info` and `version`: what the store holds and what this machine offers, in the
 * shapes of Docker's Engine API (`/system/df`, `/info`, `/version`), so that templates written
 * for Docker (`{{.Driver}}`, `{{.Server.Version}}`) read the same keys.
 */
import { execFile } from 'node:child_process'
import { existsSync, readFileSync, statfsSync } from 'node:fs'
import { arch, availableParallelism, cpus, hostname, machine, release, totalmem } from 'node:os'
import { promisify } from 'node:util'
import { asImageId, type ChainId, type ImageId } from '../oci/digest.js'
import { familiarString, parseReference } from '../oci/reference.js'
import type { ImageStore } from '../image/store.js'
import { loadRemoteConfig } from '../remote/config.js'
import { findRuntimeBinary, probeRuntime, RuntimeNames } from '../runtime/runtime.js'
import { containerEngine, listContainers, type ContainerSummary } from './containers.js'

const run = promisify(execFile)

/** Cairn's version (the package's, as `cairn -v` prints it). */
function cairnVersion(): string {
  return process.env['npm_package_version'] ?? '0.1.0'
}

/** The Engine API version whose shapes Cairn's output follows. */
const API_VERSION = '1.41'

// ---------------------------------------------------------------------------------------------
// system df

export interface ImageUsage {
  id: ImageId
  repoTags: string[]
  created: Date
  /** Unpacked size of all its layers. */
  size: number
  /** Bytes of its layers that other images use too. */
  sharedSize: number
  /** Containers using it. */
  containers: number
}

export interface VolumeUsage {
  name: string
  /** Containers using it. */
  links: number
  size: number
}

export interface BuildCacheUsage {
  id: string
  type: string
  size: number
  created: Date
  lastUsed: Date
  usageCount: number
  inUse: boolean
  shared: boolean
}

export interface SystemDiskUsage {
  /** Unpacked bytes of every layer in the store, each counted once (Docker's LayersSize). */
  layersSize: number
  images: ImageUsage[]
  /** Containers with their writable layer's size (`sizeRw`). */
  containers: ContainerSummary[]
  volumes: VolumeUsage[]
  buildCache: BuildCacheUsage[]
  /** Bytes of the build cache (Docker's BuilderSize). */
  buildCacheSize: number
}

/** Volumes with how many containers use each and the bytes of their data (`system df`). */
export async function volumesDiskUsage(store: ImageStore): Promise<VolumeUsage[]> {
  const vs = containerEngine(store).volumes
  const links = vs.userCounts()
  const out: VolumeUsage[] = []
  for (const v of vs.list()) out.push({ name: v.name, links: links.get(v.name) ?? 0, size: await vs.size(v.name) })
  return out
}

/**
 * The build cache (`cairn build`'s steps, the `build_cache` table): a record per cached step, its
 * size that of the layer the step added, `shared` when an image that is kept (tagged, or used by
 * a container) stands on that layer. The total counts each layer once.
 */
export async function buildCacheDiskUsage(store: ImageStore): Promise<{ records: BuildCacheUsage[]; size: number }> {
  const rows = store.db.prepare('SELECT key, image_id, parent, created, last_used FROM build_cache ORDER BY created').all() as
    { key: string; image_id: string; parent: string | null; created: number; last_used: number }[]
  if (rows.length === 0) return { records: [], size: 0 }
  const sizes = new Map(store.layers().map((l) => [l.chainId, l.size]))
  const kept = new Set<ChainId>()
  for (const img of store.list()) {
    if (img.tags.length === 0 && img.repoDigests.length === 0 && store.containerUsers(img.id).length === 0) continue
    for (const c of store.imageChains(img.id)) kept.add(c)
  }
  const counted = new Set<ChainId>()
  let total = 0
  const records = rows.map((r): BuildCacheUsage => {
    const top = store.imageChains(asImageId(r.image_id)).at(-1)
    const below = r.parent !== null ? store.imageChains(asImageId(r.parent)).at(-1) : undefined
    const size = top !== undefined && top !== below ? sizes.get(top) ?? 0 : 0
    if (top !== undefined && top !== below && !counted.has(top)) {
      counted.add(top)
      total += size
    }
    return {
      id: r.key.slice(0, 25), type: 'regular', size, created: new Date(r.created), lastUsed: new Date(r.last_used),
      usageCount: 1, inUse: false, shared: top !== undefined && kept.has(top),
    }
  })
  return { records, size: total }
}

/** `docker system df`: images with their shared and unique bytes, containers, volumes, build cache. */
export async function systemDiskUsage(store: ImageStore): Promise<SystemDiskUsage> {
  const layers = store.layers()
  const byChain = new Map(layers.map((l) => [l.chainId, l]))
  const images: ImageUsage[] = []
  for (const img of store.list()) {
    let shared = 0
    for (const c of new Set(store.imageChains(img.id))) {
      const l = byChain.get(c)
      if (l && l.images > 1) shared += l.size
    }
    images.push({
      id: img.id,
      repoTags: img.tags.map((t) => familiarString(parseReference(t))),
      created: img.created,
      size: img.size,
      sharedSize: shared,
      containers: store.containerUsers(img.id).length,
    })
  }
  const containers = await listContainers(store, { all: true, size: true })
  const cache = await buildCacheDiskUsage(store)
  return {
    layersSize: layers.reduce((n, l) => n + l.size, 0),
    images,
    containers,
    volumes: await volumesDiskUsage(store),
    buildCache: cache.records,
    buildCacheSize: cache.size,
  }
}

// ---------------------------------------------------------------------------------------------
// version

export interface VersionComponent {
  Name: string
  Version: string
  Details: Record<string, string>
}

/** Docker's `/version` answer (the Server part) and the client's part, with Cairn's values. */
export interface VersionInfo {
  Client: {
    Version: string
    ApiVersion: string
    DefaultAPIVersion: string
    GitCommit: string
    /** The runtime the command runs on: Node.js (Docker's key is its Go version). */
    GoVersion: string
    Os: string
    Arch: string
    BuildTime: string
    Context: string
  }
  Server: {
    Platform: { Name: string }
    Components: VersionComponent[]
    Version: string
    ApiVersion: string
    MinAPIVersion: string
    GitCommit: string
    GoVersion: string
    Os: string
    Arch: string
    KernelVersion: string
    BuildTime: string
  }
}

/** Go's GOARCH names for Node's. */
function goArch(a: string = arch()): string {
  return ({ x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[a] ?? a
}

/** `runc --version` / `crun --version`: its version and commit, or undefined. */
async function runtimeVersion(bin: string): Promise<{ version: string; commit: string } | undefined> {
  try {
    const { stdout } = await run(bin, ['--version'], { timeout: 5000 })
    const version = /version\s+(\S+)/.exec(stdout)?.[1] ?? ''
    const commit = /commit:\s*(\S+)/.exec(stdout)?.[1] ?? ''
    return { version, commit }
  } catch {
    return undefined
  }
}

export async function versionInfo(): Promise<VersionInfo> {
  const version = cairnVersion()
  const node = process.version
  const components: VersionComponent[] = [{
    Name: 'Engine',
    Version: version,
    Details: { ApiVersion: API_VERSION, Arch: goArch(), BuildTime: '', Experimental: 'false', GitCommit: '', GoVersion: node, KernelVersion: release(), MinAPIVersion: API_VERSION, Os: 'linux' },
  }]
  for (const name of RuntimeNames) {
    const bin = findRuntimeBinary(name)
    const v = bin ? await runtimeVersion(bin) : undefined
    if (v) components.push({ Name: name, Version: v.version, Details: { GitCommit: v.commit } })
  }
  return {
    Client: { Version: version, ApiVersion: API_VERSION, DefaultAPIVersion: API_VERSION, GitCommit: '', GoVersion: node, Os: process.platform, Arch: goArch(), BuildTime: '', Context: 'default' },
    Server: {
      Platform: { Name: 'Cairn' }, Components: components, Version: version, ApiVersion: API_VERSION, MinAPIVersion: API_VERSION,
      GitCommit: '', GoVersion: node, Os: process.platform, Arch: goArch(), KernelVersion: release(), BuildTime: '',
    },
  }
}

// ---------------------------------------------------------------------------------------------
// info

/** Docker's `/info` answer, the fields Cairn can fill, under Docker's names. */
type IndexInfo = { Name: string; Mirrors: string[]; Secure: boolean; Official: boolean }

export interface SystemInfo {
  ID: string
  Containers: number
  ContainersRunning: number
  ContainersPaused: number
  ContainersStopped: number
  Images: number
  Driver: string
  DriverStatus: [string, string][]
  LoggingDriver: string
  CgroupDriver: string
  CgroupVersion: string
  KernelVersion: string
  OperatingSystem: string
  OSVersion: string
  OSType: string
  Architecture: string
  IndexServerAddress: string
  RegistryConfig: { InsecureRegistryCIDRs: string[]; IndexConfigs: Record<string, IndexInfo>; Mirrors: string[] }
  NCPU: number
  MemTotal: number
  DockerRootDir: string
  HttpProxy: string
  HttpsProxy: string
  NoProxy: string
  Name: string
  Labels: string[]
  ExperimentalBuild: boolean
  ServerVersion: string
  Runtimes: Record<string, { path: string }>
  DefaultRuntime: string
  LiveRestoreEnabled: boolean
  InitBinary: string
  SecurityOptions: string[]
  Warnings: string[] | null
}

/** cgroup v2 when the unified hierarchy is mounted at /sys/fs/cgroup, else v1. */
function cgroupVersion(): '1' | '2' {
  return existsSync('/sys/fs/cgroup/cgroup.controllers') ? '2' : '1'
}

function osRelease(): Record<string, string> {
  const out: Record<string, string> = {}
  try {
    for (const line of readFileSync('/etc/os-release', 'utf8').split('\n')) {
      const m = /^([A-Z_]+)=("?)(.*)\2$/.exec(line)
      if (m) out[m[1] as string] = m[3] as string
    }
  } catch {
    // not there
  }
  return out
}

/** The kind of file system under a path, as Docker names it (`extfs`, `xfs`, `btrfs`, …). */
function backingFilesystem(path: string): string {
  const names: Record<number, string> = {
    0xef53: 'extfs', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x01021994: 'tmpfs', 0x794c7630: 'overlayfs', 0x2fc12fc1: 'zfs', 0x6a656a63: 'fakeowner',
  }
  for (let p = path; ; p = p.slice(0, Math.max(p.lastIndexOf('/'), 1))) {
    try {
      return names[statfsSync(p).type] ?? '<unknown>'
    } catch {
      if (p === '/') return '<unknown>'
    }
  }
}

export async function systemInfo(store: ImageStore): Promise<SystemInfo> {
  const containers = await listContainers(store, { all: true })
  const running = containers.filter((c) => c.state === 'running').length
  const paused = containers.filter((c) => c.state === 'paused').length
  const runtimes: Record<string, { path: string }> = {}
  let defaultRuntime = ''
  for (const name of RuntimeNames) {
    const bin = findRuntimeBinary(name)
    if (!bin) continue
    runtimes[name] = { path: bin }
    if (defaultRuntime === '' && process.getuid?.() === 0 && (await probeRuntime(bin)).ok) defaultRuntime = name
  }
  const os = osRelease()
  const remote = loadRemoteConfig()
  const driver = store.setting('storage-driver') ?? 'overlay'
  const env = (k: string): string => process.env[k] ?? process.env[k.toLowerCase()] ?? ''
  return {
    ID: '',
    Containers: containers.length,
    ContainersRunning: running,
    ContainersPaused: paused,
    ContainersStopped: containers.length - running - paused,
    Images: store.list().length,
    Driver: driver,
    DriverStatus: [['Backing Filesystem', backingFilesystem(store.root)]],
    LoggingDriver: 'json-file',
    CgroupDriver: 'cgroupfs',
    CgroupVersion: cgroupVersion(),
    KernelVersion: release(),
    OperatingSystem: os['PRETTY_NAME'] ?? 'Linux',
    OSVersion: os['VERSION_ID'] ?? '',
    OSType: 'linux',
    Architecture: machine(),
    IndexServerAddress: 'https://index.docker.io/v1/',
    RegistryConfig: {
      InsecureRegistryCIDRs: ['127.0.0.0/8', ...remote.insecureRegistries.filter((r) => r.includes('/'))],
      IndexConfigs: Object.fromEntries<IndexInfo>([
        ['docker.io', { Name: 'docker.io', Mirrors: [], Secure: true, Official: true }],
        ...remote.insecureRegistries.filter((r) => !r.includes('/')).map((r): [string, IndexInfo] => [r, { Name: r, Mirrors: [], Secure: false, Official: false }]),
      ]),
      Mirrors: [],
    },
    NCPU: typeof availableParallelism === 'function' ? availableParallelism() : cpus().length,
    MemTotal: totalmem(),
    DockerRootDir: store.root,
    HttpProxy: env('HTTP_PROXY'),
    HttpsProxy: env('HTTPS_PROXY'),
    NoProxy: env('NO_PROXY'),
    Name: hostname(),
    Labels: [],
    ExperimentalBuild: false,
    ServerVersion: cairnVersion(),
    Runtimes: runtimes,
    DefaultRuntime: defaultRuntime,
    LiveRestoreEnabled: false,
    InitBinary: '',
    SecurityOptions: [],
    Warnings: null,
  }
}
