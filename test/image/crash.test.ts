/**
 * Crash safety and concurrency of the store: processes killed with SIGKILL at any moment, and
 * many CLI processes working on one store at once, must leave a store whose every image is
 * whole and whose every blob matches its name.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream, readdirSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { writeTar, type TarEntryInput } from '../../src/layer/tar.js'
import { ImageStore } from '../../src/image/store.js'
import { CLI, cairn, cairnOk, tarOf, tempDir } from '../helpers/cairn.js'

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256')
  await pipeline(createReadStream(path), h)
  return h.digest('hex')
}

/** Every blob hashes to its name; every image's manifest, config and layers are present. */
async function assertConsistent(root: string): Promise<number> {
  for (const hex of readdirSync(`${root}/blobs/sha256`)) {
    assert.equal(await sha256File(`${root}/blobs/sha256/${hex}`), hex, `blob ${hex} is corrupt`)
  }
  const store = await ImageStore.open(root)
  try {
    const images = store.list()
    for (const img of images) {
      const m = await store.manifest(img)
      for (const d of [m.config, ...m.layers]) assert.ok(await store.content.has(d.digest), `image ${img.id} lacks blob ${d.digest}`)
    }
    assert.deepEqual(readdirSync(`${root}/ingest`), [], 'a dead process\'s ingest files are cleaned on open')
    assert.deepEqual(readdirSync(`${root}/trash`), [], 'the trash is emptied or recovered on open')
    return images.length
  } finally {
    store.close()
  }
}

/** A tar of `mb` megabytes, produced lazily. */
function bigTar(mb: number, seed: number): Readable {
  const chunk = Buffer.alloc(1 << 20, seed & 0xff)
  async function* body(): AsyncGenerator<Buffer> {
    for (let i = 0; i < mb; i++) yield chunk
  }
  const entries: TarEntryInput[] = [{ header: { path: 'big', type: 'file', size: mb << 20, mode: 0o644, mtime: 1 }, body: body() }]
  return writeTar(entries)
}

test('SIGKILL at any moment of an import leaves a consistent store', async () => {
  const { dir, cleanup } = await tempDir()
  try {
    const root = `${dir}/store`
    await cairnOk(root, ['import', '-', 'keep:1'], { input: await tarOf({ kept: 'yes' }) })
    const delays = [0, 30, 80, 150, 250, 400, 700]
    for (const [i, delay] of delays.entries()) {
      const child = spawn(CLI, ['--root', root, 'import', '-', `victim:${i}`], { stdio: ['pipe', 'ignore', 'ignore'] })
      const feeding = pipeline(bigTar(64, i), child.stdin).catch(() => undefined)
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      await new Promise((r) => setTimeout(r, delay))
      child.kill('SIGKILL')
      await exited
      await feeding
      // the next command works
      const images = await cairnOk(root, ['images', '--format', '{{.Repository}}:{{.Tag}}'])
      assert.ok(images.stdout.includes('keep:1'))
    }
    const n = await assertConsistent(root)
    assert.ok(n >= 1)
  } finally {
    await cleanup()
  }
})

test('SIGKILL during rmi never leaves an image pointing at a missing blob', async () => {
  const { dir, cleanup } = await tempDir()
  try {
    const root = `${dir}/store`
    for (let round = 0; round < 6; round++) {
      await cairnOk(root, ['import', '-', `gone:${round}`], { input: await tarOf({ [`f${round}`]: 'x'.repeat(50_000 + round) }) })
      await cairnOk(root, ['tag', `gone:${round}`, `alias:${round}`])
      const child = spawn(CLI, ['--root', root, 'rmi', '-f', `gone:${round}`, `alias:${round}`], { stdio: 'ignore' })
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      await new Promise((r) => setTimeout(r, 40 + round * 40))
      child.kill('SIGKILL')
      await exited
      await assertConsistent(root)
    }
  } finally {
    await cleanup()
  }
})

test('concurrent CLI processes on one store: all imports land, identical blobs stored once', async () => {
  const { dir, cleanup } = await tempDir()
  try {
    const root = `${dir}/store`
    await cairnOk(root, ['images'])
    const same = await tarOf({ same: 'identical content in every process' })
    const jobs: Promise<unknown>[] = []
    for (let i = 0; i < 6; i++) {
      jobs.push(cairnOk(root, ['import', '-', `distinct:${i}`], { input: await tarOf({ [`file${i}`]: `content ${i}`.repeat(1000) }) }))
      jobs.push(cairnOk(root, ['import', '-', `same:${i}`], { input: same, env: { ...process.env, SOURCE_DATE_EPOCH: '1000' } }))
    }
    // removals racing with the imports
    await cairnOk(root, ['import', '-', 'doomed:1'], { input: same, env: { ...process.env, SOURCE_DATE_EPOCH: '2000' } })
    jobs.push(cairnOk(root, ['rmi', 'doomed:1']))
    await Promise.all(jobs)
    const tags = (await cairnOk(root, ['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.trim().split('\n').sort()
    assert.deepEqual(tags, [...Array.from({ length: 6 }, (_, i) => `distinct:${i}`), ...Array.from({ length: 6 }, (_, i) => `same:${i}`)].sort())
    const sameIds = new Set((await cairnOk(root, ['images', '-q', 'same'])).stdout.trim().split('\n'))
    assert.equal(sameIds.size, 1, 'same content and timestamp: one image')
    await assertConsistent(root)
    // 6 distinct images × 3 blobs + 1 shared image × 3 blobs
    assert.equal(readdirSync(`${root}/blobs/sha256`).length, 6 * 3 + 3)
  } finally {
    await cleanup()
  }
})

test('an unknown store schema is refused rather than misread', async () => {
  const { dir, cleanup } = await tempDir()
  try {
    const root = `${dir}/store`
    await cairnOk(root, ['images'])
    const store = await ImageStore.open(root)
    store.db.pragma('user_version = 999')
    store.close()
    const r = await cairn(root, ['images'])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /newer Cairn/)
  } finally {
    await cleanup()
  }
})
