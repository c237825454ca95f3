/**
 * Progress events. The library reports, the CLI renders: a line per `id` with a status word
 * (Docker's: `Loading layer`, `Pushed`, `Already exists`, …) and, while bytes move, how many.
 */
export interface ProgressEvent {
  /** What the line is about: a short layer ID, or '' for the operation as a whole. */
  id: string
  /** Docker's status words. */
  status: string
  /** Bytes done so far, when bytes are moving. */
  current?: number
  /** Bytes expected in all, when known. */
  total?: number
}

export type ProgressListener = (event: ProgressEvent) => void

/** Options every long-running verb accepts. */
export interface OperationOptions {
  signal?: AbortSignal
  onProgress?: ProgressListener
}

/** Calls the listener, if any, and never lets a listener's exception break the operation. */
export function emit(opts: OperationOptions | undefined, event: ProgressEvent): void {
  if (!opts?.onProgress) return
  try {
    opts.onProgress(event)
  } catch {
    /* a broken renderer must not abort the work */
  }
}
