import assert from 'node:assert/strict'
import { chmod, chown, link, lutimes, mkdir, symlink, utimes, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { runOk } from '../helpers/exec.js'
import { requireRoot } from '../helpers/root.js'
import { applyLayer } from '../../src/layer/apply.js'
import { tarDirectory } from '../../src/layer/diff.js'
import { readTar, type TarHeader } from '../../src/layer/tar.js'
import { collect, isRoot, rejectsWithCode, snapshot, tempDir } from './helpers.js'

const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex')
const T = 1_700_000_000

async function setfattr(path: string, name: string, value: Buffer): Promise<void> {
  await runOk('setfattr', ['-h', '-n', name, '-v', `0x${value.toString('hex')}`, '--', path])
}

async function headersOf(dir: string, opts: Parameters<typeof tarDirectory>[1] = {}): Promise<TarHeader[]> {
  const out: TarHeader[] = []
  for await (const { header } of readTar(tarDirectory(dir, opts))) out.push(header)
  return out
}

/** A tree with every entry type and the metadata a layer carries. */
async function makeTree(dir: string, opts: { privileged: boolean }): Promise<void> {
  await mkdir(join(dir, 'usr/bin'), { recursive: true })
  await writeFile(join(dir, 'usr/bin/ping'), 'ping binary')
  if (opts.privileged) await chown(join(dir, 'usr/bin/ping'), 0, 11)
  await chmod(join(dir, 'usr/bin/ping'), 0o4755)
  await setfattr(join(dir, 'usr/bin/ping'), 'security.capability', CAP)
  await setfattr(join(dir, 'usr/bin/ping'), 'user.bin', Buffer.from([0, 0xff, 0x0a]))
  await link(join(dir, 'usr/bin/ping'), join(dir, 'usr/bin/ping6'))
  await link(join(dir, 'usr/bin/ping'), join(dir, 'usr/bin/ping4'))
  await symlink('ping', join(dir, 'usr/bin/link'))
  await symlink('/absolute/target', join(dir, 'abs-link'))
  await mkdir(join(dir, 'tmp'))
  await chmod(join(dir, 'tmp'), 0o1777)
  await mkdir(join(dir, 'srv'))
  await chmod(join(dir, 'srv'), 0o2750)
  await writeFile(join(dir, 'empty'), '')
  await writeFile(join(dir, 'big'), Buffer.alloc(3 * 1024 * 1024 + 7, 0x61))
  const long = join(dir, 'l'.repeat(120), 'é'.repeat(60))
  await mkdir(long, { recursive: true })
  await writeFile(join(long, 'n'.repeat(200)), 'long names')
  await writeFile(join(dir, '日本語.txt'), 'unicode')
  if (opts.privileged) {
    await mkdir(join(dir, 'home/user'), { recursive: true })
    await chown(join(dir, 'home/user'), 1000, 1000)
    await writeFile(join(dir, 'home/user/file'), 'mine')
    await chown(join(dir, 'home/user/file'), 1000, 100)
    await runOk('mknod', ['-m', '0666', join(dir, 'null'), 'c', '1', '3'])
    await runOk('mknod', ['-m', '0660', join(dir, 'sda'), 'b', '8', '0'])
    await setfattr(join(dir, 'usr/bin/link'), 'trusted.on-symlink', Buffer.from('yes'))
  }
  await runOk('mkfifo', ['-m', '0600', join(dir, 'fifo')])
}

describe('tarDirectory', () => {
  it('round-trips a tree through tarDirectory and applyLayer', async (t) => {
    const privileged = isRoot()
    const dir = await tempDir(t)
    const src = join(dir, 'src')
    const dst = join(dir, 'dst')
    await mkdir(src)
    await mkdir(dst)
    await makeTree(src, { privileged })
    await utimes(join(src, 'usr/bin/ping'), T, T)
    await lutimes(join(src, 'usr/bin/link'), T + 1, T + 1)
    await utimes(join(src, 'usr/bin'), T + 2, T + 2)
    await utimes(join(src, 'usr'), T + 3, T + 3)
    const { size } = await applyLayer(tarDirectory(src), dst)
    assert.equal(size, 11 + 3 * 1024 * 1024 + 7 + 10 + 7 + (privileged ? 4 : 0))
    const expected = await snapshot(src)
    assert.deepEqual(await snapshot(dst), expected)
    // Spot checks that the snapshot covers what matters.
    assert.equal(expected['usr/bin/ping']?.mode, 0o4755)
    assert.equal(expected['usr/bin/ping4']?.inode, 'usr/bin/ping')
    assert.equal(expected['usr/bin']?.mtime, T + 2)
    assert.equal(expected['usr/bin/ping']?.xattrs['security.capability'], CAP.toString('hex'))
    if (privileged) {
      assert.equal(expected['null']?.type, 'char')
      assert.equal(expected['home/user/file']?.uid, 1000)
    }
  })

  it('writes sorted, relative names with hard links to the first name', async (t) => {
    const dir = await tempDir(t)
    await mkdir(join(dir, 'b/c'), { recursive: true })
    for (const name of ['b/c/z', 'b/a', 'a-b', 'a.txt', 'a0', 'B']) await writeFile(join(dir, name), name)
    await link(join(dir, 'b/a'), join(dir, 'a0-link'))
    const headers = await headersOf(dir)
    assert.deepEqual(headers.map((h) => [h.path, h.type, h.linkname]), [
      ['B', 'file', ''],
      ['a-b', 'file', ''],
      ['a.txt', 'file', ''],
      ['a0', 'file', ''],
      ['a0-link', 'file', ''],
      ['b/', 'directory', ''],
      ['b/a', 'hardlink', 'a0-link'],
      ['b/c/', 'directory', ''],
      ['b/c/z', 'file', ''],
    ])
    assert.ok(headers.every((h) => h.uname === '' && h.gname === '' && h.mtimeNsec === 0))
  })

  it('is deterministic: the same tree twice gives the same bytes', async (t) => {
    const dir = await tempDir(t)
    await makeTree(dir, { privileged: isRoot() })
    const a = await collect(tarDirectory(dir))
    const b = await collect(tarDirectory(dir))
    assert.deepEqual(a, b)
  })

  it('with a timestamp, trees made at different times give the same bytes', async (t) => {
    const privileged = isRoot()
    const base = await tempDir(t)
    const one = join(base, 'one')
    const two = join(base, 'two')
    await mkdir(one)
    await makeTree(one, { privileged })
    await sleep(1100) // a different second for every mtime
    await mkdir(two)
    await makeTree(two, { privileged })
    await utimes(join(two, 'empty'), 1_000, 1_000) // older than the timestamp: kept as is
    await utimes(join(one, 'empty'), 1_000, 1_000)
    assert.notDeepEqual(await collect(tarDirectory(one)), await collect(tarDirectory(two)))
    const timestamp = 1_600_000_000
    const a = await collect(tarDirectory(one, { timestamp }))
    const b = await collect(tarDirectory(two, { timestamp }))
    assert.deepEqual(a, b)
    const headers = await headersOf(one, { timestamp })
    assert.ok(headers.every((h) => h.mtime <= timestamp))
    assert.equal(headers.find((h) => h.path === 'empty')?.mtime, 1_000)
  })

  it('skips sockets', async (t) => {
    const dir = await tempDir(t)
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(join(dir, 'sock'), resolve))
    t.after(() => server.close())
    await writeFile(join(dir, 'file'), 'x')
    assert.deepEqual((await headersOf(dir)).map((h) => h.path), ['file'])
  })

  it('turns an overlayfs upperdir into a layer with OCI whiteouts', async (t) => {
    if (!requireRoot(t, 'whiteout devices and trusted.overlay xattrs')) return
    const dir = await tempDir(t)
    const upper = join(dir, 'upper')
    await mkdir(join(upper, 'etc/opq'), { recursive: true })
    await runOk('mknod', ['-m', '0000', join(upper, 'etc/removed'), 'c', '0', '0'])
    await runOk('mknod', ['-m', '0000', join(upper, 'etc/removed2'), 'c', '0', '0'])
    await runOk('mknod', [join(upper, 'realdev'), 'c', '1', '5'])
    await setfattr(join(upper, 'etc/opq'), 'trusted.overlay.opaque', Buffer.from('y'))
    await setfattr(join(upper, 'etc/opq'), 'user.keep', Buffer.from('k'))
    await setfattr(join(upper, 'etc'), 'trusted.overlay.origin', Buffer.from([1, 2, 3]))
    await writeFile(join(upper, 'etc/opq/new'), 'new')
    await chmod(join(upper, 'etc/opq'), 0o750)
    const headers = await headersOf(upper, { whiteouts: 'overlay-upper' })
    assert.deepEqual(headers.map((h) => [h.path, h.type]), [
      ['etc/', 'directory'],
      ['etc/.wh.removed', 'file'],
      ['etc/.wh.removed2', 'file'],
      ['etc/opq/', 'directory'],
      ['etc/opq/.wh..wh..opq', 'file'],
      ['etc/opq/new', 'file'],
      ['realdev', 'char'],
    ])
    assert.deepEqual([...(headers[0]?.xattrs.keys() ?? [])], [], 'overlay xattrs are not stored')
    assert.deepEqual([...(headers[3]?.xattrs.keys() ?? [])], ['user.keep'])
    assert.equal(headers[4]?.mode, 0o750)

    // Without overlay-upper the whiteout devices stay devices (and trusted.overlay.* is still dropped).
    const plain = await headersOf(upper)
    assert.equal(plain.find((h) => h.path === 'etc/removed')?.type, 'char')
    assert.ok(!plain.some((h) => [...h.xattrs.keys()].some((k) => k.startsWith('trusted.overlay.'))))

    // overlay-upper → OCI layer → overlay-mode apply gives the upperdir back.
    const lower = join(dir, 'lower')
    await mkdir(lower)
    await applyLayer(tarDirectory(upper, { whiteouts: 'overlay-upper' }), lower, { whiteouts: 'overlay' })
    const skip = (name: string): boolean => name === 'trusted.overlay.origin'
    assert.deepEqual(await snapshot(lower, { skipXattrs: skip }), await snapshot(upper, { skipXattrs: skip }))
  })

  it('refuses overlayfs metacopy and redirect entries', async (t) => {
    if (!requireRoot(t, 'trusted.overlay xattrs')) return
    const dir = await tempDir(t)
    await writeFile(join(dir, 'meta'), '')
    await setfattr(join(dir, 'meta'), 'trusted.overlay.metacopy', Buffer.alloc(0))
    await rejectsWithCode(collect(tarDirectory(dir, { whiteouts: 'overlay-upper' })), 'NOT_SUPPORTED', /metacopy/)
  })

  it('fails on a missing directory and honours an AbortSignal', async (t) => {
    const dir = await tempDir(t)
    await rejectsWithCode(collect(tarDirectory(join(dir, 'nope'))), 'INVALID_ARGUMENT', /does not exist/)
    for (let i = 0; i < 50; i++) await writeFile(join(dir, `f${i}`), 'x')
    const ac = new AbortController()
    ac.abort()
    await rejectsWithCode(collect(tarDirectory(dir, { signal: ac.signal })), 'ABORTED')
  })
})
