/**
 * Where networks live and what they default to. Networks are the host's, not a store's: the
 * bridges, addresses and firewall rules they configure are shared by every store on the machine,
 * as Docker's belong to its one daemon. Definitions are JSON files (`/etc/cairn/networks/`);
 * leases and the resolver's state are runtime state (`/run/cairn/network/`), gone at reboot,
 * when nothing they describe survives either.
 *
 * From Cairn's config file (`$CAIRN_CONFIG`, else /etc/cairn/config.json), Docker's keys:
 *
 *   { "bip": "10.77.0.1/16",
 *     "default-address-pools": [{ "base": "10.78.0.0/16", "size": 24 }] }
 *
 * `bip` is the default bridge's gateway and subnet; the pools give user networks created
 * without `--subnet` a free subnet each (one that no other network and no host route overlaps).
 */
import { readFileSync } from 'node:fs'
import { CairnError, isErrno } from '../errors/index.js'
import { formatSubnet, parseSubnet, type Subnet } from './cidr.js'

const DEFAULT_CONFIG_FILE = '/etc/cairn/config.json'

export interface NetworkConfig {
  /** The default bridge: gateway address and prefix. */
  bip: { gateway: string; subnet: Subnet }
  /** Pools user networks' subnets come from. */
  pools: { base: Subnet; size: number }[]
  /** The default bridge's Linux name. */
  bridgeName: string
  /** Network definitions. */
  definitionsDir: string
  /** Leases, the resolver's files, locks. */
  runDir: string
}

const DEFAULTS = {
  bip: '10.77.0.1/16',
  pools: [{ base: '10.78.0.0/16', size: 24 }],
  bridgeName: 'cairn0',
  definitionsDir: '/etc/cairn/networks',
  runDir: '/run/cairn/network',
} as const

export function loadNetworkConfig(path: string = process.env['CAIRN_CONFIG'] ?? DEFAULT_CONFIG_FILE): NetworkConfig {
  let raw: Record<string, unknown> = {}
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw new CairnError('INVALID_ARGUMENT', `${path}: ${(err as Error).message}`, { cause: err })
  }
  const bipText = typeof raw['bip'] === 'string' ? raw['bip'] : DEFAULTS.bip
  const bipSubnet = parseSubnet(bipText, { loose: true })
  const gateway = bipText.slice(0, bipText.indexOf('/'))
  if (bipSubnet.prefix > 30) throw new CairnError('INVALID_ARGUMENT', `${path}: bip ${bipText}: the subnet is too small`)
  let pools: NetworkConfig['pools'] = DEFAULTS.pools.map((p) => ({ base: parseSubnet(p.base), size: p.size }))
  const rawPools = raw['default-address-pools']
  if (rawPools !== undefined) {
    if (!Array.isArray(rawPools)) throw new CairnError('INVALID_ARGUMENT', `${path}: default-address-pools must be a list of { "base": CIDR, "size": N }`)
    pools = rawPools.map((p: unknown) => {
      const o = p as { base?: unknown; size?: unknown }
      if (typeof o.base !== 'string' || typeof o.size !== 'number' || !Number.isInteger(o.size)) {
        throw new CairnError('INVALID_ARGUMENT', `${path}: default-address-pools must be a list of { "base": CIDR, "size": N }`)
      }
      const base = parseSubnet(o.base)
      if (o.size < base.prefix || o.size > 30) throw new CairnError('INVALID_ARGUMENT', `${path}: pool ${formatSubnet(base)}: size ${o.size} must be between ${base.prefix} and 30`)
      return { base, size: o.size }
    })
  }
  return {
    bip: { gateway, subnet: bipSubnet },
    pools,
    bridgeName: typeof raw['bridge-name'] === 'string' ? raw['bridge-name'] : DEFAULTS.bridgeName,
    definitionsDir: typeof raw['network-config-dir'] === 'string' ? raw['network-config-dir'] : DEFAULTS.definitionsDir,
    runDir: DEFAULTS.runDir,
  }
}
