/**
 * Cairn's registry server: the OCI distribution API v1.1, filesystem storage, Basic and token auth,
 * access rules, gc safe under load, metrics. `startRegistry` runs one in-process.
 */
export { startRegistry, parseRange, parseContentRange, DEFAULT_MANIFEST_LIMIT } from './server.js'
export type { RegistryOptions, RunningRegistry, AccessLogEntry, TokenAuthOptions } from './server.js'
export type { RegistryStorage, BlobStat, ByteRange, UploadState, StoredManifest, ManifestPut, RepositoryLink, WriteUploadOptions } from './storage.js'
export { FilesystemStorage } from './fs-storage.js'
export { AccessPolicy, compilePattern, parseAccessConfig, Actions } from './access.js'
export type { AccessConfig, AccessRule, Action, Identity } from './access.js'
export { Htpasswd, htpasswdLine, TokenSigner, TokenVerifier, generateSigningKeyPem, privateKeyFromPem, publicKeyFromPem, parseScopes, keyId } from './auth.js'
export type { TokenClaims, ResourceAccess } from './auth.js'
export { TokenService } from './token.js'
export { collectGarbage, purgeUploads, references } from './gc.js'
export type { GcOptions, GcReport, PurgeReport } from './gc.js'
export { loadRegistryConfig, applyConfig, defaultConfig, defaultRegistryRoot, parseDuration, parseSize, parseListen } from './config.js'
export type { RegistryConfig } from './config.js'
export { registryOptionsFromConfig, serveFromConfig, startTokenServer, tokenAuthFromConfig } from './setup.js'
export type { TokenServerOptions, RunningTokenServer } from './setup.js'
export { RegistryMetrics } from './metrics.js'
export { RateLimiter } from './ratelimit.js'
export { parseYaml } from './yaml.js'
export type { YamlValue } from './yaml.js'
export { StatusByCode, toWireError } from './errors.js'
