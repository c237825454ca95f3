/**
 * Paths the user points at are never harmed: `save -o`, `export -o` and `cp` to the host refuse
 * (or, for cp of a file, write through) a device or FIFO instead of replacing it with a file,
 * follow symlinks instead of replacing them, and replace regular files atomically.
 */
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync, readdirSync, chmodSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { tempDir } from '../helpers/cairn.js'
import { containerStore, requireContainers, type ContainerStore } from './helpers.js'
import { writeOutputFile, checkOutputPath } from '../../src/util/userfiles.js'
import { hasCode } from '../../src/errors/index.js'

function mknodChar(path: string, major: number, minor: number): void {
  const r = spawnSync('mknod', [path, 'c', String(major), String(minor)])
  assert.equal(r.status, 0, r.stderr.toString())
}
function mkfifo(path: string): void {
  const r = spawnSync('mkfifo', [path])
  assert.equal(r.status, 0, r.stderr.toString())
}

/** Folder entries besides the ones named: what a failed write left behind. */
function leftovers(dir: string, known: readonly string[]): string[] {
  return readdirSync(dir).filter((n) => !known.includes(n))
}

describe('writeOutputFile (the library)', () => {
  test('a regular file is replaced whole, keeping its mode; a failed write leaves it as it was', async () => {
    const { dir, cleanup } = await tempDir('cairn-out-')
    try {
      const f = `${dir}/out.tar`
      writeFileSync(f, 'old')
      chmodSync(f, 0o640)
      await writeOutputFile(f, async (out) => {
        out.end('new content')
        await new Promise((r) => out.once('finish', r))
      })
      assert.equal(readFileSync(f, 'utf8'), 'new content')
      assert.equal(statSync(f).mode & 0o777, 0o640)
      await assert.rejects(writeOutputFile(f, async (out) => {
        out.write('partial')
        throw new Error('boom')
      }), /boom/)
      assert.equal(readFileSync(f, 'utf8'), 'new content')
      assert.deepEqual(leftovers(dir, ['out.tar']), [])
    } finally {
      await cleanup()
    }
  })

  test('a symlink is followed: its target is written and the link stays', async () => {
    const { dir, cleanup } = await tempDir('cairn-out-')
    try {
      mkdirSync(`${dir}/real`)
      writeFileSync(`${dir}/real/target`, 'old')
      symlinkSync('real/target', `${dir}/link`)
      symlinkSync('real/new', `${dir}/dangling`)
      const put = (p: string, s: string): Promise<void> => writeOutputFile(p, async (out) => {
        out.end(s)
        await new Promise((r) => out.once('finish', r))
      })
      await put(`${dir}/link`, 'through the link')
      assert.ok(lstatSync(`${dir}/link`).isSymbolicLink())
      assert.equal(readlinkSync(`${dir}/link`), 'real/target')
      assert.equal(readFileSync(`${dir}/real/target`, 'utf8'), 'through the link')
      await put(`${dir}/dangling`, 'created')
      assert.ok(lstatSync(`${dir}/dangling`).isSymbolicLink())
      assert.equal(readFileSync(`${dir}/real/new`, 'utf8'), 'created')
    } finally {
      await cleanup()
    }
  })

  test('a missing folder and a directory target are refused in Docker\'s words', async () => {
    const { dir, cleanup } = await tempDir('cairn-out-')
    try {
      await assert.rejects(checkOutputPath(`${dir}/missing/out.tar`), (err: unknown) => hasCode(err, 'INVALID_ARGUMENT') && /^invalid output path: directory ".*\/missing" does not exist$/.test((err as Error).message))
      await assert.rejects(writeOutputFile(dir, async () => undefined), /is a directory/)
    } finally {
      await cleanup()
    }
  })
})

describe('output paths on the command line', { concurrency: false }, () => {
  let s: ContainerStore | undefined
  let dir = ''
  let cleanupDir: (() => Promise<void>) | undefined
  before(async () => {
    if (process.getuid?.() !== 0) return
    s = await containerStore('overlay')
    ;({ dir, cleanup: cleanupDir } = await tempDir('cairn-outcli-'))
    await s.cliOk(['create', '--name', 'src', 'busybox', 'true'])
    await s.cliOk(['run', '--name', 'writer', 'busybox', 'sh', '-c', 'echo hello > /greeting'])
  })
  after(async () => {
    await s?.cleanup()
    await cleanupDir?.()
  })

  for (const verb of ['save', 'export'] as const) {
    test(`${verb} -o refuses a character device and a FIFO, leaving them as they were`, async (t) => {
      if (!(await requireContainers(t)) || !s) return
      const fakeNull = `${dir}/${verb}-null`
      const fifo = `${dir}/${verb}-fifo`
      mknodChar(fakeNull, 1, 3)
      mkfifo(fifo)
      const args = (out: string): string[] => (verb === 'save' ? ['save', '-o', out, 'busybox'] : ['export', '-o', out, 'src'])
      for (const [p, kind] of [[fakeNull, 'got a device'], [fifo, 'got a named pipe']] as const) {
        const r = await s.cli(args(p))
        assert.equal(r.code, 1, r.stderr)
        assert.equal(r.stderr, `Error: invalid output path: ${JSON.stringify(p)} must be a directory or a regular file: ${kind}\n`)
      }
      assert.ok(lstatSync(fakeNull).isCharacterDevice(), 'the device node is still a device')
      assert.equal(lstatSync(fakeNull).rdev, statSync('/dev/null').rdev)
      assert.ok(lstatSync(fifo).isFIFO(), 'the FIFO is still a FIFO')
    })

    test(`${verb} -o through a symlink writes the link's target; into a missing folder it fails cleanly`, async (t) => {
      if (!(await requireContainers(t)) || !s) return
      const target = `${dir}/${verb}-target.tar`
      writeFileSync(target, 'old')
      symlinkSync(`${verb}-target.tar`, `${dir}/${verb}-link.tar`)
      const args = (out: string): string[] => (verb === 'save' ? ['save', '-o', out, 'busybox'] : ['export', '-o', out, 'src'])
      await s.cliOk(args(`${dir}/${verb}-link.tar`))
      assert.ok(lstatSync(`${dir}/${verb}-link.tar`).isSymbolicLink())
      assert.ok(statSync(target).size > 10_000)
      const r = await s.cli(args(`${dir}/nowhere/${verb}.tar`))
      assert.equal(r.code, 1)
      assert.equal(r.stderr, `Error: invalid output path: directory ${JSON.stringify(`${dir}/nowhere`)} does not exist\n`)
    })
  }

  test('cp of a file onto a device writes through it (as GNU cp), onto a FIFO feeds its reader; neither is replaced', async (t) => {
    if (!(await requireContainers(t)) || !s) return
    const fakeNull = `${dir}/cp-null`
    mknodChar(fakeNull, 1, 3)
    await s.cliOk(['cp', 'writer:/greeting', fakeNull])
    assert.ok(lstatSync(fakeNull).isCharacterDevice())
    const fifo = `${dir}/cp-fifo`
    mkfifo(fifo)
    const reader = spawn('cat', [fifo])
    let got = ''
    reader.stdout.on('data', (b: Buffer) => (got += b.toString()))
    const done = new Promise((r) => reader.once('close', r))
    await s.cliOk(['cp', 'writer:/greeting', fifo])
    await done
    assert.equal(got, 'hello\n')
    assert.ok(lstatSync(fifo).isFIFO())
    // a directory cannot be written into a device: refused, and the device stays
    const r = await s.cli(['cp', 'writer:/etc', fakeNull])
    assert.notEqual(r.code, 0)
    assert.ok(lstatSync(fakeNull).isCharacterDevice())
  })

  test('cp to a symlink on the host writes its target; a regular file is replaced', async (t) => {
    if (!(await requireContainers(t)) || !s) return
    writeFileSync(`${dir}/cp-target`, 'old')
    symlinkSync('cp-target', `${dir}/cp-link`)
    await s.cliOk(['cp', 'writer:/greeting', `${dir}/cp-link`])
    assert.ok(lstatSync(`${dir}/cp-link`).isSymbolicLink())
    assert.equal(readFileSync(`${dir}/cp-target`, 'utf8'), 'hello\n')
    writeFileSync(`${dir}/cp-plain`, 'a much longer old content than the new one')
    await s.cliOk(['cp', 'writer:/greeting', `${dir}/cp-plain`])
    assert.equal(readFileSync(`${dir}/cp-plain`, 'utf8'), 'hello\n')
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.cairn')), [])
  })
})
