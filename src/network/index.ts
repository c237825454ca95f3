/**
 * Networks for containers, behind one small interface: `attach` gives a starting container its
 * network (a namespace, addresses, ports) and the contents of its /etc/hosts and
 * /etc/resolv.conf; `detach` takes it all back, also after a crash, from the attachment record
 * the engine kept. One implementation per mode: `none` (the runtime's own empty namespace),
 * `host`, `container:` (another container's namespace), and bridge networks, the default one and
 * user networks, plumbed by netavark (see netavark.ts).
 */
import { readFile } from 'node:fs/promises'
import { CairnError } from '../errors/index.js'
import { selfIdentity, type ProcessIdentity } from '../util/proc.js'
import { hostsFile, resolvConfFile } from '../runtime/etc.js'
import { loadNetworkConfig, type NetworkConfig } from './config.js'
import { NetworkDefinitions, type CreateNetworkOptions } from './definitions.js'
import { addNetns, bridgeHeld, deleteNetns, holdBridge, linkExists, releaseBridge } from './host.js'
import { Leases } from './ipam.js'
import { Netavark, netavarkNetwork, portMappings, type NetavarkOptions } from './netavark.js'
import { reservePorts, type PortReservation } from './ports.js'
import { parseSubnet } from './cidr.js'
import {
  DEFAULT_NETWORK, type AttachRequest, type Attachment, type Endpoint, type EndpointRequest, type NetworkDefinition, type NetworkSetup,
} from './types.js'

export * from './types.js'
export { type CreateNetworkOptions } from './definitions.js'
export { type NetworkConfig } from './config.js'

/** The network namespace made for a container on bridge networks. */
export function netnsName(containerId: string): string {
  return `cairn-${containerId.slice(0, 32)}`
}

/** What attach returns: the setup, and a release of what only this process holds (the port sockets). */
export interface AttachResult extends NetworkSetup {
  releasePorts: () => Promise<void>
}

export class NetworkManager {
  readonly cfg: NetworkConfig
  private leasesDb: Leases | undefined
  private definitionsStore: NetworkDefinitions | undefined
  private netavarkTool: Netavark | undefined

  constructor(cfg: NetworkConfig = loadNetworkConfig()) {
    this.cfg = cfg
  }

  get leases(): Leases {
    this.leasesDb ??= new Leases(this.cfg.runDir)
    return this.leasesDb
  }

  get definitions(): NetworkDefinitions {
    this.definitionsStore ??= new NetworkDefinitions(this.cfg, this.leases)
    return this.definitionsStore
  }

  private get netavark(): Netavark {
    this.netavarkTool ??= new Netavark(this.cfg.runDir)
    return this.netavarkTool
  }

  close(): void {
    this.leasesDb?.close()
    this.leasesDb = undefined
    this.definitionsStore = undefined
  }

  // ---------------------------------------------------------------- networks

  list(): NetworkDefinition[] {
    return this.definitions.list()
  }

  /** A network by name or ID; `host` and `none` are modes, not networks to attach to. */
  get(nameOrId: string): NetworkDefinition {
    return this.definitions.get(nameOrId)
  }

  create(opts: CreateNetworkOptions): NetworkDefinition {
    return this.definitions.create(opts)
  }

  /**
   * Removes a user network, its bridge and its firewall rules; refused while a running container
   * is attached to it.
   */
  async remove(nameOrId: string): Promise<NetworkDefinition> {
    if (nameOrId === 'host' || nameOrId === 'none') throw new CairnError('CONFLICT', `${nameOrId} is a pre-defined network and cannot be removed`)
    const def = this.get(nameOrId)
    if (def.name === DEFAULT_NETWORK) throw new CairnError('CONFLICT', `${def.name} is a pre-defined network and cannot be removed`)
    // the plumbing first, while the network is still there to be told about (a container that
    // starts on it meanwhile makes its bridge again, and the removal below is then refused)
    if (this.leases.live(def.id).length === 0) await this.releasePlumbing(def)
    this.leases.exclusive(() => {
      const active = this.leases.live(def.id)
      if (active.length > 0) throw new CairnError('CONFLICT', `error while removing network: network ${def.name} id ${def.id} has active endpoints`)
      this.definitions.remove(def)
    })
    return def
  }

  /** Addresses leased on a network now: which containers run on it. */
  activeEndpoints(def: NetworkDefinition): { ip: string; containerId: string }[] {
    return this.leases.live(def.id).map((l) => ({ ip: l.ip, containerId: l.containerId }))
  }

  // ---------------------------------------------------------------- containers

  /**
   * Gives a starting container its network. `record` is called with the attachment before any
   * step that leaves something on the host, so that a crash at any point can be undone from it.
   * On failure everything made so far is undone.
   */
  async attach(req: AttachRequest, holder: ProcessIdentity, record: (a: Attachment) => Promise<void>): Promise<AttachResult> {
    const hostResolv = await readFile('/etc/resolv.conf', 'utf8').catch(() => undefined)
    const resolvOverrides = {
      ...(req.dns.length > 0 ? { nameservers: req.dns } : {}),
      ...(req.dnsSearch.length > 0 ? { search: req.dnsSearch } : {}),
      ...(req.dnsOptions.length > 0 ? { options: req.dnsOptions } : {}),
    }
    const none = async (): Promise<void> => undefined
    switch (req.mode.kind) {
      case 'host': {
        const hostHosts = await readFile('/etc/hosts', 'utf8').catch(() => undefined)
        return {
          attachment: { endpoints: [], ports: [], dnsServers: [] },
          hosts: hostsFile({ hostname: req.hostname, network: 'host', ...(hostHosts !== undefined ? { hostHosts } : {}), extra: req.extraHosts }),
          resolvConf: resolvConfFile(hostResolv, 'host', resolvOverrides),
          releasePorts: none,
        }
      }
      case 'none':
        return {
          attachment: { endpoints: [], ports: [], dnsServers: [] },
          hosts: hostsFile({ hostname: req.hostname, network: 'private', extra: req.extraHosts }),
          resolvConf: resolvConfFile(hostResolv, 'private', resolvOverrides),
          releasePorts: none,
        }
      case 'container': {
        if (!req.joined) throw new TypeError('attach: container mode needs the joined container')
        return { attachment: { netnsPath: req.joined.netnsPath, endpoints: [], ports: [], dnsServers: [] }, hosts: req.joined.hosts, resolvConf: req.joined.resolvConf, releasePorts: none }
      }
      case 'bridge':
        return this.attachBridge(req, req.mode.networks, holder, record, hostResolv, resolvOverrides)
    }
  }

  private async attachBridge(
    req: AttachRequest, wanted: { network: string; aliases: string[]; ipv4Address?: string }[], holder: ProcessIdentity,
    record: (a: Attachment) => Promise<void>, hostResolv: string | undefined, resolvOverrides: { nameservers?: readonly string[]; search?: readonly string[]; options?: readonly string[] },
  ): Promise<AttachResult> {
    const defs = wanted.map((w) => this.get(w.network))
    const own = netnsName(req.containerId)
    const attachment: Attachment = { ownNetns: own, endpoints: [], ports: [], dnsServers: [] }
    let reservation: PortReservation | undefined
    try {
      await record(attachment)
      attachment.netnsPath = await addNetns(own)
      // addresses first: the port rules and the resolver's records name them
      const addresses = defs.map((def, i) => this.leases.lease(def, req.containerId, holder, wanted[i]?.ipv4Address))
      reservation = await reservePorts(req.ports, `${req.containerName} (${req.containerId.slice(0, 12)})`)
      attachment.ports = reservation.ports
      const options: NetavarkOptions = {
        container_id: req.containerId,
        container_name: req.containerName,
        networks: Object.fromEntries(defs.map((def, i) => [def.name, {
          static_ips: [addresses[i] as string],
          // a user network resolves the name, the short ID and the aliases
          aliases: def.dns ? [...new Set([req.containerId.slice(0, 12), ...(wanted[i]?.aliases ?? [])])] : [],
          interface_name: `eth${i}`,
        }])),
        network_info: Object.fromEntries(defs.map((def) => [def.name, netavarkNetwork(def)])),
        port_mappings: portMappings(reservation.ports),
      }
      attachment.netavarkOptions = options
      await record(attachment)
      const result = await this.netavark.setup(attachment.netnsPath, options)
      attachment.endpoints = defs.map((def, i): Endpoint => {
        const iface = `eth${i}`
        const r = result[def.name]
        return {
          network: def.name,
          networkId: def.id,
          aliases: options.networks[def.name]?.aliases ?? [],
          interface: iface,
          ipAddress: addresses[i] as string,
          prefixLength: parseSubnet(def.subnet).prefix,
          gateway: def.internal ? '' : def.gateway,
          macAddress: r?.interfaces?.[iface]?.mac_address ?? '',
        }
      })
      attachment.dnsServers = [...new Set(defs.flatMap((def) => result[def.name]?.dns_server_ips ?? []))]
      await record(attachment)
      // the bridges stay from now on, as Docker's do (see releasePlumbing); a hold that could not be
      // made only costs the next start some time
      for (const def of defs) if (!bridgeHeld(def.bridge)) await holdBridge(def.bridge).catch(() => undefined)
      const first = attachment.endpoints[0]
      return {
        attachment,
        hosts: hostsFile({
          hostname: req.hostname, network: 'private', extra: req.extraHosts.map((e) => (e.ip === 'host-gateway' ? { name: e.name, ip: defs[0]?.gateway ?? '' } : e)),
          ...(first ? { self: { ip: first.ipAddress, domainname: req.domainname } } : {}),
        }),
        resolvConf: resolvConfFile(hostResolv, 'private', { ...resolvOverrides, ...(attachment.dnsServers.length > 0 ? { resolvers: attachment.dnsServers } : {}) }),
        releasePorts: async () => reservation?.release(),
      }
    } catch (err) {
      await reservation?.release()
      await this.detach(req.containerId, attachment).catch(() => undefined)
      throw err
    }
  }

  /**
   * What the default network leaves between containers, as Docker's docker0 and its rules stay:
   * its bridge and firewall rules (see releasePlumbing), and netavark's shared chains (empty but
   * for their jumps; making them again costs a dozen iptables calls). When no container on the
   * host has a bridge network (`network prune`, the end of the test suite), this takes it all away.
   */
  async removeIdleChains(): Promise<void> {
    if (this.leases.live().length > 0) return
    await this.releasePlumbing(this.get(DEFAULT_NETWORK))
    await this.netavark.removeIdleChains()
  }

  /**
   * A network's bridge is held by a link of its own from its first container on (host.ts,
   * holdBridge), so that it stays with its firewall rules between containers, as a Docker
   * network's bridge stays while the network exists: netavark would otherwise remove the bridge
   * and the rules with the last container and make them again for the next one (150 of the 180 ms
   * of a `run --rm` container's network teardown). This takes them away: the hold, then the bridge
   * and the rules by netavark's own teardown of an endpoint made for it.
   */
  private async releasePlumbing(def: NetworkDefinition): Promise<void> {
    await releaseBridge(def.bridge)
    if (linkExists(def.bridge)) await this.retireBridge(def)
  }

  /**
   * Removes a bridge no container uses, and its network's firewall rules, the way netavark does
   * after its last container: an endpoint is set up on it and torn down again (netavark's rules
   * are its own; this never writes one).
   */
  private async retireBridge(def: NetworkDefinition): Promise<void> {
    const id = `retire-${def.id.slice(0, 12)}-${process.pid}`
    const ns = netnsName(id)
    const options: NetavarkOptions = {
      container_id: id,
      container_name: id,
      networks: { [def.name]: { static_ips: [this.leases.lease(def, id, selfIdentity())], aliases: [], interface_name: 'eth0' } },
      network_info: { [def.name]: netavarkNetwork(def) },
      port_mappings: [],
    }
    try {
      const path = await addNetns(ns)
      try {
        await this.netavark.setup(path, options)
      } finally {
        await this.netavark.teardown(path, options)
      }
    } finally {
      await deleteNetns(ns).catch(() => undefined)
      this.leases.release(id)
    }
  }

  /**
   * Connects a running container to one more network (`network connect`): an address, an
   * interface named after the ones it has, netavark's setup for that network alone. Returns the
   * attachment with the new endpoint (the caller records it).
   */
  async connect(containerId: string, containerName: string, attachment: Attachment, wanted: EndpointRequest, holder: ProcessIdentity): Promise<Attachment> {
    const def = this.get(wanted.network)
    const options = attachment.netavarkOptions as NetavarkOptions | undefined
    if (!options || attachment.netnsPath === undefined) throw new CairnError('CONFLICT', 'container sharing network namespace with another container or host cannot be connected to any other network')
    if (attachment.endpoints.some((e) => e.networkId === def.id)) throw new CairnError('CONFLICT', `endpoint with name ${containerName} already exists in network ${def.name}`)
    const ip = this.leases.lease(def, containerId, holder, wanted.ipv4Address)
    const used = new Set(attachment.endpoints.map((e) => e.interface))
    let n = 0
    while (used.has(`eth${n}`)) n++
    const iface = `eth${n}`
    const one: NetavarkOptions = {
      container_id: containerId,
      container_name: containerName,
      networks: { [def.name]: { static_ips: [ip], aliases: def.dns ? [...new Set([containerId.slice(0, 12), ...wanted.aliases])] : [], interface_name: iface } },
      network_info: { [def.name]: netavarkNetwork(def) },
      port_mappings: [],
    }
    let result
    try {
      result = await this.netavark.setup(attachment.netnsPath, one)
    } catch (err) {
      this.leases.release(containerId, def.id)
      throw err
    }
    const next: Attachment = {
      ...attachment,
      netavarkOptions: {
        ...options,
        networks: { ...options.networks, ...one.networks },
        network_info: { ...options.network_info, ...one.network_info },
      } satisfies NetavarkOptions,
      endpoints: [...attachment.endpoints, {
        network: def.name, networkId: def.id, aliases: one.networks[def.name]?.aliases ?? [], interface: iface, ipAddress: ip,
        prefixLength: parseSubnet(def.subnet).prefix, gateway: def.internal ? '' : def.gateway,
        macAddress: result[def.name]?.interfaces?.[iface]?.mac_address ?? '',
      }],
      dnsServers: [...new Set([...attachment.dnsServers, ...(result[def.name]?.dns_server_ips ?? [])])],
    }
    return next
  }

  /** Disconnects a running container from one of its networks (`network disconnect`); returns the attachment without it. */
  async disconnect(containerId: string, attachment: Attachment, network: string): Promise<Attachment> {
    const def = this.get(network)
    const options = attachment.netavarkOptions as NetavarkOptions | undefined
    const ep = attachment.endpoints.find((e) => e.networkId === def.id)
    if (!options || !ep || attachment.netnsPath === undefined) throw new CairnError('CONFLICT', `container ${containerId.slice(0, 12)} is not connected to network ${def.name}`)
    const one: NetavarkOptions = {
      container_id: containerId,
      container_name: options.container_name,
      networks: { [def.name]: options.networks[def.name] ?? { static_ips: [ep.ipAddress], aliases: ep.aliases, interface_name: ep.interface } },
      network_info: { [def.name]: options.network_info[def.name] ?? netavarkNetwork(def) },
      port_mappings: [],
    }
    await this.netavark.teardown(attachment.netnsPath, one)
    this.leases.release(containerId, def.id)
    const { [def.name]: _n, ...networks } = options.networks
    const { [def.name]: _i, ...networkInfo } = options.network_info
    return {
      ...attachment,
      netavarkOptions: { ...options, networks, network_info: networkInfo } satisfies NetavarkOptions,
      endpoints: attachment.endpoints.filter((e) => e.networkId !== def.id),
    }
  }

  /**
   * Takes back a container's network: netavark's interfaces and rules, the namespace, the leases.
   * Idempotent, and works from the record alone (after a crash, or a reboot that already took the
   * namespace and the rules).
   */
  async detach(containerId: string, attachment: Attachment | undefined): Promise<void> {
    const errors: unknown[] = []
    if (attachment?.netavarkOptions !== undefined && attachment.netnsPath !== undefined) {
      await this.netavark.teardown(attachment.netnsPath, attachment.netavarkOptions as NetavarkOptions).catch((err: unknown) => {
        // a namespace that is already gone (reboot, crash) has nothing left to tear down in it
        if (!/No such file|does not exist|ENOENT|not found/i.test(String((err as Error).message))) errors.push(err)
      })
    }
    if (attachment?.ownNetns !== undefined) await deleteNetns(attachment.ownNetns).catch((err: unknown) => errors.push(err))
    this.leases.release(containerId)
    if (errors.length > 0) throw errors[0]
  }
}
