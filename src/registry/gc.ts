/**
 * Garbage collection, safe while the registry serves pushes (distribution's needs read-only mode).
 *
 * 1. Mark: every manifest revision of every repository is a root; it keeps its own blob and the blobs
 *    and manifests it references. With `deleteUntagged`, revisions that no tag reaches (directly, through
 *    an index, or as a referrer of a reached manifest) are deleted first.
 * 2. Sweep: blobs that are not marked, not held by a push in progress, and not written, linked, held or
 *    named by a manifest within the grace period are deleted, with their links.
 *
 * Every deletion happens in a short exclusive section of the storage's lock (storage.ts), which no push
 * step that stores or protects something can overlap, in this process or another, and only after its
 * decision has been checked again there: the revision or blob must not have been touched since this run
 * began (a push that names a blob, holds it or links it touches it), an untagged manifest must still be
 * untagged and unheld. So a tag is never written to a manifest being deleted, a manifest is never stored
 * naming a blob being deleted, and what a push holds (checked, uploaded or mounted, and not yet named by
 * its manifest) is never deleted: with holds, a push does not fail because gc ran, whatever the grace
 * period. A hold lapses when nothing touched it for the storage's `holdTtlMs` (an abandoned push).
 *
 * Uploads in progress are separate from blobs and never touched; `purgeUploads` removes sessions idle
 * longer than a limit. A gc killed at any moment leaves nothing half-done: links go before their blob,
 * and each record is removed atomically.
 */
import { throwIfAborted } from '../errors/index.js'
import { asDigest, type Digest } from '../oci/digest.js'
import { subjectOf } from './manifest.js'
import type { RegistryStorage, StorageTx, StoredManifest, UploadState } from './storage.js'

export interface GcOptions {
  /** Report what would be deleted, delete nothing. */
  dryRun: boolean
  /** Also delete manifests that no tag reaches. */
  deleteUntagged: boolean
  /** Unreferenced blobs and untagged manifests touched more recently than this are kept. */
  gracePeriodMs: number
  signal?: AbortSignal
  /** Called after each phase, for progress reports. */
  onPhase?: (phase: 'mark' | 'sweep' | 'links' | 'done') => void
}

export interface GcReport {
  dryRun: boolean
  startedAt: string
  durationMs: number
  repositories: number
  manifests: number
  /** Untagged manifests deleted (or that would be, in a dry run). */
  manifestsDeleted: { repository: string; digest: Digest }[]
  /** Untagged manifests kept because a push holds them (pushed or checked by digest, index not yet there). */
  manifestsHeld: number
  blobs: number
  blobsMarked: number
  /** Unreferenced blobs kept because they were touched within the grace period. */
  blobsFresh: number
  /** Unreferenced blobs kept because a push in progress holds them. */
  blobsHeld: number
  /** Blobs deleted (or that would be). */
  blobsDeleted: number
  bytesFreed: number
  /** Candidates that a push used while the run went on (kept). */
  blobsInUse: number
  linksRemoved: number
  /** Holds of abandoned pushes removed. */
  holdsExpired: number
}

const MANIFEST_READ_LIMIT = 64 << 20
/** File times come from a coarser clock than Date.now(): "touched since the run began" counts from a bit earlier. */
const CLOCK_SLACK_MS = 1000
/** Deletions per exclusive section: pushes wait for one section at most. */
const BATCH = 64

export async function collectGarbage(storage: RegistryStorage, opts: GcOptions): Promise<GcReport> {
  const release = await storage.lock('gc')
  try {
    return await run(storage, opts)
  } finally {
    await release()
  }
}

interface UntaggedCandidate {
  digest: Digest
  subject: Digest | undefined
}

async function run(storage: RegistryStorage, opts: GcOptions): Promise<GcReport> {
  const t0 = Date.now()
  const signal = opts.signal
  // what was touched after this (a push naming, holding or linking it) is left alone by this run
  const limit = Math.min(t0 - CLOCK_SLACK_MS, t0 - opts.gracePeriodMs)
  const report: GcReport = {
    dryRun: opts.dryRun,
    startedAt: new Date(t0).toISOString(),
    durationMs: 0,
    repositories: 0,
    manifests: 0,
    manifestsDeleted: [],
    manifestsHeld: 0,
    blobs: 0,
    blobsMarked: 0,
    blobsFresh: 0,
    blobsHeld: 0,
    blobsDeleted: 0,
    bytesFreed: 0,
    blobsInUse: 0,
    linksRemoved: 0,
    holdsExpired: 0,
  }
  // an older gc killed while it used a trash: its blobs come back first, this run decides afresh
  if (!opts.dryRun) {
    const trashed = await storage.listTrash()
    if (trashed.length > 0) await storage.exclusive(async (tx) => {
      for (const d of trashed) await tx.restoreTrashed(d)
    })
  }
  const marked = new Set<Digest>()
  const held = new Set<Digest>()
  const links = new Map<Digest, string[]>()
  const expiredHolds: { repository: string; digest: Digest }[] = []
  const cache = new Map<Digest, Buffer | undefined>()
  const bytesOf = async (digest: Digest): Promise<Buffer | undefined> => {
    if (cache.has(digest)) return cache.get(digest)
    const b = await storage.readBlob(digest, MANIFEST_READ_LIMIT).catch(() => undefined)
    cache.set(digest, b)
    return b
  }
  const referencesOf = async (digest: Digest): Promise<Digest[]> => {
    const b = await bytesOf(digest)
    return b === undefined ? [] : references(b)
  }

  // 1. mark (deleting untagged manifests first if asked)
  const repos = await storage.listRepositories(signal)
  report.repositories = repos.length
  for (const repo of repos) {
    throwIfAborted(signal)
    const heldHere = new Set<Digest>()
    for await (const h of storage.listHolds(repo, signal)) {
      if (h.expired || h.count <= 0) expiredHolds.push({ repository: repo, digest: h.digest })
      else {
        heldHere.add(h.digest)
        held.add(h.digest)
      }
    }
    const manifests: StoredManifest[] = []
    for await (const m of storage.listManifests(repo, signal)) manifests.push(m)
    report.manifests += manifests.length
    let keep = manifests
    if (opts.deleteUntagged) {
      const reachable = await reachableFromTags(storage, repo, manifests, referencesOf)
      const candidates: UntaggedCandidate[] = []
      for (const m of manifests) {
        if (reachable.has(m.digest) || m.modifiedAt >= limit) continue
        if (heldHere.has(m.digest)) {
          report.manifestsHeld++
          continue
        }
        const b = await bytesOf(m.digest)
        candidates.push({ digest: m.digest, subject: b === undefined ? undefined : subjectOf(b) })
      }
      const deleted = new Set<Digest>()
      for (let i = 0; i < candidates.length; i += BATCH) {
        throwIfAborted(signal)
        const batch = candidates.slice(i, i + BATCH)
        const gone = opts.dryRun ? batch.map((c) => c.digest) : await storage.exclusive((tx) => deleteUntagged(tx, repo, batch, limit))
        for (const d of gone) {
          deleted.add(d)
          report.manifestsDeleted.push({ repository: repo, digest: d })
        }
      }
      keep = manifests.filter((m) => !deleted.has(m.digest))
    }
    for (const m of keep) {
      marked.add(m.digest)
      for (const d of await referencesOf(m.digest)) marked.add(d)
    }
    for await (const l of storage.listBlobLinks(repo, signal)) {
      const where = links.get(l.digest)
      if (where) where.push(repo)
      else links.set(l.digest, [repo])
    }
  }
  report.blobsMarked = marked.size
  opts.onPhase?.('mark')

  // 2. sweep
  const present = new Set<Digest>()
  const candidates: { digest: Digest; size: number }[] = []
  for await (const b of storage.listBlobs(signal)) {
    report.blobs++
    present.add(b.digest)
    if (marked.has(b.digest)) continue
    if (held.has(b.digest)) {
      report.blobsHeld++
      continue
    }
    if (b.modifiedAt >= limit) {
      report.blobsFresh++
      continue
    }
    candidates.push({ digest: b.digest, size: b.size })
  }
  if (opts.dryRun) {
    report.blobsDeleted = candidates.length
    report.bytesFreed = candidates.reduce((n, c) => n + c.size, 0)
    report.durationMs = Date.now() - t0
    opts.onPhase?.('done')
    return report
  }
  for (let i = 0; i < candidates.length; i += BATCH) {
    throwIfAborted(signal)
    const batch = candidates.slice(i, i + BATCH)
    await storage.exclusive(async (tx) => {
      for (const c of batch) {
        const st = await tx.statBlob(c.digest)
        if (st === undefined) continue
        if (st.modifiedAt >= limit) {
          report.blobsInUse++
          continue
        }
        // links first: killed in between, a blob without links is left, never a link without its blob
        for (const repo of links.get(c.digest) ?? []) if (await tx.unlinkBlob(repo, c.digest)) report.linksRemoved++
        const size = await tx.deleteBlob(c.digest)
        if (size !== undefined) {
          report.blobsDeleted++
          report.bytesFreed += size
        }
      }
    })
  }
  opts.onPhase?.('sweep')

  // 3. links to blobs that were already gone (left by older versions or by hand), and lapsed holds
  const dangling: { repository: string; digest: Digest }[] = []
  for (const [d, where] of links) if (!present.has(d)) for (const repo of where) dangling.push({ repository: repo, digest: d })
  for (let i = 0; i < dangling.length; i += BATCH) {
    const batch = dangling.slice(i, i + BATCH)
    await storage.exclusive(async (tx) => {
      for (const l of batch) {
        if ((await tx.statBlob(l.digest)) !== undefined) continue
        if (await tx.unlinkBlob(l.repository, l.digest)) report.linksRemoved++
      }
    })
  }
  for (let i = 0; i < expiredHolds.length; i += BATCH) {
    const batch = expiredHolds.slice(i, i + BATCH)
    await storage.exclusive(async (tx) => {
      for (const h of batch) {
        const now = await tx.getHold(h.repository, h.digest)
        if (now !== undefined && (now.expired || now.count <= 0) && (await tx.removeHold(h.repository, h.digest))) report.holdsExpired++
      }
    })
  }
  opts.onPhase?.('links')
  report.durationMs = Date.now() - t0
  opts.onPhase?.('done')
  return report
}

/** Deletes the candidates that are, checked again under the lock, still untagged, unheld and untouched. */
async function deleteUntagged(tx: StorageTx, repo: string, batch: readonly UntaggedCandidate[], limit: number): Promise<Digest[]> {
  const tagged = new Set<Digest>()
  for (const tag of await tx.listTags(repo)) {
    const d = await tx.resolveTag(repo, tag)
    if (d !== undefined) tagged.add(d)
  }
  const out: Digest[] = []
  for (const c of batch) {
    if (tagged.has(c.digest)) continue
    const rec = await tx.getManifest(repo, c.digest)
    // rewritten, named by an index or held since the run began: a push wants it
    if (rec === undefined || rec.modifiedAt >= limit) continue
    const hold = await tx.getHold(repo, c.digest)
    if (hold !== undefined && !hold.expired && hold.count > 0) continue
    if (c.subject !== undefined) {
      // a referrer whose subject was tagged or pushed meanwhile is reachable again
      if (tagged.has(c.subject)) continue
      const subject = await tx.getManifest(repo, c.subject)
      if (subject !== undefined && subject.modifiedAt >= limit) continue
    }
    if (await tx.deleteManifest(repo, c.digest)) out.push(c.digest)
  }
  return out
}

/** Manifests a tag reaches: tagged ones, their index entries (recursively), and referrers of those. */
async function reachableFromTags(
  storage: RegistryStorage,
  repo: string,
  manifests: readonly StoredManifest[],
  referencesOf: (d: Digest) => Promise<Digest[]>,
): Promise<Set<Digest>> {
  const present = new Set(manifests.map((m) => m.digest))
  const reachable = new Set<Digest>()
  const queue: Digest[] = []
  for (const tag of await storage.listTags(repo)) {
    const d = await storage.resolveTag(repo, tag)
    if (d !== undefined && present.has(d) && !reachable.has(d)) {
      reachable.add(d)
      queue.push(d)
    }
  }
  for (let d = queue.shift(); d !== undefined; d = queue.shift()) {
    const next = [...(await referencesOf(d)), ...(await storage.listReferrers(repo, d)).map((r) => r.digest)]
    for (const n of next) {
      if (present.has(n) && !reachable.has(n)) {
        reachable.add(n)
        queue.push(n)
      }
    }
  }
  return reachable
}

/** Digests a manifest or index references (config, layers, entries); the subject is not a reference. */
export function references(bytes: Buffer): Digest[] {
  let doc: unknown
  try {
    doc = JSON.parse(bytes.toString('utf8'))
  } catch {
    return []
  }
  if (typeof doc !== 'object' || doc === null) return []
  const m = doc as { config?: unknown; layers?: unknown; manifests?: unknown; blobs?: unknown }
  const out: Digest[] = []
  const add = (x: unknown): void => {
    if (typeof x !== 'object' || x === null) return
    const d = (x as { digest?: unknown }).digest
    if (typeof d !== 'string') return
    try {
      out.push(asDigest(d))
    } catch {
      // not a digest we store
    }
  }
  add(m.config)
  for (const list of [m.layers, m.manifests, m.blobs]) if (Array.isArray(list)) list.forEach(add)
  return out
}

export interface PurgeReport {
  purged: number
  bytes: number
  uploads: { id: string; repository: string; offset: number; updatedAt: string }[]
}

/**
 * Removes upload sessions idle for longer than `olderThanMs`. Each is checked again under the storage's
 * exclusive lock: one that received bytes meanwhile, or that a request is working on, stays.
 */
export async function purgeUploads(storage: RegistryStorage, opts: { olderThanMs: number; dryRun?: boolean; signal?: AbortSignal }): Promise<PurgeReport> {
  const cutoff = Date.now() - opts.olderThanMs
  const report: PurgeReport = { purged: 0, bytes: 0, uploads: [] }
  const candidates: UploadState[] = []
  for await (const u of storage.listUploads(opts.signal)) if (u.updatedAt < cutoff) candidates.push(u)
  const add = (u: UploadState): void => {
    report.purged++
    report.bytes += u.offset
    report.uploads.push({ id: u.id, repository: u.repository, offset: u.offset, updatedAt: new Date(u.updatedAt).toISOString() })
  }
  if (opts.dryRun) {
    candidates.forEach(add)
    return report
  }
  for (let i = 0; i < candidates.length; i += BATCH) {
    throwIfAborted(opts.signal)
    const batch = candidates.slice(i, i + BATCH)
    await storage.exclusive(async (tx) => {
      for (const u of batch) {
        const now = await tx.getUpload(u.id)
        if (now !== undefined && now.updatedAt >= cutoff) continue
        if (await tx.uploadBusy(u.id)) continue
        if (await tx.dropUpload(u.id)) add(now ?? u)
      }
    })
  }
  return report
}
