/**
 * Terminals and attaching, as a user would drive them (tmux plays the user's terminal): a
 * resizable pseudo-terminal, the detach keys (ctrl-p ctrl-q, and --detach-keys), `attach` to a
 * running container, `wait`, `logs --until`, `container prune`; and the framing and detach-key
 * helpers on their own.
 */
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { CLI } from '../helpers/cairn.js'
import { containerStore, requireContainers, type ContainerStore } from './helpers.js'
import { DetachKeyWatcher, parseDetachKeys } from '../../src/container/stdio.js'
import { encodeFrame, exitFrame, FrameDecoder, FrameTypes, resizeFrame } from '../../src/util/stdcopy.js'

async function waitFor(what: string, cond: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

// Each terminal is a tmux server of its own (-L), so that one that is shutting down (its last
// session killed) never meets the next: a new session given to a server on its way out fails.
let server = ''
const tmux = (args: string[]): ReturnType<typeof spawnSync> => spawnSync('tmux', ['-L', server, ...args])
const screen = (session: string): string => tmux(['capture-pane', '-p', '-t', session]).stdout.toString()
/** Opens a terminal of COLS×ROWS on a server of its own running CMD. */
function openTerminal(session: string, cols: number, rows: number, cmd: string): void {
  server = `${session}-${String(cols)}x${String(rows)}`
  const r = tmux(['new-session', '-d', '-s', session, '-x', String(cols), '-y', String(rows), cmd])
  assert.equal(r.status, 0, `tmux new-session: ${r.stderr.toString()}`)
}

describe('stream framing and detach keys', () => {
  test('frames survive any chunking; oversized frames are refused', () => {
    const bytes = Buffer.concat([encodeFrame(FrameTypes.stdout, 'hello'), encodeFrame(FrameTypes.stderr, ''), resizeFrame(120, 40), exitFrame(-1)])
    for (const step of [1, 3, 8, 13, bytes.length]) {
      const d = new FrameDecoder()
      const frames = []
      for (let i = 0; i < bytes.length; i += step) frames.push(...d.push(bytes.subarray(i, i + step)))
      assert.deepEqual(frames.map((f) => f.type), [1, 2, FrameTypes.resize, FrameTypes.exit])
      assert.equal(frames[0]?.payload.toString(), 'hello')
      assert.equal(frames[2]?.payload.readUInt16BE(0), 120)
      assert.equal(frames[2]?.payload.readUInt16BE(2), 40)
      assert.equal(frames[3]?.payload.readInt32BE(0), -1)
      assert.equal(d.pending, 0)
    }
    const huge = Buffer.alloc(8)
    huge[0] = 1
    huge.writeUInt32BE(1 << 30, 4)
    assert.throws(() => new FrameDecoder(1024).push(huge), /larger than/)
  })

  test("Docker's detach-key syntax, and a watcher that holds back a partial match", () => {
    assert.deepEqual([...parseDetachKeys('ctrl-p,ctrl-q')], [16, 17])
    assert.deepEqual([...parseDetachKeys('a,ctrl-@,ctrl-\\')], [97, 0, 28])
    assert.deepEqual([...parseDetachKeys('')], [])
    assert.throws(() => parseDetachKeys('ctrl-1'), /Unknown character/)
    const w = new DetachKeyWatcher(parseDetachKeys('ctrl-p,ctrl-q'))
    assert.equal(w.feed(Buffer.from('ab\x10')).toString(), 'ab')
    assert.equal(w.feed(Buffer.from('c')).toString(), '\x10c')
    assert.equal(w.detached, false)
    assert.equal(w.feed(Buffer.from('\x10\x10\x11zz')).toString(), '\x10')
    assert.equal(w.detached, true)
  })
})

describe('terminals, attach, wait', { concurrency: false }, () => {
  let s: ContainerStore | undefined
  after(async () => {
    await s?.cleanup()
  })

  test('-it: resize, detach with ctrl-p ctrl-q, attach again, exit code', async (t) => {
    if (!(await requireContainers(t))) return
    if (spawnSync('tmux', ['-V']).status !== 0) {
      if (process.env['CI']) throw new Error('tmux is missing')
      t.skip('tmux is not installed')
      return
    }
    s = await containerStore('overlay')
    const session = `cairn-attach-${process.pid}`
    const exitFile = `${s.root}/../run-exit`
    const cmd = `${CLI} --root ${s.root} run -it --name term busybox sh; echo EXIT=$? > ${exitFile}; sleep 60`
    openTerminal(session, 100, 30, cmd)
    try {
      await waitFor('the shell prompt', () => screen(session).includes('/ #'))
      tmux(['send-keys', '-t', session, 'stty size', 'Enter'])
      await waitFor('the first size', () => /^30 100\s*$/m.test(screen(session)))
      // the window shrinks: the container's terminal follows
      tmux(['resize-window', '-t', session, '-x', '70', '-y', '20'])
      await sleep(300)
      tmux(['send-keys', '-t', session, 'clear; stty size', 'Enter'])
      await waitFor('the new size', () => /^20 70\s*$/m.test(screen(session)))
      // ctrl-p ctrl-q: the CLI leaves (exit 0), the shell runs on
      tmux(['send-keys', '-t', session, 'C-p', 'C-q'])
      await waitFor('the CLI to detach', () => existsSync(exitFile))
      assert.equal(readFileSync(exitFile, 'utf8'), 'EXIT=0\n', `the terminal showed:\n${screen(session)}`)
      assert.equal((await s.cliOk(['inspect', '-f', '{{.State.Status}}', 'term'])).stdout, 'running\n')
    } finally {
      tmux(['kill-server'])
    }
    // attach again (other detach keys this time), and end the shell with an exit code
    const exit2 = `${s.root}/../attach-exit`
    const cmd2 = `${CLI} --root ${s.root} attach --detach-keys ctrl-x,x term; echo EXIT=$? > ${exit2}; sleep 60`
    openTerminal(session, 90, 25, cmd2)
    try {
      await sleep(500)
      tmux(['send-keys', '-t', session, 'clear; stty size', 'Enter'])
      await waitFor('the attached size', () => /^25 90\s*$/m.test(screen(session)))
      tmux(['send-keys', '-t', session, 'exit 7', 'Enter'])
      await waitFor('attach to end', () => existsSync(exit2))
      assert.equal(readFileSync(exit2, 'utf8'), 'EXIT=7\n', `the terminal showed:\n${screen(session)}`)
    } finally {
      tmux(['kill-server'])
    }
    assert.equal((await s.cliOk(['wait', 'term'])).stdout, '7\n')
    const attachStopped = await s.cli(['attach', 'term'])
    assert.equal(attachStopped.code, 1)
    assert.match(attachStopped.stderr, /You cannot attach to a stopped container, start it first/)
  })

  test('wait blocks until the exit; logs --until; container prune; system prune', async (t) => {
    if (!(await requireContainers(t))) return
    s ??= await containerStore('overlay')
    await s.cliOk(['run', '-d', '--name', 'waiter', 'busybox', 'sh', '-c', 'echo early; sleep 1; echo late; exit 3'])
    const started = Date.now()
    assert.equal((await s.cliOk(['wait', 'waiter'])).stdout, '3\n')
    assert.ok(Date.now() - started >= 500)
    const all = (await s.cliOk(['logs', '-t', 'waiter'])).stdout.split('\n').filter(Boolean)
    assert.equal(all.length, 2)
    const lateAt = (all[1] ?? '').split(' ')[0] ?? ''
    assert.equal((await s.cliOk(['logs', '--until', lateAt, 'waiter'])).stdout, 'early\n')
    const missing = await s.cli(['wait', 'nope'])
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /No such container: nope/)

    await s.cliOk(['run', '-d', '--name', 'keep', 'busybox', 'sleep', '60'])
    await s.cliOk(['create', '--name', 'made', 'busybox', 'true'])
    const pruned = await s.cliOk(['container', 'prune', '-f'])
    assert.match(pruned.stdout, /^Deleted Containers:\n[0-9a-f]{64}\n[0-9a-f]{64}\n[0-9a-f]{64}\n\nTotal reclaimed space: /)
    const left = (await s.cliOk(['ps', '-a', '--format', '{{.Names}}'])).stdout
    assert.equal(left, 'keep\n')
    await s.cliOk(['stop', '-t', '0', 'keep'])
    const sys = await s.cliOk(['system', 'prune', '-f'])
    assert.match(sys.stdout, /Deleted Containers:\n[0-9a-f]{64}\n\n/)
    assert.match(sys.stdout, /Total reclaimed space: /)
    assert.equal((await s.cliOk(['ps', '-aq'])).stdout, '')
    // busybox is tagged: only -a would remove it
    assert.match((await s.cliOk(['images', '-q'])).stdout, /^[0-9a-f]{12}\n$/)
  })
})
