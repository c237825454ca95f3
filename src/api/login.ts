/**
 * `docker login` / `docker logout`: checks credentials against a registry by following its
 * challenge (Basic, or a Bearer token from its realm, as Docker Hub does) and keeps them in
 * Docker's client config (or the credential helper it names), so Cairn and Docker share logins.
 */
import { CairnError, hasCode } from '../errors/index.js'
import { DockerHub, credentialKey, loadRemoteConfig, normalizeServer } from '../remote/config.js'
import { Registry } from '../remote/client.js'
import { DockerCredentials, dockerConfigDir, type Credentials } from '../remote/credentials.js'
import type { RemoteOptions } from './push.js'

export interface LoginOptions extends Omit<RemoteOptions, 'credentials'> {
  /** Docker's client config folder (default $DOCKER_CONFIG, else ~/.docker). */
  dockerConfig?: string
}

export interface LoginResult {
  /** The reference domain logged in to (`docker.io`, `localhost:5000`). */
  registry: string
  /** The key the credentials are stored under (`https://index.docker.io/v1/` for Docker Hub). */
  serverKey: string
  /** Where they went: a credential helper's name, or the config file (stored unencrypted). */
  helper?: string
  configPath: string
}

/** The registry `login`/`logout` use when none is given. */
export const DEFAULT_LOGIN_SERVER = DockerHub.configKey

/** Checks `creds` against `server` and stores them. UNAUTHORIZED when the registry refuses them. */
export async function login(server: string | undefined, creds: Credentials, opts: LoginOptions = {}): Promise<LoginResult> {
  if (creds.username === '' && !creds.identityToken) throw new CairnError('INVALID_ARGUMENT', 'Username is required')
  if (creds.password === '' && !creds.identityToken) throw new CairnError('INVALID_ARGUMENT', 'Password is required')
  const domain = normalizeServer(server ?? DEFAULT_LOGIN_SERVER)
  await checkCredentials(domain, creds, opts)
  const store = new DockerCredentials(opts.dockerConfig ?? dockerConfigDir(opts.env), opts.env)
  const where = await store.store(domain, creds)
  const result: LoginResult = { registry: domain, serverKey: credentialKey(domain), configPath: where.path }
  if (where.helper) result.helper = where.helper
  return result
}

/** The credentials stored for `server`, if any (from the file or a helper). */
export async function storedCredentials(server: string | undefined, opts: LoginOptions = {}): Promise<Credentials | undefined> {
  const store = new DockerCredentials(opts.dockerConfig ?? dockerConfigDir(opts.env), opts.env)
  return store.get(normalizeServer(server ?? DEFAULT_LOGIN_SERVER))
}

/** Follows the registry's challenge with `creds`; resolves if accepted. */
export async function checkCredentials(domain: string, creds: Credentials, opts: LoginOptions = {}): Promise<void> {
  const config = opts.config ?? loadRemoteConfig()
  const registry = new Registry(domain, { config, credentials: creds, retry: { attempts: 3 }, ...(opts.env ? { env: opts.env } : {}) })
  try {
    await registry.base(opts.signal)
    const scheme = registry.auth.scheme
    if (scheme === 'bearer') {
      // a token for no particular scope proves the credentials (Docker asks the same)
      await registry.auth.header([], opts.signal)
    }
    await registry.ping(opts.signal)
  } catch (err) {
    if (hasCode(err, 'UNAUTHORIZED') || hasCode(err, 'DENIED')) {
      const base = await registry.base().catch(() => new URL(`https://${registry.host}/`))
      throw new CairnError('UNAUTHORIZED', registry.auth.scheme === 'bearer'
        ? `login to ${domain} failed: unauthorized: incorrect username or password`
        : `login attempt to ${base.href}v2/ failed with status: 401 Unauthorized`, { cause: err })
    }
    throw err
  } finally {
    registry.close()
  }
}

/** Removes stored credentials; `removed` false when there were none (Docker: "Not logged in to …"). */
export async function logout(server: string | undefined, opts: LoginOptions = {}): Promise<{ registry: string; serverKey: string; removed: boolean }> {
  const domain = normalizeServer(server ?? DEFAULT_LOGIN_SERVER)
  const store = new DockerCredentials(opts.dockerConfig ?? dockerConfigDir(opts.env), opts.env)
  const removed = await store.erase(domain)
  return { registry: domain, serverKey: credentialKey(domain), removed }
}
