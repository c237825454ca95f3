/**
 * `cairn registry check`: finds what makes a registry inconsistent, and with `repair` fixes what can be
 * fixed without losing anything.
 *
 * Problems:
 * - `tag-without-manifest`: a tag whose revision is missing, or whose file does not name a digest;
 * - `manifest-without-bytes`: a revision whose manifest blob is gone (it cannot be served);
 * - `manifest-missing-blob`: a manifest naming a config or layer the repository cannot serve (gone, or
 *   not linked there);
 * - `manifest-missing-child`: an index naming a manifest the repository does not have;
 * - `dangling-link`: a link to a blob that is gone;
 * - `dangling-referrer`: a referrers-index entry of a manifest that is gone;
 * - `orphan-upload`: an upload folder that is not a usable session;
 * - `trashed-blob`: a blob left in trash/ by an older gc that was killed.
 *
 * The scan reads without a lock; every finding is then confirmed while no deletion runs (the storage's
 * shared lock), so that a gc or a DELETE running meanwhile is not reported as damage. A repair checks its
 * finding again inside an exclusive section, then fixes it there: removes the tag, the revision whose
 * bytes are gone (and the tags naming it), the dangling link or referrer entry, the broken upload folder;
 * links a blob that is present but not linked; writes the revision of an index entry whose bytes are
 * present; brings trashed blobs back. A blob whose bytes are gone cannot be repaired: its image must be
 * pushed again.
 */
import { throwIfAborted } from '../errors/index.js'
import type { Digest } from '../oci/digest.js'
import { parseManifest, type ParsedManifest } from './manifest.js'
import type { ReferrerEntry, RegistryStorage, StorageTx } from './storage.js'

export const ProblemKinds = [
  'tag-without-manifest',
  'manifest-without-bytes',
  'manifest-missing-blob',
  'manifest-missing-child',
  'dangling-link',
  'dangling-referrer',
  'orphan-upload',
  'trashed-blob',
] as const
export type ProblemKind = (typeof ProblemKinds)[number]

export interface Problem {
  kind: ProblemKind
  repository?: string
  tag?: string
  /** The manifest, blob or entry concerned. */
  digest?: Digest
  /** What it lacks (a blob or manifest it references, a tag's target). */
  missing?: Digest
  upload?: string
  /** One line, for people. */
  message: string
  /** With repair: whether it is fixed now, and what was done (or why nothing could be). */
  repaired?: boolean
  action?: string
}

export interface CheckReport {
  repair: boolean
  repositories: number
  tags: number
  manifests: number
  links: number
  uploads: number
  problems: Problem[]
  /** Problems fixed (with repair). */
  repaired: number
  /** Problems left. */
  remaining: number
}

export interface CheckOptions {
  repair?: boolean
  signal?: AbortSignal
}

/** What both a shared reader and an exclusive section can read. */
type Reader = Pick<StorageTx, 'statBlob' | 'getManifest' | 'resolveTag' | 'listTags' | 'isBlobLinked' | 'getUpload'>

interface Finding {
  problem: Problem
  /** Is it still there? (read under a lock) */
  present(r: Reader): Promise<boolean>
  /** Fixes it inside an exclusive section: what was done; undefined when it cannot be fixed. */
  fix?(tx: StorageTx): Promise<string>
  /** Why it cannot be fixed. */
  cannot?: string
}

const MANIFEST_READ_LIMIT = 64 << 20
const BATCH = 64

export async function checkRegistry(storage: RegistryStorage, opts: CheckOptions = {}): Promise<CheckReport> {
  const signal = opts.signal
  const repair = opts.repair ?? false
  const report: CheckReport = { repair, repositories: 0, tags: 0, manifests: 0, links: 0, uploads: 0, problems: [], repaired: 0, remaining: 0 }
  const findings: Finding[] = []
  const found = (f: Finding): void => {
    findings.push(f)
  }

  // blobs an older gc left in its trash: brought back first (with repair), so that the rest is judged
  // with them; the server brings one back when it is asked for, so until then they count as present
  const trash = new Set(await storage.listTrash())
  const exists = async (r: Reader, d: Digest): Promise<boolean> => (await r.statBlob(d)) !== undefined || trash.has(d)
  for (const d of trash) {
    found({
      problem: { kind: 'trashed-blob', digest: d, message: `blob ${d} is in trash/ (left by a gc that was killed)` },
      present: async () => (await storage.listTrash()).includes(d),
      fix: async (tx) => {
        await tx.restoreTrashed(d)
        return 'brought back to blobs/'
      },
    })
  }
  if (repair) {
    await settle(storage, findings.splice(0), report, true, signal)
    trash.clear()
  }

  const repos = await storage.listRepositories(signal)
  report.repositories = repos.length
  for (const repo of repos) {
    throwIfAborted(signal)
    // revisions, and what each names
    for await (const m of storage.listManifests(repo, signal)) {
      report.manifests++
      const where = `${repo}@${m.digest}`
      if (trash.has(m.digest)) continue
      let bytes: Buffer
      try {
        bytes = await storage.readBlob(m.digest, MANIFEST_READ_LIMIT)
      } catch {
        found({
          problem: { kind: 'manifest-without-bytes', repository: repo, digest: m.digest, message: `manifest ${where}: its bytes (blob ${m.digest}) are gone` },
          present: async (r) => (await r.getManifest(repo, m.digest)) !== undefined && !(await exists(r, m.digest)),
          fix: async (tx) => {
            const tags: string[] = []
            for (const t of await tx.listTags(repo)) if ((await tx.resolveTag(repo, t)) === m.digest) tags.push(t)
            await tx.deleteManifest(repo, m.digest)
            return `removed the manifest${tags.length > 0 ? ` and its tag${tags.length === 1 ? '' : 's'} ${tags.join(', ')}` : ''}: nothing can serve it (push the image again)`
          },
        })
        continue
      }
      let parsed: ParsedManifest
      try {
        parsed = parseManifest(bytes, m.mediaType)
      } catch {
        continue // stored before it was checked this way: nothing to say about what it names
      }
      for (const b of parsed.blobs) {
        const inRepo = async (r: Reader): Promise<boolean> => (await r.isBlobLinked(repo, b.digest)) || (await r.getManifest(repo, b.digest)) !== undefined
        const there = await exists(storage, b.digest)
        if (there && (await inRepo(storage))) continue
        const problem: Problem = {
          kind: 'manifest-missing-blob', repository: repo, digest: m.digest, missing: b.digest,
          message: `manifest ${where} names blob ${b.digest}, which ${there ? `is not linked in ${repo}` : 'is gone'}`,
        }
        const present = async (r: Reader): Promise<boolean> =>
          (await r.getManifest(repo, m.digest)) !== undefined && (!(await exists(r, b.digest)) || !(await inRepo(r)))
        if (there) {
          found({
            problem,
            present,
            fix: async (tx) => {
              if (!(await tx.linkBlob(repo, b.digest))) throw new Error(`blob ${b.digest} is gone`)
              return `linked blob ${b.digest} into ${repo}`
            },
          })
        } else {
          found({ problem, present, cannot: `the blob's bytes are gone: push the image again` })
        }
      }
      for (const c of parsed.manifests) {
        const rec = await storage.getManifest(repo, c.digest)
        const there = await exists(storage, c.digest)
        if (rec !== undefined && there) continue
        const problem: Problem = {
          kind: 'manifest-missing-child', repository: repo, digest: m.digest, missing: c.digest,
          message: `index ${where} names manifest ${c.digest}, which ${there ? `is not a manifest of ${repo}` : 'is gone'}`,
        }
        const present = async (r: Reader): Promise<boolean> =>
          (await r.getManifest(repo, m.digest)) !== undefined && ((await r.getManifest(repo, c.digest)) === undefined || !(await exists(r, c.digest)))
        if (there) {
          found({
            problem,
            present,
            fix: async (tx) => {
              if ((await tx.getManifest(repo, c.digest)) === undefined) await tx.putRevision(repo, c.digest, c.mediaType, c.size)
              return `recorded manifest ${c.digest} in ${repo} (its bytes were there)`
            },
          })
        } else {
          found({ problem, present, cannot: `the manifest's bytes are gone: push the image again` })
        }
      }
    }
    // tags
    for (const tag of await storage.listTags(repo)) {
      report.tags++
      const d = await storage.resolveTag(repo, tag)
      if (d !== undefined && (await storage.getManifest(repo, d)) !== undefined) continue
      found({
        problem: {
          kind: 'tag-without-manifest', repository: repo, tag, ...(d === undefined ? {} : { missing: d }),
          message: d === undefined ? `tag ${repo}:${tag} does not name a digest` : `tag ${repo}:${tag} names ${d}, which is not a manifest of ${repo}`,
        },
        present: async (r) => {
          if (!(await r.listTags(repo)).includes(tag)) return false
          const now = await r.resolveTag(repo, tag)
          return now === undefined || (await r.getManifest(repo, now)) === undefined
        },
        fix: async (tx) => {
          await tx.deleteTag(repo, tag)
          return 'removed the tag (push the image again to bring it back)'
        },
      })
    }
    // links
    for await (const l of storage.listBlobLinks(repo, signal)) {
      report.links++
      if (await exists(storage, l.digest)) continue
      found({
        problem: { kind: 'dangling-link', repository: repo, digest: l.digest, message: `${repo} links blob ${l.digest}, which is gone` },
        present: async (r) => (await r.isBlobLinked(repo, l.digest)) && !(await exists(r, l.digest)),
        fix: async (tx) => {
          await tx.unlinkBlob(repo, l.digest)
          return 'removed the link'
        },
      })
    }
    // referrers
    for await (const e of storage.listReferrerEntries(repo, signal)) {
      if ((await storage.getManifest(repo, e.digest)) !== undefined) continue
      const entry: ReferrerEntry = e
      found({
        problem: { kind: 'dangling-referrer', repository: repo, digest: e.digest, message: `${repo} lists ${e.digest} as a referrer of ${e.subject}, and it is gone` },
        present: async (r) => (await r.getManifest(repo, entry.digest)) === undefined && (await hasReferrerEntry(storage, repo, entry)),
        fix: async (tx) => {
          await tx.removeReferrerEntry(repo, entry)
          return 'removed the entry'
        },
      })
    }
  }
  // upload folders that are not sessions
  for await (const u of storage.listUploads(signal)) {
    report.uploads++
    if (u.repository !== '') continue
    found({
      problem: { kind: 'orphan-upload', upload: u.id, message: `upload ${u.id} is not a usable session (its records are incomplete)` },
      present: async (r) => (await r.getUpload(u.id)) === undefined && (await hasUpload(storage, u.id)),
      fix: async (tx) => {
        if (await tx.uploadBusy(u.id)) throw new Error('a request is working on it')
        await tx.dropUpload(u.id)
        return 'removed it'
      },
    })
  }
  await settle(storage, findings, report, repair, signal)
  return report
}

/** Confirms findings (shared), repairs them (exclusive) with repair, and adds them to the report. */
async function settle(storage: RegistryStorage, findings: Finding[], report: CheckReport, repair: boolean, signal: AbortSignal | undefined): Promise<void> {
  for (let i = 0; i < findings.length; i += BATCH) {
    throwIfAborted(signal)
    const batch = findings.slice(i, i + BATCH)
    if (!repair) {
      const confirmed = await storage.shared(async () => {
        const out: Finding[] = []
        for (const f of batch) if (await f.present(storage)) out.push(f)
        return out
      })
      for (const f of confirmed) {
        report.problems.push(f.problem)
        report.remaining++
      }
      continue
    }
    await storage.exclusive(async (tx) => {
      for (const f of batch) {
        if (!(await f.present(tx))) continue // gone meanwhile (a gc, a push, or an earlier repair)
        const p = f.problem
        report.problems.push(p)
        if (f.fix === undefined) {
          p.repaired = false
          p.action = f.cannot ?? 'cannot be repaired'
          report.remaining++
          continue
        }
        try {
          p.action = await f.fix(tx)
          p.repaired = true
          report.repaired++
        } catch (err) {
          p.repaired = false
          p.action = `not repaired: ${(err as Error).message}`
          report.remaining++
        }
      }
    })
  }
}

async function hasReferrerEntry(storage: RegistryStorage, repo: string, e: ReferrerEntry): Promise<boolean> {
  for await (const x of storage.listReferrerEntries(repo)) if (x.subject === e.subject && x.digest === e.digest) return true
  return false
}

async function hasUpload(storage: RegistryStorage, id: string): Promise<boolean> {
  for await (const u of storage.listUploads()) if (u.id === id) return true
  return false
}
