/**
 * Interop through a real registry: what Cairn pushes, Docker pulls and runs (with the same IMAGE
 * ID) and skopeo reads; what Docker pushes, Cairn pulls with the same IMAGE ID and digest.
 */
import { describe, test, before, after, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { requireRoot } from '../helpers/root.js'
import { requireTools } from '../helpers/tools.js'
import { startDockerd, skopeo, type Dockerd } from '../helpers/dockerd.js'
import { missingDistributionTools, startDistribution, type Distribution } from '../helpers/distribution.js'
import { busyboxRootfsTar } from '../helpers/rootfs.js'
import { cairnOk, tempDir } from '../helpers/cairn.js'

const USER = { username: 'bob', password: 'interop-pass' }

describe('registry interop with dockerd and skopeo', () => {
  let docker: Dockerd | undefined
  let reg: Distribution | undefined
  let dir = ''
  let cleanup: () => Promise<void> = async () => undefined
  let env: NodeJS.ProcessEnv = {}
  let rootfs = ''

  before(async () => {
    const t = await tempDir('cairn-remote-interop-')
    dir = t.dir
    cleanup = t.cleanup
    if (process.getuid?.() !== 0 || missingDistributionTools().length > 0) return
    reg = await startDistribution({ user: USER })
    rootfs = await busyboxRootfsTar()
    docker = await startDockerd()
    await docker.runOk(['login', '-u', USER.username, '--password-stdin', reg.host], { input: USER.password })
    await mkdir(`${dir}/docker`, { recursive: true })
    await writeFile(`${dir}/docker/config.json`, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${USER.username}:${USER.password}`).toString('base64') } } }))
    env = { ...process.env, DOCKER_CONFIG: `${dir}/docker`, CAIRN_CONFIG: `${dir}/none.json` }
  })
  after(async () => {
    await docker?.stop()
    await reg?.stop()
    await cleanup()
  })

  const ready = (t: TestContext): boolean =>
    requireRoot(t, 'dockerd') && requireTools(t, ['dockerd', 'docker', 'skopeo']) && (() => {
      const missing = missingDistributionTools()
      if (missing.length === 0) return true
      if (process.env['CI']) throw new Error(`missing ${missing.join(', ')}`)
      t.skip(`missing ${missing.join(', ')}`)
      return false
    })()

  test('docker pulls and runs what cairn pushed, with the same IMAGE ID; skopeo sees the same digest', async (t) => {
    if (!ready(t)) return
    assert.ok(docker && reg)
    const root = `${dir}/store-a`
    const target = `${reg.host}/cairn/busybox:1`
    const id = (await cairnOk(root, ['import', '-c', 'CMD ["/bin/sh", "-c", "cat /usr/share/cairn/hello.txt"]', rootfs, target], { env })).stdout.trim()
    const push = await cairnOk(root, ['push', target], { env })
    const digest = /digest: (sha256:[a-f0-9]{64})/.exec(push.stdout)?.[1]
    assert.ok(digest)
    const pulled = await docker.runOk(['pull', target])
    assert.match(pulled.stdout, new RegExp(`Digest: ${digest}`))
    const dockerId = (await docker.runOk(['image', 'inspect', '--format', '{{.Id}}', target])).stdout.trim()
    assert.equal(dockerId, id)
    const ran = await docker.runOk(['run', '--rm', '--network', 'none', target])
    assert.ok(ran.stdout.length > 0, 'the CMD printed the file')
    const inspected = JSON.parse(await skopeo(['inspect', '--tls-verify=false', '--creds', `${USER.username}:${USER.password}`, `docker://${target}`])) as { Digest: string }
    assert.equal(inspected.Digest, digest)
  })

  test('cairn pulls what docker pushed, with the same IMAGE ID and digest', async (t) => {
    if (!ready(t)) return
    assert.ok(docker && reg)
    const target = `${reg.host}/docker/busybox:1`
    await docker.runOk(['import', '--change', 'ENV FROM_DOCKER=yes', rootfs, target])
    const dockerId = (await docker.runOk(['image', 'inspect', '--format', '{{.Id}}', target])).stdout.trim()
    const push = await docker.runOk(['push', target])
    const digest = /digest: (sha256:[a-f0-9]{64})/.exec(push.stdout)?.[1]
    assert.ok(digest, push.stdout)
    const root = `${dir}/store-b`
    const pulled = await cairnOk(root, ['pull', target], { env })
    assert.match(pulled.stdout, new RegExp(`Digest: ${digest}`))
    assert.match(pulled.stdout, /: Pull complete$/m)
    assert.equal((await cairnOk(root, ['images', '-q', '--no-trunc', target], { env })).stdout.trim(), dockerId)
    const digests = (await cairnOk(root, ['images', '--digests', '--format', '{{.Digest}}', target], { env })).stdout.trim()
    assert.equal(digests, digest)
    // and back: pushed to another repository of the same registry, blobs are mounted, not sent
    const other = `${reg.host}/copy/busybox:1`
    await cairnOk(root, ['tag', target, other], { env })
    const again = await cairnOk(root, ['push', other], { env })
    assert.match(again.stdout, /: Mounted from docker\/busybox$/m)
    assert.match(again.stdout, new RegExp(`^1: digest: ${digest} size: \\d+$`, 'm'))
  })
})
