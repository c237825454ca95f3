/**
 * The fast deflate: Cairn's libdeflate addon (native/), the parallel gzip built on it, and the zlib
 * fallback when the addon is missing, broken or turned off.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { gunzipSync, gzipSync } from 'node:zlib'
import { addonPath, gzipBackend, gzipFallbackReason, libdeflateBackend, loadAddon, zlibBackend } from '../../src/layer/deflate.js'
import { parallelGzip } from '../../src/layer/pgzip.js'
import { runOk } from '../helpers/exec.js'
import { collect, tempDir } from './helpers.js'

const PROJECT = fileURLToPath(new URL('../../../', import.meta.url))

/** Real text to compress: this project's own TypeScript sources, in a fixed order. */
function sourceCorpus(): Buffer {
  const parts: Buffer[] = []
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.isDirectory()) walk(join(dir, e.name))
      else if (e.name.endsWith('.ts')) parts.push(readFileSync(join(dir, e.name)))
    }
  }
  walk(join(PROJECT, 'src'))
  return Buffer.concat(parts)
}

const gzipOf = async (data: Buffer, opts: Parameters<typeof parallelGzip>[0], chunk = 65_536): Promise<Buffer> => {
  const parts: Buffer[] = []
  for (let i = 0; i < data.length; i += chunk) parts.push(data.subarray(i, i + chunk))
  return collect(Readable.from(parts).pipe(parallelGzip(opts)))
}

describe('fast deflate', () => {
  it('loads the libdeflate addon built at install (libdeflate-dev is a required package)', () => {
    assert.equal(gzipFallbackReason(), undefined, `the addon did not load: ${String(gzipFallbackReason())}`)
    assert.equal(gzipBackend().name, 'libdeflate')
    assert.match(gzipBackend().version, /^\d+\.\d+/)
  })

  it('makes gzip members that zlib and gzip(1) read back, the same bytes every time', async (t) => {
    const lib = gzipBackend()
    const input = Buffer.concat([sourceCorpus(), randomBytes(300_000), Buffer.alloc(200_000, 'z')])
    const a = await gzipOf(input, { backend: lib, blockSize: 256 * 1024, parallelism: 1 }, 7_000)
    const b = await gzipOf(input, { backend: lib, blockSize: 256 * 1024, parallelism: 4 }, 1 << 20)
    assert.ok(a.equals(b), 'the same output whatever the parallelism and the input chunking')
    assert.ok(gunzipSync(a).equals(input))
    assert.equal(a[3], 0, 'no FNAME/FEXTRA/FCOMMENT flags')
    assert.equal(a.readUInt32LE(4), 0, 'mtime zero')
    const dir = await tempDir(t)
    await writeFile(join(dir, 'x.gz'), a)
    await runOk('gzip', ['-t', join(dir, 'x.gz')])
    await runOk('gzip', ['-d', join(dir, 'x.gz')])
    assert.ok(readFileSync(join(dir, 'x')).equals(input), 'gzip -d gives back the input')
    // empty input: one empty member
    assert.equal(gunzipSync(await gzipOf(Buffer.alloc(0), { backend: lib })).length, 0)
  })

  it('is within 1% of zlib level 6 on JavaScript text (where libdeflate\'s own level 6 is 1.4% larger), on binaries, and on both mixed', async () => {
    const lib = gzipBackend()
    // 8 MiB of TypeScript's compiled JavaScript (several blocks, highly compressible), and 8 MiB of
    // the node executable
    const tsLib = join(PROJECT, 'node_modules/typescript/lib')
    const files = readdirSync(tsLib).filter((f) => f.endsWith('.js')).sort()
    const text = Buffer.concat(files.map((f) => readFileSync(join(tsLib, f)))).subarray(0, 8 << 20)
    const binary = readFileSync(process.execPath).subarray(0, 8 << 20)
    // text with binary in it (a block 60 to 90% text, where libdeflate's 4 is up to 3.5% larger):
    // 48 KiB of JavaScript, then 16 KiB of the executable, over and over
    const pieces: Buffer[] = []
    for (let off = 0; off < 6 << 20; off += 48 << 10) pieces.push(text.subarray(off, off + (48 << 10)), binary.subarray(off / 3, off / 3 + (16 << 10)))
    const mixed = Buffer.concat(pieces)
    for (const [what, data] of [['text', text], ['binary', binary], ['mixed', mixed]] as const) {
      const zlib6 = gzipSync(data, { level: 6 }).length
      const ours = (await gzipOf(data, { backend: lib })).length
      assert.ok(ours <= zlib6 * 1.01, `${what}: libdeflate ${ours} bytes, zlib -6 ${zlib6}: more than 1% larger`)
    }
  })

  it('stores incompressible blocks as they are, and only those: within 1% of zlib -6 either way', async () => {
    const lib = gzipBackend()
    const block = 1 << 20
    const random = randomBytes(block)
    // stored: deflate's stored blocks cost 5 bytes per 64 KiB, the member 18
    const stored = await lib.gzip(random)
    assert.ok(stored.length <= block + 5 * Math.ceil(block / 65_535) + 18, `random bytes took ${stored.length} bytes`)
    assert.ok(gunzipSync(stored).equals(random))
    // random at first sight (every byte as frequent as the others, in every 4 KiB) but not: a random
    // 24 KiB repeated, where zlib -6 saves nearly everything; bytes from 200 values (order-0
    // entropy 7.6 bits); random 1 KiB pieces with a run of zeros between them; random bytes with a
    // few bytes repeated from the 1 KiB before every 200. Each must come out within 1% of zlib -6.
    const piece = randomBytes(24 << 10)
    const repeated = Buffer.concat(Array.from({ length: Math.ceil(block / piece.length) }, () => piece)).subarray(0, block)
    const narrow = Buffer.from(randomBytes(block).map((b) => b % 200))
    const withZeros = Buffer.concat(Array.from({ length: block / 1200 + 1 }, () => Buffer.concat([randomBytes(1024), Buffer.alloc(176)]))).subarray(0, block)
    const echoes = randomBytes(block)
    for (let i = 1024; i + 8 <= block; i += 200) echoes.copy(echoes, i, i - 1000, i - 992)
    for (const [what, data] of [['repeated', repeated], ['200 values', narrow], ['zero runs', withZeros], ['short echoes', echoes]] as const) {
      const ours = (await lib.gzip(data)).length
      const zlib6 = gzipSync(data, { level: 6 }).length
      assert.ok(ours <= zlib6 * 1.01, `${what}: ${ours} bytes, zlib -6 ${zlib6}: more than 1% larger`)
      assert.ok(gunzipSync(await lib.gzip(data)).equals(data))
    }
  })

  it('takes less CPU than zlib on binaries', async () => {
    const binary = readFileSync(process.execPath).subarray(0, 16 << 20)
    // CPU time on the pool threads counts in the process's usage; a loaded machine inflates both alike
    const cpu = async (backend: typeof zlibBackend): Promise<number> => {
      const t0 = process.cpuUsage()
      await gzipOf(binary, { backend })
      const u = process.cpuUsage(t0)
      return u.user + u.system
    }
    const ours = await cpu(gzipBackend())
    const zlib = await cpu(zlibBackend)
    assert.ok(ours < zlib, `libdeflate took ${ours} µs of CPU, zlib ${zlib} µs`)
  })

  it('falls back to zlib when the addon is missing or is not a loadable addon', async (t) => {
    const missing = loadAddon(undefined)
    assert.equal(missing.addon, undefined)
    assert.match(missing.error ?? '', /not built/)
    const bogus = join(await tempDir(t), 'cairn_deflate.node')
    await writeFile(bogus, 'not an ELF file')
    const broken = loadAddon(bogus)
    assert.equal(broken.addon, undefined)
    assert.ok((broken.error ?? '').length > 0)
    // the addon this build found is the package's own
    const found = addonPath()
    assert.ok(found?.endsWith(join('native', 'build', 'Release', 'cairn_deflate.node')))
    const real = loadAddon(found)
    assert.ok(real.addon)
    const out = await libdeflateBackend(real.addon).gzip(Buffer.from('hello'))
    assert.equal(gunzipSync(out).toString(), 'hello')
  })

  it('compresses with zlib under CAIRN_GZIP=zlib: other bytes, the same content', async (t) => {
    const script = `
      import { gzipBackend, gzipFallbackReason } from ${JSON.stringify(join(PROJECT, 'build/src/layer/deflate.js'))}
      import { compressStream } from ${JSON.stringify(join(PROJECT, 'build/src/layer/compression.js'))}
      import { createReadStream } from 'node:fs'
      const chunks = []
      for await (const c of createReadStream(process.argv[1]).pipe(compressStream('gzip'))) chunks.push(c)
      process.stdout.write(JSON.stringify({ name: gzipBackend().name, reason: gzipFallbackReason(), gz: Buffer.concat(chunks).toString('base64') }))
    `
    const input = join(await tempDir(t), 'input')
    const data = sourceCorpus()
    await writeFile(input, data)
    const withEnv = async (env: NodeJS.ProcessEnv): Promise<{ name: string; reason?: string; gz: string }> => {
      const r = await runOk(process.execPath, ['--input-type=module', '-e', script, input], { env: { ...process.env, ...env } })
      return JSON.parse(r.stdout) as { name: string; reason?: string; gz: string }
    }
    const zlib = await withEnv({ CAIRN_GZIP: 'zlib' })
    assert.equal(zlib.name, 'zlib')
    assert.equal(zlib.reason, 'CAIRN_GZIP=zlib')
    const lib = await withEnv({ CAIRN_GZIP: '' })
    assert.equal(lib.name, 'libdeflate')
    assert.notEqual(zlib.gz, lib.gz)
    assert.ok(gunzipSync(Buffer.from(zlib.gz, 'base64')).equals(data))
    assert.ok(gunzipSync(Buffer.from(lib.gz, 'base64')).equals(data))
  })
})
