/**
 * Garbage collection, safe while the registry serves pushes (distribution's needs read-only mode).
 *
 * 1. Mark: every manifest revision of every repository is a root; it keeps its own blob and the blobs
 *    and manifests it references. With `deleteUntagged`, revisions that no tag reaches (directly, through
 *    an index, or as a referrer of a reached manifest) are deleted first.
 * 2. Sweep: blobs that are not marked and were not written or linked within the grace period are moved
 *    to the trash. Fresh blobs are kept: they were just pushed and their manifest may be on its way.
 * 3. Look again: revisions that appeared since step 1 (manifests pushed meanwhile) are marked, and what
 *    they reference comes back from the trash. A manifest push writes its revision before it checks its
 *    blobs, so a push either is seen here or finds its blob missing and fails cleanly; never is a
 *    manifest stored that points at a deleted blob.
 * 4. The trash is emptied; links to blobs that no longer exist are removed.
 *
 * Uploads in progress are separate from blobs and never touched; `purgeUploads` removes sessions idle
 * longer than a limit. A gc killed midway leaves its trash, which the next gc restores before starting.
 */
import { throwIfAborted } from '../errors/index.js'
import { parseDigest, type Digest } from '../oci/digest.js'
import type { RegistryStorage, StoredManifest } from './storage.js'

export interface GcOptions {
  /** Report what would be deleted, delete nothing. */
  dryRun: boolean
  /** Also delete manifests that no tag reaches. */
  deleteUntagged: boolean
  /** Unreferenced blobs and untagged manifests younger than this are kept. */
  gracePeriodMs: number
  signal?: AbortSignal
  /** Called after each phase, for progress reports. */
  onPhase?: (phase: 'mark' | 'sweep' | 'recheck' | 'links' | 'done') => void
}

export interface GcReport {
  dryRun: boolean
  startedAt: string
  durationMs: number
  repositories: number
  manifests: number
  /** Untagged manifests deleted (or that would be, in a dry run). */
  manifestsDeleted: { repository: string; digest: Digest }[]
  blobs: number
  blobsMarked: number
  /** Unreferenced blobs kept because they are younger than the grace period. */
  blobsFresh: number
  /** Blobs deleted (or that would be). */
  blobsDeleted: number
  bytesFreed: number
  /** Blobs that a manifest pushed during the run claimed back. */
  blobsRestored: number
  linksRemoved: number
}

const MANIFEST_READ_LIMIT = 64 << 20

export async function collectGarbage(storage: RegistryStorage, opts: GcOptions): Promise<GcReport> {
  const release = await storage.lock('gc')
  try {
    return await run(storage, opts)
  } finally {
    await release()
  }
}

async function run(storage: RegistryStorage, opts: GcOptions): Promise<GcReport> {
  const t0 = Date.now()
  const signal = opts.signal
  // a gc killed after moving blobs to the trash: put everything back, this run decides afresh
  await storage.restoreTrash()
  const cutoff = t0 - opts.gracePeriodMs
  const report: GcReport = {
    dryRun: opts.dryRun,
    startedAt: new Date(t0).toISOString(),
    durationMs: 0,
    repositories: 0,
    manifests: 0,
    manifestsDeleted: [],
    blobs: 0,
    blobsMarked: 0,
    blobsFresh: 0,
    blobsDeleted: 0,
    bytesFreed: 0,
    blobsRestored: 0,
    linksRemoved: 0,
  }
  const marked = new Set<Digest>()
  const seen = new Set<string>()
  const referencesOf = async (digest: Digest): Promise<Digest[]> => {
    try {
      return references(await storage.readBlob(digest, MANIFEST_READ_LIMIT))
    } catch {
      return []
    }
  }
  const mark = async (repo: string, m: StoredManifest): Promise<void> => {
    seen.add(`${repo}@${m.digest}`)
    marked.add(m.digest)
    for (const d of await referencesOf(m.digest)) marked.add(d)
  }

  // 1. mark (deleting untagged manifests first if asked)
  const repos = await storage.listRepositories(signal)
  report.repositories = repos.length
  for (const repo of repos) {
    throwIfAborted(signal)
    const manifests: StoredManifest[] = []
    for await (const m of storage.listManifests(repo, signal)) manifests.push(m)
    report.manifests += manifests.length
    let keep = manifests
    if (opts.deleteUntagged) {
      const reachable = await reachableFromTags(storage, repo, manifests, referencesOf)
      keep = []
      for (const m of manifests) {
        if (reachable.has(m.digest) || m.modifiedAt >= cutoff) {
          keep.push(m)
          continue
        }
        report.manifestsDeleted.push({ repository: repo, digest: m.digest })
        if (!opts.dryRun) await storage.deleteManifest(repo, m.digest)
      }
    }
    for (const m of keep) await mark(repo, m)
  }
  report.blobsMarked = marked.size
  opts.onPhase?.('mark')

  // 2. sweep
  const candidates: { digest: Digest; size: number }[] = []
  for await (const b of storage.listBlobs(signal)) {
    report.blobs++
    if (marked.has(b.digest)) continue
    if (b.modifiedAt >= cutoff) {
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
  for (const c of candidates) {
    throwIfAborted(signal)
    await storage.trashBlob(c.digest, cutoff)
  }
  opts.onPhase?.('sweep')

  // 3. manifests pushed while we swept claim their blobs back
  for (const repo of await storage.listRepositories(signal)) {
    for await (const m of storage.listManifests(repo, signal)) {
      if (!seen.has(`${repo}@${m.digest}`)) await mark(repo, m)
    }
  }
  report.blobsRestored = (await storage.restoreTrash((d) => marked.has(d))).length
  const freed = await storage.emptyTrash()
  report.blobsDeleted = freed.blobs
  report.bytesFreed = freed.bytes
  opts.onPhase?.('recheck')

  // 4. links to blobs that are gone (old links only: a fresh one may belong to a push under way)
  for (const repo of await storage.listRepositories(signal)) {
    for await (const link of storage.listBlobLinks(repo, signal)) {
      if (link.modifiedAt >= cutoff) continue
      if ((await storage.statBlob(link.digest)) === undefined) {
        await storage.unlinkBlob(repo, link.digest)
        report.linksRemoved++
      }
    }
  }
  opts.onPhase?.('links')
  report.durationMs = Date.now() - t0
  opts.onPhase?.('done')
  return report
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
  while (queue.length > 0) {
    const d = queue.shift() as Digest
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
      parseDigest(d)
      out.push(d as Digest)
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

/** Removes upload sessions idle for longer than `olderThanMs`. */
export async function purgeUploads(storage: RegistryStorage, opts: { olderThanMs: number; dryRun?: boolean; signal?: AbortSignal }): Promise<PurgeReport> {
  const cutoff = Date.now() - opts.olderThanMs
  const report: PurgeReport = { purged: 0, bytes: 0, uploads: [] }
  for await (const u of storage.listUploads(opts.signal)) {
    if (u.updatedAt >= cutoff) continue
    if (!opts.dryRun && !(await storage.cancelUpload(u.id))) continue
    report.purged++
    report.bytes += u.offset
    report.uploads.push({ id: u.id, repository: u.repository, offset: u.offset, updatedAt: new Date(u.updatedAt).toISOString() })
  }
  return report
}
