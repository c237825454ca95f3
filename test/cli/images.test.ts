/**
 * The store's verbs through the CLI, as a Docker user meets them: import, images, tag, rmi,
 * history, inspect, system df, image prune, with Docker's output and exit codes.
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync, readdirSync, existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { gunzipSync, gzipSync } from 'node:zlib'
import { cairn, cairnOk, tarOf, tempDir } from '../helpers/cairn.js'

const ID_LINE = /^sha256:[a-f0-9]{64}\n$/

function blobHexes(root: string): string[] {
  return readdirSync(`${root}/blobs/sha256`).sort()
}

describe('import, images, tag, rmi', () => {
  let root: string
  let work: string
  let cleanup: () => Promise<void>
  let rootfs: Buffer
  before(async () => {
    const t = await tempDir()
    cleanup = t.cleanup
    root = `${t.dir}/store`
    work = t.dir
    rootfs = await tarOf({ 'bin/hello': 'x'.repeat(150_000), 'etc/os-release': 'NAME=test\n', 'usr/share/doc/readme': 'y'.repeat(30_000) })
  })
  after(async () => cleanup())

  test('import from standard input prints the image ID and lists it with Docker\'s columns', async () => {
    const r = await cairnOk(root, ['import', '-', 'base:1.0'], { input: gzipSync(rootfs) })
    assert.match(r.stdout, ID_LINE)
    const id = r.stdout.trim()
    // the IMAGE ID is the sha256 of the config blob, exactly
    const config = readFileSync(`${root}/blobs/sha256/${id.slice(7)}`)
    assert.equal(`sha256:${createHash('sha256').update(config).digest('hex')}`, id)
    const cfg = JSON.parse(config.toString()) as { history: { comment: string }[]; rootfs: { diff_ids: string[] } }
    assert.equal(cfg.history[0]?.comment, 'Imported from -')
    assert.equal(cfg.rootfs.diff_ids.length, 1)
    const images = await cairnOk(root, ['images'])
    const lines = images.stdout.trimEnd().split('\n')
    assert.match(lines[0] ?? '', /^REPOSITORY\s{3,}TAG\s{3,}IMAGE ID\s{3,}CREATED\s{3,}SIZE$/)
    assert.match(lines[1] ?? '', new RegExp(`^base\\s+1\\.0\\s+${id.slice(7, 19)}\\s+(Less than a second|\\d+ seconds?) ago\\s+180kB$`))
  })

  test('import from a file names it in the history comment, and -m and -c are applied', async () => {
    const file = `${work}/rootfs.tar`
    await writeFile(file, rootfs)
    const r = await cairnOk(root, ['import', '-m', 'my message', '-c', 'CMD ["/bin/hello"]', '-c', 'ENV A=1 B="two words"', '-c', 'WORKDIR /srv', file, 'base:file'])
    const inspect = JSON.parse((await cairnOk(root, ['inspect', 'base:file'])).stdout) as [{ Id: string; Comment: string; Config: { Cmd: string[]; Env: string[]; WorkingDir: string } }]
    assert.equal(inspect[0].Id, r.stdout.trim())
    assert.equal(inspect[0].Comment, 'my message')
    assert.deepEqual(inspect[0].Config.Cmd, ['/bin/hello'])
    assert.deepEqual(inspect[0].Config.Env, ['A=1', 'B=two words'])
    assert.equal(inspect[0].Config.WorkingDir, '/srv')
    const plain = await cairnOk(root, ['import', file, 'base:plain'])
    const cfg = JSON.parse(readFileSync(`${root}/blobs/sha256/${plain.stdout.trim().slice(7)}`, 'utf8')) as { history: { comment: string }[] }
    assert.equal(cfg.history[0]?.comment, 'Imported from rootfs.tar')
  })

  test('identical content is stored once', async () => {
    const before = blobHexes(root).length
    await cairnOk(root, ['import', '-', 'base:again'], { input: rootfs, env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' } })
    await cairnOk(root, ['import', '-', 'base:again2'], { input: rootfs, env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' } })
    // same tar, same timestamp: one new config, one new manifest, the layer blob already there
    assert.equal(blobHexes(root).length, before + 2)
    const ids = (await cairnOk(root, ['images', '-q', '--no-trunc', 'base'])).stdout
    assert.match(ids, /sha256:[a-f0-9]{64}/)
  })

  test('a second tag shows a second row; removing one tag only untags', async () => {
    await cairnOk(root, ['tag', 'base:1.0', 'registry.cn-qingdao.aliyuncs.com/huzd/test:1.0.0'])
    const rows = (await cairnOk(root, ['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).stdout.trim().split('\n')
    const id = rows.find((r) => r.startsWith('base:1.0 '))?.split(' ')[1]
    assert.ok(id)
    assert.ok(rows.includes(`registry.cn-qingdao.aliyuncs.com/huzd/test:1.0.0 ${id}`))
    const rmi = await cairnOk(root, ['rmi', 'registry.cn-qingdao.aliyuncs.com/huzd/test:1.0.0'])
    assert.equal(rmi.stdout, 'Untagged: registry.cn-qingdao.aliyuncs.com/huzd/test:1.0.0\n')
    assert.ok((await cairnOk(root, ['images', '-q'])).stdout.includes(id))
  })

  test('rmi by ID prefix of a multiply tagged image needs -f, then untags all and deletes image and layer', async () => {
    const r = await cairnOk(root, ['import', '-', 'multi:a'], { input: await tarOf({ 'only-here': 'unique content' }) })
    const id = r.stdout.trim()
    await cairnOk(root, ['tag', 'multi:a', 'other/multi:b'])
    const refused = await cairn(root, ['rmi', id.slice(7, 10)])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, new RegExp(`conflict: unable to delete ${id.slice(7, 19)} \\(must be forced\\) - image is referenced in multiple repositories`))
    const before = blobHexes(root)
    const forced = await cairnOk(root, ['rmi', '-f', id.slice(7, 10)])
    const lines = forced.stdout.trim().split('\n')
    assert.deepEqual(lines.slice(0, 3), ['Untagged: multi:a', 'Untagged: other/multi:b', `Deleted: ${id}`])
    assert.match(lines[3] ?? '', /^Deleted: sha256:[a-f0-9]{64}$/, 'the layer, by chain ID')
    assert.equal(lines.length, 4)
    // manifest, config and layer blobs are gone
    const after = blobHexes(root)
    assert.equal(before.length - after.length, 3)
    assert.ok(!after.includes(id.slice(7)))
    assert.equal((await cairn(root, ['inspect', id])).code, 1)
  })

  test('rmi keeps a layer another image still uses', async () => {
    const a = (await cairnOk(root, ['import', '-', 'shared:a'], { input: await tarOf({ f: 'shared layer' }), env: { ...process.env, SOURCE_DATE_EPOCH: '1' } })).stdout.trim()
    const b = (await cairnOk(root, ['import', '-', 'shared:b', '-m', 'other config'], { input: await tarOf({ f: 'shared layer' }), env: { ...process.env, SOURCE_DATE_EPOCH: '1' } })).stdout.trim()
    assert.notEqual(a, b)
    const out = (await cairnOk(root, ['rmi', 'shared:a'])).stdout
    assert.equal(out, `Untagged: shared:a\nDeleted: ${a}\n`, 'no layer deleted: shared:b uses it')
    const inspect = JSON.parse((await cairnOk(root, ['inspect', 'shared:b'])).stdout) as [{ RootFS: { Layers: string[] } }]
    assert.equal(inspect[0].RootFS.Layers.length, 1)
    // the image still saves: its layer blob is intact
    assert.equal((await cairn(root, ['save', '-o', `${work}/shared.tar`, 'shared:b'])).code, 0)
  })

  test('save --compression gzip|zstd writes a compressed archive that load reads back; import --compression gzip keeps a gzip layer', async () => {
    const id = (await cairnOk(root, ['import', '--compression', 'gzip', '-', 'packed:1'], { input: rootfs })).stdout.trim()
    const inspect = JSON.parse((await cairnOk(root, ['inspect', 'packed:1'])).stdout) as [{ RootFS: { Layers: string[] } }]
    const layerHex = inspect[0].RootFS.Layers[0]?.slice(7) ?? ''
    // the stored blob is gzip (not the tar itself), and its diffID is the tar's
    const gz = blobHexes(root).map((h) => readFileSync(`${root}/blobs/sha256/${h}`)).find((b) => b[0] === 0x1f && b[1] === 0x8b)
    assert.ok(gz, 'a gzip layer blob')
    assert.equal(createHash('sha256').update(gunzipSync(gz)).digest('hex'), layerHex, 'it holds the layer of the diffID')
    for (const [compression, magic] of [['gzip', '1f8b'], ['zstd', '28b52ffd']] as const) {
      const file = `${work}/packed.tar.${compression}`
      await cairnOk(root, ['save', '--compression', compression, '-o', file, 'packed:1'])
      assert.equal(readFileSync(file).subarray(0, magic.length / 2).toString('hex'), magic)
      const other = `${work}/load-${compression}`
      const loaded = await cairnOk(other, ['load', '-i', file])
      assert.equal(loaded.stdout, 'Loaded image: packed:1\n')
      assert.equal((await cairnOk(other, ['images', '-q', '--no-trunc', 'packed:1'])).stdout.trim(), id)
    }
    const bad = await cairn(root, ['save', '--compression', 'lz4', '-o', `${work}/x.tar`, 'packed:1'])
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /^Error: unknown compression "lz4"/)
    assert.ok(!existsSync(`${work}/x.tar`))
  })

  test('errors are clear and exit non-zero', async () => {
    const unknown = await cairn(root, ['rmi', 'nosuch:tag'])
    assert.equal(unknown.code, 1)
    assert.equal(unknown.stderr, 'Error: No such image: nosuch:tag\n')
    const bad = await cairn(root, ['tag', 'base:1.0', 'Bad/Name'])
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /invalid reference format: repository name \(Bad\/Name\) must be lowercase|invalid reference format/)
    const badImport = await cairn(root, ['import', '-', 'UPPER'], { input: rootfs })
    assert.equal(badImport.code, 1)
    assert.match(badImport.stderr, /invalid reference format/)
    const usage = await cairn(root, ['tag', 'only-one-arg'])
    assert.equal(usage.code, 125)
    const badChange = await cairn(root, ['import', '-c', 'RUN rm -rf /', '-', 'x:y'], { input: rootfs })
    assert.equal(badChange.code, 1)
    assert.match(badChange.stderr, /RUN is not a valid change command/)
  })

  test('history and inspect show what Docker shows', async () => {
    const h = await cairnOk(root, ['history', 'base:file'])
    const lines = h.stdout.trimEnd().split('\n')
    assert.match(lines[0] ?? '', /^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/)
    assert.match(lines[1] ?? '', /^[a-f0-9]{12}\s+.+ ago\s+180kB\s+my message$/)
    const full = await cairnOk(root, ['history', '--no-trunc', '-q', 'base:file'])
    assert.match(full.stdout, ID_LINE)
  })

  test('images filters by repository, -q, --no-trunc, --digests and --format json', async () => {
    const only = (await cairnOk(root, ['images', 'base'])).stdout.trim().split('\n').slice(1)
    assert.ok(only.length >= 3)
    assert.ok(only.every((l) => l.startsWith('base ')))
    const tagOnly = (await cairnOk(root, ['images', 'base:1.0'])).stdout.trim().split('\n')
    assert.equal(tagOnly.length, 2)
    const json = (await cairnOk(root, ['images', '--format', 'json', 'base:1.0'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>)
    assert.equal(json.length, 1)
    assert.equal(json[0]?.['Repository'], 'base')
    assert.equal(json[0]?.['Tag'], '1.0')
    assert.equal(json[0]?.['Size'], '180kB')
    const digests = (await cairnOk(root, ['images', '--digests', 'base:1.0'])).stdout
    assert.match(digests, /^REPOSITORY\s+TAG\s+DIGEST\s+IMAGE ID\s+CREATED\s+SIZE\n/)
  })

  test('system df reports images and shared layers; image prune removes dangling images', async () => {
    const df = (await cairnOk(root, ['system', 'df'])).stdout
    assert.match(df, /^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE\n/)
    assert.match(df, /\nImages\s+\d+\s+0\s+/)
    const verbose = (await cairnOk(root, ['system', 'df', '-v'])).stdout
    assert.match(verbose, /SHARED SIZE\s+UNIQUE SIZE/)
    // make a dangling image: retag base:again2's tag away
    const dangling = (await cairnOk(root, ['import', '-', 'dangle:x'], { input: await tarOf({ d: 'dangling' }) })).stdout.trim()
    await cairnOk(root, ['import', '-', 'dangle:x'], { input: await tarOf({ d: 'replacement' }) })
    const none = (await cairnOk(root, ['images'])).stdout
    assert.match(none, new RegExp(`<none>\\s+<none>\\s+${dangling.slice(7, 19)}`))
    const refused = await cairn(root, ['image', 'prune'])
    assert.notEqual(refused.code, 0, 'prune without -f and without a terminal must not proceed')
    const pruned = await cairnOk(root, ['image', 'prune', '-f'])
    assert.match(pruned.stdout, new RegExp(`Deleted Images:\\ndeleted: ${dangling}\\n`))
    assert.match(pruned.stdout, /Total reclaimed space: \d+B\n$/)
    assert.ok(!(await cairnOk(root, ['images'])).stdout.includes('<none>'))
  })
})

describe('bad input never damages the store', () => {
  test('a truncated or corrupt tarball fails clearly and leaves nothing behind', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      const root = `${dir}/store`
      await cairnOk(root, ['import', '-', 'good:1'], { input: await tarOf({ a: 'kept' }) })
      const blobs = blobHexes(root)
      const gz = gzipSync(await tarOf({ big: 'z'.repeat(100_000) }))
      const truncated = await cairn(root, ['import', '-', 'bad:1'], { input: gz.subarray(0, gz.length - 100) })
      assert.equal(truncated.code, 1)
      assert.match(truncated.stderr, /^Error: .*(corrupt gzip|truncated|unexpected end)/i)
      const garbage = await cairn(root, ['import', '-', 'bad:2'], { input: Buffer.alloc(4096, 7) })
      assert.equal(garbage.code, 1)
      assert.match(garbage.stderr, /^Error: .*(tar|header|checksum)/i)
      const escape = await cairn(root, ['import', '-', 'bad:3'], { input: await tarOf({ '../../escape': 'x' }) })
      assert.equal(escape.code, 1)
      assert.match(escape.stderr, /escapes the root/)
      assert.deepEqual(blobHexes(root), blobs, 'no blob added')
      assert.deepEqual(readdirSync(`${root}/ingest`), [], 'no temporary file left')
      assert.equal((await cairnOk(root, ['images', '--format', '{{.Repository}}'])).stdout, 'good\n')
      assert.ok(!existsSync(`${dir}/escape`))
    } finally {
      await cleanup()
    }
  })
})
