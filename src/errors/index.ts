/**
 * One error class for everything Cairn reports to a user or a caller.
 * Callers decide by `code` (and `temporary` for retries), never by message text,
 * and never by `instanceof` (a second copy of the package would break that).
 */

/** The codes of the OCI distribution specification, plus Cairn's own. */
export const ErrorCodes = {
  // OCI distribution spec
  BLOB_UNKNOWN: 'BLOB_UNKNOWN',
  BLOB_UPLOAD_INVALID: 'BLOB_UPLOAD_INVALID',
  BLOB_UPLOAD_UNKNOWN: 'BLOB_UPLOAD_UNKNOWN',
  DIGEST_INVALID: 'DIGEST_INVALID',
  MANIFEST_BLOB_UNKNOWN: 'MANIFEST_BLOB_UNKNOWN',
  MANIFEST_INVALID: 'MANIFEST_INVALID',
  MANIFEST_UNKNOWN: 'MANIFEST_UNKNOWN',
  NAME_INVALID: 'NAME_INVALID',
  NAME_UNKNOWN: 'NAME_UNKNOWN',
  SIZE_INVALID: 'SIZE_INVALID',
  UNAUTHORIZED: 'UNAUTHORIZED',
  DENIED: 'DENIED',
  UNSUPPORTED: 'UNSUPPORTED',
  TOOMANYREQUESTS: 'TOOMANYREQUESTS',
  // distribution's errcode registry: an error the registry did not classify, and a service (or
  // connection) that is unavailable for now
  UNKNOWN: 'UNKNOWN',
  UNAVAILABLE: 'UNAVAILABLE',
  // Cairn
  INVALID_REFERENCE: 'INVALID_REFERENCE',
  IMAGE_UNKNOWN: 'IMAGE_UNKNOWN',
  AMBIGUOUS_REFERENCE: 'AMBIGUOUS_REFERENCE',
  CONFLICT: 'CONFLICT',
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  INVALID_ARCHIVE: 'INVALID_ARCHIVE',
  INVALID_LAYER: 'INVALID_LAYER',
  UNSAFE_PATH: 'UNSAFE_PATH',
  STORE_CORRUPT: 'STORE_CORRUPT',
  ABORTED: 'ABORTED',
  NOT_SUPPORTED: 'NOT_SUPPORTED',
  // a container's command: not found (Docker's exit code 127), found but not executable (126)
  COMMAND_NOT_FOUND: 'COMMAND_NOT_FOUND',
  COMMAND_NOT_EXECUTABLE: 'COMMAND_NOT_EXECUTABLE',
  /** A build step failed (a RUN's command exited non-zero); its exit code is in `detail`. */
  BUILD_FAILED: 'BUILD_FAILED',
} as const

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

export interface CairnErrorOptions {
  cause?: unknown
  /** True when repeating the same operation may succeed (network, 429, 5xx). */
  temporary?: boolean
  /** Extra structured detail (the spec's `detail` field for registry errors). */
  detail?: unknown
}

export class CairnError extends Error {
  readonly code: ErrorCode
  readonly temporary: boolean
  readonly detail: unknown

  constructor(code: ErrorCode, message: string, options: CairnErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'CairnError'
    this.code = code
    this.temporary = options.temporary ?? false
    this.detail = options.detail
  }
}

/** True when `err` carries the given Cairn error code (works across package copies). */
export function hasCode(err: unknown, code: ErrorCode): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code &&
    (err as { name?: unknown }).name === 'CairnError'
}

export function isCairnError(err: unknown): err is CairnError {
  return typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'CairnError' &&
    typeof (err as { code?: unknown }).code === 'string'
}

/** Node's system errors (`ENOENT`, `EEXIST`, …). */
export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code
}

/** Throws ABORTED if the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CairnError('ABORTED', 'operation aborted', { cause: signal.reason })
}

/** The text Go's syscall package gives each errno (Docker's messages quote it). */
const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory', EISDIR: 'is a directory', EEXIST: 'file exists', EACCES: 'permission denied',
  EPERM: 'operation not permitted', ENOTDIR: 'not a directory', ENOTEMPTY: 'directory not empty', ENOSPC: 'no space left on device',
  EROFS: 'read-only file system', EBUSY: 'device or resource busy', EXDEV: 'invalid cross-device link', ELOOP: 'too many levels of symbolic links',
  EMFILE: 'too many open files', ENFILE: 'too many open files in system', EINVAL: 'invalid argument', EIO: 'input/output error',
  ENAMETOOLONG: 'file name too long', EDQUOT: 'disk quota exceeded', ENXIO: 'no such device or address', EPIPE: 'broken pipe',
  ECONNREFUSED: 'connection refused', ECONNRESET: 'connection reset by peer', ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'no route to host', ENETUNREACH: 'network is unreachable', EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'cannot assign requested address', ENOTFOUND: 'no such host', EAI_AGAIN: 'temporary failure in name resolution',
}

/** Node's certificate failures in Go's x509 words. */
const TLS_TEXT: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'certificate signed by unknown authority', SELF_SIGNED_CERT_IN_CHAIN: 'certificate signed by unknown authority',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'certificate signed by unknown authority', UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'certificate signed by unknown authority',
  UNABLE_TO_GET_ISSUER_CERT: 'certificate signed by unknown authority', CERT_HAS_EXPIRED: 'certificate has expired or is not yet valid',
  CERT_NOT_YET_VALID: 'certificate has expired or is not yet valid',
}

/**
 * The one-line message a user sees for any error: a Cairn error's own message; a system error
 * (`ENOENT`, `EISDIR`, a refused connection, …) in Go's words, as Docker prints them
 * (`open /x: no such file or directory`, `dial tcp 127.0.0.1:5000: connect: connection refused`);
 * anything else by its message. Never a stack trace.
 */
export function userMessage(err: unknown): string {
  if (isCairnError(err)) return err.message
  if (typeof err === 'object' && err !== null) {
    const tls = TLS_TEXT[String((err as { code?: unknown }).code)]
    if (tls !== undefined) return `tls: failed to verify certificate: x509: ${tls}`
    const e = err as { code?: unknown; syscall?: unknown; path?: string; dest?: unknown; hostname?: string; address?: string; port?: unknown; message?: unknown }
    const text = typeof e.code === 'string' ? ERRNO_TEXT[e.code] : undefined
    if (text !== undefined) {
      if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return `dial tcp: lookup ${String(e.hostname ?? '')}: ${text}`
      if (e.syscall === 'connect') {
        return `dial ${typeof e.port === 'number' ? 'tcp' : 'unix'} ${String(e.address ?? e.path ?? '')}${typeof e.port === 'number' ? `:${e.port}` : ''}: connect: ${text}`
      }
      const op = e.syscall === 'read' ? 'read' : typeof e.syscall === 'string' ? e.syscall : ''
      const where = typeof e.path === 'string' ? ` ${e.path}${typeof e.dest === 'string' ? ` ${e.dest}` : ''}` : ''
      return op === '' && where === '' ? text : `${op}${where}: ${text}`
    }
    if (typeof e.message === 'string' && e.message !== '') return e.message
  }
  return String(err)
}
