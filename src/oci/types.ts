/**
 * The data model of the OCI image specification (and Docker's schema2, which shares its shape).
 * These are the JSON documents as they appear on the wire and on disk.
 */
import type { DiffId, Digest } from './digest.js'

export interface Descriptor {
  mediaType: string
  digest: Digest
  size: number
  urls?: string[]
  annotations?: Record<string, string>
  platform?: Platform
  artifactType?: string
}

export interface Platform {
  architecture: string
  os: string
  'os.version'?: string
  'os.features'?: string[]
  variant?: string
}

export interface ImageManifest {
  schemaVersion: 2
  mediaType?: string
  artifactType?: string
  config: Descriptor
  layers: Descriptor[]
  subject?: Descriptor
  annotations?: Record<string, string>
}

export interface ImageIndex {
  schemaVersion: 2
  mediaType?: string
  artifactType?: string
  manifests: Descriptor[]
  subject?: Descriptor
  annotations?: Record<string, string>
}

/** The runtime defaults an image carries (`config` in the image config). */
/** Docker's health check of an image or container (`Healthcheck`): durations in nanoseconds, 0 for the default. */
export interface HealthConfig {
  /** `[]` inherit; `['NONE']` none; `['CMD', arg…]`; `['CMD-SHELL', command]`. */
  Test?: string[]
  Interval?: number
  Timeout?: number
  StartPeriod?: number
  StartInterval?: number
  Retries?: number
}

export interface ContainerConfig {
  User?: string
  ExposedPorts?: Record<string, object>
  Env?: string[]
  Entrypoint?: string[] | null
  Cmd?: string[] | null
  Volumes?: Record<string, object>
  WorkingDir?: string
  Labels?: Record<string, string>
  StopSignal?: string
  OnBuild?: string[] | null
  Healthcheck?: HealthConfig
  ArgsEscaped?: boolean
  Shell?: string[]
  [key: string]: unknown
}

export interface HistoryEntry {
  created?: string
  created_by?: string
  author?: string
  comment?: string
  empty_layer?: boolean
}

export interface ImageConfig {
  created?: string
  author?: string
  architecture: string
  os: string
  variant?: string
  'os.version'?: string
  config?: ContainerConfig
  rootfs: { type: 'layers'; diff_ids: DiffId[] }
  history?: HistoryEntry[]
  // Docker's additions, kept when present
  comment?: string
  container?: string
  container_config?: ContainerConfig
  docker_version?: string
  parent?: string
  [key: string]: unknown
}

/** One entry of a `docker save` archive's manifest.json. */
export interface DockerArchiveManifestEntry {
  Config: string
  RepoTags: string[] | null
  Layers: string[]
  Parent?: string
  LayerSources?: Record<string, Descriptor>
}

/** The GOARCH-style name of this machine's architecture, as images record it. */
export function hostPlatform(): Platform {
  const archMap: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' }
  const architecture = archMap[process.arch] ?? process.arch
  const p: Platform = { architecture, os: 'linux' }
  if (architecture === 'arm64') p.variant = 'v8'
  return p
}
