/**
 * The checksum of what a COPY reads (copy.ts checksumSources) and the memo of checksums kept
 * between builds (cache.ts FileHashes): a tree the file system shows unchanged is taken from the
 * memo whole; a change of content is seen even when size and mtime are put back; an mtime alone
 * changes nothing; the memo is asked key by key until a build reads many files.
 */
import assert from 'node:assert/strict'
import { mkdirSync, renameSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { FileHashes } from '../../src/build/cache.js'
import { checksumSources, resolveSources, type HashMemo, type SourceRoot, type TreeEntry } from '../../src/build/copy.js'
import { sysAddon } from '../../src/util/addon.js'
import { ImageStore } from '../../src/image/store.js'
import { tempDir } from '../helpers/cairn.js'

/** A memo that counts what it is asked. */
class CountingMemo extends Map<string, string> implements HashMemo {
  gets = 0
  override get(key: string): string | undefined {
    this.gets++
    return super.get(key)
  }
}

describe('checksumSources', () => {
  it('reads a tree through the addon as Node\'s fs reads it: names, order, every lstat field, the types, what .dockerignore leaves out', async (t) => {
    assert.equal(typeof sysAddon()?.['lstatDir'], 'function', 'the addon (native/sys/) is built and has lstatDir')
    const { dir, cleanup } = await tempDir('cairn-checksum-')
    t.after(cleanup)
    const names = ['a', 'B', 'ünï', '\u{1F600}x', '\uFFFDy', 'with space', 'new\nline', 'z']
    for (const [i, n] of names.entries()) {
      mkdirSync(`${dir}/src/${n}/deep`, { recursive: true })
      writeFileSync(`${dir}/src/${n}/f${i}`, `file ${i}\n`)
      writeFileSync(`${dir}/src/${n}/deep/${n}`, '')
    }
    mkdirSync(`${dir}/src/empty`)
    mkdirSync(`${dir}/src/skipped/inner`, { recursive: true })
    writeFileSync(`${dir}/src/skipped/inner/x`, 'x')
    symlinkSync('/nonexistent', `${dir}/src/dangling`)
    symlinkSync('a', `${dir}/src/link`)
    execFileSync('mkfifo', [`${dir}/src/fifo`])
    const root: SourceRoot = { dir, kind: 'context', ignored: (rel) => rel.startsWith('src/skipped'), hasExceptions: false }
    const read = (): { sum: string; tree: TreeEntry[] } => {
      const trees = new Map<string, TreeEntry[]>()
      const sum = checksumSources(root, resolveSources(root, ['src']), new Map(), trees)
      return { sum, tree: [...trees.values()].flat() }
    }
    const fields = (e: TreeEntry): unknown[] => {
      const st = e.st
      return [e.rel, e.host, st.mode, st.uid, st.gid, st.rdev, st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs,
        st.isDirectory(), st.isFile(), st.isSymbolicLink(), st.isSocket(), st.isFIFO()]
    }
    const native = read()
    process.env['CAIRN_STATDIR'] = 'fs'
    let viaFs: { sum: string; tree: TreeEntry[] }
    try {
      viaFs = read()
    } finally {
      delete process.env['CAIRN_STATDIR']
    }
    assert.equal(native.sum, viaFs.sum)
    assert.deepEqual(native.tree.map(fields), viaFs.tree.map(fields))
    const rels = native.tree.map((e) => e.rel)
    assert.ok(rels.includes('fifo') && rels.includes('dangling') && rels.includes('empty'))
    assert.ok(!rels.some((r) => r.startsWith('skipped')), '.dockerignore\'s exclusions are not walked')
    // UTF-8 byte order: U+FFFD sorts before U+1F600 (in UTF-16 the surrogate pair sorts first)
    assert.ok(rels.indexOf('\uFFFDy') < rels.indexOf('\u{1F600}x'))
  })

  it('memoizes a tree whole, sees contents, not mtimes', async (t) => {
    const { dir, cleanup } = await tempDir('cairn-checksum-')
    t.after(cleanup)
    for (let i = 0; i < 20; i++) {
      mkdirSync(`${dir}/src/d${i % 4}`, { recursive: true })
      writeFileSync(`${dir}/src/d${i % 4}/f${i}`, `file ${i}\n`)
    }
    const root: SourceRoot = { dir, kind: 'context' }
    const sum = (memo: HashMemo): string => checksumSources(root, resolveSources(root, ['src']), memo)
    const memo = new CountingMemo()
    const first = sum(memo)
    assert.equal(memo.gets, 21, 'the tree, then each of its 20 files')

    memo.gets = 0
    assert.equal(sum(memo), first)
    assert.equal(memo.gets, 1, 'an unchanged tree: its one key')

    // the same bytes with another mtime: the same checksum
    utimesSync(`${dir}/src/d1/f5`, new Date('2001-01-01'), new Date('2001-01-01'))
    memo.gets = 0
    assert.equal(sum(memo), first)
    assert.equal(memo.gets, 21, 'the tree changed on disk: its files are looked up again')

    // other bytes of the same size, the mtime put back: another checksum
    const before = statSync(`${dir}/src/d2/f6`)
    writeFileSync(`${dir}/src/d2/f6`, 'file X\n')
    utimesSync(`${dir}/src/d2/f6`, before.atime, before.mtime)
    const changed = sum(memo)
    assert.notEqual(changed, first)

    // a rename, the same bytes: another checksum
    renameSync(`${dir}/src/d3/f7`, `${dir}/src/d3/g7`)
    assert.notEqual(sum(memo), changed)
  })

  it('FileHashes keeps trees and files across builds, asked key by key (one tree) or loaded whole (100 files)', async (t) => {
    const { dir, cleanup } = await tempDir('cairn-checksum-')
    t.after(cleanup)
    const store = await ImageStore.open(`${dir}/store`)
    t.after(() => store.close())
    for (let i = 0; i < 100; i++) {
      mkdirSync(`${dir}/ctx/src`, { recursive: true })
      writeFileSync(`${dir}/ctx/src/f${i}`, `file ${i}\n`)
    }
    const root: SourceRoot = { dir: `${dir}/ctx`, kind: 'context' }
    const sum = (memo: HashMemo): string => checksumSources(root, resolveSources(root, ['src']), memo)
    const a = new FileHashes(store, `${dir}/ctx`)
    const first = sum(a)
    a.save()
    // another build: the tree from the database
    const b = new FileHashes(store, `${dir}/ctx`)
    assert.equal(sum(b), first)
    // a build that must look at each file: the file rows are there too
    utimesSync(`${dir}/ctx/src/f1`, new Date('2001-01-01'), new Date('2001-01-01'))
    const c = new FileHashes(store, `${dir}/ctx`)
    assert.equal(sum(c), first)
    c.save()
    assert.equal(sum(new FileHashes(store, `${dir}/ctx`)), first)
  })
})
