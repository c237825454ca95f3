/**
 * The RegistryStorage contract, as a suite any implementation runs (an object-store backend would add
 * its factory to IMPLEMENTATIONS). "Restart" means a fresh instance on the same backing store: nothing
 * kept in memory survives it, which is how upload resumption after a crash is checked.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { describe, it } from 'node:test'
import { FilesystemStorage, type ManifestPut, type RegistryStorage } from '../../src/registry/index.js'
import type { Digest } from '../../src/oci/digest.js'
import { tempDir } from '../helpers/cairn.js'
import { sha256, sha512 } from './helpers.js'

interface Backend {
  /** A new instance on the same data, as after a restart. */
  open(opts?: { holdTtlMs?: number }): Promise<RegistryStorage>
  cleanup: () => Promise<void>
}

const IMPLEMENTATIONS: Record<string, () => Promise<Backend>> = {
  filesystem: async () => {
    const { dir, cleanup } = await tempDir('cairn-registry-storage-')
    const opened: RegistryStorage[] = []
    return {
      open: async (opts = {}) => {
        const s = new FilesystemStorage(dir, opts)
        await s.init()
        opened.push(s)
        return s
      },
      cleanup: async () => {
        for (const s of opened) await s.close()
        await cleanup()
      },
    }
  },
}

const body = (...parts: Buffer[]): AsyncIterable<Uint8Array> => Readable.from(parts)

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

for (const [name, make] of Object.entries(IMPLEMENTATIONS)) {
  describe(`RegistryStorage contract: ${name}`, () => {
    const withBackend = async (t: { after: (fn: () => Promise<void>) => void }): Promise<Backend> => {
      const b = await make()
      t.after(b.cleanup)
      return b
    }

    it('uploads in pieces, verifies, publishes and links; a wrong digest publishes nothing', async (t) => {
      const b = await withBackend(t)
      const s = await b.open()
      const data = randomBytes(300_000)
      const u = await s.createUpload('a/b')
      assert.equal(u.offset, 0)
      let st = await s.writeUpload(u.id, 0, body(data.subarray(0, 100_000)))
      assert.equal(st.offset, 100_000)
      await assert.rejects(s.writeUpload(u.id, 0, body(data.subarray(0, 10))), (e: unknown) => (e as { code?: string; detail?: { offset?: number } }).code === 'BLOB_UPLOAD_INVALID' && (e as { detail: { offset: number } }).detail.offset === 100_000)
      st = await s.writeUpload(u.id, 100_000, body(data.subarray(100_000)))
      assert.equal(st.offset, data.length)
      await assert.rejects(s.writeUpload(u.id, data.length, body(randomBytes(10)), { length: 5 }), (e: unknown) => (e as { code?: string }).code === 'SIZE_INVALID')
      const over = (await s.getUpload(u.id))?.offset ?? 0
      assert.ok(over <= data.length + 5, 'no more than the announced length was kept')
      const d = sha256(data)
      if (over > data.length) {
        await assert.rejects(s.completeUpload(u.id, d), (e: unknown) => (e as { code?: string }).code === 'DIGEST_INVALID')
        assert.equal(await s.statBlob(d), undefined)
        return
      }
      const blob = await s.completeUpload(u.id, d)
      assert.equal(blob.size, data.length)
      assert.ok(await s.isBlobLinked('a/b', d))
      assert.ok(!(await s.isBlobLinked('a/c', d)))
      assert.deepEqual(await buffer(await s.openBlob(d)), data)
      assert.deepEqual(await buffer(await s.openBlob(d, { start: 10, end: 19 })), data.subarray(10, 20))
      assert.equal(await s.getUpload(u.id), undefined)
      // a mismatch
      const u2 = await s.createUpload('a/b')
      await s.writeUpload(u2.id, 0, body(Buffer.from('abc')))
      await assert.rejects(s.completeUpload(u2.id, sha256('abd')), (e: unknown) => (e as { code?: string }).code === 'DIGEST_INVALID')
      assert.equal(await s.statBlob(sha256('abd')), undefined)
      assert.equal(await s.statBlob(sha256('abc')), undefined)
      assert.equal(await s.getUpload(u2.id), undefined)
    })

    it('resumes an upload after a restart (the hash state is rebuilt from the bytes)', async (t) => {
      const b = await withBackend(t)
      const data = randomBytes(200_000)
      const s1 = await b.open()
      const u = await s1.createUpload('r/x')
      await s1.writeUpload(u.id, 0, body(data.subarray(0, 77_777)))
      const s2 = await b.open()
      const again = await s2.getUpload(u.id)
      assert.equal(again?.offset, 77_777)
      assert.equal(again?.repository, 'r/x')
      await s2.writeUpload(u.id, 77_777, body(data.subarray(77_777)))
      assert.equal((await s2.completeUpload(u.id, sha256(data))).size, data.length)
      // sha512, decided only at completion
      const u3 = await s2.createUpload('r/x')
      await s2.writeUpload(u3.id, 0, body(data))
      const s3 = await b.open()
      assert.equal((await s3.completeUpload(u3.id, sha512(data))).digest, sha512(data))
    })

    it('serialises concurrent writes to one session', async (t) => {
      const b = await withBackend(t)
      const s = await b.open()
      const u = await s.createUpload('c/x')
      const results = await Promise.allSettled([s.writeUpload(u.id, 0, body(Buffer.from('aaaa'))), s.writeUpload(u.id, 0, body(Buffer.from('bbbb')))])
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
      assert.equal((await s.getUpload(u.id))?.offset, 4)
    })

    it('stores manifests with tags and referrers; deleting a manifest removes its tags and referrer entry', async (t) => {
      const b = await withBackend(t)
      const s = await b.open()
      const subject = sha256('subject')
      const bytes = Buffer.from('{"schemaVersion":2}')
      const d = sha256(bytes)
      await s.putManifest('m/x', { digest: d, mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes, blobs: [], manifests: [], referrer: { subject, descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d, size: bytes.length, artifactType: 'a/b' } } }, 'v1')
      await s.putManifest('m/x', { digest: d, mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes, blobs: [], manifests: [] }, 'v2')
      assert.deepEqual(await s.listTags('m/x'), ['v1', 'v2'])
      assert.equal(await s.resolveTag('m/x', 'v1'), d)
      assert.equal((await s.getManifest('m/x', d))?.size, bytes.length)
      assert.deepEqual((await s.listReferrers('m/x', subject)).map((r) => r.digest), [d])
      assert.ok(await s.repositoryExists('m/x'))
      assert.ok((await s.listRepositories()).includes('m/x'))
      assert.ok(await s.deleteTag('m/x', 'v2'))
      assert.ok(await s.deleteManifest('m/x', d))
      assert.deepEqual(await s.listTags('m/x'), [])
      assert.deepEqual(await s.listReferrers('m/x', subject), [])
      assert.equal(await s.getManifest('m/x', d), undefined)
      // references are checked first: a missing one stores nothing
      const other = Buffer.from('{"schemaVersion":2,"x":1}')
      await assert.rejects(
        s.putManifest('m/x', { digest: sha256(other), mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes: other, blobs: [{ digest: sha256('missing'), size: 7 }], manifests: [] }, 'v3'),
        (e: unknown) => (e as { code?: string }).code === 'MANIFEST_BLOB_UNKNOWN',
      )
      assert.equal(await s.getManifest('m/x', sha256(other)), undefined)
      assert.equal(await s.resolveTag('m/x', 'v3'), undefined)
    })

    it('holds what a push checked, uploaded or mounted until its manifest names it', async (t) => {
      const b = await withBackend(t)
      const s = await b.open()
      const upload = async (repo: string, data: string): Promise<Digest> => {
        const u = await s.createUpload(repo)
        await s.writeUpload(u.id, 0, body(Buffer.from(data)))
        return (await s.completeUpload(u.id, sha256(data))).digest
      }
      const holds = async (repo: string): Promise<Record<string, number>> => {
        const out: Record<string, number> = {}
        for await (const h of s.listHolds(repo)) out[h.digest] = h.count
        return out
      }
      const layer = await upload('h/x', 'layer')
      const config = await upload('h/x', 'config')
      assert.deepEqual(await holds('h/x'), { [layer]: 1, [config]: 1 })
      // a second push of the same image checks them, a mount adds one elsewhere
      assert.equal((await s.checkBlob('h/x', layer))?.size, 5)
      assert.equal(await s.checkBlob('h/y', layer), undefined, 'not linked there: no answer, no hold')
      assert.ok(await s.linkBlob('h/y', layer))
      assert.deepEqual(await holds('h/x'), { [layer]: 2, [config]: 1 })
      assert.deepEqual(await holds('h/y'), { [layer]: 1 })
      // each manifest that names them releases one hold of its repository
      const man = (n: number): ManifestPut => {
        const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, n }))
        return { digest: sha256(bytes), mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes, blobs: [{ digest: config, size: 6 }, { digest: layer, size: 5 }], manifests: [] }
      }
      await s.putManifest('h/x', man(1), 'v1')
      assert.deepEqual(await holds('h/x'), { [layer]: 1 })
      await s.putManifest('h/x', man(2), 'v2')
      assert.deepEqual(await holds('h/x'), {})
      // pushed by digest, a manifest is held until an index names it
      const loose = man(3)
      await s.putManifest('h/x', loose)
      assert.deepEqual(await holds('h/x'), { [loose.digest]: 1 })
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }))
      await s.putManifest('h/x', { digest: sha256(index), mediaType: 'application/vnd.oci.image.index.v1+json', bytes: index, blobs: [], manifests: [{ digest: loose.digest, size: loose.bytes.length }] }, 'multi')
      assert.deepEqual(await holds('h/x'), {})
      // many clients checking one blob at once: each counts (their holds are written together)
      await Promise.all(Array.from({ length: 40 }, () => s.checkBlob('h/x', layer)))
      assert.deepEqual(await holds('h/x'), { [layer]: 40 })
      for (let i = 0; i < 40; i++) await s.putManifest('h/x', man(100 + i))
      assert.deepEqual(await holds('h/x'), Object.fromEntries(Array.from({ length: 40 }, (_, i) => [man(100 + i).digest, 1])), 'only the manifests pushed by digest are held now')
      // a hold untouched for longer than the TTL protects nothing
      const short = await b.open({ holdTtlMs: 0 })
      await short.checkBlob('h/x', layer)
      await new Promise((r) => setTimeout(r, 5))
      const [h] = await collect(short.listHolds('h/x'))
      assert.equal(h?.expired, true)
    })

    it('runs exclusive sections alone: shared steps wait for them, and they for shared steps', async (t) => {
      const b = await withBackend(t)
      const s = await b.open()
      const order: string[] = []
      let release!: () => void
      const held = new Promise<void>((r) => {
        release = r
      })
      const section = s.exclusive(async () => {
        order.push('exclusive start')
        await held
        order.push('exclusive end')
      })
      await new Promise((r) => setTimeout(r, 20))
      const bytes = Buffer.from('{"schemaVersion":2,"e":1}')
      const put = s.putManifest('e/x', { digest: sha256(bytes), mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes, blobs: [], manifests: [] }, 'v1').then(() => order.push('put'))
      await new Promise((r) => setTimeout(r, 50))
      assert.deepEqual(order, ['exclusive start'], 'the push waits')
      release()
      await Promise.all([section, put])
      assert.deepEqual(order, ['exclusive start', 'exclusive end', 'put'])
      // the other way round: a section waits for the shared steps under way
      const seen: string[] = []
      const slow = s.shared(async () => {
        await new Promise((r) => setTimeout(r, 50))
        seen.push('shared')
      })
      await new Promise((r) => setTimeout(r, 5))
      await s.exclusive(async () => {
        seen.push('exclusive')
      })
      await slow
      assert.deepEqual(seen, ['shared', 'exclusive'])
    })

    it('runs one gc at a time (CONFLICT), and lets the next one in', async (t) => {
      const b = await withBackend(t)
      const s = await b.open()
      const release = await s.lock('gc')
      await assert.rejects(s.lock('gc'), (e: unknown) => (e as { code?: string }).code === 'CONFLICT')
      const s2 = await b.open()
      await assert.rejects(s2.lock('gc'), (e: unknown) => (e as { code?: string }).code === 'CONFLICT')
      await release()
      await (await s2.lock('gc'))()
    })
  })
}
