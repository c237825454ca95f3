/**
 * The network layer's nouns: a network's definition (Docker's bridge driver: a Linux bridge, a
 * subnet, a gateway, NAT unless internal, name resolution on user networks), what a container
 * asks of its network, and what it got (its namespace, addresses, ports, and the contents of its
 * /etc/hosts and /etc/resolv.conf).
 */

export type PortProtocol = 'tcp' | 'udp' | 'sctp'

/** `-p [HOST_IP:][HOST_PORT:]CTR_PORT[/PROTO]`, one port. */
export interface PortSpec {
  containerPort: number
  protocol: PortProtocol
  /** The host address to listen on; '' = every address (0.0.0.0). */
  hostIp: string
  /** 0: any free port, chosen when the container starts. */
  hostPort: number
}

/** `--add-host NAME:IP` (`host-gateway`: the host's address on the container's network). */
export interface ExtraHost {
  name: string
  ip: string
}

/** A network, as `network inspect` shows it (kept as JSON, one file per network). */
export interface NetworkDefinition {
  name: string
  /** 64 hex digits. */
  id: string
  driver: 'bridge'
  /** ISO 8601. */
  created: string
  /** IPv4 CIDR. */
  subnet: string
  gateway: string
  /** No route out (no NAT); containers reach each other only. */
  internal: boolean
  /** The Linux bridge's name. */
  bridge: string
  /** Containers resolve each other's names (user networks; not the default bridge, as with Docker). */
  dns: boolean
  labels: Record<string, string>
  options: Record<string, string>
}

/** The name of the default network (Docker's `bridge`). */
export const DEFAULT_NETWORK = 'bridge'

/**
 * How a container is networked: `none` (its own namespace, loopback only), `host` (the host's
 * namespace), `container` (another container's namespace), or `bridge` (a namespace of its own
 * with an interface on each of `networks`).
 */
export type NetworkMode =
  | { kind: 'none' }
  | { kind: 'host' }
  | { kind: 'container'; container: string }
  | { kind: 'bridge'; networks: EndpointRequest[] }

/** A container's wish on one network. */
export interface EndpointRequest {
  network: string
  aliases: string[]
  /** A fixed address (`--ip`); otherwise one is leased. */
  ipv4Address?: string
}

/** A container's endpoint on one network, once attached. */
export interface Endpoint {
  network: string
  networkId: string
  aliases: string[]
  interface: string
  ipAddress: string
  prefixLength: number
  gateway: string
  macAddress: string
}

/** A published port once bound: the host address and port actually used. */
export interface PublishedPort {
  containerPort: number
  protocol: PortSpec['protocol']
  hostIp: string
  hostPort: number
}

/** What a container's network attachment holds while it runs (`containers/<id>/network.json`). */
export interface Attachment {
  /** The network namespace the runtime joins (absent: the runtime makes a new one, or none for host). */
  netnsPath?: string
  /** A namespace of our own, made for this container (removed with the attachment). */
  ownNetns?: string
  endpoints: Endpoint[]
  ports: PublishedPort[]
  /** What was given to netavark, kept to tear the same things down after a crash. */
  netavarkOptions?: unknown
  /** Name servers a user network's resolver listens on. */
  dnsServers: string[]
}

/** What the container's files and the runtime need from an attachment. */
export interface NetworkSetup {
  attachment: Attachment
  hosts: string
  resolvConf: string
}

/** What the engine asks for when a container starts. */
export interface AttachRequest {
  containerId: string
  containerName: string
  hostname: string
  domainname: string
  mode: NetworkMode
  ports: PortSpec[]
  dns: string[]
  dnsSearch: string[]
  dnsOptions: string[]
  extraHosts: ExtraHost[]
  /** For `container:` mode: the other container's attachment and files, resolved by the engine. */
  joined?: { netnsPath: string; hosts: string; resolvConf: string }
}
