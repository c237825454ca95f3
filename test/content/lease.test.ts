/**
 * Content-store leases: two operations of one process (as in the API service), one aborted —
 * the other's content being written survives every cleanup, the aborted one's is gone; a
 * process killed while writing loses its lease at once, one that stops refreshing it (stopped
 * with SIGSTOP) after its TTL.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { ContentStore } from '../../src/content/store.js'
import { digestOf } from '../../src/oci/digest.js'
import { tempDir } from '../helpers/cairn.js'

const ingestFiles = (root: string): string[] => readdirSync(`${root}/ingest`)

test('one process, two operations: the aborted one\'s ingest goes, the live one\'s survives cleanup and publishes', async () => {
  const work = await tempDir('cairn-lease-')
  try {
    const store = new ContentStore(work.dir)
    await store.init()
    let releaseB: () => void = () => undefined
    const bMayFinish = new Promise<void>((resolve) => (releaseB = resolve))
    let bWriting: () => void = () => undefined
    const bStarted = new Promise<void>((resolve) => (bWriting = resolve))
    const data = Buffer.alloc(100_000, 7)

    const b = store.withLease(async () => {
      const ing = await store.ingest()
      ing.stream.write(data.subarray(0, 50_000))
      bWriting()
      await bMayFinish
      ing.stream.end(data.subarray(50_000))
      const staged = await ing.stage({ expected: digestOf(data) })
      store.publishSync(staged)
      return staged.digest
    })
    await bStarted
    const a = store.withLease(async () => {
      const ing = await store.ingest()
      ing.stream.write(Buffer.from('half of something'))
      await sleep(20)
      throw new Error('client went away')
    })
    await assert.rejects(a, /client went away/)
    // A released its lease: its file is gone; B's is there, and stays through a cleanup
    const left = ingestFiles(work.dir)
    assert.equal(left.length, 1, left.join(' '))
    await store.cleanIngest()
    assert.deepEqual(ingestFiles(work.dir), left)
    // a second store object on the same root (another process's view) leaves it too
    const other = new ContentStore(work.dir)
    await other.cleanIngest()
    assert.deepEqual(ingestFiles(work.dir), left)
    releaseB()
    const digest = await b
    assert.equal(digest, digestOf(data))
    assert.equal(await store.has(digest), true)
    assert.deepEqual(ingestFiles(work.dir), [])
    assert.deepEqual(store.leases.list(), [], 'released leases leave no file')
  } finally {
    await work.cleanup()
  }
})

const CHILD = `
const { ContentStore } = await import(process.argv[1])
const store = new ContentStore(process.argv[2])
await store.init()
await store.withLease(async () => {
  const ing = await store.ingest()
  ing.stream.write(Buffer.alloc(1000, 1))
  process.stdout.write('writing\\n')
  // kept running until killed (a pending promise alone does not keep a process up)
  setInterval(() => undefined, 1000)
  await new Promise(() => undefined)
}, { ttlMs: Number(process.argv[3]) })
`

async function writer(root: string, ttlMs: number): Promise<ReturnType<typeof spawn>> {
  const storeJs = fileURLToPath(new URL('../../src/content/store.js', import.meta.url))
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, storeJs, root, String(ttlMs)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const [line] = await once(child.stdout, 'data') as [Buffer]
  assert.equal(line.toString(), 'writing\n')
  return child
}

test('another process\'s lease: live while it runs, dropped when it is killed, expired when it stops refreshing', async () => {
  const work = await tempDir('cairn-lease-')
  const children: ReturnType<typeof spawn>[] = []
  try {
    const store = new ContentStore(work.dir)
    await store.init()
    // killed: gone at the next cleanup, whatever its TTL
    const killed = await writer(work.dir, 60_000)
    children.push(killed)
    assert.equal(ingestFiles(work.dir).length, 1)
    await store.cleanIngest()
    assert.equal(ingestFiles(work.dir).length, 1, 'a live writer keeps its content')
    killed.kill('SIGKILL')
    await once(killed, 'exit')
    await store.cleanIngest()
    assert.deepEqual(ingestFiles(work.dir), [])
    assert.deepEqual(store.leases.list(), [])

    // stopped (alive, but no longer refreshing): kept within its TTL, gone after it
    const stopped = await writer(work.dir, 1500)
    children.push(stopped)
    stopped.kill('SIGSTOP')
    await store.cleanIngest()
    assert.equal(ingestFiles(work.dir).length, 1, 'within its TTL the lease holds')
    await sleep(2500)
    await store.cleanIngest()
    assert.deepEqual(ingestFiles(work.dir), [])
    assert.deepEqual(store.leases.list(), [])
  } finally {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGKILL')
        await once(c, 'exit')
      }
    }
    await work.cleanup()
  }
})
