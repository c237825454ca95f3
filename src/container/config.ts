/**
 * What a container is asked to be, typed: the engine's input for `create`. Nothing here is a
 * command-line string: the CLI (and the Engine API) turn Docker's flag syntaxes (`-v`, `-p`,
 * `--add-host`, `-e K`) into these values first (src/api/flags.ts), so that the engine never
 * parses user text, never reads its own process's environment, and never speaks of exit codes.
 */
import type { OperationOptions } from '../util/progress.js'
import type { StorageDriver } from '../snapshot/types.js'
import type { ExtraHost, PortProtocol, PortSpec } from '../network/types.js'
import type { ResourcesInput, Ulimit } from '../runtime/spec.js'

export type { ExtraHost, PortProtocol, PortSpec, Ulimit }

/** A host device given to a container (`--device HOST[:CTR[:PERMS]]`), Docker's DeviceMapping. */
export interface DeviceMapping {
  /** Absolute host path: a device node, or a folder of them. */
  pathOnHost: string
  /** Absolute path in the container (default: the host path). */
  pathInContainer: string
  /** Cgroup permissions, some of `rwm` (default `rwm`). */
  cgroupPermissions: string
}

/**
 * Cgroup limits (Docker's HostConfig resources), for `create` and `update`. Sizes in bytes.
 */
export type ResourceLimits = ResourcesInput

/**
 * Confinement: Docker's defaults (its capabilities, seccomp profile, masked and read-only paths,
 * and AppArmor profile where the host has AppArmor) unless these say otherwise.
 */
export interface SecurityOptions {
  /** Every capability and device of the host, no seccomp filter, no masked paths. */
  privileged?: boolean
  /** `NET_ADMIN`, `CAP_SYS_PTRACE`, `ALL`. */
  capAdd?: string[]
  capDrop?: string[]
  /** `unconfined`, or a profile in Docker's JSON format (the file's content, as Docker keeps it). */
  seccompProfile?: string
  noNewPrivileges?: boolean
  /** An AppArmor profile's name, or `unconfined`. */
  apparmorProfile?: string
  /** The root file system read-only (`--read-only`). */
  readonlyRootfs?: boolean
}

/** A host folder or file bind-mounted into the container. */
export interface BindMountSpec {
  type: 'bind'
  /** Absolute host path. */
  source: string
  /** Absolute path in the container. */
  target: string
  readonly: boolean
  /**
   * Make a missing source folder (Docker's `-v HOST:CTR` does; `--mount type=bind` refuses a
   * missing source).
   */
  createSource?: boolean
}

/**
 * A volume mounted into the container: a named one (made on first use), or, without `source`,
 * an anonymous one made for this container (removed with it by `rm -v` and `--rm`).
 */
export interface VolumeMountSpec {
  type: 'volume'
  /** The volume's name; undefined or '': anonymous. */
  source?: string
  /** Absolute path in the container. */
  target: string
  readonly: boolean
  /** Leave an empty volume empty (Docker's `nocopy`); by default it gets the image's content at `target`. */
  noCopy?: boolean
  /** For a volume this mount makes: its labels and the local driver's options (`type`, `device`, `o`). */
  labels?: Record<string, string>
  driverOptions?: Record<string, string>
  /** `local` (the only driver). */
  driver?: string
}

/** A tmpfs (memory) file system mounted into the container. */
export interface TmpfsMountSpec {
  type: 'tmpfs'
  target: string
  /** Bytes; undefined: the kernel's default (half the memory). */
  size?: number
  /** Permission bits of its root (e.g. 0o1777, the default). */
  mode?: number
  readonly: boolean
}

export type MountSpec = BindMountSpec | VolumeMountSpec | TmpfsMountSpec

/** Docker's restart policies. `on-failure` restarts after a non-zero exit, at most `maximumRetryCount` times (0: no limit). */
export interface RestartPolicyOptions {
  name: 'no' | 'always' | 'unless-stopped' | 'on-failure'
  maximumRetryCount?: number
}

/**
 * A health check, overriding the image's HEALTHCHECK field by field (durations in
 * milliseconds; what is left out comes from the image, then Docker's defaults: 30 s interval,
 * 30 s timeout, no start period, 5 s start interval, 3 retries).
 */
export interface HealthcheckOptions {
  /** `['CMD', arg…]`, `['CMD-SHELL', command]`, or `['NONE']` to disable the image's. */
  test?: string[]
  interval?: number
  timeout?: number
  startPeriod?: number
  startInterval?: number
  retries?: number
}

/**
 * `docker create`'s options, typed. `network` is `default` (= `bridge`), `bridge`, `none`,
 * `host`, `container:NAME|ID`, or the name of a user network.
 */
export interface CreateOptions extends OperationOptions, ResourceLimits, SecurityOptions {
  /** The image, by name or ID (prefix). */
  image: string
  /** Arguments after the image: the command (or the entrypoint's arguments). */
  command?: string[]
  name?: string
  /** `K=V` entries added to (or replacing) the image's; a bare `K` removes K. */
  env?: string[]
  /** Absolute path. */
  workdir?: string
  /** `USER[:GROUP]` (names or IDs), resolved in the container's files when it starts. */
  user?: string
  /** Replaces the image's entrypoint (and then its CMD); `[]` clears it. */
  entrypoint?: string[]
  hostname?: string
  domainname?: string
  labels?: Record<string, string>
  /** A terminal. */
  tty?: boolean
  /** Keep standard input open. */
  interactive?: boolean
  /**
   * Close standard input when the first caller attached to it leaves (Docker's StdinOnce: what
   * an attached `run -i` asks for; a detached one keeps it open for later `attach`es).
   */
  stdinOnce?: boolean
  /** Removed when its process exits. */
  autoRemove?: boolean
  /** `crun`, `runc` or a path; default: crun when it works here, else runc. */
  runtime?: string
  storageDriver?: StorageDriver
  /** Bind mounts, volumes and tmpfs mounts. */
  mounts?: MountSpec[]
  /** `--volumes-from`: the bind mounts and volumes of these containers (`NAME[:ro|:rw]`). */
  volumesFrom?: string[]
  /** Default `no`. Not with `autoRemove`. */
  restart?: RestartPolicyOptions
  healthcheck?: HealthcheckOptions
  /** Network mode or user network (see above). */
  network?: string
  /** Other names this container answers to on a user network. */
  networkAliases?: string[]
  /** A fixed IPv4 address on its network (`--ip`). */
  ipv4Address?: string
  /** Published ports. */
  ports?: PortSpec[]
  /** `-P`: publish every port the image exposes on a free host port. */
  publishAllPorts?: boolean
  /** Name servers, search domains and resolver options for its /etc/resolv.conf. */
  dns?: string[]
  dnsSearch?: string[]
  dnsOptions?: string[]
  /** Lines added to its /etc/hosts. */
  extraHosts?: ExtraHost[]
  /** `--tmpfs`: container path → mount options (`size=64m,mode=1777`; '' for the defaults). */
  tmpfs?: Record<string, string>
  devices?: DeviceMapping[]
  /** `--ulimit`s; unlimited is -1. */
  ulimits?: Ulimit[]
  /** `--shm-size`: bytes of /dev/shm (default 64 MiB). */
  shmSize?: number
  /** `--group-add`: supplementary groups, names (looked up in the container's /etc/group) or IDs. */
  groupAdd?: string[]
  /** `--sysctl`: namespaced kernel parameters only (net.* needs a network namespace of its own). */
  sysctls?: Record<string, string>
  /** `--init`: a small init (tini) runs as PID 1 and the command under it, reaping zombies and passing signals. */
  init?: boolean
  /**
   * Its writable layer mounted without syncs (overlay's `volatile`): stopping it does not flush
   * the host's file system, and what it wrote may be lost on a crash. For containers whose
   * changes are committed elsewhere, as a build's RUN steps are.
   */
  volatileRootfs?: boolean
}
