/**
 * What a container is asked to be, typed: the engine's input for `create`. Nothing here is a
 * command-line string: the CLI (and the Engine API) turn Docker's flag syntaxes (`-v`, `-p`,
 * `--add-host`, `-e K`) into these values first (src/api/flags.ts), so that the engine never
 * parses user text, never reads its own process's environment, and never speaks of exit codes.
 */
import type { OperationOptions } from '../util/progress.js'
import type { StorageDriver } from '../snapshot/types.js'
import type { ExtraHost, PortProtocol, PortSpec } from '../network/types.js'

export type { ExtraHost, PortProtocol, PortSpec }

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

export type MountSpec = BindMountSpec

/**
 * `docker create`'s options, typed. `network` is `default` (= `bridge`), `bridge`, `none`,
 * `host`, `container:NAME|ID`, or the name of a user network.
 */
export interface CreateOptions extends OperationOptions {
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
  mounts?: MountSpec[]
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
}
