/**
 * `POST /build` as Docker's classic builder answers it (what `DOCKER_BUILDKIT=0 docker build`,
 * docker-compose v1 and dockerode's buildImage speak): the body is the context tar (plain or
 * compressed), the answer a stream of JSON messages (`{"stream": "Step 1/4 : FROM busybox\n"}`,
 * `{"aux": {"ID": "sha256:…"}}`, and `{"error", "errorDetail"}` for a failure), made from the
 * build's progress events: the build itself is the library's (src/build), as for `cairn build`.
 * `/build/prune` is `cairn builder prune`; `/session` (BuildKit's) is refused in so many words.
 */
import { CairnError, isCairnError } from '../errors/index.js'
import { buildImage, type BuildOptions } from '../build/builder.js'
import { pruneBuildCache } from '../build/cache.js'
import type { BuildEvent } from '../build/events.js'
import type { Credentials } from '../remote/credentials.js'
import { normalizeServer } from '../remote/config.js'
import { errorResponse, HttpError } from './errors.js'
import type { Exchange } from './exchange.js'
import { parseAuthConfig } from './images.js'
import type { Service } from './service.js'
import { filtersOf } from './system.js'

const BUILDKIT_REFUSED = 'BuildKit is not supported by Cairn: use the classic builder (DOCKER_BUILDKIT=0)'

/** A query parameter holding a JSON object of strings (`buildargs`, `labels`); null values are left out, as unset. */
function jsonMap(x: Exchange, name: string): Record<string, string> {
  const raw = x.query.get(name)
  if (raw === null || raw === '' || raw === 'null') return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    throw new HttpError(400, `invalid ${name}: ${raw}`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new HttpError(400, `invalid ${name}: ${raw}`)
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (v === null || v === undefined) continue
    if (typeof v !== 'string') throw new HttpError(400, `invalid ${name}: the value of ${k} is not a string`)
    out[k] = v
  }
  return out
}

/** `X-Registry-Config`: base64 JSON of `{server: AuthConfig}`, for pulling the base images. */
function registryConfig(x: Exchange): Record<string, Credentials> {
  const raw = x.req.headers['x-registry-config']
  if (typeof raw !== 'string' || raw === '') return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(raw.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8'))
  } catch {
    throw new HttpError(400, 'invalid X-Registry-Config header')
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {}
  const out: Record<string, Credentials> = {}
  for (const [server, auth] of Object.entries(parsed as Record<string, unknown>)) {
    const c = parseAuthConfig(auth)
    if (!c || server.trim() === '') continue
    out[normalizeServer(server)] = c
  }
  return out
}

/** The Dockerfile's path inside the context, `/`-separated and relative (Docker reads it there, never outside). */
function dockerfilePath(x: Exchange): string | undefined {
  const raw = x.query.get('dockerfile')
  if (raw === null || raw === '') return undefined
  const parts: string[] = []
  for (const seg of raw.replace(/\\/g, '/').split('/')) {
    if (seg === '' || seg === '.') continue
    if (seg === '..') throw new HttpError(400, `the Dockerfile (${raw}) must be within the build context`)
    parts.push(seg)
  }
  if (parts.length === 0) throw new HttpError(400, `invalid dockerfile path: ${raw}`)
  return parts.join('/')
}

function networkOf(x: Exchange): 'default' | 'none' | 'host' {
  const mode = x.query.get('networkmode') ?? ''
  if (mode === '' || mode === 'default' || mode === 'bridge') return 'default'
  if (mode === 'none' || mode === 'host') return mode
  throw new CairnError('NOT_SUPPORTED', `network mode "${mode}" is not supported for builds by Cairn (default, none, host)`)
}

/** Options the classic builder takes that Cairn's does not honour: refused when set, never silently dropped. */
const UNSUPPORTED = ['remote', 'extrahosts', 'squash', 'memory', 'memswap', 'cpushares', 'cpusetcpus', 'cpusetmems', 'cpuperiod', 'cpuquota', 'shmsize', 'isolation'] as const

function refuseUnsupported(x: Exchange): void {
  for (const name of UNSUPPORTED) {
    const v = x.query.get(name)
    if (v === null || v === '' || v === '0' || v === 'false' || v === 'null' || v === '[]' || (name === 'isolation' && v === 'default')) continue
    throw new CairnError('NOT_SUPPORTED', `build option ${name} is not supported by the API of Cairn yet`)
  }
  const ulimits = x.query.get('ulimits')
  if (ulimits !== null && ulimits !== '' && ulimits !== 'null' && ulimits !== '[]') throw new CairnError('NOT_SUPPORTED', 'build option ulimits is not supported by the API of Cairn yet')
}

/** The exit code the docker CLI should end with: a failed RUN's own, else 1. */
function errorCode(err: unknown): number {
  const detail = isCairnError(err) ? err.detail as { exitCode?: unknown } | undefined : undefined
  return typeof detail?.exitCode === 'number' && detail.exitCode > 0 ? detail.exitCode : 1
}

const short = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12)

export async function build(x: Exchange, s: Service): Promise<void> {
  if (x.query.get('version') === '2') throw new CairnError('NOT_SUPPORTED', BUILDKIT_REFUSED)
  refuseUnsupported(x)
  const quiet = x.flag('q')
  const dockerfile = dockerfilePath(x)
  const target = x.query.get('target') ?? ''
  const platform = x.query.get('platform') ?? ''
  const body = x.body()
  const opts: BuildOptions = {
    context: body,
    ...(dockerfile !== undefined ? { dockerfile } : {}),
    tags: x.query.getAll('t').filter((t) => t !== ''),
    buildArgs: jsonMap(x, 'buildargs'),
    labels: jsonMap(x, 'labels'),
    ...(target !== '' ? { target } : {}),
    noCache: x.flag('nocache'),
    pull: x.flag('pull'),
    ...(platform !== '' ? { platform } : {}),
    network: networkOf(x),
    registryCredentials: registryConfig(x),
  }
  const ac = new AbortController()
  void x.gone.then(() => ac.abort())
  const out = x.jsonStream()
  // with q=1 the messages are kept, and sent only when the build fails (as dockerd does)
  const held: unknown[] = []
  const write = (o: unknown): void => {
    if (quiet) held.push(o)
    else out.write(o)
  }
  // whether the last message ended its line (a step's output may not)
  const at = { lineStart: true }
  const line = (text: string): void => {
    write({ stream: `${at.lineStart ? '' : '\n'}${text}\n` })
    at.lineStart = true
  }
  const wantAux = Number(x.version.split('.')[1] ?? 0) >= 30 || !x.version.startsWith('1.')
  const onProgress = (e: BuildEvent): void => {
    switch (e.type) {
      case 'step':
        line(`Step ${e.ref.step}/${e.ref.total} : ${e.ref.text}`)
        return
      case 'pull': {
        const m: Record<string, unknown> = { status: e.event.status, progressDetail: e.event.current !== undefined ? { current: e.event.current, ...(e.event.total !== undefined ? { total: e.event.total } : {}) } : {} }
        if (e.event.id !== '') m['id'] = e.event.id
        write(m)
        return
      }
      case 'cached':
        line(' ---> Using cache')
        return
      case 'running':
        line(` ---> Running in ${short(e.container)}`)
        return
      case 'output':
        write({ stream: e.data })
        at.lineStart = e.data.endsWith('\n')
        return
      case 'removed':
        line(`Removing intermediate container ${short(e.container)}`)
        return
      case 'done':
        if (e.id.length > 7) line(` ---> ${short(e.id)}`)
        return
      case 'warning':
        line(`[Warning] ${e.message}`)
        return
      case 'built':
        if (wantAux) write({ aux: { ID: e.id } })
        line(`Successfully built ${short(e.id)}`)
        return
      case 'tagged':
        line(`Successfully tagged ${e.name}`)
        return
      default:
    }
  }
  try {
    const res = await buildImage(s.store, { ...opts, signal: ac.signal, onProgress })
    if (quiet) {
      if (wantAux) out.write({ aux: { ID: res.id } })
      out.write({ stream: `${res.id}\n` })
    }
  } catch (err) {
    // what a client sent and the builder did not read is drained, so that the answer reaches it
    body.resume()
    for (const o of held) out.write(o)
    if (!at.lineStart) out.write({ stream: '\n' })
    const { message } = errorResponse(err).body
    out.write({ errorDetail: { code: errorCode(err), message }, error: message })
  }
  out.end()
}

/** `POST /build/prune?all=`: `cairn builder prune`, in Docker's answer. */
export async function prune(x: Exchange, s: Service): Promise<void> {
  const filters = filtersOf(x)
  const keys = Object.keys(filters).filter((k) => (filters[k] ?? []).length > 0)
  if (keys.length > 0) throw new CairnError('NOT_SUPPORTED', `build cache prune filters (${keys.join(', ')}) are not supported by the API of Cairn yet`)
  const ks = x.query.get('keep-storage') ?? x.query.get('reserved-space') ?? ''
  if (ks !== '' && ks !== '0') throw new CairnError('NOT_SUPPORTED', 'build cache prune keep-storage is not supported by the API of Cairn yet')
  const r = await pruneBuildCache(s.store, { all: x.flag('all') })
  const deleted = r.records.flatMap((d) => ('deleted' in d ? [d.deleted] : []))
  x.send(200, { CachesDeleted: deleted.length > 0 ? deleted : null, SpaceReclaimed: r.reclaimed })
}

/** `POST /session`: BuildKit's session, which a classic builder does not have. */
export function session(): never {
  throw new CairnError('NOT_SUPPORTED', BUILDKIT_REFUSED)
}
