import assert from 'node:assert/strict'
import { chmod, chown, lstat, mkdir, readFile, readlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { describe, it } from 'node:test'
import { runOk } from '../helpers/exec.js'
import { requireRoot } from '../helpers/root.js'
import { requireTools, Tools } from '../helpers/tools.js'
import { applyLayer, layerWriter, type ApplyOptions, type ApplyWarning } from '../../src/layer/apply.js'
import { compressStream, decompressStream } from '../../src/layer/compression.js'
import type { TarEntryInput } from '../../src/layer/tar.js'
import { listTree, rejectsWithCode, snapshot, tarOf, tempDir } from './helpers.js'

type Entry = Omit<TarEntryInput, 'body'> & { body?: string | Buffer }

async function apply(entries: Entry[], dir: string, opts: ApplyOptions = {}): Promise<{ size: number; warnings: ApplyWarning[] }> {
  const warnings: ApplyWarning[] = []
  const result = await applyLayer(Readable.from([await tarOf(entries)]), dir, { ...opts, onWarning: (w) => warnings.push(w) })
  return { ...result, warnings }
}

const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex')
const T = 1_650_000_000

describe('applyLayer', () => {
  it('creates every entry type with modes, owners, mtimes and xattrs', async (t) => {
    if (!requireRoot(t, 'chown, mknod and security.* xattrs')) return
    const dir = await tempDir(t)
    const { size, warnings } = await apply([
      // The directory comes first; its mtime must survive the children written after it.
      { header: { path: 'usr/', type: 'directory', mode: 0o755, mtime: T } },
      { header: { path: 'usr/bin/', type: 'directory', mode: 0o2775, uid: 10, gid: 20, mtime: T + 1 } },
      { header: { path: 'usr/bin/ping', type: 'file', mode: 0o4755, uid: 10, gid: 20, mtime: T + 2, xattrs: new Map([['security.capability', CAP], ['user.note', Buffer.from([0, 1, 2])]]) }, body: 'ping' },
      { header: { path: 'usr/bin/ping6', type: 'hardlink', linkname: 'usr/bin/ping' } },
      { header: { path: 'usr/bin/sg', type: 'file', mode: 0o2711, gid: 5 }, body: '' },
      { header: { path: 'usr/bin/link', type: 'symlink', linkname: 'ping', uid: 7, gid: 8, mtime: T + 3, xattrs: new Map([['trusted.tag', Buffer.from('x')]]) } },
      { header: { path: 'tmp/', type: 'directory', mode: 0o1777, mtime: T + 4 } },
      { header: { path: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666, mtime: T + 5 } },
      { header: { path: 'dev/loop9', type: 'block', devmajor: 7, devminor: 9, mode: 0o660, gid: 6 } },
      { header: { path: 'run/fifo', type: 'fifo', mode: 0o620, uid: 3 } },
      { header: { path: '/abs/file', type: 'file', mode: 0o600 }, body: 'absolute names are relative to the root' },
      { header: { path: './dot/./file', type: 'file' }, body: '12345' },
    ], dir)
    assert.deepEqual(warnings, [])
    assert.equal(size, 4 + 39 + 5)
    const snap = await snapshot(dir)
    assert.deepEqual(snap['usr'], { type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: T, xattrs: {} })
    assert.deepEqual(snap['usr/bin'], { type: 'dir', mode: 0o2775, uid: 10, gid: 20, mtime: T + 1, xattrs: {} })
    assert.equal(snap['usr/bin/ping']?.mode, 0o4755)
    assert.equal(snap['usr/bin/ping']?.uid, 10)
    assert.equal(snap['usr/bin/ping']?.mtime, T + 2)
    assert.deepEqual(snap['usr/bin/ping']?.xattrs, { 'security.capability': CAP.toString('hex'), 'user.note': '000102' })
    assert.equal(snap['usr/bin/ping6']?.inode, 'usr/bin/ping')
    assert.equal(snap['usr/bin/sg']?.mode, 0o2711)
    assert.deepEqual(snap['usr/bin/link'], { type: 'symlink', mode: 0, uid: 7, gid: 8, mtime: T + 3, linkname: 'ping', xattrs: { 'trusted.tag': '78' } })
    assert.equal(snap['tmp']?.mode, 0o1777)
    assert.equal(snap['dev/null']?.type, 'char')
    assert.equal(snap['dev/null']?.mode, 0o666)
    assert.equal(snap['dev/null']?.mtime, T + 5)
    assert.equal(snap['dev/null']?.rdev, (1 << 8) | 3)
    assert.equal(snap['dev/loop9']?.type, 'block')
    assert.equal(snap['dev/loop9']?.rdev, (7 << 8) | 9)
    assert.equal(snap['run/fifo']?.type, 'fifo')
    assert.equal(snap['run/fifo']?.mode, 0o620)
    assert.equal(snap['run/fifo']?.uid, 3)
    assert.equal(snap['run']?.mode, 0o755, 'missing parents are created 0755')
    assert.equal(await readFile(join(dir, 'abs/file'), 'utf8'), 'absolute names are relative to the root')
    assert.equal(await readFile(join(dir, 'dot/file'), 'utf8'), '12345')
  })

  it('applies the root entry to the target directory itself', async (t) => {
    const dir = await tempDir(t)
    await apply([{ header: { path: './', type: 'directory', mode: 0o750, mtime: T } }, { header: { path: 'f', type: 'file' } }], dir)
    const st = await lstat(dir)
    assert.equal(st.mode & 0o7777, 0o750)
    assert.equal(Math.floor(st.mtimeMs / 1000), T)
    await rejectsWithCode(apply([{ header: { path: '/', type: 'file' } }], dir), 'UNSAFE_PATH')
  })

  it('replaces lower content: file by dir, dir by file, symlink by dir; merges dirs', async (t) => {
    const dir = await tempDir(t)
    await apply([
      { header: { path: 'a', type: 'file' }, body: 'lower' },
      { header: { path: 'b/', type: 'directory', mode: 0o700 } },
      { header: { path: 'b/child', type: 'file' }, body: 'lower child' },
      { header: { path: 'c', type: 'symlink', linkname: 'b' } },
      { header: { path: 'm/', type: 'directory', mode: 0o700 } },
      { header: { path: 'm/keep', type: 'file' }, body: 'kept' },
    ], dir)
    await apply([
      { header: { path: 'a/', type: 'directory' } },
      { header: { path: 'a/x', type: 'file' }, body: 'x' },
      { header: { path: 'b', type: 'file' }, body: 'now a file' },
      { header: { path: 'c/', type: 'directory', mode: 0o711 } },
      { header: { path: 'c/inside', type: 'file' }, body: 'in c' },
      { header: { path: 'm/', type: 'directory', mode: 0o755, mtime: T } },
      { header: { path: 'm/new', type: 'file' }, body: 'new' },
    ], dir)
    assert.deepEqual(await listTree(dir), ['a', 'a/x', 'b', 'c', 'c/inside', 'm', 'm/keep', 'm/new'])
    assert.equal(await readFile(join(dir, 'b'), 'utf8'), 'now a file')
    assert.ok((await lstat(join(dir, 'c'))).isDirectory(), 'the symlink was replaced, not followed')
    const m = await lstat(join(dir, 'm'))
    assert.equal(m.mode & 0o7777, 0o755)
    assert.equal(Math.floor(m.mtimeMs / 1000), T)
  })

  it('into an empty folder, a layer that names a path again replaces what it wrote there, through symlinks too', async (t) => {
    const dir = await tempDir(t)
    await apply([
      { header: { path: 'f', type: 'file' }, body: 'first' },
      { header: { path: 'f', type: 'file' }, body: 'second' },
      { header: { path: 'd/', type: 'directory', mode: 0o700 } },
      { header: { path: 'd/x', type: 'file' }, body: 'x' },
      { header: { path: 'd', type: 'file' }, body: 'd is a file now' },
      { header: { path: 'p/q/r', type: 'file' }, body: 'under made parents' },
      { header: { path: 'p/q/', type: 'directory', mode: 0o711 } },
      { header: { path: 'real/', type: 'directory' } },
      { header: { path: 'real/t', type: 'file' }, body: 'old' },
      { header: { path: 'link', type: 'symlink', linkname: 'real' } },
      { header: { path: 'link/t', type: 'file' }, body: 'new, through the link' },
      { header: { path: 's', type: 'symlink', linkname: 'nowhere' } },
      { header: { path: 's/', type: 'directory' } },
    ], dir)
    assert.deepEqual(await listTree(dir), ['d', 'f', 'link', 'p', 'p/q', 'p/q/r', 'real', 'real/t', 's'])
    assert.equal(await readFile(join(dir, 'f'), 'utf8'), 'second')
    assert.equal(await readFile(join(dir, 'd'), 'utf8'), 'd is a file now')
    assert.equal(await readFile(join(dir, 'real/t'), 'utf8'), 'new, through the link')
    assert.equal((await lstat(join(dir, 'p/q'))).mode & 0o7777, 0o711)
    assert.ok((await lstat(join(dir, 's'))).isDirectory())
  })

  it('writes through symlinks of lower layers inside the root (merged /usr)', async (t) => {
    const dir = await tempDir(t)
    await apply([
      { header: { path: 'usr/bin/', type: 'directory' } },
      { header: { path: 'bin', type: 'symlink', linkname: 'usr/bin' } },
      { header: { path: 'lib', type: 'symlink', linkname: '/usr/lib' } },
    ], dir)
    await apply([
      { header: { path: 'bin/tool', type: 'file' }, body: 'tool' },
      { header: { path: 'lib/libx.so', type: 'file' }, body: 'lib' },
    ], dir)
    assert.equal(await readFile(join(dir, 'usr/bin/tool'), 'utf8'), 'tool')
    assert.equal(await readFile(join(dir, 'usr/lib/libx.so'), 'utf8'), 'lib')
    assert.equal(await readlink(join(dir, 'bin')), 'usr/bin')
  })

  it('hard-links to lower-layer files and refuses missing or directory targets', async (t) => {
    const dir = await tempDir(t)
    await apply([{ header: { path: 'etc/passwd', type: 'file' }, body: 'root:x:0:0' }], dir)
    await apply([{ header: { path: 'etc/passwd-', type: 'hardlink', linkname: '/etc/passwd' } }], dir)
    assert.equal((await lstat(join(dir, 'etc/passwd-'))).ino, (await lstat(join(dir, 'etc/passwd'))).ino)
    await rejectsWithCode(apply([{ header: { path: 'x', type: 'hardlink', linkname: 'missing' } }], dir), 'INVALID_LAYER', /not found/)
    await rejectsWithCode(apply([{ header: { path: 'x', type: 'hardlink', linkname: 'etc' } }], dir), 'INVALID_LAYER', /directory/)
    // A hard link onto itself changes nothing.
    await apply([{ header: { path: 'etc/passwd', type: 'hardlink', linkname: 'etc/passwd' } }], dir)
    assert.equal(await readFile(join(dir, 'etc/passwd'), 'utf8'), 'root:x:0:0')
  })

  it('OCI whiteouts delete lower files and trees, never the same layer\'s entries', async (t) => {
    const dir = await tempDir(t)
    await apply([
      { header: { path: 'f', type: 'file' }, body: 'lower' },
      { header: { path: 'tree/a/b/c', type: 'file' }, body: 'deep' },
      { header: { path: 'link', type: 'symlink', linkname: '/etc' } },
      { header: { path: 'both', type: 'file' }, body: 'lower both' },
      { header: { path: 'after', type: 'file' }, body: 'lower after' },
    ], dir)
    await apply([
      { header: { path: '.wh.f', type: 'file' } },
      { header: { path: 'tree/.wh.a', type: 'file' } },
      { header: { path: '.wh.link', type: 'file' } },
      { header: { path: '.wh.missing', type: 'file' } },
      { header: { path: 'both', type: 'file' }, body: 'upper both' },
      { header: { path: '.wh.both', type: 'file' } }, // same layer: must not hide 'both'
      { header: { path: '.wh.after', type: 'file' } },
      { header: { path: 'after', type: 'file' }, body: 'upper after' },
    ], dir)
    assert.deepEqual(await listTree(dir), ['after', 'both', 'tree'])
    assert.equal(await readFile(join(dir, 'both'), 'utf8'), 'upper both')
    assert.equal(await readFile(join(dir, 'after'), 'utf8'), 'upper after')
  })

  for (const opqFirst of [true, false]) {
    it(`opaque directories hide lower children and keep the layer's own (opaque marker ${opqFirst ? 'first' : 'last'})`, async (t) => {
      const dir = await tempDir(t)
      await apply([
        { header: { path: 'd/old', type: 'file' }, body: 'old' },
        { header: { path: 'd/sub/lower', type: 'file' }, body: 'lower' },
        { header: { path: 'd/sub/deeper/x', type: 'file' }, body: 'x' },
        { header: { path: 'other/kept', type: 'file' }, body: 'kept' },
      ], dir)
      const opq: Entry = { header: { path: 'd/.wh..wh..opq', type: 'file' } }
      await apply([
        { header: { path: 'd/', type: 'directory' } },
        ...(opqFirst ? [opq] : []),
        { header: { path: 'd/-dash', type: 'file' }, body: 'sorts before .wh' },
        { header: { path: 'd/sub/', type: 'directory' } },
        { header: { path: 'd/sub/new', type: 'file' }, body: 'new' },
        { header: { path: 'd/zzz/new', type: 'file' }, body: 'new' },
        ...(opqFirst ? [] : [opq]),
      ], dir)
      assert.deepEqual(await listTree(dir), ['d', 'd/-dash', 'd/sub', 'd/sub/new', 'd/zzz', 'd/zzz/new', 'other', 'other/kept'])
    })
  }

  it('overlay mode writes overlayfs whiteouts and opaque markers instead of deleting', async (t) => {
    if (!requireRoot(t, 'mknod of 0/0 whiteouts and trusted.* xattrs')) return
    const dir = await tempDir(t)
    await apply([
      { header: { path: 'gone', type: 'file' }, body: 'lower' },
    ], dir)
    await apply([
      { header: { path: '.wh.gone', type: 'file' } },
      { header: { path: 'sub/.wh.x', type: 'file' } },
      { header: { path: 'opq/', type: 'directory', mode: 0o750, xattrs: new Map([['user.k', Buffer.from('v')]]) } },
      { header: { path: 'opq/.wh..wh..opq', type: 'file' } },
      { header: { path: 'opq/kept', type: 'file' }, body: 'kept' },
    ], dir, { whiteouts: 'overlay' })
    const snap = await snapshot(dir)
    assert.equal(snap['gone']?.type, 'char')
    assert.equal(snap['gone']?.rdev, 0)
    assert.equal(snap['sub/x']?.type, 'char')
    assert.deepEqual(snap['opq']?.xattrs, { 'trusted.overlay.opaque': '79', 'user.k': '76' })
    assert.equal(snap['opq']?.mode, 0o750)
    assert.ok(snap['opq/kept'])
  })

  it('skips AUFS metadata entries', async (t) => {
    const dir = await tempDir(t)
    await apply([
      { header: { path: '.wh..wh.plnk/', type: 'directory' } },
      { header: { path: '.wh..wh.plnk/123.456', type: 'file' }, body: 'x' },
      { header: { path: '.wh..wh.aufs', type: 'file' } },
      { header: { path: 'real', type: 'file' }, body: 'r' },
    ], dir)
    assert.deepEqual(await listTree(dir), ['real'])
  })

  it('without privileges: skips devices and refused xattrs with warnings, keeps its own uid', async (t) => {
    if (!requireRoot(t, 'to drop privileges with setpriv') || !requireTools(t, ['setpriv'])) return
    const dir = await tempDir(t)
    await chmod(dir, 0o755)
    const target = join(dir, 'target')
    await mkdir(target)
    await chown(target, 65534, 65534)
    const tarFile = join(dir, 'layer.tar')
    await writeFile(tarFile, await tarOf([
      { header: { path: 'dev/null', type: 'char', devmajor: 1, devminor: 3 } },
      { header: { path: 'fifo', type: 'fifo', mode: 0o600 } },
      { header: { path: 'file', type: 'file', uid: 0, gid: 0, mode: 0o755, xattrs: new Map([['trusted.x', Buffer.from('1')], ['user.ok', Buffer.from('2')]]) }, body: 'data' },
    ]))
    const script = join(dir, 'apply.mjs')
    const layerModule = new URL('../../src/layer/index.js', import.meta.url).href
    await writeFile(script, `
      import { applyLayer } from ${JSON.stringify(layerModule)}
      import { createReadStream } from 'node:fs'
      const warnings = []
      const result = await applyLayer(createReadStream(process.argv[2]), process.argv[3], { onWarning: (w) => warnings.push(w) })
      console.log(JSON.stringify({ ...result, warnings }))
    `)
    const { stdout } = await runOk(Tools.setpriv, ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, script, tarFile, target])
    const out = JSON.parse(stdout) as { size: number; warnings: ApplyWarning[] }
    assert.equal(out.size, 4)
    assert.deepEqual(out.warnings.map((w) => [w.code, w.path]), [['DEVICE_SKIPPED', 'dev/null'], ['XATTR_SKIPPED', 'file']])
    const snap = await snapshot(target)
    assert.equal(snap['dev/null'], undefined)
    assert.equal(snap['fifo']?.type, 'fifo')
    assert.equal(snap['file']?.uid, 65534)
    assert.equal(snap['file']?.mode, 0o755)
    assert.deepEqual(snap['file']?.xattrs, { 'user.ok': '32' })
  })

  it('keeps the current owner with sameOwner: false', async (t) => {
    const dir = await tempDir(t)
    await apply([{ header: { path: 'f', type: 'file', uid: 4242, gid: 4242 }, body: 'x' }], dir, { sameOwner: false })
    assert.equal((await lstat(join(dir, 'f'))).uid, process.getuid?.())
  })

  it('unpacks a compressed layer through decompressStream', async (t) => {
    const dir = await tempDir(t)
    const tar = await tarOf([{ header: { path: 'hello', type: 'file' }, body: 'world' }])
    const gz: Buffer[] = []
    await pipeline(Readable.from([tar]), compressStream('gzip'), async (src: AsyncIterable<Buffer>) => {
      for await (const c of src) gz.push(c)
    })
    const { size } = await applyLayer(decompressStream(Readable.from(gz)), dir)
    assert.equal(size, 5)
    assert.equal(await readFile(join(dir, 'hello'), 'utf8'), 'world')
  })

  it('fails with INVALID_LAYER on corrupt input and with ABORTED when aborted', async (t) => {
    const dir = await tempDir(t)
    const tar = await tarOf([{ header: { path: 'a', type: 'file' }, body: Buffer.alloc(3000) }, { header: { path: 'b', type: 'file' } }])
    await rejectsWithCode(applyLayer(Readable.from([tar.subarray(0, 2000)]), dir), 'INVALID_LAYER')
    const ac = new AbortController()
    ac.abort()
    await rejectsWithCode(applyLayer(Readable.from([tar]), dir, { signal: ac.signal }), 'ABORTED')
    await rejectsWithCode(applyLayer(Readable.from([tar]), join(dir, 'a')), 'INVALID_ARGUMENT')
  })

  it('layerWriter: the same entries give the same tree as the tar through applyLayer, symlinked parents and all', async (t) => {
    if (!requireRoot(t, 'owners')) return
    const entries: Entry[] = [
      { header: { path: 'a/', type: 'directory', mode: 0o750, uid: 3, gid: 4, mtime: T } },
      { header: { path: 'a/f', type: 'file', mode: 0o640, mtime: T + 1 }, body: 'first' },
      { header: { path: 'a/g', type: 'file', mode: 0o4755, uid: 5, mtime: T + 2 }, body: Buffer.alloc(70_000, 7) },
      // the parent resolved for a/f and a/g is replaced: a later entry under it must not reuse it
      { header: { path: 'a', type: 'symlink', linkname: '/etc', mtime: T + 3 } },
      { header: { path: 'a/h', type: 'file', mtime: T + 4 }, body: 'through the symlink, inside the root' },
      { header: { path: 'b/c/d', type: 'file', mtime: T + 5 }, body: 'parents made' },
      { header: { path: 'b/link', type: 'symlink', linkname: 'c/d', mtime: T + 6 } },
    ]
    const viaTar = await tempDir(t)
    await apply(entries, viaTar)
    const direct = await tempDir(t)
    const w = await layerWriter(direct)
    for (const e of entries) await w.entry(e.header, typeof e.body === 'string' ? Buffer.from(e.body) : e.body)
    const { size } = await w.finish()
    assert.equal(size, 5 + 70_000 + 36 + 12)
    // the parents no entry names (b, b/c, etc) are made with the time they were made: the two
    // trees were made a moment apart, so those are compared as recent, not as equal
    const made = Math.floor(Date.now() / 1000)
    const [a, b] = [await snapshot(direct), await snapshot(viaTar)]
    for (const snap of [a, b]) {
      for (const implicit of ['b', 'b/c', 'etc']) {
        const e = snap[implicit]
        assert.ok(e && Math.abs(e.mtime - made) <= 60, `${implicit} was made just now`)
        e.mtime = 0
      }
    }
    assert.deepEqual(a, b)
    assert.equal(await readFile(join(direct, 'etc/h'), 'utf8'), 'through the symlink, inside the root')
  })
})
