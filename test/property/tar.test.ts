// Properties of the tar codec: whatever entries are written, the same entries are read back.
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { readTar, writeTar } from '../../src/layer/tar.js'
import { tarHeader, type TarHeaderInit, type TarEntryType } from '../../src/layer/tar-header.js'
import { collect } from '../layer/helpers.js'

const TYPES: TarEntryType[] = ['file', 'hardlink', 'symlink', 'char', 'block', 'directory', 'fifo']
// any text but NUL and '/', which a path component cannot hold (and NUL no tar field)
const name = fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).map((s) => s.replace(/[\0/]/g, '_')).filter((s) => s !== '.' && s !== '..')
const longName = fc.oneof(name, fc.integer({ min: 90, max: 260 }).map((n) => 'n'.repeat(n)))
const path = fc.array(longName, { minLength: 1, maxLength: 4 }).map((c) => c.join('/')).filter((p) => Buffer.byteLength(p) < 4000)
const text = fc.string({ unit: 'binary', maxLength: 40 }).map((s) => s.replace(/\0/g, ''))

const entry = fc.record({
  path,
  type: fc.constantFrom(...TYPES),
  mode: fc.integer({ min: 0, max: 0o7777 }),
  uid: fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 2 ** 32 - 1 })),
  gid: fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 2 ** 32 - 1 })),
  uname: text,
  gname: text,
  mtime: fc.oneof(fc.integer({ min: 0, max: 2 ** 33 - 1 }), fc.integer({ min: -(2 ** 40), max: 2 ** 40 })),
  mtimeNsec: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 999_999_999 })),
  linkname: fc.oneof(path, fc.constant('')),
  dev: fc.tuple(fc.integer({ min: 0, max: 4095 }), fc.integer({ min: 0, max: 2 ** 20 - 1 })),
  xattrs: fc.array(fc.tuple(fc.string({ unit: fc.constantFrom(...'abcxyz.-_019'), minLength: 1, maxLength: 20 }), fc.uint8Array({ maxLength: 64 })), { maxLength: 3 }),
  comment: fc.option(fc.string({ unit: 'binary', maxLength: 60 }), { nil: undefined }),
  body: fc.uint8Array({ maxLength: 1500 }),
})

type Generated = typeof entry extends fc.Arbitrary<infer T> ? T : never

function init(e: Generated): { header: TarHeaderInit; body?: Buffer } {
  const header: TarHeaderInit = {
    path: e.path, type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, uname: e.uname, gname: e.gname,
    mtime: e.mtime, mtimeNsec: e.mtimeNsec,
    xattrs: new Map(e.xattrs.map(([k, v]) => [`user.${k}`, Buffer.from(v)])),
  }
  if (e.comment !== undefined) header.pax = new Map([['comment', e.comment]])
  if (e.type === 'symlink' || e.type === 'hardlink') header.linkname = e.linkname || 'target'
  if (e.type === 'char' || e.type === 'block') {
    header.devmajor = e.dev[0]
    header.devminor = e.dev[1]
  }
  if (e.type !== 'file') return { header }
  header.size = e.body.length
  return { header, body: Buffer.from(e.body) }
}

describe('tar codec (properties)', () => {
  it('reads back every entry as written: every type, long names, PAX records, binary xattrs', async () => {
    await fc.assert(fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 5 }), fc.integer({ min: 1, max: 2048 }), async (entries, chunk) => {
      const inputs = entries.map(init)
      const bytes = await collect(writeTar(inputs))
      assert.equal(bytes.length % 512, 0)
      // read in pieces of any size
      const pieces: Buffer[] = []
      for (let i = 0; i < bytes.length; i += chunk) pieces.push(bytes.subarray(i, i + chunk))
      const read: { header: ReturnType<typeof tarHeader>; body: Buffer }[] = []
      for await (const { header, body } of readTar(Readable.from(pieces))) read.push({ header, body: await collect(body) })
      assert.equal(read.length, inputs.length)
      for (const [i, input] of inputs.entries()) {
        const got = read[i]
        assert.ok(got)
        assert.deepEqual(got.header, tarHeader(input.header), `entry ${i}`)
        assert.deepEqual(got.body, input.body ?? Buffer.alloc(0))
      }
      // and writing what was read gives the same bytes
      assert.deepEqual(await collect(writeTar(read.map((r) => ({ header: r.header, body: r.body })))), bytes)
    }), { numRuns: 150 })
  })
})
