/** Network endpoints: the same verbs as `cairn network` (api/networks.ts), in Docker's JSON. */
import { connectNetwork, createNetwork, disconnectNetwork, inspectNetwork, listNetworks, pruneNetworks, removeNetwork } from '../api/networks.js'
import { CairnError, hasCode } from '../errors/index.js'
import { HttpError } from './errors.js'
import type { Exchange } from './exchange.js'
import type { Service } from './service.js'
import { filtersOf } from './system.js'

const CREATE_FIELDS = new Set(['Name', 'CheckDuplicate', 'Driver', 'Scope', 'Internal', 'Attachable', 'Ingress', 'ConfigOnly', 'ConfigFrom', 'IPAM', 'EnableIPv6', 'EnableIPv4', 'Options', 'Labels'])

function strMap(v: unknown, what: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'object' || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string')) throw new HttpError(400, `${what}: an object of strings expected`)
  return v as Record<string, string>
}

export function list(x: Exchange): void {
  x.send(200, listNetworks({ filters: filtersOf(x) }))
}

export async function inspect(x: Exchange, s: Service): Promise<void> {
  x.send(200, await inspectNetwork(s.store, x.params['id'] ?? ''))
}

export async function create(x: Exchange): Promise<void> {
  const raw = await x.json<unknown>()
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new HttpError(400, 'network configuration: an object expected')
  const b = raw as Record<string, unknown>
  for (const k of Object.keys(b)) if (!CREATE_FIELDS.has(k)) throw new HttpError(400, `json: unknown field ${JSON.stringify(k)} in network configuration`)
  const name = typeof b['Name'] === 'string' ? b['Name'] : ''
  if (name === '') throw new HttpError(400, 'network name is required')
  if (b['EnableIPv6'] === true) throw new CairnError('NOT_SUPPORTED', 'IPv6 networks are not supported by Cairn yet')
  const ipam = b['IPAM'] as { Config?: { Subnet?: string; Gateway?: string }[] } | undefined | null
  const cfg = ipam?.Config?.[0]
  const labels = strMap(b['Labels'], 'Labels')
  const options = strMap(b['Options'], 'Options')
  const driver = typeof b['Driver'] === 'string' && b['Driver'] !== '' ? b['Driver'] : undefined
  const n = createNetwork({
    name, ...(driver ? { driver } : {}), ...(b['Internal'] === true ? { internal: true } : {}), ...(labels ? { labels } : {}), ...(options ? { options } : {}),
    ...(cfg?.Subnet ? { subnet: cfg.Subnet } : {}), ...(cfg?.Gateway ? { gateway: cfg.Gateway } : {}),
  })
  x.send(201, { Id: n.Id, Warning: '' })
}

export async function remove(x: Exchange): Promise<void> {
  await removeNetwork(x.params['id'] ?? '')
  x.send(204)
}

async function endpointBody(x: Exchange): Promise<{ container: string; aliases: string[]; ip: string; force: boolean }> {
  const raw = await x.json<unknown>()
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new HttpError(400, 'an object expected')
  const b = raw as Record<string, unknown>
  const container = typeof b['Container'] === 'string' ? b['Container'] : ''
  if (container === '') throw new HttpError(400, 'Container is required')
  const ep = (b['EndpointConfig'] ?? {}) as { Aliases?: unknown; IPAMConfig?: { IPv4Address?: unknown } | null }
  const aliases = Array.isArray(ep.Aliases) ? ep.Aliases.filter((a): a is string => typeof a === 'string' && a !== '') : []
  const ip = typeof ep.IPAMConfig?.IPv4Address === 'string' ? ep.IPAMConfig.IPv4Address : ''
  return { container, aliases, ip, force: b['Force'] === true }
}

export async function connect(x: Exchange, s: Service): Promise<void> {
  const e = await endpointBody(x)
  await connectNetwork(s.store, x.params['id'] ?? '', e.container, { ...(e.aliases.length > 0 ? { aliases: e.aliases } : {}), ...(e.ip !== '' ? { ipv4Address: e.ip } : {}) })
  x.send(200)
}

export async function disconnect(x: Exchange, s: Service): Promise<void> {
  const e = await endpointBody(x)
  try {
    await disconnectNetwork(s.store, x.params['id'] ?? '', e.container)
  } catch (err) {
    if (!(e.force && hasCode(err, 'NAME_UNKNOWN'))) throw err
  }
  x.send(200)
}

export async function prune(x: Exchange): Promise<void> {
  const removed = await pruneNetworks({ filters: filtersOf(x) })
  x.send(200, { NetworksDeleted: removed.length > 0 ? removed : null })
}
