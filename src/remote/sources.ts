/**
 * What this store knows about registries: which blobs are in which repository (pushed there or
 * pulled from there) and which uploads are under way. Rows in the metadata database, so they
 * survive the process (a killed push resumes) and are shared by concurrent commands.
 */
import type { DB } from '../metadata/db.js'
import { asDiffId, asDigest, type DiffId, type Digest } from '../oci/digest.js'

export interface RemoteBlob {
  repository: string
  digest: Digest
  mediaType: string
  size: number
  diffId?: DiffId
}

export class RemoteKnowledge {
  constructor(private readonly db: DB) {}

  /** Records that `repository` on `registry` holds a blob. */
  record(registry: string, blob: RemoteBlob): void {
    this.db.prepare(`INSERT INTO remote_blobs (registry, repository, digest, media_type, size, diff_id, updated) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(registry, repository, digest) DO UPDATE SET media_type = excluded.media_type, size = excluded.size,
        diff_id = COALESCE(excluded.diff_id, remote_blobs.diff_id), updated = excluded.updated`)
      .run(registry, blob.repository, blob.digest, blob.mediaType, blob.size, blob.diffId ?? null, Date.now())
  }

  /** Forgets a blob the registry turned out not to have. */
  forget(registry: string, repository: string, digest: Digest): void {
    this.db.prepare('DELETE FROM remote_blobs WHERE registry = ? AND repository = ? AND digest = ?').run(registry, repository, digest)
  }

  /** Whether `repository` is known to hold `digest`. */
  has(registry: string, repository: string, digest: Digest): boolean {
    return this.db.prepare('SELECT 1 FROM remote_blobs WHERE registry = ? AND repository = ? AND digest = ?').get(registry, repository, digest) !== undefined
  }

  /** Other repositories of the registry known to hold `digest`, most recent first. */
  repositoriesWith(registry: string, digest: Digest, except: string): string[] {
    return (this.db.prepare('SELECT repository FROM remote_blobs WHERE registry = ? AND digest = ? AND repository <> ? ORDER BY updated DESC LIMIT 5')
      .all(registry, digest, except) as { repository: string }[]).map((r) => r.repository)
  }

  /** Blobs of the registry holding the layer `diffId` (any compression), most recent first. */
  blobsForDiffId(registry: string, diffId: DiffId): RemoteBlob[] {
    const rows = this.db.prepare('SELECT repository, digest, media_type, size, diff_id FROM remote_blobs WHERE registry = ? AND diff_id = ? ORDER BY updated DESC LIMIT 10')
      .all(registry, diffId) as { repository: string; digest: string; media_type: string; size: number; diff_id: string }[]
    return rows.map((r) => ({ repository: r.repository, digest: asDigest(r.digest), mediaType: r.media_type, size: r.size, diffId: asDiffId(r.diff_id) }))
  }

  upload(registry: string, repository: string, digest: Digest): { location: string; offset: number } | undefined {
    return this.db.prepare('SELECT location, offset FROM remote_uploads WHERE registry = ? AND repository = ? AND digest = ?').get(registry, repository, digest) as
      | { location: string; offset: number }
      | undefined
  }

  saveUpload(registry: string, repository: string, digest: Digest, location: string, offset: number): void {
    this.db.prepare(`INSERT INTO remote_uploads (registry, repository, digest, location, offset, updated) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT(registry, repository, digest) DO UPDATE SET location = excluded.location, offset = excluded.offset, updated = excluded.updated`)
      .run(registry, repository, digest, location, offset, Date.now())
  }

  dropUpload(registry: string, repository: string, digest: Digest): void {
    this.db.prepare('DELETE FROM remote_uploads WHERE registry = ? AND repository = ? AND digest = ?').run(registry, repository, digest)
  }
}
