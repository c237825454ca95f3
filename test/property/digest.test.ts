// Properties of digests, diffIDs and chain IDs, in the digest helpers and in the image store.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { importImage } from '../../src/api/import.js'
import { ImageStore } from '../../src/image/store.js'
import { asDiffId, asDigest, chainId, chainIds, digestOf, HashingStream, type ImageId } from '../../src/oci/digest.js'
import { collect, tarOf } from '../layer/helpers.js'

const diffId = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => asDiffId(`sha256:${Buffer.from(b).toString('hex')}`))

describe('digests and chain IDs (properties)', () => {
  it('a chain ID is sha256(parent chain ID + " " + diffID), the first is the first diffID', () => {
    fc.assert(fc.property(fc.array(diffId, { maxLength: 12 }), (ids) => {
      const chain = chainIds(ids)
      assert.equal(chain.length, ids.length)
      assert.equal(chainId(ids), chain.at(-1))
      for (const [i, id] of ids.entries()) {
        const expected = i === 0 ? id : `sha256:${createHash('sha256').update(`${chain[i - 1]} ${id}`).digest('hex')}`
        assert.equal(chain[i], expected)
      }
      // a prefix of the layers has the prefix of the chain
      for (let k = 0; k <= ids.length; k++) assert.deepEqual(chainIds(ids.slice(0, k)), chain.slice(0, k))
    }))
  })

  it('different layer stacks have different chain IDs', () => {
    fc.assert(fc.property(fc.array(diffId, { minLength: 1, maxLength: 6 }), fc.array(diffId, { minLength: 1, maxLength: 6 }), (a, b) => {
      fc.pre(a.join() !== b.join())
      assert.notEqual(chainId(a), chainId(b))
    }))
  })

  it('HashingStream gives digestOf of the bytes, whatever the chunking', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), async (chunks) => {
      const h = new HashingStream()
      const out = await collect(Readable.from(chunks.map((c) => Buffer.from(c))).pipe(h))
      const all = Buffer.concat(chunks.map((c) => Buffer.from(c)))
      assert.deepEqual(out, all)
      assert.equal(h.digest, digestOf(all))
    }))
  })

  it('the store: a layer has one diffID (the digest of its tar) and one chain whatever its compression, and every chain record holds', async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'cairn-prop-chain-'))
    t.after(() => rm(root, { recursive: true, force: true }))
    const store = await ImageStore.open(root)
    t.after(() => store.close())
    let n = 0
    const files = fc.uniqueArray(fc.string({ unit: fc.constantFrom(...'abcdef'), minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 4 })
    await fc.assert(fc.asyncProperty(files, fc.string({ maxLength: 20 }), async (names, content) => {
      const tar = await tarOf(names.map((p) => ({ header: { path: p, type: 'file' as const, size: Buffer.byteLength(content) }, body: content })))
      const ids: ImageId[] = []
      for (const compression of ['none', 'gzip', 'zstd'] as const) {
        const res = await importImage(store, Readable.from([tar]), { reference: `prop${n++}:1`, compression, timestamp: 0 })
        assert.equal(res.diffId, digestOf(tar), `${compression}: the diffID is the digest of the uncompressed tar`)
        const image = store.get(res.id)
        assert.ok(image)
        const config = await store.config(image)
        assert.deepEqual(config.rootfs.diff_ids, [res.diffId])
        assert.deepEqual(store.imageChains(res.id), chainIds(config.rootfs.diff_ids))
        ids.push(res.id)
      }
      // the same content and time: one image, stored once under one diffID, with a blob per compression
      assert.equal(new Set(ids).size, 1)
      const blobs = store.layerBlobs(asDiffId(digestOf(tar)))
      assert.ok(blobs.some((b) => b.digest === asDigest(b.diffId)), 'the uncompressed blob is its own diffID')
      assert.ok(blobs.every((b) => b.diffSize === tar.length))
      // every chain the store records is sha256(parent + " " + diffID), or the diffID at the bottom
      for (const l of store.layers()) {
        assert.equal(l.chainId, l.parent === undefined ? l.diffId : `sha256:${createHash('sha256').update(`${l.parent} ${l.diffId}`).digest('hex')}`)
        assert.ok(store.hasChain(l.chainId))
      }
    }), { numRuns: 15 })
  })
})
