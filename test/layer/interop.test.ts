/** Interoperability with GNU tar, both ways. */
import assert from 'node:assert/strict'
import { createReadStream } from 'node:fs'
import { chmod, link, lstat, mkdir, symlink, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { runOk } from '../helpers/exec.js'
import { requireTools, Tools } from '../helpers/tools.js'
import { applyLayer } from '../../src/layer/apply.js'
import { readTar, type TarHeader } from '../../src/layer/tar.js'
import { collect, isRoot, snapshot, tarOf, tempDir } from './helpers.js'

const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex') // cap_net_bind_service+ep
const BINARY = Buffer.from([0x00, 0xff, 0x0a, 0x3d, 0x80, 0x00])
const LONG_DIR = 'd'.repeat(120)
const LONG_FILE = `${LONG_DIR}/${'ä'.repeat(100)}/${'f'.repeat(150)}` // > 255 bytes, non-ASCII

async function setfattr(path: string, name: string, value: Buffer): Promise<void> {
  await runOk('setfattr', ['-h', '-n', name, '-v', `0x${value.toString('hex')}`, '--', path])
}

/** A tree with every kind of entry GNU tar and we both handle. */
async function makeTree(t: TestContext, dir: string): Promise<void> {
  await mkdir(join(dir, LONG_DIR, 'ä'.repeat(100)), { recursive: true })
  await writeFile(join(dir, LONG_FILE), 'long name\n')
  await mkdir(join(dir, 'bin'))
  await writeFile(join(dir, 'bin', 'ping'), 'binary\n')
  await chmod(join(dir, 'bin', 'ping'), 0o4755)
  await setfattr(join(dir, 'bin', 'ping'), 'security.capability', CAP)
  await setfattr(join(dir, 'bin', 'ping'), 'user.binary', BINARY)
  await link(join(dir, 'bin', 'ping'), join(dir, 'bin', 'ping6'))
  await symlink('ping', join(dir, 'bin', 'link'))
  await symlink('/' + 't'.repeat(150), join(dir, 'long-target'))
  await mkdir(join(dir, 'tmp'))
  await chmod(join(dir, 'tmp'), 0o1777)
  await writeFile(join(dir, 'naïve café.txt'), 'unicode\n')
  if (isRoot()) {
    await runOk('mknod', ['-m', '0666', join(dir, 'null'), 'c', '1', '3'])
    await runOk('mkfifo', ['-m', '0640', join(dir, 'fifo')])
  }
  void t
  for (const p of ['bin/ping', 'naïve café.txt', LONG_FILE, 'tmp', 'bin']) await utimes(join(dir, p), 1_600_000_000, 1_600_000_000)
}

describe('GNU tar interop', () => {
  it('GNU tar lists and extracts what we write, xattrs included', async (t) => {
    if (!requireTools(t, ['tar'])) return
    const dir = await tempDir(t)
    const data = await tarOf([
      { header: { path: 'bin/', type: 'directory', mode: 0o755, mtime: 1_600_000_000 } },
      { header: { path: 'bin/ping', type: 'file', mode: 0o4755, uid: 12, gid: 34, mtime: 1_600_000_001, mtimeNsec: 250_000_000, xattrs: new Map([['security.capability', CAP], ['user.binary', BINARY]]) }, body: 'ping\n' },
      { header: { path: 'bin/ping6', type: 'hardlink', linkname: 'bin/ping' } },
      { header: { path: 'bin/link', type: 'symlink', linkname: 'ping' } },
      { header: { path: `${LONG_DIR}/`, type: 'directory' } },
      { header: { path: `${LONG_DIR}/${'ä'.repeat(100)}/`, type: 'directory' } },
      { header: { path: LONG_FILE, type: 'file', mode: 0o600 }, body: 'long\n' },
      { header: { path: 'long-target', type: 'symlink', linkname: '/' + 't'.repeat(150) } },
      { header: { path: 'big-ids', type: 'file', uid: 3_000_000, gid: 3_000_001 } },
      { header: { path: 'fifo', type: 'fifo', mode: 0o640 } },
    ])
    const archive = join(dir, 'ours.tar')
    await writeFile(archive, data)
    const listing = (await runOk(Tools.tar, ['-tf', archive])).stdout.trim().split('\n')
    assert.deepEqual(listing, ['bin/', 'bin/ping', 'bin/ping6', 'bin/link', `${LONG_DIR}/`, `${LONG_DIR}/${'ä'.repeat(100)}/`, LONG_FILE, 'long-target', 'big-ids', 'fifo'])

    const out = join(dir, 'out')
    await mkdir(out)
    await runOk(Tools.tar, ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', archive, '-C', out])
    const snap = await snapshot(out)
    assert.equal(snap['bin/ping']?.mode, 0o4755)
    assert.equal(snap['bin/ping']?.sha256, snap['bin/ping6']?.sha256)
    assert.equal(snap['bin/ping6']?.inode, 'bin/ping')
    assert.equal(snap['bin/ping']?.mtime, 1_600_000_001)
    assert.deepEqual(snap['bin/ping']?.xattrs, { 'security.capability': CAP.toString('hex'), 'user.binary': BINARY.toString('hex') })
    assert.equal(snap['bin/link']?.linkname, 'ping')
    assert.equal(snap['long-target']?.linkname, '/' + 't'.repeat(150))
    assert.equal(snap[LONG_FILE]?.size, 5)
    assert.equal(snap['fifo']?.type, 'fifo')
    const nsec = (await lstat(join(out, 'bin/ping'), { bigint: true })).mtimeNs % 1_000_000_000n
    assert.equal(nsec, 250_000_000n)
    if (isRoot()) {
      assert.equal(snap['bin/ping']?.uid, 12)
      assert.equal(snap['big-ids']?.uid, 3_000_000)
      assert.equal(snap['big-ids']?.gid, 3_000_001)
    }
  })

  it('reads what GNU tar writes in PAX format, binary xattrs and sub-second mtimes included', async (t) => {
    if (!requireTools(t, ['tar'])) return
    const dir = await tempDir(t)
    const src = join(dir, 'src')
    await mkdir(src)
    await makeTree(t, src)
    const archive = join(dir, 'gnu.tar')
    await runOk(Tools.tar, ['--format=pax', '--xattrs', '--xattrs-include=*', '-cf', archive, '-C', src, '.'])
    const headers = new Map<string, TarHeader>()
    for await (const { header, body } of readTar(createReadStream(archive))) {
      headers.set(header.path, header)
      if (header.path === `./${LONG_FILE}`) assert.equal((await collect(body)).toString(), 'long name\n')
    }
    const ping = headers.get('./bin/ping') ?? headers.get('./bin/ping6')
    assert.ok(ping)
    assert.deepEqual(ping.xattrs.get('security.capability'), CAP)
    assert.deepEqual(ping.xattrs.get('user.binary'), BINARY)
    assert.equal(headers.get('./long-target')?.linkname, '/' + 't'.repeat(150))
    assert.equal(headers.get('./naïve café.txt')?.type, 'file')
    const st = await lstat(join(src, 'naïve café.txt'), { bigint: true })
    const header = headers.get('./naïve café.txt')
    assert.equal(BigInt(header?.mtime ?? 0) * 1_000_000_000n + BigInt(header?.mtimeNsec ?? 0), st.mtimeNs)
    assert.ok(header?.pax.has('atime'), 'other PAX records are kept')
    assert.equal(headers.get('./tmp/')?.mode, 0o1777)
    const hard = [...headers.values()].filter((h) => h.type === 'hardlink')
    assert.equal(hard.length, 1)

    // Unpacked with applyLayer, the GNU archive gives back the same tree.
    const out = join(dir, 'out')
    await mkdir(out)
    await applyLayer(createReadStream(archive), out)
    assert.deepEqual(await snapshot(out), await snapshot(src))
  })

  it('reads GNU-format archives (long names as L/K entries)', async (t) => {
    if (!requireTools(t, ['tar'])) return
    const dir = await tempDir(t)
    const src = join(dir, 'src')
    await mkdir(src)
    await makeTree(t, src)
    const archive = join(dir, 'gnu.tar')
    await runOk(Tools.tar, ['--format=gnu', '-cf', archive, '-C', src, '.'])
    const paths: string[] = []
    for await (const { header } of readTar(createReadStream(archive))) {
      paths.push(header.path)
      if (header.path === './long-target') assert.equal(header.linkname, '/' + 't'.repeat(150))
    }
    assert.ok(paths.includes(`./${LONG_FILE}`))
    const out = join(dir, 'out')
    await mkdir(out)
    await applyLayer(createReadStream(archive), out)
    const expected = await snapshot(src, { skipXattrs: () => true })
    assert.deepEqual(await snapshot(out), expected)
  })

  it('reads ustar and v7 archives', async (t) => {
    if (!requireTools(t, ['tar'])) return
    const dir = await tempDir(t)
    const src = join(dir, 'src')
    await mkdir(join(src, 'a', 'b'), { recursive: true })
    await writeFile(join(src, 'a', 'b', 'file'), 'content')
    await symlink('b/file', join(src, 'a', 'link'))
    for (const format of ['ustar', 'v7']) {
      const archive = join(dir, `${format}.tar`)
      await runOk(Tools.tar, [`--format=${format}`, '-cf', archive, '-C', src, 'a'])
      const seen: Array<[string, string]> = []
      for await (const { header, body } of readTar(createReadStream(archive))) {
        seen.push([header.type, header.path])
        if (header.type === 'file') assert.equal((await collect(body)).toString(), 'content')
      }
      assert.deepEqual(seen.sort(), [['directory', 'a/'], ['directory', 'a/b/'], ['file', 'a/b/file'], ['symlink', 'a/link']])
    }
  })
})
