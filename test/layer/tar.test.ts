import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { setImmediate as tick } from 'node:timers/promises'
import { describe, it } from 'node:test'
import { hasCode } from '../../src/errors/index.js'
import { formatPaxTime, parsePaxTime, readTar, tarHeader, writeTar, type TarHeader, type TarHeaderInit } from '../../src/layer/tar.js'
import { encodeHeader, parsePaxRecords } from '../../src/layer/tar-header.js'
import { chunked, collect, rejectsWithCode, tarOf } from './helpers.js'

async function readAll(data: Buffer | Readable, chunk = 0): Promise<Array<{ header: TarHeader; body: Buffer }>> {
  const source = Buffer.isBuffer(data) ? (chunk > 0 ? chunked(data, chunk) : Readable.from([data])) : data
  const out: Array<{ header: TarHeader; body: Buffer }> = []
  for await (const { header, body } of readTar(source)) out.push({ header, body: await collect(body) })
  return out
}

/** Rewrites a header block's checksum after a test edited it. */
function fixChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156)
  let sum = 0
  for (const b of block) sum += b
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1')
}

function rawBlock(fields: { name: string; typeflag: string; size?: number; magic?: 'ustar' | 'gnu' | 'v7' }): Buffer {
  const block = Buffer.alloc(512)
  block.write(fields.name, 0, 100, 'utf8')
  block.write('0000644\0', 100, 'latin1')
  block.write('0000000\0', 108, 'latin1')
  block.write('0000000\0', 116, 'latin1')
  block.write((fields.size ?? 0).toString(8).padStart(11, '0') + '\0', 124, 'latin1')
  block.write('00000000000\0', 136, 'latin1')
  block.write(fields.typeflag, 156, 1, 'latin1')
  if (fields.magic === 'gnu') block.write('ustar  \0', 257, 'latin1')
  else if (fields.magic !== 'v7') block.write('ustar\x0000', 257, 'latin1')
  fixChecksum(block)
  return block
}

function padded(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)])
}

describe('tar writer and reader', () => {
  it('round-trips every entry type and header field', async () => {
    const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex')
    const weird = Buffer.from([0, 1, 0x0a, 0x3d, 0xff, 0x20])
    const headers: TarHeaderInit[] = [
      { path: 'dir/', type: 'directory', mode: 0o1777, uid: 1, gid: 2, uname: 'bin', gname: 'daemon', mtime: 1_700_000_000 },
      { path: 'dir/file', type: 'file', mode: 0o4755, size: 5, mtime: 1_700_000_001, xattrs: new Map([['security.capability', cap], ['user.weird', weird], ['user.empty', Buffer.alloc(0)]]) },
      { path: 'dir/link', type: 'symlink', linkname: '../dir/file', mode: 0o777 },
      { path: 'dir/hard', type: 'hardlink', linkname: 'dir/file', mode: 0o4755 },
      { path: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
      { path: 'dev/loop0', type: 'block', devmajor: 7, devminor: 0, mode: 0o660, gid: 6 },
      { path: 'dev/big', type: 'char', devmajor: 4095, devminor: 3_000_000 },
      { path: 'fifo', type: 'fifo', mode: 0o2640 },
      { path: 'ids', type: 'file', uid: 3_000_000, gid: 70_000_000, uname: 'ünïcode', gname: 'g'.repeat(40) },
      { path: 'times', type: 'file', mtime: 1_700_000_000, mtimeNsec: 123_456_789, pax: new Map([['atime', '1700000000.5'], ['comment', 'kept']]) },
      { path: 'old', type: 'file', mtime: -2, mtimeNsec: 500_000_000 },
      { path: 'huge-time', type: 'file', mtime: 2 ** 40 },
    ]
    const data = await tarOf(headers.map((h) => ({ header: h, ...(h.path === 'dir/file' ? { body: 'hello' } : {}) })))
    assert.equal(data.length % 512, 0)
    assert.ok(data.subarray(-1024).every((b) => b === 0), 'ends with two zero blocks')
    const entries = await readAll(data)
    assert.deepEqual(entries.map((e) => e.header), headers.map((h) => tarHeader(h)))
    assert.equal(entries[1]?.body.toString(), 'hello')
    assert.deepEqual(entries[1]?.header.xattrs.get('user.weird'), weird)
  })

  it('reads correctly whatever the chunking of the input', async () => {
    const big = Buffer.alloc(200_000, 7)
    const data = await tarOf([
      { header: { path: 'a', type: 'file' }, body: big },
      { header: { path: 'x'.repeat(300), type: 'file', xattrs: new Map([['user.a', Buffer.from('b')]]) }, body: 'tail' },
    ])
    for (const size of [1, 7, 511, 512, 513, 4096]) {
      const entries = await readAll(data, size)
      assert.equal(entries.length, 2)
      assert.deepEqual(entries[0]?.body, big)
      assert.equal(entries[1]?.header.path, 'x'.repeat(300))
      assert.equal(entries[1]?.body.toString(), 'tail')
    }
  })

  it('uses ustar fields when they suffice and PAX only when needed', async () => {
    const paxKeys = (h: TarHeaderInit): string[] => {
      const bytes = encodeHeader(tarHeader(h))
      if (bytes[156] !== 'x'.charCodeAt(0)) return []
      const size = parseInt(bytes.subarray(124, 135).toString('latin1'), 8)
      return [...parsePaxRecords(bytes.subarray(512, 512 + size)).keys()]
    }
    assert.deepEqual(paxKeys({ path: 'a'.repeat(100), type: 'file' }), [])
    assert.deepEqual(paxKeys({ path: `${'d'.repeat(150)}/${'f'.repeat(100)}`, type: 'file' }), []) // prefix + name
    assert.deepEqual(paxKeys({ path: 'f'.repeat(101), type: 'file' }), ['path'])
    assert.deepEqual(paxKeys({ path: `${'d'.repeat(200)}/${'f'.repeat(60)}`, type: 'file' }), ['path'])
    assert.deepEqual(paxKeys({ path: 'é', type: 'file' }), ['path'])
    assert.deepEqual(paxKeys({ path: 'l', type: 'symlink', linkname: 't'.repeat(101) }), ['linkpath'])
    assert.deepEqual(paxKeys({ path: 'u', type: 'file', uid: 0o7777777 }), [])
    assert.deepEqual(paxKeys({ path: 'u', type: 'file', uid: 0o7777777 + 1 }), ['uid'])
    assert.deepEqual(paxKeys({ path: 's', type: 'file', size: 8 * 1024 ** 3 }), ['size'])
    assert.deepEqual(paxKeys({ path: 's', type: 'file', size: 8 * 1024 ** 3 - 1 }), [])
    assert.deepEqual(paxKeys({ path: 't', type: 'file', mtime: 5, mtimeNsec: 1 }), ['mtime'])
    assert.deepEqual(paxKeys({ path: 'x', type: 'file', xattrs: new Map([['user.k', Buffer.from('v')]]) }), ['SCHILY.xattr.user.k'])
  })

  it('round-trips names longer than 100 and 255 bytes, and non-ASCII names', async () => {
    const names = [
      'a'.repeat(100),
      `${'p'.repeat(120)}/${'n'.repeat(99)}`,
      `${'d/'.repeat(150)}file`,
      'ü'.repeat(200),
      '日本語/ファイル.txt',
    ]
    const data = await tarOf(names.map((path) => ({ header: { path, type: 'symlink', linkname: `${path}-target-${'t'.repeat(120)}` } })))
    const entries = await readAll(data)
    assert.deepEqual(entries.map((e) => e.header.path), names)
    assert.deepEqual(entries.map((e) => e.header.linkname), names.map((n) => `${n}-target-${'t'.repeat(120)}`))
  })

  it('is deterministic: the same entries give the same bytes', async () => {
    const make = (): Promise<Buffer> => tarOf([
      { header: { path: 'z', type: 'file', xattrs: new Map([['user.b', Buffer.from('2')], ['user.a', Buffer.from('1')]]), pax: new Map([['comment', 'c']]) }, body: 'z' },
      { header: { path: 'é'.repeat(80), type: 'directory', mtime: 1, mtimeNsec: 5 } },
    ])
    assert.deepEqual(await make(), await make())
  })

  it('formats and parses PAX times exactly', () => {
    for (const [text, sec, nsec] of [['0', 0, 0], ['1.5', 1, 500_000_000], ['1700000000.123456789', 1_700_000_000, 123_456_789], ['-1.5', -2, 500_000_000], ['-0.25', -1, 750_000_000], ['-3', -3, 0]] as const) {
      assert.deepEqual(parsePaxTime(text), { sec, nsec })
      assert.equal(formatPaxTime(sec, nsec), text)
    }
    assert.deepEqual(parsePaxTime('12.1234567891'), { sec: 12, nsec: 123_456_789 })
  })

  it('refuses a body whose length differs from the header size', async () => {
    await rejectsWithCode(tarOf([{ header: { path: 'a', type: 'file', size: 3 }, body: 'ab' }]), 'INVALID_ARGUMENT')
    const tooLong = writeTar([{ header: { path: 'a', type: 'file', size: 1 }, body: Readable.from([Buffer.from('ab')]) }])
    await rejectsWithCode(collect(tooLong), 'INVALID_ARGUMENT')
  })

  it('pulls bodies only as fast as the output is read (backpressure)', async () => {
    let produced = 0
    async function* body(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 1000; i++) {
        produced++
        yield Buffer.alloc(64 * 1024)
      }
    }
    const out = writeTar([{ header: { path: 'big', type: 'file', size: 1000 * 64 * 1024 }, body: body() }])
    out.once('readable', () => {})
    await tick()
    await tick()
    assert.ok(produced < 10, `read ${produced} chunks ahead of the consumer`)
    let total = 0
    for await (const chunk of out) total += (chunk as Buffer).length
    assert.equal(produced, 1000)
    assert.equal(total, 512 + 1000 * 64 * 1024 + 1024)
  })

  it('skips bodies that the consumer does not read', async () => {
    const data = await tarOf([
      { header: { path: 'a', type: 'file' }, body: Buffer.alloc(5000, 1) },
      { header: { path: 'b', type: 'file' }, body: 'bee' },
      { header: { path: 'c', type: 'file' }, body: Buffer.alloc(100_000, 2) },
    ])
    const paths: string[] = []
    for await (const { header, body } of readTar(chunked(data, 1000))) {
      paths.push(header.path)
      if (header.path === 'b') assert.equal((await collect(body)).toString(), 'bee')
    }
    assert.deepEqual(paths, ['a', 'b', 'c'])
  })

  it('reads GNU base-256 numeric fields', async () => {
    const data = await tarOf([{ header: { path: 'n', type: 'file', uid: 5 } }])
    const block = Buffer.from(data.subarray(0, 512))
    // uid 2^40 in base-256: 0x80 marker then big-endian bytes.
    block.fill(0, 108, 116)
    block[108] = 0x80
    block.writeUIntBE(2 ** 40, 110, 6)
    // mtime -1 in base-256 (all 0xff).
    block.fill(0xff, 136, 148)
    fixChecksum(block)
    const [entry] = await readAll(Buffer.concat([block, Buffer.alloc(1024)]))
    assert.equal(entry?.header.uid, 2 ** 40)
    assert.equal(entry?.header.mtime, -1)
  })

  it('reads old-style entries: NUL typeflag files and trailing-slash directories', async () => {
    const data = Buffer.concat([
      rawBlock({ name: 'olddir/', typeflag: '\0', magic: 'v7' }),
      rawBlock({ name: 'olddir/file', typeflag: '\0', size: 3, magic: 'v7' }),
      padded(Buffer.from('abc')),
      Buffer.alloc(1024),
    ])
    const entries = await readAll(data)
    assert.deepEqual(entries.map((e) => [e.header.type, e.header.path, e.body.toString()]), [
      ['directory', 'olddir/', ''],
      ['file', 'olddir/file', 'abc'],
    ])
  })

  it('reads GNU long names and long link names', async () => {
    const longName = `${'n'.repeat(300)}/leaf`
    const longLink = 'l'.repeat(400)
    const name = Buffer.from(`${longName}\0`)
    const link = Buffer.from(`${longLink}\0`)
    const data = Buffer.concat([
      rawBlock({ name: '././@LongLink', typeflag: 'L', size: name.length, magic: 'gnu' }),
      padded(name),
      rawBlock({ name: '././@LongLink', typeflag: 'K', size: link.length, magic: 'gnu' }),
      padded(link),
      rawBlock({ name: 'truncated', typeflag: '2', magic: 'gnu' }),
      Buffer.alloc(1024),
    ])
    const [entry] = await readAll(data)
    assert.equal(entry?.header.path, longName)
    assert.equal(entry?.header.linkname, longLink)
    assert.equal(entry?.header.type, 'symlink')
  })

  it('applies PAX global headers as defaults', async () => {
    const records = Buffer.from('17 comment=hello\n27 SCHILY.xattr.user.g=all\n')
    const data = Buffer.concat([
      rawBlock({ name: 'pax_global_header', typeflag: 'g', size: records.length }),
      padded(records),
      (await tarOf([{ header: { path: 'one', type: 'file', pax: new Map([['comment', 'mine']]) } }, { header: { path: 'two', type: 'file' } }])),
    ])
    const entries = await readAll(data)
    assert.deepEqual(entries.map((e) => e.header.pax.get('comment')), ['mine', 'hello'])
    assert.equal(entries[1]?.header.xattrs.get('user.g')?.toString(), 'all')
  })

  it('tolerates archives without end-of-archive blocks, and ignores what follows them', async () => {
    const full = await tarOf([{ header: { path: 'a', type: 'file' }, body: 'x' }])
    const noEnd = full.subarray(0, full.length - 1024)
    assert.equal((await readAll(noEnd)).length, 1)
    assert.equal((await readAll(full.subarray(0, full.length - 512))).length, 1)
    assert.equal((await readAll(Buffer.concat([full, Buffer.from('trailing junk')]))).length, 1)
    assert.equal((await readAll(Buffer.alloc(0))).length, 0)
  })

  it('fails with INVALID_LAYER on a bad checksum', async () => {
    const data = Buffer.from(await tarOf([{ header: { path: 'a', type: 'file' }, body: 'x' }]))
    data[0] = 'b'.charCodeAt(0)
    await rejectsWithCode(readAll(data), 'INVALID_LAYER', /checksum/)
  })

  it('fails with INVALID_LAYER on garbage input', async () => {
    await rejectsWithCode(readAll(Buffer.from('this is not a tar archive at all '.repeat(40))), 'INVALID_LAYER')
    await rejectsWithCode(readAll(Buffer.alloc(1024, 0xff)), 'INVALID_LAYER')
  })

  it('fails with INVALID_LAYER on a truncated archive', async () => {
    const data = await tarOf([{ header: { path: 'a', type: 'file' }, body: Buffer.alloc(2000, 1) }, { header: { path: 'b', type: 'file' } }])
    await rejectsWithCode(readAll(data.subarray(0, 300)), 'INVALID_LAYER', /truncated/) // inside a header
    await rejectsWithCode(readAll(data.subarray(0, 1500)), 'INVALID_LAYER', /truncated/) // inside a body
    await rejectsWithCode(readAll(data.subarray(0, 512 + 2000)), 'INVALID_LAYER', /truncated/) // inside padding
    // The body stream itself fails too, and the iteration after it.
    const it = readTar(Readable.from([data.subarray(0, 1500)]))[Symbol.asyncIterator]()
    const first = await it.next()
    assert.ok(!first.done)
    await rejectsWithCode(collect(first.value.body), 'INVALID_LAYER')
    await rejectsWithCode(it.next(), 'INVALID_LAYER')
  })

  it('fails with INVALID_LAYER on a zero block followed by data', async () => {
    const entry = await tarOf([{ header: { path: 'a', type: 'file' } }])
    await rejectsWithCode(readAll(Buffer.concat([Buffer.alloc(512), entry])), 'INVALID_LAYER')
  })

  it('bounds PAX headers at 1 MiB', async () => {
    const block = rawBlock({ name: 'PaxHeaders/x', typeflag: 'x', size: 2 * 1024 * 1024 })
    await rejectsWithCode(readAll(Buffer.concat([block, Buffer.alloc(2 * 1024 * 1024)])), 'INVALID_LAYER', /limit/)
    const long = rawBlock({ name: '././@LongLink', typeflag: 'L', size: 1024 * 1024 + 1, magic: 'gnu' })
    await rejectsWithCode(readAll(Buffer.concat([long, Buffer.alloc(1024)])), 'INVALID_LAYER', /limit/)
  })

  it('fails with INVALID_LAYER on malformed PAX records', async () => {
    for (const records of ['99 path=a\n', '5 path=abc\n', 'x path=a\n', '11 path=ab']) {
      const data = Buffer.from(records)
      const tar = Buffer.concat([rawBlock({ name: 'p', typeflag: 'x', size: data.length }), padded(data), await tarOf([{ header: { path: 'a', type: 'file' } }])])
      await rejectsWithCode(readAll(tar), 'INVALID_LAYER')
    }
  })

  it('refuses sparse files with NOT_SUPPORTED', async () => {
    const data = Buffer.concat([rawBlock({ name: 'sparse', typeflag: 'S', magic: 'gnu' }), Buffer.alloc(1024)])
    await rejectsWithCode(readAll(data), 'NOT_SUPPORTED')
  })

  it('honours an AbortSignal when reading and writing', async () => {
    const data = await tarOf([{ header: { path: 'a', type: 'file' }, body: 'x' }, { header: { path: 'b', type: 'file' } }])
    const ac = new AbortController()
    const seen: string[] = []
    await rejectsWithCode((async () => {
      for await (const { header } of readTar(Readable.from([data]), { signal: ac.signal })) {
        seen.push(header.path)
        ac.abort()
      }
    })(), 'ABORTED')
    assert.deepEqual(seen, ['a'])

    // A reader stuck on a source that never ends is woken up by the abort.
    const stalled = new Readable({ read() {} })
    const ac2 = new AbortController()
    const pending = readTar(stalled, { signal: ac2.signal })[Symbol.asyncIterator]().next()
    setTimeout(() => ac2.abort(), 10)
    await rejectsWithCode(pending, 'ABORTED')

    const ac3 = new AbortController()
    async function* endless(): AsyncGenerator<{ header: TarHeaderInit }> {
      for (let i = 0; ; i++) yield { header: { path: `f${i}`, type: 'file' } }
    }
    const out = writeTar(endless(), { signal: ac3.signal })
    let n = 0
    await assert.rejects((async () => {
      for await (const _ of out) if (++n === 10) ac3.abort()
    })(), (err: unknown) => hasCode(err, 'ABORTED'))
  })
})
