/**
 * Turning an uncompressed layer tar stream into a stored layer blob in one streaming pass:
 * the diffID (sha256 of the tar) is computed as the bytes flow into the compressor, and the
 * digest (sha256 of the compressed bytes) as they flow into the content store. An uncompressed
 * layer is hashed once: its digest is its diffID.
 */
import type { Readable } from 'node:stream'
import { byteCounter, pipeAll } from '../util/stream.js'
import type { ContentStore, StagedBlob } from '../content/store.js'
import { asDiffId, type DiffId, HashingStream } from '../oci/digest.js'
import type { Compression } from '../oci/mediatype.js'
import { compressStream } from '../layer/compression.js'

export interface StagedLayer {
  staged: StagedBlob
  diffId: DiffId
  /** Bytes of the uncompressed tar. */
  diffSize: number
  compression: Compression
}

export async function stageLayerTar(
  content: ContentStore,
  tar: Readable,
  opts: { compression: Compression; signal?: AbortSignal; onBytes?: (uncompressed: number) => void; direct?: boolean },
): Promise<StagedLayer> {
  const ingest = await content.ingest('sha256', { direct: opts.direct === true })
  // stored uncompressed, the blob is the tar: the store's own hash is the diffID (one pass, not two)
  const diff = opts.compression === 'none' ? undefined : new HashingStream()
  try {
    const steps: unknown[] = [tar]
    if (diff) steps.push(diff)
    if (opts.onBytes) steps.push(byteCounter(opts.onBytes))
    if (opts.compression !== 'none') steps.push(compressStream(opts.compression))
    steps.push(ingest.stream)
    await pipeAll(steps, opts.signal)
    const staged = await ingest.stage()
    return { staged, diffId: diff ? diff.diffId : asDiffId(staged.digest), diffSize: diff ? diff.size : staged.size, compression: opts.compression }
  } catch (err) {
    await ingest.abort()
    throw err
  }
}
