/**
 * Error codes become HTTP statuses here, at the API's edge (as the CLI turns them into exit
 * codes in cli/errors.ts): the engine's errors carry codes only. Docker's body is
 * `{"message": "…"}`, with 404 for what does not exist, 409 for conflicts, 400 for bad input.
 */
import { isCairnError, userMessage, type ErrorCode } from '../errors/index.js'

const STATUS: Partial<Record<ErrorCode, number>> = {
  NAME_UNKNOWN: 404,
  IMAGE_UNKNOWN: 404,
  MANIFEST_UNKNOWN: 404,
  BLOB_UNKNOWN: 404,
  CONFLICT: 409,
  INVALID_ARGUMENT: 400,
  INVALID_REFERENCE: 400,
  AMBIGUOUS_REFERENCE: 400,
  NAME_INVALID: 400,
  INVALID_ARCHIVE: 400,
  INVALID_LAYER: 400,
  UNSAFE_PATH: 400,
  MANIFEST_INVALID: 400,
  DIGEST_INVALID: 400,
  SIZE_INVALID: 400,
  // Docker's CLI reads 127/126 for `run` from the message ("executable file not found", "permission denied")
  COMMAND_NOT_FOUND: 400,
  COMMAND_NOT_EXECUTABLE: 400,
  BUILD_FAILED: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  TOOMANYREQUESTS: 429,
  NOT_SUPPORTED: 501,
  UNSUPPORTED: 501,
  UNAVAILABLE: 503,
}

/** An error of the API itself (bad request line, body too large, …), with its status. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message)
    this.name = 'HttpError'
  }
}

/** The HTTP status and Docker's error body for any error. */
export function errorResponse(err: unknown): { status: number; body: { message: string } } {
  if (err instanceof HttpError) return { status: err.status, body: { message: err.message } }
  const status = isCairnError(err) ? STATUS[err.code] ?? 500 : 500
  return { status, body: { message: userMessage(err).replace(/\n+$/, '') } }
}
