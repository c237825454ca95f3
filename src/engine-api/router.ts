/**
 * The Engine API's routes: method, path pattern (`{name}` segments; `{name*}` takes the rest, for
 * image names with slashes), how fully Cairn serves it, and the handler. The table is also the
 * source of the README's endpoint table (`endpointTable()`; test/engine-api/router.test.ts fails
 * when the README's copy is stale). Version prefixes (`/v1.41/…`) are stripped and checked here.
 */
import { HttpError } from './errors.js'
import type { Exchange } from './exchange.js'
import type { Service } from './service.js'

/** The newest API version served (Docker 28.2's), and the oldest accepted (as dockerd 28 accepts). */
export const API_VERSION = '1.50'
export const MIN_API_VERSION = '1.24'

export type Support = 'supported' | 'partial' | 'not yet'

export interface Route {
  method: string
  path: string
  support: Support
  /** What is missing when partial or not yet. */
  note?: string
  handler: (x: Exchange, s: Service) => Promise<void> | void
}

interface Compiled extends Route {
  re: RegExp
  names: string[]
}

function compile(r: Route): Compiled {
  const names: string[] = []
  const src = r.path.split('/').map((seg) => {
    const m = /^\{(\w+)(\*)?\}$/.exec(seg)
    if (!m) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    names.push(m[1] as string)
    return m[2] ? '(.+)' : '([^/]+)'
  }).join('/')
  return { ...r, re: new RegExp(`^${src}$`), names }
}

function versionNumber(v: string): number {
  const [a = '0', b = '0'] = v.split('.')
  return Number(a) * 1000 + Number(b)
}

export class Router {
  private readonly routes: Compiled[]

  constructor(readonly table: readonly Route[]) {
    this.routes = table.map(compile)
  }

  /**
   * Finds the route of a request and fills `x.path`, `x.version`, `x.params`. 404 for an unknown
   * path, 405 for a known path with another method, 400 for an unsupported version or a path
   * with `..` or NUL in it.
   */
  match(x: Exchange): Compiled {
    const raw = (x.req.url ?? '/').split('?')[0] ?? '/'
    let path = raw
    const vm = /^\/v(\d+\.\d+)(\/.*)$/.exec(raw)
    if (vm) {
      const v = vm[1] as string
      if (versionNumber(v) > versionNumber(API_VERSION)) throw new HttpError(400, `client version ${v} is too new. Maximum supported API version is ${API_VERSION}`)
      if (versionNumber(v) < versionNumber(MIN_API_VERSION)) throw new HttpError(400, `client version ${v} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`)
      x.version = v
      path = vm[2] as string
    } else x.version = API_VERSION
    let decoded: string[]
    try {
      decoded = path.split('/').map((s) => decodeURIComponent(s))
    } catch {
      throw new HttpError(400, `invalid path: ${JSON.stringify(path)}`)
    }
    if (decoded.some((s) => s.includes('\0'))) throw new HttpError(400, 'invalid path')
    x.path = decoded.join('/')
    let pathKnown = false
    for (const r of this.routes) {
      const m = r.re.exec(x.path)
      if (!m) continue
      pathKnown = true
      if (r.method !== x.method && !(r.method === 'GET' && x.method === 'HEAD' && !this.routes.some((o) => o.method === 'HEAD' && o.re.test(x.path)))) continue
      x.params = Object.fromEntries(r.names.map((n, i) => [n, m[i + 1] as string]))
      return r
    }
    if (pathKnown) throw new HttpError(405, `method ${x.method} not allowed for ${x.path}`)
    throw new HttpError(404, `page not found`)
  }
}

/** The README's table: every endpoint with its support level, generated from the routes. */
export function endpointTable(table: readonly Route[]): string {
  const rows = ['| Endpoint | Support | Notes |', '|---|---|---|']
  for (const r of table) rows.push(`| \`${r.method} ${r.path.replace(/\*\}/g, '}')}\` | ${r.support} | ${r.note ?? ''} |`)
  return `${rows.join('\n')}\n`
}
