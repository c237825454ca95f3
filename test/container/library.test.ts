/** The container verbs as a Node program calls them: data back, output into the streams given. */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { PassThrough, Readable } from 'node:stream'
import { text } from 'node:stream/consumers'
import { Cairn, hasCode } from '../../src/index.js'
import { containerEngine } from '../../src/api/containers.js'
import type { MonitorRun } from '../../src/container/engine.js'
import { runMonitor } from '../../src/container/monitor.js'
import { ImageStore } from '../../src/image/store.js'
import { containerStore, requireContainers, type ContainerStore } from './helpers.js'

describe('containers through the library', () => {
  let s: ContainerStore | undefined
  before(async () => {
    if (process.getuid?.() === 0) s = await containerStore('overlay').catch(() => undefined)
  })
  after(async () => {
    await s?.cleanup()
  })

  test('run, exec, logs, diff, ps, inspect, pause, stop, rm', async (t) => {
    if (!(await requireContainers(t)) || !s) return
    const cairn = await Cairn.open({ root: s.root })
    try {
      const out = new PassThrough()
      const err = new PassThrough()
      const done = await cairn.run({ image: 'busybox', command: ['sh', '-c', 'echo to-out; echo to-err >&2; exit 2'], name: 'lib', stdio: { stdout: out, stderr: err } })
      out.end()
      err.end()
      assert.equal(done.exitCode, 2)
      assert.equal(await text(out), 'to-out\n')
      assert.equal(await text(err), 'to-err\n')
      const entries = []
      for await (const e of cairn.logs('lib')) entries.push([e.stream, e.log])
      // the two streams are two pipes: their relative order is not kept (nor is it by Docker)
      assert.deepEqual(entries.sort(), [['stderr', 'to-err\n'], ['stdout', 'to-out\n']])

      const { id } = await cairn.run({ image: 'busybox', command: ['sleep', '60'], detach: true, name: 'bg' })
      assert.match(id, /^[0-9a-f]{64}$/)
      const execOut = new PassThrough()
      const code = await cairn.exec('bg', ['sh', '-c', 'cat > /from-stdin; cat /from-stdin'], { interactive: true, stdio: { stdin: Readable.from(['piped\n']), stdout: execOut, stderr: new PassThrough() } })
      execOut.end()
      assert.equal(code, 0)
      assert.equal(await text(execOut), 'piped\n')
      assert.deepEqual((await cairn.diff('bg')).map((c) => `${c.kind} ${c.path}`), ['A /from-stdin'])
      const ps = await cairn.ps()
      assert.deepEqual(ps.map((p) => p.name), ['bg'])
      assert.match(ps[0]?.status ?? '', /^Up /)
      await cairn.pause('bg')
      assert.equal((await cairn.inspectContainer('bg')).State.Status, 'paused')
      await cairn.unpause('bg')
      assert.deepEqual((await cairn.stop('bg', { timeout: 0 })).done, ['bg'])
      assert.equal((await cairn.inspectContainer('bg')).State.ExitCode, 137)
      assert.deepEqual((await cairn.rm(['bg', 'lib'])).errors, [])
      await assert.rejects(cairn.inspectContainer('bg'), (e) => hasCode(e, 'NAME_UNKNOWN'))
      await assert.rejects(cairn.run({ image: 'busybox', command: ['nope'] }), (e: unknown) => hasCode(e, 'COMMAND_NOT_FOUND'))
      assert.deepEqual(await cairn.ps({ all: true }), [])
    } finally {
      cairn.close()
    }
  })

  test('a monitor in this process (a build step\'s): the output, the exit, no process of its own; one that fails leaves the container startable', async (t) => {
    if (!(await requireContainers(t)) || !s) return
    const store = await ImageStore.open(s.root)
    try {
      const engine = containerEngine(store)
      const spec = await engine.create({ image: 'busybox', command: ['sh', '-c', 'echo here; exit 3'], network: 'none' })
      const out = new PassThrough()
      const started = await engine.start(spec.id, { attach: [{ stdout: out, stderr: new PassThrough() }], monitorHere: runMonitor })
      const row = engine.rows.get(spec.id)
      assert.equal(row?.shim_pid, process.pid, 'this process monitors it')
      assert.equal((await started.wait()) ?? (await engine.waitExit(spec.id)), 3)
      out.end()
      assert.equal(await text(out), 'here\n')
      assert.equal(await engine.waitExit(spec.id), 3)
      await engine.remove(spec.id, { force: true })

      const other = await engine.create({ image: 'busybox', command: ['true'], network: 'none' })
      const failing: MonitorRun = async () => {
        throw new Error('monitor broke')
      }
      await assert.rejects(engine.start(other.id, { monitorHere: failing }), /ended \(in this process\) before the container started/)
      assert.equal(engine.rows.get(other.id)?.state, 'created', 'not left starting')
      const again = await engine.start(other.id, { monitorHere: runMonitor })
      assert.equal((await again.wait()) ?? (await engine.waitExit(other.id)), 0)
      await engine.remove(other.id, { force: true })
    } finally {
      store.close()
    }
  })
})
