/**
 * Garbage collection: what it deletes and what it keeps (referenced, fresh, referrers, index entries),
 * --delete-untagged, --dry-run, recovery of a gc killed midway, purge of abandoned uploads, and the
 * point of it all: gc running in a loop while pushes go on loses nothing that was acknowledged.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdir, rename, utimes } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { collectGarbage, FilesystemStorage, purgeUploads, startRegistry, type RunningRegistry } from '../../src/registry/index.js'
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
  const reg = await startRegistry({ root: dir, port: 0 })
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
    assert.equal(dry.blobsFresh, 1)
    assert.equal((await request(reg.url, 'HEAD', `/v2/gc/app/blobs/${orphan}`)).status, 200, 'a dry run deletes nothing')

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

  it('loses nothing acknowledged while pushes run concurrently (grace period 0, gc in a loop)', async (t) => {
    const { reg, root } = await withRegistry(t)
    const acknowledged: { repo: string; tag: string; img: TinyImage }[] = []
    const failures: string[] = []
    let running = true
    const pusher = async (w: number): Promise<void> => {
      for (let i = 0; running; i++) {
        const repo = `gc/live${w}`
        const img = tinyImage(2048 + w)
        try {
          // share a layer across pushes half of the time, so that gc's candidates are re-linked by pushes
          await pushBlob(reg.url, repo, img.config)
          await pushBlob(reg.url, repo, img.layer)
          if (i % 3 === 0) await pushBlob(reg.url, repo, randomBytes(512)) // an orphan for gc to find
          const r = await putManifest(reg.url, repo, `t${i}`, img.manifest)
          if (r.status === 201) acknowledged.push({ repo, tag: `t${i}`, img })
          else failures.push(r.json<{ errors: { code: string }[] }>().errors[0]?.code ?? String(r.status))
          if (i % 4 === 3) await request(reg.url, 'DELETE', `/v2/${repo}/manifests/t${i - 1}`).then((d) => {
            if (d.status === 202) {
              const k = acknowledged.findIndex((a) => a.repo === repo && a.tag === `t${i - 1}`)
              if (k >= 0) acknowledged.splice(k, 1)
            }
          })
        } catch (err) {
          failures.push(`${String(err)}`)
        }
      }
    }
    const workers = [0, 1, 2, 3].map(pusher)
    let runs = 0
    let deleted = 0
    let restored = 0
    const deadline = Date.now() + 2500
    while (Date.now() < deadline) {
      const r = await reg.gc({ gracePeriodMs: 0 })
      runs++
      deleted += r.blobsDeleted
      restored += r.blobsRestored
    }
    running = false
    await Promise.all(workers)
    deleted += (await reg.gc({ gracePeriodMs: 0 })).blobsDeleted
    assert.ok(runs >= 2, `gc ran ${runs} times during the pushes`)
    assert.ok(deleted > 0, 'gc did delete the orphans')
    assert.ok(acknowledged.length > 5, `${acknowledged.length} pushes acknowledged`)
    // with a grace period of 0 a blob may go between its upload and its manifest: that push then fails
    // cleanly (MANIFEST_BLOB_UNKNOWN), never with a manifest pointing at a missing blob
    for (const f of failures) assert.equal(f, 'MANIFEST_BLOB_UNKNOWN')
    for (const a of acknowledged) await checkManifest(reg.url, a.repo, a.tag)
    await checkPullable(reg.url)
    await checkBlobFiles(root)
    t.diagnostic(`gc runs ${runs}, blobs deleted ${deleted}, restored for concurrent pushes ${restored}, pushes ${acknowledged.length}, failed ${failures.length}`)
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
    await age(root, 2 * HOUR)
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
