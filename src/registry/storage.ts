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
 *   has verified their digest (and the caller their size);
 * - a *hold* is what a push in progress has on a blob (or a manifest pushed by digest) of a repository
 *   before its manifest names it: each check (HEAD), upload or mount adds one, each stored manifest that
 *   references the blob releases one. gc never deletes what a live hold protects; a hold lapses when
 *   nothing touched it for `holdTtlMs` (an abandoned push).
 *
 * Guarantees every implementation gives (and the shared test suite checks):
 * - a blob is visible only when complete and verified; a revision never points to a missing blob
 *   unless a client deleted that blob explicitly;
 * - a process killed at any moment leaves either the old or the new state of each record;
 * - uploads survive a restart: `writeUpload` may continue a session started by an earlier process.
 *
 * Concurrency: what stores or protects (putManifest, completeUpload, linkBlob, checkBlob, checkManifest,
 * deleteTag) runs *shared*; what deletes on a decision taken earlier (gc, purges, repairs, a client's
 * manifest or blob DELETE) runs *exclusively*, through `exclusive`, and checks its decision again there.
 * The lock holds between processes (gc may run in another one) and dies with its holder. So a tag is
 * never written to a manifest being deleted, and a manifest is never stored while a blob it needs is.
 */
import type { Readable } from 'node:stream'
import type { Digest } from '../oci/digest.js'
import type { Descriptor } from '../oci/types.js'

export interface BlobStat {
  digest: Digest
  size: number
  /**
   * Last time the blob was written, linked, held, or named by a stored manifest (ms since the epoch):
   * gc's grace period counts from it, and gc deletes nothing touched after its run began.
   */
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
  /** When the revision was last written, or named by a stored index (ms since the epoch). */
  modifiedAt: number
}

/** A blob or manifest a manifest references, as the manifest declares it. */
export interface ManifestReference {
  digest: Digest
  size: number
}

export interface ManifestPut {
  digest: Digest
  mediaType: string
  bytes: Buffer
  /** Config, layers: each must be in the repository (linked, or a manifest of it) with this size. */
  blobs: ManifestReference[]
  /** An index's entries: each must be a manifest of the repository (or a linked blob) with this size. */
  manifests: ManifestReference[]
  /** Present when the manifest has a `subject`: its entry for the referrers API. */
  referrer?: { subject: Digest; descriptor: Descriptor }
}

export interface RepositoryLink {
  digest: Digest
  modifiedAt: number
}

export interface Hold {
  digest: Digest
  /** Pushes holding it (checks, uploads, mounts not yet followed by a manifest naming it). */
  count: number
  /** When a push last touched it (ms since the epoch). */
  modifiedAt: number
  /** Untouched for longer than the storage's hold TTL: protects nothing any more. */
  expired: boolean
}

/** A reference found in a repository's referrers index. */
export interface ReferrerEntry {
  subject: Digest
  digest: Digest
}

export interface WriteUploadOptions {
  signal?: AbortSignal
  /** The number of bytes the caller announced; more is refused (SIZE_INVALID), fewer is kept. */
  length?: number
}

export interface RegistryStorage {
  /** A short name for logs and metrics: `filesystem`, `s3`, … */
  readonly kind: string
  /** How long a hold lives without being touched (ms). */
  readonly holdTtlMs: number
  init(): Promise<void>
  /** Releases what the storage keeps open (its lock files); the object is not used afterwards. */
  close(): Promise<void>

  // --- content, global -------------------------------------------------------------------------
  /** undefined when absent (a blob an older gc had moved to its trash is brought back first). */
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
  /** A mount: links an existing blob into a repository and holds it there; false when the blob is absent. */
  linkBlob(repository: string, digest: Digest): Promise<boolean>
  /** A client's blob DELETE (exclusive). */
  unlinkBlob(repository: string, digest: Digest): Promise<boolean>
  isBlobLinked(repository: string, digest: Digest): Promise<boolean>
  listBlobLinks(repository: string, signal?: AbortSignal): AsyncIterable<RepositoryLink>
  /**
   * A client checks (HEAD) a blob before naming it in a manifest: its stat when the repository has it
   * (linked, or one of its manifests), and a hold on it.
   */
  checkBlob(repository: string, digest: Digest): Promise<BlobStat | undefined>
  /** The same for a manifest by digest (an index's entry): the revision, when its bytes are there too. */
  checkManifest(repository: string, digest: Digest): Promise<StoredManifest | undefined>
  listHolds(repository: string, signal?: AbortSignal): AsyncIterable<Hold>

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
   * publishes the blob, links it into the upload's repository, holds it there and ends the session.
   */
  completeUpload(id: string, expected: Digest, opts?: { signal?: AbortSignal }): Promise<BlobStat>
  cancelUpload(id: string): Promise<boolean>
  /** Sessions; one whose records are broken is listed with `repository` ''. */
  listUploads(signal?: AbortSignal): AsyncIterable<UploadState>

  // --- manifests ---------------------------------------------------------------------------------
  /**
   * Stores a manifest (as a blob), records the revision, its referrer entry, then the tag, after checking
   * (shared, so that no deletion runs meanwhile) that everything it references is in the repository with
   * the declared size (MANIFEST_BLOB_UNKNOWN, MANIFEST_INVALID). It releases the holds it fulfils; pushed
   * by digest (no tag), it is held itself until an index names it.
   */
  putManifest(repository: string, manifest: ManifestPut, tag?: string): Promise<void>
  getManifest(repository: string, digest: Digest): Promise<StoredManifest | undefined>
  resolveTag(repository: string, tag: string): Promise<Digest | undefined>
  /** Tags, sorted lexically. */
  listTags(repository: string): Promise<string[]>
  deleteTag(repository: string, tag: string): Promise<boolean>
  /** Removes the revision, the tags naming it and its referrer entry (exclusive). */
  deleteManifest(repository: string, digest: Digest): Promise<boolean>
  listManifests(repository: string, signal?: AbortSignal): AsyncIterable<StoredManifest>
  /** Descriptors of the manifests whose subject is `subject`. */
  listReferrers(repository: string, subject: Digest): Promise<Descriptor[]>
  /** Every entry of the repository's referrers index, also those whose manifest is gone. */
  listReferrerEntries(repository: string, signal?: AbortSignal): AsyncIterable<ReferrerEntry>
  /** Blobs an older gc left in its trash (a registry killed while it ran). */
  listTrash(): Promise<Digest[]>

  // --- deletions: gc, purges, repairs ------------------------------------------------------------
  /**
   * Runs `fn` while no exclusive section runs (shared, as pushes are): what `fn` reads is not being
   * deleted meanwhile. `fn` may read; it must not call the methods above that take the lock.
   */
  shared<T>(fn: () => Promise<T>): Promise<T>
  /**
   * Runs `fn` alone: no other exclusive section and no shared operation (above) runs meanwhile, in this
   * process or another. `fn` must use `tx` only (the storage's own methods would wait for it).
   */
  exclusive<T>(fn: (tx: StorageTx) => Promise<T>): Promise<T>
  /** An exclusive lock between processes for a job that runs one at a time (`gc`); CONFLICT when taken. */
  lock(name: string): Promise<() => Promise<void>>
}

/** What an exclusive section may do: reads and deletions, without locks of their own. */
export interface StorageTx {
  statBlob(digest: Digest): Promise<BlobStat | undefined>
  /** Deletes a blob for good; its size, or undefined when it was absent. */
  deleteBlob(digest: Digest): Promise<number | undefined>
  /** Brings back a blob an older gc left in its trash (or drops the trashed copy if one is in place). */
  restoreTrashed(digest: Digest): Promise<void>
  isBlobLinked(repository: string, digest: Digest): Promise<boolean>
  /** Links without holding (a repair). */
  linkBlob(repository: string, digest: Digest): Promise<boolean>
  unlinkBlob(repository: string, digest: Digest): Promise<boolean>
  getManifest(repository: string, digest: Digest): Promise<StoredManifest | undefined>
  /** Writes a revision record for bytes already stored (a repair). */
  putRevision(repository: string, digest: Digest, mediaType: string, size: number): Promise<void>
  resolveTag(repository: string, tag: string): Promise<Digest | undefined>
  listTags(repository: string): Promise<string[]>
  deleteTag(repository: string, tag: string): Promise<boolean>
  deleteManifest(repository: string, digest: Digest): Promise<boolean>
  removeReferrerEntry(repository: string, entry: ReferrerEntry): Promise<boolean>
  getHold(repository: string, digest: Digest): Promise<Hold | undefined>
  removeHold(repository: string, digest: Digest): Promise<boolean>
  getUpload(id: string): Promise<UploadState | undefined>
  /** A request is working on the session now (in some live process). */
  uploadBusy(id: string): Promise<boolean>
  /** Removes a session (or the remains of a broken one). */
  dropUpload(id: string): Promise<boolean>
}
