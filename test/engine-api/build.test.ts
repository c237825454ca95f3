/**
 * `POST /build` (the classic builder protocol) against `cairn system service`: Debian's docker
 * 20.10 client and Docker 28's, both with DOCKER_BUILDKIT=0, build a Dockerfile (FROM a local
 * busybox, COPY, RUN, CMD), run the image, build again from the cache, and fail a RUN with its
 * exit code and output; dockerode's buildImage; docker-compose's `build:`; `/build/prune`,
 * `/session` and a Dockerfile path outside the context refused. Also the content leases of the
 * service's requests: an upload cut off half-way leaves nothing behind, a concurrent one keeps
 * what it is writing.
 */
import { after, before, describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { request as httpRequest, type ClientRequest } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { gzipSync } from 'node:zlib'
import Docker from 'dockerode'
import { run, type RunResult } from '../helpers/exec.js'
import { cairn, tarOf, tempDir } from '../helpers/cairn.js'
import { requireTools } from '../helpers/tools.js'
import { containerStore, requireContainers, type ContainerStore } from '../container/helpers.js'
import { apiRequest, startService, type Served } from './helpers.js'
import { writeTar } from '../../src/layer/tar.js'

const DOCKERFILE = `FROM busybox
COPY greeting.txt /greeting.txt
RUN echo "built by $(cat /greeting.txt)" > /built.txt && echo "step-$((40+2))-output"
CMD ["cat", "/built.txt"]
`

async function waitUntil(cond: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await sleep(50)
  }
}

/** A docker CLI binary, or a skip (a failure in CI). */
async function requireDocker(t: TestContext, bin: string): Promise<boolean> {
  const v = await run(bin, ['--version']).catch(() => undefined)
  if (v?.code === 0) return true
  if (process.env['CI']) throw new Error(`no ${bin}`)
  t.skip(`no ${bin}`)
  return false
}

describe('POST /build against cairn system service', { timeout: 120_000 }, () => {
  let s: ContainerStore | undefined
  let service: Served | undefined
  let work: { dir: string; cleanup: () => Promise<void> } | undefined
  let sock = ''
  const project = `cairnbuild${randomBytes(3).toString('hex')}`

  before(async () => {
    work = await tempDir('cairn-api-build-')
    s = await containerStore('overlay')
    sock = `${work.dir}/docker.sock`
    service = await startService(s.root, sock)
  })

  after(async () => {
    if (s) await cairn(s.root, ['network', 'rm', `${project}_default`])
    await service?.stop()
    await s?.cleanup()
    await work?.cleanup()
  })

  const docker = (bin: string, args: string[], cwd: string): Promise<RunResult> =>
    run(bin, args, { cwd, env: { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_BUILDKIT: '0', DOCKER_CONFIG: `${work?.dir ?? ''}/docker-config`, DOCKER_CLI_HINTS: 'false' }, timeoutMs: 60_000 })

  for (const [label, bin] of [['Debian docker 20.10', '/usr/bin/docker'], ['Docker 28', 'docker']] as const) {
    test(`${label} (DOCKER_BUILDKIT=0): build, run, build from the cache, a failing RUN`, async (t) => {
      if (!(await requireContainers(t)) || !(await requireDocker(t, bin))) return
      const tag = `built-${bin === 'docker' ? 'new' : 'old'}:v1`
      const dir = `${work?.dir ?? ''}/ctx-${bin === 'docker' ? 'new' : 'old'}`
      await mkdir(dir, { recursive: true })
      await writeFile(`${dir}/Dockerfile`, DOCKERFILE)
      await writeFile(`${dir}/greeting.txt`, `${label}\n`)
      const first = await docker(bin, ['build', '-t', tag, '.'], dir)
      assert.equal(first.code, 0, `${first.stdout}${first.stderr}\n(service: ${service?.output() ?? ''})`)
      assert.match(first.stdout, /Step 1\/4 : FROM busybox/)
      assert.match(first.stdout, /Step 3\/4 : RUN echo/)
      assert.match(first.stdout, /---> Running in [0-9a-f]{12}/)
      assert.match(first.stdout, /step-42-output/)
      assert.match(first.stdout, /Successfully built [0-9a-f]{12}/)
      assert.match(first.stdout, new RegExp(`Successfully tagged ${tag.replace('.', '\\.')}`))
      const ran = await docker(bin, ['run', '--rm', '--network', 'none', tag], dir)
      assert.equal(ran.code, 0, ran.stderr)
      assert.equal(ran.stdout, `built by ${label}\n`)

      const again = await docker(bin, ['build', '-t', tag, '.'], dir)
      assert.equal(again.code, 0, again.stderr)
      assert.equal(again.stdout.match(/---> Using cache/g)?.length, 3, again.stdout)
      assert.doesNotMatch(again.stdout, /step-42-output/)
      const id = /Successfully built ([0-9a-f]{12})/.exec(first.stdout)?.[1]
      assert.match(again.stdout, new RegExp(`Successfully built ${id ?? 'none'}`))

      // -q: only the image ID
      const quiet = await docker(bin, ['build', '-q', '.'], dir)
      assert.equal(quiet.code, 0, quiet.stderr)
      assert.match(quiet.stdout, /^sha256:[0-9a-f]{64}\n$/)

      await writeFile(`${dir}/Dockerfile.fail`, 'FROM busybox\nRUN echo about-to-fail && exit 7\n')
      const failed = await docker(bin, ['build', '-f', 'Dockerfile.fail', '.'], dir)
      assert.equal(failed.code, 7, `${failed.stdout}${failed.stderr}`)
      assert.match(failed.stdout, /about-to-fail/)
      assert.match(failed.stderr, /returned a non-zero code: 7/)
    })
  }

  test('dockerode buildImage: a gzip context, build args, labels, target; the stream as Docker writes it', async (t) => {
    if (!(await requireContainers(t))) return
    const d = new Docker({ socketPath: sock })
    const tar = await tarOf({ Dockerfile: 'FROM busybox AS base\nARG WHO=nobody\nRUN echo "hi $WHO" > /who\nFROM base AS other\nRUN exit 1\n' })
    const stream = await d.buildImage(Readable.from([gzipSync(tar)]), { t: 'sdk-built:1', buildargs: { WHO: 'dockerode' }, labels: { made: 'by-sdk' }, target: 'base' })
    const messages = (await buffer(stream)).toString().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    assert.ok(messages.some((m) => m['stream'] === 'Step 1/3 : FROM busybox AS base\n'), JSON.stringify(messages))
    const aux = messages.find((m) => m['aux'] !== undefined)?.['aux'] as { ID?: string } | undefined
    assert.match(aux?.ID ?? '', /^sha256:[0-9a-f]{64}$/)
    assert.ok(messages.some((m) => m['stream'] === 'Successfully tagged sdk-built:1\n'))
    assert.ok(!messages.some((m) => m['error'] !== undefined))
    const img = await d.getImage('sdk-built:1').inspect()
    assert.equal(img.Id, aux?.ID)
    assert.equal(img.Config.Labels['made'], 'by-sdk')
    const c = await d.createContainer({ Image: 'sdk-built:1', Cmd: ['cat', '/who'], HostConfig: { NetworkMode: 'none' } })
    await c.start()
    await c.wait()
    const logs = await c.logs({ stdout: true })
    await c.remove()
    assert.match(logs.toString(), /hi dockerode/)

    // a failure after the stream began: errorDetail with the exit code
    const failTar = await tarOf({ 'sub/Build.df': 'FROM busybox\nRUN echo nope >&2; exit 3\n' })
    const failed = (await buffer(await d.buildImage(Readable.from([failTar]), { dockerfile: 'sub/Build.df' }))).toString().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    const last = failed.at(-1) as { errorDetail?: { code?: number; message?: string }; error?: string }
    assert.equal(last.errorDetail?.code, 3, JSON.stringify(failed))
    assert.match(last.error ?? '', /returned a non-zero code: 3/)
    assert.ok(failed.some((m) => typeof m['stream'] === 'string' && (m['stream']).includes('nope')))
  })

  test('a Dockerfile outside the context, BuildKit sessions and unsupported options are refused; /build/prune', async (t) => {
    if (!(await requireContainers(t))) return
    const tar = await buffer(writeTar([
      { header: { path: 'Dockerfile', type: 'file', mode: 0o644, size: 13 }, body: Buffer.from('FROM busybox\n') },
      { header: { path: 'link', type: 'symlink', linkname: '/etc/shadow' } },
    ]))
    const out = await apiRequest(sock, 'POST', '/v1.41/build?dockerfile=..%2F..%2Fetc%2Fshadow', tar)
    assert.equal(out.status, 400)
    assert.match(out.body.toString(), /must be within the build context/)
    const viaLink = (await apiRequest(sock, 'POST', '/v1.41/build?dockerfile=link', tar)).body.toString()
    assert.match(viaLink, /"error":"unable to prepare context: the Dockerfile \(link\) must be within the build context"/)
    assert.doesNotMatch(viaLink, /root:/)
    const session = await apiRequest(sock, 'POST', '/session')
    assert.equal(session.status, 501)
    assert.match(session.body.toString(), /BuildKit is not supported by Cairn.*DOCKER_BUILDKIT=0/)
    const v2 = await apiRequest(sock, 'POST', '/v1.44/build?version=2', tar)
    assert.equal(v2.status, 501)
    const remote = await apiRequest(sock, 'POST', '/build?remote=https%3A%2F%2Fexample.com%2Fx.git', tar)
    assert.equal(remote.status, 501)
    assert.match(remote.body.toString(), /remote/)
    const pruned = await apiRequest(sock, 'POST', '/v1.41/build/prune?all=1')
    assert.equal(pruned.status, 200, pruned.body.toString())
    const body = JSON.parse(pruned.body.toString()) as { CachesDeleted: string[] | null; SpaceReclaimed: number }
    assert.equal(typeof body.SpaceReclaimed, 'number')
    assert.ok(body.CachesDeleted === null || body.CachesDeleted.every((c) => c.startsWith('sha256:')))
  })

  test('a request whose client goes away mid-body: what it was writing goes with its lease, a concurrent one\'s stays', async (t) => {
    if (!(await requireContainers(t))) return
    const root = s?.root ?? ''
    const ingest = (): string[] => readdirSync(`${root}/ingest`)
    // the service's leases (this test process holds one of its own, from making the store)
    const serviceLeases = (): string[] => readdirSync(`${root}/leases`).filter((f) => f.startsWith(`${String(service?.child.pid)}-`))
    // two imports of a tarball: one is cut off half-way, the other still sending
    const open = (): ClientRequest => {
      const req = httpRequest({ socketPath: sock, method: 'POST', path: '/v1.41/images/create?fromSrc=-&repo=cut', headers: { 'Content-Type': 'application/x-tar', 'Content-Length': String(1 << 22) } })
      req.on('error', () => undefined)
      req.write(Buffer.alloc(1 << 20))
      return req
    }
    const cut = open()
    const live = open()
    await waitUntil(() => ingest().length === 2)
    assert.equal(serviceLeases().length, 2)
    cut.destroy()
    // its ingest file goes first, then its lease file
    await waitUntil(() => ingest().length === 1 && serviceLeases().length === 1).catch(() => undefined)
    assert.equal(ingest().length, 1, 'the cut request\'s content is gone, the live one\'s stays')
    assert.equal(serviceLeases().length, 1, 'the cut request\'s lease is gone, the live one\'s stays')
    live.write(Buffer.alloc(1 << 20))
    await sleep(200)
    assert.equal(ingest().length, 1, 'the live request keeps its content')
    live.destroy()
    await waitUntil(() => ingest().length === 0 && serviceLeases().length === 0)
  })

  test('docker-compose build:', async (t) => {
    if (!(await requireContainers(t)) || !requireTools(t, ['docker-compose'])) return
    const dir = `${work?.dir ?? ''}/compose`
    await mkdir(`${dir}/app`, { recursive: true })
    await writeFile(`${dir}/app/Dockerfile`, 'FROM busybox\nARG NOTE\nRUN echo "note=$NOTE" > /note\nCMD ["cat", "/note"]\n')
    await writeFile(`${dir}/docker-compose.yml`, `version: "3.7"\nservices:\n  app:\n    build:\n      context: ./app\n      args:\n        NOTE: from-compose\n    image: ${project}-app:latest\n    network_mode: none\n`)
    const env = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: dir, COMPOSE_DOCKER_CLI_BUILD: '0', DOCKER_BUILDKIT: '0' }
    const built = await run('docker-compose', ['-p', project, 'build'], { cwd: dir, env, timeoutMs: 60_000 })
    assert.equal(built.code, 0, `${built.stdout}${built.stderr}\n(service: ${service?.output() ?? ''})`)
    assert.match(built.stdout + built.stderr, /Successfully tagged/)
    const up = await run('docker-compose', ['-p', project, 'run', '--rm', 'app'], { cwd: dir, env, timeoutMs: 60_000 })
    assert.equal(up.code, 0, `${up.stderr}\n(service: ${service?.output() ?? ''})`)
    assert.match(up.stdout, /note=from-compose/)
    await run('docker-compose', ['-p', project, 'down'], { cwd: dir, env, timeoutMs: 60_000 })
  })
})
