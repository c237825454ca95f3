import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { readXattrsOf, readXattrTree, setXattrs, xattrsNative } from '../../src/layer/sys.js'
import { sysAddonWith } from '../../src/util/addon.js'
import { tempDir } from './helpers.js'

describe('xattr tools', () => {
  it('sets and reads binary values on awkward file names, in one batch', async (t) => {
    const dir = await tempDir(t)
    const names = ['plain', 'with space', 'new\nline', 'back\\slash', 'eq=uals', 'tab\there', 'ünï', '# file: fake', '-dash']
    await mkdir(join(dir, 'sub dir'))
    const targets = [...names.map((n) => join(dir, n)), join(dir, 'sub dir')]
    for (const p of targets.slice(0, -1)) await writeFile(p, '')
    const values = new Map<string, Buffer>([
      ['user.binary', Buffer.from([0, 1, 2, 0x0a, 0x3d, 0xff])],
      ['user.empty', Buffer.alloc(0)],
      ['user.with=equals', Buffer.from('x')],
      ['user.big', Buffer.alloc(2_000, 0xab)], // ext4 keeps all of a file's xattrs in one 4 KiB block
    ])
    assert.deepEqual(await setXattrs(targets.map((path) => ({ path, xattrs: values }))), [])
    const tree = await readXattrTree(dir)
    for (const p of targets) assert.deepEqual(tree.get(p), values, p)
    assert.equal(tree.has(dir), false, 'files without xattrs are absent')
  })

  it('reports refusals precisely and sets the rest', async (t) => {
    const dir = await tempDir(t)
    await writeFile(join(dir, 'file'), '')
    await symlink('file', join(dir, 'link'))
    await writeFile(join(dir, 'other'), '')
    const failures = await setXattrs([
      { path: join(dir, 'link'), xattrs: new Map([['user.no', Buffer.from('1')]]) }, // user.* is refused on symlinks
      { path: join(dir, 'file'), xattrs: new Map([['user.a', Buffer.from('a')], ['user.b', Buffer.from('b')]]) },
      { path: join(dir, 'other'), xattrs: new Map([['user.c', Buffer.from('c')], ['user.d', Buffer.from('d')]]) },
    ])
    assert.deepEqual(failures.map((f) => [f.path, f.name, f.errno]), [[join(dir, 'link'), 'user.no', 'EPERM']])
    const tree = await readXattrTree(dir)
    assert.deepEqual([...(tree.get(join(dir, 'file'))?.keys() ?? [])].sort(), ['user.a', 'user.b'])
    assert.deepEqual([...(tree.get(join(dir, 'other'))?.keys() ?? [])].sort(), ['user.c', 'user.d'])
    assert.equal(tree.has(join(dir, 'link')), false, 'the symlink target was not touched either')
  })
})

describe('xattrs read through the addon', () => {
  it('reads what getfattr reads: every name, binary values, symlinks not followed, nothing for bare files', async (t) => {
    assert.equal(xattrsNative(), true, 'the addon (native/sys/) is built and has the xattr calls')
    const dir = await tempDir(t)
    await mkdir(join(dir, 'a/b c'), { recursive: true })
    await writeFile(join(dir, 'a/b c/ünï\nfile'), 'x')
    await writeFile(join(dir, 'a/bare'), 'x')
    await symlink('/nonexistent', join(dir, 'a/dangling'))
    await symlink('b c/ünï\nfile', join(dir, 'a/link'))
    const values = new Map<string, Buffer>([
      ['user.binary', Buffer.from([0, 1, 0x0a, 0xff])],
      ['user.empty', Buffer.alloc(0)],
      ['trusted.overlay.opaque', Buffer.from('y')],
      ['user.big', Buffer.alloc(3_000, 0xcd)],
    ])
    assert.deepEqual(await setXattrs([
      { path: join(dir, 'a/b c/ünï\nfile'), xattrs: values },
      { path: join(dir, 'a/b c'), xattrs: new Map([['trusted.overlay.opaque', Buffer.from('y')]]) },
      { path: dir, xattrs: new Map([['user.root', Buffer.from('r')]]) },
    ]), [])
    const native = await readXattrTree(dir)
    const paths = [dir, join(dir, 'a'), join(dir, 'a/b c'), join(dir, 'a/b c/ünï\nfile'), join(dir, 'a/bare'), join(dir, 'a/link')]
    const nativeOf = await readXattrsOf(paths, '^trusted\\.overlay\\.')
    process.env['CAIRN_XATTR'] = 'getfattr'
    try {
      assert.equal(xattrsNative(), false)
      assert.deepEqual(native, await readXattrTree(dir))
      assert.deepEqual(nativeOf, await readXattrsOf(paths, '^trusted\\.overlay\\.'))
    } finally {
      delete process.env['CAIRN_XATTR']
    }
    assert.deepEqual(native.get(join(dir, 'a/b c/ünï\nfile')), values)
    assert.deepEqual([...native.keys()].sort(), [dir, join(dir, 'a/b c'), join(dir, 'a/b c/ünï\nfile')].sort())
    assert.deepEqual([...nativeOf.keys()].sort(), [join(dir, 'a/b c'), join(dir, 'a/b c/ünï\nfile')].sort())
    await assert.rejects(readXattrTree(join(dir, 'missing')), /getfattr failed on .*missing: .*No such file or directory/)
    await assert.rejects(readXattrsOf([join(dir, 'missing')]), /getfattr failed on .*missing: .*No such file or directory/)
  })
})

describe('write-out hint (syncFileRange)', () => {
  it('starts the write-out of a range off the event loop, and reports a bad descriptor', async (t) => {
    const sys = sysAddonWith<{ syncFileRange(fd: number, offset: number, length: number): Promise<void> }>('syncFileRange')
    assert.ok(sys, 'the addon (native/sys/) is built and has syncFileRange')
    const file = join(await tempDir(t), 'blob')
    const fh = await open(file, 'w')
    try {
      await fh.write(Buffer.alloc(3 << 20, 7))
      const pending = sys.syncFileRange(fh.fd, 0, 3 << 20)
      assert.ok(pending instanceof Promise, 'a promise: the call runs on libuv\'s pool')
      await pending
      await sys.syncFileRange(fh.fd, 1 << 20, 0) // 0: to the end of the file
    } finally {
      await fh.close()
    }
    await assert.rejects(sys.syncFileRange(fh.fd, 0, 1), (err: Error & { errno?: number }) => err.errno === 9 && /sync_file_range: Bad file descriptor/.test(err.message))
    assert.throws(() => sys.syncFileRange(-1, -5, 1), TypeError)
  })
})

describe('writes past the page cache (writeAt)', () => {
  /** The descriptor's O_DIRECT flag, as /proc reports it (octal flags). */
  const directFlag = async (fd: number): Promise<boolean> => {
    const flags = /flags:\s+([0-7]+)/.exec(await readFile(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0'
    return (Number.parseInt(flags, 8) & 0o40000) !== 0
  }

  it('writes aligned pieces through O_DIRECT, a tail through the page cache, and refuses what O_DIRECT cannot take', async (t) => {
    const sys = sysAddonWith<{ writeAt(fd: number, position: number, buffers: unknown, direct: unknown): Promise<boolean> }>('writeAt')
    assert.ok(sys, 'the addon (native/sys/) is built and has writeAt')
    const file = join(await tempDir(t), 'blob')
    const fh = await open(file, 'w')
    const data = randomBytes((1 << 20) + 10)
    try {
      const pending = sys.writeAt(fh.fd, 0, [data.subarray(0, 5000), data.subarray(5000, 1 << 20)], true)
      assert.ok(pending instanceof Promise, 'a promise: the call runs on libuv\'s pool')
      assert.equal(await pending, true, 'this file system takes O_DIRECT')
      assert.equal(await directFlag(fh.fd), true)
      assert.equal(await sys.writeAt(fh.fd, 1 << 20, [data.subarray(1 << 20)], false), false)
      assert.equal(await directFlag(fh.fd), false, 'switched back for the tail')
      assert.throws(() => sys.writeAt(fh.fd, 100, [data.subarray(0, 4096)], true), TypeError, 'a position off the alignment')
      assert.throws(() => sys.writeAt(fh.fd, 0, [data.subarray(0, 100)], true), TypeError, 'a length off the alignment')
      assert.throws(() => sys.writeAt(fh.fd, 0, [Buffer.alloc(2 << 20)], true), TypeError, 'more than 1 MiB at once')
      assert.throws(() => sys.writeAt(fh.fd, 0, ['text'], false), TypeError)
    } finally {
      await fh.close()
    }
    assert.ok((await readFile(file)).equals(data))
    await assert.rejects(sys.writeAt(fh.fd, 0, [data.subarray(0, 4096)], true), (err: Error & { errno?: number }) => err.errno === 9)
  })
})

describe('read-ahead hint (willNeed)', () => {
  it('asks for files off the event loop, passes over what it cannot open, and refuses what is not a list of paths', async (t) => {
    const sys = sysAddonWith<{ willNeed(paths: unknown): Promise<void> }>('willNeed')
    assert.ok(sys, 'the addon (native/sys/) is built and has willNeed')
    const dir = await tempDir(t)
    await writeFile(join(dir, 'a'), Buffer.alloc(100_000, 1))
    await symlink('a', join(dir, 'link'))
    const pending = sys.willNeed([join(dir, 'a'), join(dir, 'missing'), join(dir, 'link'), dir])
    assert.ok(pending instanceof Promise)
    assert.equal(await pending, undefined)
    assert.equal(await sys.willNeed([]), undefined)
    assert.throws(() => sys.willNeed('not a list'), TypeError)
    assert.throws(() => sys.willNeed([join(dir, 'a'), 42]), TypeError)
  })
})
