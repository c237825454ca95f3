/**
 * Image endpoints and `/commit`: the same verbs as the CLI's (api/images, pull, push, save, load,
 * commit), in Docker's JSON. Pull, push and load answer with Docker's stream of JSON messages
 * (`{"status", "id", "progressDetail", "progress"}`, and `{"error", "errorDetail"}` for a failure
 * once the stream has begun), made from the library's progress events.
 */
import { CairnError } from '../errors/index.js'
import { imageHistory, imageLabels, inspectImage, listImages, pruneImages, removeImages, tagImage } from '../api/images.js'
import { pullImage } from '../api/pull.js'
import { pushImage } from '../api/push.js'
import { saveImages } from '../api/save.js'
import { loadImages } from '../api/load.js'
import { importImage } from '../api/import.js'
import { commitContainer } from '../api/commit.js'
import type { ProgressEvent } from '../util/progress.js'
import type { ContainerConfig } from '../oci/types.js'
import type { Credentials } from '../remote/credentials.js'
import { humanSize } from '../util/format.js'
import { errorResponse, HttpError } from './errors.js'
import type { Exchange } from './exchange.js'
import type { Service } from './service.js'
import { imageSummaryJson } from './shapes.js'
import { filtersOf } from './system.js'

const secs = (d: Date): number => Math.floor(d.getTime() / 1000)

/** Docker's `progress` text: a 50-column bar and the sizes. */
function progressBar(current: number, total: number): string {
  const filled = Math.min(50, Math.floor((current / total) * 50))
  const bar = filled >= 50 ? '='.repeat(50) : `${'='.repeat(filled)}>${' '.repeat(50 - filled - 1)}`
  return `[${bar}] ${humanSize(current).padStart(8)}/${humanSize(total)}`
}

export function list(x: Exchange, s: Service): void {
  const images = listImages(s.store, { all: x.flag('all'), filters: filtersOf(x) })
  x.send(200, images.map((i) => {
    const rec = s.store.get(i.id)
    return imageSummaryJson(i, rec ? imageLabels(s.store, rec) : {})
  }))
}

/** Docker's AuthConfig (`username`/`password`, or `auth` as base64 `user:pass`, or `identitytoken`) as credentials; none when empty. */
export function parseAuthConfig(parsed: unknown): Credentials | undefined {
  if (typeof parsed !== 'object' || parsed === null) return undefined
  const a = parsed as Record<string, unknown>
  let username = typeof a['username'] === 'string' ? a['username'] : ''
  let password = typeof a['password'] === 'string' ? a['password'] : ''
  if (username === '' && typeof a['auth'] === 'string' && a['auth'] !== '') {
    const dec = Buffer.from(a['auth'], 'base64').toString('utf8')
    const colon = dec.indexOf(':')
    if (colon > 0) {
      username = dec.slice(0, colon)
      password = dec.slice(colon + 1)
    }
  }
  const token = typeof a['identitytoken'] === 'string' ? a['identitytoken'] : ''
  if (username === '' && token === '') return undefined
  return { username, password, ...(token !== '' ? { identityToken: token } : {}) }
}

/**
 * `X-Registry-Auth`: base64url JSON of Docker's AuthConfig. Empty or `{}` means "whatever
 * Cairn's own credential store holds".
 */
function registryAuth(x: Exchange): Credentials | undefined {
  const raw = x.req.headers['x-registry-auth']
  if (typeof raw !== 'string' || raw === '') return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(raw.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8'))
  } catch {
    throw new HttpError(400, 'invalid X-Registry-Auth header')
  }
  return parseAuthConfig(parsed)
}

/**
 * A JSON-message stream begun lazily: an error before the first message is a plain error answer
 * (404 for an unknown image, as dockerd sends), after it a closing `error` message.
 */
function progressStream(x: Exchange): { onProgress: (e: ProgressEvent) => void; write: (o: unknown) => void; fail: (err: unknown) => void; end: () => void } {
  let out: ReturnType<Exchange['jsonStream']> | undefined
  const open = (): ReturnType<Exchange['jsonStream']> => (out ??= x.jsonStream())
  const write = (o: unknown): void => open().write(o)
  return {
    write,
    onProgress: (e) => {
      const m: Record<string, unknown> = { status: e.status }
      if (e.id !== '') m['id'] = e.id
      if (e.current !== undefined) {
        m['progressDetail'] = { current: e.current, ...(e.total !== undefined ? { total: e.total } : {}) }
        if (e.total !== undefined && e.total > 0 && e.current < e.total) m['progress'] = progressBar(e.current, e.total)
      } else m['progressDetail'] = {}
      write(m)
    },
    fail: (err) => {
      if (!out) throw err
      const { body } = errorResponse(err)
      out.write({ errorDetail: { message: body.message }, error: body.message })
    },
    end: () => open().end(),
  }
}

export async function create(x: Exchange, s: Service): Promise<void> {
  const from = x.query.get('fromImage') ?? ''
  const src = x.query.get('fromSrc') ?? ''
  if (src !== '') return importFrom(x, s, src)
  if (from === '') throw new HttpError(400, 'fromImage or fromSrc is required')
  const tag = x.query.get('tag') ?? ''
  let name = from
  if (tag !== '') name = tag.includes(':') ? `${from}@${tag}` : `${from}:${tag}`
  const platform = x.query.get('platform') ?? ''
  const credentials = registryAuth(x)
  const ac = new AbortController()
  void x.gone.then(() => ac.abort())
  const p = progressStream(x)
  try {
    await pullImage(s.store, name, {
      signal: ac.signal, onProgress: p.onProgress, ...(credentials ? { credentials } : {}), ...(platform !== '' ? { platform } : {}),
    })
  } catch (err) {
    p.fail(err)
  }
  p.end()
}

/**
 * `docker import`: `fromSrc=-` takes the tarball from the body; a URL source is refused (the
 * service fetches nothing on a client's behalf).
 */
async function importFrom(x: Exchange, s: Service, src: string): Promise<void> {
  if (src !== '-') throw new CairnError('NOT_SUPPORTED', 'importing from a URL is not supported by Cairn; send the tarball in the body (fromSrc=-)')
  const repo = x.query.get('repo') ?? ''
  const t = x.query.get('tag') ?? ''
  const changes = x.query.getAll('changes').flatMap((c) => c.split('\n')).filter((c) => c.trim() !== '')
  const message = x.query.get('message') ?? ''
  const platform = x.query.get('platform') ?? ''
  if (platform !== '') throw new CairnError('NOT_SUPPORTED', 'import with a platform is not supported by the API of Cairn yet')
  const body = x.body()
  const ac = new AbortController()
  void x.gone.then(() => ac.abort())
  const p = progressStream(x)
  try {
    const r = await importImage(s.store, body, {
      signal: ac.signal, sourceName: '-', ...(repo !== '' ? { reference: t !== '' ? `${repo}:${t}` : repo } : {}),
      ...(message !== '' ? { message } : {}), ...(changes.length > 0 ? { changes } : {}),
    })
    p.write({ status: r.id })
  } catch (err) {
    body.resume()
    p.fail(err)
  }
  p.end()
}

export async function push(x: Exchange, s: Service): Promise<void> {
  const name = x.params['name'] ?? ''
  const tag = x.query.get('tag') ?? ''
  const ref = tag !== '' ? `${name}:${tag}` : name
  const credentials = registryAuth(x)
  // the image must exist before the stream begins: 404 as dockerd answers
  s.store.resolve(ref.includes(':') || ref.includes('@') ? ref : name)
  const ac = new AbortController()
  void x.gone.then(() => ac.abort())
  const p = progressStream(x)
  try {
    const res = await pushImage(s.store, ref, { signal: ac.signal, onProgress: p.onProgress, allTags: tag === '' && !name.includes(':'), ...(credentials ? { credentials } : {}) })
    for (const t of res.tags) {
      p.write({ progressDetail: {}, aux: { Tag: t.tag, Digest: t.digest, Size: t.size } })
    }
  } catch (err) {
    p.fail(err)
  }
  p.end()
}

export function tag(x: Exchange, s: Service): void {
  const repo = x.query.get('repo') ?? ''
  if (repo === '') throw new HttpError(400, 'repository name (repo) is required')
  const t = x.query.get('tag') ?? ''
  tagImage(s.store, x.params['name'] ?? '', t !== '' ? `${repo}:${t}` : repo)
  x.send(201)
}

export async function remove(x: Exchange, s: Service): Promise<void> {
  const name = x.params['name'] ?? ''
  const res = await removeImages(s.store, [name], { force: x.flag('force'), noPrune: x.flag('noprune') })
  if (res.errors[0]) throw res.errors[0].error
  x.send(200, res.records.map((r) => ('untagged' in r ? { Untagged: r.untagged } : { Deleted: r.deleted })))
}

export async function inspect(x: Exchange, s: Service): Promise<void> {
  x.send(200, await inspectImage(s.store, x.params['name'] ?? ''))
}

export async function history(x: Exchange, s: Service): Promise<void> {
  const name = x.params['name'] ?? ''
  const img = s.store.resolve(name)
  const rows = await imageHistory(s.store, name)
  x.send(200, rows.map((r) => ({
    Id: r.id ?? '<missing>', Created: r.created ? secs(r.created) : 0, CreatedBy: r.createdBy,
    Tags: r.id === img.id ? img.tags : null, Size: r.size, Comment: r.comment,
  })))
}

async function save(x: Exchange, s: Service, names: string[]): Promise<void> {
  if (names.length === 0) throw new HttpError(400, 'no images named')
  for (const n of names) s.store.resolve(n)
  const out = x.stream(200, 'application/x-tar')
  const ac = new AbortController()
  void x.gone.then(() => ac.abort())
  await saveImages(s.store, names, out, { signal: ac.signal }).then(() => out.end(), (err: unknown) => out.destroy(err as Error))
}

export const get = (x: Exchange, s: Service): Promise<void> => save(x, s, x.query.getAll('names'))
export const getOne = (x: Exchange, s: Service): Promise<void> => save(x, s, [x.params['name'] ?? ''])

export async function load(x: Exchange, s: Service): Promise<void> {
  const body = x.body()
  let res
  try {
    res = await loadImages(s.store, body)
  } catch (err) {
    body.resume()
    throw err
  }
  const out = x.jsonStream()
  for (const i of res.images) {
    if (i.tags.length === 0) out.write({ stream: `Loaded image ID: ${i.id}\n` })
    for (const t of i.tags) out.write({ stream: `Loaded image: ${t}\n` })
  }
  out.end()
}

export async function prune(x: Exchange, s: Service): Promise<void> {
  const f = filtersOf(x)
  const dangling = f['dangling']?.[0]
  const r = await pruneImages(s.store, { all: dangling === 'false' || dangling === '0', filters: f })
  x.send(200, {
    ImagesDeleted: r.records.length > 0 ? r.records.map((d) => ('untagged' in d ? { Untagged: d.untagged } : { Deleted: d.deleted })) : null,
    SpaceReclaimed: r.reclaimed,
  })
}

export function search(): void {
  throw new CairnError('NOT_SUPPORTED', 'search is not supported by Cairn: registries have no search API; browse the registry instead')
}

/** Whether a JSON value is a list of strings. */
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((e) => typeof e === 'string')
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * The container config of a commit's body, as Docker's decoder reads it: keys matched without
 * regard to case, null as unset, `Cmd`/`Entrypoint` a list or one string; fields of the config
 * an image does not keep (Hostname, Tty, …) and unknown keys (dockerode also sends its query
 * options in the body) are left out. Undefined when the body sets nothing.
 */
function commitBodyConfig(body: Record<string, unknown>): ContainerConfig | undefined {
  const fields = new Map<string, unknown>()
  for (const [k, v] of Object.entries(body)) if (v !== null && v !== undefined) fields.set(k.toLowerCase(), v)
  const bad = (name: string, want: string): never => {
    throw new HttpError(400, `commit: ${name} must be ${want}`)
  }
  const out: ContainerConfig = {}
  for (const name of ['User', 'WorkingDir', 'StopSignal'] as const) {
    const v = fields.get(name.toLowerCase())
    if (v === undefined) continue
    if (typeof v !== 'string') bad(name, 'a string')
    out[name] = v as string
  }
  for (const name of ['Cmd', 'Entrypoint', 'Env', 'OnBuild', 'Shell'] as const) {
    const v = fields.get(name.toLowerCase())
    if (v === undefined) continue
    if (typeof v === 'string' && (name === 'Cmd' || name === 'Entrypoint')) out[name] = [v]
    else if (isStrings(v)) out[name] = v
    else bad(name, 'a list of strings')
  }
  for (const name of ['ExposedPorts', 'Volumes'] as const) {
    const v = fields.get(name.toLowerCase())
    if (v === undefined) continue
    if (!isObject(v)) bad(name, 'an object')
    out[name] = Object.fromEntries(Object.keys(v as object).map((k) => [k, {}]))
  }
  const labels = fields.get('labels')
  if (labels !== undefined) {
    if (!isObject(labels) || !Object.values(labels).every((l) => typeof l === 'string')) bad('Labels', 'an object of strings')
    out.Labels = labels as Record<string, string>
  }
  const hc = fields.get('healthcheck')
  if (hc !== undefined) {
    if (!isObject(hc)) bad('Healthcheck', 'an object')
    const h = hc as Record<string, unknown>
    const check: NonNullable<ContainerConfig['Healthcheck']> = {}
    if (h['Test'] !== undefined && h['Test'] !== null) check.Test = isStrings(h['Test']) ? h['Test'] : bad('Healthcheck.Test', 'a list of strings')
    for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'] as const) {
      const n = h[k]
      if (n === undefined || n === null) continue
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) bad(`Healthcheck.${k}`, 'a whole number')
      check[k] = n as number
    }
    out.Healthcheck = check
  }
  const escaped = fields.get('argsescaped')
  if (escaped !== undefined) out.ArgsEscaped = escaped === true
  return Object.keys(out).length > 0 ? out : undefined
}

/**
 * `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`; the body, when it has
 * one, is a container config: `changes` apply to it and the container's own settings fill what
 * it leaves unset, as Docker merges them.
 */
export async function commit(x: Exchange, s: Service): Promise<void> {
  const container = x.query.get('container') ?? ''
  if (container === '') throw new HttpError(400, 'container is required')
  const body = await x.json<unknown>(null)
  if (body !== null && !isObject(body)) throw new HttpError(400, 'commit: a container config object expected')
  const config = body !== null ? commitBodyConfig(body) : undefined
  const repo = x.query.get('repo') ?? ''
  const t = x.query.get('tag') ?? ''
  const changes = x.query.getAll('changes').flatMap((c) => c.split('\n')).filter((c) => c.trim() !== '')
  const comment = x.query.get('comment') ?? ''
  const author = x.query.get('author') ?? ''
  const r = await commitContainer(s.store, container, {
    ...(repo !== '' ? { reference: t !== '' ? `${repo}:${t}` : repo } : {}),
    ...(comment !== '' ? { message: comment } : {}), ...(author !== '' ? { author } : {}),
    ...(changes.length > 0 ? { changes } : {}), ...(config ? { config } : {}), pause: x.flag('pause', true),
  })
  x.send(201, { Id: r.id })
}
