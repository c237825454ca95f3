/** System endpoints: `/_ping`, `/version`, `/info`, `/events`, `/system/df`, `/auth`. */
import { CairnError } from '../errors/index.js'
import { systemDiskUsage, systemInfo, versionInfo } from '../api/system.js'
import { checkCredentials } from '../api/login.js'
import { checkEventsOptions, streamEvents, type EventsOptions } from '../api/system-events.js'
import { normalizeServer } from '../remote/config.js'
import type { FilterArgs } from '../api/filters.js'
import { HttpError } from './errors.js'
import type { Exchange } from './exchange.js'
import { API_VERSION, MIN_API_VERSION } from './router.js'
import type { Service } from './service.js'
import { containerSummaryJson, imageSummaryJson } from './shapes.js'

/** Docker's `filters` query parameter: JSON of `{key: [values]}` (or the old `{key: {value: true}}`). */
export function filtersOf(x: Exchange): FilterArgs {
  const raw = x.query.get('filters')
  if (raw === null || raw === '') return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    throw new HttpError(400, `invalid filter: ${raw}`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new HttpError(400, `invalid filter: ${raw}`)
  const out: Record<string, string[]> = {}
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (Array.isArray(v)) out[k] = v.map(String)
    else if (typeof v === 'object' && v !== null) out[k] = Object.keys(v).filter((key) => (v as Record<string, unknown>)[key] === true)
    else throw new HttpError(400, `invalid filter: ${raw}`)
  }
  return out
}

function pingHeaders(): Record<string, string> {
  return {
    'API-Version': API_VERSION, 'Docker-Experimental': 'false', OSType: 'linux', 'Builder-Version': '1', Swarm: 'inactive',
    'Cache-Control': 'no-cache, no-store, must-revalidate', Pragma: 'no-cache',
  }
}

export function ping(x: Exchange): void {
  if (x.method === 'HEAD') {
    x.stream(200, 'text/plain; charset=utf-8', { ...pingHeaders(), 'Content-Length': '0' }).end()
    return
  }
  x.text(200, 'OK', pingHeaders())
}

export async function version(x: Exchange): Promise<void> {
  const v = await versionInfo()
  const engine = v.Server.Components.find((c) => c.Name === 'Engine')
  if (engine) engine.Details = { ...engine.Details, ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION }
  x.send(200, { ...v.Server, ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION })
}

export async function info(x: Exchange, s: Service): Promise<void> {
  const i = await systemInfo(s.store)
  x.send(200, {
    ...i,
    Plugins: { Volume: [], Network: ['bridge', 'host', 'null'], Authorization: null, Log: ['json-file'] },
    MemoryLimit: true, SwapLimit: false, CpuCfsPeriod: true, CpuCfsQuota: true, CPUShares: true, CPUSet: true, PidsLimit: true,
    IPv4Forwarding: true, BridgeNfIptables: true, BridgeNfIp6tables: true, Debug: false, NFd: 0, OomKillDisable: false, NGoroutines: 0,
    SystemTime: new Date().toISOString(), NEventsListener: s.eventListeners, Isolation: '', Swarm: { LocalNodeState: 'inactive' },
    GenericResources: null, DefaultAddressPools: [], ContainerdCommit: { ID: '' }, RuncCommit: { ID: '' }, InitCommit: { ID: '' },
  })
}

/**
 * `/events`: the store's event journal (api/system-events.ts), Docker's filters, from `since`
 * (recorded events first), live until `until` or the client leaves.
 */
export async function events(x: Exchange, s: Service): Promise<void> {
  const since = x.query.get('since')
  const until = x.query.get('until')
  const ac = new AbortController()
  const opts: EventsOptions = {
    filters: filtersOf(x),
    ...(since !== null && since !== '' ? { since } : {}),
    ...(until !== null && until !== '' ? { until } : {}),
    signal: ac.signal,
  }
  // a bad filter or time is a 400 before the stream begins
  checkEventsOptions(opts)
  void x.gone.then(() => ac.abort())
  const out = x.jsonStream()
  s.eventListeners++
  try {
    for await (const e of streamEvents(s.store.root, opts)) out.write(e)
  } finally {
    s.eventListeners--
    ac.abort()
    out.end()
  }
}

export async function systemDf(x: Exchange, s: Service): Promise<void> {
  const du = await systemDiskUsage(s.store)
  const types = x.query.getAll('type')
  const want = (t: string): boolean => types.length === 0 || types.includes(t)
  const body: Record<string, unknown> = { LayersSize: du.layersSize }
  if (want('image')) {
    body['Images'] = du.images.map((i) => ({
      ...imageSummaryJson({ id: i.id, repoTags: i.repoTags, repoDigests: [], created: i.created, size: i.size, intermediate: false, containers: i.containers }),
      SharedSize: i.sharedSize, Containers: i.containers,
    }))
  }
  if (want('container')) body['Containers'] = du.containers.map(containerSummaryJson)
  if (want('volume')) body['Volumes'] = du.volumes.map((v) => ({ Name: v.name, Driver: 'local', Mountpoint: '', Labels: {}, Scope: 'local', Options: {}, UsageData: { Size: v.size, RefCount: v.links } }))
  if (want('build-cache')) {
    body['BuildCache'] = du.buildCache.map((b) => ({
      ID: b.id, Parent: '', Parents: null, Type: b.type, Description: '', InUse: b.inUse, Shared: b.shared, Size: b.size,
      CreatedAt: b.created.toISOString(), LastUsedAt: b.lastUsed.toISOString(), UsageCount: b.usageCount,
    }))
    body['BuilderSize'] = du.buildCacheSize
  }
  x.send(200, body)
}

/** `/auth`: checks credentials against the registry (the client keeps them, as with Docker). */
export async function auth(x: Exchange): Promise<void> {
  const raw = await x.json<unknown>()
  if (typeof raw !== 'object' || raw === null) throw new HttpError(400, 'invalid auth configuration')
  const body = raw as { username?: unknown; password?: unknown; serveraddress?: unknown; identitytoken?: unknown; email?: unknown; auth?: unknown }
  const username = typeof body.username === 'string' ? body.username : ''
  const password = typeof body.password === 'string' ? body.password : ''
  const server = typeof body.serveraddress === 'string' && body.serveraddress !== '' ? body.serveraddress : 'https://index.docker.io/v1/'
  if (username === '' || password === '') throw new CairnError('INVALID_ARGUMENT', 'Username and password are required')
  await checkCredentials(normalizeServer(server), { username, password })
  x.send(200, { Status: 'Login Succeeded', IdentityToken: '' })
}
