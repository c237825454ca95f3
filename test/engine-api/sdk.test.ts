/**
 * SDKs against `cairn system service`: dockerode (create, attach before start, start, wait, logs,
 * exec, archive both ways) and testcontainers (a busybox httpd with a published port, waited on
 * by its log message and by its port; Ryuk off, local images only).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import Docker from 'dockerode'
import { tempDir, tarOf } from '../helpers/cairn.js'
import { containerStore, requireContainers, type ContainerStore } from '../container/helpers.js'
import { startService, type Served } from './helpers.js'
import { readTar } from '../../src/layer/tar.js'

describe('SDKs against cairn system service', { timeout: 60_000 }, () => {
  let s: ContainerStore | undefined
  let service: Served | undefined
  let work: { dir: string; cleanup: () => Promise<void> } | undefined
  let sock = ''

  before(async () => {
    work = await tempDir('cairn-api-sdk-')
    s = await containerStore('overlay')
    sock = `${work.dir}/docker.sock`
    service = await startService(s.root, sock)
  })

  after(async () => {
    await service?.stop()
    await s?.cleanup()
    await work?.cleanup()
  })

  test('dockerode: create, attach, start, wait, logs, exec, archive', async (t) => {
    if (!(await requireContainers(t))) return
    const docker = new Docker({ socketPath: sock })
    const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'read line; echo "got $line"; echo oops >&2; sleep 30'], OpenStdin: true, StdinOnce: false, AttachStdin: true, AttachStdout: true, AttachStderr: true, Env: ['A=1'] })
    const stream = await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })
    const out = new PassThrough()
    const err = new PassThrough()
    docker.modem.demuxStream(stream, out, err)
    let outText = ''
    let errText = ''
    out.on('data', (b: Buffer) => (outText += b.toString()))
    err.on('data', (b: Buffer) => (errText += b.toString()))
    await c.start()
    stream.write('hi there\n')
    for (let i = 0; i < 200 && !(outText.includes('got hi there') && errText.includes('oops')); i++) await new Promise((r) => setTimeout(r, 50))
    assert.equal(outText, 'got hi there\n')
    assert.equal(errText, 'oops\n')
    const info = await c.inspect()
    assert.equal(info.State.Running, true)
    // exec with its own output and exit code
    const ex = await c.exec({ Cmd: ['sh', '-c', 'echo $A-exec; exit 7'], AttachStdout: true, AttachStderr: true })
    const exStream = await ex.start({ hijack: true, stdin: false })
    const exOut = new PassThrough()
    docker.modem.demuxStream(exStream, exOut, new PassThrough())
    await new Promise<void>((resolve) => exStream.on('end', () => resolve()))
    assert.equal((exOut.read() as Buffer | null)?.toString(), '1-exec\n')
    const exInfo = await ex.inspect()
    assert.equal(exInfo.ExitCode, 7)
    assert.equal(exInfo.Running, false)
    // archive in, then out
    await c.putArchive(await tarOf({ 'hello.txt': 'archived\n' }), { path: '/tmp' })
    const tar = await buffer(await c.getArchive({ path: '/tmp/hello.txt' }))
    const names: string[] = []
    let body = ''
    for await (const e of readTar(PassThrough.from(tar))) {
      names.push(e.header.path)
      body += (await buffer(e.body)).toString()
    }
    assert.deepEqual(names, ['hello.txt'])
    assert.equal(body, 'archived\n')
    await assert.rejects(c.getArchive({ path: '/no/such' }), (e: { statusCode?: number }) => e.statusCode === 404)
    // stop, wait, logs
    await c.kill({ signal: 'KILL' })
    const waited = await c.wait() as { StatusCode: number }
    assert.equal(waited.StatusCode, 137)
    const logs = await c.logs({ stdout: true, stderr: true, follow: false })
    const lo = new PassThrough()
    const le = new PassThrough()
    docker.modem.demuxStream(PassThrough.from([logs]), lo, le)
    await new Promise((r) => setImmediate(r))
    assert.equal((lo.read() as Buffer | null)?.toString(), 'got hi there\n')
    assert.equal((le.read() as Buffer | null)?.toString(), 'oops\n')
    await c.remove()
    await assert.rejects(c.inspect(), (e: { statusCode?: number }) => e.statusCode === 404)
  })

  test('testcontainers: a busybox httpd with a published port, log and port wait strategies', async (t) => {
    if (!(await requireContainers(t))) return
    process.env['DOCKER_HOST'] = `unix://${sock}`
    process.env['TESTCONTAINERS_RYUK_DISABLED'] = 'true'
    process.env['TESTCONTAINERS_HOST_OVERRIDE'] = '127.0.0.1'
    const { GenericContainer, Wait } = await import('testcontainers')
    const byLog = await new GenericContainer('busybox:latest')
      .withCommand(['sh', '-c', 'echo "hello" > /tmp/index.html; echo ready to serve; exec busybox httpd -f -p 8080 -h /tmp'])
      .withExposedPorts(8080)
      .withWaitStrategy(Wait.forLogMessage('ready to serve'))
      .withStartupTimeout(20_000)
      .start()
    try {
      const port = byLog.getMappedPort(8080)
      assert.ok(port > 0)
      let body = ''
      for (let i = 0; i < 100 && body === ''; i++) {
        body = await fetch(`http://${byLog.getHost()}:${port}/index.html`).then((r) => (r.ok ? r.text() : ''), () => '')
        if (body === '') await new Promise((r) => setTimeout(r, 100))
      }
      assert.equal(body, 'hello\n')
      const ex = await byLog.exec(['cat', '/tmp/index.html'])
      assert.equal(ex.exitCode, 0)
      assert.equal(ex.output, 'hello\n')
    } finally {
      await byLog.stop({ timeout: 1 })
    }
    const byPort = await new GenericContainer('busybox:latest')
      .withCommand(['busybox', 'httpd', '-f', '-p', '8080', '-h', '/etc'])
      .withExposedPorts(8080)
      .withWaitStrategy(Wait.forListeningPorts())
      .withStartupTimeout(20_000)
      .start()
    try {
      const r = await fetch(`http://${byPort.getHost()}:${byPort.getMappedPort(8080)}/hostname`)
      assert.equal(r.status, 200)
    } finally {
      await byPort.stop({ timeout: 1 })
    }
  })
})
