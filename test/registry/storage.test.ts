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
import { FilesystemStorage, type RegistryStorage } from '../../src/registry/index.js'
import type { Digest } from '../../src/oci/digest.js'
import { tempDir } from '../helpers/cairn.js'
import { sha256, sha512 } from './helpers.js'

interface Backend {
  /** A new instance on the same data, as after a restart. */
  open(): Promise<RegistryStorage>
  cleanup: () => Promise<void>
}

const IMPLEMENTATIONS: Record<string, () => Promise<Backend>> = {
  filesystem: async () => {
    const { dir, cleanup } = await tempDir('cairn-registry-storage-')
    return {
      open: async () => {
        const s = new FilesystemStorage(dir)
        await s.init()
        return s
      },
      cleanup,
    }
  },
}

const body = (...parts: Buffer[]): AsyncIterable<Uint8Array> => Readable.from(parts)

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
      const subject = sha256('subject') as Digest
      const bytes = Buffer.from('{"schemaVersion":2}')
      const d = sha256(bytes) as Digest
      await s.putManifest('m/x', { digest: d, mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes, references: [], referrer: { subject, descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d, size: bytes.length, artifactType: 'a/b' } } }, 'v1')
      await s.putManifest('m/x', { digest: d, mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes, references: [] }, 'v2')
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
      // references are checked after the revision is visible: a missing one withdraws it
      const other = Buffer.from('{"schemaVersion":2,"x":1}')
      await assert.rejects(
        s.putManifest('m/x', { digest: sha256(other), mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes: other, references: [sha256('missing')] }, 'v3'),
        (e: unknown) => (e as { code?: string }).code === 'MANIFEST_BLOB_UNKNOWN',
      )
      assert.equal(await s.getManifest('m/x', sha256(other) as Digest), undefined)
      assert.equal(await s.resolveTag('m/x', 'v3'), undefined)
    })

    it('trashes only blobs older than the cutoff, restores on demand, and empties for good', async (t) => {
      const b = await withBackend(t)
      const s = await b.open()
      const u = await s.createUpload('g/x')
      await s.writeUpload(u.id, 0, body(Buffer.from('garbage')))
      const d = sha256('garbage') as Digest
      await s.completeUpload(u.id, d)
      assert.equal(await s.trashBlob(d, Date.now() - 60_000), false, 'fresh: kept')
      assert.ok((await s.statBlob(d)) !== undefined)
      assert.equal(await s.trashBlob(d, Date.now() + 60_000), true)
      assert.ok((await s.statBlob(d)) !== undefined, 'statBlob brings a trashed blob back')
      assert.equal(await s.trashBlob(d, Date.now() + 60_000), true)
      assert.deepEqual(await s.restoreTrash((x) => x !== d), [])
      assert.deepEqual(await s.emptyTrash(), { blobs: 1, bytes: 7 })
      const s2 = await b.open()
      assert.equal(await s2.statBlob(d), undefined)
      const release = await s2.lock('gc')
      await assert.rejects(s2.lock('gc'))
      await release()
      await (await s2.lock('gc'))()
    })
  })
}
