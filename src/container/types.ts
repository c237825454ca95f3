/** The container's data model: its states, its database row, and its folder. */
import { createHash } from 'node:crypto'
import type { ChainId, ImageId } from '../oci/digest.js'
import type { ContainerConfig, HealthConfig } from '../oci/types.js'

export type { HealthConfig }
import type { BindMount } from '../runtime/spec.js'
import type { EndpointRequest, ExtraHost, PortSpec } from '../network/types.js'
import type { StorageDriver } from '../snapshot/types.js'
import type { DeviceMapping, ResourceLimits, Ulimit } from './config.js'

/**
 * Lifecycle states. `creating`, `starting` and `removing` are transitional and owned by one
 * process (`owner_pid`); a later command that finds their owner dead finishes or undoes them.
 */
export const ContainerStates = {
  creating: 'creating',
  created: 'created',
  starting: 'starting',
  running: 'running',
  paused: 'paused',
  /** Between two runs under its restart policy: its monitor waits out the back-off (no process, no mounts). */
  restarting: 'restarting',
  exited: 'exited',
  removing: 'removing',
} as const
export type ContainerState = (typeof ContainerStates)[keyof typeof ContainerStates]

/** A row of the `containers` table. */
export interface ContainerRow {
  id: string
  name: string
  image_id: ImageId
  created: number
  state: ContainerState
  image_ref: string
  command: string
  driver: string
  runtime: string
  runtime_path: string
  owner_pid: number | null
  owner_start: string | null
  shim_pid: number | null
  shim_start: string | null
  pid: number
  started_at: number | null
  finished_at: number | null
  exit_code: number
  error: string
  auto_remove: number
  /** `no`, `always`, `unless-stopped`, `on-failure[:N]` ('' in containers made before restart policies: no). */
  restart_policy: string
  restart_count: number
  /** 1 once its user stopped or killed it (the policy does not restart it then); 0 again at the user's start. */
  manual_stop: number
}

/** Docker's RestartPolicy. */
export interface RestartPolicy {
  Name: 'no' | 'always' | 'unless-stopped' | 'on-failure' | ''
  MaximumRetryCount: number
}

/** One probe's result (Docker's HealthcheckResult). */
export interface HealthResult {
  Start: string
  End: string
  ExitCode: number
  Output: string
}

/** Docker's State.Health, kept by the monitor in `health.json`. */
export interface HealthState {
  Status: 'starting' | 'healthy' | 'unhealthy'
  FailingStreak: number
  /** The last five results, oldest first. */
  Log: HealthResult[]
}

/**
 * A mount of the container as the runtime makes it: a bind of a host path, or of a volume's
 * data folder (then `volume` names it).
 */
export interface ContainerMount extends BindMount {
  volume?: {
    name: string
    /** Made for this container (`-v /path`, an image's VOLUME): removed with `rm -v` and `--rm`. */
    anonymous: boolean
    driver: string
  }
}

/** A tmpfs mounted in the container (`--mount type=tmpfs`). */
export interface TmpfsMount {
  destination: string
  /** mount(8) options: Docker's noexec,nosuid,nodev then size=, mode=, ro. */
  options: string[]
  readonly: boolean
}


/** What `create` decided, kept in `containers/<id>/container.json` (Docker's config.v2 + hostconfig). */
export interface ContainerSpec {
  id: string
  name: string
  created: string
  image: ImageId
  /** The image as the user named it (`ps` shows it). */
  imageRef: string
  /** Docker's `Path` and `Args`: the command, entrypoint first. */
  path: string
  args: string[]
  /** Docker's container `Config` (the image config merged with the command line). */
  config: ContainerConfig & {
    Hostname: string
    Domainname: string
    User: string
    AttachStdin: boolean
    AttachStdout: boolean
    AttachStderr: boolean
    Tty: boolean
    OpenStdin: boolean
    StdinOnce: boolean
    Env: string[]
    Cmd: string[] | null
    Image: string
    WorkingDir: string
    Entrypoint: string[] | null
    Labels: Record<string, string>
  }
  hostConfig: {
    /** Docker's `Binds`: the bind mounts and named volumes as `HOST|NAME:CTR[:ro]`. */
    binds: string[]
    /** Bind mounts and volumes (each a bind of its data folder). */
    mounts: ContainerMount[]
    /** `--mount type=tmpfs` (Docker keeps these in Mounts; `--tmpfs` is `tmpfs` below). */
    tmpfsMounts?: TmpfsMount[]
    /** `--volumes-from` as given (`CONTAINER[:ro|rw]`). */
    volumesFrom?: string[]
    restartPolicy?: RestartPolicy
    /**
     * Docker's NetworkMode: `bridge` (the default network), `none`, `host`, `container:<id>`, or
     * a user network's name. (`default` in containers made before Cairn had networks: loopback only.)
     */
    networkMode: string
    autoRemove: boolean
    /** The runtime name asked for (empty: detected). */
    runtime: string
    /** Published ports as asked (host port 0: any free one, chosen at start). */
    portBindings?: PortSpec[]
    publishAllPorts?: boolean
    dns?: string[]
    dnsSearch?: string[]
    dnsOptions?: string[]
    extraHosts?: ExtraHost[]
    // Confinement and limits (absent in containers made before Cairn had them: Docker's defaults)
    privileged?: boolean
    /** Normalized (`CAP_NET_ADMIN`, `ALL`). */
    capAdd?: string[]
    capDrop?: string[]
    /**
     * Docker's SecurityOpt: `seccomp=unconfined`, `seccomp=<the profile's JSON>`,
     * `no-new-privileges`, `apparmor=PROFILE`, as given.
     */
    securityOpt?: string[]
    readonlyRootfs?: boolean
    /** `--tmpfs`: path → options (Docker's HostConfig.Tmpfs). */
    tmpfs?: Record<string, string>
    devices?: DeviceMapping[]
    ulimits?: Ulimit[]
    /** Bytes of /dev/shm. */
    shmSize?: number
    groupAdd?: string[]
    sysctls?: Record<string, string>
    init?: boolean
    /** Cgroup limits, as `update` last set them (memorySwap resolved: twice the memory by default). */
    resources?: ResourceLimits
  }
  /** Its networks (bridge modes): names, aliases, fixed addresses; Docker's NetworkingConfig. */
  networks?: EndpointRequest[]
  driver: StorageDriver
  /** The container's writable snapshot. */
  snapshotKey: string
  /** Its parent: the image's committed init layer (mount points for /etc/hosts, …), shared by the image's containers. */
  initKey: string
  /** The image's top chain ID (the init layer's parent), if the image has layers. */
  imageChain?: ChainId
  runtime: { name: string; path: string }
}

/** Files of a container under `$ROOT/containers/<id>/`. */
export interface ContainerPaths {
  dir: string
  spec: string
  bundle: string
  rootfs: string
  log: string
  hostname: string
  hosts: string
  resolvConf: string
  exit: string
  pidFile: string
  runtimeLog: string
  shimLog: string
  /** The network attachment while it runs (what to take back after a crash). */
  network: string
  /**
   * The monitor's attach socket while it runs (attach.ts), under /run: a unix socket's path
   * must stay under 108 bytes, which a store's own folder may not.
   */
  attach: string
  /** The health checks' state (written by the monitor). */
  health: string
}

export function containerPaths(root: string, id: string): ContainerPaths {
  const dir = `${root}/containers/${id}`
  return {
    dir,
    spec: `${dir}/container.json`,
    bundle: `${dir}/bundle`,
    rootfs: `${dir}/rootfs`,
    log: `${dir}/${id}-json.log`,
    hostname: `${dir}/hostname`,
    hosts: `${dir}/hosts`,
    resolvConf: `${dir}/resolv.conf`,
    exit: `${dir}/exit.json`,
    pidFile: `${dir}/init.pid`,
    runtimeLog: `${dir}/runtime.json`,
    shimLog: `${dir}/shim.log`,
    network: `${dir}/network.json`,
    attach: `/run/cairn/${createHash('sha256').update(root).digest('hex').slice(0, 12)}/io/${id}.sock`,
    health: `${dir}/health.json`,
  }
}

/** What the monitor records when the container's process ends (`exit.json`). */
export interface ExitRecord {
  exitCode: number
  finishedAt: number
  /** The kernel's OOM killer killed a process of the container (Docker's State.OOMKilled). */
  oomKilled?: boolean
}
