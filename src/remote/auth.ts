/**
 * Registry authentication as the distribution spec and Docker do it: a request answered 401
 * carries a `WWW-Authenticate` challenge; `Basic` wants the credentials on every request,
 * `Bearer realm=…,service=…,scope=…` wants a token from the realm (fetched with the
 * credentials, or anonymously), cached per scope set until it expires.
 */
import { CairnError } from '../errors/index.js'
import type { Credentials } from './credentials.js'
import { networkError, registryError } from './errors.js'
import type { Transport } from './http.js'

export interface Challenge {
  scheme: string
  params: Record<string, string>
}

/** Parses a WWW-Authenticate header (one or more challenges, quoted or token values). */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = []
  let i = 0
  const s = header
  const skipWs = (): void => {
    while (i < s.length && /[\s,]/.test(s[i] ?? '')) i++
  }
  const token = (): string => {
    const start = i
    while (i < s.length && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(s[i] ?? '')) i++
    return s.slice(start, i)
  }
  while (i < s.length) {
    skipWs()
    const scheme = token()
    if (scheme === '') break
    const params: Record<string, string> = {}
    for (;;) {
      while (i < s.length && /[ \t]/.test(s[i] ?? '')) i++
      const save = i
      const name = token()
      while (i < s.length && /[ \t]/.test(s[i] ?? '')) i++
      if (name === '' || s[i] !== '=') {
        i = save
        break
      }
      i++
      while (i < s.length && /[ \t]/.test(s[i] ?? '')) i++
      let value = ''
      if (s[i] === '"') {
        i++
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++
          value += s[i]
          i++
        }
        i++
      } else {
        value = token()
      }
      params[name.toLowerCase()] = value
      while (i < s.length && /[ \t]/.test(s[i] ?? '')) i++
      if (s[i] === ',') {
        i++
        continue
      }
      break
    }
    out.push({ scheme: scheme.toLowerCase(), params })
  }
  return out
}

/** `repository:<name>:<actions>` */
export function repositoryScope(name: string, actions: readonly string[]): string {
  return `repository:${name}:${actions.join(',')}`
}

/** Merges scopes naming the same resource (`repository:a:pull` + `repository:a:push` → `repository:a:pull,push`). */
export function mergeScopes(scopes: readonly string[]): string[] {
  const byResource = new Map<string, Set<string>>()
  for (const sc of scopes) {
    const last = sc.lastIndexOf(':')
    if (last < 0) continue
    const resource = sc.slice(0, last)
    const set = byResource.get(resource) ?? new Set<string>()
    for (const a of sc.slice(last + 1).split(',')) if (a) set.add(a)
    byResource.set(resource, set)
  }
  return [...byResource.entries()].map(([r, a]) => `${r}:${[...a].sort().join(',')}`).sort()
}

interface CachedToken {
  token: string
  expires: number
}

export class Authorizer {
  private challenge: Challenge | undefined
  private readonly tokens = new Map<string, CachedToken>()

  constructor(
    private readonly transport: Transport,
    private readonly credentials: () => Promise<Credentials | undefined>,
  ) {}

  /** Learns the registry's challenge from a 401 response; returns whether anything changed. */
  learn(header: string | undefined): boolean {
    if (header === undefined) return false
    const all = parseChallenges(header)
    const c = all.find((x) => x.scheme === 'bearer') ?? all.find((x) => x.scheme === 'basic')
    if (!c) return false
    const before = JSON.stringify(this.challenge)
    this.challenge = c
    return before !== JSON.stringify(c)
  }

  get scheme(): string | undefined {
    return this.challenge?.scheme
  }

  /** Forgets cached tokens for these scopes (after a 401 with a token). */
  invalidate(scopes: readonly string[]): void {
    this.tokens.delete(mergeScopes(scopes).join(' '))
  }

  /** The Authorization header for a request needing `scopes`, or undefined (anonymous, or no challenge yet). */
  async header(scopes: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
    const c = this.challenge
    if (!c) return undefined
    if (c.scheme === 'basic') {
      const creds = await this.credentials()
      if (!creds) return undefined
      return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`
    }
    if (c.scheme !== 'bearer') return undefined
    const merged = mergeScopes(scopes)
    const key = merged.join(' ')
    const cached = this.tokens.get(key)
    if (cached && cached.expires > Date.now()) return `Bearer ${cached.token}`
    const token = await this.fetchToken(c, merged, await this.credentials(), signal)
    this.tokens.set(key, token)
    return `Bearer ${token.token}`
  }

  /**
   * Fetches a token from the challenge's realm: with a refresh (identity) token by POST, else by
   * GET with Basic credentials (or anonymously). UNAUTHORIZED when the realm refuses.
   */
  async fetchToken(c: Challenge, scopes: readonly string[], creds: Credentials | undefined, signal?: AbortSignal): Promise<CachedToken> {
    const realm = c.params['realm']
    if (!realm) throw new CairnError('UNAUTHORIZED', 'the registry asked for a bearer token but named no realm')
    let url: URL
    try {
      url = new URL(realm)
    } catch {
      throw new CairnError('UNAUTHORIZED', `invalid token realm ${JSON.stringify(realm)}`)
    }
    const service = c.params['service']
    const what = `token from ${url.origin}${url.pathname}`
    let res
    try {
      if (creds?.identityToken) {
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'cairn' })
        if (service) form.set('service', service)
        if (scopes.length > 0) form.set('scope', scopes.join(' '))
        res = await this.transport.request({
          method: 'POST', url, body: Buffer.from(form.toString()),
          headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, ...(signal ? { signal } : {}),
        })
      } else {
        if (service) url.searchParams.set('service', service)
        for (const sc of scopes) url.searchParams.append('scope', sc)
        const headers: Record<string, string> = {}
        if (creds && creds.username !== '') {
          url.searchParams.set('account', creds.username)
          url.searchParams.set('client_id', 'cairn')
          headers['Authorization'] = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`
        }
        res = await this.transport.request({ method: 'GET', url, headers, ...(signal ? { signal } : {}) })
      }
      const text = await res.text()
      if (res.status !== 200) {
        const err = registryError(res.status, text, `get ${what}`, 'token')
        if (res.status === 401 || res.status === 403) {
          throw new CairnError('UNAUTHORIZED', creds ? 'unauthorized: incorrect username or password' : `unauthorized: ${err.message}`, { detail: err.detail })
        }
        throw err
      }
      let parsed: unknown
      try {
        parsed = JSON.parse(text)
      } catch {
        throw new CairnError('UNAUTHORIZED', `${what}: the answer is not JSON`)
      }
      // any JSON parses (null, a number, a list): only an object's string fields are taken
      const body = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed as Record<string, unknown> : {}
      const token = [body['token'], body['access_token']].find((t): t is string => typeof t === 'string' && t !== '')
      if (token === undefined) throw new CairnError('UNAUTHORIZED', `${what}: the answer holds no token`)
      // the spec's default lifetime is 60 s; renew a little early
      const expiresIn = typeof body['expires_in'] === 'number' && Number.isFinite(body['expires_in']) ? body['expires_in'] : 60
      const lifetime = Math.max(10, expiresIn - 5)
      return { token, expires: Date.now() + lifetime * 1000 }
    } catch (err) {
      throw networkError(err, what)
    }
  }
}
