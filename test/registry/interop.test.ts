/**
 * Real clients against the registry: skopeo (copy into it, between its repositories, out of it,
 * inspect, delete) and Docker (Debian's dockerd 20.10, started privately: login, push, pull, run), with
 * htpasswd Basic auth and with token auth; access rules enforced (a denied push says `denied`).
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { gzipSync } from 'node:zlib'
import { after, before, describe, it } from 'node:test'
import {
  generateSigningKeyPem,
  Htpasswd,
  htpasswdLine,
  privateKeyFromPem,
  startRegistry,
  TokenSigner,
  type AccessConfig,
  type RunningRegistry,
} from '../../src/registry/index.js'
import { tarOf, tempDir } from '../helpers/cairn.js'
import { startDockerd, skopeo, type Dockerd } from '../helpers/dockerd.js'
import { CommandFailedError } from '../helpers/exec.js'
import { requireRoot } from '../helpers/root.js'
import { busyboxRootfsTar } from '../helpers/rootfs.js'
import { missingTools } from '../helpers/tools.js'
import { requireTools } from '../helpers/tools.js'
import { checkPullable } from './consistency.js'
import { basic } from './helpers.js'

const ACCESS: AccessConfig = {
  rules: [
    { repositories: ['**'], users: ['alice'], actions: ['pull', 'push', 'delete'] },
    { repositories: ['**'], users: ['bob'], actions: ['pull'] },
  ],
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** A one-layer OCI image layout, tag `v1`. */
async function ociLayout(dir: string): Promise<{ manifestDigest: string }> {
  const layer = gzipSync(await tarOf({ 'etc/hello.txt': 'hello from cairn\n' }))
  const diffId = sha(await tarOf({ 'etc/hello.txt': 'hello from cairn\n' }))
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] }, config: {} }))
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha(config)}`, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${sha(layer)}`, size: layer.length }],
  }))
  await mkdir(`${dir}/blobs/sha256`, { recursive: true })
  for (const b of [layer, config, manifest]) await writeFile(`${dir}/blobs/sha256/${sha(b)}`, b)
  await writeFile(`${dir}/oci-layout`, '{"imageLayoutVersion":"1.0.0"}')
  await writeFile(`${dir}/index.json`, JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha(manifest)}`, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }],
  }))
  return { manifestDigest: `sha256:${sha(manifest)}` }
}

async function htpasswdFile(dir: string): Promise<Htpasswd> {
  await writeFile(`${dir}/htpasswd`, `${await htpasswdLine('alice', 'alicepw', 4)}\n${await htpasswdLine('bob', 'bobpw', 4)}\n`)
  return Htpasswd.load(`${dir}/htpasswd`)
}

async function tokenRegistry(dir: string): Promise<RunningRegistry> {
  const signer = new TokenSigner(privateKeyFromPem(generateSigningKeyPem('ec')), 'cairn-test')
  return startRegistry({
    root: `${dir}/token-root`,
    port: 0,
    htpasswd: await htpasswdFile(dir),
    access: ACCESS,
    token: { service: 'cairn-test-registry', issuer: 'cairn-test', publicKey: signer.publicKey, signer },
  })
}

describe('skopeo against cairn registry serve', () => {
  let dir = ''
  let cleanup: () => Promise<void> = async () => {}
  let basicReg: RunningRegistry | undefined
  let tokenReg: RunningRegistry | undefined

  before(async () => {
    if (missingTools(['skopeo']).length > 0) return
    const t = await tempDir('cairn-registry-skopeo-')
    dir = t.dir
    cleanup = t.cleanup
    basicReg = await startRegistry({ root: `${dir}/root`, port: 0, htpasswd: await htpasswdFile(dir), access: ACCESS })
    tokenReg = await tokenRegistry(dir)
  })
  after(async () => {
    await basicReg?.close()
    await tokenReg?.close()
    await cleanup()
  })

  for (const mode of ['basic', 'token'] as const) {
    it(`copies in, across, out; inspects; deletes (${mode} auth)`, async (t) => {
      if (!requireTools(t, ['skopeo'])) return
      const reg = (mode === 'basic' ? basicReg : tokenReg) as RunningRegistry
      const host = reg.url.replace(/^http:\/\//, '')
      const layout = `${dir}/layout-${mode}`
      const { manifestDigest } = await ociLayout(layout)
      const creds = ['--dest-tls-verify=false', '--dest-creds', 'alice:alicepw']
      await skopeo(['copy', ...creds, `oci:${layout}:v1`, `docker://${host}/sk/app:v1`])
      const inspect = JSON.parse(await skopeo(['inspect', '--tls-verify=false', '--creds', 'alice:alicepw', `docker://${host}/sk/app:v1`])) as { Digest: string; Layers: string[] }
      assert.equal(inspect.Digest, manifestDigest)
      // registry to registry: skopeo mounts the blobs across repositories
      await skopeo(['copy', '--src-tls-verify=false', '--src-creds', 'alice:alicepw', ...creds, `docker://${host}/sk/app:v1`, `docker://${host}/sk/copy:v1`])
      const out = `${dir}/out-${mode}`
      await skopeo(['copy', '--src-tls-verify=false', '--src-creds', 'bob:bobpw', `docker://${host}/sk/copy:v1`, `oci:${out}:v1`])
      const index = JSON.parse(await readFile(`${out}/index.json`, 'utf8')) as { manifests: { digest: string }[] }
      assert.equal(index.manifests[0]?.digest, manifestDigest, 'the same manifest came back, byte for byte')
      // bob may pull, not push: skopeo reports the registry's "denied"
      await assert.rejects(
        skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', 'bob:bobpw', `oci:${layout}:v1`, `docker://${host}/sk/bob:v1`]),
        (err: unknown) => err instanceof CommandFailedError && /denied/i.test(err.result.stderr),
      )
      await skopeo(['delete', '--tls-verify=false', '--creds', 'alice:alicepw', `docker://${host}/sk/copy:v1`])
      await assert.rejects(skopeo(['inspect', '--tls-verify=false', '--creds', 'alice:alicepw', `docker://${host}/sk/copy:v1`]))
      const auth = mode === 'basic' ? basic('alice', 'alicepw') : {}
      if (mode === 'basic') assert.equal(await checkPullable(reg.url, auth), 1)
    })
  }
})

describe('docker against cairn registry serve', () => {
  let docker: Dockerd | undefined
  let dir = ''
  let cleanup: () => Promise<void> = async () => {}
  let basicReg: RunningRegistry | undefined
  let tokenReg: RunningRegistry | undefined

  before(async () => {
    const t = await tempDir('cairn-registry-docker-')
    dir = t.dir
    cleanup = t.cleanup
    if (process.getuid?.() !== 0 || missingTools(['dockerd', 'docker', 'containerd', 'runc', 'busybox']).length > 0) return
    const rootfs = await busyboxRootfsTar()
    docker = await startDockerd()
    await docker.runOk(['import', '-c', 'CMD ["/bin/sh", "-c", "echo hello from the registry"]', rootfs, 'cairn-test/busybox:1'])
    basicReg = await startRegistry({ root: `${dir}/root`, port: 0, htpasswd: await htpasswdFile(dir), access: ACCESS })
    tokenReg = await tokenRegistry(dir)
  })
  after(async () => {
    await docker?.stop()
    await basicReg?.close()
    await tokenReg?.close()
    await cleanup()
  })

  for (const mode of ['basic', 'token'] as const) {
    it(`docker login, push, pull and run (${mode} auth); a pull-only user's push is denied`, async (t) => {
      if (!requireRoot(t, 'dockerd') || !requireTools(t, ['dockerd', 'docker', 'containerd', 'runc', 'busybox'])) return
      assert.ok(docker)
      const reg = (mode === 'basic' ? basicReg : tokenReg) as RunningRegistry
      const host = reg.url.replace(/^http:\/\//, '')
      const image = `${host}/team/busybox:1`
      const login = await docker.runOk(['login', host, '-u', 'alice', '--password-stdin'], { input: 'alicepw\n' })
      assert.match(login.stdout, /Login Succeeded/)
      const badLogin = await docker.run(['login', host, '-u', 'alice', '--password-stdin'], { input: 'wrong\n' })
      assert.notEqual(badLogin.code, 0)
      await docker.runOk(['login', host, '-u', 'alice', '--password-stdin'], { input: 'alicepw\n' })
      await docker.runOk(['tag', 'cairn-test/busybox:1', image])
      const push = await docker.runOk(['push', image])
      const pushed = /digest: (sha256:[a-f0-9]{64})/.exec(push.stdout)?.[1]
      assert.ok(pushed, push.stdout)
      await docker.runOk(['rmi', image])
      const pull = await docker.runOk(['pull', image])
      assert.match(pull.stdout, new RegExp(`Digest: ${pushed}`))
      const ran = await docker.runOk(['run', '--rm', '--network', 'none', image])
      assert.equal(ran.stdout, 'hello from the registry\n')
      // bob: pull yes, push no
      await docker.runOk(['login', host, '-u', 'bob', '--password-stdin'], { input: 'bobpw\n' })
      await docker.runOk(['pull', image])
      await docker.runOk(['tag', 'cairn-test/busybox:1', `${host}/team/bob:1`])
      const denied = await docker.run(['push', `${host}/team/bob:1`])
      assert.notEqual(denied.code, 0)
      assert.match(denied.stderr, /denied/)
      await docker.runOk(['logout', host])
      await docker.run(['rmi', image, `${host}/team/bob:1`])
    })
  }
})
