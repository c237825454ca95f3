/**
 * The token endpoint of the Docker token authentication protocol, as Docker Hub and distribution's
 * token servers speak it:
 *
 *   GET /token?service=S&scope=repository:team/app:pull,push[&account=U]   (Basic auth, or anonymous)
 *   POST /token  grant_type=password&username=U&password=P&service=S&scope=…  (OAuth2 form)
 *
 * The answer is `{ token, access_token, expires_in, issued_at }`: a JWT whose `access` claim holds, for
 * each requested repository, the requested actions the access rules grant (possibly none). Wrong
 * credentials are a 401; a denied scope is not an error, it is left out of the token, and the registry
 * then refuses the request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { isNameValid } from '../oci/reference.js'
import { ALL_ACTIONS, isAction, type AccessPolicy, type Identity } from './access.js'
import { parseBasic, parseScopes, type Htpasswd, type ResourceAccess, type TokenSigner } from './auth.js'

export interface TokenServiceOptions {
  signer: TokenSigner
  /** The registry's service name: the tokens' audience. */
  service: string
  /** Token lifetime (default 300 s). */
  ttlSeconds?: number
  /** Users and their passwords; without it only anonymous tokens are issued. */
  htpasswd?: Htpasswd
  policy: AccessPolicy
}

export interface TokenResult {
  status: number
  headers: Record<string, string>
  body: unknown
  /** The authenticated user (undefined for anonymous), for the access log. */
  user?: string
}

const FORM_LIMIT = 64 << 10

export class TokenService {
  private readonly ttl: number

  constructor(private readonly opts: TokenServiceOptions) {
    this.ttl = opts.ttlSeconds ?? 300
  }

  /** Answers one request to the token endpoint. */
  async handle(req: IncomingMessage, url: URL): Promise<TokenResult> {
    let scopes: string[]
    let creds: { user: string; password: string } | undefined
    if (req.method === 'POST') {
      const form = await readForm(req)
      if (form === undefined) return oauthError(400, 'invalid_request', 'expected an application/x-www-form-urlencoded body')
      const grant = form.get('grant_type')
      if (grant !== 'password') return oauthError(400, 'unsupported_grant_type', 'only grant_type=password is supported')
      const user = form.get('username') ?? ''
      creds = { user, password: form.get('password') ?? '' }
      scopes = form.getAll('scope')
    } else if (req.method === 'GET' || req.method === 'HEAD') {
      scopes = url.searchParams.getAll('scope')
      creds = parseBasic(req.headers.authorization)
      if (req.headers.authorization !== undefined && creds === undefined) return this.unauthorized('malformed credentials')
    } else {
      return { status: 405, headers: { Allow: 'GET, POST' }, body: { errors: [{ code: 'UNSUPPORTED', message: 'method not allowed' }] } }
    }
    const who: Identity = {}
    if (creds !== undefined) {
      const ok = this.opts.htpasswd !== undefined && (await this.opts.htpasswd.verify(creds.user, creds.password))
      if (!ok) return this.unauthorized('invalid username or password')
      who.user = creds.user
    }
    const access = this.grant(who, scopes)
    const { token, claims } = this.opts.signer.sign(who.user ?? '', this.opts.service, access, this.ttl)
    const body = {
      token,
      access_token: token,
      expires_in: this.ttl,
      issued_at: new Date(claims.iat * 1000).toISOString(),
    }
    const res: TokenResult = { status: 200, headers: { 'Cache-Control': 'no-store' }, body }
    if (who.user !== undefined) res.user = who.user
    return res
  }

  /** What `who` gets of what it asked for. */
  grant(who: Identity, scopes: readonly string[]): ResourceAccess[] {
    const out: ResourceAccess[] = []
    for (const s of parseScopes(scopes)) {
      if (s.type === 'repository') {
        if (!isNameValid(s.name)) continue
        const allowed = this.opts.policy.allowed(who, s.name)
        const wanted = s.actions.flatMap((a) => (a === '*' ? [...ALL_ACTIONS] : [a])).filter(isAction)
        const actions = [...new Set(wanted.filter((a) => allowed.has(a)))]
        out.push({ type: 'repository', name: s.name, actions })
      } else if (s.type === 'registry' && s.name === 'catalog') {
        out.push({ type: 'registry', name: 'catalog', actions: who.user !== undefined ? ['*'] : [] })
      }
    }
    return out
  }

  private unauthorized(message: string): TokenResult {
    return {
      status: 401,
      headers: { 'WWW-Authenticate': `Basic realm=${JSON.stringify(this.opts.service)}` },
      body: { errors: [{ code: 'UNAUTHORIZED', message }] },
    }
  }
}

function oauthError(status: number, error: string, description: string): TokenResult {
  return { status, headers: {}, body: { error, error_description: description } }
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase()
  if (type !== 'application/x-www-form-urlencoded') return undefined
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length
    if (total > FORM_LIMIT) return undefined
    chunks.push(chunk)
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
}

/** Writes a TokenResult as JSON. */
export function sendTokenResult(res: ServerResponse, r: TokenResult, head: boolean): void {
  const body = Buffer.from(JSON.stringify(r.body))
  res.writeHead(r.status, { ...r.headers, 'Content-Type': 'application/json', 'Content-Length': String(body.length) })
  res.end(head ? undefined : body)
}
