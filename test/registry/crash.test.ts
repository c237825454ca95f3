/**
 * Crash safety of `cairn registry serve` as a real process: SIGKILL in the middle of an upload and in
 * the middle of manifest pushes, restart on the same root, then: the registry is consistent (no partial
 * blob, no tag or manifest pointing at a missing blob, everything acknowledged is there, and
 * `cairn registry check` finds nothing) and the interrupted upload resumes where the bytes on disk end,
 * then completes. (Kills during `cairn push` processes and gc: chaos.test.ts.)
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { describe, it } from 'node:test'
import { cairn, tempDir } from '../helpers/cairn.js'
import { checkBlobFiles, checkManifest, checkPullable } from './consistency.js'
import { pushBlob, request, serveProcess, sha256, tinyImage, type TinyImage } from './helpers.js'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('crash safety (SIGKILL)', () => {
  it('resumes an upload after the registry was killed in the middle of a chunk', async (t) => {
    const { dir, cleanup } = await tempDir('cairn-registry-crash-')
    t.after(cleanup)
    let reg = await serveProcess(dir, ['--access-log', 'none'])
    t.after(() => reg.kill())
    const data = randomBytes(3 << 20)
    const digest = sha256(data)
    const start = await request(reg.url, 'POST', '/v2/crash/app/blobs/uploads/')
    const loc = start.headers.get('location') ?? ''
    const first = await request(reg.url, 'PATCH', loc, { headers: { 'Content-Range': `0-${(1 << 20) - 1}` }, body: data.subarray(0, 1 << 20) })
    assert.equal(first.status, 202)
    // the second chunk: half of it is sent, then the server dies
    const url = reg.url
    const req = httpRequest(`${url}${loc}`, { method: 'PATCH', headers: { 'Content-Length': String(1 << 20), 'Content-Range': `${1 << 20}-${(2 << 20) - 1}` } })
    req.on('error', () => undefined)
    req.write(data.subarray(1 << 20, (1 << 20) + (512 << 10)))
    let offset = 0
    for (let i = 0; i < 1000 && offset <= 1 << 20; i++) {
      await sleep(10)
      const st = await request(url, 'GET', loc)
      offset = Number((st.headers.get('range') ?? '0-0').split('-')[1]) + 1
    }
    assert.ok(offset > 1 << 20, 'part of the second chunk reached the disk before the kill')
    await reg.kill()
    req.destroy()

    reg = await serveProcess(dir, ['--access-log', 'none'])
    const st = await request(reg.url, 'GET', loc)
    assert.equal(st.status, 204, 'the session survived the restart')
    const have = Number((st.headers.get('range') ?? '').split('-')[1]) + 1
    assert.ok(have >= offset && have <= (1 << 20) + (512 << 10), `resume point ${have}`)
    assert.equal((await request(reg.url, 'HEAD', `/v2/crash/app/blobs/${digest}`)).status, 404, 'nothing visible before completion')
    // an out-of-order retry of the lost chunk is refused; the client resumes from the Range it is told
    assert.equal((await request(reg.url, 'PATCH', loc, { headers: { 'Content-Range': `${1 << 20}-${(2 << 20) - 1}` }, body: data.subarray(1 << 20, 2 << 20) })).status, 416)
    const rest = await request(reg.url, 'PATCH', loc, { headers: { 'Content-Range': `${have}-${data.length - 1}` }, body: data.subarray(have) })
    assert.equal(rest.status, 202)
    const done = await request(reg.url, 'PUT', `${loc}?digest=${digest}`)
    assert.equal(done.status, 201, done.text())
    assert.deepEqual((await request(reg.url, 'GET', `/v2/crash/app/blobs/${digest}`)).body, data)
    await checkBlobFiles(dir)
    const check = await cairn(dir, ['registry', 'check', '--root', dir])
    assert.equal(check.code, 0, check.stdout + check.stderr)
    const stopped = await reg.stop()
    assert.equal(stopped.code, 0)
  })

  it('stays consistent when killed while manifests and blobs are being pushed, round after round', async (t) => {
    const { dir, cleanup } = await tempDir('cairn-registry-crash2-')
    t.after(cleanup)
    const acknowledged: { repo: string; tag: string; img: TinyImage }[] = []
    for (let round = 0; round < 3; round++) {
      const reg = await serveProcess(dir, ['--access-log', 'none'])
      t.after(() => reg.kill())
      let running = true
      const pusher = async (w: number): Promise<void> => {
        for (let i = 0; running; i++) {
          const repo = `crash/r${round}w${w}`
          const tag = `t${i}`
          const img = tinyImage(4096 + i)
          try {
            await pushBlob(reg.url, repo, img.config)
            await pushBlob(reg.url, repo, img.layer)
            // a chunked upload left unfinished half of the time
            if (i % 2 === 0) {
              const s = await request(reg.url, 'POST', `/v2/${repo}/blobs/uploads/`)
              await request(reg.url, 'PATCH', s.headers.get('location') ?? '', { body: randomBytes(8192) })
            }
            const r = await request(reg.url, 'PUT', `/v2/${repo}/manifests/${tag}`, { headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: img.manifest })
            if (r.status === 201) acknowledged.push({ repo, tag, img })
          } catch {
            return // the server died under us
          }
        }
      }
      const workers = [0, 1, 2, 3, 4, 5].map(pusher)
      // some pushes complete (however slow the machine), then the kill comes at a random moment
      const before = acknowledged.length
      for (const until = Date.now() + 30_000; acknowledged.length < before + 3 && Date.now() < until;) await sleep(10)
      await sleep(Math.random() * 200)
      await reg.kill()
      running = false
      await Promise.all(workers)
    }
    // after the last kill: restart, check everything
    const reg = await serveProcess(dir, ['--access-log', 'none'])
    t.after(() => reg.kill())
    const blobs = await checkBlobFiles(dir)
    assert.ok(blobs > 0)
    const tags = await checkPullable(reg.url)
    assert.ok(acknowledged.length > 0, 'some pushes completed before each kill')
    assert.ok(tags >= acknowledged.length)
    for (const a of acknowledged) {
      await checkManifest(reg.url, a.repo, a.tag)
      assert.deepEqual((await request(reg.url, 'GET', `/v2/${a.repo}/manifests/${a.tag}`)).body, a.img.manifest)
    }
    // nothing for the consistency check to find (sessions cut by the kills are whole, and resumable)
    const check = await cairn(dir, ['registry', 'check', '--root', dir])
    assert.equal(check.code, 0, check.stdout + check.stderr)
    assert.match(check.stdout, /^No problems found/m)
    // sessions left by the kills are either resumable or purgeable; none is corrupt
    const { FilesystemStorage, purgeUploads } = await import('../../src/registry/index.js')
    const storage = new FilesystemStorage(dir)
    await storage.init()
    const purged = await purgeUploads(storage, { olderThanMs: 0 })
    await storage.close()
    assert.ok(purged.purged >= 1)
    assert.equal((await reg.stop()).code, 0)
  })
})
