/**
 * Registry answers as coded errors. A registry's JSON error body (`{"errors":[{"code":…}]}`)
 * gives the code when there is one; the HTTP status decides otherwise. Whether to retry is
 * decided from the status or the code (the `temporary` flag), never from message text.
 */
import { CairnError, ErrorCodes, isCairnError, userMessage, type ErrorCode } from '../errors/index.js'

/** What a request was about, to name the right `*_UNKNOWN` code for a 404. */
export type Subject = 'blob' | 'manifest' | 'upload' | 'repository' | 'registry' | 'token'

const KNOWN = new Set<string>(Object.values(ErrorCodes))

/** Statuses worth repeating the same request for: timeouts, throttling, server-side failures. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505)
}

export interface RegistryErrorBody {
  errors?: { code?: string; message?: string; detail?: unknown }[]
}

/** The CairnError for a registry response that is not a success. */
export function registryError(status: number, body: string, what: string, subject: Subject): CairnError {
  let parsed: RegistryErrorBody | undefined
  try {
    parsed = JSON.parse(body) as RegistryErrorBody
  } catch {
    parsed = undefined
  }
  const first = Array.isArray(parsed?.errors) ? parsed.errors[0] : undefined
  const temporary = isRetryableStatus(status)
  const fromBody = typeof first?.code === 'string' && KNOWN.has(first.code) ? (first.code as ErrorCode) : undefined
  const code = fromBody ?? codeForStatus(status, subject)
  const reason = first?.message ?? (body.trim() !== '' && body.length < 200 && !body.trimStart().startsWith('<') ? body.trim() : statusText(status))
  const message = messageFor(code, status, what, reason)
  return new CairnError(code, message, { temporary, detail: { status, ...(first?.detail !== undefined ? { detail: first.detail } : {}) } })
}

function codeForStatus(status: number, subject: Subject): ErrorCode {
  switch (status) {
    case 401:
      return 'UNAUTHORIZED'
    case 403:
      return 'DENIED'
    case 404:
      switch (subject) {
        case 'blob':
          return 'BLOB_UNKNOWN'
        case 'manifest':
          return 'MANIFEST_UNKNOWN'
        case 'upload':
          return 'BLOB_UPLOAD_UNKNOWN'
        case 'repository':
          return 'NAME_UNKNOWN'
        default:
          return 'UNSUPPORTED'
      }
    case 405:
      return 'UNSUPPORTED'
    case 413:
      return 'SIZE_INVALID'
    case 416:
      return 'BLOB_UPLOAD_INVALID'
    case 429:
      return 'TOOMANYREQUESTS'
    default:
      return status >= 500 ? 'UNAVAILABLE' : 'UNKNOWN'
  }
}

function messageFor(code: ErrorCode, status: number, what: string, reason: string): string {
  switch (code) {
    case 'UNAUTHORIZED':
      return `${what}: unauthorized: ${reason}`
    case 'DENIED':
      return `${what}: denied: ${reason}`
    default:
      return `${what}: ${reason} (HTTP ${status})`
  }
}

function statusText(status: number): string {
  const texts: Record<number, string> = {
    400: 'bad request', 401: 'authentication required', 403: 'requested access to the resource is denied', 404: 'not found',
    405: 'method not allowed', 408: 'request timeout', 413: 'request entity too large', 416: 'requested range not satisfiable',
    429: 'too many requests', 500: 'internal server error', 502: 'bad gateway', 503: 'service unavailable', 504: 'gateway timeout',
  }
  return texts[status] ?? `unexpected status ${status}`
}

/** Errors of the socket itself: refused, reset, timed out, closed mid-body. Worth retrying. */
const NETWORK_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EAI_AGAIN', 'ECONNABORTED',
  'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET', 'HPE_INVALID_CONSTANT', 'HPE_UNEXPECTED_CONTENT_LENGTH',
])

/** Wraps a socket-level failure as UNAVAILABLE (temporary); other errors pass through untouched. */
export function networkError(err: unknown, what: string): unknown {
  if (isCairnError(err)) return err
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string' && NETWORK_CODES.has(code)) {
    return new CairnError('UNAVAILABLE', `${what}: ${userMessage(err)}`, { temporary: true, cause: err })
  }
  if (err instanceof Error && err.message === 'aborted' && code === 'ECONNRESET') {
    return new CairnError('UNAVAILABLE', `${what}: connection closed`, { temporary: true, cause: err })
  }
  // a name that does not resolve, a bad certificate, …: said with the request, not retried
  if (typeof code === 'string' && (code === 'ENOTFOUND' || code.startsWith('ERR_TLS') || code.includes('CERT') || code.startsWith('UNABLE_TO') || code.startsWith('SELF_SIGNED') || code === 'DEPTH_ZERO_SELF_SIGNED_CERT')) {
    return new CairnError('UNAVAILABLE', `${what}: ${userMessage(err)}`, { cause: err })
  }
  return err
}

/** True when repeating the operation may succeed. */
export function isTemporary(err: unknown): boolean {
  return isCairnError(err) && err.temporary
}
