/**
 * Authentication: htpasswd files (bcrypt) for Basic auth, and signed JWTs (ES256 or RS256, with
 * node:crypto) for token auth, in the shape Docker Hub and distribution use: an `access` claim listing
 * `{ type: "repository", name, actions }`, audience = the registry's service name.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import bcrypt from 'bcryptjs'
import { CairnError } from '../errors/index.js'
import { isAction, type Action } from './access.js'

// ---------------------------------------------------------------------------------------------
// htpasswd

const BCRYPT_RE = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/
/** A valid hash that matches nothing, compared against for unknown users so that timing reveals nothing. */
const DUMMY_HASH = '$2b$10$CwTycUXWue0Thq9StjUM0uJ8.7N4fZ9nWq4n8pQy6sYl1dPZ/0Sx.'
const CACHE_TTL_MS = 5 * 60_000
const CACHE_MAX = 10_000
const RELOAD_CHECK_MS = 2_000

/**
 * An htpasswd file of bcrypt entries (`user:$2y$…`, as `htpasswd -B` writes them). Reloaded when the
 * file changes. Successful checks are remembered for a few minutes (keyed by a hash of user, password and
 * stored hash), since clients send Basic credentials with every request and bcrypt is slow on purpose.
 */
export class Htpasswd {
  private entries = new Map<string, string>()
  private readonly cache = new Map<string, number>()
  private mtimeMs = -1
  private lastCheck = 0
  private reloading: Promise<void> | undefined

  private constructor(private readonly path: string | undefined) {}

  static async load(path: string): Promise<Htpasswd> {
    const h = new Htpasswd(path)
    await h.reload()
    return h
  }

  static parse(text: string): Htpasswd {
    const h = new Htpasswd(undefined)
    h.entries = parseHtpasswd(text, '<inline>')
    return h
  }

  get users(): string[] {
    return [...this.entries.keys()]
  }

  async verify(user: string, password: string): Promise<boolean> {
    await this.maybeReload()
    const hash = this.entries.get(user)
    const key = createHash('sha256').update(`${user}\0${password}\0${hash ?? ''}`).digest('hex')
    const until = this.cache.get(key)
    const now = Date.now()
    if (hash !== undefined && until !== undefined && until > now) return true
    const ok = await bcrypt.compare(password, hash ?? DUMMY_HASH)
    if (ok && hash !== undefined) {
      if (this.cache.size >= CACHE_MAX) this.cache.clear()
      this.cache.set(key, now + CACHE_TTL_MS)
      return true
    }
    return false
  }

  private async maybeReload(): Promise<void> {
    if (this.path === undefined) return
    const now = Date.now()
    if (now - this.lastCheck < RELOAD_CHECK_MS) return
    this.lastCheck = now
    this.reloading ??= this.reload().finally(() => {
      this.reloading = undefined
    })
    await this.reloading
  }

  private async reload(): Promise<void> {
    if (this.path === undefined) return
    const st = await stat(this.path).catch((err: unknown) => {
      throw new CairnError('INVALID_ARGUMENT', `cannot read htpasswd file ${this.path}: ${(err as Error).message}`)
    })
    if (st.mtimeMs === this.mtimeMs) return
    const text = await readFile(this.path, 'utf8')
    this.entries = parseHtpasswd(text, this.path)
    this.mtimeMs = st.mtimeMs
    this.cache.clear()
  }
}

function parseHtpasswd(text: string, where: string): Map<string, string> {
  const out = new Map<string, string>()
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim()
    if (line === '' || line.startsWith('#')) continue
    const colon = line.indexOf(':')
    if (colon <= 0) throw new CairnError('INVALID_ARGUMENT', `${where}:${i + 1}: expected user:hash`)
    const user = line.slice(0, colon)
    const hash = line.slice(colon + 1)
    if (!BCRYPT_RE.test(hash)) {
      throw new CairnError('INVALID_ARGUMENT', `${where}:${i + 1}: user ${user}: only bcrypt hashes are supported (htpasswd -B)`)
    }
    out.set(user, hash)
  }
  return out
}

/** An htpasswd line for `user` (bcrypt, cost 10 by default). */
export async function htpasswdLine(user: string, password: string, cost = 10): Promise<string> {
  if (user === '' || user.includes(':') || /\s/.test(user)) throw new CairnError('INVALID_ARGUMENT', `invalid user name ${JSON.stringify(user)}`)
  return `${user}:${await bcrypt.hash(password, cost)}`
}

/** Reads `Authorization: Basic …`; undefined when absent or malformed. */
export function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  if (header === undefined) return undefined
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header)
  if (!m) return undefined
  const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon <= 0) return undefined
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

export function parseBearer(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const m = /^Bearer\s+([A-Za-z0-9\-_.=]+)\s*$/i.exec(header)
  return m ? m[1] : undefined
}

// ---------------------------------------------------------------------------------------------
// scopes

/** One entry of a token's `access` claim (and of a requested scope). */
export interface ResourceAccess {
  type: string
  name: string
  actions: string[]
}

/**
 * Parses `scope` values such as `repository:team/app:pull,push` (several may be given, space
 * separated or repeated). Malformed entries are dropped, as distribution's token servers do.
 */
export function parseScopes(values: readonly string[]): ResourceAccess[] {
  const out: ResourceAccess[] = []
  for (const value of values) {
    for (const scope of value.split(' ')) {
      if (scope === '') continue
      const first = scope.indexOf(':')
      const last = scope.lastIndexOf(':')
      if (first <= 0 || last === first) continue
      const type = scope.slice(0, first)
      let name = scope.slice(first + 1, last)
      // `repository(plugin):name` → type repository
      const paren = /^([a-z0-9]+)\([a-z0-9]+\)$/.exec(type)
      const actions = scope.slice(last + 1).split(',').filter((a) => a !== '')
      if (name === '') continue
      if (name.length > 1024) name = name.slice(0, 1024)
      out.push({ type: paren ? (paren[1] as string) : type, name, actions })
    }
  }
  return out
}

export function formatScope(a: ResourceAccess): string {
  return `${a.type}:${a.name}:${a.actions.join(',')}`
}

/** The actions a token grants on a repository. */
export function tokenActions(access: readonly ResourceAccess[], repository: string): Set<Action> {
  const out = new Set<Action>()
  for (const a of access) {
    if (a.type !== 'repository' || a.name !== repository) continue
    for (const act of a.actions) {
      if (act === '*') {
        out.add('pull').add('push').add('delete')
      } else if (isAction(act)) out.add(act)
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// JWT

export interface TokenClaims {
  iss: string
  sub: string
  aud: string
  exp: number
  nbf: number
  iat: number
  jti: string
  access: ResourceAccess[]
}

export type SigningAlgorithm = 'ES256' | 'RS256'

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url')
}

function algorithmOf(key: KeyObject): SigningAlgorithm {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve
    if (curve !== 'prime256v1' && curve !== 'P-256') throw new CairnError('INVALID_ARGUMENT', `token key: EC keys must be P-256 (got ${String(curve)})`)
    return 'ES256'
  }
  if (key.asymmetricKeyType === 'rsa') return 'RS256'
  throw new CairnError('INVALID_ARGUMENT', `token key: unsupported key type ${String(key.asymmetricKeyType)} (EC P-256 or RSA)`)
}

/** The key ID distribution's libtrust computes: base32 of the first 240 bits of sha256(DER SPKI), in groups of 4. */
export function keyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' })
  const sum = createHash('sha256').update(der).digest().subarray(0, 30)
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = 0
  let value = 0
  let out = ''
  for (const byte of sum) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  return (out.match(/.{4}/g) ?? []).join(':')
}

/** A private key from PEM (EC P-256 or RSA). */
export function privateKeyFromPem(pem: string | Buffer): KeyObject {
  try {
    const key = createPrivateKey(pem)
    algorithmOf(key)
    return key
  } catch (err) {
    if (err instanceof CairnError) throw err
    throw new CairnError('INVALID_ARGUMENT', `token key: not a PEM private key: ${(err as Error).message}`, { cause: err })
  }
}

/** A public key from PEM: a public key, a certificate, or a private key (whose public half is taken). */
export function publicKeyFromPem(pem: string | Buffer): KeyObject {
  try {
    const key = createPublicKey(pem)
    algorithmOf(key)
    return key
  } catch (err) {
    if (err instanceof CairnError) throw err
    throw new CairnError('INVALID_ARGUMENT', `token key: not a PEM key or certificate: ${(err as Error).message}`, { cause: err })
  }
}

/** A fresh signing key in PEM (PKCS#8): EC P-256 by default. */
export function generateSigningKeyPem(type: 'ec' | 'rsa' = 'ec'): string {
  if (type === 'rsa') {
    return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  }
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
}

export class TokenSigner {
  readonly algorithm: SigningAlgorithm
  readonly kid: string
  readonly publicKey: KeyObject

  constructor(private readonly key: KeyObject, readonly issuer: string) {
    this.algorithm = algorithmOf(key)
    this.publicKey = createPublicKey(key)
    this.kid = keyId(this.publicKey)
  }

  /** Signs a token for `subject` (empty for anonymous) valid `ttlSeconds` for `audience`. */
  sign(subject: string, audience: string, access: ResourceAccess[], ttlSeconds: number, now = Date.now()): { token: string; claims: TokenClaims } {
    const iat = Math.floor(now / 1000)
    const claims: TokenClaims = {
      iss: this.issuer,
      sub: subject,
      aud: audience,
      exp: iat + ttlSeconds,
      nbf: iat - 1,
      iat,
      jti: randomBytes(16).toString('hex'),
      access,
    }
    const header = { typ: 'JWT', alg: this.algorithm, kid: this.kid }
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
    const sig = this.algorithm === 'ES256'
      ? sign('sha256', Buffer.from(input), { key: this.key, dsaEncoding: 'ieee-p1363' })
      : sign('sha256', Buffer.from(input), this.key)
    return { token: `${input}.${b64url(sig)}`, claims }
  }
}

export class TokenVerifier {
  private readonly algorithm: SigningAlgorithm

  constructor(private readonly key: KeyObject, private readonly issuer: string, private readonly service: string) {
    this.algorithm = algorithmOf(key)
  }

  /** The claims of a valid token; UNAUTHORIZED when the signature, issuer, audience or times are wrong. */
  verify(token: string, now = Date.now()): TokenClaims {
    const parts = token.split('.')
    if (parts.length !== 3) throw unauthorized('malformed token')
    const [h, p, s] = parts as [string, string, string]
    let header: { alg?: unknown }
    let claims: Partial<TokenClaims> | null
    try {
      header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as { alg?: unknown }
      claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Partial<TokenClaims> | null
    } catch {
      throw unauthorized('malformed token')
    }
    // the algorithm is fixed by our key, never taken from the token (no "none", no HMAC confusion)
    if (header.alg !== this.algorithm) throw unauthorized('token signed with an unexpected algorithm')
    const sig = Buffer.from(s, 'base64url')
    const input = Buffer.from(`${h}.${p}`)
    const ok = this.algorithm === 'ES256'
      ? sig.length === 64 && verify('sha256', input, { key: this.key, dsaEncoding: 'ieee-p1363' }, sig)
      : verify('sha256', input, this.key, sig)
    if (!ok) throw unauthorized('invalid token signature')
    if (typeof claims !== 'object' || claims === null) throw unauthorized('malformed token')
    const t = Math.floor(now / 1000)
    const leeway = 30
    if (claims.iss !== this.issuer) throw unauthorized('token issued by an unknown issuer')
    const aud = claims.aud as unknown
    if (!(aud === this.service || (Array.isArray(aud) && aud.includes(this.service)))) throw unauthorized('token for another service')
    if (typeof claims.exp !== 'number' || claims.exp + leeway < t) throw unauthorized('token expired')
    if (typeof claims.nbf === 'number' && claims.nbf - leeway > t) throw unauthorized('token not valid yet')
    const access = Array.isArray(claims.access) ? claims.access.filter(isResourceAccess) : []
    return {
      iss: claims.iss,
      sub: typeof claims.sub === 'string' ? claims.sub : '',
      aud: this.service,
      exp: claims.exp,
      nbf: typeof claims.nbf === 'number' ? claims.nbf : 0,
      iat: typeof claims.iat === 'number' ? claims.iat : 0,
      jti: typeof claims.jti === 'string' ? claims.jti : '',
      access,
    }
  }
}

function isResourceAccess(x: unknown): x is ResourceAccess {
  if (typeof x !== 'object' || x === null) return false
  const a = x as Record<string, unknown>
  return typeof a['type'] === 'string' && typeof a['name'] === 'string' && Array.isArray(a['actions']) &&
    (a['actions'] as unknown[]).every((s) => typeof s === 'string')
}

function unauthorized(message: string): CairnError {
  return new CairnError('UNAUTHORIZED', message)
}
