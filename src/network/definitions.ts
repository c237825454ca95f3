/**
 * Network definitions: the default bridge (from the config file, never stored), and user
 * networks, one JSON file each under the definitions folder, written atomically. Creating one
 * holds the lease database's write lock, so two `network create` at once never pick the same
 * subnet or name.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { CairnError, isErrno } from '../errors/index.js'
import { writeFileAtomicSync } from '../util/fs.js'
import { formatSubnet, nth, overlaps, parseSubnet, split, type Subnet, contains } from './cidr.js'
import type { NetworkConfig } from './config.js'
import type { Leases } from './ipam.js'
import { DEFAULT_NETWORK, type NetworkDefinition } from './types.js'
import { hostRoutes } from './host.js'

/** Names Docker reserves: `bridge` is the default network; `host` and `none` are modes. */
const PREDEFINED = ['bridge', 'host', 'none'] as const

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/

export interface CreateNetworkOptions {
  name: string
  subnet?: string
  gateway?: string
  internal?: boolean
  labels?: Record<string, string>
  options?: Record<string, string>
}

export class NetworkDefinitions {
  constructor(private readonly cfg: NetworkConfig, private readonly leases: Leases) {}

  /** The default bridge network. */
  defaultNetwork(): NetworkDefinition {
    const s = this.cfg.bip.subnet
    return {
      name: DEFAULT_NETWORK,
      id: createHash('sha256').update(`cairn default bridge ${this.cfg.bridgeName} ${formatSubnet(s)}`).digest('hex'),
      driver: 'bridge',
      created: '1970-01-01T00:00:00Z',
      subnet: formatSubnet(s),
      gateway: this.cfg.bip.gateway,
      internal: false,
      bridge: this.cfg.bridgeName,
      dns: false,
      labels: {},
      options: { 'com.docker.network.bridge.default_bridge': 'true', 'com.docker.network.bridge.name': this.cfg.bridgeName },
    }
  }

  private file(name: string): string {
    return `${this.cfg.definitionsDir}/${name}.json`
  }

  /** User networks (not the default), by name. */
  userNetworks(): NetworkDefinition[] {
    let names: string[]
    try {
      names = readdirSync(this.cfg.definitionsDir)
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return []
      throw err
    }
    const out: NetworkDefinition[] = []
    for (const n of names.sort()) {
      if (!n.endsWith('.json') || n.startsWith('.')) continue
      try {
        out.push(JSON.parse(readFileSync(`${this.cfg.definitionsDir}/${n}`, 'utf8')) as NetworkDefinition)
      } catch {
        // a damaged file is not a network (and not ours to remove)
      }
    }
    return out
  }

  /** The default network, then user networks. */
  list(): NetworkDefinition[] {
    return [this.defaultNetwork(), ...this.userNetworks()]
  }

  /** By name, full ID or unique ID prefix (Docker's lookup order); undefined when none. */
  find(nameOrId: string): NetworkDefinition | undefined {
    const all = this.list()
    const byName = all.find((n) => n.name === nameOrId)
    if (byName) return byName
    const byId = all.find((n) => n.id === nameOrId)
    if (byId) return byId
    if (/^[0-9a-f]+$/.test(nameOrId)) {
      const prefixed = all.filter((n) => n.id.startsWith(nameOrId))
      if (prefixed.length === 1) return prefixed[0]
      if (prefixed.length > 1) throw new CairnError('AMBIGUOUS_REFERENCE', `network ${nameOrId} is ambiguous (${prefixed.length} matches found based on ID prefix)`)
    }
    return undefined
  }

  get(nameOrId: string): NetworkDefinition {
    const n = this.find(nameOrId)
    if (!n) throw new CairnError('NAME_UNKNOWN', `network ${nameOrId} not found`)
    return n
  }

  create(opts: CreateNetworkOptions): NetworkDefinition {
    if (!NAME_RE.test(opts.name)) throw new CairnError('INVALID_ARGUMENT', `invalid network name "${opts.name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`)
    if ((PREDEFINED as readonly string[]).includes(opts.name)) throw new CairnError('CONFLICT', `${opts.name} is a pre-defined network and cannot be created`)
    if (opts.gateway !== undefined && opts.subnet === undefined) throw new CairnError('INVALID_ARGUMENT', 'a gateway needs a --subnet')
    return this.leases.exclusive(() => {
      if (this.find(opts.name)?.name === opts.name) throw new CairnError('CONFLICT', `network with name ${opts.name} already exists`)
      const others = this.list().map((n) => parseSubnet(n.subnet))
      let subnet: Subnet
      if (opts.subnet !== undefined) {
        subnet = parseSubnet(opts.subnet)
        if (subnet.prefix > 30) throw new CairnError('INVALID_ARGUMENT', `invalid subnet ${opts.subnet}: too small for a network (at most /30)`)
        const clash = this.list().find((n) => overlaps(parseSubnet(n.subnet), subnet))
        if (clash) throw new CairnError('CONFLICT', `Pool overlaps with other one on this address space: ${opts.subnet} overlaps network ${clash.name} (${clash.subnet})`)
      } else {
        const routes = hostRoutes()
        const free = this.cfg.pools.flatMap((p) => [...split(p.base, p.size)]).find((c) => !others.some((o) => overlaps(o, c)) && !routes.some((r) => overlaps(r, c)))
        if (!free) throw new CairnError('CONFLICT', 'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network')
        subnet = free
      }
      const gateway = opts.gateway ?? nth(subnet, 1)
      if (!contains(subnet, gateway) || gateway === nth(subnet, 0)) throw new CairnError('INVALID_ARGUMENT', `invalid gateway ${gateway}: not a host address of ${formatSubnet(subnet)}`)
      const id = randomBytes(32).toString('hex')
      const def: NetworkDefinition = {
        name: opts.name,
        id,
        driver: 'bridge',
        created: new Date().toISOString(),
        subnet: formatSubnet(subnet),
        gateway,
        internal: opts.internal ?? false,
        bridge: `cairn-${id.slice(0, 9)}`,
        dns: true,
        labels: { ...(opts.labels ?? {}) },
        options: { ...(opts.options ?? {}) },
      }
      // written under the lock: the next create sees it
      writeFileAtomicSync(this.file(opts.name), `${JSON.stringify(def, null, 2)}\n`)
      return def
    })
  }

  /** Removes a user network's definition (the caller checks that nothing uses it). */
  remove(def: NetworkDefinition): void {
    if (def.name === DEFAULT_NETWORK) throw new CairnError('CONFLICT', `${def.name} is a pre-defined network and cannot be removed`)
    rmSync(this.file(def.name), { force: true })
  }
}
