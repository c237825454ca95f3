/**
 * Logins through the Engine API against Cairn's registry with htpasswd authentication: `docker
 * login` (POST /auth) accepts the right password and refuses a wrong one in Docker's words; a
 * push carries the login (X-Registry-Auth); a classic `docker build` whose base image is in that
 * registry pulls it with the login the CLI sends in X-Registry-Config, and fails without one.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { run, type RunResult } from '../helpers/exec.js'
import { cairnOk, tempDir } from '../helpers/cairn.js'
import { containerStore, requireContainers, type ContainerStore } from '../container/helpers.js'
import { startRegistry, startService, type Served } from './helpers.js'

let s: ContainerStore | undefined
let service: Served | undefined
let registry: (Served & { port: number }) | undefined
let work: { dir: string; cleanup: () => Promise<void> } | undefined

before(async () => {
  work = await tempDir('cairn-api-auth-')
  s = await containerStore('overlay')
  const line = (await cairnOk(s.root, ['registry', 'htpasswd', 'alice'], { input: 's3cret-pass\n' })).stdout.trim()
  await writeFile(`${work.dir}/htpasswd`, `${line}\n`)
  registry = await startRegistry(`${work.dir}/registry`, ['--htpasswd', `${work.dir}/htpasswd`])
  service = await startService(s.root, `${work.dir}/docker.sock`)
})

after(async () => {
  await service?.stop()
  await registry?.stop()
  await s?.cleanup()
  await work?.cleanup()
})

test('docker login, push and a classic build pulling its base image with the login', { timeout: 120_000 }, async (t) => {
  if (!(await requireContainers(t))) return
  const dir = work?.dir ?? ''
  const host = `127.0.0.1:${registry?.port ?? 0}`
  const docker = (args: string[], config: string, opts: { input?: string; cwd?: string } = {}): Promise<RunResult> =>
    run('docker', args, { env: { ...process.env, DOCKER_HOST: service?.address ?? '', DOCKER_CONFIG: config, DOCKER_BUILDKIT: '0', DOCKER_CLI_HINTS: 'false' }, timeoutMs: 60_000, ...opts })
  const logged = `${dir}/config-logged`
  const anonymous = `${dir}/config-anonymous`
  await mkdir(logged)
  await mkdir(anonymous)

  const wrong = await docker(['login', '-u', 'alice', '--password-stdin', host], logged, { input: 'not-it\n' })
  assert.notEqual(wrong.code, 0)
  assert.match(wrong.stderr, /Error response from daemon: .*unauthorized/i)
  const ok = await docker(['login', '-u', 'alice', '--password-stdin', host], logged, { input: 's3cret-pass\n' })
  assert.equal(ok.code, 0, ok.stderr)
  assert.match(ok.stdout, /Login Succeeded/)

  const ref = `${host}/team/base:1`
  assert.equal((await docker(['tag', 'busybox', ref], logged)).code, 0)
  const unauth = await docker(['push', ref], anonymous)
  assert.notEqual(unauth.code, 0, 'a push without a login is refused')
  const pushed = await docker(['push', ref], logged)
  assert.equal(pushed.code, 0, pushed.stderr)
  assert.match(pushed.stdout, /1: digest: sha256:[0-9a-f]{64}/)
  assert.equal((await docker(['rmi', ref], logged)).code, 0)

  const ctx = `${dir}/ctx`
  await mkdir(ctx)
  await writeFile(`${ctx}/Dockerfile`, `FROM ${ref}\nRUN echo from-private-base > /x\n`)
  const denied = await docker(['build', '-t', 'from-private:1', '.'], anonymous, { cwd: ctx })
  assert.notEqual(denied.code, 0, denied.stdout)
  assert.match(denied.stderr, /unauthorized|authentication required|denied/i)
  const built = await docker(['build', '-t', 'from-private:1', '.'], logged, { cwd: ctx })
  assert.equal(built.code, 0, `${built.stdout}${built.stderr}`)
  assert.match(built.stdout, /Successfully tagged from-private:1/)
  const ran = await docker(['run', '--rm', '--network', 'none', 'from-private:1', 'cat', '/x'], logged)
  assert.equal(ran.stdout, 'from-private-base\n', ran.stderr)
})
