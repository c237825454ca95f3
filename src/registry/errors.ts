/**
 * The registry's errors on the wire: one table from error code to HTTP status, and the spec's
 * JSON body (`{"errors":[{"code","message","detail"}]}`).
 *
 * Handlers throw `CairnError`s with the distribution spec's codes. A few answers of the spec carry a
 * status the code alone does not decide (413 for an oversized manifest, 416 for an out-of-order
 * chunk); those are thrown through `httpError`, which records the status and headers next to the code.
 */
import { CairnError, isCairnError, type ErrorCode } from '../errors/index.js'

/**
 * The HTTP status of each error code: the one place where codes become statuses. A code missing here
 * (one added to src/errors later) answers 500.
 */
export const StatusByCode: Readonly<Partial<Record<ErrorCode, number>>> = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  UNAVAILABLE: 503,
  // Cairn's own codes, should one reach the HTTP layer
  INVALID_REFERENCE: 400,
  INVALID_ARGUMENT: 400,
  IMAGE_UNKNOWN: 404,
  AMBIGUOUS_REFERENCE: 400,
  CONFLICT: 409,
  INVALID_ARCHIVE: 400,
  INVALID_LAYER: 400,
  UNSAFE_PATH: 400,
  STORE_CORRUPT: 500,
  ABORTED: 503,
  NOT_SUPPORTED: 405,
}

/** The codes a registry client knows; others are reported as UNSUPPORTED or internal errors. */
const SPEC_CODES = new Set<ErrorCode>([
  'BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID', 'MANIFEST_UNKNOWN', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'UNAUTHORIZED',
  'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS', 'UNAVAILABLE',
])

/** Statuses some answers need beyond the code's own. */
export const HttpStatusOverrides = { BadRequest: 400, Unauthorized: 401, PayloadTooLarge: 413, RangeNotSatisfiable: 416 } as const
export type HttpStatusOverride = (typeof HttpStatusOverrides)[keyof typeof HttpStatusOverrides]

interface HttpErrorExtras {
  httpStatus?: HttpStatusOverride
  httpHeaders?: Record<string, string>
}

/** A coded error that also fixes the HTTP status (one of a few overrides) and extra response headers. */
export function httpError(
  code: ErrorCode,
  message: string,
  opts: { status?: HttpStatusOverride; headers?: Record<string, string>; detail?: unknown; cause?: unknown } = {},
): CairnError {
  const err = new CairnError(code, message, {
    ...(opts.detail === undefined ? {} : { detail: opts.detail }),
    ...(opts.cause === undefined ? {} : { cause: opts.cause }),
  }) as CairnError & HttpErrorExtras
  if (opts.status !== undefined) err.httpStatus = opts.status
  if (opts.headers !== undefined) err.httpHeaders = opts.headers
  return err
}

export interface WireError {
  status: number
  headers: Record<string, string>
  body: { errors: { code: string; message: string; detail?: unknown }[] }
  /** True when the error is the server's fault (logged with its stack). */
  internal: boolean
}

/** Turns anything thrown by a handler into the spec's answer; a non-coded error is a 500. */
export function toWireError(err: unknown): WireError {
  if (isCairnError(err)) {
    const extras = err as CairnError & HttpErrorExtras
    const status = extras.httpStatus ?? StatusByCode[err.code] ?? 500
    const code = SPEC_CODES.has(err.code) ? err.code : status === 405 ? 'UNSUPPORTED' : err.code
    const entry: { code: string; message: string; detail?: unknown } = { code, message: err.message }
    if (err.detail !== undefined) entry.detail = err.detail
    return { status, headers: extras.httpHeaders ?? {}, body: { errors: [entry] }, internal: status >= 500 }
  }
  return {
    status: 500,
    headers: {},
    body: { errors: [{ code: 'UNKNOWN', message: 'internal server error' }] },
    internal: true,
  }
}
