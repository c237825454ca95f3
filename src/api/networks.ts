/**
 * The network verbs (`network create|ls|inspect|rm|prune|connect|disconnect`): they return
 * Docker's shapes; the CLI prints. Networks are the host's (see src/network/config.ts); the
 * containers a network's inspect lists are the store's own running ones on it.
 */
import { createHash } from 'node:crypto'
import { CairnError, hasCode } from '../errors/index.js'
import type { ImageStore } from '../image/store.js'
import { NetworkManager, type CreateNetworkOptions, type NetworkDefinition } from '../network/index.js'
import { containerEngine } from './containers.js'
import { recordEvent } from '../events/journal.js'
import { matchLabels, matchRegexp, parseUntil, validateFilterKeys, values, type FilterArgs } from './filters.js'

export type { CreateNetworkOptions, NetworkDefinition }

let shared: NetworkManager | undefined

/** The host's networks (one manager per process). */
export function networks(): NetworkManager {
  shared ??= new NetworkManager()
  return shared
}

/** Docker's network resource (`network inspect`, and each entry of `network ls --format json`). */
export interface NetworkResource {
  Name: string
  Id: string
  Created: string
  Scope: 'local'
  Driver: string
  EnableIPv6: boolean
  IPAM: { Driver: string; Options: null; Config: { Subnet: string; Gateway: string }[] }
  Internal: boolean
  Attachable: boolean
  Ingress: boolean
  ConfigFrom: { Network: string }
  ConfigOnly: boolean
  Containers: Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }>
  Options: Record<string, string>
  Labels: Record<string, string>
}

/** `host` and `none` as Docker lists them (modes, not networks one can attach to). */
function modeResource(name: 'host' | 'none'): NetworkResource {
  return {
    Name: name,
    Id: createId(name),
    Created: '1970-01-01T00:00:00Z',
    Scope: 'local',
    Driver: name === 'host' ? 'host' : 'null',
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: [] },
    Internal: false,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: {},
    Options: {},
    Labels: {},
  }
}

/** Stable IDs for the two modes, so that `network ls` and `inspect` agree between calls. */
function createId(name: string): string {
  return createHash('sha256').update(`cairn network ${name}`).digest('hex')
}

function resource(def: NetworkDefinition): NetworkResource {
  return {
    Name: def.name,
    Id: def.id,
    Created: def.created,
    Scope: 'local',
    Driver: def.driver,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: [{ Subnet: def.subnet, Gateway: def.gateway }] },
    Internal: def.internal,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: {},
    Options: { ...def.options },
    Labels: { ...def.labels },
  }
}

/** Docker's filters for `network ls` and `network prune`. */
const LIST_FILTERS = ['driver', 'id', 'label', 'name', 'scope', 'type', 'dangling'] as const

/** `docker network ls`: every network, the modes `host` and `none` included; sorted by name as Docker prints them. */
export function listNetworks(opts: { filters?: FilterArgs } = {}): NetworkResource[] {
  const filters = opts.filters ?? {}
  validateFilterKeys(filters, LIST_FILTERS)
  const all = [...networks().list().map(resource), modeResource('host'), modeResource('none')]
  return all
    .filter((n) => values(filters, 'driver').length === 0 || values(filters, 'driver').includes(n.Driver))
    .filter((n) => values(filters, 'id').length === 0 || values(filters, 'id').some((v) => n.Id.startsWith(v)))
    .filter((n) => matchRegexp(filters, 'name', n.Name))
    .filter((n) => matchLabels(filters, 'label', n.Labels))
    .filter(() => values(filters, 'scope').length === 0 || values(filters, 'scope').includes('local'))
    .filter((n) => {
      const t = values(filters, 'type')
      if (t.length === 0) return true
      const builtin = ['bridge', 'host', 'none'].includes(n.Name)
      return t.some((v) => (v === 'builtin' ? builtin : v === 'custom' ? !builtin : false))
    })
    .sort((a, b) => a.Name.localeCompare(b.Name))
}

/** `docker network inspect`: with the store's running containers on it. */
export async function inspectNetwork(store: ImageStore | undefined, nameOrId: string): Promise<NetworkResource> {
  if (nameOrId === 'host' || nameOrId === 'none') return modeResource(nameOrId)
  const m = networks()
  const def = m.get(nameOrId)
  const out = resource(def)
  if (store) {
    const engine = containerEngine(store)
    for (const lease of m.activeEndpoints(def)) {
      const row = engine.rows.get(lease.containerId)
      if (!row) continue
      const ep = (await engine.attachmentOf(row.id))?.endpoints.find((e) => e.networkId === def.id)
      out.Containers[row.id] = {
        Name: row.name,
        EndpointID: '',
        MacAddress: ep?.macAddress ?? '',
        IPv4Address: `${lease.ip}/${ep?.prefixLength ?? def.subnet.split('/')[1] ?? ''}`,
        IPv6Address: '',
      }
    }
  }
  return out
}

/**
 * `docker network create` (the bridge driver; `--subnet`, `--gateway`, `--internal`, labels,
 * options). Networks are the host's; `journal`, a store's root, records the event there.
 */
export function createNetwork(opts: CreateNetworkOptions & { driver?: string }, journal?: string): NetworkResource {
  if (opts.driver !== undefined && opts.driver !== 'bridge') {
    throw new CairnError('NOT_SUPPORTED', `plugin "${opts.driver}" not found: Cairn's networks use the bridge driver`)
  }
  const { driver: _driver, ...rest } = opts
  const def = networks().create(rest)
  if (journal !== undefined) recordEvent(journal, 'network', 'create', def.id, { name: def.name, type: def.driver })
  return resource(def)
}

/** `docker network rm`: refused while a running container is on it (`journal`: as for create). */
export async function removeNetwork(nameOrId: string, journal?: string): Promise<NetworkDefinition> {
  const def = await networks().remove(nameOrId)
  if (journal !== undefined) recordEvent(journal, 'network', 'destroy', def.id, { name: def.name, type: def.driver })
  return def
}

/**
 * `docker network prune`: user networks no running container is on; their names. netavark's
 * shared firewall chains go too when no container uses a bridge network (`journal`: as for create).
 */
export async function pruneNetworks(opts: { filters?: FilterArgs } = {}, journal?: string): Promise<string[]> {
  const filters = opts.filters ?? {}
  validateFilterKeys(filters, ['label', 'label!', 'until'])
  const m = networks()
  const removed: string[] = []
  const until = values(filters, 'until')[0]
  const cutoff = until !== undefined ? parseUntil(until) : undefined
  for (const def of m.definitions.userNetworks()) {
    if (!matchLabels(filters, 'label', def.labels)) continue
    if (values(filters, 'label!').length > 0 && matchLabels({ label: values(filters, 'label!') }, 'label', def.labels)) continue
    if (cutoff !== undefined && Date.parse(def.created) >= cutoff) continue
    try {
      await m.remove(def.name)
      if (journal !== undefined) recordEvent(journal, 'network', 'destroy', def.id, { name: def.name, type: def.driver })
      removed.push(def.name)
    } catch (err) {
      if (!hasCode(err, 'CONFLICT')) throw err
    }
  }
  await m.removeIdleChains()
  return removed.sort()
}

/** `docker network connect [--alias A] [--ip IP] NETWORK CONTAINER`: now if it runs, else at its next start. */
export async function connectNetwork(store: ImageStore, network: string, container: string, opts: { aliases?: string[]; ipv4Address?: string } = {}): Promise<void> {
  await containerEngine(store).connectNetwork(container, network, opts)
}

/** `docker network disconnect NETWORK CONTAINER`. */
export async function disconnectNetwork(store: ImageStore, network: string, container: string): Promise<void> {
  await containerEngine(store).disconnectNetwork(container, network)
}
