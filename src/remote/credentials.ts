/**
 * Credentials in Docker's client config, so that logins are shared with Docker both ways:
 * `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`), `auths` entries with
 * base64 `user:password` (and `identitytoken`), or a credential helper named by `credHelpers`
 * (per registry) or `credsStore` (all registries): `docker-credential-<name> get|store|erase`.
 */
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { CairnError, isErrno } from '../errors/index.js'
import { writeFileAtomic } from '../util/fs.js'
import { followLinks } from '../util/userfiles.js'
import { credentialKey, normalizeServer } from './config.js'

export interface Credentials {
  username: string
  password: string
  /** An OAuth refresh token (Docker Hub's "identity token"), used instead of the password. */
  identityToken?: string
}

interface AuthEntry {
  auth?: string
  username?: string
  password?: string
  identitytoken?: string
  [key: string]: unknown
}

interface ConfigFile {
  auths?: Record<string, AuthEntry>
  credsStore?: string
  credHelpers?: Record<string, string>
  [key: string]: unknown
}

/** The folder of Docker's client config. */
export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env['DOCKER_CONFIG'] ?? `${homedir()}/.docker`
}

/** The message helpers print when they have nothing for a server (part of the helper protocol). */
const HELPER_NOT_FOUND = 'credentials not found in native keychain'

export class DockerCredentials {
  readonly path: string

  constructor(dir: string = dockerConfigDir(), private readonly env: NodeJS.ProcessEnv = process.env) {
    this.path = `${dir}/config.json`
  }

  private async read(): Promise<ConfigFile> {
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return {}
      throw err
    }
    if (text.trim() === '') return {}
    try {
      const v = JSON.parse(text) as unknown
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object')
      return v as ConfigFile
    } catch (err) {
      throw new CairnError('INVALID_ARGUMENT', `${this.path} is not valid JSON: ${(err as Error).message}`, { cause: err })
    }
  }

  private async write(cfg: ConfigFile): Promise<void> {
    // a config.json that is a symlink (dotfile managers make them) stays one: its target is rewritten, as Docker does
    const { path } = await followLinks(this.path)
    await writeFileAtomic(path, `${JSON.stringify(cfg, null, '\t')}\n`, 0o600)
  }

  /** Which helper (if any) holds the credentials of `server`. */
  async helperFor(server: string): Promise<string | undefined> {
    const cfg = await this.read()
    const domain = normalizeServer(server)
    const helpers = cfg.credHelpers ?? {}
    for (const [k, v] of Object.entries(helpers)) {
      if (safeNormalize(k) === domain) return v
    }
    return cfg.credsStore || undefined
  }

  /** The credentials stored for a registry (by reference domain or any server spelling), if any. */
  async get(server: string): Promise<Credentials | undefined> {
    const domain = normalizeServer(server)
    const key = credentialKey(domain)
    const helper = await this.helperFor(domain)
    if (helper) return this.helperGet(helper, key)
    const cfg = await this.read()
    for (const [k, entry] of Object.entries(cfg.auths ?? {})) {
      if (safeNormalize(k) !== domain) continue
      const creds = decodeEntry(entry)
      if (creds) return creds
    }
    return undefined
  }

  /** Stores credentials; returns where they went (the helper's name, or the file's path). */
  async store(server: string, creds: Credentials): Promise<{ helper?: string; path: string }> {
    const domain = normalizeServer(server)
    const key = credentialKey(domain)
    const helper = await this.helperFor(domain)
    const cfg = await this.read()
    const auths = { ...(cfg.auths ?? {}) }
    for (const k of Object.keys(auths)) if (k !== key && safeNormalize(k) === domain) delete auths[k]
    if (helper) {
      await this.helperStore(helper, key, creds)
      auths[key] = {}
    } else {
      const entry: AuthEntry = { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') }
      if (creds.identityToken) entry.identitytoken = creds.identityToken
      auths[key] = entry
    }
    await this.write({ ...cfg, auths })
    return helper ? { helper, path: this.path } : { path: this.path }
  }

  /** Removes the credentials of a registry; false when there were none. */
  async erase(server: string): Promise<boolean> {
    const domain = normalizeServer(server)
    const key = credentialKey(domain)
    const cfg = await this.read()
    const auths = { ...(cfg.auths ?? {}) }
    let found = false
    for (const k of Object.keys(auths)) {
      if (safeNormalize(k) === domain) {
        delete auths[k]
        found = true
      }
    }
    const helper = await this.helperFor(domain)
    if (helper) {
      if (await this.helperErase(helper, key)) found = true
    }
    if (found) await this.write({ ...cfg, auths })
    return found
  }

  private async helperGet(helper: string, key: string): Promise<Credentials | undefined> {
    const r = await runHelper(helper, 'get', key, this.env)
    if (r.code !== 0) {
      if (r.stdout.trim() === HELPER_NOT_FOUND || r.stderr.trim() === HELPER_NOT_FOUND) return undefined
      throw new CairnError('UNAUTHORIZED', `docker-credential-${helper} get failed: ${(r.stderr || r.stdout).trim()}`)
    }
    let v: { Username?: string; Secret?: string }
    try {
      v = JSON.parse(r.stdout) as { Username?: string; Secret?: string }
    } catch {
      throw new CairnError('UNAUTHORIZED', `docker-credential-${helper} get printed something that is not JSON`)
    }
    if (!v.Secret) return undefined
    if (v.Username === '<token>') return { username: '', password: '', identityToken: v.Secret }
    return { username: v.Username ?? '', password: v.Secret }
  }

  private async helperStore(helper: string, key: string, creds: Credentials): Promise<void> {
    const payload = creds.identityToken
      ? { ServerURL: key, Username: '<token>', Secret: creds.identityToken }
      : { ServerURL: key, Username: creds.username, Secret: creds.password }
    const r = await runHelper(helper, 'store', JSON.stringify(payload), this.env)
    if (r.code !== 0) throw new CairnError('UNKNOWN', `Error saving credentials: docker-credential-${helper} store failed: ${(r.stderr || r.stdout).trim()}`)
  }

  private async helperErase(helper: string, key: string): Promise<boolean> {
    const r = await runHelper(helper, 'erase', key, this.env)
    if (r.code === 0) return true
    if (r.stdout.trim() === HELPER_NOT_FOUND || r.stderr.trim() === HELPER_NOT_FOUND) return false
    throw new CairnError('UNKNOWN', `docker-credential-${helper} erase failed: ${(r.stderr || r.stdout).trim()}`)
  }
}

function safeNormalize(k: string): string | undefined {
  try {
    return normalizeServer(k)
  } catch {
    return undefined
  }
}

function decodeEntry(e: AuthEntry): Credentials | undefined {
  if (typeof e.auth === 'string' && e.auth !== '') {
    const text = Buffer.from(e.auth, 'base64').toString('utf8')
    const colon = text.indexOf(':')
    if (colon < 0) throw new CairnError('INVALID_ARGUMENT', 'invalid auth configuration file: an auth entry is not base64 of user:password')
    const creds: Credentials = { username: text.slice(0, colon), password: text.slice(colon + 1) }
    if (typeof e.identitytoken === 'string' && e.identitytoken !== '') creds.identityToken = e.identitytoken
    return creds
  }
  if (typeof e.identitytoken === 'string' && e.identitytoken !== '') return { username: e.username ?? '', password: '', identityToken: e.identitytoken }
  if (typeof e.username === 'string' && typeof e.password === 'string') return { username: e.username, password: e.password }
  return undefined
}

function runHelper(helper: string, action: 'get' | 'store' | 'erase', input: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  if (!/^[A-Za-z0-9._-]+$/.test(helper)) throw new CairnError('INVALID_ARGUMENT', `invalid credential helper name ${JSON.stringify(helper)}`)
  return new Promise((resolve, reject) => {
    const child = spawn(`docker-credential-${helper}`, [action], { stdio: ['pipe', 'pipe', 'pipe'], env })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    child.once('error', (e) => {
      if (isErrno(e, 'ENOENT')) reject(new CairnError('NOT_SUPPORTED', `credential helper docker-credential-${helper} is not installed (named in the Docker config)`))
      else reject(e)
    })
    child.once('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }))
    child.stdin.on('error', () => undefined)
    child.stdin.end(input)
  })
}

