/**
 * SDKs against `cairn system service`: dockerode (create, attach before start, start, wait, logs,
 * exec, archive both ways) and testcontainers (a busybox httpd with a published port, waited on
 * by its log message and by its port; Ryuk off, local images only).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { PassThrough } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import Docker from 'dockerode'
import { cairn, tempDir, tarOf } from '../helpers/cairn.js'
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

  test('wait as Docker\'s CLI asks it, before the start: that run\'s exit code, however quickly it ends, whoever starts it', async (t) => {
    if (!(await requireContainers(t))) return
    const docker = new Docker({ socketPath: sock })
    // a wait whose answer has begun (its headers came) before the start; resolves with the body
    const waitAsked = (id: string, condition: string): Promise<() => Promise<unknown>> => new Promise((resolve, reject) => {
      const req = request({ socketPath: sock, method: 'POST', path: `/v1.41/containers/${id}/wait?condition=${condition}` }, (res) => {
        const body = buffer(res).then((b) => JSON.parse(b.toString()) as unknown)
        body.catch(() => undefined)
        resolve(() => body)
      })
      req.on('error', reject)
      req.end()
    })
    // `docker run --rm`: wait for the removal, then start; the process ends at once, ten times over
    for (let i = 0; i < 10; i++) {
      const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', `exit ${String(i)}`], HostConfig: { NetworkMode: 'none', AutoRemove: true } })
      const answer = await waitAsked(c.id, 'removed')
      await c.start()
      assert.deepEqual(await answer(), { StatusCode: i })
    }
    // `docker start -a` twice: the second run, started by another process (the CLI beside the
    // service) while the service still remembers the first, is the one the second wait learns of
    const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'test -f /ran && exit 5; touch /ran; exit 3'], HostConfig: { NetworkMode: 'none' } })
    const first = await waitAsked(c.id, 'next-exit')
    await c.start()
    assert.deepEqual(await first(), { StatusCode: 3 })
    const second = await waitAsked(c.id, 'next-exit')
    const started = await cairn(s?.root ?? '', ['start', c.id])
    assert.equal(started.code, 0, started.stderr)
    assert.deepEqual(await second(), { StatusCode: 5 })
    // not-running on the exited container: its last exit code at once
    assert.deepEqual(await (await waitAsked(c.id, 'not-running'))(), { StatusCode: 5 })
    await c.remove()
  })

  test('dockerode commit: a config in the body merged with the container\'s as Docker merges it, changes on top', async (t) => {
    if (!(await requireContainers(t))) return
    const docker = new Docker({ socketPath: sock })
    const c = await docker.createContainer({
      Image: 'busybox', Cmd: ['sh', '-c', 'echo committed-file > /f'], Env: ['A=1', 'KEEP=yes'], Labels: { old: 'x' },
      WorkingDir: '/tmp', HostConfig: { NetworkMode: 'none' },
    })
    await c.start()
    await c.wait()
    // _query/_body: dockerode sends the query options apart from the config
    const res = await c.commit({
      _query: { container: c.id, repo: 'sdk-commit', tag: 'v1', comment: 'from the body', changes: 'LABEL c=d' },
      _body: { Cmd: ['cat', '/f'], Env: ['A=2', 'B=3'], Labels: { new: '1' }, ExposedPorts: { '8080/tcp': {} }, user: 'nobody' },
    }) as { Id: string }
    const img = await docker.getImage('sdk-commit:v1').inspect()
    assert.equal(img.Id, res.Id)
    assert.equal(img.Comment, 'from the body')
    assert.deepEqual(img.Config.Cmd, ['cat', '/f'])
    assert.equal(img.Config.User, 'nobody')
    assert.equal(img.Config.WorkingDir, '/tmp')
    // the container's A=1 gives way to the body's A=2; its KEEP (and whatever else it has) is added
    assert.deepEqual(img.Config.Env.slice(0, 3), ['A=2', 'B=3', 'KEEP=yes'])
    assert.ok(!img.Config.Env.includes('A=1'))
    assert.deepEqual(img.Config.Labels, { old: 'x', new: '1', c: 'd' })
    assert.deepEqual(Object.keys(img.Config.ExposedPorts ?? {}), ['8080/tcp'])
    // dockerode's plain form puts its options in the body as well: nothing of a config there
    const plain = await c.commit({ repo: 'sdk-commit', tag: 'plain', comment: 'plain' }) as { Id: string }
    const p = await docker.getImage('sdk-commit:plain').inspect()
    assert.equal(p.Id, plain.Id)
    assert.deepEqual(p.Config.Cmd, ['sh', '-c', 'echo committed-file > /f'])
    assert.equal(p.Config.User, '')
    // a config field of the wrong type is a 400 with its name
    await assert.rejects(c.commit({ _query: { container: c.id, repo: 'sdk-commit', tag: 'bad' }, _body: { Env: 'A=1' } }), (err: Error & { statusCode?: number }) => err.statusCode === 400 && /Env must be a list of strings/.test(err.message))
    const run = await docker.createContainer({ Image: 'sdk-commit:v1', HostConfig: { NetworkMode: 'none' }, User: 'root' })
    await run.start()
    await run.wait()
    assert.match((await run.logs({ stdout: true })).toString(), /committed-file/)
    await run.remove()
    await c.remove()
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
