import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { describe, it } from 'node:test'
import { gzipSync } from 'node:zlib'
import { runOk } from '../helpers/exec.js'
import { compressStream, decompressor, decompressStream, detectCompression, sniffCompression, zstdBackend, type Compression } from '../../src/layer/compression.js'
import { chunked, collect, rejectsWithCode, tempDir } from './helpers.js'

async function compress(data: Buffer, compression: Compression, level?: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  await pipeline(Readable.from([data]), compressStream(compression, level === undefined ? {} : { level }), async (source: AsyncIterable<Buffer>) => {
    for await (const c of source) chunks.push(c)
  })
  return Buffer.concat(chunks)
}

/** A zstd block header: last-block flag, type (0 raw, 1 RLE, 2 compressed, 3 reserved), size. */
function blockHeader(last: boolean, type: number, size: number): Buffer {
  const b = Buffer.alloc(3)
  b.writeUIntLE((size << 3) | (type << 1) | (last ? 1 : 0), 0, 3)
  return b
}

// Compressible but not trivial: text with random bits.
const DATA = Buffer.concat(Array.from({ length: 200 }, (_, i) => Buffer.concat([Buffer.from(`line ${i} `.repeat(50)), randomBytes(64)])))

describe('layer compression', () => {
  it('detects gzip, zstd and uncompressed data by magic bytes', () => {
    assert.equal(detectCompression(Buffer.from([0x1f, 0x8b, 0x08, 0x00])), 'gzip')
    assert.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00])), 'zstd')
    assert.equal(detectCompression(Buffer.from('ustar')), 'none')
    assert.equal(detectCompression(Buffer.from([0x1f])), 'none')
    assert.equal(detectCompression(Buffer.alloc(0)), 'none')
  })

  for (const compression of ['none', 'gzip', 'zstd'] as const) {
    it(`round-trips ${compression} through decompressStream, whatever the chunking`, async () => {
      const packed = await compress(DATA, compression)
      if (compression !== 'none') assert.ok(packed.length < DATA.length / 2)
      assert.equal(detectCompression(packed), compression)
      for (const size of [1, 3, 4096]) {
        assert.deepEqual(await collect(decompressStream(chunked(packed, size))), DATA)
      }
    })
  }

  it('sniffCompression gives back every byte of the original stream', async () => {
    const packed = await compress(DATA, 'gzip')
    const { compression, stream } = await sniffCompression(chunked(packed, 2))
    assert.equal(compression, 'gzip')
    assert.deepEqual(await collect(stream), packed)
    const tiny = await sniffCompression(Readable.from([Buffer.from('ab')]))
    assert.equal(tiny.compression, 'none')
    assert.deepEqual(await collect(tiny.stream), Buffer.from('ab'))
  })

  it('passes empty input through', async () => {
    assert.equal((await collect(decompressStream(Readable.from([])))).length, 0)
  })

  it('writes deterministic gzip: no name, zero mtime, same bytes every time', async () => {
    const a = await compress(DATA, 'gzip')
    const b = await compress(DATA, 'gzip')
    assert.deepEqual(a, b)
    assert.equal(a[3], 0, 'no FNAME/FEXTRA/FCOMMENT flags')
    assert.equal(a.readUInt32LE(4), 0, 'mtime is zero')
    assert.notDeepEqual(await compress(DATA, 'gzip', 1), await compress(DATA, 'gzip', 9))
  })

  it('writes deterministic zstd', async () => {
    assert.deepEqual(await compress(DATA, 'zstd'), await compress(DATA, 'zstd'))
    assert.deepEqual(await compress(DATA, 'zstd', 19), await compress(DATA, 'zstd', 19))
    assert.ok(['node:zlib', 'zstd-napi'].includes(zstdBackend()))
  })

  it('interoperates with the gzip and zstd command-line tools', async (t) => {
    const dir = await tempDir(t)
    for (const [compression, tool] of [['gzip', 'gzip'], ['zstd', 'zstd']] as const) {
      const file = join(dir, `data.${compression}`)
      await writeFile(file, await compress(DATA, compression))
      await runOk(tool, ['-t', file]) // the tool accepts our output
    }
    // ... and we read gzip made elsewhere (a multi-member stream, as pigz/concatenation make).
    const multi = Buffer.concat([gzipSync(DATA.subarray(0, 1000)), gzipSync(DATA.subarray(1000))])
    assert.deepEqual(await collect(decompressStream(Readable.from([multi]))), DATA)
  })

  it('fails with INVALID_LAYER on corrupt or truncated compressed data', async () => {
    const gz = await compress(DATA, 'gzip')
    const corrupt = Buffer.from(gz)
    corrupt.fill(0x55, 20, 60)
    await rejectsWithCode(collect(decompressStream(Readable.from([corrupt]))), 'INVALID_LAYER', /gzip/)
    await rejectsWithCode(collect(decompressStream(Readable.from([gz.subarray(0, gz.length - 20)]))), 'INVALID_LAYER', /gzip/)
    const zst = await compress(DATA, 'zstd')
    await rejectsWithCode(collect(decompressStream(Readable.from([zst.subarray(0, zst.length - 20)]))), 'INVALID_LAYER', /zstd/)
  })

  it('fails with INVALID_LAYER on a zstd stream cut anywhere, whatever the decompressor says', async () => {
    // Node.js 22's built-in zstd decompresses a stream cut inside its checksum to all the data,
    // and one cut earlier to nothing, without an error: Cairn checks the framing itself
    const zst = await compress(DATA, 'zstd')
    const cuts = [1, 2, 3, 4, 5, 20, 100, Math.floor(zst.length / 2), zst.length - 5, zst.length - 4] // (shorter than the magic it is not zstd)
    for (const cut of cuts) {
      await rejectsWithCode(collect(decompressStream(chunked(zst.subarray(0, zst.length - cut), 4096))), 'INVALID_LAYER', /zstd/)
      await rejectsWithCode(collect(decompressor('zstd').end(zst.subarray(0, zst.length - cut))), 'INVALID_LAYER', /zstd/)
    }
    // a whole stream followed by a second one cut short
    await rejectsWithCode(collect(decompressStream(Readable.from([zst, zst.subarray(0, 10)]))), 'INVALID_LAYER', /truncated/)
    await rejectsWithCode(collect(decompressor('zstd').end(Buffer.alloc(0))), 'INVALID_LAYER', /no zstd frame/)
  })

  it('reads zstd frames of every block type, several frames and skippable frames', async () => {
    // hand-made frames: single segment, 1-byte content size, no checksum
    const raw = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x20, 5]), blockHeader(true, 0, 5), Buffer.from('hello')])
    const rle = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x20, 7]), blockHeader(false, 1, 4), Buffer.from('x'), blockHeader(true, 1, 3), Buffer.from('y')])
    const skippable = Buffer.concat([Buffer.from([0x5e, 0x2a, 0x4d, 0x18, 3, 0, 0, 0]), Buffer.from('abc')])
    const zst = await compress(DATA, 'zstd')
    const small = Buffer.concat([raw, skippable, rle])
    for (const size of [1, 7]) assert.deepEqual(await collect(decompressStream(chunked(small, size))), Buffer.from('helloxxxxyyy'))
    const all = Buffer.concat([small, zst, zst])
    for (const size of [999, 4096]) {
      assert.deepEqual(await collect(decompressStream(chunked(all, size))), Buffer.concat([Buffer.from('helloxxxxyyy'), DATA, DATA]))
    }
    // a frame that decompresses to other than its declared size
    const lying = Buffer.from(raw)
    lying[5] = 6
    await rejectsWithCode(collect(decompressStream(Readable.from([lying]))), 'INVALID_LAYER', /zstd/)
    // reserved block type, and a bad magic after a good frame
    await rejectsWithCode(collect(decompressStream(Readable.from([Buffer.concat([raw.subarray(0, 6), blockHeader(true, 3, 0)])]))), 'INVALID_LAYER', /reserved block type/)
    await rejectsWithCode(collect(decompressStream(Readable.from([Buffer.concat([raw, Buffer.from('nope')])]))), 'INVALID_LAYER', /magic/)
  })

  it('honours an AbortSignal', async () => {
    const ac = new AbortController()
    const never = new Readable({ read() {} })
    never.push(Buffer.from([0x1f, 0x8b, 0x08, 0x00]))
    const out = decompressStream(never, { signal: ac.signal })
    setTimeout(() => ac.abort(), 10)
    await rejectsWithCode(collect(out), 'ABORTED')
  })
})
