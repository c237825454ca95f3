/** The image store and content store through the library API. */
import { test, describe, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, readdirSync, renameSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Cairn, hasCode } from '../../src/index.js'
import { ContentStore } from '../../src/content/store.js'
import { sysAddon } from '../../src/util/addon.js'
import { asDiffId, asImageId, digestOf } from '../../src/oci/digest.js'
import { tarOf, tempDir } from '../helpers/cairn.js'
import { buildManifest, serializeConfig, serializeManifest } from '../../src/image/manifest.js'
import type { ImageConfig } from '../../src/oci/types.js'
import { parseReference } from '../../src/oci/reference.js'

describe('content store', () => {
  let dir: string
  let cleanup: () => Promise<void>
  let cs: ContentStore
  beforeEach(async () => {
    ;({ dir, cleanup } = await tempDir())
    cs = new ContentStore(dir)
    await cs.init()
  })
  afterEach(async () => cleanup())

  test('a wrong digest or size is refused and nothing becomes visible', async () => {
    const data = Buffer.from('some content')
    const wrong = digestOf('other content')
    await assert.rejects(cs.write(Readable.from([data]), { expected: wrong }), (e) => hasCode(e, 'DIGEST_INVALID'))
    await assert.rejects(cs.write(Readable.from([data]), { expected: digestOf(data), size: 3 }), (e) => hasCode(e, 'SIZE_INVALID'))
    assert.deepEqual(readdirSync(`${dir}/blobs/sha256`), [])
    assert.deepEqual(readdirSync(`${dir}/ingest`), [])
    const ok = await cs.write(Readable.from([data]), { expected: digestOf(data), size: data.length })
    assert.equal(ok.digest, digestOf(data))
    assert.equal((await cs.readBytes(ok.digest)).toString(), 'some content')
  })

  test('many concurrent writers of one blob all succeed and leave one copy', async () => {
    const data = Buffer.alloc(3 << 20, 9)
    const results = await Promise.all(Array.from({ length: 8 }, () => cs.write(Readable.from([data.subarray(0, 1 << 20), data.subarray(1 << 20)]))))
    assert.ok(results.every((r) => r.digest === digestOf(data) && r.size === data.length))
    assert.deepEqual(readdirSync(`${dir}/blobs/sha256`), [digestOf(data).slice(7)])
    assert.deepEqual(readdirSync(`${dir}/ingest`), [])
  })

  test('an aborted write leaves nothing', async () => {
    const ac = new AbortController()
    async function* slow(): AsyncGenerator<Buffer> {
      yield Buffer.alloc(1000)
      ac.abort()
      await new Promise((r) => setTimeout(r, 20))
      yield Buffer.alloc(1000)
    }
    await assert.rejects(cs.write(slow(), { signal: ac.signal }), (e) => hasCode(e, 'ABORTED'))
    assert.deepEqual(readdirSync(`${dir}/ingest`), [])
    assert.deepEqual(readdirSync(`${dir}/blobs/sha256`), [])
  })

  test('an ingest tells its digest once the last byte is hashed, before it is staged; an aborted one rejects', async () => {
    const data = Buffer.alloc(2 << 20, 5)
    const ing = await cs.ingest()
    ing.stream.end(data)
    const hashed = await ing.hashed
    assert.deepEqual(hashed, { digest: digestOf(data), size: data.length })
    const st = await ing.stage()
    assert.equal(st.digest, hashed.digest)
    assert.equal(st.size, hashed.size)
    cs.publishSync(st)
    assert.equal((await cs.info(st.digest))?.size, data.length)

    const gone = await cs.ingest()
    gone.stream.write(data.subarray(0, 1000))
    await gone.abort()
    await assert.rejects(gone.hashed, (e) => hasCode(e, 'ABORTED'))
    assert.deepEqual(readdirSync(`${dir}/ingest`), [])
  })

  test('a blob of odd-sized pieces is written whole and in order, past the page cache in whole MiBs and its tail through it', async () => {
    // pieces that straddle the 1 MiB chunks, one larger than a chunk, and a tail of a few bytes
    const data = randomBytes((5 << 20) + 4099)
    const cuts = [1, 4095, 1 << 20, (1 << 20) + 3, 3 << 20, (5 << 20) + 4098, data.length]
    const pieces = cuts.map((c, i) => data.subarray(i === 0 ? 0 : cuts[i - 1], c))
    const ing = await cs.ingest('sha256', { direct: true })
    await pipeline(Readable.from(pieces), ing.stream)
    const ok = await ing.stage()
    cs.publishSync(ok)
    assert.equal(ok.digest, digestOf(data))
    assert.ok(readFileSync(cs.path(ok.digest)).equals(data), 'the stored bytes are the bytes written')
    // and a blob smaller than a chunk (only a tail)
    const small = await cs.write(Readable.from([Buffer.from('tiny')]))
    assert.equal((await cs.readBytes(small.digest)).toString(), 'tiny')
  })

  test('where the file system refuses O_DIRECT, a blob goes through the page cache, in order', async (t) => {
    const addon = sysAddon() as { writeAt: (fd: number, position: number, buffers: Uint8Array[], direct: boolean) => Promise<boolean> }
    const real = addon.writeAt
    let refused = 0
    // as on such a file system: the addon writes through the page cache and says so
    addon.writeAt = async (fd, position, buffers, direct) => {
      if (direct) refused++
      await real(fd, position, buffers, false)
      return false
    }
    t.after(() => {
      addon.writeAt = real
    })
    const data = randomBytes((3 << 20) + 777)
    const ing = await cs.ingest('sha256', { direct: true })
    // pieces arriving while the first direct write is in flight, then after it was refused
    for (let at = 0; at < data.length; at += 300_000) {
      ing.stream.write(data.subarray(at, at + 300_000))
      if (at % 900_000 === 0) await new Promise((r) => setImmediate(r))
    }
    ing.stream.end()
    const st = await ing.stage()
    cs.publishSync(st)
    assert.equal(st.digest, digestOf(data))
    assert.ok(readFileSync(cs.path(st.digest)).equals(data))
    assert.ok(refused >= 1 && refused <= 2, `O_DIRECT is asked for until the first refusal comes back (${refused})`)
  })

  test('a blob aborted while a write is in flight leaves nothing, and no write lands after its file is closed', async () => {
    const ing = await cs.ingest('sha256', { direct: true })
    for (let i = 0; i < 6; i++) ing.stream.write(randomBytes(1 << 20))
    await new Promise((r) => setImmediate(r))
    await ing.abort()
    assert.deepEqual(readdirSync(`${dir}/ingest`), [])
    // a file opened now may get the aborted one's descriptor number: nothing of the blob reaches it
    const other = await cs.write(Readable.from([Buffer.alloc(100, 1)]))
    assert.ok((await cs.readBytes(other.digest)).equals(Buffer.alloc(100, 1)))
  })
})

describe('image store', () => {
  let dir: string
  let cleanup: () => Promise<void>
  let cairn: Cairn
  beforeEach(async () => {
    ;({ dir, cleanup } = await tempDir())
    cairn = await Cairn.open({ root: `${dir}/store` })
  })
  afterEach(async () => {
    cairn.close()
    await cleanup()
  })

  /** A child image of `parentId`: one more layer, parent recorded (as commit records it). */
  async function child(parentId: string, content: string, tag?: string): Promise<string> {
    const store = cairn.store
    const parent = store.get(asImageId(parentId))
    assert.ok(parent)
    const pcfg = await store.config(parent)
    const pman = await store.manifest(parent)
    const layerTar = await tarOf({ [content]: content })
    const layer = await store.content.stageBytes(layerTar)
    const cfg: ImageConfig = { ...pcfg, created: new Date().toISOString(), rootfs: { type: 'layers', diff_ids: [...pcfg.rootfs.diff_ids, asDiffId(layer.digest)] }, history: [...(pcfg.history ?? []), { created_by: content }] }
    const cfgStaged = await store.content.stageBytes(serializeConfig(cfg))
    const layers = [
      ...pman.layers.map((d, i) => ({ descriptor: d, diffId: pcfg.rootfs.diff_ids[i]!, size: 1, diffSize: 1 })),
      { descriptor: { mediaType: 'application/vnd.docker.image.rootfs.diff.tar', digest: layer.digest, size: layer.size }, diffId: asDiffId(layer.digest), size: layer.size, diffSize: layer.size, staged: layer },
    ]
    const man = await store.content.stageBytes(serializeManifest(buildManifest('docker', cfgStaged, layers.map((l) => l.descriptor))))
    const res = store.addImage({ manifest: man, manifestMediaType: 'application/vnd.docker.distribution.manifest.v2+json', config: cfgStaged, configJson: cfg, layers, parent: parent.id, ...(tag ? { tags: [parseReference(tag)] } : {}) })
    return res.id
  }

  test('a name tagged again on the image it names is not written again; moved, it is', async () => {
    const base = await cairn.import(Readable.from([await tarOf({ base: 'b' })]), { reference: 'base:1' })
    const other = await cairn.import(Readable.from([await tarOf({ other: 'o' })]))
    const changes = (): number => (cairn.store.db.prepare('SELECT total_changes() AS n').get() as { n: number }).n
    const before = changes()
    assert.equal(cairn.store.tag(parseReference('base:1'), asImageId(base.id)), base.id)
    assert.equal(changes(), before, 'no row written')
    assert.equal(cairn.store.tag(parseReference('base:1'), asImageId(other.id)), base.id)
    assert.equal(changes(), before + 1)
    assert.equal(cairn.store.get(asImageId(other.id))?.tags.length, 1)
  })

  test('a parent with a child image cannot be deleted, even with -f; the child can, and prunes the untagged parent', async () => {
    const base = await cairn.import(Readable.from([await tarOf({ base: 'b' })]), { reference: 'base:1' })
    const kid = await child(base.id, 'kid', 'kid:1')
    await cairn.rmi('base:1') // untag only: the child keeps it as an intermediate image
    assert.ok(cairn.store.get(base.id), 'untagged parent kept for its child')
    assert.equal(cairn.images().some((i) => i.id === base.id), false, 'intermediate images are hidden')
    assert.equal(cairn.images({ all: true }).some((i) => i.id === base.id && i.intermediate), true, 'and shown with -a')
    const refused = await cairn.rmi(base.id, { force: true })
    assert.equal(refused.errors.length, 1)
    assert.match(refused.errors[0]!.error.message, /\(cannot be forced\) - image has dependent child images/)
    const removed = await cairn.rmi('kid:1')
    const deleted = removed.records.flatMap((r) => ('deleted' in r ? [r.deleted] : []))
    assert.ok(deleted.includes(asImageId(kid)))
    assert.ok(deleted.includes(base.id), 'the dangling parent goes with its last child')
    assert.equal(cairn.store.list().length, 0)
    assert.deepEqual(readdirSync(`${dir}/store/blobs/sha256`), [])
    const history = cairn.images()
    assert.equal(history.length, 0)
  })

  test('history attributes rows to the local parent images', async () => {
    const base = await cairn.import(Readable.from([await tarOf({ base: 'b' })]), { reference: 'base:1', message: 'base' })
    const kid = await child(base.id, 'kid', 'kid:1')
    const rows = await cairn.history('kid:1')
    assert.equal(rows.length, 2)
    assert.equal(rows[0]!.id, kid)
    assert.equal(rows[0]!.createdBy, 'kid')
    assert.equal(rows[1]!.id, base.id)
    assert.equal(rows[1]!.comment, 'base')
  })

  test('containers block rmi as in Docker: stopped ones unless -f, running ones always', async () => {
    const img = await cairn.import(Readable.from([await tarOf({ f: 'x' })]), { reference: 'used:1' })
    cairn.store.db.prepare("INSERT INTO containers (id, name, image_id, created, state) VALUES ('c0ffee1234567890', 'happy_cairn', ?, 0, 'exited')").run(img.id)
    let r = await cairn.rmi('used:1')
    assert.match(r.errors[0]!.error.message, /unable to remove repository reference "used:1" \(must force\) - container c0ffee123456 is using its referenced image/)
    r = await cairn.rmi(img.id)
    assert.match(r.errors[0]!.error.message, /\(must be forced\) - image is being used by stopped container c0ffee123456/)
    cairn.store.db.prepare("UPDATE containers SET state = 'running'").run()
    r = await cairn.rmi(img.id, { force: true })
    assert.match(r.errors[0]!.error.message, /\(cannot be forced\) - image is being used by running container c0ffee123456/)
    assert.ok(cairn.store.get(img.id))
    cairn.store.db.prepare("UPDATE containers SET state = 'exited'").run()
    r = await cairn.rmi(img.id, { force: true })
    assert.deepEqual(r.errors, [])
    assert.equal(cairn.store.get(img.id), undefined)
  })

  test('resolve: names first, then full IDs, then unique prefixes; ambiguity is an error', async () => {
    const ids: string[] = []
    for (let i = 0; i < 40; i++) ids.push((await cairn.import(Readable.from([await tarOf({ [`f${i}`]: String(i) })]), { reference: `many:${i}` })).id)
    const first = ids[0]!
    assert.equal(cairn.store.resolve(first).id, first)
    assert.equal(cairn.store.resolve(first.slice(7)).id, first)
    assert.equal(cairn.store.resolve(first.slice(7, 19)).id, first)
    // among 40 IDs some single hex digit is shared by two: that prefix is ambiguous
    const counts = new Map<string, number>()
    for (const id of ids) counts.set(id[7]!, (counts.get(id[7]!) ?? 0) + 1)
    const shared = [...counts].find(([, n]) => n > 1)
    assert.ok(shared)
    assert.throws(() => cairn.store.resolve(shared[0]), (e) => hasCode(e, 'AMBIGUOUS_REFERENCE'))
    assert.throws(() => cairn.store.resolve('nothing:here'), (e) => hasCode(e, 'IMAGE_UNKNOWN'))
    assert.throws(() => cairn.store.resolve('UPPER'), (e) => hasCode(e, 'INVALID_REFERENCE'))
  })

  test('a delete interrupted after trashing is undone on the next open', async () => {
    const img = await cairn.import(Readable.from([await tarOf({ f: 'precious' })]), { reference: 'keep:1' })
    const m = await cairn.store.manifest(cairn.store.resolve('keep:1'))
    const layerPath = cairn.store.content.path(m.layers[0]!.digest)
    // what a process killed between trashing and committing leaves: a referenced blob in the trash
    renameSync(layerPath, `${dir}/store/trash/sha256-${m.layers[0]!.digest.slice(7)}-1-dead`)
    cairn.close()
    cairn = await Cairn.open({ root: `${dir}/store` })
    assert.ok(existsSync(layerPath), 'the blob is back')
    assert.deepEqual(readdirSync(`${dir}/store/trash`), [])
    assert.equal(cairn.store.resolve('keep:1').id, img.id)
  })

  test('SOURCE_DATE_EPOCH: the same content gives the same layer and image, whatever the file times', async () => {
    const a = await cairn.import(Readable.from([await tarOf({ f: 'same' }, 1_800_000_000)]), { timestamp: 1_700_000_000 })
    const b = await cairn.import(Readable.from([await tarOf({ f: 'same' }, 1_900_000_000)]), { timestamp: 1_700_000_000 })
    assert.equal(a.diffId, b.diffId)
    assert.equal(a.id, b.id)
    const c = await cairn.import(Readable.from([await tarOf({ f: 'same' }, 1_800_000_000)]))
    assert.notEqual(c.diffId, a.diffId, 'without a timestamp the file times are kept')
  })

  test('zstd and uncompressed layers are written and read back', async () => {
    for (const compression of ['zstd', 'none', 'gzip'] as const) {
      const img = await cairn.import(Readable.from([await tarOf({ [compression]: compression.repeat(1000) })]), { reference: `comp:${compression}`, compression, format: 'oci' })
      const m = await cairn.store.manifest(cairn.store.resolve(`comp:${compression}`))
      const expected = { zstd: 'application/vnd.oci.image.layer.v1.tar+zstd', none: 'application/vnd.oci.image.layer.v1.tar', gzip: 'application/vnd.oci.image.layer.v1.tar+gzip' }[compression]
      assert.equal(m.layers[0]!.mediaType, expected)
      const out = `${dir}/${compression}.tar`
      await cairn.save(`comp:${compression}`, out, { format: 'oci' })
      await cairn.rmi(`comp:${compression}`)
      const loaded = await cairn.load(out)
      assert.equal(loaded.images[0]!.id, img.id)
    }
  })
})
