/**
 * Garbage collection: what it deletes and what it keeps (referenced, fresh, held by a push, referrers,
 * index entries), --delete-untagged, --dry-run, recovery of an older gc killed midway, purge of abandoned
 * uploads, and the point of it all: gc running in a loop while pushes go on loses nothing that was
 * acknowledged and fails no push. (The same with `cairn push` processes, a gc process and kills: chaos.test.ts.)
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdir, rename, utimes } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { checkRegistry, collectGarbage, FilesystemStorage, purgeUploads, startRegistry, type RunningRegistry, type StorageTx } from '../../src/registry/index.js'
import { cairnOk, tempDir } from '../helpers/cairn.js'
import { checkBlobFiles, checkManifest, checkPullable } from './consistency.js'
import { pushBlob, pushImage, request, sha256, tinyImage, type TinyImage } from './helpers.js'

const HOUR = 3_600_000

/** Makes every file under root look `ms` old (blobs, links, revisions), as if pushed long ago. */
async function age(root: string, ms: number): Promise<void> {
  const t = new Date(Date.now() - ms)
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = `${dir}/${e.name}`
      if (e.isDirectory()) await walk(p)
      else await utimes(p, t, t)
    }
  }
  await walk(`${root}/blobs`)
  await walk(`${root}/repositories`)
  await walk(`${root}/uploads`)
}

async function withRegistry(t: { after: (fn: () => Promise<void>) => void }): Promise<{ reg: RunningRegistry; root: string }> {
  const { dir, cleanup } = await tempDir('cairn-registry-gc-')
  t.after(cleanup)
  // a push's holds lapse after an hour here: aged by age(), its leftovers are garbage
  const reg = await startRegistry({ root: dir, port: 0, uploadPurgeAfterMs: HOUR })
  t.after(() => reg.close())
  return { reg, root: dir }
}

const putManifest = (url: string, repo: string, ref: string, body: Buffer | string, type = 'application/vnd.oci.image.manifest.v1+json') =>
  request(url, 'PUT', `/v2/${repo}/manifests/${ref}`, { headers: { 'Content-Type': type }, body })

describe('gc', () => {
  it('deletes unreferenced blobs past the grace period and keeps referenced and fresh ones', async (t) => {
    const { reg, root } = await withRegistry(t)
    const a = await pushImage(reg.url, 'gc/app', 'v1')
    const orphan = await pushBlob(reg.url, 'gc/app', randomBytes(2000))
    const b = await pushImage(reg.url, 'gc/app', 'v2')
    assert.equal((await request(reg.url, 'DELETE', `/v2/gc/app/manifests/${b.digest}`)).status, 202)
    await age(root, 2 * HOUR)
    const fresh = await pushBlob(reg.url, 'gc/app', randomBytes(100))

    const dry = await reg.gc({ dryRun: true, gracePeriodMs: HOUR })
    assert.equal(dry.blobsDeleted, 4, 'orphan + b\'s config, layer and manifest')
    assert.equal(dry.blobsHeld, 1, 'the fresh upload is held for the push that sent it')
    // (a GET: a HEAD is how a push checks a blob, and would hold it)
    assert.equal((await request(reg.url, 'GET', `/v2/gc/app/blobs/${orphan}`)).status, 200, 'a dry run deletes nothing')

    const report = await reg.gc({ gracePeriodMs: HOUR })
    assert.equal(report.blobsDeleted, 4)
    assert.equal(report.bytesFreed, 2000 + b.config.length + b.layer.length + b.manifest.length)
    assert.equal(report.blobsMarked, 3)
    assert.equal((await request(reg.url, 'HEAD', `/v2/gc/app/blobs/${orphan}`)).status, 404)
    assert.equal((await request(reg.url, 'HEAD', `/v2/gc/app/blobs/${fresh}`)).status, 200)
    await checkManifest(reg.url, 'gc/app', 'v1')
    assert.deepEqual((await request(reg.url, 'GET', '/v2/gc/app/manifests/v1')).body, a.manifest)
    assert.equal(report.linksRemoved, 3, 'links to the deleted layer blobs are gone too')
    await checkBlobFiles(root)
  })

  it('--delete-untagged removes manifests no tag reaches, keeping index entries and referrers', async (t) => {
    const { reg, root } = await withRegistry(t)
    const tagged = await pushImage(reg.url, 'gc/u', 'v1')
    // an untagged image, pushed by digest
    const loose = tinyImage()
    await pushBlob(reg.url, 'gc/u', loose.config)
    await pushBlob(reg.url, 'gc/u', loose.layer)
    assert.equal((await putManifest(reg.url, 'gc/u', loose.digest, loose.manifest)).status, 201)
    // an index (tagged) over two untagged entries
    const e1 = await pushImage(reg.url, 'gc/u', 'tmp1')
    const e2 = await pushImage(reg.url, 'gc/u', 'tmp2')
    await request(reg.url, 'DELETE', '/v2/gc/u/manifests/tmp1')
    await request(reg.url, 'DELETE', '/v2/gc/u/manifests/tmp2')
    const index = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [e1, e2].map((e) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: e.digest, size: e.manifest.length })) })
    assert.equal((await putManifest(reg.url, 'gc/u', 'multi', index, 'application/vnd.oci.image.index.v1+json')).status, 201)
    // a signature-like referrer of the tagged image (untagged, as referrers are)
    const empty = await pushBlob(reg.url, 'gc/u', '{}')
    const sig = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.example.sig',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 }, layers: [],
      subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: tagged.digest, size: tagged.manifest.length },
    }))
    assert.equal((await putManifest(reg.url, 'gc/u', sha256(sig), sig)).status, 201)
    await age(root, 2 * HOUR)

    const r = await reg.gc({ deleteUntagged: true, gracePeriodMs: HOUR })
    assert.deepEqual(r.manifestsDeleted, [{ repository: 'gc/u', digest: loose.digest }])
    assert.equal((await request(reg.url, 'HEAD', `/v2/gc/u/manifests/${loose.digest}`)).status, 404)
    assert.equal((await request(reg.url, 'HEAD', `/v2/gc/u/blobs/${sha256(loose.layer)}`)).status, 404)
    await checkManifest(reg.url, 'gc/u', 'multi')
    await checkManifest(reg.url, 'gc/u', 'v1')
    const refs = (await request(reg.url, 'GET', `/v2/gc/u/referrers/${tagged.digest}`)).json<{ manifests: { digest: string }[] }>().manifests
    assert.deepEqual(refs.map((m) => m.digest), [sha256(sig)])
  })

  it('recovers from a gc killed after moving blobs to its trash', async (t) => {
    const { reg, root } = await withRegistry(t)
    const img = await pushImage(reg.url, 'gc/k', 'v1')
    const layer = sha256(img.layer).slice(7)
    const config = sha256(img.config).slice(7)
    // what a killed gc leaves: referenced blobs in trash/
    await rename(`${root}/blobs/sha256/${layer}`, `${root}/trash/sha256-${layer}`)
    await rename(`${root}/blobs/sha256/${config}`, `${root}/trash/sha256-${config}`)
    // a client reading a trashed blob gets it (and brings it back)
    assert.deepEqual((await request(reg.url, 'GET', `/v2/gc/k/blobs/sha256:${layer}`)).body, img.layer)
    // the next gc puts the rest back before deciding anything
    const r = await reg.gc({ gracePeriodMs: 0 })
    assert.equal(r.blobsDeleted, 0)
    await checkManifest(reg.url, 'gc/k', 'v1')
    assert.deepEqual(await readdir(`${root}/trash`), [])
  })

  it('refuses to run twice at once', async (t) => {
    const { reg, root } = await withRegistry(t)
    const storage = new FilesystemStorage(root)
    const release = await storage.lock('gc')
    await assert.rejects(reg.gc(), (err: unknown) => (err as { code?: string }).code === 'CONFLICT')
    await release()
    await reg.gc()
  })

  it('loses nothing and fails no push while gc runs in a loop (grace period 0, --delete-untagged)', async (t) => {
    const { reg, root } = await withRegistry(t)
    /** The digest each tag was last given (each worker pushes its own tags one after the other). */
    const tagged = new Map<string, TinyImage>()
    const failures: string[] = []
    let pushes = 0
    const ROUNDS = 8
    const blobThere = async (repo: string, d: string): Promise<boolean> => (await request(reg.url, 'HEAD', `/v2/${repo}/blobs/${d}`)).status === 200
    const pusher = async (w: number): Promise<void> => {
      const repo = `gc/live${w}`
      const history: TinyImage[] = []
      for (let i = 0; i < ROUNDS; i++) {
        // every fourth push sends an image again whose manifest an earlier push untagged: gc may be
        // deleting its blobs right now, and the push finds them there (HEAD) and names them
        const again = i % 4 === 3 ? history[i - 3] : undefined
        const img = again ?? tinyImage(2048 + w)
        history.push(img)
        const tag = `t${i % 3}`
        try {
          for (const blob of [img.config, img.layer]) if (!(await blobThere(repo, sha256(blob)))) await pushBlob(reg.url, repo, blob)
          if (i % 5 === 0) await pushBlob(reg.url, repo, randomBytes(512)) // an abandoned upload
          const r = await putManifest(reg.url, repo, tag, img.manifest)
          pushes++
          if (r.status === 201) tagged.set(`${repo}:${tag}`, img)
          else failures.push(`${repo}:${tag} ${r.status} ${r.text()}`)
        } catch (err) {
          failures.push(String(err))
        }
        // spread over more than gc's clock slack (1 s), so that runs during the pushes find manifests
        // untagged long enough to delete, however fast this machine pushes
        await sleep(200)
      }
    }
    let done = false
    const workers = Promise.all([0, 1, 2, 3].map(pusher)).finally(() => {
      done = true
    })
    let runs = 0
    let deleted = 0
    let manifestsDeleted = 0
    let kept = 0
    while (!done) {
      const r = await reg.gc({ gracePeriodMs: 0, deleteUntagged: true })
      runs++
      deleted += r.blobsDeleted
      manifestsDeleted += r.manifestsDeleted.length
      kept += r.blobsHeld + r.blobsInUse
    }
    await workers
    await sleep(1100) // the last manifests untagged are old enough for gc's clock slack
    const last = await reg.gc({ gracePeriodMs: 0, deleteUntagged: true })
    deleted += last.blobsDeleted
    manifestsDeleted += last.manifestsDeleted.length
    assert.deepEqual(failures, [], 'no push failed because gc ran')
    assert.ok(runs >= 2, `gc ran ${runs} times during the pushes`)
    assert.equal(pushes, 4 * ROUNDS)
    assert.ok(manifestsDeleted > 0 && deleted > 0, `gc deleted untagged manifests (${manifestsDeleted}) and their blobs (${deleted})`)
    assert.ok(last.blobsHeld > 0, 'the abandoned uploads are held (for the hold TTL)')
    for (const [ref, img] of tagged) {
      const [repo, tag] = ref.split(':') as [string, string]
      await checkManifest(reg.url, repo, tag)
      assert.deepEqual((await request(reg.url, 'GET', `/v2/${repo}/manifests/${tag}`)).body, img.manifest, `${ref} is what its last push sent`)
    }
    assert.equal(await checkPullable(reg.url), tagged.size)
    await checkBlobFiles(root)
    const check = await checkRegistry(new FilesystemStorage(root, { readOnly: true }))
    assert.deepEqual(check.problems, [])
    t.diagnostic(`gc runs ${runs}, manifests deleted ${manifestsDeleted}, blobs deleted ${deleted}, kept for pushes ${kept}, pushes ${pushes}`)
  })

  it('checks each decision again under the lock: a manifest tagged, or a blob named, after gc chose it stays', async (t) => {
    const { reg, root } = await withRegistry(t)
    const img = await pushImage(reg.url, 'gc/race', 'v1')
    assert.equal((await request(reg.url, 'DELETE', '/v2/gc/race/manifests/v1')).status, 202)
    await age(root, 2 * HOUR)
    /** A storage whose first exclusive section lets `push` run just before it: right after gc decided. */
    const racing = (push: () => Promise<unknown>): FilesystemStorage => {
      const fs = new FilesystemStorage(root)
      t.after(() => fs.close())
      let first = true
      return new Proxy(fs, {
        get(target, prop) {
          if (prop === 'exclusive') {
            return async <T>(fn: (tx: StorageTx) => Promise<T>): Promise<T> => {
              if (first) {
                first = false
                await push()
              }
              return target.exclusive(fn)
            }
          }
          const v: unknown = Reflect.get(target, prop)
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
        },
      })
    }
    // gc found img untagged; before it deletes it, a push tags it again
    const r1 = await collectGarbage(racing(() => putManifest(reg.url, 'gc/race', 'v1', img.manifest)), { dryRun: false, deleteUntagged: true, gracePeriodMs: 0 })
    assert.deepEqual(r1.manifestsDeleted, [])
    await checkManifest(reg.url, 'gc/race', 'v1')
    // gc found other's blobs unreferenced (its manifest deleted); before it deletes them, a push names them
    const other = await pushImage(reg.url, 'gc/race', 'v2')
    assert.equal((await request(reg.url, 'DELETE', `/v2/gc/race/manifests/${other.digest}`)).status, 202)
    await age(root, 2 * HOUR)
    const r2 = await collectGarbage(racing(async () => assert.equal((await putManifest(reg.url, 'gc/race', 'v2', other.manifest)).status, 201)), { dryRun: false, deleteUntagged: true, gracePeriodMs: 0 })
    assert.equal(r2.blobsDeleted, 0)
    assert.equal(r2.blobsInUse, 3, 'config, layer and the manifest\'s bytes: kept because a push used them meanwhile')
    await checkManifest(reg.url, 'gc/race', 'v2')
    const check = await checkRegistry(new FilesystemStorage(root, { readOnly: true }))
    assert.deepEqual(check.problems, [])
  })

  it('with the default grace period, concurrent pushes never fail', async (t) => {
    const { reg } = await withRegistry(t)
    let running = true
    const done: string[] = []
    const pusher = async (w: number): Promise<void> => {
      for (let i = 0; running; i++) {
        await pushImage(reg.url, `gc/safe${w}`, `t${i}`)
        done.push(`${w}/${i}`)
      }
    }
    const workers = [0, 1, 2].map(pusher)
    for (let i = 0; i < 5; i++) await reg.gc({ gracePeriodMs: HOUR })
    running = false
    await Promise.all(workers)
    assert.ok(done.length > 0)
    assert.equal(await checkPullable(reg.url), done.length)
  })

  it('purges abandoned uploads and keeps active ones', async (t) => {
    const { reg, root } = await withRegistry(t)
    const s1 = await request(reg.url, 'POST', '/v2/gc/up/blobs/uploads/')
    await request(reg.url, 'PATCH', s1.headers.get('location') ?? '', { body: randomBytes(1000) })
    await age(root, 48 * HOUR)
    const s2 = await request(reg.url, 'POST', '/v2/gc/up/blobs/uploads/')
    const storage = new FilesystemStorage(root)
    const r = await purgeUploads(storage, { olderThanMs: 24 * HOUR })
    assert.equal(r.purged, 1)
    assert.equal(r.bytes, 1000)
    assert.equal((await request(reg.url, 'GET', s1.headers.get('location') ?? '')).status, 404)
    assert.equal((await request(reg.url, 'GET', s2.headers.get('location') ?? '')).status, 204)
  })

  it('runs from the command line: cairn registry gc --dry-run --format json', async (t) => {
    const { reg, root } = await withRegistry(t)
    await pushImage(reg.url, 'gc/cli', 'v1')
    await pushBlob(reg.url, 'gc/cli', randomBytes(10))
    await age(root, 48 * HOUR) // the orphan's hold (24 h) has lapsed too
    const run = await cairnOk(root, ['registry', 'gc', '--root', root, '--dry-run', '--format', 'json'])
    const report = JSON.parse(run.stdout) as { dryRun: boolean; blobsDeleted: number; blobsMarked: number }
    assert.equal(report.dryRun, true)
    assert.equal(report.blobsDeleted, 1)
    assert.equal(report.blobsMarked, 3)
    const real = await cairnOk(root, ['registry', 'gc', '--root', root])
    assert.match(real.stdout, /Deleted 0 untagged manifests and 1 blob, 10B/)
    const again = await collectGarbage(new FilesystemStorage(root), { dryRun: true, deleteUntagged: false, gracePeriodMs: 0 })
    assert.equal(again.blobsDeleted, 0)
  })
})
