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
