/**
 * Uploading one blob from the content store: monolithic (one PUT) or in chunks (PATCHes with
 * Content-Range), resuming from the offset the registry reports, after a broken connection in
 * this process or after the process itself died (the upload URL is kept in the metadata
 * database after every acknowledged chunk). A 413 from a proxy switches to smaller chunks.
 */
import { createReadStream } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { CairnError, hasCode, isCairnError } from '../errors/index.js'
import type { Digest } from '../oci/digest.js'
import type { Repository, UploadSession } from './client.js'
import { isTemporary } from './errors.js'
import type { RemoteKnowledge } from './sources.js'

export interface UploadOptions {
  /** Bytes per PATCH; 0 sends the blob in one request. */
  chunkSize: number
  signal?: AbortSignal
  /** The running count of bytes the registry holds or is being sent, out of the blob's size. */
  onProgress?: (current: number, total: number) => void
  /** An upload already started (a failed mount answers with one). */
  session?: UploadSession
  /** How many times to try again after failures that made no progress (default 5). */
  attempts?: number
}

export interface UploadResult {
  /** Offset the upload resumed from (0 for a fresh one). */
  resumedFrom: number
  /** Bytes sent in request bodies by this call. */
  bytesSent: number
}

const MIN_CHUNK = 1 << 20
const PROXY_CHUNK = 8 << 20

export async function uploadBlob(repo: Repository, knowledge: RemoteKnowledge, blob: { digest: Digest; size: number; path: string }, opts: UploadOptions): Promise<UploadResult> {
  const registry = repo.registry.domain
  const signal = opts.signal
  let chunkSize = opts.chunkSize
  let sent = 0
  let session = opts.session
  // a previous run's upload: ask the registry how far it got
  const saved = session ? undefined : knowledge.upload(registry, repo.name, blob.digest)
  if (saved) {
    try {
      session = await repo.uploadStatus(new URL(saved.location), signal)
      if (session.offset > blob.size) {
        await repo.cancelUpload(session, signal).catch(() => undefined)
        session = undefined
      }
    } catch (err) {
      if (isCairnError(err) && err.code === 'ABORTED') throw err
      session = undefined // expired, cancelled, or refused: start afresh
    }
    if (!session) knowledge.dropUpload(registry, repo.name, blob.digest)
  }
  if (!session) {
    const started = await repo.startUpload(signal ? { signal } : {})
    if (started.mounted) throw new CairnError('UNKNOWN', 'the registry mounted a blob nobody asked to mount')
    session = { location: started.location, offset: started.offset }
  }
  const resumedFrom = session.offset
  knowledge.saveUpload(registry, repo.name, blob.digest, session.location.href, session.offset)
  const body = (start: number, length: number) => ({
    length,
    open: () => createReadStream(blob.path, { start, end: start + length - 1, highWaterMark: 1 << 20 }),
  })
  /** Counts body bytes of one request (a request's counter restarts at 0). */
  const tracker = (start: number) => {
    let last = 0
    return (n: number): void => {
      sent += n - last
      last = n
      opts.onProgress?.(start + n, blob.size)
    }
  }
  let failures = 0
  const maxFailures = opts.attempts ?? 5
  for (;;) {
    const before = session.offset
    try {
      opts.onProgress?.(session.offset, blob.size)
      if (chunkSize <= 0) {
        const start = session.offset
        const length = blob.size - start
        const onBodyBytes = tracker(start)
        if (start === 0) {
          await repo.finishUpload(session, blob.digest, { body: body(0, length), onBodyBytes, ...(signal ? { signal } : {}) })
        } else {
          if (length > 0) session = await repo.uploadChunk(session, body(start, length), { onBodyBytes, ...(signal ? { signal } : {}) })
          await repo.finishUpload(session, blob.digest, signal ? { signal } : {})
        }
      } else {
        while (session.offset < blob.size) {
          const start: number = session.offset
          const length = Math.min(chunkSize, blob.size - start)
          const onBodyBytes = tracker(start)
          const next = await repo.uploadChunk(session, body(start, length), { onBodyBytes, ...(signal ? { signal } : {}) })
          // a registry that does not say how far it got is taken at its word for this chunk
          session = { location: next.location, offset: next.offset > start ? next.offset : start + length }
          knowledge.saveUpload(registry, repo.name, blob.digest, session.location.href, session.offset)
        }
        await repo.finishUpload(session, blob.digest, signal ? { signal } : {})
      }
      knowledge.dropUpload(registry, repo.name, blob.digest)
      opts.onProgress?.(blob.size, blob.size)
      return { resumedFrom, bytesSent: sent }
    } catch (err) {
      if (signal?.aborted || hasCode(err, 'ABORTED')) throw err
      const status = (isCairnError(err) ? (err.detail as { status?: number } | undefined)?.status : undefined)
      if (status === 413) {
        // a proxy limits request bodies: continue in chunks, smaller each time it refuses
        if (chunkSize > 0 && chunkSize <= MIN_CHUNK) throw err
        chunkSize = chunkSize <= 0 ? PROXY_CHUNK : Math.max(MIN_CHUNK, chunkSize >> 1)
      } else if (hasCode(err, 'DIGEST_INVALID') || hasCode(err, 'BLOB_UPLOAD_INVALID') || hasCode(err, 'BLOB_UPLOAD_UNKNOWN')) {
        // the registry lost or refused the upload: once more from the start
        failures++
        if (failures >= maxFailures) throw err
        knowledge.dropUpload(registry, repo.name, blob.digest)
        const started = await repo.startUpload(signal ? { signal } : {})
        if (started.mounted) throw new CairnError('UNKNOWN', 'the registry mounted a blob nobody asked to mount')
        session = { location: started.location, offset: started.offset }
        knowledge.saveUpload(registry, repo.name, blob.digest, session.location.href, session.offset)
        continue
      } else if (!isTemporary(err)) {
        throw err
      }
      if (session.offset === before) failures++
      if (failures >= maxFailures) throw err
      await sleep(Math.min(8000, 250 * 2 ** failures), undefined, signal ? { signal } : {}).catch(() => {
        throw new CairnError('ABORTED', 'operation aborted')
      })
      // where did the registry get to? (a registry that lost the upload answers 404: start again)
      try {
        session = await repo.uploadStatus(session.location, signal)
      } catch (statusErr) {
        if (signal?.aborted) throw statusErr
        knowledge.dropUpload(registry, repo.name, blob.digest)
        const started = await repo.startUpload(signal ? { signal } : {})
        if (started.mounted) throw new CairnError('UNKNOWN', 'the registry mounted a blob nobody asked to mount')
        session = { location: started.location, offset: started.offset }
      }
      knowledge.saveUpload(registry, repo.name, blob.digest, session.location.href, session.offset)
    }
  }
}
