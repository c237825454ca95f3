/**
 * The registry's lock between processes (lock.ts): shared holders exclude an exclusive one and the other
 * way round, in one process and across processes; a holder killed with SIGKILL releases it (the kernel
 * drops SQLite's file lock), so nothing is left stuck; a waiting writer is not starved by readers.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { describe, it, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { FileLock } from '../../src/registry/lock.js'
import { tempDir } from '../helpers/cairn.js'

const LOCK_MODULE = fileURLToPath(new URL('../../src/registry/lock.js', import.meta.url))
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * A temporary folder with a lock in it (`path`, and this process's `lock` on it), removed after the
 * test once the processes and locks using it are gone.
 */
async function workspace(t: TestContext): Promise<{ path: string; lock: FileLock; children: ChildProcess[] }> {
  const { dir, cleanup } = await tempDir('cairn-lock-')
  const path = `${dir}/locks/x`
  const w = { path, lock: new FileLock(path), children: [] as ChildProcess[] }
  t.after(async () => {
    for (const c of w.children) if (c.exitCode === null && c.signalCode === null) await killed(c)
    w.lock.close()
    await cleanup()
  })
  return w
}

/** A process that takes the lock (`shared` or `exclusive`) and holds it until killed; resolves once it holds it. */
async function holder(w: { children: ChildProcess[] }, path: string, mode: 'shared' | 'exclusive' | 'readers' | 'nested'): Promise<ChildProcess> {
  const bodies = {
    // short shared holds, back to back and overlapping, for ever
    readers: `(await l.shared())(); console.log('held'); for (;;) { const a = l.shared(); const b = l.shared(); const [ra, rb] = await Promise.all([a, b]); await new Promise((r) => setTimeout(r, 5)); ra(); await new Promise((r) => setTimeout(r, 5)); rb() }`,
    // a shared hold that, once told (a line on stdin), takes a second one before it lets the first go
    nested: `const a = await l.shared(); console.log('held'); process.stdin.once('data', async () => { const b = await l.shared(); a(); b(); console.log('done') }); setInterval(() => {}, 1000)`,
    shared: `await l.shared(); console.log('held'); setInterval(() => {}, 1000)`,
    exclusive: `await l.exclusive(); console.log('held'); setInterval(() => {}, 1000)`,
  }
  const body = `const l = new FileLock(${JSON.stringify(path)}); ${bodies[mode]}`
  const child = spawn(process.execPath, ['--input-type=module', '-e', `import { FileLock } from ${JSON.stringify(LOCK_MODULE)}; ${body}`], { stdio: [mode === 'nested' ? 'pipe' : 'ignore', 'pipe', 'inherit'] })
  w.children.push(child)
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', () => resolve())
    child.once('exit', (code) => reject(new Error(`the holder exited (${String(code)})`)))
  })
  return child
}

async function killed(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGKILL')
  await exited
}

describe('FileLock', () => {
  it('in one process: shared holders run together, an exclusive one alone', async (t) => {
    const { lock } = await workspace(t)
    const a = await lock.shared()
    const b = await lock.shared()
    let got = false
    const ex = lock.exclusive().then((r) => {
      got = true
      return r
    })
    await sleep(30)
    assert.equal(got, false, 'the exclusive hold waits for the shared ones')
    let third = false
    const c = lock.shared().then((r) => {
      third = true
      return r
    })
    a()
    b()
    const release = await ex
    assert.equal(third, false, 'a shared hold asked for after a waiting writer waits for it')
    assert.equal(await lock.exclusive({ wait: false }), undefined)
    release?.()
    ;(await c)()
    assert.equal(third, true)
  })

  it('across processes, and a holder killed with SIGKILL leaves nothing stuck', async (t) => {
    const w = await workspace(t)
    const { path, lock } = w
    // another process holds it exclusively: no shared hold here, no second exclusive one
    let child = await holder(w, path, 'exclusive')
    assert.equal(await lock.exclusive({ wait: false }), undefined)
    await assert.rejects(lock.shared(150), (e: unknown) => (e as { code?: string }).code === 'UNAVAILABLE')
    const waiting = lock.shared()
    await sleep(50)
    await killed(child)
    const started = Date.now()
    ;(await waiting)()
    assert.ok(Date.now() - started < 2000, 'released as soon as its holder died')
    // another process holds it shared (a server in the middle of a push): an exclusive hold waits, then gets it
    child = await holder(w, path, 'shared')
    ;(await lock.shared())() // shared with it
    assert.equal(await lock.exclusive({ wait: false }), undefined)
    const ex = lock.exclusive()
    await sleep(50)
    await killed(child)
    ;(await ex)?.()
  })

  it('a writer gets in while another process keeps taking it shared', async (t) => {
    const w = await workspace(t)
    const { path, lock } = w
    await holder(w, path, 'readers')
    for (let i = 0; i < 5; i++) {
      const release = await lock.exclusive({ timeoutMs: 20_000 })
      assert.ok(release)
      release()
    }
  })

  it('a shared holder that waits for a second shared hold does not wait for a writer that waits for it', async (t) => {
    const w = await workspace(t)
    const { path, lock } = w
    // across processes: the writer here holds its intent while the other process's first hold lasts
    const child = await holder(w, path, 'nested')
    const started = Date.now()
    const ex = lock.exclusive({ timeoutMs: 20_000 })
    await sleep(50)
    const done = new Promise<void>((resolve) => child.stdout?.once('data', () => resolve()))
    child.stdin?.write('go\n')
    await done
    ;(await ex)?.()
    assert.ok(Date.now() - started < 5000, `the writer got in after ${Date.now() - started} ms`)
    // in one process, the same
    const a = await lock.shared()
    const inProcess = lock.exclusive({ timeoutMs: 20_000 })
    await sleep(50)
    const b = await lock.shared()
    a()
    b()
    ;(await inProcess)?.()
  })
})
