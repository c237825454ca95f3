/**
 * What the registry server needs from its storage. The filesystem implementation is
 * `FilesystemStorage` (fs-storage.ts); the interface is shaped so that an object store (S3-compatible)
 * can implement it: every operation names whole objects by key, content is addressed by digest and
 * never changes once visible, and the few mutable records (tags, links, upload sessions) are small
 * objects replaced whole.
 *
 * Vocabulary:
 * - a *blob* is content stored once for the whole registry, under its digest;
 * - a *link* makes a blob readable in one repository (`linkBlob`); a repository can read only the
 *   blobs it received or mounted;
 * - a *revision* is a manifest present in a repository (by digest); a *tag* names a revision;
 * - a *referrer* is a manifest whose `subject` is another manifest (the referrers API);
 * - an *upload* is a session receiving a blob; its bytes become a blob only when `completeUpload`
 *   has verified their digest (and the caller their size).
 *
 * Guarantees every implementation gives (and the shared test suite checks):
 * - a blob is visible only when complete and verified; a revision never points to a missing blob
 *   unless a client deleted that blob explicitly;
 * - a process killed at any moment leaves either the old or the new state of each record;
 * - uploads survive a restart: `writeUpload` may continue a session started by an earlier process.
 *
 * Garbage collection (gc.ts) runs against this interface while the server keeps serving: it moves
 * unreferenced blobs to a trash (`trashBlob`), looks again for manifests that arrived meanwhile,
 * restores what they reference, and only then empties the trash. `statBlob` restores a trashed blob
 * by itself, so a blob a client is about to use is never lost.
 */
import type { Readable } from 'node:stream'
import type { Digest } from '../oci/digest.js'
import type { Descriptor } from '../oci/types.js'

export interface BlobStat {
  digest: Digest
  size: number
  /** Last time the blob was written or linked (ms since the epoch): gc's grace period counts from it. */
  modifiedAt: number
}

/** Inclusive byte range. */
export interface ByteRange {
  start: number
  end: number
}

/** A blob that can be read at any offset (an open file); see RegistryStorage.openBlobFile. */
export interface RandomAccessBlob {
  /** Reads up to `length` bytes at `position` into the start of `buf`; resolves to the count read. */
  read(buf: Buffer, length: number, position: number): Promise<number>
  close(): Promise<void>
}

export interface UploadState {
  id: string
  repository: string
  /** Bytes received so far. */
  offset: number
  startedAt: number
  updatedAt: number
}

export interface StoredManifest {
  digest: Digest
  mediaType: string
  size: number
  /** When the revision was last written (ms since the epoch). */
  modifiedAt: number
}

export interface ManifestPut {
  digest: Digest
  mediaType: string
  bytes: Buffer
  /** Digests of the blobs and manifests it references: checked again after the revision is written. */
  references: Digest[]
  /** Present when the manifest has a `subject`: its entry for the referrers API. */
  referrer?: { subject: Digest; descriptor: Descriptor }
}

export interface RepositoryLink {
  digest: Digest
  modifiedAt: number
}

export interface WriteUploadOptions {
  signal?: AbortSignal
  /** The number of bytes the caller announced; more is refused (SIZE_INVALID), fewer is kept. */
  length?: number
}

export interface RegistryStorage {
  /** A short name for logs and metrics: `filesystem`, `s3`, … */
  readonly kind: string
  init(): Promise<void>

  // --- content, global -------------------------------------------------------------------------
  /** undefined when absent (a blob gc had moved to its trash is brought back first). */
  statBlob(digest: Digest): Promise<BlobStat | undefined>
  /** A fresh stream of the blob (or of a range of it); BLOB_UNKNOWN when absent. */
  openBlob(digest: Digest, range?: ByteRange): Promise<Readable>
  /**
   * Optional, for storage on a local file system: the blob opened for reads at any offset, which the
   * server sends through reusable buffers (send.ts) instead of a stream; BLOB_UNKNOWN when absent.
   */
  openBlobFile?(digest: Digest): Promise<RandomAccessBlob>
  /** A small blob whole (manifests); SIZE_INVALID above `maxBytes`, BLOB_UNKNOWN when absent. */
  readBlob(digest: Digest, maxBytes: number): Promise<Buffer>
  listBlobs(signal?: AbortSignal): AsyncIterable<BlobStat>

  // --- repositories ------------------------------------------------------------------------------
  /** Every repository, sorted. */
  listRepositories(signal?: AbortSignal): Promise<string[]>
  repositoryExists(repository: string): Promise<boolean>
  /** Links an existing blob into a repository and refreshes its time; false when the blob is absent. */
  linkBlob(repository: string, digest: Digest): Promise<boolean>
  unlinkBlob(repository: string, digest: Digest): Promise<boolean>
  isBlobLinked(repository: string, digest: Digest): Promise<boolean>
  listBlobLinks(repository: string, signal?: AbortSignal): AsyncIterable<RepositoryLink>

  // --- uploads -----------------------------------------------------------------------------------
  createUpload(repository: string): Promise<UploadState>
  getUpload(id: string): Promise<UploadState | undefined>
  /**
   * Appends `body` at `offset`, which must be the current size (else BLOB_UPLOAD_INVALID with
   * `detail.offset`, the current size). Bytes received before an error are kept: they are a valid
   * prefix, and the client learns the new offset from the upload's status.
   */
  writeUpload(id: string, offset: number, body: AsyncIterable<Uint8Array>, opts?: WriteUploadOptions): Promise<UploadState>
  /**
   * Verifies that the bytes hash to `expected` (DIGEST_INVALID otherwise, and the session is dropped),
   * publishes the blob, links it into the upload's repository and ends the session.
   */
  completeUpload(id: string, expected: Digest, opts?: { signal?: AbortSignal }): Promise<BlobStat>
  cancelUpload(id: string): Promise<boolean>
  listUploads(signal?: AbortSignal): AsyncIterable<UploadState>

  // --- manifests ---------------------------------------------------------------------------------
  /**
   * Stores a manifest (as a blob), records the revision, its referrer entry, then the tag. The
   * references are checked after the revision is visible (MANIFEST_BLOB_UNKNOWN, and the revision is
   * withdrawn), which is what makes concurrent gc safe.
   */
  putManifest(repository: string, manifest: ManifestPut, tag?: string): Promise<void>
  getManifest(repository: string, digest: Digest): Promise<StoredManifest | undefined>
  resolveTag(repository: string, tag: string): Promise<Digest | undefined>
  /** Tags, sorted lexically. */
  listTags(repository: string): Promise<string[]>
  deleteTag(repository: string, tag: string): Promise<boolean>
  /** Removes the revision, the tags naming it and its referrer entry. */
  deleteManifest(repository: string, digest: Digest): Promise<boolean>
  listManifests(repository: string, signal?: AbortSignal): AsyncIterable<StoredManifest>
  /** Descriptors of the manifests whose subject is `subject`. */
  listReferrers(repository: string, subject: Digest): Promise<Descriptor[]>

  // --- garbage collection ------------------------------------------------------------------------
  /** Moves an unreferenced blob out of sight if it was not modified since `notModifiedSince`. */
  trashBlob(digest: Digest, notModifiedSince: number): Promise<boolean>
  /** Brings trashed blobs back (those `which` selects, or all); returns their digests. */
  restoreTrash(which?: (d: Digest) => boolean): Promise<Digest[]>
  /** Deletes trashed blobs for good; returns the bytes freed. */
  emptyTrash(): Promise<{ blobs: number; bytes: number }>
  /** An exclusive lock between processes (gc runs one at a time); resolves to its release. */
  lock(name: string): Promise<() => Promise<void>>
}
