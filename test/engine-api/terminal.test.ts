/**
 * Terminals and attaching through the Engine API, as a user drives them: `docker exec -it` in a
 * terminal (tmux, on a server of its own) that is resized, and a container started through the
 * service that keeps running across a restart of the service and is attached to again after it.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { PassThrough, type Duplex } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import Docker from 'dockerode'
import { run, type RunResult } from '../helpers/exec.js'
import { tempDir } from '../helpers/cairn.js'
import { containerStore, requireContainers, type ContainerStore } from '../container/helpers.js'
import { startService, type Served } from './helpers.js'

async function waitFor(what: string, cond: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

describe('terminals and attach through cairn system service', { timeout: 120_000 }, () => {
  let s: ContainerStore | undefined
  let service: Served | undefined
  let work: { dir: string; cleanup: () => Promise<void> } | undefined
  let sock = ''
  const tmuxServer = `cairn-api-${process.pid}`
  const tmux = (args: string[]): ReturnType<typeof spawnSync> => spawnSync('tmux', ['-L', tmuxServer, ...args])
  const screen = (session: string): string => tmux(['capture-pane', '-p', '-t', session]).stdout.toString()
  const docker = (args: string[]): Promise<RunResult> =>
    run('docker', args, { env: { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: `${work?.dir ?? ''}/docker-config`, DOCKER_CLI_HINTS: 'false' }, timeoutMs: 30_000 })

  before(async () => {
    work = await tempDir('cairn-api-term-')
    s = await containerStore('overlay')
    sock = `${work.dir}/docker.sock`
    service = await startService(s.root, sock)
  })

  after(async () => {
    tmux(['kill-server'])
    await service?.stop()
    await s?.cleanup()
    await work?.cleanup()
  })

  test('docker exec -it: the terminal\'s size, a resize, the exit code', async (t) => {
    if (!(await requireContainers(t))) return
    if (spawnSync('tmux', ['-V']).status !== 0) {
      if (process.env['CI']) throw new Error('tmux is missing')
      t.skip('tmux is not installed')
      return
    }
    const started = await docker(['run', '-d', '--name', 'box', '--network', 'none', 'busybox', 'sleep', '300'])
    assert.equal(started.code, 0, started.stderr)
    const exitFile = `${work?.dir ?? ''}/exec-exit`
    const session = 'exec'
    const cmd = `env DOCKER_HOST=unix://${sock} DOCKER_CONFIG=${work?.dir ?? ''}/docker-config docker exec -it box sh; echo EXIT=$? > ${exitFile}; sleep 60`
    assert.equal(tmux(['new-session', '-d', '-s', session, '-x', '100', '-y', '30', cmd]).status, 0)
    await waitFor('the shell prompt', () => screen(session).includes('/ #'))
    // typed once: what is typed must arrive however the client's request reached the service (see
    // the test of an exec whose start body comes late); the screen is in the error if it does not
    tmux(['send-keys', '-t', session, 'stty size', 'Enter'])
    await waitFor('the first size', () => /^30 100\s*$/m.test(screen(session))).catch((err: Error) => {
      throw new Error(`${err.message}; the terminal shows ${JSON.stringify(screen(session))}`)
    })
    // the window shrinks: the exec's terminal follows (POST /exec/{id}/resize)
    tmux(['resize-window', '-t', session, '-x', '70', '-y', '20'])
    await sleep(300)
    tmux(['send-keys', '-t', session, 'clear; stty size', 'Enter'])
    await waitFor('the new size', () => /^20 70\s*$/m.test(screen(session))).catch((err: Error) => {
      throw new Error(`${err.message}; the terminal shows ${JSON.stringify(screen(session))}`)
    })
    tmux(['send-keys', '-t', session, 'exit 3', 'Enter'])
    await waitFor('docker exec to end', () => existsSync(exitFile))
    assert.equal(readFileSync(exitFile, 'utf8'), 'EXIT=3\n')
    tmux(['kill-session', '-t', session])
    assert.equal((await docker(['rm', '-f', 'box'])).code, 0)
  })

  test('a container outlives a restart of the service, and is attached to again after it', async (t) => {
    if (!(await requireContainers(t))) return
    const started = await docker(['run', '-d', '-i', '--name', 'echoer', '--network', 'none', 'busybox', 'sh', '-c', 'while read l; do echo "got $l"; done'])
    assert.equal(started.code, 0, started.stderr)
    const talk = async (line: string): Promise<string> => {
      const d = new Docker({ socketPath: sock })
      const stream = await d.getContainer('echoer').attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })
      const out = new PassThrough()
      d.modem.demuxStream(stream, out, new PassThrough())
      let text = ''
      out.on('data', (b: Buffer) => (text += b.toString()))
      stream.write(`${line}\n`)
      await waitFor(`the answer to ${line}`, () => text.includes(`got ${line}`))
      const connection: Duplex = stream as Duplex
      connection.destroy()
      return text
    }
    assert.match(await talk('before'), /got before/)
    await service?.stop()
    assert.equal((await s?.cliOk(['inspect', '-f', '{{.State.Status}}', 'echoer']))?.stdout, 'running\n', 'the container runs on without the service')
    service = await startService(s?.root ?? '', sock)
    assert.match(await talk('after'), /got after/)
    assert.equal((await docker(['inspect', '-f', '{{.State.Running}}', 'echoer'])).stdout, 'true\n')
    assert.equal((await docker(['rm', '-f', 'echoer'])).code, 0)
  })
  test('an exec whose start body comes after its headers still reads what is typed (the socket is not left paused)', async (t) => {
    if (!(await requireContainers(t))) return
    const d = new Docker({ socketPath: sock })
    const c = await d.createContainer({ Image: 'busybox', Cmd: ['sleep', '300'], HostConfig: { NetworkMode: 'none' } })
    await c.start()
    try {
      for (const gap of [0, 300]) {
        const ex = await c.exec({ Cmd: ['sh', '-c', 'read l; echo "got $l"'], AttachStdin: true, AttachStdout: true, AttachStderr: true })
        // the start request by hand, as a client that sends its body in a second write does
        const body = JSON.stringify({ Detach: false, Tty: false })
        const conn = createConnection(sock)
        let received = ''
        conn.on('data', (b: Buffer) => (received += b.toString('latin1')))
        await new Promise<void>((resolve, reject) => conn.once('connect', resolve).once('error', reject))
        conn.write(`POST /v1.43/exec/${ex.id}/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: ${String(body.length)}\r\n\r\n`)
        if (gap > 0) await sleep(gap)
        conn.write(body)
        await waitFor('the upgrade', () => received.includes('101 '), 10_000)
        conn.write('typed\n')
        await waitFor(`the answer (body ${String(gap)} ms after the headers)`, () => received.includes('got typed'), 10_000).catch((err: Error) => {
          throw new Error(`${err.message}; received ${JSON.stringify(received)}`)
        })
        conn.destroy()
      }
    } finally {
      await c.remove({ force: true })
    }
  })
})
